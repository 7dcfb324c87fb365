"""
==================================================
FORML next to fairlearn's mitigators on UCI Adult
==================================================

:func:`skforml.compare` fits several fairness methods on the same
train/test splits and reports accuracy and equal-opportunity gaps for each.
Here it predicts whether income exceeds $50K on the bundled Adult data, with
``sex`` as the sensitive feature, and compares FORML with the same network
trained plainly and with fairlearn's ExponentiatedGradient, GridSearch and
ThresholdOptimizer (all constrained to equal true positive rates).

This is a small version of ``python -m skforml.demo``: fewer rows, epochs
and seeds, so that it runs in about a minute.
"""

# %%
# Data
# ----
# :func:`~skforml.datasets.load_adult` returns the preprocessed features
# (standardised numbers, one-hot categories); ``sensitive`` holds ``sex``
# and ``race``. We keep 10,000 rows: 4,000 to train on and 6,000 to test.
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skforml import ReweightedClassifier, compare, default_estimators
from skforml.datasets import load_adult

# The networks are tiny: extra threads only contend for the cores.
torch.set_num_threads(1)
threadpool_limits(1)

adult = load_adult()
sex = adult.sensitive["sex"].to_numpy()
keep, _ = train_test_split(
    np.arange(len(sex)),
    train_size=10_000,
    stratify=np.char.add(sex, adult.target.astype(str)),
    random_state=0,
)
X, y, sex = adult.data[keep], adult.target[keep], sex[keep]
print(f"{len(y)} rows, {y.mean():.0%} positive; women: {np.mean(sex == 'Female'):.0%}")

# %%
# The methods
# -----------
# :func:`~skforml.default_estimators` builds the default suite as a plain
# dict, so it is easy to edit: here with fewer epochs and fairlearn iterations
# than the demo, plus one of the paper's reweighting baselines,
# :class:`~skforml.ReweightedClassifier` weighting each group by its inverse
# frequency. Any scikit-learn classifier can join; only those whose ``fit``
# takes ``sensitive_features`` get them.
estimators = default_estimators(
    forml_epochs=30,
    backbone_epochs=15,
    mitigator_epochs=8,
    neural_eg_max_iter=3,
    neural_grid_size=4,
)
estimators["Proportion"] = ReweightedClassifier(weighting="proportion", max_epochs=15)
list(estimators)

# %%
# Compare
# -------
# Every method is fitted on the same two stratified splits (one per seed);
# seeds also set each estimator's ``random_state``. A line per fit shows the
# progress.
result = compare(estimators, X, y, sensitive_features=sex, test_size=0.6, seeds=(0, 1))
print(result)

# %%
# ``result.results`` is the tidy table behind the summary: one row per method
# and seed.
result.results.head()

# %%
# Accuracy against TPRD
# ---------------------
# The lower right is better: accurate, and with similar true positive rates
# for women and men. Error bars span one standard deviation over the seeds.
fig = result.plot()

# %%
# Reading the results
# -------------------
# FORML learns its weights during training and needs no sensitive feature at
# prediction time; ThresholdOptimizer needs ``sex`` for every prediction,
# and ExponentiatedGradient predicts with a random mixture of models. Run
# ``python -m skforml.demo`` for the full comparison (more rows, epochs,
# fairlearn iterations and seeds).
