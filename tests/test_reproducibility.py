"""Reproducibility: the same ``random_state`` gives the same model and weights.

Bit for bit: across two fits, across a pickle round trip (continuing with
``warm_start`` too), and inside ``GridSearchCV`` whether it runs its fits in
this process (``n_jobs=1``) or in two worker processes (``n_jobs=2``), with
``sensitive_features`` routed to ``fit`` by metadata routing. ``fit`` leaves
the global torch and numpy generators alone.
"""

import pickle

import numpy as np
import pytest
import sklearn
import torch
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification

SMALL = {"max_epochs": 3, "batch_size": 32, "hidden_layer_sizes": (8,)}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(
        n_samples=300, n_features=4, minority_proportion=0.3, random_state=4
    )
    return X, y, groups


def assert_same_fit(a, b, X):
    np.testing.assert_array_equal(a.validation_mask_, b.validation_mask_)
    np.testing.assert_array_equal(a.sample_weights_, b.sample_weights_)
    np.testing.assert_array_equal(a.weighted_loss_ema_, b.weighted_loss_ema_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert history_without_times(a) == history_without_times(b)


def history_without_times(model):
    """The history, batches included, less the wall-clock durations."""
    return [
        {key: value for key, value in epoch.items() if key != "dur"}
        for epoch in model.history_.to_list()
    ]


@pytest.mark.parametrize("meta_gradient", ["closed_form", "unrolled"])
def test_same_random_state_same_model(data, meta_gradient):
    X, y, groups = data
    fits = [
        FORMLClassifier(
            **SMALL, meta_lr=0.1, meta_gradient=meta_gradient, random_state=7
        ).fit(X, y, sensitive_features=groups)
        for _ in range(2)
    ]
    assert_same_fit(*fits, X)


def test_random_state_instance_gives_the_same_model_as_its_seed(data):
    X, y, groups = data
    a = FORMLClassifier(**SMALL, random_state=np.random.RandomState(7))
    b = FORMLClassifier(**SMALL, random_state=7)
    assert_same_fit(
        a.fit(X, y, sensitive_features=groups),
        b.fit(X, y, sensitive_features=groups),
        X,
    )


def test_other_random_state_other_model(data):
    X, y, groups = data
    a = FORMLClassifier(**SMALL, random_state=1).fit(X, y, sensitive_features=groups)
    b = FORMLClassifier(**SMALL, random_state=2).fit(X, y, sensitive_features=groups)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_fit_leaves_global_generators_alone(data):
    X, y, groups = data
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    FORMLClassifier(**SMALL, random_state=0).fit(X, y, sensitive_features=groups)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]


def test_pickle_round_trip_keeps_the_model_and_its_training_state(data):
    X, y, groups = data
    model = FORMLClassifier(**SMALL, meta_lr=0.1, random_state=0).fit(
        X, y, sensitive_features=groups
    )
    clone = pickle.loads(pickle.dumps(model))
    assert_same_fit(model, clone, X)
    np.testing.assert_array_equal(model.predict(X), clone.predict(X))
    # Continuing both gives the same model: the weight logits, their step
    # scale, the optimizer and the validation batch sampler were pickled too.
    for estimator in (model, clone):
        estimator.set_params(warm_start=True).fit(X, y, sensitive_features=groups)
    assert_same_fit(model, clone, X)


def test_grid_search_gives_the_same_results_with_one_or_two_jobs(data):
    X, y, groups = data
    grid = {"meta_lr": [0.0, 0.1], "hidden_layer_sizes": [(4,), (8,)]}
    results = []
    for n_jobs in (1, 2):
        with sklearn.config_context(enable_metadata_routing=True):
            estimator = FORMLClassifier(
                max_epochs=2, batch_size=32, random_state=0
            ).set_fit_request(sensitive_features=True, sample_weight=False)
            search = GridSearchCV(
                estimator,
                grid,
                cv=StratifiedKFold(n_splits=2, shuffle=True, random_state=0),
                n_jobs=n_jobs,
            )
            # One torch thread per worker, as in this process: sums taken in
            # another order could round differently.
            with parallel_config(backend="loky", inner_max_num_threads=1):
                search.fit(X, y, sensitive_features=groups)
        results.append(search)
    one, two = results
    assert one.best_params_ == two.best_params_
    for key in one.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank_test", "param")):
            np.testing.assert_array_equal(
                np.asarray(one.cv_results_[key]),
                np.asarray(two.cv_results_[key]),
                err_msg=key,
            )
    # Fits differ between candidates (the comparison is not vacuous).
    assert len(set(one.cv_results_["mean_test_score"])) > 1
    assert_same_fit(one.best_estimator_, two.best_estimator_, X)
