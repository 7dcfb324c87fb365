"""Every paper-reproduction script runs end to end in its smoke mode.

The scripts live in ``benchmarks/`` (not a package): each is imported by
path and its ``main(["--smoke", ...])`` is run in this process, one fit at a
time, writing into a temporary folder.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = {
    "repro_capacity": {"uniform", "random", "proportion", "FORML"},
    "repro_noisy_labels": {
        "uniform (clean labels)",
        "uniform",
        "label bias (DP)",
        "FORML",
        "FORML (clean validation)",
    },
    "repro_sensitive": {
        "uniform",
        "FORML",
        "ExponentiatedGradient",
        "ThresholdOptimizer",
    },
    "repro_condensation": {
        "full data",
        "random subset",
        "condensed (FORML EMA)",
        "FORML",
    },
    "repro_ablations": None,
}


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield lambda name: importlib.import_module(name)
    torch.set_num_threads(threads)
    sys.modules.pop("_repro", None)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_smoke_run_writes_tables_verdicts_and_plot(name, script, tmp_path):
    module = script(name)
    runs = module.main(["--smoke", "--out", str(tmp_path), "--n-jobs", "1"])
    for output in ("table.md", "table.rst", "verdict.rst", "runs.csv", "plot.png"):
        assert (tmp_path / output).stat().st_size > 0, output
    saved = pd.read_csv(tmp_path / "runs.csv")
    assert len(saved) == len(runs) > 0
    assert np.isfinite(saved["accuracy"]).all()
    assert saved["accuracy"].between(0, 1).all()
    column = "variant" if name == "repro_ablations" else "method"
    expected = SCRIPTS[name] or set(module.VARIANTS)
    assert expected <= set(saved[column])
    table = (tmp_path / "table.md").read_text()
    assert "±" in table and "smoke run" in table
    assert "reproduced" in (tmp_path / "verdict.rst").read_text()
