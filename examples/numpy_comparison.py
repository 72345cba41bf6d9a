"""One training step of the same network in plain NumPy and in pybackprop.

Run as a script: ``python examples/numpy_comparison.py``.

The NumPy version below is backpropagation written out by hand for a
64-32-10 ReLU network with a softmax output and cross-entropy loss (the
layout of pybackprop: ``W`` is (n_out, n_in), ``Z = A W^T + b``).  Both start
from the same weights; the script checks that their gradients agree and then
times a full step (forward, backward, SGD update) of each, reporting the
median of repeated ``timeit`` runs.
"""
import timeit

import numpy as np

import pybackprop
from pybackprop.datasets import load_digits

LR = 0.1


def numpy_loss_and_grad(weights, biases, X, y):
    """Mean cross-entropy of a ReLU MLP with softmax output, and its gradients."""
    activations = [X]
    for W, b in zip(weights[:-1], biases[:-1]):
        activations.append(np.maximum(activations[-1] @ W.T + b, 0.0))
    Z = activations[-1] @ weights[-1].T + biases[-1]
    Z = Z - Z.max(axis=1, keepdims=True)  # stable softmax
    log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    n = X.shape[0]
    loss = -log_p[np.arange(n), y].mean()
    dZ = np.exp(log_p)
    dZ[np.arange(n), y] -= 1.0
    dZ /= n
    grad_weights, grad_biases = [], []
    for layer in range(len(weights) - 1, -1, -1):
        grad_weights.append(dZ.T @ activations[layer])
        grad_biases.append(dZ.sum(axis=0))
        if layer:
            # relu'(z) from the saved activation: 1 where A > 0
            dZ = (dZ @ weights[layer]) * (activations[layer] > 0)
    return loss, grad_weights[::-1], grad_biases[::-1]


def numpy_step(weights, biases, X, y):
    loss, grad_weights, grad_biases = numpy_loss_and_grad(weights, biases, X, y)
    for W, gW, b, gb in zip(weights, grad_weights, biases, grad_biases):
        W -= LR * gW
        b -= LR * gb
    return loss


def median_time(step, repeat=9, run_seconds=0.02):
    """Median seconds per call over ``repeat`` timeit runs of about ``run_seconds`` each."""
    timer = timeit.Timer(step)
    estimate = timer.timeit(number=20) / 20  # also warms up caches and allocations
    number = max(1, int(run_seconds / max(estimate, 1e-9)))
    return float(np.median(timer.repeat(repeat=repeat, number=number))) / number


def main():
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    X, y = X[:64], y[:64]  # one batch

    net = pybackprop.MLP([64, 32, 10], activation="relu", output="softmax", seed=0)
    weights = [W.copy() for W in net.weights]
    biases = [b.copy() for b in net.biases]

    loss, grad_weights, grad_biases = net.loss_and_grad(X, y, copy=True)
    np_loss, np_grad_weights, np_grad_biases = numpy_loss_and_grad(weights, biases, X, y)
    worst = max(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
                for a, b in zip([*grad_weights, *grad_biases], [*np_grad_weights, *np_grad_biases]))
    print(f"loss: pybackprop {loss:.12f}, NumPy {np_loss:.12f}")
    print(f"gradients agree: largest difference {worst:.1e} relative to each array's largest entry")
    if not (worst < 1e-10 and abs(loss - np_loss) < 1e-12):
        raise SystemExit("the gradients disagree")

    t_numpy = median_time(lambda: numpy_step(weights, biases, X, y))
    t_library = median_time(lambda: net.train_step(X, y, LR))
    print(f"one SGD step on a batch of {len(y)} (median of timeit runs):")
    print(f"  plain NumPy  {t_numpy * 1e6:8.1f} us")
    print(f"  pybackprop   {t_library * 1e6:8.1f} us  ({t_numpy / t_library:.1f}x NumPy's speed)")


if __name__ == "__main__":
    main()
