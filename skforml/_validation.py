"""Checks and encodings of the arguments of ``fit`` and ``predict``.

Every error raised here is a :class:`ValueError` or :class:`TypeError` whose
message names the argument at fault (``X``, ``y``, ``sensitive_features``,
``sample_weight``, ``device``, ...), so that a user who passes messy data
learns which argument to fix. ``docs/input_validation.rst`` lists the bad
inputs and their errors; ``tests/test_bad_input.py`` checks that list.
"""

import contextlib
import re
import sys
import warnings
from collections.abc import Mapping
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_y,
    _num_samples,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from ._groups import encode_sensitive_features

# The name the estimators imported before ``_groups`` existed.
encode_groups = encode_sensitive_features

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
    """


class IndexMismatchWarning(UserWarning):
    """Warning that pandas arguments of one call have different indexes.

    skforml, like scikit-learn, matches ``X``, ``y``, ``sensitive_features``
    and ``sample_weight`` by position and ignores their index labels. When
    those labels differ, the rows are usually not the same rows: align them
    (``sensitive_features.loc[X.index]``) or drop stale labels
    (``reset_index(drop=True)``).
    """


_OWN_CODE = (str(Path(__file__).parent), str(Path(sklearn.__file__).parent))


def _warn(message, category):
    """Warn at the caller's line, outside skforml and scikit-learn."""
    # stacklevel 2 is _warn's caller, sys._getframe(1).
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_CODE):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


@contextlib.contextmanager
def naming_argument(name):
    """Make the ``ValueError``/``TypeError`` raised in the block name ``name``.

    scikit-learn's checks often speak of "array" ("Expected 2D array, got 1D
    array instead"); a message that does not mention ``name`` as a word gets
    the prefix ``"name: "``. The exception keeps its type (and so
    ``NotFittedError``, ``InvalidParameterError`` ... stay what they are).
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message):
            exc.args = (f"{name}: {message}", *exc.args[1:])
        raise


def check_same_length(**arrays):
    """Raise a ``ValueError`` naming the arguments whose lengths differ.

    ``arrays`` maps argument names to array-likes, the reference first.
    """
    (first, reference), *others = arrays.items()
    n_reference = _num_samples(reference)
    for name, array in others:
        n_rows = _num_samples(array)
        if n_rows != n_reference:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"{name} has {n_rows} rows but {first} has {n_reference}."
            )


def check_fit_data(estimator, X, y, *, reset):
    """Validated ``X`` (float32) and label-encoded ``y`` of a classifier's fit.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator; ``reset=True`` sets its ``n_features_in_`` (and
        ``feature_names_in_``), ``reset=False`` checks ``X`` against them.
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Dense, finite features; any shape whose first axis is the rows when
        the estimator has a ``module`` (see :func:`check_X`). A float32
        C-contiguous array is used as it is (no copy); other inputs are
        converted to float32 once. Features on a large scale raise a
        :class:`FeatureScaleWarning`.
    y : array-like of shape (n_samples,)
        Class labels.
    reset : bool
        Whether this fit starts over (False when a warm start continues).

    Returns
    -------
    X : ndarray of float32 of shape (n_samples, ...)
        C-contiguous, of the shape of the input.
    y_encoded : ndarray of int of shape (n_samples,)
    encoder : LabelEncoder
        Fitted on ``y``; ``encoder.classes_`` are the classes.

    Raises
    ------
    ValueError, TypeError
        Whose message names ``X`` or ``y``.

    """
    if y is None:
        raise ValueError(
            f"This {type(estimator).__name__} estimator requires y to be passed, "
            "but the target y is None."
        )
    X = check_X(estimator, X, reset=reset)
    check_feature_scale(
        X,
        feature_names=getattr(estimator, "feature_names_in_", None),
        estimator_name=type(estimator).__name__,
    )
    with naming_argument("y"):
        y = _check_y(y, estimator=estimator)
        check_classification_targets(y)
        check_same_length(X=X, y=y)
        encoder = LabelEncoder().fit(y)
    if len(encoder.classes_) < 2:
        label = encoder.classes_[0]
        # A plain Python value: np.str_ and np.int64 have .item(), a str of an
        # object array (pandas strings) has not.
        label = label.item() if isinstance(label, np.generic) else label
        raise ValueError(
            f"y contains only one class ({label!r}); a classifier needs at least two."
        )
    return X, encoder.transform(y), encoder


def check_predict_data(estimator, X):
    """Validated float32 ``X`` of ``predict``, shaped as in ``fit``.

    Errors name ``X``; see :func:`check_X`.
    """
    return check_X(estimator, X, reset=False)


def _takes_any_shape(estimator):
    # The built-in MLP (module=None) reads rows of features; a caller's
    # module reads whatever rows it was written for.
    return getattr(estimator, "module", None) is not None


def check_X(estimator, X, *, reset, name="X"):
    """Validated ``X``: a finite float32 C-contiguous array, rows first.

    Parameters
    ----------
    estimator : BaseEstimator
        ``reset=True`` sets its ``n_features_in_`` (``X.shape[1]``, as
        scikit-learn does), ``feature_names_in_`` for a DataFrame, and
        ``input_shape_`` (``X.shape[1:]``); ``reset=False`` checks ``X``
        against them.
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        More than two dimensions (images ``(n_samples, C, H, W)``,
        sequences) only when the estimator has a ``module``.
    reset : bool
        Whether ``X`` is the data of a fit that starts over.
    name : str, default="X"
        The argument named in errors.

    Returns
    -------
    X : ndarray of float32 of shape (n_samples, ...)
        The input itself when it is already a float32 C-contiguous array.

    Raises
    ------
    ValueError, TypeError
        Whose message names ``name``.

    """
    # Values beyond float32 become inf in the cast and are rejected as such;
    # numpy's "overflow encountered in cast" warning would only add noise.
    with naming_argument(name), np.errstate(over="ignore"):
        X = validate_data(
            estimator, X, dtype=np.float32, order="C", allow_nd=True, reset=reset
        )
    if X.ndim > 2 and not _takes_any_shape(estimator):
        raise ValueError(
            f"{name} has shape {X.shape}, but the built-in MLP (module=None) takes "
            "2-D X of shape (n_samples, n_features). Pass a module (e.g. a CNN) "
            "to fit images or sequences, or flatten X with X.reshape(len(X), -1)."
        )
    if reset:
        estimator.input_shape_ = X.shape[1:]
    else:
        expected = getattr(estimator, "input_shape_", None)
        if expected is not None and X.shape[1:] != tuple(expected):
            raise ValueError(
                f"{name} has rows of shape {X.shape[1:]}, but "
                f"{type(estimator).__name__} was fitted on rows of shape "
                f"{tuple(expected)}."
            )
    return X


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


def check_device(device):
    """The ``torch.device`` of the ``device`` parameter, available here.

    Raises
    ------
    ValueError
        When ``device`` is not a torch device (``"tpu"``), or names CUDA or
        MPS on a machine without it.

    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use e.g. 'cpu' or 'cuda'.\n{exc}"
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA device is "
            "available; use device='cpu'."
        )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r} was requested but MPS is not available; use "
            "device='cpu'."
        )
    return parsed


def check_hidden_layer_sizes(hidden_layer_sizes):
    """Tuple of positive widths, or a ``ValueError`` naming the parameter."""
    sizes = tuple(hidden_layer_sizes)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(
                "hidden_layer_sizes must hold positive integers (the width of "
                f"each hidden layer), got {hidden_layer_sizes!r}."
            )
    return sizes


def check_validation_size(validation_size, n_samples):
    """Reject an integer ``validation_size`` that leaves no rows to train on."""
    if isinstance(validation_size, Integral) and validation_size >= n_samples:
        raise ValueError(
            f"validation_size={validation_size} asks for at least as many "
            f"validation rows as X has ({n_samples}); give a share in (0, 1) or "
            "a smaller number of rows."
        )


def check_sample_weight_nonnegative(sample_weight, n_samples):
    """Validated float array of caller weights, or None.

    Raises
    ------
    TypeError
        For complex or non-numeric weights.
    ValueError
        For a shape other than ``(n_samples,)``, negative or non-finite
        weights, or weights that are all zero.

    """
    if sample_weight is None:
        return None
    try:
        sample_weight = np.asarray(sample_weight)
        if np.iscomplexobj(sample_weight):
            raise TypeError("got complex values")
        sample_weight = sample_weight.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"sample_weight must be an array of numbers, one per row: {exc}"
        ) from None
    if sample_weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {sample_weight.shape}; expected ({n_samples},)."
        )
    if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    if not np.any(sample_weight > 0):
        raise ValueError("sample_weight is zero for every row.")
    return sample_weight


def check_validation_set(estimator, validation_set, encoder, group_names):
    """Validated ``(X_val, y_val, groups_val)`` of a caller's validation set.

    Parameters
    ----------
    estimator : estimator
        Fitted on ``X`` already (``n_features_in_`` set).
    validation_set : tuple
        ``(X_val, y_val)``, or ``(X_val, y_val, sensitive_features_val)``
        when ``fit`` was given ``sensitive_features``.
    encoder : LabelEncoder
        The encoder of the training labels.
    group_names : list or None
        The training groups; None when the classes are the groups.

    Returns
    -------
    X_val : ndarray of float32
    y_val : ndarray of int64, encoded like the training labels
    groups_val : ndarray of int64, codes of ``group_names`` (``y_val`` when
        the classes are the groups)

    """
    expected = 2 if group_names is None else 3
    if not isinstance(validation_set, (tuple, list)) or len(validation_set) != expected:
        what = (
            "(X_val, y_val)"
            if expected == 2
            else "(X_val, y_val, sensitive_features_val), since fit was given "
            "sensitive_features"
        )
        raise TypeError(
            f"validation_set must be a tuple {what}; got "
            f"{type(validation_set).__name__} {validation_set!r:.60}."
        )
    X_val = check_X(estimator, validation_set[0], reset=False, name="validation_set")
    with naming_argument("validation_set"):
        y_val = column_or_1d(validation_set[1], warn=False)
        check_consistent_length(X_val, y_val)
    unknown = set(np.unique(y_val).tolist()) - set(encoder.classes_.tolist())
    if unknown:
        raise ValueError(
            f"validation_set holds labels that y does not: {sorted(unknown)!r}."
        )
    y_val = encoder.transform(y_val).astype(np.int64)
    if group_names is None:
        return X_val, y_val, y_val
    codes, names = encode_sensitive_features(
        validation_set[2],
        len(y_val),
        name="validation_set's sensitive features",
        reference="X_val",
    )
    index = {name: code for code, name in enumerate(group_names)}
    missing = [name for name in names if name not in index]
    if missing:
        raise ValueError(
            "validation_set's sensitive features hold groups that "
            f"sensitive_features does not: {missing!r}."
        )
    return X_val, y_val, np.array([index[name] for name in names])[codes]
