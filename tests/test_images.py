"""Images end to end: (N, C, H, W) arrays through a CNN, with FORML's meta step."""

import numpy as np
import pytest
import torch
from torch import nn

from skforml import FORMLClassifier, ReweightedClassifier, SmallCNN


@pytest.fixture(scope="module")
def images():
    """300 noisy 8x8 images of 3 classes (a bright pixel on the diagonal)."""
    rng = np.random.RandomState(0)
    y = rng.randint(3, size=300)
    X = rng.normal(scale=0.5, size=(300, 1, 8, 8)).astype(np.float32)
    X[np.arange(300), 0, 2 * y + 1, 2 * y + 1] += 2.0
    groups = (rng.rand(300) < 0.3).astype(int)
    return X, y, groups


CNN = {
    "module": SmallCNN,
    "module_params": {"n_classes": 3, "channels": (4, 8)},
    "max_epochs": 6,
    "batch_size": 32,
    "lr": 1e-2,
}


def test_small_cnn_trains_and_predicts_images(images):
    X, y, groups = images
    clf = FORMLClassifier(**CNN, random_state=0).fit(X, y, sensitive_features=groups)
    assert clf.net_.engine_ == "linear"  # the convolutions' closed form
    assert clf.input_shape_ == (1, 8, 8) and clf.n_features_in_ == 1
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert np.mean(clf.predict(X) == y) > 0.9
    weights = clf.sample_weights_[~clf.validation_mask_]
    assert weights.std() > 1e-3 and np.isclose(weights.mean(), 1)
    with pytest.raises(ValueError, match="rows of shape"):
        clf.predict(X[:, :, :4])


def test_cnn_fit_is_reproducible(images):
    X, y, groups = images
    fits = [
        FORMLClassifier(**{**CNN, "max_epochs": 2}, random_state=3).fit(
            X, y, sensitive_features=groups
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].sample_weights_, fits[1].sample_weights_)
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_cnn_engines_agree_on_a_fit(images):
    X, y, groups = images
    params = {**CNN, "max_epochs": 2, "random_state": 0}
    linear, jvp = (
        FORMLClassifier(**params, meta_gradient=engine).fit(
            X, y, sensitive_features=groups
        )
        for engine in ("auto", "jvp")
    )
    assert linear.net_.engine_ == "linear" and jvp.net_.engine_ == "jvp"
    np.testing.assert_allclose(
        linear.sample_weights_, jvp.sample_weights_, rtol=1e-3, atol=1e-4
    )


class DropoutCNN(nn.Module):
    """A CNN with dropout and a LayerNorm: the jvp engine's case."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Flatten(),
            nn.LayerNorm(256),
            nn.Linear(256, 3),
        )

    def forward(self, X):
        return self.body(X)


def test_cnn_instance_with_dropout_uses_jvp(images):
    X, y, groups = images
    clf = FORMLClassifier(
        DropoutCNN(), max_epochs=2, batch_size=64, random_state=0
    ).fit(X, y, sensitive_features=groups)
    assert clf.net_.engine_ == "jvp"
    assert clf.predict(X).shape == (300,)


def test_baseline_trains_a_cnn_on_images(images):
    X, y, groups = images
    clf = ReweightedClassifier(**CNN, weighting="proportion", random_state=0).fit(
        X, y, sensitive_features=groups
    )
    assert np.mean(clf.predict(X) == y) > 0.8


def test_builtin_mlp_rejects_images_with_advice(images):
    X, y, _ = images
    with pytest.raises(ValueError, match="flatten X"):
        FORMLClassifier(max_epochs=1).fit(X, y)


def test_small_cnn_accepts_larger_images_and_channels():
    module = SmallCNN(n_classes=4, in_channels=3)
    assert module(torch.zeros(2, 3, 28, 28)).shape == (2, 4)
