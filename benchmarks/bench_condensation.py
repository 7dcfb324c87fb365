"""FORML weights on noisy digits: finding flipped labels, and condensation.

On ``load_digits_noisy(flip_rate=0.2)`` (a fifth of the training labels set
to 2; test labels clean) this measures, as the mean (and standard deviation)
over seeds:

1. Detection: the precision, at finding flipped rows, of the ``k`` training
   rows of lowest learned weight (``rank_downweighted``) and of lowest
   weighted-loss average (the sampler's default criterion), with ``k`` the
   number of flipped training rows; chance is the flip rate.
2. Condensation: test accuracy and TPRD (spread of per-class recall, from
   ``fairness_report`` without sensitive features) of a plain model
   (``meta_lr=0``) retrained on the full noisy data, on FORMLSampler's
   condensed data, and on a random subset of the same size; and, as a
   ceiling, on the clean labels.

Usage: ``python benchmarks/bench_condensation.py [--seeds 0 1 2] [--quick]``.
"""

import argparse
import time
import warnings

import numpy as np
import torch

from skforml import FORMLClassifier, FORMLSampler, rank_downweighted
from skforml.datasets import load_digits_noisy
from skforml.metrics import fairness_report

# Without sensitive features the groups are the classes and every constraint
# compares per-class losses; the models name the per-class one explicitly.
PER_CLASS = "error_rate_parity"

FORML_CONFIGS = {
    "default meta-loss (MLD), 40 ep": {},
    "cross_entropy, 20 ep": {"meta_loss": "cross_entropy", "max_epochs": 20},
    "cross_entropy, 40 ep": {"meta_loss": "cross_entropy"},
}
FRACTIONS = (0.1, 0.2)


def forml(seed, **params):
    return FORMLClassifier(constraint=PER_CLASS, random_state=seed, **params)


def plain(seed):
    return FORMLClassifier(meta_lr=0, constraint=PER_CLASS, random_state=seed)


def evaluate(model, data):
    report = fairness_report(data.y_test, model.predict(data.X_test))
    return report.accuracy, report.tprd


def run_seed(seed, configs, fractions):
    data = load_digits_noisy(flip_rate=0.2, random_state=seed)
    X, y, flipped = data.X_train, data.y_train, data.flipped
    n = len(y)
    detection, condensation = {}, {}

    condensation["full data"] = evaluate(plain(seed).fit(X, y), data) + (np.nan,)
    condensation["clean labels (ceiling)"] = evaluate(
        plain(seed).fit(X, data.y_train_clean), data
    ) + (np.nan,)
    for fraction in fractions:
        keep = np.sort(
            np.random.RandomState(seed).choice(n, n - int(fraction * n), replace=False)
        )
        removed_flipped = flipped[np.setdiff1d(np.arange(n), keep)].mean()
        condensation[f"random subset, -{fraction:.0%}"] = evaluate(
            plain(seed).fit(X[keep], y[keep]), data
        ) + (removed_flipped,)

    for name, params in configs.items():
        for rank_by in ("weighted_loss_ema", "sample_weight"):
            for fraction in fractions:
                sampler = FORMLSampler(
                    forml(seed, **params), fraction=fraction, rank_by=rank_by
                )
                X_res, y_res = sampler.fit_resample(X, y)
                key = f"FORMLSampler {rank_by}, -{fraction:.0%} [{name}]"
                condensation[key] = evaluate(plain(seed).fit(X_res, y_res), data) + (
                    flipped[sampler.removed_indices_].mean(),
                )
        # Detection, from the last sampler's fitted FORML (same seed, same fit).
        estimator = sampler.estimator_
        train = ~estimator.validation_mask_
        k = int(flipped[train].sum())
        by_ema = np.flatnonzero(train)[
            np.argsort(estimator.weighted_loss_ema_[train], kind="stable")[:k]
        ]
        detection[name] = (
            flipped[rank_downweighted(estimator, n=k)].mean(),
            flipped[by_ema].mean(),
            flipped[train].mean(),
        ) + evaluate(estimator, data)
    return detection, condensation


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return values.mean(axis=0), values.std(axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--quick", action="store_true", help="one FORML config, one fraction"
    )
    args = parser.parse_args()
    # Small networks: one thread is faster and immune to a busy machine.
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    configs = dict(list(FORML_CONFIGS.items())[1:2]) if args.quick else FORML_CONFIGS
    fractions = FRACTIONS[:1] if args.quick else FRACTIONS

    start = time.perf_counter()
    detections, condensations = [], []
    for seed in args.seeds:
        detection, condensation = run_seed(seed, configs, fractions)
        detections.append(detection)
        condensations.append(condensation)
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)

    print(f"\nNoisy digits, flip_rate=0.2, mean ± std over seeds {args.seeds}")
    print("\n1. Finding flipped labels: precision of the k lowest rows")
    header = (
        f"{'FORML setting':34} {'lowest weight':>15} {'lowest wl-EMA':>15} "
        f"{'chance':>7} {'ratio':>6} {'FORML acc':>10} {'FORML TPRD':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in configs:
        mean, std = mean_std([d[name] for d in detections])
        print(
            f"{name:34} {mean[0]:8.3f} ± {std[0]:.3f} {mean[1]:8.3f} ± {std[1]:.3f} "
            f"{mean[2]:7.3f} {mean[0] / mean[2]:6.2f} {mean[3]:10.3f} {mean[4]:11.3f}"
        )

    print("\n2. Plain model (meta_lr=0) retrained on ...")
    header = (
        f"{'training data':72} {'accuracy':>15} {'TPRD':>15} {'flipped removed':>16}"
    )
    print(header)
    print("-" * len(header))
    for name in condensations[0]:
        mean, std = mean_std([c[name] for c in condensations])
        removed = "" if np.isnan(mean[2]) else f"{mean[2]:.1%}"
        print(
            f"{name:72} {mean[0]:8.3f} ± {std[0]:.3f} {mean[1]:8.3f} ± {std[1]:.3f} "
            f"{removed:>16}"
        )
    print(f"\nTotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
