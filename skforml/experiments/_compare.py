"""Side-by-side comparison of FORML with fairlearn's mitigators.

:func:`compare` fits every named estimator on the same group-and-label
stratified train/test splits, one per seed, and scores the test predictions
with :func:`skforml.metrics.fairness_report`. :func:`default_estimators`
builds the suite it runs by default.
"""

import sys

import numpy as np
import pandas as pd
from fairlearn.reductions import (
    ExponentiatedGradient,
    GridSearch,
    TruePositiveRateParity,
)
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression

from .._baselines import ReweightedClassifier
from .._classifier import FORMLClassifier
from ..metrics._disparity import column_label
from ._fairlearn_compat import ThresholdOptimizer
from ._plotting import plot_comparison
from ._runs import METRICS, checked_runs, collect, fit_score, mean_std

__all__ = ["ComparisonResult", "compare", "default_estimators", "plot_comparison"]

COLUMNS = ["method", "seed", *METRICS, "fit_seconds"]
# Columns of the printed summary, with their headers.
_PRINTED = {
    column: column_label(column) for column in ("accuracy", "tprd", "max_fnr", "fprd")
} | {"fit_seconds": "fit s"}


def default_estimators(
    *,
    forml_epochs=40,
    backbone_epochs=20,
    mitigator_epochs=10,
    hidden_layer_sizes=(64,),
    batch_size=128,
    eg_max_iter=50,
    neural_eg_max_iter=5,
    grid_size=10,
    neural_grid_size=5,
    neural_mitigators=True,
):
    """Build the default suite of :func:`compare`.

    FORML; the same network trained uniformly; an unmitigated logistic
    regression; and fairlearn's ExponentiatedGradient, GridSearch and
    ThresholdOptimizer around logistic regression and around the network,
    all under true-positive-rate parity (equal opportunity, the gap that
    ``tprd`` measures). Edit the returned dict to add or drop methods.

    Parameters
    ----------
    forml_epochs : int, default=40
        Epochs of FORML. Each weight moves once per epoch, so FORML wants
        about twice the epochs of plain training.
    backbone_epochs : int, default=20
        Epochs of the uniformly trained network (``"Uniform"`` and inside
        ThresholdOptimizer).
    mitigator_epochs : int, default=10
        Epochs of each network fit inside ExponentiatedGradient and
        GridSearch, which fit it many times (about five per EG iteration).
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of every network.
    batch_size : int, default=128
        Rows per step of every network.
    eg_max_iter, neural_eg_max_iter : int, default=50, 5
        Iterations (one fit each) of ExponentiatedGradient around logistic
        regression and around the network.
    grid_size, neural_grid_size : int, default=10, 5
        Grid points (one fit each) of GridSearch around logistic regression
        and around the network.
    neural_mitigators : bool, default=True
        Include the fairlearn mitigators around the network (the costly part
        of the suite).

    Returns
    -------
    estimators : dict of str to estimator
        Unfitted estimators in display order.

    Examples
    --------
    >>> from skforml import default_estimators
    >>> suite = default_estimators(neural_mitigators=False)
    >>> list(suite)  # doctest: +NORMALIZE_WHITESPACE
    ['FORML', 'Uniform', 'LogReg', 'EG (LogReg)', 'GridSearch (LogReg)',
     'ThresholdOpt (LogReg)']

    """
    network = {"hidden_layer_sizes": hidden_layer_sizes, "batch_size": batch_size}

    def backbone(epochs):
        return ReweightedClassifier(weighting="uniform", max_epochs=epochs, **network)

    def mitigators(base, label, eg_iter, grid):
        return {
            f"EG ({label})": ExponentiatedGradient(
                base, constraints=TruePositiveRateParity(), max_iter=eg_iter
            ),
            f"GridSearch ({label})": GridSearch(
                base, constraints=TruePositiveRateParity(), grid_size=grid
            ),
            f"ThresholdOpt ({label})": ThresholdOptimizer(
                estimator=base,
                constraints="true_positive_rate_parity",
                objective="accuracy_score",
                predict_method="predict_proba",
            ),
        }

    logreg = LogisticRegression(max_iter=1000)
    suite = {
        "FORML": FORMLClassifier(max_epochs=forml_epochs, **network),
        "Uniform": backbone(backbone_epochs),
        "LogReg": logreg,
        **mitigators(logreg, "LogReg", eg_max_iter, grid_size),
    }
    if neural_mitigators:
        suite.update(
            mitigators(
                backbone(mitigator_epochs),
                "MLP",
                neural_eg_max_iter,
                neural_grid_size,
            )
        )
        # ThresholdOptimizer fits the network once: give it the full epochs.
        suite["ThresholdOpt (MLP)"].set_params(estimator=backbone(backbone_epochs))
    return suite


def _run_one(name, estimator, seed, split, data):
    """One row of the results table; metrics are NaN when the run fails."""
    row = dict.fromkeys(COLUMNS, np.nan) | {"method": name, "seed": seed}
    try:
        scores, seconds = fit_score(estimator, seed, split, data)
    except Exception as exc:  # noqa: BLE001 -- one failure must not lose the table
        return row, f"{type(exc).__name__}: {exc}"
    row.update(scores)
    row["fit_seconds"] = seconds
    return row, None


class _Progress:
    """One stderr line per fit: ``[3/21] FORML seed=0 ... done 12.3s``."""

    def __init__(self, n_tasks, enabled):
        self.n_tasks, self.enabled, self.position = n_tasks, enabled, 0

    def start(self, name, seed):
        self.position += 1
        if self.enabled:
            width = len(str(self.n_tasks))
            print(
                f"[{self.position:>{width}}/{self.n_tasks}] {name} seed={seed} ... ",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def end(self, row, error):
        if self.enabled:
            if error is None:
                outcome = f"{row['fit_seconds']:.1f}s"
            else:
                outcome = f"failed ({error.split(':')[0]})"
            print(outcome, file=sys.stderr, flush=True)


def compare(
    estimators,
    X,
    y,
    *,
    sensitive_features,
    test_size=0.3,
    seeds=(0, 1, 2),
    progress=True,
    n_jobs=None,
):
    """Fit estimators on the same splits and compare accuracy and fairness.

    For every seed the rows are split once into train and test sets,
    stratified by (group, label), and every estimator is fitted on that
    training set: a clone with every ``random_state`` parameter (nested ones
    too, e.g. ``estimator__random_state``) set to the seed. The test
    predictions are scored with :func:`skforml.metrics.fairness_report`.

    ``sensitive_features`` reach each estimator the way it takes them:
    fairlearn's ``ExponentiatedGradient``, ``GridSearch`` and
    ``ThresholdOptimizer`` in ``fit`` (the latter also in ``predict``),
    FORML and any estimator whose ``fit``/``predict`` name a
    ``sensitive_features`` parameter likewise; other estimators never see
    them. Randomised predictors get ``random_state=seed`` in ``predict``.
    A fairlearn ``ThresholdOptimizer`` is run as
    :class:`skforml.experiments._fairlearn_compat.ThresholdOptimizer`, which works
    around a pandas 3 failure of fairlearn 0.15 on float32 scores.

    A run that raises records NaN and emits a warning naming the method,
    so one failure does not lose the table.

    Parameters
    ----------
    estimators : dict of str to estimator, or None
        Estimators by display name; None runs :func:`default_estimators`.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Binary labels (fairlearn's mitigators need 0 and 1).
    sensitive_features : array-like, Series or DataFrame
        Group of each row; several columns form intersectional groups.
    test_size : float or int, default=0.3
        Share or number of rows held out for scoring.
    seeds : iterable of int, default=(0, 1, 2)
        One split and one estimator seed per value.
    progress : bool, default=True
        Print a line per fit to stderr (method, seed, fit time).
    n_jobs : int, default=None
        Fits run in parallel with joblib; None runs them one by one.

    Returns
    -------
    result : ComparisonResult
        ``results`` (one row per method and seed), ``summary`` (mean and
        std per method), ``errors`` and :meth:`~ComparisonResult.plot`.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skforml import compare
    >>> from skforml.datasets import make_biased_classification
    >>> X, y, group = make_biased_classification(n_samples=400, random_state=0)
    >>> result = compare({"LogReg": LogisticRegression()}, X, y,
    ...                  sensitive_features=group, seeds=(0, 1), progress=False)
    >>> result.results.shape
    (2, 8)
    >>> list(result.summary.index)
    ['LogReg']

    """
    if estimators is None:
        estimators = default_estimators()
    if not isinstance(estimators, dict) or not estimators:
        raise TypeError("estimators must be a non-empty dict of name -> estimator.")
    seeds, splits, data = checked_runs(X, y, sensitive_features, seeds, test_size)
    tasks = [(name, est, seed) for seed in seeds for name, est in estimators.items()]
    show = _Progress(len(tasks), progress)
    outcomes = []
    if n_jobs in (None, 1):
        for name, est, seed in tasks:
            show.start(name, seed)
            outcomes.append(_run_one(name, est, seed, splits[seed], data))
            show.end(*outcomes[-1])
    else:
        jobs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_run_one)(name, est, seed, splits[seed], data)
            for name, est, seed in tasks
        )
        for row, error in jobs:
            show.start(row["method"], row["seed"])
            show.end(row, error)
            outcomes.append((row, error))

    rows, errors = collect(outcomes, estimators, seeds)
    return ComparisonResult(pd.DataFrame(rows, columns=COLUMNS), errors)


class ComparisonResult:
    """Outcome of :func:`compare`.

    Parameters
    ----------
    results : DataFrame
        One row per method and seed, with the columns ``method``, ``seed``,
        ``accuracy``, ``tprd``, ``max_fnr``, ``fprd``, ``max_fpr`` and
        ``fit_seconds``; NaN for failed runs.
    errors : DataFrame
        ``method``, ``seed`` and ``error`` of every failed run.

    Attributes
    ----------
    results, errors : DataFrame
        As given.
    summary : DataFrame
        Mean and standard deviation over the seeds of every metric and of
        the fit time, one row per method (in the order given to
        :func:`compare`); columns are ``(metric, "mean" | "std")``. Failed
        runs are left out; a method that failed on every seed has NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from skforml import ComparisonResult
    >>> rows = pd.DataFrame({"method": ["A", "A"], "seed": [0, 1],
    ...                      "accuracy": [0.8, 0.9], "tprd": [0.1, 0.2],
    ...                      "max_fnr": 0.3, "fprd": 0.1, "max_fpr": 0.2,
    ...                      "fit_seconds": 1.0})
    >>> round(float(ComparisonResult(rows).summary.loc["A", ("accuracy", "mean")]), 3)
    0.85

    """

    def __init__(self, results, errors=None):
        self.results = results
        self.errors = (
            pd.DataFrame(columns=[*COLUMNS[:2], "error"]) if errors is None else errors
        )
        self.summary = results.groupby("method", sort=False)[
            [*METRICS, "fit_seconds"]
        ].agg(["mean", "std"])

    @property
    def summary_text(self):
        """The summary as a printable table of ``mean ± std`` strings."""
        table = pd.DataFrame(index=self.summary.index)
        for column, header in _PRINTED.items():
            digits = 2 if column == "fit_seconds" else 3
            table[header] = [
                mean_std(mean, std, digits)
                for mean, std in self.summary[column].to_numpy()
            ]
        table.index.name = None
        n_seeds = self.results["seed"].nunique()
        note = "one seed" if n_seeds == 1 else f"mean ± std over {n_seeds} seeds"
        return f"{table.to_string()}\n({note})"

    def plot(self, ax=None):
        """Plot accuracy against TPRD; see :func:`plot_comparison`."""
        return plot_comparison(self, ax=ax)

    def __str__(self):
        return self.summary_text

    def __repr__(self):
        return f"<ComparisonResult: {len(self.summary)} methods>\n{self.summary_text}"
