import pickle

import numpy as np
import pytest
import sklearn
import torch
from sklearn.model_selection import GridSearchCV

from skforml import ReweightedClassifier
from skforml._baselines import WEIGHTINGS
from skforml.datasets import make_biased_classification
from skforml.weighting._base import TrainingRows
from skforml.weighting._baselines import LabelBiasWeighting, LearningToReweight


def start(weighting, y, groups, sample_weight=None):
    """A weighting started on training rows with labels ``y`` and ``groups``."""
    rows = TrainingRows(
        y=np.asarray(y),
        groups=np.asarray(groups),
        n_classes=2,
        n_groups=int(np.max(groups)) + 1,
        sample_weight=None if sample_weight is None else np.asarray(sample_weight),
        rng=np.random.RandomState(0),
    )
    weighting.start(rows, torch.device("cpu"))
    return weighting


TINY = {"hidden_layer_sizes": (8,), "max_epochs": 1, "random_state": 0}


def tiny_groups():
    """Ten rows in three groups of sizes 2, 3 and 5, both labels in each."""
    groups = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    y = np.array([0, 1, 0, 1, 0, 0, 1, 0, 1, 0])
    X = np.random.RandomState(0).standard_normal((10, 3))
    return X, y, groups


def mean_one(row_weights):
    row_weights = np.asarray(row_weights, dtype=float)
    return row_weights / row_weights.mean()


# -- fixed schemes --------------------------------------------------------


def test_uniform_trains_on_all_rows_with_equal_weights():
    X, y, groups = tiny_groups()
    clf = ReweightedClassifier(**TINY).fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(clf.sample_weights_, np.ones(10))
    assert not clf.validation_mask_.any()
    assert clf.history_[-1, "weight_ess"] == pytest.approx(1.0)


def test_random_logits_are_standard_normal_draws_of_the_context_rng():
    _, y, groups = tiny_groups()
    weighting = start(
        ReweightedClassifier(weighting="random")._make_weighting(), y, groups
    )
    draws = np.random.RandomState(0).standard_normal(10)
    np.testing.assert_allclose(weighting.logits.numpy(), draws, rtol=1e-6)
    expected = mean_one(np.exp(draws))
    np.testing.assert_allclose(weighting.weights().numpy(), expected, rtol=1e-5)


def test_random_weights_stay_fixed_and_follow_random_state():
    X, y, groups = tiny_groups()
    params = {**TINY, "weighting": "random"}
    one = ReweightedClassifier(**params).fit(X, y, sensitive_features=groups)
    longer = ReweightedClassifier(**{**params, "max_epochs": 3})
    longer.fit(X, y, sensitive_features=groups)
    other = ReweightedClassifier(**{**params, "random_state": 1})
    other.fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(one.sample_weights_, longer.sample_weights_)
    assert not np.allclose(one.sample_weights_, other.sample_weights_)


def test_proportion_weights_are_inverse_group_sizes():
    X, y, groups = tiny_groups()
    clf = ReweightedClassifier(weighting="proportion", **TINY)
    clf.fit(X, y, sensitive_features=groups)
    # 1/2, 1/3, 1/5 per row; the rows' total is 2/2 + 3/3 + 5/5 = 3, so the
    # mean-one weights are 10/3 times those: 5/3, 10/9, 2/3.
    expected = np.array([5 / 3] * 2 + [10 / 9] * 3 + [2 / 3] * 5)
    np.testing.assert_allclose(clf.sample_weights_, expected, rtol=1e-6)
    # Every group weighs the same in total.
    totals = np.bincount(groups, weights=clf.sample_weights_)
    np.testing.assert_allclose(totals, [10 / 3] * 3, rtol=1e-6)


@pytest.mark.parametrize("beta", [0.9999, 0.9, 0.5])
def test_class_balanced_weights_follow_cui_et_al(beta):
    X, y, groups = tiny_groups()
    clf = ReweightedClassifier(weighting="class_balanced", beta=beta, **TINY)
    clf.fit(X, y, sensitive_features=groups)
    sizes = np.array([2, 3, 5])
    per_group = (1 - beta) / (1 - beta**sizes)
    per_group = per_group * 3 / per_group.sum()  # sums to the number of groups
    np.testing.assert_allclose(per_group.sum(), 3)
    np.testing.assert_allclose(
        clf.sample_weights_, mean_one(per_group[groups]), rtol=1e-5
    )
    if beta == 0.5:
        # Hand values: (1 - .5) / (1 - .5**n) = 2/3, 4/7, 16/31.
        raw = np.array([2 / 3, 4 / 7, 16 / 31])
        np.testing.assert_allclose(per_group, raw * 3 / raw.sum())


def test_class_balanced_uses_the_classes_without_sensitive_features():
    X, y, _ = tiny_groups()  # four positives, six negatives
    clf = ReweightedClassifier(weighting="class_balanced", beta=0.9, **TINY)
    clf.fit(X, y)
    per_class = (1 - 0.9) / (1 - 0.9 ** np.array([6, 4]))
    np.testing.assert_allclose(clf.sample_weights_, mean_one(per_class[y]), rtol=1e-5)


def test_caller_sample_weight_multiplies_the_scheme_weights():
    X, y, groups = tiny_groups()
    sample_weight = np.arange(1.0, 11.0)
    clf = ReweightedClassifier(weighting="proportion", **TINY)
    clf.fit(X, y, sensitive_features=groups, sample_weight=sample_weight)
    expected = mean_one(sample_weight / np.array([2, 3, 5])[groups])
    np.testing.assert_allclose(clf.sample_weights_, expected, rtol=1e-5)


# -- label bias ------------------------------------------------------------


class StubNet:
    """Stands in for the net: returns fixed logits for the training rows."""

    device = "cpu"

    def __init__(self, predicted_positive):
        predicted = torch.as_tensor(predicted_positive, dtype=torch.float32)
        self.logits = torch.stack([1 - predicted, predicted], dim=1)

    def forward(self, X, training=False, device="cpu"):
        assert not training
        return self.logits


def test_label_bias_weights_follow_jiang_and_nachum():
    _, y, groups = tiny_groups()
    weighting = start(LabelBiasWeighting(1.0, "true_positive_rate_parity"), y, groups)
    np.testing.assert_allclose(weighting.weights().numpy(), np.ones(10))
    weighting.multipliers[:] = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    weighting._set_logits()
    # e_i = -lambda_{g(i)}; s_i = sigmoid(2 e_i); w = 1 - s (y=1) or s (y=0).
    s = 1 / (1 + np.exp(-2 * -np.array([0.5, -1.0, 0.0])[groups]))
    expected = np.where(y == 1, 1 - s, s)
    np.testing.assert_allclose(weighting.weights().numpy(), mean_one(expected), 1e-5)


@pytest.mark.parametrize(
    "constraint", ["true_positive_rate_parity", "demographic_parity"]
)
def test_label_bias_steps_the_multipliers_by_the_violations(constraint):
    _, y, groups = tiny_groups()
    weighting = start(LabelBiasWeighting(0.5, constraint), y, groups)
    weighting.train_data = object()  # the stub net ignores the data
    predicted = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 1])
    weighting.end_epoch(StubNet(predicted))
    if constraint == "true_positive_rate_parity":
        # Positives: rows 1 (g0), 3 (g1), 6, 8 (g2), predicted 1, 0, 1, 0.
        # TPR(all) = 2/4; TPR = 1, 0, 1/2 by group.
        violation = np.array([0.5 - 1, 0.5 - 0, 0.5 - 0.5])
    else:
        # P(yhat=1) = 5/10; by group 1/2, 1/3, 3/5.
        violation = np.array([0.5 - 0.5, 0.5 - 1 / 3, 0.5 - 3 / 5])
    np.testing.assert_allclose(weighting.multipliers.numpy(), 0.5 * violation)
    np.testing.assert_allclose(weighting.history, [0.5 * violation])
    s = 1 / (1 + np.exp(2 * 0.5 * violation[groups]))
    expected = mean_one(np.where(y == 1, 1 - s, s))
    np.testing.assert_allclose(weighting.weights().numpy(), expected, rtol=1e-5)


def test_label_bias_upweights_the_positives_of_the_low_tpr_group():
    X, y, groups = make_biased_classification(n_samples=600, random_state=0)
    # Wide and fast enough to predict positives after the first epoch.
    params = {**TINY, "hidden_layer_sizes": (16,), "lr": 1e-2, "max_epochs": 3}
    clf = ReweightedClassifier(weighting="label_bias", **params)
    clf.fit(X, y, sensitive_features=groups)
    multipliers = clf.label_bias_multipliers_
    assert multipliers.shape == (3, 2)
    # The minority (group 1) has the lower TPR: its multiplier rises from the
    # first epoch on and the majority's falls.
    assert multipliers[0, 1] > 0 > multipliers[0, 0]
    assert np.all(np.diff(multipliers[:, 1]) > 0)
    w = clf.sample_weights_
    minority_positive = w[(groups == 1) & (y == 1)]
    assert minority_positive.min() > w[(groups == 1) & (y == 0)].max()
    assert minority_positive.min() > w[(groups == 0) & (y == 1)].max()
    # The training rows are handed back after fit, and the model pickles.
    assert clf.net_.weighting_.train_data is None
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


def test_label_bias_needs_a_binary_target():
    X = np.random.RandomState(0).standard_normal((12, 3))
    groups, y = np.arange(12) % 2, np.arange(12) // 2 % 3  # every (group, class)
    clf = ReweightedClassifier(weighting="label_bias", **TINY)
    with pytest.raises(ValueError, match="binary"):
        clf.fit(X, y, sensitive_features=groups)


# -- learning to reweight ----------------------------------------------------


def make_l2rw(n_rows=6, sample_weight=None):
    y = np.zeros(n_rows, dtype=int)
    return start(LearningToReweight(), y, y, sample_weight=sample_weight)


def test_learning_to_reweight_normalises_the_clipped_derivatives():
    weighting = make_l2rw()
    rows = torch.tensor([0, 2, 4])
    # The lookahead is at eps = 0, as in Ren et al.
    np.testing.assert_array_equal(weighting.lookahead_weights(rows).numpy(), [0, 0, 0])
    p = weighting.update(rows, torch.tensor([2.0, -1.0, 6.0]), None)
    np.testing.assert_allclose(p.numpy(), [0.25, 0.0, 0.75])
    assert torch.all(p >= 0) and p.sum().item() == pytest.approx(1.0)
    # All clipped: uniform.
    p = weighting.update(torch.tensor([1, 3, 5]), torch.tensor([-1.0, -2.0, 0.0]), None)
    np.testing.assert_allclose(p.numpy(), [1 / 3] * 3)
    # weights() reports each row's last weight relative to its batch, mean 1.
    np.testing.assert_allclose(
        weighting.weights().numpy(), [0.75, 1, 0, 1, 2.25, 1], atol=1e-6
    )
    assert weighting.effective_sample_fraction() == pytest.approx(
        36 / (6 * (0.75**2 + 3 + 2.25**2)), rel=1e-5
    )


def test_learning_to_reweight_composes_with_caller_weights():
    weighting = make_l2rw(4, sample_weight=[1.0, 3.0, 0.0, 2.0])
    rows = torch.arange(4)
    p = weighting.update(rows, torch.tensor([1.0, 1.0, 5.0, -1.0]), None)
    np.testing.assert_allclose(p.numpy(), [0.25, 0.75, 0.0, 0.0])
    # Only the zero-weight row has a positive derivative: caller weights alone.
    p = weighting.update(rows, torch.tensor([-1.0, -1.0, 5.0, -1.0]), None)
    np.testing.assert_allclose(p.numpy(), [1 / 6, 3 / 6, 0.0, 2 / 6])


def test_learning_to_reweight_fit_uses_validation_and_normalised_batches(
    monkeypatch,
):
    batches = []
    update = LearningToReweight.update

    def spy(self, rows, d, p=None):
        p = update(self, rows, d, p)
        batches.append(p.detach().clone())
        return p

    monkeypatch.setattr(LearningToReweight, "update", spy)
    X, y, groups = make_biased_classification(n_samples=300, random_state=0)
    clf = ReweightedClassifier(
        weighting="learning_to_reweight", batch_size=64, **{**TINY, "max_epochs": 2}
    )
    clf.fit(X, y, sensitive_features=groups)
    n_train = int((~clf.validation_mask_).sum())
    assert 0 < clf.validation_mask_.sum() < 300
    assert len(batches) == 2 * -(-n_train // 64)
    for p in batches:
        assert torch.all(p >= 0)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    train_weights = clf.sample_weights_[~clf.validation_mask_]
    assert np.all(train_weights >= 0)
    assert train_weights.mean() == pytest.approx(1.0, rel=1e-4)
    assert np.all(clf.sample_weights_[clf.validation_mask_] == 0)
    assert np.isfinite(clf.history_[:, "meta_loss"]).all()


# -- the estimator -----------------------------------------------------------


def test_grid_search_over_weighting_routes_sensitive_features():
    X, y, groups = make_biased_classification(n_samples=200, random_state=1)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = ReweightedClassifier(**TINY).set_fit_request(sensitive_features=True)
        search = GridSearchCV(clf, {"weighting": list(WEIGHTINGS)}, cv=2)
        search.fit(X, y, sensitive_features=groups)
    assert len(search.cv_results_["params"]) == len(WEIGHTINGS)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.weighting in WEIGHTINGS
    assert best.groups_ == [0, 1]


@pytest.mark.parametrize(
    "params",
    [
        {"weighting": "focal"},
        {"label_bias_constraint": "equalized_odds"},
        {"beta": 1.0},
    ],
)
def test_invalid_parameters_raise_naming_them(params):
    X, y, groups = tiny_groups()
    name = next(iter(params))
    with pytest.raises(ValueError, match=name):
        ReweightedClassifier(**params).fit(X, y, sensitive_features=groups)


def test_label_bias_warm_start_continues_the_multipliers():
    X, y, groups = tiny_groups()
    clf = ReweightedClassifier(weighting="label_bias", warm_start=True, **TINY)
    clf.fit(X, y, sensitive_features=groups)
    first = clf.label_bias_multipliers_.copy()
    clf.fit(X, y, sensitive_features=groups)
    assert clf.label_bias_multipliers_.shape == (2, 3)
    np.testing.assert_array_equal(clf.label_bias_multipliers_[:1], first)


# -- reweighing ----------------------------------------------------------------


def test_reweighing_makes_group_and_label_independent():
    rng = np.random.RandomState(0)
    groups = rng.randint(3, size=400)
    y = (rng.uniform(size=400) < 0.2 + 0.25 * groups).astype(int)
    weighting = start(
        ReweightedClassifier(weighting="reweighing")._make_weighting(), y, groups
    )
    w = weighting.weights().numpy()
    # P(g) P(y) / P(g, y), up to the mean-one normalisation.
    expected = np.array(
        [
            np.mean(groups == g)
            * np.mean(y == label)
            / np.mean((groups == g) & (y == label))
            for g, label in zip(groups, y)
        ]
    )
    np.testing.assert_allclose(w, expected / expected.mean(), rtol=1e-5)
    # Under the weights, every group has the overall positive rate.
    for g in range(3):
        member = groups == g
        assert np.average(y[member], weights=w[member]) == pytest.approx(
            y.mean(), rel=1e-5
        )


def test_reweighing_fits_through_the_estimator():
    X, y, groups = make_biased_classification(n_samples=400, random_state=0)
    clf = ReweightedClassifier(weighting="reweighing", **TINY)
    clf.fit(X, y, sensitive_features=groups)
    assert "reweighing" in ReweightedClassifier.__doc__
    positive_rate = [
        np.average(y[groups == g], weights=clf.sample_weights_[groups == g])
        for g in (0, 1)
    ]
    assert positive_rate[0] == pytest.approx(positive_rate[1], rel=1e-5)
