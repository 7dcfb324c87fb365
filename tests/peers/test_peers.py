"""FairretClassifier and FairGradClassifier: the libraries' losses on FORML's loop.

Each adapter's batch loss is checked against the library's own loss on fixed
batches (value and gradient), so that the adapter adds nothing to the
method; with the fairness term off, each peer trains exactly FORML's uniform
baseline (same network, optimizer, epochs and batches).
"""

import pickle
import sys
import warnings

import numpy as np
import pytest
import sklearn
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skforml import (
    FairGradClassifier,
    FairretClassifier,
    MissingSensitiveFeaturesWarning,
    ReweightedClassifier,
    TrainingRows,
)
from skforml.metrics import fairness_report
from skforml.peers._base import PEER_CONSTRAINTS, PeerNet
from skforml.peers._fairgrad import MEASURES, FairGradLoss
from skforml.peers._fairret import STATISTICS, FairretLoss

fairret_loss = pytest.importorskip("fairret.loss")
fairret_statistic = pytest.importorskip("fairret.statistic")
fairgrad_torch = pytest.importorskip("fairgrad.torch")

TINY = {"max_epochs": 3, "batch_size": 32, "hidden_layer_sizes": (8,)}
N_ROWS, N_GROUPS = 64, 3


def training_rows(seed=0):
    rng = np.random.RandomState(seed)
    return TrainingRows(
        y=rng.randint(0, 2, N_ROWS),
        groups=np.arange(N_ROWS) % N_GROUPS,
        n_classes=2,
        n_groups=N_GROUPS,
        sample_weight=None,
        rng=rng,
    )


def batches(rows, n_batches=4, size=24):
    """Fixed batches of logits (leaves, to take gradients) and their rows."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(n_batches):
        index = torch.randperm(N_ROWS, generator=generator)[:size]
        logits = torch.randn(size, 2, generator=generator).requires_grad_()
        yield logits, torch.as_tensor(rows.y)[index], index


def uniform_p(size):
    return torch.full((size,), 1.0 / size)


def value_and_grad(loss, logits):
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


# --- the adapters add nothing to the libraries' losses ------------------------


@pytest.mark.parametrize("constraint", PEER_CONSTRAINTS)
@pytest.mark.parametrize("penalty", ["norm", "lse"])
def test_fairret_loss_is_fairrets_own(constraint, penalty):
    rows = training_rows()
    adapter = FairretLoss(constraint, strength=0.7, penalty=penalty)
    adapter.start(rows, "cpu")
    stats = [getattr(fairret_statistic, s)() for s in STATISTICS[constraint]]
    statistic = (
        stats[0]
        if len(stats) == 1
        else fairret_statistic.StackedLinearFractionalStatistic(*stats)
    )
    penalty_class = {"norm": fairret_loss.NormLoss, "lse": fairret_loss.LSELoss}
    reference = penalty_class[penalty](statistic)
    groups = torch.as_tensor(rows.groups)
    for logits, y, index in batches(rows):
        ours = adapter(
            logits,
            y,
            index,
            uniform_p(len(y)),
            torch.nn.functional.cross_entropy(logits, y, reduction="none"),
        )
        # fairret's README: the mean loss plus strength times the fairret of
        # the positive class's logit, the one-hot groups and the float labels.
        logit = (logits[:, 1] - logits[:, 0]).unsqueeze(1)
        sens = torch.nn.functional.one_hot(groups[index], N_GROUPS).float()
        labels = () if constraint == "demographic_parity" else (y.float()[:, None],)
        theirs = torch.nn.functional.cross_entropy(logits, y) + 0.7 * reference(
            logit, sens, *labels
        )
        (ours, our_grad), (theirs, their_grad) = (
            value_and_grad(ours, logits),
            value_and_grad(theirs, logits),
        )
        torch.testing.assert_close(ours, theirs)
        torch.testing.assert_close(our_grad, their_grad)


def test_fairret_batch_without_positives_trains_on_the_loss_alone():
    rows = training_rows()
    adapter = FairretLoss("true_positive_rate_parity", strength=1.0, penalty="norm")
    adapter.start(rows, "cpu")
    negatives = torch.as_tensor(np.flatnonzero(rows.y == 0)[:8])
    logits = torch.randn(8, 2)
    y = torch.zeros(8, dtype=torch.long)
    losses = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    with pytest.raises(NotImplementedError):  # fairret's own behaviour
        adapter.fairret(
            logits[:, 1:] - logits[:, :1],
            torch.nn.functional.one_hot(adapter.groups[negatives], N_GROUPS).float(),
            y.float()[:, None],
        )
    loss = adapter(logits, y, negatives, uniform_p(8), losses)
    torch.testing.assert_close(loss, losses.mean())


@pytest.mark.parametrize("constraint", PEER_CONSTRAINTS)
def test_fairgrad_loss_is_fairgrads_own(constraint):
    rows = training_rows()
    adapter = FairGradLoss(constraint, 0.01, 0.05, torch.nn.CrossEntropyLoss)
    adapter.start(rows, "cpu")
    measure, desirable = MEASURES[constraint]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # FairGrad's NumPy 2 use
        warnings.simplefilter("ignore", RuntimeWarning)  # its empty cells
        reference = fairgrad_torch.CrossEntropyLoss(
            y_train=rows.y,
            s_train=rows.groups,
            fairness_measure=measure,
            y_desirable=desirable,
            epsilon=0.01,
            fairness_rate=0.05,
        )
        groups = torch.as_tensor(rows.groups)
        # Several steps: FairGrad's weights carry over from step to step.
        for logits, y, index in batches(rows, n_batches=6):
            ours = adapter(logits, y, index, uniform_p(len(y)), None)
            theirs = reference(logits, y, groups[index], mode="train")
            (ours, our_grad), (theirs, their_grad) = (
                value_and_grad(ours, logits),
                value_and_grad(theirs, logits),
            )
            torch.testing.assert_close(ours, theirs.float())
            torch.testing.assert_close(our_grad, their_grad)
    np.testing.assert_allclose(
        adapter.group_weights(),
        reference.step_groupwise_weights[-1] / reference.fairness_function.P,
    )
    # Only the last step's entries are kept (FairGrad reads no others).
    assert len(adapter.fairgrad.step_loss) == 1
    assert len(reference.step_loss) == 6


# --- the same network and loop as FORML's baselines ------------------------------


@pytest.mark.parametrize(
    "peer",
    [
        FairretClassifier(constraint="equalized_odds", strength=0.0, **TINY),
        # A slack of 1 is never exceeded by a rate gap: FairGrad's weights stay 1.
        FairGradClassifier(constraint="equalized_odds", epsilon=1.0, **TINY),
    ],
    ids=["fairret", "FairGrad"],
)
def test_without_fairness_term_the_peer_is_the_uniform_baseline(peer, biased_data):
    X, y, groups = biased_data
    peer = sklearn.clone(peer).set_params(random_state=0)
    peer.fit(X, y, sensitive_features=groups)
    uniform = ReweightedClassifier(weighting="uniform", random_state=0, **TINY)
    uniform.fit(X, y, sensitive_features=groups)
    assert isinstance(peer.net_, PeerNet)
    np.testing.assert_allclose(peer.predict_proba(X), uniform.predict_proba(X))
    np.testing.assert_allclose(
        peer.history_[:, "train_loss"], uniform.history_[:, "train_loss"], rtol=1e-6
    )


def test_fairness_knobs_close_the_gap(biased_data):
    X, y, groups = biased_data
    settings = {"max_epochs": 20, "batch_size": 32, "random_state": 0}

    def tprd(clf):
        clf.fit(X, y, sensitive_features=groups)
        return fairness_report(y, clf.predict(X), sensitive_features=groups).tprd

    plain = tprd(ReweightedClassifier(**settings))
    assert tprd(FairretClassifier(strength=3.0, **settings)) < plain / 2
    assert tprd(FairGradClassifier(epsilon=0.0, **settings)) < plain / 2


def test_fairgrad_reweights_the_cells(biased_data):
    X, y, groups = biased_data
    clf = FairGradClassifier(constraint="true_positive_rate_parity", **TINY)
    clf.fit(X, y, sensitive_features=groups)
    assert clf.group_weights_.shape == (2, 2)
    # Equal opportunity reweights the positives; the negatives keep weight 1.
    np.testing.assert_allclose(clf.group_weights_[0], 1.0)
    assert not np.allclose(clf.group_weights_[1], 1.0)


# --- scikit-learn behaviour -----------------------------------------------------


@pytest.mark.parametrize("cls", [FairretClassifier, FairGradClassifier])
def test_needs_two_classes(cls, multiclass_data):
    X, y, groups = multiclass_data
    with pytest.raises(ValueError, match="Only binary classification.*y has 3"):
        cls(**TINY).fit(X, y, sensitive_features=groups)


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (FairretClassifier, {"strength": -1.0}, "strength"),
        (FairretClassifier, {"penalty": "kl"}, "penalty"),
        (FairretClassifier, {"constraint": "parity"}, "constraint"),
        (FairGradClassifier, {"epsilon": -0.1}, "epsilon"),
        (FairGradClassifier, {"fairness_rate": 0.0}, "fairness_rate"),
    ],
)
def test_bad_parameters_are_named(cls, params, match, biased_data):
    X, y, groups = biased_data
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X, y, sensitive_features=groups)


@pytest.mark.parametrize(
    "cls, package", [(FairretClassifier, "fairret"), (FairGradClassifier, "fairgrad")]
)
def test_missing_library_names_the_extra(cls, package, biased_data, monkeypatch):
    X, y, groups = biased_data
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"skforml\[peers\]"):
        cls(**TINY).fit(X, y, sensitive_features=groups)


@pytest.mark.parametrize("cls", [FairretClassifier, FairGradClassifier])
def test_sensitive_features_are_routed(cls, biased_data):
    X, y, groups = biased_data
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler(),
            cls(**TINY, random_state=0).set_fit_request(sensitive_features=True),
        )
        pipe.fit(X, y, sensitive_features=np.where(groups == 1, "b", "a"))
        assert pipe[-1].groups_ == ["a", "b"]
        with pytest.warns(MissingSensitiveFeaturesWarning):
            pipe.fit(X, y)


@pytest.mark.parametrize("cls", [FairretClassifier, FairGradClassifier])
def test_pickles_and_predicts_the_same(cls, biased_data):
    X, y, groups = biased_data
    clf = cls(**TINY, random_state=0).fit(X, y, sensitive_features=groups)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


# scikit-learn's checks fit without sensitive features: the classes are the
# groups. Settings as in test_common.py (check_classifiers_train wants > 0.83).
CHECK_SETTINGS = {
    "max_epochs": 10,
    "batch_size": 16,
    "hidden_layer_sizes": (16,),
    "lr": 1e-2,
    "random_state": 0,
}


def _expected_failed_checks(estimator):
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to repeating rows: it weights "
            "the losses within each minibatch, and SGD on repeated rows takes "
            "more steps per epoch"
        ),
    }


@parametrize_with_checks(
    [
        FairretClassifier(constraint="true_positive_rate_parity", **CHECK_SETTINGS),
        FairGradClassifier(constraint="true_positive_rate_parity", **CHECK_SETTINGS),
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible_peer(estimator, check):
    check(estimator)
