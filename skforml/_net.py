"""The skorch net that runs the FORML meta step inside skorch's training step.

:class:`FORMLNet` keeps skorch's loop -- ``train_step`` (the optimizer
closure) calls ``train_step_single``, which calls ``infer`` and the loss --
and changes only what a batch's loss is: the weighted sum of per-row losses
``get_row_losses`` (the ``criterion``, built with ``reduction="none"``), with
weights from the meta step. Validation runs through skorch's own validation
pass on the held-out rows, so ``valid_loss``, ``valid_acc``, ``EarlyStopping``,
``Checkpoint`` and ``EpochScoring`` work as in any skorch net.
"""

import torch
from skorch import NeuralNetClassifier
from skorch.utils import to_tensor

from ._callbacks import EpochSelector, FairnessScoring, ToleranceController, WeightMonitor
from ._meta_step import run_engine


class FORMLNet(NeuralNetClassifier):
    """A skorch :class:`~skorch.NeuralNetClassifier` whose step is FORML's.

    Training batches are ``(X, y, rows)``, ``rows`` the positions of the
    batch's rows among the training rows. The classifier sets before ``fit``:

    ``weighting_``
        A :class:`~skforml._weighting.Weighting`: the weights of every batch.
    ``engine_``
        Meta step engine name (see :mod:`skforml._meta_step`), or None when
        the weighting does not learn from the meta step.
    ``lookahead_lr_``
        ``eta_c``: a number or a rule of the batch's gradients.
    ``validation_``, ``validation_batches_``, ``meta_objective_``
        Validation tensors ``(X_val, y_val, cells_val)`` on the device, their
        batch sampler and the meta-loss (only when ``engine_`` is set).
    ``loss_average_``
        The per-row moving average of weighted losses.

    To change the training loss, pass another ``criterion`` (it must accept
    ``reduction="none"``) or override :meth:`get_row_losses`.
    """

    def get_row_losses(self, y_pred, y_true):
        """Per-row training losses ``l_i`` (the criterion without reduction)."""
        y_true = to_tensor(y_true, device=self.device)
        losses = self.criterion_(y_pred, y_true)
        if losses.dim() != 1 or len(losses) != len(y_pred):
            raise ValueError(
                "FORMLNet needs one loss per row: criterion must be built with "
                f"reduction='none', but it returned shape {tuple(losses.shape)}."
            )
        return losses

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Mean of the per-row losses (validation; training weighs them)."""
        return self.get_row_losses(y_pred, y_true).mean()

    def _row_loss(self, logits, y):
        return self.get_row_losses(logits, y)

    def train_step_single(self, batch, **fit_params):
        """One FORML step on ``batch``: lookahead, weight update, gradients.

        Leaves ``grad sum_i p'_i l_i`` in the parameters for skorch's
        optimizer step, ``p'`` the batch weights after the meta step.
        """
        self._set_training(True)
        X, y, rows = batch
        X = to_tensor(X, device=self.device)
        y = to_tensor(y, device=self.device)
        rows = rows.to(self.device)
        weighting = self.weighting_
        if self.engine_ is None:
            p = weighting.batch_weights(rows)
            logits = self.infer(X, **fit_params)
            losses = self.get_row_losses(logits, y)
            loss = (p * losses).sum()
            loss.backward()
        else:
            logits, losses, p = self._meta_step(X, y, rows)
            loss = (p * losses).sum()
        self.loss_average_.record(rows, p, losses)
        return {"loss": loss.detach(), "y_pred": logits.detach()}

    def _meta_step(self, X, y, rows):
        engine = run_engine(
            self.engine_,
            self.module_,
            X,
            y,
            self.lookahead_lr_,
            self._validation_batch(),
            self.meta_objective_,
            self._row_loss,
        )
        p = self.weighting_.lookahead_weights(rows)
        d, meta_loss = engine.directional_derivatives(p)
        p = self.weighting_.update(rows, d, p)
        engine.apply(p)
        # Summed on the device and read once per epoch: no host sync per step.
        self.meta_loss_sum_ = self.meta_loss_sum_ + meta_loss
        self.meta_loss_count_ += 1
        return engine.logits, engine.losses, p

    def _validation_batch(self):
        index = self.validation_batches_.next_index().to(self.device)
        return tuple(t[index] for t in self.validation_)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.weighting_.begin_fit(self, X)

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        self.meta_loss_sum_ = torch.zeros((), device=self.device)
        self.meta_loss_count_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.loss_average_.end_epoch()
        self.weighting_.end_epoch(self)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.weighting_.end_fit(self)

    @property
    def _default_callbacks(self):
        # Ours sit after skorch's scoring (they read valid_acc) and before the
        # user's callbacks (EarlyStopping, Checkpoint read what they record).
        # valid_acc is FairnessScoring's, weighted to the training distribution.
        scoring = [c for c in super()._default_callbacks if c[0] != "valid_acc"]
        *scoring, print_log = scoring
        return [
            *scoring,
            ("weight_monitor", WeightMonitor()),
            ("valid_disparity", FairnessScoring()),
            ("tolerance_controller", ToleranceController()),
            ("epoch_selector", EpochSelector()),
            print_log,
        ]
