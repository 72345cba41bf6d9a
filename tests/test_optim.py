"""Optimizers against direct NumPy transcriptions of their update rules."""

import numpy as np
import pytest

from pybackprop import MLP
from pybackprop.optim import SGD, Adam, AdamW, CosineLR, ExponentialLR, StepLR, make_optimizer


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    net = MLP([4, 6, 3], activation="tanh", output="softmax", dtype=dtype, seed=seed)
    X = rng.standard_normal((20, 4))
    y = rng.integers(0, 3, 20)
    return net, X, y


def weight_mask(net):
    """True for weights, False for biases, in the flat parameter layout."""
    mask = np.zeros(net.n_params, dtype=bool)
    offset = 0
    for W, b in zip(net.weights, net.biases):
        mask[offset:offset + W.size] = True
        offset += W.size + b.size
    return mask


def flat_grads(net):
    return np.concatenate([np.concatenate([gw.ravel(), gb]) for gw, gb in
                           zip(net._grad_weight_views, net._grad_bias_views)])


def sgd_reference(p, g, v, t, lr, momentum, dampening, nesterov, wd, mask):
    """torch.optim.SGD's rule, decay on weights only."""
    g = g + wd * p * mask
    if momentum:
        v = g.copy() if t == 1 else momentum * v + (1 - dampening) * g
        g = g + momentum * v if nesterov else v
    return p - lr * g, v


def adam_reference(p, g, m, v, t, lr, b1, b2, eps, wd, decoupled, mask):
    """torch.optim.Adam / AdamW's rule, decay on weights only."""
    if decoupled:
        p = p * np.where(mask, 1 - lr * wd, 1.0)
    else:
        g = g + wd * p * mask
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    step_size = lr / (1 - b1 ** t)
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
    return p - step_size * m / denom, m, v


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 0.0), (0.9, 0.1, False, 0.01),
    (0.8, 0.0, True, 0.0), (0.8, 0.0, True, 0.05), (0.0, 0.0, False, 0.1)])
def test_sgd_matches_its_update_rule(dtype, momentum, dampening, nesterov, wd):
    net, X, y = problem(dtype)
    opt = SGD(net, lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=wd)
    p = net.parameters.astype(np.float64)
    v = np.zeros_like(p)
    mask = weight_mask(net)
    for t in range(1, 6):
        net.parameters[...] = p  # both sides start every step from the same values
        net.loss_and_grad(X, y)
        g = flat_grads(net).astype(np.float64)
        opt.step()
        p, v = sgd_reference(p, g, v, t, 0.1, momentum, dampening, nesterov, wd, mask)
        rtol = 1e-6 if dtype == "float32" else 1e-14
        np.testing.assert_allclose(net.parameters, p, rtol=rtol, atol=rtol * 1e-2)
        p = net.parameters.astype(np.float64)
    assert opt.step_count == 5


@pytest.mark.parametrize("cls,wd", [(Adam, 0.0), (Adam, 0.05), (AdamW, 0.01), (AdamW, 0.2)])
def test_adam_matches_its_update_rule(dtype, cls, wd):
    net, X, y = problem(dtype, seed=1)
    opt = cls(net, lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=wd)
    p = net.parameters.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    mask = weight_mask(net)
    for t in range(1, 8):
        net.parameters[...] = p
        net.loss_and_grad(X, y)
        g = flat_grads(net).astype(np.float64)
        opt.step()
        p, m, v = adam_reference(p, g, m, v, t, 0.01, 0.8, 0.99, 1e-7, wd, cls is AdamW, mask)
        rtol = 2e-5 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(net.parameters, p, rtol=rtol, atol=rtol * 1e-2)
        p = net.parameters.astype(np.float64)
        m, v = opt._m.astype(np.float64), opt._v.astype(np.float64)


def test_weight_decay_spares_biases():
    net, X, y = problem("float64")
    opt = SGD(net, lr=0.5, weight_decay=0.3)
    net._core.grads[...] = 0
    before_w = [W.copy() for W in net.weights]
    net.biases[0][...] = 1.0
    opt.step()
    np.testing.assert_allclose(net.weights[0], before_w[0] * (1 - 0.5 * 0.3), rtol=1e-15)
    np.testing.assert_array_equal(net.biases[0], 1.0)


def test_zero_grad_and_repr():
    net, X, y = problem("float64")
    opt = Adam(net)
    net.loss_and_grad(X, y)
    assert np.any(flat_grads(net) != 0)
    opt.zero_grad()
    assert np.all(flat_grads(net) == 0)
    assert repr(opt).startswith("Adam(lr=0.001, beta1=0.9")


@pytest.mark.parametrize("cls,kwargs", [(SGD, dict(momentum=0.9, nesterov=True)), (Adam, {}), (AdamW, {})])
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    net, X, y = problem("float64", seed=2)
    opt = cls(net, lr=0.05, **kwargs)
    for _ in range(3):
        net.loss_and_grad(X, y)
        opt.step()
    twin = net.copy()
    twin_opt = cls(twin, lr=0.3, **kwargs)
    twin_opt.load_state_dict(opt.state_dict())
    assert twin_opt.step_count == 3 and twin_opt.lr == 0.05
    for _ in range(3):
        net.loss_and_grad(X, y)
        opt.step()
        twin.loss_and_grad(X, y)
        twin_opt.step()
    np.testing.assert_array_equal(net.parameters, twin.parameters)


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    net, X, y = problem("float64")
    opt = Adam(net, lr=0.01)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="'Adam', not 'SGD'"):
        SGD(net).load_state_dict(state)
    bad = dict(state, exp_avg=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    bad = dict(state, exp_avg_sq=np.full(net.n_params, np.nan))
    with pytest.raises(ValueError, match="finite"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="step"):
        opt.load_state_dict(dict(state, step=-1))
    assert opt.step_count == 0 and opt.lr == 0.01


@pytest.mark.parametrize("make,match", [
    (lambda n: SGD(n, lr=-1), "learning rate"),
    (lambda n: SGD(n, momentum=1.0), "momentum"),
    (lambda n: SGD(n, momentum=0.0, nesterov=True), "Nesterov"),
    (lambda n: SGD(n, weight_decay=float("nan")), "finite"),
    (lambda n: Adam(n, betas=(0.9, 1.0)), "beta2"),
    (lambda n: Adam(n, eps=0), "eps"),
    (lambda n: Adam(n, betas=0.9), "pair"),
    (lambda n: make_optimizer(n, "rmsprop", None), "adam, adamw, sgd"),
    (lambda n: SGD("not a network"), "MLP"),
    (lambda n: SGD(n, schedule=3), "callable"),
])
def test_bad_optimizer_arguments(make, match):
    net, _, _ = problem("float64")
    with pytest.raises((ValueError, TypeError), match=match):
        make(net)


def test_schedules():
    assert [StepLR(2, 0.5)(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert ExponentialLR(0.9)(3) == pytest.approx(0.729)
    cosine = CosineLR(10, min_factor=0.1)
    assert cosine(0) == 1.0
    assert cosine(5) == pytest.approx(0.55)
    assert cosine(10) == pytest.approx(0.1) and cosine(20) == pytest.approx(0.1)
    net, _, _ = problem("float64")
    opt = SGD(net, lr=0.2, schedule=StepLR(1, 0.5))
    assert opt.set_epoch(2) == pytest.approx(0.05)
    opt = SGD(net, lr=0.2, schedule=lambda epoch: -1)
    with pytest.raises(ValueError, match="factor"):
        opt.set_epoch(0)


def test_state_dict_with_momentum_loads_into_an_optimizer_built_without_it():
    net, X, y = problem("float64", seed=3)
    opt = SGD(net, lr=0.05, momentum=0.9)
    for _ in range(2):
        net.loss_and_grad(X, y)
        opt.step()
    fresh = SGD(net.copy())
    fresh.load_state_dict(opt.state_dict())
    assert fresh.momentum == 0.9
    np.testing.assert_array_equal(fresh._velocity, opt._velocity)
    with pytest.raises(ValueError, match="missing 'momentum_buffer'"):
        SGD(net).load_state_dict({k: v for k, v in opt.state_dict().items()
                                  if k != "momentum_buffer"})


def test_state_dict_names_the_state_vectors_as_pytorch_does():
    net, X, y = problem("float64")
    sgd = SGD(net, lr=0.05, momentum=0.9)
    adam = Adam(net.copy(), lr=0.01)
    for opt in (sgd, adam):
        opt.net.loss_and_grad(X, y)
        opt.step()
    state = sgd.state_dict()
    assert set(state) == {"kind", "lr", "base_lr", "step", "momentum", "dampening", "nesterov",
                          "weight_decay", "momentum_buffer"}
    np.testing.assert_array_equal(state["momentum_buffer"], sgd._velocity)
    assert "momentum_buffer" not in SGD(net).state_dict()  # no momentum, no buffer
    state = adam.state_dict()
    assert set(state) == {"kind", "lr", "base_lr", "step", "beta1", "beta2", "eps",
                          "weight_decay", "decoupled", "exp_avg", "exp_avg_sq"}
    np.testing.assert_array_equal(state["exp_avg"], adam._m)
    np.testing.assert_array_equal(state["exp_avg_sq"], adam._v)


def test_state_dicts_of_0_1_0_with_state1_state2_still_load():
    net, X, y = problem("float64")
    opt = Adam(net, lr=0.01)
    net.loss_and_grad(X, y)
    opt.step()
    state = opt.state_dict()
    old = {k: v for k, v in state.items() if k not in ("exp_avg", "exp_avg_sq")}
    old.update(state1=state["exp_avg"], state2=state["exp_avg_sq"])
    fresh = Adam(net.copy(), lr=0.5)
    fresh.load_state_dict(old)
    np.testing.assert_array_equal(fresh._m, opt._m)
    np.testing.assert_array_equal(fresh._v, opt._v)
    assert fresh.step_count == 1 and fresh.lr == 0.01
    with pytest.raises(ValueError, match="exp_avg_sq.*shape"):
        fresh.load_state_dict(dict(old, state2=np.zeros(3)))
