"""What the PyTorch fairness peers share: FORML's network and loop, their loss.

:class:`~skforml.FairretClassifier` (fairret, Buyl et al. 2024) and
:class:`~skforml.FairGradClassifier` (FairGrad, Maheshwari & Perrot 2023)
train the network of :class:`~skforml.FORMLClassifier` with its fit -- the
same input checks, groups, seeding, skorch net, optimizer, epochs, batches
and fitted attributes (:class:`~skforml._base.BaseReweightingClassifier`) --
and change one thing: the loss of a training batch, which the peer's library
computes (a :class:`PeerLoss`). Like the uniform baseline they train on every
row, with no validation split and no meta step.

The libraries are optional (``pip install "skforml[peers]"``): they are
imported when a peer is fitted, with an :class:`ImportError` that names the
extra when one is missing.
"""

import importlib
from abc import ABC, abstractmethod

import torch
from sklearn.utils._param_validation import StrOptions

from .._base import BaseReweightingClassifier
from ..training._net import FORMLNet
from ..weighting._baselines import UniformWeights

# The constraints a peer offers (each maps it to its library's measure).
PEER_CONSTRAINTS = (
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "equalized_odds",
    "demographic_parity",
    "error_rate_parity",
)

# Parameters shared by the peers, documented once (see _document).
NETWORK_PARAMETERS = """\
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of the built-in network (ignored with ``module``).
    module_params : dict, default=None
        Keyword arguments of ``module`` when it is a class.
    max_epochs : int, default=40
        Passes over the training rows (FORMLClassifier's default, so that
        comparisons run at the same budget).
    batch_size : int, default=128
        Training rows per step; the library's fairness term is measured on
        each batch, as its authors train.
    lr : float, default=1e-3
        Learning rate of ``optimizer``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimizer of the network.
    criterion : torch.nn.Module class, default=torch.nn.CrossEntropyLoss
        The per-row training loss, built with ``reduction="none"``.
    device : str or torch.device, default="cpu"
        Device of the network, e.g. ``"cuda"``.
    num_workers : int, default=0
        Worker processes that load the batches when ``X`` is a torch
        ``Dataset``.
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` runs the network's forward passes under
        :func:`torch.autocast`.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` with the
        same data instead of starting over.
    random_state : int, RandomState instance or None, default=None
        Seeds the network's initialisation, the batch order and dropout.
    verbose : int, default=0
        1 prints a line per epoch (skorch's ``PrintLog``).
    callbacks : list of skorch callbacks, default=None
        Extra callbacks of the skorch net."""

FITTED_ATTRIBUTES = """\
    classes_ : ndarray of shape (2,)
        Class labels; ``classes_[1]`` is the positive class of the rates.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` when it is a DataFrame with string columns.
    groups_ : list
        Name of each sensitive group.
    net_ : FORMLNet
        The fitted skorch net (its ``peer_loss_`` holds the library's loss).
    world_size_ : int
        Number of processes the fit trained on: 1, or the ranks of a
        data-parallel fit under ``torchrun`` (see the user guide's "Several
        processes and GPUs").
    history_ : skorch.History
        Per-epoch log: ``train_loss`` (the library's loss, fairness term
        included), ``dur``.
    sample_weights_ : ndarray of shape (n_samples,)
        The caller's ``sample_weight`` with mean 1 (ones without it): the
        peers learn no row weights.
    weighted_loss_ema_ : ndarray of shape (n_samples,)
        Per-row exponential moving average (decay 0.9) over epochs of the
        normalised ``criterion`` loss."""


def _document(cls):
    """Fill the shared parts of a peer's docstring in."""
    cls.__doc__ = cls.__doc__.replace(
        "    %(network_parameters)s", NETWORK_PARAMETERS
    ).replace("    %(fitted_attributes)s", FITTED_ATTRIBUTES)
    return cls


def import_peer(module, estimator):
    """Import a peer's library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.partition(".")[0]
        raise ImportError(
            f"{estimator} needs the {package} package, which is not installed: "
            f'pip install "skforml[peers]" (or pip install {package}).'
        ) from exc


class PeerLoss(ABC):
    """The training loss of a batch, as a peer's library computes it.

    :meth:`start` receives the training rows when a fit starts (the loss
    keeps their groups); :meth:`__call__` returns a batch's scalar loss from
    the network's logits, the labels, the batch's rows and the per-row
    ``criterion`` losses weighted by ``p`` (uniform, or the caller's
    ``sample_weight``, summing to 1 over the batch).
    """

    def start(self, rows, device):
        """Set up a new fit on ``rows`` (a :class:`~skforml.TrainingRows`)."""
        if rows.n_classes != 2:
            raise ValueError(
                f"Only binary classification is supported. {self.estimator} "
                f"needs two classes ({self.library}'s fairness measures are "
                f"those of binary classification), but y has {rows.n_classes}."
            )
        self.groups = torch.as_tensor(rows.groups, dtype=torch.long, device=device)
        self.n_groups = rows.n_groups

    def __call__(self, logits, y, rows, p, losses):
        return self.loss(logits, y, self.groups[rows], p, losses)

    @abstractmethod
    def loss(self, logits, y, groups, p, losses):
        """Scalar loss of a batch; ``groups`` are its rows' group codes."""


class PeerNet(FORMLNet):
    """A :class:`~skforml.FORMLNet` whose training loss is ``peer_loss_``'s.

    skorch's loop is unchanged (``train_step`` calls ``train_step_single``,
    which calls ``infer``); only a training batch's loss differs, as for
    FORMLNet.
    """

    def train_step_single(self, batch, **fit_params):
        """One step on ``batch`` with the peer's loss; gradients left for skorch."""
        self._set_training(True)
        X, y, rows = (self._to_device(t) for t in batch)
        p = self.weighting_.batch_weights(rows)
        logits = self.infer(X, **fit_params)
        losses = self.get_row_losses(logits, y)
        loss = self.peer_loss_(logits, y, rows, p, losses)
        loss.backward()
        self.loss_average_.record(rows, p, losses)
        return {"loss": loss.detach(), "y_pred": logits.detach()}


class BasePeerClassifier(BaseReweightingClassifier):
    """FORML's network and fit, with the loss of a peer's library.

    Subclasses build their :class:`PeerLoss` (:meth:`_make_peer_loss`).
    """

    _parameter_constraints = {
        key: value
        for key, value in BaseReweightingClassifier._parameter_constraints.items()
        # The peers hold out no rows.
        if key not in ("validation_size", "validation_batch_size", "min_group_samples")
    } | {"constraint": [StrOptions(set(PEER_CONSTRAINTS))]}

    _net_class = PeerNet

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # the libraries' measures
        return tags

    def _uses_validation(self):
        return False

    def _split_constraint(self):
        # Defined for every grouping; with no validation rows it balances nothing.
        return "error_rate_parity"

    def _make_weighting(self):
        return UniformWeights()

    @abstractmethod
    def _make_peer_loss(self):
        """The batch loss, a :class:`PeerLoss` (not started)."""

    def _configure_net(self, net, data, validation, constraint, seed):
        super()._configure_net(net, data, validation, constraint, seed)
        train = validation.train_index
        peer_loss = self._make_peer_loss()
        peer_loss.start(data.training_rows(train, seed), net.device)
        net.peer_loss_ = peer_loss

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fit the network on the peer library's loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or torch Dataset
            Training data (dense, finite), as in
            :meth:`FORMLClassifier.fit <skforml.FORMLClassifier.fit>`.
        y : array-like of shape (n_samples,)
            Labels of two classes; ``classes_[1]`` is the positive class.
        sensitive_features : array-like, Series, list or DataFrame, default=None
            Sensitive group of each row; several columns form intersectional
            groups. None uses the classes as the groups (with a
            :class:`~skforml.MissingSensitiveFeaturesWarning` where a wrapper
            dropped them).
        sample_weight : array-like of shape (n_samples,), default=None
            Caller weights of the rows; they weight each row's loss in its
            batch (the library's fairness statistics count rows unweighted).

        Returns
        -------
        self : estimator
            The fitted estimator.

        """
        return super().fit(
            X, y, sensitive_features=sensitive_features, sample_weight=sample_weight
        )
