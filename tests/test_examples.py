"""The gallery examples run to the end.

Each example runs in its own process, as a reader would run it
(``python examples/plot_quickstart.py``), in every test run: the whole
gallery takes about two minutes on two cores.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = {
    "plot_cnn_digits.py",
    "plot_data_audit.py",
    "plot_early_stopping.py",
    "plot_frontier_adult.py",
    "plot_gpu.py",
    "plot_grid_search.py",
    "plot_quickstart.py",
}


def _examples():
    for path in sorted(EXAMPLES.glob("plot_*.py")):
        yield pytest.param(path, id=path.name)


def test_every_example_is_collected():
    names = {path.name for path in EXAMPLES.glob("plot_*.py")}
    assert EXPECTED <= names, "an example was renamed or removed"


@pytest.mark.parametrize("path", list(_examples()))
def test_example_runs(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example prints what it shows"
