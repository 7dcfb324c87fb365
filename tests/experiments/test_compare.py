import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fairlearn.postprocessing import ThresholdOptimizer as FairlearnThresholdOptimizer
from fairlearn.reductions import ExponentiatedGradient, GridSearch
from joblib import parallel_backend
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression

from skforml import (
    ComparisonResult,
    ReweightedClassifier,
    compare,
    default_estimators,
    plot_comparison,
)
from skforml.datasets import make_biased_classification
from skforml.experiments._compare import COLUMNS
from skforml.experiments._fairlearn_compat import ThresholdOptimizer

TINY_SUITE = {
    "forml_epochs": 2,
    "backbone_epochs": 2,
    "mitigator_epochs": 2,
    "hidden_layer_sizes": (8,),
    "batch_size": 64,
    "eg_max_iter": 3,
    "neural_eg_max_iter": 1,
    "grid_size": 3,
    "neural_grid_size": 2,
}


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_biased_classification(n_samples=400, random_state=0)
    return X, y, groups


# compare fits clones, which deep-copy parameters: the recorders write to
# this module-level log under their ``tag``.
LOG = {}


class Recorder(ClassifierMixin, BaseEstimator):
    """Majority-class classifier recording what compare hands it.

    Column 0 of X carries the row id, so the recorded ids are the rows.
    """

    def __init__(self, random_state=None, tag="recorder"):
        self.random_state = random_state
        self.tag = tag

    @property
    def log(self):
        return LOG.setdefault(self.tag, [])

    def fit(self, X, y, *, sensitive_features=None):
        self.classes_ = np.unique(y)
        self.log.append(
            {
                "stage": "fit",
                "rows": X[:, 0].astype(int),
                "sensitive": sensitive_features,
                "random_state": self.random_state,
            }
        )
        return self

    def predict(self, X, *, sensitive_features=None, random_state=None):
        self.log.append(
            {
                "stage": "predict",
                "rows": X[:, 0].astype(int),
                "sensitive": sensitive_features,
                "random_state": random_state,
            }
        )
        return np.full(len(X), self.classes_[0])


class Plain(ClassifierMixin, BaseEstimator):
    """Estimator whose fit and predict take no sensitive features."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[-1])


class Broken(Plain):
    def fit(self, X, y):
        raise RuntimeError("this estimator always fails")


class Meta(ClassifierMixin, BaseEstimator):
    """Meta-estimator recording the random_state of its inner estimator."""

    def __init__(self, estimator, tag="meta"):
        self.estimator = estimator
        self.tag = tag

    def fit(self, X, y):
        LOG.setdefault(self.tag, []).append(self.estimator.random_state)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(X)


def with_row_ids(X):
    return np.column_stack([np.arange(len(X)), X])


def test_default_suite_returns_every_method_and_column(data):
    X, y, groups = data
    suite = default_estimators(**TINY_SUITE)
    result = compare(
        suite, X, y, sensitive_features=groups, seeds=(0, 1), progress=False
    )
    assert isinstance(result, ComparisonResult)
    assert list(result.results.columns) == COLUMNS
    assert result.results["method"].tolist() == [m for m in suite for _ in (0, 1)]
    assert result.results["seed"].tolist() == [0, 1] * len(suite)
    assert not result.results.isna().any().any(), result.errors
    assert result.errors.empty
    assert list(result.summary.index) == list(suite)
    for column in COLUMNS[2:]:
        assert (column, "mean") in result.summary.columns
        assert (column, "std") in result.summary.columns
    assert result.results[["accuracy", "tprd", "max_fnr"]].stack().between(0, 1).all()


def test_default_estimators_target_equal_opportunity():
    suite = default_estimators(neural_eg_max_iter=3, neural_grid_size=4)
    assert list(suite) == [
        "FORML",
        "Uniform",
        "LogReg",
        "EG (LogReg)",
        "GridSearch (LogReg)",
        "ThresholdOpt (LogReg)",
        "EG (MLP)",
        "GridSearch (MLP)",
        "ThresholdOpt (MLP)",
    ]
    for name in ("EG (LogReg)", "EG (MLP)", "GridSearch (LogReg)", "GridSearch (MLP)"):
        assert type(suite[name].constraints).__name__ == "TruePositiveRateParity"
    assert suite["EG (MLP)"].max_iter == 3
    assert suite["GridSearch (MLP)"].grid_size == 4
    assert isinstance(suite["EG (MLP)"].estimator, ReweightedClassifier)
    assert suite["EG (MLP)"].estimator.max_epochs == 10
    assert suite["ThresholdOpt (MLP)"].estimator.max_epochs == 20
    assert suite["FORML"].max_epochs == 40
    assert suite["ThresholdOpt (MLP)"].constraints == "true_positive_rate_parity"
    assert isinstance(suite["ThresholdOpt (MLP)"], ThresholdOptimizer)
    assert "EG (MLP)" not in default_estimators(neural_mitigators=False)


def test_failing_estimator_records_nan_and_warns(data):
    X, y, groups = data
    estimators = {"Plain": Plain(), "Broken": Broken()}
    with pytest.warns(UserWarning, match="'Broken' failed on seed 0.*always fails"):
        result = compare(
            estimators, X, y, sensitive_features=groups, seeds=(0,), progress=False
        )
    broken = result.results.set_index("method").loc["Broken"]
    assert broken[COLUMNS[2:]].isna().all()
    assert result.results.set_index("method").loc["Plain", "accuracy"] > 0
    assert result.errors["method"].tolist() == ["Broken"]
    assert "RuntimeError" in result.errors["error"].iloc[0]
    assert "failed" in result.summary_text


def test_sensitive_features_reach_only_estimators_that_take_them(data):
    X, y, groups = data
    X = with_row_ids(X)
    LOG.clear()
    compare(
        {"Recorder": Recorder(), "Plain": Plain()},
        X,
        y,
        sensitive_features=groups,
        seeds=(3,),
        progress=False,
    )
    fit, predict = LOG["recorder"]
    np.testing.assert_array_equal(fit["sensitive"], groups[fit["rows"]])
    np.testing.assert_array_equal(predict["sensitive"], groups[predict["rows"]])
    # Seeds reach random_state, and randomised predict gets the seed too.
    assert fit["random_state"] == 3
    assert predict["random_state"] == 3
    assert len(np.intersect1d(fit["rows"], predict["rows"])) == 0
    assert len(fit["rows"]) + len(predict["rows"]) == len(y)


def test_splits_are_shared_stratified_and_seeded(data):
    X, y, groups = data
    X = with_row_ids(X)
    LOG.clear()
    compare(
        {"A": Recorder(tag="A"), "B": Recorder(tag="B")},
        X,
        y,
        sensitive_features=groups,
        seeds=(0, 1),
        test_size=0.25,
        progress=False,
    )
    train = [entry["rows"] for entry in LOG["A"] if entry["stage"] == "fit"]
    other = [entry["rows"] for entry in LOG["B"] if entry["stage"] == "fit"]
    for mine, theirs in zip(train, other):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(np.sort(train[0]), np.sort(train[1]))
    strata = groups * 2 + y
    for rows in train:
        expected = np.bincount(strata) * 0.75
        np.testing.assert_allclose(np.bincount(strata[rows]), expected, atol=1)


def test_nested_random_state_is_seeded(data):
    X, y, groups = data
    LOG.clear()
    meta = Meta(LogisticRegression(random_state=123))
    compare(
        {"Meta": meta}, X, y, sensitive_features=groups, seeds=(4, 5), progress=False
    )
    assert LOG["meta"] == [4, 5]
    assert meta.estimator.random_state == 123  # the caller's object is untouched


def test_fairlearn_estimators_get_sensitive_features(data):
    X, y, groups = data
    logreg = LogisticRegression()
    estimators = {
        "EG": ExponentiatedGradient(logreg, constraints=_tpr(), max_iter=3),
        "GS": GridSearch(logreg, constraints=_tpr(), grid_size=3),
        "TO": FairlearnThresholdOptimizer(
            estimator=logreg, constraints="true_positive_rate_parity"
        ),
    }
    result = compare(
        estimators, X, y, sensitive_features=groups, seeds=(0,), progress=False
    )
    assert not result.results.isna().any().any(), result.errors


def _tpr():
    from fairlearn.reductions import TruePositiveRateParity

    return TruePositiveRateParity()


def test_dataframe_inputs_and_parallel_runs_match_sequential(data):
    X, y, groups = data
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    y, groups = pd.Series(y), pd.Series(groups, name="group")
    estimators = {"LogReg": LogisticRegression(), "C=0.1": LogisticRegression(C=0.1)}
    kwargs = {"sensitive_features": groups, "seeds": (0, 1), "progress": False}
    sequential = compare(estimators, X, y, **kwargs)
    with parallel_backend("threading"):
        parallel = compare(estimators, X, y, n_jobs=2, **kwargs)
    columns = ["method", "seed", "accuracy", "tprd", "fprd"]
    pd.testing.assert_frame_equal(
        sequential.results[columns], parallel.results[columns]
    )


def test_progress_goes_to_stderr_and_can_be_silenced(data, capsys):
    X, y, groups = data
    compare({"Plain": Plain()}, X, y, sensitive_features=groups, seeds=(0, 1))
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("[1/2] Plain seed=0 ... ")
    assert lines[1].startswith("[2/2] Plain seed=1 ... ")
    assert lines[1].endswith("s")
    compare({"Plain": Plain()}, X, y, sensitive_features=groups, progress=False)
    assert capsys.readouterr().err == ""


def test_summary_text_and_plot(data):
    X, y, groups = data
    estimators = {"LogReg": LogisticRegression(), "Plain": Plain()}
    result = compare(
        estimators, X, y, sensitive_features=groups, seeds=(0, 1), progress=False
    )
    text = str(result)
    assert "±" in text and "LogReg" in text and "TPRD" in text and "max FNR" in text
    assert result.summary.loc["LogReg", ("accuracy", "mean")] == pytest.approx(
        result.results.query("method == 'LogReg'")["accuracy"].mean()
    )

    figure = result.plot()
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert "accuracy" in ax.get_xlabel() and "TPRD" in ax.get_ylabel()
    labels = {text.get_text() for text in ax.texts}
    assert {"LogReg", "Plain"} <= labels
    plt.close(figure)

    figure, ax = plt.subplots()
    assert plot_comparison(result.results, ax=ax) is figure
    plt.close(figure)

    single = compare(
        estimators, X, y, sensitive_features=groups, seeds=(0,), progress=False
    )
    assert "±" not in single.summary_text.splitlines()[1]


def test_invalid_arguments(data):
    X, y, groups = data
    with pytest.raises(TypeError, match="non-empty dict"):
        compare({}, X, y, sensitive_features=groups)
    for seeds in [(), (1, 1)]:
        with pytest.raises(ValueError, match="distinct seeds"):
            compare({"Plain": Plain()}, X, y, sensitive_features=groups, seeds=seeds)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        compare({"Plain": Plain()}, X, y, sensitive_features=groups[:-1])


def test_backbone_uses_its_sample_weights():
    # Class 1 weighs 0 except for a few rows: the fit must all but stop
    # predicting it, which a backbone ignoring its weights would not do.
    X, y, _ = make_biased_classification(
        n_samples=600, positive_rate=0.5, random_state=0
    )
    weights = np.where(y == 1, 0.0, 1.0)
    weights[np.flatnonzero(y == 1)[:5]] = 1.0
    settings = {"max_epochs": 30, "hidden_layer_sizes": (16,), "random_state": 0}
    uniform = ReweightedClassifier(**settings).fit(X, y)
    weighted = ReweightedClassifier(**settings).fit(X, y, sample_weight=weights)
    assert uniform.predict(X).mean() > 0.3
    assert weighted.predict(X).mean() < 0.1
