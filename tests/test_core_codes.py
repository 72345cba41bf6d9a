"""The contract between the Python layer and the compiled core.

Every code (activations, losses, optimizer kinds) is defined once, in the
core, and read by pybackprop/_validation.py and pybackprop/optim.py;
optimizer settings cross by name; an epoch's progress comes back as named
fields, also when the epoch is interrupted.
"""

import _thread
import threading

import numpy as np
import pytest

import pybackprop
from pybackprop import _dispatch, _validation
from pybackprop.optim import SGD, Adam

CORES = [_dispatch.load(isa) for isa in _dispatch.available()]


@pytest.mark.parametrize("core", CORES, ids=lambda core: core.ISA)
def test_validation_reads_the_core_tables(core):
    assert _validation.HIDDEN_ACTIVATIONS == core.HIDDEN_ACTIVATIONS
    assert _validation.OUTPUT_ACTIVATIONS == core.OUTPUT_ACTIVATIONS
    assert _validation.LOSSES == core.LOSSES
    assert _validation.VALID_PAIRS == core.VALID_PAIRS
    assert set(core.HIDDEN_ACTIVATIONS) == {"identity", "sigmoid", "relu", "tanh"}
    assert set(core.OUTPUT_ACTIVATIONS) == {"identity", "sigmoid", "softmax"}
    assert set(core.OPTIMIZER_KINDS) == {"fused_sgd", "sgd", "adam"}
    assert len(set(core.OPTIMIZER_KINDS.values())) == 3
    for output, loss in core.VALID_PAIRS:
        assert output in core.OUTPUT_ACTIVATIONS and loss in core.LOSSES
        assert _validation.DEFAULT_LOSS[output] in core.LOSSES


def test_activation_codes_are_distinct_where_they_must_be():
    core = _dispatch.core
    codes = {**core.HIDDEN_ACTIVATIONS, **core.OUTPUT_ACTIVATIONS}
    assert len(set(codes.values())) == len(codes)
    assert len(set(core.LOSSES.values())) == len(core.LOSSES)


def test_the_core_refuses_codes_it_does_not_implement():
    core = _dispatch.core
    params = np.zeros(3 * 2 + 2)
    relu, softmax = core.HIDDEN_ACTIVATIONS["relu"], core.OUTPUT_ACTIVATIONS["softmax"]
    with pytest.raises(ValueError, match="VALID_PAIRS"):
        core.Network([3, 2], [softmax], core.LOSSES["squared_error"], params, None)
    with pytest.raises(ValueError, match="VALID_PAIRS"):
        core.Network([3, 2], [relu], core.LOSSES["squared_error"], params, None)
    with pytest.raises(ValueError, match="hidden activation code 99"):
        core.Network([3, 2, 2], [99, softmax], core.LOSSES["cross_entropy"],
                     np.zeros(3 * 2 + 2 + 2 * 2 + 2), None)


def _net_with_gradients():
    rng = np.random.default_rng(1)
    net = pybackprop.MLP([4, 5, 3], output="softmax", seed=2)
    net.loss_and_grad(rng.standard_normal((8, 4)), rng.integers(0, 3, 8))
    return net


def test_optimizer_settings_cross_by_name():
    net = _net_with_gradients()
    expected = net.parameters.copy()
    opt = SGD(net, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    opt.step()
    expected, net.parameters[...] = net.parameters.copy(), expected
    velocity = np.zeros(net.n_params)
    step = net._core.optimizer_step({"kind": "sgd", "lr": 0.1, "momentum": 0.9,
                                     "nesterov": True, "weight_decay": 0.01}, 0, velocity)
    assert step == 1
    assert net.parameters.tobytes() == expected.tobytes()
    assert velocity.tobytes() == opt._velocity.tobytes()


def test_adam_settings_and_moments_by_name():
    net = _net_with_gradients()
    start = net.parameters.copy()
    opt = Adam(net, lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1, decoupled=True)
    opt.step()
    expected, net.parameters[...] = net.parameters.copy(), start
    m, v = np.zeros(net.n_params), np.zeros(net.n_params)
    net._core.optimizer_step({"kind": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                              "eps": 1e-7, "weight_decay": 0.1, "decoupled": True}, 0, m, v)
    assert net.parameters.tobytes() == expected.tobytes()
    assert m.tobytes() == opt._m.tobytes() and v.tobytes() == opt._v.tobytes()


@pytest.mark.parametrize("settings, message", [
    ({"kind": "sgd", "lr": 0.1, "momentun": 0.9}, "unknown optimizer settings"),
    ({"kind": "rmsprop", "lr": 0.1}, "unknown optimizer kind"),
    ({"kind": "sgd"}, "learning rate 'lr'"),
    ({"kind": "sgd", "lr": float("nan")}, "finite number"),
])
def test_bad_optimizer_settings_are_refused_before_anything_changes(settings, message):
    net = _net_with_gradients()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=message):
        net._core.optimizer_step(settings, 0)
    assert net.parameters.tobytes() == before.tobytes()


def test_missing_moment_buffers_are_refused():
    net = _net_with_gradients()
    with pytest.raises(ValueError, match="momentum buffer"):
        net._core.optimizer_step({"kind": "sgd", "lr": 0.1, "momentum": 0.5}, 0)
    with pytest.raises(ValueError, match="exp_avg_sq"):
        net._core.optimizer_step({"kind": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.9,
                                  "eps": 1e-8}, 0, np.zeros(net.n_params))


def test_epoch_progress_after_a_whole_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 3, 50)
    net = pybackprop.MLP([4, 5, 3], output="softmax", seed=0)
    core = net._core
    X, y, w = core.check_batch(X, y)
    progress = net._core.EpochProgress()
    assert (progress.step, progress.rows, progress.loss_sum, progress.weight_sum) == (0, 0, 0, 0)
    assert core.train_epoch(X, y, w, None, 16, {"kind": "fused_sgd", "lr": 0.1}, 7,
                            None, None, progress)
    assert progress.rows == 50 and progress.weight_sum == 50.0
    assert progress.step == 7  # the fused SGD counts no optimizer steps
    assert progress.loss_sum > 0
    m, v = np.zeros(net.n_params), np.zeros(net.n_params)
    assert core.train_epoch(X, y, w, None, 16, {"kind": "adam", "lr": 0.01, "beta1": 0.9,
                                                "beta2": 0.999, "eps": 1e-8}, 0, m, v, progress)
    assert progress.step == 4 and progress.rows == 50  # 16 + 16 + 16 + 2 rows


def test_epoch_progress_is_kept_when_the_epoch_is_interrupted():
    rng = np.random.default_rng(0)
    n = 200000
    net = pybackprop.MLP([64, 256, 256, 10], output="softmax", seed=0)
    X, y, w = net._core.check_batch(rng.standard_normal((n, 64)), rng.integers(0, 10, n))
    m, v = np.zeros(net.n_params), np.zeros(net.n_params)
    progress = net._core.EpochProgress()
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net._core.train_epoch(X, y, w, None, 32, {"kind": "adam", "lr": 0.001, "beta1": 0.9,
                                                      "beta2": 0.999, "eps": 1e-8},
                                  0, m, v, progress)
    finally:
        timer.cancel()
    assert 0 < progress.rows < n
    assert progress.rows % 32 == 0
    assert progress.step == progress.rows // 32
    assert progress.weight_sum == progress.rows
    assert np.isfinite(progress.loss_sum) and progress.loss_sum > 0
