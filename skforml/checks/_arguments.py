"""Checks and encodings of the arguments of ``fit`` and ``predict``.

Every error raised here is a :class:`ValueError` or :class:`TypeError` whose
message names the argument at fault (``X``, ``y``, ``sensitive_features``,
``sample_weight``, ``device``, ...), so that a user who passes messy data
learns which argument to fix. ``docs/input_validation.rst`` lists the bad
inputs and their errors; ``tests/checks/test_bad_input.py`` checks that list.
"""

import contextlib
import re
from numbers import Integral

import numpy as np
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
from ._warnings import FeatureScaleWarning as FeatureScaleWarning
from ._warnings import IndexMismatchWarning as IndexMismatchWarning
from ._warnings import check_feature_scale
from ._warnings import check_index_alignment as check_index_alignment
from ._warnings import warn_if_indexes_differ as warn_if_indexes_differ


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
    return (X, *check_targets(estimator, X, y))


def check_targets(estimator, X, y):
    """Label-encoded ``y`` of the rows (or Dataset items) of ``X``.

    Returns ``(y_encoded, encoder)``; errors name ``y``.
    """
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
    return encoder.transform(y), encoder


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
