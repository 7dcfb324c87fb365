"""Group fairness report for classifiers: accuracy and equal-opportunity gaps.

The per-group rates come from fairlearn's MetricFrame; the gaps are the
constraints' disparities (:func:`~skforml.metrics.group_disparity`).
"""

from functools import partial

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, multilabel_confusion_matrix, recall_score
from sklearn.utils import Bunch

from ._disparity import measured_disparity, notion
from ._inputs import check_inputs, encode_labels

__all__ = ["fairness_report"]


def _defined_if_any(metric, label):
    # fairlearn returns 0 for a rate whose denominator is empty (e.g. the TPR
    # of a group without positives); NaN keeps such groups out of the gaps.
    def wrapped(y_true, y_pred):
        if not np.any(np.asarray(y_true) == label):
            return np.nan
        return metric(y_true, y_pred)

    return wrapped


def _macro_recall(y_true, y_pred):
    # Average over the classes present in the group, the only ones whose
    # recall is defined there.
    return recall_score(y_true, y_pred, labels=np.unique(y_true), average="macro")


def _macro_miss_rate(y_true, y_pred):
    return 1.0 - _macro_recall(y_true, y_pred)


def _one_vs_rest_fpr(y_true, y_pred, labels):
    """FPR of each label as positive versus the rest; NaN without negatives."""
    matrices = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    true_negatives, false_positives = matrices[:, 0, 0], matrices[:, 0, 1]
    negatives = true_negatives + false_positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(negatives > 0, false_positives / negatives, np.nan)


def _macro_fpr(y_true, y_pred, labels):
    rates = _one_vs_rest_fpr(y_true, y_pred, labels)
    return float(np.nanmean(rates)) if np.isfinite(rates).any() else np.nan


def _spread(values):
    values = values.dropna()
    return float(values.max() - values.min()) if len(values) else np.nan


def _max(values):
    values = values.dropna()
    return float(values.max()) if len(values) else np.nan


def fairness_report(y_true, y_pred, *, sensitive_features=None, pos_label=None):
    """Report accuracy and equal-opportunity gaps of predictions across groups.

    The per-group rates come from :class:`fairlearn.metrics.MetricFrame`;
    the summaries are spreads and maxima over the groups. Rates that are
    undefined for a group (a TPR without positives, an FPR without
    negatives) are NaN in ``by_group`` and left out of the summaries.

    How groups and rates are defined depends on the inputs:

    - **Binary target, sensitive_features given**: the usual rates with
      ``pos_label`` as the positive class: TPR = P(pred = pos | true = pos),
      FNR = 1 - TPR, FPR = P(pred = pos | true != pos), per group.
    - **No sensitive_features** (binary or multi-class): the group of a row
      is its *true* class. The TPR of class c is its recall,
      P(pred = c | true = c), and FNR = 1 - TPR; the FPR of class c is
      P(pred = c | true != c), computed over all rows. ``tprd`` is then the
      spread of per-class recall, the metric of the FORML paper's image
      experiments; the estimator uses the classes as groups in the same way
      when none are given. ``pos_label`` is not used.
    - **Multi-class target, sensitive_features given**: in ``by_group``,
      the TPR of a group is its macro-averaged recall over the true classes
      present in the group, FNR = 1 - TPR, and the FPR of a group is the
      mean, over the classes with negatives in the group, of the one-vs-rest
      FPRs P(pred = c | true != c) within the group. ``tprd`` and ``fprd``
      are not the spreads of these averages but the constraints' (what the
      estimator optimises and reports in ``history_``): the largest, over
      the classes c, of the spread across groups of the recall of c (of the
      one-vs-rest FPR of c). Two groups with equal macro recall can have a
      ``tprd`` of 1.

    ``tprd`` and ``fprd`` (with sensitive features) equal
    :func:`~skforml.metrics.group_disparity` with
    ``constraint="true_positive_rate_parity"`` and
    ``"false_positive_rate_parity"``, except that they are NaN when no group
    has the rate.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels, of any type that can be sorted (strings too).
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    sensitive_features : array-like, Series, DataFrame or dict, default=None
        Group membership of each row. With several columns (a DataFrame, a
        dict of columns or a 2-d array), the groups are the combinations of
        their values that occur in the data (intersectional groups). If
        None, the true classes are the groups. Rows are matched by position;
        pandas arguments whose indexes differ raise an
        :class:`~skforml.IndexMismatchWarning`.
    pos_label : object, default=None
        The positive class of a binary target. Defaults to the greater of
        the two labels, as in scikit-learn. Must be None for a multi-class
        target.

    Returns
    -------
    report : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        accuracy : float
            Accuracy over all rows.
        tprd : float
            True-positive-rate difference: max - min of the per-group TPR
            (multi-class, with groups: of one class's recall, the largest).
        max_fnr : float
            Largest per-group false-negative rate.
        fprd : float
            False-positive-rate difference: max - min of the per-group FPR
            (multi-class, with groups: of one class's one-vs-rest FPR, the
            largest).
        max_fpr : float
            Largest per-group false-positive rate.
        by_group : DataFrame
            One row per group, indexed by group, with the columns
            ``accuracy``, ``tpr``, ``fnr``, ``fpr`` and ``count``.

    Examples
    --------
    >>> from skforml.metrics import fairness_report
    >>> y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> y_pred = [1, 1, 0, 1, 1, 0, 0, 0]
    >>> groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    >>> report = fairness_report(y_true, y_pred, sensitive_features=groups)
    >>> report.accuracy, report.tprd, report.max_fnr, report.max_fpr
    (0.75, 0.5, 0.5, 0.5)
    >>> report.by_group[["tpr", "fpr", "count"]]  # doctest: +NORMALIZE_WHITESPACE
                       tpr  fpr  count
    sensitive_feature
    a                  1.0  0.5      4
    b                  0.5  0.0      4

    """
    y_true, y_pred, groups, classes = check_inputs(
        y_true, y_pred, sensitive_features, pos_label
    )
    frame = _metric_frame(y_true, y_pred, groups, classes, pos_label)
    by_group = frame.by_group
    # MetricFrame lists every combination of several sensitive columns, even
    # those with no rows; only groups that occur are reported.
    by_group = by_group[by_group["count"] > 0].copy()
    if groups is None:
        # The FPR of a class involves rows of the other classes, so it cannot
        # be computed within the group: use all rows.
        by_group["fpr"] = _one_vs_rest_fpr(
            y_true, y_pred, labels=by_group.index.to_numpy()
        )
    by_group = by_group[["accuracy", "tpr", "fnr", "fpr", "count"]].astype(
        {"accuracy": float, "tpr": float, "fnr": float, "fpr": float, "count": int}
    )

    encoded = encode_labels(y_true, y_pred, classes, pos_label)

    def gap(short_name, rate):
        # NaN, not the constraint's 0, when no group has the rate.
        if by_group[rate].isna().all():
            return np.nan
        return measured_disparity(notion(short_name), *encoded, groups)

    return Bunch(
        accuracy=float(frame.overall["accuracy"]),
        tprd=gap("tprd", "tpr"),
        max_fnr=_max(by_group["fnr"]),
        # Without groups, the FPR of a class is not a rate within a group.
        fprd=_spread(by_group["fpr"]) if groups is None else gap("fprd", "fpr"),
        max_fpr=_max(by_group["fpr"]),
        by_group=by_group,
    )


def _metric_frame(y_true, y_pred, groups, classes, pos_label):
    """The MetricFrame (fairlearn) of the report's per-group rates."""
    if groups is not None and len(classes) <= 2:
        positive = classes[-1] if pos_label is None else pos_label
        # fairlearn's rates want 0/1 labels unless told the positive label;
        # encoding once also makes string labels safe.
        metrics = {
            "accuracy": accuracy_score,
            "tpr": _defined_if_any(partial(true_positive_rate, pos_label=1), 1),
            "fnr": _defined_if_any(partial(false_negative_rate, pos_label=1), 1),
            "fpr": _defined_if_any(partial(false_positive_rate, pos_label=1), 0),
            "count": count,
        }
        return MetricFrame(
            metrics=metrics,
            y_true=(y_true == positive).astype(np.int64),
            y_pred=(y_pred == positive).astype(np.int64),
            sensitive_features=groups,
        )
    metrics = {
        "accuracy": accuracy_score,
        "tpr": _macro_recall,
        "fnr": _macro_miss_rate,
        "count": count,
    }
    if groups is not None:
        metrics["fpr"] = partial(_macro_fpr, labels=classes)
    return MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=(
            pd.Series(y_true, name="class") if groups is None else groups
        ),
    )
