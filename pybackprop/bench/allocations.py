"""What a warmed-up training step allocates, measured with tracemalloc.

Used by tests/test_training.py (which asserts on it) and by
benchmarks/training_figures.py (which prints it).
"""

import gc
import tracemalloc

import numpy as np


def step_allocations(batch, steps=1000, seed=0):
    """Run ``steps`` x (train_step + loss_and_grad + Adam.step) on a warmed-up
    [32, 64, 10] float32 network.

    Returns
    -------
    retained : int
        Bytes still allocated afterwards that were not before (a leak of one
        object per step would retain >= 32 KB over 1000 steps).
    peak_rise : int
        How far the peak of traced memory rose above the starting level.
    """
    from .. import MLP
    from ..optim import Adam

    rng = np.random.default_rng(seed)
    net = MLP([32, 64, 10], activation="relu", output="softmax", dtype="float32", seed=seed)
    X = rng.standard_normal((batch, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    opt = Adam(net, lr=1e-3)

    def run(count):
        for _ in range(count):
            net.train_step(X, y, 0.01)
            net.loss_and_grad(X, y)
            opt.step()

    def traced_bytes():
        # Everything allocated except by tracemalloc itself and this module's
        # own bookkeeping.
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)])
        return sum(stat.size for stat in snapshot.statistics("filename"))

    run(5)
    gc.collect()
    tracemalloc.start()
    try:
        # A few traced steps first: the interpreter keeps freed floats and
        # tuples on free lists, which tracemalloc would otherwise count once.
        run(5)
        traced_bytes()  # fills the regex cache the trace filters use
        before = traced_bytes()
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run(steps)
        _, peak = tracemalloc.get_traced_memory()
        after = traced_bytes()
    finally:
        tracemalloc.stop()
    return after - before, peak - start
