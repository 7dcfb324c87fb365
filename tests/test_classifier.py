import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
import torch.nn.functional as F
from _helpers import build_cell_spec
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skforml import FORMLClassifier, WeightCollapseWarning
from skforml.datasets import make_biased_classification
from skforml.training._split import balanced_validation_split

# Settings of a fit that takes well under a second on one core (as the
# session-scoped ``fitted_forml`` of conftest.py).
TINY = {"max_epochs": 3, "batch_size": 32, "hidden_layer_sizes": (8,)}


def _tpr_report(y_true, y_pred, groups):
    """True-positive-rate difference and max false-negative rate over groups."""
    tpr = np.array(
        [np.mean(y_pred[(groups == g) & (y_true == 1)] == 1) for g in np.unique(groups)]
    )
    return tpr.max() - tpr.min(), 1 - tpr.min()


# ------------------------------------------------------------------ basics


def test_fit_predict_proba_score(fitted_forml, biased_data):
    X, y, groups = biased_data
    clf = fitted_forml
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_features_in_ == X.shape[1]
    assert not hasattr(clf, "feature_names_in_")
    assert clf.groups_ == [0, 1]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all((proba >= 0) & (proba <= 1))
    y_pred = clf.predict(X)
    np.testing.assert_array_equal(y_pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) == pytest.approx(np.mean(y_pred == y))
    # Prediction on new data of the right width works, of the wrong one fails.
    assert clf.predict(X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :-1])


def test_string_labels_multiclass(multiclass_data):
    X, y, groups = multiclass_data
    clf = FORMLClassifier(**{**TINY, "max_epochs": 10}, lr=1e-2, random_state=0)
    clf.fit(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    assert clf.groups_ == ["f", "m"]
    y_pred = clf.predict(X)
    assert set(y_pred) <= {"cat", "dog", "emu"}
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.score(X, y) > 0.8


def test_multiclass_without_sensitive_features_uses_classes_as_groups(
    multiclass_data,
):
    X, y, _ = multiclass_data
    clf = FORMLClassifier(**TINY, random_state=0).fit(X, y)
    assert clf.groups_ == ["cat", "dog", "emu"]
    # The validation split holds min_group_samples rows of every class.
    assert all(np.sum(clf.validation_mask_ & (y == c)) >= 5 for c in clf.classes_)


@pytest.mark.parametrize(
    "constraint",
    [
        "true_positive_rate_parity",
        "false_positive_rate_parity",
        "equalized_odds",
        "error_rate_parity",
    ],
)
def test_every_constraint_fits_without_sensitive_features(biased_data, constraint):
    # The classes are then the groups, and every constraint compares the
    # per-class losses.
    X, y, _ = biased_data
    clf = FORMLClassifier(**TINY, constraint=constraint, random_state=0).fit(X, y)
    assert clf.groups_ == [0, 1]
    assert all(type(g) is int for g in clf.groups_)
    for label in (0, 1):
        assert np.sum(clf.validation_mask_ & (y == label)) >= 5


def test_dataframe_X_sets_feature_names():
    X, y, groups = make_biased_classification(
        n_samples=300, as_frame=True, random_state=0
    )
    clf = FORMLClassifier(**TINY, random_state=0).fit(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(clf.feature_names_in_, list(X.columns))
    assert clf.n_features_in_ == X.shape[1]
    assert clf.predict(X).shape == (300,)


def test_two_sensitive_columns_form_intersectional_groups(biased_data):
    X, y, groups = biased_data
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {"minority": groups, "age": np.where(rng.rand(len(y)) < 0.5, "young", "old")},
        index=np.arange(len(y))[::-1],
    )
    clf = FORMLClassifier(**TINY, min_group_samples=2, random_state=0)
    clf.fit(X, y, sensitive_features=frame)
    assert all(isinstance(g, tuple) for g in clf.groups_)
    assert {(int(a), b) for a, b in clf.groups_} == {
        (0, "young"),
        (0, "old"),
        (1, "young"),
        (1, "old"),
    }
    # Every intersectional (group, label) cell is in the validation split.
    val = clf.validation_mask_
    for minority in (0, 1):
        for age in ("young", "old"):
            for label in (0, 1):
                cell = (
                    (frame["minority"].to_numpy() == minority)
                    & (frame["age"].to_numpy() == age)
                    & (y == label)
                )
                assert np.sum(val & cell) >= 2


# ----------------------------------------------------------- fitted attributes


def test_sample_weights_and_validation_mask(fitted_forml, biased_data):
    X, y, groups = biased_data
    clf = fitted_forml
    weights, mask = clf.sample_weights_, clf.validation_mask_
    assert weights.shape == mask.shape == (len(X),)
    assert mask.dtype == bool
    # validation_size=0.2 of 300 rows, balanced over the 4 (group, label) cells.
    assert mask.sum() == 60
    for g in (0, 1):
        for label in (0, 1):
            assert np.sum(mask & (groups == g) & (y == label)) >= 5
    assert np.all(weights[mask] == 0)
    assert np.all(weights[~mask] > 0)
    assert weights[~mask].mean() == pytest.approx(1.0, rel=1e-5)
    # With meta_lr > 0 the weights moved away from uniform.
    assert weights[~mask].std() > 1e-3


def test_weighted_loss_ema_is_nan_exactly_on_validation_rows(fitted_forml):
    ema, mask = fitted_forml.weighted_loss_ema_, fitted_forml.validation_mask_
    np.testing.assert_array_equal(np.isnan(ema), mask)
    assert np.all(ema[~mask] >= 0)
    assert ema[~mask].std() > 0


def test_history_records_meta_loss_and_weight_ess(fitted_forml):
    history = fitted_forml.history_
    assert len(history) == fitted_forml.max_epochs == 3
    ess = history[:, "weight_ess"]
    meta = history[:, "meta_loss"]
    assert len(ess) == len(meta) == 3
    assert all(0 < e <= 1 for e in ess)
    # The weights move every epoch, so the effective sample size shrinks.
    assert ess[-1] < 1.0
    assert all(np.isfinite(m) and m >= 0 for m in meta)


def test_meta_lr_zero_keeps_uniform_weights(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(**TINY, meta_lr=0, random_state=0)
    clf.fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(clf.sample_weights_[~clf.validation_mask_], 1.0)
    assert clf.net_.engine_ is None
    assert all(e == pytest.approx(1.0) for e in clf.history_[:, "weight_ess"])


@pytest.mark.parametrize("seed", [0, 7])
def test_meta_lr_zero_equals_an_independent_uniform_torch_loop(biased_data, seed):
    """meta_lr=0 is plain training: rebuild it by hand in torch, bit for bit.

    The loop below shares nothing with the package but the seeds: the
    validation rows (checked against ``validation_mask_``), the torch seed of
    the initialisation and the seed of the batch order, which ``fit`` draws as
    ``rng.randint(2**31 - 1, size=3)`` right after the split.
    """
    X, y, groups = biased_data
    epochs, batch_size, hidden = 4, 32, 8
    clf = FORMLClassifier(
        max_epochs=epochs,
        batch_size=batch_size,
        hidden_layer_sizes=(hidden,),
        meta_lr=0,
        random_state=seed,
    ).fit(X, y, sensitive_features=groups)

    # Replay the split to advance the RandomState as fit does.
    rng = np.random.RandomState(seed)
    strata = groups * 2 + y
    spec = build_cell_spec(
        "equalized_odds",
        group_names=[0, 1],
        class_names=[0, 1],
        groups_are_classes=False,
        present=np.ones(4, dtype=bool),
    )
    validation, train = balanced_validation_split(
        strata,
        spec.cells(strata),
        spec.cell_names,
        validation_size=0.2,
        min_group_samples=5,
        rng=rng,
    )
    np.testing.assert_array_equal(train, np.flatnonzero(~clf.validation_mask_))
    torch_seed, shuffle_seed, _ = rng.randint(2**31 - 1, size=3)

    state = torch.get_rng_state()
    try:
        torch.manual_seed(int(torch_seed))
        model = nn.Sequential(
            nn.Linear(X.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )
    finally:
        torch.set_rng_state(state)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_train = torch.from_numpy(X[train].astype(np.float32))
    y_train = torch.from_numpy(y[train].astype(np.int64))
    generator = torch.Generator().manual_seed(int(shuffle_seed))
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(X_train[batch]), y_train[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        logits = model(torch.from_numpy(X.astype(np.float32)))
    expected = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=0, atol=1e-5)
    # A training run of a different seed is far from it: the check has teeth.
    other = (
        clone(clf)
        .set_params(random_state=seed + 1)
        .fit(X, y, sensitive_features=groups)
    )
    assert np.abs(other.predict_proba(X) - expected).max() > 1e-3


# ------------------------------------------------------------------- fairness


def _fairness_gap(n_train, seeds, **params):
    """Mean (TPRD, max FNR, accuracy) on held-out rows: uniform vs FORML."""
    results = {"uniform": [], "forml": []}
    for seed in seeds:
        X, y, groups = make_biased_classification(
            n_samples=n_train + 2000, random_state=seed
        )
        train, test = slice(0, n_train), slice(n_train, None)
        for name, meta_lr in (("uniform", 0.0), ("forml", params["meta_lr"])):
            clf = FORMLClassifier(**{**params, "meta_lr": meta_lr}, random_state=seed)
            clf.fit(X[train], y[train], sensitive_features=groups[train])
            y_pred = clf.predict(X[test])
            tprd, max_fnr = _tpr_report(y[test], y_pred, groups[test])
            results[name].append((tprd, max_fnr, np.mean(y_pred == y[test])))
    return {name: np.mean(values, axis=0) for name, values in results.items()}


def test_forml_lowers_tprd_and_max_fnr_on_biased_data():
    # Half the default budget, so a larger weight step than the default.
    result = _fairness_gap(
        1000, seeds=(0, 1, 2), max_epochs=20, batch_size=64, meta_lr=0.03
    )
    uniform, forml = result["uniform"], result["forml"]
    assert forml[0] < uniform[0], result  # TPRD
    assert forml[1] < uniform[1], result  # max FNR: the worst group is lifted
    # Not by predicting everyone positive (accuracy 0.3 on this data).
    assert forml[2] > 0.6, result


@pytest.mark.slow
def test_forml_lowers_tprd_and_max_fnr_on_biased_data_full_budget():
    # The defaults (40 epochs, batch 128, meta_lr 0.01) on 3000 rows.
    meta_lr = FORMLClassifier().meta_lr
    result = _fairness_gap(3000, seeds=(0, 1, 2), meta_lr=meta_lr)
    uniform, forml = result["uniform"], result["forml"]
    assert forml[0] < 0.5 * uniform[0], result
    assert forml[1] < uniform[1], result
    assert forml[2] > 0.6, result


# ----------------------------------------------------- scikit-learn integration


class _RecordingFORML(FORMLClassifier):
    """Records the sensitive features each fit receives."""

    received = []

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        type(self).received.append((len(X), np.asarray(sensitive_features).copy()))
        return super().fit(
            X, y, sensitive_features=sensitive_features, sample_weight=sample_weight
        )


def test_pipeline_grid_search_routes_each_folds_sensitive_features(biased_data):
    X, y, groups = biased_data
    _RecordingFORML.received = []
    cv = KFold(n_splits=3)
    with sklearn.config_context(enable_metadata_routing=True):
        estimator = _RecordingFORML(
            **{**TINY, "max_epochs": 2}, min_group_samples=2, random_state=0
        ).set_fit_request(sensitive_features=True)
        pipe = Pipeline([("scale", StandardScaler()), ("forml", estimator)])
        search = GridSearchCV(pipe, {"forml__lr": [1e-3, 1e-2]}, cv=cv)
        search.fit(X, y, sensitive_features=groups)
    folds = [train for train, _ in cv.split(X)]
    received = _RecordingFORML.received
    # 2 candidates x 3 folds, then the refit on all rows.
    assert len(received) == 7
    for i, (n_rows, sensitive) in enumerate(received[:6]):
        train = folds[i % 3]
        assert n_rows == len(train) == len(sensitive)
        np.testing.assert_array_equal(sensitive, groups[train])
    np.testing.assert_array_equal(received[6][1], groups)
    best = search.best_estimator_[-1]
    assert len(best.validation_mask_) == len(best.sample_weights_) == len(X)
    assert search.best_params_["forml__lr"] in (1e-3, 1e-2)
    assert 0 <= search.best_score_ <= 1


def test_unrequested_sensitive_features_are_an_error_with_routing(biased_data):
    X, y, groups = biased_data
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("scale", StandardScaler()), ("forml", FORMLClassifier())])
        with pytest.raises(ValueError, match="sensitive_features"):
            pipe.fit(X, y, sensitive_features=groups)


def test_clone_and_params(fitted_forml):
    cloned = clone(fitted_forml)
    assert cloned.get_params() == fitted_forml.get_params()
    assert not hasattr(cloned, "net_")
    assert not hasattr(cloned, "sample_weights_")
    original = fitted_forml.get_params()["meta_lr"]
    cloned.set_params(meta_lr=original + 0.3, hidden_layer_sizes=(4, 4))
    assert cloned.get_params()["meta_lr"] == original + 0.3
    assert cloned.get_params()["hidden_layer_sizes"] == (4, 4)
    assert fitted_forml.get_params()["meta_lr"] == original


def test_pickle_round_trip_gives_identical_predictions(fitted_forml, biased_data):
    X, y, groups = biased_data
    restored = pickle.loads(pickle.dumps(fitted_forml))
    np.testing.assert_array_equal(
        restored.predict_proba(X), fitted_forml.predict_proba(X)
    )
    np.testing.assert_array_equal(
        restored.sample_weights_, fitted_forml.sample_weights_
    )
    np.testing.assert_array_equal(
        restored.validation_mask_, fitted_forml.validation_mask_
    )
    # A restored model can be refitted.
    restored.fit(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(
        restored.sample_weights_, fitted_forml.sample_weights_
    )


def test_same_random_state_gives_identical_fits(fitted_forml, biased_data):
    X, y, groups = biased_data
    torch.manual_seed(12345)  # the global generator must not matter
    again = clone(fitted_forml).fit(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(again.sample_weights_, fitted_forml.sample_weights_)
    np.testing.assert_array_equal(again.validation_mask_, fitted_forml.validation_mask_)
    np.testing.assert_array_equal(again.predict_proba(X), fitted_forml.predict_proba(X))


def test_different_random_state_gives_different_fits(fitted_forml, biased_data):
    X, y, groups = biased_data
    other = clone(fitted_forml).set_params(random_state=1)
    other.fit(X, y, sensitive_features=groups)
    assert not np.array_equal(other.validation_mask_, fitted_forml.validation_mask_)
    assert not np.allclose(other.predict_proba(X), fitted_forml.predict_proba(X))


def test_fit_leaves_global_rng_states_alone(biased_data):
    X, y, groups = biased_data
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    clf = FORMLClassifier(**TINY, random_state=3)
    clf.fit(X, y, sensitive_features=groups)
    clf.predict_proba(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(np.random.get_state(), numpy_state, strict=True)
    )


# --------------------------------------------------------------------- errors


def _too_small_group(X, y, groups):
    groups = groups.copy()
    groups[:] = 0
    # Group 1: 8 positives and 8 negatives; at most 4 of each can be held out.
    groups[np.flatnonzero(y == 1)[:8]] = 1
    groups[np.flatnonzero(y == 0)[:8]] = 1
    return X, y, groups


def _nan(X, y, groups):
    X = X.copy()
    X[3, 2] = np.nan
    return X, y, groups


def _inf(X, y, groups):
    X = X.copy()
    X[5, 0] = np.inf
    return X, y, groups


ERRORS = [
    ("short-sensitive", {}, lambda X, y, g: (X, y, g[:-1]), ValueError,
     "sensitive_features has 299 rows but X has 300"),
    ("nan-X", {}, _nan, ValueError, "X contains NaN"),
    ("inf-X", {}, _inf, ValueError, "X contains infinity"),
    ("one-class", {}, lambda X, y, g: (X, np.zeros_like(y), g), ValueError,
     "y contains only one class"),
    ("small-group", {"min_group_samples": 5}, _too_small_group, ValueError,
     "min_group_samples=5 validation rows of group 1 with label"),
    ("constraint", {"constraint": "statistical_parity"}, None, ValueError,
     "constraint must be a registered"),
    ("meta-loss", {"meta_loss": "hinge"}, None, ValueError, "'meta_loss' parameter"),
    ("negative-lr", {"lr": -1e-3}, None, ValueError, "'lr' parameter"),
    ("zero-lr", {"lr": 0.0}, None, ValueError, "'lr' parameter"),
    ("negative-meta-lr", {"meta_lr": -0.1}, None, ValueError, "'meta_lr' parameter"),
    ("negative-lookahead-lr", {"lookahead_lr": -1.0}, None, ValueError,
     "'lookahead_lr' parameter"),
    ("one-group", {}, lambda X, y, g: (X, y, np.ones_like(g)), ValueError,
     "sensitive_features holds a single group"),
    ("scalar-sensitive", {}, lambda X, y, g: (X, y, 1), TypeError,
     "sensitive_features must be an array-like"),
    ("fpr-multiclass", {"constraint": "false_positive_rate_parity"},
     lambda X, y, g: (X, np.arange(len(y)) % 3, g), ValueError, "binary targets"),
    ("group-without-positives", {"constraint": "true_positive_rate_parity"},
     lambda X, y, g: (X, y, np.where(y == 1, 0, g)), ValueError,
     "Sensitive group 1 has no rows with label"),
    ("wrong-sample-weight", {}, "sample_weight", ValueError, "sample_weight"),
]  # fmt: skip


@pytest.mark.parametrize(
    "params, make_data, error, match",
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_fit_errors_name_the_argument(biased_data, params, make_data, error, match):
    X, y, groups = biased_data
    fit_params = {}
    if make_data == "sample_weight":
        fit_params["sample_weight"] = -np.ones(len(y))
    elif make_data is not None:
        X, y, groups = make_data(X, y, groups)
    clf = FORMLClassifier(**TINY, random_state=0).set_params(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y, sensitive_features=groups, **fit_params)


def test_error_messages_show_labels_as_plain_values(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(**TINY, constraint="true_positive_rate_parity")
    with pytest.raises(ValueError) as single_class:
        clf.fit(X, np.ones_like(y), sensitive_features=groups)
    with pytest.raises(ValueError) as no_positives:
        clf.fit(X, y, sensitive_features=np.where(y == 1, 0, groups))
    for info in (single_class, no_positives):
        assert "np.int64" not in str(info.value)
    assert "with label 1," in str(no_positives.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists")
def test_cuda_device_without_gpu_raises(biased_data):
    X, y, groups = biased_data
    with pytest.raises(ValueError, match="device='cuda'"):
        FORMLClassifier(**TINY, device="cuda").fit(X, y, sensitive_features=groups)


def test_predict_before_fit_raises_not_fitted(biased_data):
    X, _, _ = biased_data
    with pytest.raises(NotFittedError):
        FORMLClassifier().predict(X)


def test_predict_proba_before_fit_raises_not_fitted(biased_data):
    X, _, _ = biased_data
    with pytest.raises(NotFittedError):
        FORMLClassifier().predict_proba(X)


# ------------------------------------------------------- inputs left untouched


@pytest.mark.parametrize("kind", ["numpy64", "numpy32", "pandas"])
def test_fit_never_modifies_the_callers_data(biased_data, kind):
    X, y, groups = biased_data
    rng = np.random.RandomState(0)
    sample_weight = rng.uniform(0.5, 2.0, size=len(y))
    if kind == "numpy32":
        X = np.ascontiguousarray(X, dtype=np.float32)
    if kind == "pandas":
        index = np.arange(len(y))[::-1] + 100
        X = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], index=index)
        y = pd.Series(y, index=index, name="y")
        groups = pd.DataFrame(
            {"g": groups, "h": np.where(np.arange(len(y)) % 2, "a", "b")}, index=index
        )
        sample_weight = pd.Series(sample_weight, index=index)
    copies = [
        v.copy(deep=True) if hasattr(v, "iloc") else v.copy()
        for v in (X, y, groups, sample_weight)
    ]
    clf = FORMLClassifier(**TINY, min_group_samples=2, random_state=0)
    clf.fit(X, y, sensitive_features=groups, sample_weight=sample_weight)
    clf.predict(X)
    for value, copy in zip((X, y, groups, sample_weight), copies, strict=True):
        if hasattr(value, "iloc"):
            pd.testing.assert_frame_equal(pd.DataFrame(value), pd.DataFrame(copy))
        else:
            np.testing.assert_array_equal(value, copy)
            assert value.dtype == copy.dtype


READ_ONLY_SCRIPT = """
import warnings
import numpy as np
from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification

warnings.simplefilter("error")
X, y, groups = make_biased_classification(n_samples=200, random_state=0)
X = np.ascontiguousarray(X, dtype=np.float32)
X.setflags(write=False)
clf = FORMLClassifier(max_epochs=1, hidden_layer_sizes=(4,), random_state=0)
clf.fit(X, y, sensitive_features=groups)
clf.predict_proba(X)
"""


def test_read_only_float32_input_fits_without_warnings():
    # In a fresh interpreter: torch emits this warning once per process.
    result = subprocess.run(
        [sys.executable, "-c", READ_ONLY_SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------- sample_weight


def test_zero_caller_weight_rows_get_weight_zero(biased_data):
    X, y, groups = biased_data
    sample_weight = np.ones(len(y))
    sample_weight[::10] = 0
    clf = FORMLClassifier(**TINY, random_state=0)
    clf.fit(X, y, sensitive_features=groups, sample_weight=sample_weight)
    train = ~clf.validation_mask_
    assert np.all(clf.sample_weights_[train & (sample_weight == 0)] == 0)
    assert np.all(clf.sample_weights_[train & (sample_weight > 0)] > 0)
    assert clf.sample_weights_[train].mean() == pytest.approx(1.0, rel=1e-5)
    assert np.all(np.isfinite(clf.predict_proba(X)))


@pytest.mark.parametrize("meta_lr", [0.0, 0.1])
def test_batches_of_only_zero_weight_rows_stay_finite(biased_data, meta_lr):
    X, y, groups = biased_data
    sample_weight = np.ones(len(y))
    sample_weight[::2] = 0
    sample_weight[1::4] = 0
    clf = FORMLClassifier(
        max_epochs=1,
        batch_size=2,
        hidden_layer_sizes=(4,),
        meta_lr=meta_lr,
        random_state=0,
    )
    clf.fit(X, y, sensitive_features=groups, sample_weight=sample_weight)
    assert np.all(np.isfinite(clf.sample_weights_))
    assert np.all(np.isfinite(clf.predict_proba(X)))


# ------------------------------------------------------------- other options


@pytest.mark.parametrize(
    "constraint",
    [
        "true_positive_rate_parity",
        "false_positive_rate_parity",
        "equalized_odds",
        "error_rate_parity",
    ],
)
@pytest.mark.parametrize(
    "meta_loss", ["mean_loss_discrepancy", "max_loss_discrepancy", "cross_entropy"]
)
def test_every_constraint_and_meta_loss_fits(biased_data, constraint, meta_loss):
    X, y, groups = biased_data
    clf = FORMLClassifier(
        max_epochs=1,
        batch_size=64,
        hidden_layer_sizes=(4,),
        constraint=constraint,
        meta_loss=meta_loss,
        random_state=0,
    ).fit(X, y, sensitive_features=groups)
    assert np.all(np.isfinite(clf.sample_weights_))
    assert clf.sample_weights_[~clf.validation_mask_].std() > 0


def test_callable_meta_loss_receives_validation_losses_and_cells(biased_data):
    X, y, groups = biased_data
    calls = []

    def minority_positive_loss(losses, cells):
        calls.append((losses.detach().clone(), cells.clone()))
        return losses[cells == 3].mean()

    clf = FORMLClassifier(
        **TINY,
        constraint="true_positive_rate_parity",
        meta_loss=minority_positive_loss,
        random_state=0,
    ).fit(X, y, sensitive_features=groups)
    n_batches = -(-int((~clf.validation_mask_).sum()) // TINY["batch_size"])
    assert len(calls) == TINY["max_epochs"] * n_batches
    for losses, cells in calls:
        assert losses.shape == cells.shape
        assert torch.all(losses >= 0)
        # TPR parity compares the groups within each label: (group, label)
        # cells 0 (0, 0), 1 (0, 1), 2 (1, 0), 3 (1, 1); each cell has
        # min_group_samples rows.
        assert set(cells.tolist()) == {0, 1, 2, 3}
        assert all((cells == cell).sum() >= 5 for cell in range(4))
    meta = clf.history_[:, "meta_loss"]
    assert len(meta) == TINY["max_epochs"]


def test_verbose_prints_a_table_per_epoch(biased_data, capsys):
    X, y, groups = biased_data
    FORMLClassifier(**TINY, verbose=1, random_state=0).fit(
        X, y, sensitive_features=groups
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    header = lines[0]
    for column in ("epoch", "train_loss", "meta_loss", "weight_ess", "dur"):
        assert column in header
    rows = [line for line in lines if line.split()[0].isdigit()]
    assert [int(row.split()[0]) for row in rows] == [1, 2, 3]


def test_verbose_zero_prints_nothing(biased_data, capsys):
    X, y, groups = biased_data
    FORMLClassifier(**TINY, random_state=0).fit(X, y, sensitive_features=groups)
    assert capsys.readouterr().out == ""


def test_huge_meta_lr_warns_weight_collapse(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(**{**TINY, "max_epochs": 6}, meta_lr=5.0, random_state=0)
    with pytest.warns(WeightCollapseWarning, match="effective sample size"):
        clf.fit(X, y, sensitive_features=groups)
    assert min(clf.history_[:, "weight_ess"]) < 0.2


def test_warm_start_continues_training(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(**TINY, warm_start=True, random_state=0)
    clf.fit(X, y, sensitive_features=groups)
    weights = clf.sample_weights_.copy()
    mask = clf.validation_mask_.copy()
    proba = clf.predict_proba(X)
    net = clf.net_
    clf.fit(X, y, sensitive_features=groups)
    assert clf.net_ is net
    assert len(clf.history_) == 2 * TINY["max_epochs"]
    np.testing.assert_array_equal(clf.validation_mask_, mask)
    assert not np.allclose(clf.sample_weights_, weights)
    assert not np.allclose(clf.predict_proba(X), proba)
    assert clf.sample_weights_[~mask].mean() == pytest.approx(1.0, rel=1e-5)
    # Without warm_start the next fit starts over.
    clf.set_params(warm_start=False).fit(X, y, sensitive_features=groups)
    assert len(clf.history_) == TINY["max_epochs"]
    np.testing.assert_array_equal(clf.sample_weights_, weights)


def test_warm_start_with_other_rows_raises(biased_data):
    X, y, groups = biased_data
    clf = FORMLClassifier(**TINY, warm_start=True, random_state=0)
    clf.fit(X, y, sensitive_features=groups)
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X[:200], y[:200], sensitive_features=groups[:200])


def test_batchnorm_module_falls_back_to_unrolled(biased_data):
    X, y, groups = biased_data
    module = nn.Sequential(
        nn.Linear(X.shape[1], 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)
    )
    clf = FORMLClassifier(module, max_epochs=2, batch_size=32, random_state=0)
    with pytest.warns(UserWarning, match="falling back to meta_gradient='unrolled'"):
        clf.fit(X, y, sensitive_features=groups)
    assert clf.net_.engine_ == "unrolled"
    assert clf.sample_weights_[~clf.validation_mask_].std() > 0
    # The caller's module instance is copied, not trained.
    assert module[1].num_batches_tracked.item() == 0


def test_module_class_with_module_params(biased_data):
    X, y, groups = biased_data

    class Net(nn.Module):
        def __init__(self, n_in, width):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(n_in, width), nn.Tanh())
            self.head = nn.Linear(width, 2)

        def forward(self, X):
            return self.head(self.body(X))

    clf = FORMLClassifier(
        Net,
        module_params={"n_in": X.shape[1], "width": 5},
        max_epochs=2,
        batch_size=32,
        random_state=0,
    ).fit(X, y, sensitive_features=groups)
    assert clf.net_.module_.head.in_features == 5
    assert clf.predict_proba(X).shape == (len(X), 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu(biased_data):
    X, y, groups = biased_data
    params = {**TINY, "random_state": 0}
    cpu = FORMLClassifier(**params).fit(X, y, sensitive_features=groups)
    gpu = FORMLClassifier(**params, device="cuda").fit(X, y, sensitive_features=groups)
    assert next(gpu.net_.module_.parameters()).device.type == "cuda"
    np.testing.assert_array_equal(gpu.validation_mask_, cpu.validation_mask_)
    np.testing.assert_allclose(gpu.sample_weights_, cpu.sample_weights_, atol=2e-2)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-2)
    assert np.mean(gpu.predict(X) == cpu.predict(X)) > 0.98
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_allclose(restored.predict_proba(X), gpu.predict_proba(X))


# ------------------------------------------- sensitive features that never came


# fairlearn's own pandas deprecation, not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_warns_when_a_fairlearn_reduction_drops_sensitive_features(biased_data):
    from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity

    from skforml import MissingSensitiveFeaturesWarning

    X, y, groups = biased_data
    reduction = ExponentiatedGradient(
        FORMLClassifier(max_epochs=1, random_state=0),
        constraints=TruePositiveRateParity(),
        max_iter=2,
    )
    with pytest.warns(MissingSensitiveFeaturesWarning, match="fairlearn"):
        reduction.fit(X, y, sensitive_features=groups)


def test_warns_when_requested_sensitive_features_do_not_arrive(biased_data):
    from skforml import MissingSensitiveFeaturesWarning

    X, y, _ = biased_data
    with sklearn.config_context(enable_metadata_routing=True):
        clf = FORMLClassifier(max_epochs=1, random_state=0)
        clf.set_fit_request(sensitive_features=True)
        with pytest.warns(MissingSensitiveFeaturesWarning, match="requests them"):
            clf.fit(X, y)


def test_no_warning_without_a_request_or_a_wrapper(biased_data):
    X, y, _ = biased_data
    # pytest turns warnings into errors: a spurious warning fails here.
    FORMLClassifier(max_epochs=1, random_state=0).fit(X, y)
