"""One vocabulary of fairness notions, and the disparity of each.

A fairness notion is a registered :class:`~skforml.Constraint`: its name
(``constraint_names()``) is what the estimators' ``constraint``,
:func:`group_disparity`, :func:`~skforml.metrics.make_fairness_scorer`,
:func:`~skforml.sweep` and the label-bias baseline take, and its
:meth:`~skforml.Constraint.disparity` is the one computation of its number.
:func:`~skforml.metrics.fairness_report` and :func:`~skforml.compare` report
two notions under the short names of skforml 0.1 (``"tprd"``, ``"fprd"``),
which are accepted everywhere as aliases.
"""

from sklearn.utils.validation import _check_sample_weight

from ..checks._groups import encode_sensitive_features
from ..fairness._base import Constraint, constraint_names, make_constraint
from ..fairness._constraints import measured_constraint
from ._inputs import check_inputs, encode_labels

__all__ = ["group_disparity"]

# fairness_report's key (and compare's and sweep's column) of each notion it
# reports: skforml 0.1's names.
SHORT_NAMES = {
    "tprd": "true_positive_rate_parity",
    "fprd": "false_positive_rate_parity",
}
# fairness_report's worst-group rates: columns, but not spreads of a notion.
WORST_GROUP_RATES = ("max_fnr", "max_fpr")
# The columns of fairness_report that compare and sweep record, in order.
REPORT_METRICS = ["accuracy", "tprd", "max_fnr", "fprd", "max_fpr"]
# How tables and plots print a column.
LABELS = {
    "accuracy": "accuracy",
    "tprd": "TPRD",
    "fprd": "FPRD",
    "max_fnr": "max FNR",
    "max_fpr": "max FPR",
}


def notion_names():
    """Every name of a notion: the constraints' names and aliases, short names."""
    return sorted({*constraint_names(), *SHORT_NAMES})


def notion(name):
    """The :class:`~skforml.Constraint` of a notion's name, alias or short name."""
    if isinstance(name, Constraint):
        return name
    if isinstance(name, str) and name in notion_names():
        return make_constraint(SHORT_NAMES.get(name, name))
    raise ValueError(
        f"constraint must be the name of a fairness notion or a Constraint "
        f"instance; got {name!r}. Names: {notion_names()}."
    )


def column_name(name):
    """The results column of a notion: its short name if it has one.

    Other notions are recorded under their constraint's name; the report's
    worst-group rates (``"max_fnr"``, ``"max_fpr"``) are their own columns.
    """
    if name in WORST_GROUP_RATES:
        return name
    canonical = notion(name).name
    short = {notion: short for short, notion in SHORT_NAMES.items()}
    return short.get(canonical, canonical)


def column_label(column):
    """How tables and plots print a column (e.g. ``"TPRD"``)."""
    return LABELS.get(column, column.replace("_", " "))


def group_disparity(
    y_true,
    y_pred,
    *,
    sensitive_features=None,
    constraint="true_positive_rate_parity",
    pos_label=None,
    sample_weight=None,
):
    """The disparity of a fairness notion, as the estimators measure it.

    The number is the :meth:`~skforml.Constraint.disparity` of the notion
    (the ``valid_disparity`` of ``history_`` and what ``tolerance`` bounds):
    the largest spread (max - min over the groups) of its rates, each rate
    the mean of a hit over some rows of a group. Groups without such rows
    are left out of a spread, and a spread without groups is 0.

    ======================================  =====================================
    ``constraint``                          rates (hit over rows, per group)
    ======================================  =====================================
    ``"true_positive_rate_parity"``         TPR: predicted positive over the
    (``"equal_opportunity"``, ``"tprd"``)   positives; multi-class: each class's
                                            recall, one-vs-rest
    ``"false_positive_rate_parity"``        FPR: predicted positive over the
    (``"fprd"``)                            negatives; multi-class: each class's
                                            one-vs-rest FPR
    ``"equalized_odds"``                    the TPRs and the FPRs above
    ``"error_rate_parity"``                 correct over all rows
    ``"demographic_parity"``                predicted positive over all rows;
                                            multi-class: each class's
                                            selection rate
    ======================================  =====================================

    On binary targets each equals fairlearn's metric of the same name
    (``true_positive_rate_difference``, ..., ``demographic_parity_difference``)
    except that fairlearn counts a rate without rows as 0. A multi-class
    TPR difference is the largest spread of one class's recall across the
    groups, not the spread of the groups' macro-averaged recall.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted class labels.
    sensitive_features : array-like, Series, DataFrame or dict, default=None
        Group of each row (several columns: intersectional groups). If None,
        the true classes are the groups and every notion is the spread of
        per-class recall, as in the estimators without sensitive features;
        ``sample_weight`` then changes nothing.
    constraint : str or Constraint, default="true_positive_rate_parity"
        The notion: a registered constraint name or alias (your own
        subclasses' too), ``"tprd"`` or ``"fprd"``, or an instance.
    pos_label : object, default=None
        The positive class of a binary target; defaults to the greater label.
        Must be None for a multi-class target.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each row in the rates.

    Returns
    -------
    disparity : float

    Examples
    --------
    >>> from skforml.metrics import group_disparity
    >>> y_true = [1, 1, 0, 0, 1, 1, 0, 0]
    >>> y_pred = [1, 1, 0, 1, 1, 0, 0, 0]
    >>> groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    >>> group_disparity(y_true, y_pred, sensitive_features=groups)
    0.5
    >>> group_disparity(
    ...     y_true, y_pred, sensitive_features=groups, constraint="error_rate_parity"
    ... )
    0.0

    """
    measured = notion(constraint)
    y_true, y_pred, groups, classes = check_inputs(
        y_true, y_pred, sensitive_features, pos_label, caller="group_disparity"
    )
    y_true, y_pred = encode_labels(y_true, y_pred, classes, pos_label)
    if sample_weight is not None:
        sample_weight = _check_sample_weight(sample_weight, y_true)
    return measured_disparity(measured, y_true, y_pred, groups, sample_weight)


def measured_disparity(constraint, y_true, y_pred, groups, sample_weight=None):
    """Disparity of encoded labels; ``groups`` checked (None: the classes)."""
    if groups is None:
        constraint, codes = measured_constraint(constraint, True), y_true
    else:
        codes, _ = encode_sensitive_features(groups, len(y_true))
    return float(constraint.disparity(y_true, y_pred, codes, sample_weight))
