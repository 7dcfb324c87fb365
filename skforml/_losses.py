"""Fairness constraints and the meta-losses FORML minimises on validation rows.

A *constraint* decides which validation rows form the group losses ``L_g`` and
which group losses are compared with each other. It is compiled once in
``fit`` into a :class:`CellSpec`: every (group, label) pair of a row maps to a
*cell* (or to ``-1`` when the constraint ignores the row), and every cell
belongs to a *bucket* of cells that are compared with each other. The
meta-loss then reduces per-row validation losses to one scalar.
"""

from dataclasses import dataclass

import numpy as np
import torch

CONSTRAINTS = (
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "equalized_odds",
    "error_rate_parity",
)
META_LOSSES = ("mean_loss_discrepancy", "max_loss_discrepancy", "cross_entropy")


@dataclass(frozen=True)
class CellSpec:
    """Which (group, label) rows form each group loss, and what is compared.

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

    def cells(self, strata):
        """Cell id of each row given its stratum id (``-1``: ignored)."""
        return self.cell_of_stratum[strata]


def build_cell_spec(
    constraint, *, group_names, class_names, groups_are_classes, present
):
    """Compile a constraint into a :class:`CellSpec`.

    Parameters
    ----------
    constraint : str
        One of :data:`CONSTRAINTS`.
    group_names, class_names : sequence
        Name of each sensitive group and of each class (for error messages).
    groups_are_classes : bool
        True when no sensitive features were given and the class of a row is
        its group (the paper's setting for CIFAR and MNIST). Every constraint
        then compares the per-class losses, the proxy of per-class recall.
    present : ndarray of bool of shape (n_groups * n_classes,)
        Which strata occur in the data.

    Raises
    ------
    ValueError
        When a group has no rows of a label the constraint compares, or when
        the constraint leaves fewer than two group losses to compare.

    """
    n_groups, n_classes = len(group_names), len(class_names)
    strata = np.arange(n_groups * n_classes)
    group, label = np.divmod(strata, n_classes)
    cell_key = np.full(len(strata), -1)
    bucket_key = np.zeros(len(strata), dtype=int)
    if groups_are_classes:
        # The group of a row is its label: every constraint reduces to
        # comparing per-class losses, the proxy of per-class recall.
        diagonal = group == label
        cell_key[diagonal] = group[diagonal]
    elif constraint == "error_rate_parity":
        cell_key = group.copy()
    elif constraint == "equalized_odds" or (
        constraint == "true_positive_rate_parity" and n_classes > 2
    ):
        # Multi-class TPR parity: compare the groups' recall of every class.
        cell_key = strata.copy()
        bucket_key = label.copy()
    elif constraint == "true_positive_rate_parity":
        positives = label == n_classes - 1
        cell_key[positives] = group[positives]
    elif constraint == "false_positive_rate_parity":
        if n_classes > 2:
            raise ValueError(
                "constraint='false_positive_rate_parity' is defined for binary "
                "targets only; use 'equalized_odds' for multi-class targets."
            )
        negatives = label == 0
        cell_key[negatives] = group[negatives]
    else:  # pragma: no cover - validated by the estimator's constraints
        raise ValueError(f"Unknown constraint {constraint!r}.")

    # A cell is missing when none of its strata occur (a cell that pools
    # labels, as for error_rate_parity, needs only one of them).
    occurring = np.unique(cell_key[present])
    missing = (cell_key >= 0) & ~np.isin(cell_key, occurring)
    if missing.any() and not groups_are_classes:
        stratum = np.flatnonzero(missing)[0]
        raise ValueError(
            f"Sensitive group {group_names[group[stratum]]!r} has no rows with "
            f"label {class_names[label[stratum]]!r}, which constraint="
            f"{constraint!r} compares across groups. Choose another constraint "
            "or merge that group with another."
        )
    cell_key[~present] = -1
    used_keys, cell_of_stratum = np.unique(cell_key, return_inverse=True)
    # np.unique sorts -1 first when present; shift so that ignored stays -1.
    offset = 1 if used_keys[0] == -1 else 0
    cell_of_stratum = cell_of_stratum - offset
    cell_of_stratum[cell_key == -1] = -1
    n_cells = len(used_keys) - offset
    bucket_of_cell = np.zeros(n_cells, dtype=int)
    cell_names = [None] * n_cells
    pools_labels = constraint == "error_rate_parity" and not groups_are_classes
    for stratum in strata[cell_of_stratum >= 0]:
        cell = cell_of_stratum[stratum]
        bucket_of_cell[cell] = bucket_key[stratum]
        cell_names[cell] = (
            group_names[group[stratum]],
            None if pools_labels else class_names[label[stratum]],
        )
    _, bucket_of_cell = np.unique(bucket_of_cell, return_inverse=True)
    n_compared = np.bincount(bucket_of_cell, minlength=1)
    if n_cells == 0 or n_compared.max() < 2:
        raise ValueError(
            f"constraint={constraint!r} leaves fewer than two groups to compare "
            "in the data: sensitive_features (or, without them, y) must hold at "
            "least two groups that the constraint looks at."
        )
    return CellSpec(cell_of_stratum.astype(np.int64), bucket_of_cell, cell_names)


def _group_losses(losses, cells, n_cells):
    """Sum, row count and mean loss of every cell in this batch.

    One-hot membership and a matrix product rather than boolean indexing:
    no data-dependent shapes, so no device synchronisation and a short
    backward graph.
    """
    membership = torch.nn.functional.one_hot(cells.clamp(min=0), n_cells)
    membership = membership.mul_((cells >= 0)[:, None]).to(losses.dtype)
    sums = losses @ membership
    counts = membership.sum(dim=0)
    return sums, counts, sums / counts.clamp(min=1)


def _bucket_matrix(bucket_masks):
    """``(n_buckets, n_cells)`` boolean matrix from a matrix or a list of masks."""
    if torch.is_tensor(bucket_masks):
        return bucket_masks
    return torch.stack(list(bucket_masks))


def _mean_over_buckets(values, members):
    """Mean of ``values`` (buckets x cells) over members, then over buckets."""
    n_members = members.sum(dim=1)
    per_bucket = (values * members).sum(dim=1) / n_members.clamp(min=1)
    occupied = (n_members > 0).to(values.dtype)
    return (per_bucket * occupied).sum() / occupied.sum().clamp(min=1)


def mean_loss_discrepancy(losses, cells, bucket_masks, worst_group_lift=0.0):
    """MeanLossD: mean over groups of ``|L_g - L_bar|``, averaged over buckets.

    ``L_bar`` is the mean loss over all rows the constraint looks at in the
    bucket (not the mean of the group losses), as in the paper. Cells with no
    row in the batch are left out. ``worst_group_lift`` adds
    ``lift * mean_g max(0, L_g - sg(L_bar))`` with ``sg`` a stop-gradient: a
    term that only lowers the losses of the groups above the mean, so that
    the gap closes by lifting the worst groups rather than by lowering the
    best ones.
    """
    matrix = _bucket_matrix(bucket_masks)
    sums, counts, group_loss = _group_losses(losses, cells, matrix.shape[1])
    members = (matrix & (counts > 0)).to(losses.dtype)
    pooled = (members @ sums) / (members @ counts).clamp(min=1)
    excess = group_loss[None, :] - pooled[:, None]
    values = excess.abs()
    if worst_group_lift:
        lifted = group_loss[None, :] - pooled.detach()[:, None]
        values = values + worst_group_lift * torch.relu(lifted)
    return _mean_over_buckets(values, members)


def max_loss_discrepancy(losses, cells, bucket_masks, worst_group_lift=0.0):
    """MaxLossD: ``max_g L_g - min_g L_g``, averaged over buckets.

    ``worst_group_lift`` adds ``lift * (max_g L_g - sg(min_g L_g))``, which
    only lowers the worst group's loss (see :func:`mean_loss_discrepancy`).
    """
    matrix = _bucket_matrix(bucket_masks)
    _, counts, group_loss = _group_losses(losses, cells, matrix.shape[1])
    members = matrix & (counts > 0)
    spread = group_loss[None, :].expand(members.shape)
    worst = spread.masked_fill(~members, -torch.inf).amax(dim=1)
    best = spread.masked_fill(~members, torch.inf).amin(dim=1)
    present = members.any(dim=1)
    worst, best = worst[present], best[present]
    terms = worst - best
    if worst_group_lift:
        terms = terms + worst_group_lift * (worst - best.detach())
    return terms.mean()


def cross_entropy(losses, cells):
    """Plain mean loss over all validation rows (the non-fair ablation)."""
    return losses.mean()


class MetaLoss:
    """Picklable ``f(losses, cells) -> scalar`` for a built-in meta-loss."""

    def __init__(self, reduce, bucket_of_cell, device, worst_group_lift=0.0):
        self.reduce = reduce
        self.worst_group_lift = worst_group_lift
        buckets = torch.as_tensor(bucket_of_cell, device=device)
        self.bucket_masks = (
            buckets[None, :]
            == torch.arange(int(buckets.max()) + 1, device=device)[:, None]
        )

    def __call__(self, losses, cells):
        return self.reduce(losses, cells, self.bucket_masks, self.worst_group_lift)


def make_meta_loss(meta_loss, spec, device, worst_group_lift=0.0):
    """Return ``f(losses, cells) -> scalar`` for a meta-loss name or callable.

    ``losses`` are per-row validation losses and ``cells`` the rows' cell ids
    under the constraint (``-1`` for rows the constraint ignores). A callable
    given by the user receives exactly these two tensors.
    """
    if callable(meta_loss):
        return meta_loss
    if meta_loss == "cross_entropy":
        return cross_entropy
    reduce = {
        "mean_loss_discrepancy": mean_loss_discrepancy,
        "max_loss_discrepancy": max_loss_discrepancy,
    }[meta_loss]
    return MetaLoss(reduce, spec.bucket_of_cell, device, worst_group_lift)
