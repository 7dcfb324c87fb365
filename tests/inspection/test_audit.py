import matplotlib

matplotlib.use("Agg")  # no display in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError

from skforml import (
    FORMLClassifier,
    IndexMismatchWarning,
    plot_sample_weights,
    rank_downweighted,
    weight_summary,
)
from skforml.datasets import load_digits_noisy, make_biased_classification


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    X, y, groups = make_biased_classification(
        n_samples=400, n_features=4, random_state=0
    )
    groups = np.where(groups == 1, "minority", "majority")
    clf = FORMLClassifier(
        max_epochs=5, hidden_layer_sizes=(16,), meta_lr=0.3, random_state=0
    )
    clf.fit(X, y, sensitive_features=groups)
    return clf, y, groups


def test_weight_summary_matches_hand_computation(fitted):
    clf, y, groups = fitted
    summary = weight_summary(clf, sensitive_features=groups, y=y)
    assert summary.index.names == ["group", "label"]
    assert list(summary.columns) == ["count", "mean", "median", "std", "min", "max"]
    train = ~clf.validation_mask_
    weights = clf.sample_weights_
    expected = {
        (g, c) for g, c in zip(groups[train], y[train])
    }  # every cell with training rows, and only those
    assert set(summary.index) == expected
    for (group, label), row in summary.iterrows():
        w = weights[train & (groups == group) & (y == label)]
        assert row["count"] == len(w)
        np.testing.assert_allclose(
            row[["mean", "median", "std", "min", "max"]].to_numpy(float),
            [w.mean(), np.median(w), w.std(ddof=1), w.min(), w.max()],
            rtol=1e-12,
        )
    # Validation rows (weight 0) are left out; training weights have mean 1.
    assert summary["count"].sum() == train.sum()
    assert summary["min"].min() > 0
    total = (summary["count"] * summary["mean"]).sum() / summary["count"].sum()
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)


def test_weight_summary_groups_default_to_labels(fitted):
    clf, y, _ = fitted
    summary = weight_summary(clf, y=y)
    train = ~clf.validation_mask_
    assert list(summary.index) == [(0, 0), (1, 1)]
    np.testing.assert_allclose(
        summary["mean"].to_numpy(),
        [clf.sample_weights_[train & (y == c)].mean() for c in (0, 1)],
    )
    overall = weight_summary(clf)
    assert list(overall.index) == [("all", "all")]
    assert overall["count"].iloc[0] == train.sum()
    by_group = weight_summary(clf, sensitive_features=pd.Series(fitted[2]))
    assert list(by_group.index.get_level_values("label")) == ["all", "all"]


def test_weight_summary_intersectional_groups(fitted):
    clf, y, groups = fitted
    frame = pd.DataFrame({"g": groups, "parity": np.arange(len(y)) % 2})
    summary = weight_summary(clf, sensitive_features=frame, y=y)
    assert len(summary) == 8
    assert ("minority", 1) in summary.index.get_level_values("group")


@pytest.mark.parametrize("argument", ["sensitive_features", "y"])
def test_wrong_length_raises_naming_argument(fitted, argument):
    clf, y, groups = fitted
    kwargs = {"sensitive_features": groups, "y": y}
    kwargs[argument] = kwargs[argument][:-1]
    with pytest.raises(ValueError, match=argument):
        weight_summary(clf, **kwargs)
    with pytest.raises(ValueError, match=argument):
        plot_sample_weights(clf, kwargs["sensitive_features"], y=kwargs["y"])


def test_misaligned_pandas_indexes_warn(fitted):
    clf, y, groups = fitted
    y_series = pd.Series(y)
    shuffled = pd.Series(groups, index=np.arange(len(y))[::-1])
    with pytest.warns(IndexMismatchWarning, match="sensitive_features and y"):
        weight_summary(clf, sensitive_features=shuffled, y=y_series)
    # Matched by position all the same.
    pd.testing.assert_frame_equal(
        weight_summary(clf, sensitive_features=groups, y=y),
        weight_summary(clf, sensitive_features=shuffled.to_numpy(), y=y_series),
    )


def test_unfitted_estimator_raises():
    with pytest.raises(NotFittedError):
        weight_summary(FORMLClassifier())
    with pytest.raises(NotFittedError):
        rank_downweighted(FORMLClassifier())


def test_plot_returns_figure_without_display(fitted):
    clf, y, groups = fitted
    fig = plot_sample_weights(clf, groups)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.get_xticklabels()) == 2
    fig = plot_sample_weights(clf, groups, y=y)
    assert len(fig.axes[0].get_xticklabels()) == 4  # (group, label) cells
    fig = plot_sample_weights(clf, None, y=y)
    assert len(fig.axes[0].get_xticklabels()) == 2  # the classes are the groups
    fig.canvas.draw()  # renders headless


def test_plot_on_given_axes(fitted):
    clf, _, groups = fitted
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_sample_weights(clf, groups, ax=right) is fig
    assert right.get_yscale() == "log" and not left.has_data()


def test_rank_downweighted_orders_training_rows_by_weight(fitted):
    clf, _, _ = fitted
    order = rank_downweighted(clf)
    train = np.flatnonzero(~clf.validation_mask_)
    np.testing.assert_array_equal(np.sort(order), train)
    assert np.all(np.diff(clf.sample_weights_[order]) >= 0)
    np.testing.assert_array_equal(rank_downweighted(clf, n=7), order[:7])
    assert rank_downweighted(clf, n=0).shape == (0,)


@pytest.mark.parametrize("n", [-1, 2.5, True, 10**6])
def test_rank_downweighted_bad_n(fitted, n):
    with pytest.raises(ValueError, match="n"):
        rank_downweighted(fitted[0], n=n)


@pytest.mark.parametrize("seed", [0, 1])
def test_lowest_weights_find_flipped_labels(seed):
    # The plain validation loss as meta-loss: the validation rows are mostly
    # correctly labelled, so rows with flipped labels work against it.
    data = load_digits_noisy(flip_rate=0.2, random_state=seed)
    clf = FORMLClassifier(
        hidden_layer_sizes=(32,),
        max_epochs=8,
        meta_lr=0.2,
        meta_loss="cross_entropy",
        constraint="error_rate_parity",
        random_state=seed,
    ).fit(data.X_train, data.y_train)
    train = ~clf.validation_mask_
    flip_rate = data.flipped[train].mean()
    k = int(data.flipped[train].sum())
    precision = data.flipped[rank_downweighted(clf, n=k)].mean()
    # Observed 3.3x to 3.9x the flip rate over 8 seeds.
    assert precision > 2 * flip_rate
