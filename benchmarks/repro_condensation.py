"""Dataset condensation (paper Section 4.5, Table 5).

The paper condenses CIFAR-100 (not available offline; a ResNet would not
train on 2 CPU cores in minutes) by removing the training rows with the
lowest exponential moving average of FORML's weighted loss, then retrains
plainly on what is left. Here the task is one with a fairness gap between
classes and no label noise: scikit-learn's digits where classes 5-9 keep only
a quarter of their training rows (the minority classes are recalled worse),
classes as groups, a one-hidden-layer MLP of 32 units trained with batches
of 32 rows.

For every seed:

1. A uniformly weighted network is trained on the training rows while a
   callback counts each row's *forgetting events* (Toneva et al.: correct at
   one epoch, wrong at the next; a row never learned counts as the most
   forgotten). The validation set is the "easy" rows, as in the paper: the
   lowest forgetting counts, 8 per class, ties broken at random.
2. FORML (defaults, ``validation_set`` = those rows) trains on the rest;
   the 20% of its training rows with the lowest ``weighted_loss_ema_`` are
   removed (:class:`skforml.FORMLSampler`'s rule, at least one row of every
   class kept).
3. A uniformly weighted network is retrained on the condensed rows, on all
   rows, and on a random subset of the condensed size.

Reported: test accuracy, TPRD (spread of per-class recall) and max FNR of
the three retrained networks and of the FORML model itself.

Run: ``python benchmarks/repro_condensation.py`` (``--smoke`` for seconds).
"""

import sys

import numpy as np
from _repro import Results, bar_panels, compare, get_runs, metric_row, parser, stat
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skforml import FORMLClassifier, ReweightedClassifier
from skforml.metrics import fairness_report

NAME = "condensation"
METHODS = ("full data", "random subset", "condensed (FORML EMA)", "FORML")
METRICS = ("accuracy", "tprd", "max_fnr")
MINORITY, KEEP = (5, 6, 7, 8, 9), 0.25
PER_CLASS, REMOVE = 8, 0.2


class ForgettingCounts(Callback):
    """Counts, per training row, the epochs at which a correct row became wrong."""

    def __init__(self, X, y):
        self.X, self.y = np.asarray(X, dtype=np.float32), np.asarray(y)

    def on_train_begin(self, net, **kwargs):
        self.previous = np.zeros(len(self.y), dtype=bool)
        self.ever_correct = np.zeros(len(self.y), dtype=bool)
        self.counts = np.zeros(len(self.y), dtype=int)

    def on_epoch_end(self, net, **kwargs):
        correct = net.forward(self.X, training=False).argmax(dim=1).numpy() == self.y
        self.counts += self.previous & ~correct
        self.previous, self.ever_correct = correct, self.ever_correct | correct

    def forgetting(self):
        """Forgetting events; rows never learned rank above every other."""
        return np.where(self.ever_correct, self.counts, self.counts.max() + 1)


def imbalanced_digits(seed):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.3, stratify=y, random_state=seed
    )
    rng = np.random.RandomState(seed)
    keep = np.isin(y_train, MINORITY, invert=True) | (rng.rand(len(y_train)) < KEEP)
    return X_train[keep], y_train[keep], X_test, y_test


def easy_rows(counts, y, seed):
    """``PER_CLASS`` rows of every class with the fewest forgetting events."""
    noise = np.random.RandomState(seed).rand(len(y))
    chosen = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        chosen += list(rows[np.lexsort((noise[rows], counts[rows]))[:PER_CLASS]])
    return np.sort(chosen)


def condense(ema, y, n_remove):
    """Lowest-EMA rows removed, never the last row of a class (FORMLSampler's rule)."""
    order = np.lexsort((np.arange(len(ema)), ema))
    left = {label: int(np.sum(y == label)) for label in np.unique(y)}
    removed = []
    for row in order:
        if len(removed) == n_remove:
            break
        if left[y[row]] > 1:
            removed.append(row)
            left[y[row]] -= 1
    return np.setdiff1d(np.arange(len(y)), removed)


def fit_one(seed, epochs):
    X, y, X_test, y_test = imbalanced_digits(seed)
    network = {
        "hidden_layer_sizes": (32,),
        "batch_size": 32,
        "max_epochs": epochs,
        "random_state": seed,
    }
    counter = ForgettingCounts(X, y)
    ReweightedClassifier(callbacks=[counter], **network).fit(X, y)
    easy = easy_rows(counter.forgetting(), y, seed)
    rest = np.setdiff1d(np.arange(len(y)), easy)
    forml = FORMLClassifier(**network).fit(
        X[rest], y[rest], validation_set=(X[easy], y[easy])
    )
    kept = rest[condense(forml.weighted_loss_ema_, y[rest], int(REMOVE * len(rest)))]
    subset = np.random.RandomState(seed).choice(rest, size=len(kept), replace=False)
    rows = []
    for method, train in zip(METHODS, (rest, subset, kept, None)):
        model = forml
        if train is not None:
            model = ReweightedClassifier(**network).fit(X[train], y[train])
        report = fairness_report(y_test, model.predict(X_test))
        n_rows = len(rest if train is None else train)
        rows.append(
            {"method": method, "seed": seed, "rows": n_rows, **metric_row(report)}
        )
    return rows


def main(argv=None):
    args = parser(NAME, __doc__.splitlines()[0], seeds=10).parse_args(argv)
    epochs = 2 if args.smoke else 60
    seeds = range(2 if args.smoke else args.seeds)
    args.seeds = len(seeds)
    results = Results(args, NAME)
    runs = get_runs(args, fit_one, [(seed, epochs) for seed in seeds])
    title = "Imbalanced digits (classes 5-9 at 25%), classes as groups"
    results.table(runs, "method", METRICS, title)

    def of(method, metric):
        return stat(runs, runs.method == method, metric)

    for rival in ("full data", "random subset"):
        compare(
            results, "condensed", of("condensed (FORML EMA)", "tprd"), rival,
            of(rival, "tprd"), "tprd", "lower",
            f"Paper: condensed data lowers TPRD below the {rival}",
        )  # fmt: skip
    compare(
        results, "condensed", of("condensed (FORML EMA)", "tprd"), "FORML",
        of("FORML", "tprd"), "tprd", "lower",
        "Paper: retraining on the condensed data beats the FORML model itself",
    )  # fmt: skip
    compare(
        results, "condensed", of("condensed (FORML EMA)", "accuracy"), "random subset",
        of("random subset", "accuracy"), "accuracy", "higher",
        "Paper: condensation keeps accuracy (here: against a random subset)",
    )  # fmt: skip
    results.save(runs, bar_panels(runs, "method", METRICS, title))
    return runs


if __name__ == "__main__":
    main(sys.argv[1:])
