"""Fairness scorers and a refit rule for scikit-learn's model selection.

:func:`make_fairness_scorer` wraps the disparity of a fairness notion
(:func:`~skforml.metrics.group_disparity`) as a scikit-learn scorer that
takes ``sensitive_features`` through metadata routing, so
``GridSearchCV(scoring={...})`` measures it per fold.
:func:`best_within_tolerance` is a ``refit`` rule: the most accurate
candidate whose mean disparity is within a tolerance.
"""

from numbers import Real

import numpy as np
import sklearn
from sklearn.metrics import make_scorer

from ._disparity import group_disparity, notion, notion_names

__all__ = ["FAIRNESS_METRICS", "best_within_tolerance", "make_fairness_scorer"]


class DisparityMetric:
    """``group_disparity`` of one notion: a picklable metric with a name."""

    def __init__(self, constraint):
        self.constraint = constraint
        self.__name__ = f"group_disparity[{constraint}]"

    def __call__(self, y_true, y_pred, *, sensitive_features, **kwargs):
        return group_disparity(
            y_true,
            y_pred,
            sensitive_features=sensitive_features,
            constraint=self.constraint,
            **kwargs,
        )

    def __repr__(self):
        return self.__name__


# Notion name -> metric, for every name (aliases and the short "tprd" and
# "fprd" included) registered when skforml is imported; each is a max - min
# over the groups, the constraint's disparity.
FAIRNESS_METRICS = {name: DisparityMetric(name) for name in notion_names()}


def make_fairness_scorer(metric, **kwargs):
    """A scikit-learn scorer of a group disparity that takes sensitive features.

    The scorer predicts with the estimator and measures one notion with
    :func:`~skforml.metrics.group_disparity` -- the constraint's disparity,
    which equals fairlearn's metric of the same name on binary targets
    (``"tprd"``: :func:`fairlearn.metrics.true_positive_rate_difference`, and
    so on) -- several times faster than
    :func:`skforml.metrics.fairness_report`, which computes every rate.
    A disparity is better when lower, so the scorer returns *minus* the
    disparity, as scikit-learn maximises scores; ``cv_results_`` then holds
    negative values (:func:`best_within_tolerance` reads either sign).

    The sensitive features reach the scorer by metadata routing
    (``sklearn.set_config(enable_metadata_routing=True)``): when routing is
    enabled as the scorer is made, it already requests them, as if by
    ``.set_score_request(sensitive_features=True)``; otherwise make that
    call once routing is on.

    Parameters
    ----------
    metric : str or Constraint
        The notion, a name of the one vocabulary (see
        :func:`~skforml.metrics.group_disparity`): a constraint name such as
        ``"true_positive_rate_parity"``, ``"false_positive_rate_parity"``,
        ``"equalized_odds"``, ``"error_rate_parity"`` or
        ``"demographic_parity"``, an alias, your own registered constraint's
        name, ``"tprd"`` or ``"fprd"`` (the first two), or an instance.
    **kwargs : dict
        Passed to :func:`~skforml.metrics.group_disparity`, e.g.
        ``pos_label``.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y, sensitive_features=...)``, minus the
        disparity of ``estimator.predict(X)``.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skforml.metrics import make_fairness_scorer
    >>> X, y = [[0], [1], [2], [3]], [0, 0, 1, 1]
    >>> clf = LogisticRegression().fit(X, y)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scorer = make_fairness_scorer("tprd")
    ...     print(scorer(clf, X, y, sensitive_features=["a", "b", "a", "b"]))
    -0.0

    """
    try:
        notion(metric)
    except ValueError:
        raise ValueError(
            f"metric must be one of {notion_names()} or a Constraint, got {metric!r}."
        ) from None
    scorer = make_scorer(DisparityMetric(metric), greater_is_better=False, **kwargs)
    if sklearn.get_config()["enable_metadata_routing"]:
        scorer.set_score_request(sensitive_features=True)
    return scorer


def best_within_tolerance(tolerance, *, accuracy="accuracy", disparity="tprd"):
    """A ``refit`` rule: the most accurate candidate within a disparity bound.

    For ``GridSearchCV(..., scoring={accuracy: ..., disparity: ...},
    refit=best_within_tolerance(0.05))``. Among the candidates whose mean
    (over the folds) disparity is at most ``tolerance``, the rule picks the
    one with the highest mean accuracy, the lower disparity breaking ties;
    when no candidate is within the tolerance it picks the least disparate.
    The disparity is read as the absolute value of its mean score, so both
    :func:`make_fairness_scorer`'s negated scores and plain positive ones
    work. Candidates whose scores are NaN (failed fits) are never picked.

    Parameters
    ----------
    tolerance : float
        Largest mean disparity allowed.
    accuracy : str, default="accuracy"
        Name in ``scoring`` of the score to maximise.
    disparity : str, default="tprd"
        Name in ``scoring`` of the disparity.

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> int``, the index of the chosen candidate.

    Examples
    --------
    >>> from skforml.metrics import best_within_tolerance
    >>> cv_results = {"mean_test_accuracy": [0.86, 0.85, 0.83],
    ...               "mean_test_tprd": [-0.12, -0.04, -0.01]}
    >>> best_within_tolerance(0.05)(cv_results)
    1
    >>> best_within_tolerance(0.001)(cv_results)
    2

    """
    if not isinstance(tolerance, Real) or not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}.")
    keys = (f"mean_test_{accuracy}", f"mean_test_{disparity}")

    def refit(cv_results):
        missing = [key for key in keys if key not in cv_results]
        if missing:
            available = sorted(
                key.removeprefix("mean_test_")
                for key in cv_results
                if key.startswith("mean_test_")
            )
            raise KeyError(
                f"cv_results has no {missing[0]!r}; name the scores "
                f"{accuracy!r} and {disparity!r} in scoring (it has {available})."
            )
        scores = np.asarray(cv_results[keys[0]], dtype=float)
        gaps = np.abs(np.asarray(cv_results[keys[1]], dtype=float))
        valid = ~(np.isnan(scores) | np.isnan(gaps))
        if not valid.any():
            raise ValueError("Every candidate has a NaN score; none can be refit.")
        within = valid & (gaps <= tolerance)
        if within.any():
            # lexsort's last key is the primary one: accuracy, then low gap.
            order = np.lexsort((gaps, -scores))
            return int(next(i for i in order if within[i]))
        order = np.lexsort((-scores, gaps))
        return int(next(i for i in order if valid[i]))

    return refit
