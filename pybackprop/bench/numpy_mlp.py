"""NumPy implementations of the MLP training step: the baselines to beat.

:class:`StrongNumpyMLP` is the honest best that NumPy can do for the exact
math of :class:`pybackprop.MLP` (the same forward pass, loss, gradients
and SGD update): every buffer is preallocated per batch size, every
product is ``np.dot(..., out=)`` straight into BLAS (transposes are views, so
BLAS gets transpose flags instead of copies), activations are applied in
place, and the SGD update subtracts in place. Choices below were measured on
the project's machines (see the comments); they are what an expert would
write without leaving NumPy.

:class:`NaiveNumpyMLP` is the same math written the way a textbook writes it
(plain expressions, new arrays everywhere), for reference only.

Both take the same constructor arguments as ``pybackprop.MLP`` plus explicit
``weights`` and ``biases`` (``W`` (n_out, n_in), ``b`` (n_out,)), which they
copy; their ``weights``/``biases`` attributes are their own live arrays.
"""
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The names and valid (output, loss) pairs of the library, defined once there.
from .._validation import HIDDEN_ACTIVATIONS, VALID_PAIRS

try:  # SciPy is a runtime dependency of pybackprop; keep a fallback anyway.
    from scipy.special import expit as _expit
except ImportError:  # pragma: no cover
    _expit = None

__all__ = [
    "StrongNumpyMLP",
    "NaiveNumpyMLP",
    "init_params",
    "check_architecture",
    "VALID_PAIRS",
]

# Below these sizes (elements) a single ufunc call wins because per-call
# overhead (~0.5-1 us) dominates; above them the multi-pass formulas that use
# only SIMD-vectorized ufuncs win (measured, float32 128x256: scipy's expit
# 117 us vs the tanh form 20 us; relu mask as float 9.9 us vs np.maximum +
# later mask 22 us).
_SMALL_SIGMOID = 256
_SMALL_RELU = 2048


def check_architecture(layer_sizes, activation, output, loss, dtype):
    """Validate an architecture; return (sizes, hidden, output, loss, dtype)."""
    sizes = tuple(int(s) for s in layer_sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be >= 2 positive ints, got {layer_sizes!r}")
    n_hidden = len(sizes) - 2
    hidden = (activation,) * n_hidden if isinstance(activation, str) else tuple(activation)
    if len(hidden) != n_hidden:
        raise ValueError(f"need {n_hidden} hidden activations, got {len(hidden)}")
    for name in hidden:
        if name not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; valid: "
                             f"{', '.join(HIDDEN_ACTIVATIONS)}")
    if (output, loss) not in VALID_PAIRS:
        raise ValueError(f"invalid (output, loss) {(output, loss)!r}; valid: {VALID_PAIRS}")
    if output == "softmax" and sizes[-1] < 2:
        raise ValueError("softmax needs at least 2 outputs")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return sizes, hidden, output, loss, dtype


def init_params(layer_sizes, activation="relu", output="identity", dtype="float64", seed=0,
                bias_scale=0.0):
    """Initial weights (He uniform before relu, Glorot uniform otherwise) and biases.

    Parameters
    ----------
    layer_sizes : sequence of int
    activation : str or sequence of str
        Hidden activations (decides He versus Glorot per layer).
    output : str
    dtype : str or numpy dtype
    seed : int
    bias_scale : float, default 0.0
        Biases are uniform in [-bias_scale, bias_scale] (0: zeros, as
        ``pybackprop.MLP`` initializes them).

    Returns
    -------
    weights : list of ndarray (n_out, n_in)
    biases : list of ndarray (n_out,)
    """
    sizes = tuple(layer_sizes)
    n_hidden = len(sizes) - 2
    hidden = (activation,) * n_hidden if isinstance(activation, str) else tuple(activation)
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out, act in zip(sizes[:-1], sizes[1:], hidden + (output,)):
        limit = np.sqrt(6.0 / n_in) if act == "relu" else np.sqrt(6.0 / (n_in + n_out))
        weights.append(rng.uniform(-limit, limit, size=(n_out, n_in)).astype(dtype))
        biases.append(rng.uniform(-bias_scale, bias_scale, size=n_out).astype(dtype))
    return weights, biases


class _BaseNumpyMLP:
    """Architecture, parameters and input conversion shared by both baselines."""

    def __init__(self, layer_sizes, activation="relu", output="identity",
                 loss="squared_error", dtype="float64", weights=None, biases=None, seed=0):
        (self.layer_sizes, self.activations, self.output, self.loss_name,
         self.dtype) = check_architecture(layer_sizes, activation, output, loss, dtype)
        if weights is None or biases is None:
            weights, biases = init_params(self.layer_sizes, self.activations, self.output,
                                          self.dtype, seed)
        pairs = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        if len(weights) != len(pairs) or len(biases) != len(pairs):
            raise ValueError(f"need {len(pairs)} weight matrices and bias vectors")
        self.weights = []
        self.biases = []
        for (n_in, n_out), W, b in zip(pairs, weights, biases):
            W = np.array(W, dtype=self.dtype, order="C", copy=True)
            b = np.array(b, dtype=self.dtype, copy=True)
            if W.shape != (n_out, n_in) or b.shape != (n_out,):
                raise ValueError(f"layer ({n_in} -> {n_out}): got W {W.shape}, b {b.shape}")
            self.weights.append(W)
            self.biases.append(b)

    @property
    def n_layers(self):
        return len(self.weights)

    def _as_X(self, X):
        if type(X) is not np.ndarray or X.dtype != self.dtype or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X must have shape (n, {self.layer_sizes[0]}), got {X.shape}")
        return X

    def _as_y(self, y, n):
        """Targets as (n, n_out) rows of the dtype, or int labels (n,) for CE."""
        n_out = self.layer_sizes[-1]
        if type(y) is not np.ndarray:
            y = np.asarray(y)
        if self.loss_name == "cross_entropy" and y.ndim == 1:
            if y.dtype.kind not in "iu":
                raise TypeError("class labels must be integers")
            if y.shape[0] != n or (n and (y.min() < 0 or y.max() >= n_out)):
                raise ValueError(f"labels must have shape ({n},) and lie in [0, {n_out})")
            return y
        if y.dtype != self.dtype or not y.flags.c_contiguous:
            y = np.ascontiguousarray(y, dtype=self.dtype)
        if y.ndim == 1 and n_out == 1:
            y = y.reshape(-1, 1)
        if y.shape != (n, n_out):
            raise ValueError(f"y must have shape ({n}, {n_out}), got {y.shape}")
        return y

    def _sample_coef(self, sample_weight, n):
        """Per-sample factor w_i / sum w as (n, 1), or None for the plain mean."""
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError("sample_weight must be (n,), non-negative, with a positive sum")
        return (w / w.sum()).astype(self.dtype).reshape(n, 1)


# ---------------------------------------------------------------------------
# The strong baseline


class _Buffers:
    """Every array one training step needs for a batch of n samples."""

    def __init__(self, net, n):
        dt = net.dtype
        sizes = net.layer_sizes
        L = net.n_layers
        self.n = n
        # A[i]: output of layer i. Hidden layers compute Z in place into A
        # (derivatives need only A). The output layer keeps Z apart when the
        # loss needs it (binary cross-entropy from logits).
        self.A = [np.empty((n, sizes[i + 1]), dt) for i in range(L)]
        self.Z_out = np.empty((n, sizes[-1]), dt) if net.loss_name == "binary_cross_entropy" \
            else self.A[-1]
        self.dZ = [np.empty((n, sizes[i + 1]), dt) for i in range(L)]
        self.tmp = [np.empty((n, sizes[i + 1]), dt) for i in range(L)]
        # relu mask as 0/1 floats: a float*float multiply is 2.5x faster than
        # float*bool, and the mask made in the forward pass serves backward.
        self.mask = [np.empty((n, sizes[i + 1]), dt) if (i < L - 1 and
                     net.activations[i] == "relu" and n * sizes[i + 1] >= _SMALL_RELU)
                     else None for i in range(L)]
        # column sums as a BLAS gemv with a ones vector: 2-4x faster than
        # np.sum(axis=0) on these shapes.
        self.ones_n = np.ones(n, dt)
        self.dZ_row0 = [d[0] for d in self.dZ]  # batch of one: db is dZ's only row
        k = sizes[-1]
        if net.output == "softmax":
            self.ones_k = np.ones(k, dt)
            self.row_max = np.empty(n, dt)
            self.row_max_col = self.row_max.reshape(n, 1)
            self.row_sum = np.empty(n, dt)
            self.row_sum_col = self.row_sum.reshape(n, 1)
            self.log_sum = np.empty(n, dt)
            self.y_sum = np.empty(n, dt)
            self.y_sum_col = self.y_sum.reshape(n, 1)
            self.z_label = np.empty(n, dt)
            self.row_offset = np.arange(n, dtype=np.intp) * k
            self.flat_index = np.empty(n, np.intp)


class StrongNumpyMLP(_BaseNumpyMLP):
    """``pybackprop.MLP`` in NumPy, as fast as NumPy allows (the benchmark baseline).

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n0, n1, ..., nL]``.
    activation : str or sequence of str, default "relu"
        Hidden activation(s), one name for all hidden layers or one per
        layer; the names of ``pybackprop.MLP``.
    output : str, default "identity"
    loss : str, default "squared_error"
        An (output, loss) pair that ``pybackprop.MLP`` accepts.
    dtype : {"float32", "float64"}, default "float64"
    weights, biases : lists of arrays, optional
        ``W`` (n_out, n_in) and ``b`` (n_out,) per layer, copied. Default:
        :func:`init_params` with ``seed``.
    seed : int, default 0

    Notes
    -----
    ``loss_and_grad`` returns views of internal gradient buffers (overwritten
    by the next call), like ``pybackprop.MLP`` without ``copy=True``.
    ``train_step`` folds the learning rate into the output delta (backprop is
    linear in it), so every ``dW`` comes out already multiplied by ``lr``;
    parameters and gradients each live in one flat vector, so the update is
    a single in-place subtraction for the whole network.
    """

    def __init__(self, layer_sizes, activation="relu", output="identity",
                 loss="squared_error", dtype="float64", weights=None, biases=None, seed=0):
        super().__init__(layer_sizes, activation, output, loss, dtype, weights, biases, seed)
        # All parameters live in one flat vector (and all gradients in
        # another), so the SGD update is one in-place subtraction for the
        # whole network instead of two ufunc calls per layer (a 16-layer
        # network saves ~30 calls, ~25 us, per step).
        self._params, self.weights, self.biases = self._flat_views(self.weights, self.biases)
        self._grads, self.grad_weights, self.grad_biases = self._flat_views(
            [np.zeros_like(W) for W in self.weights], [np.zeros_like(b) for b in self.biases])
        self._WT = [W.T for W in self.weights]  # views, made once
        self._buffers = {}

    def _flat_views(self, weights, biases):
        total = sum(W.size + b.size for W, b in zip(weights, biases))
        flat = np.empty(total, dtype=self.dtype)
        views_w, views_b, offset = [], [], 0
        for W, b in zip(weights, biases):
            view = flat[offset:offset + W.size].reshape(W.shape)
            view[...] = W
            offset += W.size
            views_w.append(view)
            view = flat[offset:offset + b.size]
            view[...] = b
            offset += b.size
            views_b.append(view)
        return flat, views_w, views_b

    def _buffers_for(self, n):
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = _Buffers(self, n)
        return buf

    # -- forward ------------------------------------------------------------

    def _sigmoid_inplace(self, Z, out):
        if Z.size <= _SMALL_SIGMOID and _expit is not None:
            _expit(Z, out=out)
        else:
            # sigmoid(z) = (1 + tanh(z/2)) / 2: no overflow for any z and
            # only vectorized ufuncs (exp-based forms need an errstate
            # guard and are slower).
            np.multiply(Z, 0.5, out=out)
            np.tanh(out, out=out)
            np.multiply(out, 0.5, out=out)
            np.add(out, 0.5, out=out)

    def _forward(self, X, buf):
        A_prev = X
        L = self.n_layers
        for i in range(L):
            W, b = self.weights[i], self.biases[i]
            Z = buf.A[i] if i < L - 1 else buf.Z_out
            if W.shape[1] == 1:
                # inner dimension 1: an outer product, written as a broadcast
                # multiply instead of a BLAS call. Which is faster depends on
                # NumPy and BLAS; compare `python -m timeit -s "import numpy
                # as np; A = np.ones((32, 1)); WT = np.ones((1, 32)); Z =
                # np.empty((32, 32))" "np.multiply(A, WT, out=Z)"` with
                # "np.dot(A, WT, out=Z)".
                np.multiply(A_prev, self._WT[i], out=Z)
            else:
                np.dot(A_prev, self._WT[i], out=Z)
            np.add(Z, b, out=Z)
            if i < L - 1:
                act = self.activations[i]
                if act == "relu":
                    mask = buf.mask[i]
                    if mask is None:
                        np.maximum(Z, 0, out=Z)
                    else:
                        np.greater(Z, 0, out=mask)
                        np.multiply(Z, mask, out=Z)
                elif act == "sigmoid":
                    self._sigmoid_inplace(Z, Z)
                elif act == "tanh":
                    np.tanh(Z, out=Z)
            A_prev = Z
        return A_prev

    # -- loss and output delta -------------------------------------------------

    def _output_delta(self, buf, y, scale, coef):
        """Fill buf.dZ[-1] with scale * d(loss)/dZ_L (coef: per-sample weights
        (n, 1) or None); return the loss."""
        n = buf.n
        Z = buf.Z_out
        A = buf.A[-1]
        D = buf.dZ[-1]
        out, loss_name = self.output, self.loss_name

        if out == "softmax":
            labels = y.ndim == 1
            np.max(Z, axis=1, out=buf.row_max)
            np.subtract(Z, buf.row_max_col, out=Z)  # Z now holds z - max
            if labels:
                np.add(buf.row_offset, y, out=buf.flat_index)
                np.take(Z.reshape(-1), buf.flat_index, out=buf.z_label)
            else:
                np.dot(y, buf.ones_k, out=buf.y_sum)
                yz = np.einsum("ij,ij->i", y, Z) if coef is not None else np.vdot(y, Z)
            np.exp(Z, out=Z)
            np.dot(Z, buf.ones_k, out=buf.row_sum)
            np.log(buf.row_sum, out=buf.log_sum)
            np.divide(Z, buf.row_sum_col, out=A)  # A is Z's buffer: softmax in place
            # per-sample loss: sum_k y_k (lse - z_k) = y_sum * log(row_sum) - y.(z - max)
            if labels:
                if coef is None:
                    loss = (buf.log_sum.sum() - buf.z_label.sum()) / n
                else:
                    loss = float(np.dot(coef[:, 0], buf.log_sum - buf.z_label))
                    scale = coef * scale
                np.multiply(A, scale, out=D)
                flat = D.reshape(-1)
                flat[buf.flat_index] -= scale if coef is None else scale[:, 0]
            else:
                if coef is None:
                    loss = (np.dot(buf.log_sum, buf.y_sum) - yz) / n
                else:
                    loss = float(np.dot(coef[:, 0], buf.log_sum * buf.y_sum - yz))
                    scale = coef * scale
                np.multiply(A, buf.y_sum_col, out=D)
                np.subtract(D, y, out=D)
                np.multiply(D, scale, out=D)
            return float(loss)

        if out == "sigmoid":
            self._sigmoid_inplace(Z, A)  # A != Z only for binary cross-entropy
        if loss_name == "binary_cross_entropy":
            # per-sample loss: sum_k softplus(z) - y z  (= y sp(-z) + (1-y) sp(z))
            T = buf.tmp[-1]
            np.logaddexp(0, Z, out=T)
            if coef is None:
                loss = (T.sum() - np.vdot(y, Z)) / n
            else:
                loss = float(np.dot(coef[:, 0], T.sum(axis=1) - np.einsum("ij,ij->i", y, Z)))
            np.subtract(A, y, out=D)
        else:  # squared_error
            np.subtract(A, y, out=D)
            if coef is None:
                loss = 0.5 * np.vdot(D, D) / n
            else:
                loss = 0.5 * float(np.dot(coef[:, 0], np.einsum("ij,ij->i", D, D)))
            if out == "sigmoid":
                T = buf.tmp[-1]
                np.subtract(1, A, out=T)
                np.multiply(T, A, out=T)
                np.multiply(D, T, out=D)
        np.multiply(D, scale if coef is None else coef * scale, out=D)
        return float(loss)

    # -- backward -------------------------------------------------------------

    def _backward(self, X, buf, lr):
        """Back-propagate buf.dZ[-1]; if lr is not None, also apply the SGD
        step (dZ already carries the factor lr)."""
        L = self.n_layers
        one = buf.n == 1
        for i in range(L - 1, -1, -1):
            W = self.weights[i]
            dZ = buf.dZ[i]
            A_prev = X if i == 0 else buf.A[i - 1]
            dW, db = self.grad_weights[i], self.grad_biases[i]
            if one:
                # batch of one: dW is an outer product (inner dimension 1)
                np.multiply(dZ.T, A_prev, out=dW)
                np.copyto(db, buf.dZ_row0[i])
            else:
                np.dot(dZ.T, A_prev, out=dW)
                np.dot(buf.ones_n, dZ, out=db)
            if i > 0:
                dA = buf.dZ[i - 1]  # becomes dZ of the layer below
                if W.shape[0] == 1:
                    np.multiply(dZ, W, out=dA)  # inner dimension 1
                else:
                    np.dot(dZ, W, out=dA)
                act = self.activations[i - 1]
                A = buf.A[i - 1]
                if act == "relu":
                    mask = buf.mask[i - 1]
                    if mask is None:
                        mask = buf.tmp[i - 1]
                        np.sign(A, out=mask)  # relu output >= 0: sign is the 0/1 mask
                    np.multiply(dA, mask, out=dA)
                elif act == "sigmoid":
                    T = buf.tmp[i - 1]
                    np.subtract(1, A, out=T)
                    np.multiply(T, A, out=T)
                    np.multiply(dA, T, out=dA)
                elif act == "tanh":
                    T = buf.tmp[i - 1]
                    np.multiply(A, A, out=T)
                    np.subtract(1, T, out=T)
                    np.multiply(dA, T, out=dA)
        if lr is not None:
            # every dW, db already carries the factor lr; W's were used
            # unchanged throughout the backward pass
            np.subtract(self._params, self._grads, out=self._params)

    # -- public API -------------------------------------------------------------

    def predict(self, X):
        """Network outputs (n, n_out) as a new array."""
        X = self._as_X(X)
        buf = self._buffers_for(X.shape[0])
        self._forward(X, buf)
        Z = buf.Z_out
        if self.output == "sigmoid":
            return _stable_sigmoid(Z)
        if self.output == "softmax":
            return _softmax(Z)
        return Z.copy()

    def loss_and_grad(self, X, y, sample_weight=None):
        """Loss and gradients (views of internal buffers, overwritten by the next call).

        Returns
        -------
        loss : float
        grad_weights : list of ndarray (n_out, n_in)
        grad_biases : list of ndarray (n_out,)
        """
        loss = self._step(X, y, sample_weight, None)
        return loss, self.grad_weights, self.grad_biases

    def train_step(self, X, y, lr, sample_weight=None):
        """One SGD step ``W -= lr * dW``, ``b -= lr * db``; returns the loss before it."""
        return self._step(X, y, sample_weight, lr)

    def _step(self, X, y, sample_weight, lr):
        """Forward, loss and backward; lr None stores dW/db, else applies SGD
        (dZ is scaled by lr so the update is the product itself)."""
        X = self._as_X(X)
        n = X.shape[0]
        y = self._as_y(y, n)
        coef = self._sample_coef(sample_weight, n)
        buf = self._buffers_for(n)
        self._forward(X, buf)
        scale = 1.0 if lr is None else lr
        loss = self._output_delta(buf, y, scale / n if coef is None else scale, coef)
        self._backward(X, buf, lr)
        return loss


# ---------------------------------------------------------------------------
# The naive version: plain expressions, a new array for every intermediate


def _stable_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softplus(t):
    return np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))


# Each activation as a plain expression, and its derivative in terms of its
# output A (keys: the library's names, checked by tests/test_bench_baselines.py).
# Each maps Z (or A) to a new array of its shape and dtype.
_ArrayFunction = Callable[[NDArray[np.floating[Any]]], NDArray[np.floating[Any]]]
NAIVE_ACTIVATIONS: dict[str, _ArrayFunction] = {
    "identity": lambda Z: Z,
    "sigmoid": _stable_sigmoid,
    "relu": lambda Z: np.maximum(Z, 0),
    "tanh": np.tanh,
    "softmax": _softmax,
}
NAIVE_DERIVATIVES: dict[str, _ArrayFunction] = {
    "identity": np.ones_like,
    "sigmoid": lambda A: A * (1 - A),
    "relu": lambda A: (A > 0).astype(A.dtype),
    "tanh": lambda A: 1 - A * A,
}


class NaiveNumpyMLP(_BaseNumpyMLP):
    """``pybackprop.MLP`` written as plain NumPy expressions (reference timing only).

    Same constructor as :class:`StrongNumpyMLP`; ``loss_and_grad`` returns
    new arrays.
    """

    def _act(self, name, Z):
        return NAIVE_ACTIVATIONS[name](Z)

    def _act_grad(self, name, A):
        return NAIVE_DERIVATIVES[name](A)

    def predict(self, X):
        A = self._as_X(X)
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            name = self.activations[i] if i < self.n_layers - 1 else self.output
            A = self._act(name, A @ W.T + b)
        return A

    def loss_and_grad(self, X, y, sample_weight=None):
        X = self._as_X(X)
        n = X.shape[0]
        y = self._as_y(y, n)
        if y.ndim == 1:  # class labels -> one-hot rows
            y = np.eye(self.layer_sizes[-1], dtype=self.dtype)[y]
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        w = (w / w.sum()).astype(self.dtype)

        activations = [X]
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            Z = activations[-1] @ W.T + b
            name = self.activations[i] if i < self.n_layers - 1 else self.output
            activations.append(self._act(name, Z))
        A = activations[-1]

        if self.loss_name == "squared_error":
            per_sample = 0.5 * ((A - y) ** 2).sum(axis=1)
            delta = A - y
            if self.output == "sigmoid":
                delta = delta * A * (1 - A)
        elif self.loss_name == "binary_cross_entropy":
            per_sample = (y * _softplus(-Z) + (1 - y) * _softplus(Z)).sum(axis=1)
            delta = A - y
        else:  # softmax + cross_entropy
            zs = Z - Z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(zs).sum(axis=1, keepdims=True))
            per_sample = (y * (lse - zs)).sum(axis=1)
            delta = A * y.sum(axis=1, keepdims=True) - y
        loss = float(per_sample @ w)
        delta = delta * w[:, None]

        grad_weights = [None] * self.n_layers
        grad_biases = [None] * self.n_layers
        for i in range(self.n_layers - 1, -1, -1):
            grad_weights[i] = delta.T @ activations[i]
            grad_biases[i] = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ self.weights[i]) * self._act_grad(
                    self.activations[i - 1], activations[i])
        return loss, grad_weights, grad_biases

    def train_step(self, X, y, lr, sample_weight=None):
        loss, grad_weights, grad_biases = self.loss_and_grad(X, y, sample_weight)
        for W, b, dW, db in zip(self.weights, self.biases, grad_weights, grad_biases):
            W -= lr * dW
            b -= lr * db
        return loss
