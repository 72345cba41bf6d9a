"""Saving and loading networks: ``.npz`` files and plain-array state dicts.

A network file is an uncompressed ``.npz`` archive (a zip of ``.npy``
members, the layout :func:`numpy.savez` writes) with these entries:

==========================  ==========================================  =====================
key                         value                                       stored as
==========================  ==========================================  =====================
``pybackprop_format``       format version, currently 1                 0-d int64
``layer_sizes``             ``(n_in, n_hidden..., n_out)``              (L + 1,) int64
``activations``             one hidden activation name per hidden layer (L - 1,) unicode
``output``                  output activation name                      0-d unicode
``loss``                    loss name                                   0-d unicode
``dtype``                   ``"float32"`` or ``"float64"``              0-d unicode
``W0`` ... ``W{L-1}``       weights of layer ``i``                      (n_{i+1}, n_i) dtype
``b0`` ... ``b{L-1}``       biases of layer ``i``                       (n_{i+1},) dtype
``optimizer/<name>``        optimizer state entries (only when saved)   0-d or n-d arrays
==========================  ==========================================  =====================

Strings are unicode arrays (``'<U...'``), never object arrays, so the
file can be read with ``numpy.load(path, allow_pickle=False)`` by any
program; weights are stored in the network's dtype, so a round trip is
bit-identical.

The optimizer entries are the optimizer's ``state_dict()``: for
:class:`pybackprop.optim.SGD` with momentum ``optimizer/momentum_buffer``,
for :class:`~pybackprop.optim.Adam` ``optimizer/exp_avg`` and
``optimizer/exp_avg_sq`` next to the hyperparameters and step count
(pybackprop 0.1.0 named the vectors ``state1`` and ``state2``; the
optimizers' ``load_state_dict`` reads both).

Loading trusts nothing in the file.  It never unpickles, never executes
anything, and reads every ``.npy`` header before reading the data behind
it: dtypes, shapes and sizes are checked against the architecture and
against the bytes actually present, and the parameter count is capped
(:data:`MAX_PARAMETERS`) before anything is allocated.  Every problem with
the file's contents raises ``ValueError`` naming the file and what is
wrong.

This module reads and checks (:func:`read`, :func:`checked_network_state`
return a :class:`NetworkState`); ``pybackprop.network``, which imports
this module and never the other way round, builds the
:class:`~pybackprop.MLP` from it.
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import secrets
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, Optional, Protocol, Union, overload

import numpy as np
from numpy.lib import format as npy_format

from . import _validation
from ._validation import FloatArray, HiddenActivation, LossName, OutputActivation, PathArgument

if TYPE_CHECKING:
    # For annotations only: at run time this module never imports network,
    # which imports it.
    from .network import MLP

__all__ = ["FORMAT_VERSION", "MAX_PARAMETERS", "NetworkState", "SupportsStateDict", "state_dict",
           "load_state_dict", "checked_network_state", "network_from_state_dict", "save", "read",
           "load"]

#: Version written into ``pybackprop_format``; files with another version are refused.
FORMAT_VERSION = 1

#: Largest number of weights and biases a state dict or file may describe
#: (2**31, 16 GiB in float64): a file claiming more is refused before any
#: memory is allocated for it.
MAX_PARAMETERS = 2**31

# More layers than this is not a network anyone trains; refusing it bounds
# what reading ``layer_sizes`` can cost.
_MAX_LAYERS = 10_000
# Names (activations, losses, dtypes) are short; this bounds string entries.
_MAX_NAME_CHARS = 256
# .npy headers are a few hundred bytes; numpy's own default limit.
_MAX_HEADER_SIZE = 10_000
# DEFLATE expands at most about 1032:1, so a member that claims more than
# this ratio is lying about its size.
_MAX_DEFLATE_RATIO = 1040
_OPTIMIZER_PREFIX = "optimizer/"
_ARCHITECTURE_KEYS = ("layer_sizes", "activations", "output", "loss", "dtype")

#: What a corrupted or crafted archive or .npy file can make zipfile, zlib,
#: the .npy header parser (tokenize and ast.literal_eval) or numpy raise.
#: RecursionError is a RuntimeError; OSError covers seeks to nonsense
#: offsets.  pybackprop.tables reads data files behind the same list.
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError,
               IndexError, ValueError, TypeError, struct.error, zlib.error,
               NotImplementedError, RuntimeError, UnicodeDecodeError, OverflowError,
               MemoryError, SyntaxError, tokenize.TokenError)


class SupportsStateDict(Protocol):
    """What :func:`save` needs of an optimizer: a flat state dict."""

    def state_dict(self) -> Mapping[str, Any]: ...


class _BadFile(Exception):
    """A problem found in a file's contents; load() turns it into ValueError."""


# -- state dicts -----------------------------------------------------------


def _parameter_keys(n_layers: int) -> list[str]:
    """The weight and bias keys of a network with n_layers layers, in parameter order."""
    keys = []
    for i in range(n_layers):
        keys += [f"W{i}", f"b{i}"]
    return keys


def _parameter_shapes(layer_sizes: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """{key: shape} of every W_i (n_{i+1}, n_i) and b_i (n_{i+1},)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        shapes[f"W{i}"] = (n_out, n_in)
        shapes[f"b{i}"] = (n_out,)
    return shapes


def state_dict(net: MLP) -> dict[str, Any]:
    """The network's architecture and parameters as plain arrays and strings.

    Parameters
    ----------
    net : MLP

    Returns
    -------
    dict
        Independent copies (changing them does not change the network)::

            "layer_sizes"  ndarray (L + 1,) int64: (n_in, n_hidden..., n_out)
            "activations"  ndarray (L - 1,) unicode: hidden activation names
            "output"       str: output activation
            "loss"         str: loss name
            "dtype"        str: "float32" or "float64"
            "W0", "b0", ...  ndarray (n_out, n_in) and (n_out,) of the
                           network's dtype, layer 0 first (``L`` layers)

        No object arrays: ``numpy.savez(f, **state_dict(net))`` works, and
        the weights use the ``(n_out, n_in)`` layout of PyTorch's
        ``nn.Linear.weight``.
    """
    state = {
        "layer_sizes": np.array(net.layer_sizes, dtype=np.int64),
        "activations": np.array(list(net.activations), dtype=np.str_),
        "output": str(net.output),
        "loss": str(net.loss_name),
        "dtype": np.dtype(net.dtype).name,
    }
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        state[f"W{i}"] = W.copy()
        state[f"b{i}"] = b.copy()
    return state


def _check_code_points(value: np.ndarray, key: str) -> None:
    """Refuse a unicode array holding values beyond U+10FFFF, which NumPy
    stores but cannot turn into str (it raises SystemError)."""
    codes = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("="))).reshape(-1)
    if codes.size and codes.view(np.uint32).max() > 0x10FFFF:
        raise ValueError(f"state entry {key!r} holds a character beyond U+10FFFF")


def _name(value, key):
    """A string entry (str, numpy str or 0-d unicode array) as a str."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind == "U":
        _check_code_points(value, key)
        value = value.item()
    if not isinstance(value, str):
        raise ValueError(f"state entry {key!r} must be a string, got {value!r}")
    return str(value)


def _names(value, key):
    """The activations entry (a str, or a sequence / 1-D unicode array of str) as a tuple."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return (_name(value, key),)
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind != "U":
            raise ValueError(f"state entry {key!r} must be a 1-D array of strings, "
                             f"got dtype {value.dtype} shape {value.shape}")
        _check_code_points(value, key)
        return tuple(str(v) for v in value)
    try:
        return tuple(_name(v, key) for v in value)
    except TypeError:
        raise ValueError(f"state entry {key!r} must be a list of strings, got {value!r}") from None


def _sizes(value, key="layer_sizes"):
    """layer_sizes as a tuple of ints within every limit, checked before allocating."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu" or array.ndim != 1:
        raise ValueError(f"{key!r} must be a 1-D array of integers, got dtype {array.dtype} "
                         f"shape {array.shape}")
    if not 2 <= array.shape[0] <= _MAX_LAYERS + 1:
        raise ValueError(f"{key!r} must list between 2 and {_MAX_LAYERS + 1} sizes, "
                         f"got {array.shape[0]}")
    sizes = tuple(int(n) for n in array)
    shown = list(sizes) if len(sizes) <= 12 else f"[{', '.join(map(str, sizes[:10]))}, ...]"
    if min(sizes) < 1 or max(sizes) > 2**31 - 1:
        raise ValueError(f"{key!r} must hold sizes between 1 and 2**31 - 1, got {shown}")
    # Python ints: no overflow however large the claimed sizes are.
    n_params = sum(n_out * n_in + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    if n_params > MAX_PARAMETERS:
        raise ValueError(f"{key!r} {shown} describes {n_params} parameters, "
                         f"more than the limit of {MAX_PARAMETERS}")
    return sizes


def _check_architecture(net, state):
    """Check the architecture entries present in state against the network."""
    if "layer_sizes" in state:
        sizes = _sizes(state["layer_sizes"])
        if sizes != tuple(net.layer_sizes):
            raise ValueError(f"state 'layer_sizes' is {list(sizes)} but the network has "
                             f"{list(net.layer_sizes)}")
    if "activations" in state:
        names = _names(state["activations"], "activations")
        if len(names) == 1 and len(net.activations) > 1:
            names = names * len(net.activations)
        if names != tuple(net.activations):
            raise ValueError(f"state 'activations' is {list(names)} but the network has "
                             f"{list(net.activations)}")
    for key, actual in (("output", net.output), ("loss", net.loss_name)):
        if key in state and _name(state[key], key) != actual:
            raise ValueError(f"state {key!r} is {_name(state[key], key)!r} but the network "
                             f"has {actual!r}")
    if "dtype" in state:
        # Another dtype is fine (values are converted), a nonsense one is not.
        _dtype_entry(state["dtype"])
    if "pybackprop_format" in state:
        _format_version(state["pybackprop_format"])


def _dtype_entry(value: object) -> np.dtype[Any]:
    """The dtype entry: exactly one of the names :func:`state_dict` writes.

    numpy reads many spellings ("d", "float", "<f8", "double") as a dtype;
    a state dict or file holds the name, so anything else is a damaged or
    foreign entry, not a dtype to guess.
    """
    name = _name(value, "dtype")
    if name not in _validation.DTYPES:
        raise ValueError(f"state entry 'dtype' must be one of "
                         f"{', '.join(map(repr, _validation.DTYPES))}, got {name!r}")
    return np.dtype(name)


def _format_version(value):
    array = np.asarray(value)
    if array.shape != () or array.dtype.kind not in "iu":
        raise ValueError(f"'pybackprop_format' must be an integer, got {value!r}")
    if int(array) != FORMAT_VERSION:
        raise ValueError(f"'pybackprop_format' is {int(array)}; this version of pybackprop "
                         f"reads format {FORMAT_VERSION} (the file may be from a newer version)")
    return int(array)


def _converted(value, key, shape, dtype):
    """value as a new array of dtype after checking its kind, shape and finiteness."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"state entry {key!r} is not an array of real numbers: {exc}") from None
    if array.dtype.kind not in "fiu":
        raise TypeError(f"state entry {key!r} must hold real numbers, got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"state entry {key!r} has shape {array.shape}; the network needs {shape}")
    # Converting float64 to float32 can overflow to inf: check after converting.
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.array(array, dtype=dtype, copy=True, order="C")
    if not np.all(np.isfinite(converted)):
        raise ValueError(f"state entry {key!r} holds values that are not finite in {dtype.name} "
                         "(NaN, inf, or too large)")
    return converted


def load_state_dict(net: MLP, state: Mapping[str, Any], strict: bool = True) -> None:
    """Copy parameters from a state dict into the network, all or nothing.

    Parameters
    ----------
    net : MLP
    state : mapping
        ``"W{i}"`` (n_{i+1}, n_i) and ``"b{i}"`` (n_{i+1},) arrays or array
        likes (NumPy, lists, anything with ``__array__``) of real numbers,
        as :func:`state_dict` returns.  Architecture entries
        (``"layer_sizes"``, ``"activations"``, ``"output"``, ``"loss"``) are
        optional; when present they must match the network.  ``"dtype"``
        may differ from the network's: values are converted to
        ``net.dtype`` (float64 to float32 rounds).
    strict : bool, default True
        Require every ``W{i}``/``b{i}`` and refuse unknown keys.  With
        ``strict=False`` missing parameters keep their values and unknown
        keys are ignored.

    Raises
    ------
    ValueError
        A missing or unknown key (strict), a shape other than the
        network's (the message names the key and both shapes), a value
        that is not finite after conversion, or an architecture entry that
        disagrees with the network.
    TypeError
        ``state`` is not a mapping, or an entry is not real numbers
        (complex, bool, object, strings).

    Notes
    -----
    Everything is checked before anything is written, so a failed call
    leaves the network unchanged.
    """
    _check_mapping(state)
    if strict:
        _check_parameter_keys(state, len(net.layer_sizes) - 1)
    _check_architecture(net, state)
    net.parameters[...] = _flat_parameters(state, net.layer_sizes, net.dtype,
                                           start=net.parameters)


def _check_mapping(state: object) -> None:
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping (dict) of names to arrays, got {type(state).__name__}")


def _check_parameter_keys(state: Mapping[str, Any], n_layers: int) -> None:
    """A strict state holds every W{i}/b{i} and nothing unknown."""
    param_keys = _parameter_keys(n_layers)
    missing = [k for k in param_keys if k not in state]
    if missing:
        raise ValueError(f"state is missing {', '.join(map(repr, missing))}")
    allowed = set(param_keys) | set(_ARCHITECTURE_KEYS) | {"pybackprop_format"}
    unexpected = [k for k in state if k not in allowed]
    if unexpected:
        raise ValueError(f"state has unexpected entries {', '.join(map(repr, unexpected))}; "
                         f"expected {', '.join(param_keys)} and optionally "
                         f"{', '.join(_ARCHITECTURE_KEYS)}")


def _flat_parameters(state: Mapping[str, Any], layer_sizes: tuple[int, ...],
                     dtype: np.dtype[Any], start: Optional[FloatArray] = None) -> FloatArray:
    """The W{i}/b{i} entries of state in one new flat vector (n_params,) of dtype.

    Every entry is checked (kind, shape, finite after conversion) before
    the caller writes anything.  Entries missing from state keep their
    values in ``start`` (without ``start``, state must hold them all).
    """
    param_keys = _parameter_keys(len(layer_sizes) - 1)
    shapes = _parameter_shapes(layer_sizes)
    n_params = sum(math.prod(shape) for shape in shapes.values())
    flat = np.empty(n_params, dtype=dtype) if start is None else start.copy()
    offset = 0
    for key in param_keys:
        size = math.prod(shapes[key])
        if key in state:
            flat[offset:offset + size] = _converted(state[key], key, shapes[key], dtype).ravel()
        offset += size
    return flat


@dataclass(frozen=True)
class NetworkState:
    """A network's architecture and parameters, every entry checked.

    What :func:`checked_network_state` and :func:`read` return and what
    ``pybackprop.network`` builds an :class:`~pybackprop.MLP` from.

    Attributes
    ----------
    layer_sizes : tuple of int
        ``(n_in, n_hidden..., n_out)``.
    activations : tuple of str
        One hidden activation name per hidden layer.
    output, loss : str
        A valid (output activation, loss) pair.
    dtype : numpy.dtype
        float32 or float64.
    parameters : ndarray (n_params,)
        Every weight and bias in the network's flat layout (per layer,
        ``W`` (n_out, n_in) row-major then ``b`` (n_out,)), C-contiguous,
        of ``dtype``, finite; the new network uses this array in place.
    """

    layer_sizes: tuple[int, ...]
    activations: tuple[HiddenActivation, ...]
    output: OutputActivation
    loss: LossName
    dtype: np.dtype[Any]
    parameters: FloatArray


def checked_network_state(state: Mapping[str, Any]) -> NetworkState:
    """Check a state dict completely and return it as a :class:`NetworkState`.

    Parameters
    ----------
    state : mapping
        As :func:`state_dict` returns: ``"layer_sizes"``, ``"output"`` and
        every ``W{i}``/``b{i}`` are required; ``"activations"`` is required
        when there are hidden layers (a single name applies to all);
        ``"loss"`` defaults to the output's natural loss and ``"dtype"`` to
        ``"float64"``.

    Raises
    ------
    ValueError, TypeError
        As :func:`load_state_dict`, plus missing or invalid architecture
        entries.  Layer sizes are checked (at most :data:`MAX_PARAMETERS`
        parameters) before the parameter vector is allocated.
    """
    _check_mapping(state)
    for key in ("layer_sizes", "output"):
        if key not in state:
            raise ValueError(f"state is missing {key!r}")
    sizes = _sizes(state["layer_sizes"])
    n_hidden = len(sizes) - 2
    if "activations" in state:
        activations = _names(state["activations"], "activations")
        if len(activations) == 1:
            activations = activations * n_hidden
    elif n_hidden == 0:
        activations = ()
    else:
        raise ValueError(f"state is missing 'activations' ({n_hidden} hidden layers)")
    hidden = _validation.check_activations(list(activations), n_hidden)
    loss_given = _name(state["loss"], "loss") if "loss" in state else None
    output, loss = _validation.check_output_loss(_name(state["output"], "output"), loss_given,
                                                 sizes[-1])
    dtype = _dtype_entry(state["dtype"]) if "dtype" in state else np.dtype(np.float64)
    # Check the parameters' presence and shapes before allocating anything for them.
    missing = [k for k in _parameter_keys(len(sizes) - 1) if k not in state]
    if missing:
        raise ValueError(f"state is missing {', '.join(map(repr, missing))}")
    for key, shape in _parameter_shapes(sizes).items():
        value_shape = np.shape(state[key])
        if value_shape != shape:
            raise ValueError(f"state entry {key!r} has shape {value_shape}; layer_sizes "
                             f"{list(sizes)} needs {shape}")
    _check_parameter_keys(state, len(sizes) - 1)
    if "pybackprop_format" in state:
        _format_version(state["pybackprop_format"])
    parameters = _flat_parameters(state, sizes, dtype)
    return NetworkState(sizes, hidden, output, loss, dtype, parameters)


def network_from_state_dict(state: Mapping[str, Any]) -> MLP:
    """A new network built and filled from a state dict.

    Parameters
    ----------
    state : mapping
        See :func:`checked_network_state`.

    Returns
    -------
    MLP

    Raises
    ------
    ValueError, TypeError
        As :func:`checked_network_state`; nothing is allocated for a state
        that fails.
    """
    return _build_network(checked_network_state(state))


# How a NetworkState becomes an MLP.  network.py, which imports this module,
# sets it when it is imported (``import pybackprop`` always imports it), so
# that this module can return networks without importing network.py: the
# layers go one way, network -> io.
_network_builder: Optional[Callable[[NetworkState], MLP]] = None


def _build_network(network_state: NetworkState) -> MLP:
    if _network_builder is None:  # only if this module were loaded outside its package
        raise RuntimeError("pybackprop.io needs pybackprop.network: import pybackprop first")
    return _network_builder(network_state)


# -- files -----------------------------------------------------------------


def _as_file_array(value, key):
    """An optimizer state value as an array that is safe to write without pickle."""
    if isinstance(value, (bool, np.bool_)):
        return np.array(bool(value))
    if isinstance(value, numbers.Integral):
        return np.array(int(value), dtype=np.int64)
    if isinstance(value, numbers.Real):
        return np.array(float(value), dtype=np.float64)
    if isinstance(value, str):
        return np.array(value, dtype=np.str_)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU":
            raise TypeError(f"optimizer state entry {key!r} has dtype {value.dtype}; "
                            "arrays must hold bool, integer, float or str values")
        return value
    raise TypeError(f"optimizer state entry {key!r} is a {type(value).__name__}; "
                    "supported values are bool, int, float, str and ndarray")


def save(net: MLP, path: PathArgument, optimizer: Optional[SupportsStateDict] = None) -> None:
    """Write the network (and optionally an optimizer's state) to an ``.npz`` file.

    Parameters
    ----------
    net : MLP
    path : str or os.PathLike
        Written exactly as given: unlike ``numpy.savez(path)``, which
        appends ``.npz`` to a name without it, nothing is appended
        (the archive is written to an open file object).
    optimizer : object, optional
        Anything with ``state_dict()`` returning a flat dict of str keys to
        bool, int, float, str or ndarray values; each entry is stored under
        ``"optimizer/<key>"``.

    Raises
    ------
    TypeError
        ``path`` is not a path, or the optimizer state is not a dict of
        supported values (nothing is written then).
    OSError
        The file cannot be written (for example the directory is missing).

    Notes
    -----
    The archive is first written to a temporary file in the same
    directory, flushed to disk, and then renamed over ``path``
    (``os.replace``), so a crash or a full disk never leaves a half-written
    file and an existing file is replaced only by a complete one
    (:func:`atomic_write`).  A symbolic link is followed (its target is
    replaced, the link stays) and an existing file keeps its permissions.  The
    layout is the one :func:`numpy.savez` writes (uncompressed), so
    ``numpy.load(path, allow_pickle=False)`` reads it too.
    """
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    state = state_dict(net)
    arrays = {"pybackprop_format": np.array(FORMAT_VERSION, dtype=np.int64)}
    for key, value in state.items():
        arrays[key] = np.array(value, dtype=np.str_) if isinstance(value, str) else value
    if optimizer is not None:
        optimizer_state = optimizer.state_dict()
        if not isinstance(optimizer_state, Mapping):
            raise TypeError(f"optimizer.state_dict() must return a dict, got "
                            f"{type(optimizer_state).__name__}")
        for key, value in optimizer_state.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"optimizer state keys must be non-empty strings, got {key!r}")
            arrays[_OPTIMIZER_PREFIX + key] = _as_file_array(value, key)

    with atomic_write(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, array in arrays.items():
                with zf.open(key + ".npy", "w", force_zip64=True) as member:
                    npy_format.write_array(member, np.asanyarray(array), allow_pickle=False)


@contextlib.contextmanager
def atomic_write(path: PathArgument, mode: Literal["wb", "w"] = "wb",
                 encoding: Optional[str] = None, newline: Optional[str] = None) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` whole.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.  A symbolic link is followed: its target is
        written and the link stays a link.
    mode : {"wb", "w"}
        Binary or text.
    encoding, newline : str, optional
        As for :func:`open` in text mode.

    Yields
    ------
    file object
        The temporary file.  When the ``with`` block ends without an
        exception it is flushed to disk and renamed over the target
        (``os.replace``); otherwise it is removed and the target is left
        as it was.

    Notes
    -----
    An existing target keeps its permission bits; a new file gets the
    umask's default, as :func:`open` would give it.  The temporary file is
    created in the target's own directory, so the rename never crosses file
    systems and a reader sees either the old file or the new one, never a
    half-written one.
    """
    target = os.path.realpath(os.fsdecode(os.fspath(path)))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    directory, base = os.path.split(target)
    try:
        mode_bits: Optional[int] = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode_bits = None
    while True:
        temp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 lets the umask decide a new file's permissions, as for any new file.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:
            continue
    try:
        if mode_bits is not None:
            os.chmod(temp, mode_bits)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _read_header(fp, version):
    """(shape, fortran_order, dtype) of an .npy stream positioned after its magic."""
    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    if version not in readers:
        raise _BadFile(f".npy format version {version} is not supported")
    try:
        return readers[version](fp, max_header_size=_MAX_HEADER_SIZE)
    except TypeError:
        # NumPy < 1.24 has no max_header_size; the member size still bounds the header.
        return readers[version](fp)


def _read_into(fp, buffer, what):
    """Fill the uint8 array buffer from fp, chunk by chunk."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(view):
        n = fp.readinto(view[filled:filled + (1 << 24)])
        if not n:
            raise _BadFile(f"{what} is truncated: expected {len(view)} bytes of data, "
                           f"got {filled}")
        filled += n


class _Archive:
    """The .npy members of an open zip, read with every check before any allocation."""

    def __init__(self, zf, archive_size):
        self.zf = zf
        self.members = {}
        for info in zf.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if not name.endswith(".npy"):
                raise _BadFile(f"it holds {name!r}, which is not a .npy array "
                               "(not a pybackprop network file)")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _BadFile(f"member {name!r} uses an unsupported compression method "
                               f"({info.compress_type})")
            if info.compress_size > archive_size:
                raise _BadFile(f"member {name!r} claims {info.compress_size} bytes, more than "
                               f"the whole file ({archive_size} bytes): truncated or corrupted")
            limit = info.compress_size * (_MAX_DEFLATE_RATIO if info.compress_type else 1)
            if info.file_size > limit + 64:
                raise _BadFile(f"member {name!r} claims an impossible size ({info.file_size} "
                               f"bytes from {info.compress_size} stored): corrupted")
            self.members[name[:-len(".npy")]] = info

    def keys(self):
        return list(self.members)

    def read(self, key, kinds, shape=None, max_size=None):
        """The array stored under key, after checking its header.

        kinds: allowed dtype kinds; shape: the exact shape required (None:
        any); max_size: most elements allowed.
        """
        info = self.members.get(key)
        if info is None:
            raise _BadFile(f"it has no {key!r} entry (not a pybackprop network file, "
                           f"or damaged); entries: {', '.join(sorted(self.members)) or 'none'}")
        with self.zf.open(info) as fp:
            try:
                version = npy_format.read_magic(fp)
                shape_read, fortran_order, dtype = _read_header(fp, version)
            except _BadFile:
                raise
            except READ_ERRORS as exc:
                raise _BadFile(f"{key!r} is not a valid .npy array ({_short(exc)})") from exc
            if dtype.hasobject:
                raise _BadFile(f"{key!r} holds Python objects (pickled data); refusing to "
                               "unpickle them, which could execute code")
            if dtype.kind not in kinds or dtype.names is not None or dtype.subdtype is not None:
                raise _BadFile(f"{key!r} has dtype {dtype}; expected {_describe_kinds(kinds)}")
            if any(n < 0 for n in shape_read):
                raise _BadFile(f"{key!r} has an invalid shape {shape_read}")
            if shape is not None and tuple(shape_read) != tuple(shape):
                raise _BadFile(f"{key!r} has shape {tuple(shape_read)} but layer_sizes needs "
                               f"{tuple(shape)}")
            count = math.prod(shape_read)
            if max_size is not None and count > max_size:
                raise _BadFile(f"{key!r} has {count} elements (shape {tuple(shape_read)}), "
                               f"more than the limit of {max_size}")
            n_bytes = count * dtype.itemsize
            present = info.file_size - fp.tell()
            if n_bytes != present:
                raise _BadFile(f"{key!r} declares shape {tuple(shape_read)} of {dtype} "
                               f"({n_bytes} bytes) but holds {present} bytes: truncated or "
                               "corrupted")
            # The member's declared size was checked against the archive's
            # size above, so this allocation is backed by bytes in the file.
            flat = np.empty(count, dtype=dtype)
            _read_into(fp, flat.view(np.uint8), repr(key))
            # Reading to the member's end makes zipfile verify its CRC-32.
            fp.read(1)
        array = flat.reshape(shape_read, order="F" if fortran_order else "C")
        if dtype.kind in "biuf" and not dtype.isnative:
            return array.astype(dtype.newbyteorder("="), order="C")
        return array.copy(order="C") if fortran_order else array

    def read_name(self, key):
        """A 0-d string entry as a str."""
        value = self.read(key, "U", shape=(), max_size=1)
        try:
            _check_code_points(value, key)
        except ValueError as exc:
            raise _BadFile(str(exc)) from None
        return str(value.item())


def _describe_kinds(kinds):
    if kinds == "fiu":
        return "real numbers (float or integer)"
    if kinds == "iu":
        return "integers"
    names = {"f": "float", "i": "integer", "u": "unsigned integer", "b": "bool", "U": "str"}
    return " or ".join(names[k] for k in kinds)


def _read_network_state(archive):
    """The state dict stored in the archive, every entry checked, nothing allocated blindly."""
    if "pybackprop_format" not in archive.members:
        raise _BadFile("it has no 'pybackprop_format' entry, so it is not a pybackprop network "
                       f"file; entries: {', '.join(sorted(archive.members)) or 'none'}")
    _format_version(archive.read("pybackprop_format", "iu", shape=()))
    sizes = _sizes(archive.read("layer_sizes", "iu", max_size=_MAX_LAYERS + 1))
    n_layers = len(sizes) - 1
    state = {"layer_sizes": np.array(sizes, dtype=np.int64)}
    state["activations"] = archive.read("activations", "U", shape=(n_layers - 1,))
    if state["activations"].dtype.itemsize > 4 * _MAX_NAME_CHARS:
        raise _BadFile(f"'activations' has absurdly long names ({state['activations'].dtype})")
    for key in ("output", "loss", "dtype"):
        state[key] = archive.read_name(key)
    # Names are checked now so that an unknown one fails before the weights are read.
    _validation.check_activations(_names(state["activations"], "activations"), n_layers - 1)
    _validation.check_output_loss(state["output"], state["loss"], sizes[-1])
    _dtype_entry(state["dtype"])
    for key, shape in _parameter_shapes(sizes).items():
        state[key] = archive.read(key, "fiu", shape=shape)
    known = set(state) | {"pybackprop_format"}
    unexpected = [k for k in archive.keys() if k not in known and not k.startswith(_OPTIMIZER_PREFIX)]
    if unexpected:
        raise _BadFile(f"it has unexpected entries {', '.join(map(repr, sorted(unexpected)))} "
                       f"for layer_sizes {list(sizes)}")
    return state


# What save writes for an int: the core counts steps in a C long long.
_INT64 = np.iinfo(np.int64)


def _read_optimizer_state(archive, dtype):
    """The optimizer entries with the prefix removed; None if there are none.

    Checked so that what loads can be used: integers fit the int64 save
    writes (the step count is also >= 0), and floats are finite in the
    network's dtype, whose arrays they become.
    """
    keys = [k for k in archive.keys() if k.startswith(_OPTIMIZER_PREFIX)]
    if not keys:
        return None
    state = {}
    for key in keys:
        array = archive.read(key, "biufU", max_size=MAX_PARAMETERS)
        name = key[len(_OPTIMIZER_PREFIX):]
        _check_optimizer_entry(array, key, dtype)
        # 0-d entries were Python scalars when saved: give them back as such.
        state[name] = array.item() if array.ndim == 0 else array
    return state


def _check_optimizer_entry(array, key, dtype):
    if array.dtype.kind in "iu" and array.size:
        low = 0 if key == _OPTIMIZER_PREFIX + "step" else _INT64.min
        if int(array.min()) < low or int(array.max()) > _INT64.max:
            raise _BadFile(f"{key!r} holds {int(array.min())}..{int(array.max())}, outside "
                           f"{low}..{_INT64.max}")
    elif array.dtype.kind == "f":
        # 0-d floats are hyperparameters (Python floats); arrays are state
        # vectors that become arrays of the network's dtype.
        target = np.dtype(np.float64) if array.ndim == 0 else dtype
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(array.reshape(-1)) <= np.finfo(target).max)
        if np.any(bad):
            raise _BadFile(f"{key!r} holds {float(array.reshape(-1)[np.argmax(bad)])!r}, which is "
                           f"not finite in {target.name}")


def read(path: PathArgument, with_optimizer_state: bool = False,
         ) -> tuple[NetworkState, Optional[dict[str, Any]]]:
    """Read and check a network file written by :func:`save`, without building a network.

    Parameters
    ----------
    path : str or os.PathLike
    with_optimizer_state : bool, default False
        Also read the optimizer state stored by ``save(..., optimizer=)``.

    Returns
    -------
    network_state : NetworkState
        The architecture and the checked parameter vector.
    optimizer_state : dict or None
        As :func:`load` returns it; always None without
        ``with_optimizer_state``.

    Raises
    ------
    OSError, ValueError
        As :func:`load`.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            try:
                magic = f.read(6)
                if not magic:
                    raise _BadFile("the file is empty")
                if magic == npy_format.MAGIC_PREFIX:
                    raise _BadFile("it is a single .npy array, not a .npz network file")
                if magic[:2] != b"PK":
                    raise _BadFile("it is not an .npz (zip) archive")
                archive_size = os.fstat(f.fileno()).st_size
                f.seek(0)
                with zipfile.ZipFile(f) as zf:
                    archive = _Archive(zf, archive_size)
                    state = _read_network_state(archive)
                    optimizer_state = (_read_optimizer_state(archive, _dtype_entry(state["dtype"]))
                                       if with_optimizer_state else None)
                network_state = checked_network_state(state)
            except _BadFile:
                raise
            except READ_ERRORS as exc:
                raise _BadFile(_corruption_message(exc)) from exc
        except _BadFile as exc:
            raise ValueError(f"cannot load network from {path!r}: {exc}") from exc.__cause__
    return network_state, optimizer_state


@overload
def load(path: PathArgument, with_optimizer_state: Literal[False] = ...) -> MLP: ...


@overload
def load(path: PathArgument, with_optimizer_state: Literal[True],
         ) -> tuple[MLP, Optional[dict[str, Any]]]: ...


@overload
def load(path: PathArgument, with_optimizer_state: bool,
         ) -> Union[MLP, tuple[MLP, Optional[dict[str, Any]]]]: ...


def load(path: PathArgument, with_optimizer_state: bool = False,
         ) -> Union[MLP, tuple[MLP, Optional[dict[str, Any]]]]:
    """Read a network written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
    with_optimizer_state : bool, default False
        Also return the optimizer state stored by ``save(..., optimizer=)``.

    Returns
    -------
    net : MLP
        The saved architecture, dtype and parameters: its predictions are
        bit-identical to the saved network's.
    optimizer_state : dict or None
        Only with ``with_optimizer_state=True``: the saved
        ``optimizer.state_dict()`` with keys as given, 0-d entries as Python
        ``bool``/``int``/``float``/``str`` and others as ndarrays (pass it to
        the optimizer's ``load_state_dict``); ``None`` if the file holds no
        optimizer state.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (``IsADirectoryError`` if it is a
        directory, ``PermissionError`` if it cannot be read).
    ValueError
        The file is not a pybackprop network file or is damaged: empty,
        not a zip archive (text, random bytes, a single ``.npy``),
        truncated, failing its checksums, holding a member that is not a
        valid ``.npy`` array, holding pickled object arrays, missing
        entries, another format version, unknown activation or loss names,
        layer sizes that are not positive integers or describe more than
        :data:`MAX_PARAMETERS` parameters, arrays whose shapes disagree
        with ``layer_sizes``, non-finite weights, or weights that are not
        real numbers.  The message starts with the path and says what is
        wrong; the low-level error (``BadZipFile``, ``EOFError``, ...) is
        chained as ``__cause__``.

    Notes
    -----
    Nothing in the file is executed or unpickled: members are read with the
    ``.npy`` header checked first (object dtypes refused), data sizes are
    checked against the bytes present, and the network is allocated only
    after every array has been read and checked.
    """
    network_state, optimizer_state = read(path, with_optimizer_state)
    net = _build_network(network_state)
    if with_optimizer_state:
        return net, optimizer_state
    return net


def _short(exc, limit=200):
    """The error's message, cut short: zipfile quotes whole headers in some."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


def _corruption_message(exc):
    """Say what a low-level error means for a network file."""
    if isinstance(exc, zipfile.BadZipFile):
        return f"the archive is truncated or corrupted ({_short(exc)})"
    if isinstance(exc, (EOFError, struct.error, zlib.error, OSError)):
        return f"the archive is truncated or corrupted ({type(exc).__name__}: {_short(exc)})"
    if isinstance(exc, (ValueError, TypeError)):
        # Our own checks of names and sizes land here, with their own messages.
        return str(exc)
    return f"the file is damaged ({type(exc).__name__}: {_short(exc)})"
