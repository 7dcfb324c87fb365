"""One vocabulary: each notion's metric is its constraint's disparity.

Every notion is checked three ways on random data, binary and multi-class:
``group_disparity``, the constraint's ``disparity`` and a reference built
from fairlearn's MetricFrame, one rate per (class, rows) pair.
"""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    false_positive_rate_difference,
    selection_rate,
    true_positive_rate,
    true_positive_rate_difference,
)
from sklearn.metrics import accuracy_score

from skforml.fairness._base import group_rates, make_constraint, rate_spread
from skforml.metrics import FAIRNESS_METRICS, fairness_report, group_disparity

NOTIONS = [
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "equalized_odds",
    "error_rate_parity",
    "demographic_parity",
]


def random_data(n_classes, seed, n_samples=400, n_groups=4):
    rng = np.random.default_rng(seed)
    groups = rng.integers(n_groups, size=n_samples)
    y_true = rng.integers(n_classes, size=n_samples)
    # Predictions right more often in some groups, so the gaps are not 0.
    right = rng.random(n_samples) < 0.4 + 0.15 * groups
    y_pred = np.where(right, y_true, rng.integers(n_classes, size=n_samples))
    return y_true, y_pred, groups


def _defined(metric, rows_of):
    """A one-vs-rest rate of class c, NaN in a group without its rows."""

    def rate(y_true, y_pred, **kwargs):
        if not np.any(rows_of(np.asarray(y_true))):
            return np.nan
        return metric(y_true, y_pred, **kwargs)

    return rate


def _one_vs_rest(c, metric):
    def rate(y_true, y_pred, **kwargs):
        y_true, y_pred = np.asarray(y_true) == c, np.asarray(y_pred) == c
        return metric(y_true, y_pred, pos_label=1, **kwargs)

    return rate


def fairlearn_reference(notion, y_true, y_pred, groups, sample_weight=None):
    """The notion's disparity from fairlearn's per-group rates."""
    classes = [1] if y_true.max() <= 1 else range(y_true.max() + 1)
    tprs = {
        f"tpr{c}": _defined(_one_vs_rest(c, true_positive_rate), lambda y, c=c: y == c)
        for c in classes
    }
    fprs = {
        f"fpr{c}": _defined(_one_vs_rest(c, false_positive_rate), lambda y, c=c: y != c)
        for c in classes
    }
    metrics = {
        "true_positive_rate_parity": tprs,
        "false_positive_rate_parity": fprs,
        "equalized_odds": tprs | fprs,
        "error_rate_parity": {"accuracy": accuracy_score},
        "demographic_parity": {
            f"selection{c}": _one_vs_rest(c, selection_rate) for c in classes
        },
    }[notion]
    params = (
        {}
        if sample_weight is None
        else {name: {"sample_weight": sample_weight} for name in metrics}
    )
    frame = MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
        sample_params=params,
    )
    spreads = (frame.by_group.max() - frame.by_group.min()).fillna(0.0)
    return float(spreads.max())


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("notion", NOTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_metric_is_the_constraints_disparity_and_fairlearns(notion, n_classes, seed):
    y_true, y_pred, groups = random_data(n_classes, seed)
    expected = fairlearn_reference(notion, y_true, y_pred, groups)
    assert expected > 0
    measured = make_constraint(notion).disparity(y_true, y_pred, groups)
    assert measured == pytest.approx(expected, abs=1e-12)
    metric = group_disparity(
        y_true, y_pred, sensitive_features=groups, constraint=notion
    )
    assert metric == measured
    assert FAIRNESS_METRICS[notion](y_true, y_pred, sensitive_features=groups) == metric


@pytest.mark.parametrize("notion", NOTIONS)
def test_weighted_metric_matches_fairlearns_weighted_rates(notion):
    y_true, y_pred, groups = random_data(2, seed=3)
    weight = np.random.default_rng(3).uniform(0.1, 2.0, size=len(y_true))
    expected = fairlearn_reference(notion, y_true, y_pred, groups, weight)
    metric = group_disparity(
        y_true, y_pred, sensitive_features=groups, constraint=notion,
        sample_weight=weight,
    )  # fmt: skip
    assert metric == pytest.approx(expected, abs=1e-12)
    assert metric == make_constraint(notion).disparity(y_true, y_pred, groups, weight)


@pytest.mark.parametrize(
    "notion, fairlearn_metric",
    [
        ("true_positive_rate_parity", true_positive_rate_difference),
        ("false_positive_rate_parity", false_positive_rate_difference),
        ("equalized_odds", equalized_odds_difference),
        ("demographic_parity", demographic_parity_difference),
    ],
)
def test_binary_metric_is_fairlearns_named_metric(notion, fairlearn_metric):
    y_true, y_pred, groups = random_data(2, seed=4)
    names = np.array(["no", "yes"])  # string labels, the greater one positive
    metric = group_disparity(
        names[y_true], names[y_pred], sensitive_features=groups, constraint=notion
    )
    assert metric == pytest.approx(
        fairlearn_metric(y_true, y_pred, sensitive_features=groups), abs=1e-12
    )


def test_multiclass_tprd_is_the_constraints_not_the_macro_spread():
    # The report's per-group TPR is the macro-averaged recall; its tprd, the
    # constraint's: the largest gap of one class's recall across groups.
    y_true, y_pred, groups = random_data(4, seed=5)
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    macro_spread = report.by_group["tpr"].max() - report.by_group["tpr"].min()
    constraint = make_constraint("true_positive_rate_parity")
    assert report.tprd == constraint.disparity(y_true, y_pred, groups)
    assert report.tprd == pytest.approx(
        fairlearn_reference("true_positive_rate_parity", y_true, y_pred, groups)
    )
    assert report.tprd > macro_spread + 0.05
    fprd = make_constraint("false_positive_rate_parity")
    assert report.fprd == fprd.disparity(y_true, y_pred, groups)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_report_gaps_are_the_metrics(n_classes):
    y_true, y_pred, groups = random_data(n_classes, seed=6)
    labels = np.array(["a", "b", "c"])[:n_classes]
    frame = pd.DataFrame({"sex": groups % 2, "site": groups // 2})
    report = fairness_report(labels[y_true], labels[y_pred], sensitive_features=frame)
    for short, notion in [("tprd", "true_positive_rate_parity"), ("fprd", "fprd")]:
        assert report[short] == group_disparity(
            labels[y_true], labels[y_pred], sensitive_features=frame,
            constraint=notion,
        )  # fmt: skip
        assert report[short] == make_constraint(
            f"{'true' if short == 'tprd' else 'false'}_positive_rate_parity"
        ).disparity(y_true, y_pred, groups)


def test_without_groups_every_notion_is_the_spread_of_class_recall():
    y_true, y_pred, _ = random_data(3, seed=7)
    report = fairness_report(y_true, y_pred)
    recall = report.by_group["tpr"]
    for notion in NOTIONS:
        assert group_disparity(y_true, y_pred, constraint=notion) == pytest.approx(
            recall.max() - recall.min()
        )
    assert report.tprd == group_disparity(y_true, y_pred)


def test_pos_label_chooses_the_positive_class():
    y_true, y_pred, groups = random_data(2, seed=8)
    flipped = group_disparity(
        1 - y_true, 1 - y_pred, sensitive_features=groups, pos_label=0
    )
    assert flipped == group_disparity(y_true, y_pred, sensitive_features=groups)


def test_rate_spread_is_the_spread_of_group_rates():
    hit = np.array([1, 0, 1, 1, 0, 0], bool)
    rows = np.array([1, 1, 1, 0, 1, 0], bool)
    groups = np.array([0, 0, 1, 1, 3, 3])
    rates = group_rates(hit, rows, groups)
    # Group 2 has no rows at all, group 3 none that count.
    np.testing.assert_array_equal(rates, [0.5, 1.0, np.nan, 0.0])
    assert rate_spread(hit, rows, groups) == 1.0
    assert rate_spread(hit, np.zeros(6, bool), groups) == 0.0
    assert len(group_rates(hit, rows, groups, n_groups=6)) == 6


def test_unknown_notion_raises_listing_the_names():
    with pytest.raises(ValueError, match="got 'tpr'. Names: .*'equalized_odds'"):
        group_disparity([0, 1], [0, 1], sensitive_features=[0, 1], constraint="tpr")
