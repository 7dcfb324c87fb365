import matplotlib

matplotlib.use("Agg")

import subprocess
import sys
import time

import pytest
import torch

from skforml import ComparisonResult, default_estimators
from skforml.demo import main


def test_quick_demo_runs_and_saves_the_plot(tmp_path, capsys):
    output = tmp_path / "x.png"
    threads = torch.get_num_threads()
    start = time.perf_counter()
    result = main(["--quick", "--output", str(output)])
    assert time.perf_counter() - start < 60
    assert isinstance(result, ComparisonResult)
    assert list(result.summary.index) == list(default_estimators())
    assert not result.results.isna().any().any(), result.errors
    assert output.stat().st_size > 10_000
    captured = capsys.readouterr()
    assert "FORML" in captured.out and "TPRD" in captured.out
    assert "(one seed)" in captured.out
    assert "[1/9] FORML seed=0" in captured.err
    assert torch.get_num_threads() == threads  # restored


def test_demo_options(tmp_path, capsys):
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
    assert result.results["seed"].tolist()[:2] == [0, 1]
    assert "600 training rows, 400 test rows, 2 seed(s)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--train-rows"):
        main(["--quick", "--train-rows", "5000", "--test-rows", "0"])


def test_help_runs_as_a_module():
    completed = subprocess.run(
        [sys.executable, "-m", "skforml.demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--quick" in completed.stdout and "--output" in completed.stdout
