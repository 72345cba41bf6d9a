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
