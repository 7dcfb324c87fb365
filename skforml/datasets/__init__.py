"""Datasets for fairness experiments; all load without network access."""

from ._adult import load_adult, make_adult_preprocessor
from ._digits import load_digits_noisy
from ._synthetic import make_biased_classification

__all__ = [
    "load_adult",
    "load_digits_noisy",
    "make_adult_preprocessor",
    "make_biased_classification",
]
