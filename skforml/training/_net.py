"""The skorch net that runs the FORML meta step inside skorch's training step.

:class:`FORMLNet` keeps skorch's loop -- ``train_step`` (the optimizer
closure) calls ``train_step_single``, which calls ``infer`` and the loss --
and changes only what a batch's loss is: the weighted sum of per-row losses
``get_row_losses`` (the ``criterion``, built with ``reduction="none"``), with
weights from the meta step. Validation runs through skorch's own validation
pass on the held-out rows, so ``valid_loss``, ``valid_acc``, ``EarlyStopping``,
``Checkpoint`` and ``EpochScoring`` work as in any skorch net.

On a GPU the training step never waits for the device: batches are copied
with ``non_blocking`` (from pinned memory when a ``DataLoader`` pins them),
nothing in the step reads a value back to the host, and the batch losses are
read once per epoch (:meth:`FORMLNet.run_single_epoch`).
"""

import copy

import torch
from skorch import NeuralNetClassifier
from skorch.dataset import get_len
from skorch.utils import to_tensor
from torch import nn

from .._distributed import SingleProcess
from ..engines._engines import at_least_float32, run_engine
from ..fairness._constraints import Constraint
from ..fairness._objectives import Objective
from ..weighting._base import Weighting
from ._callbacks import (
    EpochSelector,
    FairnessScoring,
    ToleranceController,
    WeightMonitor,
)


class FORMLNet(NeuralNetClassifier):
    """A skorch :class:`~skorch.NeuralNetClassifier` whose step is FORML's.

    Training batches are ``(X, y, rows)``, ``rows`` the positions of the
    batch's rows among the training rows. The classifier sets before ``fit``:

    ``weighting_``
        A :class:`~skforml.weighting._base.Weighting`: the weights of every batch.
    ``engine_``
        Meta step engine name (see :mod:`skforml.engines._engines`), or None when
        the weighting does not learn from the meta step.
    ``lookahead_lr_``
        ``eta_c``: a number or a rule of the batch's gradients.
    ``validation_``, ``validation_batches_``, ``meta_objective_``
        Validation tensors ``(X_val, y_val, cells_val)`` on the device, their
        batch sampler and the meta-loss (only when ``engine_`` is set).
    ``loss_average_``
        The per-row moving average of weighted losses.
    ``autocast_dtype_``
        None, or the dtype of mixed precision (``torch.bfloat16``): forward
        passes run under :func:`torch.autocast`, the meta step's sums and
        dot products in float32.

    A pickled net holds its weighting's and loss average's tensors on the
    CPU, so that a net fitted on CUDA loads on a machine without one (skorch
    maps the module and optimizer itself); they return to the net's device
    when it is available on loading.

    To change the training loss, pass another ``criterion`` (it must accept
    ``reduction="none"``) or override :meth:`get_row_losses`.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, FORMLNet
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = FORMLClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> isinstance(clf.net_, FORMLNet), len(clf.net_.history)
    (True, 2)

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
        X, y, rows = (self._to_device(t) for t in batch)
        parallel = self.parallel_
        # In a data-parallel fit, rows of every rank: the weights are those
        # of the global batch (see skforml._distributed).
        rows, shard, sizes = parallel.global_batch(rows)
        if self.engine_ is None:
            p = self.weighting_.batch_weights(rows)
            logits = self.infer(X, **fit_params)
            losses = self.get_row_losses(logits, y)
            loss = (p[shard] * losses).sum()
            loss.backward()
            all_losses = parallel.gather(losses.detach(), sizes)
        else:
            with self._autocast():
                step = self._meta_step(X, y, rows, shard, sizes)
            logits, losses, p, all_losses = step
            loss = (p[shard] * losses).sum()
        loss = parallel.sum_gradients(self.module_, loss)
        self.loss_average_.record(rows, p, all_losses)
        return {"loss": loss.detach(), "y_pred": logits.detach(), "rows": len(rows)}

    def _to_device(self, data):
        # Asynchronous: a blocking host-to-device copy waits for the device.
        if torch.is_tensor(data):
            return data.to(self.device, non_blocking=True)
        return to_tensor(data, device=self.device)

    def _autocast(self):
        dtype = getattr(self, "autocast_dtype_", None)
        return torch.autocast(
            torch.device(self.device).type, dtype=dtype, enabled=dtype is not None
        )

    def infer(self, x, **fit_params):
        """Run skorch's forward, under autocast with mixed precision (float32 out)."""
        with self._autocast():
            return at_least_float32(super().infer(x, **fit_params))

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run skorch's pass over ``iterator``, reading the batch losses once.

        skorch reads every batch's loss with ``.item()``, a host
        synchronisation per step on a GPU. Here the history holds the loss
        tensors during the pass and their values after it.
        """
        if iterator is None:
            return
        entries, losses = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            entries.append(self.history[-1]["batches"][-1])
            losses.append(step["loss"])
            self.history.record_batch(prefix + "_loss", step["loss"])
            # A data-parallel step's rows are those of every rank.
            rows = step.get("rows", get_len(batch[0]))
            self.history.record_batch(prefix + "_batch_size", rows)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            values = torch.stack([at_least_float32(v) for v in losses]).tolist()
            for entry, value in zip(entries, values):
                entry[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", len(entries))

    def _meta_step(self, X, y, rows, shard, sizes):
        parallel = self.parallel_
        engine = run_engine(
            self.engine_,
            self.module_,
            X,
            y,
            self.lookahead_lr_,
            self._validation_batch(),
            self.meta_objective_,
            self._row_loss,
            parallel=parallel,
        )
        p = self.weighting_.lookahead_weights(rows)
        d, meta_loss = engine.directional_derivatives(p[shard])
        losses = engine.losses.detach()
        if parallel.distributed:
            # d of every row of the global batch: each rank then takes the
            # same weight step (normaliser, centring, RMS scale).
            d, losses = parallel.gather(torch.stack([d, losses.to(d)], 1), sizes).T
        p = self.weighting_.update(rows, d, p)
        engine.apply(p[shard])
        # Summed on the device and read once per epoch: no host sync per step.
        self.meta_loss_sum_ = self.meta_loss_sum_ + meta_loss
        self.meta_loss_count_ += 1
        return engine.logits, engine.losses, p, losses

    def _validation_batch(self):
        """The next validation batch: this rank's rows, everyone's labels and strata."""
        index = self.validation_batches_.next_index()
        index = index.to(self.device, non_blocking=True)
        X_val, y_val, strata_val = self.validation_
        shard = index[self.parallel_.shard(len(index))]
        return X_val[shard], y_val[index], strata_val[index]

    @property
    def parallel_(self):
        """The processes of the fit (:mod:`skforml._distributed`); one by default."""
        return self.__dict__.get("_parallel") or SingleProcess()

    @parallel_.setter
    def parallel_(self, parallel):
        self._parallel = parallel

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

    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("module")
        if isinstance(module, nn.Module) and any(
            t.device.type != "cpu" for t in module.state_dict().values()
        ):
            # A module instance is module_ itself: skorch maps module_, but
            # not this second reference to it.
            state["module"] = copy.deepcopy(module).cpu()
        return {key: tensors_to(value, "cpu") for key, value in state.items()}

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch has set the device: the CUDA of the fit, or the CPU without it.
        if torch.device(self.device).type != "cpu":
            for key, value in list(vars(self).items()):
                setattr(self, key, tensors_to(value, self.device))

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


def _holds_our_state(obj):
    """Whether ``obj`` is skforml's or fills one of its interfaces."""
    ours = type(obj).__module__.startswith("skforml.")
    interface = isinstance(obj, (Weighting, Constraint, Objective))
    return (ours or interface) and hasattr(obj, "__dict__")


def tensors_to(obj, device, memo=None):
    """``obj`` with every tensor it holds on ``device``; ``obj`` itself if none moves.

    Follows dicts, lists, tuples, skforml's own objects (weightings,
    meta-objectives, callbacks) and any :class:`~skforml.Weighting`,
    :class:`~skforml.Constraint` or meta-objective of the caller's, copying
    only what holds a tensor that moves; skorch's modules, optimizers and
    other objects are left as they are.
    """
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)][1]
    if torch.is_tensor(obj):
        moved = obj
        if obj.device != torch.device(device):
            moved = obj.detach().to(device).requires_grad_(obj.requires_grad)
    elif type(obj) in (dict, list, tuple):
        items = list(obj.items() if isinstance(obj, dict) else enumerate(obj))
        new = {key: tensors_to(value, device, memo) for key, value in items}
        moved = obj
        if any(new[key] is not value for key, value in items):
            moved = new if isinstance(obj, dict) else type(obj)(new.values())
    elif _holds_our_state(obj):
        state = tensors_to(vars(obj), device, memo)
        moved = obj
        if state is not vars(obj):
            moved = copy.copy(obj)
            moved.__dict__ = state
    else:
        moved = obj
    memo[id(obj)] = (obj, moved)  # obj kept alive: its id stays its own
    return moved
