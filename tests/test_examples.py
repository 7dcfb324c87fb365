"""The gallery examples run to the end.

Each example runs in its own process, as a reader would run it
(``python examples/plot_quickstart.py``). The quick ones run in every test
run; the ones that take most of a minute are marked slow (``--runslow``) --
the docs build executes every example anyway.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SLOW = {
    "plot_cnn_digits.py": "a minute of CNN training",
    "plot_data_audit.py": "a minute: eight fits on digits",
    "plot_frontier_adult.py": "a sweep of four methods on Adult",
    "plot_grid_search.py": "a grid search on Adult",
}


def _examples():
    for path in sorted(EXAMPLES.glob("plot_*.py")):
        marks = [pytest.mark.slow] if path.name in SLOW else []
        yield pytest.param(path, marks=marks, id=path.name)


def test_every_example_is_listed_or_quick():
    names = {path.name for path in EXAMPLES.glob("plot_*.py")}
    assert set(SLOW) <= names, "a slow example was renamed or removed"
    assert {"plot_quickstart.py", "plot_gpu.py"} <= names


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
