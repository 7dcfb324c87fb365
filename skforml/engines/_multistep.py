"""A meta step whose lookahead takes several SGD steps (paper appendix ablation).

Algorithm 1 of the paper looks ahead with one SGD step on the weighted
training loss; Section 3 calls several steps "a straightforward extension".
:class:`MultiStepEngine` takes ``steps`` of them on the same training batch,

    ``theta_{k+1} = theta_k - eta_c grad_theta sum_i p_i l_i(theta_k)``,

measures the meta-loss at ``theta_K`` and differentiates it with respect to
the batch weights by autograd through all K steps (``create_graph=True``,
like :class:`~skforml.engines._unrolled.UnrolledEngine`). It returns
``d_j = -(dL_f/dp_j) / eta_c``, which is ``grad l_j . g_f`` for one step, so
the weightings take it unchanged. Every step has the rate ``eta_c`` of a
one-step lookahead: K steps look K times as far.
"""

from torch.autograd import grad
from torch.func import functional_call

from ._base import Engine
from ._lookahead import lookahead_rate


class MultiStepEngine(Engine):
    """Autograd through ``steps`` lookahead SGD steps on the training batch."""

    data_parallel = False

    def __init__(self, *args, steps=2):
        super().__init__(*args)
        self.steps = steps
        self.logits = self.module(self.X)
        self.losses = self.row_loss(self.logits, self.y)

    def _losses_at(self, params):
        return self.row_loss(functional_call(self.module, params, (self.X,)), self.y)

    def directional_derivatives(self, p):
        eps = p.new_zeros(p.shape, requires_grad=True)
        params, losses = dict(self.params), self.losses
        for step in range(self.steps):
            if step:
                losses = self._losses_at(params)
            grads = grad(
                ((p + eps) * losses).sum(),
                list(params.values()),
                create_graph=True,
                retain_graph=True,
            )
            if step == 0:
                # The rate is a constant of the step, not a function of p.
                self.eta = lookahead_rate(
                    self.lookahead_lr, [g.detach() for g in grads]
                )
            params = {
                name: q - self.eta * g for (name, q), g in zip(params.items(), grads)
            }
        meta_loss = self.validation_loss(params)
        (gradient,) = grad(meta_loss, eps, retain_graph=True)
        return -gradient / self.eta, meta_loss.detach()

    def apply(self, p_new):
        (p_new * self.losses).sum().backward()


class MultiStep:
    """Engine factory of ``lookahead_steps > 1`` (picklable, compares by steps).

    :func:`~skforml.engines._base.run_engine` calls it with an engine's arguments.
    """

    def __init__(self, steps):
        self.steps = steps

    data_parallel = False

    def __call__(self, *args):
        return MultiStepEngine(*args, steps=self.steps)

    def __eq__(self, other):
        return isinstance(other, MultiStep) and other.steps == self.steps

    def __hash__(self):
        return hash(("multistep", self.steps))

    def __repr__(self):
        return f"MultiStep(steps={self.steps})"
