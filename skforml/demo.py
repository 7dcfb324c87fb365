"""FORML's fairness-accuracy frontier next to its peers' on the bundled Adult data.

Run ``python -m skforml.demo`` (under 5 minutes on 2 CPU cores) or
``python -m skforml.demo --quick`` (under a minute). The demo predicts
income > $50K with ``sex`` as the sensitive feature and sweeps each method
over its own tolerance knob on the same train/test splits (see
:func:`skforml.sweep`): FORML over ``tolerance``, the PyTorch peers on the
same network and training loop -- fairret's penalty over its ``strength``
and FairGrad over its ``epsilon`` (with ``pip install "skforml[peers]"``;
skipped with a note without it) --, ExponentiatedGradient around the same
network over its constraint's ``difference_bound``, ThresholdOptimizer over
``tol``, and the uniformly trained network as a single point, all under
true-positive-rate parity. It prints the best test
accuracy of each method within a few TPRD tolerances, which methods need
``sex`` at prediction time or predict at random, the fit times, and saves
the frontier plot.

The features are :func:`skforml.datasets.load_adult`'s preprocessed array
(standardised numbers, one-hot categories, ``sex`` and ``race`` included).
Its scaler and encoder were fitted on all rows -- unsupervised statistics
only, so the test labels do not leak.
"""

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity
from sklearn.model_selection import train_test_split

from ._baselines import ReweightedClassifier
from ._classifier import FORMLClassifier
from .datasets import load_adult
from .experiments._fairlearn_compat import ThresholdOptimizer
from .experiments._frontier import sweep
from .experiments._runs import seeded_splits
from .peers._fairgrad import FairGradClassifier
from .peers._fairret import FairretClassifier
from .training._callbacks import ToleranceResolutionWarning

__all__ = ["frontier_methods", "main"]

TOLERANCES = (0.01, 0.02, 0.05, 0.1)
FULL = {
    "train_rows": 8000,
    "test_rows": None,
    "seeds": 3,
    "methods": {},  # frontier_methods' defaults
}
QUICK = {
    "train_rows": 4000,
    "test_rows": None,
    "seeds": 1,
    "methods": {
        "forml_epochs": 20,
        "backbone_epochs": 15,
        "mitigator_epochs": 8,
        "eg_max_iter": 3,
        "forml_values": (0.02, 0.05, None),
        "strengths": (0.1, 0.3),
        "epsilons": (0.0, 0.02),
        "bounds": (0.01, 0.05),
        "tols": (0.0, 0.02, 0.05),
    },
}
# The libraries of the peers (the "peers" extra).
PEER_PACKAGES = ("fairret", "fairgrad")


def frontier_methods(
    *,
    forml_epochs=20,
    backbone_epochs=20,
    mitigator_epochs=10,
    eg_max_iter=5,
    hidden_layer_sizes=(64,),
    batch_size=128,
    forml_values=(0.01, 0.02, 0.05, None),
    strengths=(0.03, 0.1, 0.3, 0.7),
    epsilons=(0.0, 0.01, 0.02, 0.05),
    bounds=(0.01, 0.02, 0.05),
    tols=(0.0, 0.01, 0.02, 0.05),
    peers=True,
):
    """The demo's methods and knobs, for :func:`skforml.sweep`.

    All under true-positive-rate parity (equal opportunity, the gap that
    ``tprd`` measures), around the same MLP. FORML and the PyTorch peers
    (fairret, FairGrad) also share the training loop: the same network,
    optimizer and batches, with FORML's or the library's loss.

    Parameters
    ----------
    forml_epochs : int, default=20
        Epochs of FORML: those of every other network here. FORML's own
        default of 40 serves noisy labels, where every weight needs many
        moves; on Adult the extra epochs overtrain the network as they do
        uniform training (3 seeds, tolerance None: .844 accuracy at 40
        epochs, .852 at 20, at the same TPRD).
    backbone_epochs : int, default=20
        Epochs of the uniformly trained network, alone and inside
        ThresholdOptimizer, and of fairret and FairGrad (plain training's
        budget: their fairness term needs no extra epochs).
    mitigator_epochs : int, default=10
        Epochs of each network fit inside ExponentiatedGradient, which fits
        it several times per iteration.
    eg_max_iter : int, default=5
        Iterations of ExponentiatedGradient.
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of every network.
    batch_size : int, default=128
        Rows per step of every network.
    forml_values : sequence, default=(0.01, 0.02, 0.05, None)
        FORML's ``tolerance`` values (None: no tolerance, FORML's last
        epoch).
    strengths : sequence of float, default=(0.03, 0.1, 0.3, 0.7)
        :class:`~skforml.FairretClassifier`'s ``strength`` values (the
        weight of fairret's ``NormLoss(TruePositiveRate())``).
    epsilons : sequence of float, default=(0.0, 0.01, 0.02, 0.05)
        :class:`~skforml.FairGradClassifier`'s ``epsilon`` values (its
        fairness slack).
    bounds : sequence of float, default=(0.01, 0.02, 0.05)
        ExponentiatedGradient's ``difference_bound`` values.
    tols : sequence of float, default=(0.0, 0.01, 0.02, 0.05)
        ThresholdOptimizer's ``tol`` values (0: strict parity).
    peers : bool, default=True
        Include fairret and FairGrad (their libraries are imported when they
        are fitted: ``pip install "skforml[peers]"``).

    Returns
    -------
    methods : dict
        Name -> ``(estimator, {knob: values})`` or estimator, in display
        order.

    Examples
    --------
    >>> from skforml.demo import frontier_methods
    >>> list(frontier_methods())  # doctest: +NORMALIZE_WHITESPACE
    ['FORML', 'fairret', 'FairGrad', 'ExponentiatedGradient',
     'ThresholdOptimizer', 'Uniform']
    >>> list(frontier_methods(peers=False))  # doctest: +NORMALIZE_WHITESPACE
    ['FORML', 'ExponentiatedGradient', 'ThresholdOptimizer', 'Uniform']

    """
    network = {"hidden_layer_sizes": hidden_layer_sizes, "batch_size": batch_size}

    def backbone(epochs):
        return ReweightedClassifier(weighting="uniform", max_epochs=epochs, **network)

    tpr_parity = {"constraint": "true_positive_rate_parity"}
    forml = FORMLClassifier(**tpr_parity, max_epochs=forml_epochs, **network)
    methods = {"FORML": (forml, {"tolerance": list(forml_values)})}
    if peers:
        methods["fairret"] = (
            FairretClassifier(**tpr_parity, max_epochs=backbone_epochs, **network),
            {"strength": list(strengths)},
        )
        methods["FairGrad"] = (
            FairGradClassifier(**tpr_parity, max_epochs=backbone_epochs, **network),
            {"epsilon": list(epsilons)},
        )
    return methods | {
        "ExponentiatedGradient": (
            ExponentiatedGradient(
                backbone(mitigator_epochs),
                constraints=TruePositiveRateParity(),
                max_iter=eg_max_iter,
            ),
            {"constraints__difference_bound": list(bounds)},
        ),
        "ThresholdOptimizer": (
            ThresholdOptimizer(
                estimator=backbone(backbone_epochs),
                constraints="true_positive_rate_parity",
                objective="accuracy_score",
                predict_method="predict_proba",
            ),
            {"tol": list(tols)},
        ),
        "Uniform": backbone(backbone_epochs),
    }


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m skforml.demo",
        description="Fairness-accuracy frontiers of FORML, the PyTorch peers "
        "fairret and FairGrad, and fairlearn's mitigators on UCI Adult "
        "(income > $50K, sensitive feature: sex).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run (under a minute)"
    )
    parser.add_argument(
        "--seeds", type=int, help="number of seeds (default 3; 1 quick)"
    )
    parser.add_argument(
        "--train-rows",
        type=int,
        help="training rows per seed (default 8000; 4000 quick)",
    )
    parser.add_argument(
        "--test-rows",
        type=int,
        help="test rows per seed (default: all other rows)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("forml_frontier.png"),
        help="where to save the plot (default: ./forml_frontier.png)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads per fit (default 1: the networks are "
        "tiny, and extra threads mostly contend for the cores)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="fits run in parallel (joblib; default: every core, one fit "
        "each; 1 quick)",
    )
    return parser


def _missing_peers():
    """The peers' libraries that are not installed."""
    return [name for name in PEER_PACKAGES if importlib.util.find_spec(name) is None]


def _adult_rows(train_rows, test_rows):
    """Adult's features, labels and sex, cut to ``train_rows + test_rows``."""
    adult = load_adult()
    X, y = adult.data, adult.target
    sex = adult.sensitive["sex"].to_numpy()
    n_rows = len(y) if test_rows is None else train_rows + test_rows
    if not 0 < train_rows < min(n_rows, len(y)):
        raise ValueError(
            f"--train-rows must be between 1 and {min(n_rows, len(y)) - 1}, "
            f"got {train_rows}."
        )
    if n_rows < len(y):
        strata = np.char.add(sex.astype(str), y.astype(str))
        keep, _ = train_test_split(
            np.arange(len(y)), train_size=n_rows, stratify=strata, random_state=0
        )
        X, y, sex = X[keep], y[keep], sex[keep]
    return X, y, sex


def _noise_note(y, sex, test_size):
    """How large a TPRD difference the test set can tell from noise."""
    _, test = seeded_splits(y, sex, [0], test_size)[0]
    positives = {
        group: int(np.sum((sex[test] == group) & (y[test] == 1)))
        for group in np.unique(sex)
    }
    # Standard error of a difference of two rates, at its largest (p = 1/2).
    se = np.sqrt(sum(0.25 / n for n in positives.values()))
    counts = ", ".join(f"{group} {n}" for group, n in positives.items())
    return (
        f"Test positives per group: {counts}; TPRD differences under "
        f"~{2 * se:.3f} (two standard errors) are test-set noise."
    )


QUICK_CAVEAT = (
    "Quick run: one seed (no spread between seeds), {train_rows} training "
    "rows, {forml_epochs} FORML epochs, {backbone_epochs} epochs of the plain "
    "network and the peers, and {eg_max_iter} ExponentiatedGradient iterations "
    "(the full run: 3 seeds, 8000 rows, 40 and 20 epochs, 5 iterations). It "
    "shows where each knob moves each method; every method trains less than in "
    "the full run, so these points are not the comparison. Run without --quick "
    "for it."
)


def main(argv=None):
    """Run the sweeps, print the table and save the frontier plot.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments; None reads ``sys.argv``. See
        ``python -m skforml.demo --help``.

    Returns
    -------
    result : FrontierResult
        The sweeps; see :func:`skforml.sweep`.

    Examples
    --------
    >>> from skforml.demo import main
    >>> result = main(["--quick", "--output", "demo.png"])  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP

    """
    args = _parser().parse_args(argv)
    settings = QUICK if args.quick else FULL
    train_rows, test_rows, n_seeds = (
        settings[name] if value is None else value
        for name, value in [
            ("train_rows", args.train_rows),
            ("test_rows", args.test_rows),
            ("seeds", args.seeds),
        ]
    )
    if n_seeds < 1:
        raise SystemExit("--seeds must be at least 1.")
    n_jobs = args.n_jobs if args.n_jobs is not None else (1 if args.quick else -1)
    X, y, sex = _adult_rows(train_rows, test_rows)
    test_size = len(y) - train_rows
    print(
        f"UCI Adult: {train_rows} training rows, {test_size} test rows, "
        f"{n_seeds} seed(s); sensitive feature: sex",
        file=sys.stderr,
    )
    missing = _missing_peers()
    if missing:
        print(
            f"fairret and FairGrad skipped: {', '.join(missing)} not installed "
            '(pip install "skforml[peers]").',
            file=sys.stderr,
        )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ToleranceResolutionWarning)
        result = sweep(
            frontier_methods(**settings["methods"], peers=not missing),
            X,
            y,
            sensitive_features=sex,
            tolerances=TOLERANCES,
            test_size=test_size,
            seeds=range(n_seeds),
            n_jobs=n_jobs,
            threads_per_job=args.threads,
        )
    seconds = time.perf_counter() - start
    # The sweep's one summary of FORML's unresolved tolerances is a note of
    # the table, not an alarm; anything else is re-raised as it came.
    notes = [w for w in caught if w.category is ToleranceResolutionWarning]
    for record in caught:
        if record.category is not ToleranceResolutionWarning:
            warnings.warn_explicit(
                record.message, record.category, record.filename, record.lineno
            )
    print(f"\nEvery setting (*: on its method's frontier):\n{result.points_text}")
    print(f"\n{result.table_text}")
    print(
        "\nTPRD: max - min true positive rate over the sexes, on the test rows. "
        "Each method's best setting is chosen on the test rows, alike for all."
    )
    print(_noise_note(y, sex, test_size))
    for note in notes:
        print(f"Note: {note.message}")
    if args.quick:
        quick = {"train_rows": train_rows} | QUICK["methods"]
        print(QUICK_CAVEAT.format(**quick))
    figure = result.plot()
    figure.savefig(args.output, dpi=120)
    # Free the pyplot figure: tests and notebooks call main() repeatedly.
    import matplotlib.pyplot as plt

    plt.close(figure)
    print(f"Plot saved to {args.output}; total {seconds:.0f} s.")
    return result


if __name__ == "__main__":
    main()
