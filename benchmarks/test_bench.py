"""pytest-benchmark tests: one training step per configuration and implementation.

Run ``pytest benchmarks/ --benchmark-only`` (add ``--benchmark-columns=median,iqr,ops``
for a compact table); each configuration is a benchmark group, so the
implementations of one configuration are compared side by side. The table
with ratios, GFLOP/s and fraction of peak is ``python -m pybackprop bench``.

Before timing, each implementation's first-step loss is checked against the
strong NumPy baseline's on the same weights and batch (same math, so the same
loss; scikit-learn's differently-defined losses are exempt, see
pybackprop.bench.sklearn_mlp).
"""
import os
import time

import numpy as np
import pytest

from pybackprop.bench.configs import EPOCH_CONFIGS, STEP_CONFIGS, make_batch, make_epoch_data, step_flops
from pybackprop.bench.numpy_mlp import StrongNumpyMLP, init_params
from pybackprop.bench.runner import IMPLEMENTATIONS, _calibrate, _library_net, make_step_impls

FULL = os.environ.get("PYBACKPROP_BENCH_FULL", "") not in ("", "0")
SETTLE = 0.15  # seconds: lets the previous library's spinning BLAS threads go idle
ROUND_TIME = 0.005  # seconds per timed round
ROUNDS = 25


def _step_params():
    for cfg in STEP_CONFIGS:
        marks = () if (cfg.quick or FULL) else (
            pytest.mark.skip(reason="'wide' runs only with PYBACKPROP_BENCH_FULL=1"),)
        for impl in IMPLEMENTATIONS:
            yield pytest.param(cfg, impl, id=f"{cfg.name}-{impl}", marks=marks)


def _baseline_first_loss(cfg, X, y):
    weights, biases = init_params(cfg.layer_sizes, cfg.activation, cfg.output, cfg.dtype,
                                  seed=0)
    net = StrongNumpyMLP(cfg.layer_sizes, cfg.activation, cfg.output, cfg.loss, cfg.dtype,
                         weights, biases)
    return net.train_step(X, y, cfg.lr)


@pytest.mark.parametrize("cfg, impl_name", list(_step_params()))
def test_train_step(benchmark, cfg, impl_name):
    X, y = make_batch(cfg)
    ready, skipped = make_step_impls(cfg, X, y, [impl_name])
    if impl_name in skipped:
        pytest.skip(skipped[impl_name])
    impl = ready[0]
    benchmark.group = f"step {cfg.name}: {cfg.description}"
    benchmark.extra_info.update(implementation=impl.name, note=impl.note,
                                flops_per_step=step_flops(cfg.layer_sizes, cfg.batch))

    first = impl.step(impl.batch, cfg.lr)
    assert np.isfinite(first)
    if "log-loss" not in impl.note and "n_out" not in impl.note:
        tol = 1e-4 if cfg.dtype == "float32" else 1e-10
        assert first == pytest.approx(_baseline_first_loss(cfg, X, y), rel=tol)

    time.sleep(SETTLE)
    k = _calibrate(impl.step, impl.batch, cfg.lr, ROUND_TIME)
    rounds = 5 if cfg.name == "wide" else ROUNDS
    benchmark.pedantic(impl.step, args=(impl.batch, cfg.lr), iterations=k, rounds=rounds,
                       warmup_rounds=2)


EPOCH_IMPLS = ("pybackprop.fit", "pybackprop", "numpy", "numpy_naive", "torch")


@pytest.mark.parametrize("impl_name", EPOCH_IMPLS)
@pytest.mark.parametrize("cfg", EPOCH_CONFIGS, ids=[c.name for c in EPOCH_CONFIGS])
def test_epoch_per_sample(benchmark, cfg, impl_name):
    """One epoch of per-sample SGD (batch size 1); time is per epoch."""
    from pybackprop.bench.numpy_mlp import NaiveNumpyMLP
    from pybackprop.bench.runner import _fit_epoch_call, _library_available

    X, y = make_epoch_data(cfg, quick=not FULL)
    n = len(X)
    weights, biases = init_params(cfg.layer_sizes, cfg.activation, cfg.output, cfg.dtype,
                                  seed=0)
    args = (cfg.layer_sizes, cfg.activation, cfg.output, cfg.loss, cfg.dtype)
    rows = [(X[i:i + 1], y[i:i + 1]) for i in range(n)]
    if impl_name.startswith("pybackprop"):
        MLP = _library_available()
        if MLP is None:
            pytest.skip("compiled pybackprop.MLP not available")
        if impl_name == "pybackprop.fit" and not hasattr(MLP, "fit"):
            pytest.skip("fit not available")
        net = _library_net(cfg, weights, biases)
    if impl_name == "pybackprop.fit":
        epoch = _fit_epoch_call(net, X, y, cfg.lr)
    elif impl_name == "torch":
        pytest.importorskip("torch", reason="PyTorch not installed (optional)")
        from pybackprop.bench.torch_mlp import TorchMLP
        tnet = TorchMLP(*args, weights, biases)
        batches = [tnet.prepare(xi, yi) for xi, yi in rows]

        def epoch():
            for xb, yb in batches:
                tnet.train_step(xb, yb, cfg.lr)
    else:
        if impl_name == "numpy":
            net = StrongNumpyMLP(*args, weights=weights, biases=biases)
        elif impl_name == "numpy_naive":
            net = NaiveNumpyMLP(*args, weights=weights, biases=biases)

        def epoch():
            for xi, yi in rows:
                net.train_step(xi, yi, cfg.lr)

    benchmark.group = f"epoch {cfg.name}: {cfg.description} ({n} samples per epoch)"
    benchmark.extra_info.update(implementation=impl_name, samples_per_epoch=n)
    epoch()  # warm-up and crash check
    time.sleep(SETTLE)
    benchmark.pedantic(epoch, rounds=3, iterations=1, warmup_rounds=0)
    if impl_name != "pybackprop.fit":
        assert np.isfinite(net.train_step(X[:1], y[:1], 0.0) if impl_name != "torch"
                           else tnet.train_step(*batches[0], 0.0))
