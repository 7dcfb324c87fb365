import numpy as np
import pytest

from skforml._constraints import CellSpec, build_cell_spec

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
        ("true_positive_rate_parity", [-1, 0, -1, 1], [0, 0], [("a", 1), ("b", 1)]),
        ("false_positive_rate_parity", [0, -1, 1, -1], [0, 0], [("a", 0), ("b", 0)]),
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
    # Group b has no negatives; TPR parity only looks at positives.
    spec = _spec("true_positive_rate_parity", ["a", "b"], [0, 1], present=[1, 1, 0, 1])
    np.testing.assert_array_equal(spec.cell_of_stratum, [-1, 0, -1, 1])


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
