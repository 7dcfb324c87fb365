"""FORML on noisy digits: a split of the noisy rows vs a clean validation set.

Prints, mean over 3 seeds, the share of flipped labels among the k lowest-weight
training rows (k = number of flipped rows; chance = the flip rate, 0.2) and the
test accuracy and TPRD of the FORML model itself. The clean set is 300 training
rows with their true labels, passed as ``validation_set``.

Run: ``python benchmarks/bench_clean_validation.py``.
"""

import warnings

import numpy as np

from skforml import FORMLClassifier, rank_downweighted
from skforml.datasets import load_digits_noisy
from skforml.metrics import fairness_report


def main():
    warnings.simplefilter("ignore")
    results = {"noisy split": [], "clean validation": []}
    for seed in range(3):
        digits = load_digits_noisy(random_state=seed)
        order = np.random.RandomState(seed).permutation(len(digits.y_train))
        clean, train = order[:300], order[300:]
        X, y = digits.X_train[train], digits.y_train[train]
        flipped = digits.flipped[train]
        for name in results:
            clf = FORMLClassifier(random_state=seed, max_epochs=20)
            if name == "noisy split":
                clf.fit(X, y)
            else:
                trusted = (digits.X_train[clean], digits.y_train_clean[clean])
                clf.fit(X, y, validation_set=trusted)
            lowest = rank_downweighted(clf, int(flipped.sum()))
            report = fairness_report(digits.y_test, clf.predict(digits.X_test))
            results[name].append((flipped[lowest].mean(), report.accuracy, report.tprd))
    for name, values in results.items():
        v = np.array(values).mean(axis=0)
        print(
            f"{name:18s} flipped among lowest-weight rows {v[0]:.3f} "
            f"(chance .200)  test accuracy {v[1]:.3f}  TPRD {v[2]:.3f}"
        )


if __name__ == "__main__":
    main()
