"""An interactive page that walks through the forward and backward pass.

:func:`write_html` writes one self-contained HTML file (inline SVG, style and
script; nothing is fetched from anywhere) that draws a small network as a
graph -- inputs, neurons, outputs and the loss as nodes, weights on the
edges -- and replays backpropagation one operation at a time:

- **Forward** reveals the next ``z`` or ``a`` (and finally the loss ``L``)
  on its node;
- **Backward** then reveals the next ``dL/da``, ``dL/dz``, ``dL/dW`` or
  ``dL/db``; an edge is coloured once its ``dL/dW`` is known (orange for a
  positive gradient, blue for a negative one, thicker for a larger ``|dL/dW|``);
- **Step** applies one gradient-descent step ``W <- W - lr * dL/dW``,
  ``b <- b - lr * dL/db`` (first finishing whatever is left of the two
  passes) and shows the new loss;
- **Reset** starts over; **Finish pass** reveals the rest of the current pass.

A log panel lists every operation performed so far with its formula and its
numbers, like a textbook walk-through (the entries are
:func:`pybackprop.reference.computation_steps`).

Where the numbers come from
---------------------------
Every number on the page is computed in Python by :mod:`pybackprop.reference`
(the plain-Python oracle that the compiled core is tested against) and
embedded in the page as JSON (``<script type="application/json"
id="explain-data">``). The page's script only displays them: it never runs a
forward or a backward pass of its own.

That includes **Step**. A page cannot call Python, and the loss after a step
needs a new forward pass, so the learning rate is chosen from a fixed grid
(:data:`LEARNING_RATES`, plus the ``lr`` passed to :func:`write_html`) in a
``<select>``, and for every rate of the grid the page carries the whole
trajectory of up to :data:`MAX_STEPS` successive SGD steps: each state's
weights and biases (``W - lr * dL/dW`` computed in Python from the gradient
the page shows), its loss and its complete computation log. The rate is
fixed for a run of steps; Reset unlocks it. Larger networks get fewer steps
per rate so that the page stays a few megabytes (see :func:`page_data`), and
a trajectory whose numbers stop being finite ends at the last finite state.

The forward and backward passes are those of one sample (``x``, ``y``), in
float64 even for a float32 network (its float32 weights are exactly
representable in float64).

Size limit
----------
Networks with more than :data:`MAX_NEURONS` (40) neurons in total, inputs
and outputs included, cannot be drawn legibly and are refused with a
``ValueError``.

The page's files
----------------
The HTML skeleton, its style and its script are files of the package,
``pybackprop/explain_page/page.html``, ``page.css`` and ``page.js``, read
with :mod:`importlib.resources`. :func:`render_html` fills the skeleton's
``${...}`` placeholders (:class:`string.Template`, one pass, so nothing
inserted is ever read as a placeholder): the description, the learning-rate
options, the SVG drawn here, the style, the script and the JSON data.
"""

from __future__ import annotations

import html
import json
import math
import os
import string
from importlib import resources
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike

from . import reference

if TYPE_CHECKING:
    from .network import MLP

__all__ = ["MAX_NEURONS", "LEARNING_RATES", "MAX_STEPS", "page_data", "render_html",
           "write_html"]

#: A target as :func:`write_html` takes it: a number, a class label or a row.
Target = Union[float, int, ArrayLike]

#: More neurons than this in total (inputs and outputs included) are refused.
MAX_NEURONS = 40
#: The learning rates offered by the page (the ``lr`` argument is added).
LEARNING_RATES = (0.01, 0.1, 0.5, 1.0, 2.0, 5.0)
#: Successive SGD steps precomputed per learning rate (fewer for big networks).
MAX_STEPS = 20
# Operations (computation-log entries plus parameter updates) stored over all
# precomputed states; bounds the page to a few megabytes for the largest nets.
_OPERATION_BUDGET = 25000

_DIGITS = 6  # significant digits inside the log's expressions


# ---------------------------------------------------------------------------
# The problem: weights, biases, one sample
# ---------------------------------------------------------------------------

def _as_float_list(name, value):
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr.tolist()


def _sample_x(x, n_in):
    x = _as_float_list("x", x)
    if not isinstance(x, list):
        raise ValueError(f"x must be one sample, a 1-D array of {n_in} numbers; got a scalar")
    if len(x) != n_in or any(isinstance(v, list) for v in x):
        shape = np.shape(x)
        raise ValueError(f"x must be one sample, a 1-D array of {n_in} numbers; got shape {shape}")
    return x


def _sample_y(y, n_out, loss):
    """y as the reference takes it: a float, an int label or a row of floats."""
    if isinstance(y, (bool, np.bool_)):
        raise TypeError("y must be a number, a class label or a row of numbers, not a bool")
    if isinstance(y, (int, np.integer)):
        return int(y) if loss == "cross_entropy" else float(y)
    if isinstance(y, (float, np.floating)):
        if not math.isfinite(y):
            raise ValueError("y must be finite")
        return float(y)
    arr = np.asarray(y)
    if arr.ndim == 0:
        return _sample_y(arr.item(), n_out, loss)
    if arr.ndim != 1:
        raise ValueError(f"y must be the target of one sample (a row of {n_out}, a scalar "
                         f"or a class label); got shape {arr.shape}")
    return _as_float_list("y", arr)


def _default_sample(sizes, loss):
    """A fixed sample for a network given without data: x evenly spread in [-0.5, 0.5]."""
    n_in, n_out = sizes[0], sizes[-1]
    x = [0.5] if n_in == 1 else [round(0.5 - k / (n_in - 1), 6) for k in range(n_in)]
    if loss == "cross_entropy":
        return x, 0
    return x, (1.0 if n_out == 1 else [1.0] * n_out)


def _check_size(sizes):
    total = sum(sizes)
    if total > MAX_NEURONS:
        raise ValueError(
            f"the page draws networks of at most {MAX_NEURONS} neurons in total (inputs and "
            f"outputs included); this one has {total} (layer sizes "
            f"{'-'.join(map(str, sizes))}), too many to draw legibly")


def _problem(net, x, y):
    """Weights, biases, sample and names of the network to show (all plain Python)."""
    if net is None:
        example = reference.textbook_221()
        sizes = [2, 2, 1]
        problem = {"weights": example["weights"], "biases": example["biases"],
                   "activation": [example["activation"]], "output": example["output"],
                   "loss": example["loss"], "dtype": "float64"}
        if x is None:
            x, y = example["x"], example["y"] if y is None else y
        elif y is None:
            y = example["y"]
    else:
        try:
            sizes = [int(n) for n in net.layer_sizes]
            weights = [np.asarray(W) for W in net.weights]
            biases = [np.asarray(b) for b in net.biases]
            activations = list(net.activations)
            output, loss = net.output, net.loss_name
        except AttributeError as exc:
            raise TypeError(f"net must be a pybackprop.MLP, got {type(net).__name__}") from exc
        _check_size(sizes)
        problem = {"weights": [_as_float_list("weights", W) for W in weights],
                   "biases": [_as_float_list("biases", b) for b in biases],
                   "activation": activations, "output": output, "loss": loss,
                   "dtype": str(np.dtype(getattr(net, "dtype", np.float64)))}
        if x is None and y is None:
            x, y = _default_sample(sizes, loss)
        elif x is None or y is None:
            raise ValueError("pass both x and y (one sample and its target), or neither")
    _check_size(sizes)
    problem["sizes"] = sizes
    problem["x"] = _sample_x(x, sizes[0])
    problem["y"] = _sample_y(y, sizes[-1], problem["loss"])
    return problem


def _steps(problem, weights, biases):
    return reference.computation_steps(weights, biases, problem["x"], problem["y"],
                                       problem["activation"], problem["output"],
                                       problem["loss"], _DIGITS)


# ---------------------------------------------------------------------------
# The data embedded in the page
# ---------------------------------------------------------------------------

def _fmt(value):
    return format(value + 0.0, f".{_DIGITS}g")


def _paren(value):
    text = _fmt(value)
    return f"({text})" if value < 0 else text


def _learning_rates(lr):
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"lr must be a number, got {lr!r}")
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0, got {lr}")
    rates = sorted(set(LEARNING_RATES) | {lr})
    return rates, lr


_STATIC_KEYS = ("phase", "kind", "layer", "neuron", "input", "symbol", "description", "formula")


def _sgd_update(steps, weights, biases, lr):
    """New parameters W - lr*dL/dW, b - lr*dL/db and their log entries.

    The gradients are the values of the backward pass that the page showed
    (``steps``), so the update is exactly the one the learner has watched.
    """
    grads = {s["symbol"]: s["value"] for s in steps if s["kind"] in ("dL/dW", "dL/db")}
    new_weights, new_biases, updates = [], [], []

    def update(symbol, old):
        g = grads["dL/d" + symbol]
        new = old - lr * g
        updates.append({"symbol": symbol, "formula": f"{symbol} - lr * dL/d{symbol}",
                        "expression": f"{_fmt(old)} - {_fmt(lr)}*{_paren(g)} = {_fmt(new)}",
                        "value": new})
        return new

    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        new_weights.append([[update(f"W[{l}][{j}][{k}]", w) for k, w in enumerate(row)]
                            for j, row in enumerate(W)])
        new_biases.append([update(f"b[{l}][{j}]", v) for j, v in enumerate(b)])
    return new_weights, new_biases, updates


def _finite(*values):
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, float) and not math.isfinite(v):
            return False
    return True


def _loss_of(steps):
    return next(s["value"] for s in steps if s["kind"] == "loss")


def _run(problem, steps0, lr, n_steps):
    """The states after 0, 1, ..., n_steps SGD steps with learning rate lr."""
    weights, biases, steps = problem["weights"], problem["biases"], steps0
    states = [{"weights": weights, "biases": biases, "loss": _loss_of(steps0)}]
    stopped = None
    for k in range(1, n_steps + 1):
        weights, biases, updates = _sgd_update(steps, weights, biases, lr)
        try:
            steps = _steps(problem, weights, biases) if _finite(weights, biases) else None
        except (OverflowError, ValueError):  # e.g. a squared error beyond the float range
            steps = None
        if steps is None or not _finite([s["value"] for s in steps]):
            stopped = (f"step {k} with lr = {lr:g} diverges: its numbers are no longer finite "
                       f"floats, so the page stops after step {k - 1}")
            break
        if [tuple(s[key] for key in _STATIC_KEYS) for s in steps] != \
                [tuple(s[key] for key in _STATIC_KEYS) for s in steps0]:
            raise RuntimeError("computation_steps changed shape between states")  # a bug
        states.append({"weights": weights, "biases": biases, "loss": _loss_of(steps),
                       "expressions": [s["expression"] for s in steps],
                       "values": [s["value"] for s in steps],
                       "updates": updates})
    return {"lr": lr, "states": states, "stopped": stopped}


def page_data(net: MLP | None = None, x: ArrayLike | None = None,
              y: Target | None = None, lr: float = 0.5) -> dict[str, Any]:
    """The data embedded in the page (a JSON-ready dict).

    Parameters
    ----------
    net, x, y, lr
        As for :func:`render_html`.

    Returns
    -------
    dict
        ``network`` (``layer_sizes``, hidden ``activations``, ``output``,
        ``loss``, ``dtype``), ``x`` (n0,), ``y``, ``steps`` (exactly
        :func:`pybackprop.reference.computation_steps` for the network and
        sample), ``learning_rates``, ``default_lr``, ``max_steps`` and
        ``runs``: one per learning rate, ``{"lr", "states", "stopped"}``.
        ``states[0]`` holds the initial ``weights``, ``biases`` and ``loss``;
        ``states[k]`` for k >= 1 the parameters and loss after k SGD steps,
        the ``updates`` that led there (log entries with the new value of
        every parameter) and the ``expressions`` and ``values`` of its own
        computation log (the other fields equal those of ``steps``).
        ``stopped`` explains why a run is shorter than ``max_steps``.
    """
    problem = _problem(net, x, y)
    rates, lr = _learning_rates(lr)
    steps0 = _steps(problem, problem["weights"], problem["biases"])
    sizes = problem["sizes"]
    n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))
    per_state = len(steps0) + n_params
    max_steps = max(1, min(MAX_STEPS, _OPERATION_BUDGET // (per_state * len(rates))))
    return {
        "format": "pybackprop-explain/1",
        "network": {"layer_sizes": problem["sizes"], "activations": problem["activation"],
                    "output": problem["output"], "loss": problem["loss"],
                    "dtype": problem["dtype"]},
        "x": problem["x"],
        "y": problem["y"],
        "steps": steps0,
        "learning_rates": rates,
        "default_lr": lr,
        "max_steps": max_steps,
        "runs": [_run(problem, steps0, rate, max_steps) for rate in rates],
    }


def _script_json(data):
    # allow_nan=False: JSON.parse rejects NaN; escaping "<" (and > and &) keeps a
    # "</script>" inside a string from ending the block early.
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------
# The graph, laid out in Python as static SVG (the script fills in numbers)
# ---------------------------------------------------------------------------

_ROW = 16            # height of one line of a node card
_HEAD = 22           # card header
_PAD = 8
_VGAP = 26           # vertical gap between cards
_MARGIN = 24
_NEURON_W = 164
_INPUT_W = 116
_GAP = 300           # between layers: room for the edge labels
_LOSS_GAP = 70
_LABEL_W = 124       # edge label box: width, and top/bottom around the weight's baseline
_LABEL_TOP = 10
_LABEL_BOTTOM = 26
# Fractions of the way along an edge tried for its label, in order of preference.
_LABEL_T = (0.3, 0.5, 0.7, 0.4, 0.6, 0.35, 0.65, 0.45, 0.55, 0.28, 0.72, 0.33, 0.38, 0.43,
            0.48, 0.53, 0.58, 0.63, 0.68)
_DENSE_EDGES = 16    # more edges than this between two layers: labels only on hover
# The loss card's short name for each loss (keys: the library's loss names).
_LOSS_NOTES = {"squared_error": "squared error", "binary_cross_entropy": "binary CE",
              "cross_entropy": "cross-entropy"}
_NEURON_ROWS = (("b", "b"), ("z", "z"), ("a", "a"), ("∂L/∂a", "dL/da"),
                ("∂L/∂z", "dL/dz"), ("∂L/∂b", "dL/db"))


def _place_label(x1, y1, x2, y2, placed):
    """Centre of an edge's label: the first spot along the edge that overlaps
    no label placed so far (else the least overlapping one); appends its box."""
    def box(t):
        cx, cy = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        return cx, cy, (cx - _LABEL_W / 2 - 2, cy - _LABEL_TOP - 2,
                        cx + _LABEL_W / 2 + 2, cy + _LABEL_BOTTOM + 2)

    def overlap(b):
        return sum(max(0.0, min(b[2], o[2]) - max(b[0], o[0])) *
                   max(0.0, min(b[3], o[3]) - max(b[1], o[1])) for o in placed)

    best = min(_LABEL_T, key=lambda t: overlap(box(t)[2]))  # the first of the least overlapping
    cx, cy, b = box(best)
    placed.append(b)
    return cx, cy


def _attrs(**attrs):
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        key = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = f"{value:.1f}"
        parts.append(f'{key}="{html.escape(str(value), quote=True)}"')
    return " ".join(parts)


def _text(x, y, content, **attrs):
    return f"<text {_attrs(x=x, y=y, **attrs)}>{content}</text>"


def _row(x, y, width, label, symbol, title, content=""):
    number = _attrs(x=x + width - 9, y=y, class_="num", text_anchor="end", data_symbol=symbol)
    return (f'<text {_attrs(x=x + 9, y=y, class_="lbl")}>{html.escape(label)}</text>'
            f'<text {number}>{html.escape(content)}<title>{html.escape(title)}</title></text>')


def _card(node_id, x, y, w, h, header, rows, classes, label, note=""):
    body = [f'<g {_attrs(id=node_id, class_=classes, tabindex="0", aria_label=label)}>',
            f'<rect {_attrs(class_="card", x=x, y=y, width=w, height=h, rx=7)}/>',
            f'<rect {_attrs(class_="card-head", x=x, y=y, width=w, height=_HEAD, rx=7)}/>',
            f'<rect {_attrs(class_="card-head", x=x, y=y + _HEAD - 8, width=w, height=8)}/>',
            _text(x + 9, y + 15, html.escape(header), class_="head")]
    if note:
        body.append(_text(x + w - 9, y + 15, html.escape(note), class_="head note",
                          text_anchor="end"))
    for i, (lab, symbol, title, *content) in enumerate(rows):
        body.append(_row(x, y + _HEAD + _ROW * (i + 1) - 3, w, lab, symbol, title, *content))
    body.append("</g>")
    return "".join(body)


def _svg(data):
    sizes = data["network"]["layer_sizes"]
    names = data["network"]["activations"] + [data["network"]["output"]]
    n_layers = len(sizes) - 1
    y_target = data["y"]
    if data["network"]["loss"] == "cross_entropy" and isinstance(y_target, int):
        loss_rows = [("y", "y", f"target: class {y_target}")]
    elif isinstance(y_target, list) and len(y_target) > 1:
        loss_rows = [(f"y[{k}]", f"y[{k}]", f"target of output {k}") for k in range(len(y_target))]
    else:
        loss_rows = [("y", "y", "target")]
    loss_rows.append(("L", "L", f"loss ({data['network']['loss']})"))

    neuron_h = _HEAD + _ROW * len(_NEURON_ROWS) + _PAD
    input_h = _HEAD + _ROW + _PAD
    loss_h = _HEAD + _ROW * len(loss_rows) + _PAD
    heights = [input_h] + [neuron_h] * n_layers
    widths = [_INPUT_W] + [_NEURON_W] * n_layers
    # one vertical pitch for every column, so inputs spread like neurons and
    # the edges (and their labels) fan out evenly
    pitch = neuron_h + _VGAP
    col_h = [(n - 1) * pitch + neuron_h for n in sizes]
    inner_h = max(col_h + [loss_h])
    xs = [_MARGIN]
    for w in widths[:-1]:
        xs.append(xs[-1] + w + _GAP)
    loss_x = xs[-1] + widths[-1] + _LOSS_GAP
    width = loss_x + _NEURON_W + _MARGIN
    height = inner_h + 2 * _MARGIN

    labels = []
    boxes = []  # boxes[l][j] = (x, y, w, h)
    for l, n in enumerate(sizes):
        top = _MARGIN + (inner_h - col_h[l]) / 2
        boxes.append([(xs[l], top + j * pitch + (neuron_h - heights[l]) / 2, widths[l], heights[l])
                      for j in range(n)])
    loss_box = (loss_x, _MARGIN + (inner_h - loss_h) / 2, _NEURON_W, loss_h)

    edges = []
    placed: list[tuple[float, float, float, float]] = []  # label boxes: (left, top, right, bottom)
    for l in range(1, n_layers + 1):
        dense = sizes[l] * sizes[l - 1] > _DENSE_EDGES
        for j in range(sizes[l]):
            tx, ty, _, th = boxes[l][j]
            for k in range(sizes[l - 1]):
                sx, sy, sw, sh = boxes[l - 1][k]
                x1, y1, x2, y2 = sx + sw, sy + sh / 2, tx, ty + th / 2
                lx, ly = _place_label(x1, y1, x2, y2, [] if dense else placed)
                source = f"x[{k}]" if l == 1 else f"neuron {k} of layer {l - 1}"
                title = (f"<title>W[{l}][{j}][{k}]: weight from {source} "
                         f"to neuron {j} of layer {l}</title>")
                ends = {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
                edge = _attrs(id=f"edge-{l}-{j}-{k}", class_="edge dense" if dense else "edge",
                              data_layer=l, data_neuron=j, data_input=k)
                edges.append(
                    f'<g {edge}>{title}'
                    f'<line {_attrs(class_="edge-halo", **ends)}/>'
                    f'<line {_attrs(class_="edge-line", **ends)}/>'
                    f'<line {_attrs(class_="edge-hit", **ends)}/>'
                    f'</g>')
                label = _attrs(id=f"label-{l}-{j}-{k}",
                               class_="edge-label dense" if dense else "edge-label",
                               transform=f"translate({lx:.1f},{ly:.1f})")
                background = _attrs(class_="label-bg", x=-_LABEL_W / 2, y=-_LABEL_TOP,
                                    width=_LABEL_W, height=18, rx=4)
                labels.append(
                    f'<g {label}>{title}<rect {background}/>'
                    f'<text {_attrs(x=0, y=3, text_anchor="middle")}><tspan class="lbl">w </tspan>'
                    f'<tspan {_attrs(class_="num", data_symbol=f"W[{l}][{j}][{k}]")}></tspan>'
                    f'</text>'
                    f'<text {_attrs(x=0, y=19, text_anchor="middle", class_="grad-line")}>'
                    f'<tspan class="lbl">∂L/∂w </tspan>'
                    f'<tspan {_attrs(class_="num", data_symbol=f"dL/dW[{l}][{j}][{k}]")}></tspan>'
                    f'</text>'
                    f'</g>')
    lx, ly, _, lh = loss_box
    for j in range(sizes[-1]):
        sx, sy, sw, sh = boxes[-1][j]
        ends = {"x1": sx + sw, "y1": sy + sh / 2, "x2": lx, "y2": ly + lh / 2}
        edges.append(f'<g {_attrs(id=f"edge-loss-{j}", class_="edge loss-edge")}>'
                     f'<line {_attrs(class_="edge-halo", **ends)}/>'
                     f'<line {_attrs(class_="edge-line", **ends)}/>'
                     f'</g>')

    nodes = []
    for k, (x, y, w, h) in enumerate(boxes[0]):
        nodes.append(_card(f"node-0-{k}", x, y, w, h, f"input x[{k}]",
                           [("a[0]", f"a[0][{k}]", f"a[0][{k}] = x[{k}], input {k}")],
                           "node input", f"input {k}"))
    for l in range(1, n_layers + 1):
        where = "output" if l == n_layers else "hidden"
        for j, (x, y, w, h) in enumerate(boxes[l]):
            # (label, symbol, title), and a fixed text where no value is shown
            rows: list[tuple[str, ...]] = [(lab, f"{sym}[{l}][{j}]", f"{sym}[{l}][{j}]")
                                           for lab, sym in _NEURON_ROWS]
            if l == n_layers and data["network"]["loss"] != "squared_error":
                # sigmoid + BCE and softmax + CE go straight to dL/dz (no dL/da step)
                rows[3] = ("∂L/∂a", f"dL/da[{l}][{j}]", "not computed on its own: with this "
                           "loss the output's derivative is folded into dL/dz = a - y", "—")
            header = f"{'output' if l == n_layers else 'neuron'} [{l}][{j}]"
            nodes.append(_card(f"node-{l}-{j}", x, y, w, h, header, rows, f"node {where}",
                               f"{where} neuron {j} of layer {l}, {names[l - 1]}", names[l - 1]))
    loss = data["network"]["loss"]
    nodes.append(_card("node-loss", *loss_box, "loss", loss_rows,
                       "node loss", f"loss, {loss}", _LOSS_NOTES[loss]))

    svg = _attrs(id="graph", width=f"{width:.0f}", height=f"{height:.0f}",
                 viewBox=f"0 0 {width:.0f} {height:.0f}",
                 style=f"width: 100%; max-width: {width:.0f}px; min-width: {0.8 * width:.0f}px",
                 role="img", aria_label="the network as a graph")
    return (f'<svg {svg}>'
            f'<g id="edges">{"".join(edges)}</g><g id="nodes">{"".join(nodes)}</g>'
            f'<g id="labels">{"".join(labels)}</g></svg>')


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------

def _describe(data):
    net = data["network"]
    acts = net["activations"]
    hidden = (acts[0] if len(set(acts)) == 1 else ", ".join(acts)) if acts else "none"
    y = data["y"]
    y_text = f"class {y}" if isinstance(y, int) else (
        "[" + ", ".join(_fmt(v) for v in y) + "]" if isinstance(y, list) else _fmt(y))
    return (f"Network {'-'.join(map(str, net['layer_sizes']))} · hidden activation {hidden} · "
            f"output {net['output']} · loss {net['loss']} · one sample x = ["
            f"{', '.join(_fmt(v) for v in data['x'])}], target y = {y_text}")


def _asset(name: str) -> str:
    """The text of one of the page's files in ``pybackprop/explain_page/``."""
    folder = resources.files("pybackprop") / "explain_page"
    return (folder / name).read_text(encoding="utf-8")


def render_html(net: MLP | None = None, x: ArrayLike | None = None, y: Target | None = None,
                lr: float = 0.5) -> str:
    """The interactive page as a string (see :func:`write_html`)."""
    data = page_data(net, x, y, lr)
    options = "".join(
        f'<option value="{i}"{" selected" if run["lr"] == data["default_lr"] else ""}>'
        f'{run["lr"]:g}</option>'
        for i, run in enumerate(data["runs"]))
    page = string.Template(_asset("page.html"))
    return page.substitute(
        description=html.escape(_describe(data)),
        max_steps=str(data["max_steps"]),
        options=options,
        svg=_svg(data),
        css=_asset("page.css"),
        script=_asset("page.js"),
        data=_script_json(data))


def write_html(path: str | os.PathLike[str], net: MLP | None = None,
               x: ArrayLike | None = None, y: Target | None = None,
               lr: float = 0.5) -> str:
    """Write the interactive forward/backward page for one sample to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The HTML file to write (UTF-8). It is self-contained: nothing is
        fetched when it is opened.
    net : pybackprop.MLP, optional
        The network to show; at most :data:`MAX_NEURONS` neurons in total
        (inputs and outputs included). Default: the textbook 2-2-1 example,
        :func:`pybackprop.reference.textbook_221`.
    x : array-like of shape (n_in,), optional
        The sample. Default: the textbook sample; for a ``net`` given
        without ``x`` and ``y``, evenly spaced values from 0.5 to -0.5 with
        target 1.0 per output (class 0 for cross-entropy).
    y : float, int or array-like of shape (n_out,), optional
        Its target: a scalar when n_out == 1, an integer class label for
        cross-entropy, or a row of n_out targets.
    lr : float, default 0.5
        The learning rate selected when the page opens (added to the page's
        grid :data:`LEARNING_RATES` if it is not in it).

    Returns
    -------
    str
        ``path`` as a string.

    Raises
    ------
    ValueError
        A network with more than :data:`MAX_NEURONS` neurons, a sample or
        target of the wrong shape, ``lr <= 0``, or only one of x and y.
    """
    text = render_html(net, x, y, lr)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path

