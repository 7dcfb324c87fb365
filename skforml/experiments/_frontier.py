"""Fairness-accuracy frontiers: each method swept over its own tolerance knob.

:func:`sweep` fits every method at every value of its knob (FORML's
``tolerance``, fairret's ``strength``, FairGrad's ``epsilon``, the
``difference_bound`` of a fairlearn reduction's constraint,
ThresholdOptimizer's ``tol``) on the same train/test splits as
:func:`skforml.compare`, one split per seed. :class:`FrontierResult` holds
the tidy results, each method's Pareto frontier of test accuracy against
the chosen disparity, and the most accurate setting within a few
tolerances. :func:`pareto_front` is the frontier computation itself.
"""

import inspect
import sys
import warnings

import numpy as np
import pandas as pd
from fairlearn.reductions import UtilityParity
from joblib import Parallel, delayed
from sklearn.base import clone

from ..metrics._disparity import (
    WORST_GROUP_RATES,
    column_label,
    column_name,
    notion_names,
)
from ..training._callbacks import ToleranceResolutionWarning
from ._fairlearn_compat import seeded_clone
from ._runs import METRICS, checked_runs, collect, fit_score, mean_std

__all__ = ["FrontierResult", "pareto_front", "sweep"]

COLUMNS = ["method", "setting", "value", "seed", *METRICS, "fit_seconds"]
DEFAULT_TOLERANCES = (0.01, 0.02, 0.05, 0.1)


def pareto_front(points):
    """Mask of the points that no other point beats on both axes.

    A point ``(disparity, accuracy)`` is dominated when another has a
    disparity at most as large and an accuracy at least as large, and is
    strictly better in one of them. Equal points do not dominate each other,
    so both stay on the front. Points with a NaN coordinate are never on it.

    Parameters
    ----------
    points : array-like of shape (n_points, 2)
        Disparity (lower is better) and accuracy (higher is better) of each
        point.

    Returns
    -------
    on_front : ndarray of bool of shape (n_points,)
        True for the points on the Pareto front.

    Examples
    --------
    >>> from skforml import pareto_front
    >>> pareto_front([[0.10, 0.85], [0.02, 0.84], [0.05, 0.83], [0.02, 0.84]])
    array([ True,  True, False,  True])

    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            "points must have shape (n_points, 2) (disparity, accuracy), got an "
            f"array of shape {points.shape}."
        )
    on_front = np.zeros(len(points), dtype=bool)
    valid = np.flatnonzero(~np.isnan(points).any(axis=1))
    disparity, accuracy = points[valid, 0], points[valid, 1]
    # Increasing disparity, and the most accurate first among equal ones: a
    # point is on the front when it beats every point before it.
    best, last = -np.inf, None
    for i in valid[np.lexsort((-accuracy, disparity))]:
        point = tuple(points[i])
        if points[i, 1] > best or point == last:
            on_front[i] = True
            best, last = points[i, 1], point
    return on_front


def _set_knob(estimator, knob, value):
    """Set ``knob`` with ``set_params``, or rebuild a fairlearn constraint.

    A fairlearn reduction's bound lives in its constraint object, which has
    no ``set_params``: ``constraints__difference_bound`` builds a fresh
    constraint of the same class with that bound.
    """
    if knob is None:
        return estimator
    params = estimator.get_params(deep=True)
    if knob in params:
        return estimator.set_params(**{knob: value})
    owner_name, _, leaf = knob.rpartition("__")
    owner = params.get(owner_name)
    if leaf == "difference_bound" and isinstance(owner, UtilityParity):
        if owner.ratio != 1.0:
            raise ValueError(
                f"{knob!r} cannot be swept on a constraint with a ratio_bound; "
                "pass a constraint defined by its difference_bound."
            )
        return estimator.set_params(**{owner_name: type(owner)(difference_bound=value)})
    raise ValueError(
        f"{knob!r} is not a parameter of {type(estimator).__name__} (nor the "
        "difference_bound of a fairlearn constraint in it)."
    )


def _check_methods(methods):
    """``{name: (estimator, knob, values)}`` from the caller's dict."""
    if not isinstance(methods, dict) or not methods:
        raise TypeError(
            "methods must be a non-empty dict of name -> estimator or "
            "(estimator, {knob: values})."
        )
    checked = {}
    for name, spec in methods.items():
        estimator, grid = spec if isinstance(spec, tuple) else (spec, {})
        if not isinstance(grid, dict) or len(grid) > 1:
            raise ValueError(
                f"The sweep of {name!r} must be a dict with one knob and its "
                f"values, or empty for a single point; got {grid!r}."
            )
        knob, values = next(iter(grid.items()), (None, [None]))
        values = list(values)
        if not values:
            raise ValueError(f"The knob {knob!r} of {name!r} has no values.")
        for value in values:  # fail now, not once per fit
            _set_knob(clone(estimator), knob, value)
        checked[name] = (estimator, knob, values)
    return checked


def _traits(estimator):
    """Whether predict needs the sensitive feature, and whether it draws."""
    parameters = inspect.signature(seeded_clone(estimator, 0).predict).parameters
    sensitive = parameters.get("sensitive_features")
    return {
        "sensitive_at_predict": sensitive is not None
        and sensitive.default is inspect.Parameter.empty,
        "randomised": "random_state" in parameters,
    }


def _run_task(name, setting, value, estimator, seed, split, data, threads, column):
    """One fit: its row, its error (or None) and its unresolved tolerance.

    ``column`` is the frontier's disparity, measured besides :data:`METRICS`.

    A :class:`ToleranceResolutionWarning` is returned rather than printed by
    a worker (the sweep summarises them once); other warnings pass through.
    """
    row = dict.fromkeys([*COLUMNS, column], np.nan) | {
        "method": name,
        "setting": setting,
        "value": value,
        "seed": seed,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ToleranceResolutionWarning)
        try:
            scores, seconds = fit_score(
                estimator, seed, split, data, threads, notions=(column,)
            )
        except Exception as exc:  # noqa: BLE001 -- one failure must not lose the sweep
            return row, f"{type(exc).__name__}: {exc}", None
    unresolved = None
    for record in caught:
        if isinstance(record.message, ToleranceResolutionWarning):
            unresolved = record.message
        else:
            warnings.warn_explicit(
                record.message, record.category, record.filename, record.lineno
            )
    return row | scores | {"fit_seconds": seconds}, None, unresolved


def _warn_unresolved(unresolved):
    """One warning for the fits whose monitored rows could not resolve tolerance."""
    for method, found in unresolved.items():
        errors = [w.standard_error for w in found]
        warnings.warn(
            ToleranceResolutionWarning(
                f"{method}: in {len(found)} fits the monitored validation rows "
                f"resolved the disparity only to +/-{min(errors):.3f} to "
                f"+/-{max(errors):.3f} (one standard error), more than half of "
                "the tolerance: tolerances below about twice that are met or "
                "missed by chance. Raise validation_size or train on more rows."
            ),
            stacklevel=3,
        )


def sweep(
    methods,
    X,
    y,
    *,
    sensitive_features,
    disparity="tprd",
    tolerances=DEFAULT_TOLERANCES,
    test_size=0.3,
    seeds=(0, 1, 2),
    n_jobs=None,
    threads_per_job=1,
    progress=True,
):
    """Sweep each method over its tolerance knob on shared train/test splits.

    Every method is fitted at every value of its knob on the same splits,
    one per seed, stratified by (group, label) as in
    :func:`skforml.compare`, and scored on the test rows with
    :func:`skforml.metrics.fairness_report`. Each fit is a clone with every
    ``random_state`` set to the split's seed -- the same for every value of
    the knob, so that the steps of a frontier come from the knob and not
    from a different initialisation. The sensitive features reach each
    estimator the way :func:`skforml.compare` hands them.

    The fits are independent joblib tasks: ``n_jobs`` and any joblib
    backend (``joblib.parallel_config(backend="dask")`` for a
    ``dask.distributed`` cluster) give the same table, since each task
    carries its own seed and caps torch's and BLAS's threads at
    ``threads_per_job``. Fits on threads of one process take turns, because
    skforml's networks seed torch's process-wide generator; use processes
    (joblib's default ``loky``, dask workers) for speed.

    Parameters
    ----------
    methods : dict of str to estimator or (estimator, dict)
        Methods by display name. ``(estimator, {knob: values})`` sweeps one
        parameter, set with ``set_params`` (``"constraints__difference_bound"``
        sets the bound of a fairlearn reduction's constraint); a bare
        estimator is a single point.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Features.
    y : array-like of shape (n_samples,)
        Binary labels (fairlearn's mitigators need 0 and 1).
    sensitive_features : array-like, Series or DataFrame
        Group of each row.
    disparity : str, default="tprd"
        The frontier's disparity axis: a fairness notion of the one
        vocabulary (a constraint name or alias such as
        ``"true_positive_rate_parity"`` or ``"equalized_odds"``, see
        :func:`skforml.metrics.group_disparity`), or a column of
        :func:`skforml.metrics.fairness_report` (``"tprd"``, ``"fprd"``,
        ``"max_fnr"``, ``"max_fpr"``). A notion the report has is recorded
        under its short name (``"true_positive_rate_parity"``: ``"tprd"``);
        another adds its own column to the results.
    tolerances : sequence of float, default=(0.01, 0.02, 0.05, 0.1)
        Disparities at which :attr:`FrontierResult.table` reports each
        method's best accuracy.
    test_size : float or int, default=0.3
        Share or number of rows held out for scoring.
    seeds : iterable of int, default=(0, 1, 2)
        One split and one estimator seed per value.
    n_jobs : int, default=None
        Fits run in parallel with joblib; None runs them one by one unless
        a ``joblib.parallel_config`` says otherwise.
    threads_per_job : int or None, default=1
        torch and BLAS threads of each fit; None leaves them as they are.
    progress : bool, default=True
        Print a line per finished fit to stderr.

    Returns
    -------
    result : FrontierResult
        Results, points, frontiers, the table and the plot.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skforml import sweep
    >>> from skforml.datasets import make_biased_classification
    >>> X, y, group = make_biased_classification(n_samples=400, random_state=0)
    >>> result = sweep({"LogReg": (LogisticRegression(), {"C": [0.01, 1.0]})},
    ...                X, y, sensitive_features=group, seeds=(0, 1),
    ...                progress=False)
    >>> result.results.shape
    (4, 10)
    >>> list(result.table.index)
    ['LogReg']

    """
    try:
        column = column_name(disparity)
    except ValueError:
        raise ValueError(
            f"disparity must be one of {[*notion_names(), *WORST_GROUP_RATES]}, "
            f"got {disparity!r}."
        ) from None
    tolerances = sorted(float(tol) for tol in tolerances)
    methods = _check_methods(methods)
    seeds, splits, data = checked_runs(X, y, sensitive_features, seeds, test_size)
    tasks = [
        (name, setting, value, _set_knob(clone(estimator), knob, value), seed)
        for seed in seeds
        for name, (estimator, knob, values) in methods.items()
        for setting, value in enumerate(values)
    ]
    outcomes = []
    jobs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_run_task)(*task[:4], seed, splits[seed], data, threads_per_job, column)
        for *task, seed in tasks
    )
    unresolved = {}
    for row, error, tolerance_unresolved in jobs:
        outcomes.append((row, error))
        if tolerance_unresolved is not None:
            unresolved.setdefault(row["method"], []).append(tolerance_unresolved)
        if progress:
            knob = methods[row["method"]][1]
            setting = "" if knob is None else f" {knob}={_value(row['value'])}"
            outcome = f"{row['fit_seconds']:.1f}s" if error is None else "failed"
            if tolerance_unresolved is not None:
                outcome += " (tolerance below the noise)"
            print(
                f"[{len(outcomes)}/{len(tasks)}] {row['method']}{setting} "
                f"seed={row['seed']} {outcome}",
                file=sys.stderr,
                flush=True,
            )
    _warn_unresolved(unresolved)
    rows, errors = collect(
        outcomes, methods, seeds, where=("value",), between=("setting",)
    )
    info = pd.DataFrame(
        [
            {"method": name, "knob": knob} | _traits(estimator)
            for name, (estimator, knob, _) in methods.items()
        ]
    ).set_index("method")
    results = pd.DataFrame(rows, columns=list(dict.fromkeys([*COLUMNS, column])))
    # Keep the knob values as given: a float column would turn None into NaN.
    results["value"] = pd.Series([row["value"] for row in rows], dtype=object)
    return FrontierResult(
        results,
        info,
        disparity=column,
        tolerances=tolerances,
        errors=errors,
    )


class FrontierResult:
    """Outcome of :func:`sweep`.

    Parameters
    ----------
    results : DataFrame
        One row per method, knob value and seed: ``method``, ``setting``
        (position of the value in the method's sweep), ``value``, ``seed``,
        ``accuracy``, ``tprd``, ``max_fnr``, ``fprd``, ``max_fpr`` and
        ``fit_seconds``; NaN for failed fits.
    methods : DataFrame
        Indexed by method: ``knob`` (None for a single point),
        ``sensitive_at_predict`` and ``randomised``.
    disparity : str, default="tprd"
        The frontier's disparity column, or a notion whose column it is (as
        in :func:`sweep`).
    tolerances : sequence of float, default=(0.01, 0.02, 0.05, 0.1)
        Tolerances of :attr:`table`.
    errors : DataFrame, default=None
        ``method``, ``value``, ``seed`` and ``error`` of every failed fit.

    Attributes
    ----------
    points : DataFrame
        One row per method and knob value: ``value``, the mean and standard
        deviation over the seeds of ``accuracy`` and of the disparity (as
        ``disparity`` and ``disparity_std``), ``fit_seconds`` (mean), and
        ``pareto``: whether the mean point is on the method's frontier.
    frontier : DataFrame
        The rows of :attr:`points` on each method's frontier, by increasing
        disparity.
    table : DataFrame
        One row per method: ``knob``, ``sensitive_at_predict``,
        ``randomised``, ``fit_seconds`` (mean of one fit), ``sweep_seconds``
        (sum over every fit of the sweep) and, for every tolerance, the
        best mean accuracy within it (NaN when no setting is within it).

    Examples
    --------
    >>> import pandas as pd
    >>> from skforml import FrontierResult
    >>> rows = pd.DataFrame({"method": "A", "setting": [0, 1], "value": [1, 2],
    ...                      "seed": 0, "accuracy": [0.80, 0.85],
    ...                      "tprd": [0.01, 0.08], "max_fnr": 0.3, "fprd": 0.1,
    ...                      "max_fpr": 0.2, "fit_seconds": 1.0})
    >>> methods = pd.DataFrame({"knob": ["C"], "sensitive_at_predict": [False],
    ...                         "randomised": [False]}, index=pd.Index(["A"]))
    >>> result = FrontierResult(rows, methods, tolerances=(0.05, 0.1))
    >>> result.table[["accuracy@0.05", "accuracy@0.1"]].to_numpy().tolist()
    [[0.8, 0.85]]

    """

    def __init__(
        self,
        results,
        methods,
        *,
        disparity="tprd",
        tolerances=DEFAULT_TOLERANCES,
        errors=None,
    ):
        self.results = results
        self.methods = methods
        self.disparity = disparity = column_name(disparity)
        self.tolerances = list(tolerances)
        self.errors = errors
        grouped = results.groupby(["method", "setting"], sort=False)
        points = grouped.agg(
            accuracy=("accuracy", "mean"),
            accuracy_std=("accuracy", "std"),
            disparity=(disparity, "mean"),
            disparity_std=(disparity, "std"),
            fit_seconds=("fit_seconds", "mean"),
        )
        # The knob values as given: "first" skips None (FORML's tolerance=None)
        # and an aggregation would turn it into NaN.
        points.insert(0, "value", grouped["value"].nth(0).to_numpy())
        points["pareto"] = False
        for method in points.index.unique("method"):
            mine = points.loc[method]
            front = pareto_front(mine[["disparity", "accuracy"]].to_numpy())
            points.loc[method, "pareto"] = front
        self.points = points
        self.frontier = (
            points[points["pareto"]]
            .reset_index()
            .sort_values(["method", "disparity"], key=self._method_order)
            .set_index(["method", "setting"])
        )
        self.table = self._table()

    def _method_order(self, column):
        if column.name != "method":
            return column
        return column.map({name: i for i, name in enumerate(self.methods.index)})

    def best_within(self, tolerance):
        """Each method's most accurate setting with mean disparity within.

        Parameters
        ----------
        tolerance : float
            Largest mean disparity (over the seeds) allowed.

        Returns
        -------
        best : DataFrame
            One row per method, as in :attr:`points` (with ``setting``);
            NaN where no setting of the method is within the tolerance.

        """
        within = self.points[self.points["disparity"] <= tolerance].reset_index()
        best = within.loc[within.groupby("method", sort=False)["accuracy"].idxmax()]
        return best.set_index("method").reindex(self.methods.index)

    def _table(self):
        table = self.methods.copy()
        seconds = self.results.groupby("method", sort=False)["fit_seconds"]
        table["fit_seconds"] = seconds.mean()
        table["sweep_seconds"] = seconds.sum()
        for tolerance in self.tolerances:
            table[f"accuracy@{tolerance:g}"] = self.best_within(tolerance)["accuracy"]
        return table

    @property
    def table_text(self):
        """:attr:`table` as text: the best setting's accuracy ± std per tolerance."""
        n_seeds = self.results["seed"].nunique()
        spread = "one seed" if n_seeds == 1 else f"mean ± std over {n_seeds} seeds"
        name = column_label(self.disparity)
        text = pd.DataFrame(index=self.methods.index)
        for tolerance in self.tolerances:
            best = self.best_within(tolerance)
            text[f"{name}≤{tolerance:g}"] = [
                _cell(row, self.methods.loc[method, "knob"])
                for method, row in best.iterrows()
            ]
        traits = pd.DataFrame(index=self.methods.index)
        traits["knob"] = [
            "-" if pd.isna(knob) else knob.rpartition("__")[2]
            for knob in self.methods["knob"]
        ]
        traits["sensitive at predict"] = _yes_no(self.methods["sensitive_at_predict"])
        traits["randomised"] = _yes_no(self.methods["randomised"])
        traits["fit s"] = self.table["fit_seconds"].map("{:.1f}".format)
        traits["sweep fit s"] = self.table["sweep_seconds"].map("{:.0f}".format)
        text.index.name = traits.index.name = None
        return (
            f"Best test accuracy with mean {name} within each tolerance "
            f"({spread}; [knob value]):\n{text.to_string()}\n\n"
            f"Methods (fit s: one fit; sweep fit s: all fits of the sweep):\n"
            f"{traits.to_string()}"
        )

    @property
    def points_text(self):
        """:attr:`points` as text: each setting's accuracy and disparity."""
        name = column_label(self.disparity)
        rows = []
        for (method, _), point in self.points.iterrows():
            knob = self.methods.loc[method, "knob"]
            rows.append(
                {
                    "method": method,
                    "setting": "-"
                    if pd.isna(knob)
                    else f"{knob.rpartition('__')[2]}={_value(point['value'])}",
                    "accuracy": mean_std(point["accuracy"], point["accuracy_std"], 3),
                    name: mean_std(point["disparity"], point["disparity_std"], 3),
                    "frontier": "*" if point["pareto"] else "",
                }
            )
        return pd.DataFrame(rows).to_string(index=False)

    def plot(self, ax=None):
        """Plot each method's points and Pareto frontier.

        Mean test accuracy (y) against mean disparity (x), with error bars of
        one standard deviation over the seeds; the frontier is the staircase
        of the best accuracy within each disparity. Square markers: the
        method needs the sensitive feature at prediction time; hollow
        markers: its predictions are randomised. Dotted lines mark the
        tolerances of :attr:`table`.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.

        Returns
        -------
        fig : matplotlib Figure
            The figure of ``ax``.

        """
        from ._frontier_plot import plot_frontier

        return plot_frontier(self, ax=ax)

    def __str__(self):
        return self.table_text

    def __repr__(self):
        return f"<FrontierResult: {len(self.methods)} methods>\n{self.table_text}"


def _cell(row, knob):
    if np.isnan(row["accuracy"]):
        return "-"
    setting = "" if pd.isna(knob) else f" [{_value(row['value'])}]"
    return mean_std(row["accuracy"], row["accuracy_std"], 3) + setting


def _yes_no(flags):
    return flags.map({True: "yes", False: "no"})


def _value(value):
    """A knob value for a label: numbers in short form."""
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)
