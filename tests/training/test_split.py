import numpy as np
import pytest
import torch
from _helpers import build_cell_spec

from skforml.training._split import (
    MAX_VALIDATION_SHARE,
    ValidationBatches,
    balanced_validation_split,
)


def _strata(counts, rng):
    """Shuffled stratum id of every row, ``counts[s]`` rows of stratum s."""
    strata = np.repeat(np.arange(len(counts)), counts)
    return rng.permutation(strata)


def _spec(constraint, n_groups=2, n_classes=2):
    return build_cell_spec(
        constraint,
        group_names=[f"g{g}" for g in range(n_groups)],
        class_names=list(range(n_classes)),
        groups_are_classes=False,
        present=np.ones(n_groups * n_classes, dtype=bool),
    )


def _split(strata, spec, *, validation_size, min_group_samples=5, seed=0):
    return balanced_validation_split(
        strata,
        spec.cells(strata),
        spec.cell_names,
        validation_size=validation_size,
        min_group_samples=min_group_samples,
        rng=np.random.RandomState(seed),
    )


# ---------------------------------------------------- balanced_validation_split


def test_split_partitions_rows_and_is_sorted():
    rng = np.random.RandomState(0)
    strata = _strata([300, 100, 60, 20], rng)
    validation, train = _split(strata, _spec("equalized_odds"), validation_size=0.1)
    assert validation.dtype == np.int64
    assert np.all(np.diff(validation) > 0)
    assert np.all(np.diff(train) > 0)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([validation, train])), np.arange(len(strata))
    )
    assert len(validation) == 48


def test_split_takes_equal_counts_per_stratum_when_data_allow():
    rng = np.random.RandomState(0)
    strata = _strata([400, 200, 150, 100], rng)
    validation, _ = _split(strata, _spec("equalized_odds"), validation_size=80)
    per_stratum = np.bincount(strata[validation], minlength=4)
    np.testing.assert_array_equal(per_stratum, [20, 20, 20, 20])


def test_split_small_stratum_gives_at_most_half_and_others_share_the_rest():
    rng = np.random.RandomState(0)
    counts = np.array([500, 300, 200, 16])
    strata = _strata(counts, rng)
    validation, _ = _split(strata, _spec("equalized_odds"), validation_size=100)
    per_stratum = np.bincount(strata[validation], minlength=4)
    assert per_stratum.sum() == 100
    # The small stratum is capped at half of its rows ...
    assert per_stratum[3] == 8
    # ... and the others share the rest as evenly as integers allow.
    assert per_stratum[:3].max() - per_stratum[:3].min() <= 1


@pytest.mark.parametrize(
    "constraint",
    [
        "equalized_odds",
        "true_positive_rate_parity",
        "false_positive_rate_parity",
        "error_rate_parity",
    ],
)
@pytest.mark.parametrize("validation_size", [0.05, 0.3, 0.9, 500])
def test_split_never_takes_more_than_half_of_a_stratum(constraint, validation_size):
    rng = np.random.RandomState(1)
    counts = np.array([600, 150, 90, 24])
    strata = _strata(counts, rng)
    validation, train = _split(
        strata, _spec(constraint), validation_size=validation_size
    )
    per_stratum = np.bincount(strata[validation], minlength=4)
    assert np.all(per_stratum <= np.floor(counts * MAX_VALIDATION_SHARE))
    # Every cell the constraint compares has min_group_samples rows.
    cells = _spec(constraint).cells(strata)
    per_cell = np.bincount(cells[validation][cells[validation] >= 0])
    assert per_cell.min() >= 5
    # Every stratum keeps rows to train on.
    assert np.all(np.bincount(strata[train], minlength=4) >= counts / 2)


def test_split_tops_up_a_cell_to_min_group_samples():
    # validation_size=8 would give 2 rows per stratum; each cell needs 6.
    rng = np.random.RandomState(0)
    strata = _strata([100, 100, 100, 100], rng)
    validation, _ = _split(
        strata, _spec("equalized_odds"), validation_size=8, min_group_samples=6
    )
    np.testing.assert_array_equal(np.bincount(strata[validation]), [6, 6, 6, 6])


@pytest.mark.parametrize(
    "size",
    [
        np.float64(0.2),
        np.int64(90),
        np.float32(0.2),
    ],
    ids=["float64", "int64", "float32"],
)
def test_split_accepts_numpy_scalars_as_validation_size(size):
    rng = np.random.RandomState(0)
    strata = _strata([200, 100, 60, 90], rng)
    validation, _ = _split(strata, _spec("equalized_odds"), validation_size=size)
    # 0.2 of 450 rows, or 90 rows.
    assert len(validation) == 90


def test_split_is_seeded():
    rng = np.random.RandomState(0)
    strata = _strata([200, 100, 60, 30], rng)
    spec = _spec("equalized_odds")
    first, _ = _split(strata, spec, validation_size=0.2, seed=3)
    again, _ = _split(strata, spec, validation_size=0.2, seed=3)
    other, _ = _split(strata, spec, validation_size=0.2, seed=4)
    np.testing.assert_array_equal(first, again)
    assert len(other) == len(first)
    assert not np.array_equal(first, other)


def test_split_raises_for_a_too_small_group():
    rng = np.random.RandomState(0)
    # Stratum (g1, 1) has 8 rows: at most 4 can be held out, 5 are needed.
    strata = _strata([200, 100, 60, 8], rng)
    with pytest.raises(ValueError, match="min_group_samples=5") as info:
        _split(strata, _spec("equalized_odds"), validation_size=0.1)
    message = str(info.value)
    assert "'g1'" in message
    assert "label 1" in message
    assert "only 8 rows" in message


def test_split_small_stratum_in_a_pooled_cell_does_not_raise():
    # Error-rate parity pools g1's 3 negatives with its 40 positives.
    rng = np.random.RandomState(0)
    strata = _strata([200, 100, 3, 40], rng)
    validation, _ = _split(strata, _spec("error_rate_parity"), validation_size=0.1)
    assert np.bincount(strata[validation], minlength=4)[2] <= 1


# ----------------------------------------------------------- ValidationBatches


def _validation_cells(constraint, counts, n_groups, n_classes, seed=0):
    """Cells of the validation rows of an imbalanced data set."""
    rng = np.random.RandomState(seed)
    strata = _strata(counts, rng)
    spec = _spec(constraint, n_groups, n_classes)
    validation, _ = _split(strata, spec, validation_size=0.1, min_group_samples=4)
    return spec, torch.as_tensor(spec.cells(strata)[validation])


@pytest.mark.parametrize(
    "constraint, n_groups, n_classes, counts",
    [
        ("equalized_odds", 2, 2, [900, 300, 60, 12]),
        ("true_positive_rate_parity", 3, 2, [600, 200, 150, 50, 40, 10]),
        ("false_positive_rate_parity", 2, 2, [500, 500, 9, 200]),
        ("error_rate_parity", 3, 2, [800, 100, 30, 30, 8, 8]),
        ("equalized_odds", 2, 3, [400, 200, 100, 50, 20, 10]),
    ],
)
@pytest.mark.parametrize("batch_size", [1, 16, 64, 10_000])
def test_every_validation_batch_holds_min_group_samples_of_every_cell(
    constraint, n_groups, n_classes, counts, batch_size
):
    min_group_samples = 4
    spec, cells = _validation_cells(constraint, counts, n_groups, n_classes)
    batches = ValidationBatches(
        cells, batch_size, min_group_samples, torch.Generator().manual_seed(0)
    )
    n_rows = len(cells)
    seen = torch.zeros(n_rows, dtype=torch.bool)
    for _ in range(200):
        index = batches.next_index()
        assert index.dtype == torch.int64
        assert index.min() >= 0 and index.max() < n_rows
        per_cell = torch.bincount(cells[index][cells[index] >= 0], minlength=0)
        assert len(per_cell) == spec.n_cells
        assert per_cell.min() >= min_group_samples
        expected_size = min(
            max(batch_size, spec.n_cells * min_group_samples),
            max(n_rows, spec.n_cells * min_group_samples),
        )
        assert len(index) == expected_size
        seen[index] = True
    # Over many batches every validation row of a compared cell is used (rows
    # the constraint ignores only fill batches larger than the cells' share).
    assert seen[cells >= 0].all()
    if batch_size >= n_rows:
        assert seen.all()


def test_validation_batches_are_seeded():
    _, cells = _validation_cells("equalized_odds", [900, 300, 60, 12], 2, 2)

    def draws(seed):
        batches = ValidationBatches(cells, 16, 4, torch.Generator().manual_seed(seed))
        return [batches.next_index() for _ in range(5)]

    for a, b in zip(draws(7), draws(7)):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(draws(7), draws(8)))


def test_validation_batches_cycle_each_cell_without_repeats():
    # A cell's rows are taken from a permutation: no row of a cell repeats
    # before every row of that cell has been used.
    cells = torch.tensor([0] * 12 + [1] * 4)
    batches = ValidationBatches(cells, 4, 2, torch.Generator().manual_seed(0))
    taken = [batches.next_index()[:2] for _ in range(6)]  # cell 0 part
    first_cycle = torch.cat(taken)
    assert sorted(first_cycle.tolist()) == list(range(12))
