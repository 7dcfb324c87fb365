"""Correctness of the meta step: the weight gradient of every engine against
an independent computation (finite differences of the unrolled lookahead)."""

import numpy as np
import pytest
import torch
from _helpers import (
    LOOKAHEAD_LR,
    build_cell_spec,
    closed_form_weight_gradient,
    lookahead,
    make_mlp,
    make_problem,
)
from torch import nn
from torch.func import functional_call

from skforml import FORMLClassifier
from skforml.engines._base import (
    ENGINES,
    choose_engine,
    per_row_loss,
    run_engine,
)
from skforml.fairness._objectives import make_meta_loss


def meta_objective(module, w, X, y, validation, meta_loss):
    """L_f at the lookahead parameters, written out independently."""
    params = lookahead(module, w, X, y)
    X_val, y_val, cells = validation
    module.eval()
    out = functional_call(module, params, (X_val,))
    module.train()
    return meta_loss(nn.functional.cross_entropy(out, y_val, reduction="none"), cells)


def finite_difference_gradient(module, w, *args, eps=1e-6):
    grad = torch.zeros_like(w)
    for j in range(len(w)):
        step = torch.zeros_like(w)
        step[j] = eps
        plus = meta_objective(module, w + step, *args).item()
        minus = meta_objective(module, w - step, *args).item()
        grad[j] = (plus - minus) / (2 * eps)
    return grad


def engine_gradient(engine, module, w, X, y, validation, meta_loss):
    p = torch.softmax(w, dim=0)
    run = run_engine(engine, module, X, y, LOOKAHEAD_LR, validation, meta_loss)
    d, _ = run.directional_derivatives(p)
    return closed_form_weight_gradient(p, d, LOOKAHEAD_LR)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(
    "meta_loss", ["mean_loss_discrepancy", "max_loss_discrepancy", "cross_entropy"]
)
def test_weight_gradient_matches_finite_differences(engine, meta_loss):
    module = make_mlp(2, seed=0)
    X, y, validation, loss_fn, w = make_problem(1, meta_loss=meta_loss)
    expected = finite_difference_gradient(module, w, X, y, validation, loss_fn)
    got = engine_gradient(engine, module, w, X, y, validation, loss_fn)
    assert expected.abs().max() > 1e-6  # the check is not vacuous
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("n_hidden_layers", [1, 2, 3])
@pytest.mark.parametrize(
    "constraint",
    [
        "true_positive_rate_parity",
        "equalized_odds",
        "error_rate_parity",
        "false_positive_rate_parity",
    ],
)
@pytest.mark.parametrize("meta_loss", ["mean_loss_discrepancy", "max_loss_discrepancy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_equals_unrolled(n_hidden_layers, constraint, meta_loss, seed):
    n_classes = (
        2
        if constraint in ("true_positive_rate_parity", "false_positive_rate_parity")
        else 3
    )
    module = make_mlp(n_hidden_layers, seed=seed, n_classes=n_classes)
    X, y, validation, loss_fn, w = make_problem(
        seed, constraint, meta_loss, n_train=32, n_val=24, n_classes=n_classes
    )
    reference = engine_gradient("unrolled", module, w, X, y, validation, loss_fn)
    for engine in ("linear", "jvp"):
        got = engine_gradient(engine, module, w, X, y, validation, loss_fn)
        torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-10)
    # The weight gradient of a softmax sums to zero over the batch.
    assert abs(reference.sum().item()) < 1e-12


def test_final_update_gradient_is_weighted_training_gradient():
    module = make_mlp(2, seed=3)
    X, y, validation, loss_fn, w = make_problem(3)
    p = torch.softmax(w, dim=0)
    expected = torch.autograd.grad(
        (p * per_row_loss(module(X), y)).sum(), list(module.parameters())
    )
    for engine in sorted(ENGINES):
        run = run_engine(engine, module, X, y, LOOKAHEAD_LR, validation, loss_fn)
        run.directional_derivatives(torch.full_like(p, 1 / len(p)))
        module.zero_grad(set_to_none=True)
        run.apply(p)
        for param, grad in zip(module.parameters(), expected):
            torch.testing.assert_close(param.grad, grad)


class LayerNormDropoutNet(nn.Module):
    """Not a pure linear network (LayerNorm parameters) and with dropout."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(5, 8),
            nn.LayerNorm(8),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(8, 3),
        )

    def forward(self, X):
        return self.body(X)


def test_jvp_engine_replays_dropout_masks():
    torch.manual_seed(0)
    module = LayerNormDropoutNet().double()
    assert choose_engine(module, "closed_form") == "jvp"
    X, y, validation, loss_fn, w = make_problem(4)
    gradients = {}
    for engine in ("jvp", "unrolled"):
        torch.manual_seed(123)  # same dropout mask for both training forwards
        gradients[engine] = engine_gradient(
            engine, module, w, X, y, validation, loss_fn
        )
    torch.testing.assert_close(
        gradients["jvp"], gradients["unrolled"], rtol=1e-5, atol=1e-10
    )


def test_shared_linear_layer_falls_back_to_jvp():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(5, 5)
            self.out = nn.Linear(5, 3)

        def forward(self, X):
            return self.out(torch.tanh(self.hidden(torch.tanh(self.hidden(X)))))

    torch.manual_seed(0)
    module = Tied().double()
    X, y, validation, loss_fn, w = make_problem(5)
    run = run_engine("linear", module, X, y, LOOKAHEAD_LR, validation, loss_fn)
    assert not isinstance(run, ENGINES["linear"])
    expected = engine_gradient("unrolled", module, w, X, y, validation, loss_fn)
    got = engine_gradient("linear", module, w, X, y, validation, loss_fn)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-10)


def test_batch_norm_falls_back_to_unrolled_with_warning():
    module = nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)
    )
    with pytest.warns(UserWarning, match="BatchNorm"):
        assert choose_engine(module, "closed_form") == "unrolled"
    module.eval()
    assert choose_engine(module, "closed_form") == "jvp"


def test_validation_forward_leaves_batch_norm_statistics_alone():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)
    ).double()
    X, y, validation, loss_fn, w = make_problem(6)
    run = run_engine("unrolled", module, X, y, LOOKAHEAD_LR, validation, loss_fn)
    after_training_forward = module[1].running_mean.clone()
    run.directional_derivatives(torch.softmax(w, 0))
    torch.testing.assert_close(module[1].running_mean, after_training_forward)


def test_training_trajectories_agree_between_closed_form_and_unrolled():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    groups = (X[:, 1] > 0.3).astype(int)
    fits = [
        FORMLClassifier(
            meta_gradient=mg, max_epochs=3, batch_size=32, random_state=0
        ).fit(X, y, sensitive_features=groups)
        for mg in ("closed_form", "unrolled")
    ]
    assert fits[0].net_.engine_ == "linear" and fits[1].net_.engine_ == "unrolled"
    np.testing.assert_allclose(
        fits[0].sample_weights_, fits[1].sample_weights_, rtol=1e-4
    )
    assert np.std(fits[0].sample_weights_[~fits[0].validation_mask_]) > 1e-2
    np.testing.assert_allclose(
        fits[0].predict_proba(X), fits[1].predict_proba(X), atol=1e-5
    )


class SequenceNet(nn.Module):
    """Linear layers applied at every position of a (rows, positions, features)
    input, then pooled: the linear engine sums contributions over positions."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(5, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X.view(len(X), 4, 5)))).mean(dim=1)


def test_linear_engine_handles_positions():
    torch.manual_seed(0)
    module = SequenceNet().double()
    X, y, validation, loss_fn, w = make_problem(7, n_train=10)
    X = X.repeat(1, 4) + 0.1 * torch.randn(10, 20, dtype=torch.float64)
    X_val, y_val, cells = validation
    X_val = X_val.repeat(1, 4)
    validation = (X_val, y_val, cells)
    run = run_engine("linear", module, X, y, LOOKAHEAD_LR, validation, loss_fn)
    assert isinstance(run, ENGINES["linear"]) and run.positions == [4, 4]
    expected = finite_difference_gradient(module, w, X, y, validation, loss_fn)
    got = engine_gradient("linear", module, w, X, y, validation, loss_fn)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


# ----------------------------------------------- demographic parity surrogate


def dp_objective(module, w, X, y, validation, worst_group_lift):
    """MeanLossD of the groups' mean (1 - P(positive)) after the lookahead,
    written out independently of skforml's objective."""
    params = lookahead(module, w, X, y)
    X_val, _, groups = validation
    values = 1 - torch.softmax(functional_call(module, params, (X_val,)), 1)[:, 1]
    overall = values.mean()
    means = torch.stack([values[groups == g].mean() for g in range(2)])
    objective = (means - overall).abs().mean()
    return objective + worst_group_lift * torch.relu(means - overall.detach()).mean()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_demographic_parity_gradient_matches_finite_differences(engine):
    # The lift's stop-gradient has no finite-difference counterpart: lift=0.
    lift = 0.0
    from skforml.fairness._base import make_constraint
    from skforml.fairness._objectives import MetaObjective

    module = make_mlp(1, seed=3, n_classes=2)
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(2, (10,), generator=gen)
    X_val = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    y_val = torch.randint(2, (12,), generator=gen)
    groups = torch.arange(12) % 2
    spec = build_cell_spec(
        "demographic_parity",
        group_names=[0, 1],
        class_names=[0, 1],
        groups_are_classes=False,
        present=np.ones(4, dtype=bool),
    )
    cells = torch.as_tensor(spec.cells((groups * 2 + y_val).numpy()))
    objective = MetaObjective(
        make_meta_loss("mean_loss_discrepancy", spec, "cpu", lift),
        make_constraint("demographic_parity"),
        per_row_loss,
    )
    w = torch.randn(10, generator=gen, dtype=torch.float64)
    validation = (X_val, y_val, cells)
    eps, expected = 1e-6, torch.zeros_like(w)
    for j in range(len(w)):
        step = torch.zeros_like(w)
        step[j] = eps
        plus = dp_objective(module, w + step, X, y, (X_val, y_val, groups), lift)
        minus = dp_objective(module, w - step, X, y, (X_val, y_val, groups), lift)
        expected[j] = (plus - minus).item() / (2 * eps)
    p = torch.softmax(w, dim=0)
    run = run_engine(engine, module, X, y, LOOKAHEAD_LR, validation, objective)
    d, meta_loss = run.directional_derivatives(p)
    got = closed_form_weight_gradient(p, d, LOOKAHEAD_LR)
    assert expected.abs().max() > 1e-6
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    assert meta_loss.item() == pytest.approx(
        dp_objective(module, w, X, y, (X_val, y_val, groups), lift).item()
    )


# ------------------------------------------------------------- convolutions


class TinyConvNet(nn.Module):
    """Two convolutions (padding, stride, dilation), pooling, a linear head."""

    def __init__(self, stride=1, dilation=1, bias=True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1, bias=bias),
            nn.Tanh(),
            nn.Conv2d(3, 4, 2, stride=stride, dilation=dilation, bias=bias),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.LazyLinear(3),
        )

    def forward(self, X):
        return self.body(X)


def conv_problem(seed, stride=1, dilation=1, bias=True):
    torch.manual_seed(seed)
    module = TinyConvNet(stride, dilation, bias).double()
    X, y, (X_val, y_val, cells), loss_fn, w = make_problem(seed, n_train=10)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(10, 2, 6, 6, generator=gen, dtype=torch.float64)
    X_val = torch.randn(len(y_val), 2, 6, 6, generator=gen, dtype=torch.float64)
    module(X)  # materialise the lazy layer
    return module, w, X, y, (X_val, y_val, cells), loss_fn


@pytest.mark.parametrize(
    "stride, dilation, bias", [(1, 1, True), (2, 1, True), (1, 2, False)]
)
def test_conv_closed_form_matches_finite_differences(stride, dilation, bias):
    module, w, *args = conv_problem(8, stride, dilation, bias)
    assert choose_engine(module) == "linear"
    run = run_engine("linear", module, *args[:2], LOOKAHEAD_LR, *args[2:])
    assert isinstance(run, ENGINES["linear"])
    assert run.positions == [1, 1, 1]  # convolutions sum over their pixels
    expected = finite_difference_gradient(module, w, *args)
    got = engine_gradient("linear", module, w, *args)
    assert expected.abs().max() > 1e-6
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    unrolled = engine_gradient("unrolled", module, w, *args)
    torch.testing.assert_close(got, unrolled, rtol=1e-5, atol=1e-10)


def test_conv_closed_form_final_update_is_weighted_gradient():
    module, w, X, y, validation, loss_fn = conv_problem(9)
    p = torch.softmax(w, dim=0)
    expected = torch.autograd.grad(
        (p * per_row_loss(module(X), y)).sum(), list(module.parameters())
    )
    run = run_engine("linear", module, X, y, LOOKAHEAD_LR, validation, loss_fn)
    run.directional_derivatives(p)
    module.zero_grad(set_to_none=True)
    run.apply(p)
    for param, grad in zip(module.parameters(), expected):
        torch.testing.assert_close(param.grad, grad)


def test_grouped_or_same_padded_conv_uses_jvp():
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten())
    same = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same"), nn.Flatten())
    circular = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"))
    for module in (grouped, same, circular):
        assert choose_engine(module) == "jvp"
