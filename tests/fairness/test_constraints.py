import numpy as np
import pytest
import torch
from _helpers import build_cell_spec

from skforml.fairness._base import CellSpec, Constraint, make_constraint, rate_spread
from skforml.fairness._constraints import measured_constraint

# ------------------------------------------------------------ build_cell_spec


def _spec(constraint, groups, classes, *, groups_are_classes=False, present=None):
    if present is None:
        present = np.ones(len(groups) * len(classes), dtype=bool)
    return build_cell_spec(
        constraint,
        group_names=groups,
        class_names=classes,
        groups_are_classes=groups_are_classes,
        present=np.asarray(present, dtype=bool),
    )


# Strata are group * n_classes + label: (a,0) (a,1) (b,0) (b,1).
@pytest.mark.parametrize(
    "constraint, cell_of_stratum, bucket_of_cell, cell_names",
    [
        (
            "equalized_odds",
            [0, 1, 2, 3],
            [0, 1, 0, 1],
            [("a", 0), ("a", 1), ("b", 0), ("b", 1)],
        ),
        # TPR and FPR parity compare both labels' cells (see the docstring).
        (
            "true_positive_rate_parity",
            [0, 1, 2, 3],
            [0, 1, 0, 1],
            [("a", 0), ("a", 1), ("b", 0), ("b", 1)],
        ),
        (
            "false_positive_rate_parity",
            [0, 1, 2, 3],
            [0, 1, 0, 1],
            [("a", 0), ("a", 1), ("b", 0), ("b", 1)],
        ),
        ("error_rate_parity", [0, 0, 1, 1], [0, 0], [("a", None), ("b", None)]),
    ],
)
def test_cell_spec_binary_with_groups(
    constraint, cell_of_stratum, bucket_of_cell, cell_names
):
    spec = _spec(constraint, ["a", "b"], [0, 1])
    assert isinstance(spec, CellSpec)
    np.testing.assert_array_equal(spec.cell_of_stratum, cell_of_stratum)
    np.testing.assert_array_equal(spec.bucket_of_cell, bucket_of_cell)
    assert spec.cell_names == cell_names
    assert spec.n_cells == len(cell_names)
    np.testing.assert_array_equal(
        spec.cells(np.array([3, 0, 1, 2])), np.asarray(cell_of_stratum)[[3, 0, 1, 2]]
    )


@pytest.mark.parametrize("constraint", ["equalized_odds", "true_positive_rate_parity"])
def test_cell_spec_multiclass_with_groups(constraint):
    # Multi-class TPR parity compares the groups' recall of every class, as
    # equalized odds does: a cell per (group, label), a bucket per label.
    spec = _spec(constraint, ["a", "b"], ["x", "y", "z"])
    np.testing.assert_array_equal(spec.cell_of_stratum, np.arange(6))
    np.testing.assert_array_equal(spec.bucket_of_cell, [0, 1, 2, 0, 1, 2])
    assert spec.cell_names == [
        ("a", "x"),
        ("a", "y"),
        ("a", "z"),
        ("b", "x"),
        ("b", "y"),
        ("b", "z"),
    ]


def test_cell_spec_multiclass_error_rate_parity():
    spec = _spec("error_rate_parity", ["a", "b", "c"], [0, 1, 2])
    np.testing.assert_array_equal(spec.cell_of_stratum, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(spec.bucket_of_cell, [0, 0, 0])
    assert spec.cell_names == [("a", None), ("b", None), ("c", None)]


@pytest.mark.parametrize(
    "constraint",
    [
        "true_positive_rate_parity",
        "false_positive_rate_parity",
        "equalized_odds",
        "error_rate_parity",
    ],
)
def test_cell_spec_classes_as_groups(constraint):
    classes = ["x", "y", "z"]
    # Without sensitive features a row's group is its class: only the
    # diagonal strata occur.
    present = np.eye(3, dtype=bool).ravel()
    spec = _spec(constraint, classes, classes, groups_are_classes=True, present=present)
    expected = np.full(9, -1)
    expected[[0, 4, 8]] = [0, 1, 2]
    np.testing.assert_array_equal(spec.cell_of_stratum, expected)
    np.testing.assert_array_equal(spec.bucket_of_cell, [0, 0, 0])
    assert spec.cell_names == [("x", "x"), ("y", "y"), ("z", "z")]


def test_cell_spec_absent_stratum_is_ignored_when_not_compared():
    # Group b has no negatives; TPR parity needs only the positives' cells.
    spec = _spec("true_positive_rate_parity", ["a", "b"], [0, 1], present=[1, 1, 0, 1])
    np.testing.assert_array_equal(spec.cell_of_stratum, [0, 1, -1, 2])
    np.testing.assert_array_equal(spec.bucket_of_cell, [0, 1, 1])


# ---------------------------------------------------------------------- errors


def test_fpr_parity_multiclass_raises():
    with pytest.raises(ValueError, match="false_positive_rate_parity.*binary"):
        _spec("false_positive_rate_parity", ["a", "b"], [0, 1, 2])


def test_tpr_parity_group_without_positives_names_the_group():
    with pytest.raises(ValueError, match="'minority'.*label 1"):
        _spec(
            "true_positive_rate_parity",
            ["majority", "minority"],
            [0, 1],
            present=[1, 1, 1, 0],
        )


def test_equalized_odds_group_without_a_label_names_the_group():
    with pytest.raises(ValueError, match="'b'.*label 0"):
        _spec("equalized_odds", ["a", "b"], [0, 1], present=[1, 1, 0, 1])


def test_classes_as_groups_with_a_single_class_raises():
    with pytest.raises(ValueError, match="fewer than two groups"):
        _spec("equalized_odds", [0], [0], groups_are_classes=True, present=[True])


def test_fewer_than_two_compared_groups_raises():
    # A single group leaves nothing to compare.
    with pytest.raises(ValueError, match="fewer than two groups"):
        _spec("error_rate_parity", ["a"], [0, 1])


# ------------------------------------------------- disparity against fairlearn


def _predictions(seed, n=400, n_groups=3):
    rng = np.random.RandomState(seed)
    groups = rng.randint(n_groups, size=n)
    y_true = rng.randint(2, size=n)
    # Predictions that depend on the group, so that the gaps are not zero.
    flip = rng.uniform(size=n) < 0.1 + 0.15 * groups
    y_pred = np.where(flip, 1 - y_true, y_true)
    return y_true, y_pred, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "name, reference",
    [
        ("true_positive_rate_parity", "true_positive_rate_difference"),
        ("false_positive_rate_parity", "false_positive_rate_difference"),
        ("equalized_odds", "equalized_odds_difference"),
        ("demographic_parity", "demographic_parity_difference"),
        ("error_rate_parity", None),
    ],
)
def test_disparity_matches_fairlearn(name, reference, seed):
    import fairlearn.metrics as flm
    from sklearn.metrics import accuracy_score

    y_true, y_pred, groups = _predictions(seed)
    got = make_constraint(name).disparity(y_true, y_pred, groups)
    if reference is None:
        frame = flm.MetricFrame(
            metrics=accuracy_score,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
        )
        expected = frame.difference()
    else:
        expected = getattr(flm, reference)(y_true, y_pred, sensitive_features=groups)
    assert expected > 0.01  # not vacuous
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_disparity_matches_fairlearn(seed):
    import fairlearn.metrics as flm

    y_true, y_pred, groups = _predictions(seed)
    weights = np.random.RandomState(seed).uniform(0.2, 3.0, size=len(y_true))
    for name, reference in [
        ("demographic_parity", flm.demographic_parity_difference),
        ("equalized_odds", flm.equalized_odds_difference),
    ]:
        got = make_constraint(name).disparity(y_true, y_pred, groups, weights)
        expected = reference(
            y_true, y_pred, sensitive_features=groups, sample_weight=weights
        )
        assert got == pytest.approx(expected, abs=1e-12)
    # Weights change a rate that pools labels.
    plain = make_constraint("demographic_parity").disparity(y_true, y_pred, groups)
    assert plain != pytest.approx(
        make_constraint("demographic_parity").disparity(y_true, y_pred, groups, weights)
    )


def test_class_recall_parity_matches_fairness_report():
    from skforml.metrics import fairness_report

    rng = np.random.RandomState(0)
    y_true = rng.randint(4, size=300)
    y_pred = np.where(rng.uniform(size=300) < 0.2 + 0.1 * y_true, 0, y_true)
    got = measured_constraint("equalized_odds", groups_are_classes=True).disparity(
        y_true, y_pred, y_true
    )
    expected = fairness_report(y_true, y_pred).tprd
    assert expected > 0.1
    assert got == pytest.approx(expected)


def test_constraint_names_and_aliases():
    assert make_constraint("equal_opportunity") == make_constraint(
        "true_positive_rate_parity"
    )
    instance = make_constraint("demographic_parity")
    assert make_constraint(instance) is instance
    with pytest.raises(ValueError, match="constraint must be a registered"):
        make_constraint("statistical_parity")


def cell_spec(constraint, *, n_groups, n_classes, classes=False):
    return _spec(
        constraint,
        list(range(n_groups)),
        list(range(n_classes)),
        groups_are_classes=classes,
    )


def test_demographic_parity_cells_pool_labels():
    spec = cell_spec("demographic_parity", n_groups=3, n_classes=2)
    # Every (group, label) stratum counts, labels pooled per group.
    np.testing.assert_array_equal(spec.cell_of_stratum, [0, 0, 1, 1, 2, 2])
    assert spec.cell_names == [(0, None), (1, None), (2, None)]


def test_demographic_parity_needs_groups_and_a_binary_target():
    with pytest.raises(ValueError, match="pass sensitive_features"):
        cell_spec("demographic_parity", n_groups=2, n_classes=2, classes=True)
    with pytest.raises(ValueError, match="binary targets only"):
        cell_spec("demographic_parity", n_groups=2, n_classes=3)


def test_demographic_parity_surrogate_is_one_minus_positive_probability():
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0], [-3.0, 1.0]])
    values = make_constraint("demographic_parity").row_values(
        logits, torch.tensor([0, 1, 1]), torch.zeros(3)
    )
    expected = 1 - torch.softmax(logits, dim=1)[:, 1]
    torch.testing.assert_close(values, expected)


def test_a_new_constraint_is_one_subclass():
    class NegativePredictiveParity(Constraint):
        """Compares the groups' losses on their negatives (test-only)."""

        name = "test_only_negatives"

        def cell_keys(self, group, label, n_classes):
            return np.where(label == 0, group, -1), np.zeros_like(group)

        def disparity(self, y_true, y_pred, groups):
            return rate_spread(y_pred == 0, y_true == 0, groups)

    try:
        assert isinstance(
            make_constraint("test_only_negatives"), NegativePredictiveParity
        )
        spec = cell_spec("test_only_negatives", n_groups=2, n_classes=2)
        np.testing.assert_array_equal(spec.cell_of_stratum, [0, -1, 1, -1])
    finally:
        from skforml.fairness import _base

        del _base._REGISTRY["test_only_negatives"]
