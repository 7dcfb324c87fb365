"""The skorch net that runs the FORML meta step in its ``train_step``."""

import warnings

from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import TeeGenerator

from ._meta_step import per_row_loss, run_engine

# Below this effective share of rows the weights have collapsed onto a few
# rows: the model then learns from too little data.
COLLAPSE_FRACTION = 0.2


class WeightCollapseWarning(UserWarning):
    """The learned weights concentrate on a small share of the rows."""


class FORMLNet(NeuralNet):
    """A skorch :class:`~skorch.NeuralNet` whose training step is FORML's.

    Batches are ``(X, y, rows)``. The classifier sets the meta state before
    ``fit``:

    ``weighting_``
        How rows are weighted; :class:`~skforml._weight_store.WeightStore` for
        FORML. It provides ``probabilities(rows)`` (batch weights summing
        to 1), ``update(rows, d, p) -> p`` (new batch weights from the
        directional derivatives ``d`` of the meta step, taken at batch
        weights ``p``), ``record_losses(rows, p, losses)``,
        ``end_epoch(net)``, ``weights()`` (all rows, mean 1),
        ``effective_sample_fraction()``, ``loss_ema`` and ``lookahead_lr``.
    ``engine_``
        Meta step engine name (see :mod:`skforml._meta_step`), or None for
        plain weighted training.
    ``validation_``, ``validation_batches_``, ``meta_loss_``
        Validation tensors ``(X_val, y_val, cells_val)`` on the device, their
        batch sampler, and the meta-loss (only when ``engine_`` is set).
    """

    def train_step(self, batch, **fit_params):
        """One FORML step on ``batch``: lookahead, weight update, model update."""
        self._set_training(True)
        X, y, rows = batch
        X = X.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        rows = rows.to(self.device)
        weighting = self.weighting_
        self._zero_grad_optimizer(set_to_none=True)
        if self.engine_ is None:
            p = weighting.probabilities(rows)
            logits = self.module_(X)
            losses = per_row_loss(logits, y)
            loss = (p * losses).sum()
            loss.backward()
        else:
            engine = run_engine(
                self.engine_,
                self.module_,
                X,
                y,
                weighting.lookahead_lr,
                self._validation_batch(),
                self.meta_loss_,
            )
            p = weighting.probabilities(rows)
            d, meta_loss = engine.directional_derivatives(p)
            p = weighting.update(rows, d, p)
            engine.apply(p)
            logits, losses = engine.logits, engine.losses
            loss = (p * losses).sum()
            self.history.record_batch("meta_loss", meta_loss.item())
        weighting.record_losses(rows, p, losses)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self._step_optimizer(None)
        return {"loss": loss.detach(), "y_pred": logits.detach()}

    def _validation_batch(self):
        index = self.validation_batches_.next_index().to(self.device)
        return tuple(t[index] for t in self.validation_)

    def evaluation_step(self, batch, training=False):
        """Logits of a ``(X, y, rows)`` batch."""
        return super().evaluation_step(batch[:2], training=training)

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("weight_monitor", WeightMonitor())]


class WeightMonitor(Callback):
    """Records per epoch the mean meta-loss and the weights' effective share.

    Also folds the epoch's weighted losses into their moving average, and
    warns once per fit with :class:`WeightCollapseWarning` when the effective
    sample size of the weights falls below ``COLLAPSE_FRACTION`` of the rows.
    """

    def on_train_begin(self, net, **kwargs):
        self.warned_ = False

    def on_epoch_end(self, net, **kwargs):
        weighting = net.weighting_
        weighting.end_epoch(net)
        ess = weighting.effective_sample_fraction()
        net.history.record("weight_ess", ess)
        batches = net.history[-1, "batches"]
        if batches and "meta_loss" in batches[0]:
            meta = [b["meta_loss"] for b in batches if "meta_loss" in b]
            net.history.record("meta_loss", sum(meta) / len(meta))
        if ess < COLLAPSE_FRACTION and not self.warned_:
            self.warned_ = True
            warnings.warn(
                f"The learned weights have collapsed: their effective sample size "
                f"is {ess:.1%} of the training rows after epoch "
                f"{len(net.history)}. "
                + getattr(weighting, "collapse_advice", "Lower meta_lr or max_epochs."),
                WeightCollapseWarning,
                stacklevel=2,
            )
