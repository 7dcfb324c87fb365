"""FORMLNet on its own: built and initialised from its parameters, the skorch way."""

from functools import partial

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skforml import MLP, FORMLClassifier, FORMLWeights
from skforml.fairness._objectives import MetaObjective, cross_entropy
from skforml.training._callbacks import EpochSelector, FairnessScoring
from skforml.training._net import FORMLNet
from skforml.weighting._base import TrainingRows
from skforml.weighting._baselines import UniformWeights


def make_net(**params):
    return FORMLNet(
        MLP,
        module__n_features=3,
        module__n_classes=2,
        module__hidden_layer_sizes=(4,),
        criterion=torch.nn.CrossEntropyLoss,
        criterion__reduction="none",
        train_split=None,
        **params,
    )


def test_the_net_initialises_its_parts_from_its_parameters():
    net = make_net(
        weighting=FORMLWeights,
        weighting__meta_lr=0.05,
        meta_objective=partial(MetaObjective, cross_entropy, None),
        lookahead_lr=0.5,
        precision="bfloat16",
    ).initialize()
    assert isinstance(net.weighting_, FORMLWeights) and net.weighting_.meta_lr == 0.05
    assert isinstance(net.meta_objective_, MetaObjective)
    assert net.meta_objective_.row_loss == net._row_loss
    assert net.engine_ == "linear"  # an MLP: the closed form
    assert net.lookahead_lr_ == 0.5
    assert net.autocast_dtype_ is torch.bfloat16
    assert isinstance(dict(net.callbacks_)["valid_acc"], FairnessScoring)
    rows = TrainingRows(
        np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2, None, np.random.RandomState(0)
    )
    net.set_training_rows(rows)
    torch.testing.assert_close(net.weighting_.weights(), torch.ones(3))  # mean 1
    assert len(net.loss_average_.epoch_loss) == 3


def test_the_net_defaults_to_uniform_weights_and_no_meta_step():
    net = make_net().initialize()
    assert isinstance(net.weighting_, UniformWeights)
    assert net.meta_objective_ is None and net.engine_ is None
    assert net.lookahead_lr_ == net.lr


def test_a_weighting_instance_is_copied_and_rejects_prefixed_params():
    weighting = FORMLWeights(0.1)
    net = make_net(weighting=weighting).initialize()
    assert net.weighting_ is not weighting and net.weighting_.meta_lr == 0.1
    with pytest.raises(ValueError, match="weighting__"):
        make_net(weighting=weighting, weighting__meta_lr=0.2).initialize()


def test_clone_and_set_params_of_the_nets_parts():
    net = make_net(weighting=FORMLWeights, weighting__meta_lr=0.05)
    twin = clone(net)
    assert twin.weighting is FORMLWeights
    assert twin.get_params()["weighting__meta_lr"] == 0.05
    twin.set_params(weighting__meta_lr=0.2, meta_gradient="unrolled")
    twin.set_params(meta_objective=partial(MetaObjective, cross_entropy, None))
    twin.initialize()
    assert twin.weighting_.meta_lr == 0.2 and twin.engine_ == "unrolled"
    assert net.get_params()["weighting__meta_lr"] == 0.05  # the original is as given
    twin.set_params(callbacks__epoch_selector__select_from_epoch=3)
    assert dict(twin.callbacks_)["epoch_selector"].select_from_epoch == 3


def test_the_callbacks_hold_their_settings(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(
        max_epochs=4, batch_size=32, hidden_layer_sizes=(8,), tolerance=0.1,
        random_state=0,
    ).fit(X, y, sensitive_features=groups)  # fmt: skip
    callbacks = dict(clf.net_.callbacks_)
    assert callbacks["tolerance_controller"].tolerance == 0.1
    selector = callbacks["epoch_selector"]
    assert isinstance(selector, EpochSelector)
    assert selector.enabled and selector.tolerance == 0.1
    assert selector.select_from_epoch == 1
    assert clf.best_epoch_ == selector.best_epoch_
    scoring = callbacks["valid_acc"]
    assert scoring.constraint is not None and scoring.moments is not None
    # The rows of a fit are not kept once it ends.
    assert scoring.groups is None and scoring.row_weights is None
    assert clf.net_.validation_ is None and clf.net_.train_split is None
    resolution = callbacks["tolerance_controller"].resolution_
    assert resolution is not None and resolution > 0
    for name in ("tolerance_", "select_epoch_", "constraint_", "valid_groups_"):
        assert not hasattr(clf.net_, name)
