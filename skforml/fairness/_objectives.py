"""The meta-losses FORML minimises on validation rows.

A constraint (:mod:`skforml.fairness._base`) maps every validation row to a
*cell* (``-1`` when it ignores the row) and gives each row a differentiable
value (its loss, or for demographic parity one minus its predicted positive
probability). A meta-loss reduces those values to one scalar: the
discrepancy between the cells' means within each bucket of compared cells.
:class:`MetaObjective` chains the two for the meta step.

:class:`ConstrainedObjective` is the other kind (``meta_loss="constrained"``):
the validation loss, rows weighted to the training distribution, plus
``sum_b lambda_b * sum_c |g_c|`` over the constraint's moments ``g_c``, the
signed deviations of each cell's soft rate from its bucket's pooled rate
(fairlearn's ``UtilityParity`` moments, on predicted probabilities). The
multipliers ``lambda_b`` live on the device and move once per epoch
(:class:`~skforml.training._callbacks.ToleranceController`).
"""

import numpy as np
import torch

# The constrained objectives and the surrogate of their moments.
CONSTRAINED = {"constrained": "auto", "constrained_soft_rate": "rate"}
META_LOSSES = (
    *CONSTRAINED,
    "mean_loss_discrepancy",
    "max_loss_discrepancy",
    "cross_entropy",
)
# Bounds of the constrained objective's multipliers under a tolerance.
MIN_MULTIPLIER, MAX_MULTIPLIER = 1 / 64, 256.0


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


class Objective:
    """A meta-objective ``L_f(logits, y, keys)`` of the validation batch.

    ``keys`` are the rows' stratum ids (their cell ids for a
    :class:`MetaObjective` built without ``cell_of_stratum``).
    """

    def __call__(self, logits, y, keys):
        raise NotImplementedError


class MetaObjective(Objective):
    """``L_f(logits, y, cells)``: a constraint's row values, reduced by a meta-loss.

    Parameters
    ----------
    meta_loss : callable
        ``f(values, cells) -> scalar`` (see :func:`make_meta_loss`).
    constraint : Constraint or None
        Gives the per-row values; None uses the per-row losses.
    row_loss : callable
        ``row_loss(logits, y)``, the per-row training loss.
    cell_of_stratum : torch.Tensor or None
        Maps the rows' stratum ids to their cell ids; None when the rows
        come with cell ids already.

    """

    def __init__(self, meta_loss, constraint, row_loss, cell_of_stratum=None):
        self.meta_loss = meta_loss
        self.constraint = constraint
        self.row_loss = row_loss
        self.cell_of_stratum = cell_of_stratum

    def __call__(self, logits, y, cells):
        if self.cell_of_stratum is not None:
            cells = self.cell_of_stratum[cells]
        values = self.row_loss(logits, y)
        if self.constraint is not None:
            values = self.constraint.row_values(logits, y, values)
        return self.meta_loss(values, cells)


def as_objective(meta_loss, row_loss):
    """A :class:`MetaObjective` from one, or from a plain ``f(losses, cells)``."""
    if isinstance(meta_loss, Objective):
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


def cell_rates(values, cells, weights, n_cells):
    """Weighted mean of ``values`` over the rows of every cell, and the cells' mass.

    ``cells`` is ``-1`` for rows outside every cell. Sums by ``index_add``:
    no data-dependent shapes, no device synchronisation.
    """
    inside = (cells >= 0).to(values.dtype) * weights.to(values.dtype)
    index = cells.clamp(min=0)
    mass = values.new_zeros(n_cells).index_add(0, index, inside)
    sums = values.new_zeros(n_cells).index_add(0, index, values * inside)
    return sums / mass.clamp(min=1e-12), mass


def rate_moments(rates, mass, buckets):
    """Signed deviation of each cell's rate from its bucket's pooled rate.

    ``buckets`` is the ``(n_cells, n_buckets)`` 0/1 matrix of the cells'
    buckets. The pooled rate is the mass-weighted mean of the bucket's rates
    (the rate over all of the bucket's rows). Cells without rows get 0 and
    the pooled rate of their bucket. Returns ``(moments, pooled rate of each
    cell)``.
    """
    buckets = buckets.to(rates.dtype)
    pooled = ((rates * mass) @ buckets) / (mass @ buckets).clamp(min=1e-12)
    pooled_of_cell = buckets @ pooled
    present = (mass > 0).to(rates.dtype)
    return (rates - pooled_of_cell) * present, pooled_of_cell


class ConstrainedObjective(Objective):
    """``meta_loss="constrained"``: validation loss plus multiplied moment norms.

    ``L(logits, y, strata) = sum_i v_i l_i / sum_i v_i + sum_b lambda_b P_b``
    where ``v_i`` weighs a validation row by its stratum's share of the
    training rows over its share of the validation rows (so that the first
    term estimates the training distribution's loss, the
    learning-to-reweight objective), and ``P_b = sum_{c in b} |g_c|`` is the
    L1 norm of bucket ``b``'s moments: the deviations of each cell's mean
    surrogate from the bucket's pooled mean (for two groups, the gap).

    The surrogate of a row is its soft rate value ``r`` (the probability of
    the outcome the rate counts, :meth:`Constraint.rate_values`) with
    ``surrogate="rate"``, or its logarithm with ``surrogate="log_rate"``;
    ``"auto"`` takes the log where the constraint says so
    (``Constraint.log_surrogate``: rates of the probability of the row's own
    label). A soft rate saturates: a row the network gets confidently wrong
    has gradient ``r (1 - r) ~ 0``, so the moments of a badly served group
    barely steer the weights and the gap closes by lowering the
    better-served group (on the biased synthetic data, TPR parity: max FNR
    .77 -> .96). The log keeps those rows' gradients (max FNR .77 -> .12).
    A selection rate keeps the soft rate: the log of ``P(positive)`` over
    all of a group's rows is dominated by how sure its negatives are
    (demographic parity there: selection gap .166 -> .083 with the soft
    rate, -> .439 with the log).

    ``worst_group_lift`` adds ``lift * sum_c max(0, sg(m_b) - m_c)`` (``m``
    the cells' mean surrogates, ``m_b`` the bucket's pooled mean held
    fixed), which only raises the cells below the pooled mean: the gap then
    closes by lifting the worse-served groups.

    Parameters
    ----------
    constraint : Constraint
        Gives the rows' rate values (:meth:`Constraint.rate_values`).
    spec : CellSpec
        The constraint's moment cells (``compile(..., moments=True)``).
    stratum_weight : torch.Tensor of shape (n_strata,)
        ``v`` of every stratum, on the device.
    row_loss : callable
        ``row_loss(logits, y)``, the per-row training loss.
    multiplier : float
        Starting value of every multiplier ``lambda_b``.
    worst_group_lift : float, default=0.0
        Weight of the one-sided term.
    surrogate : {"auto", "log_rate", "rate"}, default="auto"
        The per-row surrogate of the rates (see above).

    """

    def __init__(
        self, constraint, spec, stratum_weight, row_loss, multiplier,
        worst_group_lift=0.0, surrogate="auto",
    ):  # fmt: skip
        device = stratum_weight.device
        self.constraint = constraint
        self.row_loss = row_loss
        self.stratum_weight = stratum_weight
        self.cell_of_stratum = torch.as_tensor(spec.cell_of_stratum, device=device)
        # cell_rates' index and row mask per stratum, looked up once per step.
        self.index_of_stratum = self.cell_of_stratum.clamp(min=0)
        self.inside_of_stratum = (self.cell_of_stratum >= 0).to(stratum_weight.dtype)
        bucket_of_cell = torch.as_tensor(spec.bucket_of_cell, device=device)
        self.n_cells = spec.n_cells
        self.n_buckets = int(spec.bucket_of_cell.max()) + 1
        # (n_cells, n_buckets), built once: the step makes no index tensors.
        self.buckets = torch.nn.functional.one_hot(bucket_of_cell, self.n_buckets)
        self.buckets = self.buckets.to(stratum_weight.dtype)
        self.worst_group_lift = worst_group_lift
        if surrogate == "auto":
            surrogate = "log_rate" if constraint.log_surrogate else "rate"
        self.surrogate = surrogate
        self.multipliers = torch.full(
            (self.n_buckets,), float(multiplier), device=device
        )

    def penalties(self, proba, y, strata, weights=None):
        """``P_b`` (with the lift) of every bucket, from class probabilities."""
        if weights is None:
            weights = self.stratum_weight[strata]
        values = self.constraint.rate_values(proba, y)
        if self.surrogate == "log_rate":
            # float32 probabilities of 1e-30 and below are hopeless rows anyway.
            values = torch.log(values.clamp(min=1e-30))
        # cell_rates, from the tables: the same sums with fewer operations.
        index = self.index_of_stratum[strata]
        inside = self.inside_of_stratum[strata].to(values.dtype) * weights.to(
            values.dtype
        )
        mass = values.new_zeros(self.n_cells).index_add(0, index, inside)
        sums = values.new_zeros(self.n_cells).index_add(0, index, values * inside)
        means = sums / mass.clamp(min=1e-12)
        moments, pooled = rate_moments(means, mass, self.buckets)
        terms = moments.abs()
        if self.worst_group_lift:
            below = torch.relu(pooled.detach() - means) * (mass > 0).to(means.dtype)
            terms = terms + self.worst_group_lift * below
        return terms @ self.buckets.to(terms.dtype)

    def __call__(self, logits, y, strata):
        weights = self.stratum_weight[strata]
        losses = self.row_loss(logits, y)
        loss = (weights * losses).sum() / weights.sum().clamp(min=1e-12)
        proba = torch.softmax(logits, dim=1)
        penalties = self.penalties(proba, y, strata, weights)
        return loss + self.multipliers.to(penalties.dtype) @ penalties

    def update_multipliers(self, gaps, tolerance):
        """One dual-ascent step per epoch from the buckets' measured gaps.

        Each multiplier is multiplied by ``2 ** clip((gap - tol) / tol, -1, 1)``:
        up while its gap exceeds the tolerance, toward 0 once it is met, by
        at most a factor of 2 per epoch, within ``[MIN_MULTIPLIER,
        MAX_MULTIPLIER]``.
        """
        gaps = torch.as_tensor(gaps, dtype=torch.float64)
        violation = ((gaps - tolerance) / tolerance).nan_to_num(0.0)
        factor = torch.pow(2.0, violation.clamp(-1.0, 1.0)).to(self.multipliers)
        self.multipliers.mul_(factor).clamp_(MIN_MULTIPLIER, MAX_MULTIPLIER)


def hard_rate_gaps(constraint, spec, y_true, y_pred, cells, row_weight, n_classes):
    """Gap of every bucket's hard rates, and the gap's standard error.

    The rates are those of :func:`cell_rates` on one-hot predictions (the
    moments' hard counterparts), ``cells`` the rows' moment cells and
    ``row_weight`` their weights: for a bucket, ``max_c r_c - min_c r_c``
    over its cells with rows. The standard error is that of the difference of
    the two extreme cells' rates, Agresti and Caffo's: each rate counted with
    one hit and one miss added, so that it stays positive where every row
    got the same prediction (a network that predicts one class for everyone
    has a gap of 0 that its rows cannot vouch for).

    Returns
    -------
    gaps, standard_errors : ndarray of shape (n_buckets,)

    """
    y_true = torch.as_tensor(np.asarray(y_true))
    proba = torch.nn.functional.one_hot(torch.as_tensor(np.asarray(y_pred)), n_classes)
    values = constraint.rate_values(proba.double(), y_true)
    cells = torch.as_tensor(np.asarray(cells))
    weight = torch.as_tensor(np.asarray(row_weight), dtype=torch.float64)
    rates, _ = cell_rates(values, cells, weight, spec.n_cells)
    _, counts = cell_rates(values, cells, torch.ones_like(weight), spec.n_cells)
    rates, counts = rates.numpy(), counts.numpy()
    n_buckets = int(spec.bucket_of_cell.max()) + 1
    gaps, errors = np.zeros(n_buckets), np.zeros(n_buckets)
    for bucket in range(n_buckets):
        members = np.flatnonzero((spec.bucket_of_cell == bucket) & (counts > 0))
        if len(members) < 2:
            continue
        order = members[np.argsort(rates[members], kind="stable")]
        low, high = order[0], order[-1]  # two cells, even when all rates tie
        gaps[bucket] = rates[high] - rates[low]
        n = counts[[high, low]] + 2
        adjusted = (np.clip(rates[[high, low]], 0, 1) * counts[[high, low]] + 1) / n
        errors[bucket] = np.sqrt(np.sum(adjusted * (1 - adjusted) / n))
    return gaps, errors
