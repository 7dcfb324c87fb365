import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fairlearn.reductions import (
    ExponentiatedGradient,
    GridSearch,
    TruePositiveRateParity,
)
from joblib import parallel_config
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from skforml import (
    FairGradClassifier,
    FairretClassifier,
    FORMLClassifier,
    FrontierResult,
    ReweightedClassifier,
    ToleranceResolutionWarning,
    pareto_front,
    sweep,
)
from skforml.datasets import make_biased_classification
from skforml.experiments._fairlearn_compat import ThresholdOptimizer
from skforml.experiments._frontier import COLUMNS, _set_knob

NET = {"max_epochs": 2, "hidden_layer_sizes": (8,), "batch_size": 64}


@pytest.fixture(scope="module")
def data():
    return make_biased_classification(n_samples=400, random_state=0)


def methods():
    logreg = LogisticRegression()
    return {
        "FORML": (
            FORMLClassifier(constraint="true_positive_rate_parity", **NET),
            {"tolerance": [0.05, None]},
        ),
        "fairret": (
            FairretClassifier(constraint="true_positive_rate_parity", **NET),
            {"strength": [0.1, 1.0]},
        ),
        "FairGrad": (
            FairGradClassifier(constraint="true_positive_rate_parity", **NET),
            {"epsilon": [0.0, 0.05]},
        ),
        "ExponentiatedGradient": (
            ExponentiatedGradient(
                logreg, constraints=TruePositiveRateParity(), max_iter=5
            ),
            {"constraints__difference_bound": [0.01, 0.1]},
        ),
        "ThresholdOptimizer": (
            ThresholdOptimizer(
                estimator=logreg,
                constraints="true_positive_rate_parity",
                predict_method="predict_proba",
            ),
            {"tol": [0.0, 0.05, 0.2]},
        ),
        "Uniform": ReweightedClassifier(weighting="uniform", **NET),
    }


@pytest.fixture(scope="module")
def result(data):
    X, y, groups = data
    return sweep(
        methods(), X, y, sensitive_features=groups, seeds=(0, 1), progress=False
    )


# --- pareto_front -----------------------------------------------------------


@pytest.mark.parametrize(
    "points, expected",
    [
        # (disparity, accuracy): lower left to upper right is a clean front.
        ([[0.01, 0.80], [0.05, 0.84], [0.10, 0.86]], [True, True, True]),
        # B is beaten by A on both axes; C by A on accuracy at equal gap.
        ([[0.02, 0.85], [0.03, 0.84], [0.02, 0.83]], [True, False, False]),
        # Equal accuracy at a larger gap is dominated.
        ([[0.02, 0.85], [0.04, 0.85]], [True, False]),
        # Equal points do not dominate each other.
        ([[0.02, 0.85], [0.02, 0.85], [0.01, 0.70]], [True, True, True]),
        # NaN is never on the front and beats nothing.
        ([[np.nan, 0.99], [0.05, 0.80], [0.03, np.nan]], [False, True, False]),
        (
            [[0.2, 0.9], [0.1, 0.8], [0.3, 0.85], [0.0, 0.7], [0.15, 0.9]],
            [False, True, False, True, True],
        ),
    ],
)
def test_pareto_front_on_hand_made_points(points, expected):
    np.testing.assert_array_equal(pareto_front(points), expected)


def test_pareto_front_matches_brute_force():
    rng = np.random.RandomState(0)
    points = np.round(rng.uniform(size=(60, 2)), 1)  # many ties
    dominated = [
        any((q[0] <= p[0]) and (q[1] >= p[1]) and (q != p).any() for q in points)
        for p in points
    ]
    np.testing.assert_array_equal(pareto_front(points), ~np.array(dominated))


def test_pareto_front_edge_cases():
    assert pareto_front(np.empty((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match=r"shape \(n_points, 2\).*\(3,\)"):
        pareto_front([1, 2, 3])


# --- the sweep --------------------------------------------------------------


def test_sweep_tables_and_frontiers(result):
    assert isinstance(result, FrontierResult)
    assert list(result.results.columns) == COLUMNS
    assert len(result.results) == (2 + 2 + 2 + 2 + 3 + 1) * 2
    assert not result.results.drop(columns="value").isna().any().any(), result.errors
    assert result.errors.empty
    assert list(result.methods.index) == list(methods())
    # One point per method and knob value, the mean over the seeds.
    points = result.points
    assert len(points) == 12
    fo = result.results.query("method == 'ThresholdOptimizer' and setting == 1")
    assert points.loc[("ThresholdOptimizer", 1), "accuracy"] == pytest.approx(
        fo["accuracy"].mean()
    )
    assert points.loc[("ThresholdOptimizer", 1), "value"] == 0.05
    assert points.loc[("FORML", 1), "value"] is None
    assert "tolerance=None" in result.points_text
    assert points.loc[("ThresholdOptimizer", 1), "disparity"] == pytest.approx(
        fo["tprd"].mean()
    )
    for method in result.methods.index:
        mine = points.loc[method]
        np.testing.assert_array_equal(
            mine["pareto"], pareto_front(mine[["disparity", "accuracy"]])
        )
    assert result.frontier["pareto"].all()
    assert result.frontier.loc["Uniform"].shape[0] == 1
    # Frontier rows run by increasing disparity within a method.
    for method in result.methods.index:
        assert result.frontier.loc[method]["disparity"].is_monotonic_increasing


def test_traits_and_fit_times(result):
    methods = result.methods
    assert methods.loc["ThresholdOptimizer", "sensitive_at_predict"]
    assert methods.loc["ThresholdOptimizer", "randomised"]
    assert methods.loc["ExponentiatedGradient", "randomised"]
    assert not methods.loc["ExponentiatedGradient", "sensitive_at_predict"]
    # FORML and the PyTorch peers: one deterministic network, no groups needed.
    for name in ("FORML", "fairret", "FairGrad", "Uniform"):
        assert not methods.loc[name, ["sensitive_at_predict", "randomised"]].any()
    assert methods.loc["fairret", "knob"] == "strength"
    assert methods.loc["FairGrad", "knob"] == "epsilon"
    table = result.table
    by_method = result.results.groupby("method")["fit_seconds"]
    pd.testing.assert_series_equal(
        table["sweep_seconds"], by_method.sum()[table.index], check_names=False
    )
    assert (table["fit_seconds"] > 0).all()
    grid = GridSearch(LogisticRegression(), constraints=TruePositiveRateParity())
    X, y, groups = make_biased_classification(n_samples=200, random_state=1)
    info = sweep(
        {"GridSearch": grid},
        X,
        y,
        sensitive_features=groups,
        seeds=(0,),
        progress=False,
    ).methods
    assert not info.loc["GridSearch", ["sensitive_at_predict", "randomised"]].any()


def test_best_within_and_table_from_hand_made_results():
    rows = pd.DataFrame(
        {
            "method": ["A"] * 6 + ["B"] * 2,
            "setting": [0, 0, 1, 1, 2, 2, 0, 0],
            "value": [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, None, None],
            "seed": [0, 1] * 4,
            "accuracy": [0.80, 0.82, 0.84, 0.86, 0.86, 0.88, 0.90, 0.90],
            "tprd": [0.00, 0.02, 0.03, 0.05, 0.09, 0.11, 0.20, 0.30],
            "max_fnr": 0.3,
            "fprd": 0.1,
            "max_fpr": 0.2,
            "fit_seconds": [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5],
        }
    )
    methods = pd.DataFrame(
        {"knob": ["k", None], "sensitive_at_predict": False, "randomised": False},
        index=pd.Index(["A", "B"]),
    )
    result = FrontierResult(rows, methods, tolerances=(0.005, 0.01, 0.05, 0.3))
    best = result.best_within(0.05)
    assert best.loc["A", "setting"] == 1
    assert best.loc["A", "accuracy"] == pytest.approx(0.85)
    assert np.isnan(best.loc["B", "accuracy"])
    table = result.table
    assert np.isnan(table.loc["A", "accuracy@0.005"])
    assert table.loc["A", "accuracy@0.01"] == pytest.approx(0.81)
    assert table.loc["A", "accuracy@0.3"] == pytest.approx(0.87)
    assert table.loc["B", "accuracy@0.3"] == pytest.approx(0.90)
    assert table.loc["A", "sweep_seconds"] == pytest.approx(7.0)
    assert table.loc["A", "fit_seconds"] == pytest.approx(7.0 / 6)
    text = result.table_text
    assert "0.850 ± 0.014 [0.2]" in text and "TPRD≤0.05" in text
    assert "mean ± std over 2 seeds" in text


def test_every_knob_value_shares_the_seed_and_split(data):
    # A knob that changes nothing must give identical points: each fit is
    # seeded from the split's seed, not from the knob value.
    X, y, groups = data
    net = ReweightedClassifier(weighting="uniform", **NET)
    result = sweep(
        {"Uniform": (net, {"verbose": [0, False]})},
        X,
        y,
        sensitive_features=groups,
        seeds=(0, 1),
        progress=False,
    )
    first, second = (
        result.results.query(f"setting == {i}")[
            ["seed", "accuracy", "tprd"]
        ].reset_index(drop=True)
        for i in (0, 1)
    )
    pd.testing.assert_frame_equal(first, second)
    assert result.results.groupby("seed")["accuracy"].nunique().eq(1).all()


def test_knobs_reach_the_estimator():
    eg = ExponentiatedGradient(
        LogisticRegression(), constraints=TruePositiveRateParity()
    )
    swept = _set_knob(eg, "constraints__difference_bound", 0.03)
    assert isinstance(swept.constraints, TruePositiveRateParity)
    assert swept.constraints.eps == 0.03
    assert _set_knob(LogisticRegression(), "C", 0.5).C == 0.5
    with pytest.raises(
        ValueError, match="'D' is not a parameter of LogisticRegression"
    ):
        _set_knob(LogisticRegression(), "D", 1)
    ratio = ExponentiatedGradient(
        LogisticRegression(), constraints=TruePositiveRateParity(ratio_bound=0.9)
    )
    with pytest.raises(ValueError, match="ratio_bound"):
        _set_knob(ratio, "constraints__difference_bound", 0.1)


def test_invalid_arguments(data):
    X, y, groups = data
    logreg = LogisticRegression()
    kwargs = {"sensitive_features": groups, "progress": False}
    with pytest.raises(TypeError, match="non-empty dict"):
        sweep({}, X, y, **kwargs)
    with pytest.raises(ValueError, match="one knob"):
        sweep({"L": (logreg, {"C": [1], "tol": [1]})}, X, y, **kwargs)
    with pytest.raises(ValueError, match="no values"):
        sweep({"L": (logreg, {"C": []})}, X, y, **kwargs)
    with pytest.raises(ValueError, match="'Q' is not a parameter"):
        sweep({"L": (logreg, {"Q": [1]})}, X, y, **kwargs)
    with pytest.raises(ValueError, match="disparity must be one of"):
        sweep({"L": logreg}, X, y, disparity="accuracy", **kwargs)
    with pytest.raises(ValueError, match="distinct seeds"):
        sweep({"L": logreg}, X, y, seeds=(1, 1), **kwargs)


class Broken(ClassifierMixin, BaseEstimator):
    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        if self.C > 1:
            raise RuntimeError("too large")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.ones(len(X), dtype=int)


def test_a_failing_fit_is_nan_and_warns(data, capsys):
    X, y, groups = data
    with pytest.warns(UserWarning, match="'Broken' at 2 failed on seed 0.*too large"):
        result = sweep(
            {"Broken": (Broken(), {"C": [1, 2]})},
            X,
            y,
            sensitive_features=groups,
            seeds=(0,),
        )
    assert np.isnan(result.results.loc[1, "accuracy"])
    assert result.results.loc[0, "accuracy"] > 0
    assert result.errors["value"].tolist() == [2]
    err = capsys.readouterr().err
    assert "[1/2] Broken C=1 seed=0" in err and "failed" in err


def test_plot_marks_traits(result):
    figure = result.plot()
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert "TPRD" in ax.get_xlabel() and "accuracy" in ax.get_ylabel()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(labels) == 6
    to_label = next(label for label in labels if label.startswith("ThresholdOpt"))
    assert "needs sensitive feature at predict" in to_label
    assert "randomised" in to_label
    forml_label = next(label for label in labels if label.startswith("FORML"))
    assert "randomised" not in forml_label and "sweep" in forml_label
    plt.close(figure)
    figure, ax = plt.subplots()
    assert result.plot(ax=ax) is figure
    plt.close(figure)


# --- backends ---------------------------------------------------------------

BACKEND_COLUMNS = ["method", "setting", "value", "seed", "accuracy", "tprd", "fprd"]


def small_sweep(data, **kwargs):
    X, y, groups = data
    return sweep(
        methods(),
        X[:240],
        y[:240],
        sensitive_features=groups[:240],
        seeds=(0, 1),
        progress=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def sequential(data):
    return small_sweep(data, n_jobs=1)


def assert_same_tables(expected, result):
    pd.testing.assert_frame_equal(
        expected.results[BACKEND_COLUMNS], result.results[BACKEND_COLUMNS]
    )
    timings = ["fit_seconds", "sweep_seconds"]
    pd.testing.assert_frame_equal(
        expected.table.drop(columns=timings), result.table.drop(columns=timings)
    )


def test_processes_give_the_same_table(data, sequential):
    assert_same_tables(sequential, small_sweep(data, n_jobs=2))


def test_threads_give_the_same_table(data, sequential):
    with parallel_config(backend="threading"):
        assert_same_tables(sequential, small_sweep(data, n_jobs=2))


def test_dask_cluster_gives_the_same_table(data, sequential):
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
        parallel_config(backend="dask"),
    ):
        assert_same_tables(sequential, small_sweep(data, n_jobs=2))


def test_unresolved_tolerances_are_summarised_once_per_method(data, capsys):
    X, y, groups = data
    forml = FORMLClassifier(constraint="true_positive_rate_parity", **NET)
    with pytest.warns(ToleranceResolutionWarning) as caught:
        sweep(
            {"FORML": (forml, {"tolerance": [0.01, 0.02, None]})},
            X,
            y,
            sensitive_features=groups,
            seeds=(0, 1),
        )
    summaries = [w for w in caught if w.category is ToleranceResolutionWarning]
    # Four fits had a tolerance (two values, two seeds); none of 400 rows
    # resolves 0.01: one warning says so for all of them.
    assert len(summaries) == 1
    assert str(summaries[0].message).startswith("FORML: in 4 fits")
    err = capsys.readouterr().err
    assert err.count("(tolerance below the noise)") == 4


def test_sweep_takes_the_notions_of_the_constraints(data):
    X, y, groups = data
    logreg = (LogisticRegression(), {"C": [0.01, 1.0]})
    kwargs = {"sensitive_features": groups, "progress": False, "seeds": (0,)}
    by_short_name = sweep({"L": logreg}, X, y, disparity="tprd", **kwargs)
    by_notion = sweep(
        {"L": logreg}, X, y, disparity="true_positive_rate_parity", **kwargs
    )
    # A notion the report has is its column: the same frontier.
    assert by_notion.disparity == "tprd"
    pd.testing.assert_frame_equal(
        by_notion.points.drop(columns="fit_seconds"),
        by_short_name.points.drop(columns="fit_seconds"),
    )
    assert "TPRD" in by_notion.table_text
    # Another notion adds its column, measured as the constraint does.
    odds = sweep({"L": logreg}, X, y, disparity="equalized_odds", **kwargs)
    assert odds.disparity == "equalized_odds"
    assert list(odds.results.columns) == [*COLUMNS, "equalized_odds"]
    gaps = odds.results[["tprd", "fprd"]].max(axis=1)
    np.testing.assert_allclose(odds.results["equalized_odds"], gaps)
    assert "equalized odds" in odds.table_text
