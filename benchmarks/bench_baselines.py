"""Accuracy and TPR gap of every reweighting baseline next to FORML.

On ``make_biased_classification(n_samples=4000, random_state=seed)`` for seeds
0, 1, 2, with a 70/30 split stratified on (group, label), every
:class:`skforml.ReweightedClassifier` weighting and :class:`skforml.FORMLClassifier`
are fitted with default parameters (``random_state=seed``) and scored on the
test split: accuracy and TPRD, the max - min true-positive rate over the two
groups. Prints the mean (and standard deviation) over the seeds.

Run with ``python benchmarks/bench_baselines.py``.
"""

import time

import numpy as np
from sklearn.model_selection import train_test_split

from skforml import FORMLClassifier, ReweightedClassifier
from skforml._baselines import WEIGHTINGS
from skforml.datasets import make_biased_classification

SEEDS = (0, 1, 2)
N_SAMPLES = 4000


def tpr_gap(y_true, y_pred, groups):
    """Max - min over groups of the true-positive rate."""
    rates = [y_pred[(groups == g) & (y_true == 1)].mean() for g in np.unique(groups)]
    return max(rates) - min(rates)


def models(seed):
    for weighting in WEIGHTINGS:
        yield weighting, ReweightedClassifier(weighting=weighting, random_state=seed)
    yield "FORML", FORMLClassifier(random_state=seed)


def main():
    results = {}
    for seed in SEEDS:
        X, y, groups = make_biased_classification(
            n_samples=N_SAMPLES, random_state=seed
        )
        X_train, X_test, y_train, y_test, g_train, g_test = train_test_split(
            X, y, groups, test_size=0.3, stratify=groups * 2 + y, random_state=seed
        )
        for name, model in models(seed):
            start = time.perf_counter()
            model.fit(X_train, y_train, sensitive_features=g_train)
            seconds = time.perf_counter() - start
            y_pred = model.predict(X_test)
            accuracy = float(np.mean(y_pred == y_test))
            gap = tpr_gap(y_test, y_pred, g_test)
            results.setdefault(name, []).append((accuracy, gap, seconds))
            print(
                f"seed {seed} {name:<22} acc {accuracy:.3f}  TPRD {gap:.3f}  "
                f"({seconds:.0f} s)",
                flush=True,
            )

    print()
    print(f"mean (std) over seeds {list(SEEDS)}, n_samples={N_SAMPLES}, 30% test")
    print(f"{'scheme':<22} {'accuracy':>15} {'TPRD':>15} {'fit s':>7}")
    for name, rows in results.items():
        acc, gap, seconds = np.array(rows).T
        print(
            f"{name:<22} {acc.mean():>7.3f} ({acc.std():.3f}) "
            f"{gap.mean():>7.3f} ({gap.std():.3f}) {seconds.mean():>7.0f}"
        )


if __name__ == "__main__":
    main()
