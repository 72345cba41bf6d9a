"""fit, the compiled epoch loop, user-supplied losses, allocation and threads."""

import _thread
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pybackprop
from pybackprop import MLP
from pybackprop.optim import SGD, Adam, StepLR

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blobs(n=200, n_in=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_in)) * 3
    y = rng.integers(0, n_classes, n)
    return centers[y] + rng.standard_normal((n, n_in)), y


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_fit_equals_a_python_loop_of_train_steps(dtype, batch_size):
    X, y = blobs(50)
    net = MLP([4, 5, 3], activation="relu", output="softmax", dtype=dtype, seed=0)
    twin = net.copy()
    history = net.fit(X, y, epochs=3, batch_size=batch_size, lr=0.05, seed=7)
    rng = np.random.default_rng(7)
    order = np.arange(50)
    losses = []
    for _ in range(3):
        rng.shuffle(order)
        total = 0.0
        for start in range(0, 50, batch_size):
            rows = order[start:start + batch_size]
            total += twin.train_step(X[rows], y[rows], 0.05) * len(rows)
        losses.append(total / 50)
    np.testing.assert_array_equal(net.parameters, twin.parameters)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)
    assert history.epochs_run == 3 and history.lr == [0.05] * 3


def test_fit_with_adam_equals_loss_and_grad_then_step(dtype):
    X, y = blobs(40)
    net = MLP([4, 6, 3], activation="tanh", output="softmax", dtype=dtype, seed=1)
    twin = net.copy()
    net.fit(X, y, epochs=2, batch_size=16, optimizer=Adam(net, lr=0.01), shuffle=False)
    opt = Adam(twin, lr=0.01)
    for _ in range(2):
        for start in range(0, 40, 16):
            twin.loss_and_grad(X[start:start + 16], y[start:start + 16])
            opt.step()
    np.testing.assert_array_equal(net.parameters, twin.parameters)


def test_fit_momentum_schedule_and_optimizer_state_carry_over():
    X, y = blobs(60)
    net = MLP([4, 8, 3], output="softmax", seed=2)
    opt = SGD(net, lr=0.1, momentum=0.9, schedule=StepLR(1, 0.5))
    history = net.fit(X, y, epochs=3, batch_size=20, optimizer=opt, seed=0)
    assert history.lr == [0.1, 0.05, 0.025]
    assert opt.step_count == 9
    net.fit(X, y, epochs=1, batch_size=20, optimizer=opt, seed=0)
    assert opt.step_count == 12


def test_fit_learns_digits_with_validation_metrics(digits):
    X, y = digits
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    net = MLP([64, 32, 10], activation="relu", output="softmax", dtype="float32", seed=0)
    history = net.fit(X, y, epochs=15, batch_size=32, optimizer="adam", lr=0.003,
                      validation_split=0.2, seed=0)
    assert len(history.val_loss) == len(history.val_accuracy) == 15
    assert history.val_accuracy[-1] > 0.93
    assert history.loss[-1] < history.loss[0] / 5
    assert history.samples_per_second > 0 and history.time > 0


def test_validation_split_holds_out_samples():
    X, y = blobs(100)
    net = MLP([4, 3], output="softmax", seed=0)
    seen = []
    net.fit(X, y, epochs=1, validation_split=0.25, seed=3,
            callbacks=lambda n, e, logs: seen.append(logs))
    assert set(seen[0]) == {"epoch", "loss", "lr", "val_loss", "val_accuracy"}
    with pytest.raises(ValueError, match="validation_data or validation_split"):
        net.fit(X, y, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match="both need at least one"):
        net.fit(X[:2], y[:2], validation_split=0.1)


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(80, seed=4)
    Xv, yv = blobs(40, seed=5)
    net = MLP([4, 16, 3], output="softmax", seed=0)
    snapshots = []
    history = net.fit(X, y, epochs=200, batch_size=8, optimizer="sgd", lr=2.0,
                      validation_data=(Xv, yv), early_stopping=True, patience=3, seed=0,
                      callbacks=lambda n, e, logs: snapshots.append(n.parameters.copy()))
    assert history.stopped_early and history.epochs_run < 200
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert history.epochs_run - 1 - history.best_epoch == 3
    assert history.restored_best
    np.testing.assert_array_equal(net.parameters, snapshots[history.best_epoch])


def test_callback_can_stop_training():
    X, y = blobs(30)
    net = MLP([4, 3], output="softmax", seed=0)
    history = net.fit(X, y, epochs=50, callbacks=[lambda n, e, logs: e == 4])
    assert history.epochs_run == 5 and not history.stopped_early


def test_divergence_raises_and_restores_finite_weights():
    X, y = blobs(100)
    X = X * 1e3
    net = MLP([4, 64, 64, 1], activation="identity", dtype="float32", seed=0)
    target = np.linspace(-1e3, 1e3, 100)
    with pytest.raises(pybackprop.TrainingDiverged, match="diverged in epoch") as info:
        net.fit(X, target, epochs=50, batch_size=10, lr=10.0)
    assert np.all(np.isfinite(net.parameters))
    assert isinstance(info.value, FloatingPointError)
    assert len(info.value.history.loss) == info.value.history.epochs_run
    assert np.isfinite(net.loss(X[:5], target[:5]))


def test_sample_weight_zero_equals_leaving_samples_out():
    X, y = blobs(30)
    w = np.ones(30)
    w[::3] = 0
    net = MLP([4, 5, 3], output="softmax", seed=0)
    twin = net.copy()
    net.fit(X, y, epochs=4, batch_size=30, lr=0.1, sample_weight=w, shuffle=False)
    keep = w > 0
    twin.fit(X[keep], y[keep], epochs=4, batch_size=30, lr=0.1, shuffle=False)
    np.testing.assert_allclose(net.parameters, twin.parameters, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(validation_split=1.0), "validation_split"), (dict(optimizer="lbfgs"), "sgd"),
    (dict(lr=-0.1), "learning rate"), (dict(callbacks=[3]), "callables"),
    (dict(validation_data=(np.ones((2, 5)), [0, 1])), "4 features"),
    (dict(patience=0), "patience"),
])
def test_bad_fit_arguments(kwargs, match):
    X, y = blobs(20)
    net = MLP([4, 3], output="softmax", seed=0)
    before = net.parameters.copy()
    with pytest.raises((ValueError, TypeError), match=match):
        net.fit(X, y, **kwargs)
    np.testing.assert_array_equal(net.parameters, before)


def test_fit_rejects_bad_data_before_training():
    X, y = blobs(20)
    X[5, 2] = np.nan
    net = MLP([4, 3], output="softmax", seed=0)
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=r"X\[\(5, 2\)\]"):
        net.fit(X, y)
    with pytest.raises(ValueError, match="out of range"):
        net.fit(np.nan_to_num(X), np.where(y == 0, 7, y))
    np.testing.assert_array_equal(net.parameters, before)


# -- classification helpers ------------------------------------------------------

def test_predict_classes_proba_and_score():
    X, y = blobs(120)
    net = MLP([4, 16, 3], output="softmax", seed=0)
    net.fit(X, y, epochs=30, optimizer="adam", lr=0.01, seed=0)
    P = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict_classes(X), P.argmax(axis=1))
    assert net.score(X, y) == pytest.approx(np.mean(P.argmax(axis=1) == y))
    assert net.score(X, y) > 0.9
    binary = MLP([4, 1], output="sigmoid", seed=0)
    assert binary.predict_classes(X).shape == (120,)
    regression = MLP([4, 2], seed=0)
    with pytest.raises(ValueError, match="identity"):
        regression.predict_proba(X)
    Y = X[:, :2] * 2 + 1
    regression.fit(X, Y, epochs=200, batch_size=120, lr=0.05)
    residual = ((Y - regression.predict(X)) ** 2).sum(axis=0)
    total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    assert regression.score(X, Y) == pytest.approx(np.mean(1 - residual / total), rel=1e-12)
    assert regression.score(X, Y) > 0.99


# -- user-supplied losses ----------------------------------------------------------

@pytest.mark.parametrize("output,loss,grad_of_mean", [
    ("identity", "squared_error", lambda A, Y: (A - Y) / len(A)),
    ("sigmoid", "squared_error", lambda A, Y: (A - Y) / len(A)),
    ("sigmoid", "binary_cross_entropy", lambda A, Y: (A - Y) / (A * (1 - A)) / len(A)),
    ("softmax", "cross_entropy", lambda A, Y: -Y / A / len(A)),
])
def test_backward_from_output_gradient_equals_builtin_losses(dtype, output, loss, grad_of_mean, rng):
    net = MLP([3, 5, 3], activation="tanh", output=output, loss=loss, dtype=dtype, seed=0)
    X = rng.standard_normal((6, 3))
    Y = np.eye(3)[rng.integers(0, 3, 6)] if output == "softmax" else rng.uniform(0.1, 0.9, (6, 3))
    _, gw, gb, dX = net.loss_and_grad(X, Y, input_grad=True, copy=True)
    A = net.predict(X).astype(np.float64)
    gw2, gb2, dX2 = net.backward(X, grad_of_mean(A, Y), input_grad=True, copy=True)
    rtol = 1e-4 if dtype == "float32" else 1e-12
    for a, b in zip(gw + gb + (dX,), gw2 + gb2 + (dX2,)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3)


def test_backward_with_a_custom_loss_matches_finite_differences():
    """Mean absolute cube error, a loss the library does not have."""
    rng = np.random.default_rng(1)
    net = MLP([3, 4, 2], activation="sigmoid", seed=0)
    X = rng.standard_normal((5, 3))
    Y = rng.standard_normal((5, 2))

    def custom_loss():
        return np.mean(np.sum(np.abs(net.predict(X) - Y) ** 3, axis=1))

    D = net.predict(X) - Y
    gw, gb = net.backward(X, 3 * D * np.abs(D) / 5, copy=True)
    analytic = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(gw, gb)])
    numeric = np.empty(net.n_params)
    flat = net.parameters
    h = 1e-6
    for i in range(net.n_params):
        saved = flat[i]
        flat[i] = saved + h
        plus = custom_loss()
        flat[i] = saved - h
        minus = custom_loss()
        flat[i] = saved
        numeric[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_backward_rejects_bad_gradients():
    net = MLP([3, 4, 2], seed=0)
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        net.backward(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        net.backward(X, np.array([[1.0, np.nan], [0.0, 0.0]]))


# -- no allocation in a warmed-up step ---------------------------------------------

# Measured in a fresh interpreter: tracemalloc counts every thread's allocations,
# and in a test session other threads live on (tqdm's monitor, started by any
# earlier progress bar, wakes every 10 s and leaves ~550 bytes traced: once it
# woke inside the window and the test measured 608 bytes).  The child checks
# that nothing else runs and keeps the cyclic collector from freeing unrelated
# garbage mid-window, so what remains is deterministic work of the steps alone.
ALLOCATIONS_SCRIPT = """
import gc, json, sys, threading
from pybackprop.bench.allocations import step_allocations
others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
assert not others, f"threads other than the main one would be measured too: {others}"
gc.disable()
print(json.dumps(step_allocations(int(sys.argv[1]), steps=1000)))
"""


@pytest.mark.parametrize("batch", [1, 256])
def test_warmed_up_steps_allocate_nothing(batch):
    result = subprocess.run([sys.executable, "-c", ALLOCATIONS_SCRIPT, str(batch)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    retained, peak_rise = json.loads(result.stdout)
    # A leak of one object per step would retain >= 32 KB over 1000 steps;
    # what may differ is a handful of scalars (the step counter, the last
    # loss) replaced by new objects of the same size.
    assert retained < 512, f"{retained} bytes stayed allocated over 1000 steps"
    assert peak_rise < 8 * 1024, f"peak rose by {peak_rise} bytes"


# -- threads --------------------------------------------------------------------------

def test_separate_networks_train_in_parallel_threads_with_sequential_results():
    X, y = blobs(64)
    nets = [MLP([4, 32, 32, 3], output="softmax", seed=s) for s in range(4)]
    expected = [n.copy() for n in nets]
    for n in expected:
        n.fit(X, y, epochs=20, batch_size=8, lr=0.05, seed=1)
    threads = [threading.Thread(target=n.fit, args=(X, y),
                                kwargs=dict(epochs=20, batch_size=8, lr=0.05, seed=1)) for n in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, e in zip(nets, expected):
        np.testing.assert_array_equal(n.parameters, e.parameters)


def test_one_network_shared_by_threads_stays_consistent():
    """Calls on a shared network take turns under its lock: with lr = 0 every
    loss and prediction equals the single-threaded one, whatever the interleaving."""
    X, y = blobs(256)
    net = MLP([4, 64, 3], output="softmax", seed=0)
    expected_loss = net.loss(X, y)
    expected_pred = net.predict(X)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            if rng.random() < 0.5:
                if net.train_step(X, y, 0.0) != expected_loss:
                    errors.append("loss")
            elif not np.array_equal(net.predict(X), expected_pred):
                errors.append("predict")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- interrupts ---------------------------------------------------------------------------

def test_ctrl_c_stops_fit_between_batches_and_leaves_a_usable_network(rng):
    X = rng.standard_normal((20000, 64))
    y = rng.integers(0, 10, 20000)
    net = MLP([64, 256, 256, 10], output="softmax", seed=0)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, y, epochs=1000, batch_size=32, lr=0.01)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 30
    assert np.all(np.isfinite(net.parameters))
    assert np.isfinite(net.loss(X[:100], y[:100]))
    net.train_step(X[:32], y[:32], 0.01)
