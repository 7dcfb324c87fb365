"""FORMLClassifier: the scikit-learn face of FORML."""

import copy
from functools import partial
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._base import BaseReweightingClassifier
from .engines._lookahead import AutoLookahead
from .engines._multistep import MultiStep
from .fairness._base import Constraint
from .fairness._objectives import (
    CONSTRAINED,
    META_LOSSES,
    ConstrainedObjective,
    MetaObjective,
    make_meta_loss,
)
from .weighting._base import WEIGHT_MAPS, FORMLWeights, Weighting


class FORMLClassifier(BaseReweightingClassifier):
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
    criterion : torch.nn.Module class, default=torch.nn.CrossEntropyLoss
        The per-row training loss, built with ``reduction="none"``; it takes
        the network's output and the encoded labels.
    meta_lr : float, default=0.02
        Size of a weight step: the root-mean-square change of a batch's
        weight logits per step, whatever the batch size and the scale of the
        gradients (the weights take exponentiated-gradient steps divided by
        the running RMS of the meta-gradient, see
        :mod:`skforml.weighting._base`). A row whose gradient keeps its sign
        for ``T`` epochs has its weight multiplied by up to about
        ``exp(T * meta_lr * 3)``. 0 gives plain (uniformly weighted)
        training. The default was chosen on noisy digits, Adult (sex) and
        the biased synthetic data together (``benchmarks/bench_defaults.py``,
        3 seeds): 0.01 left Adult's TPR gap at .07 and the synthetic gap at
        two thirds of uniform training's; 0.03 to 0.05 cost Adult and the
        synthetic data more accuracy for little more fairness.
    weighting : Weighting or None, default=None
        How the rows' weights move. None is FORML's rule
        (:class:`~skforml.FORMLWeights` with ``meta_lr``, ``weight_map`` and
        the sign of ``reverse_lookahead``). A :class:`~skforml.Weighting`
        instance of your own replaces it (it is copied at ``fit``, and those
        three parameters are then its own business); its ``update`` receives
        the meta step's directional derivatives when its ``uses_meta_step``
        is True.
    lookahead_lr : "auto", float or None, default="auto"
        Learning rate ``eta_c`` of the lookahead SGD step. ``"auto"`` makes
        the lookahead as long as ``LOOKAHEAD_HORIZON`` (10) steps of the
        network's optimizer: for an adaptive optimizer (Adam, RMSprop, ...),
        which moves every parameter by about ``lr`` per step, a gradient step
        of length ``10 * lr * sqrt(n_params)``; for SGD, ``10 * lr``. A
        lookahead of one optimizer step probes too little of the validation
        loss to steer the weights (see the user guide). A float sets
        ``eta_c``; None uses ``lr`` (skforml 0.1, the paper's literal rule).
    meta_loss : {"constrained", "constrained_soft_rate", \
            "mean_loss_discrepancy", "max_loss_discrepancy", \
            "cross_entropy"} or callable, default="constrained"
        The objective the weights follow on the validation batch.

        ``"constrained"``
            The validation loss, rows weighted to the training
            distribution (the learning-to-reweight objective: accuracy),
            plus ``sum_b multiplier_b * sum_g |m_g - m_b|``: for every rate
            of the constraint (``b``: the TPR, the FPR, ...), how far each
            group's mean surrogate ``m_g`` lies from the pooled one
            (fairlearn's moments of that rate): the log of the predicted
            probability of the row's label for the TPR, FPR and error rates
            (minus the group's cross-entropy), the probability of the
            positive class for selection rates. See
            :class:`~skforml.fairness._objectives.ConstrainedObjective`.
        ``"constrained_soft_rate"``
            The same on the soft rates themselves for every constraint (a
            soft rate saturates on rows the network gets confidently wrong,
            which then barely steer the weights; measured on the biased
            synthetic data, TPR parity: max FNR .96 against .12 with
            ``"constrained"``).
        ``"mean_loss_discrepancy"``, ``"max_loss_discrepancy"``
            The paper's fairness-only meta-losses, exactly as in skforml
            0.2.0: ``mean_g |L_g - L_bar|`` or ``max_g L_g - min_g L_g``
            over the mean losses ``L_g`` of the cells of
            :meth:`Constraint.cell_keys` (every (group, label) cell for the
            TPR, FPR and equalized-odds parities, compared within labels).
        ``"cross_entropy"``
            The plain mean loss (not fair: an ablation).

        A callable receives ``(losses, cells)``, the per-row loss tensor and
        the rows' cell ids (``-1`` for rows the constraint ignores), and
        returns a scalar tensor.
    multiplier : float, default=3.0
        Starting value of the constrained objective's multipliers, one per
        rate of the constraint; without a ``tolerance`` they stay there.
        Chosen on noisy digits, Adult and the biased synthetic data together
        (``benchmarks/bench_defaults.py``; the sweep is in the user guide).
    worst_group_lift : float or "auto", default="auto"
        Weight of a one-sided term that only raises the groups below the
        pooled value (``lift * sum_g max(0, m_bar - m_g)`` with ``m_bar``
        held fixed): the gap then closes by lifting the worse-served groups
        rather than by lowering the best one (the paper's max FNR claim).
        ``"auto"`` is 1 for the paper's meta-losses (as in 0.2.0) and, for
        the constrained objectives, 1 where the constraint's rates cover
        rows of every label (equalized odds, error-rate and demographic
        parity, the classes as groups) and 0 for one-label rates (TPR and
        FPR parity): there nothing holds the other label in place, and the
        lift drifted every prediction toward the favoured class (Adult, TPR
        parity: accuracy .844 -> .803).
    constraint : str or Constraint, default="equalized_odds"
        The fairness constraint: which rates the constrained objective
        pulls together, and the disparity reported as ``valid_disparity``
        and bounded by ``tolerance``:

        ``"true_positive_rate_parity"`` (alias ``"equal_opportunity"``)
            the groups' soft TPRs (positive rows); disparity: TPR
            difference;
        ``"false_positive_rate_parity"``
            the groups' soft FPRs (negative rows, binary targets);
            disparity: FPR difference;
        ``"equalized_odds"``
            both, each with its own multiplier; disparity: the larger of the
            TPR and FPR differences;
        ``"error_rate_parity"``
            the groups' soft accuracies (all rows); disparity: accuracy
            difference;
        ``"demographic_parity"``
            the groups' soft selection rates (all rows, binary targets,
            ``sensitive_features`` needed); disparity: selection-rate
            difference.

        Multi-class targets compare every class's recall across groups.
        Without ``sensitive_features`` the groups are the classes, and
        every constraint compares the per-class recalls (the paper's CIFAR
        and MNIST setting). A :class:`~skforml.Constraint` instance adds a
        constraint of your own.
    tolerance : float or None, default=None
        The largest ``valid_disparity`` allowed. With the constrained
        objectives, every multiplier then moves once per epoch by dual
        ascent on its rate's monitored gap (``valid_gaps``): up while the
        gap exceeds the tolerance, toward 0 once it is met, like
        ExponentiatedGradient's Lagrange multipliers. With the paper's
        meta-losses, which hold no accuracy term, the controller can only
        scale the weight steps (``meta_strength``). Either way, at the end
        of ``fit`` the network and weights are those of the epoch with the
        best ``valid_acc`` among the epochs within the tolerance (after the
        first quarter of training), or of the least disparity if none is
        (``best_epoch_``); ``fit`` warns
        (:class:`~skforml.ToleranceResolutionWarning`) when the monitored
        rows are too few to tell the gap from the tolerance. None keeps the
        multipliers fixed and the last epoch.
    meta_gradient : {"auto", "linear", "jvp", "unrolled"}, str or Engine \
            subclass, default="auto"
        How the weight gradient is computed: ``"linear"``, in closed form from
        saved activations (networks whose parameters all live in
        ``nn.Linear`` and ``nn.Conv2d`` layers); ``"jvp"``, in closed form
        with one forward-mode pass (any network); ``"unrolled"``, by autograd
        through the lookahead (the literal reference). ``"auto"``
        (``"closed_form"`` in skforml 0.1) picks ``"linear"`` when it
        applies, else ``"jvp"``; on a small CNN the convolutional closed form
        ran 2.3x a plain epoch, ``"jvp"`` 2.8 to 3.6x. Train-mode BatchNorm
        falls back to ``"unrolled"`` with a warning. An
        :class:`~skforml.engines._base.Engine` subclass of your own, or the
        name it registered, adds an engine.
    reverse_lookahead : bool, default=False
        Ablation (paper appendix, Tables 6-7): the lookahead climbs the
        weighted training loss (``theta~ = theta + eta_c grad``) instead of
        descending it, the reversed sign of the basic differential multiplier
        method. The sign of the weight gradient flips with it; the weights
        still descend the meta-loss.
    weight_map : {"softmax", "logits", "inverse_square_l1"}, default="softmax"
        Ablation (paper appendix, Table 9): how a row's weight follows from
        its learned parameter ``w``. ``"softmax"``: ``softmax(w)`` over the
        batch; ``"logits"``: the raw parameters as weights, clipped at 0 and
        normalised over the batch; ``"inverse_square_l1"``: ``1 / (1 + w**2)``
        normalised over the batch, so a parameter that grows large sends its
        weight to zero (our reading: the paper gives no formula). See
        :mod:`skforml.weighting._base`.
    lookahead_steps : int, default=1
        Ablation: SGD steps of the lookahead (Algorithm 1 takes one). More
        than one differentiates through all steps by autograd (see
        :mod:`skforml.engines._multistep`), so ``meta_gradient`` must then be
        ``"auto"`` or ``"unrolled"``; every step has the rate
        ``lookahead_lr``.
    validation_size : float or int, default=0.2
        Share or number of rows held out, balanced across (group, label)
        cells. Half of every cell feeds the meta step; the other half, which
        the meta step never sees, gives the validation metrics, the
        tolerance and the epoch selection (FORML lowers the disparity of the
        rows it meta-steps on: on the biased synthetic data .007 on them
        against .18 on test). Cells too small to split serve both. A
        caller's ``validation_set`` is split the same way.
    validation_batch_size : int, default=None
        Rows per validation batch; None uses ``batch_size``. Raised to
        ``n_cells * min_group_samples`` when that is larger.
    min_group_samples : int or "auto", default="auto"
        Rows of every compared cell in every validation batch. ``"auto"`` is
        5, lowered with a :class:`~skforml.SmallGroupWarning` to what the
        smallest cell can give (half its rows), never below 1.
    loss_ema_decay : float, default=0.9
        Decay of the per-row moving average of the weighted loss.
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
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` when it is a DataFrame with string columns.
    groups_ : list
        Name of each sensitive group (a tuple per row of several columns); the
        classes when no sensitive features were given.
    net_ : FORMLNet
        The fitted skorch net.
    history_ : skorch.History
        Per-epoch log: ``train_loss``; on the validation rows ``valid_loss``,
        ``valid_acc`` (weighted to the training rows' (group, label) mix, so
        that it estimates accuracy on data like the training data) and
        ``valid_disparity`` (the constraint's disparity; lower is fairer);
        ``meta_loss`` (the mean fairness meta-loss after the lookahead, a
        training signal that tends to rise as the network fits its training
        rows: judge fairness by ``valid_disparity``); ``weight_ess`` (the
        effective sample size of the weights over the number of rows);
        ``valid_gaps`` (the gap of each of the constraint's rates, e.g. the
        FPR and TPR gaps); ``multipliers`` (the constrained objective's, one
        per rate); ``meta_strength`` (the paper's meta-losses with a
        tolerance: the controller's multiplier of ``meta_lr``); ``dur``.
    world_size_ : int
        Number of processes the fit trained on: 1, or the ranks of a
        data-parallel fit under ``torchrun`` (see the user guide's "Several
        processes and GPUs").
    best_epoch_ : int
        The epoch whose network and weights the estimator holds: the one
        selected under ``tolerance``, else the last.
    sample_weights_ : ndarray of shape (n_samples,)
        Learned weight of every row of ``X``, in input order, mean 1 over the
        training rows; 0 for the rows held out for validation.
    validation_mask_ : ndarray of bool of shape (n_samples,)
        True for the rows held out for validation.
    monitor_mask_ : ndarray of bool of shape (n_samples,)
        True for the held-out rows that give the validation metrics (the
        others feed the meta step); all False with a caller's
        ``validation_set``.
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
        **BaseReweightingClassifier._parameter_constraints,
        "meta_lr": [Interval(Real, 0, None, closed="left")],
        "weighting": [None, Weighting],
        "lookahead_lr": [
            None,
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "meta_loss": [StrOptions(set(META_LOSSES)), callable],
        # Any registered name, out-of-tree ones included: make_constraint
        # checks it in fit against the registry of that moment.
        "constraint": [str, Constraint],
        "tolerance": [None, Interval(Real, 0, None, closed="neither")],
        "worst_group_lift": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="left"),
        ],
        "multiplier": [Interval(Real, 0, None, closed="left")],
        # A registered name or an Engine subclass: choose_engine checks it in
        # fit against the registry of that moment.
        "meta_gradient": [str, type],
        "reverse_lookahead": ["boolean"],
        "weight_map": [StrOptions(set(WEIGHT_MAPS))],
        "lookahead_steps": [Interval(Integral, 1, None, closed="left")],
        "loss_ema_decay": [Interval(Real, 0, 1, closed="left")],
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
        criterion=nn.CrossEntropyLoss,
        meta_lr=0.02,
        weighting=None,
        lookahead_lr="auto",
        meta_loss="constrained",
        multiplier=3.0,
        worst_group_lift="auto",
        constraint="equalized_odds",
        tolerance=None,
        meta_gradient="auto",
        reverse_lookahead=False,
        weight_map="softmax",
        lookahead_steps=1,
        validation_size=0.2,
        validation_batch_size=None,
        min_group_samples="auto",
        loss_ema_decay=0.9,
        device="cpu",
        num_workers=0,
        precision="float32",
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
        self.criterion = criterion
        self.meta_lr = meta_lr
        self.weighting = weighting
        self.lookahead_lr = lookahead_lr
        self.meta_loss = meta_loss
        self.multiplier = multiplier
        self.worst_group_lift = worst_group_lift
        self.constraint = constraint
        self.tolerance = tolerance
        self.meta_gradient = meta_gradient
        self.reverse_lookahead = reverse_lookahead
        self.weight_map = weight_map
        self.lookahead_steps = lookahead_steps
        self.validation_size = validation_size
        self.validation_batch_size = validation_batch_size
        self.min_group_samples = min_group_samples
        self.loss_ema_decay = loss_ema_decay
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
        """Fit the network while learning a fairness weight per training row.

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
            Labels of any type, at least two classes.
            None only when ``X`` is a Dataset: the labels are then
            ``X.targets`` if it has them, else the ``y`` of its items, read
            in one pass.
        sensitive_features : array-like, Series, list or DataFrame, default=None
            Sensitive group of each row; several columns form intersectional
            groups. None uses the classes as the groups.
        sample_weight : array-like of shape (n_samples,), default=None
            Caller weights of the rows. They multiply the learned weights in
            every batch (``softmax(w + log sample_weight)``); rows of weight 0
            never train.
        validation_set : tuple, default=None
            A validation set of the caller's, ``(X_val, y_val)`` or, with
            ``sensitive_features``, ``(X_val, y_val, sensitive_features_val)``:
            the meta-loss is measured on it (for example clean, trusted
            labels, as in the paper's "clean validation" experiment) and every
            row of ``X`` trains. It must hold ``min_group_samples`` rows of
            every compared cell. None carves a balanced split out of ``X``.

        Returns
        -------
        self : FORMLClassifier
            The fitted estimator.

        """
        return super().fit(
            X,
            y,
            sensitive_features=sensitive_features,
            sample_weight=sample_weight,
            validation_set=validation_set,
        )

    def _meta_gradient(self):
        if self.lookahead_steps == 1:
            return self.meta_gradient
        if self.meta_gradient not in ("auto", "unrolled"):
            raise ValueError(
                f"lookahead_steps={self.lookahead_steps} differentiates through "
                "every step by autograd, which is meta_gradient='unrolled'; "
                f"meta_gradient={self.meta_gradient!r} cannot be combined with "
                "it. Use meta_gradient='auto' or 'unrolled'."
            )
        return MultiStep(self.lookahead_steps)

    def _make_meta_objective(self, parts):
        """A factory of the objective: the net calls it with its per-row loss."""
        learns = self.weighting is None or self.weighting.uses_meta_step
        if self.meta_lr == 0 or not learns:
            return None
        if self.meta_loss in CONSTRAINED:
            return partial(
                ConstrainedObjective,
                parts.constraint,
                parts.moment_spec,
                parts.stratum_weight,
                multiplier=self.multiplier,
                worst_group_lift=self._worst_group_lift(parts),
                surrogate=CONSTRAINED[self.meta_loss],
            )
        device = parts.stratum_weight.device
        meta_loss = make_meta_loss(
            self.meta_loss, parts.spec, device, self._worst_group_lift(parts)
        )
        return partial(
            MetaObjective,
            meta_loss,
            parts.constraint,
            cell_of_stratum=torch.as_tensor(parts.spec.cell_of_stratum, device=device),
        )

    def _worst_group_lift(self, parts):
        if self.worst_group_lift != "auto":
            return self.worst_group_lift
        if self.meta_loss not in CONSTRAINED:
            return 1.0
        # The lift needs rates over rows of every label (see the docstring).
        return float(parts.moment_spec.covers_every_label(parts.n_classes))

    def _lookahead_lr(self):
        if self.lookahead_lr == "auto":
            adaptive = not issubclass(self.optimizer, torch.optim.SGD)
            rate = AutoLookahead(self.lr, adaptive)
        else:
            rate = self.lookahead_lr or self.lr
        return _Reversed(rate) if self.reverse_lookahead else rate

    def _make_weighting(self):
        if self.weighting is not None:
            # A copy: the caller's object is a parameter and stays as given.
            return copy.deepcopy(self.weighting)
        sign = -1 if self.reverse_lookahead else 1
        return FORMLWeights(self.meta_lr, self.weight_map, lookahead_sign=sign)

    def _tolerance(self):
        return self.tolerance

    def _selects_epoch(self):
        return self.tolerance is not None


class _Reversed:
    """A lookahead rate of the opposite sign: the lookahead climbs the loss."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, gradients):
        rate = self.rate(gradients) if callable(self.rate) else self.rate
        return -rate
