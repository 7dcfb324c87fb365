"""One parser of ``sensitive_features`` and one definition of the strata."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from skforml import FORMLSampler, weight_summary
from skforml.checks._groups import (
    encode_sensitive_features,
    sensitive_frame,
    stratum_ids,
)
from skforml.metrics import fairness_report

VALUES = ["b", "a", "b", "c", "a"]
# Codes follow the sorted group names; names are listed in code order.
CODES = [1, 0, 1, 2, 0]
NAMES = ["a", "b", "c"]


@pytest.mark.parametrize(
    "make",
    [
        np.array,
        list,
        lambda v: np.array(v, dtype=object),
        tuple,
        pd.Series,
        lambda v: np.array(v)[:, None],
        lambda v: {"sex": v},
        lambda v: pd.DataFrame({"sex": v}),
    ],
    ids=[
        "ndarray",
        "list",
        "object-array",
        "tuple",
        "series",
        "column",
        "dict",
        "one-column-frame",
    ],
)
def test_one_column_in_any_container(make):
    codes, names = encode_sensitive_features(make(VALUES), 5)
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, CODES)
    assert names == NAMES
    assert [names[c] for c in codes] == VALUES


def test_integer_values_keep_their_type_and_order():
    codes, names = encode_sensitive_features([5, 3, 3, 5, 10], 5)
    np.testing.assert_array_equal(codes, [1, 0, 0, 1, 2])
    # 10 after 5: numbers are sorted as numbers, and are plain ints.
    assert names == [3, 5, 10]
    assert all(type(name) is int for name in names)


def test_series_index_is_ignored():
    series = pd.Series(VALUES, index=[10, 3, 7, 0, 99], name="sex")
    codes, names = encode_sensitive_features(series, 5)
    np.testing.assert_array_equal(codes, CODES)
    assert names == NAMES


@pytest.mark.parametrize(
    "make",
    [
        lambda sex, race: pd.DataFrame(
            {"sex": sex, "race": race}, index=[4, 3, 2, 1, 0]
        ),
        lambda sex, race: {"sex": sex, "race": race},
        lambda sex, race: {"sex": pd.Series(sex), "race": np.array(race)},
        lambda sex, race: np.array([sex, race], dtype=object).T,
    ],
    ids=["frame", "dict", "dict-of-series", "2d-array"],
)
def test_several_columns_form_intersectional_groups(make):
    sex, race = ["m", "f", "m", "f", "m"], [1, 10, 2, 2, 1]
    codes, names = encode_sensitive_features(make(sex, race), 5)
    # Sorted column by column, numbers as numbers: (f, 2) before (f, 10).
    assert names == [("f", 2), ("f", 10), ("m", 1), ("m", 2)]
    assert [names[c] for c in codes] == list(zip(sex, race))


def test_equal_strings_of_different_values_stay_different_groups():
    # Grouping by str() would merge ("a", 1) with ("a", "1").
    frame = pd.DataFrame({"s": ["a", "a", "b"], "t": [1, 2, 1]})
    frame["t"] = frame["t"].astype(object)
    frame.loc[1, "t"] = "1"
    with pytest.raises(TypeError, match="cannot be compared"):
        encode_sensitive_features(frame, 3)
    codes, names = encode_sensitive_features({"s": ["a", "a"], "t": [1.0, 1]}, 2)
    assert codes.tolist() == [0, 0] and names == [("a", 1.0)]


def test_many_columns_do_not_overflow():
    rng = np.random.RandomState(0)
    columns = {f"c{i}": rng.randint(0, 1000, size=50) for i in range(8)}
    codes, names = encode_sensitive_features(columns, 50)
    rows = list(zip(*columns.values()))
    assert len(names) == len(set(rows))
    assert [names[c] for c in codes] == [tuple(int(v) for v in row) for row in rows]
    assert names == sorted(names)


@pytest.mark.parametrize(
    "values",
    [
        np.array([0.0, np.nan, 1.0]),
        ["a", None, "b"],
        pd.Series(["a", "b", np.nan]),
        pd.DataFrame({"a": [1, 2, 1], "b": ["x", None, "y"]}),
        {"a": [1, 2, 1], "b": ["x", None, "y"]},
    ],
    ids=["nan-float", "none-list", "nan-series", "none-in-frame", "none-in-dict"],
)
def test_missing_values_raise(values):
    with pytest.raises(ValueError, match="^sensitive_features contains missing"):
        encode_sensitive_features(values, 3)


@pytest.mark.parametrize(
    "value", [3, 1.5, "group", b"group", np.int64(2), {0, 1}, None, object()]
)
def test_not_a_sequence_of_rows_is_a_type_error(value):
    with pytest.raises(TypeError, match="^sensitive_features must be an array-like"):
        encode_sensitive_features(value, 3)


@pytest.mark.parametrize(
    "values, match",
    [
        (np.zeros((3, 2, 2)), "must be 1- or 2-dimensional"),
        (pd.DataFrame(index=range(3)), "at least one column"),
        ({}, "at least one column"),
        ({"a": [1, 2, 1], "b": [1, 2]}, "dict of columns of different lengths"),
        ({"a": np.zeros((3, 2))}, r"sensitive_features\['a'\] must be 1-dim"),
        (["a", "b"], "sensitive_features has 2 rows but X has 3"),
    ],
)
def test_bad_shapes_are_value_errors(values, match):
    with pytest.raises(ValueError, match=match):
        encode_sensitive_features(values, 3)


def test_errors_name_the_argument_given():
    with pytest.raises(ValueError, match="^y has 2 rows but X_val has 3"):
        encode_sensitive_features([0, 1], 3, name="y", reference="X_val")
    with pytest.raises(TypeError, match="^y holds values that cannot be compared"):
        encode_sensitive_features(np.array(["a", 1], dtype=object), 2, name="y")


def test_does_not_modify_input():
    series = pd.Series(VALUES, index=[10, 3, 7, 0, 99])
    frame = pd.DataFrame({"s": VALUES, "t": [1, 2, 1, 2, 1]}, index=[5, 4, 3, 2, 1])
    array = np.array(VALUES)
    columns = {"s": list(VALUES), "t": series}
    copies = series.copy(), frame.copy(), array.copy(), dict(columns)
    for value in (series, frame, array, columns):
        encode_sensitive_features(value, 5)
    pd.testing.assert_series_equal(series, copies[0])
    pd.testing.assert_frame_equal(frame, copies[1])
    np.testing.assert_array_equal(array, copies[2])
    assert columns["s"] == copies[3]["s"] and columns["t"] is series


def test_sensitive_frame_names_columns_like_fairlearn():
    assert list(sensitive_frame([1, 2]).columns) == ["sensitive_feature"]
    assert list(sensitive_frame(pd.Series([1, 2], name="sex")).columns) == ["sex"]
    assert list(sensitive_frame(np.zeros((2, 2))).columns) == [
        "sensitive_feature_0",
        "sensitive_feature_1",
    ]
    frame = sensitive_frame({"sex": [1, 2], "race": ["a", "b"]})
    assert list(frame.columns) == ["sex", "race"]
    assert frame["sex"].dtype == np.int64
    assert frame.index.equals(pd.RangeIndex(2))
    # No length check without n_samples.
    assert len(sensitive_frame([1, 2, 3])) == 3


def test_stratum_ids_round_trip():
    groups = np.array([0, 2, 1, 2, 0])
    labels = np.array([1, 0, 2, 2, 0])
    strata = stratum_ids(groups, labels, 3)
    assert strata.dtype == np.int64
    np.testing.assert_array_equal(strata, [1, 6, 5, 8, 0])
    back = np.divmod(strata, 3)
    np.testing.assert_array_equal(back[0], groups)
    np.testing.assert_array_equal(back[1], labels)


# ------------------------------------------- same rules at every entry point


class Fitted(BaseEstimator):
    """A FORML stand-in: known weights and weighted losses, no training."""

    def fit(self, X, y, sensitive_features=None):
        self.sample_weights_ = np.linspace(0.5, 1.5, len(y))
        self.validation_mask_ = np.zeros(len(y), dtype=bool)
        self.weighted_loss_ema_ = np.arange(len(y), dtype=float)
        return self


SEX = ["f", "m", "f", "m", "f", "m"]
RACE = [1, 1, 2, 2, 1, 1]
Y = [0, 1, 1, 0, 1, 0]


def test_every_entry_point_takes_a_dict_of_columns():
    columns = {"sex": SEX, "race": RACE}
    frame = pd.DataFrame(columns)
    # fairness_report
    by_dict = fairness_report(Y, Y, sensitive_features=columns).by_group
    by_frame = fairness_report(Y, Y, sensitive_features=frame).by_group
    pd.testing.assert_frame_equal(by_dict, by_frame)
    assert by_dict.index.names == ["sex", "race"]
    # the weight audit
    model = Fitted().fit(np.zeros((6, 1)), Y)
    pd.testing.assert_frame_equal(
        weight_summary(model, sensitive_features=columns, y=Y),
        weight_summary(model, sensitive_features=frame, y=Y),
    )
    # the sampler
    sampler = FORMLSampler(Fitted(), n_remove=1, keep_groups=False)
    X_res, _ = sampler.fit_resample(np.zeros((6, 1)), Y, sensitive_features=columns)
    assert len(X_res) == 5


@pytest.mark.parametrize("value", [1, "sex", {0, 1}])
def test_every_entry_point_rejects_a_scalar_alike(value):
    model = Fitted().fit(np.zeros((6, 1)), Y)
    calls = [
        lambda: fairness_report(Y, Y, sensitive_features=value),
        lambda: weight_summary(model, sensitive_features=value, y=Y),
        lambda: FORMLSampler(Fitted(), n_remove=1).fit_resample(
            np.zeros((6, 1)), Y, sensitive_features=value
        ),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="^sensitive_features must be an array"):
            call()


def test_sampler_cells_are_the_strata():
    # Rows 0 and 3 are alone in their (group, label) cell: never removed.
    groups = ["a", "a", "a", "b", "b", "b"]
    y = [1, 0, 0, 0, 1, 1]
    # The stand-in's weighted loss is the row position: lowest first, but
    # rows 0, 2 (then) and 3 are the last of their cell.
    sampler = FORMLSampler(Fitted(), n_remove=2)
    sampler.fit_resample(np.zeros((6, 1)), y, sensitive_features=groups)
    assert sampler.removed_indices_.tolist() == [1, 4]
    with pytest.raises(ValueError, match="one row of each of the 4"):
        FORMLSampler(Fitted(), n_remove=3).fit_resample(
            np.zeros((6, 1)), y, sensitive_features=groups
        )
