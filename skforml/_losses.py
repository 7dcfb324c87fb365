"""The meta-losses FORML minimises on validation rows.

A constraint (:mod:`skforml._constraints`) maps every validation row to a
*cell* (``-1`` when it ignores the row) and gives each row a differentiable
value (its loss, or for demographic parity one minus its predicted positive
probability). A meta-loss reduces those values to one scalar: the
discrepancy between the cells' means within each bucket of compared cells.
:class:`MetaObjective` chains the two for the meta step.
"""

import torch

META_LOSSES = ("mean_loss_discrepancy", "max_loss_discrepancy", "cross_entropy")


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


class MetaObjective:
    """``L_f(logits, y, cells)``: a constraint's row values, reduced by a meta-loss.

    Parameters
    ----------
    meta_loss : callable
        ``f(values, cells) -> scalar`` (see :func:`make_meta_loss`).
    constraint : Constraint or None
        Gives the per-row values; None uses the per-row losses.
    row_loss : callable
        ``row_loss(logits, y)``, the per-row training loss.

    """

    def __init__(self, meta_loss, constraint, row_loss):
        self.meta_loss = meta_loss
        self.constraint = constraint
        self.row_loss = row_loss

    def __call__(self, logits, y, cells):
        values = self.row_loss(logits, y)
        if self.constraint is not None:
            values = self.constraint.row_values(logits, y, values)
        return self.meta_loss(values, cells)


def as_objective(meta_loss, row_loss):
    """A :class:`MetaObjective` from one, or from a plain ``f(losses, cells)``."""
    if isinstance(meta_loss, MetaObjective):
        return meta_loss
    return MetaObjective(meta_loss, None, row_loss)


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
