"""Input validation and conversion: the guard in front of the compiled core.

The kernels run with bounds checks off and trust what they are given, so
everything a user can get wrong is caught here (or in the compiled value
checks of ``_core``) with a ``ValueError`` or ``TypeError`` that says what
was expected and what came, before any kernel runs.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection, Sequence
from typing import Any, Literal, Optional, Union, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _core as _compiled

# The names the compiled core implements, and its code for each: defined once,
# in csrc/_core.pyx (read from the baseline module; every variant has the same).
HIDDEN_ACTIVATIONS = dict(_compiled.HIDDEN_ACTIVATIONS)
OUTPUT_ACTIVATIONS = dict(_compiled.OUTPUT_ACTIVATIONS)
LOSSES = dict(_compiled.LOSSES)
# The (output, loss) pairs whose gradient the core computes exactly.
VALID_PAIRS = tuple(_compiled.VALID_PAIRS)
DEFAULT_LOSS = {"identity": "squared_error", "sigmoid": "binary_cross_entropy",
                "softmax": "cross_entropy"}
DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


# Names as types, for annotations: a type checker needs them spelled out.
# tests/test_network.py asserts they equal the tables above, so they cannot
# drift from the one definition.
HiddenActivation = Literal["identity", "sigmoid", "relu", "tanh"]
OutputActivation = Literal["identity", "sigmoid", "softmax"]
LossName = Literal["squared_error", "binary_cross_entropy", "cross_entropy"]
DTypeName = Literal["float32", "float64"]

#: A float32 or float64 array (parameters, gradients, outputs).
FloatArray = NDArray[np.floating[Any]]
#: A dtype argument: "float32", "float64", or a numpy dtype or type of those.
DTypeArgument = Union[DTypeName, DTypeLike]
#: A file path argument.
PathArgument = Union[str, os.PathLike[str]]


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return value, a str that is one of choices.

    Raises ValueError naming the argument and listing the valid choices
    (sorted) otherwise.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(sorted(choices))}")
    return value


def check_real(name: str, value: object, low: Optional[float] = None,
               high: Optional[float] = None, *, low_open: bool = False,
               high_open: bool = False) -> float:
    """Return value as a finite float within [low, high].

    ``low_open`` / ``high_open`` exclude the bound itself.  A bool is not a
    number here (``True`` as a learning rate is a mistake, not 1.0).

    Raises TypeError for anything but a real number and ValueError for a
    number that is not finite or out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return value as an int >= minimum (bools refused); ValueError otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_layer_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """Return layer_sizes as a tuple of positive ints (at least input and output)."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(f"layer_sizes must be a sequence of ints like [2, 2, 1], got {layer_sizes!r}")
    sizes: list[int] = []
    for size in layer_sizes:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
            raise TypeError(f"layer sizes must be integers, got {size!r} in {list(layer_sizes)!r}")
        if size < 1:
            raise ValueError(f"layer sizes must be >= 1, got {size} in {list(layer_sizes)!r}")
        if size > 2**31 - 1:
            raise ValueError(f"layer size {size} is too large")
        sizes.append(int(size))
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least [n_in, n_out], got {list(layer_sizes)!r}")
    return tuple(sizes)


def check_activations(activation: Union[str, Sequence[str]], n_hidden: int,
                      ) -> tuple[HiddenActivation, ...]:
    """Return one hidden activation name per hidden layer."""
    if isinstance(activation, str):
        names = [activation] * n_hidden
    else:
        try:
            names = list(activation)
        except TypeError:
            raise TypeError(f"activation must be a name or a list of names, got {activation!r}") from None
        if len(names) != n_hidden:
            raise ValueError(f"activation lists one name per hidden layer: expected {n_hidden}, "
                             f"got {len(names)} ({names!r})")
    for name in names:
        check_choice("activation", name, HIDDEN_ACTIVATIONS)
    # Every name is now one of HIDDEN_ACTIVATIONS, which is what the Literal spells.
    return cast("tuple[HiddenActivation, ...]", tuple(names))


def check_output_loss(output: object, loss: object, n_out: int) -> tuple[OutputActivation, LossName]:
    """Return (output, loss) after checking the names and that they fit together.

    A loss of None means the output activation's default loss.
    """
    output = check_choice("output activation", output, OUTPUT_ACTIVATIONS)
    if loss is None:
        loss = DEFAULT_LOSS[output]
    loss = check_choice("loss", loss, LOSSES)
    if (output, loss) not in VALID_PAIRS:
        pairs = ", ".join(f"output={o!r} with loss={l!r}" for o, l in VALID_PAIRS)
        raise ValueError(f"output={output!r} cannot be used with loss={loss!r}; valid combinations: {pairs}")
    if output == "softmax" and n_out < 2:
        raise ValueError(f"a softmax output needs at least 2 units, got {n_out}; "
                         "use output='sigmoid' with loss='binary_cross_entropy' for two classes")
    # The names were checked against OUTPUT_ACTIVATIONS and LOSSES, which the Literals spell.
    return cast(OutputActivation, output), cast(LossName, loss)


def check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """Return the numpy dtype for 'float32' or 'float64' (names or dtypes)."""
    resolved: Optional[np.dtype[Any]]
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in DTYPES.values():
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def check_learning_rate(lr: object) -> float:
    """Return lr as a float, finite and >= 0."""
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
        raise TypeError(f"learning rate must be a real number, got {lr!r}")
    lr = float(lr)
    if not (lr >= 0 and np.isfinite(lr)):
        raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
    return lr


# The kernels count rows with a C int.
MAX_ROWS = 2**31 - 1


def kernel_ready(array: NDArray[Any], dtype: DTypeLike, name: str = "array") -> NDArray[Any]:
    """array as the kernels read it: C-contiguous, aligned, native byte order,
    of this dtype (a copy only when one of those is missing).

    A finite value too large for the target dtype (1e308 into float32) is
    refused here, naming the value the caller passed, rather than becoming
    an infinity that the finiteness check would then report.
    """
    dtype = np.dtype(dtype)
    if array.dtype == dtype or dtype.kind != "f" or array.dtype.kind != "f" \
            or array.dtype.itemsize <= dtype.itemsize:
        return np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
    with np.errstate(over="ignore"):
        converted = np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
    overflowed = np.isinf(converted) & np.isfinite(array)
    if overflowed.any():
        index = np.unravel_index(int(np.argmax(overflowed)), array.shape)
        where = index[0] if len(index) == 1 else tuple(int(i) for i in index)
        raise ValueError(f"{name}[{where}] = {array[index]!r} is outside the {dtype.name} range "
                         f"(largest {np.finfo(dtype).max:.4g}); the network computes in {dtype.name}")
    return converted


def _as_real_array(value: ArrayLike, name: str) -> NDArray[Any]:
    """np.asarray(value), refusing anything that is not real numbers."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    kind = array.dtype.kind
    if kind not in "fiu":
        what = {"b": "bool", "c": "complex", "O": "object", "U": "string", "S": "bytes",
                "M": "datetime", "m": "timedelta", "V": "structured"}.get(kind, str(array.dtype))
        raise TypeError(f"{name} must hold real numbers (integer or float), got {what} dtype {array.dtype}")
    return array


class BatchSpec:
    """What the core expects of a batch for one network; callable as the
    core's slow-path coercion ``(X, y, sample_weight) -> (X, y, sample_weight)``.
    """

    __slots__ = ("n_in", "n_out", "dtype", "loss")

    def __init__(self, n_in: int, n_out: int, dtype: np.dtype[Any], loss: str) -> None:
        self.n_in = n_in
        self.n_out = n_out
        self.dtype = dtype
        self.loss = loss

    def __call__(self, X: ArrayLike, y: Optional[ArrayLike], sample_weight: Optional[ArrayLike],
                 ) -> tuple[NDArray[Any], Optional[NDArray[Any]], Optional[NDArray[Any]]]:
        X, single = self.coerce_X(X)
        n = X.shape[0]
        if y is not None:
            y = self.coerce_y(y, n, single)
        if sample_weight is not None:
            sample_weight = self.coerce_sample_weight(sample_weight, n, single)
        return X, y, sample_weight

    def coerce_X(self, X: ArrayLike) -> tuple[NDArray[Any], bool]:
        """X as a C-contiguous (n, n_in) array of the network's dtype.

        Returns (X, single) where single says a 1-D sample was given.
        """
        X = _as_real_array(X, "X")
        single = False
        if X.ndim == 1:
            if X.shape[0] != self.n_in:
                raise ValueError(f"X must have shape (n_samples, {self.n_in}) or ({self.n_in},) "
                                 f"for one sample; got shape {X.shape}")
            X = X.reshape(1, self.n_in)
            single = True
        elif X.ndim != 2:
            raise ValueError(f"X must be 2-D with shape (n_samples, {self.n_in}); "
                             f"got {X.ndim}-D shape {X.shape}")
        if X.shape[1] != self.n_in:
            raise ValueError(f"X must have {self.n_in} features (columns); got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"X is an empty batch (shape {X.shape}); need at least one sample")
        if X.shape[0] > MAX_ROWS:
            raise ValueError(f"X has {X.shape[0]} samples; one call takes at most {MAX_ROWS} "
                             "(split it into batches)")
        return kernel_ready(X, self.dtype, "X"), single

    def coerce_y(self, y: ArrayLike, n: int, single: bool) -> NDArray[Any]:
        """y as (n, n_out) targets of the network's dtype, (n,) targets when
        n_out == 1, or (n,) intp class labels for cross-entropy."""
        y = _as_real_array(y, "y")
        if single:
            # One sample: a scalar target or label, or one row of targets.
            if y.ndim == 0:
                y = y.reshape(1)
            elif y.ndim == 1 and y.shape[0] == self.n_out and self.n_out > 1:
                y = y.reshape(1, self.n_out)
        if self.loss == "cross_entropy" and y.ndim == 1:
            if y.dtype.kind not in "iu":
                raise TypeError(f"1-D y for cross_entropy must hold integer class labels, "
                                f"got dtype {y.dtype}; pass y.astype(int), or probability rows "
                                f"of shape (n_samples, {self.n_out})")
            if y.shape[0] != n:
                raise ValueError(f"y has {y.shape[0]} labels for {n} samples")
            if y.dtype.kind == "u" and y.size and y.max() > np.iinfo(np.intp).max:
                raise ValueError(f"class labels must be in 0..{self.n_out - 1}")
            return kernel_ready(y, np.intp)
        if y.ndim == 1 and self.n_out == 1:
            if y.shape[0] != n:
                raise ValueError(f"y has {y.shape[0]} targets for {n} samples")
        elif y.ndim != 2 or y.shape != (n, self.n_out):
            expected = f"({n}, {self.n_out})"
            if self.n_out == 1:
                expected += f" or ({n},)"
            if self.loss == "cross_entropy":
                expected += f", or integer labels ({n},)"
            raise ValueError(f"y must have shape {expected}; got {y.ndim}-D shape {y.shape}")
        return kernel_ready(y, self.dtype, "y")

    def coerce_sample_weight(self, sample_weight: ArrayLike, n: int, single: bool) -> NDArray[Any]:
        """sample_weight as a contiguous (n,) array of the network's dtype."""
        sample_weight = _as_real_array(sample_weight, "sample_weight")
        if single and sample_weight.ndim == 0:
            sample_weight = sample_weight.reshape(1)
        if sample_weight.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},); got {sample_weight.shape}")
        return kernel_ready(sample_weight, self.dtype, "sample_weight")
