"""The ``"jvp"`` engine: ``d`` by one forward-mode pass, for any module.

``d`` is the derivative of the per-row losses in direction ``g_f``, one
:func:`torch.func.jvp` of the training forward, which replays that
forward's random numbers so that dropout masks agree.
"""

import torch
from torch.func import jvp

from ._base import Engine, at_least_float32, rng_state, set_rng_state
from ._plan import call_with


class JvpEngine(Engine):
    """Closed form with one forward-mode pass for ``d``."""

    name = "jvp"
    data_parallel = True

    def __init__(self, *args):
        super().__init__(*args)
        self.device = self.X.device
        self.rng_before = rng_state(self.device)
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
        rng_after = rng_state(self.device)
        set_rng_state(self.device, self.rng_before)
        _, d = jvp(losses_at, (primals,), (tangents,))
        set_rng_state(self.device, rng_after)
        return at_least_float32(d), meta_loss

    def apply(self, p_new):
        (p_new * self.losses).sum().backward()
