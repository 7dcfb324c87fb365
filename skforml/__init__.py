"""skforml: FORML fairness reweighting for neural networks, scikit-learn style."""

__version__ = "0.1.0"
__all__ = ["__version__"]
