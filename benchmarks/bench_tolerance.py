"""FORML's ``tolerance`` on the public benchmarks: is it met, and what it costs.

For every tolerance ``eps`` the table gives, over seeds, the validation
disparity at the selected epoch (what the tolerance bounds), whether it is
within ``eps``, the test disparity of the same constraint next to it, test
accuracy, and the selected epoch. The constraint is true-positive-rate parity
(without sensitive features, the spread of per-class recall). Run::

    python benchmarks/bench_tolerance.py [--seeds 3] [--tolerances 0.02 0.05 0.1]
"""

import argparse
import warnings

import numpy as np
import torch
from bench_defaults import DATASETS
from joblib import Parallel, delayed

from skforml import FORMLClassifier
from skforml.fairness._constraints import measured_constraint


def run(dataset, tolerance, seed, validation_size=None):
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    X_tr, X_te, y_tr, y_te, g_tr, g_te = DATASETS[dataset](seed)
    clf = FORMLClassifier(
        tolerance=tolerance,
        constraint="true_positive_rate_parity",
        random_state=seed,
    )
    if validation_size is not None:
        clf.set_params(validation_size=validation_size)
    clf.fit(X_tr, y_tr, sensitive_features=g_tr)
    valid = clf.history_[clf.best_epoch_ - 1, "valid_disparity"]
    constraint = measured_constraint(clf.constraint, g_te is None)
    y_true = np.searchsorted(clf.classes_, y_te)
    groups = y_true if g_te is None else np.unique(g_te, return_inverse=True)[1]
    y_pred = np.searchsorted(clf.classes_, clf.predict(X_te))
    test = constraint.disparity(y_true, y_pred, groups)
    # Candidates start after the warm-up (a quarter of the epochs).
    selector = dict(clf.net_.callbacks_)["epoch_selector"]
    candidates = clf.history_[:, "valid_disparity"][selector.select_from_epoch - 1 :]
    reachable = min(candidates) <= tolerance
    return (
        dataset,
        tolerance,
        valid,
        test,
        np.mean(y_pred == y_true),
        clf.best_epoch_,
        reachable,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--tolerances", type=float, nargs="*", default=[0.02, 0.05, 0.1]
    )
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--validation-size", type=float, default=None)
    args = parser.parse_args(argv)
    tasks = [
        (d, t, s, args.validation_size)
        for d in args.datasets
        for t in args.tolerances
        for s in range(args.seeds)
    ]
    rows = Parallel(n_jobs=args.n_jobs)(delayed(run)(*task) for task in tasks)
    print(
        f"{'data':14s} {'eps':>5s} {'valid disp.':>14s} {'within':>7s} "
        f"{'test disp.':>14s} {'test acc':>14s} {'epoch':>6s}"
    )
    for dataset in args.datasets:
        for tolerance in args.tolerances:
            v = np.array([r[2:] for r in rows if r[:2] == (dataset, tolerance)], float)
            within = f"{int((v[:, 0] <= tolerance + 1e-12).sum())}/{len(v)}"
            reach = int(v[:, 4].sum())
            print(
                f"{dataset:14s} {tolerance:5.2f} {v[:, 0].mean():.3f} +- "
                f"{v[:, 0].std():.3f} {within:>7s} {v[:, 1].mean():.3f} +- "
                f"{v[:, 1].std():.3f} {v[:, 2].mean():.3f} +- {v[:, 2].std():.3f} "
                f"{v[:, 3].mean():6.1f}   (reachable in {reach}/{len(v)})"
            )


if __name__ == "__main__":
    main()
