"""Checks of the labels and groups that the metrics take."""

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_consistent_length

from ..checks._groups import sensitive_frame
from ..checks._warnings import warn_if_indexes_differ


def check_labels(y, name, caller="fairness_report"):
    """Return ``y`` as a 1-d array of class labels, or raise naming ``name``."""
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-dimensional, got an array of shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty; at least one sample is required.")
    if pd.isna(array.astype(object)).any():
        raise ValueError(f"{name} contains missing values (NaN or None).")
    kind = type_of_target(array)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"{name} must hold class labels, but its values look {kind}; "
            f"{caller} needs the predicted classes, not scores."
        )
    return array


def check_sensitive(sensitive_features):
    """The groups as a Series (one column) or DataFrame with a fresh index."""
    frame = sensitive_frame(sensitive_features)
    return frame.iloc[:, 0] if frame.shape[1] == 1 else frame


def check_inputs(
    y_true, y_pred, sensitive_features, pos_label, caller="fairness_report"
):
    """Checked labels, groups (None: the classes) and the sorted classes."""
    warn_if_indexes_differ(
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features
    )
    y_true = check_labels(y_true, "y_true", caller)
    y_pred = check_labels(y_pred, "y_pred", caller)
    groups = None if sensitive_features is None else check_sensitive(sensitive_features)
    try:
        check_consistent_length(y_true, y_pred, groups)
    except ValueError as exc:
        n_groups = "" if groups is None else f" and sensitive_features {len(groups)}"
        raise ValueError(
            "y_true, y_pred and sensitive_features must have the same number of "
            f"samples; y_true has {len(y_true)}, y_pred {len(y_pred)}{n_groups}."
        ) from exc
    try:
        classes = unique_labels(y_true, y_pred)
    except ValueError as exc:
        raise ValueError(
            f"y_true and y_pred must hold labels of the same kind: {exc}"
        ) from exc

    if pos_label is not None:
        if len(classes) > 2:
            raise ValueError(
                f"pos_label is only used for binary targets, but y_true and y_pred "
                f"hold {len(classes)} classes; leave pos_label as None."
            )
        if len(classes) == 2 and pos_label not in classes:
            raise ValueError(
                f"pos_label={pos_label!r} is not one of the labels "
                f"{classes.tolist()!r}."
            )
    return y_true, y_pred, groups, classes


def encode_labels(y_true, y_pred, classes, pos_label):
    """Labels as the constraints read them.

    0/1 (1: the positive class) for a binary target, else the position of
    each label in ``classes``.
    """
    if len(classes) <= 2:
        positive = classes[-1] if pos_label is None else pos_label
        return (y_true == positive).astype(np.int64), (y_pred == positive).astype(
            np.int64
        )
    return np.searchsorted(classes, y_true), np.searchsorted(classes, y_pred)
