"""How the rows of a training batch are weighted: the interface and FORML's rule.

Every scheme -- FORML's learned weights and each of the paper's baselines --
is a :class:`Weighting`. It owns one logit per training row; a batch trains
with ``softmax(logits[B] + log s[B])``, ``s`` the caller's ``sample_weight``,
so the two multiply and a row of caller weight 0 never trains.

FORML's step and the scale of ``meta_lr``
-----------------------------------------
The raw gradient ``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)`` shrinks with
the lookahead rate ``eta_c`` and with the batch size (``p_j ~ 1/|B|``), and
``d`` carries the scale of the network's gradients, so a plain SGD rate has to
be retuned for every batch size, learning rate and network; and since it is
proportional to ``p_j``, a row that gained weight gains it ever faster, which
collapses the weights onto a few rows. :class:`FORMLWeights` therefore takes
an exponentiated-gradient (mirror descent) step on the batch's weight
distribution: it moves ``w_j`` along ``u_j = d_j - sum_i p_i d_i``, divided by
the root of a running mean of ``mean_j u_j**2`` (one scalar, as in RMSprop)
and clipped at ``MAX_STEP`` such units. A step then moves a batch's logits by
about ``meta_lr`` in root-mean-square, whatever the batch size, learning rate
or gradient scale.

Ablations (paper appendix, Tables 6 and 9)
------------------------------------------
``weight_map`` says how a row's weight follows from its parameter ``w``:
``"softmax"`` (the paper's and the default) weights a batch with
``softmax(w[B])``; ``"logits"`` uses the raw parameters as weights, clipped
at 0 and normalised over the batch (``max(w, 0) / sum max(w, 0)``, as in
learning to reweight; ``w`` starts at 1); ``"inverse_square_l1"`` weights
rows by ``1 / (1 + w**2)`` normalised over the batch, so that a parameter
that grows large in either direction sends its weight to zero (our reading of
the appendix's "inverse square L1", which gives no formula; ``w`` starts at
1 so that the first gradient is not zero). For the two ablation maps the step
is the RMS-normalised gradient of the meta-loss through the map,
``n p_j f'(w_j) / f(w_j) (d_j - sum_i p_i d_i)`` (``f`` the unnormalised
weight, ``n`` the batch's rows), not the softmax map's exponentiated step.

A reversed lookahead (``lookahead_sign=-1``, the lookahead climbs the
training loss) flips the sign of ``dL_f/dw``: the step then moves along
``-(d_j - sum_i p_i d_i)``.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

# Logits of the weights are kept in [-LOGIT_BOUND, LOGIT_BOUND]: a weight ratio
# of e^60 already means that one row decides the batch alone.
LOGIT_BOUND = 30.0
# Decay of the running mean square of FORML's weight direction.
GRADIENT_SCALE_DECAY = 0.99
# Largest step of one row, in units of the running RMS: one odd row cannot
# take over its batch in a single step.
MAX_STEP = 3.0


@dataclass
class TrainingRows:
    """What a weighting may know of the training rows when a fit starts.

    Attributes
    ----------
    y : ndarray of int of shape (n_rows,)
        Encoded labels.
    groups : ndarray of int of shape (n_rows,)
        Group of every row (the class when no sensitive features were given).
    n_classes, n_groups : int
        Number of classes and of groups.
    sample_weight : ndarray of shape (n_rows,) or None
        The caller's non-negative weights.
    rng : numpy.random.RandomState
        Seeded source of randomness of the weighting.

    Examples
    --------
    >>> import numpy as np
    >>> from skforml import TrainingRows
    >>> rows = TrainingRows(y=np.array([0, 1, 0, 1]), groups=np.array([0, 0, 1, 1]),
    ...                     n_classes=2, n_groups=2, sample_weight=None,
    ...                     rng=np.random.RandomState(0))
    >>> rows.n_rows
    4

    """

    y: np.ndarray
    groups: np.ndarray
    n_classes: int
    n_groups: int
    sample_weight: np.ndarray | None
    rng: np.random.RandomState

    @property
    def n_rows(self):
        return len(self.y)


class Weighting(ABC):
    """How rows are weighted in every training batch.

    A subclass gives the rows' starting log-weights (:meth:`initial_logits`)
    and, when it learns, overrides :meth:`update` (called by the meta step
    when ``uses_meta_step``) or :meth:`end_epoch`. Rows are identified by
    their position among the training rows.

    Examples
    --------
    A weighting that counts every row of group 1 twice, and never learns:

    >>> import numpy as np
    >>> import torch
    >>> from skforml import TrainingRows, Weighting
    >>> class GroupOneTwice(Weighting):
    ...     def initial_logits(self, rows):
    ...         return np.log(np.where(rows.groups == 1, 2.0, 1.0))
    >>> rows = TrainingRows(y=np.array([0, 1, 0]), groups=np.array([0, 0, 1]),
    ...                     n_classes=2, n_groups=2, sample_weight=None,
    ...                     rng=np.random.RandomState(0))
    >>> weighting = GroupOneTwice()
    >>> weighting.start(rows, "cpu")
    >>> weighting.batch_weights(torch.tensor([0, 1, 2]))
    tensor([0.2500, 0.2500, 0.5000])

    """

    # Whether the net runs the meta step and calls update() every batch.
    uses_meta_step: ClassVar[bool] = False
    collapse_advice: ClassVar[str] = "Lower meta_lr or max_epochs."

    @abstractmethod
    def initial_logits(self, rows):
        """Log-weight of every training row (any additive constant)."""

    def start(self, rows, device):
        """Set up the weights of a new fit on ``rows`` (a :class:`TrainingRows`)."""
        logits = torch.as_tensor(self.initial_logits(rows), dtype=torch.float32)
        self.logits = logits.to(device).clamp(-LOGIT_BOUND, LOGIT_BOUND).clone()
        prior = rows.sample_weight
        self.log_prior = (
            None
            if prior is None
            else torch.log(torch.as_tensor(prior, dtype=torch.float32, device=device))
        )

    def _log_weights(self, logits):
        """Unnormalised log-weights of parameters ``logits`` (the identity here)."""
        return logits

    def _with_prior(self, logits, rows=None):
        if self.log_prior is None:
            return logits
        return logits + (self.log_prior if rows is None else self.log_prior[rows])

    def batch_weights(self, rows):
        """Weights of a batch's losses, summing to 1 (0 if all caller weights are 0)."""
        logits = self._with_prior(self._log_weights(self.logits[rows]), rows)
        return torch.softmax(logits, dim=0).nan_to_num(nan=0.0)

    def lookahead_weights(self, rows):
        """Loss weights of the meta step's lookahead (the batch weights)."""
        return self.batch_weights(rows)

    def update(self, rows, d, p):
        """New batch weights from the meta step's directional derivatives ``d``.

        ``d_j = grad l_j . g_f`` was taken at the lookahead weights ``p``.
        Fixed schemes keep the batch weights.
        """
        return self.batch_weights(rows)

    def begin_fit(self, net, dataset):  # noqa: B027 - an optional hook
        """Called when training starts, with the training rows' dataset."""

    def end_epoch(self, net):  # noqa: B027 - an optional hook
        """Called after every epoch, with the net in its current state."""

    def end_fit(self, net):  # noqa: B027 - an optional hook
        """Called when training ends; drop references to data here."""

    def weights(self):
        """Weights of all training rows, mean 1 (caller weights included)."""
        logits = self._with_prior(self._log_weights(self.logits))
        return torch.softmax(logits, dim=0) * len(logits)

    def effective_sample_fraction(self):
        """Kish effective sample size of the learned weights over the rows.

        The caller's ``sample_weight`` is left out: it is data, not a sign
        that the learned weights collapsed.
        """
        w = torch.softmax(self._log_weights(self.logits), dim=0)
        return float(1.0 / (w.pow(2).sum() * len(w)))

    def state_dict(self):
        """The weighting's learned state (restored with the selected epoch)."""
        return {"logits": self.logits.clone()}

    def load_state_dict(self, state):
        self.logits = state["logits"].clone()


@dataclass(frozen=True)
class WeightMap:
    """A map from a row's parameter ``w`` to its unnormalised weight ``f(w)``.

    Attributes
    ----------
    initial : float
        Parameter of every row at the start (all rows weigh the same).
    log_weight : callable
        ``log f(w)``, elementwise (``-inf`` for a weight of 0).
    score : callable or None
        ``f'(w) / f(w)``; None for softmax, whose step is exponentiated.

    """

    initial: float
    log_weight: object
    score: object = None


def _relu_log(w):
    return torch.log(w.clamp(min=0))


def _relu_score(w):
    return torch.where(w > 0, 1 / w.clamp(min=1e-12), torch.zeros_like(w))


WEIGHT_MAPS = {
    "softmax": WeightMap(0.0, lambda w: w),
    "logits": WeightMap(1.0, _relu_log, _relu_score),
    "inverse_square_l1": WeightMap(
        1.0, lambda w: -torch.log1p(w.pow(2)), lambda w: -2 * w / (1 + w.pow(2))
    ),
}


class FORMLWeights(Weighting):
    """FORML's learned weights: an exponentiated-gradient step per batch.

    Parameters
    ----------
    meta_lr : float
        Root-mean-square change of a batch's logits per step (see the module
        doc). ``strength`` multiplies it; the tolerance controller sets it.
    weight_map : {"softmax", "logits", "inverse_square_l1"}, default="softmax"
        How a row's weight follows from its parameter (see the module doc).
    lookahead_sign : {1, -1}, default=1
        Sign of the lookahead step: -1 when the lookahead climbs the
        training loss, which flips the direction of the weight step.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skforml import FORMLWeights, TrainingRows
    >>> rows = TrainingRows(y=np.array([0, 1, 0, 1]), groups=np.array([0, 0, 1, 1]),
    ...                     n_classes=2, n_groups=2, sample_weight=None,
    ...                     rng=np.random.RandomState(0))
    >>> weights = FORMLWeights(meta_lr=0.02)
    >>> weights.start(rows, "cpu")
    >>> weights.batch_weights(torch.tensor([0, 1, 2, 3]))  # uniform at the start
    tensor([0.2500, 0.2500, 0.2500, 0.2500])

    """

    uses_meta_step = True

    def __init__(self, meta_lr, weight_map="softmax", lookahead_sign=1):
        if weight_map not in WEIGHT_MAPS:
            raise ValueError(
                f"weight_map must be one of {sorted(WEIGHT_MAPS)}; got {weight_map!r}."
            )
        self.meta_lr = meta_lr
        self.strength = 1.0
        self.weight_map = weight_map
        self.lookahead_sign = lookahead_sign

    def initial_logits(self, rows):
        return np.full(rows.n_rows, WEIGHT_MAPS[self.weight_map].initial)

    def _log_weights(self, logits):
        return WEIGHT_MAPS[self.weight_map].log_weight(logits)

    def start(self, rows, device):
        super().start(rows, device)
        self.mean_square = torch.zeros((), device=device)
        self.n_steps = 0

    def update(self, rows, d, p):
        direction = self.lookahead_sign * (d - (p * d).sum())
        weight_map = WEIGHT_MAPS[self.weight_map]
        if weight_map.score is not None:
            # The gradient through the map: n p_j f'(w_j) / f(w_j) u_j.
            score = weight_map.score(self.logits[rows])
            direction = len(p) * p * score * direction
        # Only rows of positive caller weight take part in the step and its
        # scale; a meta-gradient that overflowed (e.g. unscaled features of
        # ~1e15 overflow the float32 lookahead) carries no direction, and the
        # weights of the batch stay as they are.
        square = direction.pow(2).sum()
        finite = torch.isfinite(square)
        if self.log_prior is None:
            # Every row is live: the mask and its count are the batch's.
            direction = torch.where(finite, direction, 0.0)
            batch_square = torch.where(finite, square, 0.0) / len(direction)
        else:
            live = finite & (self.log_prior[rows] > -torch.inf)
            direction = torch.where(live, direction, 0.0)
            batch_square = direction.pow(2).sum() / live.sum().clamp(min=1)
        self.n_steps += 1
        decay = GRADIENT_SCALE_DECAY
        self.mean_square.mul_(decay).add_((1 - decay) * batch_square)
        scale = (self.mean_square / (1 - decay**self.n_steps)).sqrt() + 1e-12
        rate = self.meta_lr * self.strength
        step = rate * (direction / scale).clamp(-MAX_STEP, MAX_STEP)
        self.logits[rows] = (self.logits[rows] + step).clamp(-LOGIT_BOUND, LOGIT_BOUND)
        return self.batch_weights(rows)

    def state_dict(self):
        return {**super().state_dict(), "mean_square": self.mean_square.clone()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.mean_square = state["mean_square"].clone()


class WeightedLossAverage:
    """Per-row exponential moving average over epochs of the weighted loss.

    Each epoch keeps every row's normalised weighted loss ``|B| p_i l_i``; the
    average ranks rows for dataset condensation (paper Section 4.5).
    """

    def __init__(self, n_rows, decay, device):
        self.decay = decay
        self.epoch_loss = torch.zeros(n_rows, device=device)
        self.average = None

    def record(self, rows, p, losses):
        self.epoch_loss[rows] = len(rows) * p.detach() * losses.detach()

    def end_epoch(self):
        if self.average is None:
            self.average = self.epoch_loss.clone()
        else:
            self.average.mul_(self.decay).add_((1 - self.decay) * self.epoch_loss)
