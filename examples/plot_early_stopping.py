"""
====================================================
Early stopping and checkpoints with skorch callbacks
====================================================

:class:`~skforml.FORMLClassifier` trains a skorch net (``net_``), and every
epoch skorch's validation pass runs on rows that FORML held out and its meta
step never sees. So skorch's callbacks work as with any skorch net:
:class:`~skorch.callbacks.EarlyStopping` stops when ``valid_loss`` stops
improving, and :class:`~skorch.callbacks.Checkpoint` saves the parameters of
the best epoch. FORML adds ``valid_acc`` and ``valid_disparity`` to the
history, and with a ``tolerance`` it selects an epoch of its own
(``best_epoch_``): the most accurate one within the tolerance.

The data are synthetic (:func:`~skforml.datasets.make_biased_classification`)
with a minority group whose labels follow another rule.
"""

# %%
# Data
# ----
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from skorch.callbacks import Checkpoint, EarlyStopping

from skforml import FORMLClassifier
from skforml.datasets import make_biased_classification

X, y, group = make_biased_classification(n_samples=1500, random_state=0)

# %%
# Early stopping on the validation loss
# -------------------------------------
# ``EarlyStopping()`` monitors ``valid_loss`` (lower is better) and stops
# after five epochs without improvement; ``Checkpoint`` saves the parameters
# whenever ``valid_loss`` reaches a new best (``valid_loss_best``).
# ``verbose=1`` prints skorch's table, with FORML's columns.
checkpoints = tempfile.mkdtemp()
clf = FORMLClassifier(
    max_epochs=40,
    lr=3e-3,
    callbacks=[EarlyStopping(patience=5), Checkpoint(dirname=checkpoints)],
    verbose=1,
    random_state=0,
)
clf.fit(X, y, sensitive_features=group)
print(f"stopped after {len(clf.history_)} of 40 epochs")

# %%
# The network held by ``clf`` is the *last* epoch's. To go back to the best
# checkpoint, load it into the net:
best = int(np.argmin(clf.history_[:, "valid_loss"])) + 1
checkpoint = dict(clf.net_.callbacks_)["Checkpoint"]
clf.net_.load_params(checkpoint=checkpoint)
print(f"restored the parameters of epoch {best} (lowest valid_loss)")

# %%
# Early stopping on another column
# --------------------------------
# Any column of the history can be monitored. ``valid_acc`` is better when
# higher, so ``lower_is_better=False``; ``valid_disparity`` is better when
# lower. Stopping on the disparity alone rewards a network that predicts
# one class for everyone, so it is rarely what you want -- the tolerance
# below is the fairness-aware rule.
accurate = FORMLClassifier(
    max_epochs=40,
    lr=3e-3,
    callbacks=[EarlyStopping(monitor="valid_acc", lower_is_better=False)],
    random_state=0,
).fit(X, y, sensitive_features=group)
print(f"valid_acc stopped after {len(accurate.history_)} epochs")

# %%
# A tolerance: FORML's own epoch selection
# ----------------------------------------
# With ``tolerance``, FORML scales its weight steps to keep
# ``valid_disparity`` under it and, when training ends, restores the network
# and the weights of the epoch with the best ``valid_acc`` among the epochs
# within the tolerance (the first quarter of the epochs is a warm-up and is
# never chosen). ``best_epoch_`` says which epoch that is.
fair = FORMLClassifier(
    constraint="true_positive_rate_parity",
    tolerance=0.1,
    max_epochs=30,
    random_state=0,
).fit(X, y, sensitive_features=group)
print(f"best_epoch_ = {fair.best_epoch_} of {len(fair.history_)}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
epochs = np.arange(1, len(fair.history_) + 1)
left.plot(epochs, fair.history_[:, "valid_disparity"], marker=".")
left.axhline(0.1, color="grey", linestyle="--", label="tolerance")
left.set_ylabel("valid_disparity (TPR gap)")
right.plot(epochs, fair.history_[:, "valid_acc"], marker=".")
right.set_ylabel("valid_acc")
for ax in (left, right):
    ax.axvline(fair.best_epoch_, color="C3", linestyle=":", label="best_epoch_")
    ax.set_xlabel("epoch")
left.legend()
fig.tight_layout()
plt.show()

# %%
# ``EarlyStopping`` and a tolerance combine: the callback ends training, and
# FORML then selects among the epochs that ran.
