"""Fuzz target: ``MLP.load_state_dict`` and ``pybackprop.io.network_from_state_dict``
on a fuzzed mapping of names to arrays.

The bytes decode (see ``decode``) into: which of a few fixed networks to load
into, ``strict``, which entry point, and a list of (key, value) entries whose
values are arrays of any dtype and shape (filled from the bytes), nested
lists, strings, Python scalars or None.  ``encode`` is its inverse for
arrays, so the corpus holds real state dicts (tests/fuzz/make_corpus.py).

Documented outcomes (``pybackprop.io.load_state_dict``): the parameters
become the given values converted to the network's dtype (missing ones kept
with ``strict=False``), or ``ValueError`` / ``TypeError`` with the network
byte for byte unchanged.  ``network_from_state_dict`` returns a network
whose parameters are the given values, or raises one of the two.  Anything
else is a finding.
"""

import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_common  # noqa: E402

import pybackprop  # noqa: E402
from pybackprop import io as pio  # noqa: E402

TARGET = "state_dict"

# (layer sizes, keyword arguments): the networks a state is loaded into.
NETWORKS = [
    ([3, 4, 2], dict(output="softmax")),
    ([3, 4, 2], dict(output="softmax", dtype="float32")),
    ([2, 1], dict(output="identity")),
    ([2, 3, 3, 1], dict(activation=["tanh", "relu"], output="sigmoid", dtype="float32")),
]
# Keys a state dict can hold; any other key is spelled out in the bytes.
KEYS = ["W0", "b0", "W1", "b1", "W2", "b2", "layer_sizes", "activations", "output", "loss",
        "dtype", "pybackprop_format"]
DTYPES = ["<f8", "<f4", "<f2", ">f8", "<i8", "<i4", "|i1", "<u8", "|u1", "|b1", "<c16", "<U8",
          "|S4", "<M8[s]", "<m8[s]", "<f16", "V4"]
# Value kinds, by the byte that selects them.
ARRAY, TEXT, LIST, INT, FLOAT, NONE, ZERO_D_TEXT, OBJECT_ARRAY = range(8)
MAX_ELEMENTS = 4096


class Reader:
    """Consumes the fuzzer's bytes; reads past the end as zeros, then stops."""

    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def remaining(self) -> int:
        return len(self.data) - self.position

    def take(self, n: int) -> bytes:
        chunk = self.data[self.position:self.position + n]
        self.position += n
        return chunk + bytes(n - len(chunk))

    def byte(self) -> int:
        return self.take(1)[0]

    def text(self) -> str:
        return self.take(self.byte()).decode("utf-8", "replace")


def decode(data: bytes):
    """(network index, strict, use network_from_state_dict, state dict)."""
    reader = Reader(data)
    network = reader.byte() % len(NETWORKS)
    flags = reader.byte()
    state = {}
    while reader.remaining() > 0:
        k = reader.byte()
        key = KEYS[k] if k < len(KEYS) else reader.text()
        state[key] = _value(reader)
    return network, bool(flags & 1), bool(flags & 2), state


def _value(reader: Reader):
    kind = reader.byte() % 8
    if kind in (ARRAY, LIST, OBJECT_ARRAY):
        dtype = np.dtype(DTYPES[reader.byte() % len(DTYPES)])
        shape = tuple(reader.byte() for _ in range(reader.byte() % 4))
        count = int(np.prod(shape, dtype=np.int64))
        if count > MAX_ELEMENTS:
            shape, count = (0,), 0
        raw = reader.take(count * dtype.itemsize)
        if dtype.kind == "U" and kind != ARRAY:
            # A Python str holds code points up to U+10FFFF only, so text
            # beyond that cannot reach the library as a list or as objects
            # (NumPy raises SystemError making the str): those code points
            # wrap into range here.  As an array (ARRAY) it still gets them raw.
            raw = (np.frombuffer(raw, dtype="<u4") % 0x110000).astype("<u4").tobytes()
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if kind == LIST:
            return array.tolist()
        if kind == OBJECT_ARRAY:
            return array.astype(object)
        return array
    if kind == TEXT:
        return reader.text()
    if kind == ZERO_D_TEXT:
        return np.array(reader.text())
    if kind == INT:
        return struct.unpack("<q", reader.take(8))[0]
    if kind == FLOAT:
        return struct.unpack("<d", reader.take(8))[0]
    return None


def encode(network: int, strict: bool, from_state: bool, state: dict) -> bytes:
    """Bytes that decode() turns back into state (ndarray and str values only)."""
    out = bytearray([network, int(strict) | 2 * int(from_state)])
    for key, value in state.items():
        if key in KEYS:
            out.append(KEYS.index(key))
        else:
            raw = key.encode()
            out += bytes([255, len(raw)]) + raw
        if isinstance(value, str):
            raw = value.encode()
            out += bytes([TEXT, len(raw)]) + raw
            continue
        array = np.asarray(value)
        if array.dtype.kind == "U" and array.ndim == 0:
            raw = str(array).encode()
            out += bytes([ZERO_D_TEXT, len(raw)]) + raw
            continue
        if array.dtype.kind == "U":
            array = array.astype("<U8")  # the one text dtype of DTYPES
        dtype = next(d for d in DTYPES if np.dtype(d) == array.dtype)
        out += bytes([ARRAY, DTYPES.index(dtype), array.ndim, *array.shape])
        out += array.tobytes()
    return bytes(out)


def _network(index: int) -> "pybackprop.MLP":
    sizes, kwargs = NETWORKS[index]
    return pybackprop.MLP(sizes, seed=index, **kwargs)


def _expected_parameters(net, state: dict) -> bytes:
    """The parameter bytes a successful load must give."""
    expected = net.parameters.copy()
    offset = 0
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        for key, current in ((f"W{i}", W), (f"b{i}", b)):
            if key in state:
                value = np.array(np.asarray(state[key]), dtype=net.dtype).ravel()
                expected[offset:offset + current.size] = value
            offset += current.size
    return expected.tobytes()


def check(data: bytes) -> None:
    index, strict, from_state, state = decode(data)
    if from_state:
        try:
            net = pio.network_from_state_dict(state)
        except (ValueError, TypeError):
            return
        if not np.all(np.isfinite(net.parameters)):
            raise fuzz_common.Finding("network_from_state_dict built non-finite parameters")
        if net.parameters.tobytes() != _expected_parameters(net, state):
            raise fuzz_common.Finding("network_from_state_dict's parameters are not the state's")
        net.predict(np.zeros((1, net.layer_sizes[0]), dtype=net.dtype))
        return
    net = _network(index)
    before = net.parameters.tobytes()
    try:
        net.load_state_dict(state, strict=strict)
    except (ValueError, TypeError):
        if net.parameters.tobytes() != before:
            raise fuzz_common.Finding("a refused load_state_dict changed the parameters") from None
        return
    after = net.parameters.tobytes()
    if not np.all(np.isfinite(net.parameters)):
        raise fuzz_common.Finding("load_state_dict accepted non-finite parameters")
    net.parameters[...] = np.frombuffer(before, dtype=net.dtype)
    if after != _expected_parameters(net, state):
        raise fuzz_common.Finding("load_state_dict's parameters are not the state's")


if __name__ == "__main__":
    fuzz_common.fuzz(TARGET, check)
