"""skforml: FORML fairness reweighting for neural networks, scikit-learn style."""

from ._audit import plot_sample_weights, rank_downweighted, weight_summary
from ._baselines import ReweightedClassifier
from ._callbacks import ToleranceResolutionWarning, WeightCollapseWarning
from ._classifier import FORMLClassifier
from ._compare import ComparisonResult, compare, default_estimators, plot_comparison
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
from ._frontier import FrontierResult, pareto_front, sweep
from ._input_warnings import (
    FeatureScaleWarning,
    IndexMismatchWarning,
    MissingSensitiveFeaturesWarning,
)
from ._module import MLP, SmallCNN
from ._net import FORMLNet
from ._sampler import FORMLSampler
from ._split import SmallGroupWarning
from ._weighting import FORMLWeights, TrainingRows, Weighting

__version__ = "0.2.0"
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
