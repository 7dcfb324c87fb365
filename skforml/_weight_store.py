"""The learned weight of every training row, and its update rule.

Each training row ``i`` owns a logit ``w_i`` (0 at the start). A batch's
weights are ``softmax(w[B] + log s[B])`` with ``s`` the caller's
``sample_weight`` (1 when none): the learned weights multiply the caller's,
and a row of zero caller weight never trains.

The step and the scale of ``meta_lr``
-------------------------------------
The raw gradient ``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)`` shrinks with
the lookahead rate ``eta_c`` and with the batch size (``p_j ~ 1/|B|``), and
``d`` carries the scale of the network's gradients, so a plain SGD rate has to
be retuned for every batch size, learning rate and network; and since it is
proportional to ``p_j``, a row that gained weight gains it ever faster, which
collapses the weights onto a few rows. The store therefore takes an
exponentiated-gradient (mirror descent) step on the batch's weight
distribution: it moves ``w_j`` along ``u_j = -dL_f/dw_j / (eta_c p_j)
= d_j - sum_i p_i d_i``, divided by the root of a running mean of
``mean_j u_j**2`` (one scalar, as in RMSprop, shared by all rows) and clipped
at ``MAX_STEP`` such units. A step then moves a batch's logits by about
``meta_lr`` in root-mean-square, whatever the batch size, learning rate or
gradient scale: after ``T`` epochs a row whose gradient keeps its sign has its
weight multiplied by up to about ``exp(T * meta_lr)``.
"""

import torch

from ._meta_step import GRADIENT_SCALE_DECAY, LOGIT_BOUND

# Largest step of one row, in units of the running RMS: one odd row cannot
# take over its batch in a single step.
MAX_STEP = 3.0


class WeightStore:
    """Weight logits, caller weights and per-row loss averages of training rows.

    Parameters
    ----------
    n_rows : int
        Number of training rows.
    meta_lr : float
        Root-mean-square change of a batch's logits per step (see module doc).
    lookahead_lr : float
        Learning rate ``eta_c`` of the lookahead step.
    sample_weight : torch.Tensor or None
        Caller's non-negative weights of the training rows.
    loss_ema_decay : float
        Decay of the per-epoch exponential moving average of weighted losses.
    device : torch.device
        Where the weights live.

    """

    def __init__(
        self, n_rows, *, meta_lr, lookahead_lr, sample_weight, loss_ema_decay, device
    ):
        self.meta_lr = meta_lr
        self.lookahead_lr = lookahead_lr
        self.loss_ema_decay = loss_ema_decay
        self.logits = torch.zeros(n_rows, device=device)
        self.log_prior = (
            None if sample_weight is None else torch.log(sample_weight.to(device))
        )
        self.mean_square = torch.zeros((), device=device)
        self.n_steps = 0
        self.epoch_loss = torch.zeros(n_rows, device=device)
        self.loss_ema = None

    def batch_logits(self, rows):
        logits = self.logits[rows]
        return logits if self.log_prior is None else logits + self.log_prior[rows]

    def probabilities(self, rows):
        """``softmax`` of the batch's logits (the weights of the batch loss).

        A batch whose rows all have caller weight 0 gets weights 0 (not NaN):
        it does not train.
        """
        return torch.softmax(self.batch_logits(rows), dim=0).nan_to_num(nan=0.0)

    def update(self, rows, d, p=None):
        """Move the batch's logits given the directional derivatives ``d``.

        ``d_j = grad l_j . g_f`` was taken at the batch's current weights ``p``
        (see the module doc; computed here when not given). Returns the
        batch's new weights.
        """
        if p is None:
            p = self.probabilities(rows)
        direction = d - (p * d).sum()
        # Only rows of positive caller weight take part in the step and its
        # scale; a meta-gradient that overflowed (e.g. unscaled features of
        # ~1e15 overflow the float32 lookahead) carries no direction, and the
        # weights of the batch stay as they are.
        live = torch.isfinite(direction.pow(2).sum()).expand_as(direction)
        if self.log_prior is not None:
            live = live & (self.log_prior[rows] > -torch.inf)
        direction = torch.where(live, direction, torch.zeros_like(direction))
        self.n_steps += 1
        decay = GRADIENT_SCALE_DECAY
        batch_square = direction.pow(2).sum() / live.sum().clamp(min=1)
        self.mean_square.mul_(decay).add_((1 - decay) * batch_square)
        scale = (self.mean_square / (1 - decay**self.n_steps)).sqrt() + 1e-12
        step = self.meta_lr * (direction / scale).clamp(-MAX_STEP, MAX_STEP)
        self.logits[rows] = (self.logits[rows] + step).clamp(-LOGIT_BOUND, LOGIT_BOUND)
        return self.probabilities(rows)

    def record_losses(self, rows, p, losses):
        """Keep the batch's normalised weighted losses ``|B| p_i l_i``."""
        self.epoch_loss[rows] = len(rows) * p * losses.detach()

    def end_epoch(self, net):
        """Fold this epoch's weighted losses into their moving average."""
        if self.loss_ema is None:
            self.loss_ema = self.epoch_loss.clone()
        else:
            decay = self.loss_ema_decay
            self.loss_ema.mul_(decay).add_((1 - decay) * self.epoch_loss)

    def weights(self):
        """Weights of all training rows, mean 1 (caller weights included)."""
        logits = self.logits if self.log_prior is None else self.logits + self.log_prior
        return torch.softmax(logits, dim=0) * len(logits)

    def effective_sample_fraction(self):
        """Kish effective sample size of the learned weights over the rows.

        The caller's ``sample_weight`` is left out: it is data, not a sign
        that the learned weights collapsed.
        """
        w = torch.softmax(self.logits, dim=0)
        return float(1.0 / (w.pow(2).sum() * len(w)))
