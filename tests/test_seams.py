"""The three extension seams: an engine, a weighting and a constraint of the
caller's own, each passed to the estimators by object or by name."""

import pickle

import numpy as np
import pytest
import torch
from skorch.exceptions import DeviceWarning
from test_gpu import all_tensors, fake_cuda

from skforml import (
    Constraint,
    FORMLClassifier,
    ReweightedClassifier,
    TruePositiveRateParity,
    Weighting,
)
from skforml.datasets import make_biased_classification
from skforml.engines import ENGINES, UnrolledEngine
from skforml.fairness._base import rate_spread

TINY = {
    "max_epochs": 3,
    "batch_size": 32,
    "hidden_layer_sizes": (8,),
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    X, y, s = make_biased_classification(n_samples=400, random_state=0)
    return X, y, s


# ------------------------------------------------------------------ engines


class CountingEngine(UnrolledEngine):
    """The reference engine, counting the batches it runs."""

    name = "test_counting"
    batches = 0

    def __init__(self, *args):
        super().__init__(*args)
        type(self).batches += 1


def test_an_engine_of_the_callers_registers_and_runs_by_name(data):
    X, y, s = data
    assert ENGINES["test_counting"] is CountingEngine
    CountingEngine.batches = 0
    clf = FORMLClassifier(meta_gradient="test_counting", **TINY)
    clf.fit(X, y, sensitive_features=s)
    # Every training batch of every epoch went through it.
    n_train = int((~clf.validation_mask_).sum())
    assert CountingEngine.batches == TINY["max_epochs"] * -(-n_train // 32)
    reference = FORMLClassifier(meta_gradient="unrolled", **TINY)
    reference.fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(clf.sample_weights_, reference.sample_weights_)


def test_an_engine_class_works_as_its_name(data):
    X, y, s = data
    by_class = FORMLClassifier(meta_gradient=CountingEngine, **TINY)
    by_name = FORMLClassifier(meta_gradient="test_counting", **TINY)
    w_class = by_class.fit(X, y, sensitive_features=s).sample_weights_
    w_name = by_name.fit(X, y, sensitive_features=s).sample_weights_
    np.testing.assert_array_equal(w_class, w_name)
    pickle.loads(pickle.dumps(by_class))  # a module-level class pickles


def test_an_unknown_engine_and_a_silent_override_are_errors(data):
    X, y, s = data
    with pytest.raises(ValueError, match="meta_gradient must be a registered"):
        FORMLClassifier(meta_gradient="nope", **TINY).fit(X, y, sensitive_features=s)
    clf = FORMLClassifier(meta_gradient="linear", lookahead_steps=2, **TINY)
    with pytest.raises(ValueError, match="lookahead_steps=2 .* 'unrolled'"):
        clf.fit(X, y, sensitive_features=s)


# --------------------------------------------------------------- weightings


class MinorityTwice(Weighting):
    """Rows of group 1 count twice; it never learns."""

    def __init__(self, factor=2.0):
        self.factor = factor

    def initial_logits(self, rows):
        return np.log(np.where(rows.groups == 1, self.factor, 1.0))


@pytest.mark.parametrize("estimator", [FORMLClassifier, ReweightedClassifier])
def test_a_weighting_instance_trains_through_both_estimators(estimator, data):
    X, y, s = data
    weighting = MinorityTwice()
    clf = estimator(weighting=weighting, **TINY).fit(X, y, sensitive_features=s)
    train = ~clf.validation_mask_
    w = clf.sample_weights_[train]
    ratio = w[s[train] == 1].mean() / w[s[train] == 0].mean()
    assert ratio == pytest.approx(2.0)
    assert not hasattr(weighting, "logits")  # the caller's object is untouched
    assert clf.get_params()["weighting"] is weighting
    assert "meta_strength" not in clf.history_[-1]


class MinorityTwiceScaled(MinorityTwice):
    """A caller's weighting holding a tensor of its own."""

    def start(self, rows, device):
        super().start(rows, device)
        self.scale = torch.ones(rows.n_rows, device=device)


def test_a_weighting_with_cuda_tensors_pickles_to_the_cpu(data):
    X, y, s = data
    clf = FORMLClassifier(weighting=MinorityTwiceScaled(), **TINY)
    clf.fit(X, y, sensitive_features=s)
    expected = clf.predict_proba(X)
    net = clf.net_
    # Fake a CUDA fit: the net's device and the weighting's tensors.
    net.device = "cuda"
    net.weighting_.logits = fake_cuda(net.weighting_.logits)
    net.weighting_.scale = fake_cuda(net.weighting_.scale)
    assert "weighting_" not in net.__getstate__()  # in skorch's mapped blob
    blob = pickle.dumps(clf)
    if torch.cuda.is_available():
        pytest.skip("the CPU-only load needs a machine without CUDA")
    with pytest.raises(RuntimeError, match="CUDA"):
        pickle.loads(pickle.dumps(net.weighting_))  # unmapped, it cannot load
    with pytest.warns(DeviceWarning):
        loaded = pickle.loads(blob)
    tensors = all_tensors(vars(loaded.net_.weighting_))
    assert len(tensors) >= 2
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in tensors)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-6)


# -------------------------------------------------------------- constraints


class TPRParityOfUsers(Constraint):
    """TPR parity, defined outside skforml (here: in a test module)."""

    name = "test_users_tpr_parity"

    def cell_keys(self, group, label, n_classes):
        return TruePositiveRateParity().cell_keys(group, label, n_classes)

    def moment_keys(self, group, label, n_classes):
        return TruePositiveRateParity().moment_keys(group, label, n_classes)

    def disparity(self, y_true, y_pred, groups, sample_weight=None):
        return rate_spread(y_pred == 1, y_true == 1, groups, sample_weight)


def test_a_constraint_of_the_callers_is_accepted_by_name(data):
    X, y, s = data
    by_name = FORMLClassifier(constraint="test_users_tpr_parity", **TINY)
    by_name.fit(X, y, sensitive_features=s)
    builtin = FORMLClassifier(constraint="true_positive_rate_parity", **TINY)
    builtin.fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(by_name.sample_weights_, builtin.sample_weights_)
    assert by_name.history_[:, "valid_disparity"] == pytest.approx(
        builtin.history_[:, "valid_disparity"]
    )
