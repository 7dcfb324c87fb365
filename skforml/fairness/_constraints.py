"""The built-in fairness constraints, one :class:`~skforml.Constraint` each.

TPR, FPR and error-rate parity, equalized odds, demographic parity,
balanced-accuracy parity, and the per-class recall that stands in for them
without sensitive features. Adding a constraint is one subclass, here or in
your own code: it registers itself under its ``name`` (and ``aliases``) and
every estimator accepts it (see :mod:`skforml.fairness._base`).
"""

import numpy as np
import torch

from ._base import Constraint, make_constraint, rate_spread


def _rated_classes(n_classes):
    """The classes rated one-vs-rest: the positive one of a binary target."""
    return [1] if n_classes <= 2 else range(n_classes)


def _one_vs_rest(y_true, y_pred, negatives):
    """``(hit, rows)`` of each class's one-vs-rest TPR (or FPR)."""
    return [
        (y_pred == c, (y_true != c) if negatives else (y_true == c))
        for c in _rated_classes(_n_classes(y_true, y_pred))
    ]


def _n_classes(y_true, y_pred):
    return int(max(np.max(y_true), np.max(y_pred))) + 1


def _within_label(group, label, n_classes):
    """Every (group, label) stratum its own cell, compared within its label."""
    return group * n_classes + label, label.copy()


class TruePositiveRateParity(Constraint):
    """Equal true-positive rates (equal opportunity).

    The disparity is the TPR difference (for multi-class targets, the largest
    spread across groups of a class's one-vs-rest recall). The meta-loss
    compares the groups' losses within each label, negatives included: on
    the positives alone, FORML closes the TPR gap by drifting toward
    predicting everyone positive (measured on Adult, sex, tolerance 0.03:
    test accuracy .85 -> .67 in 33 epochs), while the negatives' cells hold
    the false-positive rates in place (.854 accuracy at TPRD .017).

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import TruePositiveRateParity
    >>> y_true = np.array([1, 1, 1, 1, 0, 0])
    >>> y_pred = np.array([1, 1, 1, 0, 0, 0])
    >>> groups = np.array([0, 0, 1, 1, 0, 1])
    >>> float(TruePositiveRateParity().disparity(y_true, y_pred, groups))
    0.5

    """

    name = "true_positive_rate_parity"
    aliases = ("equal_opportunity",)

    def cell_keys(self, group, label, n_classes):
        return _within_label(group, label, n_classes)

    def moment_keys(self, group, label, n_classes):
        # Binary: the positives' rate only; multi-class: every class's recall.
        cell_key, bucket_key = _within_label(group, label, n_classes)
        if n_classes == 2:
            cell_key = np.where(label == 1, cell_key, -1)
        return cell_key, bucket_key

    def required(self, group, label, n_classes):
        # The negatives only anchor the false-positive rates: a group without
        # negatives still has a TPR.
        return label == 1 if n_classes == 2 else np.ones(len(group), dtype=bool)

    def rated_rows(self, y_true, y_pred):
        return _one_vs_rest(y_true, y_pred, negatives=False)


class FalsePositiveRateParity(Constraint):
    """Equal false-positive rates (binary targets).

    The disparity is the FPR difference; the meta-loss compares the groups
    within each label, for the reason given in :class:`TruePositiveRateParity`.
    On a multi-class target (measured, e.g. by
    :func:`skforml.metrics.group_disparity`, but not trained for) the
    disparity is the largest spread across groups of a class's one-vs-rest
    FPR, the FPR half of :class:`EqualizedOdds`.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import FalsePositiveRateParity
    >>> y_true = np.array([0, 0, 0, 0, 1, 1])
    >>> y_pred = np.array([1, 0, 0, 0, 1, 1])
    >>> groups = np.array([0, 0, 1, 1, 0, 1])
    >>> float(FalsePositiveRateParity().disparity(y_true, y_pred, groups))
    0.5

    """

    name = "false_positive_rate_parity"
    binary_only = True

    def cell_keys(self, group, label, n_classes):
        return _within_label(group, label, n_classes)

    def moment_keys(self, group, label, n_classes):
        # The negatives' rate of the true class: one minus their FPR.
        cell_key, bucket_key = _within_label(group, label, n_classes)
        return np.where(label == 0, cell_key, -1), bucket_key

    def required(self, group, label, n_classes):
        return label == 0

    def rated_rows(self, y_true, y_pred):
        # Multi-class targets (measured only): each class's one-vs-rest FPR.
        return _one_vs_rest(y_true, y_pred, negatives=True)


class EqualizedOdds(Constraint):
    """Equal true- and false-positive rates: groups compared within each label.

    The disparity is the larger of the TPR and FPR differences (fairlearn's
    ``equalized_odds_difference``), taken one-vs-rest over the classes of a
    multi-class target.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import EqualizedOdds
    >>> y_true = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    >>> y_pred = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    >>> groups = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> # TPR gap .5, FPR gap .5
    >>> float(EqualizedOdds().disparity(y_true, y_pred, groups))
    0.5

    """

    name = "equalized_odds"

    def cell_keys(self, group, label, n_classes):
        return _within_label(group, label, n_classes)

    def rated_rows(self, y_true, y_pred):
        return [
            *_one_vs_rest(y_true, y_pred, negatives=False),
            *_one_vs_rest(y_true, y_pred, negatives=True),
        ]


class ErrorRateParity(Constraint):
    """Equal error rates: all rows of each group, labels pooled.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import ErrorRateParity
    >>> y_true = np.array([1, 0, 1, 0])
    >>> y_pred = np.array([1, 0, 0, 0])
    >>> groups = np.array([0, 0, 1, 1])
    >>> float(ErrorRateParity().disparity(y_true, y_pred, groups))
    0.5

    """

    name = "error_rate_parity"
    pools_labels = True

    def cell_keys(self, group, label, n_classes):
        return group.copy(), np.zeros_like(group)

    def rated_rows(self, y_true, y_pred):
        return [(y_pred == y_true, np.ones(len(y_true), bool))]


class DemographicParity(Constraint):
    """Equal selection rates P(prediction = positive class) across groups.

    The surrogate of a row is one minus its predicted probability of the
    positive class, so a group's mean surrogate is one minus its soft
    selection rate and the worst-group lift raises the lowest selection rate.
    Defined for binary targets with ``sensitive_features``: with the classes
    as groups, a selection rate per class is not a fairness notion. On a
    multi-class target (measured only) the disparity is the largest spread
    across groups of a class's selection rate.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import DemographicParity
    >>> y_true = np.array([1, 0, 1, 0])
    >>> y_pred = np.array([1, 1, 1, 0])
    >>> groups = np.array([0, 0, 1, 1])
    >>> float(DemographicParity().disparity(y_true, y_pred, groups))
    0.5

    """

    name = "demographic_parity"
    pools_labels = True
    binary_only = True
    log_surrogate = False

    def check_target(self, n_classes, groups_are_classes):
        if groups_are_classes:
            raise ValueError(
                "constraint='demographic_parity' compares selection rates across "
                "sensitive groups: pass sensitive_features to fit."
            )
        super().check_target(n_classes, groups_are_classes)

    def cell_keys(self, group, label, n_classes):
        return group.copy(), np.zeros_like(group)

    def row_values(self, logits, y, row_losses):
        return 1.0 - torch.softmax(logits.float(), dim=1)[:, 1].to(row_losses.dtype)

    def rate_values(self, proba, y):
        # The selection rate: the probability of the positive class.
        return proba[:, 1]

    def rated_rows(self, y_true, y_pred):
        # Multi-class targets (measured only): each class's selection rate.
        every = np.ones(len(y_true), bool)
        classes = _rated_classes(_n_classes(y_true, y_pred))
        return [(y_pred == c, every) for c in classes]


class BalancedAccuracyParity(Constraint):
    """Equal balanced accuracies: the mean over labels of a group's recalls.

    A group's balanced accuracy is the mean of its per-label recalls (TPR
    and TNR on binary targets; the mean per-class recall on multi-class
    ones, over the labels the group has), scikit-learn's
    ``balanced_accuracy_score`` within each group. Unlike the error rate, it
    does not depend on how many positives a group has, so a group with
    fewer positives cannot look better served by predicting them negative.

    A group's rate is one mean of a hit over its rows only under weights
    that give each of its labels equal total weight, which
    :meth:`rated_rows`' boolean masks cannot carry: :meth:`disparity` sets
    those weights itself. The constrained objective's rates are means over
    cells under weights of the training mix, where a cell pooling a group's
    labels gives its accuracy, not its balanced accuracy; its moments are
    therefore every label's recall, compared within the label (those of
    :class:`EqualizedOdds`): equal recalls make the balanced accuracies
    equal, and a balanced-accuracy gap is at most the largest recall gap,
    so a ``tolerance`` met by the moments is met by the disparity. The
    loss-discrepancy meta-losses compare each group's mean loss over its
    validation rows, which are balanced across labels: its label-balanced
    loss.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml.metrics import group_disparity
    >>> y_true = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    >>> y_pred = np.array([1, 0, 0, 1, 0, 1, 0, 0])
    >>> groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> # group 0: (1 + 2/3) / 2; group 1: (1/2 + 1) / 2
    >>> round(group_disparity(y_true, y_pred, sensitive_features=groups,
    ...                       constraint="balanced_accuracy_parity"), 4)
    0.0833

    """

    name = "balanced_accuracy_parity"
    pools_labels = True

    def cell_keys(self, group, label, n_classes):
        return group.copy(), np.zeros_like(group)

    def moment_keys(self, group, label, n_classes):
        return _within_label(group, label, n_classes)

    def disparity(self, y_true, y_pred, groups, sample_weight=None):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        groups = np.asarray(groups)
        weight = (
            np.ones(len(y_true))
            if sample_weight is None
            else np.asarray(sample_weight, dtype=float)
        )
        if len(y_true) == 0:
            return 0.0
        strata = groups * _n_classes(y_true, y_pred) + y_true
        mass = np.bincount(strata, weights=weight)[strata]
        # Every (group, label) cell weighs 1 in total: a group's weighted
        # accuracy is then the mean of its labels' (weighted) recalls.
        balanced = np.divide(weight, mass, out=np.zeros_like(weight), where=mass > 0)
        return rate_spread(
            y_pred == y_true, np.ones(len(y_true), bool), groups, balanced
        )


class ClassRecallParity(Constraint):
    """What every constraint becomes when the classes are the groups.

    The disparity is the spread of per-class recall (the paper's image
    metric); the cells are built by :meth:`Constraint.compile`.
    """

    name = "class_recall_parity"

    def cell_keys(self, group, label, n_classes):  # pragma: no cover - not used
        return np.where(group == label, group, -1), np.zeros_like(group)

    def rated_rows(self, y_true, y_pred):
        return [(y_pred == y_true, np.ones(len(y_true), bool))]

    def disparity(self, y_true, y_pred, groups, sample_weight=None):
        # The groups are the classes; constant weights within a class change
        # nothing.
        return super().disparity(y_true, y_pred, y_true)


def measured_constraint(constraint, groups_are_classes):
    """The constraint whose disparity is reported: recall spread without groups."""
    return ClassRecallParity() if groups_are_classes else make_constraint(constraint)
