"""Instruction-set variants of the compiled core (pybackprop/_dispatch.py).

On x86-64 the build compiles csrc/_core.pyx three times: baseline x86-64,
x86-64-v3 (AVX2) and x86-64-v4 (AVX-512).  The fastest one this CPU runs is
used.  All are built without FMA contraction or fast-math, so they must give
bit-for-bit the same numbers; here every variant this machine runs is
compared with the baseline on forward values, gradients, SGD steps,
optimizer updates and whole compiled epochs, in both dtypes.  The hidden
activations' accuracy (sigmoid and tanh use the core's own vectorised exp)
is measured against long-double NumPy in every variant.
"""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import pybackprop
from pybackprop import _dispatch, network
from pybackprop.optim import Adam

AVAILABLE = _dispatch.available()
VARIANT_CORES = {isa: _dispatch.load(isa) for isa in AVAILABLE}
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def make_net(isa, sizes, dtype, seed=0, **kwargs):
    """An MLP whose compiled core is the given variant."""
    original = network.Network
    network.Network = VARIANT_CORES[isa].Network
    try:
        return pybackprop.MLP(sizes, dtype=dtype, seed=seed, **kwargs)
    finally:
        network.Network = original


def test_the_widest_runnable_variant_is_in_use():
    assert AVAILABLE[-1] == "baseline"
    if not os.environ.get("PYBACKPROP_ISA"):
        assert _dispatch.core.ISA == AVAILABLE[0]
    assert _dispatch.core is pybackprop.network._compiled
    for isa, core in VARIANT_CORES.items():
        assert core.ISA == isa
        assert core.BUILD_ID == VARIANT_CORES["baseline"].BUILD_ID


def test_release_builds_on_x86_64_have_every_variant():
    """The build made all three modules (they may not all run here)."""
    if not X86_64 or _dispatch.core.DEBUG_BUILD:
        # Debug builds (and other machines) build the baseline module only;
        # a variant module left from another build must not be loaded.
        assert AVAILABLE == ["baseline"]
        return
    import importlib.util

    for module in _dispatch.VARIANTS.values():
        assert importlib.util.find_spec("pybackprop." + module) is not None, module


def test_cpu_feature_answers_are_consistent():
    baseline = VARIANT_CORES["baseline"]
    assert baseline._cpu_runs("baseline")
    if baseline._cpu_runs("avx512"):
        assert baseline._cpu_runs("avx2")
    with pytest.raises(ValueError, match="unknown instruction-set variant 'sse9'"):
        baseline._cpu_runs("sse9")
    with pytest.raises(ValueError, match="expected one of avx512, avx2, baseline"):
        _dispatch.load("sse9")


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512", "sse9"])
def test_the_environment_variable_chooses_a_variant(isa):
    code = "import pybackprop._dispatch as d; print(d.core.ISA)"
    env = dict(os.environ, PYBACKPROP_ISA=isa)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if isa in AVAILABLE:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == isa
    else:
        assert result.returncode != 0
        assert "ImportError: PYBACKPROP_ISA=" + isa in result.stderr


CASES = [
    # sizes, hidden, output, loss, batch
    ([7, 33, 17, 5], "sigmoid", "softmax", "cross_entropy", 64),
    ([7, 33, 17, 5], "tanh", "sigmoid", "binary_cross_entropy", 1),
    ([20, 40, 40, 3], "relu", "identity", "squared_error", 37),
    ([2, 2, 1], "sigmoid", "sigmoid", "squared_error", 1),
    ([64, 150, 10], ["tanh"], "softmax", "cross_entropy", 129),
]


def case_data(sizes, output, batch, dtype, seed=1):
    rng = np.random.default_rng(seed)
    X = (3 * rng.standard_normal((batch, sizes[0]))).astype(dtype)
    if output == "softmax":
        y = rng.integers(0, sizes[-1], batch)
    elif output == "sigmoid":
        y = rng.random((batch, sizes[-1])).astype(dtype)
    else:
        y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    return X, y


def run_case(isa, case, dtype):
    """Every kernel path once; returns the arrays it produced."""
    sizes, hidden, output, loss, batch = case
    net = make_net(isa, sizes, dtype, activation=hidden, output=output, loss=loss)
    X, y = case_data(sizes, output, batch, dtype)
    produced = [net.predict(X)]
    value, dW, db = net.loss_and_grad(X, y, copy=True)
    produced += [np.array(value), *dW, *db]
    for _ in range(3):
        produced.append(np.array(net.train_step(X, y, lr=0.05)))
    optimizer = Adam(net, lr=1e-2)
    for _ in range(2):
        net.loss_and_grad(X, y)
        optimizer.step()
    net.fit(np.repeat(X, 3, axis=0), np.repeat(y, 3, axis=0), epochs=2, batch_size=5,
            lr=0.01, seed=3)
    produced += [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    return produced


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[0])) + f"-{c[1]}")
def test_every_variant_computes_bit_for_bit_the_same(case, dtype):
    expected = run_case("baseline", case, dtype)
    assert all(np.all(np.isfinite(a)) for a in expected)
    for isa in AVAILABLE[:-1]:
        got = run_case(isa, case, dtype)
        for index, (a, b) in enumerate(zip(got, expected)):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b), (isa, index, np.max(np.abs(a - b)))


def activation_values(isa, activation, x):
    """act(x) through a [1, 1, 1] network: weights 1, biases 0, identity output."""
    net = make_net(isa, [1, 1, 1], x.dtype, activation=activation, output="identity",
                   loss="squared_error")
    for W in net.weights:
        W[...] = 1
    for b in net.biases:
        b[...] = 0
    return net.predict(x.reshape(-1, 1)).ravel()


ACCURACY_ULPS = 3  # measured: 2.3 (float32 sigmoid), 2.8 (float64 tanh)


@pytest.mark.parametrize("isa", AVAILABLE)
@pytest.mark.parametrize("dtype, far", [(np.float32, -110.0), (np.float64, -760.0)])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_activation_accuracy_in_ulps(isa, dtype, far, activation):
    """Within ACCURACY_ULPS units in the last place of the correctly rounded
    value everywhere: across ±30, at random points, and down where sigmoid's
    result is subnormal (its exp keeps subnormals instead of flushing them)."""
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(far, far + 40, 20001), np.linspace(-30, 30, 60001),
                        5 * rng.standard_normal(20000), np.linspace(-1e-3, 1e-3, 2001),
                        [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    exact = np.longdouble(x)
    if activation == "sigmoid":
        true = 1 / (1 + np.exp(-exact))
    else:
        true = np.tanh(exact)
    got = activation_values(isa, activation, x)
    ulps = np.abs(np.longdouble(got) - true) / np.longdouble(np.spacing(np.abs(true).astype(dtype)))
    worst = int(np.argmax(ulps))
    assert ulps[worst] <= ACCURACY_ULPS, (x[worst], got[worst], true[worst])
    if activation == "sigmoid":
        # Subnormal results are not flushed: exp(-100) ~ 3.7e-44 in float32.
        tiny = x < (-88 if dtype == np.float32 else -709)
        assert np.all(got[tiny & (true > np.finfo(dtype).smallest_subnormal)] > 0)
