"""The weightings of the paper's reweighting baselines.

Each is a :class:`~skforml._weighting.Weighting`: a scheme's weight of a row
is stored as its logit, and the caller's ``sample_weight`` multiplies it in
every batch. :class:`~skforml.ReweightedClassifier` picks one of them.
"""

import numpy as np
import torch
import torch.nn.functional as F

from ._weighting import LOGIT_BOUND, Weighting


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


class UniformWeights(Weighting):
    """Every row weighs the same: plain training (the paper's "Uniform")."""

    def initial_logits(self, rows):
        return np.zeros(rows.n_rows)


class RandomWeights(Weighting):
    """Log-weights drawn once from N(0, 1) and kept (the paper's "Random")."""

    def initial_logits(self, rows):
        return rows.rng.standard_normal(rows.n_rows)


class ProportionWeights(Weighting):
    """A row weighs ``1 / n_c``, the inverse size of its group."""

    def initial_logits(self, rows):
        counts = np.bincount(rows.groups, minlength=rows.n_groups)
        return np.log(proportion_weights(counts)[rows.groups])


class ClassBalancedWeights(Weighting):
    """Cui et al.'s inverse effective number of the row's group."""

    def __init__(self, beta):
        self.beta = beta

    def initial_logits(self, rows):
        counts = np.bincount(rows.groups, minlength=rows.n_groups)
        return np.log(class_balanced_weights(counts, self.beta)[rows.groups])


class LabelBiasWeighting(Weighting):
    """Jiang & Nachum's label-bias weights, updated once per epoch.

    With multipliers ``lambda_k`` (0 at the start), ``e_i = -lambda_{g(i)}``
    and ``s_i = sigmoid(2 e_i)``, a positive row weighs ``1 - s_i`` and a
    negative row ``s_i``. After each epoch ``lambda_k += lr * violation_k``,
    with the violations measured on the training rows by hard predictions of
    the network in eval mode (see :meth:`violations`).

    Parameters
    ----------
    lr : float
        Step ``eta`` of the multipliers.
    constraint : {"true_positive_rate_parity", "demographic_parity"}
        Which rate the multipliers equalise.

    Attributes
    ----------
    multipliers : torch.Tensor of shape (n_groups,)
        Current ``lambda``.
    history : list of ndarray
        ``lambda`` after each epoch.

    """

    def __init__(self, lr, constraint):
        self.lr = lr
        self.constraint = constraint

    def initial_logits(self, rows):
        if rows.n_classes != 2:
            raise ValueError(
                "weighting='label_bias' is defined for binary targets only, "
                f"but y has {rows.n_classes} classes."
            )
        return np.zeros(rows.n_rows)

    def start(self, rows, device):
        super().start(rows, device)
        self.positive = torch.as_tensor(rows.y == 1, device=device)
        self.groups = torch.as_tensor(rows.groups, device=device)
        self.membership = F.one_hot(self.groups, rows.n_groups).bool()
        self.multipliers = torch.zeros(
            rows.n_groups, dtype=torch.float64, device=device
        )
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

        True-positive-rate parity: ``TPR(all) - TPR(group k)``; demographic
        parity: ``P(yhat=1) - P(yhat=1 | group k)``, as in the authors' code.
        A group with no row the rate is taken over has violation 0.
        """
        predicted = predicted_positive.to(self.membership.device).double()
        if self.constraint == "demographic_parity":
            rows, members = torch.ones_like(self.positive), self.membership
        else:
            rows, members = self.positive, self.membership & self.positive[:, None]
        overall = predicted[rows].mean()
        counts = members.sum(dim=0)
        rates = (members * predicted[:, None]).sum(dim=0) / counts.clamp(min=1)
        return torch.where(counts > 0, overall - rates, torch.zeros_like(rates))

    def begin_fit(self, net, dataset):
        self.train_data = dataset

    def end_epoch(self, net):
        """Step the multipliers on this epoch's predictions of the training rows."""
        logits = net.forward(self.train_data, training=False, device=net.device)
        predicted = logits.argmax(dim=1) == 1
        self.multipliers += self.lr * self.violations(predicted)
        self.history.append(self.multipliers.cpu().numpy().copy())
        self._set_logits()

    def end_fit(self, net):
        # Not kept after fit: the fitted model need not carry the data twice.
        self.train_data = None

    def state_dict(self):
        return {**super().state_dict(), "multipliers": self.multipliers.clone()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.multipliers = state["multipliers"].clone()


class LearningToReweight(Weighting):
    """Ren et al.'s online weights from the validation-gradient alignment.

    For a batch, the meta step takes ``d_j = grad l_j . grad L_val`` with the
    lookahead at the per-row loss weights ``eps = 0`` (so
    :meth:`lookahead_weights` is 0 for every row and the lookahead stays at
    the current parameters); ``-dL_val/d eps_j = eta d_j``, so the batch
    trains with ``p_j = max(d_j, 0) / sum_i max(d_i, 0)`` (times the caller's
    weights), or uniform weights when no ``d_j`` is positive. Each row's last
    weight relative to its batch (``|B| p_j``, mean 1) is kept as its logit,
    which :meth:`weights` reports.
    """

    uses_meta_step = True

    def initial_logits(self, rows):
        return np.zeros(rows.n_rows)

    def start(self, rows, device):
        super().start(rows, device)
        self.prior = None if self.log_prior is None else self.log_prior.exp()

    def lookahead_weights(self, rows):
        """Loss weights of the lookahead: ``eps = 0`` (Ren et al., Eq. 4)."""
        return torch.zeros(len(rows), device=self.logits.device)

    def update(self, rows, d, p):
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
