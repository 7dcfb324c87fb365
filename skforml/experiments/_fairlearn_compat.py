"""Calling fairlearn's estimators correctly, under current pandas too.

:func:`fit_predict` routes ``sensitive_features`` and seeds to fairlearn's
mitigators and to estimators that take them, for :func:`skforml.compare`.

fairlearn 0.15's ``InterpolatedThresholder._pmf_predict`` (used by
:meth:`fairlearn.postprocessing.ThresholdOptimizer.predict`) starts from
``positive_probs = 0.0 * scores`` -- a Series of the *scores'* dtype -- and
then writes the interpolated probabilities ``p0 * [s > t0] + p1 * [s > t1]``
(float64) into it group by group. When the base estimator returns float32
scores (skorch and most torch models do), ``positive_probs`` is float32 and
a probability such as 0.3 is not exactly representable: pandas 2.x upcasts
with a ``FutureWarning``, pandas 3 raises ``TypeError: Invalid value ... for
dtype 'float32'``. The failure depends on the data, because the thresholds
are often deterministic (``p0`` of 0 or 1, exactly representable) and only
a randomised interpolation between two thresholds writes other values.

:class:`ThresholdOptimizer` here is fairlearn's, with the fitted base
estimator seen through :class:`Float64Scores`, which hands fairlearn float64
scores. Everything else -- the fit, the interpolation, the random draw of
``predict`` -- is fairlearn's own code, so predictions are identical to
fairlearn's wherever fairlearn does not fail.
"""

import inspect
import time

import numpy as np
from fairlearn.postprocessing import ThresholdOptimizer as _FairlearnThresholdOptimizer
from fairlearn.reductions import ExponentiatedGradient, GridSearch
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if

__all__ = ["Float64Scores", "ThresholdOptimizer", "fit_predict", "seeded_clone"]

# fairlearn's reductions take sensitive_features through ``**kwargs``, so
# their fit signature does not show it.
_TAKES_SENSITIVE = (ExponentiatedGradient, GridSearch, _FairlearnThresholdOptimizer)


def _estimator_has(method):
    return lambda self: hasattr(self.estimator, method)


class Float64Scores(BaseEstimator):
    """View of a fitted classifier whose scores are float64.

    Only the prediction methods the wrapped estimator has are exposed, so
    fairlearn's ``predict_method="auto"`` picks the same one it would pick
    on the estimator itself.

    Parameters
    ----------
    estimator : fitted classifier
        Estimator whose ``predict_proba``, ``decision_function`` and
        ``predict`` are forwarded; the first two are cast to float64.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from skforml.experiments._fairlearn_compat import Float64Scores
    >>> clf = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 1, 1])
    >>> Float64Scores(clf).predict_proba(np.zeros((1, 1))).dtype
    dtype('float64')

    """

    def __init__(self, estimator):
        self.estimator = estimator

    def __sklearn_is_fitted__(self):
        return True

    @property
    def classes_(self):
        return self.estimator.classes_

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the wrapped estimator, as float64."""
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the wrapped estimator, as float64."""
        return np.asarray(self.estimator.decision_function(X), dtype=np.float64)

    def predict(self, X):
        """Predictions of the wrapped estimator, unchanged."""
        return self.estimator.predict(X)


class ThresholdOptimizer(_FairlearnThresholdOptimizer):
    """fairlearn's ThresholdOptimizer, safe with float32 scores under pandas 3.

    Identical to :class:`fairlearn.postprocessing.ThresholdOptimizer` (same
    parameters, fit and randomised ``predict``), except that after ``fit``
    the post-processor reads the base estimator's scores through
    :class:`Float64Scores`. fairlearn 0.15 fails in ``predict`` under
    pandas 3 when the scores are float32 and a group's thresholds are
    interpolated; see :mod:`skforml.experiments._fairlearn_compat`. ``estimator_`` is
    still the fitted base estimator itself.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skforml.experiments._fairlearn_compat import ThresholdOptimizer
    >>> rng = np.random.RandomState(0)
    >>> X, group = rng.randn(200, 2), np.repeat(["a", "b"], 100)
    >>> y = (X[:, 0] + (group == "a") > 0.5).astype(int)
    >>> post = ThresholdOptimizer(
    ...     estimator=LogisticRegression(),
    ...     constraints="true_positive_rate_parity",
    ...     predict_method="predict_proba",
    ... ).fit(X, y, sensitive_features=group)
    >>> post.predict(X, sensitive_features=group, random_state=0).shape
    (200,)

    """

    def fit(self, X, y, *, sensitive_features, **kwargs):
        """Fit the base estimator (unless prefit) and the group thresholds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Binary labels 0 and 1.
        sensitive_features : array-like, Series or DataFrame
            Group of each row.
        **kwargs : dict
            Passed to the base estimator's ``fit``.

        Returns
        -------
        self : ThresholdOptimizer
            The fitted post-processor.

        """
        super().fit(X, y, sensitive_features=sensitive_features, **kwargs)
        thresholder = self.interpolated_thresholder_
        # The thresholder scores rows with its own ``estimator_``; a
        # float64 view keeps its probability Series float64.
        thresholder.estimator_ = Float64Scores(thresholder.estimator_)
        return self


def seeded_clone(estimator, seed):
    """Clone with every ``random_state`` parameter, nested ones too, set to seed.

    A fairlearn ``ThresholdOptimizer`` becomes this module's
    :class:`ThresholdOptimizer` with the same parameters.
    """
    estimator = clone(estimator)
    if isinstance(estimator, _FairlearnThresholdOptimizer) and not isinstance(
        estimator, ThresholdOptimizer
    ):
        # fairlearn's own predict fails under pandas 3 on float32 scores.
        estimator = ThresholdOptimizer(**estimator.get_params(deep=False))
    if hasattr(estimator, "get_params"):
        keys = [
            key
            for key in estimator.get_params(deep=True)
            if key == "random_state" or key.endswith("__random_state")
        ]
        estimator.set_params(**dict.fromkeys(keys, seed))
    return estimator


def _accepts(method, name):
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def fit_predict(estimator, seed, X_train, y_train, s_train, X_test, s_test):
    """Fit, predict, and time the fit, passing each estimator what it takes.

    fairlearn's mitigators and any estimator whose ``fit`` names a
    ``sensitive_features`` parameter get the training groups; a ``predict``
    naming ``sensitive_features`` or ``random_state`` gets the test groups
    or the seed.
    """
    fit_kwargs, predict_kwargs = {}, {}
    if isinstance(estimator, _TAKES_SENSITIVE) or _accepts(
        estimator.fit, "sensitive_features"
    ):
        fit_kwargs["sensitive_features"] = s_train
    if _accepts(estimator.predict, "sensitive_features"):
        predict_kwargs["sensitive_features"] = s_test
    if _accepts(estimator.predict, "random_state"):
        # Randomised predictors (EG, ThresholdOptimizer) draw reproducibly.
        predict_kwargs["random_state"] = seed
    start = time.perf_counter()
    estimator.fit(X_train, y_train, **fit_kwargs)
    seconds = time.perf_counter() - start
    return estimator.predict(X_test, **predict_kwargs), seconds
