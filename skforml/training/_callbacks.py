"""The per-epoch bookkeeping of a FORML fit, as skorch callbacks.

- :class:`WeightMonitor` logs the mean meta-loss and the weights' effective
  sample size, and warns when the weights collapse;
- :class:`FairnessScoring` logs ``valid_disparity``, the constraint's
  disparity of the validation rows' predictions;
- :class:`ToleranceController` moves the constrained objective's
  multipliers (or, for the paper's meta-losses, the strength of the weight
  updates) from the validation gaps when a ``tolerance`` is given, and warns
  when the monitored rows are too few to resolve it;
- :class:`EpochSelector` keeps the parameters and weights of the best epoch
  so far and restores them when training ends.

Each holds its own settings (``FairnessScoring(constraint=..., groups=...)``,
``ToleranceController(tolerance=...)``, ...), set by the classifier through
the net's ``callbacks__<name>__<setting>`` parameters; from the net they
read only its parts (``weighting_``, ``meta_objective_``, ``loss_average_``).
"""

import copy
import math
import warnings

import numpy as np
from skorch.callbacks import Callback

from ..checks._groups import stratum_ids
from ..fairness._objectives import hard_rate_gaps

# Below this effective share of rows the weights have collapsed onto a few
# rows: the model then learns from too little data.
COLLAPSE_FRACTION = 0.2
# Bounds of the tolerance controller's multiplier of meta_lr, and its largest
# change per epoch (a factor of 2 up or down).
MIN_STRENGTH, MAX_STRENGTH = 1 / 32, 8.0


class WeightCollapseWarning(UserWarning):
    """The learned weights concentrate on a small share of the rows.

    Examples
    --------
    It is a :class:`UserWarning`, so the usual filters apply; to make it an
    error while tuning ``meta_lr``:

    >>> import warnings
    >>> from skforml import WeightCollapseWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", WeightCollapseWarning)
    ...     # fit here: a collapse of the weights raises instead of warning
    ...     pass
    >>> issubclass(WeightCollapseWarning, UserWarning)
    True

    """


class WeightMonitor(Callback):
    """Logs ``meta_loss`` and ``weight_ess``; warns once when weights collapse.

    ``meta_loss`` is the epoch's mean fairness meta-loss measured after the
    lookahead on the validation batches. It is a training signal, not a
    score: it tends to rise as the network fits the training rows better
    than the validation rows; read ``valid_disparity`` to judge fairness.
    """

    def on_train_begin(self, net, **kwargs):
        self.warned_ = False

    def on_epoch_end(self, net, **kwargs):
        ess = net.weighting_.effective_sample_fraction()
        net.history.record("weight_ess", ess)
        if net.meta_loss_count_:
            net.history.record(
                "meta_loss", float(net.meta_loss_sum_) / net.meta_loss_count_
            )
        if ess < COLLAPSE_FRACTION and not self.warned_:
            self.warned_ = True
            warnings.warn(
                f"The learned weights have collapsed: their effective sample size "
                f"is {ess:.1%} of the training rows after epoch "
                f"{len(net.history)}. {net.weighting_.collapse_advice}",
                WeightCollapseWarning,
                stacklevel=2,
            )


class FairnessScoring(Callback):
    """Logs ``valid_acc`` and ``valid_disparity`` of the validation pass.

    It takes skorch's ``valid_acc`` over: a :class:`FORMLNet
    <skforml.training._net.FORMLNet>` registers it under that name, in place
    of skorch's plain accuracy. The validation rows are balanced across
    (group, label) strata; each row counts in ``valid_acc`` with its
    stratum's share of the training rows over its share of the validation
    rows (``row_weights``), so that ``valid_acc`` estimates the accuracy on
    data distributed like the training data, not a balanced accuracy; the
    same weights enter the disparity, where rates that pool labels
    (selection rate, error rate) depend on the label mix.

    Parameters
    ----------
    constraint : Constraint or None, default=None
        The constraint whose ``disparity`` is logged as ``valid_disparity``;
        None logs none.
    moments : tuple or None, default=None
        ``(constraint, moment_spec)``: the constraint's rate gaps, logged per
        bucket as ``valid_gaps``; None logs none.
    groups : ndarray of shape (n_validation,) or None, default=None
        Group code of every validation row (set for each fit); None logs
        only the accuracy.
    row_weights : ndarray of shape (n_validation,) or None, default=None
        Weight of every validation row; None weighs them equally.

    Attributes
    ----------
    standard_errors_ : ndarray
        Standard error of every logged gap at the last epoch.

    """

    def __init__(self, constraint=None, moments=None, groups=None, row_weights=None):
        self.constraint = constraint
        self.moments = moments
        self.groups = groups
        self.row_weights = row_weights

    def on_epoch_begin(self, net, **kwargs):
        self.predictions_ = []

    def on_batch_end(self, net, training=False, y_pred=None, **kwargs):
        if not training:
            self.predictions_.append(y_pred.argmax(dim=1).cpu())

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if not self.predictions_:
            return
        y_pred = np.concatenate([p.numpy() for p in self.predictions_])
        y_true = np.asarray(dataset_valid.y)
        self.predictions_ = []
        accuracy = np.average(y_pred == y_true, weights=self.row_weights)
        net.history.record("valid_acc", float(accuracy))
        if self.groups is None:
            return
        if self.constraint is not None:
            disparity = self.constraint.disparity(
                y_true, y_pred, self.groups, self.row_weights
            )
            net.history.record("valid_disparity", disparity)
        if self.moments is not None:
            constraint, spec = self.moments
            n_classes = len(net.classes_)
            cells = spec.cells(stratum_ids(self.groups, y_true, n_classes))
            gaps, errors = hard_rate_gaps(
                constraint, spec, y_true, y_pred, cells, self.row_weights,
                n_classes,
            )  # fmt: skip
            # Per bucket of the constraint's rates (e.g. FPR and TPR gaps).
            net.history.record("valid_gaps", gaps.round(6).tolist())
            self.standard_errors_ = errors


class ToleranceResolutionWarning(UserWarning):
    """The monitored rows are too few to tell the disparity from the tolerance.

    Raised at the end of ``fit`` when the standard error of the monitored
    gap exceeds half the tolerance: the epoch selection and the multipliers
    then follow noise as much as the gap. ``standard_error`` and
    ``tolerance`` hold the two numbers.

    Examples
    --------
    >>> from skforml import ToleranceResolutionWarning
    >>> warning = ToleranceResolutionWarning.from_error(0.04, 0.02)
    >>> warning.standard_error, warning.rows_factor
    (0.04, 16)
    >>> print(warning)  # doctest: +ELLIPSIS
    The monitored validation rows resolve the disparity only to +/-0.040 ...

    """

    standard_error = tolerance = rows_factor = None

    @classmethod
    def from_error(cls, standard_error, tolerance):
        """The warning for a gap of ``standard_error`` under ``tolerance``."""
        # The error falls as 1 / sqrt(rows): rows needed for tolerance / 2.
        factor = math.ceil((standard_error / (tolerance / 2)) ** 2)
        warning = cls(
            f"The monitored validation rows resolve the disparity only to "
            f"+/-{standard_error:.3f} (one standard error), more than half of "
            f"tolerance={tolerance}: the epoch selection follows noise. About "
            f"{factor}x as many monitored rows per group would be needed; raise "
            "validation_size or pass a larger validation_set."
        )
        warning.standard_error, warning.tolerance = standard_error, tolerance
        warning.rows_factor = factor
        return warning


class ToleranceController(Callback):
    """Moves the objective toward the tolerance, once per epoch.

    With ``meta_loss="constrained"`` this is dual ascent on the objective's
    multipliers, one per bucket of rates (for equalized odds, the FPR and
    the TPR): each grows while its monitored gap (``valid_gaps``) exceeds
    ``tolerance`` and falls toward 0 once it is met (see
    :meth:`~skforml.fairness._objectives.ConstrainedObjective.update_multipliers`),
    logged as ``multipliers``. With the paper's meta-losses, which hold no
    accuracy term, it can only scale the weight steps: the strength (a
    multiplier of ``meta_lr``) grows while the validation disparity exceeds
    ``tolerance`` and shrinks below it, in proportion to the relative
    violation ``(disparity - tolerance) / tolerance`` and by at most a factor
    of 2 per epoch, logged as ``meta_strength``.

    Parameters
    ----------
    tolerance : float or None, default=None
        The disparity aimed at; None moves nothing (the multipliers are
        still logged).
    scoring : str, default="valid_acc"
        Name of the net's :class:`FairnessScoring`, whose standard errors
        give ``resolution_``.

    Attributes
    ----------
    resolution_ : float or None
        Largest standard error of the monitored gaps at the end of training,
        when a tolerance is given (else None). The estimator warns
        (:class:`ToleranceResolutionWarning`) when it exceeds half the
        tolerance.

    """

    def __init__(self, tolerance=None, scoring="valid_acc"):
        self.tolerance = tolerance
        self.scoring = scoring

    def on_epoch_end(self, net, **kwargs):
        tolerance = self.tolerance
        weighting = net.weighting_
        multipliers = getattr(net.meta_objective_, "multipliers", None)
        if multipliers is not None:
            if tolerance is not None and "valid_gaps" in net.history[-1]:
                net.meta_objective_.update_multipliers(
                    net.history[-1, "valid_gaps"], tolerance
                )
            net.history.record(
                "multipliers", [round(float(v), 4) for v in multipliers.cpu()]
            )
            return
        if tolerance is None or not hasattr(weighting, "strength"):
            return
        if "valid_disparity" in net.history[-1]:
            violation = (net.history[-1, "valid_disparity"] - tolerance) / tolerance
            factor = 2.0 ** float(np.clip(violation, -1.0, 1.0))
            weighting.strength = float(
                np.clip(weighting.strength * factor, MIN_STRENGTH, MAX_STRENGTH)
            )
        net.history.record("meta_strength", weighting.strength)

    def on_train_end(self, net, **kwargs):
        # The estimator warns (ToleranceResolutionWarning) from what is left
        # here: a warning from inside skorch's loop would point at skorch.
        scoring = dict(net.callbacks_).get(self.scoring)
        errors = getattr(scoring, "standard_errors_", None)
        self.resolution_ = None
        if self.tolerance is not None and errors is not None and len(errors):
            self.resolution_ = float(np.max(errors))


def epoch_score(row, tolerance):
    """Sort key of an epoch: higher is better.

    With a tolerance: epochs within it first, by validation accuracy; then the
    others by least disparity. Without one: the validation accuracy.
    """
    accuracy = row.get("valid_acc", -math.inf)
    if tolerance is None:
        return (0.0, accuracy)
    disparity = row.get("valid_disparity", math.inf)
    if disparity <= tolerance:
        return (1.0, accuracy)
    return (0.0, -disparity)


class EpochSelector(Callback):
    """Restores, when training ends, the epoch chosen by :func:`epoch_score`.

    Epochs before ``select_from_epoch`` are not candidates: an under-trained
    network can meet a tolerance trivially (predicting the negative class
    for everyone has a TPR gap of 0), as a 4,000-row Adult fit did at epoch
    1 (validation TPR gap .009, test accuracy .76). It keeps an in-memory
    copy of the module's and the weighting's state at the best epoch so far
    (the size of the model and of one float per training row).

    Parameters
    ----------
    enabled : bool, default=False
        Whether to select; when False training keeps its last epoch.
    tolerance : float or None, default=None
        The disparity of :func:`epoch_score`; None selects on accuracy.
    select_from_epoch : int, default=1
        The first candidate epoch (1-based).

    Attributes
    ----------
    best_epoch_ : int
        The epoch restored (1-based): the last one when none was selected.

    """

    def __init__(self, enabled=False, tolerance=None, select_from_epoch=1):
        self.enabled = enabled
        self.tolerance = tolerance
        self.select_from_epoch = select_from_epoch

    def on_train_begin(self, net, **kwargs):
        self.best_ = None
        self.best_epoch_ = None

    def on_epoch_end(self, net, **kwargs):
        if not self.enabled or len(net.history) < self.select_from_epoch:
            return
        score = epoch_score(net.history[-1], self.tolerance)
        if self.best_ is None or score > self.best_:
            self.best_ = score
            self.best_epoch_ = len(net.history)
            self.state_ = (
                copy.deepcopy(net.module_.state_dict()),
                net.weighting_.state_dict(),
                net.loss_average_.average.clone(),
            )

    def on_train_end(self, net, **kwargs):
        if self.best_ is None:
            self.best_epoch_ = len(net.history)
            return
        module_state, weighting_state, average = self.state_
        net.module_.load_state_dict(module_state)
        net.weighting_.load_state_dict(weighting_state)
        net.loss_average_.average = average
        self.state_ = None
