"""FairretClassifier: fairret's fairness penalty on FORML's network."""

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._base import BasePeerClassifier, PeerLoss, _document, import_peer

__all__ = ["FairretClassifier"]

# fairret's statistic of each constraint: the rate that must be equal across
# the groups.
STATISTICS = {
    "true_positive_rate_parity": ("TruePositiveRate",),
    "false_positive_rate_parity": ("FalsePositiveRate",),
    "equalized_odds": ("TruePositiveRate", "FalsePositiveRate"),
    "demographic_parity": ("PositiveRate",),
    "error_rate_parity": ("Accuracy",),
}
PENALTIES = {"norm": "NormLoss", "lse": "LSELoss"}


def make_statistic(constraint):
    """The fairret statistic of ``constraint`` (equalized odds: two, stacked)."""
    statistic = import_peer("fairret.statistic", "FairretClassifier")
    parts = [getattr(statistic, name)() for name in STATISTICS[constraint]]
    if len(parts) == 1:
        return parts[0]
    return statistic.StackedLinearFractionalStatistic(*parts)


class FairretLoss(PeerLoss):
    """``sum_i p_i l_i + strength * fairret(logit, sens, label)`` on a batch.

    fairret's loss takes the logit of the positive class (``z_1 - z_0`` of a
    two-logit network, whose sigmoid is its softmax probability), the groups
    one-hot, and the labels as floats for the statistics that condition on
    them, as in fairret's own examples.
    """

    estimator, library = "FairretClassifier", "fairret"

    def __init__(self, constraint, strength, penalty):
        self.constraint = constraint
        self.strength = strength
        self.penalty = penalty

    def start(self, rows, device):
        super().start(rows, device)
        losses = import_peer("fairret.loss", self.estimator)
        self.fairret = getattr(losses, PENALTIES[self.penalty])(
            make_statistic(self.constraint)
        )
        # PositiveRate is the one statistic that does not read the labels.
        self.uses_labels = self.constraint != "demographic_parity"

    def fairness_term(self, logits, y, groups):
        """The fairret loss of the batch: ``fairret(logit, sens, label)``."""
        logit = (logits[:, 1] - logits[:, 0]).unsqueeze(1)
        sens = nn.functional.one_hot(groups, self.n_groups).to(logit.dtype)
        labels = (y.to(logit.dtype).unsqueeze(1),) if self.uses_labels else ()
        try:
            return self.fairret(logit, sens, *labels)
        except NotImplementedError:
            # fairret's penalty is undefined when the batch's overall rate is
            # 0 (no positive row, for a true positive rate): the batch trains
            # without it.
            return torch.zeros((), device=logit.device)

    def loss(self, logits, y, groups, p, losses):
        data_loss = (p * losses).sum()
        if self.strength == 0:
            return data_loss
        return data_loss + self.strength * self.fairness_term(logits, y, groups)


@_document
class FairretClassifier(BasePeerClassifier):
    """FORML's network trained with a fairret fairness penalty.

    fairret (Buyl, Defrance & De Bie, ICLR 2024) makes a fairness
    definition a differentiable loss: the statistic the definition equalises
    (a true positive rate, a positive rate ...) is computed per group from
    the network's probabilities on each batch, and its relative gaps to the
    batch's overall value are penalised. The network minimises the mean
    training loss plus ``strength`` times fairret's penalty::

        loss = criterion + strength * NormLoss(statistic)(logit, sens, label)

    This is fairret's own recipe; the network, optimizer, epochs, batches,
    ``sensitive_features`` handling and seeding are those of
    :class:`~skforml.FORMLClassifier`, so the two are compared on the same
    training. Prediction needs no sensitive feature and is deterministic.
    Binary classification only. Needs ``pip install "skforml[peers]"``.

    Parameters
    ----------
    module : torch.nn.Module instance or class, default=None
        Network returning one logit per class for a float32 batch ``X``.
        None builds an :class:`~skforml.MLP` with ``hidden_layer_sizes``.
    constraint : str, default="equalized_odds"
        The fairness definition and its fairret statistic:
        ``"true_positive_rate_parity"`` (``TruePositiveRate``),
        ``"false_positive_rate_parity"`` (``FalsePositiveRate``),
        ``"equalized_odds"`` (both, stacked), ``"demographic_parity"``
        (``PositiveRate``) or ``"error_rate_parity"`` (``Accuracy``).
    strength : float, default=1.0
        Weight ``lambda`` of the fairness penalty (fairret's "fairness
        strength"), the knob of the fairness-accuracy trade-off; 0 is plain
        training.
    penalty : {"norm", "lse"}, default="norm"
        fairret's penalty of the statistic's gaps: ``"norm"`` (``NormLoss``,
        the L1 norm of the relative gaps) or ``"lse"`` (``LSELoss``, a smooth
        maximum).
    %(network_parameters)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    FairGradClassifier : The other PyTorch peer, a group reweighting.
    FORMLClassifier : Meta-learned reweighting on the same network.

    Notes
    -----
    On a batch with no row that the statistic conditions on (no positive row
    for a true positive rate), the overall statistic is 0 and fairret's
    penalty is undefined (fairret raises ``NotImplementedError``); that batch
    trains on ``criterion`` alone. ``sample_weight`` weights the rows'
    ``criterion`` losses; fairret's statistics count the rows unweighted.

    References
    ----------
    .. [1] M. Buyl, M. Defrance, T. De Bie. "fairret: a Framework for
       Differentiable Fairness Regularization Terms". ICLR, 2024.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skforml import FairretClassifier
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> clf = FairretClassifier(constraint="true_positive_rate_parity",
    ...                         strength=0.5, max_epochs=3, random_state=0)
    >>> clf.fit(X, y, sensitive_features=X[:, 0] > 0).predict(X[:3]).shape
    (3,)

    """

    _parameter_constraints = {
        **BasePeerClassifier._parameter_constraints,
        "strength": [Interval(Real, 0, None, closed="left")],
        "penalty": [StrOptions(set(PENALTIES))],
    }

    def __init__(
        self,
        module=None,
        *,
        constraint="equalized_odds",
        strength=1.0,
        penalty="norm",
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
        self.strength = strength
        self.penalty = penalty
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
        return FairretLoss(self.constraint, self.strength, self.penalty)
