"""The network's lock with signal handlers, forks and other threads.

No Python code runs while a network's lock is held (``Network._locked`` in
csrc/_core.pyx): a signal handler may use the network it interrupted, a
thread waiting for the lock still runs signal handlers (Ctrl-C), a forked
child gets free locks, and every entry point that reads or writes the
parameters (snapshots, loads, ``net.weights[i] = W``) takes its turn, so it
sees or leaves a state after whole steps of other threads.

A hang is the failure here, so the signal and fork checks run in a fresh
interpreter under a timeout, with faulthandler printing every thread's stack
first: a regression fails with the stacks instead of hanging the suite.
"""

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from test_threads_stress import fast_switching, run_threads  # noqa: F401 - a fixture and a helper
from threadpoolctl import threadpool_limits

from pybackprop import MLP, load

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Seconds before a hung script prints its threads' stacks and exits, and
# before the test gives up on it.
WATCHDOG = 25
TIMEOUT = 40


def run_watched(code):
    """Run code in a fresh interpreter (one BLAS thread); return its stdout.

    Fails the test when the script raises, or hangs: faulthandler dumps
    every thread's stack and exits after WATCHDOG seconds.
    """
    script = (f"import faulthandler\nfaulthandler.dump_traceback_later({WATCHDOG}, exit=True)\n"
              + textwrap.dedent(code))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=TIMEOUT, cwd=PROJECT_ROOT, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script hung past {TIMEOUT} s:\n{exc.stderr}")
    assert result.returncode == 0, f"exit code {result.returncode}:\n{result.stderr}"
    return result.stdout


# A thread that holds a network's lock for minutes: one predict of 200,000
# rows through [64, 2048, 2048, 10] (about 9e11 multiply-adds).  The
# scripts end with os._exit, which does not wait for it.
HOLD_THE_LOCK = """
    import os, signal, sys, threading, time
    import numpy as np
    from pybackprop import MLP

    net = MLP([64, 2048, 2048, 10], dtype="float32", seed=0)
    x = np.linspace(-1, 1, 64, dtype=np.float32)[None]
    want = net.predict(x)
    big = np.ones((200_000, 64), dtype=np.float32)
    holding = threading.Event()
    finished = threading.Event()

    def hold():
        holding.set()
        net.predict(big)
        finished.set()

    threading.Thread(target=hold, daemon=True).start()
    holding.wait()
    time.sleep(0.5)  # the thread is inside predict, holding the lock
"""


def test_a_signal_handler_may_use_the_network_fit_is_training():
    """The issue's example: a SIGALRM handler evaluating the loss of the
    network fit is training.  It used to wait forever for the lock fit held
    while it checked for signals.  Now fit runs the handler between batches
    and trains exactly as it does without it."""
    out = run_watched("""
        import signal
        import numpy as np
        from pybackprop import MLP

        rng = np.random.default_rng(0)
        X = rng.standard_normal((20_000, 64))
        y = rng.integers(0, 10, 20_000)
        quiet = MLP([64, 256, 10], output="softmax", seed=0)
        want = quiet.fit(X, y, epochs=2, seed=0).loss

        net = MLP([64, 256, 10], output="softmax", seed=0)
        seen = []
        signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(net.loss(X[:10], y[:10])))
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        history = net.fit(X, y, epochs=2, seed=0)
        signal.setitimer(signal.ITIMER_REAL, 0)

        assert history.loss == want, (history.loss, want)
        assert np.array_equal(net.parameters, quiet.parameters)
        assert len(seen) >= 3 and np.all(np.isfinite(seen)), seen
        print(len(seen))
    """)
    assert int(out) >= 3


def test_a_thread_waiting_for_the_lock_sees_ctrl_c_at_once():
    """Ctrl-C reaches the main thread while it waits for the lock another
    thread holds for minutes: within a wait slice, not when the lock frees."""
    out = run_watched(HOLD_THE_LOCK + """
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    try:
        net.predict(x)
    except KeyboardInterrupt:
        waited = time.perf_counter() - start
    else:
        raise AssertionError("predict returned: the lock was free")
    assert not finished.is_set()
    assert waited < 2.0, waited
    print(f"{waited:.3f}")
    sys.stdout.flush()
    os._exit(0)
    """)
    assert 0.2 < float(out) < 2.0


def test_a_child_forked_while_another_thread_holds_the_lock_can_use_the_network():
    """The thread holding the lock at the fork does not exist in the child:
    the child's networks get fresh locks, so its first predict returns."""
    run_watched(HOLD_THE_LOCK + """
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(net.predict(x), want) and not finished.is_set()
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + 15
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the forked child hung on its first predict")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0, status
    os._exit(0)
    """)


# -- snapshots and loads take their turn ----------------------------------------------------


def problem(n_in, n_out, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.integers(0, n_out, n)


def states_along(net, X, y, lr, n_steps):
    """[params after k train_steps of a copy of net for k = 0..n_steps]."""
    replay = net.copy()
    states = [replay.parameters.copy()]
    for _ in range(n_steps):
        replay.train_step(X, y, lr)
        states.append(replay.parameters.copy())
    return states


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("how", ["state_dict", "copy", "save"])
def test_a_snapshot_during_training_is_the_state_after_whole_steps(how, tmp_path):
    """One thread takes train_steps while another takes snapshots: each
    snapshot equals the parameters after some whole number of steps (found
    by replaying the steps on a copy), and they come in order."""
    net = MLP([16, 128, 128, 4], output="softmax", seed=0)
    start = net.copy()
    X, y = problem(16, 4)
    lr = 0.05
    # Train until the snapshots are taken, within bounds: saving to disk is
    # slow on a busy machine, and a waiting thread may lose the lock to the
    # trainer many times in a row (the lock is not fair), so the bound is
    # time, not steps.
    wanted, min_steps, max_seconds = 12, 100, 30.0
    training = threading.Event()
    snapshots = []
    steps_taken = []

    def take():
        if how == "state_dict":
            state = net.state_dict()
            return np.concatenate([state[f"{kind}{i}"].ravel() for i in range(3) for kind in "Wb"])
        if how == "copy":
            return net.copy().parameters
        path = tmp_path / f"snapshot{len(snapshots)}.npz"
        net.save(path)
        return load(path).parameters

    def train():
        training.set()
        k = 0
        stop = time.monotonic() + max_seconds
        while k < min_steps or (len(snapshots) < wanted and time.monotonic() < stop):
            net.train_step(X, y, lr)
            k += 1
        steps_taken.append(k)
        training.clear()

    def snap():
        training.wait()
        while training.is_set():
            snapshots.append(take())

    with threadpool_limits(1):
        run_threads([train, snap])
        # The step each parameter vector comes after, by digest (thousands
        # of whole vectors would not fit in memory).
        replay = start.copy()
        by_digest = {hashlib.sha256(replay.parameters.tobytes()).digest(): 0}
        for k in range(1, steps_taken[0] + 1):
            replay.train_step(X, y, lr)
            by_digest[hashlib.sha256(replay.parameters.tobytes()).digest()] = k
    steps = [by_digest.get(hashlib.sha256(s.tobytes()).digest()) for s in snapshots]
    assert len(steps) >= 3, f"{len(steps)} snapshots in {steps_taken[0]} steps"
    torn = sum(k is None for k in steps)
    assert torn == 0, f"{torn} of {len(steps)} snapshots match no whole step"
    assert steps == sorted(steps)


@pytest.mark.usefixtures("fast_switching")
@pytest.mark.parametrize("how", ["load_state_dict", "load_state_dict_partial", "setitem"])
def test_a_load_during_training_lands_between_whole_steps(how):
    """One thread takes train_steps while another loads parameters: the
    result is the loaded state after whole steps (the steps taken after the
    load), never a mix.  A partial load (strict=False with W0 only, or
    net.weights[0] = W) lands between steps k and k + 1 for some k."""
    X, y = problem(8, 3)
    lr, n_steps = 0.05, 20
    start = MLP([8, 64, 64, 3], output="softmax", seed=0)
    source = MLP([8, 64, 64, 3], output="softmax", seed=1)
    W0 = source.weights[0].copy()
    along = states_along(start, X, y, lr, n_steps)
    if how == "load_state_dict":
        # The load may land before step k + 1 for any k: the result is the
        # source after the n_steps - k steps that followed.
        results = states_along(source, X, y, lr, n_steps)
    else:
        results = []
        for k, state in enumerate(along):
            loaded = start.copy()
            loaded.parameters[...] = state
            loaded.weights[0][...] = W0
            results.append(states_along(loaded, X, y, lr, n_steps - k)[-1])
    allowed = {s.tobytes() for s in results}
    rng = np.random.default_rng(0)
    mixed = 0
    with threadpool_limits(1):
        for trial in range(24):
            net = start.copy()
            training = threading.Event()
            delay = rng.uniform(0, 2e-3)

            def train():
                training.set()
                for _ in range(n_steps):
                    net.train_step(X, y, lr)

            def write():
                training.wait()
                time.sleep(delay)
                if how == "load_state_dict":
                    net.load_state_dict(source.state_dict())
                elif how == "load_state_dict_partial":
                    net.load_state_dict({"W0": W0}, strict=False)
                else:
                    net.weights[0] = W0

            run_threads([train, write])
            mixed += net.parameters.tobytes() not in allowed
    assert mixed == 0, f"{mixed} of 24 loads left a mix of two states"


def test_the_core_parameter_copies_check_their_arrays_and_change_nothing_when_refused():
    net = MLP([3, 4, 2], seed=0)
    core, params = net._core, net.parameters
    before = params.copy()
    out = np.empty_like(params)
    assert core.read_params(out) is out
    np.testing.assert_array_equal(out, before)
    for bad in (np.empty(params.size, np.float32), np.empty(params.size - 1), params, out[::-1]):
        with pytest.raises(ValueError, match="out must"):
            core.read_params(bad)
    values = np.arange(params.size, dtype=float)
    refused = [
        ((values.astype(np.float32),), "values must be a contiguous vector"),
        ((values[:-1],), f"values must hold the {params.size} parameters; got {params.size - 1}"),
        ((values[:12], np.ones(12)), "target must be a view of the network's parameters"),
        ((values[:12], net.weights[1]), "target holds 8 values; got 12"),
        ((values[:8], net.weights[0].T), "target must be a C-contiguous view"),
        ((values, None, np.ones(params.size - 1, bool)), f"mask must be a .* of {params.size} bools"),
        ((np.full(params.size, np.nan),), r"values\[0\] = .*nan.* is NaN or infinity; parameters must"),
    ]
    for args, message in refused:
        with pytest.raises(ValueError, match=message):
            core.write_params(*args)
    np.testing.assert_array_equal(params, before)
    # A mask writes only its entries; a target only its view.
    mask = np.zeros(params.size, bool)
    mask[::2] = True
    core.write_params(values, None, mask)
    np.testing.assert_array_equal(params, np.where(mask, values, before))
    core.write_params(values[:8], net.weights[1])
    np.testing.assert_array_equal(net.weights[1].ravel(), values[:8])
    # Values overlapping the parameters are copied first.
    core.write_params(params[::-1].copy())
    core.write_params(params[4:8].copy(), params[0:4])
    core.write_params(params[2:6], params[0:4])


def test_assigning_a_parameter_checks_finiteness_in_the_networks_dtype():
    net = MLP([3, 4, 2], dtype="float32", seed=0)
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="parameter 0 must be finite in float32"):
        net.weights[0] = np.full((4, 3), 1e300)
    np.testing.assert_array_equal(net.parameters, before)
    net.weights[1] = np.arange(8).reshape(2, 4)
    np.testing.assert_array_equal(net.weights[1], np.arange(8, dtype=np.float32).reshape(2, 4))
    net.biases[0] = [1, 2, 3, 4]
    np.testing.assert_array_equal(net.biases[0], [1, 2, 3, 4])


def test_a_partial_load_keeps_the_entries_it_does_not_name():
    net = MLP([3, 4, 2], seed=0)
    before = net.state_dict()
    net.load_state_dict({"b1": [5.0, 6.0]}, strict=False)
    after = net.state_dict()
    np.testing.assert_array_equal(after["b1"], [5.0, 6.0])
    for key in ("W0", "b0", "W1"):
        np.testing.assert_array_equal(after[key], before[key])
