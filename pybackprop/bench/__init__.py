"""Benchmarks of the training step: pybackprop against NumPy, PyTorch and scikit-learn.

- :mod:`pybackprop.bench.numpy_mlp`: the strong NumPy baseline (and a naive one).
- :mod:`pybackprop.bench.torch_mlp`, :mod:`pybackprop.bench.sklearn_mlp`:
  optional columns, used only when PyTorch / scikit-learn are installed.
- :mod:`pybackprop.bench.configs`: the benchmark configurations.
- :mod:`pybackprop.bench.runner`: ``python -m pybackprop bench`` (``main(argv)``,
  ``run(quick=...)``).
"""
