"""Data access of the training loop: arrays and torch Datasets.

skorch's default loading fetches rows one by one through
``Dataset.__getitem__`` and collates them, which dominates an epoch of a small
network. For arrays, :class:`RowDataset` and :class:`BatchIterator` index
whole batches at once. A caller's :class:`torch.utils.data.Dataset` (data
that need not fit in memory) goes through a ``DataLoader`` instead
(:class:`DatasetRows`, :func:`batch_loader`). Either way every training
batch carries its rows' ids, which the weighting needs.
"""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from .._distributed import shard_bounds


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
    rank, world_size : int, default=0, 1
        In a data-parallel fit, a global batch holds ``batch_size *
        world_size`` rows of one order shared by all ranks, and this
        iterator yields ``rank``'s shard of each (see :func:`sharded_batches`).

    """

    def __init__(
        self,
        dataset,
        batch_size,
        shuffle=False,
        seed=0,
        with_rows=True,
        rank=0,
        world_size=1,
    ):
        self.dataset = dataset
        self.with_rows = with_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(int(seed))
        self.rank = rank
        self.world_size = world_size

    def __len__(self):
        return n_global_batches(
            len(self.dataset), self.batch_size, self.world_size, self.with_rows
        )

    def __iter__(self):
        n_rows = len(self.dataset)
        order = row_order(n_rows, self.shuffle, self.generator)
        batches = sharded_batches(
            order, self.batch_size, self.rank, self.world_size, self.with_rows
        )
        for start, positions, rows in batches:
            if not self.shuffle and self.dataset.index is None:
                # Contiguous slices are views: no copy at prediction time.
                X, y = self.dataset.batch(slice(start, start + len(positions)))
            else:
                X, y = self.dataset.batch(positions)
            if self.with_rows:
                yield X, y, rows
            elif self.world_size > 1:
                # A sharded validation pass: this rank's inputs, the labels
                # of the whole batch (the predictions are gathered).
                yield X, self.dataset.batch(rows)[1]
            else:
                yield X, y


def row_order(n_rows, shuffle, generator):
    """The order of one pass: a new ``randperm`` of ``generator``, or 0..n-1."""
    if shuffle:
        return torch.randperm(n_rows, generator=generator)
    return torch.arange(n_rows)


def n_global_batches(n_rows, batch_size, world_size=1, skip_short=True):
    """Steps of one pass over ``n_rows`` (see :func:`sharded_batches`)."""
    n_batches = -(-n_rows // (batch_size * world_size))
    tail = n_rows - (n_batches - 1) * batch_size * world_size
    return n_batches - (skip_short and world_size > 1 and 0 < tail < world_size)


def sharded_batches(order, batch_size, rank=0, world_size=1, skip_short=True):
    """``(start, positions, rows)`` of ``rank``'s shard of each global batch.

    Global batches take ``batch_size * world_size`` rows of ``order`` in
    turn (the batches of one process with that batch size) and rank ``r``
    takes the ``r``-th of their near-equal shards: ``positions`` from
    ``start`` in ``order``. ``rows`` are the positions of the whole global
    batch, which every rank needs for the weights, without asking the other
    ranks. A last global batch with fewer rows than ranks would leave a
    rank without rows: in training it is skipped (at most ``world_size - 1``
    rows of a pass); with ``skip_short=False`` (a validation pass, which
    must see every row) such a rank gets an empty shard.
    """
    step = batch_size * world_size
    n_batches = n_global_batches(len(order), batch_size, world_size, skip_short)
    for index in range(n_batches):
        start = index * step
        rows = order[start : start + step]
        first, stop = shard_bounds(len(rows), world_size, rank)
        yield start + first, rows[first:stop], rows


# ------------------------------------------------------------ torch Datasets


def is_torch_dataset(X):
    """Whether ``X`` is a caller's :class:`torch.utils.data.Dataset`.

    skforml's own :class:`RowDataset` is an array in disguise, not a caller's
    dataset.
    """
    return isinstance(X, Dataset) and not isinstance(X, RowDataset)


def item_input(item):
    """The input ``x`` of a dataset item ``x`` or ``(x, y, ...)``, as a tensor.

    Floating inputs become float32, the dtype of the network's parameters;
    other dtypes (``uint8`` images ...) are left to the module.
    """
    x = item[0] if isinstance(item, (tuple, list)) else item
    x = torch.as_tensor(x)
    if x.is_floating_point() and x.dtype != torch.float32:
        x = x.float()
    return x


class DatasetRows(Dataset):
    """Items ``(x, y, position)`` of a caller's torch Dataset.

    Position ``i`` is item ``index[i]`` of ``dataset`` (default: every item);
    ``y`` holds the encoded labels of all items (None at prediction: 0).
    The position travels with the item so that the weighting can find the
    row's weight in a batch that a ``DataLoader`` assembled.
    """

    def __init__(self, dataset, y=None, index=None):
        self.dataset = dataset
        self.y = y
        self.index = index

    def __len__(self):
        return len(self.dataset) if self.index is None else len(self.index)

    def __getitem__(self, position):
        row = position if self.index is None else int(self.index[position])
        y = self.y[row] if self.y is not None else 0
        return item_input(self.dataset[row]), y, position

    def __getitems__(self, positions):
        # A DataLoader's fetch of a whole batch: a rank's shard brings the
        # global batch's rows along to the collate function.
        items = _Items(self[position] for position in positions)
        items.rows = getattr(positions, "rows", None)
        return items


class _Items(list):
    """A batch's items, and the global batch's rows (None on one process)."""


class _Collate:
    """``default_collate``; drops the positions for validation and prediction."""

    def __init__(self, with_rows):
        self.with_rows = with_rows

    def __call__(self, items):
        batch = default_collate(items)
        rows = getattr(items, "rows", None)
        if rows is not None:
            batch = [*batch[:2], rows]
        return batch if self.with_rows else batch[:2]


def batch_loader(
    dataset,
    batch_size,
    shuffle=False,
    seed=0,
    with_rows=True,
    num_workers=0,
    pin_memory=False,
    rank=0,
    world_size=1,
):
    """The batches of ``dataset``: skorch's ``iterator_train``/``iterator_valid``.

    Arrays (a :class:`RowDataset`) go through :class:`BatchIterator`, which
    indexes whole batches in the main process; a caller's dataset
    (:class:`DatasetRows`) goes through a :class:`~torch.utils.data.DataLoader`
    with ``num_workers`` worker processes (kept alive across epochs) and, for
    a CUDA device, pinned memory, so that batches reach the device with
    ``non_blocking`` copies. Shuffling is seeded by ``seed`` either way. In
    a data-parallel fit each rank loads only its shard of every global batch
    (``rank``, ``world_size``: see :func:`sharded_batches`).
    """
    if isinstance(dataset, RowDataset):
        return BatchIterator(
            dataset, batch_size, shuffle, seed, with_rows, rank, world_size
        )
    # The order is BatchIterator's (randperm of a generator seeded once), so
    # a Dataset trains like the array of its items; the workers' seeds come
    # from a second generator, not from torch's global one (dropout's).
    order = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_sampler=_ShardedBatchSampler(
            len(dataset), batch_size, shuffle, order, rank, world_size
        ),
        generator=torch.Generator().manual_seed(int(seed) + 1),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        collate_fn=_Collate(with_rows),
    )


class _ShardedBatchSampler(Sampler):
    """The item positions of a rank's shards, in :class:`BatchIterator`'s order.

    Only the positions travel to the ``DataLoader``'s workers: each rank
    reads only the items of its shards, one batch at a time.
    """

    def __init__(self, n_rows, batch_size, shuffle, generator, rank, world_size):
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.rank = rank
        self.world_size = world_size

    def __len__(self):
        return n_global_batches(self.n_rows, self.batch_size, self.world_size)

    def __iter__(self):
        order = row_order(self.n_rows, self.shuffle, self.generator)
        for _, positions, rows in sharded_batches(
            order, self.batch_size, self.rank, self.world_size
        ):
            if self.world_size == 1:
                yield positions.tolist()
            else:
                yield _ShardPositions(positions.tolist(), rows)


class _ShardPositions(list):
    """A rank's item positions, carrying the global batch's ``rows``."""

    def __init__(self, positions, rows):
        super().__init__(positions)
        self.rows = rows


def dataset_targets(dataset, num_workers=0):
    """The labels of every item of ``dataset``, read once.

    ``dataset.targets`` (torchvision's convention) when it exists, else the
    ``y`` of every item ``(x, y)``, read in one pass (which loads every
    item: pass ``y`` to ``fit`` to avoid it).
    """
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(targets)
    loader = DataLoader(_Targets(dataset), batch_size=256, num_workers=num_workers)
    return np.concatenate([np.asarray(batch) for batch in loader])


class _Targets(Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, row):
        item = self.dataset[row]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                "y is None, so the labels are read from the dataset, but its "
                f"items are not (x, y) pairs (item {row} is a "
                f"{type(item).__name__}); pass y to fit."
            )
        return item[1]


def take_rows(X, index, item_shape=None):
    """Rows ``index`` of an array, or items ``index`` of a Dataset stacked.

    A Dataset's items are materialised (the validation rows are few); an
    empty ``index`` gives an empty float32 array of rows of ``item_shape``.
    """
    if not is_torch_dataset(X):
        return X[index]
    if len(index) == 0:
        return np.zeros((0, *item_shape), dtype=np.float32)
    return torch.stack([item_input(X[int(row)]) for row in index]).numpy()


def check_dataset(estimator, dataset, *, reset, name="X"):
    """The shape of a Dataset's inputs; sets or checks ``input_shape_``.

    Only the first item is read: a Dataset may be larger than memory, so its
    values are not scanned (finiteness is the caller's business).
    ``n_features_in_`` is the first axis of an item, as ``X.shape[1]`` is
    for an array.
    """
    if len(dataset) == 0:
        raise ValueError(f"{name} is an empty Dataset; it needs at least one item.")
    shape = tuple(item_input(dataset[0]).shape)
    if len(shape) != 1 and getattr(estimator, "module", None) is None:
        raise ValueError(
            f"{name} holds items of shape {shape}, but the built-in MLP "
            "(module=None) takes 1-D items of n_features values. Pass a module "
            "(e.g. skforml.SmallCNN) to fit images or sequences."
        )
    if reset:
        estimator.n_features_in_ = shape[0] if shape else 1
        estimator.input_shape_ = shape
        estimator.__dict__.pop("feature_names_in_", None)
    elif shape != tuple(estimator.input_shape_):
        raise ValueError(
            f"{name} holds items of shape {shape}, but "
            f"{type(estimator).__name__} was fitted on rows of shape "
            f"{tuple(estimator.input_shape_)}."
        )
    return shape
