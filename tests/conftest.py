"""Shared fixtures of the skforml test suite.

The networks in the tests are tiny, so torch's intra-op threads only add
overhead (and, on a shared 2-core machine, contention that made a 0.3 s fit
take 15 s). The suite therefore runs torch single-threaded.
"""

import numpy as np
import pytest
import torch

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification

# Settings of a fit that takes well under a second on one core.
TINY = {
    "max_epochs": 3,
    "batch_size": 32,
    "hidden_layer_sizes": (8,),
}


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="run the tests marked slow (long experiments)",
    )


def pytest_configure(config):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: give --runslow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def biased_data():
    """300 rows of binary data, 20% minority (group 1), 11 features."""
    X, y, groups = make_biased_classification(n_samples=300, random_state=0)
    return X, y, groups


@pytest.fixture(scope="session")
def fitted_forml(biased_data):
    """A FORML model fitted on ``biased_data``; tests must not modify it."""
    X, y, groups = biased_data
    return FORMLClassifier(**TINY, random_state=0).fit(X, y, sensitive_features=groups)


@pytest.fixture(scope="session")
def multiclass_data():
    """240 rows, 3 string classes, two sensitive groups, 4 features."""
    rng = np.random.RandomState(1)
    centers = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    labels = np.repeat([0, 1, 2], 80)
    X = centers[labels] + rng.normal(size=(240, 4))
    order = rng.permutation(240)
    X, labels = X[order], labels[order]
    y = np.array(["cat", "dog", "emu"])[labels]
    groups = np.where(rng.rand(240) < 0.4, "f", "m")
    return X, y, groups
