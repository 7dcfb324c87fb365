"""Whole-batch data access for the training loop.

skorch's default loading fetches rows one by one through
``Dataset.__getitem__`` and collates them, which dominates an epoch of a small
network. These classes index whole batches at once and carry the training
rows' ids, which the weight store needs.
"""

import torch
from torch.utils.data import Dataset


class RowDataset(Dataset):
    """Rows ``index`` of tensors ``X`` and ``y`` (``y`` None at prediction).

    ``index`` (default: every row) selects the rows without copying ``X``:
    position ``i`` of the dataset is row ``index[i]`` of ``X``.
    """

    def __init__(self, X, y=None, index=None):
        self.X = X
        self.y = y
        self.index = index

    def __len__(self):
        return len(self.X) if self.index is None else len(self.index)

    def batch(self, positions):
        """``X`` and ``y`` (or None) of the rows at ``positions``."""
        rows = positions if self.index is None else self.index[positions]
        return self.X[rows], (self.y[rows] if self.y is not None else None)

    def __getitem__(self, position):
        X, y = self.batch(position)
        return X, (y if y is not None else 0)


class BatchIterator:
    """Batches ``(X[rows], y[rows], rows)`` of a :class:`RowDataset`.

    Training batches carry the positions of their rows (the weighting needs
    them); validation and prediction batches are skorch's ``(X, y)``.

    Parameters
    ----------
    dataset : RowDataset
        The rows.
    batch_size : int
        Rows per batch (the last batch may be smaller).
    shuffle : bool, default=False
        Draw a new order of the rows for every pass.
    seed : int, default=0
        Seed of the shuffling generator (the order is reproducible).
    with_rows : bool, default=True
        Yield ``(X, y, rows)``; False yields ``(X, y)``.

    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, with_rows=True):
        self.dataset = dataset
        self.with_rows = with_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        n_rows = len(self.dataset)
        if self.shuffle:
            order = torch.randperm(n_rows, generator=self.generator)
        else:
            order = torch.arange(n_rows)
        for start in range(0, n_rows, self.batch_size):
            positions = order[start : start + self.batch_size]
            if not self.shuffle and self.dataset.index is None:
                # Contiguous slices are views: no copy at prediction time.
                X, y = self.dataset.batch(slice(start, start + self.batch_size))
            else:
                X, y = self.dataset.batch(positions)
            yield (X, y, positions) if self.with_rows else (X, y)
