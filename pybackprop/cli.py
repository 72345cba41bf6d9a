"""The command line: ``python -m pybackprop [command]``."""

import argparse
import sys

import numpy as np

from . import __version__
from .network import MLP


def core_status():
    """Lines describing the compiled core: version, dtypes, BLAS."""
    import scipy

    blas = scipy.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    blas_name = f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()
    return [
        f"pybackprop {__version__} (NumPy {np.__version__}, SciPy {scipy.__version__})",
        "compiled core: pybackprop._core, float32 and float64 kernels",
        f"matrix products: scipy.linalg.cython_blas ({blas_name}); small layers: compiled loops",
    ]


def textbook_example():
    """The 2-2-1 sigmoid network of the textbook walk-through, and its sample."""
    net = MLP([2, 2, 1], activation="sigmoid", output="sigmoid", loss="squared_error")
    net.weights[0][...] = [[0.2, 0.5], [0.3, 0.4]]
    net.biases[0][...] = [0.1, 0.2]
    net.weights[1][...] = [[0.6, 0.7]]
    net.biases[1][...] = [0.1]
    return net, np.array([[0.5, 0.3]]), np.array([0.8])


def run_default(args):
    for line in core_status():
        print(line)
    net, X, y = textbook_example()
    loss, grad_weights, grad_biases = net.loss_and_grad(X, y)
    print(f"\n{net}\nx = {X[0].tolist()}, y = {y[0]}")
    print(f"output = {net.predict(X)[0, 0]:.10f}   loss = {loss:.10f}")
    for i, (gw, gb) in enumerate(zip(grad_weights, grad_biases), start=1):
        print(f"dL/dW{i} = {np.array2string(gw, precision=10)}   dL/db{i} = {np.array2string(gb, precision=10)}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m pybackprop",
        description="Dense MLPs with a compiled, verified backward pass.")
    parser.add_argument("--version", action="version", version=f"pybackprop {__version__}")
    parser.set_defaults(handler=run_default)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
