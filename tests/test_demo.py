import matplotlib

matplotlib.use("Agg")

import subprocess
import sys

import pytest
import torch

from skforml import FrontierResult, demo
from skforml.demo import frontier_methods, main


def test_quick_demo_runs_and_saves_the_plot(tmp_path, capsys):
    output = tmp_path / "x.png"
    threads = torch.get_num_threads()
    # No wall-time assertion: the machine is shared (the run time is measured
    # from the command line and reported in the docs instead).
    result = main(["--quick", "--output", str(output)])
    assert isinstance(result, FrontierResult)
    assert list(result.methods.index) == list(frontier_methods())
    assert result.errors.empty, result.errors
    assert not result.results[["accuracy", "tprd"]].isna().any().any()
    # Every knob value of every method is a point.
    assert len(result.points) == 3 + 2 + 2 + 2 + 3 + 1
    assert output.stat().st_size > 10_000
    captured = capsys.readouterr()
    out = captured.out
    for text in (
        "FORML",
        "fairret",
        "FairGrad",
        "ExponentiatedGradient",
        "ThresholdOptimizer",
        "TPRD≤0.05",
        "strength=0.1",
        "epsilon=0.02",
    ):
        assert text in out
    assert "sensitive at predict" in out and "sweep fit s" in out
    assert "one seed" in out and "Quick run" in out
    assert "test-set noise" in out
    assert "[1/13] FORML tolerance=0.02 seed=0" in captured.err
    assert "skipped" not in captured.err
    assert torch.get_num_threads() == threads  # restored


def test_demo_options(tmp_path, capsys, monkeypatch):
    # Without the peers extra the demo runs without them, and says so.
    monkeypatch.setattr(demo, "_missing_peers", lambda: ["fairgrad"])
    result = main(
        [
            "--quick",
            "--seeds",
            "2",
            "--train-rows",
            "600",
            "--test-rows",
            "400",
            "--output",
            str(tmp_path / "y.png"),
        ]
    )
    assert sorted(result.results["seed"].unique()) == [0, 1]
    err = capsys.readouterr().err
    assert "600 training rows, 400 test rows, 2 seed(s)" in err
    assert 'fairgrad not installed (pip install "skforml[peers]")' in err
    assert list(result.methods.index) == list(frontier_methods(peers=False))
    with pytest.raises(ValueError, match="--train-rows"):
        main(["--quick", "--train-rows", "5000", "--test-rows", "0"])


def test_help_runs_as_a_module():
    completed = subprocess.run(
        [sys.executable, "-m", "skforml.demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--quick" in completed.stdout and "--n-jobs" in completed.stdout
