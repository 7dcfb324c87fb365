"""Helpers shared by test modules in several folders of the suite.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so a test
module in any folder imports them as ``from _helpers import ...``; test
modules themselves are not imported from one another across folders.
"""

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from skforml.fairness._base import make_constraint
from skforml.fairness._objectives import make_meta_loss


def build_cell_spec(
    constraint, *, group_names, class_names, groups_are_classes, present
):
    """Compile ``constraint`` (a name or instance) into its cells."""
    return make_constraint(constraint).compile(
        group_names=group_names,
        class_names=class_names,
        groups_are_classes=groups_are_classes,
        present=present,
    )


def closed_form_weight_gradient(p, d, lookahead_lr):
    """``dL_f/dw_j = -eta_c p_j (d_j - sum_i p_i d_i)``: the paper's weight gradient.

    The weightings take ``d`` itself; the tests compare this with autograd
    through the lookahead and with finite differences.
    """
    return -lookahead_lr * p * (d - (p * d).sum())


# ------------------------------------------------- the meta step, written out
# An independent lookahead and small problems to check the engines' weight
# gradients against (tests/engines, tests/fairness).

LOOKAHEAD_LR = 0.5


def make_mlp(n_hidden_layers, seed, width=7, n_features=5, n_classes=3):
    torch.manual_seed(seed)
    layers, size = [], n_features
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(size, width), nn.Tanh()]
        size = width
    layers.append(nn.Linear(size, n_classes))
    return nn.Sequential(*layers).double()


def make_problem(
    seed,
    constraint="equalized_odds",
    meta_loss="mean_loss_discrepancy",
    n_train=12,
    n_val=16,
    n_classes=3,
    n_groups=2,
):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n_train, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(n_classes, (n_train,), generator=gen)
    X_val = torch.randn(n_val, 5, generator=gen, dtype=torch.float64)
    # Every (group, label) stratum present in the validation batch.
    y_val = torch.arange(n_val) % n_classes
    g_val = (torch.arange(n_val) // n_classes) % n_groups
    spec = build_cell_spec(
        constraint,
        group_names=list(range(n_groups)),
        class_names=list(range(n_classes)),
        groups_are_classes=False,
        present=np.ones(n_groups * n_classes, dtype=bool),
    )
    cells = torch.as_tensor(spec.cells((g_val * n_classes + y_val).numpy()))
    w = torch.randn(n_train, generator=gen, dtype=torch.float64)
    return X, y, (X_val, y_val, cells), make_meta_loss(meta_loss, spec, "cpu"), w


def lookahead(module, w, X, y):
    """theta - eta grad sum softmax(w)_i l_i, written out independently."""
    params = dict(module.named_parameters())
    p = torch.softmax(w, dim=0)
    losses = nn.functional.cross_entropy(
        functional_call(module, params, (X,)), y, reduction="none"
    )
    grads = torch.autograd.grad(
        (p * losses).sum(), list(params.values()), create_graph=True
    )
    return {n: q - LOOKAHEAD_LR * g for (n, q), g in zip(params.items(), grads)}
