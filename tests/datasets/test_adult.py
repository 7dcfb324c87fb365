import socket

import numpy as np
import pandas as pd
import pytest

from skforml.datasets import load_adult, load_digits_noisy, make_adult_preprocessor
from skforml.datasets._adult import _read_bundle, _read_uci_adult, _write_bundle
from skforml.datasets._make_adult_bundle import make_adult_bundle

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]

# Rows in the exact format of the original UCI files.
UCI_TRAIN = """\
39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K
52, Self-emp-inc, 287927, HS-grad, 9, Married-civ-spouse, Exec-managerial, Wife, White, Female, 15024, 0, 40, United-States, >50K
54, ?, 180211, Some-college, 10, Married-civ-spouse, ?, Husband, Asian-Pac-Islander, Male, 0, 0, 60, South, >50K

"""  # noqa: E501
UCI_TEST = """\
|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, United-States, <=50K.
18, ?, 103497, Some-college, 10, Never-married, ?, Own-child, White, Female, 0, 0, 30, ?, <=50K.
44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, Black, Male, 7688, 0, 40, United-States, >50K.
"""  # noqa: E501


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_read_uci_adult_parses_original_format(tmp_path):
    path = tmp_path / "adult.test"
    path.write_text(UCI_TEST)
    frame = _read_uci_adult(path)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 3  # junk first line skipped
    assert frame["income"].tolist() == ["<=50K", "<=50K", ">50K"]  # '.' stripped
    assert frame["age"].tolist() == [25, 18, 44]
    assert frame["capital_gain"].dtype == np.int64
    assert frame["workclass"].isna().tolist() == [False, True, False]
    assert frame["native_country"].isna().tolist() == [False, True, False]
    # Blanks after the commas are gone.
    assert frame.loc[0, "occupation"] == "Machine-op-inspct"


def test_read_uci_adult_accepts_a_buffer_and_trailing_blank_lines():
    import io

    frame = _read_uci_adult(io.StringIO(UCI_TRAIN))
    assert len(frame) == 3
    assert frame.loc[2, ["workclass", "occupation"]].isna().all()
    assert frame.loc[2, "race"] == "Asian-Pac-Islander"


def test_read_uci_adult_rejects_unknown_labels():
    import io

    bad = UCI_TRAIN.replace("<=50K", "maybe")
    with pytest.raises(ValueError, match="Unexpected income label 'maybe'"):
        _read_uci_adult(io.StringIO(bad))


def test_bundle_round_trip(tmp_path):
    (tmp_path / "adult.data").write_text(UCI_TRAIN)
    (tmp_path / "adult.test").write_text(UCI_TEST)
    out = tmp_path / "adult.csv.gz"
    written = make_adult_bundle(
        tmp_path / "adult.data", tmp_path / "adult.test", out, check=False
    )
    assert len(written) == 6
    pd.testing.assert_frame_equal(_read_bundle(out), written)
    # Reproducible bytes: no timestamp in the gzip header.
    first = out.read_bytes()
    _write_bundle(written, out)
    assert out.read_bytes() == first


def test_bundle_script_checks_row_counts(tmp_path):
    (tmp_path / "adult.data").write_text(UCI_TRAIN)
    (tmp_path / "adult.test").write_text(UCI_TEST)
    with pytest.raises(ValueError, match="train file has 3 rows, expected 32561"):
        make_adult_bundle(
            tmp_path / "adult.data", tmp_path / "adult.test", tmp_path / "x.csv.gz"
        )


def test_bundled_raw_data():
    raw = _read_bundle()
    assert raw.shape == (48842, 15)
    assert list(raw.columns) == COLUMNS
    assert (raw["income"] == ">50K").mean() == pytest.approx(0.2393, abs=1e-3)
    assert len(raw.dropna()) == 45222  # the documented count of complete rows
    assert set(raw["sex"]) == {"Male", "Female"}
    assert raw["race"].nunique() == 5
    # Train rows first, then the test rows, in the original order.
    assert raw.loc[0, "fnlwgt"] == 77516
    assert raw.loc[32561, "fnlwgt"] == 226802


def test_load_adult_arrays(no_network):
    adult = load_adult()
    X, y = adult.data, adult.target
    assert X.dtype == np.float32 and X.shape == (48842, 108)
    assert y.dtype.kind == "i" and set(np.unique(y)) == {0, 1}
    assert y.mean() == pytest.approx(0.24, abs=0.01)
    assert len(adult.feature_names) == X.shape[1]
    assert adult.feature_names[0] == "age"
    assert "workclass_missing" in adult.feature_names
    assert "sex_Female" in adult.feature_names
    np.testing.assert_allclose(X[:, 0].mean(), 0.0, atol=1e-4)
    np.testing.assert_allclose(X[:, 0].std(), 1.0, atol=1e-3)
    # One-hot blocks sum to one per row: one per categorical column.
    assert np.allclose(X[:, 6:].sum(axis=1), 8)
    assert list(adult.sensitive.columns) == ["sex", "race"]
    assert adult.sensitive.shape == (48842, 2)
    assert "frame" not in adult
    assert "CC BY 4.0" in adult.DESCR


def test_load_adult_frame(no_network):
    adult = load_adult(as_frame=True)
    assert adult.data.shape == (48842, 14)
    assert list(adult.frame.columns) == COLUMNS
    assert adult.target.name == "income"
    pd.testing.assert_series_equal(adult.frame["income"], adult.target)
    assert adult.feature_names == COLUMNS[:-1]
    assert adult.data["age"].dtype == np.int64
    assert adult.data["workclass"].isna().sum() == 2799


def test_drop_sensitive():
    frame = load_adult(as_frame=True, drop_sensitive=True)
    assert "sex" not in frame.data and "race" not in frame.data
    assert "sex" not in frame.frame
    assert list(frame.sensitive.columns) == ["sex", "race"]
    arrays = load_adult(drop_sensitive=True)
    assert arrays.data.shape == (48842, 101)
    assert not any(n.startswith(("sex_", "race_")) for n in arrays.feature_names)


def test_preprocessor_handles_unseen_categories():
    adult = load_adult(as_frame=True)
    pre = make_adult_preprocessor().fit(adult.data.iloc[:1000])
    row = adult.data.iloc[:1].copy()
    row["native_country"] = "Atlantis"
    out = pre.transform(row)
    names = list(pre.get_feature_names_out())
    assert out.shape == (1, len(names))
    country = [i for i, n in enumerate(names) if n.startswith("native_country_")]
    assert out[0, country].sum() == 0


def test_digits_loader_is_offline(no_network):
    assert load_digits_noisy(random_state=0).X_train.shape == (1347, 64)
