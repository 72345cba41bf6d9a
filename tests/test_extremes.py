"""Extreme pre-activations and diverging training.

Very large and very small pre-activations must give finite outputs, losses
and gradients (no overflow, no NaN, no warning) in every activation and
loss, equal to pybackprop.reference wherever the reference is finite.  A
learning rate that makes training diverge must end in the documented way:
fit raises TrainingDiverged with the start-of-epoch weights restored,
train_step raises FloatingPointError leaving the parameters unchanged;
never NaN or infinite weights handed back silently.
"""

import numpy as np
import pytest

import pybackprop
from pybackprop import MLP, _validation, reference
from pybackprop.optim import SGD, Adam

pytestmark = pytest.mark.filterwarnings("error")

HIDDEN = list(_validation.HIDDEN_ACTIVATIONS)
PAIRS = list(_validation.VALID_PAIRS)

# Around the points where exp overflows or underflows (709/745 in float64,
# 88/104 in float32), where exp's results turn subnormal, and far beyond.
MAGNITUDES = [0.0, 1e-310, 1e-40, 1e-8, 1.0, 17.0, 37.0, 50.0, 87.5, 89.0, 104.0, 300.0,
              708.5, 710.0, 746.0, 800.0, 1e4]
BIG = {"float64": [1e30, 1e150], "float32": [1e15]}

TOLERANCE = {  # rtol per entry; absolute floor: a few subnormal units (exp keeps subnormals)
    "float64": (1e-9, 1e-320),
    "float32": (2e-4, 1e-44),
}


def extreme_network(hidden_act, output, loss, dtype, n_out):
    """[1, 2, n_out]: hidden pre-activations +x and -x, outputs mixing them."""
    net = MLP([1, 2, n_out], activation=hidden_act, output=output, loss=loss, dtype=dtype, seed=0)
    net.weights[0] = np.array([[1.0], [-1.0]])
    net.biases[0] = np.zeros(2)
    W1 = np.array([[1.0, -0.5], [-0.25, 1.0], [0.5, 0.5]])[:n_out]
    net.weights[1] = W1
    net.biases[1] = np.array([0.0, 0.5, -1.0])[:n_out]
    return net


def inputs_for(dtype, output, hidden_act):
    values = list(MAGNITUDES)
    tiny = np.finfo(dtype).tiny
    values = [v for v in values if v == 0 or v >= tiny / 4 or dtype == "float64"]
    if output != "identity" or hidden_act in ("sigmoid", "tanh"):
        # Outputs stay bounded (or the loss grows only linearly): far larger
        # pre-activations still have representable losses and gradients.
        values += BIG[dtype]
    return np.array(sorted({s * v for v in values for s in (1.0, -1.0)}), dtype=dtype)[:, None]


def targets_for(loss, n, n_out):
    rng = np.random.default_rng(1)
    if loss == "cross_entropy":
        return rng.integers(0, n_out, n)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, n_out)).astype(float)
    return rng.choice([-1.0, 0.0, 0.5, 1.0], (n, n_out))


def assert_close(got, want, dtype, what, terms=None):
    """|got - want| <= floor + rtol |want| + 64 eps sum|terms| per entry,
    where terms bounds the sum of absolute values the entry was summed from."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    rtol, floor = TOLERANCE[dtype]
    finite = np.isfinite(want)
    bound = floor + rtol * np.abs(want)
    if terms is not None:
        bound = bound + 64 * np.finfo(dtype).eps * np.asarray(terms)
    bad = finite & ~(np.abs(got - want) <= bound)
    assert not bad.any(), (f"{what}: {np.count_nonzero(bad)} entries differ from the reference, "
                           f"e.g. got {got[bad][:3]} want {want[bad][:3]}")


@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("hidden_act", HIDDEN)
def test_extreme_preactivations_give_finite_values_matching_reference(hidden_act, output, loss, dtype):
    n_out = 3 if output == "softmax" else 2
    net = extreme_network(hidden_act, output, loss, dtype, n_out)
    X = inputs_for(dtype, output, hidden_act)
    y = targets_for(loss, X.shape[0], n_out)

    A = net.predict(X)
    assert np.all(np.isfinite(A)), X[~np.isfinite(A).all(axis=1)].ravel()
    value, dW, db, dX = net.loss_and_grad(X, y, input_grad=True, copy=True)
    assert np.isfinite(value) and value == pytest.approx(net.loss(X, y), rel=1e-6)
    for g in (*dW, *db, dX):
        assert np.all(np.isfinite(g)), g

    weights = [w.astype(np.float64).tolist() for w in net.weights]
    biases = [b.astype(np.float64).tolist() for b in net.biases]
    Xl = X.astype(np.float64).tolist()
    yl = y.tolist()
    ref_A = reference.predict(weights, biases, Xl, activation=hidden_act, output=output)
    ref_loss, ref_dW, ref_db = reference.loss_and_grad(weights, biases, Xl, yl, activation=hidden_act,
                                                       output=output, loss=loss)
    assert_close(A, ref_A, dtype, "predictions")
    assert_close(value, ref_loss, dtype, "loss")

    # Per sample too: a single extreme row must not be hidden by the mean.
    # The per-row gradients also bound the rounding of the batch sums
    # (terms of 1e4 cancelling in float32 leave absolute errors of ~1e-3).
    abs_sum = [np.zeros_like(np.asarray(g, dtype=np.float64)) for g in (*ref_dW, *ref_db)]
    for row in range(X.shape[0]):
        one = net.loss(X[row:row + 1], y[row:row + 1])
        ref_one, row_dW, row_db = reference.loss_and_grad(weights, biases, [Xl[row]], [yl[row]],
                                                          activation=hidden_act, output=output, loss=loss)
        assert np.isfinite(one)
        assert_close(one, ref_one, dtype, f"loss of row {row} (x = {X[row, 0]})")
        for total, g in zip(abs_sum, (*row_dW, *row_db)):
            total += np.abs(np.asarray(g)) / X.shape[0]
    for i in range(2):
        assert_close(dW[i], ref_dW[i], dtype, f"dW{i}", abs_sum[i])
        assert_close(db[i], ref_db[i], dtype, f"db{i}", abs_sum[2 + i])

    # Training on them stays finite too.
    before = net.parameters.copy()
    net.train_step(X, y, 1e-6)
    assert np.all(np.isfinite(net.parameters))
    assert not np.array_equal(before, net.parameters) or hidden_act == "relu"


@pytest.mark.parametrize("output,loss", [pair for pair in PAIRS if pair[0] != "identity"])
def test_saturated_outputs_give_exact_limits(output, loss, dtype):
    """Outputs driven to +-1e30: probabilities exactly 0/1, loss finite and
    linear in the margin, gradients finite."""
    n_out = 3 if output == "softmax" else 1
    big = 1e30 if dtype == "float64" else 1e15
    net = MLP([1, n_out], output=output, loss=loss, dtype=dtype, seed=0)
    net.weights[0] = np.linspace(1, -1, n_out)[:, None] if n_out > 1 else np.ones((1, 1))
    net.biases[0] = np.zeros(n_out)
    X = np.array([[big], [-big]], dtype=dtype)
    A = net.predict(X)
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    if loss == "cross_entropy":
        y = np.array([n_out - 1, n_out - 1])  # wrong for row 0, right for row 1
        expected = 0.5 * (2 * big)            # lse - z_label = big - (-big) for row 0; 0 for row 1
    else:
        y = np.array([0.0, 1.0])              # both confidently wrong
        expected = big if loss == "binary_cross_entropy" else 0.5
    value, dW, db = net.loss_and_grad(X, y, copy=True)
    assert value == pytest.approx(expected, rel=1e-6)
    assert all(np.all(np.isfinite(g)) for g in (*dW, *db))


# -- divergence ------------------------------------------------------------------------------

def diverging_problem(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)) * 3
    y = X @ np.array([1.0, -2.0, 0.5]) + 1
    net = MLP([3, 8, 8, 1], activation="identity", output="identity", dtype=dtype, seed=0)
    return net, X.astype(dtype), y.astype(dtype)


OPTIMIZERS = {
    "sgd": lambda net, lr: "sgd",                            # fused into the backward pass
    "momentum": lambda net, lr: SGD(net, lr=lr, momentum=0.9),
    "adam": lambda net, lr: Adam(net, lr=lr),
}


@pytest.mark.parametrize("lr", [10.0, 1e6, 1e300])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_fit_divergence_raises_and_restores_start_of_epoch(dtype, optimizer, lr):
    net, X, y = diverging_problem(dtype)
    if optimizer == "adam":
        # Adam's steps are about lr in size: only a huge rate overflows the outputs.
        lr = {10.0: 1e100, 1e6: 1e200}.get(lr, lr)
    snapshots = [net.parameters.copy()]

    def record(net_, epoch, logs):
        assert np.isfinite(logs["loss"])
        snapshots.append(net_.parameters.copy())

    with pytest.raises(pybackprop.TrainingDiverged) as info:
        net.fit(X, y, epochs=50, batch_size=8, optimizer=OPTIMIZERS[optimizer](net, lr), lr=lr,
                shuffle=False, callbacks=record)
    assert isinstance(info.value, FloatingPointError)
    assert "diverged" in str(info.value)
    history = info.value.history
    assert history.epochs_run == len(snapshots) - 1 == len(history.loss)
    assert all(np.isfinite(history.loss))
    # The weights from the start of the failing epoch, finite, and usable.
    np.testing.assert_array_equal(net.parameters, snapshots[-1])
    assert np.all(np.isfinite(net.parameters))
    assert np.all(np.isfinite(net.predict(X)))
    assert np.isfinite(net.loss(X, y))


@pytest.mark.parametrize("lr", [10.0, 1e6, 1e300, 1e308])
def test_train_step_divergence_never_leaves_non_finite_weights(dtype, lr):
    """Each train_step either returns with finite parameters or raises
    FloatingPointError with the parameters exactly as before the call."""
    net, X, y = diverging_problem(dtype)
    for step in range(200):
        before = net.parameters.copy()
        try:
            loss = net.train_step(X, y, lr)
        except FloatingPointError as exc:
            assert str(exc)
            np.testing.assert_array_equal(net.parameters, before)
            break
        assert np.isfinite(loss)
        assert np.all(np.isfinite(net.parameters)), (
            f"train_step {step} (lr={lr:g}, {dtype}) returned loss {loss:g} but left "
            f"{np.count_nonzero(~np.isfinite(net.parameters))} non-finite parameters")
    else:
        pytest.fail(f"lr={lr:g} did not diverge in 200 steps")
    # (The outputs may overflow: the weights are huge, but finite.)
    assert np.all(np.isfinite(net.parameters))


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_manual_loop_divergence_is_reported_not_silent(dtype, optimizer):
    """loss_and_grad + optimizer.step with a diverging rate: loss_and_grad
    raises FloatingPointError (gradients and parameters untouched) once the
    loss is not finite; until then every gradient it returns is finite, and
    every step either leaves finite parameters or raises FloatingPointError
    changing nothing."""
    net, X, y = diverging_problem(dtype)
    lr = 1e100 if optimizer == "adam" else 10.0
    opt = OPTIMIZERS[optimizer](net, lr)
    for step in range(500):
        params, grads = net.parameters.copy(), net._core.grads.copy()
        try:
            loss, dW, db = net.loss_and_grad(X, y)
        except FloatingPointError:
            np.testing.assert_array_equal(net.parameters, params)
            np.testing.assert_array_equal(net._core.grads, grads)
            break
        assert np.isfinite(loss)
        assert np.all(np.isfinite(net._core.grads)), (
            f"step {step}: finite loss {loss:g} but non-finite gradients ({dtype})")
        params = net.parameters.copy()
        state = [a.copy() for a in opt._state() if a is not None]
        try:
            opt.step()
        except FloatingPointError:
            # Refusing an update that would overflow is fine, if it changes nothing.
            np.testing.assert_array_equal(net.parameters, params)
            for a, b in zip([a for a in opt._state() if a is not None], state):
                np.testing.assert_array_equal(a, b)
            break
        assert np.all(np.isfinite(net.parameters)), f"step {step}: optimizer made parameters non-finite"
    else:
        pytest.fail("did not diverge")

