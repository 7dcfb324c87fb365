"""How the meta step computes the weight gradient: the engines' seam.

An engine is an :class:`Engine` subclass; one with a ``name`` registers
itself, so ``FORMLClassifier(meta_gradient=name)`` uses it.
"""

from ._engines import ENGINES, Engine, JvpEngine, LinearEngine, UnrolledEngine
from ._multistep import MultiStep, MultiStepEngine

__all__ = [
    "ENGINES",
    "Engine",
    "JvpEngine",
    "LinearEngine",
    "MultiStep",
    "MultiStepEngine",
    "UnrolledEngine",
]
