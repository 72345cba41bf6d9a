"""Fuzz target: the command line's table reader, ``pybackprop.tables``.

The bytes are written as a data file: ``.npy`` if they start with NumPy's
magic, ``.npz`` if with a zip's ``PK``, otherwise both ``.csv`` and
``.tsv``.  Each file is read as ``train`` reads it (default label column,
the first column named as the label, ``--label 0``) and as ``predict`` reads
it (no label); the labels then go through ``encode_classes`` and
``regression_targets``, as for ``--task classification`` and
``regression``.

Documented outcomes: a :class:`~pybackprop.tables.Table` with ``X``
(n_samples, n_features) float64, finite, one name per feature column and
one label per sample; or :class:`~pybackprop.tables.DataFileError`.  Any
other exception, and any table breaking those rules, is a finding.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_common  # noqa: E402

from pybackprop import tables  # noqa: E402

TARGET = "tables"
_scratch = fuzz_common.scratch_directory()


def _labels_to_try(data: bytes) -> list:
    """(label, with_label) pairs: as train and predict would be called."""
    first_line = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    first_name = first_line.split(",", 1)[0].split("\t", 1)[0].strip()
    return [(None, True), (first_name or "x", True), ("0", True), (None, False)]


def _check_table(table, path: str, with_label: bool) -> None:
    X = table.X
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 2:
        raise fuzz_common.Finding(f"{path}: X is not a 2-D float64 array: {type(X)} {X.dtype}")
    n_samples, n_features = X.shape
    if n_samples == 0 or n_features == 0 or not np.all(np.isfinite(X)):
        raise fuzz_common.Finding(f"{path}: X has shape {X.shape} or non-finite values")
    if len(table.feature_names) != n_features:
        raise fuzz_common.Finding(f"{path}: {len(table.feature_names)} names for {n_features} "
                                  "features")
    if not with_label:
        if table.y is not None:
            raise fuzz_common.Finding(f"{path}: labels read for predict")
        return
    y = np.asarray(table.y)
    if y.ndim not in (1, 2) or y.shape[0] != n_samples:
        raise fuzz_common.Finding(f"{path}: labels of shape {y.shape} for {n_samples} samples")
    try:
        classes, codes = tables.encode_classes(table.y, path, table.label_name)
    except tables.DataFileError:
        pass
    else:
        if codes.shape != (n_samples,) or codes.min() < 0 or codes.max() >= len(classes) \
                or len(classes) < 2:
            raise fuzz_common.Finding(f"{path}: class codes {codes} for classes {classes}")
    try:
        targets = tables.regression_targets(table.y, path, table.label_name)
    except tables.DataFileError:
        pass
    else:
        if targets.dtype != np.float64 or targets.shape != y.shape or \
                not np.all(np.isfinite(targets)):
            raise fuzz_common.Finding(f"{path}: regression targets {targets!r}")


def check(data: bytes) -> None:
    if data.startswith(b"\x93NUMPY"):
        suffixes = [".npy"]
    elif data.startswith(b"PK"):
        suffixes = [".npz"]
    else:
        suffixes = [".csv", ".tsv"]
    for suffix in suffixes:
        path = fuzz_common.write_file(_scratch, "data" + suffix, data)
        for label, with_label in _labels_to_try(data):
            try:
                table = tables.read_data(path, label, with_label=with_label)
            except tables.DataFileError:
                continue
            _check_table(table, path, with_label or label is not None)


if __name__ == "__main__":
    fuzz_common.fuzz(TARGET, check)
