"""Fairness constraints: which rows form each group quantity, and what is measured.

A constraint, like one of fairlearn's Moments, knows three things:

- its *cells*: which (group, label) strata of the validation rows form each
  group quantity, and which cells are compared with each other (a *bucket*);
- its differentiable *surrogate*: the per-row value whose cell means the
  meta-loss compares (the training loss for the error-rate constraints, one
  minus the predicted probability of the positive class for demographic
  parity);
- its *moments*, for the constrained meta-objective: which rows define each
  group's rate (:meth:`Constraint.moment_keys`, e.g. the positives for the
  true-positive rate) and the per-row value whose mean over those rows is
  the rate (:meth:`Constraint.rate_values`, the predicted probability of the
  true class, or of the positive class for selection rates); soft on
  probabilities, and the hard rate itself on one-hot predictions;
- its *disparity* measured on hard predictions, the number a user reads in
  ``history_`` and sets a ``tolerance`` on: the largest spread across groups
  of its hard rates (:meth:`Constraint.rated_rows`); it equals fairlearn's
  metric of the same name on binary targets.

The registered names are skforml's one vocabulary of fairness notions:
:func:`skforml.metrics.group_disparity`, the scorers, :func:`skforml.sweep`
and the label-bias baseline take them, and every spread is computed by
:func:`rate_spread` here.

Adding a constraint is one subclass in this module: it registers itself
under its ``name`` (and ``aliases``) and every estimator accepts it.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

_REGISTRY = {}


@dataclass(frozen=True)
class CellSpec:
    """Which (group, label) rows form each group quantity, and what is compared.

    Attributes
    ----------
    cell_of_stratum : ndarray of shape (n_groups * n_classes,)
        Cell id of each stratum ``group * n_classes + label``; ``-1`` when the
        constraint ignores rows of that stratum.
    bucket_of_cell : ndarray of shape (n_cells,)
        Cells in the same bucket are compared with each other (for
        ``equalized_odds``, the bucket is the label: groups are compared
        within each label).
    cell_names : list of tuple
        ``(group, label)`` of each cell, ``label`` is None when a cell pools
        labels, for error messages and reports.

    """

    cell_of_stratum: np.ndarray
    bucket_of_cell: np.ndarray
    cell_names: list

    @property
    def n_cells(self):
        return len(self.bucket_of_cell)

    def covers_every_label(self, n_classes):
        """Whether rows of every label belong to some cell."""
        labels = np.flatnonzero(self.cell_of_stratum >= 0) % n_classes
        return len(np.unique(labels)) == n_classes

    def cells(self, strata):
        """Cell id of each row given its stratum id (``-1``: ignored)."""
        return self.cell_of_stratum[strata]


class Constraint(ABC):
    """A fairness constraint of FORML's meta-loss and of its ``tolerance``.

    Subclasses set ``name`` (and optionally ``aliases``) and implement
    :meth:`cell_keys` and :meth:`rated_rows` (or override :meth:`disparity`);
    the surrogate defaults to the per-row training loss. Instances are
    stateless and picklable.

    Examples
    --------
    >>> from skforml import Constraint, EqualizedOdds, FORMLClassifier
    >>> constraint = EqualizedOdds()
    >>> isinstance(constraint, Constraint), constraint.name
    (True, 'equalized_odds')
    >>> clf = FORMLClassifier(constraint=constraint)  # an instance works like its name

    """

    name: ClassVar[str]
    aliases: ClassVar[tuple] = ()
    # Whether a cell pools the labels of a group (error rate, selection rate).
    pools_labels: ClassVar[bool] = False
    # Whether the constrained objective compares the rates' logs: right where
    # rate_values is the probability of the row's own label (its log is the
    # row's log-likelihood, which does not saturate on rows the network gets
    # confidently wrong); a selection rate's log would be dominated by the
    # negatives' confidence instead.
    log_surrogate: ClassVar[bool] = True
    binary_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for key in (cls.name, *cls.aliases):
            _REGISTRY[key] = cls

    @abstractmethod
    def cell_keys(self, group, label, n_classes):
        """Cell key (``-1``: ignored) and bucket key of every stratum.

        ``group`` and ``label`` are the stratum's group and encoded label
        (arrays over all ``n_groups * n_classes`` strata). Equal keys form
        one cell; cells of equal bucket keys are compared.
        """

    def required(self, group, label, n_classes):
        """Which strata's cells must occur (the rest may be absent)."""
        return np.ones(len(group), dtype=bool)

    def moment_keys(self, group, label, n_classes):
        """Cell key (``-1``: ignored) and bucket key of every stratum, for the rates.

        A cell's rate is the mean of :meth:`rate_values` over its rows; the
        constrained meta-objective pulls the rates of the cells of a bucket
        together. Defaults to :meth:`cell_keys`.
        """
        return self.cell_keys(group, label, n_classes)

    def rate_values(self, proba, y):
        """Per-row values whose cell means are the rates (higher: better served).

        ``proba`` holds class probabilities (one-hot rows give the hard
        rates). Defaults to the probability of the true class, whose mean
        over a (group, label) cell is the group's recall of that label (the
        TPR of the positives, one minus the FPR of the negatives).
        """
        return proba.gather(1, y[:, None]).squeeze(1)

    def row_values(self, logits, y, row_losses):
        """Per-row values whose cell means the meta-loss compares.

        Higher must mean worse served: the worst-group lift lowers the cells
        above the mean.
        """
        return row_losses

    def rated_rows(self, y_true, y_pred):
        """The hard rates the disparity compares, as ``(hit, rows)`` pairs.

        A group's rate is the (weighted) mean of the boolean ``hit`` over its
        ``rows`` (boolean masks over all rows); ``y_true`` and ``y_pred`` are
        encoded labels, the positive class 1 on binary targets.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement rated_rows or disparity."
        )

    def disparity(self, y_true, y_pred, groups, sample_weight=None):
        """Disparity of hard predictions across ``groups`` (encoded labels).

        The largest :func:`rate_spread` of the :meth:`rated_rows`; 0 when no
        group has rows of any rate. ``sample_weight`` weighs the rows (the
        validation rows are balanced across labels, which changes rates that
        pool labels).
        """
        return max(
            rate_spread(hit, rows, groups, sample_weight)
            for hit, rows in self.rated_rows(y_true, y_pred)
        )

    def check_target(self, n_classes, groups_are_classes):
        """Raise when the constraint is undefined for the target or groups."""
        if self.binary_only and n_classes > 2 and not groups_are_classes:
            raise ValueError(
                f"constraint={self.name!r} is defined for binary targets only, "
                f"but y has {n_classes} classes; use 'equalized_odds' for "
                "multi-class targets."
            )

    def compile(
        self, *, group_names, class_names, groups_are_classes, present, moments=False
    ):
        """The :class:`CellSpec` of this constraint on the data at hand.

        Parameters
        ----------
        group_names, class_names : sequence
            Name of each group and of each class (for error messages).
        groups_are_classes : bool
            True when no sensitive features were given: the class of a row
            is its group, and every constraint compares per-class losses, the
            proxy of per-class recall (the paper's CIFAR and MNIST setting).
        present : ndarray of bool of shape (n_groups * n_classes,)
            Which strata occur in the data.
        moments : bool, default=False
            Compile the cells of the rates (:meth:`moment_keys`) rather than
            those of the loss-discrepancy meta-losses (:meth:`cell_keys`).

        """
        n_classes = len(class_names)
        self.check_target(n_classes, groups_are_classes)
        strata = np.arange(len(group_names) * n_classes)
        group, label = np.divmod(strata, n_classes)
        if groups_are_classes:
            cell_key = np.where(group == label, group, -1)
            bucket_key = np.zeros(len(strata), dtype=int)
        else:
            keys = self.moment_keys if moments else self.cell_keys
            cell_key, bucket_key = keys(group, label, n_classes)
            required = np.where(self.required(group, label, n_classes), cell_key, -1)
            self._check_cells_occur(
                required, cell_key, present, names=(group_names, class_names)
            )
        return _cell_spec(
            cell_key,
            bucket_key,
            present,
            (group, label),
            (group_names, class_names),
            pools_labels=self.pools_labels and not groups_are_classes,
            describe=self._describe,
        )

    def _check_cells_occur(self, required, cell_key, present, names):
        # A cell is missing when none of its strata occur (a cell that pools
        # labels needs only one of them).
        group_names, class_names = names
        missing = (required >= 0) & ~np.isin(required, cell_key[present])
        if missing.any():
            group, label = divmod(int(np.flatnonzero(missing)[0]), len(class_names))
            raise ValueError(
                f"Sensitive group {group_names[group]!r} has no rows with label "
                f"{class_names[label]!r}, which constraint={self.name!r} compares "
                "across groups. Choose another constraint or merge that group "
                "with another."
            )

    def _describe(self):
        return f"constraint={self.name!r}"

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


def _cell_spec(cell_key, bucket_key, present, strata, names, *, pools_labels, describe):
    """Number the cells and buckets of ``cell_key`` over the present strata."""
    (group, label), (group_names, class_names) = strata, names
    cell_key = np.where(present, cell_key, -1)
    used = np.unique(cell_key[cell_key >= 0])
    cell_of_stratum = np.where(cell_key >= 0, np.searchsorted(used, cell_key), -1)
    bucket_of_cell = np.zeros(len(used), dtype=int)
    cell_names = [None] * len(used)
    for stratum in np.flatnonzero(cell_of_stratum >= 0):
        cell = cell_of_stratum[stratum]
        bucket_of_cell[cell] = bucket_key[stratum]
        cell_names[cell] = (
            group_names[group[stratum]],
            None if pools_labels else class_names[label[stratum]],
        )
    _, bucket_of_cell = np.unique(bucket_of_cell, return_inverse=True)
    if len(used) == 0 or np.bincount(bucket_of_cell, minlength=1).max() < 2:
        raise ValueError(
            f"{describe()} leaves fewer than two groups to compare in the data: "
            "sensitive_features (or, without them, y) must hold at least two "
            "groups that the constraint looks at."
        )
    return CellSpec(cell_of_stratum.astype(np.int64), bucket_of_cell, cell_names)


def group_rates(hit, rows, groups, sample_weight=None, *, n_groups=None):
    """(Weighted) mean of ``hit`` over the ``rows`` of each group.

    Parameters
    ----------
    hit, rows : ndarray of bool of shape (n_samples,)
        Whether a row counts toward the rate, and whether the rate is taken
        over it (e.g. predicted positive, and a positive, for the TPR).
    groups : ndarray of int of shape (n_samples,)
        Encoded group of each row.
    sample_weight : ndarray of shape (n_samples,), default=None
        Weight of each row.
    n_groups : int, default=None
        Number of groups; None: ``groups.max() + 1``.

    Returns
    -------
    rates : ndarray of float of shape (n_groups,)
        NaN for the groups without such rows (or of zero total weight).

    """
    hit, rows = np.asarray(hit, bool), np.asarray(rows, bool)
    if n_groups is None:
        n_groups = int(groups.max()) + 1 if len(groups) else 0
    weight = np.ones(len(groups)) if sample_weight is None else sample_weight
    weight = np.where(rows, weight, 0.0)
    counts = np.bincount(groups, weights=weight, minlength=n_groups)
    hits = np.bincount(groups, weights=hit * weight, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def rate_spread(hit, rows, groups, sample_weight=None):
    """Max - min over groups of the (weighted) mean of ``hit`` over ``rows``.

    The one implementation of a rate spread (see :func:`group_rates`):
    groups without such rows are left out; 0 when none remain.
    """
    rates = group_rates(hit, rows, groups, sample_weight)
    rates = rates[~np.isnan(rates)]
    return float(rates.max() - rates.min()) if len(rates) else 0.0


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


def constraint_names():
    """Names (and aliases) of every registered constraint, as of this call.

    A :class:`Constraint` subclass registers itself when it is defined, in
    skforml or in your own code, so a name is valid from then on.
    """
    return sorted(name for name in _REGISTRY if name != "class_recall_parity")


def make_constraint(constraint):
    """A :class:`Constraint` from a registered name (or alias) or an instance."""
    if isinstance(constraint, Constraint):
        return constraint
    if isinstance(constraint, str) and constraint in constraint_names():
        return _REGISTRY[constraint]()
    raise ValueError(
        f"constraint must be a registered constraint name or a Constraint "
        f"instance; got {constraint!r}. Registered (a Constraint subclass "
        f"registers its name when it is defined): {constraint_names()}."
    )


def measured_constraint(constraint, groups_are_classes):
    """The constraint whose disparity is reported: recall spread without groups."""
    return ClassRecallParity() if groups_are_classes else make_constraint(constraint)
