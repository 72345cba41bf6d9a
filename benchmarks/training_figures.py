"""Print the training figures quoted in the issue notes and the README.

    python benchmarks/training_figures.py

- per-sample SGD throughput through ``MLP.fit`` (batch size 1) for the 2-2-1
  sigmoid network and a 64-32-10 relu/softmax network on the digits;
- what a warmed-up training step allocates (tracemalloc).

Timings are best-of-repeats on whatever else the machine is doing; run it on
a quiet machine.  The thread-scaling figure is printed by
``python tests/test_threads_stress.py``.
"""

import numpy as np

import pybackprop
from pybackprop.bench.allocations import step_allocations
from pybackprop.datasets import load_digits


def per_sample_throughput():
    rng = np.random.default_rng(0)
    net = pybackprop.MLP([2, 2, 1], activation="sigmoid", output="sigmoid",
                         loss="squared_error", seed=0)
    # In order (as a plain C loop over the samples runs), and shuffled: a
    # shuffled epoch gathers rows at random, which costs cache misses once
    # the data set outgrows the L2 cache (200k samples = 4.8 MB here).
    for n in (20_000, 200_000):
        X = rng.uniform(-1, 1, (n, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(float)
        for shuffle in (False, True):
            best = min(1e9 / net.fit(X, y, epochs=1, batch_size=1, lr=0.5,
                                     shuffle=shuffle).samples_per_second
                       for _ in range(max(5, 2_000_000 // n)))
            order = "shuffled" if shuffle else "in order"
            print(f"2-2-1 sigmoid/squared_error, fit at batch 1, {n:,}-sample epochs {order}: "
                  f"{best:.0f} ns per sample ({1e9 / best:,.0f} samples/s)")
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    net = pybackprop.MLP([64, 32, 10], activation="relu", output="softmax", seed=0)
    best = min(1e9 / net.fit(X, y, epochs=5, batch_size=1, lr=0.01).samples_per_second
               for _ in range(5))
    print(f"64-32-10 relu/softmax on the digits, fit at batch 1 (shuffled): "
          f"{best:.0f} ns per sample ({1e9 / best:,.0f} samples/s)")


def print_step_allocations():
    for batch in (1, 256):
        retained, peak_rise = step_allocations(batch, steps=1000)
        print(f"batch {batch}: 1000 x (train_step + loss_and_grad + Adam.step) retained "
              f"{retained} bytes; peak rose {peak_rise} bytes")


if __name__ == "__main__":
    per_sample_throughput()
    print_step_allocations()
