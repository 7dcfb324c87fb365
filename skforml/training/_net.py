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

import contextlib
import copy

import torch
from skorch import NeuralNetClassifier
from skorch.dataset import get_len
from skorch.helper import predefined_split
from skorch.utils import to_tensor
from torch import nn

from .._distributed import SingleProcess, shard_sizes
from ..engines._base import Engine, at_least_float32, choose_engine, run_engine
from ..fairness._base import Constraint
from ..fairness._objectives import Objective
from ..weighting._base import WeightedLossAverage, Weighting
from ..weighting._baselines import UniformWeights
from ._callbacks import (
    EpochSelector,
    FairnessScoring,
    ToleranceController,
    WeightMonitor,
)
from ._data import RowDataset, batch_loader


class FORMLNet(NeuralNetClassifier):
    """A skorch :class:`~skorch.NeuralNetClassifier` whose step is FORML's.

    Training batches are ``(X, y, rows)``, ``rows`` the positions of the
    batch's rows among the training rows. Besides skorch's, the net takes
    the parameters below; :meth:`initialize` builds its parts from them
    (:meth:`initialize_weighting`, :meth:`initialize_meta_step`), as skorch
    builds ``module_`` from ``module`` and ``module__*``. The rows of a fit
    are given by :meth:`set_training_rows` and :meth:`set_validation`.

    Parameters
    ----------
    module, criterion, ... :
        As in :class:`~skorch.NeuralNetClassifier`; ``criterion`` must accept
        ``reduction="none"`` (pass ``criterion__reduction="none"``).
    weighting : Weighting instance or class, default=None
        How the rows are weighted (:class:`~skforml.weighting._base.Weighting`).
        A class is built with the ``weighting__*`` parameters; an instance is
        copied. None weighs the rows uniformly.
    meta_objective : callable or None, default=None
        ``meta_objective(row_loss)`` returns the meta step's objective
        (:class:`~skforml.fairness._objectives.Objective`), e.g.
        ``functools.partial(MetaObjective, meta_loss, constraint)``; its
        tensors are moved to the net's device. None takes no meta step: the
        weighting's ``batch_weights`` weigh every batch.
    meta_gradient : str, Engine class or callable, default="auto"
        The meta step's engine (see :func:`~skforml.engines._base.choose_engine`);
        a callable that is neither is an engine factory used as given (e.g.
        :class:`~skforml.engines._multistep.MultiStep`).
    lookahead_lr : float or callable, default=None
        ``eta_c``, the lookahead's learning rate: a number, or a rule of the
        batch's gradients. None is ``lr``.
    loss_ema_decay : float, default=0.9
        Decay of the per-row moving average of weighted losses.
    precision : {"float32", "bfloat16"}, default="float32"
        With ``"bfloat16"`` forward passes run under :func:`torch.autocast`,
        the meta step's sums and dot products in float32.

    Attributes
    ----------
    weighting_ : Weighting
        The weights of every batch (started by :meth:`set_training_rows`).
    meta_objective_ : Objective or None
        The meta-loss, on the net's device.
    engine_ : str, Engine class, callable or None
        The meta step's engine; None without a meta objective.
    lookahead_lr_ : float or callable
        ``eta_c`` of the meta step.
    loss_average_ : WeightedLossAverage
        The per-row moving average of weighted losses.
    autocast_dtype_ : torch.dtype or None
        The dtype of mixed precision, None in float32.

    Default callbacks, after skorch's scoring: ``weight_monitor``
    (:class:`~skforml.training._callbacks.WeightMonitor`), ``valid_acc``
    (:class:`~skforml.training._callbacks.FairnessScoring`, which takes
    skorch's ``valid_acc`` over: the accuracy weighted to the training
    distribution, and ``valid_disparity``), ``tolerance_controller`` and
    ``epoch_selector``; set them with ``callbacks__<name>__<setting>``.

    ``cuda_dependent_attributes_`` holds the parts with tensors: skorch pickles
    them with the module and loads them on the CPU on a machine without
    CUDA. The meta objective (whose loss refers back to the net) is pickled
    with its tensors on the CPU, and moved back to the net's device on loading.

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

    cuda_dependent_attributes_ = [
        *NeuralNetClassifier.cuda_dependent_attributes_,
        "weighting_",
        "loss_average_",
        "meta_loss_sum_",
    ]
    prefixes_ = [*NeuralNetClassifier.prefixes_, "weighting"]

    def __init__(
        self,
        module,
        *args,
        weighting=None,
        meta_objective=None,
        meta_gradient="auto",
        lookahead_lr=None,
        loss_ema_decay=0.9,
        precision="float32",
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.weighting = weighting
        self.meta_objective = meta_objective
        self.meta_gradient = meta_gradient
        self.lookahead_lr = lookahead_lr
        self.loss_ema_decay = loss_ema_decay
        self.precision = precision

    def initialize(self):
        """Initialize skorch's parts, then the weighting and the meta step."""
        super().initialize()
        self.initialize_weighting()
        self.initialize_meta_step()
        return self

    def initialize_weighting(self):
        """Build ``weighting_`` from ``weighting`` and ``weighting__*``."""
        params = self.get_params_for("weighting")
        weighting = UniformWeights if self.weighting is None else self.weighting
        if isinstance(weighting, Weighting):
            if params:
                raise ValueError(
                    "weighting__* parameters need weighting to be a class; got "
                    f"an instance and {sorted(params)}."
                )
            # A copy: the parameter stays as given, as skorch's module does.
            self.weighting_ = copy.deepcopy(weighting)
        else:
            self.weighting_ = weighting(**params)
        return self

    def initialize_meta_step(self):
        """Build ``meta_objective_``, ``engine_`` and ``lookahead_lr_``.

        Needs ``module_`` (the engine depends on its layers).
        """
        objective = None
        if self.meta_objective is not None:
            objective = tensors_to(self.meta_objective(self._row_loss), self.device)
        self.meta_objective_ = objective
        self.engine_ = None
        if objective is not None:
            meta_gradient = self.meta_gradient
            is_engine = isinstance(meta_gradient, type) and issubclass(
                meta_gradient, Engine
            )
            if isinstance(meta_gradient, str) or is_engine:
                meta_gradient = choose_engine(self.module_, meta_gradient)
            self.engine_ = meta_gradient
        self.lookahead_lr_ = copy.deepcopy(
            self.lr if self.lookahead_lr is None else self.lookahead_lr
        )
        return self

    def set_training_rows(self, rows, validation_batches=None):
        """Start the weighting on this fit's training rows.

        Parameters
        ----------
        rows : TrainingRows
            The training rows (:class:`~skforml.weighting._base.TrainingRows`);
            ``fit``'s rows are their positions.
        validation_batches : ValidationBatches or None, default=None
            The meta step's batch sampler over the validation rows.

        Returns
        -------
        self : FORMLNet

        """
        self.weighting_.start(rows, self.device)
        self.loss_average_ = WeightedLossAverage(
            rows.n_rows, self.loss_ema_decay, self.device
        )
        self.validation_batches_ = validation_batches
        return self

    def set_validation(self, meta=None, monitor=None):
        """Set the validation rows of a fit; None clears them (a fitted net holds none).

        Parameters
        ----------
        meta : tuple of tensors or None, default=None
            ``(X, y, strata)`` of the meta step's validation rows, moved to
            the net's device.
        monitor : tuple or None, default=None
            ``(X, y, groups, row_weights)`` of the rows of the validation
            pass: skorch's ``train_split`` and the ``valid_acc`` scoring's
            ``groups`` and ``row_weights``.

        Returns
        -------
        self : FORMLNet

        """
        self.validation_ = None
        if meta is not None:
            self.validation_ = tuple(
                torch.as_tensor(part).to(self.device) for part in meta
            )
        groups = row_weights = None
        self.train_split = None
        self._monitor_rows = None
        if monitor is not None:
            X_val, y_val, groups, row_weights = monitor
            self._monitor_rows = RowDataset(
                torch.as_tensor(X_val), torch.as_tensor(y_val)
            )
            self.train_split = predefined_split(self._monitor_rows)
        scoring = dict(self.callbacks_).get("valid_acc")
        if isinstance(scoring, FairnessScoring):
            scoring.set_params(groups=groups, row_weights=row_weights)
        return self

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
            logits = self._infer_training(X, **fit_params)
            losses = self.get_row_losses(logits, y)
            loss = (p[shard] * losses).sum()
            # DistributedDataParallel averages the ranks' gradients.
            (loss * parallel.world_size).backward()
            all_losses = parallel.gather(losses.detach(), sizes)
            loss = parallel.sum_gradients(self.module_, loss, gradients=False)
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

    @property
    def autocast_dtype_(self):
        """The dtype of mixed precision (``precision``), None in float32."""
        return AUTOCAST_DTYPES[self.precision]

    def _autocast(self):
        dtype = self.autocast_dtype_
        if dtype is None:
            # No context to build: it is entered on every step.
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    def get_iterator(self, dataset, training=False):
        """The batches of a pass; a data-parallel fit shards the validation pass.

        Each rank predicts its share of the monitored rows; the predictions
        are gathered (:meth:`validation_step`), so every rank scores all of
        them: the validation metrics, the tolerance controller and the epoch
        selection agree across ranks.
        """
        parallel = self.parallel_
        monitor = self.__dict__.get("_monitor_rows")
        if training or not parallel.distributed or dataset is not monitor:
            return super().get_iterator(dataset, training=training)
        return batch_loader(
            dataset,
            self.get_params_for("iterator_valid").get("batch_size", self.batch_size),
            with_rows=False,
            rank=parallel.rank,
            world_size=parallel.world_size,
        )

    def validation_step(self, batch, **fit_params):
        """The validation step; the ranks' predictions gathered when sharded."""
        parallel = self.parallel_
        if not parallel.distributed:
            return super().validation_step(batch, **fit_params)
        X, y = batch  # this rank's inputs, the whole batch's labels
        self._set_training(False)
        with torch.no_grad():
            y_pred = self.infer(self._to_device(X), **fit_params)
            y_pred = parallel.gather(y_pred, shard_sizes(len(y), parallel.world_size))
            loss = self.get_loss(y_pred, y, training=False)
        return {"loss": loss, "y_pred": y_pred, "rows": len(y)}

    def _infer_training(self, X, **fit_params):
        """:meth:`infer` through the data-parallel wrapper of a distributed fit."""
        wrapper = self.__dict__.get("_data_parallel_module")
        if wrapper is None:
            return self.infer(X, **fit_params)
        with self._autocast():
            return at_least_float32(wrapper(X, **fit_params))

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
        if self.parallel_.distributed and self.engine_ is None:
            # Set past skorch's __setattr__: a per-fit view of module_, not a
            # part that initialize() builds.
            wrapper = self.parallel_.data_parallel_module(self.module_)
            self.__dict__["_data_parallel_module"] = wrapper

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        self.meta_loss_sum_ = torch.zeros((), device=self.device)
        self.meta_loss_count_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.loss_average_.end_epoch()
        self.weighting_.end_epoch(self)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self.weighting_.end_fit(self)
        # The wrapper holds the process group: it is neither kept nor pickled.
        self.__dict__.pop("_data_parallel_module", None)

    def __getstate__(self):
        state = super().__getstate__()  # the cuda_dependent_attributes_ mapped
        state.pop("_data_parallel_module", None)  # a fit interrupted by an error
        module = state.get("module")
        if isinstance(module, nn.Module) and any(
            t.device.type != "cpu" for t in module.state_dict().values()
        ):
            # A module instance is module_ itself: skorch maps module_, but
            # not this second reference to it.
            state["module"] = copy.deepcopy(module).cpu()
        # The objective's row loss is this net's method: pickled with the net,
        # not in skorch's separate pickle of the cuda_dependent_attributes_.
        if "meta_objective_" in state:
            state["meta_objective_"] = tensors_to(state["meta_objective_"], "cpu")
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch has set the device: the CUDA of the fit, or the CPU without it.
        objective = getattr(self, "meta_objective_", None)
        if objective is not None and torch.device(self.device).type != "cpu":
            self.meta_objective_ = tensors_to(objective, self.device)

    @property
    def _default_callbacks(self):
        # Ours sit after skorch's scoring and before the user's callbacks
        # (EarlyStopping, Checkpoint read what they record). FairnessScoring
        # takes skorch's valid_acc over, under its name, weighted to the
        # training distribution.
        scoring = [c for c in super()._default_callbacks if c[0] != "valid_acc"]
        *scoring, print_log = scoring
        return [
            *scoring,
            ("weight_monitor", WeightMonitor()),
            ("valid_acc", FairnessScoring()),
            ("tolerance_controller", ToleranceController(scoring="valid_acc")),
            ("epoch_selector", EpochSelector()),
            print_log,
        ]


AUTOCAST_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def _holds_our_state(obj):
    """Whether ``obj`` is skforml's or fills one of its interfaces."""
    ours = type(obj).__module__.startswith("skforml.")
    interface = isinstance(obj, (Weighting, Constraint, Objective))
    return (ours or interface) and hasattr(obj, "__dict__")


def tensors_to(obj, device, memo=None):
    """``obj`` with every tensor it holds on ``device``; ``obj`` itself if none moves.

    Follows dicts, lists, tuples, skforml's own objects (meta-objectives,
    meta-losses, weightings) and any :class:`~skforml.Weighting`,
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
