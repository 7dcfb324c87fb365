"""The lookahead rate ``eta_c``: a number, or a rule of the batch's gradients."""

import torch

# Length of the "auto" lookahead in optimizer steps, chosen on noisy digits,
# Adult and the biased synthetic data (the user guide's lookahead sweep): one
# step of the optimizer probes too little of the validation loss to steer the
# weights; 10 to 100 gave the same results.
LOOKAHEAD_HORIZON = 10.0


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
        # The squares summed tensor by tensor in float32, as since 0.2: a
        # fused norm (torch._foreach_norm) rounds differently, and every
        # published number was fitted with this one.
        with torch.no_grad():
            square = sum(g.float().pow(2).sum() for g in gradients)
            n_params = sum(g.numel() for g in gradients)
        return self.horizon * self.lr * n_params**0.5 / (square.sqrt() + 1e-12)


def lookahead_rate(lookahead_lr, gradients):
    """``eta_c`` of this batch: a number, or a rule of the batch's gradients."""
    return lookahead_lr(gradients) if callable(lookahead_lr) else lookahead_lr
