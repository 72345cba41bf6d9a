"""The scikit-learn column: MLPRegressor / MLPClassifier with plain SGD.

Optional: importing this module needs scikit-learn, never a runtime
dependency of pybackprop. Estimators use ``solver="sgd"``, ``momentum=0``,
``nesterovs_momentum=False``, ``alpha=0``, a constant learning rate and the
benchmark's weights.

Time per minibatch is measured on scikit-learn's own internal step, the two
calls its ``fit`` makes per minibatch: ``_backprop`` (forward, loss,
backward) and ``_optimizer.update_params`` (the SGD update). That excludes
``partial_fit``'s per-call input validation, label binarization and epoch
bookkeeping. If a future scikit-learn renames these private methods, the
wrapper falls back to timing ``partial_fit`` on the batch (``mode`` says
which).

Loss conventions (they change no timing):

- identity + squared error -> ``MLPRegressor``: scikit-learn's loss is
  ``0.5 * mean over samples and outputs``; equal to pybackprop's for one
  output (all step configurations with this loss have one output). Its
  gradient equals pybackprop's for any number of outputs.
- softmax + cross-entropy -> ``MLPClassifier`` (multi-class log-loss):
  identical, with the targets as class labels.
- sigmoid output -> ``MLPClassifier`` with one logistic output and
  binary log-loss: targets are rounded to 0/1 labels, and a squared-error
  configuration is timed with log-loss instead (same network, same
  operations count up to the output delta).
"""
import inspect

import numpy as np
import sklearn
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .numpy_mlp import check_architecture

__all__ = ["SklearnMLP", "sklearn_info"]

# scikit-learn's name for each of the library's hidden activations (the keys
# are checked against pybackprop._validation by tests/test_bench_baselines.py).
_ACTIVATION = {"identity": "identity", "sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}


def sklearn_info():
    return f"scikit-learn {sklearn.__version__}"


class SklearnMLP:
    """A scikit-learn MLP holding the given weights, stepped like ``train_step``.

    Parameters
    ----------
    layer_sizes, activation, output, loss, dtype
        As in ``pybackprop.MLP`` (one hidden activation for all layers).
    weights, biases : lists of ndarray
        ``W`` (n_out, n_in), ``b`` (n_out,); stored transposed in ``coefs_``.
    X, y : ndarray
        A batch used once to initialize the estimator (``partial_fit``).
    lr : float, default 0.01

    Attributes
    ----------
    mode : str
        "internal step" or "partial_fit".
    same_loss : bool
        Whether scikit-learn's loss value equals pybackprop's here.
    note : str
        The loss difference, if any.
    """

    def __init__(self, layer_sizes, activation, output, loss, dtype, weights, biases, X, y,
                 lr=0.01):
        sizes, hidden, output, loss, self.dtype = check_architecture(
            layer_sizes, activation, output, loss, dtype)
        if len(sizes) < 3:
            raise ValueError("scikit-learn's MLP needs at least one hidden layer")
        if len(set(hidden)) != 1:
            raise ValueError("scikit-learn uses one activation for all hidden layers")
        self.output, self.loss_name, self.n_out = output, loss, sizes[-1]
        params = dict(hidden_layer_sizes=sizes[1:-1], activation=_ACTIVATION[hidden[0]],
                      solver="sgd", alpha=0.0, momentum=0.0, nesterovs_momentum=False,
                      learning_rate="constant", learning_rate_init=lr,
                      batch_size=len(X), shuffle=False, random_state=0, max_iter=1)
        self.note = ""
        if output == "identity":
            self.estimator = MLPRegressor(**params)
            self.same_loss = sizes[-1] == 1
            if not self.same_loss:
                self.note = "sklearn loss = ours / n_out (gradient equal)"
        elif output == "softmax":
            if sizes[-1] < 3:
                raise ValueError("scikit-learn uses a logistic output for 2 classes")
            self.estimator = MLPClassifier(**params)
            self.same_loss = True
        else:  # sigmoid
            if sizes[-1] != 1:
                raise ValueError("only a single sigmoid output maps to MLPClassifier")
            self.estimator = MLPClassifier(**params)
            self.same_loss = False
            self.note = ("sklearn: logistic output with binary log-loss on 0/1 labels"
                         + (" (not squared error)" if loss == "squared_error" else ""))
        est = self.estimator
        X0, y0 = self._native(X, y)
        if isinstance(est, MLPClassifier):
            est.partial_fit(X0, y0, classes=np.arange(max(2, sizes[-1])))
        else:
            est.partial_fit(X0, y0)
        for coef, intercept, W, b in zip(est.coefs_, est.intercepts_, weights, biases):
            coef[...] = np.asarray(W).T
            intercept[...] = b
        self._params = est.coefs_ + est.intercepts_  # the optimizer's arrays, in place
        self._lr = lr
        self.mode = "partial_fit"
        backprop = getattr(est, "_backprop", None)
        optimizer = getattr(est, "_optimizer", None)
        if backprop is not None and hasattr(optimizer, "update_params"):
            names = list(inspect.signature(backprop).parameters)
            if names[:2] == ["X", "y"] and len(names) in (6, 7):
                self._with_sample_weight = len(names) == 7
                self.mode = "internal step"
                layer_units = sizes
                self._activations = [None] * len(layer_units)
                self._deltas = [None] * (len(layer_units) - 1)
                self._coef_grads = [np.empty((a, b), dtype=self.dtype)
                                    for a, b in zip(layer_units[:-1], layer_units[1:])]
                self._intercept_grads = [np.empty(b, dtype=self.dtype)
                                         for b in layer_units[1:]]

    def _native(self, X, y):
        """X and y as partial_fit takes them."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        y = np.asarray(y)
        if self.output == "sigmoid":
            y = (y.reshape(len(X)) > 0.5).astype(np.int64)
        elif self.output == "identity":
            y = y.astype(self.dtype).reshape(len(X), -1)
            if y.shape[1] == 1:
                y = y.ravel()
        elif y.ndim == 2:  # one-hot rows -> labels
            y = y.argmax(axis=1)
        return X, y

    def prepare(self, X, y):
        """``(X, Y)`` ready for :meth:`train_step` (Y binarized as sklearn does)."""
        X, y = self._native(X, y)
        if self.mode == "partial_fit":
            return X, y
        est = self.estimator
        if isinstance(est, MLPClassifier):
            Y = est._label_binarizer.transform(y).astype(bool)
        else:
            Y = y.reshape(len(X), -1)
        return X, Y

    def _backprop(self, X, Y):
        self._activations[0] = X
        args = (X, Y, None) if self._with_sample_weight else (X, Y)
        return self.estimator._backprop(*args, self._activations, self._deltas,
                                        self._coef_grads, self._intercept_grads)

    def train_step(self, X, Y, lr):
        """One minibatch SGD step on a prepared batch; returns scikit-learn's loss."""
        est = self.estimator
        if lr != self._lr:
            est._optimizer.learning_rate = lr
            est.learning_rate_init = lr
            self._lr = lr
        if self.mode == "partial_fit":
            est.partial_fit(X, Y)
            return est.loss_
        loss, coef_grads, intercept_grads = self._backprop(X, Y)
        est._optimizer.update_params(self._params, coef_grads + intercept_grads)
        return loss

    def loss_and_grad(self, X, y):
        """scikit-learn's loss and gradients, as (n_out, n_in) NumPy arrays."""
        if self.mode != "internal step":
            raise RuntimeError("gradients need scikit-learn's internal _backprop")
        loss, coef_grads, intercept_grads = self._backprop(*self.prepare(X, y))
        return (loss, [g.T.copy() for g in coef_grads], [g.copy() for g in intercept_grads])

    def numpy_weights(self):
        return [c.T.copy() for c in self.estimator.coefs_]
