"""Seconds per epoch of FORML's meta step against plain skorch training.

For each data set (an Adult-sized table of 20k rows x 100 features, and
scikit-learn's digits) and hidden width (64, the default, 256, 1024) of the
MLP, for ``SmallCNN`` on the digits as 8x8 images (4 copies, 7,188 images),
and for validation batches equal to and half of the training batch, it
times, interleaved and as the median of several repeats:

(a) a plain ``skorch.NeuralNetClassifier`` with the same module and data,
(b) skforml with ``meta_lr=0`` (uniform weights, skforml's data loading),
(c) FORML, ``meta_gradient="closed_form"``,
(d) FORML, ``meta_gradient="unrolled"`` (autograd through the lookahead),

and prints the ratios to (a) and of (c) to (d). Peak memory of (c) and (d) is
measured in fresh subprocesses (``ru_maxrss`` growth during ``fit``).

Run: ``python benchmarks/bench_meta_step.py`` (``--quick`` for a smoke run).
"""

import argparse
import gc
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from skorch import NeuralNetClassifier

from skforml import MLP, FORMLClassifier, SmallCNN

BATCH_SIZE = 128
# Peak memory is measured at a larger batch, where the per-step graphs (and
# not the allocator's cache) decide it.
MEMORY_BATCH_SIZE = 2048


def make_data(name, n_rows=20_000):
    if name == "adult-sized":
        X, y = make_classification(
            n_samples=n_rows, n_features=100, n_informative=20, random_state=0
        )
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        if name == "digits-cnn":
            X, y = np.tile(X.reshape(-1, 1, 8, 8), (4, 1, 1, 1)), np.tile(y, 4)
    groups = (np.arange(len(y)) % 3 == 0).astype(int)
    return X.astype(np.float32), y.astype(np.int64), groups


def module_of(X, y, width):
    """The module and its parameters: SmallCNN for images, else the MLP."""
    n_classes = len(np.unique(y))
    if X.ndim == 4:
        return SmallCNN, {"n_classes": n_classes}
    return MLP, {
        "n_features": X.shape[1],
        "n_classes": n_classes,
        "hidden_layer_sizes": (width,),
    }


def plain_skorch(X, y, width, epochs):
    module, params = module_of(X, y, width)
    net = NeuralNetClassifier(
        module,
        **{f"module__{key}": value for key, value in params.items()},
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        verbose=0,
        iterator_train__shuffle=True,
    )
    # Same number of training rows as FORML (which holds 10% out).
    keep = np.random.RandomState(0).rand(len(y)) > 0.1
    net.fit(X[keep], y[keep])
    return net.history[:, "dur"]


def skforml_fit(X, y, groups, width, epochs, batch_size=BATCH_SIZE, **params):
    module, module_params = module_of(X, y, width)
    clf = FORMLClassifier(
        module=module,
        module_params=module_params,
        max_epochs=epochs,
        batch_size=batch_size,
        random_state=0,
        **params,
    )
    clf.fit(X, y, sensitive_features=groups)
    return clf.history_[:, "dur"]


METHODS = {
    "plain_skorch": lambda X, y, g, w, e, vb: plain_skorch(X, y, w, e),
    "uniform": lambda X, y, g, w, e, vb: skforml_fit(X, y, g, w, e, meta_lr=0.0),
    "closed_form": lambda X, y, g, w, e, vb: skforml_fit(
        X, y, g, w, e, meta_gradient="closed_form", validation_batch_size=vb
    ),
    "unrolled": lambda X, y, g, w, e, vb: skforml_fit(
        X, y, g, w, e, meta_gradient="unrolled", validation_batch_size=vb
    ),
}


def time_per_epoch(data, width, val_batch, repeats, epochs):
    X, y, groups = data
    samples = {name: [] for name in METHODS}
    for _ in range(repeats):
        for name, run in METHODS.items():  # interleaved
            durations = run(X, y, groups, width, epochs, val_batch)
            samples[name].append(statistics.median(durations[1:]))
    return {name: statistics.median(v) for name, v in samples.items()}


def _rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_memory_child(args):
    """Peak RSS above the RSS right before ``fit``, sampled every millisecond.

    ``ru_maxrss`` cannot be used: building the data set peaks higher than the
    fit of a narrow network, which would read as zero growth.
    """
    dataset, width, method = args.split(",")
    X, y, groups = make_data(dataset)
    torch.set_num_threads(1)
    skforml_fit(
        X[:2000], y[:2000], groups[:2000], int(width), 1, meta_gradient=method
    )  # warm up torch's allocator and kernels
    gc.collect()
    before = _rss_mib()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    skforml_fit(X, y, groups, int(width), 1, MEMORY_BATCH_SIZE, meta_gradient=method)
    done.set()
    sampler.join()
    print(json.dumps({"peak_mib": peak[0] - before}))


def peak_memory(dataset, width, method):
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", f"{dataset},{width},{method}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (1: steadier ratios on a shared machine)",
    )  # fmt: skip
    parser.add_argument("--memory-child")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args(argv)
    if args.memory_child:
        return peak_memory_child(args.memory_child)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    widths = (64,) if args.quick else (64, 256, 1024)
    repeats, epochs = (1, 2) if args.quick else (3, 3)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"batch {BATCH_SIZE}, median of {repeats} repeats x {epochs - 1} epochs"
    )
    header = (
        f"{'data':12s} {'width':>5s} {'val':>4s} | {'skorch':>7s} "
        f"{'uniform':>7s} {'closed':>7s} {'unroll':>7s} (s/epoch) | "
        f"{'unif/sk':>7s} {'cf/sk':>6s} {'unr/sk':>6s} {'cf/unr':>6s}"
    )
    print(header)
    print("-" * len(header))
    datasets = ("adult-sized", "digits", "digits-cnn")
    for dataset in () if args.memory_only else datasets:
        data = make_data(dataset, n_rows=4000 if args.quick else 20_000)
        for width in widths if dataset != "digits-cnn" else widths[:1]:
            for val_batch in (BATCH_SIZE, BATCH_SIZE // 2):
                t = time_per_epoch(data, width, val_batch, repeats, epochs)
                sk = t["plain_skorch"]
                print(
                    f"{dataset:12s} {width:5d} {val_batch:4d} | {sk:7.3f} "
                    f"{t['uniform']:7.3f} {t['closed_form']:7.3f} "
                    f"{t['unrolled']:7.3f}           | "
                    f"{t['uniform'] / sk:7.2f} {t['closed_form'] / sk:6.2f} "
                    f"{t['unrolled'] / sk:6.2f} "
                    f"{t['closed_form'] / t['unrolled']:6.2f}",
                    flush=True,
                )
    print(
        "\npeak memory growth during fit (MiB, fresh process, adult-sized, "
        f"batch {MEMORY_BATCH_SIZE})"
    )
    for width in widths:
        cf = peak_memory("adult-sized", width, "closed_form")
        un = peak_memory("adult-sized", width, "unrolled")
        print(
            f"width {width:5d}: closed_form {cf:8.1f}  unrolled {un:8.1f}  "
            f"ratio {cf / max(un, 1e-9):5.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
