"""
==========
Quickstart
==========

Train a network with :class:`~skforml.FORMLClassifier`, compare it with the
same network trained on uniform weights, and look at what FORML learned.

The data are synthetic (:func:`~skforml.datasets.make_biased_classification`):
a minority group (a fifth of the rows) whose labels follow another rule than
the majority's. A network fitted to all rows learns mostly the majority's
rule and misses more of the minority's positives: a gap in true positive
rate (TPRD) between the groups.
"""

# %%
# Data
# ----
# ``group`` is the sensitive feature: 1 for the minority.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skforml import FORMLClassifier, ReweightedClassifier
from skforml.datasets import make_biased_classification
from skforml.metrics import fairness_report

X, y, group = make_biased_classification(n_samples=3000, random_state=0)
X_train, X_test, y_train, y_test, g_train, g_test = train_test_split(
    X,
    y,
    group,
    test_size=0.5,
    stratify=np.char.add(group.astype(str), y.astype(str)),
    random_state=0,
)
print(f"{len(y_train)} training rows; minority group: {g_train.mean():.0%}")

# %%
# Fit
# ---
# ``sensitive_features`` is a keyword argument of ``fit``, as in fairlearn.
# The baseline is the same network, the same split of validation rows and the
# same seed, with uniform weights.
params = dict(max_epochs=30, random_state=0)
uniform = ReweightedClassifier(weighting="uniform", **params)
forml = FORMLClassifier(constraint="true_positive_rate_parity", **params)
for model in (uniform, forml):
    model.fit(X_train, y_train, sensitive_features=g_train)

# %%
# Score on the test rows
# ----------------------
# :func:`~skforml.metrics.fairness_report` measures accuracy and the gaps
# between groups with fairlearn's ``MetricFrame``.
for name, model in [("uniform", uniform), ("FORML", forml)]:
    report = fairness_report(y_test, model.predict(X_test), sensitive_features=g_test)
    print(
        f"{name:8s} accuracy {report.accuracy:.3f}  TPRD {report.tprd:.3f}  "
        f"max FNR {report.max_fnr:.3f}"
    )

# %%
# What FORML learned
# ------------------
# ``sample_weights_`` holds one weight per row of ``X_train`` (mean 1 over the
# training rows, 0 on the rows FORML held out for validation). Its mean per
# (group, label) cell shows where FORML moved the weight: to the cells whose
# loss was highest.
weights = forml.sample_weights_
train = ~forml.validation_mask_
for g in (0, 1):
    for label in (0, 1):
        cell = train & (g_train == g) & (y_train == label)
        print(f"group {g}, label {label}: mean weight {weights[cell].mean():.2f}")

# %%
# ``history_`` is skorch's history, one row per epoch. On held-out rows that
# the meta step never sees, ``valid_acc`` is the accuracy and
# ``valid_disparity`` the constraint's disparity (here the TPR gap);
# ``weight_ess`` is the effective sample size of the weights over the rows.
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, column in zip(axes, ["valid_acc", "valid_disparity", "weight_ess"]):
    ax.plot(forml.history_[:, column])
    ax.set_title(column)
    ax.set_xlabel("epoch")
fig.tight_layout()
plt.show()
