"""What the experiments share: splits, one seeded fit and its scores, results.

:func:`~skforml.compare` and :func:`~skforml.sweep` (and the demo) fit
estimators on the same group-and-label stratified splits, score each fit
the same way and collect the rows in the caller's order.
"""

import contextlib
import threading
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_consistent_length
from threadpoolctl import threadpool_limits

from ..checks._groups import encode_sensitive_features, stratum_ids
from ..metrics import fairness_report, group_disparity
from ..metrics._disparity import REPORT_METRICS
from ._fairlearn_compat import fit_predict, seeded_clone

# The test metrics of every fit: the fairness report's columns.
METRICS = REPORT_METRICS


# skforml's networks seed torch's process-wide generator for the length of
# a fit (``torch.random.fork_rng``), so two fits on threads of one process
# (joblib's threading backend, a dask worker's threads) would draw from each
# other's stream: fits in one process take turns.
FIT_LOCK = threading.Lock()


@contextlib.contextmanager
def thread_cap(threads):
    """Limit torch's and the BLAS libraries' threads; None leaves them."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def fit_score(estimator, seed, split, data, threads=None, notions=()):
    """Fit a seeded clone on the training rows; test metrics and fit seconds.

    The metrics are :data:`METRICS` of the report and the disparity of each
    of ``notions`` (results column names) that it does not report.
    """
    X, y, sensitive = data
    train, test = split
    with FIT_LOCK, thread_cap(threads):
        y_pred, seconds = fit_predict(
            seeded_clone(estimator, seed),
            seed,
            _safe_indexing(X, train),
            _safe_indexing(y, train),
            _safe_indexing(sensitive, train),
            _safe_indexing(X, test),
            _safe_indexing(sensitive, test),
        )
    y_test, y_pred = _safe_indexing(y, test), np.asarray(y_pred)
    sensitive_test = _safe_indexing(sensitive, test)
    report = fairness_report(y_test, y_pred, sensitive_features=sensitive_test)
    scores = {metric: float(report[metric]) for metric in METRICS}
    for column in notions:
        if column not in scores:
            scores[column] = group_disparity(
                y_test, y_pred, sensitive_features=sensitive_test, constraint=column
            )
    return scores, seconds


def checked_runs(X, y, sensitive_features, seeds, test_size):
    """``(seeds, splits, data)`` of an experiment, its arguments checked.

    The seeds as distinct ints, one stratified split per seed
    (:func:`seeded_splits`) and the data every fit indexes.
    """
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be one or more distinct seeds, got {seeds}.")
    check_consistent_length(X, y, sensitive_features)
    splits = seeded_splits(y, sensitive_features, seeds, test_size)
    return seeds, splits, (X, y, sensitive_features)


def seeded_splits(y, sensitive, seeds, test_size):
    """One stratified train/test split of the row indices per seed."""
    groups, _ = encode_sensitive_features(sensitive, len(y))
    labels = LabelEncoder().fit_transform(np.asarray(y))
    strata = stratum_ids(groups, labels, labels.max() + 1)
    counts = np.bincount(strata)
    if counts[counts > 0].min() < 2:
        warnings.warn(
            "Some (group, label) cell has a single row; the splits are "
            "stratified by label only.",
            UserWarning,
            stacklevel=3,
        )
        strata = labels
    index = np.arange(len(y))
    return {
        seed: train_test_split(
            index, test_size=test_size, random_state=seed, stratify=strata
        )
        for seed in seeds
    }


def collect(outcomes, methods, seeds, *, where=(), between=()):
    """The rows in the caller's order, and the failures, each also warned.

    Parallel runs finish in any order; the rows sort by method (in the order
    of ``methods``), then by the columns ``between``, then by seed. The
    errors table has ``method``, the columns ``where`` (also named in the
    warning), ``seed`` and ``error``.
    """
    columns = ["method", *where, "seed"]
    errors = []
    for row, error in outcomes:
        if error is None:
            continue
        errors.append({column: row[column] for column in columns} | {"error": error})
        at = "".join(f" at {row[column]!r}" for column in where)
        warnings.warn(
            f"{row['method']!r}{at} failed on seed {row['seed']} and is recorded "
            f"as NaN: {error}",
            UserWarning,
            stacklevel=3,
        )
    order = {name: i for i, name in enumerate(methods)}
    rows = sorted(
        (row for row, _ in outcomes),
        key=lambda row: (
            order[row["method"]],
            *(row[column] for column in between),
            seeds.index(row["seed"]),
        ),
    )
    return rows, pd.DataFrame(errors, columns=[*columns, "error"])


def mean_std(mean, std, digits):
    if np.isnan(mean):
        return "failed"
    if np.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
