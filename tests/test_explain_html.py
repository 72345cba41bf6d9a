"""The interactive forward/backward page: structure, embedded numbers, limits."""

import json
import math
import re
from html.parser import HTMLParser
from importlib import resources

import numpy as np
import pytest

import pybackprop
from pybackprop import explain_html, reference
from pybackprop._validation import LOSSES, VALID_PAIRS

VOID = {"meta", "br", "input", "link", "img", "hr", "wbr", "source", "col", "area", "base"}


class PageParser(HTMLParser):
    """Checks nesting and collects what the tests look at."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.attrs, self.ids, self.tags = [], {}, []
        self.symbols = set()
        self._json = None
        self.json_text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.append((tag, a))
        if "id" in a:
            if a["id"] in self.ids:
                self.errors.append(f"duplicate id {a['id']}")
            self.ids[a["id"]] = (tag, a)
        if "data-symbol" in a:
            self.symbols.add(a["data-symbol"])
        if tag == "script" and a.get("type") == "application/json":
            self._json = a.get("id")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <rect .../>: complete in itself
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "script":
            self._json = None

    def handle_data(self, data):
        if self._json == "explain-data":
            self.json_text.append(data)


def parse(text):
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def embedded(text):
    return json.loads("".join(parse(text).json_text))


def textbook_net():
    """The compiled network of reference.textbook_221(), with its one-sample batch."""
    example = reference.textbook_221()
    net = pybackprop.MLP([2, 2, 1], activation="sigmoid", output="sigmoid", loss="squared_error")
    for W, b, W_ref, b_ref in zip(net.weights, net.biases, example["weights"], example["biases"]):
        W[...] = W_ref
        b[...] = b_ref
    return net, np.array([example["x"]]), np.array([example["y"]])


@pytest.fixture(scope="module")
def textbook_page():
    return explain_html.render_html()


def test_page_is_well_formed_html(textbook_page):
    parser = parse(textbook_page)
    assert parser.errors == []
    assert parser.stack == []  # every tag that was opened was closed
    assert textbook_page.startswith("<!DOCTYPE html>")
    for tag in ("html", "head", "body", "svg", "style", "script", "button", "select", "ol", "table"):
        assert tag in parser.tags
    for button in ("btn-forward", "btn-backward", "btn-step", "btn-reset", "btn-finish"):
        assert parser.ids[button][0] == "button"
    assert parser.ids["lr"][0] == "select"
    assert parser.ids["log"][0] == "ol"


def test_page_is_self_contained(textbook_page):
    assert "http://" not in textbook_page
    assert "https://" not in textbook_page
    parser = parse(textbook_page)
    # nothing that loads anything: no src, href, url() or @import, no external tags
    for tag, attrs in parser.attrs:
        assert "src" not in attrs, tag
        assert "href" not in attrs, tag
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
    assert "url(" not in textbook_page
    assert "@import" not in textbook_page
    assert not re.search(r"""["'(]\s*//""", textbook_page.split('id="explain-data"')[0])
    assert 'id="explain-data"' in textbook_page


def test_embedded_steps_equal_reference_computation_steps(textbook_page):
    data = embedded(textbook_page)
    expected = reference.computation_steps(**reference.textbook_221())
    assert data["steps"] == expected  # floats compared exactly: full precision survives JSON
    values = {s["symbol"]: s["value"] for s in data["steps"]}
    # the values the reference documents for the textbook example
    assert values["a[2][0]"] == pytest.approx(0.7073895241, abs=1e-10)
    assert values["L"] == pytest.approx(0.0042883501, abs=1e-10)
    assert values["dL/dW[1][0][0]"] == pytest.approx(-0.0013945592, abs=1e-10)
    assert data["network"] == {"layer_sizes": [2, 2, 1], "activations": ["sigmoid"],
                               "output": "sigmoid", "loss": "squared_error", "dtype": "float64"}
    assert data["x"] == [0.5, 0.3] and data["y"] == 0.8


def test_every_quantity_has_a_place_on_the_graph(textbook_page):
    parser = parse(textbook_page)
    data = embedded(textbook_page)
    for step in data["steps"]:
        assert step["symbol"] in parser.symbols, step["symbol"]
    for symbol in ("W[1][0][0]", "W[1][1][0]", "W[2][0][1]", "b[1][1]", "b[2][0]", "a[0][1]", "y"):
        assert symbol in parser.symbols
    for node in ("node-0-0", "node-0-1", "node-1-0", "node-1-1", "node-2-0", "node-loss"):
        assert node in parser.ids
    for l, j, k in ((1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (2, 0, 0), (2, 0, 1)):
        assert f"edge-{l}-{j}-{k}" in parser.ids and f"label-{l}-{j}-{k}" in parser.ids
    assert "edge-3-0-0" not in parser.ids


def test_runs_are_sgd_steps_computed_by_the_reference(textbook_page):
    data = embedded(textbook_page)
    example = reference.textbook_221()
    assert data["learning_rates"] == [0.01, 0.1, 0.5, 1.0, 2.0, 5.0]
    assert data["default_lr"] == 0.5
    assert data["max_steps"] == explain_html.MAX_STEPS
    assert [run["lr"] for run in data["runs"]] == data["learning_rates"]
    template = [{k: v for k, v in s.items() if k not in ("expression", "value")} for s in data["steps"]]
    for run in data["runs"]:
        lr, states = run["lr"], run["states"]
        assert run["stopped"] is None and len(states) == data["max_steps"] + 1
        assert states[0]["weights"] == example["weights"] and states[0]["biases"] == example["biases"]
        assert states[0]["loss"] == reference.loss(example["weights"], example["biases"], [example["x"]],
                                                   [example["y"]], "sigmoid", "sigmoid")
        for k in (1, 2, len(states) - 1):
            prev, state = states[k - 1], states[k]
            _, gw, gb = reference.loss_and_grad(prev["weights"], prev["biases"], [example["x"]],
                                                [example["y"]], "sigmoid", "sigmoid")
            assert state["weights"] == [[[w - lr * g for w, g in zip(rw, rg)] for rw, rg in zip(W, G)]
                                        for W, G in zip(prev["weights"], gw)]
            assert state["biases"] == [[b - lr * g for b, g in zip(B, G)] for B, G in zip(prev["biases"], gb)]
            steps = reference.computation_steps(state["weights"], state["biases"], example["x"],
                                                example["y"], "sigmoid", "sigmoid", "squared_error")
            rebuilt = [dict(t, expression=e, value=v)
                       for t, e, v in zip(template, state["expressions"], state["values"])]
            assert rebuilt == steps
            assert state["loss"] == steps[6]["value"] and steps[6]["symbol"] == "L"
            updated = {u["symbol"]: u["value"] for u in state["updates"]}
            assert updated["W[1][0][1]"] == state["weights"][0][0][1]
            assert updated["b[2][0]"] == state["biases"][1][0]
            assert len(updated) == 9
    # a small step lowers the loss of this example; the compiled core agrees
    net, X, y = textbook_net()
    for run in data["runs"]:
        trained = net.copy()
        trained.train_step(X, y, run["lr"])
        assert trained.loss(X, y) == pytest.approx(run["states"][1]["loss"], rel=1e-12)
    losses = [s["loss"] for s in data["runs"][2]["states"]]
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_user_network_with_softmax_and_a_class_label():
    net = pybackprop.MLP([3, 4, 2], output="softmax", seed=0)
    x = np.array([0.2, -0.4, 1.0])
    text = explain_html.render_html(net, x, 1, lr=0.1)
    parser = parse(text)
    assert parser.errors == [] and parser.stack == []
    data = embedded(text)
    weights = [W.tolist() for W in net.weights]
    biases = [b.tolist() for b in net.biases]
    assert data["steps"] == reference.computation_steps(weights, biases, x.tolist(), 1, "relu",
                                                        "softmax", "cross_entropy")
    assert data["network"]["loss"] == "cross_entropy" and data["y"] == 1
    assert data["default_lr"] == 0.1
    values = {s["symbol"]: s["value"] for s in data["steps"]}
    # the reference's numbers are the compiled core's numbers
    loss, gw, gb = net.loss_and_grad(x[None, :], np.array([1]), copy=True)
    assert values["L"] == pytest.approx(loss, rel=1e-12)
    for l, (G, g) in enumerate(zip(gw, gb), start=1):
        for (j, k), v in np.ndenumerate(G):
            assert values[f"dL/dW[{l}][{j}][{k}]"] == pytest.approx(v, rel=1e-12, abs=1e-15)
        for j, v in enumerate(g):
            assert values[f"dL/db[{l}][{j}]"] == pytest.approx(v, rel=1e-12, abs=1e-15)
    for node in ["node-0-2", "node-1-3", "node-2-1", "edge-2-1-3", "edge-1-3-2", "edge-loss-1"]:
        assert node in parser.ids
    assert "node-0-3" not in parser.ids and "node-2-2" not in parser.ids
    # softmax + CE has no dL/da step for the outputs: the page says so instead of a number
    assert "dL/da[2][0]" not in values and "folded into dL/dz" in text
    # writing the page does not touch the network
    assert [W.tolist() for W in net.weights] == weights
    one_step = net.copy()
    one_step.train_step(x[None, :], np.array([1]), 0.1)
    assert one_step.loss(x[None, :], np.array([1])) == pytest.approx(
        data["runs"][data["learning_rates"].index(0.1)]["states"][1]["loss"], rel=1e-12)


def test_targets_in_every_form():
    net = pybackprop.MLP([2, 3, 2], activation="tanh", output="sigmoid", loss="squared_error", seed=1)
    data = explain_html.page_data(net, [0.1, 0.2], np.array([0.0, 1.0]))
    assert data["y"] == [0.0, 1.0]
    text = explain_html.render_html(net, [0.1, 0.2], [0.0, 1.0])
    assert 'data-symbol="y[0]"' in text and 'data-symbol="y[1]"' in text
    single = pybackprop.MLP([2, 1], output="sigmoid", loss="binary_cross_entropy", seed=0)
    assert explain_html.page_data(single, np.array([1.0, 2.0]), np.float32(1.0))["y"] == 1.0
    assert explain_html.page_data(single, [1.0, 2.0], 1)["y"] == 1.0
    assert explain_html.page_data(single, [1.0, 2.0], np.array(0.0))["y"] == 0.0
    label = pybackprop.MLP([2, 3], output="softmax", seed=0)
    assert explain_html.page_data(label, [1.0, 2.0], np.int64(2))["y"] == 2
    # a net without a sample gets a documented default one
    data = explain_html.page_data(label)
    assert data["x"] == [0.5, -0.5] and data["y"] == 0


def test_float32_network_is_shown_with_its_exact_weights():
    net = pybackprop.MLP([2, 2, 1], activation="sigmoid", output="identity", dtype="float32", seed=3)
    data = explain_html.page_data(net, [0.5, -1.0], 0.25)
    assert data["network"]["dtype"] == "float32"
    assert data["runs"][0]["states"][0]["weights"] == [W.astype(float).tolist() for W in net.weights]


def test_refuses_networks_too_large_to_draw():
    too_big = pybackprop.MLP([20, 15, 6], seed=0)  # 41 neurons
    with pytest.raises(ValueError, match=r"at most 40 neurons in total.*has 41"):
        explain_html.render_html(too_big)
    with pytest.raises(ValueError, match="at most 40 neurons"):
        explain_html.write_html("unused.html", pybackprop.MLP([784, 32, 10], seed=0))
    assert explain_html.MAX_NEURONS == 40


def test_largest_network_fits_with_fewer_precomputed_steps():
    net = pybackprop.MLP([20, 15, 5], output="softmax", seed=0)  # 40 neurons: allowed
    text = explain_html.render_html(net, np.linspace(-1, 1, 20), 3)
    data = embedded(text)
    assert 1 <= data["max_steps"] < explain_html.MAX_STEPS
    assert all(len(run["states"]) == data["max_steps"] + 1 for run in data["runs"])
    assert len(text) < 4_000_000
    # 300 + 75 weights between the layers: too many labels to draw, shown on hover
    parser = parse(text)
    assert "dense" in parser.ids["label-1-0-0"][1]["class"]


def test_diverging_learning_rate_ends_the_run_without_non_finite_numbers():
    net = pybackprop.MLP([1, 1], output="identity", seed=0)
    net.weights[0][...] = 1.0
    data = explain_html.page_data(net, [1e4], 0.0, lr=5.0)
    run = data["runs"][data["learning_rates"].index(5.0)]
    assert run["stopped"] is not None and "diverges" in run["stopped"]
    assert 1 <= len(run["states"]) - 1 < data["max_steps"]
    text = explain_html.render_html(net, [1e4], 0.0, lr=5.0)
    assert "NaN" not in text and "Infinity" not in text
    json.loads("".join(parse(text).json_text))  # strict JSON


def test_bad_arguments():
    net = pybackprop.MLP([3, 2, 1], seed=0)
    with pytest.raises(ValueError, match="1-D array of 3"):
        explain_html.render_html(net, [1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="1-D array of 3"):
        explain_html.render_html(net, [[1.0, 2.0, 3.0]], 0.5)
    with pytest.raises(ValueError, match="both x and y"):
        explain_html.render_html(net, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        explain_html.render_html(lr=0.0)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        explain_html.render_html(lr=math.inf)
    with pytest.raises(ValueError, match="finite"):
        explain_html.render_html(net, [1.0, math.nan, 3.0], 0.5)
    with pytest.raises(ValueError, match="class label 5"):
        explain_html.render_html(pybackprop.MLP([2, 3], output="softmax"), [1.0, 2.0], 5)
    with pytest.raises(TypeError, match="pybackprop.MLP"):
        explain_html.render_html(object(), [1.0], 1.0)


def test_custom_learning_rate_joins_the_grid():
    data = explain_html.page_data(lr=0.3)
    assert data["learning_rates"] == [0.01, 0.1, 0.3, 0.5, 1.0, 2.0, 5.0]
    text = explain_html.render_html(lr=0.3)
    assert '<option value="2" selected>0.3</option>' in text


def test_json_block_cannot_end_the_script_early():
    text = explain_html._script_json({"s": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"s": "</script><b>&"}


def test_write_html_writes_the_page(tmp_path):
    path = tmp_path / "graph.html"
    assert explain_html.write_html(path) == str(path)
    assert path.read_text(encoding="utf-8") == explain_html.render_html()
    net = pybackprop.MLP([2, 3, 1], activation="tanh", output="sigmoid", seed=4)
    explain_html.write_html(str(path), net, np.array([0.3, -0.2]), 1.0, lr=2.0)
    data = embedded(path.read_text(encoding="utf-8"))
    assert data["network"]["layer_sizes"] == [2, 3, 1] and data["default_lr"] == 2.0


def test_page_files_are_package_data_filled_in_one_pass(textbook_page):
    """The skeleton, style and script are files of the package; every placeholder
    is filled, and text inserted (the JS uses "$" freely) is never read as one."""
    folder = resources.files("pybackprop") / "explain_page"
    skeleton = (folder / "page.html").read_text(encoding="utf-8")
    css = (folder / "page.css").read_text(encoding="utf-8")
    script = (folder / "page.js").read_text(encoding="utf-8")
    placeholders = set(re.findall(r"\$\{(\w+)\}", skeleton))
    assert placeholders == {"description", "max_steps", "options", "svg", "css", "script", "data"}
    assert skeleton.count("$") == len(re.findall(r"\$\{\w+\}", skeleton))  # nothing else
    assert "${" not in textbook_page.replace(script, "")
    assert css in textbook_page and script in textbook_page
    assert "$(" in script and textbook_page.count(script) == 1  # inserted as it is
    head, tail = skeleton.split("${svg}")
    assert textbook_page.startswith(head.split("${")[0])
    assert textbook_page.endswith(tail.split("}")[-1])


def test_loss_names_cover_exactly_the_library_losses():
    assert set(explain_html._LOSS_NOTES) == set(LOSSES)
    for output, loss in VALID_PAIRS:
        net = pybackprop.MLP([2, 3], output=output, loss=loss, seed=0)
        assert f"loss, {loss}" in explain_html.render_html(net)


def test_no_second_command_line():
    """``python -m pybackprop explain --html`` is the command line of the page."""
    assert not hasattr(explain_html, "main")
    assert not hasattr(explain_html, "screenshot")
