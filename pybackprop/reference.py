"""Backpropagation for a dense MLP in plain Python: the reference oracle.

This module is the independent check on the compiled core. It uses nothing
but the standard library (no NumPy), works on lists of floats, and is written
the way textbooks write backpropagation, so it can be read top to bottom:

1. forward pass: for every layer ``l`` and every sample, the pre-activation
   ``z = W a_prev + b`` and the activation ``a = act(z)``, all of them saved;
2. the loss: a weighted mean of per-sample losses;
3. backward pass: the chain rule applied layer by layer from the output back
   to the input, ``dL/dz -> dL/dW, dL/db -> dL/da of the layer below``.

Vocabulary and conventions (the same as the rest of pybackprop):

- ``layer_sizes`` is ``[n0, n1, ..., nL]``; layer ``l`` (0-based, as in the
  ``weights`` list) has ``weights[l]`` with shape ``(n_{l+1}, n_l)`` given as a
  list of ``n_{l+1}`` rows, and ``biases[l]`` with ``n_{l+1}`` entries.
- ``X`` is a list of samples, each a list of ``n0`` floats.
- ``y`` is a list of target rows ``(n, n_out)``, or a list of floats when
  ``n_out == 1``, or a list of integer class labels for ``cross_entropy``.
- Hidden activations: ``"sigmoid"``, ``"relu"``, ``"tanh"``, ``"identity"``
  (one name for all hidden layers, or a list with one name per hidden layer).
  Output activations: ``"identity"``, ``"sigmoid"``, ``"softmax"``.
  Losses: ``"squared_error"`` (``0.5 * sum_k (a_k - y_k)^2``),
  ``"binary_cross_entropy"`` and ``"cross_entropy"``; the valid (output, loss)
  pairs are listed in :data:`VALID_PAIRS`.
- The batch loss is ``sum_i w_i l_i / sum_i w_i`` (the plain mean when no
  ``sample_weight`` is given), and the gradients are its exact derivatives.

Every exponential is taken of a non-positive number (stable sigmoid,
max-shifted log-sum-exp, softplus through ``log1p``), so huge pre-activations
give finite losses and gradients instead of ``OverflowError``.

Sums use :func:`math.fsum`, which is correctly rounded: the oracle's own
rounding error is then as small as a float computation allows, and a
disagreement with the compiled core is (almost all) the core's rounding.

The second half of the module prints a computation log of a small network
for one sample (:func:`explain`, :func:`computation_steps`) and holds the
textbook 2-2-1 example (:func:`textbook_221`).
"""

import math
from typing import Any, Optional, Sequence, TypedDict, Union, cast, overload

__all__ = [
    "HIDDEN_ACTIVATIONS",
    "OUTPUT_ACTIVATIONS",
    "LOSSES",
    "VALID_PAIRS",
    "forward",
    "predict",
    "loss",
    "loss_and_grad",
    "input_grad",
    "computation_steps",
    "Step",
    "explain",
    "textbook_221",
]

HIDDEN_ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")
OUTPUT_ACTIVATIONS = ("identity", "sigmoid", "softmax")
LOSSES = ("squared_error", "binary_cross_entropy", "cross_entropy")
VALID_PAIRS = (
    ("identity", "squared_error"),
    ("sigmoid", "squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
)
# The loss used when loss=None is passed: the natural partner of each output.
_DEFAULT_LOSS = {"identity": "squared_error", "sigmoid": "binary_cross_entropy",
                 "softmax": "cross_entropy"}

# Types of the arguments, as they are written in the docstrings.
_Matrix = Sequence[Sequence[float]]  # rows: W (n_out, n_in), X (n_samples, n0)
_Activation = Union[str, Sequence[str]]  # one name, or one per hidden layer
# rows (n_samples, nL), floats when nL == 1, or integer class labels
_Targets = Union[Sequence[Sequence[float]], Sequence[float]]
# One matrix per layer: zs[l][i][j] is layer l, sample i, neuron j.
_PerLayer = list[list[list[float]]]


# ---------------------------------------------------------------------------
# Scalar pieces
# ---------------------------------------------------------------------------

def sigmoid(z: float) -> float:
    """Logistic function 1 / (1 + exp(-z)), never overflowing.

    For z < 0 the equivalent form exp(z) / (1 + exp(z)) is used, so ``exp``
    only ever sees -|z|.
    """
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def relu(z: float) -> float:
    """max(z, 0)."""
    return z if z > 0 else 0.0


def softplus(t: float) -> float:
    """log(1 + exp(t)) computed as max(t, 0) + log1p(exp(-|t|))."""
    return max(t, 0.0) + math.log1p(math.exp(-abs(t)))


def log_sum_exp(z: Sequence[float]) -> float:
    """log(sum_k exp(z_k)), shifted by max(z) so no exponential overflows."""
    m = max(z)
    return m + math.log(math.fsum(math.exp(zk - m) for zk in z))


def softmax(z: Sequence[float]) -> list[float]:
    """exp(z_k) / sum_j exp(z_j), shifted by max(z) so no exponential overflows."""
    m = max(z)
    e = [math.exp(zk - m) for zk in z]
    total = math.fsum(e)
    return [ek / total for ek in e]


def activate(name: str, z: float) -> float:
    """a = act(z) for one neuron of an elementwise activation."""
    if name == "sigmoid":
        return sigmoid(z)
    if name == "relu":
        return relu(z)
    if name == "tanh":
        return math.tanh(z)
    return z  # identity


def derivative_from_activation(name: str, a: float) -> float:
    """act'(z) written in terms of the saved a = act(z).

    sigmoid: a (1 - a); tanh: 1 - a^2; relu: 1 if a > 0 else 0 (so the
    derivative at z = 0 is taken as 0); identity: 1.
    """
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return 1.0 if a > 0 else 0.0
    return 1.0  # identity


def _dot(row: Sequence[float], values: Sequence[float]) -> float:
    return math.fsum(w * v for w, v in zip(row, values))


# ---------------------------------------------------------------------------
# Validation: the same rules as the compiled network
# ---------------------------------------------------------------------------

def _choose(kind: str, value: object, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")
    return value


def _check_config(n_layers: int, n_out: int, activation: _Activation, output: str,
                  loss: Optional[str]) -> tuple[list[str], str, str]:
    """Return (hidden activation names, output, loss) after checking them.

    Raises ValueError (listing the valid choices) for an unknown name, a
    list of activations of the wrong length, an (output, loss) pair that is
    not in VALID_PAIRS, or a softmax output with fewer than two units.
    """
    n_hidden = n_layers - 1
    if isinstance(activation, str):
        hidden = [activation] * n_hidden
    else:
        try:
            hidden = list(activation)
        except TypeError:
            raise TypeError(f"activation must be a name or a list of names, "
                            f"got {activation!r}") from None
        if len(hidden) != n_hidden:
            raise ValueError(f"activation lists one name per hidden layer: expected {n_hidden}, "
                             f"got {len(hidden)} ({hidden!r})")
    for name in hidden:
        _choose("activation", name, HIDDEN_ACTIVATIONS)
    _choose("output activation", output, OUTPUT_ACTIVATIONS)
    if loss is None:
        loss = _DEFAULT_LOSS[output]
    _choose("loss", loss, LOSSES)
    if (output, loss) not in VALID_PAIRS:
        pairs = ", ".join(f"output={o!r} with loss={lo!r}" for o, lo in VALID_PAIRS)
        raise ValueError(f"output={output!r} cannot be used with loss={loss!r}; "
                         f"valid combinations: {pairs}")
    if output == "softmax" and n_out < 2:
        raise ValueError(f"a softmax output needs at least 2 units, got {n_out}")
    return hidden, output, loss


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_parameters(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]]) -> list[int]:
    """Return layer_sizes [n0, ..., nL] after checking the parameter shapes."""
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(f"need one bias vector per weight matrix and at least one layer; "
                         f"got {len(weights)} weight matrices and {len(biases)} bias vectors")
    sizes = [len(weights[0][0]) if len(weights[0]) else 0]
    for layer, (W, b) in enumerate(zip(weights, biases)):
        n_out, n_in = len(W), sizes[-1]
        if n_out == 0 or n_in == 0:
            raise ValueError(f"layer {layer}: weight matrix must be non-empty")
        for row in W:
            if len(row) != n_in:
                raise ValueError(f"layer {layer}: every row of W must have {n_in} entries "
                                 f"(the size of the layer below), got a row of {len(row)}")
        if len(b) != n_out:
            raise ValueError(f"layer {layer}: b must have {n_out} entries (one per row of W), "
                             f"got {len(b)}")
        sizes.append(n_out)
    return sizes


def _check_inputs(X: Sequence[Any], n_in: int) -> None:
    if len(X) == 0:
        raise ValueError("X is an empty batch; need at least one sample")
    for i, x in enumerate(X):
        if _is_real(x):
            raise ValueError("X must be a list of samples (lists of floats); "
                             "wrap a single sample as [x]")
        if len(x) != n_in:
            raise ValueError(f"sample {i} of X has {len(x)} features, expected {n_in}")


def _target_rows(y: Sequence[Any], n: int, n_out: int, loss: str) -> list[list[float]]:
    """Targets as n rows of n_out floats (class labels become one-hot rows)."""
    if len(y) != n:
        raise ValueError(f"y has {len(y)} entries for {n} samples")
    rows = []
    for i, target in enumerate(y):
        if _is_real(target):
            if loss == "cross_entropy":
                if not isinstance(target, int):
                    raise TypeError(f"a flat y for cross_entropy holds integer class labels, "
                                    f"got {target!r} at position {i}")
                if not 0 <= target < n_out:
                    raise ValueError(f"class label {target} at position {i} "
                                     f"is outside 0..{n_out - 1}")
                rows.append([1.0 if k == target else 0.0 for k in range(n_out)])
            elif n_out == 1:
                rows.append([float(target)])
            else:
                raise ValueError(f"y must be rows of {n_out} targets; a flat y is only allowed "
                                 f"when n_out == 1 (or as labels for cross_entropy)")
        else:
            if len(target) != n_out:
                raise ValueError(f"row {i} of y has {len(target)} targets, expected {n_out}")
            rows.append([float(t) for t in target])
    return rows


def _sample_weights(sample_weight: Optional[Sequence[float]], n: int) -> list[float]:
    if sample_weight is None:
        return [1.0] * n
    if len(sample_weight) != n:
        raise ValueError(f"sample_weight has {len(sample_weight)} entries for {n} samples")
    weights = [float(w) for w in sample_weight]
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ValueError("sample weights must be finite and >= 0")
    if math.fsum(weights) <= 0:
        raise ValueError("sample weights must not all be zero")
    return weights


# ---------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------

def _forward(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
             hidden: Sequence[str], output: str) -> tuple[_PerLayer, _PerLayer]:
    """Z and A of every layer; zs[l][i][j] is layer l, sample i, neuron j."""
    zs: _PerLayer = []
    activations: _PerLayer = []
    A_prev = X
    last = len(weights) - 1
    for l, (W, b) in enumerate(zip(weights, biases)):
        Z = [[_dot(W[j], a_prev) + b[j] for j in range(len(W))] for a_prev in A_prev]
        if l < last:
            A = [[activate(hidden[l], z) for z in z_row] for z_row in Z]
        elif output == "softmax":
            A = [softmax(z_row) for z_row in Z]
        else:
            A = [[activate(output, z) for z in z_row] for z_row in Z]
        zs.append(Z)
        activations.append(A)
        A_prev = A
    return zs, activations


def forward(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
            activation: _Activation = "relu", output: str = "identity",
            ) -> tuple[_PerLayer, _PerLayer]:
    """Run the forward pass and return every pre-activation and activation.

    Parameters
    ----------
    weights : list of list of list of float
        ``weights[l]`` has shape (n_{l+1}, n_l).
    biases : list of list of float
        ``biases[l]`` has shape (n_{l+1},).
    X : list of list of float
        Samples, shape (n_samples, n0).
    activation : str or list of str
        Hidden activation, or one name per hidden layer.
    output : str
        Output activation.

    Returns
    -------
    zs : list
        ``zs[l]`` has shape (n_samples, n_{l+1}): Z of layer l.
    activations : list
        ``activations[l]`` has shape (n_samples, n_{l+1}): A of layer l; the
        last entry is the network's output. The input X is not included.
    """
    sizes = _check_parameters(weights, biases)
    hidden, output, _ = _check_config(len(weights), sizes[-1], activation, output,
                                      "cross_entropy" if output == "softmax" else "squared_error")
    _check_inputs(X, sizes[0])
    return _forward(weights, biases, X, hidden, output)


@overload
def predict(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
            activation: _Activation = ..., output: str = ...) -> list[list[float]]: ...


@overload
def predict(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: Sequence[float],
            activation: _Activation = ..., output: str = ...) -> list[float]: ...


def predict(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: Sequence[Any],
            activation: _Activation = "relu", output: str = "identity",
            ) -> Union[list[list[float]], list[float]]:
    """Network output for a batch (n_samples, n0) -> (n_samples, nL).

    A single sample (a flat list of n0 floats) gives a flat list of nL floats.
    """
    single = len(X) > 0 and _is_real(X[0])
    _, activations = forward(weights, biases, [X] if single else X, activation, output)
    return activations[-1][0] if single else activations[-1]


# ---------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------

def _sample_loss(loss: str, z: Sequence[float], a: Sequence[float], t: Sequence[float]) -> float:
    """Loss of one sample from its output pre-activation z, output a, target t."""
    if loss == "squared_error":
        return 0.5 * math.fsum((ak - tk) ** 2 for ak, tk in zip(a, t))
    if loss == "binary_cross_entropy":
        # -[t log a + (1-t) log(1-a)] rewritten with a = sigmoid(z): never log(0).
        return math.fsum(tk * softplus(-zk) + (1.0 - tk) * softplus(zk) for zk, tk in zip(z, t))
    # cross_entropy: -sum_k t_k log softmax(z)_k = sum_k t_k (lse(z) - z_k)
    lse = log_sum_exp(z)
    return math.fsum(tk * (lse - zk) for zk, tk in zip(z, t))


def _batch_loss(loss: str, z_out: _Matrix, a_out: _Matrix, targets: _Matrix,
                sw: Sequence[float]) -> float:
    total = math.fsum(sw)
    return math.fsum(w * _sample_loss(loss, z, a, t)
                     for w, z, a, t in zip(sw, z_out, a_out, targets)) / total


def _prepare(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
             y: Sequence[Any], activation: _Activation, output: str, loss: Optional[str],
             sample_weight: Optional[Sequence[float]],
             ) -> tuple[list[str], str, str, list[list[float]], list[float]]:
    sizes = _check_parameters(weights, biases)
    hidden, output, loss = _check_config(len(weights), sizes[-1], activation, output, loss)
    _check_inputs(X, sizes[0])
    targets = _target_rows(y, len(X), sizes[-1], loss)
    sw = _sample_weights(sample_weight, len(X))
    return hidden, output, loss, targets, sw


def loss(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
         y: _Targets, activation: _Activation = "relu", output: str = "identity",
         loss: Optional[str] = "squared_error",
         sample_weight: Optional[Sequence[float]] = None) -> float:
    """Batch loss: sum_i w_i l_i / sum_i w_i (the mean when sample_weight is None).

    Parameters are as for :func:`loss_and_grad`. Returns a float.
    """
    loss_name = loss
    hidden, output, loss_name, targets, sw = _prepare(weights, biases, X, y, activation,
                                                      output, loss_name, sample_weight)
    zs, activations = _forward(weights, biases, X, hidden, output)
    return _batch_loss(loss_name, zs[-1], activations[-1], targets, sw)


# ---------------------------------------------------------------------------
# Backward pass
# ---------------------------------------------------------------------------

def _output_delta(output: str, loss: str, a: Sequence[float], t: Sequence[float],
                  coef: float) -> list[float]:
    """dL/dz of the output layer for one sample whose weight in the batch is coef.

    For squared error the textbook two steps are taken: dL/da = coef (a - y),
    then dL/dz = dL/da * out'(z). Sigmoid with binary cross-entropy and softmax
    with cross-entropy are taken together, because the derivative of the loss
    w.r.t. a divides by a (1 - a) or a_k, which the output derivative then
    multiplies back; the combined forms below never divide (and stay exact
    when a saturates to 0 or 1).
    """
    if loss == "squared_error":
        dA = [coef * (ak - tk) for ak, tk in zip(a, t)]
        if output == "sigmoid":
            return [dak * ak * (1.0 - ak) for dak, ak in zip(dA, a)]
        return dA  # identity: out'(z) = 1
    if loss == "binary_cross_entropy":
        return [coef * (ak - tk) for ak, tk in zip(a, t)]
    # softmax + cross_entropy; sum(t) stays in so targets need not sum to one
    t_sum = math.fsum(t)
    return [coef * (ak * t_sum - tk) for ak, tk in zip(a, t)]


def _backward(weights: Sequence[_Matrix], X: _Matrix, zs: _PerLayer, activations: _PerLayer,
              targets: _Matrix, sw: Sequence[float], hidden: Sequence[str], output: str,
              loss: str) -> tuple[_PerLayer, list[list[float]], list[list[float]]]:
    """Gradients of the batch loss: (grad_weights, grad_biases, dL/dX)."""
    total = math.fsum(sw)
    dZ = [_output_delta(output, loss, a, t, w / total)
          for a, t, w in zip(activations[-1], targets, sw)]
    n_layers = len(weights)
    grad_weights: _PerLayer = [[] for _ in range(n_layers)]
    grad_biases: list[list[float]] = [[] for _ in range(n_layers)]
    for l in reversed(range(n_layers)):
        W = weights[l]
        A_prev = X if l == 0 else activations[l - 1]
        n_out, n_in = len(W), len(W[0])
        # dL/dW[j][k] = sum_i dL/dz_ij * a_prev_ik ; dL/db[j] = sum_i dL/dz_ij
        grad_weights[l] = [[math.fsum(dZ[i][j] * A_prev[i][k] for i in range(len(dZ)))
                            for k in range(n_in)] for j in range(n_out)]
        grad_biases[l] = [math.fsum(dz_row[j] for dz_row in dZ) for j in range(n_out)]
        # dL/da_prev[k] = sum_j W[j][k] dL/dz[j]: each a_prev feeds every neuron above
        dA_prev = [[math.fsum(W[j][k] * dz_row[j] for j in range(n_out)) for k in range(n_in)]
                   for dz_row in dZ]
        if l > 0:
            act = hidden[l - 1]
            dZ = [[dak * derivative_from_activation(act, ak) for dak, ak in zip(da_row, a_row)]
                  for da_row, a_row in zip(dA_prev, A_prev)]
    # the last layer visited is the first, whose dA_prev is dL/dX
    return grad_weights, grad_biases, dA_prev


def loss_and_grad(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
                  y: _Targets, activation: _Activation = "relu", output: str = "identity",
                  loss: Optional[str] = "squared_error",
                  sample_weight: Optional[Sequence[float]] = None,
                  ) -> tuple[float, _PerLayer, list[list[float]]]:
    """Loss of a batch and its gradient w.r.t. every weight and bias.

    Parameters
    ----------
    weights : list of list of list of float
        ``weights[l]`` has shape (n_{l+1}, n_l).
    biases : list of list of float
        ``biases[l]`` has shape (n_{l+1},).
    X : list of list of float
        Samples, shape (n_samples, n0).
    y : list
        Targets: rows (n_samples, nL); floats (n_samples,) when nL == 1; or
        integer class labels (n_samples,) for ``cross_entropy``.
    activation : str or list of str, default "relu"
        Hidden activation, or one name per hidden layer.
    output : {"identity", "sigmoid", "softmax"}, default "identity"
    loss : {"squared_error", "binary_cross_entropy", "cross_entropy"}, default "squared_error"
        ``None`` picks the natural partner of ``output``.
    sample_weight : list of float, optional
        Non-negative weight per sample, shape (n_samples,).

    Returns
    -------
    loss : float
        ``sum_i w_i l_i / sum_i w_i``.
    grad_weights : list
        ``grad_weights[l]`` has the shape of ``weights[l]``.
    grad_biases : list
        ``grad_biases[l]`` has the shape of ``biases[l]``.

    Raises
    ------
    ValueError
        Unknown activation, output or loss name, an invalid (output, loss)
        pair, or inconsistent shapes.
    """
    loss_name = loss
    hidden, output, loss_name, targets, sw = _prepare(weights, biases, X, y, activation,
                                                      output, loss_name, sample_weight)
    zs, activations = _forward(weights, biases, X, hidden, output)
    value = _batch_loss(loss_name, zs[-1], activations[-1], targets, sw)
    grad_weights, grad_biases, _ = _backward(weights, X, zs, activations, targets, sw,
                                             hidden, output, loss_name)
    return value, grad_weights, grad_biases


def input_grad(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], X: _Matrix,
               y: _Targets, activation: _Activation = "relu", output: str = "identity",
               loss: Optional[str] = "squared_error",
               sample_weight: Optional[Sequence[float]] = None) -> list[list[float]]:
    """Gradient of the batch loss w.r.t. the inputs, shape (n_samples, n0).

    The backward pass of :func:`loss_and_grad` carried one step further:
    dL/dX[i][k] = sum_j W0[j][k] dL/dz0[i][j].
    """
    loss_name = loss
    hidden, output, loss_name, targets, sw = _prepare(weights, biases, X, y, activation,
                                                      output, loss_name, sample_weight)
    zs, activations = _forward(weights, biases, X, hidden, output)
    return _backward(weights, X, zs, activations, targets, sw, hidden, output, loss_name)[2]


# ---------------------------------------------------------------------------
# Computation log: a worked example, step by step
# ---------------------------------------------------------------------------

def _fmt(value: float, digits: int) -> str:
    return format(value + 0.0, f".{digits}g")  # + 0.0 turns -0.0 into 0.0


def _paren(value: float, digits: int) -> str:
    """A number as it appears inside a formula: negatives in parentheses."""
    text = _fmt(value, digits)
    return f"({text})" if value < 0 else text


class Step(TypedDict):
    """One quantity of the computation log: an entry of :func:`computation_steps`."""

    phase: str
    kind: str
    layer: Optional[int]
    neuron: Optional[int]
    input: Optional[int]
    symbol: str
    description: str
    formula: str
    expression: str
    value: float


def _step(phase: str, kind: str, layer: Optional[int], neuron: Optional[int],
          source: Optional[int], symbol: str, description: str, formula: str, expression: str,
          value: float) -> Step:
    return {"phase": phase, "kind": kind, "layer": layer, "neuron": neuron, "input": source,
            "symbol": symbol, "description": description, "formula": formula,
            "expression": expression, "value": value}


def computation_steps(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]],
                      x: Sequence[float], y: Union[float, Sequence[float]],
                      activation: _Activation = "relu", output: str = "identity",
                      loss: Optional[str] = "squared_error", digits: int = 6) -> list[Step]:
    """Every quantity of the forward and backward pass for one sample, in order.

    Layers are numbered the textbook way: layer 0 is the input (``a[0] = x``),
    layer ``l >= 1`` computes ``z[l] = W[l] a[l-1] + b[l]`` with ``W[l] =
    weights[l-1]`` and ``b[l] = biases[l-1]``. Neurons are numbered from 0,
    so ``W[l][j][k]`` connects neuron k of layer l-1 to neuron j of layer l.

    Parameters
    ----------
    weights, biases : list
        As for :func:`loss_and_grad`.
    x : list of float
        One sample, shape (n0,).
    y : float, int or list of float
        Its target: a row of nL floats, a float when nL == 1, or an integer
        class label for ``cross_entropy``.
    activation, output, loss : str
        As for :func:`loss_and_grad`.
    digits : int, default 6
        Significant digits of the numbers written into ``expression``.

    Returns
    -------
    steps : list of dict
        JSON-serialisable dicts with keys ``phase`` ("forward" or
        "backward"), ``kind`` (one of "z", "a", "loss", "dL/da", "dL/dz",
        "dL/dW", "dL/db"), ``layer`` (textbook number, None for the loss),
        ``neuron`` (None for the loss), ``input`` (for "dL/dW" the neuron k of
        the layer below, else None), ``symbol`` (e.g. "dL/dW[2][0][1]"),
        ``description`` (in words), ``formula`` (symbolic), ``expression``
        (the formula with the numbers put in) and ``value`` (float, unrounded).
    """
    if _is_real(x) or (len(x) and not _is_real(x[0])):
        raise ValueError("x must be one sample: a flat list of floats")
    # a number stays one; a row is copied (_is_real told the two apart)
    targets = [y] if _is_real(y) else [list(cast(Sequence[float], y))]
    hidden, output, loss, target_rows, sw = _prepare(weights, biases, [list(x)], targets,
                                                     activation, output, loss, None)
    t = target_rows[0]
    zs, activations = _forward(weights, biases, [list(x)], hidden, output)
    # Z[l] is z[l], textbook numbering; layer 0 (the input) has no z
    Z: list[list[float]] = [[]] + [z[0] for z in zs]
    A = [list(x)] + [a[0] for a in activations]  # A[l] is a[l], textbook numbering
    n_layers = len(weights)
    names = hidden + [output]
    d = digits
    steps: list[Step] = []

    # Forward pass
    for l in range(1, n_layers + 1):
        W, b = weights[l - 1], biases[l - 1]
        act = names[l - 1]
        where = "output" if l == n_layers else "hidden"
        for j in range(len(W)):
            terms = [f"W[{l}][{j}][{k}]*a[{l - 1}][{k}]" for k in range(len(W[j]))]
            nums = [f"{_paren(W[j][k], d)}*{_paren(A[l - 1][k], d)}" for k in range(len(W[j]))]
            steps.append(_step(
                "forward", "z", l, j, None, f"z[{l}][{j}]",
                f"weighted input of {where} neuron {j} in layer {l}",
                " + ".join(terms + [f"b[{l}][{j}]"]),
                " + ".join(nums + [_paren(b[j], d)]) + f" = {_fmt(Z[l][j], d)}",
                Z[l][j]))
        for j in range(len(W)):
            if act == "softmax":
                formula = f"exp(z[{l}][{j}]) / sum_k exp(z[{l}][k])"
                expression = (f"exp({_fmt(Z[l][j], d)}) / ("
                              + " + ".join(f"exp({_fmt(zk, d)})" for zk in Z[l])
                              + f") = {_fmt(A[l][j], d)}")
            else:
                formula = f"{act}(z[{l}][{j}])"
                expression = f"{act}({_fmt(Z[l][j], d)}) = {_fmt(A[l][j], d)}"
            steps.append(_step("forward", "a", l, j, None, f"a[{l}][{j}]",
                               f"activation of {where} neuron {j} in layer {l} ({act})",
                               formula, expression, A[l][j]))

    L = n_layers
    value = _sample_loss(loss, Z[L], A[L], t)
    if loss == "squared_error":
        formula = f"0.5 * sum_k (a[{L}][k] - y[k])^2"
        expression = ("0.5 * (" + " + ".join(f"({_fmt(ak, d)} - {_paren(tk, d)})^2"
                                              for ak, tk in zip(A[L], t)) + ")")
    elif loss == "binary_cross_entropy":
        formula = f"sum_k y[k]*softplus(-z[{L}][k]) + (1 - y[k])*softplus(z[{L}][k])"
        expression = " + ".join(f"{_paren(tk, d)}*softplus({_fmt(-zk, d)}) + "
                                f"{_paren(1.0 - tk, d)}*softplus({_fmt(zk, d)})"
                                for zk, tk in zip(Z[L], t))
    else:
        formula = f"sum_k y[k]*(logsumexp(z[{L}]) - z[{L}][k])"
        lse = log_sum_exp(Z[L])
        expression = " + ".join(f"{_paren(tk, d)}*({_fmt(lse, d)} - {_paren(zk, d)})"
                                for zk, tk in zip(Z[L], t))
    steps.append(_step("forward", "loss", None, None, None, "L", f"{loss} loss of the sample",
                       formula, f"{expression} = {_fmt(value, d)}", value))

    # Backward pass, output layer first
    delta = _output_delta(output, loss, A[L], t, 1.0)
    for j in range(len(A[L])):
        a, tj = A[L][j], t[j]
        if loss == "squared_error":
            steps.append(_step("backward", "dL/da", L, j, None, f"dL/da[{L}][{j}]",
                               f"how the loss changes with output {j}",
                               f"a[{L}][{j}] - y[{j}]",
                               f"{_fmt(a, d)} - {_paren(tj, d)} = {_fmt(a - tj, d)}", a - tj))
            if output == "sigmoid":
                formula = f"dL/da[{L}][{j}] * a[{L}][{j}]*(1 - a[{L}][{j}])"
                expression = f"{_paren(a - tj, d)} * {_fmt(a, d)}*(1 - {_fmt(a, d)})"
                description = "chain rule through the sigmoid: sigmoid'(z) = a(1 - a)"
            else:
                formula = f"dL/da[{L}][{j}] * 1"
                expression = f"{_paren(a - tj, d)} * 1"
                description = "chain rule through the identity output: derivative 1"
        elif loss == "binary_cross_entropy":
            formula = f"a[{L}][{j}] - y[{j}]"
            expression = f"{_fmt(a, d)} - {_paren(tj, d)}"
            description = ("sigmoid and binary cross-entropy together: the a(1 - a) of "
                           "sigmoid' cancels the denominator of dL/da")
        else:
            formula = f"a[{L}][{j}]*sum_k y[k] - y[{j}]"
            expression = f"{_fmt(a, d)}*{_fmt(math.fsum(t), d)} - {_paren(tj, d)}"
            description = "softmax and cross-entropy together (sum_k y[k] is 1 for one-hot y)"
        steps.append(_step("backward", "dL/dz", L, j, None, f"dL/dz[{L}][{j}]", description,
                           formula, f"{expression} = {_fmt(delta[j], d)}", delta[j]))

    for l in range(L, 0, -1):
        W = weights[l - 1]
        for j in range(len(W)):
            for k in range(len(W[j])):
                g = delta[j] * A[l - 1][k]
                steps.append(_step(
                    "backward", "dL/dW", l, j, k, f"dL/dW[{l}][{j}][{k}]",
                    f"weight from neuron {k} of layer {l - 1} to neuron {j} of layer {l}",
                    f"dL/dz[{l}][{j}] * a[{l - 1}][{k}]",
                    f"{_paren(delta[j], d)} * {_paren(A[l - 1][k], d)} = {_fmt(g, d)}", g))
            steps.append(_step("backward", "dL/db", l, j, None, f"dL/db[{l}][{j}]",
                               f"bias of neuron {j} in layer {l}: dz/db = 1",
                               f"dL/dz[{l}][{j}]", f"{_fmt(delta[j], d)}", delta[j]))
        if l == 1:
            break
        act = names[l - 2]
        below: list[float] = []
        for k in range(len(W[0])):
            dA = math.fsum(W[j][k] * delta[j] for j in range(len(W)))
            steps.append(_step(
                "backward", "dL/da", l - 1, k, None, f"dL/da[{l - 1}][{k}]",
                f"neuron {k} of layer {l - 1} feeds every neuron of layer {l}: sum over them",
                f"sum_j W[{l}][j][{k}] * dL/dz[{l}][j]",
                " + ".join(f"{_paren(W[j][k], d)}*{_paren(delta[j], d)}" for j in range(len(W)))
                + f" = {_fmt(dA, d)}", dA))
            a = A[l - 1][k]
            dz = dA * derivative_from_activation(act, a)
            local = {"sigmoid": (f"a[{l - 1}][{k}]*(1 - a[{l - 1}][{k}])",
                                 f"{_fmt(a, d)}*(1 - {_fmt(a, d)})"),
                     "tanh": (f"(1 - a[{l - 1}][{k}]^2)", f"(1 - {_fmt(a, d)}^2)"),
                     "relu": (f"[a[{l - 1}][{k}] > 0]", "1" if a > 0 else "0"),
                     "identity": ("1", "1")}[act]
            steps.append(_step(
                "backward", "dL/dz", l - 1, k, None, f"dL/dz[{l - 1}][{k}]",
                f"chain rule through the {act} of neuron {k} in layer {l - 1}",
                f"dL/da[{l - 1}][{k}] * {local[0]}",
                f"{_paren(dA, d)} * {local[1]} = {_fmt(dz, d)}", dz))
            below.append(dz)
        delta = below
    return steps


def explain(weights: Sequence[_Matrix], biases: Sequence[Sequence[float]], x: Sequence[float],
            y: Union[float, Sequence[float]], activation: _Activation = "relu",
            output: str = "identity", loss: Optional[str] = "squared_error",
            digits: int = 6) -> str:
    """The forward and backward pass of one sample as a textbook worked example.

    Parameters are as for :func:`computation_steps`; returns the log as a
    string, one line per quantity with its formula, the numbers put in and
    the result (rounded to ``digits`` significant digits for display only:
    every step is computed from unrounded values).

    Examples
    --------
    >>> print(explain(**textbook_221()))  # doctest: +SKIP
    """
    steps = computation_steps(weights, biases, x, y, activation, output, loss, digits)
    sizes = _check_parameters(weights, biases)
    hidden, output, loss = _check_config(len(weights), sizes[-1], activation, output, loss)
    acts = ", ".join(hidden) if len(set(hidden)) > 1 else (hidden[0] if hidden else "none")
    lines = [f"Network {'-'.join(map(str, sizes))}: hidden activation {acts}, "
             f"output {output}, loss {loss}",
             f"Input a[0] = x = [{', '.join(_fmt(v, digits) for v in x)}]; "
             f"target y = {y!r}",
             "(layer 0 is the input; W[l], b[l] are weights[l-1], biases[l-1])"]
    phase: Optional[str] = None
    layer: Optional[int] = None
    for step in steps:
        if step["phase"] != phase:
            phase = step["phase"]
            lines += ["", "Forward pass" if phase == "forward" else
                      "Backward pass (chain rule, from the loss back to the input)"]
            layer = None
        if step["layer"] != layer and step["layer"] is not None:
            layer = step["layer"]
            lines.append(f"  layer {layer}" + (" (output)" if layer == len(weights) else ""))
        symbol = step["symbol"]
        lines.append(f"    {symbol} = {step['formula']}")
        lines.append(f"    {' ' * len(symbol)} = {step['expression']}")
    return "\n".join(lines)


def textbook_221() -> dict[str, Any]:
    """The classic 2-2-1 worked example: sigmoid hidden and output, squared error.

    Returns a dict with keys ``weights``, ``biases``, ``x``, ``y``,
    ``activation``, ``output`` and ``loss``, so ``explain(**textbook_221())``
    prints the worked example and ``loss_and_grad`` takes the same values
    with ``X=[x]``.

    Unrounded, the example gives output 0.7073895241, loss 0.0042883501,
    dL/dW2 = [[-0.0112451094, -0.0117965398]], dL/db2 = [-0.0191694040],
    dL/dW1 = [[-0.0013945592, -0.0008367355], [-0.0015879993, -0.0009527996]]
    and dL/db1 = [-0.0027891183, -0.0031759986].

    Walk-throughs done by hand round the intermediates and print z1 =
    [0.35, 0.47], output 0.708, loss 0.00423, dL/dW2 = [-0.011, -0.012],
    dL/db2 = -0.019 and dL/dW1[0] = [-0.00138, -0.00083]. Their third
    digits differ from the values above because rounding compounds along
    the chain. z1 is exact, but a1 = [0.58662, 0.61538] is carried on as
    [0.59, 0.62], so z2 = 0.888 instead of 0.88274 and the output is 0.708
    instead of 0.70739. The error a - y is then -0.092 instead of -0.09261
    (0.7% off) and squaring doubles that relative error: loss 0.00423
    instead of 0.00429. Backward, dL/dz2 = -0.0191694 is carried on as
    -0.019 (0.9% off), and each dL/dW1 entry multiplies it by further rounded
    factors (w, a1(1 - a1), x), so their relative errors add up: -0.00138
    instead of -0.0013946. Rounding a1 to three digits instead ([0.587,
    0.615]) gives an output of 0.707, which shows how sensitive the printed
    digits are to where the rounding happens. This module rounds nothing;
    ``digits`` in :func:`explain` only affects what is displayed.
    """
    return {
        "weights": [[[0.2, 0.5], [0.3, 0.4]], [[0.6, 0.7]]],
        "biases": [[0.1, 0.2], [0.1]],
        "x": [0.5, 0.3],
        "y": 0.8,
        "activation": "sigmoid",
        "output": "sigmoid",
        "loss": "squared_error",
    }
