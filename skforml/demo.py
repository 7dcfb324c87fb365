"""FORML next to fairlearn's mitigators on the bundled Adult data.

Run ``python -m skforml.demo`` (2-3 minutes on 2 CPU cores) or
``python -m skforml.demo --quick`` (about 10 seconds). The demo predicts
income > $50K with ``sex`` as the sensitive feature, fits every method of
:func:`skforml.default_estimators` on the same train/test splits, prints
accuracy and the equal-opportunity gaps (mean ± std over the seeds) and
saves a plot of accuracy against TPRD.

The features are :func:`skforml.datasets.load_adult`'s preprocessed array
(standardised numbers, one-hot categories, ``sex`` and ``race`` included).
Its scaler and encoder were fitted on all rows -- unsupervised statistics
only, so the test labels do not leak.
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from ._compare import compare, default_estimators
from .datasets import load_adult

__all__ = ["main"]

# Full run: 117 s (3 seeds, one thread) on a shared 2-core machine; EG around
# the network (about 26 network fits per seed) takes half of it.
FULL = {
    "train_rows": 12000,
    "test_rows": None,
    "seeds": 3,
    "suite": {},  # default_estimators' defaults
}
QUICK = {
    "train_rows": 2000,
    "test_rows": 3000,
    "seeds": 1,
    "suite": {
        "forml_epochs": 12,
        "backbone_epochs": 8,
        "mitigator_epochs": 3,
        "eg_max_iter": 10,
        "neural_eg_max_iter": 2,
        "grid_size": 5,
        "neural_grid_size": 3,
    },
}


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m skforml.demo",
        description="Compare FORML with fairlearn's mitigators on UCI Adult "
        "(income > $50K, sensitive feature: sex).",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds)")
    parser.add_argument(
        "--seeds", type=int, help="number of seeds (default 3; 1 quick)"
    )
    parser.add_argument(
        "--train-rows",
        type=int,
        help="training rows per seed (default 12000; 2000 quick)",
    )
    parser.add_argument(
        "--test-rows",
        type=int,
        help="test rows per seed (default: all other rows; 3000 quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("forml_comparison.png"),
        help="where to save the plot (default: ./forml_comparison.png)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (default 1: the networks are tiny, and "
        "extra threads mostly contend for the cores)",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="fits run in parallel (joblib)"
    )
    return parser


@contextlib.contextmanager
def _threads(n_threads):
    """Limit torch's and the BLAS libraries' threads, then restore them."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _adult_rows(train_rows, test_rows):
    """Adult's features, labels and sex, cut to ``train_rows + test_rows``."""
    adult = load_adult()
    X, y = adult.data, adult.target
    sex = adult.sensitive["sex"].to_numpy()
    n_rows = len(y) if test_rows is None else train_rows + test_rows
    if not 0 < train_rows < min(n_rows, len(y)):
        raise ValueError(
            f"--train-rows must be between 1 and {min(n_rows, len(y)) - 1}, "
            f"got {train_rows}."
        )
    if n_rows < len(y):
        strata = np.char.add(sex.astype(str), y.astype(str))
        keep, _ = train_test_split(
            np.arange(len(y)), train_size=n_rows, stratify=strata, random_state=0
        )
        X, y, sex = X[keep], y[keep], sex[keep]
    return X, y, sex


def main(argv=None):
    """Run the comparison, print its table and save its plot.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments; None reads ``sys.argv``. See
        ``python -m skforml.demo --help``.

    Returns
    -------
    result : ComparisonResult
        The comparison; see :func:`skforml.compare`.

    Examples
    --------
    >>> from skforml.demo import main
    >>> result = main(["--quick", "--output", "demo.png"])  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP

    """
    args = _parser().parse_args(argv)
    settings = QUICK if args.quick else FULL
    train_rows, test_rows, n_seeds = (
        settings[name] if value is None else value
        for name, value in [
            ("train_rows", args.train_rows),
            ("test_rows", args.test_rows),
            ("seeds", args.seeds),
        ]
    )
    if n_seeds < 1:
        raise SystemExit("--seeds must be at least 1.")
    X, y, sex = _adult_rows(train_rows, test_rows)
    print(
        f"UCI Adult: {train_rows} training rows, {len(y) - train_rows} test rows, "
        f"{n_seeds} seed(s); sensitive feature: sex",
        file=sys.stderr,
    )
    start = time.perf_counter()
    with _threads(args.threads):
        result = compare(
            default_estimators(**settings["suite"]),
            X,
            y,
            sensitive_features=sex,
            test_size=len(y) - train_rows,
            seeds=range(n_seeds),
            n_jobs=args.n_jobs,
        )
    seconds = time.perf_counter() - start
    print(f"\n{result.summary_text}")
    print(
        "TPRD / FPRD: max - min true / false positive rate over the sexes; "
        "max FNR: worst group's false-negative rate."
    )
    figure = result.plot()
    figure.savefig(args.output, dpi=120)
    # Free the pyplot figure: tests and notebooks call main() repeatedly.
    import matplotlib.pyplot as plt

    plt.close(figure)
    print(f"Plot saved to {args.output}; total {seconds:.0f} s.")
    return result


if __name__ == "__main__":
    main()
