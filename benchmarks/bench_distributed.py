"""Data-parallel FORML on torch.distributed (gloo, CPU): speed, equality, memory.

Ranks are spawned here with torchrun's environment variables set, so
``fit`` starts the process group itself, as under ``torchrun``. Each rank
runs one torch thread. Three tables, each measured in one run:

``--scaling`` (default)
    Training rows per second of 1 and 2 processes on the same global batch
    (2 processes with ``batch_size=b`` against 1 with ``2b``: the same fit),
    interleaved and repeated; the ratio of the medians. Target: >= 1.6. An
    MLP at three global batches (its communication, three all-reduces of the
    parameters per step, against less compute per step as the batch shrinks)
    and SmallCNN on 32x32 colour images.
``--equivalence``
    The largest difference between the 2-process fit and the 1-process fit
    with twice the batch, for the MLP and ``SmallCNN`` on arrays and on
    Datasets: parameters, learned weights, history.
``--quality``
    Adult (sex), 3 seeds: accuracy and TPR difference on the same held-out
    rows of 1 process, of 2 processes on the same global batch, and of 2
    processes running the same script (``batch_size`` per rank).
``--memory``
    Peak memory of each rank of a 2-process fit on a Dataset read from disk
    (12.8 GiB, more than each rank's share of a 23 GiB machine), against the
    size of the data: the training set is never materialised.

Run: ``python benchmarks/bench_distributed.py --scaling --equivalence
--quality --memory`` (``--quick`` for a smoke run).
"""

import argparse
import multiprocessing
import os
import queue
import resource
import socket
import statistics
import sys
import tempfile
import time
import traceback

import numpy as np
import torch

WORLD_SIZES = (1, 2)


# ---------------------------------------------------------------- the ranks


def _rank_main(rank, world_size, port, job, args, results):
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    try:
        results.put((rank, job(*args)))
    except BaseException:
        results.put((rank, traceback.format_exc()))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def run(job, world_size, *args, timeout=1800):
    """``job(*args)`` on ``world_size`` fresh processes; their results by rank."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    processes = [
        context.Process(
            target=_rank_main, args=(rank, world_size, port, job, args, results)
        )
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    collected, deadline = [None] * world_size, time.monotonic() + timeout
    try:
        for _ in range(world_size):
            while True:
                try:
                    rank, value = results.get(timeout=0.5)
                    break
                except queue.Empty:
                    # A dead rank leaves the others waiting in a collective.
                    dead = [
                        p.exitcode for p in processes if p.exitcode not in (None, 0)
                    ]
                    if dead or time.monotonic() > deadline:
                        raise RuntimeError(f"a rank died or hung ({dead})") from None
            if isinstance(value, str):
                raise RuntimeError(f"rank {rank} failed:\n{value}")
            collected[rank] = value
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return collected


# ---------------------------------------------------------------- scaling


def scaling_data(kind, n_rows):
    from sklearn.datasets import make_classification

    n_features = 3 * 32 * 32 if kind == "small-cnn" else 100
    X, y = make_classification(
        n_samples=n_rows, n_features=n_features, n_informative=20, random_state=0
    )
    groups = (np.arange(n_rows) % 3 == 0).astype(int)
    if kind == "small-cnn":
        X = X.reshape(n_rows, 3, 32, 32)
    return X.astype(np.float32), y, groups


def timed_fit(kind, n_rows, batch_size, epochs):
    """Training rows per second of the fit's epochs (after a warm-up fit)."""
    from skforml import FORMLClassifier, SmallCNN

    X, y, groups = scaling_data(kind, n_rows)
    if kind == "small-cnn":
        network = {"module": SmallCNN, "module_params": {"n_classes": 2,
                   "in_channels": 3}}  # fmt: skip
    else:
        network = {"hidden_layer_sizes": (256, 256)}
    # The first fit of a process imports torch's compiler stack (Adam's
    # constructor does): not part of training.
    FORMLClassifier(**network, max_epochs=1, random_state=0).fit(
        X[:500], y[:500], sensitive_features=groups[:500]
    )
    clf = FORMLClassifier(
        **network, batch_size=batch_size, max_epochs=epochs, random_state=0
    )
    clf.fit(X, y, sensitive_features=groups)
    rows = epochs * int((~clf.validation_mask_).sum())
    return rows / sum(clf.history_[:, "dur"])


def scaling(quick):
    repeats = 1 if quick else 3
    settings = [
        ("mlp (256, 256)", "mlp", 4_000 if quick else 40_000, 512),
        ("mlp (256, 256)", "mlp", 4_000 if quick else 40_000, 2048),
        ("mlp (256, 256)", "mlp", 4_000 if quick else 40_000, 8192),
        ("SmallCNN 3x32x32", "small-cnn", 1_000 if quick else 6_000, 256),
    ]
    epochs = 1 if quick else 2
    print(
        f"\n## Training rows per second (epochs' durations), {epochs} epochs, "
        f"1 torch thread per process, median of {repeats} interleaved runs; "
        "2 processes with batch_size=b against 1 with 2b (the same fit)"
    )
    print(
        f"{'network':<18} {'rows':>6} {'global batch':>12} {'1 process':>10} "
        f"{'2 processes':>12} {'ratio':>6}"
    )
    for label, kind, n_rows, global_batch in settings:
        speeds = {world_size: [] for world_size in WORLD_SIZES}
        for _ in range(repeats):
            for world_size in WORLD_SIZES:
                batch = global_batch // world_size
                results = run(timed_fit, world_size, kind, n_rows, batch, epochs)
                speeds[world_size].append(min(results))
        one, two = (statistics.median(speeds[w]) for w in WORLD_SIZES)
        print(
            f"{label:<18} {n_rows:>6} {global_batch:>12} {one:>10.0f} "
            f"{two:>12.0f} {two / one:>6.2f}",
            flush=True,
        )
    print("target: >= 1.6 with 2 processes")


# ------------------------------------------------------------ equivalence


def fitted_state(kind, batch_size, epochs):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from test_distributed import fit, images, summary, tabular

    data = images() if "cnn" in kind else tabular()
    clf = fit(data, batch_size, as_dataset="dataset" in kind, max_epochs=epochs)
    return summary(clf)


def equivalence(quick):
    epochs = 2 if quick else 10
    print(
        f"\n## 2 processes with batch_size=b against 1 with 2b, {epochs} epochs "
        "(largest absolute difference; ranks compared with each other too)"
    )
    print(
        f"{'model, data':<22} {'b':>3} {'parameters':>11} {'weights':>9} "
        f"{'history':>9} {'rank 0 vs 1':>12}"
    )
    for kind, batch in [
        ("mlp, arrays", 32),
        ("mlp, dataset", 32),
        ("small-cnn, arrays", 16),
        ("small-cnn, dataset", 16),
    ]:
        first, second = run(fitted_state, 2, kind, batch, epochs)
        (one,) = run(fitted_state, 1, kind, 2 * batch, epochs)
        gaps = [
            np.nanmax(
                np.abs(np.asarray(first[key], float) - np.asarray(one[key], float))
            )
            for key in ("params", "weights", "history")
        ]
        ranks = max(
            np.nanmax(
                np.abs(np.asarray(first[k], float) - np.asarray(second[k], float))
            )
            for k in ("params", "weights", "history")
        )
        print(
            f"{kind:<22} {batch:>3} {gaps[0]:>11.1e} {gaps[1]:>9.1e} "
            f"{gaps[2]:>9.1e} {ranks:>12.1e}"
        )


# ---------------------------------------------------------------- quality


def adult_fit(seed, batch_size, n_train):
    from fairlearn.metrics import MetricFrame, true_positive_rate
    from sklearn.model_selection import train_test_split

    from skforml import FORMLClassifier
    from skforml.datasets import load_adult

    adult = load_adult()
    sex = adult.sensitive["sex"].to_numpy()
    strata = np.char.add(sex.astype(str), adult.target.astype(str))
    split = train_test_split(
        adult.data, adult.target, sex, train_size=n_train, test_size=10_000,
        random_state=seed, stratify=strata,
    )  # fmt: skip
    X_train, X_test, y_train, y_test, s_train, s_test = split
    clf = FORMLClassifier(
        constraint="true_positive_rate_parity", batch_size=batch_size,
        max_epochs=20, random_state=seed,
    )  # fmt: skip
    clf.fit(X_train, y_train, sensitive_features=s_train)
    y_pred = clf.predict(X_test)
    tpr = MetricFrame(
        metrics=true_positive_rate, y_true=y_test, y_pred=y_pred,
        sensitive_features=s_test,
    )  # fmt: skip
    return float(np.mean(y_pred == y_test)), float(tpr.difference())


def quality(quick):
    seeds = (0,) if quick else (0, 1, 2)
    n_train = 2_000 if quick else 8_000
    print(
        f"\n## Adult (sex), {n_train} training rows, TPR parity, defaults "
        "(20 epochs); test on 10,000 rows; mean +- sd over "
        f"{len(seeds)} seeds"
    )
    # The same global batch, and the same script (batch_size per rank).
    configs = [(1, 128), (2, 64), (2, 128)]
    print(f"{'processes':>9} {'batch/rank':>10} {'accuracy':>16} {'TPRD':>16}")
    for world_size, batch_size in configs:
        scores = np.array(
            [run(adult_fit, world_size, seed, batch_size, n_train)[0] for seed in seeds]
        )
        mean, sd = scores.mean(axis=0), scores.std(axis=0)
        accuracy, tprd = (f"{m:>8.3f} +- {s:.3f}" for m, s in zip(mean, sd))
        print(f"{world_size:>9} {batch_size:>10} {accuracy} {tprd}", flush=True)


# ---------------------------------------------------------------- memory


class FileRows(torch.utils.data.Dataset):
    """Rows of a float32 file, read one by one from disk (no mapping, no cache)."""

    def __init__(self, path, n_rows, n_features, y):
        self.path, self.n_rows, self.n_features, self.targets = (
            path, n_rows, n_features, y,
        )  # fmt: skip
        self.row_bytes = 4 * n_features
        self.file = None

    def __len__(self):
        return self.n_rows

    def __getitem__(self, row):
        if self.file is None:
            self.file = open(self.path, "rb", buffering=0)  # noqa: SIM115
        data = os.pread(self.file.fileno(), self.row_bytes, row * self.row_bytes)
        return torch.frombuffer(bytearray(data), dtype=torch.float32), self.targets[row]

    def __getstate__(self):
        return {**vars(self), "file": None}


def peak_memory_fit(path, n_rows, n_features, y, groups):
    from skforml import FORMLClassifier

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dataset = FileRows(path, n_rows, n_features, y)
    clf = FORMLClassifier(
        hidden_layer_sizes=(16,), batch_size=512, max_epochs=1,
        validation_size=400, random_state=0,
    )  # fmt: skip
    start = time.perf_counter()
    clf.fit(dataset, y, sensitive_features=groups)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return before / 2**20, peak / 2**20, seconds, int(clf.world_size_)


def memory(quick):
    n_features = 3 * 64 * 64  # a 64 x 64 colour image per row, 48 KiB
    # Full run: more than half of this machine's 23 GiB, each rank's share.
    n_rows = 4_000 if quick else 280_000
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=n_rows)
    groups = rng.randint(2, size=n_rows)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.f32")
        chunk = 1_000
        with open(path, "wb") as file:
            for start in range(0, n_rows, chunk):
                size = min(chunk, n_rows - start)
                block = rng.normal(size=(size, n_features)).astype(np.float32)
                block[:, 0] += y[start : start + size]
                file.write(block.tobytes())
        size_gib = os.path.getsize(path) / 2**30
        print(
            f"\n## Peak memory of a 2-process fit on a Dataset of {n_rows} rows x "
            f"{n_features} float32 read from disk ({size_gib:.2f} GiB), 1 epoch"
        )
        print(f"{'rank':>4} {'at start GiB':>13} {'peak GiB':>9} {'fit s':>7}")
        for rank, (before, peak, seconds, _) in enumerate(
            run(peak_memory_fit, 2, path, n_rows, n_features, y, groups)
        ):
            print(f"{rank:>4} {before:>13.2f} {peak:>9.2f} {seconds:>7.0f}")
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        print(
            f"data: {size_gib:.2f} GiB; RAM {ram:.1f} GiB, a rank's share "
            f"{ram / 2:.1f} GiB"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("scaling", "equivalence", "quality", "memory"):
        parser.add_argument(f"--{name}", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    args = parser.parse_args()
    chosen = [
        n for n in ("scaling", "equivalence", "quality", "memory") if getattr(args, n)
    ]
    for name in chosen or ["scaling"]:
        globals()[name](args.quick)


if __name__ == "__main__":
    main()
