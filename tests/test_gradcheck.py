"""Tests for pybackprop.gradcheck on real compiled networks.

Each check must pass on a correct network, leave it bit-for-bit unchanged,
and fail (pointing at the right place) when the gradient is wrong, which is
simulated with a wrapper that corrupts what loss_and_grad returns.
"""
import numpy as np
import pytest

import pybackprop
from pybackprop import gradcheck as gc
from pybackprop import reference as ref


def make_problem(dtype="float64", output="softmax", loss="cross_entropy", seed=0):
    rng = np.random.default_rng(seed)
    net = pybackprop.MLP([4, 5, 3, 3], activation=["tanh", "sigmoid"], output=output, loss=loss,
                         dtype=dtype, seed=seed)
    for b in net.biases:
        b[...] = rng.uniform(-0.5, 0.5, size=b.shape)
    X = rng.normal(size=(6, 4))
    if loss == "cross_entropy":
        y = rng.integers(0, 3, size=6)
    elif output == "sigmoid":
        y = rng.uniform(size=(6, 3))
    else:
        y = rng.normal(size=(6, 3))
    sw = rng.uniform(0.5, 2.0, size=6)
    return net, X, y, sw


def snapshot(net):
    return [W.copy() for W in net.weights] + [b.copy() for b in net.biases]


def assert_unchanged(net, before):
    for old, new in zip(before, list(net.weights) + list(net.biases)):
        assert np.array_equal(old, new)
        assert old.dtype == new.dtype


class CorruptedGradient:
    """A network whose loss_and_grad reports a wrong value at one entry."""

    def __init__(self, net, layer, param, index, delta=0.0, factor=1.0):
        self._net, self._where, self._delta, self._factor = net, (layer, param, index), delta, factor

    def __getattr__(self, name):
        return getattr(self._net, name)

    def loss_and_grad(self, *args, **kwargs):
        loss, gW, gb, *rest = self._net.loss_and_grad(*args, **{**kwargs, "copy": True})
        gW, gb = [g * self._factor for g in gW], [g * self._factor for g in gb]
        layer, param, index = self._where
        (gW if param == "W" else gb)[layer][index] += self._delta
        return (loss, tuple(gW), tuple(gb), *rest)


# ------------------------------------------------------------- relative error


def test_relative_error_uses_the_floor():
    assert gc.relative_error(1.0, 1.0 + 1e-9) == pytest.approx(1e-9, rel=1e-6)
    assert gc.relative_error(0.0, 0.0) == 0.0
    # both tiny: the absolute difference is divided by the floor
    assert gc.relative_error(1e-9, 3e-9, floor=1e-5) == pytest.approx(2e-4)
    assert gc.relative_error(-2.0, 2.0) == 2.0
    err = gc.relative_error(np.array([1.0, 0.0]), np.array([1.5, 1e-6]), floor=1e-5)
    np.testing.assert_allclose(err, [1 / 3, 0.1])


# ------------------------------------------------------------- finite differences


@pytest.mark.parametrize("output,loss", ref.VALID_PAIRS)
def test_finite_differences_pass_and_leave_network_unchanged(output, loss):
    net, X, y, sw = make_problem(output=output, loss=loss)
    before = snapshot(net)
    result = gc.check_gradients(net, X, y, sw)
    assert result.passed, result
    assert result.max_rel_error < 1e-5  # rounding noise of the differences; bugs give > 1e-2
    assert result.method == "finite_differences"
    assert result.n_checked == sum(W.size + b.size for W, b in zip(net.weights, net.biases))
    assert_unchanged(net, before)


def test_finite_differences_check_the_input_gradient():
    net, X, y, sw = make_problem(output="sigmoid", loss="binary_cross_entropy")
    X_before = X.copy()
    result = gc.check_gradients(net, X, y, sw, check_input=True)
    assert result.passed, result
    assert result.n_checked == net.n_params + X.size
    assert np.array_equal(X, X_before)


def test_finite_differences_on_float32_network_use_a_float64_copy():
    net, X, y, sw = make_problem(dtype="float32")
    before = snapshot(net)
    result = gc.check_gradients(net, X, y, sw)
    assert result.passed and result.max_rel_error < 1e-5, result
    assert_unchanged(net, before)
    assert net.dtype == np.float32


def test_finite_differences_find_a_wrong_entry():
    net, X, y, sw = make_problem()
    bad = CorruptedGradient(net, 1, "W", (2, 4), delta=1e-3)
    result = gc.check_gradients(bad, X, y, sw)
    assert not result.passed
    assert (result.layer, result.param, result.index) == (1, "W", (2, 4))
    assert result.where == "layer 1 W[2, 4]"
    assert result.value - result.expected == pytest.approx(1e-3, rel=1e-4)
    assert "FAILED" in repr(result) and "layer 1 W[2, 4]" in repr(result)

    result = gc.check_gradients(CorruptedGradient(net, 2, "b", (0,), delta=1e-3), X, y, sw)
    assert (result.layer, result.param, result.index, result.passed) == (2, "b", (0,), False)


def test_finite_difference_step_is_exactly_undone():
    net, X, y, _ = make_problem()
    # values whose +- eps do not round-trip: restoring must not use value + eps - eps
    net.weights[0][0, 0] = 0.1 + 2.0 ** -40
    net.biases[1][0] = 1e8 / 3
    before = snapshot(net)
    gc.check_gradients(net, X, y)
    gc.check_directional(net, X, y, seed=0)
    assert_unchanged(net, before)


# ------------------------------------------------------------- directional


def test_directional_check_passes():
    net, X, y, sw = make_problem(output="identity", loss="squared_error")
    before = snapshot(net)
    result = gc.check_directional(net, X, y, sw, n_directions=5, seed=1)
    assert result.passed and result.max_rel_error < 1e-6, result
    assert result.n_directions == 5 and result.n_params == net.n_params
    assert "passed" in repr(result)
    assert_unchanged(net, before)


def test_directional_check_on_a_big_network():
    rng = np.random.default_rng(3)
    net = pybackprop.MLP([64, 128, 64, 10], activation="tanh", output="softmax", seed=3)
    X, y = rng.normal(size=(32, 64)), rng.integers(0, 10, size=32)
    result = gc.check_directional(net, X, y, seed=0)
    assert result.passed and result.max_rel_error < 1e-6, result
    assert result.n_params == net.n_params > 16000


def test_directional_check_finds_a_wrong_gradient():
    net, X, y, sw = make_problem()
    result = gc.check_directional(CorruptedGradient(net, 0, "W", (1, 1), delta=0.05), X, y, sw,
                                  seed=0)
    assert not result.passed and result.max_rel_error > 1e-3, result
    with pytest.raises(ValueError):
        gc.check_directional(net, X, y, n_directions=0)


# ------------------------------------------------------------- descent


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_descent_check(dtype):
    net, X, y, sw = make_problem(dtype=dtype, output="sigmoid", loss="squared_error")
    before = snapshot(net)
    result = gc.check_descent(net, X, y, sw, lr=1e-4)
    assert result.passed, result
    assert abs(result.ratio - 1) < 1e-3
    assert result.actual_decrease == pytest.approx(result.loss_before - result.loss_after)
    assert result.loss_before == pytest.approx(net.loss(X, y, sw), rel=1e-6)
    assert_unchanged(net, before)


def test_descent_check_finds_a_gradient_twice_too_large():
    net, X, y, sw = make_problem()
    # train_step follows the true gradient, loss_and_grad reports 2 g:
    # predicted lr ||2g||^2 is four times the actual decrease
    result = gc.check_descent(CorruptedGradient(net, 0, "W", (0, 0), factor=2.0), X, y, sw)
    assert not result.passed
    assert result.ratio == pytest.approx(0.25, rel=1e-2)


# ------------------------------------------------------------- reference


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-4)])
@pytest.mark.parametrize("output,loss", ref.VALID_PAIRS)
def test_compare_with_reference(dtype, tol, output, loss):
    net, X, y, sw = make_problem(dtype=dtype, output=output, loss=loss)
    result = gc.compare_with_reference(net, X, y, sw)
    assert result.passed and result.max_rel_error < tol, result
    assert result.method == "reference"
    assert result.n_checked == net.n_params + 1  # every gradient entry and the loss


def test_compare_with_reference_max_samples_and_failure():
    net, X, y, _ = make_problem()
    result = gc.compare_with_reference(net, X, y, max_samples=2)
    assert result.passed
    ref_loss = ref.loss([W.tolist() for W in net.weights], [b.tolist() for b in net.biases],
                        X[:2].tolist(), y[:2].tolist(), activation=list(net.activations),
                        output=net.output, loss=net.loss_name)
    assert ref_loss == pytest.approx(net.loss(X[:2], y[:2]), rel=1e-13)
    bad = gc.compare_with_reference(CorruptedGradient(net, 1, "b", (2,), delta=1e-6), X, y)
    assert not bad.passed
    assert bad.where == "layer 1 b[2]"


def test_textbook_221_through_every_check():
    t = ref.textbook_221()
    net = pybackprop.MLP([2, 2, 1], activation="sigmoid", output="sigmoid", loss="squared_error")
    for target, source in zip(net.weights, t["weights"]):
        target[...] = source
    for target, source in zip(net.biases, t["biases"]):
        target[...] = source
    X, y = [t["x"]], [t["y"]]
    assert gc.check_gradients(net, X, y, check_input=True).passed
    assert gc.check_directional(net, X, y, seed=0).passed
    assert gc.check_descent(net, X, y, lr=1e-3).passed
    result = gc.compare_with_reference(net, X, y)
    assert result.max_rel_error < 1e-13, result
