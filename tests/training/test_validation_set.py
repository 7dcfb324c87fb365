"""A caller's validation set in place of the carved split."""

import numpy as np
import pytest

from skforml import FORMLClassifier, ReweightedClassifier
from skforml.datasets import make_biased_classification


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(n_samples=600, random_state=0)
    return X[:450], y[:450], groups[:450], X[450:], y[450:], groups[450:]


def fit(data, **params):
    X, y, g, X_val, y_val, g_val = data
    clf = FORMLClassifier(max_epochs=3, random_state=0, **params)
    return clf.fit(X, y, sensitive_features=g, validation_set=(X_val, y_val, g_val))


def test_every_row_trains_and_the_weights_move(data):
    clf = fit(data)
    assert not clf.validation_mask_.any()
    assert clf.sample_weights_.shape == (450,)
    np.testing.assert_allclose(clf.sample_weights_.mean(), 1.0, rtol=1e-5)
    assert clf.sample_weights_.std() > 1e-3


def test_the_meta_loss_is_measured_on_the_given_rows(data):
    X, y, g, X_val, y_val, g_val = data
    flipped = (X_val, 1 - y_val, g_val)
    a = fit(data).sample_weights_
    b = (
        FORMLClassifier(max_epochs=3, random_state=0)
        .fit(X, y, sensitive_features=g, validation_set=flipped)
        .sample_weights_
    )
    assert not np.allclose(a, b)


def test_same_seed_same_weights_and_warm_start_reuses_the_set(data):
    X, y, g, *_ = data
    first, second = fit(data), fit(data)
    np.testing.assert_array_equal(first.sample_weights_, second.sample_weights_)
    first.set_params(warm_start=True).fit(X, y, sensitive_features=g)
    assert len(first.history_) == 6


def test_classes_as_groups_take_a_pair(data):
    X, y, _, X_val, y_val, _ = data
    clf = FORMLClassifier(max_epochs=2, random_state=0)
    clf.fit(X, y, validation_set=(X_val, y_val))
    assert not clf.validation_mask_.any()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda d: (d[3], d[4]), TypeError, "validation_set must be a tuple"),
        (lambda d: (d[3][:, :2], d[4], d[5]), ValueError, "validation_set"),
        (lambda d: (d[3], d[4][:10], d[5]), ValueError, "validation_set"),
        (lambda d: (d[3], d[4] + 5, d[5]), ValueError, "labels that y does not"),
        (lambda d: (d[3], d[4], d[5] + 7), ValueError, "groups that"),
        (lambda d: (d[3][:6], d[4][:6], d[5][:6]), ValueError, "min_group_samples"),
    ],
    ids=["pair-with-groups", "features", "length", "labels", "groups", "too-small"],
)
def test_bad_validation_sets_name_the_argument(data, make, error, match):
    X, y, g, *_ = data
    with pytest.raises(error, match=match):
        FORMLClassifier(max_epochs=1, min_group_samples=5).fit(
            X, y, sensitive_features=g, validation_set=make(data)
        )


def test_learning_to_reweight_uses_it_and_other_schemes_ignore_it(data):
    X, y, g, X_val, y_val, g_val = data
    given = (X_val, y_val, g_val)
    l2rw = ReweightedClassifier(
        weighting="learning_to_reweight", max_epochs=2, random_state=0
    ).fit(X, y, sensitive_features=g, validation_set=given)
    assert not l2rw.validation_mask_.any()
    uniform = ReweightedClassifier(max_epochs=2, random_state=0)
    uniform.fit(X, y, sensitive_features=g, validation_set=given)
    np.testing.assert_array_equal(uniform.sample_weights_, np.ones(450))
