"""The docstring examples of every skforml module run and print what they show.

Each docstring with a ``>>>`` example is one test (so ``-k`` picks one and a
failure names it). A second test checks that every public name of
``skforml``, ``skforml.metrics`` and ``skforml.datasets`` has an example.
They run under the suite's warnings-as-errors filter: an example that warns
fails.
"""

import doctest
import importlib
import inspect
import pkgutil

import matplotlib
import pytest

import skforml

matplotlib.use("Agg")

# Modules that are scripts or build tools rather than library code.
SKIP_MODULES = {"skforml.datasets._make_adult_bundle"}
PUBLIC_MODULES = ("skforml", "skforml.metrics", "skforml.datasets")
# Public names that are data rather than code: their docstring is the type's.
NOT_DOCUMENTED_BY_EXAMPLE = {"skforml.metrics.FAIRNESS_METRICS"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = ["skforml"] + [
        info.name
        for info in pkgutil.walk_packages(skforml.__path__, prefix="skforml.")
        if info.name not in SKIP_MODULES
    ]
    return [importlib.import_module(name) for name in sorted(names)]


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for module in _modules():
        for test in finder.find(module, module.__name__):
            if test.examples and test.name not in found:
                found[test.name] = test
    return [found[name] for name in sorted(found)]


DOCTESTS = _doctests()


def test_the_doctests_were_found():
    names = {test.name for test in DOCTESTS}
    assert "skforml._classifier.FORMLClassifier" in names
    assert "skforml.metrics._fairness.fairness_report" in names
    assert len(names) >= 30


@pytest.mark.parametrize("test", DOCTESTS, ids=lambda test: test.name)
def test_docstring_example(test):
    import matplotlib.pyplot as plt

    output = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    test.globs = dict(test.globs)
    try:
        result = runner.run(test, out=output.append, clear_globs=True)
    finally:
        plt.close("all")
    assert result.failed == 0, "".join(output)


def _public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not name.startswith("__"):
                yield f"{module_name}.{name}", getattr(module, name)


@pytest.mark.parametrize(
    "name, obj", list(_public_names()), ids=lambda value: str(value)[:60]
)
def test_every_public_name_has_an_example(name, obj):
    if name in NOT_DOCUMENTED_BY_EXAMPLE:
        pytest.skip("data: documented in its module's docstring")
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc and ">>>" in doc, (
        f"{name} has no numpydoc Examples section with a doctest"
    )
