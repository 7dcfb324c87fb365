"""The ``"group_label_balanced"`` baseline: every (group, label) cell weighs alike."""

import numpy as np
import torch

from skforml import ReweightedClassifier
from skforml.datasets import make_biased_classification
from skforml.metrics import group_disparity
from skforml.weighting import BASELINES, TrainingRows

TINY = {"hidden_layer_sizes": (8,), "max_epochs": 1, "random_state": 0}


def uneven_cells():
    """Twelve rows in two groups whose cells hold 1, 3, 6 and 2 rows."""
    groups = np.array([0] * 4 + [1] * 8)
    y = np.array([1, 0, 0, 0] + [0] * 6 + [1] * 2)
    X = np.random.RandomState(0).standard_normal((12, 3))
    return X, y, groups


def cell_totals(weights, y, groups):
    return np.bincount(groups * 2 + y, weights=weights, minlength=4)


def test_is_registered_by_name():
    assert "group_label_balanced" in BASELINES
    assert '"group_label_balanced"' in ReweightedClassifier.__doc__


def test_initial_weights_give_every_cell_the_same_total():
    _, y, groups = uneven_cells()
    weighting = BASELINES["group_label_balanced"]()
    rows = TrainingRows(
        y=y, groups=groups, n_classes=2, n_groups=2, sample_weight=None,
        rng=np.random.RandomState(0),
    )  # fmt: skip
    weighting.start(rows, torch.device("cpu"))
    weights = weighting.weights().numpy()
    # 1/1, 1/3, 1/6, 1/2 per row, each cell's total 1; the mean-one weights
    # are 12 / 4 = 3 times those, every cell's total 3.
    np.testing.assert_allclose(cell_totals(weights, y, groups), [3] * 4, rtol=1e-6)
    np.testing.assert_allclose(weights[[0, 1, 4, 10]], [3, 1, 0.5, 1.5], rtol=1e-6)


def test_fitted_sample_weights_balance_the_cells_not_only_the_groups():
    X, y, groups = uneven_cells()
    clf = ReweightedClassifier(weighting="group_label_balanced", **TINY)
    clf.fit(X, y, sensitive_features=groups)
    w = clf.sample_weights_
    np.testing.assert_allclose(cell_totals(w, y, groups), [3] * 4, rtol=1e-5)
    # "proportion" balances the groups and leaves the labels within a group.
    proportion = ReweightedClassifier(weighting="proportion", **TINY)
    totals = cell_totals(proportion.fit(X, y, sensitive_features=groups)
                         .sample_weights_, y, groups)  # fmt: skip
    assert not np.allclose(totals, 3)


def test_caller_sample_weight_multiplies_the_scheme_weights():
    X, y, groups = uneven_cells()
    sample_weight = np.arange(1.0, 13.0)
    clf = ReweightedClassifier(weighting="group_label_balanced", **TINY)
    clf.fit(X, y, sensitive_features=groups, sample_weight=sample_weight)
    cell_size = np.bincount(groups * 2 + y)[groups * 2 + y]
    expected = sample_weight / cell_size
    np.testing.assert_allclose(
        clf.sample_weights_, expected / expected.mean(), rtol=1e-5
    )


def test_without_sensitive_features_it_is_proportion():
    X, y, _ = uneven_cells()
    balanced = ReweightedClassifier(weighting="group_label_balanced", **TINY)
    proportion = ReweightedClassifier(weighting="proportion", **TINY)
    np.testing.assert_allclose(
        balanced.fit(X, y).sample_weights_, proportion.fit(X, y).sample_weights_
    )


def test_lowers_the_minoritys_tpr_gap_against_uniform_weights():
    # A minority of 10% that follows its own rule: plain training fits the
    # majority and misses most of the minority's positives. Two draws.
    gaps = {"uniform": [], "group_label_balanced": []}
    for seed in (1, 2):
        X, y, s = make_biased_classification(
            n_samples=2500, minority_proportion=0.1, random_state=seed
        )[:3]
        train, test = slice(0, 1500), slice(1500, None)
        for weighting, out in gaps.items():
            clf = ReweightedClassifier(
                weighting=weighting, hidden_layer_sizes=(32,), lr=0.01,
                max_epochs=12, random_state=0,
            )  # fmt: skip
            clf.fit(X[train], y[train], sensitive_features=s[train])
            out.append(
                group_disparity(
                    y[test],
                    clf.predict(X[test]),
                    sensitive_features=s[test],
                    constraint="true_positive_rate_parity",
                )
            )
    before, after = np.mean(gaps["uniform"]), np.mean(gaps["group_label_balanced"])
    assert before > 0.3, gaps
    assert after < 0.75 * before, gaps


def test_multiclass_cells_are_balanced():
    n_classes = 3
    rng = np.random.RandomState(0)
    y = rng.randint(n_classes, size=60)
    groups = (rng.uniform(size=60) < 0.3).astype(int)
    X = rng.standard_normal((60, 3))
    clf = ReweightedClassifier(weighting="group_label_balanced", **TINY)
    clf.fit(X, y, sensitive_features=groups)
    totals = np.bincount(groups * n_classes + y, weights=clf.sample_weights_)
    np.testing.assert_allclose(totals, totals[0], rtol=1e-5)
