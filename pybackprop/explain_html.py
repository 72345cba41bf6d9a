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

Screenshots
-----------
``python -m pybackprop.explain_html --screenshot out.png`` writes a PNG of
the page after the full backward pass (it needs Chromium, chromedriver and
the ``selenium`` package); ``--out page.html`` also keeps the HTML and
``--stage`` picks another moment (``start``, ``forward``, ``backward``,
``step``).
"""

import html
import json
import math
import os

import numpy as np

from . import reference

__all__ = ["MAX_NEURONS", "LEARNING_RATES", "MAX_STEPS", "page_data", "render_html",
           "write_html", "screenshot"]

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


def page_data(net=None, x=None, y=None, lr=0.5):
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
    n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(problem["sizes"], problem["sizes"][1:]))
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
    return (f'<text {_attrs(x=x + 9, y=y, class_="lbl")}>{html.escape(label)}</text>'
            f'<text {_attrs(x=x + width - 9, y=y, class_="num", text_anchor="end", data_symbol=symbol)}>'
            f'{html.escape(content)}<title>{html.escape(title)}</title></text>')


def _card(node_id, x, y, w, h, header, rows, classes, label, note=""):
    body = [f'<g {_attrs(id=node_id, class_=classes, tabindex="0", aria_label=label)}>',
            f'<rect {_attrs(class_="card", x=x, y=y, width=w, height=h, rx=7)}/>',
            f'<rect {_attrs(class_="card-head", x=x, y=y, width=w, height=_HEAD, rx=7)}/>',
            f'<rect {_attrs(class_="card-head", x=x, y=y + _HEAD - 8, width=w, height=8)}/>',
            _text(x + 9, y + 15, html.escape(header), class_="head")]
    if note:
        body.append(_text(x + w - 9, y + 15, html.escape(note), class_="head note", text_anchor="end"))
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
    placed = []  # label boxes already placed: (left, top, right, bottom)
    for l in range(1, n_layers + 1):
        dense = sizes[l] * sizes[l - 1] > _DENSE_EDGES
        for j in range(sizes[l]):
            tx, ty, _, th = boxes[l][j]
            for k in range(sizes[l - 1]):
                sx, sy, sw, sh = boxes[l - 1][k]
                x1, y1, x2, y2 = sx + sw, sy + sh / 2, tx, ty + th / 2
                lx, ly = _place_label(x1, y1, x2, y2, [] if dense else placed)
                source = f"x[{k}]" if l == 1 else f"neuron {k} of layer {l - 1}"
                edges.append(
                    f'<g {_attrs(id=f"edge-{l}-{j}-{k}", class_="edge dense" if dense else "edge", data_layer=l, data_neuron=j, data_input=k)}>'
                    f'<title>W[{l}][{j}][{k}]: weight from {source} to neuron {j} of layer {l}</title>'
                    f'<line {_attrs(class_="edge-halo", x1=x1, y1=y1, x2=x2, y2=y2)}/>'
                    f'<line {_attrs(class_="edge-line", x1=x1, y1=y1, x2=x2, y2=y2)}/>'
                    f'<line {_attrs(class_="edge-hit", x1=x1, y1=y1, x2=x2, y2=y2)}/>'
                    f'</g>')
                labels.append(
                    f'<g {_attrs(id=f"label-{l}-{j}-{k}", class_="edge-label dense" if dense else "edge-label", transform=f"translate({lx:.1f},{ly:.1f})")}>'
                    f'<title>W[{l}][{j}][{k}]: weight from {source} to neuron {j} of layer {l}</title>'
                    f'<rect {_attrs(class_="label-bg", x=-_LABEL_W / 2, y=-_LABEL_TOP, width=_LABEL_W, height=18, rx=4)}/>'
                    f'<text {_attrs(x=0, y=3, text_anchor="middle")}><tspan class="lbl">w </tspan>'
                    f'<tspan {_attrs(class_="num", data_symbol=f"W[{l}][{j}][{k}]")}></tspan></text>'
                    f'<text {_attrs(x=0, y=19, text_anchor="middle", class_="grad-line")}>'
                    f'<tspan class="lbl">∂L/∂w </tspan>'
                    f'<tspan {_attrs(class_="num", data_symbol=f"dL/dW[{l}][{j}][{k}]")}></tspan></text>'
                    f'</g>')
    lx, ly, _, lh = loss_box
    for j in range(sizes[-1]):
        sx, sy, sw, sh = boxes[-1][j]
        edges.append(f'<g {_attrs(id=f"edge-loss-{j}", class_="edge loss-edge")}>'
                     f'<line {_attrs(class_="edge-halo", x1=sx + sw, y1=sy + sh / 2, x2=lx, y2=ly + lh / 2)}/>'
                     f'<line {_attrs(class_="edge-line", x1=sx + sw, y1=sy + sh / 2, x2=lx, y2=ly + lh / 2)}/>'
                     f'</g>')

    nodes = []
    for k, (x, y, w, h) in enumerate(boxes[0]):
        nodes.append(_card(f"node-0-{k}", x, y, w, h, f"input x[{k}]",
                           [("a[0]", f"a[0][{k}]", f"a[0][{k}] = x[{k}], input {k}")],
                           "node input", f"input {k}"))
    for l in range(1, n_layers + 1):
        where = "output" if l == n_layers else "hidden"
        for j, (x, y, w, h) in enumerate(boxes[l]):
            rows = [(lab, f"{sym}[{l}][{j}]", f"{sym}[{l}][{j}]") for lab, sym in _NEURON_ROWS]
            if l == n_layers and data["network"]["loss"] != "squared_error":
                # sigmoid + BCE and softmax + CE go straight to dL/dz (no dL/da step)
                rows[3] = ("∂L/∂a", f"dL/da[{l}][{j}]", "not computed on its own: with this loss "
                           "the output's derivative is folded into dL/dz = a - y", "—")
            header = f"{'output' if l == n_layers else 'neuron'} [{l}][{j}]"
            nodes.append(_card(f"node-{l}-{j}", x, y, w, h, header, rows, f"node {where}",
                               f"{where} neuron {j} of layer {l}, {names[l - 1]}", names[l - 1]))
    loss_note = {"squared_error": "squared error", "binary_cross_entropy": "binary CE",
                 "cross_entropy": "cross-entropy"}[data["network"]["loss"]]
    nodes.append(_card("node-loss", *loss_box, "loss", loss_rows,
                       "node loss", f"loss, {data['network']['loss']}", loss_note))

    return (f'<svg {_attrs(id="graph", width=f"{width:.0f}", height=f"{height:.0f}", viewBox=f"0 0 {width:.0f} {height:.0f}", style=f"width: 100%; max-width: {width:.0f}px; min-width: {0.8 * width:.0f}px", role="img", aria_label="the network as a graph")}>'
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


def render_html(net=None, x=None, y=None, lr=0.5):
    """The interactive page as a string (see :func:`write_html`)."""
    data = page_data(net, x, y, lr)
    options = "".join(
        f'<option value="{i}"{" selected" if r["lr"] == data["default_lr"] else ""}>{r["lr"]:g}</option>'
        for i, r in enumerate(data["runs"]))
    return (_PAGE
            .replace("%DESCRIPTION%", html.escape(_describe(data)))
            .replace("%MAX_STEPS%", str(data["max_steps"]))
            .replace("%OPTIONS%", options)
            .replace("%SVG%", _svg(data))
            .replace("%CSS%", _CSS)
            .replace("%SCRIPT%", _SCRIPT)
            .replace("%DATA%", _script_json(data)))


def write_html(path, net=None, x=None, y=None, lr=0.5):
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


# ---------------------------------------------------------------------------
# Screenshots through headless Chromium
# ---------------------------------------------------------------------------

def _browser(width=1500, height=1000):
    """A headless Chromium driven by Selenium (system chromedriver)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise RuntimeError("screenshots need Chromium and chromedriver on PATH "
                           "(Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def screenshot(png_path, html_path=None, *, stage="backward", width=1500, net=None, x=None,
               y=None, lr=0.5):
    """Save a PNG of the page at a given stage of the walk-through.

    Parameters
    ----------
    png_path : str or os.PathLike
        Where to write the PNG (the whole page, not only the window).
    html_path : str or os.PathLike, optional
        A page written by :func:`write_html`; by default one is rendered for
        ``net, x, y, lr`` into a temporary file.
    stage : {"start", "forward", "backward", "step"}, default "backward"
        After how much of the walk-through: nothing, the full forward pass,
        the full backward pass, or one SGD step after it.
    width : int
        Window width in CSS pixels.
    """
    import pathlib
    import tempfile

    stages = ("start", "forward", "backward", "step")
    if stage not in stages:
        raise ValueError(f"stage must be one of {', '.join(stages)}, got {stage!r}")
    with tempfile.TemporaryDirectory() as tmp:
        if html_path is None:
            html_path = write_html(os.path.join(tmp, "explain.html"), net, x, y, lr)
        driver = _browser(width)
        try:
            driver.get(pathlib.Path(html_path).resolve().as_uri())
            clicks = {"start": [], "forward": ["btn-finish"],
                      "backward": ["btn-finish", "btn-finish"], "step": ["btn-step"]}[stage]
            for button in clicks:
                driver.find_element("id", button).click()
            if stage == "backward":  # the final operation stays highlighted
                driver.execute_script("document.activeElement.blur()")
            page_h = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": int(page_h), "deviceScaleFactor": 1,
                                    "mobile": False})
            driver.save_screenshot(os.fspath(png_path))
        finally:
            driver.quit()
    return os.fspath(png_path)


def main(argv=None):
    """``python -m pybackprop.explain_html [--out page.html] [--screenshot out.png]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pybackprop.explain_html",
        description="Write the interactive forward/backward page of the textbook 2-2-1 "
                    "example, and optionally a screenshot of it.")
    parser.add_argument("--out", help="write the HTML page here")
    parser.add_argument("--screenshot", metavar="PNG", help="write a screenshot here "
                        "(needs Chromium, chromedriver and selenium)")
    parser.add_argument("--stage", default="backward", choices=("start", "forward", "backward", "step"),
                        help="moment of the screenshot (default: after the full backward pass)")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate selected on the page")
    parser.add_argument("--width", type=int, default=1500, help="window width of the screenshot")
    args = parser.parse_args(argv)
    if not args.out and not args.screenshot:
        parser.error("nothing to do: give --out and/or --screenshot")
    if args.out:
        print(write_html(args.out, lr=args.lr))
    if args.screenshot:
        print(screenshot(args.screenshot, args.out, stage=args.stage, width=args.width, lr=args.lr))
    return 0


# ---------------------------------------------------------------------------
# Page template, style and script
# ---------------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backpropagation, one operation at a time · pybackprop</title>
<style>
%CSS%
</style>
</head>
<body>
<header>
<h1>Backpropagation, one operation at a time</h1>
<p class="sub" id="description">%DESCRIPTION%</p>
</header>
<div class="controls" role="toolbar" aria-label="walk-through controls">
<button type="button" id="btn-forward" class="fwd" aria-keyshortcuts="f">Forward <kbd>F</kbd></button>
<button type="button" id="btn-backward" class="bwd" aria-keyshortcuts="b">Backward <kbd>B</kbd></button>
<button type="button" id="btn-finish" aria-keyshortcuts="e">Finish pass <kbd>E</kbd></button>
<span class="sep"></span>
<label for="lr">learning rate</label>
<select id="lr">%OPTIONS%</select>
<button type="button" id="btn-step" class="step" aria-keyshortcuts="s">Step <kbd>S</kbd></button>
<button type="button" id="btn-reset" aria-keyshortcuts="r">Reset <kbd>R</kbd></button>
<span id="progress" class="progress" aria-live="polite"></span>
</div>
<noscript><p class="sub">This page needs JavaScript to replay the computation.</p></noscript>
<main>
<div class="panel current" id="current-op" aria-live="polite"></div>
<div class="panel graph-panel">
<div id="graph-wrap">%SVG%</div>
<div class="legend">
<span><i class="sw pos"></i>∂L/∂w &gt; 0: a step makes this weight smaller</span>
<span><i class="sw neg"></i>∂L/∂w &lt; 0: a step makes it larger</span>
<span>thickness: |∂L/∂w| relative to the largest one</span>
<span><i class="sw hl"></i>current operation</span>
<span>hover a number for its full precision</span>
</div>
</div>
<div class="bottom">
<div class="panel">
<h2>Computation log</h2>
<ol id="log" aria-label="every operation performed so far"></ol>
</div>
<div class="panel">
<h2>Training</h2>
<p class="hint">Step applies <code>W ← W − lr · ∂L/∂W</code> and <code>b ← b − lr · ∂L/∂b</code>
(finishing the passes first). The numbers come from pybackprop's reference implementation,
precomputed for each learning rate of the list, up to %MAX_STEPS% steps; the rate stays fixed
until Reset.</p>
<table id="training"><thead><tr><th>after step</th><th>lr</th><th>loss</th></tr></thead><tbody id="training-body"></tbody></table>
</div>
</div>
</main>
<script type="application/json" id="explain-data">%DATA%</script>
<script>
%SCRIPT%
</script>
</body>
</html>
"""

_CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --bg: #f6f6f2; --line: #b9bfc9;
  --pos: #e0640f; --neg: #1f6fd1; --hl: #f2b705; --hl-soft: #fff3c4; --fwd: #2f7d4f; --bwd: #8a3ffc; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; }
header { padding: 14px 22px 2px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 15px; margin: 0 0 6px; }
.sub { color: var(--muted); margin: 0 0 6px; }
.controls { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 8px;
  align-items: center; padding: 9px 22px; background: var(--bg); border-bottom: 1px solid #e0e0d8; }
.controls .sep { width: 14px; }
button, select { font: inherit; border-radius: 6px; border: 1px solid #98a1b0; background: #fff;
  color: var(--fg); padding: 6px 13px; }
button { font-weight: 600; cursor: pointer; }
button.fwd { border-color: var(--fwd); color: var(--fwd); }
button.bwd { border-color: var(--bwd); color: var(--bwd); }
button.step { border-color: #b35c00; color: #b35c00; }
button:hover:not(:disabled) { background: #f0f2f6; }
button:disabled, select:disabled { opacity: .42; cursor: default; }
button:focus-visible, select:focus-visible, .node:focus-visible { outline: 3px solid var(--neg); outline-offset: 2px; }
kbd { font: 11px ui-monospace, "DejaVu Sans Mono", monospace; border: 1px solid #c9ced6;
  border-radius: 3px; padding: 0 3px; margin-left: 3px; color: var(--muted); }
.progress { margin-left: 10px; color: var(--muted); }
main { display: flex; flex-direction: column; gap: 12px; padding: 12px 22px 22px; }
.bottom { display: grid; grid-template-columns: minmax(0, 1fr) 400px; gap: 12px; align-items: start; }
@media (max-width: 1000px) { .bottom { grid-template-columns: 1fr; } }
.panel { background: #fff; border: 1px solid #dcddd6; border-radius: 8px; padding: 10px 14px; }
.current { min-height: 100px; border-left: 5px solid var(--hl); }
.current .phase { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.current .phase.forward { color: var(--fwd); } .current .phase.backward { color: var(--bwd); }
.current .eq { font: 15px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.current .eq b { font-size: 17px; }
.current .desc { color: var(--muted); }
#graph-wrap { overflow: auto; max-height: 80vh; }
#graph { display: block; margin: 0 auto; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; color: var(--muted);
  padding-top: 6px; border-top: 1px solid #eee; }
.sw { display: inline-block; width: 22px; height: 5px; border-radius: 2px; vertical-align: middle; margin-right: 5px; }
.sw.pos { background: var(--pos); } .sw.neg { background: var(--neg); } .sw.hl { background: var(--hl); height: 9px; }
#log { list-style: none; margin: 0; padding: 0; max-height: 430px; overflow-y: auto;
  font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
#log li { padding: 3px 6px 4px; border-left: 3px solid transparent; border-bottom: 1px solid #f0f0ec; }
#log li .d { display: block; font: 12px/1.3 system-ui, "DejaVu Sans", sans-serif; color: var(--muted); }
#log li .sym { font-weight: 700; }
#log li.forward .sym { color: var(--fwd); } #log li.backward .sym { color: var(--bwd); }
#log li.update .sym, #log li.newloss .sym { color: #b35c00; }
#log li.newloss { font-weight: 600; }
#log li.heading { font: 600 13px system-ui, "DejaVu Sans", sans-serif; background: #f3f4f7; margin-top: 4px; }
#log li.latest { background: var(--hl-soft); border-left-color: var(--hl); }
.hint { font-size: 13px; color: var(--muted); margin: 0 0 8px; }
#training { border-collapse: collapse; font: 13px ui-monospace, "DejaVu Sans Mono", monospace; }
#training th, #training td { padding: 2px 12px 2px 0; text-align: left; }
#training tr.latest td { background: var(--hl-soft); font-weight: 700; }
svg text { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; fill: var(--fg); }
svg text.head { font: 600 12px system-ui, "DejaVu Sans", sans-serif; fill: #fff; }
svg text.head.note { font-weight: 400; fill: #e6e9f0; }
svg text.lbl, svg tspan.lbl { fill: var(--muted); }
.node .card { fill: #fff; stroke: #8e97a7; stroke-width: 1.2; }
.node .card-head { fill: #56607a; }
.node.input .card-head { fill: #2f6f8f; }
.node.output .card-head { fill: #6c4a99; }
.node.loss .card-head { fill: #9a3d3d; }
.node.involved .card { stroke: var(--hl); stroke-width: 2.5; stroke-dasharray: 5 3; }
.node.current .card { stroke: var(--hl); stroke-width: 4; fill: #fffbea; }
svg text.num.fresh, svg tspan.num.fresh { fill: #b34700; font-weight: 700; }
.edge-line { stroke: var(--line); stroke-width: 1.5; }
.loss-edge .edge-line { stroke-dasharray: 5 4; }
.edge-halo { stroke: var(--hl); stroke-width: 11; stroke-linecap: round; opacity: 0; }
.edge.involved .edge-halo { opacity: .45; }
.edge.current .edge-halo { opacity: .95; }
.edge-hit { stroke: transparent; stroke-width: 12; }
.edge.hover .edge-halo { opacity: .3; }
.edge-label .label-bg { fill: #fff; fill-opacity: .93; stroke: #d5d8de; }
.edge-label.current .label-bg { fill: var(--hl-soft); stroke: var(--hl); stroke-width: 2; }
.edge-label.hover .label-bg { stroke: #7b8494; }
.edge-label text { font-size: 11.5px; }
.edge-label .grad-line { display: none; }
.edge-label.has-grad .grad-line { display: inline; }
.edge-label.dense { display: none; }
.edge-label.dense.current, .edge-label.dense.hover { display: inline; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("explain-data").textContent);
  var STEPS = DATA.steps;
  var N_FORWARD = STEPS.filter(function (s) { return s.phase === "forward"; }).length;
  var SIZES = DATA.network.layer_sizes;
  var L = SIZES.length - 1;
  var $ = function (id) { return document.getElementById(id); };
  var logEl = $("log"), lrEl = $("lr"), currentEl = $("current-op");

  // Display only: numbers are formatted, never computed.
  function fmt(v) {
    if (v === 0) return "0";
    var s = v.toPrecision(5);
    if (s.indexOf("e") >= 0) {
      var parts = s.split("e");
      var m = parts[0].indexOf(".") >= 0 ? parts[0].replace(/0+$/, "").replace(/\.$/, "") : parts[0];
      return m + "e" + parts[1];
    }
    if (s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s === "-0" ? "0" : s;
  }
  function full(v) { return String(v); }
  function esc(t) {
    return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  var state = { run: 0, k: 0, cursor: 0, locked: false };

  function run() { return DATA.runs[state.run]; }
  function stateData() { return run().states[state.k]; }
  function stepAt(i) {
    if (state.k === 0) return STEPS[i];
    var st = stateData(), s = STEPS[i], out = {};
    for (var key in s) out[key] = s[key];
    out.expression = st.expressions[i];
    out.value = st.values[i];
    return out;
  }

  function valueEls(symbol) {
    return document.querySelectorAll('#graph .num[data-symbol="' + symbol + '"]');
  }
  function show(symbol, value, fresh) {
    valueEls(symbol).forEach(function (el) {
      var title = el.querySelector("title");
      var text = value === null ? "" : fmt(value);
      // keep the <title> child (the tooltip) and replace only the text
      Array.prototype.slice.call(el.childNodes).forEach(function (n) { if (n !== title) el.removeChild(n); });
      el.insertBefore(document.createTextNode(text), el.firstChild);
      if (value === null) { el.removeAttribute("data-value"); }
      else { el.setAttribute("data-value", full(value)); }
      if (title) {
        var base = title.getAttribute("data-base") || title.textContent;
        title.setAttribute("data-base", base);
        title.textContent = value === null ? base : base + " = " + full(value);
      }
      el.classList.toggle("fresh", !!fresh);
    });
  }
  function clearFresh() {
    document.querySelectorAll("#graph .fresh").forEach(function (el) { el.classList.remove("fresh"); });
  }
  function clearHighlight() {
    document.querySelectorAll("#graph .current, #graph .involved").forEach(function (el) {
      el.classList.remove("current"); el.classList.remove("involved");
    });
  }
  function mark(id, cls) {
    var el = $(id);
    if (el) el.classList.add(cls);
    if (cls === "current" && id.indexOf("edge-") === 0) { var lab = $("label-" + id.slice(5)); if (lab) lab.classList.add(cls); }
  }
  // Hovering an edge or its label highlights both (and shows a hidden label).
  document.querySelectorAll("#graph .edge, #graph .edge-label").forEach(function (el) {
    var key = el.id.replace(/^(edge|label)-/, "");
    if (key.indexOf("loss") === 0) return;
    function set(on) { [$("edge-" + key), $("label-" + key)].forEach(function (e) { e.classList.toggle("hover", on); }); }
    el.addEventListener("mouseenter", function () { set(true); });
    el.addEventListener("mouseleave", function () { set(false); });
  });

  function edgeTitle(edge, l, j, k, w, g) {
    var key = l + "-" + j + "-" + k;
    [$("edge-" + key), $("label-" + key)].forEach(function (el) {
      var t = el.querySelector(":scope > title");
      var base = t.getAttribute("data-base") || t.textContent;
      t.setAttribute("data-base", base);
      t.textContent = base + "\nW[" + l + "][" + j + "][" + k + "] = " + full(w) +
        (g === null ? "" : "\ndL/dW[" + l + "][" + j + "][" + k + "] = " + full(g));
    });
  }

  function showParameters() {
    var st = stateData();
    for (var l = 1; l <= L; l++) {
      for (var j = 0; j < SIZES[l]; j++) {
        show("b[" + l + "][" + j + "]", st.biases[l - 1][j]);
        for (var k = 0; k < SIZES[l - 1]; k++) {
          var w = st.weights[l - 1][j][k];
          show("W[" + l + "][" + j + "][" + k + "]", w);
          var edge = $("edge-" + l + "-" + j + "-" + k);
          edgeTitle(edge, l, j, k, w, null);
        }
      }
    }
  }

  function clearPass() {
    for (var i = 0; i < STEPS.length; i++) show(STEPS[i].symbol, null);
    document.querySelectorAll("#graph .edge-line").forEach(function (line) {
      line.style.stroke = ""; line.style.strokeWidth = "";
    });
    document.querySelectorAll("#graph .edge-label").forEach(function (lab) {
      lab.classList.remove("has-grad");
      lab.querySelector(".label-bg").setAttribute("height", "18");
    });
    clearHighlight();
  }

  function maxAbsGrad() {
    var m = 0;
    for (var i = 0; i < STEPS.length; i++) {
      if (STEPS[i].kind === "dL/dW") m = Math.max(m, Math.abs(stepAt(i).value));
    }
    return m;
  }

  function colourEdge(s) {
    var edge = $("edge-" + s.layer + "-" + s.neuron + "-" + s.input);
    var label = $("label-" + s.layer + "-" + s.neuron + "-" + s.input);
    var line = edge.querySelector(".edge-line"), m = maxAbsGrad();
    label.classList.add("has-grad");
    label.querySelector(".label-bg").setAttribute("height", "34");
    line.style.stroke = s.value > 0 ? "var(--pos)" : (s.value < 0 ? "var(--neg)" : "var(--line)");
    line.style.strokeWidth = String(1.5 + (m > 0 ? 6.5 * Math.sqrt(Math.abs(s.value) / m) : 0));
    edgeTitle(edge, s.layer, s.neuron, s.input, stateData().weights[s.layer - 1][s.neuron][s.input], s.value);
  }

  function highlight(s) {
    clearHighlight();
    var l = s.layer, j = s.neuron, i;
    if (s.kind === "loss") {
      mark("node-loss", "current");
      for (i = 0; i < SIZES[L]; i++) { mark("node-" + L + "-" + i, "involved"); mark("edge-loss-" + i, "involved"); }
      return;
    }
    if (s.kind === "dL/dW") {
      mark("edge-" + l + "-" + j + "-" + s.input, "current");
      mark("node-" + l + "-" + j, "involved"); mark("node-" + (l - 1) + "-" + s.input, "involved");
      return;
    }
    mark("node-" + l + "-" + j, "current");
    if (s.kind === "z") {
      for (i = 0; i < SIZES[l - 1]; i++) { mark("edge-" + l + "-" + j + "-" + i, "involved"); mark("node-" + (l - 1) + "-" + i, "involved"); }
    } else if (s.kind === "a" && DATA.network.output === "softmax" && l === L) {
      for (i = 0; i < SIZES[L]; i++) if (i !== j) mark("node-" + L + "-" + i, "involved");
    } else if (s.kind === "dL/da") {
      if (l === L) { mark("node-loss", "involved"); mark("edge-loss-" + j, "involved"); }
      else for (i = 0; i < SIZES[l + 1]; i++) { mark("edge-" + (l + 1) + "-" + i + "-" + j, "involved"); mark("node-" + (l + 1) + "-" + i, "involved"); }
    }
  }

  function setLatest(li) {
    var old = logEl.querySelector("li.latest");
    if (old) old.classList.remove("latest");
    if (li) li.classList.add("latest");
    logEl.scrollTop = logEl.scrollHeight;
  }
  function logHeading(text) {
    var li = document.createElement("li");
    li.className = "heading";
    li.textContent = text;
    logEl.appendChild(li);
    return li;
  }
  function logOp(s, cls) {
    var li = document.createElement("li");
    li.className = "op " + cls;
    li.setAttribute("data-symbol", s.symbol);
    li.setAttribute("data-value", full(s.value));
    li.title = s.symbol + " = " + full(s.value);
    li.innerHTML = '<span class="sym">' + esc(s.symbol) + "</span>" + (cls === "update" ? " ← " : " = ") + esc(s.formula) +
      "<br>" + "&nbsp;".repeat(s.symbol.length) + (cls === "update" ? " ← " : " = ") + esc(s.expression) +
      (s.description ? '<span class="d">' + esc(s.description) + "</span>" : "");
    logEl.appendChild(li);
    return li;
  }

  function showCurrent(phase, s, extra) {
    var label = { forward: "forward pass", backward: "backward pass", update: "gradient-descent step" }[phase] || phase;
    currentEl.innerHTML = '<div class="phase ' + phase + '">' + esc(label) + (extra ? " · " + esc(extra) : "") + "</div>" +
      (s ? '<div class="eq"><b>' + esc(s.symbol) + "</b> = " + esc(s.formula) + "<br>" +
           "&nbsp;".repeat(s.symbol.length) + " = " + esc(s.expression) + "</div>" +
           '<div class="desc">' + esc(s.description) + ' <span title="' + esc(s.symbol + " = " + full(s.value)) +
           '">(full precision: ' + esc(full(s.value)) + ")</span></div>" : "");
  }

  function reveal(quiet) {
    var i = state.cursor, s = stepAt(i);
    if (i === 0) logHeading("Forward pass" + (state.k ? " after step " + state.k : "") +
                            " (lr " + run().lr + (state.k ? "" : ", not used yet") + ")");
    if (i === N_FORWARD) logHeading("Backward pass: the chain rule from the loss back to the input");
    clearFresh();
    show(s.symbol, s.value, true);
    if (s.kind === "dL/dW") colourEdge(s);
    if (s.kind === "loss") addTraining(state.k, s.value, false);
    var li = logOp(s, s.phase);
    state.cursor += 1;
    if (!quiet) {
      highlight(s); setLatest(li);
      showCurrent(s.phase, s, (s.phase === "forward" ? "operation " + (i + 1) + " of " + N_FORWARD
        : "operation " + (i - N_FORWARD + 1) + " of " + (STEPS.length - N_FORWARD)));
    }
    return { step: s, li: li };
  }

  function addTraining(k, loss, latest) {
    var body = $("training-body"), id = "loss-step-" + k;
    if ($(id)) return;
    var tr = document.createElement("tr");
    tr.innerHTML = "<td>" + (k === 0 ? "start" : k) + "</td><td>" + esc(k === 0 ? "" : run().lr) +
      '</td><td class="num" id="' + id + '" data-value="' + esc(full(loss)) + '" title="' + esc(full(loss)) + '">' + esc(fmt(loss)) + "</td>";
    body.appendChild(tr);
    var old = body.querySelector("tr.latest");
    if (latest) { if (old) old.classList.remove("latest"); tr.classList.add("latest"); }
  }

  function forward() { if (state.cursor < N_FORWARD) reveal(false); update(); }
  function backward() { if (state.cursor >= N_FORWARD && state.cursor < STEPS.length) reveal(false); update(); }
  function finish() {
    var end = state.cursor < N_FORWARD ? N_FORWARD : STEPS.length, last = null;
    while (state.cursor < end) last = reveal(true);
    if (last) {
      highlight(last.step); setLatest(last.li);
      showCurrent(last.step.phase, last.step, "pass complete");
    }
    update();
  }

  function step() {
    var r = run();
    if (state.k + 1 >= r.states.length) return;
    var last = null, before = stateData().loss;
    while (state.cursor < STEPS.length) last = reveal(true);
    state.locked = true;
    state.k += 1;
    state.cursor = 0;
    var st = stateData();
    logHeading("Step " + state.k + " with lr = " + r.lr + ": every parameter moves against its gradient");
    var li = null;
    st.updates.forEach(function (u) { li = logOp(u, "update"); });
    addTraining(0, r.states[0].loss, false);
    addTraining(state.k, st.loss, true);
    var nl = { symbol: "L", formula: "loss after step " + state.k + " (a forward pass with the new weights)",
               expression: fmt(st.loss) + " (was " + fmt(before) + ")", value: st.loss,
               description: "computed by pybackprop's reference implementation" };
    li = logOp(nl, "newloss");
    setLatest(li);
    clearPass();
    showParameters();
    showCurrent("update", nl, "step " + state.k + " applied; Forward replays the pass with the new weights");
    update();
  }

  function reset() {
    state.run = Number(lrEl.value);
    state.k = 0; state.cursor = 0; state.locked = false;
    logEl.innerHTML = "";
    $("training-body").innerHTML = "";
    clearPass(); clearFresh();
    showParameters();
    for (var k = 0; k < SIZES[0]; k++) show("a[0][" + k + "]", DATA.x[k]);
    showTarget();
    currentEl.innerHTML = '<div class="phase">ready</div><div class="desc">Press <b>Forward</b> to compute the first ' +
      "weighted input, one operation at a time; then <b>Backward</b> walks the chain rule back from the loss. " +
      "<b>Step</b> applies one gradient-descent step, <b>Reset</b> starts over. Keys: F, B, E, S, R.</div>";
    update();
  }

  function update() {
    var r = run(), n = STEPS.length;
    $("btn-forward").disabled = state.cursor >= N_FORWARD;
    $("btn-backward").disabled = state.cursor < N_FORWARD || state.cursor >= n;
    $("btn-finish").disabled = state.cursor >= n;
    $("btn-step").disabled = state.k + 1 >= r.states.length;
    lrEl.disabled = state.locked;
    var where = state.cursor < N_FORWARD ? "forward " + state.cursor + "/" + N_FORWARD
      : (state.cursor < n ? "backward " + (state.cursor - N_FORWARD) + "/" + (n - N_FORWARD) : "both passes done");
    var msg = "state after " + state.k + " step" + (state.k === 1 ? "" : "s") + " · " + where;
    if (state.k + 1 >= r.states.length) {
      msg += r.stopped ? " · " + r.stopped : " · all " + (r.states.length - 1) + " precomputed steps used; Reset to start again";
    }
    $("progress").textContent = msg;
  }

  function showTarget() {
    var y = DATA.y;
    if (Array.isArray(y) && y.length > 1) { y.forEach(function (v, k) { show("y[" + k + "]", v); }); return; }
    show("y", Array.isArray(y) ? y[0] : y);
    if (DATA.network.loss === "cross_entropy" && !Array.isArray(y)) {
      // a class label, not a number to format
      valueEls("y").forEach(function (el) { el.firstChild.nodeValue = "class " + y; });
    }
  }

  $("btn-forward").addEventListener("click", forward);
  $("btn-backward").addEventListener("click", backward);
  $("btn-finish").addEventListener("click", finish);
  $("btn-step").addEventListener("click", step);
  $("btn-reset").addEventListener("click", reset);
  lrEl.addEventListener("change", function () { if (!state.locked) reset(); });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = e.target && e.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return;
    var id = { f: "btn-forward", b: "btn-backward", e: "btn-finish", s: "btn-step", r: "btn-reset" }[(e.key || "").toLowerCase()];
    if (id && !$(id).disabled) { e.preventDefault(); $(id).click(); }
  });
  reset();
})();
"""


if __name__ == "__main__":
    import sys

    sys.exit(main())
