"""The typed state of a fit: the checked data and the validation rows.

``BaseReweightingClassifier.fit`` passes these between its steps instead of
a dict of string keys.
"""

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder

from ..checks._groups import stratum_ids
from ..weighting._base import TrainingRows
from ._data import take_rows


@dataclass
class FitData:
    """The checked arguments of ``fit``.

    ``X`` is a float32 array, or a caller's torch Dataset whose items have
    shape ``item_shape``. ``groups`` are the group codes of the rows (the
    label codes when ``groups_are_classes``); ``group_names`` their names.
    """

    X: np.ndarray | torch.utils.data.Dataset
    y: np.ndarray
    encoder: LabelEncoder
    groups: np.ndarray
    group_names: list
    groups_are_classes: bool
    sample_weight: np.ndarray | None
    item_shape: tuple = ()

    def rows(self, index):
        """``X`` of the rows ``index`` as an array (a Dataset's are read)."""
        return take_rows(self.X, index, self.item_shape)

    @property
    def classes(self):
        return self.encoder.classes_

    @property
    def n_classes(self):
        return len(self.classes)

    @property
    def strata(self):
        return stratum_ids(self.groups, self.y, self.n_classes)

    @property
    def n_strata(self):
        return len(self.group_names) * self.n_classes

    def training_rows(self, index, seed):
        """The :class:`~skforml.TrainingRows` of the rows ``index``."""
        return TrainingRows(
            self.y[index],
            self.groups[index],
            self.n_classes,
            len(self.group_names),
            None if self.sample_weight is None else self.sample_weight[index],
            np.random.RandomState(seed),
        )


@dataclass
class ValidationRows:
    """The rows that train and the rows the meta-loss and selection look at."""

    train_index: np.ndarray
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    cells: np.ndarray
    min_group_samples: int
    held_out: np.ndarray  # indices into X of fit's data; empty for a caller's set
    monitor: np.ndarray = None  # rows of the validation metrics, not of the meta step
    row_weights: np.ndarray = None  # see FairnessScoring

    def part(self, monitor):
        """``(X, y, groups, cells)`` of the monitoring rows or of the meta rows."""
        if not self.monitor.any():  # too few rows to split: every row does both
            return self.X, self.y, self.groups, self.cells
        rows = self.monitor if monitor else ~self.monitor
        return self.X[rows], self.y[rows], self.groups[rows], self.cells[rows]


# Share of the validation rows that monitor the fit (see split_monitor_rows).
MONITOR_SHARE = 0.5


def stratum_weights(strata_train, strata_valid, n_strata=0):
    """Weight of each stratum: its training share over its validation share.

    1 where the stratum has no training or no validation rows.
    """
    size = max(
        strata_train.max(initial=0) + 1, strata_valid.max(initial=0) + 1, n_strata
    )
    train = np.bincount(strata_train, minlength=size) / max(len(strata_train), 1)
    valid = np.bincount(strata_valid, minlength=size) / max(len(strata_valid), 1)
    return np.divide(train, valid, out=np.ones(size), where=(valid > 0) & (train > 0))


def distribution_weights(strata_train, strata_valid):
    """Weight of each validation row: its stratum's training over validation share."""
    return stratum_weights(strata_train, strata_valid)[strata_valid]


@dataclass
class ObjectiveParts:
    """What a meta-objective is built from (see ``_make_meta_objective``).

    ``spec`` and ``moment_spec`` are the constraint's loss-discrepancy cells
    and moment cells; ``stratum_weight`` (on the CPU: the net moves its
    objective to its device) weighs the meta step's validation rows, by
    stratum, to the training distribution. The per-row loss is the net's,
    given when the net builds the objective.
    """

    constraint: object
    spec: object
    moment_spec: object
    stratum_weight: torch.Tensor
    n_classes: int
