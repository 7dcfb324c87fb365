"""How the meta step computes the weight gradient: the engines' seam.

The FORML meta step (Algorithm 1 of the paper), for a training batch B with
weight logits ``w[B]`` and a validation batch V:

1. ``p = softmax(w[B])``; lookahead ``theta~ = theta - eta_c grad sum_i p_i l_i``.
2. ``g_f = grad_theta L_f(theta~)`` on V, then the weight gradient
   ``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)`` with
   ``d_j = grad_theta l_j(theta) . g_f``.
3. ``w[B]`` moves against that gradient; the model's optimizer then steps on
   ``grad_theta sum_i p'_i l_i(theta)`` with ``p' = softmax(w[B])``.

An engine computes step 2 and the gradient of step 3. It is an
:class:`Engine` subclass (the contract, in ``_base``); one with a ``name``
registers itself, so ``FORMLClassifier(meta_gradient=name)`` uses it. One
module per engine:

``"linear"`` (``_linear``)
    For modules whose trainable parameters all live in ``nn.Linear`` and
    ``nn.Conv2d`` layers, each called once per forward: a closed form from
    every layer's per-row inputs and output gradients, no second-order
    graph and no second forward.
``"jvp"`` (``_jvp``)
    Any other module: ``d`` is one forward-mode pass of the per-row losses
    in direction ``g_f``, replaying the training forward's random numbers so
    that dropout masks agree.
``"vmap"`` (``_vmap``)
    Any module whose rows are independent: ``d`` from every row's gradient
    (:func:`torch.func.vmap` of :func:`torch.func.grad`), reverse mode only,
    so it runs operations that lack forward-mode AD; it holds rows times
    parameters in memory. It replays dropout masks as ``"jvp"`` does.
``"unrolled"`` (``_unrolled``)
    The literal reference: autograd through the lookahead with
    ``create_graph=True``. Used on request, and as the fallback for
    train-mode BatchNorm, whose batch statistics tie rows together.
``MultiStep`` (``_multistep``)
    Several lookahead SGD steps (``lookahead_steps > 1``), by autograd.

``_plan`` holds what the engines look up in a module once, ``_lookahead``
the lookahead rate. The validation forward runs the module in eval mode
(dropout off, BatchNorm on running statistics), so it measures the model as
it predicts and never touches running statistics.
"""

# The engine modules register their engines in ENGINES on import.
from ._base import ENGINES, Engine
from ._jvp import JvpEngine
from ._linear import LinearEngine
from ._multistep import MultiStep, MultiStepEngine
from ._unrolled import UnrolledEngine
from ._vmap import VmapEngine

__all__ = [
    "ENGINES",
    "Engine",
    "JvpEngine",
    "LinearEngine",
    "MultiStep",
    "MultiStepEngine",
    "UnrolledEngine",
    "VmapEngine",
]
