"""Checks of X and the warnings about silently wrong inputs."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from skforml import FeatureScaleWarning, FORMLClassifier, IndexMismatchWarning
from skforml.checks._arguments import (
    check_fit_data,
    check_predict_data,
    check_sample_weight_nonnegative,
)
from skforml.checks._warnings import (
    SCALE_LIMIT,
    check_feature_scale,
    check_index_alignment,
)
from skforml.datasets import load_digits_noisy, make_biased_classification


def test_check_sample_weight_nonnegative():
    assert check_sample_weight_nonnegative(None, 3) is None
    out = check_sample_weight_nonnegative([1, 0, 2], 3)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1, 0, 2])
    with pytest.raises(ValueError, match="sample_weight has shape"):
        check_sample_weight_nonnegative([1, 2], 3)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        check_sample_weight_nonnegative([1, -1, 2], 3)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        check_sample_weight_nonnegative([1, np.inf, 2], 3)
    with pytest.raises(ValueError, match="sample_weight is zero"):
        check_sample_weight_nonnegative([0, 0, 0], 3)


# ------------------------------------------------------ X of any shape (#12)


class TinyCNN(nn.Module):
    """One convolution over (C, 8, 8) images; other shapes fail in forward."""

    def __init__(self, n_channels=1, n_classes=2):
        super().__init__()
        self.conv = nn.Conv2d(n_channels, 2, kernel_size=3, padding=1)
        self.out = nn.Linear(2 * 8 * 8, n_classes)

    def forward(self, X):
        return self.out(torch.relu(self.conv(X)).flatten(1))


def images(n=120, channels=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(0, 1, size=(n, channels, 8, 8))
    y = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    return X, y


def test_fit_data_of_images_keeps_their_shape():
    X, y = images()
    clf = FORMLClassifier(module=TinyCNN)
    X_checked, y_encoded, encoder = check_fit_data(clf, X, y, reset=True)
    assert X_checked.shape == X.shape
    assert X_checked.dtype == np.float32 and X_checked.flags.c_contiguous
    np.testing.assert_array_equal(X_checked, X.astype(np.float32))
    # As scikit-learn does for any array: the size of the second axis.
    assert clf.n_features_in_ == 1
    assert clf.input_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(encoder.classes_, [0, 1])
    assert check_predict_data(clf, X[:5]).shape == (5, 1, 8, 8)


def test_float32_c_contiguous_input_is_not_copied():
    X, y = images()
    X = np.ascontiguousarray(X, dtype=np.float32)
    X_checked, _, _ = check_fit_data(FORMLClassifier(module=TinyCNN), X, y, reset=True)
    assert X_checked is X
    fortran = np.asfortranarray(make_biased_classification(n_samples=50)[0])
    X_checked = check_fit_data(
        FORMLClassifier(), fortran, np.arange(50) % 2, reset=True
    )[0]
    assert X_checked.flags.c_contiguous


def test_predict_names_X_when_the_row_shape_differs():
    X, y = images()
    clf = FORMLClassifier(module=TinyCNN)
    check_fit_data(clf, X, y, reset=True)
    with pytest.raises(ValueError, match=r"^X has rows of shape \(1, 4, 8\), but "):
        check_predict_data(clf, X[:, :, :4])
    with pytest.raises(ValueError, match=r"X has 2 features, but"):
        check_predict_data(clf, np.zeros((3, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"^X has rows of shape \(1, 1, 8, 8\)"):
        check_predict_data(clf, X[:, None])


def test_images_with_nan_are_rejected():
    X, y = images()
    X[3, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        check_fit_data(FORMLClassifier(module=TinyCNN), X, y, reset=True)


def test_the_built_in_mlp_wants_2d_input_and_says_so():
    X, y = images()
    with pytest.raises(
        ValueError, match=r"^X has shape \(120, 1, 8, 8\), but the built"
    ):
        check_fit_data(FORMLClassifier(), X, y, reset=True)
    with pytest.raises(ValueError, match="Pass a module"):
        FORMLClassifier(max_epochs=1).fit(X, y)


def test_a_cnn_fits_and_predicts_images():
    X, y = images(n=160, channels=3)
    clf = FORMLClassifier(
        module=TinyCNN,
        module_params={"n_channels": 3},
        max_epochs=2,
        batch_size=32,
        random_state=0,
    ).fit(X, y)
    assert clf.input_shape_ == (3, 8, 8)
    assert clf.predict_proba(X).shape == (160, 2)
    with pytest.raises(ValueError, match="^X has rows of shape"):
        clf.predict(X[:, :, :, :4])


# ----------------------------------------------------------- feature scale


def scale_warnings(X, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_feature_scale(np.asarray(X, dtype=np.float32), **kwargs)
    return [w for w in caught if issubclass(w.category, FeatureScaleWarning)]


def test_no_scale_warning_on_well_scaled_data():
    rng = np.random.RandomState(0)
    standardised = rng.normal(size=(500, 5))
    one_hot = np.eye(7)[rng.randint(0, 7, size=500)]
    pixels = rng.randint(0, 256, size=(500, 3, 4, 4))
    white = np.full((500, 1, 4, 4), 255.0)
    digits = load_digits_noisy(random_state=0).X_train.reshape(-1, 1, 8, 8) * 16
    X, _, _ = make_biased_classification(n_samples=300, random_state=0)
    for data in (standardised, one_hot, pixels, white, digits, X, np.zeros((0, 3))):
        assert scale_warnings(data) == []


def test_scale_warning_names_the_large_features_and_the_fix():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 4))
    X[:, 1] = rng.exponential(7000, size=500)  # like Adult's capital-gain
    X[:, 3] = 2e5 + rng.normal(scale=1e5, size=500)  # like fnlwgt
    (warning,) = scale_warnings(X, estimator_name="FORMLClassifier")
    message = str(warning.message)
    # The worst first, with its mean and spread.
    assert message.index("column 3 has mean 1.97e+05") < message.index(
        "column 1 has mean"
    )
    assert "column 0" not in message and "column 2" not in message
    assert "make_pipeline(StandardScaler(), FORMLClassifier())" in message
    assert "make_pipeline(StandardScaler(), estimator)" in str(
        scale_warnings(X)[0].message
    )
    (named,) = scale_warnings(X, feature_names=np.array(["a", "gain", "c", "fnlwgt"]))
    assert "'fnlwgt' has mean" in str(named.message)


@pytest.mark.parametrize(
    "column",
    [
        np.full(100, 1.5 * SCALE_LIMIT),  # a constant offset, no spread
        np.r_[np.zeros(99), 1.5 * SCALE_LIMIT * 10],  # a spread, mean near 0
        -1.5 * SCALE_LIMIT * np.ones(100),
    ],
    ids=["offset", "spread", "negative"],
)
def test_scale_warning_on_a_large_mean_or_spread(column):
    X = np.column_stack([np.zeros(100), column])
    assert len(scale_warnings(X)) == 1
    assert scale_warnings(X / 2) == []


def test_scale_warning_on_images_names_the_pixel_and_another_fix():
    X = np.zeros((50, 1, 4, 4))
    X[:, 0, 2, 3] = 5000.0
    (warning,) = scale_warnings(X)
    assert "X[:, 0, 2, 3] has mean 5e+03" in str(warning.message)
    assert "divide pixel intensities" in str(warning.message)


def test_scale_check_reads_a_sample_of_a_huge_X(monkeypatch):
    import skforml.checks._warnings as input_warnings

    monkeypatch.setattr(input_warnings, "_SCALE_CHECK_VALUES", 1000)
    X = np.zeros((10_000, 10), dtype=np.float32)
    X[::100, 4] = 1e5  # every 100th row: the evenly spaced sample sees them
    read = []
    real_square = np.square

    def square(a, **kwargs):
        read.append(a.shape)
        return real_square(a, **kwargs)

    monkeypatch.setattr(input_warnings.np, "square", square)
    assert len(scale_warnings(X)) == 1
    assert read == [(100, 10)]


def test_fit_warns_about_unscaled_features_and_still_trains():
    X, y, groups = make_biased_classification(n_samples=200, random_state=0)
    X = X.copy()
    X[:, 0] *= 1e4
    with pytest.warns(FeatureScaleWarning, match="column 0") as record:
        FORMLClassifier(max_epochs=1, random_state=0).fit(
            X, y, sensitive_features=groups
        )
    # Reported at the caller's line, not inside skforml.
    assert record[0].filename == __file__


# ----------------------------------------------------------- index alignment


def alignment_warnings(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_index_alignment(*args, **kwargs)
    return [str(w.message) for w in caught if w.category is IndexMismatchWarning]


def test_index_mismatch_warns_naming_both_arguments_and_the_fix():
    X = pd.DataFrame(np.zeros((4, 2)), index=[10, 11, 12, 13])
    y = pd.Series([0, 1, 0, 1], index=[10, 11, 12, 13])
    groups = pd.Series(list("abab"), index=[10, 11, 13, 12])
    (message,) = alignment_warnings(X, y, groups)
    assert message.startswith("The pandas indexes of X and sensitive_features differ")
    assert "row 2 is labelled 12 in X and 13 in sensitive_features" in message
    assert "sensitive_features.loc[X.index]" in message
    assert "reset_index(drop=True)" in message
    (message,) = alignment_warnings(X, y, list("abab"), sample_weight=groups)
    assert "X and sample_weight" in message
    (message,) = alignment_warnings(X, y, {"sex": groups, "race": [1, 2, 1, 2]})
    assert "X and sensitive_features['sex']" in message
    (message,) = alignment_warnings(X.values, y.reset_index(drop=True), groups)
    assert "y and sensitive_features" in message


def test_no_index_warning_when_indexes_agree_or_cannot_be_compared():
    index = pd.Index([3, 1, 2])
    X = pd.DataFrame(np.zeros((3, 2)), index=index)
    assert alignment_warnings(X, pd.Series([0, 1, 0], index=index), None) == []
    # One pandas argument, plain arrays and lists: nothing to compare.
    assert alignment_warnings(X, [0, 1, 0], np.array(["a", "b", "a"])) == []
    # Another length is an error of its own, raised elsewhere.
    assert alignment_warnings(X, pd.Series([0, 1]), None) == []
    # Equal labels in another dtype are the same rows.
    y = pd.Series([0, 1, 0], index=pd.Index([3.0, 1.0, 2.0]))
    assert alignment_warnings(X, y, None) == []


def test_fairness_report_warns_when_indexes_differ():
    from skforml.metrics import fairness_report

    y_true = pd.Series([0, 1, 0, 1], index=[0, 1, 2, 3])
    groups = pd.Series(list("aabb"), index=[3, 2, 1, 0])
    with pytest.warns(IndexMismatchWarning, match="y_true and sensitive_features"):
        fairness_report(y_true, [0, 1, 1, 1], sensitive_features=groups)
