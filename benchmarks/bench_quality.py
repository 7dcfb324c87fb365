"""Fairness and accuracy of FORML against uniform training on the same network.

Prints accuracy, TPRD and max FNR (test split, mean +- std over seeds) of
``FORMLClassifier()`` with its defaults and of the same estimator with
``meta_lr=0`` (uniform weights, same epochs, same split), on the biased
synthetic data and on Adult (sensitive feature: sex).

Run: ``python benchmarks/bench_quality.py [--seeds 3] [--adult-rows N]``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from skforml import FORMLClassifier
from skforml.datasets import load_adult, make_biased_classification
from skforml.metrics import fairness_report


def split(X, y, groups, seed, max_train=None):
    strata = np.char.add(np.asarray(groups).astype(str), np.asarray(y).astype(str))
    X_tr, X_te, y_tr, y_te, g_tr, g_te = train_test_split(
        X, y, groups, test_size=0.3, random_state=seed, stratify=strata
    )
    if max_train:
        X_tr, y_tr, g_tr = X_tr[:max_train], y_tr[:max_train], g_tr[:max_train]
    return X_tr, X_te, y_tr, y_te, g_tr, g_te


def evaluate(name, make_data, seeds, **params):
    rows = {"uniform": [], "FORML": []}
    for seed in seeds:
        X_tr, X_te, y_tr, y_te, g_tr, g_te = make_data(seed)
        for method, extra in (("uniform", {"meta_lr": 0.0}), ("FORML", {})):
            start = time.perf_counter()
            clf = FORMLClassifier(random_state=seed, **params, **extra)
            clf.fit(X_tr, y_tr, sensitive_features=g_tr)
            report = fairness_report(y_te, clf.predict(X_te), sensitive_features=g_te)
            rows[method].append(
                (
                    report.accuracy,
                    report.tprd,
                    report.max_fnr,
                    time.perf_counter() - start,
                )
            )
    print(f"\n{name} ({len(seeds)} seeds)")
    print(
        f"{'method':8s} {'accuracy':>14s} {'TPRD':>14s} {'max FNR':>14s} {'fit s':>7s}"
    )
    for method, values in rows.items():
        v = np.array(values)
        cells = " ".join(
            f"{m:.3f} +- {s:.3f}" for m, s in zip(v[:, :3].mean(0), v[:, :3].std(0))
        )
        print(f"{method:8s} {cells} {v[:, 3].mean():7.1f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--adult-rows",
        type=int,
        default=None,
        help="cap on Adult training rows (default: all 34k)",
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seeds = range(args.seeds)

    def synthetic(seed):
        X, y, g = make_biased_classification(n_samples=3000, random_state=seed)
        return split(X, y, g, seed)

    adult = load_adult()
    sex = adult.sensitive["sex"].to_numpy()

    def adult_data(seed):
        return split(adult.data, adult.target, sex, seed, args.adult_rows)

    evaluate("biased synthetic, 3000 rows", synthetic, seeds)
    evaluate("Adult (sex)", adult_data, seeds)


if __name__ == "__main__":
    main()
