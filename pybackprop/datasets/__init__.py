"""Small datasets and data helpers for examples, tests and benchmarks.

Everything here needs only NumPy.

- :func:`load_digits`: the 1,797-image handwritten digits set, shipped inside
  the package (8x8 images, 64 features, 10 classes).
- :func:`train_test_split`, :class:`StandardScaler`, :func:`standardize`:
  seeded splitting (optionally stratified) and feature scaling fitted on the
  training part only.
- :func:`make_xor`, :func:`make_spirals`, :func:`make_moons`: seeded
  two-dimensional toy problems with two classes.
"""
import gzip
import hashlib
import io
from importlib import resources
from typing import Any, Literal, Optional, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Bunch",
    "load_digits",
    "train_test_split",
    "StandardScaler",
    "standardize",
    "make_xor",
    "make_spirals",
    "make_moons",
    "DIGITS_SHA256",
]

#: sha256 of the shipped ``digits.csv.gz``; :func:`load_digits` can verify it.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"

_DIGITS_FILE = "digits.csv.gz"
_DIGITS_N_SAMPLES = 1797
_DIGITS_N_FEATURES = 64

_DIGITS_DESCR = """\
Optical Recognition of Handwritten Digits (the 1,797-image set)

Each sample is an 8x8 image of a handwritten digit with integer pixel values
0..16 (64 features), and the label is the digit 0..9 (10 classes, about 180
samples each).

Source: Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten
Digits. UCI Machine Learning Repository. https://doi.org/10.24432/C50P49
License: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
"""

# What numpy.random.default_rng accepts: a seed, a Generator, or None (fresh entropy).
_Seed = Union[int, np.random.Generator, None]


class Bunch(dict[str, Any]):
    """A dict whose keys can also be read as attributes (``d.data``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self) -> list[str]:
        return list(self.keys()) + list(super().__dir__())


def _read_digits_bytes() -> bytes:
    return resources.files(__name__).joinpath(_DIGITS_FILE).read_bytes()


@overload
def load_digits(return_X_y: Literal[False] = ..., *, verify_checksum: bool = ...) -> Bunch: ...


@overload
def load_digits(return_X_y: Literal[True], *,
                verify_checksum: bool = ...) -> tuple[NDArray[np.float64], NDArray[np.int64]]: ...


@overload
def load_digits(return_X_y: bool, *, verify_checksum: bool = ...,
                ) -> Union[Bunch, tuple[NDArray[np.float64], NDArray[np.int64]]]: ...


def load_digits(return_X_y: bool = False, *, verify_checksum: bool = False,
                ) -> Union[Bunch, tuple[NDArray[np.float64], NDArray[np.int64]]]:
    """Load the handwritten digits dataset shipped with pybackprop.

    The data are the 1,797-image set of

        Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten
        Digits. UCI Machine Learning Repository.
        https://doi.org/10.24432/C50P49 (CC BY 4.0).

    Each row of the shipped gzipped CSV holds 64 pixel values (an 8x8 image,
    integers 0..16, row-major) followed by the class label 0..9.

    Parameters
    ----------
    return_X_y : bool, default False
        If True, return ``(X, y)`` instead of a :class:`Bunch`.
    verify_checksum : bool, default False
        If True, check the sha256 of the shipped file against
        :data:`DIGITS_SHA256` before parsing (raises ``OSError`` on mismatch).

    Returns
    -------
    data : Bunch
        With keys ``data`` (1797, 64) float64, ``target`` (1797,) int64,
        ``images`` (1797, 8, 8) float64 (a view of ``data``),
        ``target_names`` (10,) int64, ``feature_names`` (list of 64 str)
        and ``DESCR`` (str, with the citation).
    (X, y) : tuple of ndarray
        If ``return_X_y``: X (1797, 64) float64 and y (1797,) int64.

    Raises
    ------
    OSError
        If the shipped file is corrupt (checksum, shape or value range).
    """
    raw = _read_digits_bytes()
    if verify_checksum:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != DIGITS_SHA256:
            raise OSError(
                f"{_DIGITS_FILE} is corrupt: sha256 {digest}, expected {DIGITS_SHA256}"
            )
    with gzip.open(io.BytesIO(raw), "rt", encoding="ascii") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)

    expected = (_DIGITS_N_SAMPLES, _DIGITS_N_FEATURES + 1)
    if table.shape != expected:
        raise OSError(f"{_DIGITS_FILE} has shape {table.shape}, expected {expected}")
    pixels = table[:, :_DIGITS_N_FEATURES]
    y = np.ascontiguousarray(table[:, _DIGITS_N_FEATURES])
    if pixels.min() < 0 or pixels.max() > 16:
        raise OSError(f"{_DIGITS_FILE} has pixel values outside 0..16")
    if not np.array_equal(np.unique(y), np.arange(10)):
        raise OSError(f"{_DIGITS_FILE} labels are not exactly the digits 0..9")

    X = pixels.astype(np.float64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=X.reshape(-1, 8, 8),
        target_names=np.arange(10, dtype=np.int64),
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        DESCR=_DIGITS_DESCR,
    )


# --------------------------------------------------------------------------
# splitting and scaling


def _n_test(test_size: float, n: int) -> int:
    if isinstance(test_size, (bool, np.bool_)):
        raise TypeError("test_size must be a float in (0, 1) or an int")
    if isinstance(test_size, (int, np.integer)):
        n_test = int(test_size)
    elif isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size={test_size} must be in (0, 1) when a float")
        n_test = int(np.ceil(test_size * n))
    else:
        raise TypeError("test_size must be a float in (0, 1) or an int")
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"test_size={test_size} gives {n_test} test samples out of {n}; "
            "both parts need at least one sample"
        )
    return n_test


def _stratified_test_counts(class_counts: NDArray[np.intp], n_test: int) -> NDArray[np.int64]:
    # Largest-remainder apportionment: each class gets floor(share) test
    # samples and the leftovers go to the largest fractional parts, so the
    # total is exactly n_test and every class is within one of its share.
    # Ties break towards larger classes, then lower class index (deterministic).
    n = class_counts.sum()
    share = class_counts * (n_test / n)
    counts = np.floor(share).astype(np.int64)
    left = n_test - counts.sum()
    if left:
        frac = share - counts
        order = np.lexsort((np.arange(len(counts)), -class_counts, -frac))
        counts[order[:left]] += 1
    return counts


def train_test_split(X: ArrayLike, y: ArrayLike, test_size: float = 0.2, seed: _Seed = 0,
                     stratify: Union[None, bool, ArrayLike] = None,
                     ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Split ``X`` and ``y`` into random train and test parts.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
    y : array_like, shape (n_samples, ...)
    test_size : float in (0, 1) or int, default 0.2
        Fraction of the samples (rounded up) or number of samples in the
        test part.
    seed : int or numpy.random.Generator, default 0
        Seed for ``numpy.random.default_rng``; the same seed gives the same
        split.
    stratify : None, True or array_like of shape (n_samples,), default None
        Class labels whose proportions both parts keep (each class gets its
        share of the test part to within one sample). ``True`` means use
        ``y``.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        Rows of ``X`` and ``y`` (copies), each part in random order.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = X.shape[0] if X.ndim else 0
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has shape {y.shape}")
    if n < 2:
        raise ValueError("need at least 2 samples to split")
    n_test = _n_test(test_size, n)
    rng = np.random.default_rng(seed)

    if stratify is None or stratify is False:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    else:
        labels = y if stratify is True else np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must have shape ({n},), got {labels.shape}")
        classes, inverse, class_counts = np.unique(
            labels, return_inverse=True, return_counts=True
        )
        test_counts = _stratified_test_counts(class_counts, n_test)
        test_parts, train_parts = [], []
        for k in range(len(classes)):
            members = rng.permutation(np.flatnonzero(inverse == k))
            test_parts.append(members[: test_counts[k]])
            train_parts.append(members[test_counts[k]:])
        # Shuffle again so that the parts are not grouped by class.
        test_idx = rng.permutation(np.concatenate(test_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


class StandardScaler:
    """Scale features to zero mean and unit variance using training statistics.

    Fit on the training data only, then apply the same shift and scale to
    test data. A constant column gets ``scale_ = 1`` (it maps to zeros
    instead of dividing by zero).

    Attributes
    ----------
    mean_ : ndarray, shape (n_features,)
    scale_ : ndarray, shape (n_features,)
        Population standard deviation (ddof=0), 1 for constant columns.
    n_features_in_ : int
    """

    # Set by fit (until then the attributes do not exist).
    mean_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    n_features_in_: int

    def fit(self, X: ArrayLike) -> "StandardScaler":
        """Compute ``mean_`` and ``scale_`` from ``X`` (n_samples, n_features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinity")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        # ptp is exactly zero for a constant column, whereas the computed
        # std may be a rounding residue; use the column's value as the mean
        # so that the column transforms to exact zeros.
        constant = np.ptp(X, axis=0) == 0
        mean[constant] = X[0, constant]
        scale[constant] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = X.shape[1]
        return self

    def _check(self, X: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "mean_"):
            raise RuntimeError("StandardScaler is not fitted; call fit(X_train) first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must have shape (n, {self.n_features_in_}), got {X.shape}"
            )
        return X

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return ``(X - mean_) / scale_`` as a new float64 array."""
        X = self._check(X)
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Fit on ``X`` and return it transformed."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return ``X * scale_ + mean_``, undoing :meth:`transform`."""
        X = self._check(X)
        return X * self.scale_ + self.mean_


@overload
def standardize(X_train: ArrayLike, X_test: None = ...) -> NDArray[np.float64]: ...


@overload
def standardize(X_train: ArrayLike,
                X_test: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


def standardize(X_train: ArrayLike, X_test: Optional[ArrayLike] = None,
                ) -> Union[NDArray[np.float64], tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Standardize with statistics of ``X_train`` only.

    Parameters
    ----------
    X_train : array_like, shape (n_train, n_features)
    X_test : array_like, shape (n_test, n_features), optional

    Returns
    -------
    X_train_std : ndarray, shape (n_train, n_features)
        Returned alone when ``X_test`` is None.
    X_test_std : ndarray, shape (n_test, n_features)
        Scaled with the training mean and scale; returned as the second item
        of a tuple when ``X_test`` is given.
    """
    scaler = StandardScaler().fit(X_train)
    if X_test is None:
        return scaler.transform(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


# --------------------------------------------------------------------------
# synthetic two-dimensional problems


def _check_generator_args(n: int, noise: float) -> tuple[int, float]:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    noise = float(noise)
    if not noise >= 0.0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return int(n), noise


def _class_sizes(n: int) -> tuple[int, int]:
    # Class 0 gets the extra sample when n is odd.
    return n - n // 2, n // 2


def make_xor(n: int = 200, noise: float = 0.1,
             seed: _Seed = 0) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Points in the square [-1, 1]^2 labelled by the XOR of their signs.

    Parameters
    ----------
    n : int, default 200
        Number of samples.
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to the points after
        labelling (so with noise some points cross a quadrant boundary).
    seed : int or numpy.random.Generator, default 0

    Returns
    -------
    X : ndarray, shape (n, 2), float64
    y : ndarray, shape (n,), int64
        1 when exactly one coordinate of the noiseless point is positive.
    """
    n, noise = _check_generator_args(n, noise)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    X += noise * rng.standard_normal((n, 2))
    return X, y


def make_spirals(n: int = 200, noise: float = 0.1, seed: _Seed = 0,
                 turns: float = 1.5) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Two interleaved spirals (arms half a turn apart), one class each.

    Parameters
    ----------
    n : int, default 200
        Total number of samples (class 0 gets ``ceil(n/2)``).
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to each coordinate.
    seed : int or numpy.random.Generator, default 0
    turns : float, default 1.5
        Number of turns of each arm.

    Returns
    -------
    X : ndarray, shape (n, 2), float64
        Radii range over about [0.05, 1] before noise.
    y : ndarray, shape (n,), int64
        0 or 1, in random order.
    """
    n, noise = _check_generator_args(n, noise)
    rng = np.random.default_rng(seed)
    n0, n1 = _class_sizes(n)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n0, n1])
    # sqrt of a uniform spreads points evenly along the arm's length rather
    # than crowding the centre.
    t = 0.05 + 0.95 * np.sqrt(rng.uniform(0.0, 1.0, size=n))
    angle = 2.0 * np.pi * turns * t + np.pi * y
    X = np.column_stack((t * np.cos(angle), t * np.sin(angle)))
    X += noise * rng.standard_normal((n, 2))
    perm = rng.permutation(n)
    return X[perm], y[perm]


def make_moons(n: int = 200, noise: float = 0.1,
               seed: _Seed = 0) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Two interleaving half circles, one class each.

    Class 0 lies on the upper unit half circle ``(cos t, sin t)``, class 1 on
    ``(1 - cos t, 0.5 - sin t)``, with ``t`` uniform in [0, pi].

    Parameters
    ----------
    n : int, default 200
        Total number of samples (class 0 gets ``ceil(n/2)``).
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to each coordinate.
    seed : int or numpy.random.Generator, default 0

    Returns
    -------
    X : ndarray, shape (n, 2), float64
    y : ndarray, shape (n,), int64
        0 or 1, in random order.
    """
    n, noise = _check_generator_args(n, noise)
    rng = np.random.default_rng(seed)
    n0, n1 = _class_sizes(n)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n0, n1])
    t = rng.uniform(0.0, np.pi, size=n)
    X = np.empty((n, 2))
    X[:n0, 0] = np.cos(t[:n0])
    X[:n0, 1] = np.sin(t[:n0])
    X[n0:, 0] = 1.0 - np.cos(t[n0:])
    X[n0:, 1] = 0.5 - np.sin(t[n0:])
    X += noise * rng.standard_normal((n, 2))
    perm = rng.permutation(n)
    return X[perm], y[perm]
