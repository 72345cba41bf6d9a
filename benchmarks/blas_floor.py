"""The BLAS floor of the mid-sized benchmark steps: their large matrix
products timed alone, through the BLAS the compiled core calls
(``scipy.linalg.blas.sgemm``), in the core's orientations, on two threads.

A step cannot take less than its products; what pybackprop adds on top is
the step's median minus this floor.  Run from outside the checkout:

    cd /tmp && python /path/to/benchmarks/blas_floor.py
"""
import time

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

# (m, k, n, trans_a, trans_b) of the column-major call the core makes for
# each product; see csrc/_blas.pxd (row-major C is column-major C^T).
STEPS = {
    # forward Z = X W^T (64x784 . 784x128) and dW_1 = dZ^T X (128x64 . 64x784)
    "mnist float32, the two large products": [(128, 784, 64, 0, 1), (128, 64, 784, 1, 0)],
    # two forward products, dA_1 = dZ_2 W_2, and two dW products
    "sigmoid_mid float32, the five large products": [(256, 256, 128, 0, 1)] * 2
    + [(256, 256, 128, 0, 0)] + [(256, 128, 256, 1, 0)] * 2,
}


def median_time(function, blocks=9, block_seconds=0.05):
    """Median seconds per call over blocks of about block_seconds each."""
    for _ in range(20):
        function()
    times = []
    for _ in range(blocks):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < block_seconds:
            function()
            calls += 1
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def product_time(m, k, n, trans_a, trans_b, rng):
    a = np.asfortranarray(rng.standard_normal((k, m) if trans_a else (m, k)), dtype=np.float32)
    b = np.asfortranarray(rng.standard_normal((n, k) if trans_b else (k, n)), dtype=np.float32)
    c = np.zeros((m, n), dtype=np.float32, order="F")
    return median_time(lambda: blas.sgemm(1.0, a, b, beta=1.0, c=c, trans_a=trans_a,
                                          trans_b=trans_b, overwrite_c=1))


def main():
    rng = np.random.default_rng(0)
    with threadpool_limits(2):
        for name, products in STEPS.items():
            times = [product_time(*shape, rng) * 1e6 for shape in products]
            parts = " + ".join(f"{t:.0f}" for t in times)
            print(f"{name}: {sum(times):.0f} us ({parts})")


if __name__ == "__main__":
    main()
