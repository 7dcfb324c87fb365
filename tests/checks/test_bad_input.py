"""Bad inputs to the estimators and public helpers fail early and clearly.

Every case below passes one bad input to ``FORMLClassifier.fit``,
``predict``/``predict_proba``, ``FORMLSampler.fit_resample``,
``ReweightedClassifier.fit``, ``skforml.metrics.fairness_report`` or
``skforml.datasets.make_biased_classification`` and expects a ``ValueError``
or ``TypeError`` whose message names the argument at fault, without touching
the caller's data (every input is deep-copied before the call and compared
after it, pandas objects included). A few inputs are accepted but probably
wrong; their cases expect a warning (:class:`~skforml.FeatureScaleWarning`,
:class:`~skforml.IndexMismatchWarning`), run as an error.

``CASES`` *is* the table of ``docs/input_validation.rst``: the test checks
that every case has its row there, with the same exception and the same
message (first line, up to the first set literal, at most 100 characters).
After changing a case or a message, rewrite the table with::

    python tests/checks/test_bad_input.py

"""

import copy
import csv
import functools
import math
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from skforml import (
    FeatureScaleWarning,
    FORMLClassifier,
    FORMLSampler,
    IndexMismatchWarning,
    ReweightedClassifier,
)
from skforml.datasets import make_biased_classification
from skforml.metrics import fairness_report

DOC = Path(__file__).resolve().parents[2] / "docs" / "input_validation.rst"
TABLE_BEGIN = ".. bad-input-table-begin"
TABLE_END = ".. bad-input-table-end"

# One epoch on a handful of rows: every case that reaches training is fast.
FAST = {"max_epochs": 1, "batch_size": 32, "hidden_layer_sizes": (4,)}
N_ROWS = 200


def data():
    """Fresh tiny binary data: 200 rows, 3 features + group, two groups.

    Every (group, label) cell has at least 10 rows, so the default split
    (``min_group_samples=5``) works and the cases fail where they mean to.
    """
    X, y, groups = make_biased_classification(
        n_samples=N_ROWS,
        n_features=3,
        minority_proportion=0.4,
        positive_rate=0.4,
        random_state=0,
    )
    return X, y, groups


@functools.cache
def fitted():
    """A model fitted on ``data()`` (cached: predict cases only read it)."""
    X, y, groups = data()
    return FORMLClassifier(**FAST, random_state=0).fit(X, y, sensitive_features=groups)


@functools.cache
def fitted_on_frame():
    """A model fitted on a DataFrame with string column names."""
    X, y, groups = data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "group"])
    return FORMLClassifier(**FAST, random_state=0).fit(
        frame, y, sensitive_features=groups
    )


def clf(**params):
    return FORMLClassifier(**{**FAST, "random_state": 0, **params})


def as_images(X):
    """``data()``'s 4 features as 1-channel 2x2 images."""
    return X.reshape(len(X), 1, 2, 2)


@functools.cache
def fitted_on_images():
    """A model with a module, fitted on ``data()`` as (N, 1, 2, 2) images."""
    X, y, groups = data()
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    return clf(module=module).fit(as_images(X), y, sensitive_features=groups)


class NotFORML(BaseEstimator):
    """An estimator that accepts sensitive_features but learns no weights."""

    def fit(self, X, y, sensitive_features=None):
        return self


@dataclass(frozen=True)
class Case:
    """One bad input: its documented row and how to run it.

    ``make()`` returns ``(function, inputs)``; the test calls
    ``function(**inputs)``. ``inputs`` holds only the caller's data, which
    must be unchanged after the call.
    """

    id: str
    call: str
    bad: str
    error: type
    names: str
    make: object


def fit_case(id, bad, error, names, *, estimator=None, **changes):
    """A case of ``FORMLClassifier.fit`` on ``data()`` with ``changes``."""

    def make():
        X, y, groups = data()
        inputs = {"X": X, "y": y, "sensitive_features": groups, **changes}
        for key, value in list(inputs.items()):
            if callable(value) and not isinstance(value, type):
                inputs[key] = value(X, y, groups)
        return (estimator or clf)().fit, inputs

    return Case(id, "FORMLClassifier.fit", bad, error, names, make)


def param_case(id, bad, names, error=ValueError, **params):
    """A case of ``FORMLClassifier(**params).fit`` on good data."""
    return fit_case(
        id,
        bad,
        error,
        names,
        estimator=lambda: clf(**params),
    )


def predict_case(id, bad, error, names, make_X, method="predict"):
    def make():
        X, _, _ = data()
        return getattr(fitted(), method), {"X": make_X(X)}

    return Case(id, f"FORMLClassifier.{method}", bad, error, names, make)


def with_nan(X, y, groups):
    X = X.copy()
    X[3, 1] = np.nan
    return X


def with_inf(X, y, groups):
    X = X.copy()
    X[5, 0] = -np.inf
    return X


def nan_labels(X, y, groups):
    y = y.astype(float)
    y[7] = np.nan
    return y


def nan_groups(X, y, groups):
    return pd.Series(np.where(np.arange(len(groups)) == 4, np.nan, groups))


def no_minority_positives(X, y, groups):
    return np.where(groups == 1, 0, y)


def tiny_third_group(X, y, groups):
    groups = groups.copy()
    groups[:4] = 2
    return groups


def misaligned_short_series(X, y, groups):
    # Index 1..N-1 while X's is 0..N-1: matched by position, one row short.
    return pd.Series(groups[1:], index=np.arange(1, len(groups)), name="group")


def frame_with_nan(X, y, groups):
    frame = pd.DataFrame(X, columns=["a", "b", "c", "group"])
    frame.iloc[2, 0] = np.nan
    return frame


def sampler_case(id, bad, error, names, sampler, **changes):
    def make():
        X, y, groups = data()
        inputs = {"X": X, "y": y, "sensitive_features": groups, **changes}
        for key, value in list(inputs.items()):
            if callable(value):
                inputs[key] = value(X, y, groups)
        return sampler().fit_resample, inputs

    return Case(id, "FORMLSampler.fit_resample", bad, error, names, make)


def report_case(id, bad, error, names, **changes):
    def make():
        _, y, groups = data()
        inputs = {"y_true": y, "y_pred": 1 - y, "sensitive_features": groups}
        inputs.update(changes)
        for key, value in list(inputs.items()):
            if callable(value):
                inputs[key] = value(y, groups)
        return fairness_report, inputs

    return Case(id, "fairness_report", bad, error, names, make)


def dataset_case(id, bad, names, **params):
    def make():
        return make_biased_classification, dict(params)

    return Case(id, "make_biased_classification", bad, ValueError, names, make)


CASES = [
    # ------------------------------------------------------------------ X
    fit_case(
        "fit-X-1d",
        "``X`` is 1-D",
        ValueError,
        "X",
        X=lambda X, y, g: X[:, 0],
    ),
    fit_case(
        "fit-X-3d",
        "``X`` is 3-D",
        ValueError,
        "X",
        X=lambda X, y, g: X[:, :, None],
    ),
    fit_case(
        "fit-X-none",
        "``X`` is None",
        ValueError,
        "X",
        X=None,
    ),
    fit_case(
        "fit-X-strings",
        "``X`` is an object array of words",
        ValueError,
        "X",
        X=lambda X, y, g: np.full(X.shape, "low", dtype=object),
    ),
    fit_case(
        "fit-X-complex",
        "``X`` is complex",
        ValueError,
        "X",
        X=lambda X, y, g: X + 1j,
    ),
    fit_case(
        "fit-X-ragged",
        "``X`` is a ragged list of rows",
        ValueError,
        "X",
        X=lambda X, y, g: [[1.0, 2.0], [3.0]] * (len(y) // 2),
    ),
    fit_case(
        "fit-X-images-mlp",
        "``X`` holds (N, 1, 2, 2) images but ``module=None`` (the built-in MLP)",
        ValueError,
        "X",
        X=lambda X, y, g: as_images(X),
    ),
    fit_case("fit-X-nan", "``X`` holds NaN", ValueError, "X", X=with_nan),
    fit_case("fit-X-inf", "``X`` holds -inf", ValueError, "X", X=with_inf),
    fit_case(
        "fit-X-float32-overflow",
        "``X`` holds 1e39, beyond float32",
        ValueError,
        "X",
        X=lambda X, y, g: np.where(np.arange(X.size).reshape(X.shape) == 0, 1e39, X),
    ),
    fit_case(
        "fit-X-frame-nan",
        "``X`` is a DataFrame with NaN",
        ValueError,
        "X",
        X=frame_with_nan,
    ),
    fit_case(
        "fit-X-empty",
        "``X``, ``y`` and ``sensitive_features`` have 0 rows",
        ValueError,
        "X",
        X=lambda X, y, g: X[:0],
        y=lambda X, y, g: y[:0],
        sensitive_features=lambda X, y, g: g[:0],
    ),
    fit_case(
        "fit-X-no-features",
        "``X`` has 0 columns",
        ValueError,
        "X",
        X=lambda X, y, g: X[:, :0],
    ),
    fit_case(
        "fit-X-unscaled",
        "``X`` has a column of about 1e4, as raw counts or amounts (a warning)",
        FeatureScaleWarning,
        "X",
        X=lambda X, y, g: X * np.array([1.0, 1e4, 1.0, 1.0]),
    ),
    fit_case(
        "fit-X-sparse",
        "``X`` is a scipy sparse matrix",
        TypeError,
        "X",
        X=lambda X, y, g: sp.csr_matrix(X),
    ),
    # ------------------------------------------------------------------ y
    fit_case("fit-y-none", "``y`` is None", ValueError, "y", y=None),
    fit_case("fit-y-nan", "``y`` holds NaN", ValueError, "y", y=nan_labels),
    fit_case(
        "fit-y-2d",
        "``y`` has two columns",
        ValueError,
        "y",
        y=lambda X, y, g: np.column_stack([y, y]),
    ),
    fit_case(
        "fit-y-continuous",
        "``y`` is continuous",
        ValueError,
        "y",
        y=lambda X, y, g: np.linspace(0, 1, len(y)),
    ),
    fit_case(
        "fit-y-one-class",
        "``y`` holds a single class",
        ValueError,
        "y",
        y=lambda X, y, g: np.zeros_like(y),
    ),
    fit_case(
        "fit-y-one-class-strings",
        "``y`` is a pandas Series of one string",
        ValueError,
        "y",
        y=lambda X, y, g: pd.Series(["yes"] * len(y), dtype=object),
    ),
    fit_case(
        "fit-y-length",
        "``y`` has one row fewer than ``X``",
        ValueError,
        "y",
        y=lambda X, y, g: y[:-1],
    ),
    fit_case(
        "fit-y-mixed-types",
        "``y`` mixes strings and numbers",
        ValueError,
        "y",
        y=lambda X, y, g: np.array(["yes" if v else 0 for v in y], dtype=object),
    ),
    # -------------------------------------------------- sensitive_features
    fit_case(
        "fit-sf-one-group",
        "``sensitive_features`` holds a single group",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: np.zeros_like(g),
    ),
    fit_case(
        "fit-sf-scalar",
        "``sensitive_features`` is a scalar",
        TypeError,
        "sensitive_features",
        sensitive_features=1,
    ),
    fit_case(
        "fit-sf-string",
        "``sensitive_features`` is a column name",
        TypeError,
        "sensitive_features",
        sensitive_features="group",
    ),
    fit_case(
        "fit-sf-dict-ragged",
        "``sensitive_features`` is a dict of columns of different lengths",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: {"group": g, "other": g[:-1]},
    ),
    fit_case(
        "fit-sf-set",
        "``sensitive_features`` is a set",
        TypeError,
        "sensitive_features",
        sensitive_features={0, 1},
    ),
    fit_case(
        "fit-sf-3d",
        "``sensitive_features`` is 3-D",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: g[:, None, None],
    ),
    fit_case(
        "fit-sf-no-columns",
        "``sensitive_features`` is a DataFrame without columns",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: pd.DataFrame(index=range(len(g))),
    ),
    fit_case(
        "fit-sf-nan",
        "``sensitive_features`` is a Series with NaN",
        ValueError,
        "sensitive_features",
        sensitive_features=nan_groups,
    ),
    fit_case(
        "fit-sf-none-values",
        "``sensitive_features`` is a list with None",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: [None if i == 0 else "f" for i in g],
    ),
    fit_case(
        "fit-sf-length",
        "``sensitive_features`` has one row fewer than ``X``",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: g[:-1],
    ),
    fit_case(
        "fit-sf-misaligned-index",
        "``X`` a DataFrame indexed 0..199, ``sensitive_features`` a Series "
        "indexed 1..199 (matched by position, not index)",
        ValueError,
        "sensitive_features",
        X=lambda X, y, g: pd.DataFrame(X),
        sensitive_features=misaligned_short_series,
    ),
    fit_case(
        "fit-sf-mixed-types",
        "``sensitive_features`` mixes strings and numbers",
        TypeError,
        "sensitive_features",
        sensitive_features=lambda X, y, g: np.array(
            ["f" if v else 0 for v in g], dtype=object
        ),
    ),
    fit_case(
        "fit-group-without-positives",
        "a group has no positive rows; ``constraint='equalized_odds'`` compares them",
        ValueError,
        "constraint",
        y=no_minority_positives,
    ),
    fit_case(
        "fit-group-too-small",
        "a group of 4 rows, too few for ``min_group_samples=5`` validation rows",
        ValueError,
        "min_group_samples",
        estimator=lambda: clf(min_group_samples=5),
        sensitive_features=tiny_third_group,
    ),
    fit_case(
        "fit-fpr-parity-multiclass",
        "``constraint='false_positive_rate_parity'`` with three classes",
        ValueError,
        "constraint",
        estimator=lambda: clf(constraint="false_positive_rate_parity"),
        y=lambda X, y, g: np.arange(len(y)) % 3,
    ),
    # ------------------------------------------------------ sample_weight
    fit_case(
        "fit-sw-negative",
        "``sample_weight`` has a negative entry",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.where(np.arange(len(y)) == 0, -1.0, 1.0),
    ),
    fit_case(
        "fit-sw-nan",
        "``sample_weight`` is a Series with NaN",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: pd.Series(
            np.where(np.arange(len(y)) == 9, np.nan, 1.0)
        ),
    ),
    fit_case(
        "fit-sw-inf",
        "``sample_weight`` has an infinite entry",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.where(np.arange(len(y)) == 0, np.inf, 1.0),
    ),
    fit_case(
        "fit-sw-length",
        "``sample_weight`` has one entry fewer than ``X``",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.ones(len(y) - 1),
    ),
    fit_case(
        "fit-sw-2d",
        "``sample_weight`` is a column vector",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.ones((len(y), 1)),
    ),
    fit_case(
        "fit-sw-all-zero",
        "``sample_weight`` is zero everywhere",
        ValueError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.zeros(len(y)),
    ),
    fit_case(
        "fit-sw-strings",
        "``sample_weight`` holds words",
        TypeError,
        "sample_weight",
        sample_weight=lambda X, y, g: ["heavy"] * len(y),
    ),
    fit_case(
        "fit-sw-complex",
        "``sample_weight`` is complex",
        TypeError,
        "sample_weight",
        sample_weight=lambda X, y, g: np.ones(len(y)) + 1j,
    ),
    # ----------------------------------------------------------- parameters
    param_case("param-lr-negative", "``lr=-1``", "lr", lr=-1.0),
    param_case("param-lr-nan", "``lr=nan``", "lr", lr=math.nan),
    param_case("param-meta-lr-negative", "``meta_lr=-0.1``", "meta_lr", meta_lr=-0.1),
    param_case("param-meta-lr-inf", "``meta_lr=inf``", "meta_lr", meta_lr=math.inf),
    param_case(
        "param-lookahead-lr-zero", "``lookahead_lr=0``", "lookahead_lr", lookahead_lr=0
    ),
    param_case(
        "param-constraint-unknown",
        "``constraint='calibration'``",
        "constraint",
        constraint="calibration",
    ),
    param_case(
        "param-meta-loss-unknown",
        "``meta_loss='hinge'``",
        "meta_loss",
        meta_loss="hinge",
    ),
    param_case(
        "param-meta-gradient-unknown",
        "``meta_gradient='finite_differences'``",
        "meta_gradient",
        meta_gradient="finite_differences",
    ),
    param_case(
        "param-worst-group-lift-negative",
        "``worst_group_lift=-1``",
        "worst_group_lift",
        worst_group_lift=-1.0,
    ),
    param_case("param-batch-size-zero", "``batch_size=0``", "batch_size", batch_size=0),
    param_case("param-max-epochs-zero", "``max_epochs=0``", "max_epochs", max_epochs=0),
    param_case(
        "param-validation-size-1.5",
        "``validation_size=1.5``",
        "validation_size",
        validation_size=1.5,
    ),
    param_case(
        "param-validation-size-zero",
        "``validation_size=0``",
        "validation_size",
        validation_size=0,
    ),
    param_case(
        "param-validation-size-too-many",
        "``validation_size=1000`` with 200 rows",
        "validation_size",
        validation_size=1000,
    ),
    param_case(
        "param-min-group-samples-zero",
        "``min_group_samples=0``",
        "min_group_samples",
        min_group_samples=0,
    ),
    param_case(
        "param-loss-ema-decay-one",
        "``loss_ema_decay=1``",
        "loss_ema_decay",
        loss_ema_decay=1.0,
    ),
    param_case(
        "param-hidden-layer-sizes-zero",
        "``hidden_layer_sizes=(0,)``",
        "hidden_layer_sizes",
        hidden_layer_sizes=(0,),
    ),
    param_case(
        "param-hidden-layer-sizes-int",
        "``hidden_layer_sizes=8``",
        "hidden_layer_sizes",
        hidden_layer_sizes=8,
    ),
    param_case(
        "param-device-tpu",
        "``device='tpu'``",
        "device",
        device="tpu",
    ),
    param_case(
        "param-optimizer-string",
        "``optimizer='adam'``",
        "optimizer",
        optimizer="adam",
    ),
    param_case(
        "param-callbacks-not-list",
        "``callbacks='print'``",
        "callbacks",
        callbacks="print",
    ),
    # ------------------------------------------------------------- predict
    Case(
        "predict-unfitted",
        "FORMLClassifier.predict",
        "``predict`` before ``fit``",
        NotFittedError,
        "fit",
        lambda: (clf().predict, {"X": data()[0]}),
    ),
    Case(
        "predict-proba-unfitted",
        "FORMLClassifier.predict_proba",
        "``predict_proba`` before ``fit``",
        NotFittedError,
        "fit",
        lambda: (clf().predict_proba, {"X": data()[0]}),
    ),
    predict_case(
        "predict-X-n-features",
        "``X`` has 3 columns, the fit had 4",
        ValueError,
        "X",
        lambda X: X[:, :3],
    ),
    predict_case(
        "predict-X-1d",
        "``X`` is one row as a 1-D array",
        ValueError,
        "X",
        lambda X: X[0],
    ),
    predict_case(
        "predict-proba-X-nan",
        "``X`` holds NaN",
        ValueError,
        "X",
        lambda X: with_nan(X, None, None),
        method="predict_proba",
    ),
    predict_case(
        "predict-proba-X-sparse",
        "``X`` is a scipy sparse matrix",
        TypeError,
        "X",
        lambda X: sp.csr_matrix(X),
        method="predict_proba",
    ),
    predict_case(
        "predict-X-strings",
        "``X`` is an object array of words",
        ValueError,
        "X",
        lambda X: np.full(X.shape, "low", dtype=object),
    ),
    predict_case(
        "predict-X-empty",
        "``X`` has 0 rows",
        ValueError,
        "X",
        lambda X: X[:0],
    ),
    Case(
        "predict-X-column-names",
        "FORMLClassifier.predict",
        "``X`` is a DataFrame whose column names differ from the fit's",
        ValueError,
        "X",
        lambda: (
            fitted_on_frame().predict,
            {"X": pd.DataFrame(data()[0], columns=["a", "b", "c", "sex"])},
        ),
    ),
    Case(
        "predict-X-row-shape",
        "FORMLClassifier.predict",
        "``X`` holds (N, 1, 4, 1) images, the fit (N, 1, 2, 2) ones",
        ValueError,
        "X",
        lambda: (
            fitted_on_images().predict,
            {"X": data()[0].reshape(N_ROWS, 1, 4, 1)},
        ),
    ),
    # --------------------------------------------------------------- others
    Case(
        "warm-start-other-rows",
        "FORMLClassifier.fit",
        "``warm_start=True`` continues with another number of rows",
        ValueError,
        "X",
        lambda: (
            copy.deepcopy(fitted()).set_params(warm_start=True).fit,
            {
                "X": data()[0][:-1],
                "y": data()[1][:-1],
                "sensitive_features": data()[2][:-1],
            },
        ),
    ),
    Case(
        "reweighted-weighting-unknown",
        "ReweightedClassifier.fit",
        "``weighting='inverse'``",
        ValueError,
        "weighting",
        lambda: (
            ReweightedClassifier(weighting="inverse", **FAST).fit,
            dict(zip(["X", "y", "sensitive_features"], data())),
        ),
    ),
    Case(
        "reweighted-label-bias-multiclass",
        "ReweightedClassifier.fit",
        "``weighting='label_bias'`` with three classes",
        ValueError,
        "weighting",
        lambda: (
            ReweightedClassifier(weighting="label_bias", **FAST).fit,
            {
                "X": data()[0],
                "y": np.arange(N_ROWS) % 3,
                "sensitive_features": data()[2],
            },
        ),
    ),
    sampler_case(
        "sampler-n-remove-too-many",
        "``n_remove`` is the number of rows",
        ValueError,
        "n_remove",
        lambda: FORMLSampler(clf(), n_remove=N_ROWS),
    ),
    sampler_case(
        "sampler-fraction",
        "``fraction=1.5``",
        ValueError,
        "fraction",
        lambda: FORMLSampler(clf(), fraction=1.5),
    ),
    sampler_case(
        "sampler-estimator-string",
        "``estimator='forml'``",
        ValueError,
        "estimator",
        lambda: FORMLSampler("forml"),
    ),
    sampler_case(
        "sampler-estimator-not-forml",
        "``estimator`` without ``weighted_loss_ema_`` after ``fit``",
        TypeError,
        "estimator",
        lambda: FORMLSampler(NotFORML(), n_remove=5),
    ),
    sampler_case(
        "sampler-y-length",
        "``y`` has one row fewer than ``X``",
        ValueError,
        "y",
        lambda: FORMLSampler(clf()),
        y=lambda X, y, g: y[:-1],
    ),
    sampler_case(
        "sampler-sf-length",
        "``sensitive_features`` has one row fewer than ``X``",
        ValueError,
        "sensitive_features",
        lambda: FORMLSampler(clf()),
        sensitive_features=lambda X, y, g: g[:-1],
    ),
    report_case(
        "report-y-true-nan",
        "``y_true`` holds NaN",
        ValueError,
        "y_true",
        y_true=lambda y, g: np.where(np.arange(len(y)) == 0, np.nan, y),
    ),
    report_case(
        "report-y-pred-scores",
        "``y_pred`` holds probabilities, not classes",
        ValueError,
        "y_pred",
        y_pred=lambda y, g: np.linspace(0.01, 0.99, len(y)),
    ),
    report_case(
        "report-y-pred-length",
        "``y_pred`` has one row fewer than ``y_true``",
        ValueError,
        "y_pred",
        y_pred=lambda y, g: y[:-1],
    ),
    report_case(
        "report-y-true-empty",
        "``y_true``, ``y_pred`` and ``sensitive_features`` are empty",
        ValueError,
        "y_true",
        y_true=lambda y, g: y[:0],
        y_pred=lambda y, g: y[:0],
        sensitive_features=lambda y, g: g[:0],
    ),
    report_case(
        "report-sf-nan",
        "``sensitive_features`` holds NaN",
        ValueError,
        "sensitive_features",
        sensitive_features=lambda y, g: np.where(np.arange(len(g)) == 0, np.nan, g),
    ),
    report_case(
        "report-sf-scalar",
        "``sensitive_features`` is a scalar",
        TypeError,
        "sensitive_features",
        sensitive_features=1,
    ),
    report_case(
        "report-sf-index-mismatch",
        "``y_true`` and ``sensitive_features`` are Series with different indexes "
        "(a warning)",
        IndexMismatchWarning,
        "sensitive_features",
        y_true=lambda y, g: pd.Series(y),
        sensitive_features=lambda y, g: pd.Series(g, index=np.arange(len(g))[::-1]),
    ),
    report_case(
        "report-pos-label",
        "``pos_label=2`` is not a label",
        ValueError,
        "pos_label",
        pos_label=2,
    ),
    dataset_case("dataset-n-samples", "``n_samples=1``", "n_samples", n_samples=1),
    dataset_case("dataset-n-features", "``n_features=2``", "n_features", n_features=2),
    dataset_case(
        "dataset-minority-proportion",
        "``minority_proportion=1.5``",
        "minority_proportion",
        minority_proportion=1.5,
    ),
    dataset_case(
        "dataset-positive-rate", "``positive_rate=0``", "positive_rate", positive_rate=0
    ),
    dataset_case("dataset-noise", "``noise=-1``", "noise", noise=-1.0),
]

# Needs a machine without CUDA (the CI's); skipped where CUDA is available.
CASES.append(
    param_case(
        "param-device-absent",
        "``device='cuda'`` on a machine without CUDA",
        "device",
        device="cuda",
    )
)
NEEDS_NO_CUDA = {"param-device-absent"}


# ------------------------------------------------------------------ helpers


def summary(message):
    """The documented part of a message: first line, before any set literal,
    at most 100 characters (cut at a space)."""
    line = str(message).strip().splitlines()[0] if str(message).strip() else ""
    line = line.split(" {")[0].rstrip()
    if len(line) > 100:
        line = line[:100].rsplit(" ", 1)[0] + " ..."
    return line


def names_argument(message, name):
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", str(message))


def assert_same(before, after, where="input"):
    """``after`` equals the deep copy ``before``, NaN equal to NaN."""
    assert type(before) is type(after), f"{where}: type changed"
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(before, after, check_exact=True, obj=where)
    elif isinstance(before, (pd.Series, pd.Index)):
        assert_equal = (
            pd.testing.assert_series_equal
            if isinstance(before, pd.Series)
            else pd.testing.assert_index_equal
        )
        assert_equal(before, after, check_exact=True, obj=where)
    elif sp.issparse(before):
        assert before.format == after.format and before.dtype == after.dtype, where
        assert before.shape == after.shape, where
        assert (before != after).nnz == 0, f"{where}: values changed"
    elif isinstance(before, np.ndarray):
        assert before.dtype == after.dtype, f"{where}: dtype changed"
        assert before.shape == after.shape, f"{where}: shape changed"
        assert before.flags.writeable == after.flags.writeable, where
        if before.dtype == object:
            for i, (b, a) in enumerate(zip(before.ravel(), after.ravel())):
                assert_same(b, a, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(before, after, err_msg=where, strict=True)
    elif isinstance(before, dict):
        assert before.keys() == after.keys(), f"{where}: keys changed"
        for key in before:
            assert_same(before[key], after[key], f"{where}[{key!r}]")
    elif isinstance(before, (list, tuple)):
        assert len(before) == len(after), f"{where}: length changed"
        for i, (b, a) in enumerate(zip(before, after)):
            assert_same(b, a, f"{where}[{i}]")
    elif isinstance(before, float) and math.isnan(before):
        assert math.isnan(after), f"{where}: NaN changed"
    else:
        assert before == after, f"{where}: {before!r} became {after!r}"


def documented_rows():
    """Rows of the table in the docs, by case id."""
    lines = DOC.read_text().splitlines()
    start, end = lines.index(TABLE_BEGIN), lines.index(TABLE_END)
    body = [
        line.strip()
        for line in lines[start + 1 : end]
        if line.startswith("   ") and not line.strip().startswith(":")
    ]
    rows = {}
    for fields in csv.reader(body, skipinitialspace=True):
        # Call, exception, names and message are literals; the bad input is
        # prose.
        fields = [f if i == 2 else _unliteral(f) for i, f in enumerate(fields)]
        rows[fields[0]] = fields
    return rows


def _unliteral(field):
    field = field.strip()
    if field.startswith("``") and field.endswith("``") and field.count("``") == 2:
        return field[2:-2]
    return field


def _literal(text):
    return f"``{text}``" if text else ""


def row_of(case, message):
    return [
        case.id,
        case.call,
        case.bad,
        case.error.__name__,
        case.names,
        summary(message),
    ]


def _csv_line(fields):
    id_, call, bad, error, names, message = fields
    cells = [id_, _literal(call), bad, _literal(error), _literal(names)]
    cells.append(_literal(message))
    return ", ".join('"' + cell.replace('"', '""') + '"' for cell in cells)


def run_case(case):
    """Run a case; returns (exception, inputs before, inputs after).

    The warning of a warning case is raised as an exception.
    """
    function, inputs = case.make()
    before = copy.deepcopy(inputs)
    try:
        with warnings.catch_warnings():
            if issubclass(case.error, Warning):
                warnings.simplefilter("error", case.error)
            function(**inputs)
    except Exception as exc:  # noqa: BLE001 -- the test checks its type
        return exc, before, inputs
    return None, before, inputs


def is_documented_kind(exc, case):
    """A ValueError or TypeError, or the warning of a warning case."""
    return isinstance(exc, case.error) and (
        isinstance(exc, (ValueError, TypeError)) or issubclass(case.error, Warning)
    )


# -------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def documented():
    return documented_rows()


def test_at_least_30_cases_with_unique_ids():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30


def test_every_case_is_documented_and_nothing_else(documented):
    assert sorted(documented) == sorted(case.id for case in CASES), (
        "docs/input_validation.rst is out of sync with CASES: run "
        "`python tests/checks/test_bad_input.py` to rewrite its table"
    )


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[
                *(
                    [pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA")]
                    if case.id in NEEDS_NO_CUDA
                    else []
                ),
            ],
        )
        for case in CASES
    ],
)
def test_bad_input(case, documented):
    exc, before, after = run_case(case)
    assert exc is not None, f"{case.call} accepted {case.bad}"
    assert is_documented_kind(exc, case), f"{type(exc).__name__}: {exc}"
    assert names_argument(exc, case.names), (
        f"the message does not name {case.names!r}: {exc}"
    )
    for key in before:
        assert_same(before[key], after[key], key)
    assert documented[case.id] == row_of(case, exc), (
        "the documented row differs: run `python tests/checks/test_bad_input.py`"
    )


def test_assert_same_sees_changes():
    frame = pd.DataFrame({"a": [1.0, np.nan]}, index=[3, 4])
    changed = frame.copy()
    changed.index = [0, 1]
    with pytest.raises(AssertionError):
        assert_same(frame, changed)
    array = np.array([1.0, np.nan])
    assert_same(array, array.copy())
    with pytest.raises(AssertionError):
        assert_same(array, np.array([1.0, 2.0]))
    with pytest.raises(AssertionError):
        assert_same(np.array(["a", None], dtype=object), np.array(["a", "b"], object))


def test_fit_does_not_modify_float32_input_it_uses_without_copy():
    X, y, groups = data()
    X = np.ascontiguousarray(X, dtype=np.float32)
    X_before = X.copy()
    clf(max_epochs=2).fit(X, y, sensitive_features=groups)
    np.testing.assert_array_equal(X, X_before)
    assert X.flags.writeable


@pytest.mark.filterwarnings("ignore::skforml.IndexMismatchWarning")
def test_misaligned_pandas_indexes_are_matched_by_position():
    """Index labels of X, y, sensitive_features and sample_weight are ignored.

    As scikit-learn does for ``sample_weight``, every argument is read in its
    row order: row ``i`` of X goes with entry ``i`` of the others, whatever
    their index. The same rows in another index order give the same model
    (and an ``IndexMismatchWarning``).
    """
    X, y, groups = data()
    weights = np.linspace(0.5, 1.5, len(y))
    reference = clf(max_epochs=2).fit(
        X, y, sensitive_features=groups, sample_weight=weights
    )
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(X, index=rng.permutation(len(y)))
    series_y = pd.Series(y, index=rng.permutation(len(y)))
    series_groups = pd.Series(groups, index=np.arange(len(y))[::-1] + 1000)
    series_weights = pd.Series(weights, index=rng.permutation(len(y)))
    inputs = (frame, series_y, series_groups, series_weights)
    before = copy.deepcopy(inputs)
    model = clf(max_epochs=2).fit(
        frame, series_y, sensitive_features=series_groups, sample_weight=series_weights
    )
    for b, a in zip(before, inputs):
        assert_same(b, a)
    np.testing.assert_array_equal(model.sample_weights_, reference.sample_weights_)
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


def test_fit_warns_when_pandas_indexes_differ():
    X, y, groups = data()
    frame = pd.DataFrame(X)
    series = pd.Series(groups, index=np.arange(len(y))[::-1])
    with pytest.warns(IndexMismatchWarning, match="X and sensitive_features"):
        clf(max_epochs=1).fit(frame, y, sensitive_features=series)


def test_score_with_labels_unseen_in_fit_is_not_an_error():
    """``score`` is accuracy: an unseen label counts as a wrong prediction."""
    X, y, _ = data()
    assert fitted().score(X, y + 5) == 0.0


# ----------------------------------------------------------- the doc table


def write_table():
    """Rewrite the table of docs/input_validation.rst from the cases.

    A case whose run does not give its documented error keeps its current
    row.
    """
    current = documented_rows() if TABLE_BEGIN in DOC.read_text() else {}
    rows, kept = [], []
    for case in CASES:
        exc, _, _ = run_case(case)
        if is_documented_kind(exc, case) and names_argument(exc, case.names):
            rows.append(row_of(case, exc))
        elif case.id in current:
            rows.append(row_of(case, current[case.id][5]))
            kept.append(case.id)
        else:
            raise SystemExit(f"{case.id}: no documented error and got {exc!r}")
    table = [
        TABLE_BEGIN,
        "",
        ".. csv-table:: Bad inputs, their exception and message",
        '   :header: "Case", "Call", "Bad input", "Exception", "Names", '
        '"Message (first line)"',
        "   :widths: 16, 18, 26, 8, 10, 42",
        "",
        *("   " + _csv_line(row) for row in rows),
        "",
        TABLE_END,
    ]
    lines = DOC.read_text().splitlines()
    start, end = lines.index(TABLE_BEGIN), lines.index(TABLE_END)
    DOC.write_text("\n".join([*lines[:start], *table, *lines[end + 1 :]]) + "\n")
    print(f"{len(rows)} cases written to {DOC}; kept rows of {kept or 'none'}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(write_table())
