"""Shared machinery of the reweighting classifiers.

Input validation, groups, the split, the skorch net, seeding and prediction.
"""

import contextlib
import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn

from ._data import BatchIterator, RowDataset
from ._losses import build_cell_spec
from ._module import MLP
from ._net import FORMLNet
from ._split import (
    ValidationBatches,
    balanced_validation_split,
    check_validation_cells,
)
from ._validation import (
    check_device,
    check_fit_data,
    check_hidden_layer_sizes,
    check_predict_data,
    check_sample_weight_nonnegative,
    check_validation_set,
    check_validation_size,
    encode_groups,
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

    Subclasses say how rows are weighted (:meth:`_make_weighting`), whether
    a validation split is held out (:meth:`_uses_validation`), and which meta
    step engine, if any, runs (:meth:`_make_engine`). Everything else --
    input validation, groups, the balanced split, the skorch net, seeding,
    fitted attributes and prediction -- is shared, so that every scheme
    trains the same network in the same way.
    """

    _parameter_constraints = {
        "module": [None, nn.Module, type],
        "hidden_layer_sizes": ["array-like"],
        "module_params": [None, dict],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [type],
        "validation_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "validation_batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "min_group_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
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

    def _make_engine(self, module):
        """Name of the meta step engine, or None for plain weighted training."""
        return None

    def _make_meta_loss(self, spec, device):
        return None

    def _make_weighting(self, context):
        raise NotImplementedError

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X, y, *, sensitive_features=None, sample_weight=None, validation_set=None
    ):
        """Fit the network on weighted rows (see the subclasses' ``fit``)."""
        device = check_device(self.device)
        if self.module is None:
            check_hidden_layer_sizes(self.hidden_layer_sizes)
        continuing = self.warm_start and hasattr(self, "net_")
        X, y_encoded, encoder = check_fit_data(self, X, y, reset=not continuing)
        n_samples = len(y_encoded)
        check_validation_size(self.validation_size, n_samples)
        sample_weight = check_sample_weight_nonnegative(sample_weight, n_samples)
        if sensitive_features is None:
            groups, group_names = y_encoded, encoder.classes_.tolist()
        else:
            groups, group_names = encode_groups(sensitive_features, n_samples)
            if len(group_names) < 2:
                raise ValueError(
                    "sensitive_features holds a single group "
                    f"({group_names[0]!r}); FORML compares at least two groups."
                )
        if continuing:
            if not np.array_equal(encoder.classes_, self.classes_):
                raise ValueError(
                    "warm_start=True continues the previous fit, but y holds the "
                    f"classes {list(encoder.classes_)} instead of "
                    f"{list(self.classes_)}."
                )
            if n_samples != len(self.validation_mask_):
                raise ValueError(
                    "warm_start=True continues the previous fit and needs the same "
                    f"rows: X has {n_samples} rows, the previous fit had "
                    f"{len(self.validation_mask_)}."
                )
            self._torch_seed += 1
            return self._train(X, y_encoded)

        self.classes_ = encoder.classes_
        self.groups_ = group_names
        n_classes = len(self.classes_)
        strata = groups * n_classes + y_encoded
        spec = build_cell_spec(
            self._split_constraint(),
            group_names=group_names,
            class_names=self.classes_.tolist(),
            groups_are_classes=sensitive_features is None,
            present=np.bincount(strata, minlength=len(group_names) * n_classes) > 0,
        )
        cells = spec.cells(strata)
        rng = check_random_state(self.random_state)
        self._validation_data = None
        if validation_set is not None and self._uses_validation():
            # The caller's (clean) validation set: every row trains.
            X_val, y_val, groups_val = check_validation_set(
                self,
                validation_set,
                encoder,
                None if sensitive_features is None else group_names,
            )
            cells_val = spec.cells(groups_val * n_classes + y_val)
            check_validation_cells(cells_val, spec, self.min_group_samples)
            self._validation_data = (X_val, y_val)
            validation_index, train_index = np.arange(0), np.arange(n_samples)
            validation_cells = cells_val
        elif self._uses_validation():
            validation_index, train_index = balanced_validation_split(
                strata,
                cells,
                spec.cell_names,
                validation_size=self.validation_size,
                min_group_samples=self.min_group_samples,
                rng=rng,
            )
            validation_cells = cells[validation_index]
        else:
            validation_index, train_index = np.arange(0), np.arange(n_samples)
            validation_cells = cells[validation_index]
        torch_seed, shuffle_seed, validation_seed = rng.randint(2**31 - 1, size=3)
        self._torch_seed = int(torch_seed)
        self._train_index = train_index
        self._validation_index = validation_index
        self._validation_cells = validation_cells

        with self._seeded_torch(device):
            net = self._build_net(device, n_classes, int(shuffle_seed))
            net.initialize()
        net.engine_ = self._make_engine(net.module_)
        net.meta_loss_ = self._make_meta_loss(spec, device)
        if len(validation_cells):
            net.validation_batches_ = ValidationBatches(
                torch.as_tensor(self._validation_cells),
                self.validation_batch_size or self.batch_size,
                self.min_group_samples,
                torch.Generator().manual_seed(int(validation_seed)),
            )
        net.weighting_ = self._make_weighting(
            {
                "n_rows": len(train_index),
                "y": y_encoded[train_index],
                "groups": groups[train_index],
                "n_classes": n_classes,
                "n_groups": len(group_names),
                "sample_weight": None
                if sample_weight is None
                else torch.as_tensor(sample_weight[train_index], dtype=torch.float32),
                "device": device,
                "rng": np.random.RandomState(int(validation_seed)),
            }
        )
        self.net_ = net
        return self._train(X, y_encoded)

    def _train(self, X, y_encoded):
        """Run the epochs on ``X``; the net holds no data once it returns.

        Training rows are fetched from ``X`` by index, so ``fit`` makes no
        copy of them (only of the validation rows, on the device).
        """
        net, device = self.net_, torch.device(self.device)
        if self._validation_data is not None:
            X_val, y_val = self._validation_data
        else:
            X_val = X[self._validation_index]
            y_val = y_encoded[self._validation_index]
        if len(y_val):
            net.validation_ = (
                torch.as_tensor(X_val, device=device),
                torch.as_tensor(y_val, device=device),
                torch.as_tensor(self._validation_cells, device=device),
            )
        dataset = RowDataset(
            _tensor_view(X),
            torch.from_numpy(y_encoded),
            index=torch.from_numpy(self._train_index),
        )
        try:
            with self._seeded_torch(device):
                # skorch ends training on KeyboardInterrupt and keeps the model
                # fitted so far; the weights so far are kept below as well.
                # A warm start runs the current max_epochs, not the value the
                # net was built with.
                net.partial_fit(dataset, epochs=self.max_epochs)
        finally:
            net.validation_ = None
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
            # Prediction has no per-row state: large batches are just faster.
            iterator_valid__batch_size=max(self.batch_size, 4096),
            device=device,
            callbacks=self.callbacks,
            verbose=self.verbose,
            **{f"module__{key}": value for key, value in module_params.items()},
        )

    def _collect_fitted_attributes(self, n_samples):
        weighting = self.net_.weighting_
        train_index = self._train_index
        self.validation_mask_ = np.ones(n_samples, dtype=bool)
        self.validation_mask_[train_index] = False
        self.sample_weights_ = np.zeros(n_samples)
        self.sample_weights_[train_index] = weighting.weights().cpu().numpy()
        self.weighted_loss_ema_ = np.full(n_samples, np.nan)
        if weighting.loss_ema is not None:
            self.weighted_loss_ema_[train_index] = weighting.loss_ema.cpu().numpy()
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
        X = check_predict_data(self, X)
        logits = self.net_.forward(RowDataset(_tensor_view(X)), device="cpu")
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
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
