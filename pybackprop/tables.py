"""Reading data files into a table of features and labels (the command line's data).

:func:`read_data` reads a CSV file with a header row (``.tsv``/``.tab``:
tab-separated), a ``.npy`` file holding one 2-D array, or an ``.npz`` file
holding arrays ``X`` and ``y`` (or a single 2-D array) into a :class:`Table`:
the features ``X`` as float64 (n_samples, n_features), the label column
``y`` as read, and the column names. :func:`encode_classes` turns labels of
any kind into class indices 0..k-1 and :func:`regression_targets` checks
numeric targets.

Every problem with a file raises :class:`DataFileError` (a ``ValueError``)
with one line that names the file, and where it helps the line and column.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Callable, SupportsFloat

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .io import READ_ERRORS

__all__ = ["DataFileError", "Table", "read_data", "encode_classes", "regression_targets",
           "check_exists", "one_line_message"]


class DataFileError(ValueError):
    """A data or model file that cannot be used; the message names the file."""


def check_exists(path: str, what: str) -> None:
    """Raise :class:`DataFileError` unless ``path`` is an existing file.

    Parameters
    ----------
    path : str
    what : str
        What the file is, for the message (e.g. ``"data file"``).
    """
    if not os.path.exists(path):
        raise DataFileError(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise DataFileError(f"{what} {path!r} is a directory, not a file")


def one_line_message(exc: BaseException) -> str:
    """An exception as one line: ``file: reason`` for an OS error, else its message.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
        The message with its whitespace collapsed (the exception's type name
        when it has no message).
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class Table:
    """Features, optional targets and names read from a data file.

    Attributes
    ----------
    X : ndarray, shape (n_samples, n_features), float64
    y : ndarray or None
        The label column: shape (n_samples,) (strings for CSV, as read) or
        (n_samples, k) numeric for ``.npz`` files with a 2-D ``y``.
    feature_names : list of str
    label_name : str or None
    """

    def __init__(self, X: NDArray[np.float64], y: np.ndarray | None,
                 feature_names: list[str], label_name: str | None) -> None:
        self.X, self.y, self.feature_names, self.label_name = X, y, feature_names, label_name


def _label_index(label: str | None, names: list[str] | None, n_columns: int, path: str) -> int:
    """Column index of ``label``: a header name, or an integer index (negative: from the end)."""
    if label is None:
        return n_columns - 1
    if names is not None and label in names:
        return names.index(label)
    try:
        index = int(label)
    except ValueError:
        if names is None:
            raise DataFileError(f"{path} has no column names: the label must be a column index, "
                                f"got {label!r}") from None
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise DataFileError(f"{path} has no column named {label!r}; columns: {shown}") from None
    if not -n_columns <= index < n_columns:
        raise DataFileError(f"label column index {index} is out of range for the {n_columns} "
                            f"columns of {path}")
    return index % n_columns


def _numeric_matrix(rows: list[list[str]], columns: list[int], names: list[str], path: str,
                    first_line: int) -> NDArray[np.float64]:
    """float64 (n, len(columns)) from string rows; the error names the offending cell."""
    try:
        return np.array([[row[c] for c in columns] for row in rows], dtype=np.float64).reshape(
            len(rows), len(columns))
    except ValueError:
        pass
    for i, row in enumerate(rows):
        for c in columns:
            try:
                float(row[c])
            except ValueError:
                raise DataFileError(f"{path} line {first_line + i}, column {names[c]!r}: "
                                    f"{row[c]!r} is not a number") from None
    raise DataFileError(f"{path}: cannot convert the features to numbers")  # pragma: no cover


def _read_csv(path: str, label: str | None, with_label: bool) -> Table:
    delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            lines = [(number, row) for number, row in enumerate(reader, 1)
                     if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise DataFileError(f"{path} is not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise DataFileError(f"{path} is not a valid CSV file ({exc})") from None
    if not lines:
        raise DataFileError(f"{path} is empty (expected a header row and data rows)")
    names = [cell.strip() for cell in lines[0][1]]
    rows = lines[1:]
    if not rows:
        raise DataFileError(f"{path} has a header row but no data rows")
    for number, row in rows:
        if len(row) != len(names):
            raise DataFileError(f"{path} line {number} has {len(row)} fields, but the header has "
                                f"{len(names)}")
    if all(_is_number(name) for name in names):
        raise DataFileError(f"{path}: the first row looks like data ({','.join(names[:3])}...); "
                            "a CSV file needs a header row with column names")
    values = [[cell.strip() for cell in row] for _, row in rows]
    label_column = _label_index(label, names, len(names), path) if with_label else None
    feature_columns = [c for c in range(len(names)) if c != label_column]
    if not feature_columns:
        raise DataFileError(f"{path} has no feature columns besides the label")
    X = _numeric_matrix(values, feature_columns, names, path, rows[0][0])
    y = None
    if label_column is not None:
        y = np.array([row[label_column] for row in values])
        empty = np.flatnonzero(y == "")
        if empty.size:
            raise DataFileError(f"{path} line {rows[empty[0]][0]}: the label "
                                f"{names[label_column]!r} is empty")
    return Table(X, y, [names[c] for c in feature_columns],
                 None if label_column is None else names[label_column])


def _check_numeric(array: np.ndarray, what: str, path: str) -> NDArray[np.float64]:
    if array.dtype.kind not in "biuf":
        raise DataFileError(f"{what} in {path} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float64)


def _read_array_file(path: str, label: str | None, with_label: bool) -> Table:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays: dict[str | None, np.ndarray] = {key: loaded[key] for key in loaded.files}
        else:
            arrays = {None: loaded}
    except READ_ERRORS as exc:
        raise DataFileError(f"cannot read {path}: {one_line_message(exc)}") from None
    if "X" in arrays and "y" in arrays:
        if label is not None:
            raise DataFileError(f"{path} holds separate arrays X and y; --label applies only to a "
                                "file with a single 2-D array")
        X = arrays["X"]
        if X.ndim != 2:
            raise DataFileError(f"X in {path} must be 2-D (n_samples, n_features), "
                                f"got shape {X.shape}")
        X = _check_numeric(X, "X", path)
        y = arrays["y"] if with_label else None
        if y is not None and (y.ndim not in (1, 2) or y.shape[0] != X.shape[0]):
            raise DataFileError(f"y in {path} must have one entry or row per sample of X "
                                f"({X.shape[0]}), got shape {y.shape}")
        names = [f"x{i}" for i in range(X.shape[1])]
        return Table(X, y, names, "y" if y is not None else None)
    if len(arrays) != 1:
        raise DataFileError(f"{path} must hold arrays 'X' and 'y', or a single 2-D array; it holds "
                            f"{', '.join(repr(k) for k in arrays) or 'nothing'}")
    (table,) = arrays.values()
    if table.ndim != 2:
        raise DataFileError(f"{path} must hold a 2-D array (samples x columns), "
                            f"got shape {table.shape}")
    n_columns = table.shape[1]
    label_column = _label_index(label, None, n_columns, path) if with_label else None
    if label_column is not None and n_columns < 2:
        raise DataFileError(f"{path} has a single column: no features besides the label")
    feature_columns = [c for c in range(n_columns) if c != label_column]
    X = _check_numeric(table[:, feature_columns], "the data", path)
    y = None if label_column is None else table[:, label_column]
    return Table(X, y, [f"column {c}" for c in feature_columns],
                 None if label_column is None else f"column {label_column}")


def read_data(path: str, label: str | None = None, with_label: bool = True) -> Table:
    """Read a data file into a :class:`Table`.

    Parameters
    ----------
    path : str
        A CSV file with a header row (``.tsv``: tab-separated), a ``.npy``
        file holding one 2-D array, or an ``.npz`` file holding arrays ``X``
        (n_samples, n_features) and ``y``, or a single 2-D array.
    label : str or None
        The target column: a CSV column name, or an integer index (negative
        counts from the end); default the last column.  Not allowed for an
        ``.npz`` file with separate ``X`` and ``y``.
    with_label : bool, default True
        False for prediction: every column is a feature unless ``label`` is
        given, in which case that column is dropped.

    Returns
    -------
    Table

    Raises
    ------
    DataFileError
        A ``ValueError`` whose message names the file and what is wrong with it.
    """
    check_exists(path, "data file")
    with_label = with_label or label is not None
    if path.lower().endswith((".npy", ".npz")):
        table = _read_array_file(path, label, with_label)
    else:
        table = _read_csv(path, label, with_label)
    if table.X.shape[0] == 0:
        raise DataFileError(f"{path} has no samples")
    if table.X.shape[1] == 0:
        raise DataFileError(f"{path} has no feature columns")
    bad = np.argwhere(~np.isfinite(table.X))
    if bad.size:
        row, col = bad[0]
        raise DataFileError(f"{path}: feature {table.feature_names[col]!r} of sample {row} is "
                            f"{table.X[row, col]} (NaN and infinity are not allowed)")
    return table


def encode_classes(values: ArrayLike, path: str,
                   label_name: str | None) -> tuple[list[Any], NDArray[np.int64]]:
    """Distinct label values (sorted) and each sample's class index 0..k-1.

    Labels read as text (a CSV column) stay text: the classes are the
    distinct strings, so ``"02134"`` and ``"2134"`` are two classes, a
    20-digit identifier keeps every digit, and ``"5"`` is written back as
    ``5``, never ``5.0``.  Text that all reads as numbers is ordered by
    value (``"2"`` before ``"10"``), the text breaking ties.  Numeric labels
    (``.npy``/``.npz``) are integers, kept exactly, or floats (integral
    floats below 2**53 become integers); booleans become 0 and 1.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        The label column.
    path, label_name : str
        The file and the column, for the messages.

    Returns
    -------
    classes : list
        The k distinct labels, sorted, as Python scalars (``str`` for text).
    y : ndarray of shape (n_samples,), int64
        Each sample's class index 0..k-1.

    Raises
    ------
    DataFileError
        Labels that are not one per sample, NaN or infinite numbers, of an
        unsupported type, a single class, or so many distinct values that
        they look like a numeric target.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataFileError(f"classification needs one label per sample; the labels in {path} "
                            f"have shape {values.shape}")
    if values.dtype.kind == "S":
        values = values.astype(np.str_)
    if values.dtype.kind == "U":
        distinct, y = np.unique(values, return_inverse=True)
        classes: list[Any] = sorted((str(c) for c in distinct), key=_text_order(distinct))
        # np.unique sorted by code point; renumber to the order of `classes`.
        rank = {c: k for k, c in enumerate(classes)}
        y = np.array([rank[str(c)] for c in distinct], dtype=np.int64)[y.reshape(-1)]
    else:
        if values.dtype.kind == "b":
            values = values.astype(np.int64)
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)):
                raise DataFileError(f"the labels {label_name!r} in {path} contain NaN or infinity")
            if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
                values = values.astype(np.int64)
        if values.dtype.kind not in "iuf":
            raise DataFileError(f"unsupported label type {values.dtype} in {path}")
        distinct, y = np.unique(values, return_inverse=True)
        classes = [c.item() for c in distinct]
    if len(classes) < 2:
        raise DataFileError(f"the label column {label_name!r} of {path} has a single value "
                            f"({classes[0]!r}); classification needs at least 2 classes")
    n = len(values)
    if len(classes) > 20 and len(classes) > n / 2:
        raise DataFileError(f"the label column {label_name!r} of {path} has {len(classes)} "
                            f"distinct values for {n} samples: that is not a set of classes; for "
                            "a numeric target use --task regression")
    return classes, y.reshape(-1).astype(np.int64)


def _text_order(labels: np.ndarray) -> Callable[[str], tuple[Any, ...]]:
    """Sort key of text labels: by value when every label reads as a finite number, else as text."""
    try:
        numeric = all(math.isfinite(float(label)) for label in labels)
    except ValueError:
        numeric = False
    return (lambda text: (float(text), text)) if numeric else (lambda text: (text,))


def regression_targets(values: ArrayLike, path: str,
                       label_name: str | None) -> NDArray[np.float64]:
    """Regression targets as float64, checked to be numbers and finite.

    Parameters
    ----------
    values : array-like of shape (n_samples,) or (n_samples, n_out)
        The target column (strings as read from a CSV file) or columns.
    path, label_name : str
        The file and the column, for the messages.

    Returns
    -------
    ndarray of float64, the shape of ``values``

    Raises
    ------
    DataFileError
        A value that is not a number, NaN or infinity.
    """
    array = np.asarray(values)
    if array.dtype.kind in "US":
        try:
            array = array.astype(np.float64)
        except ValueError:
            bad = next(v for v in array.reshape(-1) if not _is_number(v))
            raise DataFileError(f"regression needs numeric targets; the label {label_name!r} in "
                                f"{path} has the value {bad!r}") from None
    targets = _check_numeric(array, f"the target {label_name!r}", path)
    if not np.all(np.isfinite(targets)):
        raise DataFileError(f"the target {label_name!r} in {path} contains NaN or infinity")
    return targets


def _is_number(text: str | SupportsFloat) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

