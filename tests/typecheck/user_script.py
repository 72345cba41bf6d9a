"""A user's script: train, check and save a digits classifier with pybackprop.

It calls the public API the way an application would and is type-checked
with ``mypy --strict`` against the installed package (.ci/run, lint stage):
the package ships ``py.typed``, so every call here must see the package's
own annotations, not ``Any``.  The small functions declare what they
return, so an API call whose result is ``Any`` fails the check
("Returning Any from function declared to return ...").
tests/test_typing.py runs it, so every call is a real one as well.
"""

import tempfile
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
from numpy.typing import NDArray

import pybackprop
from pybackprop import MLP, History, TrainingDiverged, gradcheck, reference
from pybackprop.datasets import load_digits, make_moons, standardize, train_test_split
from pybackprop.graph import Value
from pybackprop.optim import SGD, Adam, StepLR

FloatArray = NDArray[np.floating[Any]]


class Summary(NamedTuple):
    """What the script found; tests/test_typing.py checks the values."""

    fit_history: History
    test_accuracy: float
    hand_loop_losses: list[float]
    saved_outputs_equal: bool
    resumed_outputs_equal: bool
    gradient_check_error: float
    reference_loss_difference: float
    graph_gradient: float
    float32_max_difference: float


def digits_split() -> tuple[FloatArray, FloatArray, NDArray[np.int64], NDArray[np.int64]]:
    """The digits, split 3:1 with the classes balanced, standardised on the training part."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0,
                                                        stratify=True)
    X_train_std, X_test_std = standardize(X_train, X_test)
    return X_train_std, X_test_std, y_train, y_test


def classifier(n_in: int, n_classes: int, seed: int) -> MLP:
    return MLP([n_in, 32, n_classes], activation="relu", output="softmax", seed=seed)


def train(net: MLP, X: FloatArray, y: NDArray[np.int64], X_val: FloatArray,
          y_val: NDArray[np.int64]) -> History:
    """``fit`` with Adam and validation data; a diverged run keeps its history."""
    try:
        return net.fit(X, y, epochs=8, batch_size=32, optimizer="adam", lr=0.01, seed=0,
                       validation_data=(X_val, y_val), early_stopping=True, patience=3)
    except TrainingDiverged as exc:
        return exc.history


def final_loss(history: History) -> float:
    return history.loss[-1]


def best_epoch(history: History) -> Optional[int]:
    return history.best_epoch


def epochs_run(history: History) -> int:
    return history.epochs_run


def last_validation_accuracy(history: History) -> float:
    return history.val_accuracy[-1]


def accuracy(net: MLP, X: FloatArray, y: NDArray[np.int64]) -> float:
    return net.score(X, y)


def class_probabilities(net: MLP, X: FloatArray) -> FloatArray:
    return net.predict(X)


def float32_twin(net: MLP) -> MLP:
    """The same architecture and parameters in float32, built from the network's properties."""
    twin = MLP(net.layer_sizes, activation=list(net.activations), output=net.output,
               loss=net.loss_name, dtype="float32")
    twin.load_state_dict(net.state_dict())  # float64 values rounded to float32
    return twin


def train_by_hand(net: MLP, X: FloatArray, y: NDArray[np.int64], epochs: int) -> list[float]:
    """A loop of one's own: gradients from loss_and_grad, updates by SGD with momentum."""
    optimizer = SGD(net, lr=0.05, momentum=0.9, schedule=StepLR(step_size=2, gamma=0.5))
    losses: list[float] = []
    for epoch in range(epochs):
        optimizer.set_epoch(epoch)
        total = 0.0
        for start in range(0, len(X), 64):
            loss, _, _ = net.loss_and_grad(X[start:start + 64], y[start:start + 64])
            total += loss * len(X[start:start + 64])
            optimizer.step()
        losses.append(total / len(X))
    return losses


def one_sgd_step(net: MLP, X: FloatArray, y: NDArray[np.int64], lr: float) -> float:
    return net.train_step(X, y, lr)


def adam_steps(net: MLP, X: FloatArray, y: NDArray[np.int64], steps: int) -> Adam:
    optimizer = Adam(net, lr=1e-3)
    for _ in range(steps):
        net.loss_and_grad(X, y)
        optimizer.step()
    return optimizer


def save_and_restore(net: MLP, optimizer: Adam, directory: Path) -> tuple[MLP, Adam]:
    """Save the network with its optimizer's state; load both back to resume training."""
    path = directory / "digits.npz"
    net.save(path, optimizer=optimizer)
    restored, state = pybackprop.load(path, with_optimizer_state=True)
    resumed = Adam(restored)
    if state is not None:
        resumed.load_state_dict(state)
    return restored, resumed


def load_network(path: Path) -> MLP:
    return pybackprop.load(path)


def gradient_check_error(seed: int) -> float:
    """Finite differences against the network's gradients on a small problem."""
    X, y = make_moons(n=20, noise=0.1, seed=seed)
    net = MLP([2, 6, 2], activation="tanh", output="softmax", seed=seed)
    result = gradcheck.check_gradients(net, X, y)
    if not result.passed:
        raise AssertionError(repr(result))
    return result.max_rel_error


def reference_loss_difference(seed: int) -> float:
    """The plain-Python reference's loss of the same network and batch."""
    X, y = make_moons(n=10, noise=0.1, seed=seed)
    net = MLP([2, 4, 2], activation="sigmoid", output="softmax", seed=seed)
    ref_loss, _, _ = reference.loss_and_grad(
        [W.tolist() for W in net.weights], [b.tolist() for b in net.biases],
        X.tolist(), y.tolist(), activation="sigmoid", output="softmax", loss="cross_entropy")
    return abs(net.loss(X, y) - ref_loss)


def graph_gradient() -> float:
    """d/dw of (sigmoid(w x) - 1)^2 at w = 0.5, x = 2 by the scalar graph."""
    w = Value(0.5, "w")
    x = Value(2.0, "x")
    L = ((w * x).sigmoid() - 1.0) ** 2
    L.backward()
    return w.grad


def main(directory: Path) -> Summary:
    X_train, X_test, y_train, y_test = digits_split()
    net = classifier(X_train.shape[1], 10, seed=0)
    history = train(net, X_train, y_train, X_test, y_test)
    print(f"fit: {epochs_run(history)} epochs, final loss {final_loss(history):.4f}, "
          f"best epoch {best_epoch(history)}, "
          f"validation accuracy {last_validation_accuracy(history):.3f}")

    by_hand = classifier(X_train.shape[1], 10, seed=1)
    losses = train_by_hand(by_hand, X_train, y_train, epochs=3)
    one_sgd_step(by_hand, X_train[:32], y_train[:32], lr=0.01)
    optimizer = adam_steps(by_hand, X_train[:64], y_train[:64], steps=3)

    restored, resumed = save_and_restore(by_hand, optimizer, directory)
    loaded = load_network(directory / "digits.npz")
    saved_outputs_equal = bool(np.array_equal(class_probabilities(loaded, X_test),
                                              class_probabilities(by_hand, X_test)))
    # One more Adam step on each: the outputs stay equal only if the
    # optimizer's state came back too.
    for network, adam in ((by_hand, optimizer), (restored, resumed)):
        network.loss_and_grad(X_train[:64], y_train[:64])
        adam.step()
    resumed_outputs_equal = bool(np.array_equal(class_probabilities(restored, X_test),
                                                class_probabilities(by_hand, X_test)))
    return Summary(history, accuracy(net, X_test, y_test), losses, saved_outputs_equal,
                   resumed_outputs_equal,
                   gradient_check_error(seed=0), reference_loss_difference(seed=0),
                   graph_gradient(),
                   float(np.max(np.abs(class_probabilities(float32_twin(net), X_test)
                                       - class_probabilities(net, X_test)))))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(main(Path(tmp)))
