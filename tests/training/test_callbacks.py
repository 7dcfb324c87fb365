"""Validation metrics, the tolerance controller and epoch selection."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Checkpoint, EarlyStopping, EpochScoring

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification
from skforml.fairness._base import make_constraint
from skforml.training._callbacks import MAX_STRENGTH, MIN_STRENGTH, epoch_score

SMALL = {"hidden_layer_sizes": (16,), "batch_size": 64, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(n_samples=1500, random_state=0)
    return X, y, groups


def test_history_has_validation_metrics(data):
    X, y, groups = data
    clf = FORMLClassifier(max_epochs=3, **SMALL).fit(X, y, sensitive_features=groups)
    for key in ("valid_loss", "valid_acc", "valid_disparity", "meta_loss"):
        values = clf.history_[:, key]
        assert len(values) == 3 and np.all(np.isfinite(values)), key
    # valid_disparity is the constraint's disparity of the validation rows.
    mask = clf.monitor_mask_
    expected = make_constraint("equalized_odds").disparity(
        y[mask], clf.predict(X[mask]), groups[mask]
    )
    assert clf.history_[-1, "valid_disparity"] == pytest.approx(expected)


def test_valid_acc_is_weighted_to_the_training_distribution(data):
    X, y, groups = data
    clf = FORMLClassifier(max_epochs=2, **SMALL).fit(X, y, sensitive_features=groups)
    mask, train = clf.monitor_mask_, ~clf.validation_mask_
    strata = groups * 2 + y
    train_share = np.bincount(strata[train], minlength=4) / train.sum()
    valid_share = np.bincount(strata[mask], minlength=4) / mask.sum()
    weights = (train_share / valid_share)[strata[mask]]
    correct = clf.predict(X[mask]) == y[mask]
    assert clf.history_[-1, "valid_acc"] == pytest.approx(
        np.average(correct, weights=weights)
    )
    # The balanced validation rows are not distributed like the training rows.
    assert not np.allclose(train_share, valid_share, atol=0.02)


def test_skorch_callbacks_work_with_their_defaults(data, tmp_path):
    X, y, groups = data
    callbacks = [
        EarlyStopping(),
        Checkpoint(dirname=str(tmp_path)),
        EpochScoring("accuracy"),
    ]
    clf = FORMLClassifier(max_epochs=4, callbacks=callbacks, **SMALL)
    clf.fit(X, y, sensitive_features=groups)
    assert "valid_loss_best" in clf.history_[-1]
    assert (tmp_path / "params.pt").exists()
    # EpochScoring scores the (unweighted) validation rows.
    mask = clf.monitor_mask_
    accuracy = np.mean(clf.predict(X[mask]) == y[mask])
    assert clf.history_[-1, "accuracy"] == pytest.approx(accuracy)


def test_early_stopping_stops(data):
    X, y, groups = data
    stop = EarlyStopping(patience=1, threshold=10.0)  # no epoch improves by 10
    clf = FORMLClassifier(max_epochs=10, callbacks=[stop], **SMALL)
    clf.fit(X, y, sensitive_features=groups)
    assert len(clf.history_) == 2


def test_epoch_score_orders_epochs():
    within = {"valid_acc": 0.8, "valid_disparity": 0.02}
    better = {"valid_acc": 0.9, "valid_disparity": 0.04}
    outside = {"valid_acc": 0.95, "valid_disparity": 0.2}
    less_outside = {"valid_acc": 0.5, "valid_disparity": 0.1}
    assert epoch_score(better, 0.05) > epoch_score(within, 0.05)
    assert epoch_score(within, 0.05) > epoch_score(outside, 0.05)
    assert epoch_score(less_outside, 0.05) > epoch_score(outside, 0.05)
    assert epoch_score(outside, None) > epoch_score(better, None)


def test_tolerance_selects_the_best_epoch_within_it(data, tmp_path):
    X, y, groups = data
    tolerance = 0.2
    # A checkpoint of every epoch, to compare with the selected one.
    every = Checkpoint(
        monitor=None,
        dirname=str(tmp_path),
        f_params="params_{last_epoch[epoch]}.pt",
        f_optimizer=None,
        f_criterion=None,
        f_history=None,
    )
    clf = FORMLClassifier(
        max_epochs=12,
        tolerance=tolerance,
        constraint="true_positive_rate_parity",
        callbacks=[every],
        **SMALL,
    ).fit(X, y, sensitive_features=groups)
    disparity = np.array(clf.history_[:, "valid_disparity"])
    accuracy = np.array(clf.history_[:, "valid_acc"])
    assert np.any(disparity > tolerance), "the check is vacuous"
    # Candidates: from the end of the warm-up (a quarter of the epochs) on.
    within = (disparity <= tolerance) & (np.arange(1, 13) >= 3)
    assert within.any()
    expected = np.flatnonzero(within)[np.argmax(accuracy[within])] + 1
    assert clf.best_epoch_ == expected
    # The network is that epoch's: its checkpoint predicts the same.
    net = clf.net_
    state = net.module_.state_dict()
    net.load_params(f_params=str(tmp_path / f"params_{expected}.pt"))
    torch.testing.assert_close(net.module_.state_dict(), state)
    mask = clf.monitor_mask_
    measured = make_constraint("true_positive_rate_parity").disparity(
        y[mask], clf.predict(X[mask]), groups[mask]
    )
    assert measured == pytest.approx(disparity[expected - 1])
    assert measured <= tolerance


def test_unreachable_tolerance_selects_the_least_disparity(data):
    X, y, groups = data
    clf = FORMLClassifier(max_epochs=8, tolerance=1e-9, **SMALL)
    clf.fit(X, y, sensitive_features=groups)
    disparity = np.array(clf.history_[:, "valid_disparity"])
    assert disparity.min() > 1e-9
    # The first quarter of the epochs is the warm-up.
    assert clf.best_epoch_ == np.argmin(disparity[1:]) + 2


def test_controller_raises_strength_above_the_tolerance_and_lowers_it_below(data):
    X, y, groups = data
    # The paper's meta-losses hold no accuracy term: the controller scales
    # their weight steps (the constrained objective moves its multipliers).
    paper = {**SMALL, "meta_loss": "mean_loss_discrepancy"}
    high = FORMLClassifier(max_epochs=4, tolerance=1e-6, **paper)
    high.fit(X, y, sensitive_features=groups)
    strength = np.array(high.history_[:, "meta_strength"])
    assert np.all(np.diff(strength) >= 0) and strength[-1] > 1
    assert strength.max() <= MAX_STRENGTH
    low = FORMLClassifier(max_epochs=4, tolerance=10.0, **paper)
    low.fit(X, y, sensitive_features=groups)
    strength = np.array(low.history_[:, "meta_strength"])
    assert np.all(np.diff(strength) <= 0) and strength[-1] < 1
    assert strength.min() >= MIN_STRENGTH


def test_selected_epoch_weights_are_consistent(data):
    X, y, groups = data
    clf = FORMLClassifier(max_epochs=6, tolerance=1e-9, meta_lr=0.02, **SMALL)
    clf.fit(X, y, sensitive_features=groups)
    assert clf.best_epoch_ < 6, "pick data where the last epoch is not the best"
    # sample_weights_ are those the network of the selected epoch trained with.
    again = FORMLClassifier(max_epochs=clf.best_epoch_, meta_lr=0.02, **SMALL)
    again.set_params(tolerance=1e-9).fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(again.sample_weights_, clf.sample_weights_, rtol=1e-5)


def test_demographic_parity_lowers_the_selection_rate_gap():
    X, y, groups = make_biased_classification(n_samples=3000, random_state=1)
    params = {**SMALL, "max_epochs": 15}

    def gap(clf):
        y_pred = clf.predict(X)
        return abs(y_pred[groups == 0].mean() - y_pred[groups == 1].mean())

    uniform = FORMLClassifier(meta_lr=0.0, **params)
    uniform.fit(X, y, sensitive_features=groups)
    fair = FORMLClassifier(constraint="demographic_parity", **params)
    fair.fit(X, y, sensitive_features=groups)
    assert gap(fair) < 0.75 * gap(uniform)
