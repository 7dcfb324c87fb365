import numpy as np
import pandas as pd
import pytest
from fairlearn.postprocessing import ThresholdOptimizer as FairlearnThresholdOptimizer
from packaging.version import Version
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression, RidgeClassifier

from skforml.experiments._fairlearn_compat import Float64Scores, ThresholdOptimizer

PANDAS_3 = Version(pd.__version__) >= Version("3")


class Float32Scores(ClassifierMixin, BaseEstimator):
    """Logistic regression whose probabilities are float32, like a torch net."""

    def fit(self, X, y):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X).astype(np.float32)

    def predict(self, X):
        return self.model_.predict(X)


@pytest.fixture
def trap_data():
    """Data on which the TPR-parity thresholds are randomised in both groups.

    A randomised threshold writes probabilities such as 0.02 that float32
    cannot hold exactly, which is what breaks fairlearn under pandas 3.
    """
    rng = np.random.RandomState(0)
    X = rng.randn(200, 2)
    groups = np.array(["a", "b"] * 100)
    y = (X[:, 0] + (groups == "a") > 0.5).astype(int)
    return X, y, groups


def fit(cls, X, y, groups, **params):
    return cls(
        estimator=Float32Scores(),
        constraints="true_positive_rate_parity",
        predict_method="predict_proba",
        **params,
    ).fit(X, y, sensitive_features=groups)


def by_formula(post, X, groups, random_state):
    """Hardt et al.'s randomised thresholds, computed by hand in float64."""
    scores = post.estimator_.predict_proba(X)[:, 1].astype(np.float64)
    positive = np.zeros(len(X))
    for group, rule in post.interpolated_thresholder_.interpolation_dict.items():
        rows = groups == group
        positive[rows] = rule.p0 * rule.operation0(scores[rows]) + rule.p1 * (
            rule.operation1(scores[rows])
        )
    draws = np.random.RandomState(random_state).rand(len(X))
    return positive, (positive >= draws).astype(int)


def test_data_exercise_randomised_thresholds(trap_data):
    X, y, groups = trap_data
    post = fit(FairlearnThresholdOptimizer, X, y, groups)
    p0 = [
        rule.p0 for rule in post.interpolated_thresholder_.interpolation_dict.values()
    ]
    assert any(0 < p < 1 for p in p0)
    assert post.estimator_.predict_proba(X).dtype == np.float32


@pytest.mark.skipif(not PANDAS_3, reason="pandas < 3 only warns")
def test_raw_fairlearn_predict_raises_under_pandas_3(trap_data):
    X, y, groups = trap_data
    post = fit(FairlearnThresholdOptimizer, X, y, groups)
    with pytest.raises(TypeError, match="float32"):
        post.predict(X, sensitive_features=groups, random_state=0)


def test_skforml_threshold_optimizer_matches_the_formula(trap_data):
    X, y, groups = trap_data
    post = fit(ThresholdOptimizer, X, y, groups)
    positive, expected = by_formula(post, X, groups, random_state=7)
    y_pred = post.predict(X, sensitive_features=groups, random_state=7)
    np.testing.assert_array_equal(y_pred, expected)
    np.testing.assert_allclose(
        post._pmf_predict(X, sensitive_features=groups)[:, 1], positive
    )
    # The randomised rule really is used: some rows get a fractional chance.
    assert np.any((positive > 0) & (positive < 1))
    # estimator_ stays the caller's fitted estimator.
    assert isinstance(post.estimator_, Float32Scores)


def test_same_predictions_as_fairlearn_where_fairlearn_works(trap_data):
    X, y, groups = trap_data
    base = LogisticRegression().fit(X, y)  # float64 scores: fairlearn is fine
    params = {
        "estimator": base,
        "constraints": "true_positive_rate_parity",
        "prefit": True,
        "predict_method": "predict_proba",
    }
    theirs = FairlearnThresholdOptimizer(**params).fit(X, y, sensitive_features=groups)
    ours = ThresholdOptimizer(**params).fit(X, y, sensitive_features=groups)
    for seed in range(3):
        np.testing.assert_array_equal(
            ours.predict(X, sensitive_features=groups, random_state=seed),
            theirs.predict(X, sensitive_features=groups, random_state=seed),
        )


def test_equalized_odds_and_pandas_inputs(trap_data):
    X, y, groups = trap_data
    X = pd.DataFrame(X, columns=["u", "v"])
    groups = pd.Series(groups, name="group")
    post = fit(ThresholdOptimizer, X, pd.Series(y), groups, objective="accuracy_score")
    assert post.predict(X, sensitive_features=groups, random_state=0).shape == (200,)
    post = ThresholdOptimizer(
        estimator=Float32Scores(), constraints="equalized_odds"
    ).fit(X, y, sensitive_features=groups)
    assert set(post.predict(X, sensitive_features=groups, random_state=0)) <= {0, 1}


def test_clone_keeps_the_workaround():
    post = ThresholdOptimizer(estimator=Float32Scores(), grid_size=50)
    copy = clone(post)
    assert type(copy) is ThresholdOptimizer
    assert copy.get_params()["grid_size"] == 50


def test_float64_scores_exposes_only_the_wrapped_methods(trap_data):
    X, y, _ = trap_data
    ridge = Float64Scores(RidgeClassifier().fit(X, y))
    assert not hasattr(ridge, "predict_proba")
    assert ridge.decision_function(X).dtype == np.float64
    wrapped = Float64Scores(Float32Scores().fit(X, y))
    assert wrapped.predict_proba(X).dtype == np.float64
    np.testing.assert_array_equal(wrapped.classes_, [0, 1])
    np.testing.assert_array_equal(wrapped.predict(X), wrapped.estimator.predict(X))
