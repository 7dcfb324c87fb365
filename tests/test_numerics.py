"""Numerical safety: the learned weights stay finite on hostile settings.

Extreme ``meta_lr``, weight logits far beyond their bound, groups absent from
training batches, constant features, float16/float64 input and badly scaled
features must never give NaN or infinite weights or probabilities. When the
weights do concentrate on few rows, ``WeightCollapseWarning`` says so, and
``history_[:, "weight_ess"]`` reports their effective sample size (Kish's
``(sum w)^2 / (n sum w^2)``) after every epoch.
"""

import warnings

import numpy as np
import pytest
import torch

from skforml import FORMLClassifier, WeightCollapseWarning
from skforml.datasets import make_biased_classification
from skforml.training._callbacks import COLLAPSE_FRACTION
from skforml.weighting._base import LOGIT_BOUND

SMALL = {"batch_size": 32, "hidden_layer_sizes": (8,), "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(
        n_samples=300, n_features=4, minority_proportion=0.3, random_state=2
    )
    return X, y, groups


def check_weights(model, n_epochs=None):
    """Weights finite, non-negative, mean 1 over training rows, 0 elsewhere."""
    weights = model.sample_weights_
    train = ~model.validation_mask_
    assert np.isfinite(weights).all()
    assert (weights >= 0).all()
    assert (weights[~train] == 0).all()
    np.testing.assert_allclose(weights[train].mean(), 1.0, rtol=1e-5)
    logits = model.net_.weighting_.logits
    assert torch.isfinite(logits).all()
    assert logits.abs().max() <= LOGIT_BOUND
    ess = np.asarray(model.history_[:, "weight_ess"], dtype=float)
    if n_epochs is not None:
        assert len(ess) == n_epochs
    assert np.isfinite(ess).all() and ((ess > 0) & (ess <= 1 + 1e-6)).all()
    return weights[train]


def check_proba(model, X):
    proba = model.predict_proba(X)
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    return proba


def kish(weights):
    return weights.sum() ** 2 / (len(weights) * (weights**2).sum())


# ------------------------------------------------------------ extreme steps


def test_extreme_meta_lr_collapses_finitely_and_warns(data):
    X, y, groups = data
    with pytest.warns(WeightCollapseWarning, match="effective sample size"):
        model = FORMLClassifier(**SMALL, max_epochs=4, meta_lr=50.0).fit(
            X, y, sensitive_features=groups
        )
    weights = check_weights(model, n_epochs=4)
    check_proba(model, X)
    ess = np.asarray(model.history_[:, "weight_ess"], dtype=float)
    assert ess.min() < COLLAPSE_FRACTION
    # Steps of 50 logits are clipped to the bound: some weights hit it.
    assert model.net_.weighting_.logits.abs().max() == pytest.approx(LOGIT_BOUND)
    assert weights.max() / weights.min() > 1e6


def test_weight_ess_in_history_is_the_kish_size_of_the_weights(data):
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.1).fit(
        X, y, sensitive_features=groups
    )
    weights = check_weights(model, n_epochs=3)
    assert model.history_[-1, "weight_ess"] == pytest.approx(kish(weights), rel=1e-5)
    assert model.history_[-1, "weight_ess"] < 1.0


def test_default_meta_lr_does_not_warn(data):
    X, y, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightCollapseWarning)
        model = FORMLClassifier(**SMALL, max_epochs=3).fit(
            X, y, sensitive_features=groups
        )
    assert min(model.history_[:, "weight_ess"]) > 0.9


def test_meta_lr_zero_keeps_uniform_weights(data):
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.0).fit(
        X, y, sensitive_features=groups
    )
    weights = check_weights(model, n_epochs=2)
    np.testing.assert_array_equal(weights, np.ones_like(weights))
    assert list(model.history_[:, "weight_ess"]) == [1.0, 1.0]


# ---------------------------------------------------------- huge logits


@pytest.fixture
def one_epoch(data):
    X, y, groups = data
    return FORMLClassifier(**SMALL, max_epochs=1, meta_lr=0.05).fit(
        X, y, sensitive_features=groups
    )


def test_softmax_of_huge_logits_is_finite(one_epoch):
    store = one_epoch.net_.weighting_
    n_rows = len(store.logits)
    sign = torch.where(torch.arange(n_rows) % 2 == 0, 1.0, -1.0)
    store.logits = 1e4 * sign
    weights = store.weights()
    assert torch.isfinite(weights).all()
    # Every +1e4 row shares the weight; the -1e4 rows have none.
    expected = torch.where(sign > 0, n_rows / (sign > 0).sum(), 0.0)
    torch.testing.assert_close(weights, expected)
    assert store.effective_sample_fraction() == pytest.approx(
        (sign > 0).float().mean().item()
    )
    p = store.batch_weights(torch.arange(10))
    assert torch.isfinite(p).all()
    assert p.sum().item() == pytest.approx(1.0)
    store.logits = torch.full((n_rows,), 1e4)
    torch.testing.assert_close(store.weights(), torch.ones(n_rows))


def test_training_brings_huge_logits_back_within_the_bound(data, one_epoch):
    X, y, groups = data
    store = one_epoch.net_.weighting_
    sign = torch.where(torch.arange(len(store.logits)) % 6 == 0, 1.0, -1.0)
    store.logits = 1e4 * sign
    with pytest.warns(WeightCollapseWarning):
        one_epoch.set_params(warm_start=True).fit(X, y, sensitive_features=groups)
    # Every row was in a batch, every update clamps to the bound; a sixth of
    # the rows holds (nearly) all the weight.
    assert store.logits.abs().max() <= LOGIT_BOUND
    assert one_epoch.history_[-1, "weight_ess"] == pytest.approx(1 / 6, abs=0.01)
    check_weights(one_epoch)
    check_proba(one_epoch, X)


# ----------------------------------------------------- data-shaped hazards


@pytest.mark.parametrize("batch_size", [3, 4, 7])
def test_group_absent_from_most_training_batches(batch_size):
    """A 4% minority: most batches of a few rows have none of it; a last
    batch may hold a single row."""
    X, y, groups = make_biased_classification(
        n_samples=500, n_features=3, minority_proportion=0.12, random_state=3
    )
    model = FORMLClassifier(
        **{**SMALL, "batch_size": batch_size},
        max_epochs=2,
        meta_lr=0.2,
        min_group_samples=2,
    ).fit(X, y, sensitive_features=groups)
    check_weights(model, n_epochs=2)
    check_proba(model, X)
    train = ~model.validation_mask_
    minority_share = (groups[train] == 1).mean()
    assert (1 - minority_share) ** batch_size > 0.5  # most batches lack it


# Large on purpose: FeatureScaleWarning is tested in test_validation.py.
@pytest.mark.filterwarnings("ignore::skforml.FeatureScaleWarning")
@pytest.mark.parametrize("value", [0.0, 3.0, 1e4])
def test_constant_feature(data, value):
    X, y, groups = data
    X = X.copy()
    X[:, 1] = value
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
        X, y, sensitive_features=groups
    )
    check_weights(model, n_epochs=2)
    check_proba(model, X)


def test_all_features_constant(data):
    X, y, groups = data
    constant = np.ones_like(X)
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
        constant, y, sensitive_features=groups
    )
    check_weights(model, n_epochs=2)
    proba = check_proba(model, constant)
    # Every row looks the same to the network.
    np.testing.assert_allclose(proba, proba[:1].repeat(len(X), axis=0))


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float16_and_float64_input_train_as_float32(data, dtype):
    X, y, groups = data
    X = X.astype(dtype)
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
        X, y, sensitive_features=groups
    )
    as_float32 = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
        X.astype(np.float32), y, sensitive_features=groups
    )
    check_weights(model, n_epochs=2)
    np.testing.assert_array_equal(model.sample_weights_, as_float32.sample_weights_)
    proba = check_proba(model, X)
    np.testing.assert_array_equal(proba, as_float32.predict_proba(X))


# Large on purpose: FeatureScaleWarning is tested in test_validation.py.
@pytest.mark.filterwarnings("ignore::skforml.FeatureScaleWarning")
@pytest.mark.parametrize("scale", [1e-6, 1e6, 1e10])
def test_badly_scaled_features(data, scale):
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
        X * scale, y, sensitive_features=groups
    )
    check_weights(model, n_epochs=2)
    check_proba(model, X * scale)


# Large on purpose: FeatureScaleWarning is tested in test_validation.py.
@pytest.mark.filterwarnings("ignore::skforml.FeatureScaleWarning")
def test_features_of_1e15_keep_the_weights_finite(data):
    X, y, groups = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightCollapseWarning)
        model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.1).fit(
            X * 1e15, y, sensitive_features=groups
        )
    check_weights(model, n_epochs=2)
    check_proba(model, X * 1e15)
