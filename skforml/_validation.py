"""Checks and encodings of the arguments of ``fit``."""

import numpy as np
import pandas as pd
from sklearn.utils.validation import _num_samples, check_consistent_length


def encode_groups(sensitive_features, n_samples):
    """Integer group of each row and the group names.

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

    """
    if isinstance(sensitive_features, (str, bytes)) or np.isscalar(sensitive_features):
        raise TypeError(
            "sensitive_features must be an array-like, Series, list or DataFrame "
            f"with one entry per row, got {type(sensitive_features).__name__}."
        )
    frame = pd.DataFrame(
        sensitive_features.reset_index(drop=True)
        if isinstance(sensitive_features, (pd.Series, pd.DataFrame))
        else np.asarray(sensitive_features, dtype=object)
    )
    if frame.ndim != 2 or frame.shape[1] == 0:
        raise ValueError("sensitive_features must have at least one column.")
    if _num_samples(frame) != n_samples:
        raise ValueError(
            f"sensitive_features has {len(frame)} rows but X has {n_samples}; "
            "give one sensitive value per row."
        )
    if frame.isna().any().any():
        raise ValueError("sensitive_features contains missing values (NaN/None).")
    keys = (
        frame.astype(str).agg("\x1f".join, axis=1)
        if frame.shape[1] > 1
        else frame.iloc[:, 0]
    )
    try:
        uniques, codes = np.unique(np.asarray(keys), return_inverse=True)
    except TypeError as exc:
        raise TypeError(
            "sensitive_features holds values that cannot be compared "
            f"(mixed types?): {exc}"
        ) from None
    first_row = [np.flatnonzero(codes == code)[0] for code in range(len(uniques))]
    # Plain Python values: readable in error messages and in ``groups_``.
    names = [
        tuple(v.item() if hasattr(v, "item") else v for v in frame.iloc[row])
        for row in first_row
    ]
    if frame.shape[1] == 1:
        names = [name[0] for name in names]
    check_consistent_length(codes, np.empty(n_samples))
    return codes.astype(np.int64), names


def check_sample_weight_nonnegative(sample_weight, n_samples):
    """Validated float array of caller weights, or None."""
    if sample_weight is None:
        return None
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {sample_weight.shape}; expected ({n_samples},)."
        )
    if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    if not np.any(sample_weight > 0):
        raise ValueError("sample_weight is zero for every row.")
    return sample_weight
