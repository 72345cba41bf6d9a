"""End-to-end test of the interactive page in headless Chromium (through Selenium).

Needs the ``selenium`` package, Chromium and chromedriver (Debian:
``apt-get install -y chromium chromium-driver``; ``pip install selenium``);
skipped with the reason when one of them is missing.

Set ``PYBACKPROP_EXPLAIN_SCREENSHOT=/some/path.png`` to keep a copy of the
screenshot taken after the full backward pass.
"""

import math
import os
import shutil

import numpy as np
import pytest

selenium = pytest.importorskip("selenium", reason="the browser test needs the selenium package "
                                                  "(pip install selenium)")
import browser_tools  # noqa: E402  (tests/browser_tools.py)
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

import pybackprop  # noqa: E402
from pybackprop import explain_html, reference  # noqa: E402

if browser_tools.CHROMIUM is None or browser_tools.CHROMEDRIVER is None:
    pytest.skip("the browser test needs Chromium and chromedriver on PATH "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)

EXAMPLE = reference.textbook_221()
STEPS = reference.computation_steps(**EXAMPLE)
N_FORWARD = sum(s["phase"] == "forward" for s in STEPS)
BLUE, ORANGE = "rgb(31, 111, 209)", "rgb(224, 100, 15)"  # --neg and --pos of the page


@pytest.fixture(scope="module")
def driver():
    d = browser_tools.chrome(1500, 1100, console_log=True)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def textbook_uri(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "textbook.html"
    explain_html.write_html(path)
    return path.as_uri()


def open_page(driver, uri):
    driver.get(uri)
    driver.get_log("browser")  # start each page with an empty console log
    assert driver.find_element("id", "explain-data")


def no_console_errors(driver):
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def shown(driver, symbol):
    """(displayed text, data-value) of the graph's number for symbol."""
    return driver.execute_script(
        "var el = document.querySelector('#graph .num[data-symbol=\"' + arguments[0] + '\"]');"
        "var text = Array.prototype.filter.call(el.childNodes, function (n) { return n.nodeType === 3; })"
        "  .map(function (n) { return n.nodeValue; }).join('');"
        "return [text, el.getAttribute('data-value')];", symbol)


def assert_shows(driver, symbol, value):
    """The page shows value correctly rounded to the digits it displays, and in full."""
    text, full = shown(driver, symbol)
    assert text, f"{symbol} is not displayed"
    assert float(full) == value, symbol  # the tooltip / data attribute: every digit
    displayed = float(text)
    if value != 0:
        digits = len(text.lstrip("-").split("e")[0].replace(".", "").lstrip("0"))
        assert 1 <= digits <= 5
        unit = 10.0 ** (math.floor(math.log10(abs(value))) - 4)  # 5 significant digits
        assert abs(displayed - value) <= 0.5 * unit * (1 + 1e-9), (symbol, text, value)
        assert displayed == float(f"{value:.5g}"), (symbol, text, value)
    else:
        assert displayed == 0.0


def click(driver, button):
    driver.find_element("id", button).click()


def enabled(driver, button):
    return driver.find_element("id", button).is_enabled()


def latest_log_symbol(driver):
    return driver.execute_script(
        "var li = document.querySelector('#log li.latest'); return li && li.getAttribute('data-symbol');")


def log_symbols(driver):
    return driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#log li.op'),"
        " function (li) { return li.getAttribute('data-symbol'); });")


def edge_stroke(driver, l, j, k):
    return driver.execute_script(
        "return getComputedStyle(document.querySelector('#edge-' + arguments[0] + ' .edge-line')).stroke;",
        f"{l}-{j}-{k}")


def textbook_net():
    net = pybackprop.MLP([2, 2, 1], activation="sigmoid", output="sigmoid", loss="squared_error")
    for W, b, W_ref, b_ref in zip(net.weights, net.biases, EXAMPLE["weights"], EXAMPLE["biases"]):
        W[...] = W_ref
        b[...] = b_ref
    return net, np.array([EXAMPLE["x"]]), np.array([EXAMPLE["y"]])


def test_forward_then_backward_one_operation_at_a_time(driver, textbook_uri, tmp_path):
    open_page(driver, textbook_uri)
    assert enabled(driver, "btn-forward") and not enabled(driver, "btn-backward")
    assert log_symbols(driver) == []
    assert shown(driver, "z[1][0]") == ["", None]
    assert_shows(driver, "W[1][0][1]", 0.5)
    assert_shows(driver, "b[2][0]", 0.1)
    assert_shows(driver, "a[0][1]", 0.3)
    assert_shows(driver, "y", 0.8)

    for i, step in enumerate(STEPS[:N_FORWARD]):
        assert not enabled(driver, "btn-backward")
        click(driver, "btn-forward")
        assert latest_log_symbol(driver) == step["symbol"]
        assert_shows(driver, step["symbol"], step["value"])
        if i + 1 < N_FORWARD:  # the next quantity is still hidden
            assert shown(driver, STEPS[i + 1]["symbol"])[0] == ""
    current = driver.find_element("css selector", "#graph .current")
    assert current.get_attribute("id") == "node-loss"
    assert not enabled(driver, "btn-forward") and enabled(driver, "btn-backward")
    current_op = driver.find_element("id", "current-op").text
    assert STEPS[N_FORWARD - 1]["expression"] in current_op  # "... = 0.00428835"
    assert repr(STEPS[N_FORWARD - 1]["value"]) in current_op  # in full

    for step in STEPS[N_FORWARD:]:
        click(driver, "btn-backward")
        assert latest_log_symbol(driver) == step["symbol"]
        assert_shows(driver, step["symbol"], step["value"])
        if step["kind"] == "dL/dW":
            key = f"{step['layer']}-{step['neuron']}-{step['input']}"
            assert "current" in driver.find_element("id", f"edge-{key}").get_attribute("class")
            assert "current" in driver.find_element("id", f"label-{key}").get_attribute("class")
        else:
            assert driver.find_element("css selector", "#graph .node.current").get_attribute("id") == \
                f"node-{step['layer']}-{step['neuron']}"
    assert not enabled(driver, "btn-backward") and not enabled(driver, "btn-finish")

    # everything performed is in the log, in order, and every number is on the graph
    assert log_symbols(driver) == [s["symbol"] for s in STEPS]
    for step in STEPS:
        assert_shows(driver, step["symbol"], step["value"])
    log_text = driver.find_element("id", "log").text
    assert "0.2*0.5 + 0.5*0.3 + 0.1 = 0.35" in log_text
    assert "(-0.00278912) * 0.5 = -0.00139456" in log_text
    # the log is scrolled to its latest line
    assert driver.execute_script(
        "var log = document.getElementById('log');"
        "return log.scrollHeight > log.clientHeight"
        " && log.scrollTop + log.clientHeight >= log.scrollHeight - 2;")
    # every gradient of the example is negative: blue edges, thicker for larger |dL/dW|
    for l, j, k in ((1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (2, 0, 0), (2, 0, 1)):
        assert edge_stroke(driver, l, j, k) == BLUE
    width = driver.execute_script(
        "return [parseFloat(document.querySelector('#edge-2-0-1 .edge-line').style.strokeWidth),"
        "        parseFloat(document.querySelector('#edge-1-0-1 .edge-line').style.strokeWidth)];")
    assert width[0] > 2 * width[1]  # |dL/dW[2][0][1]| = 0.0118 > |dL/dW[1][0][1]| = 0.00084
    no_console_errors(driver)

    png = tmp_path / "after_backward.png"
    driver.save_screenshot(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
    keep = os.environ.get("PYBACKPROP_EXPLAIN_SCREENSHOT")
    if keep:
        shutil.copyfile(png, keep)


def test_step_with_chosen_learning_rate_then_reset(driver, textbook_uri):
    open_page(driver, textbook_uri)
    lr_select = Select(driver.find_element("id", "lr"))
    assert lr_select.first_selected_option.text == "0.5"
    assert [o.text for o in lr_select.options] == ["0.01", "0.1", "0.5", "1", "2", "5"]
    lr_select.select_by_visible_text("2")
    click(driver, "btn-finish")  # forward pass
    click(driver, "btn-finish")  # backward pass
    click(driver, "btn-step")

    net, X, y = textbook_net()
    loss_before = net.train_step(X, y, 2.0)  # the compiled core's own SGD step
    loss_after = net.loss(X, y)
    assert loss_after < loss_before
    text, full = driver.execute_script(
        "var td = document.getElementById('loss-step-1');"
        " return [td.textContent, td.getAttribute('data-value')];")
    assert float(text) == float(f"{loss_after:.5g}")
    assert float(full) == pytest.approx(loss_after, rel=1e-12)
    start = driver.find_element("id", "loss-step-0").get_attribute("data-value")
    assert float(start) == pytest.approx(loss_before, rel=1e-12)
    # the edges and cards carry the new parameters, W - lr * dL/dW
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        for (j, k), w in np.ndenumerate(W):
            text, full = shown(driver, f"W[{l}][{j}][{k}]")
            assert float(text) == float(f"{w:.5g}") and float(full) == pytest.approx(w, rel=1e-14)
        for j, v in enumerate(b):
            text, full = shown(driver, f"b[{l}][{j}]")
            assert float(text) == float(f"{v:.5g}") and float(full) == pytest.approx(v, rel=1e-14)
    assert "W[1][0][0]" in log_symbols(driver) and "b[2][0]" in log_symbols(driver)
    assert not driver.find_element("id", "lr").is_enabled()  # fixed until Reset
    assert shown(driver, "z[1][0]")[0] == ""  # a new pass starts
    assert enabled(driver, "btn-forward")

    # Step straight away: the page finishes the passes itself, then steps again
    click(driver, "btn-step")
    net.train_step(X, y, 2.0)
    full = driver.find_element("id", "loss-step-2").get_attribute("data-value")
    assert float(full) == pytest.approx(net.loss(X, y), rel=1e-12)
    # Forward now replays the forward pass with the weights after two steps
    click(driver, "btn-forward")
    z = net.weights[0][0] @ X[0] + net.biases[0][0]
    assert float(shown(driver, "z[1][0]")[1]) == pytest.approx(z, rel=1e-13)

    click(driver, "btn-reset")
    assert log_symbols(driver) == []
    assert driver.find_elements("css selector", "#training-body tr") == []
    assert driver.find_element("id", "lr").is_enabled()
    assert enabled(driver, "btn-forward") and not enabled(driver, "btn-backward")
    assert shown(driver, "z[1][0]") == ["", None]
    assert_shows(driver, "W[1][0][0]", 0.2)
    assert_shows(driver, "b[1][1]", 0.2)
    assert edge_stroke(driver, 1, 0, 0) != BLUE
    no_console_errors(driver)


def test_keyboard_drives_the_page(driver, textbook_uri):
    open_page(driver, textbook_uri)
    driver.find_element("tag name", "body").send_keys("f")
    assert latest_log_symbol(driver) == "z[1][0]"
    forward = driver.find_element("id", "btn-forward")
    forward.send_keys(Keys.ENTER)
    assert latest_log_symbol(driver) == "z[1][1]"
    assert driver.switch_to.active_element == forward  # buttons take the focus
    forward.send_keys(Keys.SPACE)
    assert latest_log_symbol(driver) == "a[1][0]"
    driver.find_element("tag name", "body").send_keys("e")
    assert latest_log_symbol(driver) == "L"
    driver.find_element("tag name", "body").send_keys("b")
    assert latest_log_symbol(driver) == "dL/da[2][0]"
    driver.find_element("tag name", "body").send_keys("r")
    assert log_symbols(driver) == []
    no_console_errors(driver)


def test_user_network_softmax_with_class_label(driver, tmp_path):
    net = pybackprop.MLP([3, 4, 2], output="softmax", seed=0)
    x = np.array([0.2, -0.4, 1.0])
    path = explain_html.write_html(tmp_path / "user.html", net, x, 1)
    open_page(driver, (tmp_path / "user.html").as_uri())
    assert os.path.exists(path)
    steps = reference.computation_steps([W.tolist() for W in net.weights],
                                        [b.tolist() for b in net.biases], x.tolist(), 1,
                                        "relu", "softmax", "cross_entropy")
    click(driver, "btn-finish")
    click(driver, "btn-finish")
    assert log_symbols(driver) == [s["symbol"] for s in steps]
    for step in steps:
        assert_shows(driver, step["symbol"], step["value"])
        if step["kind"] == "dL/dW":
            colour = edge_stroke(driver, step["layer"], step["neuron"], step["input"])
            if step["value"] != 0:
                assert colour == (ORANGE if step["value"] > 0 else BLUE), step["symbol"]
    assert any(s["kind"] == "dL/dW" and s["value"] > 0 for s in steps)
    assert any(s["kind"] == "dL/dW" and s["value"] < 0 for s in steps)
    assert shown(driver, "y")[0] == "class 1"
    assert shown(driver, "dL/da[2][0]")[0] == "—"
    loss, _, _ = net.loss_and_grad(x[None, :], np.array([1]))
    assert float(shown(driver, "L")[1]) == pytest.approx(loss, rel=1e-12)
    no_console_errors(driver)


def test_screenshot_of_the_whole_page(tmp_path):
    png = tmp_path / "page.png"
    assert browser_tools.screenshot(png, stage="step") == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1500 and height > 700  # the whole page, not just a window
