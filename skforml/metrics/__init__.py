"""Fairness metrics for evaluating classifiers across groups."""

from ._disparity import group_disparity
from ._fairness import fairness_report
from ._scorers import FAIRNESS_METRICS, best_within_tolerance, make_fairness_scorer

__all__ = [
    "FAIRNESS_METRICS",
    "best_within_tolerance",
    "fairness_report",
    "group_disparity",
    "make_fairness_scorer",
]
