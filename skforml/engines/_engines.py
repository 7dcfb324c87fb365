"""The FORML meta step (Algorithm 1 of the paper), for one training batch.

For a batch B with weight logits ``w[B]`` and a validation batch V:

1. ``p = softmax(w[B])``; lookahead ``theta~ = theta - eta_c grad sum_i p_i l_i``.
2. ``g_f = grad_theta L_f(theta~)`` on V, then the weight gradient
   ``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)`` with
   ``d_j = grad_theta l_j(theta) . g_f``.
3. ``w[B]`` moves against that gradient; the model's optimizer then steps on
   ``grad_theta sum_i p'_i l_i(theta)`` with ``p' = softmax(w[B])``.

Three engines compute step 2 and the gradient of step 3:

``"linear"``
    For modules whose trainable parameters all live in ``nn.Linear`` and
    ``nn.Conv2d`` layers, each called once per forward (a convolution is a
    linear layer over its input patches). One forward and one backward of the
    training batch record every layer's inputs ``a`` and output gradients
    ``delta`` per row; any weighted gradient is then ``(c * delta).T @ a`` and
    ``d_j = delta_j . (G a_j)``: no second-order graph, no second forward.
``"jvp"``
    Any other module: ``d`` is one forward-mode pass of the per-row losses in
    direction ``g_f`` (:func:`torch.func.jvp`), replaying the training
    forward's random numbers so that dropout masks agree.
``"unrolled"``
    The literal reference: autograd through the lookahead with
    ``create_graph=True``. Used on request, and as the fallback for
    train-mode BatchNorm, whose batch statistics tie rows together.

The validation forward runs the module in eval mode (dropout off,
BatchNorm on running statistics), so it measures the model as it predicts
and never touches running statistics.
"""

import contextlib
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

from .._distributed import SingleProcess, shard_sizes
from .._module import MLP, SmallCNN
from ..fairness._objectives import as_objective

# Length of the "auto" lookahead in optimizer steps, chosen on noisy digits,
# Adult and the biased synthetic data (the user guide's lookahead sweep): one
# step of the optimizer probes too little of the validation loss to steer the
# weights; 10 to 100 gave the same results.
LOOKAHEAD_HORIZON = 10.0


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


class AutoLookahead:
    """``lookahead_lr="auto"``: a lookahead as long as ``horizon`` optimizer steps.

    An adaptive optimizer (Adam, RMSprop, ...) moves every parameter by about
    ``lr`` per step, so ``horizon`` of its steps span ``horizon * lr *
    sqrt(n_params)``; the lookahead takes a plain gradient step of that
    length. Plain SGD moves by ``lr`` times the gradient: its lookahead rate
    is ``horizon * lr``.
    """

    def __init__(self, lr, adaptive, horizon=LOOKAHEAD_HORIZON):
        self.lr = lr
        self.adaptive = adaptive
        self.horizon = horizon

    def __call__(self, gradients):
        if not self.adaptive:
            return self.horizon * self.lr
        with torch.no_grad():
            square = sum(g.float().pow(2).sum() for g in gradients)
            n_params = sum(g.numel() for g in gradients)
        return self.horizon * self.lr * n_params**0.5 / (square.sqrt() + 1e-12)


def lookahead_rate(lookahead_lr, gradients):
    """``eta_c`` of this batch: a number, or a rule of the batch's gradients."""
    return lookahead_lr(gradients) if callable(lookahead_lr) else lookahead_lr


# Modules whose forward does not depend on train/eval mode: a network made
# only of these needs no mode switch for the validation forward.
_MODE_FREE = (
    nn.Sequential,
    nn.ModuleList,
    nn.Linear,
    nn.Identity,
    nn.Flatten,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.LayerNorm,
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
)


class _ModulePlan:
    """What the engines look up in a module once, not at every step."""

    def __init__(self, module):
        self.submodules = list(module.modules())
        # A custom module may read self.training in its forward: only known
        # modules count as mode-free.
        self.mode_free = all(
            isinstance(m, (*_MODE_FREE, MLP, SmallCNN)) for m in self.submodules
        )
        self.params = {
            name: p for name, p in module.named_parameters() if p.requires_grad
        }
        self.linear_layers = [m for m in self.submodules if _is_per_row_linear(m)]
        # The fast path of call_with: parameters swapped in their owners'
        # slots. Only for torch's own layers without tied parameters (a
        # custom module may cache or tie its parameters).
        every_name = list(module.named_parameters(remove_duplicate=False))
        self.slots = None
        if len(every_name) == len(dict(module.named_parameters())) and all(
            type(m).__module__.startswith("torch.nn.") or isinstance(m, (MLP, SmallCNN))
            for m in self.submodules
        ):
            self.slots = {name: _owner_slot(module, name) for name, _ in every_name}
        names = {id(p): name for name, p in self.params.items()}
        self.linear_names = [
            (
                names.get(id(layer.weight)),
                names.get(id(layer.bias)) if layer.bias is not None else None,
            )
            for layer in self.linear_layers
        ]


def _owner_slot(module, name):
    owner, _, attr = name.rpartition(".")
    return module.get_submodule(owner), attr


def call_with(module, params, X, plan=None):
    """``module(X)`` with the tensors ``params`` in place of its parameters.

    :func:`torch.func.functional_call`, or, for modules made of torch's own
    layers (``plan.slots``), the same swap done directly: a tenth of its
    Python overhead, which shows on every step of a small network.
    """
    slots = plan.slots if plan is not None else None
    if slots is None:
        return functional_call(module, params, (X,))
    swapped = []
    try:
        for name, tensor in params.items():
            owner, attr = slots[name]
            swapped.append((owner, attr, owner._parameters[attr]))
            owner._parameters[attr] = tensor
        return module(X)
    finally:
        for owner, attr, original in swapped:
            owner._parameters[attr] = original


_PLANS = weakref.WeakKeyDictionary()


def module_plan(module):
    """The cached :class:`_ModulePlan` of ``module``."""
    plan = _PLANS.get(module)
    if plan is None:
        plan = _PLANS[module] = _ModulePlan(module)
    return plan


@contextlib.contextmanager
def eval_mode(module, submodules=None, mode_free=False):
    """Put ``module`` in eval mode, restoring each submodule's mode after.

    ``mode_free`` says that no submodule behaves differently in eval mode:
    the switch is then skipped.
    """
    if mode_free:
        yield
        return
    modes = [(m, m.training) for m in submodules or module.modules()]
    for m, _ in modes:
        m.training = False
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def has_batch_norm(module):
    """Whether train-mode batch statistics tie the rows of a batch together."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
        for m in module.modules()
    )


def _is_per_row_linear(module):
    """A linear layer, or a convolution that is one over unfolded patches."""
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def is_linear_network(module):
    """Whether every trainable parameter belongs to an ``nn.Linear`` layer.

    ``nn.Conv2d`` layers count as linear layers (zero padding, one group).
    """
    in_linear = {
        id(p) for m in module.modules() if _is_per_row_linear(m) for p in m.parameters()
    }
    params = list(module.parameters())
    return bool(params) and all(id(p) in in_linear and p.requires_grad for p in params)


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
    >>> from skforml.engines._engines import ENGINES, UnrolledEngine
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


def closed_form_weight_gradient(p, d, lookahead_lr):
    """``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)`` (sums to zero)."""
    return -lookahead_lr * p * (d - (p * d).sum())


class LinearEngine(Engine):
    """Closed form from saved per-row activations and output gradients.

    Each layer's part of any weighted gradient and of ``d`` is a product of
    its inputs ``a`` and output gradients ``delta``: see
    :class:`_LinearTerms` and :class:`_ConvTerms`.
    """

    name = "linear"
    data_parallel = True

    @classmethod
    def supports(cls, module):
        return is_linear_network(module)

    def __init__(self, *args):
        super().__init__(*args)
        layers = self.plan.linear_layers
        records = []

        def record(layer, inputs, output):
            records.append((layer, inputs[0], output))

        handles = [layer.register_forward_hook(record) for layer in layers]
        try:
            self.logits = self.module(self.X)
        finally:
            for handle in handles:
                handle.remove()
        if [r[0] for r in records] != layers and sorted(
            map(id, (r[0] for r in records))
        ) != sorted(map(id, layers)):
            raise _NotPerRowLinear
        order = {id(layer): i for i, layer in enumerate(layers)}
        records.sort(key=lambda r: order[id(r[0])])
        self.losses = self.row_loss(self.logits, self.y)
        deltas = torch.autograd.grad(self.losses.sum(), [r[2] for r in records])
        n_rows = len(self.losses)
        with full_precision(self.X.device):
            self.layers = [
                (_ConvTerms if isinstance(layer, nn.Conv2d) else _LinearTerms)(
                    layer, a.detach(), delta, n_rows
                )
                for (layer, a, _), delta in zip(records, deltas)
            ]
        # Rows x positions flattened: positions > 1 for sequences.
        self.positions = [getattr(terms, "positions", 1) for terms in self.layers]
        self.names = self.plan.linear_names

    def _weighted_gradients(self, c):
        """``sum_i c_i grad l_i`` per parameter, in ``self.params`` order."""
        grads = {}
        for terms, (w_name, b_name) in zip(self.layers, self.names):
            grads[w_name], bias = terms.weighted_gradient(c)
            if b_name is not None:
                grads[b_name] = bias
        return [grads[name] for name in self.params]

    def directional_derivatives(self, p):
        with full_precision(self.X.device):
            gradients = self._weighted_gradients(p)
        lookahead = self.lookahead_params(gradients)
        meta_loss, g_f = self.validation_gradient(lookahead)
        g_f = dict(zip(lookahead, g_f))
        d = 0
        with full_precision(self.X.device):
            for terms, (w_name, b_name) in zip(self.layers, self.names):
                bias = None if b_name is None else at_least_float32(g_f[b_name])
                d = d + terms.directional(at_least_float32(g_f[w_name]), bias)
        return d, meta_loss

    def apply(self, p_new):
        with full_precision(self.X.device):
            gradients = self._weighted_gradients(p_new)
        for p, g in zip(self.params.values(), gradients):
            p.grad = g.to(p.dtype)


class _LinearTerms:
    """An ``nn.Linear`` layer's inputs ``a`` and output gradients ``delta``.

    With inputs of shape ``(rows, ..., features)`` the layer applies at every
    position: a row's terms sum over its positions.
    """

    def __init__(self, layer, a, delta, n_rows):
        self.positions = a.numel() // (n_rows * a.shape[-1])
        self.a = at_least_float32(a.reshape(-1, a.shape[-1]))
        self.delta = at_least_float32(delta.reshape(-1, delta.shape[-1]))

    def weighted_gradient(self, c):
        """``sum_i c_i grad l_i`` of the weight and of the bias."""
        a, delta = self.a, self.delta
        c = c if self.positions == 1 else c.repeat_interleave(self.positions)
        # Scale the narrower operand: the temporary is then the smaller.
        if a.shape[1] < delta.shape[1]:
            weight = delta.T @ (a * c[:, None])
        else:
            weight = (delta * c[:, None]).T @ a
        return weight, c @ delta

    def directional(self, G, g_bias):
        """``d_j = delta_j . (G a_j) + delta_j . g_bias``, summed over positions."""
        a, delta = self.a, self.delta
        # The product runs through the narrower side of G.
        if G.shape[0] < G.shape[1]:
            d = ((a @ G.T) * delta).sum(dim=1)
        else:
            d = ((delta @ G) * a).sum(dim=1)
        if g_bias is not None:
            d = d + delta @ g_bias
        return d if self.positions == 1 else d.view(-1, self.positions).sum(dim=1)


class _ConvTerms:
    """An ``nn.Conv2d`` layer: a linear layer over its input patches.

    Its per-row terms are convolutions rather than products of unfolded
    patches: the weighted gradient is the convolution's weight gradient with
    row-weighted output gradients, and ``d_j`` the output gradient dotted
    with the convolution of row ``j`` by ``G`` (no patch matrix in memory).
    """

    def __init__(self, layer, a, delta, n_rows):
        self.layer = layer
        self.a = at_least_float32(a)
        self.delta = at_least_float32(delta)
        self.delta_sum = self.delta.sum(dim=(2, 3))

    def weighted_gradient(self, c):
        layer = self.layer
        weight = torch.nn.grad.conv2d_weight(
            self.a,
            layer.weight.shape,
            self.delta * c[:, None, None, None],
            layer.stride,
            layer.padding,
            layer.dilation,
        )
        return weight, c @ self.delta_sum

    def directional(self, G, g_bias):
        layer = self.layer
        out = F.conv2d(self.a, G, None, layer.stride, layer.padding, layer.dilation)
        d = (out * self.delta).sum(dim=(1, 2, 3))
        if g_bias is not None:
            d = d + self.delta_sum @ g_bias
        return d


def full_precision(device):
    """Autocast off: the closed forms' products stay in float32 under it."""
    return torch.autocast(device.type, enabled=False)


class _NotPerRowLinear(Exception):
    """A linear layer ran more or less than once: use the jvp engine."""


def _rng_state(device):
    state = [torch.get_rng_state()]
    if device.type == "cuda":
        state.append(torch.cuda.get_rng_state(device))
    return state


def _set_rng_state(device, state):
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)


class JvpEngine(Engine):
    """Closed form with one forward-mode pass for ``d``."""

    name = "jvp"
    data_parallel = True

    def __init__(self, *args):
        super().__init__(*args)
        self.device = self.X.device
        self.rng_before = _rng_state(self.device)
        self.logits = self.module(self.X)
        self.losses = self.row_loss(self.logits, self.y)

    def directional_derivatives(self, p):
        grads = torch.autograd.grad(
            (p * self.losses).sum(), list(self.params.values()), retain_graph=True
        )
        meta_loss, g_f = self.validation_gradient(self.lookahead_params(grads))
        primals = {name: q.detach() for name, q in self.params.items()}
        tangents = dict(zip(primals, g_f))

        def losses_at(params):
            logits = call_with(self.module, params, self.X, self.plan)
            return self.row_loss(logits, self.y)

        # Replay the training forward's random numbers (dropout masks), then
        # leave the generator where the training forward left it.
        rng_after = _rng_state(self.device)
        _set_rng_state(self.device, self.rng_before)
        _, d = jvp(losses_at, (primals,), (tangents,))
        _set_rng_state(self.device, rng_after)
        return at_least_float32(d), meta_loss

    def apply(self, p_new):
        (p_new * self.losses).sum().backward()


class UnrolledEngine(Engine):
    """Reference: autograd through the lookahead (``create_graph=True``)."""

    name = "unrolled"
    rows_independent = False  # train-mode BatchNorm is differentiated exactly
    data_parallel = False

    def __init__(self, *args):
        super().__init__(*args)
        self.logits = self.module(self.X)
        self.losses = self.row_loss(self.logits, self.y)

    def directional_derivatives(self, p):
        # d_j = -(dL_f/d eps_j) / eta_c for the loss weights p + eps at eps=0,
        # by autograd through the lookahead.
        eps = torch.zeros_like(p, requires_grad=True)
        grads = torch.autograd.grad(
            ((p + eps) * self.losses).sum(),
            list(self.params.values()),
            create_graph=True,
        )
        # The rate is a constant of the step, not a function of the weights.
        self.eta = lookahead_rate(self.lookahead_lr, [g.detach() for g in grads])
        lookahead = {
            name: q - self.eta * g for (name, q), g in zip(self.params.items(), grads)
        }
        meta_loss = self.validation_loss(lookahead)
        (gradient,) = torch.autograd.grad(meta_loss, eps, retain_graph=True)
        return -gradient / self.eta, meta_loss.detach()

    def apply(self, p_new):
        (p_new * self.losses).sum().backward()


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
    except _NotPerRowLinear:
        started = JvpEngine(*args)
    if parallel is not None:
        started.parallel = parallel
    return started
