"""How the rows of a batch are weighted: the weightings' seam.

Every scheme is a :class:`~skforml.Weighting`; FORML's is
:class:`~skforml.FORMLWeights`, the paper's baselines are registered by name.
"""

from ._base import WEIGHT_MAPS, FORMLWeights, TrainingRows, Weighting
from ._baselines import BASELINES, BaselineWeighting

__all__ = [
    "BASELINES",
    "WEIGHT_MAPS",
    "BaselineWeighting",
    "FORMLWeights",
    "TrainingRows",
    "Weighting",
]
