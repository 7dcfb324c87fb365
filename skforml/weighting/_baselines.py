"""The weightings of the reweighting baselines, registered by name.

Each is a :class:`BaselineWeighting`: a scheme's weight of a row is stored as
its logit, and the caller's ``sample_weight`` multiplies it in every batch.
A subclass with a ``name`` registers itself: :class:`~skforml.ReweightedClassifier`
accepts ``weighting=name`` and lists its ``summary`` in its docstring, so
adding a baseline touches this module only.
"""

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..fairness._base import group_rates, make_constraint
from ._base import LOGIT_BOUND, Weighting

BASELINES = {}


class BaselineWeighting(Weighting):
    """A weighting that :class:`~skforml.ReweightedClassifier` offers by name.

    Subclasses set ``name`` and ``summary`` (reStructuredText, one paragraph,
    for the estimator's docstring) and build themselves from the estimator's
    parameters in :meth:`from_estimator`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    # Whether the groups change the weights (else no sensitive features is fine).
    uses_groups: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            BASELINES[cls.name] = cls

    @classmethod
    def from_estimator(cls, estimator):
        """The weighting for the parameters of ``estimator``."""
        return cls()


def describe_baselines(indent=8):
    """The ``summary`` of every registered baseline, as a numpydoc list."""
    pad = " " * indent
    lines = []
    for name, cls in BASELINES.items():
        lines.append(f"{pad}``{name!r}``".replace("'", '"'))
        lines += [f"{pad}    {line}".rstrip() for line in cls.summary.splitlines()]
    return "\n".join(lines)


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


class UniformWeights(BaselineWeighting):
    """Every row weighs the same: plain training (the paper's "Uniform")."""

    name = "uniform"
    summary = """Every row weighs the same: plain training (FORML paper's
"Uniform" baseline)."""
    uses_groups = False

    def initial_logits(self, rows):
        return np.zeros(rows.n_rows)


class RandomWeights(BaselineWeighting):
    """Log-weights drawn once from N(0, 1) and kept (the paper's "Random")."""

    name = "random"
    summary = """Each row's weight logit is drawn once from N(0, 1) and kept
fixed (the paper's "Random" baseline; seeded by ``random_state``)."""
    uses_groups = False

    def initial_logits(self, rows):
        return rows.rng.standard_normal(rows.n_rows)


class ProportionWeights(BaselineWeighting):
    """A row weighs ``1 / n_c``, the inverse size of its group."""

    name = "proportion"
    summary = """A row weighs ``1 / n_c``, the inverse size of its group, so that
every group weighs the same in total (the paper's "Proportion" baseline)."""

    def initial_logits(self, rows):
        counts = np.bincount(rows.groups, minlength=rows.n_groups)
        return np.log(proportion_weights(counts)[rows.groups])


class ClassBalancedWeights(BaselineWeighting):
    """Cui et al.'s inverse effective number of the row's group."""

    name = "class_balanced"
    summary = """Cui et al. (2019): a row of group ``c`` weighs
``(1 - beta) / (1 - beta**n_c)``, the inverse of the group's effective
number of samples, normalised to sum to the number of groups. ``beta`` = 0
gives uniform weights and ``beta`` -> 1 inverse frequencies."""

    def __init__(self, beta):
        self.beta = beta

    @classmethod
    def from_estimator(cls, estimator):
        return cls(estimator.beta)

    def initial_logits(self, rows):
        counts = np.bincount(rows.groups, minlength=rows.n_groups)
        return np.log(class_balanced_weights(counts, self.beta)[rows.groups])


class ReweighingWeights(BaselineWeighting):
    """Kamiran & Calders' reweighing: groups and labels made independent."""

    name = "reweighing"
    summary = """Kamiran & Calders (2012): a row of group ``g`` and label ``y``
weighs ``P(g) P(y) / P(g, y)`` (training frequencies), so that group and
label are independent under the weights. Needs ``sensitive_features``:
with the classes as groups the weights follow the class frequencies."""

    def initial_logits(self, rows):
        n_strata = rows.n_groups * rows.n_classes
        strata = rows.groups * rows.n_classes + rows.y
        joint = np.bincount(strata, minlength=n_strata).reshape(rows.n_groups, -1)
        expected = np.outer(joint.sum(axis=1), joint.sum(axis=0)) / rows.n_rows
        with np.errstate(divide="ignore"):
            return np.log(expected[rows.groups, rows.y] / joint[rows.groups, rows.y])


class GroupLabelBalancedWeights(BaselineWeighting):
    """Every (group, label) cell weighs the same in total: ``1 / n_{g,y}``."""

    name = "group_label_balanced"
    summary = """A row of group ``g`` and label ``y`` weighs ``1 / n_{g,y}``, the
inverse size of its (group, label) cell, so that every cell weighs the same
in total (group-balanced upweighting with the groups taken as (attribute,
label) pairs, as in Sagawa et al. 2020 and Idrissi et al. 2022's "RWG").
Unlike ``"proportion"`` it also balances the labels within each group, and
unlike ``"reweighing"`` it does not keep the label frequencies. Without
``sensitive_features`` the groups are the classes and it is
``"proportion"``."""

    def initial_logits(self, rows):
        # Row counts, not caller weights: as for every baseline here, the
        # caller's sample_weight multiplies the scheme's weights in a batch.
        strata = rows.groups * rows.n_classes + rows.y
        counts = np.bincount(strata, minlength=rows.n_groups * rows.n_classes)
        return np.log(proportion_weights(counts)[strata])


class LabelBiasWeighting(BaselineWeighting):
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
        Which rate the multipliers equalise: a constraint name (or alias) of
        the one vocabulary, whose single hard rate is measured
        (:meth:`~skforml.Constraint.rated_rows`).

    Attributes
    ----------
    multipliers : torch.Tensor of shape (n_groups,)
        Current ``lambda``.
    history : list of ndarray
        ``lambda`` after each epoch.

    """

    name = "label_bias"
    summary = """Jiang & Nachum (2020), binary targets: one multiplier
``lambda_k`` per group, 0 at the start. With ``e_i = -lambda_{g(i)}`` and
``s_i = sigmoid(2 e_i)``, a positive row weighs ``1 - s_i`` and a negative
row ``s_i``. After every epoch, ``lambda_k += label_bias_lr * violation_k``
with the violations of ``label_bias_constraint`` measured on the training
rows with the network's hard predictions: a group predicted positive too
rarely gets its positives up-weighted and its negatives down-weighted. The
positive class is ``classes_[1]``. The authors retrain to convergence
between updates; here the multipliers move once per epoch of one training
run. Without ``sensitive_features`` the groups are the classes, and equal
opportunity leaves every multiplier at 0."""

    def __init__(self, lr, constraint):
        self.lr = lr
        self.constraint = constraint

    @classmethod
    def from_estimator(cls, estimator):
        # An alias ("equal_opportunity", skforml 0.1's and Jiang & Nachum's
        # name) becomes the constraint's name.
        constraint = make_constraint(estimator.label_bias_constraint).name
        return cls(estimator.label_bias_lr, constraint)

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
        The rate is the constraint's (:meth:`~skforml.Constraint.rated_rows`),
        per group by :func:`~skforml.fairness._base.group_rates`. A
        group with no row the rate is taken over has violation 0.
        """
        y_true = self.positive.cpu().numpy().astype(np.int64)  # binary: y = positive
        y_pred = predicted_positive.cpu().numpy().astype(np.int64)
        ((hit, rows),) = make_constraint(self.constraint).rated_rows(y_true, y_pred)
        overall = group_rates(hit, rows, np.zeros(len(rows), dtype=np.int64))[0]
        groups = self.groups.cpu().numpy()
        rates = group_rates(hit, rows, groups, n_groups=self.multipliers.numel())
        violations = np.where(np.isnan(rates), 0.0, overall - rates)
        return torch.as_tensor(violations, device=self.multipliers.device)

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


class LearningToReweight(BaselineWeighting):
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

    name = "learning_to_reweight"
    summary = """Ren et al. (2018), the non-fair meta-learning baseline: for every
batch, the weights are the negative gradient of the mean validation
cross-entropy with respect to per-row loss weights ``eps`` at ``eps = 0``,
clipped at 0 and normalised to sum 1 (uniform when none is positive). The
validation rows are held out as for FORML, balanced over the groups
(constraint ``"error_rate_parity"``)."""
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
