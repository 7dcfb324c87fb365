"""The ``"balanced_accuracy_parity"`` constraint: its disparity against fairlearn,
its cells and moments, and a fit that lowers it."""

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import balanced_accuracy_score

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification
from skforml.fairness import constraint_names
from skforml.fairness._base import make_constraint
from skforml.metrics import group_disparity

NAME = "balanced_accuracy_parity"


def random_predictions(seed, n_classes, n_groups=3, n_rows=400):
    rng = np.random.RandomState(seed)
    groups = rng.randint(n_groups, size=n_rows)
    y_true = rng.randint(n_classes, size=n_rows)
    # Predictions right more often for some (group, label) cells than others.
    right = rng.uniform(size=n_rows) < 0.4 + 0.5 * rng.uniform(size=(n_groups, 1))[
        groups, 0
    ] * (y_true == 0)
    y_pred = np.where(right, y_true, rng.randint(n_classes, size=n_rows))
    return y_true, y_pred, groups


def fairlearn_difference(y_true, y_pred, groups, sample_weight=None):
    frame = MetricFrame(
        metrics=balanced_accuracy_score,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
        sample_params=None
        if sample_weight is None
        else {"sample_weight": sample_weight},
    )
    return frame.difference()


def test_is_registered():
    assert NAME in constraint_names()
    assert make_constraint(NAME).name == NAME


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_disparity_matches_fairlearns_balanced_accuracy_difference(n_classes, seed):
    y_true, y_pred, groups = random_predictions(seed, n_classes)
    expected = fairlearn_difference(y_true, y_pred, groups)
    assert expected > 0.02  # not vacuous
    got = make_constraint(NAME).disparity(y_true, y_pred, groups)
    assert got == pytest.approx(expected)
    by_name = group_disparity(
        y_true, y_pred, sensitive_features=groups, constraint=NAME
    )
    assert by_name == pytest.approx(expected)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_weighted_disparity_matches_fairlearn(n_classes):
    y_true, y_pred, groups = random_predictions(3, n_classes)
    weight = np.random.RandomState(4).uniform(0.1, 3.0, size=len(y_true))
    expected = fairlearn_difference(y_true, y_pred, groups, weight)
    got = group_disparity(
        y_true, y_pred, sensitive_features=groups, constraint=NAME,
        sample_weight=weight,
    )  # fmt: skip
    assert got == pytest.approx(expected)


def test_differs_from_error_rate_parity_when_label_mixes_differ():
    # Group 0 mostly negatives and predicts all negative: accurate, not
    # balanced-accurate.
    y_true = np.array([0] * 9 + [1] + [0] * 5 + [1] * 5)
    y_pred = np.array([0] * 10 + [0] * 5 + [1] * 5)
    groups = np.array([0] * 10 + [1] * 10)
    error = make_constraint("error_rate_parity").disparity(y_true, y_pred, groups)
    balanced = make_constraint(NAME).disparity(y_true, y_pred, groups)
    assert error == pytest.approx(0.1)  # accuracies .9 and 1
    assert balanced == pytest.approx(0.5)  # balanced accuracies .5 and 1


def test_stratum_weights_leave_it_unchanged():
    # The validation rows are weighted back to the training mix by a constant
    # per (group, label) stratum, which a balanced accuracy does not see.
    y_true, y_pred, groups = random_predictions(5, 2)
    stratum_weight = np.array([0.5, 2.0, 1.0, 3.0, 0.2, 1.5])
    weight = stratum_weight[groups * 2 + y_true]
    constraint = make_constraint(NAME)
    assert constraint.disparity(y_true, y_pred, groups, weight) == pytest.approx(
        constraint.disparity(y_true, y_pred, groups)
    )


def compile_spec(name, moments, n_groups=2, n_classes=2):
    return make_constraint(name).compile(
        group_names=list(range(n_groups)),
        class_names=list(range(n_classes)),
        groups_are_classes=False,
        present=np.ones(n_groups * n_classes, dtype=bool),
        moments=moments,
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_cells_pool_labels_and_moments_are_every_labels_recall(n_classes):
    cells = compile_spec(NAME, moments=False, n_classes=n_classes)
    np.testing.assert_array_equal(cells.cell_of_stratum, np.repeat([0, 1], n_classes))
    # The moments are equalized odds' (whose weight gradient the constrained
    # objective's tests check by finite differences).
    moments = compile_spec(NAME, moments=True, n_classes=n_classes)
    odds = compile_spec("equalized_odds", moments=True, n_classes=n_classes)
    np.testing.assert_array_equal(moments.cell_of_stratum, odds.cell_of_stratum)
    np.testing.assert_array_equal(moments.bucket_of_cell, odds.bucket_of_cell)


def test_fit_lowers_the_balanced_accuracy_gap_against_uniform_weights():
    # Two draws of the data: one draw's test disparity moves by a few points.
    before, after = [], []
    for seed in (1, 2):
        X, y, s = make_biased_classification(n_samples=5000, random_state=seed)[:3]
        train, test = slice(0, 3000), slice(3000, None)
        settings = {"constraint": NAME, "random_state": 0}
        for clf, out in (
            (FORMLClassifier(meta_lr=0, **settings), before),
            (FORMLClassifier(**settings), after),
        ):
            clf.fit(X[train], y[train], sensitive_features=s[train])
            out.append(
                group_disparity(
                    y[test],
                    clf.predict(X[test]),
                    sensitive_features=s[test],
                    constraint=NAME,
                )  # fmt: skip
            )
    assert np.mean(before) > 0.05, before
    assert np.mean(after) < 0.8 * np.mean(before), (before, after)
