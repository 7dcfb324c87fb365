"""Sphinx configuration of the skforml documentation.

Build (offline, warnings as errors) from the repository root::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build executes the gallery (``examples/plot_*.py``) and the notebook
``examples/fairness_analysis.ipynb``; on two CPU cores it takes a few
minutes. ``-D plot_gallery=0`` skips executing the gallery.
"""

import os
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import skforml  # noqa: E402

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

from _figures import write_three_step_figure  # noqa: E402

project = "skforml"
author = "skforml developers"
copyright = "skforml developers"
version = release = skforml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
]

exclude_patterns = [
    "_build",
    # included into other pages, not pages of their own
    "_constraint_table.rst",
    # sphinx-gallery writes a notebook next to every example for download;
    # they are not pages.
    "auto_examples/*.ipynb",
    "**.ipynb_checkpoints",
]
templates_path = ["_templates"]
html_static_path = ["_static"]

# -- API reference ----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Offline builds: intersphinx would fetch inventories over the network, so it
# only links where a local inventory is given (SKFORML_INTERSPHINX=1 fetches).
intersphinx_mapping = {}
if os.environ.get("SKFORML_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "fairlearn": ("https://fairlearn.org/main", None),
    }
# Without inventories, references to other projects' objects stay plain text.
nitpicky = False

# -- Gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    # From a first model to the specialised topics (docs/_gallery_order.py).
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib",),
    "min_reported_time": 1,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skforml",),
    "show_signature": False,
}

# -- The notebook (myst-nb) -------------------------------------------------
# The notebook lives in examples/ next to the gallery scripts; it is copied
# into the source tree at every build and executed there.
NOTEBOOK = ROOT / "examples" / "fairness_analysis.ipynb"
(DOCS / "notebooks").mkdir(exist_ok=True)
shutil.copyfile(NOTEBOOK, DOCS / "notebooks" / NOTEBOOK.name)
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath"]
source_suffix = {".rst": "restructuredtext", ".ipynb": "myst-nb"}

# -- Figures ----------------------------------------------------------------
write_three_step_figure(DOCS / "_static" / "forml_three_steps.svg")

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skforml {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 7,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": [], "results": [], "notebooks/*": []}
html_context = {"default_mode": "light"}
html_show_sourcelink = True
html_css_files = ["custom.css"]
