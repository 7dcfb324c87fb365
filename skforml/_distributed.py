"""Data-parallel fits: the processes of a ``torchrun`` launch, and their collectives.

A fitting script runs unchanged under ``torchrun --nproc_per_node=N``: ``fit``
finds the process group (initialised by the script, or from torchrun's
environment) and every rank trains on its shard of each global batch of
``batch_size * N`` rows. The weights are replicated: every rank knows the
rows of each global batch and gathers the directional derivatives of all
of them, so each rank applies the same update of the global batch
(its softmax normaliser, centring and RMS scale) and the weight vectors stay
equal without being sent. The parameter gradients (the lookahead's, the
validation loss's and the final weighted loss's) are all-reduced, so every
rank's optimizer takes the same step. A weighting that does not learn from
the meta step trains through DistributedDataParallel.

:class:`SingleProcess` is the one-process case, whose collectives do
nothing: the training step has one code path.
"""

import contextlib
import multiprocessing
import os
import threading
import zlib

import numpy as np
import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.nn.parallel import DistributedDataParallel

# torchrun's environment: a process launched by it finds its rank here.
_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def shard_bounds(n_rows, world_size, rank):
    """``(start, stop)`` of ``rank``'s rows in a global batch of ``n_rows``.

    The first ``n_rows % world_size`` ranks take one row more, as
    :func:`numpy.array_split` does.
    """
    base, extra = divmod(n_rows, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_sizes(n_rows, world_size):
    """Rows of every rank in a global batch of ``n_rows`` (see :func:`shard_bounds`)."""
    base, extra = divmod(n_rows, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


class SingleProcess:
    """A fit on one process: every collective is the identity."""

    rank = 0
    world_size = 1
    distributed = False

    def sum(self, tensors):
        """``tensors`` summed over the ranks (here: as they are)."""
        return list(tensors)

    def gather(self, tensor, sizes):
        """The ranks' rows of ``tensor`` concatenated in rank order."""
        return tensor

    def global_batch(self, rows):
        """The global batch of this rank's ``rows``: ``(rows, shard, sizes)``.

        ``rows`` of every rank in rank order, this rank's slice of them and
        every rank's number of rows.
        """
        return rows, slice(None), [len(rows)]

    def sum_gradients(self, module, loss, gradients=True):
        """Sum the parameters' ``.grad`` and ``loss`` over the ranks; return it.

        ``gradients=False`` sums only the loss (DistributedDataParallel has
        reduced the gradients in the backward pass).
        """
        return loss

    def data_parallel_module(self, module):
        """``module`` wrapped to reduce its gradients in backward (here: itself)."""
        return module

    def shard(self, n_rows):
        """The slice of this rank in a global batch of ``n_rows``."""
        return slice(None)

    def broadcast_module(self, module):
        """Rank 0's parameters and buffers on every rank (here: nothing to do)."""

    def agree(self, what, value):
        """Raise unless every rank holds the same ``value`` of ``what``."""

    def fail(self, what, error):
        """Tell the other ranks, waiting in :meth:`agree`, that this one failed."""

    def common(self, value):
        """Rank 0's ``value``, on every rank (a picklable object)."""
        return value


class _Failure:
    """What a rank sends to :meth:`ProcessGroup.agree` instead of its value."""

    def __init__(self, message):
        self.message = message


class ProcessGroup(SingleProcess):
    """The ranks of an initialised :mod:`torch.distributed` process group.

    Collectives run on the default group. Tensors travel on the fit's device
    (gloo takes CPU tensors, nccl CUDA ones: :func:`data_parallel` checks
    the pair).
    """

    distributed = True

    def __init__(self):
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def sum(self, tensors):
        # One all-reduce of one flat buffer, not one per parameter: the
        # latency of a collective, not its bytes, dominates small networks.
        tensors = list(tensors)
        flat = _flatten_dense_tensors([t.detach() for t in tensors])
        dist.all_reduce(flat)
        return list(_unflatten_dense_tensors(flat, tensors))

    def gather(self, tensor, sizes):
        """The ranks' rows concatenated; gradients flow to this rank's rows only.

        Every rank computes the same function of the gathered rows, so each
        holds the exact gradient of its own rows and the other ranks' rows
        are constants here. The rows travel in an all-reduce of a zero
        buffer (adding zeros is exact): on gloo it is several times faster
        than an all-gather of small tensors.
        """
        start = sum(sizes[: self.rank])
        stop = start + len(tensor)
        full = tensor.detach().new_zeros((sum(sizes), *tensor.shape[1:]))
        full[start:stop] = tensor.detach()
        dist.all_reduce(full)
        if tensor.requires_grad:
            full = torch.cat([full[:start], tensor, full[stop:]])
        return full

    def global_batch(self, rows):
        # The batch iterators hand every rank the rows of the whole global
        # batch with its own shard of the inputs (see training._data).
        shard = self.shard(len(rows))
        return rows, shard, shard_sizes(len(rows), self.world_size)

    def sum_gradients(self, module, loss, gradients=True):
        if not gradients:
            (loss,) = self.sum([loss.detach().reshape(1)])
            return loss.reshape(())
        # Every trainable parameter takes part, a missing .grad as zeros, so
        # that all ranks reduce buffers of one layout.
        params = [p for p in module.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        *grads, loss = self.sum([*grads, loss.detach().reshape(1).to(grads[0])])
        for param, grad in zip(params, grads):
            param.grad = grad
        return loss.reshape(())

    def shard(self, n_rows):
        return slice(*shard_bounds(n_rows, self.world_size, self.rank))

    def data_parallel_module(self, module):
        # Where the gradient is the module's own backward (a fixed weighting),
        # DistributedDataParallel reduces it, overlapping its buckets with the
        # backward pass. It averages over the ranks: the caller scales the
        # loss by the world size to get the global batch's weighted sum.
        device = next(module.parameters()).device
        return DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None
        )

    def broadcast_module(self, module):
        # Equal seeds give equal parameters, but a module instance built by
        # the caller's script without a seed differs from rank to rank.
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def agree(self, what, value):
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        for rank, other in enumerate(values):
            if isinstance(other, _Failure):
                raise ValueError(
                    f"Rank {rank} of the distributed fit stopped on {what}: "
                    f"{other.message}"
                )
        for rank, other in enumerate(values):
            if other != values[0]:
                raise ValueError(
                    f"The ranks of the distributed fit disagree on {what}: rank 0 "
                    f"has {values[0]}, rank {rank} has {other}. Every rank must "
                    "call fit with the same X, y, sensitive_features and "
                    "random_state: each trains on its shard of every batch."
                )

    def fail(self, what, error):
        """Tell the other ranks, waiting in :meth:`agree`, that this one failed."""
        # This rank raises its own error, not the news of it.
        with contextlib.suppress(ValueError):
            self.agree(what, _Failure(f"{type(error).__name__}: {error}"))

    def common(self, value):
        values = [value]
        dist.broadcast_object_list(values, src=0)
        return values[0]


def _launched_by_torchrun():
    return all(variable in os.environ for variable in _TORCHRUN_VARIABLES) and (
        int(os.environ["WORLD_SIZE"]) > 1
    )


# Names of the worker processes of joblib (loky) and multiprocessing pools.
_POOL_WORKERS = ("LokyProcess", "PoolWorker")


def _check_not_nested(world_size):
    process = multiprocessing.current_process()
    thread = threading.current_thread()
    where = None
    # A rank is a launched process (torchrun's, or torch.multiprocessing's
    # spawn); a pool's workers are daemons or carry the pool's name.
    if process.daemon or any(name in process.name for name in _POOL_WORKERS):
        where = f"the worker process {process.name!r}"
    elif thread is not threading.main_thread():
        where = f"the worker thread {thread.name!r}"
    if where is not None:
        raise RuntimeError(
            f"fit runs data-parallel on {world_size} processes (torch.distributed), "
            f"but was called from {where}: n_jobs-style parallelism (joblib, "
            "GridSearchCV(n_jobs=...), cross_validate(n_jobs=...)) nested inside "
            "a distributed fit would run its collectives out of step across "
            "ranks and hang. Use n_jobs=1 under torchrun: every rank already "
            "trains on its share of every batch."
        )


def data_parallel(device):
    """The processes of this fit, and the device of this rank.

    A process group initialised by the caller is used as it is; under
    ``torchrun`` (its ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` set, more than one process) one is initialised on nccl
    for a CUDA device and gloo otherwise. ``device="cuda"`` without an index
    becomes this rank's GPU (``LOCAL_RANK``). Anything else is one process.
    """
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised and not _launched_by_torchrun():
        return SingleProcess(), device
    world_size = dist.get_world_size() if initialised else int(os.environ["WORLD_SIZE"])
    if world_size == 1:
        return SingleProcess(), device
    _check_not_nested(world_size)
    if device.type == "cuda" and device.index is None:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if not initialised:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, init_method="env://")
    _check_backend(dist.get_backend(), device)
    return ProcessGroup(), device


# Backends and the device types whose tensors their collectives take.
_BACKEND_DEVICES = {"gloo": {"cpu", "cuda"}, "nccl": {"cuda"}, "mpi": {"cpu"}}


def _check_backend(backend, device):
    devices = _BACKEND_DEVICES.get(str(backend))
    if devices is not None and device.type not in devices:
        usable = sorted(
            name for name, types in _BACKEND_DEVICES.items() if device.type in types
        )
        raise ValueError(
            f"The process group runs on the {backend!r} backend, whose collectives "
            f"cannot take tensors on device={str(device)!r}. Initialise it with "
            f"torch.distributed.init_process_group({usable[0]!r}) for this device "
            f"(usable: {usable}), or fit on a device the backend serves "
            f"({sorted(devices)})."
        )


def fingerprint(array):
    """A checksum of an array's values, shape and dtype (to compare ranks' data)."""
    array = np.ascontiguousarray(array)
    return (array.shape, str(array.dtype), zlib.crc32(array.view(np.uint8).ravel()))


def data_fingerprint(data):
    """What the ranks of a data-parallel fit must agree on, from its ``FitData``."""
    X = data.X
    inputs = fingerprint(X) if isinstance(X, np.ndarray) else (len(X), data.item_shape)
    weights = None if data.sample_weight is None else fingerprint(data.sample_weight)
    return {
        "rows": len(data.y),
        "X": inputs,
        "y": fingerprint(data.y),
        "sensitive_features": fingerprint(data.groups),
        "sample_weight": weights,
    }
