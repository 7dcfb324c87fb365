"""Shared machinery of the reweighting classifiers.

``fit`` reads as its steps: check the data (:class:`FitData`), carve the
validation rows (:class:`ValidationRows`), build the skorch net from its
parameters (the weighting, meta step and callbacks' settings), start it on
the training rows, train, and collect the fitted attributes.
"""

import contextlib
import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn

from ._distributed import SingleProcess, data_fingerprint, data_parallel
from ._module import MLP
from .checks._arguments import (
    check_device,
    check_fit_data,
    check_hidden_layer_sizes,
    check_index_alignment,
    check_predict_data,
    check_sample_weight_nonnegative,
    check_targets,
    check_validation_set,
    check_validation_size,
)
from .checks._groups import encode_sensitive_features, stratum_ids
from .checks._warnings import warn_if_sensitive_features_missing
from .engines._base import ENGINES
from .fairness._base import make_constraint
from .fairness._constraints import measured_constraint
from .training._callbacks import ToleranceResolutionWarning
from .training._data import (
    DatasetRows,
    RowDataset,
    batch_loader,
    check_dataset,
    dataset_targets,
    is_torch_dataset,
)
from .training._fit_state import (
    MONITOR_SHARE,
    FitData,
    ObjectiveParts,
    ValidationRows,
    distribution_weights,
    stratum_weights,
)
from .training._net import FORMLNet
from .training._split import (
    ValidationBatches,
    balanced_validation_split,
    check_validation_cells,
    resolve_min_group_samples,
    split_monitor_rows,
)


def _tensor_view(array):
    """A tensor sharing memory with ``array``, read-only arrays included.

    torch warns that it cannot protect a read-only array (a joblib memmap in
    ``GridSearchCV(n_jobs=2)``, ``np.load(mmap_mode="r")``) from writes;
    skforml never writes into ``X``, so the view is safe and saves a copy.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not")
        return torch.from_numpy(array)


class BaseReweightingClassifier(ClassifierMixin, BaseEstimator):
    """Base of classifiers that train a network on reweighted rows.

    Subclasses say how rows are weighted (:meth:`_make_weighting`, a
    :class:`~skforml.weighting._base.Weighting`), whether a validation split is
    held out (:meth:`_uses_validation`), which constraint balances it and
    which meta-loss the meta step follows (:meth:`_make_meta_objective`).
    Everything else -- input validation, groups, the balanced split, the
    skorch net, seeding, epoch selection, fitted attributes and prediction --
    is shared, so that every scheme trains the same network in the same way.
    """

    # The skorch net class: FORML's step, or a subclass with another loss.
    _net_class = FORMLNet

    _parameter_constraints = {
        "module": [None, nn.Module, type],
        "hidden_layer_sizes": ["array-like"],
        "module_params": [None, dict],
        "criterion": [type],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [type],
        "validation_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "validation_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "min_group_samples": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "device": [str, torch.device],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
    }

    # Constraint whose cells balance the validation split and its batches.
    def _split_constraint(self):
        return self.constraint

    def _uses_validation(self):
        return True

    def _tolerance(self):
        return None

    def _uses_groups(self):
        """Whether the groups change the fit (else a missing one is harmless)."""
        return True

    def _selects_epoch(self):
        return False

    def _make_meta_objective(self, parts):
        """The meta step's ``L_f(logits, y, strata)``, or None for no meta step.

        ``parts`` (:class:`~skforml.training._fit_state.ObjectiveParts`) holds the
        constraint, its compiled cells and moments, the validation strata's
        weights and the per-row loss.
        """
        return None

    def _make_weighting(self):
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X,
        y=None,
        *,
        sensitive_features=None,
        sample_weight=None,
        validation_set=None,
    ):
        """Fit the network on weighted rows (see the subclasses' ``fit``)."""
        # Under torchrun (or in an initialised process group) every rank
        # trains on its shard of each batch: see skforml._distributed.
        parallel, device = data_parallel(check_device(self.device))
        self._parallel = parallel
        check_index_alignment(X, y, sensitive_features, sample_weight=sample_weight)
        continuing = self.warm_start and hasattr(self, "net_")
        try:
            data = self._check_fit_data(
                X, y, sensitive_features, sample_weight, continuing
            )
        except Exception as error:
            # The other ranks wait in agree(): they fail too, never hang.
            parallel.fail("the data", error)
            raise
        parallel.agree("the data", data_fingerprint(data))
        if continuing:
            self._check_continuation(data)
            self._torch_seed += 1
            # Continued on this run's processes, however many fitted it.
            self.net_.parallel_ = parallel
            # (skorch's set_params would re-initialise the net.)
            self.net_.iterator_train__rank = parallel.rank
            self.net_.iterator_train__world_size = parallel.world_size
            return self._train(data.X, data.y)
        self.classes_ = data.classes
        self.groups_ = data.group_names
        random_state = self.random_state
        if parallel.distributed and not isinstance(random_state, Integral):
            # Ranks drawing their own split and seeds would train apart.
            random_state = parallel.common(
                check_random_state(random_state).randint(2**31 - 1)
            )
        rng = check_random_state(random_state)
        constraint = make_constraint(self._split_constraint())
        validation = self._validation_rows(data, constraint, validation_set, rng)
        seeds = rng.randint(2**31 - 1, size=4)
        torch_seed, shuffle_seed, weighting_seed, monitor_seed = map(int, seeds)
        self._split_monitor_rows(data, validation, monitor_seed)
        self._torch_seed = torch_seed
        with self._seeded_torch(device):
            net = self._build_net(device, data.n_classes, shuffle_seed)
            net.set_params(**self._net_parts(data, validation, constraint))
            net.initialize()
        parallel.broadcast_module(net.module_)
        net.parallel_ = parallel
        self._configure_net(net, data, validation, constraint, weighting_seed)
        self._check_engine_is_data_parallel(net)
        self.net_, self._validation = net, validation
        return self._train(data.X, data.y)

    def _split_monitor_rows(self, data, validation, seed):
        """Step 2b: the validation rows that monitor the fit, and their weights."""
        validation.monitor = split_monitor_rows(
            validation.cells,
            validation.min_group_samples,
            MONITOR_SHARE,
            np.random.RandomState(seed),
        )
        _, y_monitor, groups_monitor, _ = validation.part(monitor=True)
        validation.row_weights = distribution_weights(
            data.strata[validation.train_index],
            stratum_ids(groups_monitor, y_monitor, data.n_classes),
        )

    def _check_fit_data(self, X, y, sensitive_features, sample_weight, continuing):
        """Step 1: the checked data, labels and groups (:class:`FitData`)."""
        if self.module is None:
            check_hidden_layer_sizes(self.hidden_layer_sizes)
        if is_torch_dataset(X):
            item_shape = check_dataset(self, X, reset=not continuing)
            if y is None:
                y = dataset_targets(X, self.num_workers)
            y_encoded, encoder = check_targets(self, X, y)
        else:
            X, y_encoded, encoder = check_fit_data(self, X, y, reset=not continuing)
            item_shape = X.shape[1:]
        n_samples = len(y_encoded)
        if self._uses_validation():
            check_validation_size(self.validation_size, n_samples)
        sample_weight = check_sample_weight_nonnegative(sample_weight, n_samples)
        if sensitive_features is None:
            if self._uses_groups():
                warn_if_sensitive_features_missing(self)
            groups, names = y_encoded, encoder.classes_.tolist()
        else:
            groups, names = encode_sensitive_features(sensitive_features, n_samples)
            if len(names) < 2:
                raise ValueError(
                    "sensitive_features holds a single group "
                    f"({names[0]!r}); FORML compares at least two groups."
                )
        return FitData(
            X, y_encoded, encoder, groups, names,
            sensitive_features is None, sample_weight, item_shape,
        )  # fmt: skip

    def _check_continuation(self, data):
        if not np.array_equal(data.classes, self.classes_):
            raise ValueError(
                "warm_start=True continues the previous fit, but y holds the "
                f"classes {list(data.classes)} instead of {list(self.classes_)}."
            )
        if len(data.y) != len(self.validation_mask_):
            raise ValueError(
                "warm_start=True continues the previous fit and needs the same "
                f"rows: X has {len(data.y)} rows, the previous fit had "
                f"{len(self.validation_mask_)}."
            )

    def _validation_rows(self, data, constraint, validation_set, rng):
        """Step 2: the training rows and the validation rows."""
        strata = data.strata
        spec = self._compile(constraint, data, strata)
        cells = spec.cells(strata)
        everything = np.arange(len(data.y))
        if not self._uses_validation():
            nothing = everything[:0]
            return ValidationRows(
                everything, data.rows(nothing), data.y[nothing], data.groups[nothing],
                cells[nothing], 1, nothing,
            )  # fmt: skip
        if validation_set is not None:
            return self._callers_validation_rows(data, spec, validation_set)
        min_group_samples = resolve_min_group_samples(
            self.min_group_samples, cells, spec, data.groups_are_classes
        )
        held_out, train_index = balanced_validation_split(
            strata,
            cells,
            spec.cell_names,
            validation_size=self.validation_size,
            min_group_samples=min_group_samples,
            rng=rng,
            groups_are_classes=data.groups_are_classes,
        )
        return ValidationRows(
            train_index, data.rows(held_out), data.y[held_out], data.groups[held_out],
            cells[held_out], min_group_samples, held_out,
        )  # fmt: skip

    def _compile(self, constraint, data, strata):
        settings = {
            "group_names": data.group_names,
            "class_names": data.classes.tolist(),
            "groups_are_classes": data.groups_are_classes,
            "present": np.bincount(
                strata, minlength=len(data.group_names) * data.n_classes
            )
            > 0,
        }
        self._spec = constraint.compile(**settings)
        self._moment_spec = constraint.compile(**settings, moments=True)
        return self._spec

    def _callers_validation_rows(self, data, spec, validation_set):
        # The caller's (clean) validation set: every row of X trains.
        X_val, y_val, groups_val = check_validation_set(
            self,
            validation_set,
            data.encoder,
            None if data.groups_are_classes else data.group_names,
        )
        cells = spec.cells(stratum_ids(groups_val, y_val, data.n_classes))
        min_group_samples = resolve_min_group_samples(
            self.min_group_samples, cells, spec, data.groups_are_classes, split=False
        )
        check_validation_cells(cells, spec, min_group_samples)
        everything = np.arange(len(data.y))
        return ValidationRows(
            everything, X_val, y_val, groups_val, cells, min_group_samples,
            everything[:0],
        )  # fmt: skip

    def _net_parts(self, data, validation, constraint):
        """Step 3: the net's parameters of weighting, meta step and callbacks."""
        train = validation.train_index
        _, y_meta, groups_meta, _ = validation.part(monitor=False)
        strata_meta = stratum_ids(groups_meta, y_meta, data.n_classes)
        objective = self._make_meta_objective(
            ObjectiveParts(
                constraint,
                self._spec,
                self._moment_spec,
                # On the CPU: the net moves its objective to its device.
                torch.as_tensor(
                    stratum_weights(data.strata[train], strata_meta, data.n_strata),
                    dtype=torch.float32,
                ),
                data.n_classes,
            )
        )
        tolerance = self._tolerance()
        return {
            "weighting": self._make_weighting(),
            "meta_objective": objective,
            "meta_gradient": self._meta_gradient(),
            "lookahead_lr": self._lookahead_lr(),
            "loss_ema_decay": getattr(self, "loss_ema_decay", 0.9),
            "precision": self.precision,
            "callbacks__valid_acc__constraint": measured_constraint(
                constraint, data.groups_are_classes
            ),
            "callbacks__valid_acc__moments": (constraint, self._moment_spec),
            "callbacks__tolerance_controller__tolerance": tolerance,
            "callbacks__epoch_selector__enabled": self._selects_epoch(),
            "callbacks__epoch_selector__tolerance": tolerance,
            # Selection skips the first quarter of training (see EpochSelector).
            "callbacks__epoch_selector__select_from_epoch": max(
                1, self.max_epochs // 4
            ),
        }

    def _configure_net(self, net, data, validation, constraint, seed):
        """Step 3b: start the net's weighting on the training rows."""
        batches = None
        if len(validation.y) and net.engine_ is not None:
            batches = ValidationBatches(
                torch.as_tensor(validation.part(monitor=False)[3]),
                # Per rank, as batch_size: each takes a shard of the batch.
                (self.validation_batch_size or self.batch_size)
                * self._parallel.world_size,
                validation.min_group_samples,
                torch.Generator().manual_seed(seed),
            )
        net.set_training_rows(data.training_rows(validation.train_index, seed), batches)

    def _meta_gradient(self):
        """The net's ``meta_gradient``: an engine name, class or factory."""
        return "auto"

    def _check_engine_is_data_parallel(self, net):
        engine = ENGINES.get(net.engine_, net.engine_)
        if self._parallel.distributed and not getattr(engine, "data_parallel", True):
            name = getattr(engine, "name", None) or type(engine).__name__
            raise ValueError(
                f"The meta step's engine {name!r} differentiates through the "
                "lookahead by autograd, which cannot be split across the "
                f"{self._parallel.world_size} processes of this fit: use "
                "meta_gradient='auto' with lookahead_steps=1 (a module with "
                "BatchNorm layers in train mode needs the autograd engine, so "
                "put them in eval mode or fit on one process)."
            )

    def _lookahead_lr(self):
        return self.lr

    def _train(self, X, y_encoded):
        """Step 4: run the epochs on ``X``; the net holds no data once it returns.

        Training rows are fetched from ``X`` by index, so ``fit`` makes no
        copy of them (only of the validation rows); a Dataset's items are
        loaded batch by batch.
        """
        net, validation = self.net_, self._validation
        # A warm start runs in the current precision.
        net.set_params(precision=self.precision)
        if len(validation.y) > 0:
            # The meta step's rows carry their strata: the objective maps
            # them to its cells and to their distribution weights.
            X_meta, y_meta, groups_meta, _ = validation.part(monitor=False)
            strata_meta = stratum_ids(groups_meta, y_meta, len(self.classes_))
            X_val, y_val, groups_val, _ = validation.part(monitor=True)
            net.set_validation(
                (X_meta, y_meta, strata_meta),
                (X_val, y_val, groups_val, validation.row_weights),
            )
        if is_torch_dataset(X):
            dataset = DatasetRows(
                X, torch.from_numpy(y_encoded), index=validation.train_index
            )
        else:
            dataset = RowDataset(
                _tensor_view(X),
                torch.from_numpy(y_encoded),
                index=torch.from_numpy(validation.train_index),
            )
        try:
            # Each rank draws its own dropout masks.
            with self._seeded_torch(net.device, offset=net.parallel_.rank):
                # skorch ends training on KeyboardInterrupt and keeps the model
                # fitted so far; the weights so far are kept below as well.
                # A warm start runs the current max_epochs, not the value the
                # net was built with.
                net.partial_fit(dataset, epochs=self.max_epochs)
        finally:
            net.set_validation(None)
            # A fitted net holds no process group: a pickle of it loads and
            # predicts on one process (world_size_ records the fit's).
            net.parallel_ = SingleProcess()
        self._collect_fitted_attributes(len(y_encoded))
        self._warn_if_tolerance_unresolved()
        return self

    def _warn_if_tolerance_unresolved(self):
        controller = dict(self.net_.callbacks_).get("tolerance_controller")
        error = getattr(controller, "resolution_", None)
        tolerance = self._tolerance()
        if error is not None and error > tolerance / 2:
            # 1 here, 2 _train, 3 fit, 4 sklearn's fit context, 5 the
            # subclass's fit, 6 the caller.
            warnings.warn(
                ToleranceResolutionWarning.from_error(error, tolerance), stacklevel=6
            )

    @contextlib.contextmanager
    def _seeded_torch(self, device, offset=0):
        """Seed torch's global generator without leaking it to the caller."""
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._torch_seed + offset)
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
        return self._net_class(
            module,
            criterion=self.criterion,
            criterion__reduction="none",
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            classes=list(range(n_classes)),
            dataset=RowDataset,
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_train__seed=shuffle_seed,
            iterator_train__rank=self._parallel.rank,
            iterator_train__world_size=self._parallel.world_size,
            iterator_valid=batch_loader,
            iterator_valid__with_rows=False,
            # Prediction has no per-row state: large batches are just faster.
            iterator_valid__batch_size=max(self.batch_size, 4096),
            # Used by DataLoaders of a caller's Dataset only.
            **{
                f"iterator_{stage}__{key}": value
                for stage in ("train", "valid")
                for key, value in (
                    ("num_workers", self.num_workers),
                    ("pin_memory", device.type == "cuda"),
                )
            },
            device=device,
            callbacks=self.callbacks,
            verbose=self.verbose,
            **{f"module__{key}": value for key, value in module_params.items()},
        )

    def _collect_fitted_attributes(self, n_samples):
        """Step 5: per-row weights and averages in input order, the history."""
        net, train_index = self.net_, self._validation.train_index
        self.validation_mask_ = np.ones(n_samples, dtype=bool)
        self.validation_mask_[train_index] = False
        validation = self._validation
        self.monitor_mask_ = np.zeros(n_samples, dtype=bool)
        if len(validation.held_out):
            monitor = validation.monitor if validation.monitor.any() else slice(None)
            self.monitor_mask_[validation.held_out[monitor]] = True
        self.sample_weights_ = np.zeros(n_samples)
        self.sample_weights_[train_index] = net.weighting_.weights().cpu().numpy()
        self.weighted_loss_ema_ = np.full(n_samples, np.nan)
        average = net.loss_average_.average
        if average is not None:
            self.weighted_loss_ema_[train_index] = average.cpu().numpy()
        self.history_ = net.history
        self.world_size_ = self._parallel.world_size
        selector = dict(net.callbacks_).get("epoch_selector")
        selected = getattr(selector, "best_epoch_", None)
        selected = selected if self._selects_epoch() else None
        self.best_epoch_ = selected or len(net.history)

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or torch Dataset
            Rows to score, shaped as in ``fit`` (a Dataset's items are ``x``
            or ``(x, ...)``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, columns ordered as ``classes_``.

        """
        check_is_fitted(self)
        if is_torch_dataset(X):
            check_dataset(self, X, reset=False)
            dataset = DatasetRows(X)
        else:
            dataset = RowDataset(_tensor_view(check_predict_data(self, X)))
        logits = self.net_.forward(dataset, device="cpu")
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X):
        """Most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or torch Dataset
            Rows to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, of the type of ``classes_``.

        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
