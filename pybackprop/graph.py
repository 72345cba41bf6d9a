"""A scalar computational graph with reverse-mode differentiation.

Every arithmetic operation on :class:`Value` objects creates a new node that
remembers its parents and the local derivative of its result with respect to
each parent, evaluated when the node is made (for ``c = a * b``: dc/da = b,
dc/db = a). :meth:`Value.backward` then applies the chain rule over the whole
graph: visiting the nodes from the output back to the leaves (reverse
topological order), it adds ``local derivative * gradient of the child`` to
each parent. The gradient of the output with respect to a leaf is therefore
the sum, over every path from the leaf to the output, of the product of the
local derivatives along the path; :func:`paths` lists those paths and
products for a small graph, to show it.

The engine is for learning and for checking small examples (such as the
2-2-1 network of :func:`mlp_loss`); it is pure Python and works on one
number at a time.

Examples
--------
>>> a = Value(3.0, "a")
>>> c = (2 * a) ** 2
>>> c.backward()
>>> c.data, a.grad          # dc/da = 8a
(36.0, 24.0)
"""

import math
from typing import NamedTuple, Optional, Sequence, Union

from . import reference

__all__ = ["Value", "Path", "paths", "mlp_loss"]

# A number or a node: what the arithmetic operators of Value accept.
_Operand = Union["Value", float]


class Value:
    """A scalar in a computational graph.

    Parameters
    ----------
    data : float
        The value.
    label : str, optional
        A name used when printing the node and its paths.

    Attributes
    ----------
    data : float
        The value computed in the forward direction.
    grad : float
        d(output)/d(this node) after ``output.backward()``; 0.0 before.
    label : str
        The name given, or "" for intermediate nodes.
    op : str
        The operation that produced the node ("" for a leaf).
    parents : tuple of (Value, float)
        Each input of the operation with the local derivative
        d(this node)/d(input). An input used twice (``a * a``) appears twice.
    """

    __slots__ = ("data", "grad", "label", "op", "parents")

    data: float
    grad: float
    label: str
    op: str
    parents: tuple[tuple["Value", float], ...]

    def __init__(self, data: float, label: str = "", *, op: str = "",
                 parents: Sequence[tuple["Value", float]] = ()) -> None:
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self.op = op
        self.parents = tuple(parents)

    def __repr__(self) -> str:
        name = f"{self.label!r}, " if self.label else ""
        return f"Value({name}data={self.data!r}, grad={self.grad!r})"

    @property
    def name(self) -> str:
        """The label, or the operation that made the node."""
        return self.label or self.op or repr(self.data)

    # -- arithmetic --------------------------------------------------------

    @staticmethod
    def _lift(other: _Operand) -> "Value":
        # A plain number becomes a constant leaf, so 2 * a and a + 1 work.
        return other if isinstance(other, Value) else Value(other, repr(other))

    def __add__(self, other: _Operand) -> "Value":
        other = self._lift(other)
        return Value(self.data + other.data, op="+", parents=((self, 1.0), (other, 1.0)))

    def __sub__(self, other: _Operand) -> "Value":
        other = self._lift(other)
        return Value(self.data - other.data, op="-", parents=((self, 1.0), (other, -1.0)))

    def __mul__(self, other: _Operand) -> "Value":
        other = self._lift(other)
        return Value(self.data * other.data, op="*",
                     parents=((self, other.data), (other, self.data)))

    def __truediv__(self, other: _Operand) -> "Value":
        other = self._lift(other)
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        return Value(self.data / other.data, op="/",
                     parents=((self, 1.0 / other.data),
                              (other, -self.data / other.data ** 2)))

    def __pow__(self, exponent: _Operand) -> "Value":
        """``self ** exponent`` for a constant exponent or a Value exponent.

        For a Value exponent p, d(a^p)/dp = a^p log(a), defined for a > 0
        only; for a <= 0 that local derivative is nan.
        """
        if isinstance(exponent, Value):
            p = exponent.data
            out = self.data ** p
            d_exponent = out * math.log(self.data) if self.data > 0 else math.nan
            return Value(out, op="**", parents=((self, p * self.data ** (p - 1)),
                                                 (exponent, d_exponent)))
        p = float(exponent)
        return Value(self.data ** p, op=f"**{exponent!r}",
                     parents=((self, p * self.data ** (p - 1)),))

    def __neg__(self) -> "Value":
        return Value(-self.data, op="neg", parents=((self, -1.0),))

    def __radd__(self, other: float) -> "Value":
        return self._lift(other) + self

    def __rsub__(self, other: float) -> "Value":
        return self._lift(other) - self

    def __rmul__(self, other: float) -> "Value":
        return self._lift(other) * self

    def __rtruediv__(self, other: float) -> "Value":
        return self._lift(other) / self

    def __rpow__(self, base: float) -> "Value":
        return self._lift(base) ** self

    # -- elementary functions ----------------------------------------------

    def exp(self) -> "Value":
        """e^x; its derivative is e^x itself."""
        out = math.exp(self.data)
        return Value(out, op="exp", parents=((self, out),))

    def log(self) -> "Value":
        """Natural logarithm; derivative 1/x."""
        return Value(math.log(self.data), op="log", parents=((self, 1.0 / self.data),))

    def sin(self) -> "Value":
        """sin x; derivative cos x."""
        return Value(math.sin(self.data), op="sin", parents=((self, math.cos(self.data)),))

    def cos(self) -> "Value":
        """cos x; derivative -sin x."""
        return Value(math.cos(self.data), op="cos", parents=((self, -math.sin(self.data)),))

    def tanh(self) -> "Value":
        """tanh x; derivative 1 - tanh(x)^2."""
        out = math.tanh(self.data)
        return Value(out, op="tanh", parents=((self, 1.0 - out * out),))

    def sigmoid(self) -> "Value":
        """1 / (1 + e^-x), computed without overflow; derivative s (1 - s)."""
        out = reference.sigmoid(self.data)
        return Value(out, op="sigmoid", parents=((self, out * (1.0 - out)),))

    def relu(self) -> "Value":
        """max(x, 0); derivative 1 for x > 0 and 0 otherwise (0 at x = 0)."""
        positive = self.data > 0
        return Value(self.data if positive else 0.0, op="relu",
                     parents=((self, 1.0 if positive else 0.0),))

    def identity(self) -> "Value":
        """x itself, as a node of its own; derivative 1."""
        return Value(self.data, op="identity", parents=((self, 1.0),))

    # -- differentiation ---------------------------------------------------

    def topological_order(self) -> list["Value"]:
        """Every node this one depends on (itself included), parents first.

        Iterative depth-first search, so deep graphs do not hit Python's
        recursion limit.
        """
        order: list[Value] = []
        seen = {id(self)}
        stack = [(self, iter(self.parents))]
        while stack:
            node, pending = stack[-1]
            for parent, _ in pending:
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((parent, iter(parent.parents)))
                    break
            else:
                stack.pop()
                order.append(node)
        return order

    def backward(self) -> None:
        """Set ``grad`` of every node in the graph to d(self)/d(node).

        All gradients in the graph are first reset to zero (so calling
        ``backward`` twice gives the same result), ``self.grad`` is set to 1,
        and the nodes are visited from this one back to the leaves, each
        adding ``local derivative * its own grad`` to each parent. A node is
        only visited once all nodes that use it have been, so its gradient is
        complete (summed over every path) before it is passed on.
        """
        order = self.topological_order()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad += local * node.grad


class Path(NamedTuple):
    """One path from a leaf to the output of a graph.

    Attributes
    ----------
    nodes : tuple of Value
        From the leaf to the output.
    local_derivatives : tuple of float
        ``local_derivatives[i]`` is d nodes[i+1] / d nodes[i].
    product : float
        The product of the local derivatives: this path's share of the
        gradient.
    """

    nodes: tuple[Value, ...]
    local_derivatives: tuple[float, ...]
    product: float

    def describe(self, digits: int = 6) -> str:
        """The path as text, e.g. ``w -> h -> L: 2 * 3 = 6``."""
        names = " -> ".join(node.name for node in self.nodes)
        factors = " * ".join(format(d, f".{digits}g") for d in self.local_derivatives)
        return f"{names}: {factors} = {format(self.product, f'.{digits}g')}"


def paths(output: Value, leaf: Value) -> list[Path]:
    """Every path from ``leaf`` to ``output`` with the product of its local derivatives.

    The sum of the products is d output / d leaf, which is what
    ``output.backward()`` leaves in ``leaf.grad``. The number of paths can
    grow exponentially with depth, so this is for small graphs.

    Parameters
    ----------
    output : Value
    leaf : Value

    Returns
    -------
    list of Path
    """
    found: list[Path] = []
    # Walk from the output towards the leaves, carrying the path so far.
    stack: list[tuple[Value, tuple[Value, ...], tuple[float, ...]]] = [(output, (output,), ())]
    while stack:
        node, nodes, derivatives = stack.pop()
        if node is leaf:
            product = math.prod(derivatives) if derivatives else 1.0
            found.append(Path(nodes[::-1], derivatives[::-1], product))
            continue
        for parent, local in reversed(node.parents):
            stack.append((parent, nodes + (parent,), derivatives + (local,)))
    return found


def mlp_loss(weights: Sequence[reference._Matrix], biases: Sequence[Sequence[float]],
             X: reference._Matrix, y: reference._Targets,
             activation: reference._Activation = "sigmoid", output: str = "sigmoid",
             loss: Optional[str] = "squared_error",
             sample_weight: Optional[Sequence[float]] = None,
             ) -> tuple[Value, list[list[list[Value]]], list[list[Value]]]:
    """An MLP's batch loss built from scalar :class:`Value` nodes.

    Same semantics as :func:`pybackprop.reference.loss_and_grad`, but every
    multiplication and addition is a node of the graph, so ``L.backward()``
    fills the gradients of the returned parameter nodes by the plain chain
    rule, without any hand-derived layer formula.

    Parameters
    ----------
    weights, biases, X, y, activation, output, loss, sample_weight
        As for :func:`pybackprop.reference.loss_and_grad` (numbers, not
        Values).

    Returns
    -------
    L : Value
        The batch loss.
    W : list
        ``W[l][j][k]`` is the leaf Value of ``weights[l][j][k]``, labelled
        e.g. "W0[1,0]".
    b : list
        ``b[l][j]`` is the leaf Value of ``biases[l][j]``.
    """
    sizes = reference._check_parameters(weights, biases)
    hidden, output, loss = reference._check_config(len(weights), sizes[-1], activation,
                                                   output, loss)
    reference._check_inputs(X, sizes[0])
    targets = reference._target_rows(y, len(X), sizes[-1], loss)
    sw = reference._sample_weights(sample_weight, len(X))

    W = [[[Value(w, f"W{l}[{j},{k}]") for k, w in enumerate(row)] for j, row in enumerate(Wl)]
         for l, Wl in enumerate(weights)]
    b = [[Value(v, f"b{l}[{j}]") for j, v in enumerate(bl)] for l, bl in enumerate(biases)]

    total = Value(0.0, "0")
    for x, t, w in zip(X, targets, sw):
        a = [Value(v, f"x{k}") for k, v in enumerate(x)]
        for l in range(len(W)):
            z = [sum((W[l][j][k] * a[k] for k in range(len(a))), b[l][j]) for j in range(len(W[l]))]
            if l < len(W) - 1:
                a = [getattr(zj, hidden[l])() for zj in z]
        # z is now the output layer's pre-activation
        if loss == "squared_error":
            out = [getattr(zj, output)() for zj in z]
            sample = 0.5 * sum(((ok - tk) ** 2 for ok, tk in zip(out, t)), Value(0.0, "0"))
        elif loss == "binary_cross_entropy":
            # -[t log s + (1-t) log(1-s)] with log s = -softplus(-z), log(1-s) = -softplus(z)
            sample = sum((tk * _softplus(-zk) + (1.0 - tk) * _softplus(zk)
                          for zk, tk in zip(z, t)), Value(0.0, "0"))
        else:
            # shifting by the constant max(z) changes no derivative and avoids overflow
            m = max(zk.data for zk in z)
            lse = sum(((zk - m).exp() for zk in z), Value(0.0, "0")).log() + m
            sample = sum((tk * (lse - zk) for zk, tk in zip(z, t)), Value(0.0, "0"))
        total = total + w * sample
    return total / math.fsum(sw), W, b


def _softplus(z: Value) -> Value:
    """log(1 + e^z) as graph nodes: max(z, 0) + log(1 + e^-|z|), no overflow."""
    if z.data > 0:
        return z + (1.0 + (-z).exp()).log()
    return (1.0 + z.exp()).log()
