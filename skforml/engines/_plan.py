"""What the engines look up in a module once, and how they call it.

A module's plan (:func:`module_plan`, cached per module) holds its trainable
parameters, its per-row linear layers and whether its forward depends on
train/eval mode; :func:`call_with` runs the module with other parameter
tensors and :func:`eval_mode` switches it to eval mode for the validation
forward. :func:`is_linear_network` and :func:`has_batch_norm` are the tests
that choose an engine.
"""

import contextlib
import weakref

from torch import nn
from torch.func import functional_call

from .._module import MLP, SmallCNN

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
