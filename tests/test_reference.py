"""Tests for pybackprop.reference, the plain-Python oracle.

The reference is checked against the published 2-2-1 worked example and
against fourth-order central finite differences of its own loss, for every
valid combination of activation, output and loss.
"""
import ast
import itertools
import json
import math
import random
import sys
from pathlib import Path

import pytest

from pybackprop import reference as ref

HIDDEN = ref.HIDDEN_ACTIVATIONS
PAIRS = ref.VALID_PAIRS


# ------------------------------------------------------------- helpers


def random_problem(seed, sizes, output, loss, n=5, activation="tanh"):
    """Random weights, inputs and suitable targets, with every ReLU pre-activation
    at least 0.05 away from its kink (so finite differences are valid)."""
    rng = random.Random(seed)
    for _ in range(200):
        weights = [[[rng.uniform(-1, 1) for _ in range(n_in)] for _ in range(n_out)]
                   for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        biases = [[rng.uniform(-0.5, 0.5) for _ in range(n_out)] for n_out in sizes[1:]]
        X = [[rng.gauss(0, 1) for _ in range(sizes[0])] for _ in range(n)]
        zs, _ = ref.forward(weights, biases, X, activation, output)
        acts = [activation] * (len(sizes) - 2) if isinstance(activation, str) else activation
        margin = min((abs(z) for l, act in enumerate(acts) if act == "relu"
                      for row in zs[l] for z in row), default=1.0)
        if margin > 0.05:
            break
    else:  # pragma: no cover - would mean the generator is broken
        raise AssertionError("no kink-free ReLU problem found")
    n_out = sizes[-1]
    if loss == "cross_entropy":
        y = [rng.randrange(n_out) for _ in range(n)]
    elif output == "sigmoid":
        y = [[rng.random() for _ in range(n_out)] for _ in range(n)]
    else:
        y = [[rng.gauss(0, 1) for _ in range(n_out)] for _ in range(n)]
    return weights, biases, X, y


def finite_difference_grads(weights, biases, X, y, h=1e-3, **kw):
    """Fourth-order central differences of ref.loss: error O(h^4), so a large h
    keeps rounding noise (~1e-16 / h) down as well."""
    def diff(array, index):
        saved = array[index]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            array[index] = saved + step
            values.append(ref.loss(weights, biases, X, y, **kw))
        array[index] = saved
        f2, f1, fm1, fm2 = values
        return (-f2 + 8 * f1 - 8 * fm1 + fm2) / (12 * h)

    gW = [[[diff(row, k) for k in range(len(row))] for row in W] for W in weights]
    gb = [[diff(b, j) for j in range(len(b))] for b in biases]
    return gW, gb


def flat(nested):
    if isinstance(nested, (int, float)):
        return [nested]
    return [v for item in nested for v in flat(item)]


def max_rel_error(a, b, floor=1e-5):
    return max(abs(x - y) / max(abs(x), abs(y), floor) for x, y in zip(flat(a), flat(b)))


# ------------------------------------------------------------- textbook 2-2-1


TEXTBOOK = dict(
    output=0.7073895241, loss=0.0042883501,
    dW2=[[-0.0112451094, -0.0117965398]], db2=[-0.0191694040],
    dW1=[[-0.0013945592, -0.0008367355], [-0.0015879993, -0.0009527996]],
    db1=[-0.0027891183, -0.0031759986],
)


def test_textbook_221_values():
    t = ref.textbook_221()
    assert t["x"] == [0.5, 0.3] and t["y"] == 0.8
    kw = dict(activation=t["activation"], output=t["output"], loss=t["loss"])
    loss, gW, gb = ref.loss_and_grad(t["weights"], t["biases"], [t["x"]], [t["y"]], **kw)
    assert ref.predict(t["weights"], t["biases"], t["x"], t["activation"], t["output"]) == \
        pytest.approx([TEXTBOOK["output"]], abs=1e-9)
    assert loss == pytest.approx(TEXTBOOK["loss"], abs=1e-9)
    assert flat(gW[1]) == pytest.approx(flat(TEXTBOOK["dW2"]), abs=1e-9)
    assert gb[1] == pytest.approx(TEXTBOOK["db2"], abs=1e-9)
    assert flat(gW[0]) == pytest.approx(flat(TEXTBOOK["dW1"]), abs=1e-9)
    assert gb[0] == pytest.approx(TEXTBOOK["db1"], abs=1e-9)


def test_textbook_forward_intermediates():
    t = ref.textbook_221()
    zs, acts = ref.forward(t["weights"], t["biases"], [t["x"]], "sigmoid", "sigmoid")
    assert zs[0][0] == pytest.approx([0.35, 0.47], abs=1e-15)
    assert acts[0][0] == pytest.approx([1 / (1 + math.exp(-0.35)), 1 / (1 + math.exp(-0.47))],
                                       abs=1e-15)
    assert zs[1][0][0] == pytest.approx(0.6 * acts[0][0][0] + 0.7 * acts[0][0][1] + 0.1, abs=1e-15)
    assert acts[1][0][0] == pytest.approx(TEXTBOOK["output"], abs=1e-9)


def test_computation_steps_match_loss_and_grad():
    t = ref.textbook_221()
    steps = ref.computation_steps(**t)
    json.dumps(steps)  # JSON-serialisable for the HTML page
    assert {s["kind"] for s in steps} == {"z", "a", "loss", "dL/da", "dL/dz", "dL/dW", "dL/db"}
    assert all(set(s) == {"phase", "kind", "layer", "neuron", "input", "symbol", "description",
                          "formula", "expression", "value"} for s in steps)
    by_symbol = {s["symbol"]: s["value"] for s in steps}
    _, gW, gb = ref.loss_and_grad(t["weights"], t["biases"], [t["x"]], [t["y"]],
                                  t["activation"], t["output"], t["loss"])
    assert by_symbol["L"] == pytest.approx(TEXTBOOK["loss"], abs=1e-9)
    assert by_symbol["a[2][0]"] == pytest.approx(TEXTBOOK["output"], abs=1e-9)
    assert by_symbol["z[1][1]"] == pytest.approx(0.47, abs=1e-15)
    assert by_symbol["dL/da[2][0]"] == pytest.approx(TEXTBOOK["output"] - 0.8, abs=1e-9)
    for l in (1, 2):
        for j, row in enumerate(gW[l - 1]):
            assert by_symbol[f"dL/db[{l}][{j}]"] == pytest.approx(gb[l - 1][j], rel=1e-14)
            assert by_symbol[f"dL/dz[{l}][{j}]"] == pytest.approx(gb[l - 1][j], rel=1e-14)
            for k, g in enumerate(row):
                assert by_symbol[f"dL/dW[{l}][{j}][{k}]"] == pytest.approx(g, rel=1e-14)
    # forward steps come first, the loss between the passes
    phases = [s["phase"] for s in steps]
    assert phases == sorted(phases, key=["forward", "backward"].index)
    assert steps[phases.index("backward") - 1]["kind"] == "loss"
    dW = next(s for s in steps if s["symbol"] == "dL/dW[1][0][1]")
    assert (dW["layer"], dW["neuron"], dW["input"]) == (1, 0, 1)


def test_explain_prints_worked_example():
    text = ref.explain(**ref.textbook_221())
    for expected in ["z[1][0] = W[1][0][0]*a[0][0] + W[1][0][1]*a[0][1] + b[1][0]",
                     "= 0.2*0.5 + 0.5*0.3 + 0.1 = 0.35",
                     "sigmoid(0.882739) = 0.70739",
                     "= 0.5 * ((0.70739 - 0.8)^2) = 0.00428835",
                     "dL/dz[2][0] = dL/da[2][0] * a[2][0]*(1 - a[2][0])",
                     "= (-0.0191694) * 0.586618 = -0.0112451",
                     "dL/dW[1][0][0] = dL/dz[1][0] * a[0][0]",
                     "= (-0.00278912) * 0.5 = -0.00139456",
                     "Forward pass", "Backward pass"]:
        assert expected in text
    assert "0.0042883501" in ref.explain(**ref.textbook_221(), digits=11)


@pytest.mark.parametrize("output,loss", PAIRS)
def test_steps_agree_with_loss_and_grad_for_every_pair(output, loss):
    sizes = [3, 4, 3]
    weights, biases, X, y = random_problem(7, sizes, output, loss, n=1, activation="relu")
    steps = ref.computation_steps(weights, biases, X[0], y[0], "relu", output, loss)
    json.dumps(steps)
    value, gW, gb = ref.loss_and_grad(weights, biases, X, y, "relu", output, loss)
    got = {s["symbol"]: s["value"] for s in steps}
    assert got["L"] == pytest.approx(value, rel=1e-14)
    for l, (W, b) in enumerate(zip(gW, gb), start=1):
        for j in range(len(b)):
            assert got[f"dL/db[{l}][{j}]"] == pytest.approx(b[j], rel=1e-13, abs=1e-15)
            for k in range(len(W[j])):
                assert got[f"dL/dW[{l}][{j}][{k}]"] == pytest.approx(W[j][k], rel=1e-13, abs=1e-15)


# ------------------------------------------------------------- finite differences


@pytest.mark.parametrize("activation,pair", list(itertools.product(HIDDEN, PAIRS)))
def test_gradient_matches_finite_differences(activation, pair):
    output, loss = pair
    sizes = [3, 4, 3, 3]
    weights, biases, X, y = random_problem(11, sizes, output, loss, activation=activation)
    kw = dict(activation=activation, output=output, loss=loss)
    _, gW, gb = ref.loss_and_grad(weights, biases, X, y, **kw)
    nW, nb = finite_difference_grads(weights, biases, X, y, **kw)
    assert max_rel_error(gW, nW) < 1e-7
    assert max_rel_error(gb, nb) < 1e-7


@pytest.mark.parametrize("output,loss", PAIRS)
def test_per_layer_activations_and_sample_weights_match_finite_differences(output, loss):
    sizes = [2, 3, 4, 3, 2]
    acts = ["sigmoid", "relu", "tanh"]
    weights, biases, X, y = random_problem(3, sizes, output, loss, n=6, activation=acts)
    sw = [0.5, 2.0, 0.0, 1.5, 3.0, 0.25]
    kw = dict(activation=acts, output=output, loss=loss, sample_weight=sw)
    _, gW, gb = ref.loss_and_grad(weights, biases, X, y, **kw)
    nW, nb = finite_difference_grads(weights, biases, X, y, **kw)
    assert max_rel_error(gW, nW) < 1e-7
    assert max_rel_error(gb, nb) < 1e-7
    # all four hidden activations in one network
    sizes = [2, 3, 3, 3, 3, 2]
    acts = ["identity", "tanh", "relu", "sigmoid"]
    weights, biases, X, y = random_problem(4, sizes, output, loss, activation=acts)
    kw = dict(activation=acts, output=output, loss=loss)
    _, gW, gb = ref.loss_and_grad(weights, biases, X, y, **kw)
    nW, nb = finite_difference_grads(weights, biases, X, y, **kw)
    assert max_rel_error(gW + [gb], nW + [nb]) < 1e-7


def test_soft_targets_not_summing_to_one_match_finite_differences():
    # dZ = softmax * sum(y) - y is exact even when the target rows do not sum to 1
    sizes = [3, 4, 3]
    weights, biases, X, _ = random_problem(5, sizes, "softmax", "cross_entropy")
    y = [[0.2, 0.5, 0.9], [0.0, 0.0, 0.3], [1.0, 1.0, 0.0], [0.1, 0.2, 0.3], [0.0, 2.0, 0.0]]
    kw = dict(activation="tanh", output="softmax", loss="cross_entropy")
    _, gW, gb = ref.loss_and_grad(weights, biases, X, y, **kw)
    nW, nb = finite_difference_grads(weights, biases, X, y, **kw)
    assert max_rel_error(gW + [gb], nW + [nb]) < 1e-7


def test_input_grad_matches_finite_differences():
    sizes = [3, 4, 2]
    weights, biases, X, y = random_problem(9, sizes, "sigmoid", "binary_cross_entropy")
    kw = dict(activation="tanh", output="sigmoid", loss="binary_cross_entropy")
    dX = ref.input_grad(weights, biases, X, y, **kw)
    h = 1e-3
    for i, k in itertools.product(range(len(X)), range(3)):
        saved = X[i][k]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            X[i][k] = saved + step
            values.append(ref.loss(weights, biases, X, y, **kw))
        X[i][k] = saved
        numeric = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)
        assert abs(dX[i][k] - numeric) <= 1e-7 * max(abs(numeric), 1e-5)


# ------------------------------------------------------------- targets and weights


def test_int_labels_equal_one_hot_rows():
    weights, biases, X, labels = random_problem(1, [3, 4, 4], "softmax", "cross_entropy", n=7)
    one_hot = [[1.0 if k == c else 0.0 for k in range(4)] for c in labels]
    kw = dict(activation="relu", output="softmax", loss="cross_entropy")
    assert ref.loss_and_grad(weights, biases, X, labels, **kw) == \
        ref.loss_and_grad(weights, biases, X, one_hot, **kw)


def test_flat_targets_equal_a_column_when_one_output():
    weights, biases, X, y = random_problem(2, [3, 2, 1], "sigmoid", "binary_cross_entropy")
    column = [row for row in y]
    flat_y = [row[0] for row in y]
    kw = dict(activation="sigmoid", output="sigmoid", loss="binary_cross_entropy")
    assert ref.loss_and_grad(weights, biases, X, flat_y, **kw) == \
        ref.loss_and_grad(weights, biases, X, column, **kw)


def test_sample_weights():
    weights, biases, X, y = random_problem(6, [2, 3, 2], "identity", "squared_error", n=3)
    kw = dict(activation="tanh", output="identity", loss="squared_error")
    # unit weights give the plain mean
    assert ref.loss_and_grad(weights, biases, X, y, **kw, sample_weight=[1.0, 1.0, 1.0]) == \
        ref.loss_and_grad(weights, biases, X, y, **kw)
    # an integer weight equals repeating the sample
    weighted = ref.loss_and_grad(weights, biases, X, y, **kw, sample_weight=[2.0, 1.0, 0.0])
    repeated = ref.loss_and_grad(weights, biases, [X[0], X[0], X[1]], [y[0], y[0], y[1]], **kw)
    assert flat(weighted) == pytest.approx(flat(repeated), rel=1e-15, abs=1e-17)
    # the loss is a weighted mean of per-sample losses
    per_sample = [ref.loss(weights, biases, [x], [t], **kw) for x, t in zip(X, y)]
    sw = [0.5, 2.0, 1.25]
    expected = sum(w * l for w, l in zip(sw, per_sample)) / sum(sw)
    assert ref.loss(weights, biases, X, y, **kw, sample_weight=sw) == pytest.approx(expected, rel=1e-15)


def test_per_sample_loss_formulas():
    # one sample, a single-layer network: z = w.x + b is set directly
    W, b, x = [[[1.0, -2.0]]], [[0.5]], [[1.0, 0.25]]  # z = 1
    s = 1 / (1 + math.exp(-1.0))
    assert ref.loss(W, b, x, [0.25], output="identity") == pytest.approx(0.5 * 0.75 ** 2)
    assert ref.loss(W, b, x, [0.25], output="sigmoid") == pytest.approx(0.5 * (s - 0.25) ** 2)
    assert ref.loss(W, b, x, [0.25], output="sigmoid", loss="binary_cross_entropy") == \
        pytest.approx(-(0.25 * math.log(s) + 0.75 * math.log(1 - s)), rel=1e-14)
    W2, b2 = [[[1.0, 0.0], [0.0, 1.0]]], [[0.0, 0.0]]
    p = math.exp(1.0) / (math.exp(1.0) + math.exp(0.25))
    assert ref.loss(W2, b2, x, [0], output="softmax", loss="cross_entropy") == \
        pytest.approx(-math.log(p), rel=1e-14)
    assert ref.loss(W2, b2, x, [1], output="softmax", loss=None) == \
        pytest.approx(-math.log(1 - p), rel=1e-14)


def test_relu_derivative_at_zero_is_zero():
    # z = 0 exactly in the hidden layer: no gradient flows through it
    W, b = [[[1.0]], [[1.0]]], [[0.0], [0.0]]
    _, gW, gb = ref.loss_and_grad(W, b, [[0.0]], [1.0], activation="relu")
    assert gW[0] == [[0.0]] and gb[0] == [0.0]
    assert gb[1] == [-1.0]


# ------------------------------------------------------------- validation


@pytest.mark.parametrize("kw,message", [
    (dict(activation="softmax"), "valid choices: sigmoid, relu, tanh, identity"),
    (dict(activation="ReLU"), "unknown activation 'ReLU'"),
    (dict(activation=["relu", "bogus"]), "unknown activation 'bogus'"),
    (dict(activation=["relu"]), "expected 2, got 1"),
    (dict(output="tanh"), "valid choices: identity, sigmoid, softmax"),
    (dict(loss="mse"), "valid choices: squared_error, binary_cross_entropy, cross_entropy"),
    (dict(output="identity", loss="cross_entropy"), "valid combinations"),
    (dict(output="identity", loss="binary_cross_entropy"), "valid combinations"),
    (dict(output="softmax", loss="squared_error"), "valid combinations"),
    (dict(output="sigmoid", loss="cross_entropy"), "valid combinations"),
])
def test_invalid_names_and_combinations_raise(kw, message):
    weights, biases, X, y = random_problem(0, [2, 2, 2, 2], "identity", "squared_error", n=2)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ref.loss_and_grad(weights, biases, X, y, **kw)
    with pytest.raises(ValueError):
        ref.computation_steps(weights, biases, X[0], y[0], **kw)


def test_invalid_shapes_and_values_raise():
    weights, biases, X, y = random_problem(0, [2, 3, 2], "identity", "squared_error", n=2)
    with pytest.raises(ValueError, match="softmax output needs at least 2"):
        ref.loss([[[1.0]]], [[0.0]], [[1.0]], [0], output="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match="features"):
        ref.loss(weights, biases, [[1.0, 2.0, 3.0]], y[:1])
    with pytest.raises(ValueError, match="entries for 2 samples"):
        ref.loss(weights, biases, X, y[:1])
    with pytest.raises(ValueError, match="rows of 2 targets"):
        ref.loss(weights, biases, X, [0.5, 0.5])
    with pytest.raises(ValueError, match="b must have 3"):
        ref.loss(weights, [[0.0], biases[1]], X, y)
    with pytest.raises(ValueError, match="outside 0..1"):
        ref.loss(weights, biases, X, [0, 2], output="softmax", loss="cross_entropy")
    with pytest.raises(TypeError, match="integer class labels"):
        ref.loss(weights, biases, X, [0.0, 1.0], output="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match=">= 0"):
        ref.loss(weights, biases, X, y, sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="all be zero"):
        ref.loss(weights, biases, X, y, sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError, match="empty batch"):
        ref.loss(weights, biases, [], [])


# ------------------------------------------------------------- stability


@pytest.mark.parametrize("activation,pair", list(itertools.product(HIDDEN, PAIRS)))
def test_huge_preactivations_give_finite_loss_and_grads(activation, pair):
    output, loss = pair
    rng = random.Random(42)
    sizes = [3, 4, 3]
    weights = [[[rng.choice([-1e3, 1e3]) for _ in range(a)] for _ in range(b)]
               for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [[0.0] * n for n in sizes[1:]]
    X = [[1.0, -2.0, 0.5], [-3.0, 1.0, 2.0]]
    y = [0, 2] if loss == "cross_entropy" else [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    value, gW, gb = ref.loss_and_grad(weights, biases, X, y, activation, output, loss)
    assert math.isfinite(value)
    assert all(math.isfinite(v) for v in flat(gW) + flat(gb))


def test_huge_logits_give_exact_limits():
    # z = -1000 with target 1: BCE = softplus(1000) = 1000, CE likewise
    W, b, x = [[[1.0]]], [[0.0]], [[-1000.0]]
    assert ref.loss(W, b, x, [1.0], output="sigmoid", loss="binary_cross_entropy") == 1000.0
    value, gW, gb = ref.loss_and_grad(W, b, x, [1.0], output="sigmoid", loss="binary_cross_entropy")
    assert gb == [[-1.0]] and gW == [[[1000.0]]]
    W2, b2 = [[[1.0], [-1.0]]], [[0.0, 0.0]]
    assert ref.loss(W2, b2, x, [0], output="softmax", loss="cross_entropy") == 2000.0
    assert ref.predict(W2, b2, [1000.0], output="softmax") == [1.0, 0.0]
    assert ref.predict(W, b, [-800.0], output="sigmoid")[0] == pytest.approx(math.exp(-800), rel=1e-12)


# ------------------------------------------------------------- standard library only


def test_reference_imports_only_the_standard_library():
    source = Path(ref.__file__).read_text()
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the reference"
            modules.add(node.module.split(".")[0])
    assert modules, "expected at least the math import"
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)


def test_reference_names_match_the_library_definition():
    """reference.py stays standard-library only and so spells its names out;
    they must be exactly the library's, defined once in _validation."""
    from pybackprop import _validation

    assert set(ref.HIDDEN_ACTIVATIONS) == set(_validation.HIDDEN_ACTIVATIONS)
    assert set(ref.OUTPUT_ACTIVATIONS) == set(_validation.OUTPUT_ACTIVATIONS)
    assert set(ref.LOSSES) == set(_validation.LOSSES)
    assert set(ref.VALID_PAIRS) == set(_validation.VALID_PAIRS)
    assert len(ref.VALID_PAIRS) == len(set(ref.VALID_PAIRS))
    for output, loss in ref.VALID_PAIRS:
        assert _validation.check_output_loss(output, loss, 2) == (output, loss)
    for output in ref.OUTPUT_ACTIVATIONS:
        assert ref._DEFAULT_LOSS[output] == _validation.DEFAULT_LOSS[output]
