"""The UCI Adult census income data, bundled with the package."""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import Bunch

__all__ = ["load_adult", "make_adult_preprocessor"]

BUNDLE_PATH = Path(__file__).parent / "data" / "adult.csv.gz"

# Column order of the original UCI files (adult.names), with snake_case names.
_COLUMNS = [
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
_NUMERIC = [
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
]
_TARGET = "income"
_SENSITIVE = ["sex", "race"]
_LABELS = ("<=50K", ">50K")
_DTYPES = {c: ("int64" if c in _NUMERIC else "str") for c in _COLUMNS}

_DESCR = """\
Adult (census income)
---------------------

Predict whether a person's income exceeds $50,000 a year from the 1994 US
Census. 48,842 rows: the 32,561 rows of UCI's ``adult.data`` followed by the
16,281 rows of ``adult.test``, in their original order. 14 features:

- numeric: age, fnlwgt (census sampling weight), education_num,
  capital_gain, capital_loss, hours_per_week;
- categorical: workclass, education, marital_status, occupation,
  relationship, race, sex, native_country. Unknown values ('?' in the
  original files) are missing; only workclass, occupation and native_country
  have any.

Target ``income``: 1 for '>50K' (about 24% of rows), 0 for '<=50K'.
Sensitive attributes: ``sex`` and ``race``.

Source: UCI Machine Learning Repository, Becker, B. and Kohavi, R. (1996),
"Adult", https://doi.org/10.24432/C5XW20. Licence: CC BY 4.0.
"""


def _read_uci_adult(path_or_buffer):
    """Parse one file in the original UCI format (``adult.data``/``.test``).

    Handles the quirks of the originals: no header, ``", "`` separators,
    ``'?'`` for unknown values, a junk first line starting with ``'|'`` in
    ``adult.test``, a trailing ``'.'`` on the labels of ``adult.test`` and
    blank lines at the end. Returns a DataFrame with the columns of
    ``_COLUMNS``, the label kept as the strings ``'<=50K'``/``'>50K'``.
    """
    frame = pd.read_csv(
        path_or_buffer,
        header=None,
        names=_COLUMNS,
        sep=",",
        skipinitialspace=True,
        na_values=["?"],
        keep_default_na=False,
        comment="|",
        skip_blank_lines=True,
        dtype=_DTYPES,
    )
    frame[_TARGET] = frame[_TARGET].str.rstrip(".")
    bad = ~frame[_TARGET].isin(_LABELS)
    if bad.any():
        raise ValueError(
            f"Unexpected income label {frame[_TARGET][bad].iloc[0]!r}; expected "
            f"one of {_LABELS}, optionally followed by '.'."
        )
    return frame


def _write_bundle(frame, path):
    """Write a frame from ``_read_uci_adult`` as the bundled gzipped CSV."""
    # mtime=0 keeps the gzip header, hence the file, reproducible.
    frame.to_csv(
        path,
        index=False,
        na_rep="",
        compression={"method": "gzip", "compresslevel": 9, "mtime": 0},
    )


def _read_bundle(path=BUNDLE_PATH):
    """Read the bundled CSV back into the frame ``_read_uci_adult`` returns."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=_DTYPES)


def make_adult_preprocessor():
    """Build the preprocessing used by :func:`load_adult` for arrays.

    Numeric columns are standardized; the other columns get their missing
    values replaced by the category ``"missing"`` and are one-hot encoded.
    Columns are selected by dtype, so the transformer works on the raw
    feature frame of :func:`load_adult` with or without the sensitive
    columns. Categories unseen during ``fit`` are encoded as all zeros.

    Returns
    -------
    preprocessor : :class:`~sklearn.compose.ColumnTransformer`
        An unfitted transformer with dense output and plain feature names
        such as ``"age"`` and ``"sex_Female"``.

    Examples
    --------
    >>> from skforml.datasets import load_adult, make_adult_preprocessor
    >>> adult = load_adult(as_frame=True)
    >>> Xt = make_adult_preprocessor().fit_transform(adult.data)
    >>> Xt.shape
    (48842, 108)

    """
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), make_column_selector(dtype_include="number")),
            ("categorical", categorical, make_column_selector(dtype_exclude="number")),
        ],
        verbose_feature_names_out=False,
    )


def load_adult(*, as_frame=False, drop_sensitive=False):
    """Load the UCI Adult census income data shipped with skforml.

    The data are read from a compressed file inside the package; no network
    access is needed. Training and test files of the original are combined
    (48,842 rows); see ``DESCR`` for the provenance and licence.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, ``data`` is the raw feature DataFrame (numeric columns as
        int64, categorical ones as strings with missing values as NaN) and
        ``frame`` holds the features and the target. If False, ``data`` is
        a float32 array made by fitting :func:`make_adult_preprocessor` on
        all rows (about 100 columns). For a held-out evaluation without
        leakage, use ``as_frame=True`` and put the preprocessor in a
        pipeline instead.
    drop_sensitive : bool, default=False
        If True, the ``sex`` and ``race`` columns are left out of the
        features. They are still returned in ``sensitive``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (48842, n_features) or DataFrame
            The features, preprocessed or raw depending on ``as_frame``.
        target : ndarray or Series of shape (48842,)
            1 if the income is above $50K, else 0. A Series named
            ``"income"`` if ``as_frame=True``.
        sensitive : DataFrame of shape (48842, 2)
            The ``sex`` and ``race`` of each row, as strings.
        feature_names : list of str
            Names of the columns of ``data``.
        frame : DataFrame of shape (48842, n_features + 1)
            Only if ``as_frame=True``: ``data`` with the ``income`` target as
            its last column.
        DESCR : str
            Description of the dataset.

    Examples
    --------
    >>> from skforml.datasets import load_adult
    >>> adult = load_adult()
    >>> adult.data.shape, adult.data.dtype
    ((48842, 108), dtype('float32'))
    >>> round(float(adult.target.mean()), 2)
    0.24
    >>> list(adult.sensitive.columns)
    ['sex', 'race']

    """
    raw = _read_bundle()
    target = (raw[_TARGET] == _LABELS[1]).astype(np.int64)
    sensitive = raw[_SENSITIVE].copy()
    drop = [_TARGET, *_SENSITIVE] if drop_sensitive else [_TARGET]
    features = raw.drop(columns=drop)

    result = Bunch(sensitive=sensitive, DESCR=_DESCR)
    if as_frame:
        result.update(
            data=features,
            target=target,
            feature_names=list(features.columns),
            frame=pd.concat([features, target], axis=1),
        )
    else:
        preprocessor = make_adult_preprocessor()
        X = preprocessor.fit_transform(features).astype(np.float32)
        result.update(
            data=X,
            target=target.to_numpy(),
            feature_names=list(preprocessor.get_feature_names_out()),
        )
    return result
