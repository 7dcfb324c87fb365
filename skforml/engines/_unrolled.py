"""The ``"unrolled"`` engine: the literal reference computation.

Autograd through the lookahead with ``create_graph=True``. Used on
request, and as the fallback for train-mode BatchNorm, whose batch
statistics tie rows together.
"""

import torch

from ._base import Engine
from ._lookahead import lookahead_rate


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
