import numpy as np
import pandas as pd
import pytest

from skforml._validation import check_sample_weight_nonnegative, encode_groups

VALUES = ["b", "a", "b", "c", "a"]
# Codes follow the sorted group names; names are listed in code order.
CODES = [1, 0, 1, 2, 0]
NAMES = ["a", "b", "c"]


@pytest.mark.parametrize(
    "make",
    [np.array, list, lambda v: np.array(v, dtype=object), tuple],
    ids=["ndarray", "list", "object-array", "tuple"],
)
def test_encode_groups_one_column(make):
    codes, names = encode_groups(make(VALUES), 5)
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, CODES)
    assert names == NAMES
    # Decoding gives back the input.
    assert [names[c] for c in codes] == VALUES


def test_encode_groups_integer_values():
    codes, names = encode_groups(np.array([5, 3, 3, 5, 9]), 5)
    np.testing.assert_array_equal(codes, [1, 0, 0, 1, 2])
    assert names == [3, 5, 9]


def test_encode_groups_series_with_non_default_index_is_positional():
    series = pd.Series(VALUES, index=[10, 3, 7, 0, 99], name="sex")
    codes, names = encode_groups(series, 5)
    np.testing.assert_array_equal(codes, CODES)
    assert names == NAMES


def test_encode_groups_dataframe_forms_intersectional_groups():
    frame = pd.DataFrame(
        {"sex": ["m", "f", "m", "f", "m"], "race": [1, 1, 2, 2, 1]},
        index=[4, 3, 2, 1, 0],
    )
    codes, names = encode_groups(frame, 5)
    assert all(isinstance(name, tuple) and len(name) == 2 for name in names)
    assert len(names) == 4
    decoded = [names[c] for c in codes]
    expected = list(zip(frame["sex"], frame["race"]))
    assert decoded == expected
    # Rows with the same pair share a code, different pairs differ.
    assert codes[0] == codes[4]
    assert len(set(codes[:4])) == 4


def test_encode_groups_two_column_array():
    values = np.array([[0, 1], [1, 1], [0, 0], [0, 1]])
    codes, names = encode_groups(values, 4)
    assert len(names) == 3
    assert codes[0] == codes[3]
    assert [tuple(int(v) for v in names[c]) for c in codes] == [
        (0, 1),
        (1, 1),
        (0, 0),
        (0, 1),
    ]


@pytest.mark.parametrize(
    "values",
    [
        np.array([0.0, np.nan, 1.0]),
        ["a", None, "b"],
        pd.Series(["a", "b", np.nan]),
        pd.DataFrame({"a": [1, 2, 1], "b": ["x", None, "y"]}),
    ],
    ids=["nan-float", "none-list", "nan-series", "none-in-frame"],
)
def test_encode_groups_missing_values_raise(values):
    with pytest.raises(ValueError, match="sensitive_features.*missing"):
        encode_groups(values, 3)


@pytest.mark.parametrize("value", [3, 1.5, "group", b"group", np.int64(2)])
def test_encode_groups_scalar_raises_type_error(value):
    with pytest.raises(TypeError, match="sensitive_features"):
        encode_groups(value, 3)


def test_encode_groups_length_mismatch():
    with pytest.raises(ValueError, match="sensitive_features has 3 rows but X has 4"):
        encode_groups(["a", "b", "a"], 4)


def test_encode_groups_does_not_modify_input():
    series = pd.Series(VALUES, index=[10, 3, 7, 0, 99])
    frame = pd.DataFrame({"s": VALUES, "t": [1, 2, 1, 2, 1]}, index=[5, 4, 3, 2, 1])
    array = np.array(VALUES)
    copies = series.copy(), frame.copy(), array.copy()
    for value in (series, frame, array):
        encode_groups(value, 5)
    pd.testing.assert_series_equal(series, copies[0])
    pd.testing.assert_frame_equal(frame, copies[1])
    np.testing.assert_array_equal(array, copies[2])


def test_check_sample_weight_nonnegative():
    assert check_sample_weight_nonnegative(None, 3) is None
    out = check_sample_weight_nonnegative([1, 0, 2], 3)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1, 0, 2])
    with pytest.raises(ValueError, match="sample_weight has shape"):
        check_sample_weight_nonnegative([1, 2], 3)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        check_sample_weight_nonnegative([1, -1, 2], 3)
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        check_sample_weight_nonnegative([1, np.inf, 2], 3)
    with pytest.raises(ValueError, match="sample_weight is zero"):
        check_sample_weight_nonnegative([0, 0, 0], 3)
