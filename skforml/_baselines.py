"""ReweightedClassifier: the reweighting baselines of the FORML paper.

Every scheme trains the network of :class:`~skforml.FORMLClassifier` with the
same training step (:class:`~skforml.FORMLNet`); only the weighting object --
which supplies each batch's weights -- differs. Every weighting is a
:class:`~skforml.Weighting` (the baselines are in
:mod:`skforml.weighting._baselines`): a scheme's weight of a row is stored as its
logit, and the caller's ``sample_weight`` is its ``log_prior``, so the two
multiply in every batch.
"""

import copy
from functools import partial
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._base import BaseReweightingClassifier
from .engines._base import choose_engine
from .fairness._base import constraint_names, make_constraint
from .fairness._constraints import DemographicParity, TruePositiveRateParity
from .fairness._objectives import MetaObjective, cross_entropy
from .weighting._base import Weighting
from .weighting._baselines import BASELINES, describe_baselines

WEIGHTINGS = tuple(BASELINES)
# The constraint names (aliases included: "equal_opportunity" is skforml
# 0.1's and Jiang & Nachum's) of the notions label bias can equalise: one
# hard rate per group.
LABEL_BIAS_CONSTRAINTS = tuple(
    name
    for name in constraint_names()
    if type(make_constraint(name)) in (TruePositiveRateParity, DemographicParity)
)


class ReweightedClassifier(BaseReweightingClassifier):
    """FORML's network trained with one of the paper's baseline weightings.

    The network, optimizer, epochs, batches, ``sensitive_features`` handling,
    seeding and fitted attributes are those of
    :class:`~skforml.FORMLClassifier`; only the weight of each training row
    differs, chosen by ``weighting`` (a hyperparameter, so that
    :class:`~sklearn.model_selection.GridSearchCV` can sweep it). "Groups"
    below are the sensitive groups, or the classes when ``fit`` gets no
    ``sensitive_features``. Weights are normalised within every batch; the
    caller's ``sample_weight`` multiplies them.

    Only ``"learning_to_reweight"`` holds out a validation split; every other
    scheme trains on all rows.

    Parameters
    ----------
    module : torch.nn.Module instance or class, default=None
        Network returning one logit per class for a float32 batch ``X``.
        None builds an :class:`~skforml.MLP` with ``hidden_layer_sizes``. A
        class is instantiated with ``module_params``; an instance is copied.
    weighting : str or Weighting, default="uniform"
        How rows are weighted, one of:

    %(weightings)s

        or a :class:`~skforml.Weighting` instance of your own (copied at
        ``fit``; one whose ``uses_meta_step`` is True learns from the meta
        step on the validation loss, as learning to reweight does).

    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of the built-in network (ignored with ``module``).
    module_params : dict, default=None
        Keyword arguments of ``module`` when it is a class.
    max_epochs : int, default=40
        Passes over the training rows; the default is FORMLClassifier's, so
        that comparisons run at the same budget.
    batch_size : int, default=128
        Training rows per step.
    lr : float, default=1e-3
        Learning rate of ``optimizer``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimizer of the network.
    beta : float in [0, 1), default=0.9999
        ``"class_balanced"`` only: the effective-number hyperparameter, Cui et
        al.'s default.
    label_bias_lr : float, default=1.0
        ``"label_bias"`` only: step ``eta`` of the multipliers per epoch, the
        authors' default.
    label_bias_constraint : {"true_positive_rate_parity", "demographic_parity"}, \
            default="true_positive_rate_parity"
        ``"label_bias"`` only, a constraint name (``"equal_opportunity"``, its
        alias, is accepted): the violation of group ``k`` is
        ``TPR(all) - TPR(group k)`` for true-positive-rate parity and
        ``P(yhat = 1) - P(yhat = 1 | group k)`` for demographic parity.
    validation_size : float or int, default=0.2
        ``"learning_to_reweight"`` only: share or number of rows held out
        (half for the meta step, half for the validation metrics, as in
        :class:`~skforml.FORMLClassifier`).
    validation_batch_size : int, default=None
        ``"learning_to_reweight"`` only: rows per validation batch; None uses
        ``batch_size``.
    min_group_samples : int, default=5
        ``"learning_to_reweight"`` only: rows of every group in every
        validation batch.
    device : str or torch.device, default="cpu"
        Device of the network and weights, e.g. ``"cuda"``.
    num_workers : int, default=0
        Worker processes that load the batches when ``X`` is a torch
        ``Dataset`` (a ``DataLoader``'s ``num_workers``); arrays are indexed
        in the main process. With a CUDA ``device`` the batches are pinned
        and copied without blocking.
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` runs the network's forward passes under
        :func:`torch.autocast` (mixed precision); the parameters, the weights
        and the meta step's sums and dot products stay in float32.
    warm_start : bool, default=False
        Continue training the fitted network and weights on the next ``fit``
        with the same data instead of starting over.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the network's initialisation, the batch order,
        dropout and the ``"random"`` weights.
    verbose : int, default=0
        1 prints a line per epoch (skorch's ``PrintLog``).
    callbacks : list of skorch callbacks, default=None
        Extra callbacks of the skorch net.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` when it is a DataFrame with string columns.
    groups_ : list
        Name of each group (the classes when no sensitive features were
        given).
    net_ : FORMLNet
        The fitted skorch net.
    world_size_ : int
        Number of processes the fit trained on: 1, or the ranks of a
        data-parallel fit under ``torchrun`` (see the user guide's "Several
        processes and GPUs").
    history_ : skorch.History
        Per-epoch log: ``train_loss``, ``weight_ess``, ``dur`` (and
        ``meta_loss``, the mean validation loss, for
        ``"learning_to_reweight"``).
    sample_weights_ : ndarray of shape (n_samples,)
        Weight of every row of ``X`` at the end of training (caller weights
        included), mean 1 over the training rows, 0 for validation rows. For
        ``"learning_to_reweight"``, a row's last weight relative to its
        batch.
    validation_mask_ : ndarray of bool of shape (n_samples,)
        True for the rows held out for validation (none except for
        ``"learning_to_reweight"``).
    weighted_loss_ema_ : ndarray of shape (n_samples,)
        Per-row exponential moving average (decay 0.9) over epochs of the
        normalised weighted loss; NaN for validation rows.
    label_bias_multipliers_ : ndarray of shape (n_epochs, n_groups)
        ``"label_bias"`` only: the multipliers ``lambda`` after each epoch.

    See Also
    --------
    FORMLClassifier : The meta-learned fairness reweighting these baselines
        are compared with.

    References
    ----------
    .. [1] J. Yan, S. Seto, N. Apostoloff. "FORML: Learning to Reweight Data
       for Fairness". arXiv:2202.01719, 2022.
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie. "Class-Balanced
       Loss Based on Effective Number of Samples". CVPR, 2019.
    .. [3] H. Jiang, O. Nachum. "Identifying and Correcting Label Bias in
       Machine Learning". AISTATS, 2020.
    .. [4] M. Ren, W. Zeng, B. Yang, R. Urtasun. "Learning to Reweight
       Examples for Robust Deep Learning". ICML, 2018.

    Examples
    --------
    >>> from skforml import ReweightedClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> clf = ReweightedClassifier(weighting="proportion", max_epochs=3,
    ...                            random_state=0)
    >>> clf.fit(X, y, sensitive_features=X[:, 0] > 0).predict(X[:3]).shape
    (3,)

    """

    _parameter_constraints = {
        **BaseReweightingClassifier._parameter_constraints,
        "weighting": [StrOptions(set(WEIGHTINGS)), Weighting],
        "beta": [Interval(Real, 0, 1, closed="left")],
        "label_bias_lr": [Interval(Real, 0, None, closed="left")],
        "label_bias_constraint": [StrOptions(set(LABEL_BIAS_CONSTRAINTS))],
    }

    def __init__(
        self,
        module=None,
        *,
        weighting="uniform",
        hidden_layer_sizes=(64,),
        module_params=None,
        max_epochs=40,
        batch_size=128,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        criterion=nn.CrossEntropyLoss,
        beta=0.9999,
        label_bias_lr=1.0,
        label_bias_constraint="true_positive_rate_parity",
        validation_size=0.2,
        validation_batch_size=None,
        min_group_samples="auto",
        device="cpu",
        num_workers=0,
        precision="float32",
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.weighting = weighting
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.criterion = criterion
        self.beta = beta
        self.label_bias_lr = label_bias_lr
        self.label_bias_constraint = label_bias_constraint
        self.validation_size = validation_size
        self.validation_batch_size = validation_batch_size
        self.min_group_samples = min_group_samples
        self.device = device
        self.num_workers = num_workers
        self.precision = precision
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def fit(
        self,
        X,
        y=None,
        *,
        sensitive_features=None,
        sample_weight=None,
        validation_set=None,
    ):
        """Fit the network with the rows weighted by ``weighting``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...), \
                or torch Dataset
            Training data (dense, finite); rows of any shape (images,
            sequences) with a ``module``. A :class:`torch.utils.data.Dataset`
            (data that need not fit in memory) has items ``x`` or ``(x, y)``;
            its items are loaded in batches through a ``DataLoader`` (see
            ``num_workers``), and the validation rows are read once into
            memory. ``sample_weights_`` then has one weight per item.
        y : array-like of shape (n_samples,) or None
            Labels of any type, at least two classes (exactly two for
            ``weighting="label_bias"``).
            None only when ``X`` is a Dataset: the labels are then
            ``X.targets`` if it has them, else the ``y`` of its items, read
            in one pass.
        sensitive_features : array-like, Series, list or DataFrame, default=None
            Sensitive group of each row; several columns form intersectional
            groups. None uses the classes as the groups.
        sample_weight : array-like of shape (n_samples,), default=None
            Caller weights of the rows. They multiply the scheme's weights in
            every batch; rows of weight 0 never train.
        validation_set : tuple, default=None
            For ``weighting="learning_to_reweight"``: a validation set of the
            caller's, ``(X_val, y_val)`` or ``(X_val, y_val,
            sensitive_features_val)``, used instead of a split of ``X``.
            Ignored by the other schemes.

        Returns
        -------
        self : ReweightedClassifier
            The fitted estimator.

        """
        return super().fit(
            X,
            y,
            sensitive_features=sensitive_features,
            sample_weight=sample_weight,
            validation_set=validation_set,
        )

    def _baseline(self):
        """The weighting's class (its class attributes say what it needs)."""
        if isinstance(self.weighting, Weighting):
            return type(self.weighting)
        return BASELINES[self.weighting]

    def _uses_validation(self):
        return self._baseline().uses_meta_step

    def _uses_groups(self):
        return getattr(self._baseline(), "uses_groups", True)

    def _split_constraint(self):
        # Defined for every target and grouping: the split only has to keep
        # every group in the validation batches (learning_to_reweight), and
        # the other schemes build the spec without using it.
        return "error_rate_parity"

    def _make_engine(self, module):
        return choose_engine(module)

    def _make_meta_objective(self, parts):
        if not self._baseline().uses_meta_step:
            return None
        return partial(MetaObjective, cross_entropy, None)  # net gives row_loss

    def _make_weighting(self):
        if isinstance(self.weighting, Weighting):
            # A copy: the caller's object is a parameter and stays as given.
            return copy.deepcopy(self.weighting)
        return self._baseline().from_estimator(self)

    def _collect_fitted_attributes(self, n_samples):
        super()._collect_fitted_attributes(n_samples)
        if self.weighting == "label_bias":
            self.label_bias_multipliers_ = np.array(self.net_.weighting_.history)


# The weightings are documented once, on their classes.
ReweightedClassifier.__doc__ = ReweightedClassifier.__doc__.replace(
    "    %(weightings)s", describe_baselines()
)
