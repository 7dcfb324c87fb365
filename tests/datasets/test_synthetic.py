import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from skforml.datasets import make_biased_classification


def _tpr(y, y_pred, mask):
    return y_pred[(y == 1) & mask].mean()


def test_shapes_dtypes_and_group_column():
    X, y, groups = make_biased_classification(random_state=0)
    assert X.shape == (2000, 11)
    assert X.dtype == np.float64
    assert y.shape == groups.shape == (2000,)
    assert set(np.unique(y)) == {0, 1}
    assert set(np.unique(groups)) == {0, 1}
    # The group indicator is the last column.
    np.testing.assert_array_equal(X[:, -1], groups)
    X2, _, _ = make_biased_classification(include_group_feature=False, random_state=0)
    assert X2.shape == (2000, 10)
    np.testing.assert_array_equal(X2, X[:, :-1])


def test_exact_group_sizes_and_base_rates():
    X, y, groups = make_biased_classification(
        n_samples=1000, minority_proportion=0.1, positive_rate=0.4, random_state=1
    )
    assert groups.sum() == 100
    # Same positive rate within each group.
    assert y[groups == 1].mean() == pytest.approx(0.4)
    assert y[groups == 0].mean() == pytest.approx(0.4)


def test_deterministic_for_a_seed():
    a = make_biased_classification(n_samples=300, random_state=42)
    b = make_biased_classification(n_samples=300, random_state=42)
    c = make_biased_classification(n_samples=300, random_state=43)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[0], c[0])
    rng_a = make_biased_classification(
        n_samples=300, random_state=np.random.RandomState(42)
    )
    np.testing.assert_array_equal(rng_a[1], a[1])


def test_as_frame():
    X, y, groups = make_biased_classification(
        n_samples=50, n_features=4, as_frame=True, random_state=0
    )
    assert isinstance(X, pd.DataFrame)
    assert list(X.columns) == ["x0", "x1", "x2", "x3", "group"]
    assert isinstance(y, pd.Series) and y.name == "target"
    assert isinstance(groups, pd.Series) and groups.name == "group"
    X_np, y_np, g_np = make_biased_classification(
        n_samples=50, n_features=4, random_state=0
    )
    np.testing.assert_array_equal(X.to_numpy(), X_np)
    np.testing.assert_array_equal(y.to_numpy(), y_np)
    np.testing.assert_array_equal(groups.to_numpy(), g_np)
    X_ng, _, _ = make_biased_classification(
        n_samples=50, n_features=4, as_frame=True, include_group_feature=False
    )
    assert list(X_ng.columns) == ["x0", "x1", "x2", "x3"]


# The MLP's default max_iter stops it before sklearn deems it converged; the
# point here is what a plainly trained network does, so that is fine.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "estimator",
    [LogisticRegression(), MLPClassifier(random_state=0)],
    ids=["logistic", "mlp"],
)
def test_pooled_model_has_lower_minority_tpr(estimator, seed):
    X, y, groups = make_biased_classification(random_state=seed)
    X_tr, X_te, y_tr, y_te, _, g_te = train_test_split(
        X, y, groups, stratify=2 * groups + y, random_state=0
    )
    y_pred = clone(estimator).fit(X_tr, y_tr).predict(X_te)
    gap = _tpr(y_te, y_pred, g_te == 0) - _tpr(y_te, y_pred, g_te == 1)
    assert gap >= 0.1


def test_no_rule_shift_means_no_gap():
    X, y, groups = make_biased_classification(rule_shift=0.0, random_state=0)
    X_tr, X_te, y_tr, y_te, _, g_te = train_test_split(
        X, y, groups, stratify=2 * groups + y, random_state=0
    )
    y_pred = LogisticRegression().fit(X_tr, y_tr).predict(X_te)
    gap = _tpr(y_te, y_pred, g_te == 0) - _tpr(y_te, y_pred, g_te == 1)
    assert abs(gap) < 0.1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_samples": 10.5}, "n_samples"),
        ({"n_features": 2}, "n_features"),
        ({"n_features": True}, "n_features"),
        ({"minority_proportion": 0.0}, "minority_proportion"),
        ({"minority_proportion": 1.0}, "minority_proportion"),
        ({"rule_shift": -0.1}, "rule_shift"),
        ({"rule_shift": 1.5}, "rule_shift"),
        ({"positive_rate": 1.0}, "positive_rate"),
        ({"positive_rate": "0.3"}, "positive_rate"),
        ({"noise": -1.0}, "noise"),
        ({"noise": float("nan")}, "noise"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        make_biased_classification(**kwargs)
