"""Property-based fuzzing of the public API: no crash, no corruption, whatever the input.

The compiled core runs with bounds checks off, so a single input that slips
past validation can crash the interpreter or write out of bounds.  These
tests run in-process on purpose: a segfault fails the whole run.

Oracle of every call:
- inputs whose values are real numbers (any float or integer dtype, any
  memory layout: Fortran order, strided, negative strides, read-only,
  byte-swapped, unaligned, nested lists) must give exactly the result of the
  same call on a clean C-contiguous copy converted to the network's dtype,
  on an identical copy of the network;
- anything else (bool, complex, object, string, wrong rank or shape, empty
  batch, NaN/inf, bad labels, bad weights, bad learning rates) must raise
  ValueError or TypeError naming the culprit, leaving the parameters and the
  gradient buffers byte for byte as they were.

``PYBACKPROP_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`` runs a longer fuzz.
"""

import math
import os
import tempfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pybackprop
from pybackprop import MLP, _validation
from pybackprop.optim import SGD, Adam, AdamW

HIDDEN = list(_validation.HIDDEN_ACTIVATIONS)
PAIRS = list(_validation.VALID_PAIRS)
ACCEPTED = (ValueError, TypeError, FloatingPointError)


def fuzz(default):
    """Hypothesis settings: default examples in CI, PYBACKPROP_FUZZ_EXAMPLES for long runs."""
    examples = int(os.environ.get("PYBACKPROP_FUZZ_EXAMPLES", "0")) or default
    return settings(max_examples=examples, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- networks ---------------------------------------------------------------------------

@st.composite
def networks(draw):
    n_in = draw(st.integers(1, 16))
    hidden = draw(st.lists(st.integers(1, 16), max_size=4))
    output, loss = draw(st.sampled_from(PAIRS))
    n_out = draw(st.integers(2 if output == "softmax" else 1, 16))
    if hidden and draw(st.booleans()):
        activation = draw(st.lists(st.sampled_from(HIDDEN), min_size=len(hidden), max_size=len(hidden)))
    else:
        activation = draw(st.sampled_from(HIDDEN))
    dtype = draw(st.sampled_from(["float64", "float32"]))
    net = MLP([n_in, *hidden, n_out], activation=activation, output=output, loss=loss,
              dtype=dtype, seed=draw(st.integers(0, 2**32 - 1)))
    # Large weights drive every activation into saturation.
    scale = draw(st.sampled_from([1.0, 1.0, 4.0, 64.0]))
    net.parameters[...] *= scale
    return net


# -- values ----------------------------------------------------------------------------

EXTREMES = [0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 1e-310, -1e-310, 5e-324, 3e38, -3e38,
            1e-40, 700.0, -745.0, 89.0, -104.0, 1e4, -1e4, 0.5]


@st.composite
def real_values(draw, shape, kind, clean):
    """float64 values of a shape: kind "any" (targets, inputs), "unit" ([0, 1]),
    "weight" (>= 0, not all zero).  clean=True draws only small dyadic values."""
    extreme = not clean and draw(st.integers(0, 3)) == 0
    if kind == "unit":
        pool = [0.0, 1.0, 1e-310, 1 - 2.0**-53, 0.5] if extreme else None
        values = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 8))) / 8.0
    elif kind == "weight":
        values = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 16))) / 4.0
        if values.size:
            values.flat[draw(st.integers(0, values.size - 1))] = draw(st.integers(1, 16)) / 4.0
        pool = [1e300, 1e-310, 1.0, 3e38, 1e-40] if extreme else None
    else:
        values = draw(hnp.arrays(np.int64, shape, elements=st.integers(-512, 512))) / 8.0
        pool = EXTREMES if extreme else None
    if pool is not None and values.size:
        picks = draw(st.lists(st.tuples(st.integers(0, values.size - 1), st.sampled_from(pool)),
                              min_size=1, max_size=4))
        for index, value in picks:
            values.flat[index] = value
    return values


INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64, np.longdouble]
LAYOUTS = ["same", "fortran", "strided", "negative", "readonly", "byteswap", "unaligned", "list"]


def _unaligned(array):
    buffer = bytearray(array.nbytes + 1)
    view = np.frombuffer(buffer, dtype=array.dtype, count=array.size, offset=1).reshape(array.shape)
    view[...] = array
    return view


def apply_layout(array, layout):
    """The same values in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in array.shape), dtype=array.dtype)
        index = tuple(slice(1, None, 2) for _ in array.shape)
        big[index] = array
        return big[index]
    if layout == "negative":
        flipped = np.ascontiguousarray(array[(slice(None, None, -1),) * array.ndim])
        return flipped[(slice(None, None, -1),) * array.ndim]
    if layout == "readonly":
        copy = array.copy()
        copy.flags.writeable = False
        return copy
    if layout == "byteswap":
        return array.astype(array.dtype.newbyteorder(">" if array.dtype.isnative and
                                                      np.little_endian else "<"))
    if layout == "unaligned":
        return _unaligned(array) if array.dtype.itemsize > 1 else array
    if layout == "list":
        return array.tolist()
    return array


@st.composite
def valid_form(draw, values, allow_casts=True):
    """values (float64 or intp) in a random real dtype and memory layout."""
    array = values
    if allow_casts and draw(st.booleans()):
        with np.errstate(all="ignore"):  # casting 1e308 to float16 or int overflows, as intended
            array = _cast(draw, values)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "list" and array.dtype == np.longdouble:
        layout = "same"
    return apply_layout(array, layout)


def _cast(draw, values):
    """values in another real dtype (integer casts wrap; float casts may round)."""
    if values.dtype.kind != "f":
        return values.astype(draw(st.sampled_from(INT_DTYPES)))
    target = draw(st.sampled_from(INT_DTYPES + FLOAT_DTYPES))
    if np.dtype(target).kind in "iu":
        return np.trunc(values).astype(np.int64).astype(target)
    return values.astype(target)


def clean_copy(raw, dtype):
    """What the raw input means: a C-contiguous array of dtype."""
    return np.ascontiguousarray(np.asarray(raw), dtype=dtype)


@st.composite
def invalid_form(draw, values, role, net, n):
    """An input that must be refused: wrong type, rank, shape or values."""
    choices = ["bool", "complex", "object", "string", "bytes", "rank3", "scalar", "empty",
               "huge_wrong", "nan", "inf", "datetime", "ragged", "mismatch"]
    if role == "X":
        choices += ["columns"]
    if role == "y" and net.loss_name != "squared_error":
        choices += ["outside"]
    if role == "labels":
        choices = ["bool", "complex", "object", "string", "rank3", "empty", "huge_wrong",
                   "float_labels", "negative", "too_big", "mismatch", "uint_huge"]
    if role == "sample_weight":
        choices += ["negative_weight", "zeros", "nan"]
    kind = draw(st.sampled_from(choices))
    v = np.asarray(values, dtype=np.float64)
    if kind == "bool":
        return v != 0
    if kind == "complex":
        return v.astype(np.complex128)
    if kind == "object":
        return v.astype(object)
    if kind == "string":
        return v.astype(str)
    if kind == "bytes":
        return v.astype("S8")
    if kind == "datetime":
        return np.zeros(v.shape, dtype="datetime64[s]")
    if kind == "ragged":
        return [[1.0], [1.0, 2.0]]
    if kind == "rank3":
        # Rank 3 whatever the valid form's rank: adding one axis to a 1-D y of
        # one sample gave shape (1, 1), which is valid, not corrupt.
        return v.reshape((1,) * max(1, 3 - v.ndim) + v.shape)
    if kind == "scalar":
        return np.float64(1.0)
    if kind == "empty":
        return v[:0]
    if kind == "columns":
        return np.zeros((n, net.n_in + draw(st.integers(1, 3))))
    if kind == "mismatch":
        rows = draw(st.integers(1, 20).filter(lambda r: r != n))
        if role == "X":
            return np.zeros((n, net.n_in + 1)) if draw(st.booleans()) else np.zeros((rows, net.n_in + 2))
        return np.resize(v, (rows,) + v.shape[1:])
    if kind == "huge_wrong":
        # A view claiming 2**40 rows (no memory behind it) with a wrong shape:
        # refused by shape checks, before anything is copied.
        if role == "X":
            return np.broadcast_to(np.float64(1.0), (2**40, net.n_in + 1))
        return np.broadcast_to(v.ravel()[:1] if v.size else np.float64(1.0), (2**40,) + v.shape[1:])
    if kind in ("nan", "inf"):
        bad = v.copy()
        bad.flat[draw(st.integers(0, bad.size - 1))] = (np.nan if kind == "nan"
                                                        else draw(st.sampled_from([np.inf, -np.inf])))
        return bad
    if kind == "outside":
        bad = v.copy()
        outside = st.sampled_from([-0.5, 1.5, -1e-30, 1 + 1e-6, 2.0])
        bad.flat[draw(st.integers(0, bad.size - 1))] = draw(outside)
        return bad
    if kind == "float_labels":
        return v + 0.0
    if kind == "negative":
        bad = np.asarray(values).copy()
        bad[draw(st.integers(0, bad.size - 1))] = -draw(st.integers(1, 2**62))
        return bad
    if kind == "too_big":
        bad = np.asarray(values).copy()
        too_large = st.sampled_from([net.n_out, net.n_out + 1, 2**31, 2**32 + 1, 2**62])
        bad[draw(st.integers(0, bad.size - 1))] = draw(too_large)
        return bad.astype(draw(st.sampled_from([np.int64, np.uint64])))
    if kind == "uint_huge":
        bad = np.asarray(values).astype(np.uint64)
        bad[draw(st.integers(0, bad.size - 1))] = 2**64 - 1 - draw(st.integers(0, 5))
        return bad
    if kind == "negative_weight":
        bad = v.copy()
        # (-1e-310 rounds to -0.0, a valid weight, in a float32 network.)
        tiny = 1e-310 if net.dtype == np.float64 else 1e-35
        bad.flat[draw(st.integers(0, bad.size - 1))] = -draw(st.sampled_from([1.0, tiny, 1e308]))
        return bad
    if kind == "zeros":
        return np.zeros_like(v)
    raise AssertionError(kind)


# -- batches ------------------------------------------------------------------------------

KEYWORDS = {"X": ("X",), "y": ("y", "label", "target"), "labels": ("y", "label"),
            "sample_weight": ("sample_weight",), "lr": ("learning rate",),
            "grad_output": ("grad_output",), "epochs": ("epochs",), "batch_size": ("batch_size",),
            "optimizer": ("optimizer",)}


@st.composite
def batches(draw, net, with_y=True, with_weight=True, corrupt=None):
    """(raw, clean, corrupted role or None): raw and clean dicts of X, y, sample_weight."""
    n = draw(st.integers(1, 12))
    roles = ["X"] + (["y"] if with_y else []) + (["sample_weight"] if with_weight else [])
    if corrupt is None:
        corrupt = draw(st.sampled_from([None, None] + roles))
    # Values are kept small and finite when something else is corrupted, so
    # that the error (and its message) can only come from that.
    clean_values = corrupt is not None
    if corrupt == "none":
        corrupt = None
    raw, clean = {"_n": n}, {"_n": n}
    X = draw(real_values((n, net.n_in), "any", clean_values))
    raw["X"], clean["X"] = _form(draw, X, "X", net, n, corrupt == "X")
    if with_y:
        if net.loss_name == "cross_entropy" and draw(st.booleans()):
            labels = draw(hnp.arrays(np.intp, (n,), elements=st.integers(0, net.n_out - 1)))
            raw["y"], clean["y"] = _form(draw, labels, "labels", net, n, corrupt == "y", np.intp)
        else:
            kind = "any" if net.loss_name == "squared_error" else "unit"
            flat = net.n_out == 1 and draw(st.booleans())
            shape = (n,) if flat else (n, net.n_out)
            y = draw(real_values(shape, kind, clean_values))
            raw["y"], clean["y"] = _form(draw, y, "y", net, n, corrupt == "y")
    if with_weight:
        if corrupt == "sample_weight" or draw(st.booleans()):
            w = draw(real_values((n,), "weight", clean_values))
            raw["sample_weight"], clean["sample_weight"] = _form(draw, w, "sample_weight", net, n,
                                                                 corrupt == "sample_weight")
        else:
            raw["sample_weight"] = clean["sample_weight"] = None
    return raw, clean, corrupt


def _form(draw, values, role, net, n, corrupt, clean_dtype=None):
    if corrupt:
        return draw(invalid_form(values, role, net, n)), None
    if role == "labels":
        raw = draw(valid_form(values))
        return raw, clean_copy(raw, np.intp)
    raw = draw(valid_form(values, allow_casts=True))
    return raw, clean_copy(raw, net.dtype)


# -- the oracle ------------------------------------------------------------------------------

def outcome(call):
    """("ok", result) or ("error", exception); anything but the accepted
    exception types propagates and fails the test."""
    try:
        return "ok", call()
    except ACCEPTED as exc:
        return "error", exc


def assert_same(a, b, what="result"):
    """Nested floats, arrays, tuples and lists equal (NaN equal to NaN)."""
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{what}[{i}]")
    elif a is None:
        assert b is None, what
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, \
            f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=what)


def snapshot(net):
    return net.parameters.tobytes(), net._core.grads.tobytes()


def prime_grads(net):
    """Fill the gradient buffers with something recognisable (not zeros)."""
    net._core.grads[...] = np.arange(net.n_params) % 7 + 0.25


def check_call(net, call, raw, clean, corrupt, clean_call=None):
    """Run call on net with raw inputs and on a copy with clean inputs; compare."""
    clean_net = net.copy()
    prime_grads(net)
    prime_grads(clean_net)
    before = snapshot(net)
    got = outcome(lambda: call(net, raw))
    if corrupt is not None:
        assert got[0] == "error", f"{corrupt} was invalid but the call returned {got[1]!r}"
        exc = got[1]
        assert type(exc) in (ValueError, TypeError), f"{type(exc).__name__}: {exc}"
        message = str(exc)
        assert any(word in message for word in KEYWORDS[corrupt]), \
            f"error for a bad {corrupt} does not say so: {message!r}"
        assert snapshot(net) == before, "a refused call changed the parameters or gradients"
        return None
    expected = outcome(lambda: (clean_call or call)(clean_net, clean))
    assert got[0] == expected[0], f"raw input gave {got!r} but the clean copy gave {expected!r}"
    if got[0] == "error":
        assert type(got[1]) is type(expected[1]), f"{got[1]!r} vs {expected[1]!r}"
        if not isinstance(got[1], pybackprop.TrainingDiverged):
            assert snapshot(net) == before, "a failed call changed the parameters or gradients"
    else:
        assert_same(got[1], expected[1])
    np.testing.assert_array_equal(net.parameters, clean_net.parameters)
    return got


# -- learning rates ------------------------------------------------------------------------

VALID_LRS = st.one_of(
    st.integers(0, 16).map(lambda k: k / 16),
    st.sampled_from([0, 1, np.float64(0.125), np.float32(0.5), np.int64(0), np.float16(0.25),
                     Fraction(1, 4), 1e-300, 5e-324, 1e300, 1e308, np.uint8(1)]),
)
INVALID_LRS = st.sampled_from([-1.0, -1e-300, -0.0 - 1e-9, math.nan, math.inf, -math.inf, "0.1", b"1",
                               None, True, False, np.bool_(True), 1 + 0j, [0.1], (0.1,),
                               np.array([0.1]), np.float64(np.nan), np.float32(np.inf),
                               object(), np.int64(-1), {"lr": 0.1}])


@st.composite
def learning_rates(draw, corrupt):
    return draw(INVALID_LRS if corrupt else VALID_LRS)


# -- tests ------------------------------------------------------------------------------

@fuzz(250)
@given(data=st.data())
def test_fuzz_predict(data):
    net = data.draw(networks())
    raw, clean, corrupt = data.draw(batches(net, with_y=False, with_weight=False))
    single = corrupt is None and data.draw(st.booleans())
    if single:
        # One sample as a 1-D vector gives a 1-D output.
        raw["X"] = np.asarray(raw["X"])[0]
        clean["X"] = clean["X"][0:1]
        got = check_call(net, lambda m, a: m.predict(a["X"]), raw, clean, corrupt,
                         clean_call=lambda m, a: m.predict(a["X"])[0])
    else:
        got = check_call(net, lambda m, a: m.predict(a["X"]), raw, clean, corrupt)
    if got is not None and got[0] == "ok":
        out = got[1]
        assert out.dtype == net.dtype
        if net.output != "identity" and np.all(np.isfinite(out)):
            assert np.all((out >= 0) & (out <= 1))


@fuzz(250)
@given(data=st.data())
def test_fuzz_loss(data):
    net = data.draw(networks())
    raw, clean, corrupt = data.draw(batches(net))
    got = check_call(net, lambda m, a: m.loss(a["X"], a["y"], sample_weight=a["sample_weight"]),
                     raw, clean, corrupt)
    if got is not None and got[0] == "ok":
        assert type(got[1]) is float


@fuzz(250)
@given(data=st.data())
def test_fuzz_loss_and_grad(data):
    net = data.draw(networks())
    raw, clean, corrupt = data.draw(batches(net))
    input_grad = data.draw(st.booleans())
    copy = data.draw(st.booleans())

    def call(m, a):
        result = m.loss_and_grad(a["X"], a["y"], a["sample_weight"], input_grad=input_grad, copy=copy)
        # Views of the gradient buffers: copy before anything else runs.
        return tuple(r if isinstance(r, float) else
                     (None if r is None else (r.copy() if isinstance(r, np.ndarray)
                                              else tuple(g.copy() for g in r)))
                     for r in result)

    got = check_call(net, call, raw, clean, corrupt)
    if got is not None and got[0] == "ok":
        loss, dW, db = got[1][:3]
        assert math.isfinite(loss)
        assert [g.shape for g in dW] == [w.shape for w in net.weights]
        assert [g.shape for g in db] == [b.shape for b in net.biases]


@fuzz(250)
@given(data=st.data())
def test_fuzz_train_step(data):
    net = data.draw(networks())
    corrupt_lr = data.draw(st.integers(0, 4)) == 0
    raw, clean, corrupt = data.draw(batches(net, corrupt="none" if corrupt_lr else None))
    if corrupt_lr:
        corrupt = "lr"
    raw["lr"] = data.draw(learning_rates(corrupt_lr))
    if not corrupt_lr:
        clean["lr"] = float(raw["lr"])
    check_call(net, lambda m, a: m.train_step(a["X"], a["y"], a["lr"], a["sample_weight"]),
               raw, clean, corrupt)


@fuzz(200)
@given(data=st.data())
def test_fuzz_backward(data):
    net = data.draw(networks())
    corrupt_g = data.draw(st.integers(0, 3)) == 0
    raw, clean, corrupt = data.draw(batches(net, with_y=False, with_weight=False,
                                            corrupt="X" if data.draw(st.integers(0, 5)) == 0 else
                                            ("none" if corrupt_g else None)))
    if corrupt == "none":
        corrupt = None
    n = raw["_n"]
    flat = net.n_out == 1 and data.draw(st.booleans())
    g = data.draw(real_values((n,) if flat else (n, net.n_out), "any", corrupt_g or corrupt is not None))
    if corrupt_g and corrupt is None:
        raw["g"], corrupt = data.draw(invalid_form(g, "grad_output", net, n)), "grad_output"
    else:
        raw["g"] = data.draw(valid_form(g))
        clean["g"] = clean_copy(raw["g"], net.dtype)
    input_grad = data.draw(st.booleans())

    def call(m, a):
        result = m.backward(a["X"], a["g"], input_grad=input_grad)
        return tuple(r.copy() if isinstance(r, np.ndarray) else tuple(x.copy() for x in r)
                     for r in result)

    check_call(net, call, raw, clean, corrupt)


@st.composite
def optimizer_specs(draw):
    kind = draw(st.sampled_from(["sgd", "adam", "adamw", "SGD", "Adam", "AdamW"]))
    if kind == "SGD":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = momentum > 0 and draw(st.booleans())
        return kind, dict(momentum=momentum, nesterov=nesterov,
                          weight_decay=draw(st.sampled_from([0.0, 0.01])))
    if kind in ("Adam", "AdamW"):
        return kind, dict(betas=draw(st.sampled_from([(0.9, 0.999), (0.0, 0.5)])),
                          eps=draw(st.sampled_from([1e-8, 1.0])))
    return kind, {}


def build_optimizer(net, spec, lr=None):
    kind, kwargs = spec
    classes = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}
    if kind not in classes:
        return kind
    return classes[kind](net, **kwargs) if lr is None else classes[kind](net, lr=lr, **kwargs)


@fuzz(120)
@given(data=st.data())
def test_fuzz_fit(data):
    net = data.draw(networks())
    corrupt_arg = data.draw(st.sampled_from([None, None, None, "lr", "epochs", "batch_size", "optimizer"]))
    raw, clean, corrupt = data.draw(batches(net, corrupt="none" if corrupt_arg else None))
    if corrupt == "none":
        corrupt = None
    spec = data.draw(optimizer_specs())
    epochs = data.draw(st.integers(1, 3))
    batch_size = data.draw(st.integers(1, 14))
    lr = data.draw(st.one_of(st.none(), learning_rates(False)))
    if corrupt_arg == "lr":
        lr, corrupt = data.draw(learning_rates(True).filter(lambda v: v is not None)), "lr"
    elif corrupt_arg == "epochs":
        epochs, corrupt = data.draw(st.sampled_from([0, -1, 1.5, True, "2", None])), "epochs"
    elif corrupt_arg == "batch_size":
        batch_size, corrupt = data.draw(st.sampled_from([0, -3, 2.0, False, "8", None])), "batch_size"
    elif corrupt_arg == "optimizer":
        spec, corrupt = (data.draw(st.sampled_from(["SGD ", "rmsprop", "", 3, None])), {}), "optimizer"
    shuffle = data.draw(st.booleans())
    seed = data.draw(st.integers(0, 100))

    def call(m, a):
        optimizer = build_optimizer(m, spec)
        history = m.fit(a["X"], a["y"], epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                        lr=a.get("lr", lr), sample_weight=a["sample_weight"], shuffle=shuffle, seed=seed)
        return history.loss, history.lr, history.epochs_run

    def clean_call(m, a):
        return call(m, dict(a, lr=None if lr is None else float(lr)))

    start = net.parameters.copy()
    got = check_call(net, call, raw, clean, corrupt, clean_call=clean_call)
    if got is not None and got[0] == "error" and isinstance(got[1], pybackprop.TrainingDiverged):
        # Restored to the start of the failing epoch: finite, and the start
        # itself when the first epoch failed.
        assert np.all(np.isfinite(net.parameters))
        if got[1].history.epochs_run == 0:
            np.testing.assert_array_equal(net.parameters, start)


@fuzz(150)
@given(data=st.data())
def test_fuzz_optimizer_step(data):
    net = data.draw(networks())
    raw, clean, _ = data.draw(batches(net, corrupt="none"))
    net.loss_and_grad(clean["X"], clean["y"])
    spec = data.draw(optimizer_specs())
    if spec[0] in ("sgd", "adam", "adamw"):
        spec = ({"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[spec[0]], {})
    corrupt = data.draw(st.booleans())
    lr = data.draw(learning_rates(corrupt))
    steps = data.draw(st.integers(1, 3))
    grads = net._core.grads.copy()
    clean_net = net.copy()
    clean_net._core.grads[...] = grads
    opt = build_optimizer(net, spec)
    clean_opt = build_optimizer(clean_net, spec)
    for _ in range(steps):
        opt.lr = lr
        before_params = net.parameters.tobytes()
        before_state = [s.tobytes() for s in opt._state() if s is not None]
        before_count = opt.step_count
        got = outcome(opt.step)
        if corrupt:
            assert got[0] == "error" and type(got[1]) in (ValueError, TypeError), got
            assert "learning rate" in str(got[1])
            assert net.parameters.tobytes() == before_params
            assert [s.tobytes() for s in opt._state() if s is not None] == before_state
            assert opt.step_count == before_count
            assert net._core.grads.tobytes() == grads.tobytes()
            return
        clean_opt.lr = float(lr)
        expected = outcome(clean_opt.step)
        assert got[0] == expected[0], (got, expected)
        if got[0] == "error":
            # Only an update that would overflow may be refused, changing nothing.
            assert type(got[1]) is type(expected[1]) is FloatingPointError, got
            assert net.parameters.tobytes() == before_params
            assert [s.tobytes() for s in opt._state() if s is not None] == before_state
            assert opt.step_count == before_count
            return
        np.testing.assert_array_equal(net.parameters, clean_net.parameters)
        assert np.all(np.isfinite(net.parameters))
        assert opt.step_count == clean_opt.step_count


@fuzz(100)
@given(data=st.data())
def test_fuzz_save_load_roundtrip_and_corrupt_files(data):
    net = data.draw(networks())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, data.draw(st.sampled_from(["net.npz", "net", "a b.npz", "ünï.npz"])))
        net.save(path)
        if not os.path.exists(path):
            path = path + ".npz"
        loaded = pybackprop.load(path)
        assert loaded.layer_sizes == net.layer_sizes and loaded.activations == net.activations
        assert (loaded.output, loaded.loss_name, loaded.dtype) == (net.output, net.loss_name, net.dtype)
        np.testing.assert_array_equal(loaded.parameters, net.parameters)
        X = np.linspace(-1, 1, 3 * net.n_in).reshape(3, net.n_in)
        np.testing.assert_array_equal(loaded.predict(X), net.predict(X))

        with open(path, "rb") as f:
            content = bytearray(f.read())
        mutation = data.draw(st.sampled_from(["truncate", "flip", "garbage", "empty"]))
        if mutation == "truncate":
            content = content[:data.draw(st.integers(0, len(content) - 1))]
        elif mutation == "flip":
            for _ in range(data.draw(st.integers(1, 8))):
                i = data.draw(st.integers(0, len(content) - 1))
                content[i] = (content[i] + data.draw(st.integers(1, 255))) % 256
        elif mutation == "garbage":
            content = bytearray(data.draw(st.binary(min_size=1, max_size=200)))
        else:
            content = bytearray()
        bad = os.path.join(tmp, "bad.npz")
        with open(bad, "wb") as f:
            f.write(content)
        try:
            result = pybackprop.load(bad)
        except ValueError as exc:
            assert "bad.npz" in str(exc) or "cannot load" in str(exc), str(exc)
        else:
            # A mutation the format cannot notice (e.g. inside a zip comment or
            # one changing a weight's value): the network is still valid.
            assert isinstance(result, MLP)
            assert np.all(np.isfinite(result.parameters))
            result.predict(np.zeros((2, result.n_in)))


@fuzz(150)
@given(data=st.data())
def test_fuzz_load_state_dict(data):
    net = data.draw(networks())
    source = MLP(net.layer_sizes, activation=list(net.activations) or "relu", output=net.output,
                 loss=net.loss_name, dtype=data.draw(st.sampled_from(["float64", "float32"])),
                 seed=data.draw(st.integers(0, 1000)))
    state = dict(source.state_dict())
    keys = [k for k in state if isinstance(state[k], np.ndarray) and state[k].dtype.kind == "f"]
    key = data.draw(st.sampled_from(keys))
    corrupt = data.draw(st.booleans())
    strict = data.draw(st.booleans())
    if corrupt:
        what = data.draw(st.sampled_from(["value", "missing", "extra", "layer_sizes", "output",
                                          "not_a_dict"]))
        if what == "value":
            state[key] = data.draw(invalid_form(state[key], "state", net, state[key].shape[0]))
        elif what == "missing":
            del state[key]
            if not strict:
                corrupt = False  # missing parameters keep their values
        elif what == "extra":
            state["W99"] = np.zeros(3)
            if not strict:
                corrupt = False
        elif what == "layer_sizes":
            state["layer_sizes"] = np.array(list(net.layer_sizes[:-1]) + [net.n_out + 1])
        elif what == "output":
            state["output"] = "softmax" if net.output != "softmax" else "sigmoid"
        else:
            state = list(state.items())
    else:
        state[key] = data.draw(valid_form(state[key].astype(np.float64)))
    before = net.parameters.tobytes()
    got = outcome(lambda: net.load_state_dict(state, strict=strict))
    if corrupt:
        assert got[0] == "error" and type(got[1]) in (ValueError, TypeError), got
        assert net.parameters.tobytes() == before, "a refused state dict changed the parameters"
        return
    if got[0] == "error":
        # A valid-looking value that does not fit the dtype (float64 beyond float32's range).
        assert type(got[1]) in (ValueError, TypeError) and net.parameters.tobytes() == before
        return
    expected = {k: clean_copy(v, net.dtype) for k, v in state.items()
                if k in keys}
    for k, v in expected.items():
        layer = int(k[1:])
        target = net.weights[layer] if k.startswith("W") else net.biases[layer]
        np.testing.assert_array_equal(target, v.reshape(target.shape), err_msg=k)


# -- regressions found by the fuzz, as plain reproducers ----------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unaligned_inputs_of_the_right_dtype_are_accepted(dtype):
    """A C-contiguous but unaligned array of the network's dtype (a view into
    a bytes buffer at offset 1) is valid input; its values are what count."""
    net = MLP([2, 3, 1], activation="tanh", dtype=dtype, seed=0)
    X = np.array([[1.0, 2.0], [3.0, -4.0]], dtype=dtype)
    y = np.array([0.5, -1.0], dtype=dtype)
    Xu = _unaligned(X)
    assert not Xu.flags.aligned and Xu.flags.c_contiguous
    np.testing.assert_array_equal(net.predict(Xu), net.predict(X))
    assert net.loss(Xu, _unaligned(y)) == net.loss(X, y)
    assert net.loss(X, y, sample_weight=_unaligned(np.array([1.0, 2.0], dtype=dtype))) == \
        net.loss(X, y, sample_weight=np.array([1.0, 2.0], dtype=dtype))
    clone = net.copy()
    assert net.train_step(Xu, y, 0.1) == clone.train_step(X, y, 0.1)
    np.testing.assert_array_equal(net.parameters, clone.parameters)
    net.fit(Xu, y, epochs=2, batch_size=1, seed=0)
    clone.fit(X, y, epochs=2, batch_size=1, seed=0)
    np.testing.assert_array_equal(net.parameters, clone.parameters)


@pytest.mark.parametrize("weights", [[np.inf, 1.0], [1e308, 1e308], [1.0, np.inf]])
def test_infinite_or_overflowing_sample_weights_are_refused(weights):
    """sum(sample_weight) must be finite: an infinite weight, or weights whose
    sum overflows, make every coefficient w_i / sum(w) 0 or NaN."""
    net = MLP([2, 3, 1], activation="tanh", seed=0)
    X = np.array([[1.0, 2.0], [3.0, -4.0]])
    y = np.array([0.5, -1.0])
    before = net.parameters.copy()
    for call in (lambda: net.loss(X, y, sample_weight=np.array(weights)),
                 lambda: net.loss_and_grad(X, y, sample_weight=np.array(weights)),
                 lambda: net.train_step(X, y, 0.1, sample_weight=np.array(weights)),
                 lambda: net.fit(X, y, epochs=1, sample_weight=np.array(weights))):
        with pytest.raises(ValueError, match="sample_weight"):
            call()
    np.testing.assert_array_equal(net.parameters, before)


def _zero_pages(nbytes):
    """A read-write mapping of nbytes of zeros that costs no memory until
    written (MAP_NORESERVE: no commit charge)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    MAP_NORESERVE = 0x4000  # Linux
    address = libc.mmap(None, nbytes, mmap.PROT_READ | mmap.PROT_WRITE,
                        mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    assert address not in (None, ctypes.c_void_p(-1).value), f"mmap failed: errno {ctypes.get_errno()}"
    buffer = (ctypes.c_char * nbytes).from_address(address)
    return buffer, lambda: libc.munmap(address, nbytes)


def test_batches_of_more_than_2_to_the_31_rows_are_not_truncated():
    """n_samples >= 2**31 must be computed in full or refused, never
    truncated to a C int (which silently evaluated a few rows, or none)."""
    n = 2**31 + 1024
    buffer, unmap = _zero_pages(2 * 4 * n)
    try:
        data = np.frombuffer(buffer, dtype=np.float32)
        X = data[:n].reshape(n, 1)
        y = data[n:]
        X[-1024:, 0] = 1000.0  # only these pages get memory
        net = MLP([1, 1], output="identity", dtype="float32", seed=0)
        net.weights[0] = np.ones((1, 1))
        try:
            value = net.loss(X, y)
        except (ValueError, MemoryError) as exc:
            assert "sample" in str(exc) or "rows" in str(exc) or isinstance(exc, MemoryError)
        else:
            # 0.5 * 1000**2 on 1024 rows out of n.
            assert value == pytest.approx(0.5e6 * 1024 / n, rel=1e-3)
    finally:
        del X, y, data
        unmap()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("role", ["X", "y", "sample_weight"])
def test_values_beyond_float32_range_are_refused_cleanly(role):
    """A float64 value that overflows float32 (1e308 into a float32 network)
    is refused with a ValueError that says so, not a numpy RuntimeWarning
    ("overflow encountered in cast") nor a message about an inf the caller
    never passed."""
    net = MLP([2, 3, 1], activation="tanh", dtype="float32", seed=0)
    args = {"X": np.array([[1.0, 2.0], [3.0, -4.0]]), "y": np.array([0.5, -1.0]),
            "sample_weight": np.array([1.0, 2.0])}
    args[role] = args[role].copy()
    args[role].flat[1] = 1e308
    before = net.parameters.copy()
    with pytest.raises(ValueError) as info:
        net.train_step(args["X"], args["y"], 0.1, sample_weight=args["sample_weight"])
    message = str(info.value)
    assert role in message and ("float32" in message or "range" in message), message
    np.testing.assert_array_equal(net.parameters, before)
