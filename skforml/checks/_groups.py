"""Sensitive groups and (group, label) strata: one parser, one encoding.

Every public entry point that takes ``sensitive_features`` (the estimators'
``fit``, :class:`~skforml.FORMLSampler`, the weight audit and
:func:`~skforml.metrics.fairness_report`) reads it here, so that a container
accepted by one is accepted by all, with the same errors. The accepted
containers are fairlearn's: a list, tuple, 1-D or 2-D array, Series,
DataFrame, or a dict of columns. Several columns form intersectional groups.

Rows are matched by position: a Series or DataFrame is read in its row order
and its index is ignored (as scikit-learn does with ``sample_weight``).
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["encode_sensitive_features", "sensitive_frame", "stratum_ids"]

# Column name of a sensitive feature given without one (fairlearn's default).
DEFAULT_NAME = "sensitive_feature"


def _not_rows(name, sensitive_features):
    return TypeError(
        f"{name} must be an array-like, Series, list, DataFrame or dict of "
        f"columns with one entry per row, got {type(sensitive_features).__name__}."
    )


def _columns_of_dict(sensitive_features, name):
    if not sensitive_features:
        raise ValueError(f"{name} must have at least one column.")
    columns = {}
    for key, column in sensitive_features.items():
        values = _as_array(column, name)
        if values.ndim != 1:
            raise ValueError(
                f"{name}[{key!r}] must be 1-dimensional, got an array of shape "
                f"{values.shape}."
            )
        columns[key] = values
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"{name} is a dict of columns of different lengths: {lengths!r}."
        )
    # A list of numbers was read as objects (to keep a mixed list mixed):
    # give its column a numeric dtype again.
    return pd.DataFrame(columns, copy=False).infer_objects()


def _as_array(values, name):
    if isinstance(values, (str, bytes, Mapping, set, frozenset)) or np.isscalar(values):
        raise _not_rows(name, values)
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy()
    # object: a list mixing numbers and strings stays mixed.
    array = values if isinstance(values, np.ndarray) else np.asarray(values, object)
    if array.ndim == 0:
        raise _not_rows(name, values)
    return array


def sensitive_frame(
    sensitive_features, n_samples=None, *, name="sensitive_features", reference="X"
):
    """The sensitive columns as a DataFrame with a fresh ``RangeIndex``.

    Parameters
    ----------
    sensitive_features : array-like, Series, list, DataFrame or dict
        One value per row, or several columns (a 2-D array, a DataFrame or a
        dict of columns) that form intersectional groups.
    n_samples : int, default=None
        Number of rows expected; None skips the length check.
    name : str, default="sensitive_features"
        The argument named in errors.
    reference : str, default="X"
        The argument that has ``n_samples`` rows, named in errors.

    Returns
    -------
    frame : DataFrame of shape (n_samples, n_columns)
        The columns in their row order. Columns keep their names (a Series'
        name, a DataFrame's columns, a dict's keys); unnamed ones are called
        ``"sensitive_feature"`` (one column) or ``"sensitive_feature_<i>"``.

    Raises
    ------
    TypeError
        For a scalar, a string, a set or another object that is not a
        sequence of rows.
    ValueError
        For more than two dimensions, no column, columns of different
        lengths, a length other than ``n_samples``, or missing values.

    """
    if isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features.reset_index(drop=True)
    elif isinstance(sensitive_features, pd.Series):
        frame = sensitive_features.reset_index(drop=True).to_frame(
            DEFAULT_NAME if sensitive_features.name is None else sensitive_features.name
        )
    elif isinstance(sensitive_features, Mapping):
        frame = _columns_of_dict(sensitive_features, name)
    else:
        array = _as_array(sensitive_features, name)
        if array.ndim > 2:
            raise ValueError(
                f"{name} must be 1- or 2-dimensional (one column per sensitive "
                f"feature), got an array of shape {array.shape}."
            )
        if array.ndim == 1 or array.shape[1] == 1:
            frame = pd.DataFrame({DEFAULT_NAME: array.reshape(len(array))})
        else:
            frame = pd.DataFrame(
                array, columns=[f"{DEFAULT_NAME}_{i}" for i in range(array.shape[1])]
            )
        frame = frame.infer_objects()
    if frame.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column.")
    if n_samples is not None and len(frame) != n_samples:
        raise ValueError(
            f"{name} has {len(frame)} rows but {reference} has {n_samples}; give "
            f"one value per row, in the order of {reference}."
        )
    if frame.isna().to_numpy().any():
        raise ValueError(f"{name} contains missing values (NaN or None).")
    return frame


def encode_sensitive_features(
    sensitive_features, n_samples, *, name="sensitive_features", reference="X"
):
    """Integer group of each row and the group names.

    Parameters
    ----------
    sensitive_features : array-like, Series, list, DataFrame or dict
        See :func:`sensitive_frame`.
    n_samples : int
        Number of rows of ``X``.
    name, reference : str, default="sensitive_features", "X"
        The arguments named in errors: ``sensitive_features`` and the one
        that has ``n_samples`` rows.

    Returns
    -------
    codes : ndarray of int64 of shape (n_samples,)
        Codes follow the sorted order of the groups: of the values for one
        column, lexicographic over the columns' sorted values for several.
    names : list
        Group of each code: a plain Python scalar for one column, a tuple of
        them for several.

    Raises
    ------
    TypeError
        As :func:`sensitive_frame`, and for values that cannot be hashed or
        compared (e.g. strings mixed with numbers in one column).
    ValueError
        As :func:`sensitive_frame`.

    """
    frame = sensitive_frame(
        sensitive_features, n_samples, name=name, reference=reference
    )
    encoded = [_encode_column(column, name) for _, column in frame.items()]
    if len(encoded) == 1:
        return encoded[0]
    return _combine(encoded)


def _plain(value):
    """A plain Python value, readable in messages and in ``groups_``."""
    return value.item() if hasattr(value, "item") else value


def _encode_column(column, name):
    """Codes and names of one column, by hashing: O(n) time and memory.

    Only the distinct values are sorted.
    """
    try:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    except TypeError as exc:  # unhashable values, e.g. lists
        raise TypeError(f"{name} holds values that cannot be grouped: {exc}") from None
    uniques = np.asarray(uniques, dtype=object)
    try:
        order = np.argsort(uniques, kind="stable")
    except TypeError as exc:
        raise TypeError(
            f"{name} holds values that cannot be compared (mixed types?): {exc}"
        ) from None
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], [_plain(value) for value in uniques[order]]


def _combine(encoded):
    """Codes and tuple names of the distinct rows of several coded columns.

    Combining the per-column codes (not the values as strings) keeps ``1``
    and ``"1"`` apart and sorts numbers as numbers.
    """
    codes = np.zeros(len(encoded[0][0]), dtype=np.int64)
    for column_codes, column_names in encoded:
        # Re-compacted after every column, so the product never overflows.
        _, codes = np.unique(
            codes * len(column_names) + column_codes, return_inverse=True
        )
        codes = codes.reshape(-1)
    _, first_row = np.unique(codes, return_index=True)
    names = [
        tuple(column_names[column_codes[row]] for column_codes, column_names in encoded)
        for row in first_row
    ]
    return codes.astype(np.int64), names


def stratum_ids(groups, y_encoded, n_classes):
    """Id of the (group, label) stratum of each row: ``group * n_classes + y``.

    Parameters
    ----------
    groups : array-like of int of shape (n_samples,)
        Group codes, as :func:`encode_sensitive_features` returns them (or the
        label codes when the classes are the groups).
    y_encoded : array-like of int of shape (n_samples,)
        Label codes in ``[0, n_classes)``.
    n_classes : int
        Number of classes.

    Returns
    -------
    strata : ndarray of int64 of shape (n_samples,)
        In ``[0, n_groups * n_classes)``; ``np.divmod(strata, n_classes)``
        gives back ``(groups, y_encoded)``.

    """
    groups = np.asarray(groups, dtype=np.int64)
    return groups * int(n_classes) + np.asarray(y_encoded, dtype=np.int64)
