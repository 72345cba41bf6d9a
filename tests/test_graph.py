"""Tests for pybackprop.graph, the scalar computational-graph engine."""
import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest

from pybackprop import reference as ref
from pybackprop.graph import Path as GraphPath
from pybackprop.graph import Value, mlp_loss, paths

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def central_difference(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


# ------------------------------------------------------------- the worked examples


@pytest.mark.parametrize("a", [3.0, -1.5, 0.0, 0.25])
def test_square_of_double(a):
    # c = (2a)^2 = 4a^2, dc/da = 8a
    node = Value(a, "a")
    c = (2 * node) ** 2
    c.backward()
    assert c.data == 4 * a * a
    assert node.grad == 8 * a


def build_two_paths():
    """h = w x feeds o1 = v1 h and o2 = v2 h; L = 0.5 (o1 - 1)^2 + 0.5 (o2 - 0)^2."""
    x, w, v1, v2 = Value(2.0, "x"), Value(0.5, "w"), Value(3.0, "v1"), Value(-1.0, "v2")
    h = w * x
    L = 0.5 * (h * v1 - 1.0) ** 2 + 0.5 * (h * v2 - 0.0) ** 2
    return w, x, L


def test_weight_reaching_the_loss_along_two_paths():
    w, x, L = build_two_paths()
    L.backward()
    assert L.data == 2.5  # 0.5 * 2^2 + 0.5 * (-1)^2
    found = paths(L, w)
    assert len(found) == 2
    # path 1: dh/dw * do1/dh * de1/do1 * ds1/de1 * dl1/ds1 * dL/dl1 = 2 * 3 * 1 * 4 * 0.5 * 1
    # path 2: 2 * (-1) * 1 * (-2) * 0.5 * 1
    assert sorted(p.local_derivatives for p in found) == sorted([
        (2.0, 3.0, 1.0, 4.0, 0.5, 1.0), (2.0, -1.0, 1.0, -2.0, 0.5, 1.0)])
    assert sorted(p.product for p in found) == [2.0, 12.0]
    assert w.grad == 14.0 == sum(p.product for p in found)
    assert all(p.nodes[0] is w and p.nodes[-1] is L for p in found)
    # x reaches L along the same two paths, with dh/dx = w = 0.5 in place of 2
    assert x.grad == 3.5 == sum(p.product for p in paths(L, x))


def test_path_describe():
    a = Value(3.0, "a")
    b = 2 * a
    b.label = "b"
    c = b ** 2
    c.label = "c"
    (path,) = paths(c, a)
    assert isinstance(path, GraphPath)
    assert path.describe() == "a -> b -> c: 2 * 12 = 24"


CHAIN = {"w0": 0.5, "b0": 0.1, "w1": -0.3, "b1": 0.2, "w2": 0.7, "b2": -0.4, "w3": 1.2, "b3": 0.3}
XS = [0.0, 0.5, 1.0, 1.5]
YS = [1.0, 0.8, 0.3, -0.2]


def chain_loss(p):
    total = 0.0
    for x, y in zip(XS, YS):
        if isinstance(p["w0"], Value):
            f = p["b3"] + p["w3"] * (p["b2"] + p["w2"] * (
                p["b1"] + p["w1"] * (p["b0"] + p["w0"] * x).sin()).exp()).cos()
        else:
            f = p["b3"] + p["w3"] * math.cos(p["b2"] + p["w2"] * math.exp(
                p["b1"] + p["w1"] * math.sin(p["b0"] + p["w0"] * x)))
        total = total + (f - y) ** 2
    return total


def chain_closed_form(p):
    """The eight derivatives derived by hand: each parameter's is the one before
    multiplied by the next local derivative down the chain."""
    g = dict.fromkeys(p, 0.0)
    for x, y in zip(XS, YS):
        u0 = p["b0"] + p["w0"] * x
        u1 = p["b1"] + p["w1"] * math.sin(u0)
        u2 = p["b2"] + p["w2"] * math.exp(u1)
        f = p["b3"] + p["w3"] * math.cos(u2)
        d_f = 2 * (f - y)
        d_u2 = d_f * p["w3"] * -math.sin(u2)
        d_u1 = d_u2 * p["w2"] * math.exp(u1)
        d_u0 = d_u1 * p["w1"] * math.cos(u0)
        g["b3"] += d_f
        g["w3"] += d_f * math.cos(u2)
        g["b2"] += d_u2
        g["w2"] += d_u2 * math.exp(u1)
        g["b1"] += d_u1
        g["w1"] += d_u1 * math.sin(u0)
        g["b0"] += d_u0
        g["w0"] += d_u0 * x
    return g


# The eight derivatives at CHAIN, XS, YS (from the closed form, 12 decimals).
CHAIN_GRADIENTS = {"w0": 0.436967866906, "b0": 0.517626224401, "w1": -1.093646091207,
                   "b1": -2.117636190692, "w2": -3.025194558131, "b2": -2.898669643258,
                   "w3": 7.196675148513, "b3": 7.599862266241}


def test_eight_parameter_chain():
    params = {name: Value(v, name) for name, v in CHAIN.items()}
    L = chain_loss(params)
    L.backward()
    assert L.data == pytest.approx(chain_loss(CHAIN), rel=1e-15)
    assert L.data == pytest.approx(4.56152109956, abs=1e-11)
    closed = chain_closed_form(CHAIN)
    for name, value in CHAIN.items():
        grad = params[name].grad
        assert grad == pytest.approx(closed[name], rel=1e-13)
        assert grad == pytest.approx(CHAIN_GRADIENTS[name], abs=1e-12)
        numeric = central_difference(lambda v: chain_loss(dict(CHAIN, **{name: v})), value)
        assert abs(grad - numeric) <= 1e-7 * abs(numeric)


def test_221_network_matches_reference():
    t = ref.textbook_221()
    kw = dict(activation=t["activation"], output=t["output"], loss=t["loss"])
    L, W, b = mlp_loss(t["weights"], t["biases"], [t["x"]], [t["y"]], **kw)
    L.backward()
    loss, gW, gb = ref.loss_and_grad(t["weights"], t["biases"], [t["x"]], [t["y"]], **kw)
    assert L.data == pytest.approx(loss, rel=1e-14)
    assert L.data == pytest.approx(0.0042883501, abs=1e-10)
    for l in range(2):
        assert [v.grad for v in b[l]] == pytest.approx(gb[l], rel=1e-13)
        for row, ref_row in zip(W[l], gW[l]):
            assert [v.grad for v in row] == pytest.approx(ref_row, rel=1e-13)
    assert [v.grad for v in W[1][0]] == pytest.approx([-0.0112451094, -0.0117965398], abs=1e-10)
    assert [v.grad for v in W[0][0]] == pytest.approx([-0.0013945592, -0.0008367355], abs=1e-10)
    assert W[0][1][0].label == "W0[1,0]" and b[1][0].label == "b1[0]"


@pytest.mark.parametrize("activation,pair", list(itertools.product(
    ref.HIDDEN_ACTIVATIONS, ref.VALID_PAIRS)))
def test_graph_network_matches_reference_for_every_combination(activation, pair):
    output, loss = pair
    weights = [[[0.3, -0.8, 0.5], [0.9, 0.2, -0.4]], [[0.7, -0.6], [-0.5, 0.4], [0.2, 0.8]]]
    biases = [[0.1, -0.2], [0.05, 0.0, -0.1]]
    X = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.4, 0.9]]
    y = [2, 0, 1] if loss == "cross_entropy" else [[0.1, 0.9, 0.5], [0.3, 0.0, 1.0], [0.6, 0.2, 0.4]]
    sw = [1.0, 0.5, 2.0]
    kw = dict(activation=activation, output=output, loss=loss, sample_weight=sw)
    L, W, b = mlp_loss(weights, biases, X, y, **kw)
    L.backward()
    loss_value, gW, gb = ref.loss_and_grad(weights, biases, X, y, **kw)
    assert L.data == pytest.approx(loss_value, rel=1e-13)
    for l in range(2):
        assert [v.grad for v in b[l]] == pytest.approx(gb[l], rel=1e-12, abs=1e-15)
        for row, ref_row in zip(W[l], gW[l]):
            assert [v.grad for v in row] == pytest.approx(ref_row, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------- each operation


UNARY = [
    ("exp", math.exp, 0.7), ("log", math.log, 1.3), ("sin", math.sin, 0.4),
    ("cos", math.cos, 0.4), ("tanh", math.tanh, -0.6),
    ("sigmoid", lambda v: 1 / (1 + math.exp(-v)), 0.8),
    ("relu", lambda v: max(v, 0.0), 0.9), ("relu", lambda v: max(v, 0.0), -0.9),
    ("identity", lambda v: v, 2.5),
]


@pytest.mark.parametrize("name,f,x", UNARY)
def test_unary_operations(name, f, x):
    node = Value(x)
    out = getattr(node, name)()
    out.backward()
    assert out.data == pytest.approx(f(x), rel=1e-15)
    assert node.grad == pytest.approx(central_difference(f, x), rel=1e-8, abs=1e-12)


# (operation, d out/da, d out/db) at a = 3, b = 2
BINARY = {
    "add": (lambda a, b: a + b, 1.0, 1.0),
    "sub": (lambda a, b: a - b, 1.0, -1.0),
    "mul": (lambda a, b: a * b, 2.0, 3.0),
    "div": (lambda a, b: a / b, 1 / 2, -3 / 4),            # 1/b, -a/b^2
    "pow": (lambda a, b: a ** b, 2 * 3.0, 9 * math.log(3)),  # b a^(b-1), a^b log a
}


@pytest.mark.parametrize("name", BINARY)
def test_binary_operations_with_values(name):
    op, da, db = BINARY[name]
    a, b = Value(3.0), Value(2.0)
    out = op(a, b)
    out.backward()
    assert out.data == op(3.0, 2.0)
    assert (a.grad, b.grad) == pytest.approx((da, db), rel=1e-15)


def test_reflected_operators_and_negation():
    a = Value(4.0)
    cases = [(2 * a, 8.0, 2.0), (a * 2, 8.0, 2.0), (1 + a, 5.0, 1.0), (a + 1, 5.0, 1.0),
             (10 - a, 6.0, -1.0), (a - 10, -6.0, 1.0), (8 / a, 2.0, -0.5), (a / 8, 0.5, 0.125),
             (-a, -4.0, -1.0), (a ** 0.5, 2.0, 0.25), (a ** -1, 0.25, -1 / 16), (2 ** a, 16.0,
                                                                                  16 * math.log(2))]
    for out, value, grad in cases:
        out.backward()
        assert out.data == pytest.approx(value, rel=1e-15)
        assert a.grad == pytest.approx(grad, rel=1e-15)


def test_a_node_used_twice_sums_its_paths():
    a = Value(3.0)
    out = a * a + a  # d/da = 2a + 1
    out.backward()
    assert a.grad == 7.0
    assert len(paths(out, a)) == 3


def test_backward_twice_gives_the_same_gradients():
    a, b = Value(1.5), Value(-0.5)
    out = (a * b).tanh() + a.exp()
    out.backward()
    first = (a.grad, b.grad)
    out.backward()
    assert (a.grad, b.grad) == first
    assert a.grad == pytest.approx((1 - math.tanh(-0.75) ** 2) * -0.5 + math.exp(1.5), rel=1e-15)


def test_deep_graph_does_not_hit_recursion_limit():
    x = Value(1.0)
    out = x
    for _ in range(5 * sys.getrecursionlimit()):
        out = out * 1.0 + 0.0
    out.backward()
    assert x.grad == 1.0


def test_sigmoid_is_stable_for_huge_inputs():
    for z in (-1000.0, 1000.0):
        node = Value(z)
        out = node.sigmoid()
        out.backward()
        assert out.data == (0.0 if z < 0 else 1.0)
        assert node.grad == 0.0


def test_power_with_value_exponent_of_negative_base_has_nan_exponent_derivative():
    a, p = Value(-2.0), Value(2.0)
    out = a ** p
    out.backward()
    assert out.data == 4.0 and a.grad == -4.0 and math.isnan(p.grad)


def test_repr():
    a = Value(2.0, "a")
    assert repr(a) == "Value('a', data=2.0, grad=0.0)"
    assert repr(a * 3) == "Value(data=6.0, grad=0.0)"


# ------------------------------------------------------------- the example script


def test_computational_graph_example_runs_and_prints_the_results():
    result = subprocess.run([sys.executable, str(EXAMPLES / "computational_graph.py")],
                            capture_output=True, text=True, check=True)
    out = result.stdout
    assert "c = 36, dc/da = 24 (8a = 24)" in out
    assert "2 * 3 * 1 * 4 * 0.5 * 1 = 12" in out and "2 * -1 * 1 * -2 * 0.5 * 1 = 2" in out
    assert "sum of path products: 12 + 2 = 14; backward() gives dL/dw = 14" in out
    for name, grad in CHAIN_GRADIENTS.items():
        assert f"{grad:.12f}" in out, name
    assert "loss    graph 0.0042883501   reference 0.0042883501" in out


def test_textbook_example_runs_and_prints_the_worked_example():
    result = subprocess.run([sys.executable, str(EXAMPLES / "textbook_221.py")],
                            capture_output=True, text=True, check=True)
    out = result.stdout
    assert "z[1][0] = W[1][0][0]*a[0][0] + W[1][0][1]*a[0][1] + b[1][0]" in out
    assert "loss   0.0042883501" in out
    assert "dL/dW1  [[-0.0013945592, -0.0008367355], [-0.0015879993, -0.0009527996]]" in out
    assert "dL/dW2  [[-0.0112451094, -0.0117965398]]" in out
    assert "dL/db1  [-0.0027891183, -0.0031759986]" in out
