"""Audit the weights FORML learned: summaries, plots and rankings of rows."""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..checks._groups import encode_sensitive_features, sensitive_frame, stratum_ids
from ..checks._warnings import warn_if_indexes_differ

__all__ = ["plot_sample_weights", "rank_downweighted", "weight_summary"]

# Label of the group or label level when the caller did not give them.
_ALL = "all"


def _fitted_weights(estimator):
    """Learned weights and the training-row mask of a fitted FORML estimator."""
    check_is_fitted(estimator, ["sample_weights_", "validation_mask_"])
    weights = np.asarray(estimator.sample_weights_, dtype=float)
    train = ~np.asarray(estimator.validation_mask_, dtype=bool)
    return weights, train


def _codes(values, name, n_samples):
    """Integer code of each row and the names of the codes."""
    if values is None:
        return np.zeros(n_samples, dtype=np.int64), [_ALL]
    frame = sensitive_frame(values, name=name)
    if len(frame) != n_samples:
        raise ValueError(
            f"{name} has {len(frame)} rows, but the estimator was fitted on "
            f"{n_samples} rows; give one entry per row passed to fit, in the same "
            "order."
        )
    return encode_sensitive_features(frame, n_samples, name=name)


def _cells(estimator, sensitive_features, y):
    """Per-row (group, label) codes and names, as ``fit`` saw the rows."""
    weights, train = _fitted_weights(estimator)
    n_samples = len(weights)
    warn_if_indexes_differ(sensitive_features=sensitive_features, y=y)
    labels, label_names = _codes(y, "y", n_samples)
    if sensitive_features is None and y is not None:
        # Without sensitive features FORML uses the classes as the groups.
        groups, group_names = labels, label_names
    else:
        groups, group_names = _codes(
            sensitive_features, "sensitive_features", n_samples
        )
    return weights, train, groups, group_names, labels, label_names


def weight_summary(estimator, sensitive_features=None, y=None):
    """Summarise the learned weights in every (group, label) cell.

    Only training rows count: the rows held out for validation have weight
    0 and are left out. The weights have mean 1 over the training rows, so a
    cell mean below 1 says FORML down-weighted that cell.

    Parameters
    ----------
    estimator : FORMLClassifier
        A fitted FORML estimator (with ``sample_weights_`` and
        ``validation_mask_``).
    sensitive_features : array-like, Series, list, DataFrame or dict, default=None
        The sensitive group of every row passed to ``fit``, in the same
        order; several columns (a DataFrame, a dict of columns or a 2-D
        array) form intersectional groups (named by tuples).
        None uses the labels as the groups, as FORML does, when ``y`` is
        given, and one group ``"all"`` otherwise.
    y : array-like of shape (n_samples,), default=None
        The labels of the rows passed to ``fit``. None pools the labels into
        one level ``"all"``.

    Returns
    -------
    summary : pandas.DataFrame
        One row per (group, label) cell with training rows, indexed by a
        MultiIndex with levels ``group`` and ``label``, and columns
        ``count``, ``mean``, ``median``, ``std`` (sample standard deviation,
        ``ddof=1``; NaN for a single row), ``min`` and ``max`` of the weights.

    Raises
    ------
    ValueError
        When ``sensitive_features`` or ``y`` do not have one entry per row of
        ``fit``.
    TypeError
        When ``sensitive_features`` is not a sequence of rows (a scalar, a
        string, a set).

    Warns
    -----
    IndexMismatchWarning
        When ``sensitive_features`` and ``y`` are pandas objects with
        different indexes (rows are matched by position).

    See Also
    --------
    plot_sample_weights : The weight distributions as a figure.
    rank_downweighted : The rows of lowest weight.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, weight_summary
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> group = (X[:, 0] > 0).astype(int)
    >>> clf = FORMLClassifier(max_epochs=3, random_state=0)
    >>> clf = clf.fit(X, y, sensitive_features=group)
    >>> summary = weight_summary(clf, sensitive_features=group, y=y)
    >>> summary.index.names
    FrozenList(['group', 'label'])
    >>> list(summary.columns)
    ['count', 'mean', 'median', 'std', 'min', 'max']
    >>> int(summary["count"].sum()) == int((~clf.validation_mask_).sum())
    True

    """
    weights, train, groups, group_names, labels, label_names = _cells(
        estimator, sensitive_features, y
    )
    n_labels = len(label_names)
    strata = stratum_ids(groups, labels, n_labels)
    frame = pd.DataFrame({"stratum": strata[train], "weight": weights[train]})
    summary = frame.groupby("stratum", sort=True)["weight"].agg(
        ["count", "mean", "median", "std", "min", "max"]
    )
    group, label = np.divmod(summary.index.to_numpy(), n_labels)
    summary.index = pd.MultiIndex.from_arrays(
        [
            pd.Index([group_names[g] for g in group]),
            pd.Index([label_names[c] for c in label]),
        ],
        names=["group", "label"],
    )
    return summary.astype({"count": int})


def plot_sample_weights(estimator, sensitive_features, y=None, ax=None):
    """Plot the distribution of the learned weights in every group.

    One box per group (per (group, label) cell when ``y`` is given) of the
    weights of its training rows, on a log scale, with a dashed line at
    weight 1, the uniform weight: boxes below it were down-weighted.

    Parameters
    ----------
    estimator : FORMLClassifier
        A fitted FORML estimator.
    sensitive_features : array-like, Series, list, DataFrame, dict or None
        The sensitive group of every row passed to ``fit``. Any grouping of
        the rows works, e.g. whether a row's label is known to be wrong.
        None uses the labels ``y`` as the groups, as FORML does.
    y : array-like of shape (n_samples,), default=None
        Labels of the rows passed to ``fit``; given, every group is split by
        label.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a figure with ``plt.subplots``.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure of the axes drawn on.

    See Also
    --------
    weight_summary : The same distributions as numbers.

    Notes
    -----
    Rows of weight 0 (caller ``sample_weight`` 0) cannot be shown on the log
    scale and are left out; the tick labels give the number of rows shown.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, plot_sample_weights
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> group = (X[:, 0] > 0).astype(int)
    >>> clf = FORMLClassifier(max_epochs=3, random_state=0)
    >>> clf = clf.fit(X, y, sensitive_features=group)
    >>> fig = plot_sample_weights(clf, group, y=y)
    >>> fig.axes[0].get_yscale()
    'log'

    """
    weights, train, groups, group_names, labels, label_names = _cells(
        estimator, sensitive_features, y
    )
    split_by_label = y is not None and sensitive_features is not None
    if split_by_label:
        # Label-major order: the groups' boxes of one label stand side by side.
        cells = [
            (g, c) for c in range(len(label_names)) for g in range(len(group_names))
        ]
    else:
        cells = [(g, None) for g in range(len(group_names))]
    boxes, tick_labels = [], []
    for g, c in cells:
        rows = train & (groups == g)
        name = f"{group_names[g]}"
        if c is not None:
            rows &= labels == c
            name += f"\ny={label_names[c]}"
        values = weights[rows]
        values = values[values > 0]
        if len(values):
            boxes.append(values)
            tick_labels.append(f"{name}\n(n={len(values)})")
    if ax is None:
        # pyplot only here, so that importing skforml never picks a backend.
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(min(max(4.0, 0.7 * len(boxes) + 2), 16), 4))
    else:
        fig = ax.figure
    ax.boxplot(boxes, showfliers=True, flierprops={"markersize": 2, "alpha": 0.5})
    ax.set_xticks(np.arange(1, len(boxes) + 1), tick_labels, fontsize="small")
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="uniform weight")
    ax.set_ylabel("learned weight (training rows)")
    ax.set_xlabel("group" if sensitive_features is not None or y is None else "label")
    ax.set_title("FORML sample weights")
    ax.legend(loc="best", fontsize="small")
    return fig


def rank_downweighted(estimator, n=None):
    """Training rows from the lowest learned weight up.

    FORML lowers the weight of rows whose gradient works against the
    validation objective. Rows with wrong labels do so: learning them raises
    the loss of the correctly labelled validation rows. So the head of this
    ranking is where mislabelled rows concentrate, and it is a short list of
    rows to check by hand (paper Section 4.4). How well it works depends on
    the meta-loss: the plain validation loss (``meta_loss="cross_entropy"``)
    finds flipped labels best; a fairness meta-loss can instead raise the
    weight of wrong labels that are common in one group (their group loss is
    high); see the example ``examples/plot_data_audit.py``.

    Parameters
    ----------
    estimator : FORMLClassifier
        A fitted FORML estimator.
    n : int, default=None
        Return only the ``n`` rows of lowest weight; None returns all
        training rows.

    Returns
    -------
    indices : ndarray of int
        Positions, in the data passed to ``fit``, of training rows sorted by
        increasing weight (ties by position). Validation rows are not
        included.

    Raises
    ------
    ValueError
        When ``n`` is negative, not an integer, or exceeds the number of
        training rows.

    See Also
    --------
    FORMLSampler : Removes rows by their weighted loss.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FORMLClassifier, rank_downweighted
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> clf = FORMLClassifier(
    ...     meta_loss="cross_entropy", constraint="error_rate_parity",
    ...     max_epochs=3, random_state=0,
    ... ).fit(X, y)
    >>> suspects = rank_downweighted(clf, n=10)
    >>> suspects.shape
    (10,)
    >>> bool(clf.validation_mask_[suspects].any())
    False

    """
    weights, train = _fitted_weights(estimator)
    candidates = np.flatnonzero(train)
    order = candidates[np.argsort(weights[candidates], kind="stable")]
    if n is None:
        return order
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise ValueError(f"n must be an int or None, got {n!r}.")
    if not 0 <= n <= len(order):
        raise ValueError(
            f"n={n} must be between 0 and the number of training rows ({len(order)})."
        )
    return order[:n]
