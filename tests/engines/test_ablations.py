"""The paper's appendix ablations as FORMLClassifier options.

``weight_map`` (Table 9), ``reverse_lookahead`` (Tables 6-7) and
``lookahead_steps`` (Algorithm 1's "multiple gradient updates").
"""

import numpy as np
import pytest
import torch
from _helpers import LOOKAHEAD_LR, closed_form_weight_gradient, make_mlp, make_problem
from sklearn.datasets import make_classification
from torch import nn
from torch.func import functional_call

from skforml import FORMLClassifier
from skforml.engines._lookahead import lookahead_rate
from skforml.engines._multistep import MultiStep, MultiStepEngine
from skforml.engines._unrolled import UnrolledEngine
from skforml.weighting._base import WEIGHT_MAPS, FORMLWeights, TrainingRows

MAPS = sorted(WEIGHT_MAPS)


def _weights(weight_map, n_rows=50, lookahead_sign=1, sample_weight=None):
    weighting = FORMLWeights(0.1, weight_map, lookahead_sign=lookahead_sign)
    weighting.start(
        TrainingRows(
            y=np.zeros(n_rows, dtype=int),
            groups=np.zeros(n_rows, dtype=int),
            n_classes=2,
            n_groups=1,
            sample_weight=sample_weight,
            rng=np.random.RandomState(0),
        ),
        torch.device("cpu"),
    )
    return weighting


def _literal_weights(weight_map, w):
    """The map written out: f(w) normalised over the rows."""
    f = {
        "softmax": torch.exp(w),
        "logits": w.clamp(min=0),
        "inverse_square_l1": 1 / (1 + w**2),
    }[weight_map]
    return f / f.sum()


# ------------------------------------------------------------------ weight maps


@pytest.mark.parametrize("weight_map", MAPS)
def test_weight_map_starts_uniform(weight_map):
    weighting = _weights(weight_map, 10)
    rows = torch.tensor([4, 0, 9])
    torch.testing.assert_close(weighting.batch_weights(rows), torch.full((3,), 1 / 3))
    torch.testing.assert_close(weighting.weights(), torch.ones(10))
    assert weighting.effective_sample_fraction() == pytest.approx(1.0)


@pytest.mark.parametrize("weight_map", MAPS)
def test_weight_map_batch_weights_sum_to_one_and_follow_the_map(weight_map):
    weighting = _weights(weight_map)
    generator = torch.Generator().manual_seed(0)
    weighting.logits = 1 + torch.randn(50, generator=generator)
    rows = torch.randperm(50, generator=generator)[:16]
    p = weighting.batch_weights(rows)
    assert float(p.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(p, _literal_weights(weight_map, weighting.logits[rows]))
    all_weights = weighting.weights()
    assert float(all_weights.mean()) == pytest.approx(1.0)
    torch.testing.assert_close(
        all_weights, 50 * _literal_weights(weight_map, weighting.logits)
    )
    assert (all_weights >= 0).all()


def test_logits_map_zeroes_negative_parameters_and_inverse_square_shrinks_large():
    logits = _weights("logits", 4)
    logits.logits = torch.tensor([2.0, 1.0, -0.5, 0.0])
    torch.testing.assert_close(
        logits.batch_weights(torch.arange(4)), torch.tensor([2 / 3, 1 / 3, 0, 0])
    )
    inverse = _weights("inverse_square_l1", 3)
    inverse.logits = torch.tensor([0.0, 10.0, -10.0])
    p = inverse.batch_weights(torch.arange(3))
    assert p[0] > 0.98 and p[1] == p[2]


@pytest.mark.parametrize("weight_map", MAPS)
def test_weight_map_keeps_caller_weights_multiplying(weight_map):
    sample_weight = np.array([0.0, 1.0, 2.0, 1.0])
    weighting = _weights(weight_map, 4, sample_weight=sample_weight)
    p = weighting.batch_weights(torch.arange(4))
    torch.testing.assert_close(p, torch.tensor([0.0, 0.25, 0.5, 0.25]))


@pytest.mark.parametrize("weight_map", ["logits", "inverse_square_l1"])
@pytest.mark.parametrize("sign", [1, -1])
def test_ablation_map_step_descends_the_meta_loss_through_the_map(weight_map, sign):
    """The step is along -dL_f/dw, L_f's dependence on p linearised.

    With ``dL_f/dp_j = -sign eta d_j`` the step must be a positive multiple
    of ``-dL_f/dw`` (no row is clipped at this spread of ``d``).
    """
    weighting = _weights(weight_map, 30, lookahead_sign=sign)
    generator = torch.Generator().manual_seed(1)
    weighting.logits = 1 + 0.3 * torch.randn(30, generator=generator)
    rows = torch.arange(5, 25)
    d = 1 + 0.1 * torch.randn(20, generator=generator)
    w = weighting.logits[rows].clone().requires_grad_()
    surrogate = -sign * (_literal_weights(weight_map, w) * d).sum()
    (gradient,) = torch.autograd.grad(surrogate, w)
    before = weighting.logits.clone()
    weighting.update(rows, d, weighting.batch_weights(rows))
    step = (weighting.logits - before)[rows]
    assert gradient.abs().max() > 1e-4
    ratio = step / -gradient
    assert (ratio > 0).all()
    torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio), rtol=1e-3, atol=0)


# ------------------------------------------------------------ reversed lookahead


def _unrolled_weight_gradient(module, w, X, y, validation, meta_loss, eta):
    """dL_f/dw by autograd, for a lookahead theta - eta grad (eta of any sign)."""
    p = torch.softmax(w, dim=0)
    engine = UnrolledEngine(module, X, y, eta, validation, meta_loss)
    d, _ = engine.directional_derivatives(p)
    return closed_form_weight_gradient(p, d, eta)


def test_reversed_lookahead_flips_the_weight_gradient():
    module = make_mlp(2, seed=0)
    X, y, validation, loss_fn, w = make_problem(3)
    eta = 1e-4  # d barely depends on the lookahead: the sign alone flips
    forward = _unrolled_weight_gradient(module, w, X, y, validation, loss_fn, eta)
    reverse = _unrolled_weight_gradient(module, w, X, y, validation, loss_fn, -eta)
    assert forward.abs().max() > 1e-9
    cosine = torch.nn.functional.cosine_similarity(forward, reverse, dim=0)
    assert cosine < -0.999


@pytest.mark.parametrize("reverse", [False, True])
def test_weight_step_descends_the_literal_gradient_either_way(reverse):
    """FORMLWeights' softmax step moves the logits against dL_f/dw."""
    module = make_mlp(1, seed=2)
    X, y, validation, loss_fn, _ = make_problem(4)
    eta = -LOOKAHEAD_LR if reverse else LOOKAHEAD_LR
    weighting = _weights("softmax", len(y), lookahead_sign=-1 if reverse else 1)
    rows = torch.arange(len(y))
    p = weighting.batch_weights(rows).double()
    engine = UnrolledEngine(module, X, y, eta, validation, loss_fn)
    d, _ = engine.directional_derivatives(p)
    gradient = closed_form_weight_gradient(p, d, eta).float()
    before = weighting.logits.clone()
    weighting.update(rows, d.float(), p.float())
    step = weighting.logits - before
    # Uniform p: the literal gradient is -eta/n (d - mean d), the step's
    # direction sign * (d - mean d); clipping keeps the signs.
    assert gradient.abs().max() > 0
    assert torch.equal(torch.sign(step), -torch.sign(gradient))


def test_classifier_reversed_lookahead_negates_the_rate_and_the_step():
    X, y = make_classification(n_samples=200, random_state=0)
    fits = [
        FORMLClassifier(
            max_epochs=2, lookahead_lr=0.3, reverse_lookahead=reverse, random_state=0
        ).fit(X, y)
        for reverse in (False, True)
    ]
    rates = [lookahead_rate(fit.net_.lookahead_lr_, [torch.ones(3)]) for fit in fits]
    assert rates == [0.3, -0.3]
    assert [fit.net_.weighting_.lookahead_sign for fit in fits] == [1, -1]
    assert not np.allclose(fits[0].sample_weights_, fits[1].sample_weights_)


def test_reversed_auto_lookahead_is_negative():
    X, y = make_classification(n_samples=200, random_state=0)
    clf = FORMLClassifier(max_epochs=1, reverse_lookahead=True, random_state=0)
    clf.fit(X, y)
    assert lookahead_rate(clf.net_.lookahead_lr_, [torch.ones(4)]) < 0


# ------------------------------------------------------------ multi-step lookahead


def multistep_objective(module, w, X, y, validation, meta_loss, steps, eta):
    """L_f after ``steps`` SGD steps of the softmax(w)-weighted loss, written out."""
    params = dict(module.named_parameters())
    p = torch.softmax(w, dim=0)
    for _ in range(steps):
        losses = nn.functional.cross_entropy(
            functional_call(module, params, (X,)), y, reduction="none"
        )
        grads = torch.autograd.grad(
            (p * losses).sum(), list(params.values()), create_graph=True
        )
        params = {n: q - eta * g for (n, q), g in zip(params.items(), grads)}
    X_val, y_val, cells = validation
    out = functional_call(module, params, (X_val,))
    return meta_loss(nn.functional.cross_entropy(out, y_val, reduction="none"), cells)


def _finite_differences(objective, w, eps=1e-6):
    grad = torch.zeros_like(w)
    for j in range(len(w)):
        step = torch.zeros_like(w)
        step[j] = eps
        grad[j] = (objective(w + step).item() - objective(w - step).item()) / (2 * eps)
    return grad


@pytest.mark.parametrize("eta", [LOOKAHEAD_LR, -LOOKAHEAD_LR])
@pytest.mark.parametrize("meta_loss", ["mean_loss_discrepancy", "max_loss_discrepancy"])
def test_two_step_engine_matches_finite_differences(eta, meta_loss):
    module = make_mlp(2, seed=0)
    X, y, validation, loss_fn, w = make_problem(1, meta_loss=meta_loss)

    def objective(weights):
        return multistep_objective(
            module, weights, X, y, validation, loss_fn, steps=2, eta=eta
        )

    expected = _finite_differences(objective, w)
    p = torch.softmax(w, dim=0)
    engine = MultiStepEngine(module, X, y, eta, validation, loss_fn, steps=2)
    d, meta_loss_value = engine.directional_derivatives(p)
    got = closed_form_weight_gradient(p, d, eta)
    assert expected.abs().max() > 1e-6
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(meta_loss_value, objective(w).detach())
    # Two steps are not one: the check tells the engines apart.
    one_step = _unrolled_weight_gradient(module, w, X, y, validation, loss_fn, eta)
    assert (one_step - expected).abs().max() > 1e-4


def test_one_step_engine_equals_unrolled():
    module = make_mlp(1, seed=5)
    X, y, validation, loss_fn, w = make_problem(2)
    p = torch.softmax(w, dim=0)
    multi = MultiStepEngine(module, X, y, LOOKAHEAD_LR, validation, loss_fn, steps=1)
    unrolled = UnrolledEngine(module, X, y, LOOKAHEAD_LR, validation, loss_fn)
    torch.testing.assert_close(
        multi.directional_derivatives(p)[0], unrolled.directional_derivatives(p)[0]
    )


def test_multistep_engine_leaves_the_weighted_training_gradient():
    module = make_mlp(1, seed=3)
    X, y, validation, loss_fn, w = make_problem(6)
    p = torch.softmax(w, dim=0)
    engine = MultiStepEngine(module, X, y, LOOKAHEAD_LR, validation, loss_fn, steps=3)
    engine.directional_derivatives(p)
    module.zero_grad()
    engine.apply(p)
    losses = nn.functional.cross_entropy(module(X), y, reduction="none")
    expected = torch.autograd.grad((p * losses).sum(), list(module.parameters()))
    for param, grad in zip(module.parameters(), expected):
        torch.testing.assert_close(param.grad, grad)


def test_classifier_lookahead_steps_selects_the_multistep_engine():
    X, y = make_classification(n_samples=200, random_state=0)
    fits = [
        FORMLClassifier(max_epochs=2, lookahead_steps=steps, random_state=0).fit(X, y)
        for steps in (1, 3)
    ]
    assert fits[0].net_.engine_ == "linear"
    assert fits[1].net_.engine_ == MultiStep(3)
    assert not np.allclose(fits[0].sample_weights_, fits[1].sample_weights_)


@pytest.mark.parametrize(
    "params",
    [{"weight_map": "sigmoid"}, {"lookahead_steps": 0}, {"reverse_lookahead": "yes"}],
)
def test_ablation_parameters_are_validated(params):
    X, y = make_classification(n_samples=60, random_state=0)
    with pytest.raises(ValueError, match=next(iter(params))):
        FORMLClassifier(max_epochs=1, **params).fit(X, y)


@pytest.mark.parametrize("weight_map", ["logits", "inverse_square_l1"])
def test_classifier_weight_map_learns_mean_one_weights(weight_map):
    X, y = make_classification(n_samples=300, random_state=1)
    clf = FORMLClassifier(
        max_epochs=3, meta_lr=0.1, weight_map=weight_map, random_state=0
    ).fit(X, y)
    weights = clf.sample_weights_[~clf.validation_mask_]
    assert weights.mean() == pytest.approx(1.0, rel=1e-4)
    assert weights.std() > 1e-3
