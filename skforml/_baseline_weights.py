"""The weightings of the paper's reweighting baselines.

Every weighting builds on :class:`~skforml._weight_store.WeightStore`: a
scheme's weight of a row is stored as its logit, and the caller's
``sample_weight`` is the store's ``log_prior``, so the two multiply in every
batch. :class:`~skforml.ReweightedClassifier` picks one of them.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ._meta_step import LOGIT_BOUND
from ._weight_store import WeightStore

# The baselines expose no knob for the per-row loss average (a diagnostic
# only); they use FORMLClassifier's default so the attributes compare.
LOSS_EMA_DECAY = 0.9


def proportion_weights(counts):
    """Inverse-frequency weight of each group, ``1 / n_c`` (0 for empty groups).

    Parameters
    ----------
    counts : ndarray of int of shape (n_groups,)
        Training rows of each group.

    Returns
    -------
    weights : ndarray of float of shape (n_groups,)

    """
    counts = np.asarray(counts, dtype=float)
    return np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)


def class_balanced_weights(counts, beta):
    """Cui et al.'s weight ``(1 - beta) / (1 - beta**n_c)`` of each group.

    The weights of the non-empty groups are normalised to sum to their number;
    empty groups get 0.

    Parameters
    ----------
    counts : ndarray of int of shape (n_groups,)
        Training rows of each group.
    beta : float in [0, 1)
        Hyperparameter of the effective number of samples
        ``(1 - beta**n_c) / (1 - beta)``.

    Returns
    -------
    weights : ndarray of float of shape (n_groups,)

    """
    counts = np.asarray(counts, dtype=float)
    present = counts > 0
    weights = np.zeros_like(counts)
    # -expm1(n log beta) = 1 - beta**n without cancellation for beta near 1.
    with np.errstate(divide="ignore"):
        effective = -np.expm1(counts[present] * np.log(beta)) / (1.0 - beta)
    weights[present] = 1.0 / effective
    return weights * present.sum() / weights.sum()


class FixedWeights(WeightStore):
    """Weights fixed before training (uniform, random, proportion, ...).

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows,)
        Log-weight of every training row (any additive constant).
    lookahead_lr : float
        Kept for the weighting protocol; no meta step runs.
    sample_weight : torch.Tensor or None
        Caller's non-negative weights of the training rows.
    device : torch.device
        Where the weights live.

    """

    def __init__(self, logits, *, lookahead_lr, sample_weight, device):
        super().__init__(
            len(logits),
            meta_lr=0.0,
            lookahead_lr=lookahead_lr,
            sample_weight=sample_weight,
            loss_ema_decay=LOSS_EMA_DECAY,
            device=device,
        )
        self.logits = (
            torch.as_tensor(logits, dtype=torch.float32, device=device)
            .clamp(-LOGIT_BOUND, LOGIT_BOUND)
            .clone()
        )

    def update(self, rows, d, p=None):
        """Fixed weights ignore the meta step: the batch's weights, unchanged."""
        return self.probabilities(rows)


class LabelBiasWeighting(FixedWeights):
    """Jiang & Nachum's label-bias weights, updated once per epoch.

    With multipliers ``lambda_k`` (0 at the start), ``e_i = -lambda_{g(i)}``
    and ``s_i = sigmoid(2 e_i)``, a positive row weighs ``1 - s_i`` and a
    negative row ``s_i``. After each epoch ``lambda_k += lr * violation_k``,
    with the violations measured on the training rows by hard predictions of
    the network in eval mode (see :meth:`violations`).

    Parameters
    ----------
    y : ndarray of int of shape (n_rows,)
        Encoded labels of the training rows; 1 is the positive class.
    groups : ndarray of int of shape (n_rows,)
        Group of every training row.
    n_groups : int
        Number of groups (one multiplier each).
    lr : float
        Step ``eta`` of the multipliers.
    constraint : {"equal_opportunity", "demographic_parity"}
        Which rate the multipliers equalise.
    lookahead_lr : float
        Kept for the weighting protocol; no meta step runs.
    sample_weight : torch.Tensor or None
        Caller's non-negative weights of the training rows.
    device : torch.device
        Where the weights live.

    Attributes
    ----------
    multipliers : torch.Tensor of shape (n_groups,)
        Current ``lambda``.
    history : list of ndarray
        ``lambda`` after each epoch.
    train_data : RowDataset or None
        The training rows, set by the classifier for the duration of a fit
        (their predictions give the violations).

    """

    def __init__(
        self,
        y,
        groups,
        n_groups,
        *,
        lr,
        constraint,
        lookahead_lr,
        sample_weight,
        device,
    ):
        super().__init__(
            torch.zeros(len(y)),
            lookahead_lr=lookahead_lr,
            sample_weight=sample_weight,
            device=device,
        )
        self.lr = lr
        self.constraint = constraint
        self.positive = torch.as_tensor(np.asarray(y) == 1, device=device)
        self.groups = torch.as_tensor(groups, device=device)
        self.membership = F.one_hot(self.groups, n_groups).bool()
        self.multipliers = torch.zeros(n_groups, dtype=torch.float64, device=device)
        self.history = []
        self.train_data = None
        self._set_logits()

    def _set_logits(self):
        e = -self.multipliers[self.groups]
        # log(1 - sigmoid(2e)) = logsigmoid(-2e): stable for large |lambda|.
        log_weight = torch.where(
            self.positive, F.logsigmoid(-2 * e), F.logsigmoid(2 * e)
        )
        self.logits = log_weight.float().clamp(-LOGIT_BOUND, LOGIT_BOUND)

    def violations(self, predicted_positive):
        """Violation of every group given hard predictions of the training rows.

        Equal opportunity: ``TPR(all) - TPR(group k)``; demographic parity:
        ``P(yhat=1) - P(yhat=1 | group k)``, as in the authors' code. A group
        with no row the rate is taken over has violation 0.
        """
        predicted = predicted_positive.to(self.membership.device).double()
        if self.constraint == "equal_opportunity":
            rows, members = self.positive, self.membership & self.positive[:, None]
        else:
            rows, members = torch.ones_like(self.positive), self.membership
        overall = predicted[rows].mean()
        counts = members.sum(dim=0)
        rates = (members * predicted[:, None]).sum(dim=0) / counts.clamp(min=1)
        return torch.where(counts > 0, overall - rates, torch.zeros_like(rates))

    def end_epoch(self, net):
        """Fold the losses, then step the multipliers on this epoch's model."""
        super().end_epoch(net)
        if self.train_data is None:
            raise RuntimeError(
                "LabelBiasWeighting needs its train_data (the training rows) "
                "during fit to measure the fairness violations."
            )
        logits = net.forward(self.train_data, training=False, device=net.device)
        predicted = logits.argmax(dim=1) == 1
        self.multipliers += self.lr * self.violations(predicted)
        self.history.append(self.multipliers.cpu().numpy().copy())
        self._set_logits()


class LearningToReweight(WeightStore):
    """Ren et al.'s online weights from the validation-gradient alignment.

    For a batch, the meta step takes ``d_j = grad l_j . grad L_val`` with the
    lookahead at the per-row loss weights ``eps = 0`` (so :meth:`probabilities`
    is 0 for every row and the lookahead stays at the current parameters);
    ``-dL_val/d eps_j = eta d_j``, so the batch trains with
    ``p_j = max(d_j, 0) / sum_i max(d_i, 0)`` (times the caller's weights),
    or uniform weights when no ``d_j`` is positive. Each row's last weight
    relative to its batch (``|B| p_j``, mean 1) is kept as its logit, which
    :meth:`weights` reports.

    Parameters
    ----------
    n_rows : int
        Number of training rows.
    lookahead_lr : float
        ``eta`` of the engine (any positive value: the normalisation of the
        weights cancels it).
    sample_weight : torch.Tensor or None
        Caller's non-negative weights of the training rows.
    device : torch.device
        Where the weights live.

    """

    def __init__(self, n_rows, *, lookahead_lr, sample_weight, device):
        super().__init__(
            n_rows,
            meta_lr=0.0,
            lookahead_lr=lookahead_lr,
            sample_weight=sample_weight,
            loss_ema_decay=LOSS_EMA_DECAY,
            device=device,
        )
        self.prior = None if sample_weight is None else sample_weight.to(device).float()

    def probabilities(self, rows):
        """Loss weights of the lookahead: ``eps = 0`` (Ren et al., Eq. 4)."""
        return torch.zeros(len(rows), device=self.logits.device)

    def update(self, rows, d, p=None):
        """Batch weights ``max(d, 0)`` normalised to sum 1 (uniform if all 0)."""
        clipped = d.detach().float().clamp(min=0)
        prior = torch.ones_like(clipped) if self.prior is None else self.prior[rows]
        # No tensor-to-Python branch: the fallback is selected on the device.
        keep = (clipped * prior).sum() > 0
        scheme = torch.where(keep, clipped, torch.ones_like(clipped))
        mass = scheme * prior
        p = mass / mass.sum().clamp(min=torch.finfo(mass.dtype).tiny)
        relative = scheme * (len(scheme) / scheme.sum())
        self.logits[rows] = torch.log(relative).clamp(-LOGIT_BOUND, LOGIT_BOUND)
        return p
