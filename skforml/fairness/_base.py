"""The constraints' seam: :class:`Constraint`, its registry, cells and rate spreads.

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
:func:`rate_spread` here. The built-in constraints are in
:mod:`skforml.fairness._constraints`.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

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
