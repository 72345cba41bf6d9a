"""No leak: memory stops growing under long use, and dropped networks are freed.

Two views of memory: tracemalloc (every Python object and every NumPy data
buffer, which NumPy reports to tracemalloc) and the resident-set size (which
also sees C allocations: the core's layout arrays, its lock, BLAS buffers).
"""

import gc
import os
import tracemalloc
import weakref

import numpy as np
import pytest

import pybackprop
from pybackprop import MLP
from pybackprop.optim import SGD, Adam


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def traced_bytes():
    """Bytes traced now, except tracemalloc's own and this file's bookkeeping."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


class Workload:
    """Every entry point once per iteration; fit and save/load every few."""

    def __init__(self, tmp_path, dtype="float64"):
        rng = np.random.default_rng(0)
        self.net = MLP([16, 64, 64, 10], activation="tanh", output="softmax", dtype=dtype, seed=0)
        self.X = rng.standard_normal((128, 16)).astype(dtype)
        self.y = rng.integers(0, 10, 128)
        self.Y = np.eye(10)[self.y].astype(dtype)
        self.sw = rng.uniform(0.5, 1.5, 128).astype(dtype)
        self.X_list = self.X[:3].tolist()
        self.opt = Adam(self.net, lr=1e-4)
        self.momentum = SGD(self.net, lr=1e-4, momentum=0.9)
        self.path = str(tmp_path / "net.npz")

    def __call__(self, i):
        net = self.net
        net.train_step(self.X, self.y, 1e-4)
        net.train_step(self.X[:7], self.Y[:7], 1e-4, sample_weight=self.sw[:7])
        net.predict(self.X)
        net.predict(self.X_list)  # the slow (converting) path
        net.loss(self.X, self.y, self.sw)
        net.loss_and_grad(self.X, self.y, input_grad=True)
        self.opt.step()
        net.loss_and_grad(self.X[:5], self.Y[:5], copy=True)
        self.momentum.step()
        net.backward(self.X[:4], np.ones((4, 10)))
        try:
            net.loss(self.X, np.full(128, 99))  # a refused call must not leak either
        except ValueError:
            pass
        if i % 10 == 0:
            net.fit(self.X, self.y, epochs=2, batch_size=32, lr=1e-4, seed=i)
            net.fit(self.X, self.y, epochs=1, batch_size=16, optimizer=self.opt,
                    validation_split=0.25, seed=i)
        if i % 25 == 0:
            net.save(self.path, optimizer=self.opt)
            loaded, state = pybackprop.load(self.path, with_optimizer_state=True)
            loaded.predict(self.X[:2])
            net.load_state_dict(loaded.state_dict())
            net.copy().train_step(self.X[:2], self.y[:2], 1e-4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_long_use_retains_no_python_memory(tmp_path, dtype):
    work = Workload(tmp_path, dtype)
    for i in range(40):
        work(i)
    gc.collect()
    tracemalloc.start()
    try:
        # Traced warm-up first: free lists and caches fill once.
        for i in range(40, 80):
            work(i)
        gc.collect()
        traced_bytes()  # fills the filter's regex cache
        before = traced_bytes()
        for i in range(80, 380):
            work(i)
        gc.collect()
        after = traced_bytes()
    finally:
        tracemalloc.stop()
    # 300 iterations (4,500 calls, 60 fits, 12 save/load cycles): one leaked
    # object per iteration would retain >= 9.6 KB.
    assert after - before < 8 * 1024, f"{after - before} bytes retained over 300 iterations"


def test_resident_memory_stops_growing(tmp_path):
    work = Workload(tmp_path)
    big = MLP([64, 128, 64], activation="relu", seed=0)
    X_big = np.random.default_rng(1).standard_normal((1024, 64))
    y_big = np.zeros((1024, 64))

    def iteration(i):
        work(i)
        # Large buffers: a leak of one output (512 KB) per call shows at once.
        big.predict(X_big)
        big.loss_and_grad(X_big[: 64 + i % 64], y_big[: 64 + i % 64])

    for i in range(150):
        iteration(i)
    gc.collect()
    start = rss_bytes()
    for i in range(150, 850):
        iteration(i)
    gc.collect()
    growth = rss_bytes() - start
    assert growth < 2 * 1024 * 1024, f"resident memory grew by {growth / 2**20:.2f} MB over 700 iterations"


def _big_network_and_refs(dtype):
    net = MLP([128, 1024, 256], activation="relu", dtype=dtype, seed=0)
    X = np.random.default_rng(0).standard_normal((512, 128))
    net.loss_and_grad(X, np.zeros((512, 256)), input_grad=True)  # grows every buffer
    net.fit(X, np.zeros((512, 256)), epochs=1, batch_size=256, lr=1e-6)
    refs = {"net": weakref.ref(net), "parameters": weakref.ref(net.parameters),
            "grads": weakref.ref(net._core.grads), "first weight": weakref.ref(net.weights[0])}
    return net, refs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dropped_network_frees_its_buffers(dtype):
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        net, refs = _big_network_and_refs(dtype)
        held, _ = tracemalloc.get_traced_memory()
        del net
        gc.collect()
        freed, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dead = {name: ref() is None for name, ref in refs.items()}
    assert all(dead.values()), f"still alive after del: {[k for k, v in dead.items() if not v]}"
    # Parameters, gradients, activations and deltas for 512 rows: megabytes.
    assert held - baseline > 2 * 2**20
    assert freed - baseline < 64 * 1024, f"{(freed - baseline) / 2**20:.2f} MB still allocated after del"


def test_dropped_network_core_is_freed():
    """The compiled core itself dies with its MLP (weakref to net._core)."""
    net, _ = _big_network_and_refs("float64")
    core_ref = weakref.ref(net._core)
    del net
    gc.collect()
    assert core_ref() is None


@pytest.mark.parametrize("make", [
    lambda net: Adam(net, lr=1e-3),
    lambda net: SGD(net, lr=1e-3, momentum=0.9),
])
def test_network_and_optimizer_die_together(make):
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        net, refs = _big_network_and_refs("float64")
        opt = make(net)
        net.loss_and_grad(np.ones((3, 128)), np.zeros((3, 256)))
        opt.step()
        net.fit(np.ones((8, 128)), np.zeros((8, 256)), epochs=1, optimizer=opt)
        refs["optimizer"] = weakref.ref(opt)
        refs["optimizer state"] = weakref.ref(opt._state()[0])
        del net, opt
        gc.collect()
        freed, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    alive = [name for name, ref in refs.items() if ref() is not None]
    assert not alive, f"still alive after del: {alive}"
    assert freed - baseline < 64 * 1024


def test_copies_and_loaded_networks_are_independent_and_freed(tmp_path):
    net, refs = _big_network_and_refs("float32")
    clone = net.copy()
    net.save(tmp_path / "big.npz")
    loaded = pybackprop.load(tmp_path / "big.npz")
    clone_ref, loaded_ref = weakref.ref(clone.parameters), weakref.ref(loaded.parameters)
    # Independent: training the original changes neither.
    before = clone.parameters.copy()
    net.train_step(np.ones((2, 128)), np.zeros((2, 256)), 0.1)
    np.testing.assert_array_equal(clone.parameters, before)
    np.testing.assert_array_equal(loaded.parameters, before)
    del net
    gc.collect()
    assert refs["parameters"]() is None
    assert clone_ref() is not None and loaded_ref() is not None
    del clone, loaded
    gc.collect()
    assert clone_ref() is None and loaded_ref() is None


def test_many_networks_created_and_dropped_do_not_accumulate():
    """Construction and destruction (the core's malloc'ed layout, its lock)
    balance: RSS does not grow over 20,000 networks."""
    def churn(count):
        for i in range(count):
            net = MLP([3, 5, 4, 2], activation=["tanh", "relu"], output="softmax", seed=i)
            net.loss_and_grad(np.ones((2, 3)), np.array([0, 1]))
            net.copy()
    churn(2000)
    gc.collect()
    start = rss_bytes()
    churn(20000)
    gc.collect()
    growth = rss_bytes() - start
    assert growth < 2 * 1024 * 1024, f"RSS grew by {growth / 2**20:.2f} MB over 20,000 networks"
