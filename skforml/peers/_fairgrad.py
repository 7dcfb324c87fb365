"""FairGradClassifier: FairGrad's fairness-reweighted loss on FORML's network."""

import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from ._base import BasePeerClassifier, PeerLoss, _document, import_peer

__all__ = ["FairGradClassifier"]

# FairGrad's fairness measure of each constraint, and its desirable labels
# (read by "equal_opportunity" only): parity of the true negative rates is
# parity of the false positive rates.
MEASURES = {
    "true_positive_rate_parity": ("equal_opportunity", [1]),
    "false_positive_rate_parity": ("equal_opportunity", [0]),
    "equalized_odds": ("equal_odds", [1]),
    "demographic_parity": ("demographic_parity", [1]),
    "error_rate_parity": ("accuracy_parity", [1]),
}
# FairGrad appends every step's losses and statistics to these lists and only
# ever reads their last entries; the losses hold their autograd graphs, so
# the lists would keep every step's activations alive.
STEP_LISTS = (
    "step_groupwise_weights",
    "step_loss",
    "step_weighted_loss",
    "step_accuracy",
    "step_fairness",
)


class FairGradLoss(PeerLoss):
    """FairGrad's reweighted loss of a batch, ``sum_i p_i w(y_i, s_i) l_i``.

    ``w(y_i, s_i) l_i`` is FairGrad's ``FairnessLoss(criterion,
    reduction="none")`` in training mode, which first updates its (label,
    group) weights from the batch's fairness gaps; ``p`` is uniform without
    ``sample_weight``, so the loss is FairGrad's mean.
    """

    estimator, library = "FairGradClassifier", "FairGrad"

    def __init__(self, constraint, epsilon, fairness_rate, criterion):
        self.constraint = constraint
        self.epsilon = epsilon
        self.fairness_rate = fairness_rate
        self.criterion = criterion

    def start(self, rows, device):
        super().start(rows, device)
        fairness_loss = import_peer("fairgrad.torch.fairness_loss", self.estimator)
        measure, desirable = MEASURES[self.constraint]
        self.fairgrad = fairness_loss.FairnessLoss(
            self.criterion,
            reduction="none",
            fairness_measure=measure,
            y_train=np.asarray(rows.y),
            s_train=np.asarray(rows.groups),
            y_desirable=desirable,
            epsilon=self.epsilon,
            fairness_rate=self.fairness_rate,
        )

    def weighted_losses(self, logits, y, groups):
        """FairGrad's per-row losses ``w(y_i, s_i) l_i`` (and its weight update)."""
        with warnings.catch_warnings():
            # A (label, group) cell absent from the batch: FairGrad's mean of
            # an empty slice is NaN, which it replaces by the last step's gap.
            warnings.simplefilter("ignore", RuntimeWarning)
            # It mixes torch tensors into NumPy calls, which NumPy 2 deprecates.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            losses = self.fairgrad(logits, y, groups, mode="train")
        for name in STEP_LISTS:
            del getattr(self.fairgrad, name)[:-1]
        return losses.to(logits.dtype)

    def loss(self, logits, y, groups, p, losses):
        return (p * self.weighted_losses(logits, y, groups)).sum()

    def group_weights(self):
        """The last (label, group) weights ``w``, shape (n_classes, n_groups)."""
        if not self.fairgrad.step_groupwise_weights:
            return None
        return (
            self.fairgrad.step_groupwise_weights[-1] / self.fairgrad.fairness_function.P
        )


@_document
class FairGradClassifier(BasePeerClassifier):
    """FORML's network trained with FairGrad's fairness-reweighted loss.

    FairGrad (Maheshwari & Perrot, TMLR 2023) weights each row's loss by a
    weight of its (label, group) cell and updates the weights at every step
    from the batch's fairness gaps, as a Lagrangian method would its
    multipliers: the loss of a cell whose group is under-served weighs more
    (weights may turn negative). ``epsilon`` is the gap FairGrad tolerates
    before it reweights, the knob of the fairness-accuracy trade-off.

    The loss is FairGrad's own ``FairnessLoss`` (``fairgrad.torch``) on the
    batch; the network, optimizer, epochs, batches, ``sensitive_features``
    handling and seeding are those of :class:`~skforml.FORMLClassifier`, so
    the two are compared on the same training. Prediction needs no
    sensitive feature and is deterministic. Binary classification only.
    Needs ``pip install "skforml[peers]"``.

    Parameters
    ----------
    module : torch.nn.Module instance or class, default=None
        Network returning one logit per class for a float32 batch ``X``.
        None builds an :class:`~skforml.MLP` with ``hidden_layer_sizes``.
    constraint : str, default="equalized_odds"
        The fairness definition and its FairGrad measure:
        ``"true_positive_rate_parity"`` (``"equal_opportunity"``),
        ``"false_positive_rate_parity"`` (``"equal_opportunity"`` on the
        negatives), ``"equalized_odds"`` (``"equal_odds"``),
        ``"demographic_parity"`` or ``"error_rate_parity"``
        (``"accuracy_parity"``).
    epsilon : float, default=0.0
        FairGrad's fairness slack: the gap of a group's rate to the overall
        rate left unpenalised. 0 asks for exact parity.
    fairness_rate : float, default=0.01
        FairGrad's step size of the weight update (its default).
    %(network_parameters)s

    Attributes
    ----------
    %(fitted_attributes)s
    group_weights_ : ndarray of shape (2, n_groups)
        FairGrad's weight of the loss of each (class, group) cell after the
        last step (1 for every cell would be plain training).

    See Also
    --------
    FairretClassifier : The other PyTorch peer, a fairness penalty.
    FORMLClassifier : Meta-learned reweighting on the same network.
    ReweightedClassifier : Fixed reweightings on the same network.

    Notes
    -----
    FairGrad measures the gaps on each batch from the predicted labels; a
    (label, group) cell absent from a batch keeps its last gap (FairGrad's
    rule). ``sample_weight`` weights the rows' losses within each batch;
    FairGrad's gaps count the rows unweighted.

    References
    ----------
    .. [1] G. Maheshwari, M. Perrot. "FairGrad: Fairness Aware Gradient
       Descent". TMLR, 2023.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FairGradClassifier
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> clf = FairGradClassifier(constraint="true_positive_rate_parity",
    ...                          epsilon=0.02, max_epochs=3, random_state=0)
    >>> clf.fit(X, y, sensitive_features=X[:, 0] > 0).group_weights_.shape
    (2, 2)

    """

    _parameter_constraints = {
        **BasePeerClassifier._parameter_constraints,
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "fairness_rate": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        module=None,
        *,
        constraint="equalized_odds",
        epsilon=0.0,
        fairness_rate=0.01,
        hidden_layer_sizes=(64,),
        module_params=None,
        max_epochs=40,
        batch_size=128,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        criterion=nn.CrossEntropyLoss,
        device="cpu",
        num_workers=0,
        precision="float32",
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.constraint = constraint
        self.epsilon = epsilon
        self.fairness_rate = fairness_rate
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.criterion = criterion
        self.device = device
        self.num_workers = num_workers
        self.precision = precision
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _make_peer_loss(self):
        return FairGradLoss(
            self.constraint, self.epsilon, self.fairness_rate, self.criterion
        )

    def _collect_fitted_attributes(self, n_samples):
        super()._collect_fitted_attributes(n_samples)
        self.group_weights_ = self.net_.peer_loss_.group_weights()
