"""Fairness metrics for evaluating classifiers across groups."""

from ._fairness import fairness_report

__all__ = ["fairness_report"]
