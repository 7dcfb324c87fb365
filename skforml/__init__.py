"""skforml: FORML fairness reweighting for neural networks, scikit-learn style."""

from ._classifier import FORMLClassifier
from ._module import MLP
from ._net import FORMLNet, WeightCollapseWarning

__version__ = "0.1.0"
__all__ = ["FORMLClassifier", "FORMLNet", "MLP", "WeightCollapseWarning", "__version__"]
