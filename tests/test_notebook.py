"""The notebook examples/fairness_analysis.ipynb runs from top to bottom.

It runs in its fast setting (``SKFORML_NOTEBOOK_FAST=1``: a few hundred rows
and epochs, well under a minute); the docs build runs it in full. A cell
that raises fails the test with the cell's traceback.
"""

from pathlib import Path

import nbclient
import nbformat

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "fairness_analysis.ipynb"


def test_notebook_runs_in_its_fast_setting(monkeypatch):
    # The kernel inherits the environment. JUPYTER_PLATFORM_DIRS silences
    # jupyter_core's deprecation warning about its old directory layout.
    monkeypatch.setenv("SKFORML_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(
        cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"
    ), "commit the notebook without outputs (the docs build executes it)"
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    # history, frontier, weight distributions
    assert len(figures) >= 3
    text = "".join(
        out.get("text", "") + out.get("data", {}).get("text/plain", "")
        for out in outputs
    )
    for expected in ("tprd", "TPR gap", "ExponentiatedGradient", "mean"):
        assert expected in text, f"no {expected!r} in the notebook's output"
