"""skforml: FORML fairness reweighting for neural networks, scikit-learn style."""

import importlib

from ._audit import plot_sample_weights, rank_downweighted, weight_summary
from ._baselines import ReweightedClassifier
from ._callbacks import ToleranceResolutionWarning, WeightCollapseWarning
from ._classifier import FORMLClassifier
from ._constraints import (
    Constraint,
    DemographicParity,
    EqualizedOdds,
    ErrorRateParity,
    FalsePositiveRateParity,
    TruePositiveRateParity,
)
from ._fairgrad import FairGradClassifier
from ._fairret import FairretClassifier
from ._input_warnings import (
    FeatureScaleWarning,
    IndexMismatchWarning,
    MissingSensitiveFeaturesWarning,
)
from ._module import MLP, SmallCNN
from ._net import FORMLNet
from ._split import SmallGroupWarning
from ._weighting import FORMLWeights, TrainingRows, Weighting

__version__ = "0.3.0"
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
    "ComparisonResult": "._compare",
    "compare": "._compare",
    "default_estimators": "._compare",
    "plot_comparison": "._compare",
    "FrontierResult": "._frontier",
    "pareto_front": "._frontier",
    "sweep": "._frontier",
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
