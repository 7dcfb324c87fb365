import pickle
import time

import numpy as np
import pytest
import sklearn
from fairlearn.metrics import (
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate_difference,
    true_positive_rate_difference,
)
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skforml import Constraint
from skforml.datasets import make_biased_classification
from skforml.fairness._base import make_constraint
from skforml.metrics import (
    FAIRNESS_METRICS,
    best_within_tolerance,
    fairness_report,
    make_fairness_scorer,
)


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(n_samples=600, random_state=0)


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.mark.parametrize(
    "name, metric",
    [
        ("tprd", true_positive_rate_difference),
        ("fprd", false_positive_rate_difference),
        ("equalized_odds", equalized_odds_difference),
        ("demographic_parity", demographic_parity_difference),
    ],
)
def test_scorers_match_fairlearn(data, routing, name, metric):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    scorer = make_fairness_scorer(name)
    expected = metric(y, clf.predict(X), sensitive_features=groups)
    assert expected > 0
    assert scorer(clf, X, y, sensitive_features=groups) == pytest.approx(-expected)


def test_tprd_scorer_matches_fairness_report_and_is_faster(data, routing):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    scorer = make_fairness_scorer("tprd")
    y_pred = clf.predict(X)
    report = fairness_report(y, y_pred, sensitive_features=groups)
    assert -scorer(clf, X, y, sensitive_features=groups) == pytest.approx(report.tprd)

    def best_of(function, repeats=5):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    fast = best_of(lambda: scorer(clf, X, y, sensitive_features=groups))
    slow = best_of(
        lambda: fairness_report(y, clf.predict(X), sensitive_features=groups)
    )
    assert fast < slow


def test_scorer_requests_sensitive_features_only_with_routing(data):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    scorer = make_fairness_scorer("tprd")  # routing off: no request made
    with pytest.raises(TypeError, match="sensitive_features"):
        scorer(clf, X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        requested = make_fairness_scorer("tprd")
        request = requested.get_metadata_routing().score.requests
        assert request == {"sensitive_features": True}


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match="metric must be one of .* got 'tpr'"):
        make_fairness_scorer("tpr")
    # The constraints' names (and aliases) and skforml 0.1's short names.
    assert sorted(FAIRNESS_METRICS) == [
        "balanced_accuracy_parity",
        "demographic_parity",
        "equal_opportunity",
        "equalized_odds",
        "error_rate_parity",
        "false_positive_rate_parity",
        "fprd",
        "tprd",
        "true_positive_rate_parity",
    ]


@pytest.mark.parametrize("name", sorted(FAIRNESS_METRICS))
def test_every_scorer_is_the_constraints_disparity(data, routing, name):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    short = {"tprd": "true_positive_rate_parity", "fprd": "false_positive_rate_parity"}
    constraint = make_constraint(short.get(name, name))
    expected = constraint.disparity(y, clf.predict(X), groups)
    assert expected > 0
    scorer = make_fairness_scorer(name)
    assert scorer(clf, X, y, sensitive_features=groups) == -expected
    assert FAIRNESS_METRICS[name](
        y, clf.predict(X), sensitive_features=groups
    ) == pytest.approx(expected)
    # Picklable (GridSearchCV keeps its scorer), and named in its repr.
    assert name in repr(pickle.loads(pickle.dumps(scorer)))


def test_a_users_constraint_is_a_scorer_by_name(data, routing):
    X, y, groups = data
    clf = LogisticRegression().fit(X, y)
    y_pred = clf.predict(X)

    class NegativePredictiveParity(Constraint):
        """Test-only: equal rates of predicted negatives among the negatives."""

        name = "test_only_negative_rate_parity"

        def cell_keys(self, group, label, n_classes):
            return group * n_classes + label, label.copy()

        def rated_rows(self, y_true, y_pred):
            return [(y_pred == 0, y_true == 0)]

    scorer = make_fairness_scorer("test_only_negative_rate_parity")
    # One minus the FPR: the same spread as the FPR's.
    expected = false_positive_rate_difference(y, y_pred, sensitive_features=groups)
    assert -scorer(clf, X, y, sensitive_features=groups) == pytest.approx(expected)


# Fits record the groups they were scored with: GridSearchCV clones, so the
# log lives at module level.
SCORED = []


class GroupAware(ClassifierMixin, BaseEstimator):
    """Predicts the label from feature 0's sign, flipped for group 1 when told."""

    def __init__(self, flip=False):
        self.flip = flip

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        X = np.asarray(X)
        pred = (X[:, 0] > 0).astype(int)
        # Feature 1 holds the group: flipping group 1 makes a large TPRD.
        return np.where(self.flip & (X[:, 1] == 1), 1 - pred, pred)


def test_routing_reaches_the_scorer_in_grid_search(routing):
    rng = np.random.RandomState(0)
    groups = rng.randint(2, size=400)
    x0 = rng.normal(size=400)
    X = np.column_stack([x0, groups])
    y = (x0 > 0).astype(int)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    search = GridSearchCV(
        GroupAware(),
        {"flip": [False, True]},
        scoring={"accuracy": "accuracy", "tprd": make_fairness_scorer("tprd")},
        refit=best_within_tolerance(0.1),
        cv=cv,
    ).fit(X, y, sensitive_features=groups)
    tprd = search.cv_results_["mean_test_tprd"]
    # Unflipped: perfect in both groups; flipped: group 1's TPR is 0.
    np.testing.assert_allclose(tprd, [0.0, -1.0])
    assert search.best_index_ == 0
    assert search.best_params_ == {"flip": False}
    # The fold's own groups are routed: scoring with mismatched groups
    # (all one group) would give a TPRD of 0 for both candidates.
    for fold, (_, test) in enumerate(cv.split(X, y)):
        scorer = make_fairness_scorer("tprd")
        flipped = GroupAware(flip=True).fit(X[test], y[test])
        score = scorer(flipped, X[test], y[test], sensitive_features=groups[test])
        assert search.cv_results_[f"split{fold}_test_tprd"][1] == score


def test_grid_search_without_routed_groups_fails(routing, data):
    X, y, _ = data
    search = GridSearchCV(
        LogisticRegression(),
        {"C": [1.0]},
        scoring={"tprd": make_fairness_scorer("tprd")},
        refit=False,
        cv=2,
        error_score="raise",
    )
    with pytest.raises(TypeError, match="sensitive_features"):
        search.fit(X, y)


CV_RESULTS = {
    "mean_test_accuracy": [0.86, 0.85, 0.85, 0.80, np.nan, 0.90],
    "mean_test_tprd": [-0.12, -0.04, -0.03, -0.01, -0.0, np.nan],
}


@pytest.mark.parametrize(
    "tolerance, expected",
    [
        (0.2, 0),  # everything within: the most accurate non-NaN
        (0.05, 2),  # tie at .85: the lower disparity wins
        (0.035, 2),
        (0.02, 3),
        (0.005, 3),  # none within: the least disparate valid candidate
    ],
)
def test_refit_picks_the_right_candidate(tolerance, expected):
    assert best_within_tolerance(tolerance)(CV_RESULTS) == expected


def test_refit_reads_positive_disparities_and_custom_names():
    results = {
        "mean_test_bal": [0.7, 0.9, 0.8],
        "mean_test_gap": [0.01, 0.3, 0.04],
    }
    refit = best_within_tolerance(0.05, accuracy="bal", disparity="gap")
    assert refit(results) == 2


def test_refit_errors():
    with pytest.raises(ValueError, match="tolerance must be a non-negative number"):
        best_within_tolerance(-0.1)
    with pytest.raises(KeyError, match="mean_test_tprd.*'accuracy'"):
        best_within_tolerance(0.1)({"mean_test_accuracy": [0.8]})
    with pytest.raises(ValueError, match="NaN"):
        best_within_tolerance(0.1)(
            {"mean_test_accuracy": [np.nan], "mean_test_tprd": [0.0]}
        )
