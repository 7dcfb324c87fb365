"""The "vmap" engine: ``d`` from per-row gradients (torch.func.vmap of grad).

Its weight gradient against autograd through the lookahead (the unrolled
engine) and finite differences, for an MLP, a CNN and a module with dropout;
a module the jvp engine cannot run; a data-parallel step; and a fit. (The
final update and the constrained objectives are checked for every registered
engine in test_meta_step.py and test_constrained_objective.py.)
"""

import numpy as np
import pytest
import torch
from _helpers import (
    LOOKAHEAD_LR,
    closed_form_weight_gradient,
    lookahead,
    make_mlp,
    make_problem,
)
from torch import nn
from torch.func import functional_call

from skforml import FORMLClassifier, SmallCNN
from skforml.datasets import make_biased_classification
from skforml.engines._base import ENGINES, run_engine
from skforml.engines._vmap import VmapEngine


def weight_gradient(engine, module, w, X, y, validation, meta_loss):
    p = torch.softmax(w, dim=0)
    run = run_engine(engine, module, X, y, LOOKAHEAD_LR, validation, meta_loss)
    d, _ = run.directional_derivatives(p)
    return closed_form_weight_gradient(p, d, LOOKAHEAD_LR)


def finite_differences(module, w, X, y, validation, meta_loss, eps=1e-6):
    """dL_f/dw by central differences of the lookahead, written out."""

    def objective(w):
        params = lookahead(module, w, X, y)
        X_val, y_val, cells = validation
        module.eval()
        out = functional_call(module, params, (X_val,))
        module.train()
        losses = nn.functional.cross_entropy(out, y_val, reduction="none")
        return meta_loss(losses, cells).item()

    grad = torch.zeros_like(w)
    for j in range(len(w)):
        step = torch.zeros_like(w)
        step[j] = eps
        grad[j] = (objective(w + step) - objective(w - step)) / (2 * eps)
    return grad


def cnn_problem(seed, meta_loss="mean_loss_discrepancy"):
    torch.manual_seed(seed)
    module = SmallCNN(n_classes=3, in_channels=1, channels=(3, 4)).double()
    _, y, (_, y_val, cells), meta_loss, w = make_problem(
        seed, meta_loss=meta_loss, n_train=10
    )
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(10, 1, 8, 8, generator=gen, dtype=torch.float64)
    X_val = torch.randn(len(y_val), 1, 8, 8, generator=gen, dtype=torch.float64)
    return module, w, X, y, (X_val, y_val, cells), meta_loss


def test_registered_and_data_parallel():
    assert ENGINES["vmap"] is VmapEngine
    assert VmapEngine.data_parallel and VmapEngine.rows_independent


@pytest.mark.parametrize(
    "meta_loss", ["mean_loss_discrepancy", "max_loss_discrepancy", "cross_entropy"]
)
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_weight_gradient_matches_unrolled_and_finite_differences(network, meta_loss):
    if network == "mlp":
        X, y, validation, loss_fn, w = make_problem(1, meta_loss=meta_loss)
        args = (make_mlp(2, seed=0), w, X, y, validation, loss_fn)
    else:
        args = cnn_problem(2, meta_loss)
    got = weight_gradient("vmap", *args)
    expected = finite_differences(*args)
    assert expected.abs().max() > 1e-6  # the check is not vacuous
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(
        got, weight_gradient("unrolled", *args), rtol=1e-5, atol=1e-10
    )


def test_dropout_masks_are_replayed():
    torch.manual_seed(0)
    # LayerNorm parameters (not a linear network) and dropout.
    module = nn.Sequential(
        nn.Linear(5, 8), nn.LayerNorm(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)
    ).double()
    X, y, validation, loss_fn, w = make_problem(4)
    gradients, after = {}, {}
    for engine in ("vmap", "unrolled"):
        torch.manual_seed(123)  # the same dropout mask for both training forwards
        gradients[engine] = weight_gradient(
            engine, module, w, X, y, validation, loss_fn
        )
        after[engine] = torch.get_rng_state()
    torch.testing.assert_close(
        gradients["vmap"], gradients["unrolled"], rtol=1e-5, atol=1e-10
    )
    # The generator is left where the training forward left it.
    assert torch.equal(after["vmap"], after["unrolled"])


class _NoForwardAD(torch.autograd.Function):
    """``x * sigmoid(x)`` with a backward but no jvp: forward-mode AD fails."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (ctx.x,) = inputs

    @staticmethod
    def backward(ctx, grad_output):
        s = torch.sigmoid(ctx.x)
        return grad_output * s * (1 + ctx.x * (1 - s))


class NoForwardADNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 7)
        self.out = nn.Linear(7, 3)

    def forward(self, X):
        return self.out(_NoForwardAD.apply(self.hidden(X)))


def test_runs_a_module_without_forward_mode_ad():
    torch.manual_seed(0)
    module = NoForwardADNet().double()
    X, y, validation, loss_fn, w = make_problem(5)
    args = (module, w, X, y, validation, loss_fn)
    with pytest.raises(RuntimeError, match="jvp"):
        weight_gradient("jvp", *args)
    got = weight_gradient("vmap", *args)
    torch.testing.assert_close(
        got, weight_gradient("unrolled", *args), rtol=1e-5, atol=1e-10
    )


class Mirrored:
    """Two ranks that hold the same shard: what a data-parallel engine sees.

    Sums double; a gather puts the other rank's copy after this rank's rows,
    without a gradient path (it is the other rank's).
    """

    rank, world_size, distributed = 0, 2, True

    def sum(self, tensors):
        return [2 * t for t in tensors]

    def gather(self, tensor, sizes):
        assert sizes == [len(tensor), len(tensor)]
        return torch.cat([tensor, tensor.detach()])


@pytest.mark.parametrize("engine", ["vmap", "jvp"])
def test_a_shard_gets_the_global_batchs_directional_derivatives(engine):
    module = make_mlp(1, seed=6)
    X, y, (X_val, y_val, cells), loss_fn, w = make_problem(6)
    p = torch.softmax(w, dim=0)
    validation = (X_val, torch.cat([y_val, y_val]), torch.cat([cells, cells]))
    shard = run_engine(
        engine, module, X, y, LOOKAHEAD_LR, validation, loss_fn, parallel=Mirrored()
    )
    d_shard, meta_shard = shard.directional_derivatives(p)
    whole = run_engine(
        engine,
        module,
        torch.cat([X, X]),
        torch.cat([y, y]),
        LOOKAHEAD_LR,
        (torch.cat([X_val, X_val]), *validation[1:]),
        loss_fn,
    )
    d_whole, meta_whole = whole.directional_derivatives(torch.cat([p, p]))
    torch.testing.assert_close(d_shard, d_whole[: len(X)], rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(meta_shard, meta_whole)


def test_a_fit_agrees_with_the_closed_form():
    X, y, groups = make_biased_classification(n_samples=300, random_state=0)
    settings = {"max_epochs": 2, "batch_size": 32, "random_state": 0}
    by_vmap = FORMLClassifier(meta_gradient="vmap", **settings)
    by_vmap.fit(X, y, sensitive_features=groups)
    assert by_vmap.net_.engine_ == "vmap"
    closed = FORMLClassifier(**settings).fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(
        by_vmap.sample_weights_, closed.sample_weights_, rtol=1e-4
    )
    assert np.std(by_vmap.sample_weights_[~by_vmap.validation_mask_]) > 1e-2
