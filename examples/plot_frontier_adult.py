"""
===========================================================
Fairness-accuracy frontiers on UCI Adult, next to fairlearn
===========================================================

:func:`skforml.sweep` fits each method over its own tolerance knob on the
same train/test splits, and shows each method's Pareto frontier of test
accuracy against the true-positive-rate difference (TPRD) between women and
men, with the most accurate setting within a few tolerances.

This is a small version of ``python -m skforml.demo``: fewer rows, epochs
and seeds, so that it runs in about a minute.
"""

# %%
# Data
# ----
# :func:`~skforml.datasets.load_adult` returns the preprocessed features
# (standardised numbers, one-hot categories); ``sensitive`` holds ``sex``.
# We keep 12,000 rows: 3,000 to train on and 9,000 to test.
import numpy as np
from sklearn.model_selection import train_test_split

from skforml import sweep
from skforml.datasets import load_adult
from skforml.demo import frontier_methods

adult = load_adult()
sex = adult.sensitive["sex"].to_numpy()
keep, _ = train_test_split(
    np.arange(len(sex)),
    train_size=12_000,
    stratify=np.char.add(sex, adult.target.astype(str)),
    random_state=0,
)
X, y, sex = adult.data[keep], adult.target[keep], sex[keep]
print(f"{len(y)} rows, {y.mean():.0%} positive; women: {np.mean(sex == 'Female'):.0%}")

# %%
# The methods and their knobs
# ---------------------------
# :func:`skforml.demo.frontier_methods` builds the demo's sweep as a plain
# dict of ``name -> (estimator, {knob: values})``: FORML over ``tolerance``,
# the PyTorch peers on the same network and training loop (fairret's
# penalty over its ``strength``, FairGrad over its ``epsilon``; ``pip install
# "skforml[peers]"``), ExponentiatedGradient around the same network over its
# constraint's ``difference_bound``, ThresholdOptimizer over ``tol``, and the
# uniformly trained network as one point. Any estimator and any parameter can
# join.
methods = frontier_methods(
    forml_epochs=20,
    backbone_epochs=15,
    mitigator_epochs=8,
    eg_max_iter=3,
    forml_values=(0.02, 0.05, None),
    strengths=(0.1, 0.3),
    epsilons=(0.0, 0.02),
    bounds=(0.01, 0.05),
    tols=(0.0, 0.02, 0.05),
)
{name: spec[1] if isinstance(spec, tuple) else "-" for name, spec in methods.items()}

# %%
# Sweep
# -----
# Every fit is a joblib task seeded from its split's seed, so ``n_jobs`` and
# the joblib backend (a ``dask.distributed`` cluster through
# ``joblib.parallel_config(backend="dask")``) do not change the table.
result = sweep(
    methods, X, y, sensitive_features=sex, test_size=0.75, seeds=(0,), n_jobs=1
)
print(result.points_text)

# %%
# The best accuracy within each tolerance, which methods need ``sex`` at
# prediction time, which predict at random, and what the sweep cost:
print(result)

# %%
# Frontiers
# ---------
# Upper left is better. Square markers need the sensitive feature at
# prediction time; hollow ones predict at random.
fig = result.plot()

# %%
# To select a FORML tolerance by cross-validation instead, with fairness
# scorers and a refit rule in ``GridSearchCV``, see
# :ref:`sphx_glr_auto_examples_plot_grid_search.py`.
