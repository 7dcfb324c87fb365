"""Time and peak memory of ``FORMLClassifier.fit`` on 1,000,000 rows x 20.

Each configuration (float32 and float64 input) runs in a fresh subprocess,
which

1. builds ``X`` in chunks, in place (no temporary copy of ``X`` that would
   raise the peak before the fit), binary labels from a noisy linear rule and
   a 30% sensitive group;
2. fits a 2,000-row model first, so that lazy imports and thread pools are
   not counted;
3. reads ``ru_maxrss`` (the peak resident set so far, which is then the
   current one), fits 1 epoch with ``batch_size=1024`` and the default
   ``meta_lr``, and reads ``ru_maxrss`` again.

The growth of the peak during ``fit`` is printed in MiB and as a multiple of
the size of ``X``, next to the size of the per-row state that ``fit`` keeps
("weights": the weight store's logits and loss averages, ``sample_weights_``,
``weighted_loss_ema_`` and ``validation_mask_``). The target is at most one
extra copy of ``X`` beyond the weights: ``growth - weights <= 1 x X``. A
float32 C-contiguous ``X`` is used without a copy; float64 input is converted
to float32 once (half the size of the float64 ``X``).

Run: ``python benchmarks/bench_scale.py`` (``--rows 100000`` for a quicker
run; ``--dtype float32`` for one configuration). Set ``OMP_NUM_THREADS`` to
choose torch's threads (the child uses ``torch.get_num_threads()``).
"""

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
import warnings

N_FEATURES = 20
CHUNK = 100_000


def peak_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def make_data(n_rows, dtype, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = np.empty((n_rows, N_FEATURES), dtype=dtype)
    y = np.empty(n_rows, dtype=np.int64)
    groups = np.empty(n_rows, dtype=np.int64)
    direction = rng.standard_normal(N_FEATURES).astype(dtype)
    for start in range(0, n_rows, CHUNK):
        rows = slice(start, min(start + CHUNK, n_rows))
        rng.standard_normal(dtype=dtype, out=X[rows])
        groups[rows] = rng.random(X[rows].shape[0]) < 0.3
        score = X[rows] @ direction + rng.standard_normal(X[rows].shape[0])
        y[rows] = score > 0.5
    return X, y, groups


def child(n_rows, dtype):
    import numpy as np
    import torch

    from skforml import FORMLClassifier

    warnings.simplefilter("ignore")
    X, y, groups = make_data(n_rows, getattr(np, dtype))
    params = {"max_epochs": 1, "batch_size": 1024, "random_state": 0}
    warm = slice(0, 2000)
    FORMLClassifier(**params).fit(X[warm], y[warm], sensitive_features=groups[warm])
    gc.collect()
    before_peak, before_current = peak_mib(), current_mib()
    start = time.perf_counter()
    model = FORMLClassifier(**params).fit(X, y, sensitive_features=groups)
    seconds = time.perf_counter() - start
    after_peak = peak_mib()
    store = model.net_.weighting_
    state = [store.logits, store.epoch_loss, store.loss_ema, store.log_prior]
    weights_bytes = sum(t.numel() * t.element_size() for t in state if t is not None)
    weights_bytes += sum(
        a.nbytes
        for a in (
            model.sample_weights_,
            model.weighted_loss_ema_,
            model.validation_mask_,
        )
    )
    accuracy = float(model.score(X[:100_000], y[:100_000]))
    print(
        json.dumps(
            {
                "dtype": dtype,
                "rows": n_rows,
                "threads": torch.get_num_threads(),
                "fit_s": seconds,
                "X_mib": X.nbytes / 2**20,
                "baseline_peak_mib": before_peak,
                "baseline_current_mib": before_current,
                "growth_mib": after_peak - before_peak,
                "weights_mib": weights_bytes / 2**20,
                "accuracy": accuracy,
                "weight_ess": float(model.history_[-1, "weight_ess"]),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dtypes = args.dtype or ["float32", "float64"]
    if args.child:
        child(args.rows, dtypes[0])
        return
    print(
        f"FORMLClassifier.fit, {args.rows:,} rows x {N_FEATURES} features, 1 epoch, "
        "batch_size=1024, default meta_lr; each row a fresh process."
    )
    header = (
        f"{'X dtype':>8} {'fit s':>7} {'X MiB':>8} {'growth MiB':>11} "
        f"{'weights MiB':>12} {'growth/X':>9} {'(growth-weights)/X':>19} "
        f"{'target':>7}"
    )
    print(header)
    for dtype in dtypes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(args.rows)]
            + ["--dtype", dtype],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            sys.exit(f"the {dtype} run failed:\n{out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = result["growth_mib"] / result["X_mib"]
        extra = (result["growth_mib"] - result["weights_mib"]) / result["X_mib"]
        print(
            f"{dtype:>8} {result['fit_s']:7.1f} {result['X_mib']:8.1f} "
            f"{result['growth_mib']:11.1f} {result['weights_mib']:12.1f} "
            f"{ratio:9.2f} {extra:19.2f} {'ok' if extra <= 1 else 'OVER':>7}"
        )
        print(
            f"{'':>8} (torch threads {result['threads']}, baseline peak "
            f"{result['baseline_peak_mib']:.0f} MiB, current "
            f"{result['baseline_current_mib']:.0f} MiB; accuracy on 100k rows "
            f"{result['accuracy']:.3f}, weight ESS {result['weight_ess']:.3f})"
        )


if __name__ == "__main__":
    main()
