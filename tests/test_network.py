"""The compiled core through the MLP API: values, gradients, and the contract."""

import warnings
import zlib

import numpy as np
import pytest

import pybackprop
from pybackprop import MLP, _validation

HIDDEN = list(_validation.HIDDEN_ACTIVATIONS)
OUTPUT_LOSS = list(_validation.VALID_PAIRS)


def make_targets(rng, output, loss, n, n_out, dtype="float64", labels=False):
    if loss == "cross_entropy":
        classes = rng.integers(0, n_out, n)
        if labels:
            return classes
        return np.eye(n_out, dtype=dtype)[classes]
    if loss == "binary_cross_entropy":
        return rng.uniform(0, 1, (n, n_out)).astype(dtype)
    if output == "sigmoid":
        return rng.uniform(0, 1, (n, n_out)).astype(dtype)
    return rng.standard_normal((n, n_out)).astype(dtype)


def central_difference(f, values, h=1e-3):
    """Fourth-order central differences of f() over every entry of values,
    perturbed in place and restored: error O(h^4) plus rounding O(eps / h),
    both near 1e-12 here, so a 1e-7 tolerance tests the gradient, not the check."""
    grad = np.empty(values.shape)
    for idx in np.ndindex(values.shape):
        saved = values[idx]
        samples = []
        for step in (2 * h, h, -h, -2 * h):
            values[idx] = saved + step
            samples.append(f())
        values[idx] = saved
        grad[idx] = (-samples[0] + 8 * samples[1] - 8 * samples[2] + samples[3]) / (12 * h)
    return grad


def finite_difference_grads(net, X, y, sample_weight=None):
    """Finite-difference gradient of net.loss over every parameter (float64 net)."""
    return central_difference(lambda: net.loss(X, y, sample_weight), net.parameters)


def flat_grad(grad_weights, grad_biases):
    return np.concatenate([np.concatenate([gw.ravel(), gb]) for gw, gb in zip(grad_weights, grad_biases)])


def relative_error(a, b, floor=1e-8):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor))


def as_float64(net):
    twin = MLP(net.layer_sizes, activation=list(net.activations), output=net.output,
               loss=net.loss_name, dtype="float64")
    twin.parameters[:] = net.parameters
    return twin


def textbook_net(dtype="float64"):
    net = MLP([2, 2, 1], activation="sigmoid", output="sigmoid", loss="squared_error", dtype=dtype)
    net.weights[0][...] = [[0.2, 0.5], [0.3, 0.4]]
    net.biases[0][...] = [0.1, 0.2]
    net.weights[1][...] = [[0.6, 0.7]]
    net.biases[1][...] = [0.1]
    return net


TEXTBOOK_X = np.array([[0.5, 0.3]])
TEXTBOOK_Y = np.array([0.8])


# -- the textbook 2-2-1 example ---------------------------------------------

def test_textbook_221_forward_and_gradients():
    net = textbook_net()
    assert net.predict(TEXTBOOK_X)[0, 0] == pytest.approx(0.7073895241, abs=1e-9)
    loss, gw, gb = net.loss_and_grad(TEXTBOOK_X, TEXTBOOK_Y)
    assert loss == pytest.approx(0.0042883501, abs=1e-9)
    np.testing.assert_allclose(gw[1], [[-0.0112451094, -0.0117965398]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(gb[1], [-0.0191694040], rtol=0, atol=1e-9)
    np.testing.assert_allclose(gw[0], [[-0.0013945592, -0.0008367355],
                                       [-0.0015879993, -0.0009527996]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(gb[0], [-0.0027891183, -0.0031759986], rtol=0, atol=1e-9)


def test_textbook_221_float32_agrees_with_float64():
    loss64, gw64, gb64 = textbook_net("float64").loss_and_grad(TEXTBOOK_X, TEXTBOOK_Y, copy=True)
    loss32, gw32, gb32 = textbook_net("float32").loss_and_grad(TEXTBOOK_X, TEXTBOOK_Y, copy=True)
    assert gw32[0].dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    assert relative_error(flat_grad(gw32, gb32), flat_grad(gw64, gb64), floor=1e-6) < 1e-5


def test_textbook_221_one_sample_as_1d_arrays():
    net = textbook_net()
    assert net.predict([0.5, 0.3]).shape == (1,)
    assert net.predict([0.5, 0.3])[0] == pytest.approx(0.7073895241, abs=1e-9)
    assert net.loss([0.5, 0.3], 0.8) == pytest.approx(0.0042883501, abs=1e-9)


# -- gradients against finite differences -----------------------------------

@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_finite_differences(hidden, output, loss, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{hidden}-{output}-{loss}".encode()))
    sizes = [3, 5, 4, 3]
    net = MLP(sizes, activation=hidden, output=output, loss=loss, dtype=dtype, seed=1)
    # Biases away from zero so no ReLU unit sits on its kink.
    for b in net.biases:
        b[...] = rng.uniform(-0.5, 0.5, b.shape)
    X = rng.standard_normal((7, 3)).astype(dtype)
    y = make_targets(rng, output, loss, 7, 3, dtype)
    loss_value, gw, gb = net.loss_and_grad(X, y, copy=True)
    analytic = flat_grad(gw, gb)

    reference = as_float64(net)
    numeric = finite_difference_grads(reference, X.astype(np.float64), y.astype(np.float64))
    assert loss_value == pytest.approx(reference.loss(X, y), rel=1e-6 if dtype == "float32" else 1e-14)
    if dtype == "float64":
        assert relative_error(analytic, numeric, floor=1e-5) < 1e-7
    else:
        # float32 gradients carry float32 rounding: compare with the float64
        # finite differences at the same (float32-rounded) parameters.
        assert relative_error(analytic, numeric, floor=1e-4) < 1e-3


def test_per_layer_activations_and_input_gradient(dtype):
    rng = np.random.default_rng(3)
    net = MLP([4, 6, 5, 4, 3, 2], activation=["tanh", "relu", "sigmoid", "identity"],
              output="softmax", dtype=dtype, seed=2)
    for b in net.biases:
        b[...] = rng.uniform(-0.5, 0.5, b.shape)
    X = rng.standard_normal((5, 4)).astype(dtype)
    y = rng.integers(0, 2, 5)
    loss, gw, gb, dX = net.loss_and_grad(X, y, input_grad=True, copy=True)
    assert dX.shape == X.shape and dX.dtype == np.dtype(dtype)
    reference = as_float64(net)
    numeric = finite_difference_grads(reference, X.astype(np.float64), y)
    X64 = X.astype(np.float64)
    numeric_dX = central_difference(lambda: reference.loss(X64, y), X64)
    tol, floor = (1e-7, 1e-5) if dtype == "float64" else (1e-3, 1e-4)
    assert relative_error(flat_grad(gw, gb), numeric, floor) < tol
    assert relative_error(dX, numeric_dX, floor) < tol


def test_network_without_hidden_layers(dtype):
    rng = np.random.default_rng(4)
    net = MLP([3, 2], output="softmax", dtype=dtype, seed=0)
    assert net.activations == ()
    X = rng.standard_normal((4, 3)).astype(dtype)
    y = rng.integers(0, 2, 4)
    _, gw, gb = net.loss_and_grad(X, y, copy=True)
    numeric = finite_difference_grads(as_float64(net), X.astype(np.float64), y)
    tol, floor = (1e-7, 1e-5) if dtype == "float64" else (1e-3, 1e-4)
    assert relative_error(flat_grad(gw, gb), numeric, floor) < tol


def test_large_layers_use_blas_and_agree_with_numpy():
    """Layers big enough for the BLAS path: compare with a NumPy transcription."""
    rng = np.random.default_rng(5)
    net = MLP([70, 90, 40], activation="relu", output="softmax", seed=0)
    X = rng.standard_normal((33, 70))
    y = rng.integers(0, 40, 33)
    loss, gw, gb = net.loss_and_grad(X, y)
    W1, W2 = net.weights
    b1, b2 = net.biases
    A1 = np.maximum(X @ W1.T + b1, 0)
    Z2 = A1 @ W2.T + b2
    P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    expected_loss = -np.mean(np.log(P[np.arange(33), y]))
    dZ2 = P.copy()
    dZ2[np.arange(33), y] -= 1
    dZ2 /= 33
    dZ1 = (dZ2 @ W2) * (A1 > 0)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    np.testing.assert_allclose(gw[1], dZ2.T @ A1, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(gb[1], dZ2.sum(axis=0), rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(gw[0], dZ1.T @ X, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(gb[0], dZ1.sum(axis=0), rtol=1e-11, atol=1e-15)


# -- loss semantics -----------------------------------------------------------

def test_loss_definitions_match_formulas():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((6, 3))
    for output, loss in OUTPUT_LOSS:
        net = MLP([3, 4, 2], activation="tanh", output=output, loss=loss, seed=0)
        y = make_targets(rng, output, loss, 6, 2)
        yhat = net.predict(X)
        if loss == "squared_error":
            expected = np.mean(0.5 * np.sum((yhat - y) ** 2, axis=1))
        elif loss == "binary_cross_entropy":
            expected = np.mean(-np.sum(y * np.log(yhat) + (1 - y) * np.log(1 - yhat), axis=1))
        else:
            expected = np.mean(-np.sum(y * np.log(yhat), axis=1))
        assert net.loss(X, y) == pytest.approx(expected, rel=1e-12), (output, loss)


def test_integer_labels_equal_one_hot(dtype):
    rng = np.random.default_rng(7)
    net = MLP([3, 4, 5], output="softmax", dtype=dtype, seed=0)
    X = rng.standard_normal((9, 3))
    labels = rng.integers(0, 5, 9)
    one_hot = np.eye(5)[labels]
    loss_a, gw_a, gb_a = net.loss_and_grad(X, labels, copy=True)
    loss_b, gw_b, gb_b = net.loss_and_grad(X, one_hot, copy=True)
    assert loss_a == pytest.approx(loss_b, rel=1e-6 if dtype == "float32" else 1e-15)
    np.testing.assert_allclose(flat_grad(gw_a, gb_a), flat_grad(gw_b, gb_b), rtol=1e-5, atol=1e-7)


def test_soft_targets_that_do_not_sum_to_one_have_exact_gradients():
    rng = np.random.default_rng(8)
    net = MLP([3, 4, 3], output="softmax", seed=0)
    X = rng.standard_normal((5, 3))
    y = rng.uniform(0, 1, (5, 3))  # rows do not sum to one
    _, gw, gb = net.loss_and_grad(X, y, copy=True)
    assert relative_error(flat_grad(gw, gb), finite_difference_grads(net, X, y), 1e-6) < 1e-7


def test_sample_weight_is_a_weighted_mean_and_integer_weights_repeat_rows():
    rng = np.random.default_rng(9)
    net = MLP([3, 4, 2], activation="relu", seed=0)
    X = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 2))
    w = np.array([1.0, 0.0, 3.0, 2.0])
    per_sample = [net.loss(X[i:i + 1], y[i:i + 1]) for i in range(4)]
    assert net.loss(X, y, sample_weight=w) == pytest.approx(np.dot(w, per_sample) / w.sum(), rel=1e-13)
    repeated = np.repeat(np.arange(4), w.astype(int))
    loss_w, gw_w, gb_w = net.loss_and_grad(X, y, sample_weight=w, copy=True)
    loss_r, gw_r, gb_r = net.loss_and_grad(X[repeated], y[repeated], copy=True)
    assert loss_w == pytest.approx(loss_r, rel=1e-13)
    np.testing.assert_allclose(flat_grad(gw_w, gb_w), flat_grad(gw_r, gb_r), rtol=1e-12, atol=1e-15)
    numeric = finite_difference_grads(net, X, y, sample_weight=w)
    assert relative_error(flat_grad(gw_w, gb_w), numeric, 1e-6) < 1e-7


# -- train_step -----------------------------------------------------------------

@pytest.mark.parametrize("sizes,batch", [([2, 2, 1], 1), ([30, 40, 20, 3], 50)])
def test_train_step_equals_loss_and_grad_then_update(dtype, sizes, batch):
    rng = np.random.default_rng(10)
    net = MLP(sizes, activation="tanh", output="sigmoid", loss="binary_cross_entropy",
              dtype=dtype, seed=0)
    twin = net.copy()
    X = rng.standard_normal((batch, sizes[0]))
    y = rng.uniform(0, 1, (batch, sizes[-1]))
    lr = 0.3
    loss, gw, gb = twin.loss_and_grad(X, y, copy=True)
    expected = [W - lr * g for W, g in zip(twin.weights, gw)] + \
               [b - lr * g for b, g in zip(twin.biases, gb)]
    returned = net.train_step(X, y, lr)
    assert returned == loss
    rtol = 1e-6 if dtype == "float32" else 1e-14
    for got, want in zip(net.weights + net.biases, expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)


def test_train_step_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0], dtype=float)
    net = MLP([2, 4, 1], activation="tanh", output="sigmoid", seed=0)
    first = net.loss(X, y)
    for _ in range(2000):
        net.train_step(X, y, 0.5)
    assert net.loss(X, y) < 0.05 < first
    np.testing.assert_array_equal(net.predict(X)[:, 0] > 0.5, y > 0.5)


# -- numerical stability ---------------------------------------------------------

@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_huge_preactivations_give_finite_loss_and_gradients(hidden, output, loss, dtype):
    rng = np.random.default_rng(11)
    net = MLP([3, 4, 3], activation=hidden, output=output, loss=loss, dtype=dtype, seed=0)
    for W in net.weights:
        W *= 30.0
    X = 30.0 * rng.standard_normal((6, 3))
    y = make_targets(rng, output, loss, 6, 3)
    if hidden == "identity" and output == "identity":
        pass  # unbounded outputs stay finite at this scale too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_value, gw, gb = net.loss_and_grad(X, y)
    assert np.isfinite(loss_value)
    assert all(np.all(np.isfinite(g)) for g in gw + gb)


def test_saturated_cross_entropy_is_exact_not_clipped():
    net = MLP([1, 2], output="softmax", seed=0)
    net.weights[0][...] = [[500.0], [-500.0]]
    X = np.array([[1.0]])
    # log softmax(z)_1 = -(z_0 - z_1) - log(1 + exp(-(z_0 - z_1))) = -1000
    assert net.loss(X, np.array([1])) == pytest.approx(1000.0, rel=1e-15)
    assert net.loss(X, np.array([0])) == pytest.approx(0.0, abs=1e-300)
    bce = MLP([1, 1], output="sigmoid", loss="binary_cross_entropy", seed=0)
    bce.weights[0][...] = [[800.0]]
    assert bce.loss(X, np.array([0.0])) == pytest.approx(800.0, rel=1e-15)


def test_overflowing_outputs_raise_and_leave_the_network_unchanged():
    net = MLP([2, 3, 1], activation="identity", dtype="float32", seed=0)
    for W in net.weights:
        W[...] = 1e30
    before = net.parameters.copy()
    with pytest.raises(FloatingPointError, match="unchanged"):
        net.train_step(np.ones((2, 2)), np.ones(2), 0.1)
    np.testing.assert_array_equal(net.parameters, before)


# -- API contract -----------------------------------------------------------------

def test_weights_are_live_views():
    net = MLP([3, 4, 2], seed=0)
    net.weights[0][0, 0] = 5.0
    assert net.parameters[0] == 5.0
    replacement = np.arange(8.0).reshape(2, 4)
    net.weights[1] = replacement
    np.testing.assert_array_equal(net.weights[1], replacement)
    with pytest.raises(ValueError, match="shape"):
        net.weights[1] = np.zeros((4, 2))
    X = np.ones((1, 3))
    before = net.predict(X).copy()
    net.biases[1][...] += 1.0
    np.testing.assert_allclose(net.predict(X), before + 1.0)


def test_shapes_dtypes_and_repr():
    net = MLP([5, 7, 3], activation="relu", output="softmax", dtype="float32", seed=0)
    assert [W.shape for W in net.weights] == [(7, 5), (3, 7)]
    assert [b.shape for b in net.biases] == [(7,), (3,)]
    assert all(W.dtype == np.float32 for W in net.weights)
    assert net.loss_name == "cross_entropy"
    assert repr(net) == ("MLP([5, 7, 3], activation='relu', output='softmax', loss='cross_entropy', "
                         "dtype='float32')")
    out = net.predict(np.ones((4, 5)))
    assert out.shape == (4, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_initialisation_is_seeded_he_for_relu_glorot_otherwise():
    a = MLP([100, 200, 50], activation="relu", seed=42)
    b = MLP([100, 200, 50], activation="relu", seed=42, dtype="float32")
    np.testing.assert_array_equal(a.weights[0].astype(np.float32), b.weights[0])
    assert np.abs(a.weights[0]).max() <= np.sqrt(6 / 100)
    assert np.abs(a.weights[0]).max() > 0.95 * np.sqrt(6 / 100)
    assert np.abs(a.weights[1]).max() <= np.sqrt(6 / 250)
    assert np.abs(a.weights[1]).max() > 0.95 * np.sqrt(6 / 250)
    assert all(np.all(bias == 0) for bias in a.biases)
    assert not np.array_equal(MLP([100, 200, 50], seed=1).weights[0], a.weights[0])


def test_gradient_views_are_overwritten_and_copies_are_not():
    rng = np.random.default_rng(12)
    net = MLP([3, 4, 1], seed=0)
    X1, X2 = rng.standard_normal((2, 5, 3))
    y = rng.standard_normal(5)
    _, views, _ = net.loss_and_grad(X1, y)
    _, copies, _ = net.loss_and_grad(X1, y, copy=True)
    first = copies[0].copy()
    net.loss_and_grad(X2, y)
    assert not np.array_equal(views[0], first)
    np.testing.assert_array_equal(copies[0], first)


def test_copy_is_independent():
    net = MLP([3, 4, 1], seed=0)
    twin = net.copy()
    twin.weights[0][...] = 0.0
    assert not np.all(net.weights[0] == 0.0)
    assert repr(twin) == repr(net)


def test_inputs_are_converted_to_the_network_dtype():
    net = MLP([3, 2, 1], seed=0)
    X = np.arange(6, dtype=np.int32).reshape(2, 3)
    expected = net.predict(X.astype(np.float64))
    np.testing.assert_array_equal(net.predict(X), expected)
    np.testing.assert_array_equal(net.predict(X.tolist()), expected)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X.astype(np.float32))), expected)
    np.testing.assert_array_equal(net.predict(np.repeat(X, 2, axis=0)[::2]), expected)
    big = np.arange(3 * 3000, dtype=float).reshape(3000, 3) / 3000
    np.testing.assert_allclose(net.predict(big)[-2:], net.predict(big[-2:]), rtol=1e-15)


def test_predict_and_loss_on_batches_larger_than_the_evaluation_chunk():
    rng = np.random.default_rng(13)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    X = rng.standard_normal((2500, 4))
    y = rng.integers(0, 3, 2500)
    P = net.predict(X)
    assert net.loss(X, y) == pytest.approx(-np.mean(np.log(P[np.arange(2500), y])), rel=1e-12)
    np.testing.assert_allclose(P[1500:1510], net.predict(X[1500:1510]), rtol=1e-14)


# -- bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(layer_sizes=[2]), ValueError, "at least"),
    (dict(layer_sizes=[2, 0, 1]), ValueError, ">= 1"),
    (dict(layer_sizes=[2, 2.5, 1]), TypeError, "integers"),
    (dict(layer_sizes="221"), TypeError, "sequence"),
    (dict(layer_sizes=[2, 2, 1], activation="swish"), ValueError, "relu, sigmoid, tanh"),
    (dict(layer_sizes=[2, 2, 2, 1], activation=["relu"]), ValueError, "expected 2"),
    (dict(layer_sizes=[2, 2, 1], output="softplus"), ValueError, "softmax"),
    (dict(layer_sizes=[2, 2, 1], loss="hinge"), ValueError, "cross_entropy"),
    (dict(layer_sizes=[2, 2, 3], output="softmax", loss="squared_error"), ValueError, "valid combinations"),
    (dict(layer_sizes=[2, 2, 3], output="identity", loss="cross_entropy"), ValueError, "valid combinations"),
    (dict(layer_sizes=[2, 2, 1], output="identity", loss="binary_cross_entropy"), ValueError,
     "valid combinations"),
    (dict(layer_sizes=[2, 2, 1], output="softmax"), ValueError, "at least 2"),
    (dict(layer_sizes=[2, 2, 1], dtype="float16"), ValueError, "float32"),
    (dict(layer_sizes=[2, 2, 1], dtype="int64"), ValueError, "float32"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MLP(**kwargs)


def _bad_calls():
    X = np.ones((3, 4))
    y_cls = np.array([0, 1, 2])
    return [
        ("X wrong width", lambda n: n.loss(np.ones((3, 5)), y_cls), ValueError, "4 features"),
        ("X 3-D", lambda n: n.loss(np.ones((3, 4, 1)), y_cls), ValueError, "2-D"),
        ("X empty", lambda n: n.loss(np.ones((0, 4)), y_cls[:0]), ValueError, "empty batch"),
        ("X NaN", lambda n: n.loss(np.where(np.eye(3, 4) > 0, np.nan, 1.0), y_cls), ValueError,
         r"X\[\(0, 0\)\].*NaN"),
        ("X inf", lambda n: n.train_step(np.full((3, 4), np.inf), y_cls, 0.1), ValueError, "finite"),
        ("X strings", lambda n: n.loss(np.array([["a"] * 4] * 3), y_cls), TypeError, "string"),
        ("X complex", lambda n: n.loss(X + 1j, y_cls), TypeError, "complex"),
        ("X bool", lambda n: n.loss(X > 0, y_cls), TypeError, "bool"),
        ("X object", lambda n: n.loss(np.array([[object()] * 4] * 3), y_cls), TypeError, "object"),
        ("X ragged", lambda n: n.loss([[1, 2], [3]], y_cls), TypeError, "real numbers"),
        ("y None in loss", lambda n: n.loss(X, None), TypeError, "y is required"),
        ("y None in loss_and_grad", lambda n: n.loss_and_grad(X, None), TypeError, "y is required"),
        ("y None in train_step", lambda n: n.train_step(X, None, 0.1), TypeError, "y is required"),
        ("y None in score", lambda n: n.score(X, None), TypeError, "y is required"),
        ("score label too big", lambda n: n.score(X, np.array([0, 1, 3])), ValueError, "out of range"),
        ("score labels wrong count", lambda n: n.score(X, np.array([0, 1])), ValueError, "2 labels for 3"),
        ("label too big", lambda n: n.loss(X, np.array([0, 1, 3])), ValueError, "out of range"),
        ("label negative", lambda n: n.train_step(X, np.array([0, -1, 2]), 0.1), ValueError, "out of range"),
        ("float labels", lambda n: n.loss(X, np.array([0.0, 1.0, 2.0])), TypeError, "integer class labels"),
        ("labels wrong count", lambda n: n.loss(X, np.array([0, 1])), ValueError, "2 labels for 3"),
        ("one-hot wrong width", lambda n: n.loss(X, np.eye(3, 4)), ValueError, r"shape \(3, 3\)"),
        ("probabilities > 1", lambda n: n.loss(X, 2 * np.eye(3)), ValueError, r"outside \[0, 1\]"),
        ("y NaN", lambda n: n.loss(X, np.full((3, 3), np.nan)), ValueError, r"outside \[0, 1\]"),
        ("negative weight", lambda n: n.loss(X, y_cls, sample_weight=[1, -1, 1]), ValueError, "negative"),
        ("zero weights", lambda n: n.train_step(X, y_cls, 0.1, sample_weight=[0, 0, 0]), ValueError,
         "sums to zero"),
        ("weights wrong length", lambda n: n.loss(X, y_cls, sample_weight=[1, 1]), ValueError,
         r"shape \(3,\)"),
        ("negative lr", lambda n: n.train_step(X, y_cls, -0.1), ValueError, "learning rate"),
        ("NaN lr", lambda n: n.train_step(X, y_cls, float("nan")), ValueError, "learning rate"),
        ("inf lr", lambda n: n.train_step(X, y_cls, float("inf")), ValueError, "learning rate"),
        ("string lr", lambda n: n.train_step(X, y_cls, "0.1"), TypeError, "real number"),
        ("predict wrong width", lambda n: n.predict(np.ones(5)), ValueError, "4"),
    ]


@pytest.mark.parametrize("name,call,exc,match", _bad_calls(), ids=[c[0] for c in _bad_calls()])
def test_bad_input_raises_and_leaves_the_network_unchanged(dtype, name, call, exc, match):
    net = MLP([4, 5, 3], output="softmax", dtype=dtype, seed=0)
    X = np.ones((3, 4))
    net.loss_and_grad(X, np.array([0, 1, 2]))
    params = net.parameters.copy()
    grads = np.concatenate([g.ravel() for g in net.loss_and_grad(X, np.array([0, 1, 2]))[1]])
    with pytest.raises(exc, match=match):
        call(net)
    np.testing.assert_array_equal(net.parameters, params)
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in net._grad_weight_views]), grads)


@pytest.mark.parametrize("call,match", [
    (lambda n: n.loss(np.ones((3, 2)), np.ones((3, 2))), r"shape \(3, 1\) or \(3,\)"),
    (lambda n: n.loss(np.ones((3, 2)), np.ones(4)), "4 targets for 3"),
    (lambda n: n.loss(np.ones((3, 2)), np.array([1.0, np.inf, 0.0])), "finite"),
    (lambda n: n.score(np.ones((3, 2)), np.array([1.0, np.nan, 0.0])), "finite"),
    (lambda n: n.score(np.ones((3, 2)), np.ones(5)), "5 targets for 3"),
])
def test_bad_regression_targets(call, match):
    net = MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=match):
        call(net)


def test_binary_cross_entropy_targets_must_be_probabilities():
    net = MLP([2, 3, 1], output="sigmoid", loss="binary_cross_entropy", seed=0)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        net.loss(np.ones((2, 2)), np.array([0.5, 1.5]))


def test_version_is_exposed():
    assert pybackprop.__version__.count(".") == 2


def _runtime_imports(path):
    """(module imported, at module level?) of every import in a pybackprop
    module, relative imports resolved, imports under ``if TYPE_CHECKING:``
    (annotations only, never run) left out."""
    import ast

    found = []

    def visit(node, top_level):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, top_level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = "pybackprop." + (child.module or "") if child.level else child.module
                base = base.rstrip(".")
                found.append((base, top_level))
                found.extend((f"{base}.{alias.name}", top_level) for alias in child.names)
            else:
                nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                visit(child, top_level and not nested)

    visit(ast.parse(path.read_text()), True)
    return found


def test_python_layers_import_one_way():
    """network imports io, training and optim at its top; they never import network."""
    from pathlib import Path

    package = Path(pybackprop.__file__).parent
    for name in ("io", "training", "optim", "_validation"):
        imported = [module for module, _ in _runtime_imports(package / f"{name}.py")]
        assert "pybackprop.network" not in imported, f"{name}.py imports network"
        assert "pybackprop.MLP" not in imported, f"{name}.py imports MLP"
    network_imports = _runtime_imports(package / "network.py")
    for name in ("io", "training", "optim"):
        assert (f"pybackprop.{name}", True) in network_imports, f"network.py imports {name} on top"
    assert all(top_level for _, top_level in network_imports), "network.py imports in a function"


def test_name_types_equal_the_name_tables():
    """The Literal types in annotations spell the names out (a type checker
    needs that); they must be exactly the tables the library validates with."""
    from typing import get_args

    from pybackprop import optim

    assert set(get_args(_validation.HiddenActivation)) == set(_validation.HIDDEN_ACTIVATIONS)
    assert set(get_args(_validation.OutputActivation)) == set(_validation.OUTPUT_ACTIVATIONS)
    assert set(get_args(_validation.LossName)) == set(_validation.LOSSES)
    assert set(get_args(_validation.DTypeName)) == set(_validation.DTYPES)
    net = MLP([2, 2], seed=0)
    for name in get_args(optim.OptimizerName):
        assert isinstance(optim.make_optimizer(net, name, None), optim.Optimizer)
    names = ", ".join(sorted(get_args(optim.OptimizerName)))
    with pytest.raises(ValueError, match=f"valid choices: {names}$"):
        optim.make_optimizer(net, "rmsprop", None)


def test_shared_validators_say_what_was_expected_and_what_came():
    assert _validation.check_real("momentum", 0.5, 0.0, 1.0, high_open=True) == 0.5
    assert _validation.check_int("epochs", np.int64(3)) == 3
    assert _validation.check_choice("loss", "cross_entropy", _validation.LOSSES) == "cross_entropy"
    with pytest.raises(TypeError, match="momentum must be a real number, got 'x'"):
        _validation.check_real("momentum", "x")
    with pytest.raises(TypeError, match="momentum must be a real number, got True"):
        _validation.check_real("momentum", True)
    with pytest.raises(ValueError, match="eps must be finite, got nan"):
        _validation.check_real("eps", float("nan"))
    with pytest.raises(ValueError, match=r"eps must be > 0.0, got 0.0"):
        _validation.check_real("eps", 0, 0.0, low_open=True)
    with pytest.raises(ValueError, match=r"momentum must be < 1.0, got 1.0"):
        _validation.check_real("momentum", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 2.5"):
        _validation.check_int("epochs", 2.5)
    with pytest.raises(ValueError, match=r"patience must be an integer >= 1, got False"):
        _validation.check_int("patience", False)
    with pytest.raises(ValueError, match=r"unknown solver 'lbfgs'; valid choices: adam, sgd$"):
        _validation.check_choice("solver", "lbfgs", ("sgd", "adam"))
