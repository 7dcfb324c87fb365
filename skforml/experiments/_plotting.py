"""Plots of comparison results: accuracy against the fairness gap."""

import numpy as np


def plot_comparison(result, ax=None):
    """Plot each method's mean accuracy against its mean TPRD.

    Error bars span one standard deviation over the seeds; each point is
    labelled with its method. Accuracy is on the x axis and TPRD on the y
    axis, so the lower right (accurate and fair) is better.

    Parameters
    ----------
    result : ComparisonResult or DataFrame
        A result of :func:`compare`, or its ``results`` table.
    ax : matplotlib Axes, default=None
        Axes to draw on; None makes a new figure.

    Returns
    -------
    fig : matplotlib Figure
        The figure of ``ax``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skforml import plot_comparison
    >>> rows = pd.DataFrame({"method": ["A", "B"], "seed": 0,
    ...                      "accuracy": [0.8, 0.9], "tprd": [0.1, 0.2]})
    >>> plot_comparison(rows).axes[0].get_xlabel()
    'accuracy (higher is better)'

    """
    import matplotlib.pyplot as plt

    # A ComparisonResult, or its tidy results table.
    results = getattr(result, "results", result)
    stats = results.groupby("method", sort=False)[["accuracy", "tprd"]].agg(
        ["mean", "std"]
    )
    stats = stats.dropna(subset=[("accuracy", "mean"), ("tprd", "mean")])
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    means = stats.xs("mean", axis=1, level=1)
    for i, (method, row) in enumerate(stats.iterrows()):
        ax.errorbar(
            row[("accuracy", "mean")],
            row[("tprd", "mean")],
            xerr=np.nan_to_num(row[("accuracy", "std")]),
            yerr=np.nan_to_num(row[("tprd", "std")]),
            fmt="o",
            color=colors[i % len(colors)],
            capsize=3,
            markersize=8 if method == "FORML" else 6,
        )
    ax.set_xlabel("accuracy (higher is better)")
    ax.set_ylabel("TPRD: max - min true positive rate (lower is better)")
    n_seeds = results["seed"].nunique()
    note = "one seed" if n_seeds == 1 else f"mean ± std over {n_seeds} seeds"
    ax.set_title(f"Accuracy vs. TPRD: lower right is better ({note})")
    ax.grid(alpha=0.3)
    _label_points(ax, means, colors)
    return ax.figure


def _label_points(ax, means, colors):
    """Name each point, moving a label down until it clears the others."""
    ax.autoscale_view()
    # Room on the right for the labels of the most accurate methods.
    left, right = ax.get_xlim()
    ax.set_xlim(left, right + 0.25 * (right - left))
    to_axes = ax.transData + ax.transAxes.inverted()
    placed = []
    order = np.argsort(-means["tprd"].to_numpy(), kind="stable")
    for i in order:
        method, (x, y) = means.index[i], means[["accuracy", "tprd"]].iloc[i]
        ax_x, ax_y = to_axes.transform((x, y))
        # Offsets in axes fractions: about a line of text per step.
        dy = 0.02
        while any(
            abs(ax_x - px) < 0.22 and abs(ax_y + dy - py) < 0.035 for px, py in placed
        ):
            dy -= 0.035
        placed.append((ax_x, ax_y + dy))
        ax.annotate(
            method,
            (x, y),
            xytext=(ax_x + 0.012, ax_y + dy),
            textcoords="axes fraction",
            fontsize=9,
            color=colors[i % len(colors)],
            fontweight="bold" if method == "FORML" else "normal",
            va="center",
            bbox={
                "boxstyle": "round,pad=0.1",
                "fc": "white",
                "ec": "none",
                "alpha": 0.7,
            },
        )
