"""Backpropagation on a scalar computational graph, example by example.

Run as a script: ``python examples/computational_graph.py``.

1. c = (2a)^2: the chain rule through two nodes gives dc/da = 8a.
2. A weight that reaches the loss along two paths: its gradient is the sum
   of the products of local derivatives along each path.
3. The eight-parameter chain
   f(x) = b3 + w3 cos(b2 + w2 exp(b1 + w1 sin(b0 + w0 x)))
   with loss sum_i (f(x_i) - y_i)^2: all eight derivatives, against central
   finite differences.
4. The 2-2-1 sigmoid network built from scalars gives the same numbers as
   pybackprop.reference.loss_and_grad.
"""
import math

from pybackprop import reference
from pybackprop.graph import Value, mlp_loss, paths

CHAIN_PARAMS = {"w0": 0.5, "b0": 0.1, "w1": -0.3, "b1": 0.2,
                "w2": 0.7, "b2": -0.4, "w3": 1.2, "b3": 0.3}
CHAIN_X = [0.0, 0.5, 1.0, 1.5]
CHAIN_Y = [1.0, 0.8, 0.3, -0.2]


def chain_loss(params, xs=CHAIN_X, ys=CHAIN_Y):
    """sum_i (f(x_i) - y_i)^2 for the eight-parameter chain; params are Values or floats."""
    p = params
    total = 0.0
    for x, y in zip(xs, ys):
        inner = p["b1"] + p["w1"] * _sin(p["b0"] + p["w0"] * x)
        f = p["b3"] + p["w3"] * _cos(p["b2"] + p["w2"] * _exp(inner))
        total = total + (f - y) ** 2
    return total


def _sin(v):
    return v.sin() if isinstance(v, Value) else math.sin(v)


def _cos(v):
    return v.cos() if isinstance(v, Value) else math.cos(v)


def _exp(v):
    return v.exp() if isinstance(v, Value) else math.exp(v)


def square_of_double(a=3.0):
    """Example 1: returns (c, dc/da) for c = (2a)^2."""
    a = Value(a, "a")
    c = (2 * a) ** 2
    c.backward()
    return c.data, a.grad


def two_paths():
    """Example 2: h = w x feeds two outputs; L = 0.5 (o1 - 1)^2 + 0.5 (o2 - 0)^2.

    Returns (w, L, list of Path).
    """
    x, w = Value(2.0, "x"), Value(0.5, "w")
    v1, v2 = Value(3.0, "v1"), Value(-1.0, "v2")
    h = w * x
    h.label = "h"
    o1, o2 = h * v1, h * v2
    o1.label, o2.label = "o1", "o2"
    e1, e2 = o1 - 1.0, o2 - 0.0
    e1.label, e2.label = "e1", "e2"
    s1, s2 = e1 ** 2, e2 ** 2
    s1.label, s2.label = "e1^2", "e2^2"
    l1, l2 = 0.5 * s1, 0.5 * s2
    l1.label, l2.label = "0.5 e1^2", "0.5 e2^2"
    L = l1 + l2
    L.label = "L"
    L.backward()
    return w, L, paths(L, w)


def chain_gradients():
    """Example 3: (loss, {name: backprop gradient}, {name: central difference})."""
    params = {name: Value(v, name) for name, v in CHAIN_PARAMS.items()}
    L = chain_loss(params)
    L.backward()
    eps = 1e-6
    numeric = {}
    for name, value in CHAIN_PARAMS.items():
        up = dict(CHAIN_PARAMS, **{name: value + eps})
        down = dict(CHAIN_PARAMS, **{name: value - eps})
        numeric[name] = (chain_loss(up) - chain_loss(down)) / (2 * eps)
    return L.data, {name: v.grad for name, v in params.items()}, numeric


def network_221():
    """Example 4: (graph loss, graph grads, reference loss, reference grads) for 2-2-1."""
    t = reference.textbook_221()
    kw = dict(activation=t["activation"], output=t["output"], loss=t["loss"])
    L, W, b = mlp_loss(t["weights"], t["biases"], [t["x"]], [t["y"]], **kw)
    L.backward()
    graph_grads = ([[[w.grad for w in row] for row in Wl] for Wl in W],
                   [[v.grad for v in bl] for bl in b])
    ref_loss, ref_W, ref_b = reference.loss_and_grad(t["weights"], t["biases"], [t["x"]],
                                                     [t["y"]], **kw)
    return L.data, graph_grads, ref_loss, (ref_W, ref_b)


def main():
    print("1. c = (2a)^2 at a = 3")
    c, grad = square_of_double(3.0)
    print(f"   c = {c:g}, dc/da = {grad:g} (8a = {8 * 3.0:g})")

    print("\n2. w reaches the loss along two paths (x = 2, w = 0.5, v1 = 3, v2 = -1)")
    w, L, found = two_paths()
    print(f"   L = {L.data:g}")
    for i, path in enumerate(found, start=1):
        print(f"   path {i}: {path.describe()}")
    total = " + ".join(f"{p.product:g}" for p in found)
    print(f"   sum of path products: {total} = {sum(p.product for p in found):g}; "
          f"backward() gives dL/dw = {w.grad:g}")

    print("\n3. f(x) = b3 + w3 cos(b2 + w2 exp(b1 + w1 sin(b0 + w0 x))), "
          "L = sum_i (f(x_i) - y_i)^2")
    loss, grads, numeric = chain_gradients()
    print(f"   x = {CHAIN_X}, y = {CHAIN_Y}; L = {loss:.12g}")
    print(f"   {'param':>5} {'value':>6} {'backprop dL/dp':>20} {'central difference':>20} "
          f"{'rel. error':>10}")
    for name, value in CHAIN_PARAMS.items():
        g, n = grads[name], numeric[name]
        err = abs(g - n) / max(abs(g), abs(n), 1e-12)
        print(f"   {name:>5} {value:>6g} {g:>20.12f} {n:>20.12f} {err:>10.1e}")

    print("\n4. the 2-2-1 sigmoid network from scalars vs pybackprop.reference")
    loss, (gW, gb), ref_loss, (rW, rb) = network_221()
    print(f"   loss    graph {loss:.10f}   reference {ref_loss:.10f}")
    for l in range(2):
        print(f"   dL/dW{l + 1}  graph     {_round(gW[l])}\n          reference {_round(rW[l])}")
        print(f"   dL/db{l + 1}  graph     {_round(gb[l])}\n          reference {_round(rb[l])}")


def _round(values, digits=12):
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    return round(values, digits)


if __name__ == "__main__":
    main()
