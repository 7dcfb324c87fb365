"""FORML's ablations (paper appendix Section 7.1, Tables 6-9).

The paper runs them on CelebA ("Attractive" by sex, TPR parity), which cannot
ship (see ``repro_sensitive.py``); the stand-in is the bundled Adult by sex
under true-positive-rate parity, 3,000 training and 1,500 test rows per seed
(stratified on sex and label), an MLP with one hidden layer of 64 units and
the paper's setting otherwise: ``meta_loss="mean_loss_discrepancy"`` (skforml
0.3's default objective is the constrained one, shown as its own row). Each
row changes one option of :class:`skforml.FORMLClassifier` from that
setting:

- Tables 6-7, ``reverse_lookahead=True``: the lookahead climbs the training
  loss (the basic differential multiplier method's reversed sign);
- Table 8, ``meta_loss``: MeanLossD (the paper's), MaxLossD, cross-entropy;
- Table 9, ``weight_map``: softmax (the default), raw logits,
  inverse-square L1;
- Algorithm 1's "multiple gradient updates", ``lookahead_steps=2``.

Uniform training of the same network is the reference row.

Run: ``python benchmarks/repro_ablations.py`` (``--smoke`` for seconds).
"""

import sys

from _repro import (
    Results,
    bar_panels,
    compare,
    get_runs,
    metric_row,
    parser,
    stat,
    stratified_rows,
)

from skforml import FORMLClassifier, ReweightedClassifier
from skforml.datasets import load_adult
from skforml.metrics import fairness_report

NAME = "ablations"
METRICS = ("accuracy", "tprd", "max_fnr")
# Name -> (table, FORMLClassifier parameters changed from the defaults).
VARIANTS = {
    "uniform (no FORML)": ("reference", None),
    "FORML (MeanLossD, softmax, 1 step)": ("all", {}),
    "reverse lookahead": ("6-7", {"reverse_lookahead": True}),
    "MaxLossD": ("8", {"meta_loss": "max_loss_discrepancy"}),
    "cross-entropy meta-loss": ("8", {"meta_loss": "cross_entropy"}),
    "weights: raw logits": ("9", {"weight_map": "logits"}),
    "weights: inverse-square L1": ("9", {"weight_map": "inverse_square_l1"}),
    "2 lookahead steps": ("steps", {"lookahead_steps": 2}),
    "constrained objective (skforml's default)": ("8", {"meta_loss": "constrained"}),
}
# The paper's setting, which every FORML row changes one option of.
PAPER = {"meta_loss": "mean_loss_discrepancy"}
DEFAULT = "FORML (MeanLossD, softmax, 1 step)"


def fit_one(variant, seed, n_rows, epochs):
    adult = load_adult()
    sex = adult.sensitive["sex"].to_numpy().astype(str)
    train, test = stratified_rows(sex, adult.target, n_rows, seed)
    table, changes = VARIANTS[variant]
    network = {"hidden_layer_sizes": (64,), "random_state": seed}
    if changes is None:
        model = ReweightedClassifier(max_epochs=epochs // 2, **network)
    else:
        model = FORMLClassifier(
            constraint="true_positive_rate_parity",
            max_epochs=epochs,
            **network,
            **(PAPER | changes),
        )
    X, y = adult.data, adult.target
    model.fit(X[train], y[train], sensitive_features=sex[train])
    report = fairness_report(
        y[test], model.predict(X[test]), sensitive_features=sex[test]
    )
    return {"variant": variant, "table": table, "seed": seed, **metric_row(report)}


def main(argv=None):
    args = parser(NAME, __doc__.splitlines()[0], seeds=5).parse_args(argv)
    n_rows, epochs = ((400, 200), 2) if args.smoke else ((3000, 1500), 30)
    seeds = range(1 if args.smoke else args.seeds)
    args.seeds = len(seeds)
    results = Results(args, NAME)
    tasks = [(variant, seed, n_rows, epochs) for seed in seeds for variant in VARIANTS]
    runs = get_runs(args, fit_one, tasks)
    results.table(
        runs, ["table", "variant"], METRICS, "Adult by sex, TPR parity: ablations"
    )

    def of(variant, metric):
        return stat(runs, runs.variant == variant, metric)

    claims = [
        ("reverse lookahead", DEFAULT, "tprd", "lower",
         "Table 6: the paper's reversed lookahead lowers TPRD"),
        (DEFAULT, "cross-entropy meta-loss", "tprd", "lower",
         "Table 8: a fairness meta-loss (MeanLossD) has a lower TPRD than "
         "cross-entropy"),
        ("cross-entropy meta-loss", DEFAULT, "accuracy", "higher",
         "Table 8: cross-entropy meta-loss is slightly more accurate"),
        (DEFAULT, "weights: raw logits", "tprd", "lower",
         "Table 9: softmax weights have a lower TPRD than raw logits"),
        (DEFAULT, "weights: inverse-square L1", "tprd", "lower",
         "Table 9: softmax weights have a lower TPRD than inverse-square L1"),
        (DEFAULT, "uniform (no FORML)", "tprd", "lower",
         "FORML lowers TPRD below uniform training"),
    ]  # fmt: skip
    for a, b, metric, better, claim in claims:
        compare(results, a, of(a, metric), b, of(b, metric), metric, better, claim)
    two, one = of("2 lookahead steps", "tprd")[0], of(DEFAULT, "tprd")[0]
    results.verdict(
        f"Two lookahead steps (no paper number): TPRD {100 * two:.2f} vs one "
        f"step {100 * one:.2f} (%)."
    )
    fig = bar_panels(runs, "variant", METRICS, "Adult by sex: FORML ablations")
    results.save(runs, fig)
    return runs


if __name__ == "__main__":
    main(sys.argv[1:])
