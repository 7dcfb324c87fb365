"""Ctrl-C during ``fit``, ``warm_start``, and the caller's ``sample_weight``.

Interruption: skorch ends training on ``KeyboardInterrupt`` and keeps the
model fitted so far; ``fit`` then still collects the fitted attributes, so
the model predicts and ``sample_weights_`` are the weights learned so far.
``warm_start=True`` continues that training: the network, its optimizer and
the weight logits carry on from where they were.

Caller weights: a batch's weights are ``softmax(w[B] + log s[B])``, so the
learned weights multiply the caller's ``sample_weight`` ``s`` (a constant
``s`` changes nothing), and a row of weight 0 has weight 0 in every batch and
in ``sample_weights_``: its loss never enters a gradient.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification

SMALL = {"batch_size": 32, "hidden_layer_sizes": (8,), "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(
        n_samples=300, n_features=4, minority_proportion=0.3, random_state=1
    )
    return X, y, groups


class InterruptAt(Callback):
    """Raise KeyboardInterrupt (Ctrl-C) once, at the end of epoch ``epoch``,
    or after batch ``batch`` of that epoch."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch

    def initialize(self):
        self.fired_ = getattr(self, "fired_", False)
        self.batches_ = 0
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = 0

    def on_batch_end(self, net, training=True, **kwargs):
        self.batches_ += training
        if (
            self.batch is not None
            and not self.fired_
            and len(net.history) == self.epoch
            and self.batches_ == self.batch
        ):
            self.fired_ = True
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and not self.fired_ and len(net.history) == self.epoch:
            self.fired_ = True
            raise KeyboardInterrupt


class RecordLogits(Callback):
    """Keep a copy of the weight logits when training begins."""

    def on_train_begin(self, net, **kwargs):
        self.at_begin_ = net.weighting_.logits.clone()
        self.steps_at_begin_ = net.weighting_.n_steps


def weights_so_far(model):
    return model.sample_weights_[~model.validation_mask_]


# ------------------------------------------------------------- interruption


def test_ctrl_c_at_epoch_end_keeps_a_usable_model(data):
    X, y, groups = data
    model = FORMLClassifier(
        **SMALL, max_epochs=5, meta_lr=0.05, callbacks=[InterruptAt(2)]
    )
    assert model.fit(X, y, sensitive_features=groups) is model
    assert len(model.history_) == 2
    assert model.history_[-1, "epoch"] == 2
    assert len(model.history_[:, "weight_ess"]) == 2
    proba = model.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= set(model.classes_)
    weights = weights_so_far(model)
    assert np.isfinite(weights).all()
    assert weights.std() > 1e-3, "the weights learned so far are lost"
    np.testing.assert_allclose(weights.mean(), 1.0, rtol=1e-5)

    # The weights and model are exactly those of a 2-epoch fit.
    two_epochs = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.05).fit(
        X, y, sensitive_features=groups
    )
    np.testing.assert_array_equal(model.sample_weights_, two_epochs.sample_weights_)
    np.testing.assert_array_equal(proba, two_epochs.predict_proba(X))


def test_ctrl_c_mid_epoch_keeps_a_usable_model(data):
    X, y, groups = data
    model = FORMLClassifier(
        **SMALL, max_epochs=5, meta_lr=0.05, callbacks=[InterruptAt(2, batch=3)]
    )
    model.fit(X, y, sensitive_features=groups)
    # Epoch 2 stopped after its third batch: its row has no epoch-end entries.
    assert len(model.history_) == 2
    assert len(model.history_[-1, "batches"]) == 3
    assert np.isfinite(model.predict_proba(X)).all()
    weights = weights_so_far(model)
    assert np.isfinite(weights).all() and weights.std() > 1e-3
    train_batches = [b for b in model.history_[0, "batches"] if "train_loss" in b]
    assert model.net_.weighting_.n_steps == len(train_batches) + 3


def test_warm_start_after_ctrl_c_continues_weights_and_network(data):
    X, y, groups = data
    record = RecordLogits()
    model = FORMLClassifier(
        **SMALL, max_epochs=5, meta_lr=0.05, callbacks=[InterruptAt(2), record]
    )
    model.fit(X, y, sensitive_features=groups)
    logits = model.net_.weighting_.logits.clone()
    steps = model.net_.weighting_.n_steps
    weights = model.sample_weights_.copy()
    module = copy.deepcopy(model.net_.module_.state_dict())
    adam_steps = next(iter(model.net_.optimizer_.state.values()))["step"].item()

    model.set_params(warm_start=True)
    model.fit(X, y, sensitive_features=groups)
    # Training resumed from the interrupted state, not from scratch ...
    torch.testing.assert_close(record.at_begin_, logits, rtol=0, atol=0)
    assert record.steps_at_begin_ == steps
    assert model.net_.weighting_.n_steps > steps
    assert next(iter(model.net_.optimizer_.state.values()))["step"].item() > (
        adam_steps
    )
    # ... for the epochs of max_epochs, appended to the history ...
    assert len(model.history_) == 2 + 5
    assert list(model.history_[:, "epoch"]) == list(range(1, 8))
    # ... and both the weights and the network kept changing.
    assert not np.array_equal(model.sample_weights_, weights)
    assert np.isfinite(model.sample_weights_).all()
    np.testing.assert_array_equal(model.sample_weights_ == 0, weights == 0)
    changed = [
        not torch.equal(value, model.net_.module_.state_dict()[name])
        for name, value in module.items()
    ]
    assert all(changed)


def test_warm_start_weights_differ_from_a_fresh_fit(data):
    """Continuing is not starting over: the logits begin where they ended."""
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.05)
    model.fit(X, y, sensitive_features=groups)
    model.set_params(warm_start=True).fit(X, y, sensitive_features=groups)
    fresh = FORMLClassifier(**SMALL, max_epochs=2, meta_lr=0.05).fit(
        X, y, sensitive_features=groups
    )
    assert len(model.history_) == 4
    spread = np.std(weights_so_far(model))
    assert spread > np.std(weights_so_far(fresh)), (
        "after 4 epochs the weights should have moved further than after 2"
    )


def test_warm_start_runs_the_current_max_epochs(data):
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=3).fit(X, y, sensitive_features=groups)
    model.set_params(warm_start=True, max_epochs=1)
    model.fit(X, y, sensitive_features=groups)
    assert len(model.history_) == 3 + 1


def test_fit_after_ctrl_c_without_warm_start_starts_over(data):
    X, y, groups = data
    model = FORMLClassifier(
        **SMALL, max_epochs=3, meta_lr=0.05, callbacks=[InterruptAt(1)]
    )
    model.fit(X, y, sensitive_features=groups)
    assert len(model.history_) == 1
    model.fit(X, y, sensitive_features=groups)  # warm_start=False
    assert len(model.history_) == 3
    reference = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.05).fit(
        X, y, sensitive_features=groups
    )
    np.testing.assert_array_equal(model.sample_weights_, reference.sample_weights_)


# ---------------------------------------------------- caller's sample_weight


def zero_weight_data(data, share=0.4, seed=0):
    """Weights 0 on ``share`` of the rows, random positive weights elsewhere."""
    X, y, groups = data
    rng = np.random.RandomState(seed)
    weights = rng.uniform(0.5, 2.0, size=len(y))
    zero = rng.rand(len(y)) < share
    weights[zero] = 0.0
    return weights, zero


def with_garbage(X, rows, seed=1):
    """``X`` with the features of ``rows`` replaced by noise of another scale."""
    garbage = X.copy()
    garbage[rows] = np.random.RandomState(seed).normal(scale=5.0, size=X[rows].shape)
    return garbage


def test_zero_weight_rows_have_zero_learned_weight(data):
    X, y, groups = data
    weights, zero = zero_weight_data(data)
    model = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.1).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    assert np.all(model.sample_weights_[zero] == 0)
    train = ~model.validation_mask_
    np.testing.assert_allclose(model.sample_weights_[train].mean(), 1.0, rtol=1e-5)
    assert np.all(model.sample_weights_[train & ~zero] > 0)
    # Their per-row weighted loss is 0 as well.
    assert np.all(model.weighted_loss_ema_[train & zero] == 0)


def zero_weight_training_rows(data, weights, meta_lr):
    """Rows of weight 0 that ``fit`` keeps for training (the split depends on
    y, the groups and the seed only, so it is the same for every ``X``)."""
    X, y, groups = data
    model = FORMLClassifier(**SMALL, max_epochs=1, meta_lr=meta_lr).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    rows = np.flatnonzero((weights == 0) & ~model.validation_mask_)
    assert len(rows) > 20
    return rows


def fits_with_garbage(data, meta_lr):
    """Two fits whose X differ only on training rows of weight 0."""
    X, y, groups = data
    weights, _ = zero_weight_data(data)
    rows = zero_weight_training_rows(data, weights, meta_lr)
    fits = [
        FORMLClassifier(**SMALL, max_epochs=3, meta_lr=meta_lr).fit(
            features, y, sensitive_features=groups, sample_weight=weights
        )
        for features in (X, with_garbage(X, rows))
    ]
    np.testing.assert_array_equal(fits[0].validation_mask_, fits[1].validation_mask_)
    return fits


def test_zero_weight_rows_never_train_the_network(data):
    """meta_lr=0 (plain weighted training): the features of zero-weight rows
    can be anything, the fitted network is bit for bit the same."""
    X, _, _ = data
    first, second = fits_with_garbage(data, meta_lr=0.0)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    np.testing.assert_array_equal(first.sample_weights_, second.sample_weights_)


def test_zero_weight_rows_never_train_nor_steer_the_weights(data):
    """With FORML's meta step, garbage features of zero-weight training rows
    change neither the network nor any learned weight."""
    X, _, _ = data
    first, second = fits_with_garbage(data, meta_lr=0.1)
    np.testing.assert_array_equal(first.sample_weights_, second.sample_weights_)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_zero_weight_rows_may_serve_as_validation_rows(data):
    """The split ignores sample_weight: a row of weight 0 can be drawn for
    validation, where the meta-loss counts it like any validation row
    (validation rows are unweighted). Documented in input_validation.rst."""
    X, y, groups = data
    weights, zero = zero_weight_data(data, share=0.5)
    model = FORMLClassifier(**SMALL, max_epochs=1).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    unweighted = FORMLClassifier(**SMALL, max_epochs=1).fit(
        X, y, sensitive_features=groups
    )
    np.testing.assert_array_equal(model.validation_mask_, unweighted.validation_mask_)
    assert np.any(model.validation_mask_ & zero)


def test_batches_of_only_zero_weight_rows_stay_finite(data):
    """Tiny batches where every row has weight 0: no NaN anywhere."""
    X, y, groups = data
    weights, _ = zero_weight_data(data, share=0.7)
    model = FORMLClassifier(
        **{**SMALL, "batch_size": 2}, max_epochs=2, meta_lr=0.1
    ).fit(X, y, sensitive_features=groups, sample_weight=weights)
    assert np.isfinite(model.sample_weights_).all()
    assert np.isfinite(model.predict_proba(X)).all()
    assert np.isfinite(model.history_[:, "train_loss"]).all()


def test_learned_weights_multiply_the_callers(data):
    X, y, groups = data
    weights, zero = zero_weight_data(data, share=0.2)
    # Without the meta step the learned part is uniform: sample_weights_ is
    # the caller's weight, normalised to mean 1 over the training rows.
    plain = FORMLClassifier(**SMALL, max_epochs=1, meta_lr=0.0).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    train = ~plain.validation_mask_
    np.testing.assert_allclose(
        plain.sample_weights_[train], weights[train] / weights[train].mean(), rtol=1e-5
    )
    # With it, sample_weights_ = caller's weight x exp(learned logit), up to
    # one normalising constant.
    model = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.1).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    train = ~model.validation_mask_
    learned = np.exp(model.net_.weighting_.logits.double().numpy())
    product = weights[train] * learned
    np.testing.assert_allclose(
        model.sample_weights_[train], product / product.mean(), rtol=1e-4
    )
    assert learned.std() > 1e-3


def test_constant_sample_weight_changes_nothing(data):
    X, y, groups = data
    reference = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.1).fit(
        X, y, sensitive_features=groups
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled = FORMLClassifier(**SMALL, max_epochs=3, meta_lr=0.1).fit(
            X, y, sensitive_features=groups, sample_weight=np.full(len(y), 2.5)
        )
    np.testing.assert_array_equal(reference.validation_mask_, scaled.validation_mask_)
    np.testing.assert_allclose(
        scaled.sample_weights_, reference.sample_weights_, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        scaled.predict_proba(X), reference.predict_proba(X), rtol=1e-4, atol=1e-6
    )
