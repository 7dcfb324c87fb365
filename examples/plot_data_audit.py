"""
================================================
Auditing a data set with FORML's learned weights
================================================

FORML learns one weight per training row. Besides training a fairer model,
the weights say which rows the model is better off without. This example
uses them to audit a data set with corrupted labels:

1. find the mislabelled rows among the lowest-weight rows,
2. look at the weights of flipped and clean rows,
3. condense the data with :class:`~skforml.FORMLSampler` and retrain a plain
   model on what is left.

The data are scikit-learn's digits with a fifth of the training labels
replaced by 2 (:func:`~skforml.datasets.load_digits_noisy`, a small version
of the paper's MNIST experiment, Section 4.4). No sensitive features are
given, so FORML uses the classes as the groups, and the fairness metric is
the spread of per-class recall (TPRD).
"""

# %%
# Noisy digits
# ------------
# ``flipped`` marks the corrupted training rows; we only use it to score the
# audit, FORML never sees it.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skforml import (
    FORMLClassifier,
    FORMLSampler,
    plot_sample_weights,
    rank_downweighted,
    weight_summary,
)
from skforml.datasets import load_digits_noisy
from skforml.metrics import fairness_report

data = load_digits_noisy(flip_rate=0.2, random_state=0)
X, y, flipped = data.X_train, data.y_train, data.flipped
print(f"{len(y)} training rows, {flipped.sum()} flipped to 2 ({flipped.mean():.0%})")

# %%
# Fit FORML
# ---------
# Without sensitive features only the per-class constraints are defined
# (``"error_rate_parity"`` and ``"true_positive_rate_parity"`` both compare
# per-class losses). We fit two meta-losses:
#
# - the plain validation loss, ``meta_loss="cross_entropy"``: weights go
#   down on rows that make the (mostly correctly labelled) validation rows
#   worse, which is what a flipped label does;
# - the default fairness meta-loss, ``"mean_loss_discrepancy"``, which
#   equalises the per-class losses.
common = dict(constraint="error_rate_parity", max_epochs=20, random_state=0)
models = {
    "cross_entropy": FORMLClassifier(meta_loss="cross_entropy", **common),
    "mean_loss_discrepancy": FORMLClassifier(**common),
}
for model in models.values():
    model.fit(X, y)

# %%
# The lowest-weight rows are the flipped ones
# -------------------------------------------
# :func:`~skforml.rank_downweighted` lists the training rows from the lowest
# weight up. If the weights knew nothing about the labels, a share of about
# the flip rate of any prefix of that list would be flipped; the precision
# over that share is what the weights add.
train = ~models["cross_entropy"].validation_mask_
flip_rate = flipped[train].mean()
k = int(flipped[train].sum())
for name, model in models.items():
    ranking = rank_downweighted(model)
    print(
        f"{name:>22}: precision of the {k} lowest-weight rows "
        f"{flipped[ranking[:k]].mean():.2f} (flip rate {flip_rate:.2f})"
    )

fig, ax = plt.subplots(figsize=(6, 4))
n_checked = np.arange(1, train.sum() + 1)
for name, model in models.items():
    hits = np.cumsum(flipped[rank_downweighted(model)])
    ax.plot(n_checked, hits / n_checked, label=name)
ax.axhline(flip_rate, color="grey", linestyle="--", label="chance (flip rate)")
ax.axvline(k, color="grey", linestyle=":", linewidth=1)
ax.set_xlabel("rows checked, lowest weight first")
ax.set_ylabel("share of them that are flipped")
ax.set_ylim(0, 1)
ax.legend()
fig.tight_layout()

# %%
# With the plain validation loss, most of the lowest-weight rows are flipped.
# The fairness meta-loss does the opposite: two thirds of the rows labelled
# 2 are flipped, in validation as in training, so the class-2 loss is the
# highest, and the way to lower it is to weigh up the flipped rows. A
# fairness meta-loss needs validation labels that can be trusted.
#
# Weights of flipped and clean rows
# ---------------------------------
# Any grouping of the rows can be passed as ``sensitive_features`` to the
# audit functions; here, whether the label was flipped, split by label.
status = np.where(flipped, "flipped", "clean")
model = models["cross_entropy"]
fig = plot_sample_weights(model, status, y=y)
fig.tight_layout()

# %%
# The same as numbers, per (flipped?, label) cell:
print(weight_summary(model, sensitive_features=status, y=y).round(3))


# %%
# Condense and retrain
# --------------------
# :class:`~skforml.FORMLSampler` fits FORML and removes rows; the paper
# removes the rows of lowest weighted-loss average (``rank_by=
# "weighted_loss_ema"``), ``rank_by="sample_weight"`` the rows of lowest
# weight. We remove 10% of the rows and retrain a plain model
# (``meta_lr=0``) on the rest, and compare with the full data and a random
# subset of the same size.
def plain():
    return FORMLClassifier(
        meta_lr=0, constraint="error_rate_parity", max_epochs=20, random_state=0
    )


def scores(model):
    report = fairness_report(data.y_test, model.predict(data.X_test))
    return {"accuracy": report.accuracy, "TPRD": report.tprd}


n_remove = int(0.1 * len(y))
keep = np.sort(np.random.RandomState(0).choice(len(y), len(y) - n_remove, False))
results = {
    "full data": scores(plain().fit(X, y)),
    "random subset": scores(plain().fit(X[keep], y[keep])),
}
for rank_by in ("weighted_loss_ema", "sample_weight"):
    sampler = FORMLSampler(
        FORMLClassifier(meta_loss="cross_entropy", **common),
        n_remove=n_remove,
        rank_by=rank_by,
    )
    X_res, y_res = sampler.fit_resample(X, y)
    results[f"FORMLSampler ({rank_by})"] = {
        **scores(plain().fit(X_res, y_res)),
        "flipped among removed": flipped[sampler.removed_indices_].mean(),
    }
print(pd.DataFrame(results).T.round(3))

# %%
# Removing a tenth of the rows by weight takes out mostly flipped rows, and
# the model retrained on what is left is both more accurate and fairer
# (smaller TPRD) than on the full data or on a random subset. The paper's
# criterion, the weighted-loss average, removes fewer flipped rows (a
# flipped row keeps a high loss even at a low weight) but also helps here.
# ``benchmarks/bench_condensation.py`` repeats this over seeds.
plt.show()
