"""``MLP.fit`` with a validation split and early stopping, on the shipped digits.

Run as a script: ``python examples/fit_early_stopping.py``.

Data: UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak,
1998), CC BY 4.0, shipped with pybackprop.  Training stops once the
validation loss has not improved for ``patience`` epochs and the weights of
the best epoch are put back; ``History`` records what happened.
"""
import pybackprop
from pybackprop.datasets import StandardScaler, load_digits, train_test_split


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0,
                                                        stratify=True)
    scaler = StandardScaler().fit(X_train)  # training statistics only
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    net = pybackprop.MLP([64, 128, 10], activation="relu", output="softmax", seed=0)
    optimizer = pybackprop.optim.Adam(net, lr=1e-3)
    history = net.fit(X_train, y_train, epochs=500, batch_size=32, optimizer=optimizer,
                      validation_split=0.2, early_stopping=True, patience=5, seed=0)

    best = history.best_epoch
    print(f"epochs run: {history.epochs_run} of 500 (stopped early: {history.stopped_early})")
    print(f"best epoch: {best + 1}, validation loss {history.val_loss[best]:.4f}, "
          f"validation accuracy {history.val_accuracy[best]:.4f}")
    print(f"last epoch: validation loss {history.val_loss[-1]:.4f} "
          f"(best weights restored: {history.restored_best})")
    print(f"training loss: {history.loss[0]:.4f} after the first epoch, "
          f"{history.loss[best]:.4f} at the best")
    print(f"time {history.time:.2f} s, {history.samples_per_second:,.0f} samples/s")
    print(f"test accuracy: {net.score(X_test, y_test):.4f}")


if __name__ == "__main__":
    main()
