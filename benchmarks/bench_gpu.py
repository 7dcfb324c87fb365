"""Seconds per epoch of FORML against plain skorch, for an MLP and a CNN, on a device.

For each network -- skforml's default ``MLP`` on the 64 pixels of the digits
as rows, and ``SmallCNN`` on the same digits as ``(N, 1, 8, 8)`` images -- it
times, interleaved and as the median over repeats of the median epoch
(the first epoch, which warms up kernels and the allocator, left out):

(a) ``plain``: a ``skorch.NeuralNetClassifier`` with the same module,
    optimizer, batch size and number of training rows (skorch's own loading);
(b) ``uniform``: skforml with ``meta_lr=0`` (no meta step; skforml's
    loading);
(c) ``forml``: FORML with ``meta_gradient="auto"`` (and, with ``--engines``,
    each other engine);

and prints ``forml / plain`` (the figure of the targets: 2.5x for the CNN on
a CPU, 1.5x for both on a GPU) and ``forml / uniform`` (the meta step's own
cost), plus the peak GPU memory of each fit on CUDA. The digits are tiled
with noise to ``--rows`` rows so that an epoch has enough steps to time.

Run: ``python benchmarks/bench_gpu.py --device cuda`` (``--device cpu``
works too; ``--quick`` for a smoke run).
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier

from skforml import MLP, FORMLClassifier, SmallCNN

BATCH_SIZE = 128


def make_digits(n_rows, seed=0):
    """Digits tiled with pixel noise to ``n_rows`` rows, in [0, 1]."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    index = rng.randint(len(y), size=n_rows)
    X = X[index] / 16.0 + 0.05 * rng.normal(size=(n_rows, 64))
    groups = (np.arange(n_rows) % 3 == 0).astype(int)
    return X.astype(np.float32), y[index].astype(np.int64), groups


NETWORKS = {
    "mlp": (MLP, lambda X: X, {"n_features": 64, "n_classes": 10}),
    "cnn": (SmallCNN, lambda X: X.reshape(-1, 1, 8, 8), {"n_classes": 10}),
}


def plain(module, params, X, y, device, epochs):
    net = NeuralNetClassifier(
        module,
        **{f"module__{k}": v for k, v in params.items()},
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
    )
    # As many training rows as FORML, which holds 10% out for validation.
    keep = np.random.RandomState(0).rand(len(y)) > 0.1
    net.fit(X[keep], y[keep])
    return net.history[:, "dur"]


def skforml(module, params, X, y, groups, device, epochs, **kwargs):
    clf = FORMLClassifier(
        module,
        module_params=params,
        max_epochs=epochs,
        batch_size=BATCH_SIZE,
        device=device,
        random_state=0,
        **kwargs,
    )
    clf.fit(X, y, sensitive_features=groups)
    return clf.history_[:, "dur"]


def methods(engines):
    runs = {
        "plain": lambda m, p, X, y, g, d, e: plain(m, p, X, y, d, e),
        "uniform": lambda m, p, X, y, g, d, e: skforml(m, p, X, y, g, d, e, meta_lr=0),
        "forml": lambda m, p, X, y, g, d, e: skforml(m, p, X, y, g, d, e),
    }
    for engine in engines:
        runs[engine] = lambda m, p, X, y, g, d, e, engine=engine: skforml(
            m, p, X, y, g, d, e, meta_gradient=engine
        )
    return runs


def measure(name, data, device, repeats, epochs, engines):
    module, shape, params = NETWORKS[name]
    X, y, groups = data
    X = shape(X)
    samples, peaks = {}, {}
    for _ in range(repeats):
        for method, run in methods(engines).items():  # interleaved
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            durations = run(module, params, X, y, groups, device, epochs)
            samples.setdefault(method, []).append(statistics.median(durations[1:]))
            if device.type == "cuda":
                peaks[method] = torch.cuda.max_memory_allocated(device) / 2**20
    return {m: statistics.median(v) for m, v in samples.items()}, peaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--engines",
        nargs="*",
        default=[],
        help="also time these meta_gradient engines (linear, jvp, unrolled)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: the timings of a shared machine stay stable)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.rows, args.epochs, args.repeats = 2000, 3, 1
    warnings.simplefilter("ignore")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__}, device {device} ({name}), "
        f"{torch.get_num_threads()} threads, {args.rows} rows, batch {BATCH_SIZE}, "
        f"median of {args.repeats} repeats x {args.epochs - 1} epochs"
    )
    data = make_digits(args.rows)
    started = time.perf_counter()
    for network in NETWORKS:
        times, peaks = measure(
            network, data, device, args.repeats, args.epochs, args.engines
        )
        plain_time, uniform_time = times["plain"], times["uniform"]
        print(f"\n{network}: seconds per epoch, and ratios")
        for method, seconds in times.items():
            memory = f"  peak {peaks[method]:8.1f} MiB" if peaks else ""
            print(
                f"  {method:9s} {seconds:8.4f} s   /plain {seconds / plain_time:5.2f}"
                f"   /uniform {seconds / uniform_time:5.2f}{memory}",
                flush=True,
            )
        print(
            f"  FORML/plain epoch time ({network}, {device.type}): "
            f"{times['forml'] / plain_time:.2f}"
        )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
