"""Plot of fairness-accuracy frontiers (:meth:`FrontierResult.plot`)."""

import numpy as np

from ..metrics._disparity import column_label


def _describe(traits, sweep_seconds):
    notes = []
    if traits["sensitive_at_predict"]:
        notes.append("needs sensitive feature at predict")
    if traits["randomised"]:
        notes.append("randomised")
    notes.append(f"sweep {sweep_seconds:.0f} s")
    return ", ".join(notes)


def plot_frontier(result, ax=None):
    """Draw :meth:`FrontierResult.plot` on ``ax`` (None: a new figure)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 7), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seconds = result.table["sweep_seconds"]
    for i, (method, traits) in enumerate(result.methods.iterrows()):
        color = colors[i % len(colors)]
        points = result.points.loc[method].dropna(subset=["accuracy", "disparity"])
        if points.empty:
            continue
        marker = "s" if traits["sensitive_at_predict"] else "o"
        face = "none" if traits["randomised"] else color
        ax.errorbar(
            points["disparity"],
            points["accuracy"],
            xerr=np.nan_to_num(points["disparity_std"]),
            yerr=np.nan_to_num(points["accuracy_std"]),
            fmt="none",
            ecolor=color,
            alpha=0.35,
            capsize=2,
        )
        front = points[points["pareto"]].sort_values("disparity")
        ax.plot(
            front["disparity"],
            front["accuracy"],
            drawstyle="steps-post",
            color=color,
            linewidth=2 if method == "FORML" else 1.4,
            label=f"{method} ({_describe(traits, seconds.loc[method])})",
        )
        ax.scatter(
            points["disparity"],
            points["accuracy"],
            marker=marker,
            facecolors=face,
            edgecolors=color,
            s=np.where(points["pareto"], 42, 18),
            zorder=3,
        )
    for tolerance in result.tolerances:
        ax.axvline(tolerance, color="grey", linestyle=":", linewidth=0.8)
    name = column_label(result.disparity)
    n_seeds = result.results["seed"].nunique()
    spread = "one seed" if n_seeds == 1 else f"mean ± std over {n_seeds} seeds"
    ax.set_xlabel(f"test {name} (lower is better)")
    ax.set_ylabel("test accuracy (higher is better)")
    ax.set_title(
        f"Accuracy vs. {name} over each method's knob: upper left is better "
        f"({spread})\nsquares: sensitive feature needed at predict; hollow: "
        "randomised predictions; dotted: tolerances",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    # Below the axes: inside, it would hide the low-accuracy points.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8, ncol=2)
    return ax.figure
