"""skforml: FORML fairness reweighting for neural networks, scikit-learn style."""

import importlib

from ._baselines import ReweightedClassifier
from ._classifier import FORMLClassifier
from ._module import MLP, SmallCNN
from .checks._warnings import (
    FeatureScaleWarning,
    IndexMismatchWarning,
    MissingSensitiveFeaturesWarning,
)
from .fairness._base import Constraint
from .fairness._constraints import (
    DemographicParity,
    EqualizedOdds,
    ErrorRateParity,
    FalsePositiveRateParity,
    TruePositiveRateParity,
)
from .inspection._audit import plot_sample_weights, rank_downweighted, weight_summary
from .peers._fairgrad import FairGradClassifier
from .peers._fairret import FairretClassifier
from .training._callbacks import ToleranceResolutionWarning, WeightCollapseWarning
from .training._net import FORMLNet
from .training._split import SmallGroupWarning
from .weighting._base import FORMLWeights, TrainingRows, Weighting

__version__ = "0.4.0"
__all__ = [
    "ComparisonResult",
    "Constraint",
    "DemographicParity",
    "EqualizedOdds",
    "ErrorRateParity",
    "FORMLWeights",
    "FalsePositiveRateParity",
    "SmallGroupWarning",
    "TrainingRows",
    "ToleranceResolutionWarning",
    "TruePositiveRateParity",
    "Weighting",
    "FORMLClassifier",
    "FORMLNet",
    "FORMLSampler",
    "FairGradClassifier",
    "FairretClassifier",
    "FeatureScaleWarning",
    "FrontierResult",
    "IndexMismatchWarning",
    "MLP",
    "MissingSensitiveFeaturesWarning",
    "ReweightedClassifier",
    "SmallCNN",
    "WeightCollapseWarning",
    "compare",
    "default_estimators",
    "pareto_front",
    "plot_comparison",
    "plot_sample_weights",
    "rank_downweighted",
    "sweep",
    "weight_summary",
    "__version__",
]

# The experiment tooling and the sampler load fairlearn's reductions, joblib
# and imbalanced-learn: they are imported on first use, not by `import skforml`.
_LAZY = {
    "ComparisonResult": ".experiments._compare",
    "compare": ".experiments._compare",
    "default_estimators": ".experiments._compare",
    "plot_comparison": ".experiments._compare",
    "FrontierResult": ".experiments._frontier",
    "pareto_front": ".experiments._frontier",
    "sweep": ".experiments._frontier",
    "FORMLSampler": "._sampler",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
