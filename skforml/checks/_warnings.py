"""Warnings about inputs that are valid but usually a mistake.

None is an error: training goes on. :class:`FeatureScaleWarning` says
that features are on a scale a neural network trains badly on;
:class:`IndexMismatchWarning` says that pandas arguments matched by position
carry different index labels, so their rows are probably not the same rows;
:class:`MissingSensitiveFeaturesWarning` says that ``fit`` got no sensitive
features where they were probably meant.
``docs/input_validation.rst`` describes both.
"""

import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

# A feature whose root mean square (``sqrt(mean**2 + std**2)``) exceeds this
# is "large" for a neural network. Standardised and one-hot columns are about
# 1, pixel intensities at most 255; raw counts and amounts (UCI Adult's
# capital-gain, about 7e3, fnlwgt, about 2e5) are far above it.
SCALE_LIMIT = 1000.0
# The scale check reads at most this many values of X (evenly spaced rows).
_SCALE_CHECK_VALUES = 2**22


class FeatureScaleWarning(UserWarning):
    """Warning that features of ``X`` are on a scale networks train badly on.

    Raised by ``fit`` when a feature's root mean square exceeds 1000 (as raw
    amounts and counts do, e.g. UCI Adult's ``capital-gain``): such inputs
    saturate the network's first layer and it may learn little. Standardise
    the features, e.g. with a :class:`~sklearn.preprocessing.StandardScaler`
    in a :class:`~sklearn.pipeline.Pipeline`.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skforml import FeatureScaleWarning, FORMLClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3)) * [1.0, 1.0, 1e5]  # a raw amount in column 2
    >>> y = (X[:, 0] > 0).astype(int)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     clf = FORMLClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> any(issubclass(w.category, FeatureScaleWarning) for w in caught)
    True

    """


class IndexMismatchWarning(UserWarning):
    """Warning that pandas arguments of one call have different indexes.

    skforml, like scikit-learn, matches ``X``, ``y``, ``sensitive_features``
    and ``sample_weight`` by position and ignores their index labels. When
    those labels differ, the rows are usually not the same rows: align them
    (``sensitive_features.loc[X.index]``) or drop stale labels
    (``reset_index(drop=True)``).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import pandas as pd
    >>> from skforml import FORMLClassifier, IndexMismatchWarning
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame(rng.normal(size=(200, 3)))
    >>> y = pd.Series((X[0] > 0).astype(int))
    >>> group = pd.Series(rng.randint(2, size=200), index=X.index[::-1])  # stale index
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     clf = FORMLClassifier(max_epochs=1, random_state=0).fit(
    ...         X, y, sensitive_features=group)
    >>> any(issubclass(w.category, IndexMismatchWarning) for w in caught)
    True

    """


_OWN_CODE = (str(Path(__file__).parents[1]), str(Path(sklearn.__file__).parent))


def _warn(message, category):
    """Warn at the caller's line, outside skforml and scikit-learn."""
    # stacklevel 2 is _warn's caller, sys._getframe(1).
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_CODE):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


def _feature_label(position, shape, feature_names):
    if feature_names is not None:
        return repr(str(feature_names[position]))
    if len(shape) == 1:
        return f"column {position}"
    return f"X[:, {', '.join(map(str, np.unravel_index(position, shape)))}]"


def check_feature_scale(X, *, feature_names=None, estimator_name=None):
    """Warn (:class:`FeatureScaleWarning`) about features on a large scale.

    A feature is large when its root mean square over the rows exceeds
    ``SCALE_LIMIT`` (1000); an image's features are its pixels. One pass
    over ``X``, or over evenly spaced rows of it when it holds more than
    about four million values.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
        Validated, finite features.
    feature_names : ndarray of str, default=None
        The columns' names (``feature_names_in_``), used in the message.
    estimator_name : str, default=None
        The estimator's class, named in the suggested pipeline.

    """
    n_rows = len(X)
    row_size = int(np.prod(X.shape[1:]))
    if n_rows == 0 or row_size == 0:
        return
    max_rows = max(1, _SCALE_CHECK_VALUES // row_size)
    if n_rows > max_rows:
        X = X[np.linspace(0, n_rows - 1, max_rows).astype(np.intp)]
    sample = X.reshape(len(X), row_size)
    rms = np.sqrt(np.mean(np.square(sample, dtype=np.float64), axis=0))
    large = np.flatnonzero(rms > SCALE_LIMIT)
    if not len(large):
        return
    worst = large[np.argsort(-rms[large], kind="stable")][:3]
    described = "; ".join(
        f"{_feature_label(j, X.shape[1:], feature_names)} has mean "
        f"{sample[:, j].mean(dtype=np.float64):.3g} and standard deviation "
        f"{sample[:, j].std(dtype=np.float64):.3g}"
        for j in worst
    )
    more = f" (and {len(large) - len(worst)} more)" if len(large) > len(worst) else ""
    estimator = "estimator" if estimator_name is None else f"{estimator_name}()"
    fix = (
        f"standardise them, e.g. make_pipeline(StandardScaler(), {estimator})"
        if X.ndim == 2
        else "rescale them, e.g. divide pixel intensities by their maximum or "
        "standardise each channel"
    )
    _warn(
        f"X has {len(large)} feature(s) on a large scale for a neural network "
        f"(root mean square above {SCALE_LIMIT:g}): {described}{more}. "
        f"Unscaled inputs saturate the network and it may learn little; {fix}.",
        FeatureScaleWarning,
    )


def _indexes(arrays):
    """``(name, index)`` of each pandas argument, the columns of a dict too."""
    for name, array in arrays.items():
        if isinstance(array, (pd.Series, pd.DataFrame)):
            yield name, array.index
        elif isinstance(array, Mapping):
            for key, column in array.items():
                if isinstance(column, pd.Series):
                    yield f"{name}[{key!r}]", column.index


def _first_difference(reference, index):
    for position, (a, b) in enumerate(zip(reference, index)):
        if a != b:
            return position, a, b
    return None


def warn_if_indexes_differ(**arrays):
    """Warn (:class:`IndexMismatchWarning`) when pandas arguments disagree.

    ``arrays`` maps argument names to the arguments of one call, the
    reference first. Arguments that are not pandas objects, and those of
    another length (an error elsewhere), are not compared.
    """
    indexed = list(_indexes(arrays))
    if len(indexed) < 2:
        return
    (first, reference), *others = indexed
    for name, index in others:
        if len(index) != len(reference) or index.equals(reference):
            continue
        difference = _first_difference(reference, index)
        if difference is None:
            continue
        position, a, b = difference
        _warn(
            f"The pandas indexes of {first} and {name} differ (row {position} "
            f"is labelled {a!r} in {first} and {b!r} in {name}), but rows are "
            "matched by position, "
            f"not by index label: row i of {first} goes with row i of {name}. "
            f"If they hold the same rows in another order, align them first "
            f"({name}.loc[{first}.index]); if the labels are stale, drop them "
            "with .reset_index(drop=True).",
            IndexMismatchWarning,
        )
        return


def check_index_alignment(X, y, sensitive_features=None, *, sample_weight=None):
    """Warn (:class:`IndexMismatchWarning`) when the arguments' indexes differ.

    Call it with the arguments of ``fit`` as the caller gave them, before
    any conversion: ``X``, ``y``, ``sensitive_features`` and
    ``sample_weight`` that are pandas objects of the same length must carry
    the same index, or their rows are probably not the same rows. One
    warning at most, naming the first argument that disagrees with the
    first pandas one.
    """
    warn_if_indexes_differ(
        X=X, y=y, sensitive_features=sensitive_features, sample_weight=sample_weight
    )


class MissingSensitiveFeaturesWarning(UserWarning):
    """``fit`` got no ``sensitive_features`` where they were probably meant.

    Raised when the estimator requested them through metadata routing, or
    when a wrapper known to drop them (fairlearn's reductions and
    ThresholdOptimizer, imbalanced-learn's pipelines) called ``fit``: the
    classes are then the groups. See the user guide for the routing recipe
    of each wrapper.

    Examples
    --------
    >>> import warnings
    >>> import sklearn
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, MissingSensitiveFeaturesWarning
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     clf = FORMLClassifier(max_epochs=1, random_state=0).set_fit_request(
    ...         sensitive_features=True)
    ...     with warnings.catch_warnings(record=True) as caught:
    ...         warnings.simplefilter("always")
    ...         clf = clf.fit(X, y)  # requested, but none given
    >>> any(issubclass(w.category, MissingSensitiveFeaturesWarning) for w in caught)
    True

    """


# Callers whose fit does not hand sensitive_features to the inner estimator.
_DROPPING_WRAPPERS = ("fairlearn.", "imblearn.")


def _dropping_wrapper():
    """Module name of a known dropping wrapper on the call stack, or None."""
    frame = sys._getframe(2)
    for _ in range(40):
        if frame is None:
            return None
        name = frame.f_globals.get("__name__", "")
        if name.startswith(_DROPPING_WRAPPERS):
            return name
        frame = frame.f_back
    return None


def warn_if_sensitive_features_missing(estimator):
    """Warn when ``fit`` got no ``sensitive_features`` but probably should have."""
    requested = estimator._get_metadata_request().fit.requests.get("sensitive_features")
    wrapper = _dropping_wrapper()
    if requested not in (None, False):
        reason = "it requests them (set_fit_request(sensitive_features=True))"
    elif wrapper is not None:
        package = wrapper.split(".")[0]
        reason = f"it is fitted by {package} ({wrapper}), which does not pass them on"
    else:
        return
    warnings.warn(
        f"{type(estimator).__name__}.fit got no sensitive_features although "
        f"{reason}; the classes are used as the groups. Pass "
        "sensitive_features to fit, or see the user guide's routing recipes.",
        MissingSensitiveFeaturesWarning,
        stacklevel=4,
    )
