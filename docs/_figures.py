"""Figures of the documentation drawn with matplotlib at build time.

``conf.py`` calls :func:`write_three_step_figure`; run this file to redraw it
by hand (``python docs/_figures.py``).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STEPS = [
    (
        "1. Lookahead",
        "training batch $B$",
        "$p = \\mathrm{softmax}(w_B)$\n"
        "$\\tilde\\theta = \\theta - \\eta_c \\nabla_\\theta"
        " \\Sigma_{i \\in B} p_i\\, \\ell_i(\\theta)$",
        "#dbe9f6",
    ),
    (
        "2. Meta step on the weights",
        "balanced validation batch $V$",
        "fairness meta-loss $L_f(\\tilde\\theta)$ on $V$'s groups\n"
        "$\\partial L_f / \\partial w_j = -\\eta_c\\, p_j"
        " (d_j - \\Sigma_i p_i d_i)$\n"
        "$w_B \\leftarrow w_B - $ step of size meta_lr",
        "#fde2c8",
    ),
    (
        "3. Network update",
        "training batch $B$, new weights $p'$",
        "optimizer (Adam) steps $\\theta$ along\n"
        "$\\nabla_\\theta \\Sigma_{i \\in B} p'_i\\, \\ell_i(\\theta)$\n"
        "taken at the original $\\theta$",
        "#d9f0d3",
    ),
]


def write_three_step_figure(path):
    """Draw FORML's three-step update of one minibatch to ``path`` (SVG or PNG).

    Parameters
    ----------
    path : str or pathlib.Path
        Output file; the format follows its suffix.

    """
    fig, ax = plt.subplots(figsize=(11, 3.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 3.6)
    ax.axis("off")
    width, height, y0 = 3.2, 2.2, 0.75
    lefts = [0.15, 3.9, 7.65]
    for left, (title, data, body, color) in zip(lefts, STEPS):
        ax.add_patch(
            FancyBboxPatch(
                (left, y0),
                width,
                height,
                boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=color,
                edgecolor="#444444",
                linewidth=1.2,
            )
        )
        cx = left + width / 2
        ax.text(
            cx,
            y0 + height - 0.28,
            title,
            ha="center",
            va="center",
            fontsize=12,
            fontweight="bold",
        )
        ax.text(
            cx,
            y0 + height - 0.62,
            data,
            ha="center",
            va="center",
            fontsize=9.5,
            style="italic",
            color="#333333",
        )
        ax.text(
            cx, y0 + 0.75, body, ha="center", va="center", fontsize=9.5, linespacing=1.7
        )
    for left in lefts[:2]:
        ax.add_patch(
            FancyArrowPatch(
                (left + width + 0.05, y0 + height / 2),
                (left + width + 0.5, y0 + height / 2),
                arrowstyle="-|>",
                mutation_scale=18,
                color="#444444",
                linewidth=1.5,
            )
        )
    ax.add_patch(
        FancyArrowPatch(
            (lefts[2] + width / 2, y0 - 0.05),
            (lefts[0] + width / 2, y0 - 0.05),
            connectionstyle="arc3,rad=-0.12",
            arrowstyle="-|>",
            mutation_scale=18,
            color="#888888",
            linewidth=1.2,
            linestyle="--",
        )
    )
    ax.text(
        5.5,
        0.08,
        "next minibatch: the weights $w$ of its rows, learned so "
        "far, start the next lookahead",
        ha="center",
        va="center",
        fontsize=9.5,
        color="#555555",
    )
    ax.text(
        5.5,
        3.45,
        "One FORML step (Algorithm 1 of Yan, Seto & Apostoloff, "
        "2022); $w$: one weight logit per training row",
        ha="center",
        va="center",
        fontsize=10.5,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {}
    with plt.rc_context({"svg.hashsalt": "skforml", "svg.fonttype": "path"}):
        fig.savefig(path, metadata=metadata)
    plt.close(fig)


if __name__ == "__main__":
    write_three_step_figure(Path(__file__).parent / "_static" / "forml_three_steps.svg")
