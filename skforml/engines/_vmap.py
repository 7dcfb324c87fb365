"""The ``"vmap"`` engine: ``d`` from per-row gradients, for any module.

``d_j = grad_theta l_j . g_f`` with each row's gradient taken by
:func:`torch.func.grad` of its own loss, vectorised over the batch by
:func:`torch.func.vmap` over :func:`torch.func.functional_call`. It is exact
for any module whose rows are independent within a batch and needs reverse
mode only, so it runs modules with operations that lack forward-mode AD (a
custom :class:`torch.autograd.Function` without ``jvp``, for instance), which
the ``"jvp"`` engine cannot. Its cost is memory: the vectorised call holds
every row's gradient, rows times parameters.
"""

from torch.func import functional_call, grad, vmap

from ._base import PerRowEngine


class VmapEngine(PerRowEngine):
    """Closed form with per-row gradients (``vmap`` of ``grad``) for ``d``."""

    name = "vmap"

    def row_directional(self, primals, directions):
        def loss_of_row(params, x, y):
            # A batch of one row, so that the module and the loss see the
            # shapes they see in training.
            logits = functional_call(self.module, params, (x.unsqueeze(0),))
            return self.row_loss(logits, y.unsqueeze(0)).sum()

        def directional(x, y):
            gradient = grad(loss_of_row)(primals, x, y)
            return sum((gradient[name] * directions[name]).sum() for name in primals)

        # "different" randomness: the rows draw, in row order, the random
        # numbers the batched training forward drew (replayed by the base),
        # so dropout masks agree.
        return vmap(directional, randomness="different")(self.X, self.y)
