"""Whole-batch data access for the training loop.

skorch's default loading fetches rows one by one through
``Dataset.__getitem__`` and collates them, which dominates an epoch of a small
network. These classes index whole batches at once and carry the training
rows' ids, which the weight store needs.
"""

import torch
from torch.utils.data import Dataset


class RowDataset(Dataset):
    """Tensors ``X`` and ``y`` of rows; ``y`` may be None (prediction)."""

    def __init__(self, X, y=None):
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], (self.y[index] if self.y is not None else 0)


class BatchIterator:
    """Batches ``(X[rows], y[rows], rows)`` of a :class:`RowDataset`.

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

    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0):
        self.dataset = dataset
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
        X, y = self.dataset.X, self.dataset.y
        for start in range(0, n_rows, self.batch_size):
            rows = order[start : start + self.batch_size]
            if not self.shuffle:
                # Contiguous slices are views: no copy at prediction time.
                rows = slice(start, start + self.batch_size)
            yield X[rows], (y[rows] if y is not None else None), rows
