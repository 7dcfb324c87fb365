"""The group-balanced validation split and validation batches.

FORML measures fairness on held-out rows. The split takes equal numbers of
rows from every (group, label) stratum where the data allow, so that a small
group weighs as much in the meta-loss as a large one, and every validation
batch holds at least ``min_group_samples`` rows of each cell the constraint
compares.
"""

import warnings
from numbers import Integral

import numpy as np
import torch

# Validation batches drawn at once by ValidationBatches.
BLOCK = 32
# A stratum never gives more than this share of its rows to validation, so
# that every group keeps rows to train on.
MAX_VALIDATION_SHARE = 0.5


def _water_fill(capacity, total):
    """Split ``total`` as evenly as ``capacity`` allows (largest equal share)."""
    allocation = np.zeros_like(capacity)
    remaining = total
    order = np.argsort(capacity, kind="stable")
    for position, stratum in enumerate(order):
        share = remaining // (len(order) - position)
        allocation[stratum] = min(capacity[stratum], share)
        remaining -= allocation[stratum]
    return allocation


# Rows of every compared cell in every validation batch, when the data allow
# (the paper uses 3 to 20).
MIN_GROUP_SAMPLES = 5


class SmallGroupWarning(UserWarning):
    """A compared cell is too small for the default ``min_group_samples``.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, SmallGroupWarning
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> group = np.zeros(200, dtype=int)
    >>> group[np.flatnonzero(y == 1)[:6]] = 1  # 6 positives in group 1
    >>> group[np.flatnonzero(y == 0)[:6]] = 1  # and 6 negatives
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     clf = FORMLClassifier(max_epochs=1, random_state=0).fit(
    ...         X, y, sensitive_features=group)
    >>> any(issubclass(w.category, SmallGroupWarning) for w in caught)
    True

    """


def _cell_label(cell_names, cell):
    group, label = cell_names[cell]
    return f"group {group!r}" + ("" if label is None else f" with label {label!r}")


def resolve_min_group_samples(
    min_group_samples, cells, spec, groups_are_classes, *, split=True
):
    """The number of rows of every cell per validation batch.

    ``"auto"`` is :data:`MIN_GROUP_SAMPLES`, lowered (with a
    :class:`SmallGroupWarning`) to what the smallest compared cell can give:
    half its rows when the split is carved out of the training data, all of
    them for a caller's validation set; never below 1.
    """
    if min_group_samples != "auto":
        return min_group_samples
    counts = np.bincount(cells[cells >= 0], minlength=spec.n_cells)
    available = np.floor(counts * (MAX_VALIDATION_SHARE if split else 1.0))
    smallest = int(np.argmin(available))
    if available[smallest] < 1:
        return 1  # the split or the check of the caller's set says what is missing
    value = int(min(MIN_GROUP_SAMPLES, available[smallest]))
    if value < MIN_GROUP_SAMPLES:
        source = "y" if groups_are_classes else "sensitive_features and y"
        warnings.warn(
            f"{source} give {_cell_label(spec.cell_names, smallest)} only "
            f"{counts[smallest]} rows, so every validation batch holds "
            f"{value} of them instead of {MIN_GROUP_SAMPLES} "
            "(min_group_samples='auto'): its fairness estimates are noisy. "
            "Merge small groups or provide more data.",
            SmallGroupWarning,
            stacklevel=4,
        )
    return value


def balanced_validation_split(
    strata,
    cells,
    cell_names,
    *,
    validation_size,
    min_group_samples,
    rng,
    groups_are_classes=False,
):
    """Carve a group-balanced validation set out of the training rows.

    Parameters
    ----------
    strata : ndarray of int of shape (n_samples,)
        ``group * n_classes + label`` of each row.
    cells : ndarray of int of shape (n_samples,)
        Cell of each row under the constraint, ``-1`` when ignored.
    cell_names : list of tuple
        ``(group, label)`` of each cell, for the error message.
    validation_size : float or int
        Share (float in (0, 1)) or number (int) of rows to hold out.
    min_group_samples : int
        Rows of every cell that each validation batch must hold; every cell
        therefore needs at least that many validation rows.
    rng : numpy.random.RandomState
        Source of randomness.
    groups_are_classes : bool, default=False
        Whether the groups are the classes (errors then name ``y`` only).

    Returns
    -------
    validation_index, train_index : ndarray of int
        Sorted row indices.

    """
    n_samples = len(strata)
    if isinstance(validation_size, Integral):
        n_validation = int(validation_size)
    else:
        n_validation = int(round(float(validation_size) * n_samples))
    stratum_ids, stratum_of_row, counts = np.unique(
        strata, return_inverse=True, return_counts=True
    )
    capacity = np.floor(counts * MAX_VALIDATION_SHARE).astype(int)
    allocation = _water_fill(capacity, n_validation)

    # Every cell the constraint compares must reach min_group_samples rows.
    cell_of_stratum = np.full(len(stratum_ids), -1)
    cell_of_stratum[stratum_of_row] = cells
    for cell in np.unique(cells[cells >= 0]):
        members = np.flatnonzero(cell_of_stratum == cell)
        short = min_group_samples - allocation[members].sum()
        if short <= 0:
            continue
        spare = capacity[members] - allocation[members]
        if spare.sum() < short:
            source = (
                "y gives" if groups_are_classes else "sensitive_features and y give"
            )
            raise ValueError(
                f"The balanced validation split needs at least "
                f"min_group_samples={min_group_samples} validation rows of "
                f"{_cell_label(cell_names, cell)}, and takes at most "
                f"{MAX_VALIDATION_SHARE:.0%} of its rows, but {source} it only "
                f"{counts[members].sum()} rows. Lower min_group_samples, merge "
                "small groups, or provide more data."
            )
        allocation[members] += _water_fill(spare, short)

    validation = []
    for stratum, take in enumerate(allocation):
        rows = np.flatnonzero(stratum_of_row == stratum)
        validation.append(rng.choice(rows, size=take, replace=False))
    validation_index = np.sort(np.concatenate(validation)).astype(np.int64)
    train_mask = np.ones(n_samples, dtype=bool)
    train_mask[validation_index] = False
    return validation_index, np.flatnonzero(train_mask)


def split_monitor_rows(cells, min_group_samples, share, rng):
    """Which validation rows monitor the fit rather than feed the meta step.

    FORML lowers the meta-loss of the rows it meta-steps on, so their
    disparity is biased low (on the biased synthetic data: .007 on them
    against .18 on test); the validation metrics, the tolerance and the
    epoch selection therefore read rows the meta step never sees. Each cell
    gives ``share`` of its rows to monitoring, keeping ``min_group_samples``
    for the meta step.
    """
    monitor = np.zeros(len(cells), dtype=bool)
    for cell in np.unique(cells):
        rows = np.flatnonzero(cells == cell)
        keep = min_group_samples if cell >= 0 else 0
        take = min(int(round(share * len(rows))), max(len(rows) - keep, 0))
        monitor[rng.choice(rows, size=take, replace=False)] = True
    return monitor


def check_validation_cells(cells, spec, min_group_samples):
    """Check that a caller's validation set holds every compared cell.

    Raises a ValueError naming ``validation_set`` when a cell the constraint
    compares has fewer than ``min_group_samples`` rows.
    """
    counts = np.bincount(cells[cells >= 0], minlength=spec.n_cells)
    for cell in np.flatnonzero(counts < min_group_samples):
        raise ValueError(
            f"validation_set holds {counts[cell]} rows of "
            f"{_cell_label(spec.cell_names, cell)}, fewer than "
            f"min_group_samples={min_group_samples}, which every validation "
            "batch needs."
        )


class ValidationBatches:
    """Endless validation batches holding every compared cell.

    Each batch takes ``min_group_samples`` rows of every cell (cycling through
    a fresh permutation of the cell's rows) and fills the rest of the batch
    with rows drawn from a permutation of the whole validation set.

    Parameters
    ----------
    cells : torch.Tensor of int64 of shape (n_validation,)
        Cell of each validation row, ``-1`` when ignored.
    batch_size : int
        Requested batch size; raised to ``n_cells * min_group_samples`` when
        that is larger, so that the guarantee always holds.
    min_group_samples : int
        Rows of every cell in every batch.
    generator : torch.Generator
        Source of randomness (on the CPU).

    """

    def __init__(self, cells, batch_size, min_group_samples, generator):
        self.generator = generator
        self.min_group_samples = min_group_samples
        self.members = [
            torch.nonzero(cells == cell).flatten()
            for cell in range(int(cells.max()) + 1)
        ]
        self.n_rows = len(cells)
        self.batch_size = max(batch_size, len(self.members) * min_group_samples)
        self.n_fill = min(self.batch_size, self.n_rows) - len(self.members) * (
            min_group_samples
        )
        self._queues = [torch.empty(0, dtype=torch.int64) for _ in self.members]
        self._fill_queue = torch.empty(0, dtype=torch.int64)
        self._block = torch.empty(0, 0, dtype=torch.int64)
        self._next = 0

    def _take(self, queue, pool, n):
        """Take ``n`` rows from a queue, refilled from shuffles of ``pool``."""
        while len(queue) < n:
            order = torch.randperm(len(pool), generator=self.generator)
            queue = torch.cat([queue, pool[order]])
        return queue[:n], queue[n:]

    def next_index(self):
        """Index of the validation rows of the next batch."""
        if self._next == len(self._block):
            self._draw_block()
        self._next += 1
        return self._block[self._next - 1]

    def _draw_block(self):
        # BLOCK batches at a time: one shuffle bookkeeping per block, not per
        # batch (it is on the hot path of every training step).
        parts = []
        for cell, pool in enumerate(self.members):
            taken, self._queues[cell] = self._take(
                self._queues[cell], pool, BLOCK * self.min_group_samples
            )
            parts.append(taken.view(BLOCK, -1))
        if self.n_fill > 0:
            taken, self._fill_queue = self._take(
                self._fill_queue, torch.arange(self.n_rows), BLOCK * self.n_fill
            )
            parts.append(taken.view(BLOCK, -1))
        self._block = torch.cat(parts, dim=1)
        self._next = 0
