"""What "fair" means to FORML: the constraints' seam and the meta-objectives.

A constraint is a :class:`~skforml.Constraint` subclass (it registers its
name); the meta-objectives turn its rates into what the weights follow.
"""

from ._base import Constraint, constraint_names
from ._constraints import (
    DemographicParity,
    EqualizedOdds,
    ErrorRateParity,
    FalsePositiveRateParity,
    TruePositiveRateParity,
)
from ._objectives import META_LOSSES, ConstrainedObjective, MetaObjective, Objective

__all__ = [
    "META_LOSSES",
    "ConstrainedObjective",
    "Constraint",
    "DemographicParity",
    "EqualizedOdds",
    "ErrorRateParity",
    "FalsePositiveRateParity",
    "MetaObjective",
    "Objective",
    "TruePositiveRateParity",
    "constraint_names",
]
