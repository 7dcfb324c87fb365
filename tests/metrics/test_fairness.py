import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equal_opportunity_difference
from sklearn.metrics import recall_score

from skforml import TruePositiveRateParity
from skforml.metrics import fairness_report

# Binary toy data, two groups of four rows.
#   group a: true 1 1 0 0, pred 1 1 0 1 -> TPR 2/2, FPR 1/2, accuracy 3/4
#   group b: true 1 1 0 0, pred 1 0 0 0 -> TPR 1/2, FPR 0/2, accuracy 3/4
Y_TRUE = [1, 1, 0, 0, 1, 1, 0, 0]
Y_PRED = [1, 1, 0, 1, 1, 0, 0, 0]
GROUPS = ["a", "a", "a", "a", "b", "b", "b", "b"]


def test_binary_with_groups_hand_computed():
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=GROUPS)
    assert report.accuracy == pytest.approx(6 / 8)
    assert report.tprd == pytest.approx(1.0 - 0.5)
    assert report.max_fnr == pytest.approx(0.5)
    assert report.fprd == pytest.approx(0.5 - 0.0)
    assert report.max_fpr == pytest.approx(0.5)
    by_group = report.by_group
    assert list(by_group.columns) == ["accuracy", "tpr", "fnr", "fpr", "count"]
    assert list(by_group.index) == ["a", "b"]
    np.testing.assert_allclose(by_group["accuracy"], [0.75, 0.75])
    np.testing.assert_allclose(by_group["tpr"], [1.0, 0.5])
    np.testing.assert_allclose(by_group["fnr"], [0.0, 0.5])
    np.testing.assert_allclose(by_group["fpr"], [0.5, 0.0])
    assert by_group["count"].tolist() == [4, 4]
    for key in ("accuracy", "tprd", "max_fnr", "fprd", "max_fpr"):
        assert type(report[key]) is float


def test_binary_three_groups_unequal_sizes():
    # g0: true 1 1 1 0, pred 1 1 0 0 -> TPR 2/3, FPR 0/1
    # g1: true 1 0 0,   pred 0 1 1   -> TPR 0/1, FPR 2/2
    # g2: true 1 1 0,   pred 1 1 1   -> TPR 2/2, FPR 1/1
    y_true = [1, 1, 1, 0, 1, 0, 0, 1, 1, 0]
    y_pred = [1, 1, 0, 0, 0, 1, 1, 1, 1, 1]
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    assert report.accuracy == pytest.approx((3 + 0 + 2) / 10)
    np.testing.assert_allclose(report.by_group["tpr"], [2 / 3, 0.0, 1.0])
    np.testing.assert_allclose(report.by_group["fpr"], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(report.by_group["accuracy"], [3 / 4, 0.0, 2 / 3])
    assert report.tprd == pytest.approx(1.0)
    assert report.max_fnr == pytest.approx(1.0)
    assert report.fprd == pytest.approx(1.0)
    assert report.by_group["count"].tolist() == [4, 3, 3]
    # Same gap as fairlearn's own equal-opportunity difference.
    assert report.tprd == pytest.approx(
        equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)
    )


def test_string_labels_default_and_explicit_pos_label():
    y_true = ["yes", "yes", "no", "no", "yes", "no"]
    y_pred = ["yes", "no", "no", "yes", "yes", "no"]
    groups = ["m", "m", "m", "f", "f", "f"]
    # Default positive class is the greater label, "yes".
    #   m: true yes yes no, pred yes no no -> TPR 1/2, FPR 0/1
    #   f: true no yes no,  pred yes yes no -> TPR 1/1, FPR 1/2
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    assert list(report.by_group.index) == ["f", "m"]
    np.testing.assert_allclose(report.by_group["tpr"], [1.0, 0.5])
    np.testing.assert_allclose(report.by_group["fpr"], [0.5, 0.0])
    assert report.tprd == pytest.approx(0.5)
    # With "no" as positive: m TPR 1/1, FPR 1/2; f TPR 1/2, FPR 0/1.
    report_no = fairness_report(
        y_true, y_pred, sensitive_features=groups, pos_label="no"
    )
    np.testing.assert_allclose(report_no.by_group["tpr"], [0.5, 1.0])
    np.testing.assert_allclose(report_no.by_group["fpr"], [0.0, 0.5])
    assert report_no.accuracy == pytest.approx(report.accuracy) == pytest.approx(4 / 6)


def test_binary_without_groups_uses_true_classes():
    # class 0: 3 rows, 2 predicted 0 -> recall 2/3; class 1: recall 1/2.
    # FPR of class 0 = P(pred 0 | true 1) = 1/2; of class 1 = 1/3.
    y_true = [0, 0, 0, 1, 1]
    y_pred = [0, 1, 0, 1, 0]
    report = fairness_report(y_true, y_pred)
    by_group = report.by_group
    assert by_group.index.name == "class"
    assert list(by_group.index) == [0, 1]
    np.testing.assert_allclose(by_group["tpr"], [2 / 3, 1 / 2])
    np.testing.assert_allclose(by_group["fnr"], [1 / 3, 1 / 2])
    np.testing.assert_allclose(by_group["fpr"], [1 / 2, 1 / 3])
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.tprd == pytest.approx(1 / 6)
    assert report.max_fnr == pytest.approx(1 / 2)
    assert report.fprd == pytest.approx(1 / 6)
    assert report.max_fpr == pytest.approx(1 / 2)


def test_multiclass_without_groups_is_per_class_recall():
    # class 0: pred 0 1 -> recall 1/2; class 1: pred 1 1 -> 1; class 2: 2 0 -> 1/2.
    # FPR: class 0 predicted for one of the 4 non-0 rows -> 1/4;
    #      class 1 for one of the 4 non-1 rows -> 1/4; class 2 never -> 0.
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    report = fairness_report(y_true, y_pred)
    np.testing.assert_allclose(report.by_group["tpr"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(report.by_group["fnr"], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(report.by_group["fpr"], [0.25, 0.25, 0.0])
    np.testing.assert_allclose(report.by_group["accuracy"], [0.5, 1.0, 0.5])
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.tprd == pytest.approx(0.5)
    assert report.max_fnr == pytest.approx(0.5)
    assert report.fprd == pytest.approx(0.25)
    assert report.max_fpr == pytest.approx(0.25)


def test_multiclass_without_groups_matches_sklearn_recall():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 5, 300))
    report = fairness_report(y_true, y_pred)
    recalls = recall_score(y_true, y_pred, average=None)
    np.testing.assert_allclose(report.by_group["tpr"], recalls)
    assert report.tprd == pytest.approx(recalls.max() - recalls.min())


def test_multiclass_with_groups_macro_rates_and_one_vs_rest_gaps():
    # Group 0: true 0 0 1, pred 0 1 1. Recall: class 0 1/2, class 1 1 -> 3/4.
    #   One-vs-rest FPR over classes 0, 1, 2: 0/1, 1/2, 0/3 -> mean 1/6.
    # Group 1: true 1 2 2, pred 1 2 0. Recall: class 1 1, class 2 1/2 -> 3/4.
    #   FPR: class 0 1/3, class 1 0/2, class 2 0/1 -> mean 1/9.
    y_true = ["0", "0", "1", "1", "2", "2"]
    y_pred = ["0", "1", "1", "1", "2", "0"]
    groups = pd.Series([0, 0, 0, 1, 1, 1], name="site")
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    by_group = report.by_group
    assert by_group.index.name == "site"
    np.testing.assert_allclose(by_group["tpr"], [0.75, 0.75])
    np.testing.assert_allclose(by_group["fnr"], [0.25, 0.25])
    np.testing.assert_allclose(by_group["fpr"], [1 / 6, 1 / 9])
    np.testing.assert_allclose(by_group["accuracy"], [2 / 3, 2 / 3])
    # The gaps are the constraints' (what the estimator optimises), per
    # class and then the largest, not spreads of the macro averages above:
    # recall of class 0 only in group 0, of class 1 1 vs 1, of class 2 only
    # in group 1 -> 0; FPR of class 0 0 vs 1/3, of class 1 1/2 vs 0, of
    # class 2 0 vs 0 -> 1/2 (the spread of the means: 1/6 - 1/9).
    assert report.tprd == pytest.approx(0.0)
    assert report.fprd == pytest.approx(1 / 2)
    assert report.max_fpr == pytest.approx(1 / 6)


def test_multiclass_tprd_is_the_largest_gap_of_one_class_recall():
    # Both groups' macro recall is 1/3, but class 0's recall is 1 vs 0: the
    # constraints' TPR difference is 1 (the spread of macro recall says 0).
    y_true = [0, 1, 2, 0, 1, 2]
    y_pred = [0, 2, 1, 1, 1, 1]
    groups = [0, 0, 0, 1, 1, 1]
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    np.testing.assert_allclose(report.by_group["tpr"], [1 / 3, 1 / 3])
    assert report.tprd == pytest.approx(1.0)
    groups = np.asarray(groups)
    assert report.tprd == TruePositiveRateParity().disparity(
        np.asarray(y_true), np.asarray(y_pred), groups
    )


def test_dataframe_groups_are_intersectional():
    # (f, x): true 1 0, pred 0 0 -> TPR 0, FPR 0
    # (f, y): true 1,   pred 1   -> TPR 1, FPR undefined
    # (m, x): true 0 1, pred 1 1 -> TPR 1, FPR 1
    # (m, y) does not occur and must not be reported.
    y_true = [1, 0, 1, 0, 1]
    y_pred = [0, 0, 1, 1, 1]
    groups = pd.DataFrame(
        {"sex": ["f", "f", "f", "m", "m"], "race": ["x", "x", "y", "x", "x"]}
    )
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    by_group = report.by_group
    assert by_group.index.names == ["sex", "race"]
    assert list(by_group.index) == [("f", "x"), ("f", "y"), ("m", "x")]
    np.testing.assert_allclose(by_group["tpr"], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(by_group["fpr"], [0.0, np.nan, 1.0])
    assert by_group["count"].tolist() == [2, 1, 2]
    assert report.tprd == pytest.approx(1.0)
    # The undefined FPR is left out of the summaries.
    assert report.fprd == pytest.approx(1.0)
    assert report.max_fpr == pytest.approx(1.0)


def test_other_group_containers_agree():
    expected = fairness_report(Y_TRUE, Y_PRED, sensitive_features=GROUPS)
    as_2d = np.array([GROUPS, [0] * 8]).T
    for groups in (np.array(GROUPS), pd.Series(GROUPS, index=range(10, 18)), as_2d):
        report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=groups)
        assert report.tprd == expected.tprd
        assert report.fprd == expected.fprd
    unnamed = fairness_report(Y_TRUE, Y_PRED, sensitive_features=pd.Series(GROUPS))
    assert unnamed.by_group.index.name == expected.by_group.index.name
    # Categories without rows are not groups.
    categorical = pd.Series(pd.Categorical(GROUPS, categories=["a", "b", "c"]))
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features=categorical)
    assert list(report.by_group.index) == ["a", "b"]
    report = fairness_report(Y_TRUE, Y_PRED, sensitive_features={"g": GROUPS})
    np.testing.assert_allclose(report.by_group["tpr"], expected.by_group["tpr"])
    # Labels as Series with an index that does not start at 0, and columns.
    report = fairness_report(
        pd.Series(Y_TRUE, index=range(100, 108)),
        np.array(Y_PRED).reshape(-1, 1),
        sensitive_features=GROUPS,
    )
    assert report.tprd == expected.tprd


def test_group_without_positives_has_undefined_tpr():
    # Group b has no positives: its TPR and FNR are NaN and do not count.
    y_true = [1, 1, 0, 0, 0]
    y_pred = [1, 0, 1, 0, 1]
    report = fairness_report(y_true, y_pred, sensitive_features=list("aaabb"))
    assert np.isnan(report.by_group.loc["b", "tpr"])
    assert np.isnan(report.by_group.loc["b", "fnr"])
    assert report.by_group.loc["b", "fpr"] == pytest.approx(0.5)
    assert report.tprd == pytest.approx(0.0)
    assert report.max_fnr == pytest.approx(0.5)
    assert report.fprd == pytest.approx(0.5)


def test_single_class_everywhere():
    report = fairness_report([1, 1, 1], [1, 0, 1], sensitive_features=[0, 0, 1])
    np.testing.assert_allclose(report.by_group["tpr"], [0.5, 1.0])
    assert np.isnan(report.fprd) and np.isnan(report.max_fpr)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"y_true": [0, 1, 1], "y_pred": [0, 1]},
            r"y_true, y_pred and sensitive_features .* y_true has 3, y_pred 2",
        ),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "sensitive_features": [0, 1, 1]},
            r"sensitive_features 3",
        ),
        ({"y_true": [0, np.nan], "y_pred": [0, 1]}, r"^y_true contains missing"),
        ({"y_true": [0, 1], "y_pred": [None, 1]}, r"^y_pred contains missing"),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "sensitive_features": ["a", None]},
            r"^sensitive_features contains missing",
        ),
        ({"y_true": [], "y_pred": []}, r"^y_true is empty"),
        ({"y_true": [0.1, 0.7], "y_pred": [0, 1]}, r"^y_true must hold class labels"),
        ({"y_true": [0, 1], "y_pred": [0.2, 0.9]}, r"^y_pred must hold class labels"),
        (
            {"y_true": np.zeros((2, 2)), "y_pred": [0, 1]},
            r"^y_true must be 1-dimensional",
        ),
        (
            {"y_true": ["a", "b"], "y_pred": [0, 1]},
            r"^y_true and y_pred must hold labels of the same kind",
        ),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "pos_label": 2},
            r"^pos_label=2 is not one of the labels \[0, 1\]",
        ),
        (
            {"y_true": [0, 1, 2], "y_pred": [0, 1, 2], "pos_label": 2},
            r"^pos_label is only used for binary targets",
        ),
        (
            {
                "y_true": [0, 1],
                "y_pred": [0, 1],
                "sensitive_features": np.zeros((2, 2, 2)),
            },
            r"^sensitive_features must be 1- or 2-dimensional",
        ),
    ],
)
def test_invalid_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fairness_report(**kwargs)
