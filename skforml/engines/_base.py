"""The engines' contract: :class:`Engine`, its registry, and how one is chosen.

:data:`ENGINES` maps names to :class:`Engine` subclasses (a subclass with a
``name`` registers itself); :func:`choose_engine` resolves
``meta_gradient`` for a module and :func:`run_engine` starts an engine on a
training batch; :class:`PerRowEngine` is the skeleton of the engines whose
``d`` is one more pass over the training batch. The numerics every engine
shares live here too: the default per-row loss, float32 upcasting, and the
weight gradient of step 2 from ``d`` (``-eta_c p_j (d_j - sum_i p_i d_i)``).
"""

import contextlib
import warnings

import torch
import torch.nn.functional as F

from .._distributed import SingleProcess, shard_sizes
from ..fairness._objectives import as_objective
from ._lookahead import lookahead_rate
from ._plan import call_with, eval_mode, has_batch_norm, is_linear_network, module_plan


def at_least_float32(tensor):
    """Upcast half precision; float32 and float64 stay as they are.

    Sums and dot products of the meta step stay exact enough under mixed
    precision.
    """
    if tensor.dtype in (torch.float32, torch.float64):
        return tensor
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def per_row_loss(logits, y):
    """Cross-entropy of each row (the default training loss ``l_i``)."""
    return F.cross_entropy(at_least_float32(logits), y, reduction="none")


def full_precision(device):
    """Autocast off: the closed forms' products stay in float32 under it."""
    if not torch.is_autocast_enabled(device.type):
        # Nothing to turn off: no context built (several per step).
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def _rng_state(device):
    """The random generators' state, to replay a forward's dropout masks."""
    state = [torch.get_rng_state()]
    if device.type == "cuda":
        state.append(torch.cuda.get_rng_state(device))
    return state


def _set_rng_state(device, state):
    """Restore a state of :func:`_rng_state`."""
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)


# Engines by name: every Engine subclass with a ``name`` registers itself.
ENGINES = {}


class Engine:
    """How the meta step computes the weight gradient: the engines' contract.

    An engine is built for one training batch with ``(module, X, y,
    lookahead_lr, validation, objective, row_loss)`` and runs the training
    forward on it, leaving ``logits`` and the per-row ``losses``. Then

    - :meth:`directional_derivatives` ``(p)`` returns ``(d, meta_loss)``:
      ``d_j = grad_theta l_j . g_f`` with ``g_f`` the gradient of the
      meta-objective on the validation batch after the lookahead
      ``theta - eta_c grad_theta sum_i p_i l_i`` (``eta_c`` of
      ``lookahead_lr``, kept as ``eta``), and the meta-objective's value;
    - :meth:`apply` ``(p_new)`` leaves ``grad_theta sum_i p_new_i l_i`` in
      the parameters' ``.grad`` for the optimizer.

    A subclass with a ``name`` registers itself, so ``FORMLClassifier(
    meta_gradient=name)`` uses it; the class itself works as well.
    :meth:`supports` says whether it can run a module (``"auto"`` picks
    ``"linear"`` where it does, else ``"jvp"``); ``rows_independent`` says
    that it needs rows that do not interact within a batch (train-mode
    BatchNorm then falls back to ``"unrolled"``, with a warning).

    In a data-parallel fit (``parallel``, see
    :mod:`skforml._distributed`) the engine sees this rank's shard
    of the training batch and of the validation batch (whose labels and
    strata it holds whole): :meth:`lookahead_params` and
    :meth:`validation_gradient` sum the gradients over the ranks and
    :meth:`validation_loss` gathers the validation logits, so ``d`` of the
    shard's rows is that of a one-process step on the global batch. An
    engine that computes its gradients through these three sets
    ``data_parallel = True`` (the closed forms do); one that differentiates
    through the lookahead by autograd (``"unrolled"``, several steps) cannot
    split it across ranks, and a data-parallel fit refuses it.

    Examples
    --------
    An engine of your own, here the reference one under another name:

    >>> from skforml import FORMLClassifier
    >>> from skforml.engines import ENGINES, UnrolledEngine
    >>> class MyEngine(UnrolledEngine):
    ...     name = "my_engine"
    >>> ENGINES["my_engine"] is MyEngine
    True
    >>> clf = FORMLClassifier(meta_gradient="my_engine")

    """

    name = None
    rows_independent = True
    # An engine of the caller's runs data-parallel once it says so (after
    # computing its gradients with lookahead_params / validation_gradient).
    data_parallel = False
    # The processes of the fit: set by run_engine after construction.
    parallel = SingleProcess()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            ENGINES[cls.name] = cls

    @classmethod
    def supports(cls, module):
        """Whether this engine computes exact gradients for ``module``."""
        return True

    def __init__(
        self, module, X, y, lookahead_lr, validation, meta_loss, row_loss=None
    ):
        self.module = module
        self.lookahead_lr = lookahead_lr
        self.eta = None
        self.validation = validation
        self.row_loss = row_loss or per_row_loss
        self.objective = as_objective(meta_loss, self.row_loss)
        self.plan = module_plan(module)
        self.params = self.plan.params
        self.X, self.y = X, y

    def directional_derivatives(self, p):
        """``(d, meta_loss)`` for lookahead weights ``p`` (see the class doc)."""
        raise NotImplementedError

    def apply(self, p_new):
        """Leave ``grad_theta sum_i p_new_i l_i`` in the parameters' ``.grad``."""
        raise NotImplementedError

    def validation_loss(self, params):
        """``L_f`` of the validation batch at ``params`` (eval-mode forward)."""
        X_val, y_val, keys_val = self.validation
        with eval_mode(self.module, self.plan.submodules, self.plan.mode_free):
            logits = call_with(self.module, params, X_val, self.plan)
        parallel = self.parallel
        if parallel.distributed:
            sizes = shard_sizes(len(y_val), parallel.world_size)
            logits = parallel.gather(logits, sizes)
        with full_precision(logits.device):
            return self.objective(at_least_float32(logits), y_val, keys_val)

    def validation_gradient(self, lookahead):
        """``L_f(theta~)`` and its gradient, the validation pass at theta~."""
        meta_loss = self.validation_loss(lookahead)
        grads = torch.autograd.grad(meta_loss, list(lookahead.values()))
        return meta_loss.detach(), self.parallel.sum(grads)

    def lookahead_params(self, gradients):
        """``theta - eta_c g``, ``g`` the weighted gradient summed over the ranks."""
        gradients = self.parallel.sum(gradients)
        self.eta = lookahead_rate(self.lookahead_lr, gradients)
        return {
            name: (p.detach() - self.eta * g).requires_grad_()
            for (name, p), g in zip(self.params.items(), gradients)
        }


class PerRowEngine(Engine):
    """An engine whose ``d`` is one more pass over the training batch.

    It runs the training forward, keeping the random generators' state from
    before it. :meth:`directional_derivatives` takes ``g_f`` through the
    data-parallel :meth:`lookahead_params` and :meth:`validation_gradient`,
    then ``d`` from :meth:`row_directional` with the training forward's
    random numbers replayed (so that dropout masks agree), and leaves the
    generators where the training forward left them. Rows must be
    independent within the batch.
    """

    data_parallel = True

    def __init__(self, *args):
        super().__init__(*args)
        self.device = self.X.device
        self.rng_before = _rng_state(self.device)
        self.logits = self.module(self.X)
        self.losses = self.row_loss(self.logits, self.y)

    def row_directional(self, primals, directions):
        """``d_j = grad l_j(primals) . directions`` for every row (dicts by name)."""
        raise NotImplementedError

    def directional_derivatives(self, p):
        grads = torch.autograd.grad(
            (p * self.losses).sum(), list(self.params.values()), retain_graph=True
        )
        meta_loss, g_f = self.validation_gradient(self.lookahead_params(grads))
        primals = {name: q.detach() for name, q in self.params.items()}
        directions = dict(zip(primals, g_f))
        rng_after = _rng_state(self.device)
        _set_rng_state(self.device, self.rng_before)
        try:
            d = self.row_directional(primals, directions)
        finally:
            _set_rng_state(self.device, rng_after)
        return at_least_float32(d), meta_loss

    def apply(self, p_new):
        (p_new * self.losses).sum().backward()


class NotPerRowLinear(Exception):
    """A linear layer ran more or less than once: use the jvp engine."""


# Names of meta_gradient besides the registered engines: "auto" picks the
# fastest exact engine for the module; "closed_form" is its name in 0.1.
AUTO_ENGINES = ("auto", "closed_form")


def engine_names():
    """The values ``meta_gradient`` accepts by name, as of this call."""
    return [*AUTO_ENGINES, *sorted(ENGINES)]


def choose_engine(module, meta_gradient="auto"):
    """The engine (a registered name, or an Engine class) for ``meta_gradient``.

    Warns when train-mode BatchNorm forces ``"unrolled"``; raises a
    ``ValueError`` naming ``meta_gradient`` when it is unknown or cannot run
    the module.
    """
    if isinstance(meta_gradient, type) and issubclass(meta_gradient, Engine):
        engine = meta_gradient
    elif meta_gradient in AUTO_ENGINES:
        engine = ENGINES["linear"] if is_linear_network(module) else ENGINES["jvp"]
    elif isinstance(meta_gradient, str) and meta_gradient in ENGINES:
        engine = ENGINES[meta_gradient]
    else:
        raise ValueError(
            f"meta_gradient must be a registered engine name or an Engine "
            f"subclass; got {meta_gradient!r}. Registered: {engine_names()}."
        )
    if engine.rows_independent and has_batch_norm(module):
        warnings.warn(
            f"meta_gradient={meta_gradient!r} needs rows that are independent "
            "within a batch, but the module has BatchNorm layers in train mode; "
            "falling back to meta_gradient='unrolled'.",
            UserWarning,
            stacklevel=3,
        )
        return "unrolled"
    if not engine.supports(module):
        raise ValueError(
            f"meta_gradient={meta_gradient!r} needs a module whose trainable "
            "parameters all live in nn.Linear (or nn.Conv2d) layers; use "
            "'auto' or 'jvp' for this module."
        )
    # A registered engine is kept by its name: the net pickles a string.
    return engine.name if ENGINES.get(engine.name) is engine else engine


def run_engine(engine, *args, parallel=None):
    """Start ``engine`` (a registered name, an Engine class or a factory) on a batch.

    A linear network that calls a layer more or less than once per forward
    goes through the jvp engine instead. A factory is called with the
    arguments (e.g. :class:`~skforml.engines._multistep.MultiStep`).
    """
    if isinstance(engine, str):
        engine = ENGINES[engine]
    try:
        started = engine(*args)
    except NotPerRowLinear:
        started = ENGINES["jvp"](*args)
    if parallel is not None:
        started.parallel = parallel
    return started
