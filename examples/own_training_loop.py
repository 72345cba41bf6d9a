"""Your own training loop: ``loss_and_grad`` for the gradients, an optimizer for the update.

Run as a script: ``python examples/own_training_loop.py``.

``MLP.fit`` runs whole epochs in compiled code; when you need control over
every step (a custom schedule, gradient clipping, logging, curriculum), write
the loop yourself.  ``loss_and_grad`` fills the network's gradient buffers
and an optimizer bound to the network updates its weights in place from them.
Here: two interleaved spirals, a 2-32-32-2 tanh network, Adam and a batch
of 32, with the gradient clipped to a maximum norm.
"""
import numpy as np

import pybackprop
from pybackprop.datasets import make_spirals, train_test_split

EPOCHS = 300
BATCH_SIZE = 32
MAX_GRAD_NORM = 5.0


def main():
    X, y = make_spirals(n=600, noise=0.05, seed=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0,
                                                        stratify=True)
    net = pybackprop.MLP([2, 32, 32, 2], activation="tanh", output="softmax", seed=0)
    optimizer = pybackprop.optim.Adam(net, lr=0.01)
    rng = np.random.default_rng(0)

    for epoch in range(EPOCHS):
        order = rng.permutation(len(y_train))
        total = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            # The gradients are views of the network's buffers: the optimizer
            # reads them there, so scaling them in place clips the update.
            loss, grad_weights, grad_biases = net.loss_and_grad(X_train[rows], y_train[rows])
            norm = np.sqrt(sum(np.sum(g * g) for g in (*grad_weights, *grad_biases)))
            if norm > MAX_GRAD_NORM:
                for g in (*grad_weights, *grad_biases):
                    g *= MAX_GRAD_NORM / norm
            optimizer.step()
            total += loss * len(rows)
        if epoch % 50 == 0 or epoch == EPOCHS - 1:
            print(f"epoch {epoch:3d}  training loss {total / len(order):.4f}")

    print(f"final test accuracy: {net.score(X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
