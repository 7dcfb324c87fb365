"""Data-parallel fits on torch.distributed (gloo, CPU), spawned inside pytest.

One pair of processes runs every multi-process check in turn (starting
processes costs seconds each); a hang fails the test at ``TIMEOUT`` instead
of blocking CI. Each rank sets torchrun's environment variables, so ``fit``
initialises the process group itself, as under ``torchrun``.
"""

import multiprocessing
import os
import pickle
import queue
import socket
import threading
import time
import traceback

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from skforml import FORMLClassifier, ReweightedClassifier, SmallCNN
from skforml._distributed import (
    SingleProcess,
    _check_backend,
    _check_not_nested,
    shard_bounds,
    shard_sizes,
)
from skforml.datasets import make_biased_classification
from skforml.training._data import (
    BatchIterator,
    RowDataset,
    n_global_batches,
    sharded_batches,
)

WORLD_SIZE = 2
# Seconds for all the checks of both ranks (about 15 s on an idle 2-core box).
TIMEOUT = 150
# Float tolerance of a data-parallel fit against one process: sums over a
# batch split in two differ from sums in one piece in their last bits.
ATOL = 1e-5


class ArrayItems(Dataset):
    """A torch Dataset over an array: items ``(x, y)``."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, row):
        return self.X[row], self.y[row]


def tabular():
    # 615 rows: the last global batch of 2 x 32 is uneven (39 rows of 553
    # training rows split 20 / 19).
    X, y, groups = make_biased_classification(n_samples=615, random_state=0)
    return X, y, groups


def images():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 1, 8, 8)).astype(np.float32)
    groups = rng.randint(2, size=300)
    y = (X[:, 0, :4].mean(axis=(1, 2)) + 0.3 * groups > 0.1).astype(int)
    return X, y, groups


def fit(data, batch_size, as_dataset=False, **params):
    X, y, groups = data
    if X.ndim == 4:
        params = {"module": SmallCNN, "module_params": {"n_classes": 2}, **params}
    settings = {"hidden_layer_sizes": (8,), "max_epochs": 3, "random_state": 0}
    clf = FORMLClassifier(batch_size=batch_size, **{**settings, **params})
    inputs = ArrayItems(X, y) if as_dataset else X
    return clf.fit(inputs, y, sensitive_features=groups)


def summary(clf):
    """What must be equal on every rank, and to a one-process fit."""
    params = [p.detach().numpy().copy() for p in clf.net_.module_.parameters()]
    keys = ("train_loss", "valid_loss", "valid_acc", "valid_disparity", "meta_loss")
    history = [[e.get(key, np.nan) for key in keys] for e in clf.history_]
    return {
        "params": np.concatenate([p.ravel() for p in params]),
        "weights": clf.sample_weights_,
        "loss_ema": clf.weighted_loss_ema_,
        "history": np.array(history, dtype=float),
        "best_epoch": clf.best_epoch_,
        "world_size": clf.world_size_,
    }


# Each check runs on every rank and returns what the test compares.
def equivalence_mlp(rank):
    return summary(fit(tabular(), 32))


def equivalence_mlp_dataset(rank):
    return summary(fit(tabular(), 32, as_dataset=True))


def equivalence_cnn(rank):
    return summary(fit(images(), 16))


def with_tolerance(rank):
    return summary(fit(tabular(), 32, tolerance=0.05, max_epochs=4))


def reweighted_baseline(rank):
    X, y, groups = tabular()
    clf = ReweightedClassifier(
        weighting="reweighing", hidden_layer_sizes=(8,), max_epochs=2,
        batch_size=32, random_state=0,
    ).fit(X, y, sensitive_features=groups)  # fmt: skip
    return summary(clf)


def unseeded(rank):
    # random_state=None: rank 0's draw decides the split for every rank.
    X, y, groups = tabular()
    clf = FORMLClassifier(hidden_layer_sizes=(8,), max_epochs=1, batch_size=32)
    return summary(clf.fit(X, y, sensitive_features=groups))


def module_built_unseeded(rank):
    # The caller's module instance differs from rank to rank: rank 0's wins.
    torch.manual_seed(rank)
    module = torch.nn.Sequential(torch.nn.Linear(11, 8), torch.nn.ReLU())
    module.append(torch.nn.Linear(8, 2))
    return summary(fit(tabular(), 32, module=module, max_epochs=1))


def pickled_fit(rank):
    clf = fit(tabular(), 32, max_epochs=1)
    return pickle.dumps(clf), clf.predict_proba(tabular()[0])


def ranks_disagree_on_data(rank):
    X, y, groups = tabular()
    n = len(y) - 10 * rank
    return expect_error(
        lambda: FORMLClassifier(max_epochs=1).fit(
            X[:n], y[:n], sensitive_features=groups[:n]
        )
    )


def one_rank_fails_checks(rank):
    X, y, groups = tabular()
    X = X.copy()
    if rank == 1:
        X[0, 0] = np.nan  # rank 1 stops in the input checks
    return expect_error(
        lambda: FORMLClassifier(max_epochs=1).fit(X, y, sensitive_features=groups)
    )


def unrolled_engine(rank):
    return expect_error(
        lambda: fit(tabular(), 32, meta_gradient="unrolled", max_epochs=1)
    )


def nested_in_threads(rank):
    from joblib import Parallel, delayed

    return expect_error(
        lambda: Parallel(n_jobs=2, backend="threading")(
            delayed(fit)(tabular(), 32, max_epochs=1) for _ in range(2)
        )
    )


def backend_for_another_device(rank):
    # The check runs before any collective: a CPU fit on a CUDA-only backend.
    real = dist.get_backend
    dist.get_backend = lambda *args: "nccl"
    try:
        return expect_error(lambda: fit(tabular(), 32, max_epochs=1))
    finally:
        dist.get_backend = real


def still_in_step(rank):
    # After every error above, the ranks still train together.
    return summary(fit(tabular(), 32, max_epochs=1))


def expect_error(call):
    try:
        call()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


CHECKS = [
    equivalence_mlp,
    equivalence_mlp_dataset,
    equivalence_cnn,
    with_tolerance,
    reweighted_baseline,
    unseeded,
    module_built_unseeded,
    pickled_fit,
    ranks_disagree_on_data,
    one_rank_fails_checks,
    unrolled_engine,
    nested_in_threads,
    backend_for_another_device,
    still_in_step,
]


def _rank_main(rank, port, results, checks):
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    try:
        for check in checks:
            results.put((rank, check.__name__, check(rank)))
    except BaseException:
        results.put((rank, "crash", traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RankFailure(Exception):
    """A rank crashed, died or hung: the checks cannot finish."""


def run_ranks(checks, timeout=TIMEOUT):
    """``{check name: [result of each rank]}`` of ``checks`` run on spawned ranks.

    Fails fast when a rank raises or dies (a surviving rank would wait in
    a collective), and after ``timeout`` seconds when the ranks hang; the
    processes are killed either way.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [
        # Not daemons: a rank is a launched process, not a pool's worker.
        context.Process(target=_rank_main, args=(rank, port, results, checks))
        for rank in range(WORLD_SIZE)
    ]
    for process in processes:
        process.start()
    collected, deadline = {}, time.monotonic() + timeout
    expected = WORLD_SIZE * len(checks)
    try:
        while sum(len(v) - v.count(None) for v in collected.values()) < expected:
            try:
                rank, name, value = results.get(timeout=0.5)
            except queue.Empty:
                for rank, process in enumerate(processes):
                    if process.exitcode not in (None, 0):
                        raise RankFailure(
                            f"rank {rank} died (exit code {process.exitcode})"
                        ) from None
                if time.monotonic() > deadline:
                    raise RankFailure(
                        f"the ranks hung: not done within {timeout} s "
                        f"(done: {sorted(collected)})"
                    ) from None
                continue
            if name == "crash":
                raise RankFailure(f"rank {rank} crashed:\n{value}")
            collected.setdefault(name, [None] * WORLD_SIZE)[rank] = value
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
    return collected


@pytest.fixture(scope="module")
def ranks():
    """``{check name: [result of rank 0, result of rank 1]}`` of every check."""
    try:
        return run_ranks(CHECKS)
    except RankFailure as failure:
        pytest.fail(str(failure))


def rank_1_dies_mid_fit(rank):
    if rank == 1:
        # Die in the first training step, after the ranks have met.
        from skforml.training._net import FORMLNet

        FORMLNet.train_step_single = lambda *args, **kwargs: os._exit(3)
    return summary(fit(tabular(), 32, max_epochs=1))


def test_a_rank_that_dies_fails_the_run_instead_of_hanging():
    start = time.monotonic()
    # Rank 0, waiting in a collective, either sees gloo's connection reset
    # and raises, or is killed once rank 1 is found dead: never a hang.
    with pytest.raises(
        RankFailure, match="rank 1 died \\(exit code 3\\)|Connection reset by peer"
    ):
        run_ranks([rank_1_dies_mid_fit], timeout=60)
    assert time.monotonic() - start < 30


def assert_same(left, right, atol=0.0):
    assert left.keys() == right.keys()
    for key in left:
        a, b = np.asarray(left[key], dtype=float), np.asarray(right[key], dtype=float)
        assert a.shape == b.shape, key
        np.testing.assert_allclose(a, b, atol=atol, rtol=0, equal_nan=True, err_msg=key)


@pytest.mark.parametrize(
    "check, reference",
    [
        (equivalence_mlp, lambda: summary(fit(tabular(), 64))),
        (equivalence_mlp_dataset, lambda: summary(fit(tabular(), 64, True))),
        (equivalence_cnn, lambda: summary(fit(images(), 32))),
        (
            with_tolerance,
            lambda: summary(fit(tabular(), 64, tolerance=0.05, max_epochs=4)),
        ),
    ],
    ids=["mlp", "mlp-dataset", "small-cnn", "tolerance"],
)
def test_two_processes_equal_one_with_twice_the_batch(ranks, check, reference):
    first, second = ranks[check.__name__]
    # Every rank holds the same fitted model, weights and history ...
    assert_same(first, second)
    assert first["world_size"] == WORLD_SIZE
    # ... which is the one-process fit's with batch_size 2b, to float tolerance.
    expected = reference()
    assert expected["world_size"] == 1
    expected["world_size"] = WORLD_SIZE
    assert_same(first, expected, atol=ATOL)


def test_a_fixed_weighting_trains_data_parallel(ranks):
    first, second = ranks["reweighted_baseline"]
    assert_same(first, second)
    X, y, groups = tabular()
    clf = ReweightedClassifier(
        weighting="reweighing", hidden_layer_sizes=(8,), max_epochs=2,
        batch_size=64, random_state=0,
    ).fit(X, y, sensitive_features=groups)  # fmt: skip
    expected = summary(clf)
    expected["world_size"] = WORLD_SIZE
    assert_same(first, expected, atol=ATOL)


def test_ranks_share_the_split_without_a_random_state(ranks):
    first, second = ranks["unseeded"]
    assert_same(first, second)


def test_ranks_start_from_rank_0s_module(ranks):
    first, second = ranks["module_built_unseeded"]
    assert_same(first, second)


def test_a_distributed_fit_loads_and_continues_on_one_process(ranks):
    (blob, proba), _ = ranks["pickled_fit"]
    clf = pickle.loads(blob)
    assert clf.world_size_ == WORLD_SIZE
    np.testing.assert_array_equal(clf.predict_proba(tabular()[0]), proba)
    # No process group is left in the fitted net: a warm start trains here.
    X, y, groups = tabular()
    clf.set_params(warm_start=True).fit(X, y, sensitive_features=groups)
    assert clf.world_size_ == 1 and len(clf.history_) == 2


def test_ranks_that_disagree_on_the_data_fail_clearly(ranks):
    for message in ranks["ranks_disagree_on_data"]:
        assert "ranks of the distributed fit disagree on the data" in message
        assert "rows" in message


def test_a_rank_that_fails_its_checks_stops_every_rank(ranks):
    own, other = ranks["one_rank_fails_checks"][1], ranks["one_rank_fails_checks"][0]
    assert own.startswith("ValueError") and "NaN" in own
    assert "Rank 1 of the distributed fit stopped on the data" in other


def test_an_autograd_engine_is_refused_clearly(ranks):
    for message in ranks["unrolled_engine"]:
        assert "'unrolled'" in message and "cannot be split across" in message


def test_parallelism_nested_in_a_distributed_fit_fails_clearly(ranks):
    for message in ranks["nested_in_threads"]:
        assert message.startswith("RuntimeError")
        assert "n_jobs-style parallelism" in message and "worker thread" in message


def test_a_backend_that_cannot_serve_the_device_fails_clearly(ranks):
    for message in ranks["backend_for_another_device"]:
        assert "'nccl' backend" in message and "device='cpu'" in message
        assert "init_process_group('gloo')" in message


def test_ranks_train_together_after_errors(ranks):
    first, second = ranks["still_in_step"]
    assert_same(first, second)


# ----------------------------------------------------------- in one process


def test_shards_cover_a_global_batch_in_rank_order():
    for n_rows in range(0, 12):
        bounds = [shard_bounds(n_rows, 3, rank) for rank in range(3)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n_rows
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert [stop - start for start, stop in bounds] == shard_sizes(n_rows, 3)
        assert shard_sizes(n_rows, 3) == [
            len(a) for a in np.array_split(range(n_rows), 3)
        ]


@pytest.mark.parametrize("n_rows", [10, 64, 65, 67, 100])
def test_ranks_shards_are_the_batches_of_one_process(n_rows):
    order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(0))
    one = [rows for _, _, rows in sharded_batches(order, 8)]
    shards = [list(sharded_batches(order, 4, rank, 2)) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == n_global_batches(n_rows, 4, 2)
    for batch, (first, second) in zip(one, zip(*shards)):
        # A global batch is one process's batch; each rank reads its slice
        # and knows the rows of the whole batch.
        torch.testing.assert_close(torch.cat([first[1], second[1]]), batch)
        torch.testing.assert_close(first[2], batch)
        torch.testing.assert_close(second[2], batch)
        start, positions, _ = second
        assert positions.tolist() == order[start : start + len(positions)].tolist()
    # A last global batch with fewer rows than ranks is skipped.
    skipped = n_rows % 8 if 0 < n_rows % 8 < 2 else 0
    assert sum(len(p) for s in shards for _, p, _ in s) == n_rows - skipped


@pytest.mark.parametrize("n_rows", [9, 16, 17])
def test_validation_shards_keep_every_row(n_rows):
    # A validation pass scores every row: a short last batch leaves a rank
    # an empty shard instead of being skipped; each rank gets the labels of
    # the whole batch, to score the gathered predictions.
    X, y = torch.arange(n_rows * 2.0).view(n_rows, 2), torch.arange(n_rows)
    shards = [
        list(BatchIterator(RowDataset(X, y), 4, with_rows=False, rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == -(-n_rows // 8)
    inputs = torch.cat([torch.cat([a[0], b[0]]) for a, b in zip(*shards)])
    torch.testing.assert_close(inputs, X)
    for first, second in zip(*shards):
        torch.testing.assert_close(first[1], second[1])
    torch.testing.assert_close(torch.cat([a[1] for a in shards[0]]), y)


def test_one_process_has_no_collectives():
    single = SingleProcess()
    rows = torch.arange(5)
    assert single.global_batch(rows)[0] is rows
    assert single.gather(rows, [5]) is rows
    assert single.common(3) == 3


def test_backend_check_names_the_backend_and_the_device():
    _check_backend("gloo", torch.device("cpu"))
    _check_backend("nccl", torch.device("cuda", 0))
    with pytest.raises(ValueError, match="'nccl' backend.*device='cpu'"):
        _check_backend("nccl", torch.device("cpu"))


def test_nesting_check_names_the_worker_thread():
    errors = []

    def call():
        try:
            _check_not_nested(2)
        except RuntimeError as error:
            errors.append(str(error))

    _check_not_nested(2)  # the main thread of the main process
    thread = threading.Thread(target=call, name="worker-7")
    thread.start()
    thread.join()
    assert len(errors) == 1 and "'worker-7'" in errors[0]
