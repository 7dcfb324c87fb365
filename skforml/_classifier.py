"""FORMLClassifier: the scikit-learn face of FORML."""

import contextlib
import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
from torch import nn

from ._data import BatchIterator, RowDataset
from ._losses import CONSTRAINTS, META_LOSSES, build_cell_spec, make_meta_loss
from ._meta_step import choose_engine
from ._module import MLP
from ._net import FORMLNet
from ._split import ValidationBatches, balanced_validation_split
from ._validation import check_sample_weight_nonnegative, encode_groups
from ._weight_store import WeightStore


class FORMLClassifier(ClassifierMixin, BaseEstimator):
    """Neural network classifier trained with FORML sample reweighting.

    FORML (Fairness Optimized Reweighting via Meta-Learning, Yan, Seto &
    Apostoloff 2022) learns one weight per training row while it trains the
    network. For every minibatch it (1) takes a lookahead SGD step on the
    softmax-weighted training loss, (2) moves the batch's weights along the
    gradient of a fairness meta-loss -- the discrepancy between group losses
    -- measured after the lookahead on a group-balanced validation batch, and
    (3) updates the network with the new weights. The validation rows are
    carved out of the training data in :meth:`fit`, with equal numbers of
    rows of every (group, label) stratum where the data allow.

    The network is a skorch :class:`~skorch.NeuralNet` (``net_``), so skorch
    callbacks, history and devices work as usual.

    Parameters
    ----------
    module : torch.nn.Module instance or class, default=None
        Network returning one logit per class for a float32 batch ``X``.
        None builds an :class:`~skforml.MLP` with ``hidden_layer_sizes``. A
        class is instantiated with ``module_params``; an instance is copied.
    hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of the built-in network (ignored with ``module``).
    module_params : dict, default=None
        Keyword arguments of ``module`` when it is a class.
    max_epochs : int, default=40
        Passes over the training rows. Each weight moves once per epoch, so
        FORML wants about twice the epochs of plain training.
    batch_size : int, default=128
        Training rows per step.
    lr : float, default=1e-3
        Learning rate of ``optimizer``.
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimizer of the network.
    meta_lr : float, default=0.1
        Size of a weight step: the root-mean-square change of a batch's
        weight logits per step, whatever the batch size and the scale of the
        gradients (the raw weight gradient is divided by its running RMS, see
        :mod:`skforml._weight_store`). A row whose gradient keeps its sign
        for ``T`` epochs has its weight multiplied by about
        ``exp(T * meta_lr)``. 0 gives plain (uniformly weighted) training.
        The default moves weights by up to ``e^4`` over 40 epochs, where the
        fairness gap fell on the synthetic and Adult benchmarks without the
        weights collapsing onto few rows.
    lookahead_lr : float, default=None
        Learning rate ``eta_c`` of the lookahead SGD step; None uses ``lr``.
    meta_loss : {"mean_loss_discrepancy", "max_loss_discrepancy", \
            "cross_entropy"} or callable, default="mean_loss_discrepancy"
        Fairness meta-loss on the validation batch. With ``L_g`` the mean
        loss of the validation rows of cell ``g`` (see ``constraint``):
        ``"mean_loss_discrepancy"`` is ``mean_g |L_g - L_bar|`` with
        ``L_bar`` the mean loss over all rows of the compared cells;
        ``"max_loss_discrepancy"`` is ``max_g L_g - min_g L_g``;
        ``"cross_entropy"`` is the plain mean loss (not fair: an ablation).
        A callable receives ``(losses, cells)``, the per-row loss tensor and
        the rows' cell ids (``-1`` for rows the constraint ignores), and
        returns a scalar tensor.
    constraint : {"true_positive_rate_parity", "false_positive_rate_parity", \
            "equalized_odds", "error_rate_parity"}, default="equalized_odds"
        Which rows form the group losses: the positives of each group, the
        negatives of each group, every (group, label) cell with groups
        compared within each label, or all rows of each group. Without
        ``sensitive_features`` the groups are the classes and the losses
        compared are the per-class losses.
    meta_gradient : {"closed_form", "unrolled"}, default="closed_form"
        How the weight gradient is computed: the closed form (no
        second-order graph), or autograd through the lookahead (the literal
        reference). Train-mode BatchNorm falls back to ``"unrolled"`` with a
        warning.
    validation_size : float or int, default=0.1
        Share or number of rows held out for the meta-loss.
    validation_batch_size : int, default=None
        Rows per validation batch; None uses ``batch_size``. Raised to
        ``n_cells * min_group_samples`` when that is larger.
    min_group_samples : int, default=5
        Rows of every compared cell in every validation batch.
    loss_ema_decay : float, default=0.9
        Decay of the per-row moving average of the weighted loss.
    device : str or torch.device, default="cpu"
        Device of the network and weights, e.g. ``"cuda"``.
    warm_start : bool, default=False
        Continue training the fitted network and weights on the next ``fit``
        with the same data instead of starting over.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the network's initialisation, the batch order and
        dropout. The same value gives the same model and weights.
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
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of ``X`` when it is a DataFrame with string columns.
    groups_ : list
        Name of each sensitive group (a tuple per row of several columns); the
        classes when no sensitive features were given.
    net_ : FORMLNet
        The fitted skorch net.
    history_ : skorch.History
        Per-epoch log: ``train_loss``, ``meta_loss``, ``weight_ess`` (the
        effective sample size of the weights over the number of rows), ``dur``.
    sample_weights_ : ndarray of shape (n_samples,)
        Learned weight of every row of ``X``, in input order, mean 1 over the
        training rows; 0 for the rows held out for validation.
    validation_mask_ : ndarray of bool of shape (n_samples,)
        True for the rows held out for validation.
    weighted_loss_ema_ : ndarray of shape (n_samples,)
        Per-row exponential moving average over epochs of the normalised
        weighted loss (paper Section 4.5); NaN for validation rows.

    See Also
    --------
    skorch.NeuralNetClassifier : Plain training of the same kind of network.

    References
    ----------
    .. [1] J. Yan, S. Seto, N. Apostoloff. "FORML: Learning to Reweight Data
       for Fairness". arXiv:2202.01719, 2022.

    Examples
    --------
    >>> from skforml import FORMLClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> clf = FORMLClassifier(max_epochs=3, random_state=0)
    >>> clf.fit(X, y, sensitive_features=X[:, 0] > 0).predict(X[:3]).shape
    (3,)

    """

    _parameter_constraints = {
        "module": [None, nn.Module, type],
        "hidden_layer_sizes": ["array-like"],
        "module_params": [None, dict],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [type],
        "meta_lr": [Interval(Real, 0, None, closed="left")],
        "lookahead_lr": [None, Interval(Real, 0, None, closed="neither")],
        "meta_loss": [StrOptions(set(META_LOSSES)), callable],
        "constraint": [StrOptions(set(CONSTRAINTS))],
        "meta_gradient": [StrOptions({"closed_form", "unrolled"})],
        "validation_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "validation_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "min_group_samples": [Interval(Integral, 1, None, closed="left")],
        "loss_ema_decay": [Interval(Real, 0, 1, closed="left")],
        "device": [str, torch.device],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
    }

    def __init__(
        self,
        module=None,
        *,
        hidden_layer_sizes=(64,),
        module_params=None,
        max_epochs=40,
        batch_size=128,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        meta_lr=0.1,
        lookahead_lr=None,
        meta_loss="mean_loss_discrepancy",
        constraint="equalized_odds",
        meta_gradient="closed_form",
        validation_size=0.1,
        validation_batch_size=None,
        min_group_samples=5,
        loss_ema_decay=0.9,
        device="cpu",
        warm_start=False,
        random_state=None,
        verbose=0,
        callbacks=None,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.meta_lr = meta_lr
        self.lookahead_lr = lookahead_lr
        self.meta_loss = meta_loss
        self.constraint = constraint
        self.meta_gradient = meta_gradient
        self.validation_size = validation_size
        self.validation_batch_size = validation_batch_size
        self.min_group_samples = min_group_samples
        self.loss_ema_decay = loss_ema_decay
        self.device = device
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fit the network while learning a fairness weight per training row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense, finite).
        y : array-like of shape (n_samples,)
            Labels of any type, at least two classes.
        sensitive_features : array-like, Series, list or DataFrame, default=None
            Sensitive group of each row; several columns form intersectional
            groups. None uses the classes as the groups.
        sample_weight : array-like of shape (n_samples,), default=None
            Caller weights of the rows. They multiply the learned weights in
            every batch (``softmax(w + log sample_weight)``); rows of weight 0
            never train.

        Returns
        -------
        self : FORMLClassifier
            The fitted estimator.

        """
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={self.device!r} was requested but no CUDA device is "
                "available; use device='cpu'."
            )
        continuing = self.warm_start and hasattr(self, "net_")
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not continuing)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y has a single class ({encoder.classes_[0]!r}); a classifier "
                "needs at least two."
            )
        y_encoded = encoder.transform(y)
        n_samples = len(y_encoded)
        sample_weight = check_sample_weight_nonnegative(sample_weight, n_samples)
        if sensitive_features is None:
            groups, group_names = y_encoded, list(encoder.classes_)
        else:
            groups, group_names = encode_groups(sensitive_features, n_samples)
            if len(group_names) < 2:
                raise ValueError(
                    "sensitive_features holds a single group "
                    f"({group_names[0]!r}); FORML compares at least two groups."
                )
        if continuing:
            return self._continue_fit(X, y_encoded)

        self.classes_ = encoder.classes_
        self.groups_ = group_names
        n_classes = len(self.classes_)
        strata = groups * n_classes + y_encoded
        spec = build_cell_spec(
            self.constraint,
            group_names=group_names,
            class_names=list(self.classes_),
            groups_are_classes=sensitive_features is None,
            present=np.bincount(strata, minlength=len(group_names) * n_classes) > 0,
        )
        cells = spec.cells(strata)
        rng = check_random_state(self.random_state)
        validation_index, train_index = balanced_validation_split(
            strata,
            cells,
            spec.cell_names,
            validation_size=self.validation_size,
            min_group_samples=self.min_group_samples,
            rng=rng,
        )
        torch_seed, shuffle_seed, validation_seed = rng.randint(2**31 - 1, size=3)
        self._torch_seed = int(torch_seed)
        self._train_index = train_index

        with self._seeded_torch(device):
            net = self._build_net(device, n_classes, int(shuffle_seed))
            net.initialize()
            engine = choose_engine(net.module_, self.meta_gradient)
            net.engine_ = engine if self.meta_lr > 0 else None
            net.meta_loss_ = make_meta_loss(self.meta_loss, spec, device)
            net.validation_ = (
                torch.as_tensor(X[validation_index], device=device),
                torch.as_tensor(y_encoded[validation_index], device=device),
                torch.as_tensor(cells[validation_index], device=device),
            )
            net.validation_batches_ = ValidationBatches(
                torch.as_tensor(cells[validation_index]),
                self.validation_batch_size or self.batch_size,
                self.min_group_samples,
                torch.Generator().manual_seed(int(validation_seed)),
            )
            net.weight_store_ = WeightStore(
                len(train_index),
                meta_lr=self.meta_lr,
                lookahead_lr=self.lookahead_lr or self.lr,
                sample_weight=None
                if sample_weight is None
                else torch.as_tensor(sample_weight[train_index], dtype=torch.float32),
                loss_ema_decay=self.loss_ema_decay,
                device=device,
            )
            self.net_ = net
            self._train_dataset = RowDataset(
                torch.from_numpy(X[train_index]),
                torch.from_numpy(y_encoded[train_index]),
            )
            net.partial_fit(self._train_dataset)
        self._collect_fitted_attributes(n_samples)
        return self

    def _continue_fit(self, X, y_encoded):
        """warm_start: train the fitted net and weights for more epochs."""
        if len(y_encoded) != len(self.validation_mask_):
            raise ValueError(
                "warm_start=True continues the previous fit and needs the same "
                f"rows: got {len(y_encoded)} rows, the previous fit had "
                f"{len(self.validation_mask_)}."
            )
        device = torch.device(self.device)
        self._torch_seed += 1
        with self._seeded_torch(device):
            self.net_.partial_fit(self._train_dataset)
        self._collect_fitted_attributes(len(y_encoded))
        return self

    @contextlib.contextmanager
    def _seeded_torch(self, device):
        """Seed torch's global generator without leaking it to the caller."""
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._torch_seed)
            yield

    def _build_net(self, device, n_classes, shuffle_seed):
        module_params = {}
        if self.module is None:
            module = MLP
            module_params = {
                "n_features": self.n_features_in_,
                "n_classes": n_classes,
                "hidden_layer_sizes": tuple(self.hidden_layer_sizes),
            }
        elif isinstance(self.module, nn.Module):
            module = copy.deepcopy(self.module)
        else:
            module, module_params = self.module, dict(self.module_params or {})
        return FORMLNet(
            module,
            criterion=nn.CrossEntropyLoss,
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            dataset=RowDataset,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__seed=shuffle_seed,
            iterator_valid=BatchIterator,
            device=device,
            callbacks=self.callbacks,
            verbose=self.verbose,
            **{f"module__{key}": value for key, value in module_params.items()},
        )

    def _collect_fitted_attributes(self, n_samples):
        store = self.net_.weight_store_
        train_index = self._train_index
        self.validation_mask_ = np.ones(n_samples, dtype=bool)
        self.validation_mask_[train_index] = False
        self.sample_weights_ = np.zeros(n_samples)
        self.sample_weights_[train_index] = store.weights().cpu().numpy()
        self.weighted_loss_ema_ = np.full(n_samples, np.nan)
        if store.loss_ema is not None:
            self.weighted_loss_ema_[train_index] = store.loss_ema.cpu().numpy()
        self.history_ = self.net_.history

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, columns ordered as ``classes_``.

        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        logits = self.net_.forward(RowDataset(torch.from_numpy(X)), device="cpu")
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        """Most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, of the type of ``classes_``.

        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
