"""Concurrent use under load: nothing crashes, results stay correct.

Documented semantics: every call holds a per-network lock while it computes
(with the GIL released), so threads sharing one network run their calls one
after the other; separate networks run in parallel.  Snapshots and loads
(``state_dict``, ``save``, ``copy``, ``load_state_dict``, ``net.weights[i] =
W``) take the lock too (tests/test_lock_signals_fork.py checks they see and
leave whole steps).  Not tested, by design: writing into ``net.parameters``
or an array of ``net.weights`` from Python while another thread trains the
same network is a data race (they are live arrays).  The gradient views
returned by ``loss_and_grad`` (without ``copy=True``) are the network's
buffers, which the next call on that network, from any thread, overwrites.
"""

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pybackprop import MLP
from pybackprop.optim import SGD, Adam


@pytest.fixture
def fast_switching():
    """Switch threads every 10 us instead of 5 ms: far more interleavings."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(targets, timeout=120):
    """Run callables in threads; re-raise the first exception any of them raised."""
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]


def problem(seed, n=96, n_in=6, n_out=3, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(dtype)
    labels = rng.integers(0, n_out, n)
    return X, labels


def work_on(net, X, labels, seed, rounds):
    """A deterministic mix of every entry point on one network; returns what it saw."""
    seen = []
    opt = Adam(net, lr=1e-3)
    momentum = SGD(net, lr=1e-3, momentum=0.9)
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        size = int(rng.integers(1, X.shape[0]))
        rows = slice(0, size)
        seen.append(net.train_step(X[rows], labels[rows], 0.01))
        seen.append(net.predict(X).copy())
        loss, dW, db = net.loss_and_grad(X[rows], labels[rows], copy=True)
        seen.append(loss)
        seen.extend(dW)
        opt.step()
        net.loss_and_grad(X, labels)
        momentum.step()
        seen.append(net.loss(X, labels))
        if r % 5 == 0:
            history = net.fit(X, labels, epochs=2, batch_size=int(rng.integers(1, 40)),
                              optimizer=opt if r % 10 == 0 else "sgd", lr=0.01, seed=r)
            seen.extend(history.loss)
        if r % 7 == 0:
            # Buffers of another size (past the 1024-row evaluation chunk).
            seen.append(net.predict(np.tile(X, (12, 1))).copy())
    seen.append(net.parameters.copy())
    return seen


def assert_same_sequence(got, want):
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"item {i}")


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_separate_networks_in_threads_equal_sequential_work(dtype):
    specs = [([6, 16, 3], "relu"), ([6, 8, 8, 3], "tanh"), ([6, 3], "relu"), ([6, 32, 3], "sigmoid")]
    data = [problem(s, dtype=dtype) for s in range(len(specs))]
    rounds = 500

    def make(i):
        sizes, act = specs[i]
        return MLP(sizes, activation=act, output="softmax", dtype=dtype, seed=i)

    with threadpool_limits(1):
        sequential = [work_on(make(i), *data[i], i, rounds) for i in range(len(specs))]
        results = [None] * len(specs)

        def job(i):
            def run():
                results[i] = work_on(make(i), *data[i], i, rounds)
            return run

        run_threads([job(i) for i in range(len(specs))])
    for got, want in zip(results, sequential):
        assert_same_sequence(got, want)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shared_network_with_zero_learning_rate_gives_single_threaded_results(dtype):
    """Threads hammer one network with every entry point at lr = 0: each
    loss and prediction equals the single-threaded one, whatever the
    interleaving (the calls are serialised, the buffers not corrupted)."""
    net = MLP([6, 24, 24, 3], activation="tanh", output="softmax", dtype=dtype, seed=0)
    X, labels = problem(0, n=200, dtype=dtype)
    big = np.tile(X, (8, 1))  # 1600 rows: past the 1024-row evaluation chunk
    sizes = [1, 3, 17, 64, 200]
    want_pred = net.predict(X)
    want_big = net.predict(big)
    want_loss = {s: net.loss(X[:s], labels[:s]) for s in sizes}
    want_grads = {s: net.loss_and_grad(X[:s], labels[:s], copy=True) for s in sizes}
    want_fit = net.copy().fit(X, labels, epochs=2, batch_size=32, lr=0.0, shuffle=False).loss
    start = net.parameters.copy()
    deadline = time.perf_counter() + 1.5
    counts = []

    def hammer(seed):
        def run():
            rng = np.random.default_rng(seed)
            opt = Adam(net, lr=0.0) if seed % 2 else SGD(net, lr=0.0, momentum=0.5)
            n = 0
            while time.perf_counter() < deadline:
                s = sizes[int(rng.integers(len(sizes)))]
                op = int(rng.integers(7))
                if op == 0:
                    assert net.train_step(X[:s], labels[:s], 0.0) == want_loss[s]
                elif op == 1:
                    np.testing.assert_array_equal(net.predict(X), want_pred)
                    if s == 200:
                        np.testing.assert_array_equal(net.predict(big), want_big)
                elif op == 2:
                    assert net.loss(X[:s], labels[:s]) == want_loss[s]
                elif op == 3:
                    loss, dW, db = net.loss_and_grad(X[:s], labels[:s], copy=True)
                    assert loss == want_loss[s]
                    # copy=True copies after the call released the lock, so
                    # another thread may have overwritten the buffers first:
                    # only the shapes are guaranteed.
                    assert [g.shape for g in dW] == [g.shape for g in want_grads[s][1]]
                elif op == 4:
                    net.loss_and_grad(X[:s], labels[:s])
                    opt.step()
                elif op == 5:
                    history = net.fit(X, labels, epochs=2, batch_size=32, lr=0.0, shuffle=False)
                    assert history.loss == want_fit
                else:
                    # Refused calls release the lock and change nothing.
                    with pytest.raises(ValueError):
                        net.train_step(X[:s], labels[:s] + 3, 0.0)
                    with pytest.raises(ValueError):
                        net.loss_and_grad(X[:s, :2], labels[:s])
                n += 1
            counts.append(n)
        return run

    with threadpool_limits(1):
        run_threads([hammer(s) for s in range(4)])
    assert sum(counts) > 40, counts
    np.testing.assert_array_equal(net.parameters, start)
    np.testing.assert_array_equal(net.predict(X), want_pred)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shared_network_training_under_load_stays_finite_and_usable(dtype):
    net = MLP([6, 32, 32, 3], activation="relu", output="softmax", dtype=dtype, seed=0)
    X, labels = problem(1, n=256, dtype=dtype)
    initial_loss = net.loss(X, labels)
    deadline = time.perf_counter() + 1.5

    def trainer(seed):
        def run():
            rng = np.random.default_rng(seed)
            opt = Adam(net, lr=1e-3) if seed % 2 else SGD(net, lr=0.01, momentum=0.9)
            while time.perf_counter() < deadline:
                op = int(rng.integers(5))
                rows = slice(0, int(rng.integers(1, 256)))
                if op == 0:
                    assert np.isfinite(net.train_step(X[rows], labels[rows], 0.05))
                elif op == 1:
                    net.loss_and_grad(X[rows], labels[rows])
                    opt.step()
                elif op == 2:
                    net.fit(X, labels, epochs=1, batch_size=16, optimizer=opt, seed=seed)
                elif op == 3:
                    P = net.predict(X)
                    assert np.all(np.isfinite(P))
                    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
                else:
                    assert np.isfinite(net.loss(X, labels))
        return run

    with threadpool_limits(1):
        run_threads([trainer(s) for s in range(4)])
    assert np.all(np.isfinite(net.parameters))
    # Still a working network: it keeps training, and it learned.
    assert np.isfinite(net.loss(X, labels))
    assert np.isfinite(net.train_step(X, labels, 0.01))
    h = net.fit(X, labels, epochs=3, batch_size=32, lr=0.05, seed=0)
    assert all(np.isfinite(h.loss))
    assert net.loss(X, labels) < initial_loss


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_concurrent_fit_on_a_shared_network_reports_only_its_own_epochs(dtype):
    """fit on a network other threads also fit: with a tiny learning rate
    nothing diverges, so every epoch's reported loss must be finite and
    positive and no TrainingDiverged may be raised (fit must not read another
    thread's epoch counters, nor restore weights over its progress)."""
    net = MLP([6, 32, 32, 3], activation="relu", output="softmax", dtype=dtype, seed=0)
    X, labels = problem(1, n=256, dtype=dtype)
    deadline = time.perf_counter() + 2.0
    problems = []

    def fitter(seed):
        def run():
            opt = Adam(net, lr=1e-4)
            while time.perf_counter() < deadline:
                try:
                    history = net.fit(X, labels, epochs=1, batch_size=16, optimizer=opt, seed=seed)
                except FloatingPointError as exc:
                    problems.append(f"{type(exc).__name__}: {exc}")
                    continue
                if not (np.isfinite(history.loss[0]) and history.loss[0] > 0):
                    problems.append(f"epoch loss {history.loss[0]}")
                net.predict(X)
        return run

    with threadpool_limits(1):
        run_threads([fitter(s) for s in range(4)])
    assert not problems, f"{len(problems)} spurious failures, e.g. {problems[0]}"
    assert np.all(np.isfinite(net.parameters))


# -- every entry point, threads, signals and forks, under a watchdog --------------------------

# Runs in a fresh interpreter: three threads and the main thread call every
# entry point of one network for STRESS_SECONDS while SIGALRM fires every
# 2 ms; its handler uses the same network, or raises (as Ctrl-C would) out
# of whatever the main thread is doing; the main thread also forks children
# that use the network.  A hang makes faulthandler print every thread's
# stack and exit.
STRESS_SECONDS = 4
STRESS_WATCHDOG = 40
STRESS_SCRIPT = """
import faulthandler, json, os, signal, sys, tempfile, threading, time, warnings
import numpy as np
from pybackprop import MLP, load
from pybackprop.optim import SGD, Adam

faulthandler.dump_traceback_later(STRESS_WATCHDOG, exit=True)
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running (3.12+)
net = MLP([8, 48, 48, 3], activation="tanh", output="softmax", seed=0)
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 8))
y = rng.integers(0, 3, 512)
X_long = np.tile(X, (100, 1))  # 51,200 rows: fit releases the lock between groups of batches
y_long = np.tile(y, 100)
reference = net.state_dict()
directory = tempfile.mkdtemp()
deadline = time.monotonic() + STRESS_SECONDS


class Interrupt(Exception):
    pass


handled = {"loss": 0, "predict": 0, "state_dict": 0, "raised": 0}
# Raise only out of an entry point the main thread is calling (inside its try).
in_call = [False]


in_handler = [False]


def handler(signum, frame):
    # Not re-entered: a handler slower than the timer's 2 ms period (the
    # debug build) would otherwise nest inside itself until RecursionError.
    if in_handler[0]:
        return
    in_handler[0] = True
    try:
        use_the_network()
    finally:
        in_handler[0] = False


def use_the_network():
    kind = list(handled)[sum(handled.values()) % len(handled)]
    if kind == "raised" and not in_call[0]:
        kind = "loss"
    handled[kind] += 1
    if kind == "loss":
        assert np.isfinite(net.loss(X[:10], y[:10]))
    elif kind == "predict":
        assert net.predict(X[:5]).shape == (5, 3)
    elif kind == "state_dict":
        assert np.all(np.isfinite(net.state_dict()["W0"]))
    else:
        in_call[0] = False
        raise Interrupt


def entry_points(seed):
    opt = Adam(net, lr=1e-3) if seed % 2 else SGD(net, lr=0.01, momentum=0.9)
    path = os.path.join(directory, f"net{seed}.npz")
    return {
        "predict": lambda: net.predict(X),
        "loss": lambda: net.loss(X, y),
        "loss_and_grad": lambda: net.loss_and_grad(X[:64], y[:64], input_grad=True, copy=True),
        "train_step": lambda: net.train_step(X[:32], y[:32], 0.01),
        "backward": lambda: net.backward(X[:16], np.full((16, 3), 0.1), input_grad=True),
        "optimizer_step": lambda: (net.loss_and_grad(X[:64], y[:64]), opt.step()),
        "fit": lambda: net.fit(X, y, epochs=1, batch_size=16, optimizer=opt, seed=seed),
        "state_dict": lambda: net.state_dict(),
        "load_state_dict": lambda: net.load_state_dict(reference),
        "copy": lambda: net.copy().predict(X[:4]),
        "save_load": lambda: (net.save(path), load(path).predict(X[:4])),
        "set_weights": lambda: net.weights.__setitem__(0, reference["W0"]),
    }


def worker(seed, counts, errors):
    rng = np.random.default_rng(seed)
    calls = entry_points(seed)
    names = sorted(calls)
    while time.monotonic() < deadline:
        name = names[int(rng.integers(len(names)))]
        try:
            calls[name]()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return
        counts[name] = counts.get(name, 0) + 1


def fork_and_check():
    pid = os.fork()
    if pid == 0:
        # One row: every product is below the BLAS threshold, so a BLAS lock
        # another thread held at the fork is never needed here.
        ok = net.predict(X[:1]).shape == (1, 3) and np.isfinite(net.train_step(X[:1], y[:1], 0.0))
        os._exit(0 if ok else 3)
    limit = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > limit:
            os.kill(pid, signal.SIGKILL)
            return "hung"
        time.sleep(0.005)


counts = [{} for _ in range(4)]
errors = []
threads = [threading.Thread(target=worker, args=(seed, counts[seed], errors)) for seed in (1, 2, 3)]
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
for t in threads:
    t.start()
main_calls = entry_points(0)
main_calls["long_fit"] = lambda: net.fit(X_long, y_long, epochs=1, batch_size=256, lr=0.01, seed=0)
names = sorted(main_calls)
children = []
rng = np.random.default_rng(0)


def main_thread_calls():
    interrupted = 0
    while time.monotonic() < deadline:
        name = names[int(rng.integers(len(names)))]
        counts[0][name] = counts[0].get(name, 0) + 1  # calls begun: some are interrupted
        try:
            # (Not out of save: zipfile turns an exception raised inside
            # ZipFile.open(name, "w") into "ValueError: Can't close the ZIP
            # file while there is an open writing handle".)
            in_call[0] = name != "save_load"
            main_calls[name]()
            in_call[0] = False
        except Interrupt:
            interrupted += 1
        if len(children) < 3 and time.monotonic() > deadline - STRESS_SECONDS * (3 - len(children)) / 4:
            children.append(fork_and_check())
    return interrupted


try:
    interrupted = main_thread_calls()
finally:
    # Stopped before anything can end the script: a SIGALRM after the
    # handler is gone would kill the process and hide the real error.
    signal.setitimer(signal.ITIMER_REAL, 0)
for t in threads:
    t.join()
# The network is still whole and usable from one thread.
net.load_state_dict(reference)
after = net.state_dict()
assert all(np.array_equal(after[k], reference[k]) for k in reference if k.startswith(("W", "b")))
assert np.isfinite(net.train_step(X, y, 0.01))
total = {}
for c in counts:
    for name, n in c.items():
        total[name] = total.get(name, 0) + n
print(json.dumps({"errors": errors, "calls": total, "handled": handled,
                  "interrupted": interrupted, "children": children}))
"""


def test_every_entry_point_from_threads_with_signals_and_forks_never_hangs():
    script = (STRESS_SCRIPT.replace("STRESS_SECONDS", str(STRESS_SECONDS))
              .replace("STRESS_WATCHDOG", str(STRESS_WATCHDOG)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                                text=True, timeout=STRESS_WATCHDOG + 15, env=env,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the stress script hung:\n{exc.stderr}")
    assert result.returncode == 0, f"exit code {result.returncode}:\n{result.stderr}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == [], report
    # Every entry point ran, in the threads and in the main thread.
    assert set(report["calls"]) == {
        "predict", "loss", "loss_and_grad", "train_step", "backward", "optimizer_step", "fit",
        "state_dict", "load_state_dict", "copy", "save_load", "set_weights", "long_fit"}, report
    # Handlers ran (each kind at least a few times), some raised out of
    # the main thread's calls, and every forked child used the network.
    assert min(report["handled"].values()) >= 5, report["handled"]
    assert report["interrupted"] >= 5, report
    assert report["children"] == [0, 0, 0], report


# -- throughput scaling (measured and printed, never asserted) ----------------------------

def _train_step_loop(net, X, y, count):
    for _ in range(count):
        net.train_step(X, y, 1e-4)


def _fit_loop(net, X, y, epochs):
    net.fit(X, y, epochs=epochs, batch_size=1, lr=0.01, shuffle=True, seed=0)


def _scaling(make, run, repeats=3):
    """Median over repeats of (2 threads on 2 networks) / (1 thread on 1)
    throughput; also the CPU seconds per wall second of the 2-thread runs
    (near 2 when two cores were really available, near 1 on a busy machine)."""
    ratios, busy = [], []
    for _ in range(repeats):
        nets = [make(i) for i in range(2)]
        t0 = time.perf_counter()
        run(nets[0])
        one = time.perf_counter() - t0
        nets = [make(i) for i in range(2)]
        threads = [threading.Thread(target=run, args=(n,)) for n in nets]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        two = time.perf_counter() - t0
        busy.append((time.process_time() - c0) / two)
        ratios.append(2 * one / two)
    return statistics.median(ratios), ratios, statistics.median(busy)


def measure_scaling(repeats=3, steps=300, epochs=20):
    """(median, all ratios) for the deep relu network and for the 2-2-1 fit."""
    rng = np.random.default_rng(0)
    X32 = rng.standard_normal((32, 32))
    y32 = rng.standard_normal((32, 32))
    deep = _scaling(lambda i: MLP([32] * 17, activation="relu", seed=i),
                    lambda net: _train_step_loop(net, X32, y32, steps), repeats)
    Xx = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 64, dtype=float)
    yx = np.array([0, 1, 1, 0] * 64, dtype=float)
    small = _scaling(lambda i: MLP([2, 2, 1], activation="sigmoid", output="sigmoid",
                                   loss="squared_error", seed=i),
                     lambda net: _fit_loop(net, Xx, yx, epochs), repeats)
    return deep, small


def test_two_threads_on_two_networks_report_scaling():
    """Prints the speed-up of two threads training two networks over one
    thread training one (BLAS held to one thread); the machine is shared, so
    this only reports.  It checks that the threaded runs trained correctly."""
    with threadpool_limits(1):
        deep, small = measure_scaling(repeats=3, steps=150, epochs=8)
        # The same training, threaded and not, gives the same weights.
        X = np.random.default_rng(0).standard_normal((32, 32))
        a, b = MLP([32] * 17, activation="relu", seed=5), MLP([32] * 17, activation="relu", seed=5)
        _train_step_loop(a, X, X, 20)
        other = MLP([32] * 17, seed=6)
        run_threads([lambda: _train_step_loop(b, X, X, 20), lambda: _train_step_loop(other, X, X, 20)])
        np.testing.assert_array_equal(a.parameters, b.parameters)
    print(f"\nthroughput of 2 threads / 1 thread: 16x32 relu train_step batch 32: {deep[0]:.2f}x "
          f"(runs {', '.join(f'{r:.2f}' for r in deep[1])}; CPU/wall {deep[2]:.2f}); "
          f"2-2-1 fit batch 1: {small[0]:.2f}x (runs {', '.join(f'{r:.2f}' for r in small[1])}; "
          f"CPU/wall {small[2]:.2f}); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    # Longer measurement: python tests/test_threads_stress.py
    with threadpool_limits(1):
        deep, small = measure_scaling(repeats=5, steps=3000, epochs=100)
    print(f"load average {os.getloadavg()}")
    print("16x32 relu train_step, batch 32: median %.2fx, runs %s, CPU/wall %.2f" % (
        deep[0], [round(r, 2) for r in deep[1]], deep[2]))
    print("2-2-1 fit, batch 1: median %.2fx, runs %s, CPU/wall %.2f" % (
        small[0], [round(r, 2) for r in small[1]], small[2]))
