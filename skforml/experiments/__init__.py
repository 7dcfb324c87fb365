"""Experiment tooling: comparisons, fairness-accuracy sweeps and their plots."""
