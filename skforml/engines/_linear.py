"""The ``"linear"`` engine: closed form for linear and convolutional layers.

For modules whose trainable parameters all live in ``nn.Linear`` and
``nn.Conv2d`` layers, each called once per forward, one forward and one
backward of the training batch record every layer's inputs ``a`` and output
gradients ``delta`` per row. Any weighted gradient is then
``(c * delta).T @ a`` and ``d_j = delta_j . (G a_j)``: no second-order
graph, no second forward. A convolution is a linear layer over its input
patches.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._base import Engine, NotPerRowLinear, at_least_float32, full_precision
from ._plan import is_linear_network


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
            raise NotPerRowLinear
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
