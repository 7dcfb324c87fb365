"""The ``"jvp"`` engine: ``d`` by one forward-mode pass, for any module.

``d`` is the derivative of the per-row losses in direction ``g_f``, one
:func:`torch.func.jvp` of the training forward, which replays that
forward's random numbers so that dropout masks agree.
"""

from torch.func import jvp

from ._base import PerRowEngine
from ._plan import call_with


class JvpEngine(PerRowEngine):
    """Closed form with one forward-mode pass for ``d``."""

    name = "jvp"

    def row_directional(self, primals, directions):
        def losses_at(params):
            logits = call_with(self.module, params, self.X, self.plan)
            return self.row_loss(logits, self.y)

        _, d = jvp(losses_at, (primals,), (directions,))
        return d
