"""What the constrained objective costs: a FORML fit now against skforml 0.2.0.

Times one ``FORMLClassifier`` fit (defaults, Adult by sex, 12,000 training
rows, one thread) of this working tree and of a checkout of skforml 0.2.0,
interleaved, each in a fresh subprocess, and prints the median seconds and
their ratio; the same for the paper's ``mean_loss_discrepancy`` on this
tree, which shares the rest of the step. Give the 0.2.0 checkout with
``--baseline`` (e.g. ``git worktree add ../skforml-0.2.0 01cf733``).

Run::

    python benchmarks/bench_objective_cost.py --baseline ../skforml-0.2.0
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

FIT = """
import json, time, warnings
import numpy as np, torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
import skforml
from skforml import FORMLClassifier
from skforml.datasets import load_adult
adult = load_adult()
X, y = adult.data[:12000], adult.target[:12000]
sex = adult.sensitive["sex"].to_numpy()[:12000]
clf = FORMLClassifier(random_state=0, max_epochs={epochs}, **{params})
start = time.perf_counter()
clf.fit(X, y, sensitive_features=sex)
print(json.dumps({{"seconds": time.perf_counter() - start,
                   "where": skforml.__file__}}))
"""


def fit_seconds(tree, params, epochs):
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    code = FIT.format(params=repr(params), epochs=epochs)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["where"].startswith(str(tree)), result["where"]
    return result["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    runs = {
        "0.2.0 defaults": (args.baseline.resolve(), {}),
        "defaults (constrained)": (HERE, {}),
        "paper objective": (HERE, {"meta_loss": "mean_loss_discrepancy"}),
    }
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved: load drifts hit all alike
        for name, (tree, params) in runs.items():
            seconds[name].append(fit_seconds(tree, params, args.epochs))
    base = statistics.median(seconds["0.2.0 defaults"])
    print(f"{'fit':24s} {'median s':>9s} {'x 0.2.0':>8s}   (runs)")
    for name, values in seconds.items():
        median = statistics.median(values)
        runs_text = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:24s} {median:9.2f} {median / base:8.2f}   ({runs_text})")


if __name__ == "__main__":
    main()
