import numpy as np
import pandas as pd
import pytest
import sklearn
from imblearn.base import is_sampler
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.utils.estimator_checks import parametrize_with_checks
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression

from skforml import FORMLClassifier, FORMLSampler
from skforml.datasets import make_biased_classification


class StubFORML(BaseEstimator):
    """Stands in for FORML: a chosen weighted-loss average, no training.

    ``ema`` is the ``weighted_loss_ema_`` it reports; None uses the first
    feature. NaN marks validation rows.
    """

    def __init__(self, ema=None, random_state=None):
        self.ema = ema
        self.random_state = random_state

    def fit(self, X, y, sensitive_features=None):
        X = np.asarray(X, dtype=float)
        self.weighted_loss_ema_ = (
            X[:, 0].copy() if self.ema is None else np.asarray(self.ema, float)
        )
        self.fit_random_state_ = self.random_state
        return self


def forml(**params):
    return FORMLClassifier(max_epochs=4, hidden_layer_sizes=(16,), **params)


@pytest.fixture(scope="module")
def biased():
    X, y, groups = make_biased_classification(
        n_samples=400, n_features=4, random_state=0
    )
    return X, y, groups


def test_removes_exactly_n_remove_rows_of_lowest_ema(biased):
    X, y, groups = biased
    sampler = FORMLSampler(forml(), n_remove=37, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y, sensitive_features=groups)
    assert X_res.shape == (len(X) - 37, X.shape[1])
    assert y_res.shape == (len(X) - 37,)
    assert len(sampler.removed_indices_) == 37
    kept, removed = sampler.sample_indices_, sampler.removed_indices_
    assert np.all(np.diff(kept) > 0)
    np.testing.assert_array_equal(np.sort(np.r_[kept, removed]), np.arange(len(X)))
    np.testing.assert_array_equal(X_res, X[kept])
    np.testing.assert_array_equal(y_res, y[kept])
    # The removed rows are training rows, lowest weighted loss first.
    ema = sampler.estimator_.weighted_loss_ema_
    assert not sampler.estimator_.validation_mask_[removed].any()
    assert np.all(np.diff(ema[removed]) >= 0)
    assert ema[removed].max() <= np.nanmin(ema[kept]) + 1e-12


def test_rank_by_sample_weight_removes_lowest_weights(biased):
    X, y, groups = biased
    sampler = FORMLSampler(
        forml(meta_lr=0.3), n_remove=25, rank_by="sample_weight", random_state=0
    )
    sampler.fit_resample(X, y, sensitive_features=groups)
    estimator, removed = sampler.estimator_, sampler.removed_indices_
    weights = estimator.sample_weights_
    assert not estimator.validation_mask_[removed].any()
    assert np.all(np.diff(weights[removed]) >= 0)
    kept_train = np.setdiff1d(np.flatnonzero(~estimator.validation_mask_), removed)
    assert weights[removed].max() <= weights[kept_train].min()


def test_fraction_removes_floor_of_share():
    X = np.random.RandomState(0).normal(size=(101, 3))
    y = np.arange(101) % 2
    sampler = FORMLSampler(StubFORML(), fraction=0.25)
    X_res, _ = sampler.fit_resample(X, y)
    assert len(sampler.removed_indices_) == 25  # floor(0.25 * 101)
    assert X_res.shape == (76, 3)
    # n_remove takes precedence over fraction.
    sampler = FORMLSampler(StubFORML(), n_remove=3, fraction=0.5)
    assert len(sampler.fit_resample(X, y)[1]) == 98
    # Nothing to remove is allowed.
    assert len(FORMLSampler(StubFORML(), fraction=0.0).fit_resample(X, y)[1]) == 101


def test_deterministic_for_a_seed(biased):
    X, y, groups = biased
    runs = [
        FORMLSampler(forml(), fraction=0.2, random_state=3).fit_resample(
            X, y, sensitive_features=groups
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_random_state_goes_to_clone_only_when_unset():
    X = np.random.RandomState(0).normal(size=(40, 2))
    y = np.arange(40) % 2
    estimator = StubFORML()
    sampler = FORMLSampler(estimator, n_remove=2, random_state=7)
    sampler.fit_resample(X, y)
    assert sampler.estimator_.fit_random_state_ == 7
    assert sampler.estimator_ is not estimator and estimator.random_state is None
    sampler = FORMLSampler(StubFORML(random_state=1), n_remove=2, random_state=7)
    sampler.fit_resample(X, y)
    assert sampler.estimator_.fit_random_state_ == 1


def test_validation_rows_are_never_removed():
    n = 30
    ema = np.linspace(0, 1, n)
    ema[:5] = np.nan  # the lowest rows are validation rows
    X, y = np.zeros((n, 2)), np.arange(n) % 2
    sampler = FORMLSampler(StubFORML(ema=ema), n_remove=4, keep_groups=False)
    sampler.fit_resample(X, y)
    np.testing.assert_array_equal(sampler.removed_indices_, [5, 6, 7, 8])
    with pytest.raises(ValueError, match="n_remove"):
        FORMLSampler(StubFORML(ema=ema), n_remove=26, keep_groups=False).fit_resample(
            X, y
        )


def test_keep_groups_keeps_last_row_of_every_cell():
    # Cell (group 1, label 1) has the three lowest weighted losses.
    n = 40
    groups = np.r_[np.ones(3, int), np.zeros(n - 3, int)]
    y = np.r_[np.ones(3, int), np.arange(n - 3) % 2]
    ema = np.r_[[0.0, 0.1, 0.2], np.linspace(1, 2, n - 3)]
    X = np.zeros((n, 2))
    sampler = FORMLSampler(StubFORML(ema=ema), n_remove=5)
    X_res, y_res = sampler.fit_resample(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(sampler.removed_indices_, [0, 1, 3, 4, 5])
    kept = sampler.sample_indices_
    assert {(g, c) for g, c in zip(groups, y)} == {
        (g, c) for g, c in zip(groups[kept], y[kept])
    }
    # Without keep_groups the small cell goes first and disappears.
    sampler = FORMLSampler(StubFORML(ema=ema), n_remove=5, keep_groups=False)
    sampler.fit_resample(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(sampler.removed_indices_, [0, 1, 2, 3, 4])
    # keep_groups limits how many rows can go: 3 cells keep a row each.
    with pytest.raises(ValueError, match="n_remove.*keep_groups"):
        FORMLSampler(StubFORML(ema=ema), n_remove=38).fit_resample(
            X, y, sensitive_features=groups
        )
    FORMLSampler(StubFORML(ema=ema), n_remove=37).fit_resample(
        X, y, sensitive_features=groups
    )


def test_keep_groups_with_forml_keeps_every_group(biased):
    X, y, groups = biased
    sampler = FORMLSampler(forml(), fraction=0.8, random_state=0)
    _, y_res = sampler.fit_resample(X, y, sensitive_features=groups)
    kept = sampler.sample_indices_
    assert len(y_res) == len(y) - int(0.8 * len(y))
    assert set(zip(groups[kept], y_res)) == set(zip(groups, y))


def test_dataframe_in_dataframe_out():
    X, y, groups = make_biased_classification(
        n_samples=300, n_features=4, as_frame=True, random_state=1
    )
    X.index = X.index + 1000
    y.index = groups.index = X.index
    sampler = FORMLSampler(forml(), n_remove=20, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y, sensitive_features=groups)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    assert list(X_res.columns) == list(X.columns)
    pd.testing.assert_frame_equal(X_res, X.iloc[sampler.sample_indices_])
    pd.testing.assert_series_equal(y_res, y.iloc[sampler.sample_indices_])
    assert X_res.index.min() >= 1000


def test_default_estimator_without_sensitive_features():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    sampler = FORMLSampler(n_remove=10, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    assert X_res.shape == (190, 3)
    assert isinstance(sampler.estimator_, FORMLClassifier)
    # The default needs sensitive features, so the per-class constraint is used.
    assert sampler.estimator_.constraint == "true_positive_rate_parity"
    assert sampler.estimator is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_remove": -1}, "n_remove"),
        ({"n_remove": 1.5}, "n_remove"),
        ({"n_remove": 50}, "n_remove"),
        ({"n_remove": 49}, "n_remove"),  # keep_groups keeps one row per cell
        ({"fraction": 1.0}, "fraction"),
        ({"fraction": -0.1}, "fraction"),
        ({"fraction": 0.99}, "fraction"),  # keep_groups
        ({"keep_groups": "yes"}, "keep_groups"),
        ({"estimator": "forml"}, "estimator"),
        ({"rank_by": "loss"}, "rank_by"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(params, match):
    X, y = np.zeros((50, 2)), np.arange(50) % 2
    sampler = FORMLSampler(**{"estimator": StubFORML(), **params})
    with pytest.raises(ValueError, match=match):
        sampler.fit_resample(X, y)


def test_estimator_without_weighted_loss_is_rejected():
    class Plain(BaseEstimator):
        def fit(self, X, y, sensitive_features=None):
            return self

    X, y = np.zeros((20, 2)), np.arange(20) % 2
    with pytest.raises(TypeError, match="weighted_loss_ema_"):
        FORMLSampler(Plain(), n_remove=1).fit_resample(X, y)


def test_inconsistent_lengths_raise():
    with pytest.raises(ValueError, match="inconsistent"):
        FORMLSampler(StubFORML(), n_remove=1).fit_resample(
            np.zeros((10, 2)), np.arange(9) % 2
        )


# imbalanced-learn's own check suite. Its checks call fit_resample(X, y)
# without sensitive features (the classes are then the groups, and skforml
# warns that imbalanced-learn called fit without them) and on as few as 20
# rows (min_group_samples=1). Tiny settings keep the file fast.
CHECKED_SAMPLER = FORMLSampler(
    FORMLClassifier(
        max_epochs=2, batch_size=64, hidden_layer_sizes=(8,), min_group_samples=1
    ),
    fraction=0.1,
    random_state=0,
)


def imblearn_checks(estimators, expected_failed_checks):
    """imbalanced-learn's parametrize_with_checks, with strict expected failures.

    Its cases come as a list (it hands pytest a generator, which pytest 9
    deprecates) and its expected failures are strict, as in test_common.py: a
    listed check that starts passing fails the run, so that its entry goes.
    """
    mark = parametrize_with_checks(
        estimators, expected_failed_checks=lambda estimator: expected_failed_checks
    )
    argnames, argvalues = mark.args
    cases = []
    for case in argvalues:
        if isinstance(case, tuple):
            cases.append(case)
            continue
        (reason,) = (m.kwargs["reason"] for m in case.marks if m.name == "xfail")
        cases.append(
            pytest.param(
                *case.values, marks=pytest.mark.xfail(reason=reason, strict=True)
            )
        )
    return pytest.mark.parametrize(argnames, cases, **mark.kwargs)


SAMPLER_EXPECTED_FAILURES = {
    "check_samplers_pandas_sparse": (
        "the FORML estimator trains on dense rows, so a DataFrame of sparse "
        "columns is refused as a sparse matrix is (the sparse input tag is "
        "False); imbalanced-learn runs this check for every sampler that takes "
        "DataFrames"
    ),
}


@imblearn_checks([CHECKED_SAMPLER], SAMPLER_EXPECTED_FAILURES)
@pytest.mark.filterwarnings("ignore::skforml.MissingSensitiveFeaturesWarning")
def test_imblearn_compatible_sampler(estimator, check):
    check(estimator)


def test_imblearn_pipeline_routes_sensitive_features(biased):
    X, y, groups = biased
    groups = np.where(groups == 1, "minority", "majority")
    with sklearn.config_context(enable_metadata_routing=True):
        sampler = FORMLSampler(forml(), n_remove=40, random_state=0)
        sampler.set_fit_resample_request(sensitive_features=True)
        pipe = ImbPipeline([("condense", sampler), ("model", LogisticRegression())])
        pipe.fit(X, y, sensitive_features=groups)
    fitted = pipe.named_steps["condense"]
    # The groups reached FORML (without them its groups would be y's classes).
    assert fitted.estimator_.groups_ == ["majority", "minority"]
    assert len(fitted.sample_indices_) == len(X) - 40
    assert pipe.predict(X).shape == (len(X),)


def test_is_an_imblearn_sampler_with_its_fitted_attributes(biased):
    X, y, groups = biased
    sampler = FORMLSampler(StubFORML(), n_remove=10)
    assert is_sampler(sampler)
    assert sampler.fit(X, y, sensitive_features=groups) is sampler
    kept = y[sampler.sample_indices_]
    assert sampler.sampling_strategy_ == {
        label: int(np.sum(kept == label)) for label in np.unique(y).tolist()
    }
    assert sum(sampler.sampling_strategy_.values()) == len(X) - 10
    assert sampler.get_feature_names_out().tolist() == [
        f"x{i}" for i in range(X.shape[1])
    ]


def test_one_hot_labels_are_resampled_like_labels(biased):
    X, y, groups = biased
    one_hot = np.eye(2, dtype=int)[y]
    sampler = FORMLSampler(forml(), n_remove=20, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y, sensitive_features=groups)
    X_hot, y_hot = clone(sampler).fit_resample(X, one_hot, sensitive_features=groups)
    np.testing.assert_array_equal(X_hot, X_res)
    np.testing.assert_array_equal(y_hot, one_hot[sampler.sample_indices_])


@pytest.mark.parametrize(
    "y, match",
    [(np.linspace(0, 1, 50), "Unknown label type"), (np.zeros(50), "single class")],
)
def test_targets_that_are_not_classes_raise(y, match):
    with pytest.raises(ValueError, match=match):
        FORMLSampler(StubFORML(), n_remove=1).fit_resample(np.zeros((50, 2)), y)
