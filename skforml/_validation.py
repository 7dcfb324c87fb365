"""Checks and encodings of the arguments of ``fit`` and ``predict``.

Every error raised here is a :class:`ValueError` or :class:`TypeError` whose
message names the argument at fault (``X``, ``y``, ``sensitive_features``,
``sample_weight``, ``device``, ...), so that a user who passes messy data
learns which argument to fix. ``docs/input_validation.rst`` lists the bad
inputs and their errors; ``tests/test_bad_input.py`` checks that list.
"""

import contextlib
import re
from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd
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
    X : array-like of shape (n_samples, n_features)
        Dense, finite features. A float32 C-contiguous array is used as it
        is (no copy); other inputs are converted to float32 once.
    y : array-like of shape (n_samples,)
        Class labels.
    reset : bool
        Whether this fit starts over (False when a warm start continues).

    Returns
    -------
    X : ndarray of float32 of shape (n_samples, n_features)
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
    # Values beyond float32 become inf in the cast and are rejected as such;
    # numpy's "overflow encountered in cast" warning would only add noise.
    with naming_argument("X"), np.errstate(over="ignore"):
        X = validate_data(estimator, X, dtype=np.float32, reset=reset)
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
    """Validated float32 ``X`` of ``predict``; errors name ``X``."""
    with naming_argument("X"), np.errstate(over="ignore"):
        return validate_data(estimator, X, dtype=np.float32, reset=False)


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


def encode_groups(sensitive_features, n_samples):
    """Integer group of each row and the group names.

    Rows are matched by position: a Series or DataFrame is read in its row
    order and its index is ignored (as scikit-learn does with
    ``sample_weight``), so it must list the rows in the order of ``X``.

    Parameters
    ----------
    sensitive_features : array-like, Series, list or DataFrame
        One value per row, or several columns that form intersectional groups.
    n_samples : int
        Number of rows of ``X``.

    Returns
    -------
    codes : ndarray of int64 of shape (n_samples,)
    names : list
        Group of each code: a scalar, or a tuple for several columns.

    Raises
    ------
    TypeError
        For a scalar, a string, a dict, a set or another object that is not
        a sequence of rows, and for values that cannot be compared.
    ValueError
        For more than two dimensions, no column, a length other than
        ``n_samples``, or missing values.

    """
    if isinstance(sensitive_features, (str, bytes)) or np.isscalar(sensitive_features):
        raise TypeError(
            "sensitive_features must be an array-like, Series, list or DataFrame "
            f"with one entry per row, got {type(sensitive_features).__name__}."
        )
    if isinstance(sensitive_features, Mapping):
        raise TypeError(
            "sensitive_features must be an array-like, Series, list or DataFrame "
            "with one entry per row, got a dict; for several sensitive columns "
            "pass pandas.DataFrame(sensitive_features)."
        )
    if isinstance(sensitive_features, pd.Series):
        columns = [sensitive_features]
    elif isinstance(sensitive_features, pd.DataFrame):
        columns = [column for _, column in sensitive_features.items()]
    else:
        values = (
            sensitive_features
            if isinstance(sensitive_features, np.ndarray)
            # object: a list mixing numbers and strings stays mixed.
            else np.asarray(sensitive_features, dtype=object)
        )
        if values.ndim == 0:
            raise TypeError(
                "sensitive_features must be an array-like, Series, list or "
                "DataFrame with one entry per row, got "
                f"{type(sensitive_features).__name__}."
            )
        if values.ndim > 2:
            raise ValueError(
                "sensitive_features must be 1- or 2-dimensional (one column per "
                f"sensitive feature), got an array of shape {values.shape}."
            )
        columns = [values] if values.ndim == 1 else list(values.T)
    if not columns:
        raise ValueError("sensitive_features must have at least one column.")
    if len(columns[0]) != n_samples:
        raise ValueError(
            f"sensitive_features has {len(columns[0])} rows but X has {n_samples}; "
            "give one sensitive value per row."
        )
    if len(columns) == 1:
        return _encode_column(columns[0])
    return _encode_columns(columns)


_MISSING = "sensitive_features contains missing values (NaN/None)."


def _mixed_types(exc):
    return TypeError(
        f"sensitive_features holds values that cannot be compared (mixed types?): {exc}"
    )


def _plain(value):
    """A plain Python value, readable in messages and in ``groups_``."""
    return value.item() if hasattr(value, "item") else value


def _encode_column(column):
    """Codes and names of one column, by hashing: O(n) time, O(n) memory.

    The codes follow the sorted order of the values (as ``np.unique``'s); only
    the distinct values are sorted.
    """
    try:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    except TypeError as exc:  # unhashable values, e.g. lists
        raise TypeError(
            f"sensitive_features holds values that cannot be grouped: {exc}"
        ) from None
    if (codes < 0).any():
        raise ValueError(_MISSING)
    uniques = np.asarray(uniques, dtype=object)
    try:
        order = np.argsort(uniques, kind="stable")
    except TypeError as exc:
        raise _mixed_types(exc) from None
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], [_plain(value) for value in uniques[order]]


def _encode_columns(columns):
    """Codes and names of several columns: one group per distinct row."""
    frame = pd.concat(
        [pd.Series(np.asarray(c), copy=False) for c in columns],
        axis=1,
        ignore_index=True,
    )
    if frame.isna().any().any():
        raise ValueError(_MISSING)
    keys = frame.astype(str).agg("\x1f".join, axis=1)
    try:
        _, first_row, codes = np.unique(
            np.asarray(keys), return_index=True, return_inverse=True
        )
    except TypeError as exc:
        raise _mixed_types(exc) from None
    names = [tuple(_plain(v) for v in frame.iloc[row]) for row in first_row]
    return codes.astype(np.int64), names


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
    X_val, y_val = validation_set[0], validation_set[1]
    with naming_argument("validation_set"), np.errstate(over="ignore"):
        X_val = validate_data(estimator, X_val, dtype=np.float32, reset=False)
        y_val = column_or_1d(y_val, warn=False)
        check_consistent_length(X_val, y_val)
    unknown = set(np.unique(y_val).tolist()) - set(encoder.classes_.tolist())
    if unknown:
        raise ValueError(
            f"validation_set holds labels that y does not: {sorted(unknown)!r}."
        )
    y_val = encoder.transform(y_val).astype(np.int64)
    if group_names is None:
        return X_val, y_val, y_val
    codes, names = encode_groups(validation_set[2], len(y_val))
    index = {name: code for code, name in enumerate(group_names)}
    missing = [name for name in names if name not in index]
    if missing:
        raise ValueError(
            "validation_set's sensitive features hold groups that "
            f"sensitive_features does not: {missing!r}."
        )
    return X_val, y_val, np.array([index[name] for name in names])[codes]
