"""End-to-end tests of ``python -m pybackprop``: every command through a subprocess."""

import csv
import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import pybackprop
from pybackprop import cli, standardize, tables
from pybackprop._validation import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from pybackprop.datasets import load_digits, make_moons, train_test_split


def run(*args, cwd=None, timeout=120):
    """Run ``python -m pybackprop args`` and return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "pybackprop", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def assert_one_line_error(result, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


# ---------------------------------------------------------------------------
# the default run (the slowest piece: once per module)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    model = tmp_path_factory.mktemp("default") / "digits.npz"
    return run("--save", model), model


def test_default_run_credits_checks_and_reaches_95_percent(default_run):
    result, _ = default_run
    assert result.returncode == 0, result.stderr
    out = result.stdout
    first_lines = out.splitlines()[:3]
    assert any("UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), CC BY 4.0"
               in line for line in first_lines)
    assert "1347 for training, 450 for testing" in out
    check = re.search(r"gradient check, compiled core vs pure-Python reference on (\d+) samples: "
                      r"worst relative error (\S+) \(tolerance (\S+)\) PASS", out)
    assert check, out
    assert int(check.group(1)) >= 2
    assert float(check.group(2)) <= 1e-10
    accuracy = re.search(r"test accuracy: ([0-9.]+) \((\d+)/450\)", out)
    assert accuracy, out
    assert float(accuracy.group(1)) >= 0.95
    assert int(accuracy.group(2)) == round(float(accuracy.group(1)) * 450)
    timing = re.search(r"training time: ([0-9.]+) s \((\d+) epochs, ([0-9,]+) samples/s\)", out)
    assert timing, out
    assert int(timing.group(2)) == cli.DIGITS_EPOCHS
    assert int(timing.group(3).replace(",", "")) > 0
    # the tqdm progress bar (stderr) shows the loss and validation accuracy
    assert "val_accuracy=" in result.stderr and "loss=" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_run_saves_a_model_that_takes_raw_pixels(default_run):
    result, model = default_run
    assert f"saved the model to {model}" in result.stdout
    net = pybackprop.load(model)
    assert net.layer_sizes == (64, *cli.DIGITS_HIDDEN, 10)
    with open(cli.classes_path(str(model))) as f:
        assert json.load(f)["classes"] == list(range(10))
    # The scaler is folded into the first layer: raw test pixels give the
    # printed test accuracy.
    X, y = load_digits(return_X_y=True)
    _, X_test, _, y_test = train_test_split(X, y, test_size=cli.DIGITS_TEST_SIZE, seed=0,
                                            stratify=True)
    correct = int(np.sum(net.predict_classes(X_test) == y_test))
    printed = int(re.search(r"test accuracy: [0-9.]+ \((\d+)/450\)", result.stdout).group(1))
    assert abs(correct - printed) <= 1


def test_default_run_float32_reaches_95_percent():
    result = run("--dtype", "float32", "--quiet", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "float32" in result.stdout
    assert "training:" in result.stdout and "val_accuracy" not in result.stderr  # --quiet: no bar
    assert float(re.search(r"test accuracy: ([0-9.]+)", result.stdout).group(1)) >= 0.95


# ---------------------------------------------------------------------------
# train and predict


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def moons_csv(tmp_path_factory):
    """Two classes named 'left'/'right', features far from zero mean and unit scale."""
    X, y = make_moons(300, noise=0.1, seed=1)
    X = X * [500.0, 2.0] + [1000.0, -3.0]
    path = tmp_path_factory.mktemp("moons") / "moons.csv"
    names = np.array(["left", "right"])[y]
    write_csv(path, ["a", "kind", "b"],
              [[repr(float(a)), n, repr(float(b))] for (a, b), n in zip(X, names)])
    return path, X, names


def test_train_predict_csv_classification(moons_csv, tmp_path):
    data, X, names = moons_csv
    model = tmp_path / "moons.npz"
    result = run("train", "--data", data, "--label", "kind", "--hidden", "32,32", "--epochs", 80,
                 "--save", model)
    assert result.returncode == 0, result.stderr
    assert "2 classes: left, right" in result.stdout
    val = re.search(r"validation: loss \S+, accuracy ([0-9.]+) \((\d+)/60\)", result.stdout)
    assert val and float(val.group(1)) >= 0.9, result.stdout
    assert "Traceback" not in result.stderr
    sidecar = tmp_path / "moons.classes.json"
    assert json.loads(sidecar.read_text()) == {
        "classes": ["left", "right"], "label": "kind",
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest()}

    predictions = tmp_path / "pred.csv"
    result = run("predict", "--model", model, "--data", data, "--label", "kind",
                 "--output", predictions)
    assert result.returncode == 0, result.stderr
    assert f"wrote 300 predictions to {predictions}" in result.stdout
    header, rows = read_csv(predictions)
    assert header == ["kind", "prob_left", "prob_right"]
    probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
    net = pybackprop.load(model)
    # raw features in, exactly the loaded network's outputs out
    np.testing.assert_array_equal(probabilities, net.predict(X))
    labels = np.array([row[0] for row in rows])
    np.testing.assert_array_equal(labels, np.array(["left", "right"])[net.predict_classes(X)])
    # standardisation round trip: on raw features (means ~1000, scales ~500)
    # the saved model classifies as well as it did in training
    assert np.mean(labels == names) >= 0.9


def test_train_without_standardization_keeps_the_weights_as_trained(moons_csv, tmp_path):
    data, X, _ = moons_csv
    model = tmp_path / "raw.npz"
    result = run("train", "--data", data, "--label", "kind", "--no-standardize", "--epochs", 2,
                 "--quiet", "--save", model, "--optimizer", "sgd", "--lr", "1e-6", "--momentum", 0)
    assert result.returncode == 0, result.stderr
    assert "standardising" not in result.stdout
    assert "training: loss" in result.stdout
    assert pybackprop.load(model).n_in == 2


def test_fold_standardization_is_exact():
    rng = np.random.default_rng(0)
    net = pybackprop.MLP([3, 5, 2], activation="tanh", seed=0)
    X = rng.normal(50.0, 20.0, size=(10, 3))
    mean, scale = X.mean(axis=0), X.std(axis=0)
    y_mean, y_scale = np.array([3.0, -1.0]), np.array([10.0, 0.5])
    expected = net.predict((X - mean) / scale) * y_scale + y_mean
    folded = standardize.fold_standardization(net.copy(), mean, scale, y_mean, y_scale)
    np.testing.assert_allclose(folded.predict(X), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="identity output"):
        standardize.fold_standardization(pybackprop.MLP([3, 2], output="softmax"), mean, scale,
                                         y_mean, y_scale)
    # still importable from the command line's module, where it used to live
    assert cli.fold_standardization is standardize.fold_standardization
    assert cli.read_data is tables.read_data


def test_tables_read_a_csv_and_encode_its_labels(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,kind\n1.5,2,yes\n-3,4e1,no\n0,0,yes\n", encoding="utf-8")
    table = tables.read_data(str(path))
    np.testing.assert_array_equal(table.X, [[1.5, 2.0], [-3.0, 40.0], [0.0, 0.0]])
    assert table.X.dtype == np.float64
    assert table.feature_names == ["a", "b"] and table.label_name == "kind"
    classes, y = tables.encode_classes(table.y, str(path), table.label_name)
    assert classes == ["no", "yes"] and y.tolist() == [1, 0, 1]
    # Text labels stay text: "1.0" and "1" are two classes, ordered by value.
    classes, y = tables.encode_classes(np.array(["2", "1.0", "1", "10"]), "f.csv", "k")
    assert classes == ["1", "1.0", "2", "10"] and y.tolist() == [2, 1, 0, 3]
    np.testing.assert_array_equal(tables.regression_targets(np.array(["0.5", "-2"]), "f", "t"),
                                  [0.5, -2.0])
    with pytest.raises(tables.DataFileError, match="the label 't' in f has the value"):
        tables.regression_targets(np.array(["0.5", "x"]), "f", "t")
    with pytest.raises(ValueError, match="does not exist"):
        tables.read_data(str(tmp_path / "missing.csv"))


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2.0, 2.0, size=(400, 3)) * [1.0, 100.0, 0.01]
    y = np.sin(X[:, 0]) + (X[:, 1] / 100.0) ** 2 + 50.0
    return X, y


def test_train_predict_csv_regression(regression_data, tmp_path):
    X, y = regression_data
    data = tmp_path / "reg.csv"
    write_csv(data, ["target", "u", "v", "w"],
              [[repr(float(t)), *(repr(float(v)) for v in row)] for t, row in zip(y, X)])
    model = tmp_path / "reg.npz"
    result = run("train", "--data", data, "--label", "target", "--task", "regression",
                 "--epochs", 150, "--early-stopping", "--patience", 20, "--quiet", "--save", model)
    assert result.returncode == 0, result.stderr
    r2 = float(re.search(r"validation: RMSE \S+, R\^2 ([0-9.-]+)", result.stdout).group(1))
    assert r2 >= 0.9, result.stdout
    assert not (tmp_path / "reg.classes.json").exists()

    result = run("predict", "--model", model, "--data", data, "--label", 0)  # to stdout
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 401
    values = np.array([float(v) for v in lines[1:]])
    net = pybackprop.load(model)
    np.testing.assert_array_equal(values, net.predict(X)[:, 0])
    # targets around 50 and features scaled by 100: only a correct fold of
    # both scalers gives predictions this close on raw data
    assert np.sqrt(np.mean((values - y) ** 2)) < 0.3 * np.std(y)


def test_train_predict_npz_and_npy(regression_data, tmp_path):
    X, y = make_moons(200, noise=0.1, seed=2)
    data = tmp_path / "moons.npz"
    np.savez(data, X=X, y=y)
    model = tmp_path / "m.npz"
    result = run("train", "--data", data, "--quiet", "--epochs", 60, "--dtype", "float32",
                 "--save", model)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.classes.json").read_text())["classes"] == [0, 1]
    predictions = tmp_path / "p.csv"
    assert run("predict", "--model", model, "--data", data, "--output", predictions).returncode == 0
    header, rows = read_csv(predictions)
    assert header == ["y", "prob_0", "prob_1"]
    net = pybackprop.load(model)
    assert net.dtype == np.float32
    np.testing.assert_array_equal(np.array([[float(v) for v in r[1:]] for r in rows]),
                                  net.predict(X).astype(np.float64))
    np.testing.assert_array_equal([int(r[0]) for r in rows], net.predict_classes(X))
    assert np.mean(net.predict_classes(X) == y) >= 0.9

    # a single 2-D .npy array with the target in column 0
    Xr, yr = regression_data
    table = tmp_path / "reg.npy"
    np.save(table, np.column_stack([yr, Xr]))
    model = tmp_path / "r.npz"
    result = run("train", "--data", table, "--label", 0, "--task", "regression", "--quiet",
                 "--hidden", "16", "--activation", "tanh", "--optimizer", "adamw",
                 "--epochs", 5, "--save", model)
    assert result.returncode == 0, result.stderr
    net = pybackprop.load(model)
    assert net.layer_sizes == (3, 16, 1) and net.activations == ("tanh",)
    result = run("predict", "--model", model, "--data", table, "--label", 0)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal([float(v) for v in result.stdout.splitlines()[1:]],
                                  net.predict(Xr)[:, 0])


def test_train_plot(moons_csv, tmp_path):
    data, _, _ = moons_csv
    plot = tmp_path / "curve.png"
    result = run("train", "--data", data, "--label", "kind", "--epochs", 3, "--quiet",
                 "--plot", plot)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        # checked before training: nothing trained, one line, exit 2
        assert assert_one_line_error(result) == \
            "error: --plot needs matplotlib: pip install pybackprop[plot]"
        assert result.stdout == ""
        assert not plot.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# explain, gradcheck, bench


def test_explain_textbook_example():
    result = run("explain")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Network 2-2-1: hidden activation sigmoid, output sigmoid")
    for value in ("0.35", "0.47", "0.586618", "0.707389", "-0.0112451", "-0.0117965", "-0.0191694"):
        assert value in out, value
    assert "compiled core (float64): output [0.7073895241], loss 0.004288350125" in out
    assert "dL/dW[2] = [[-0.01124510937, -0.01179653984]]" in out


def test_explain_own_network(tmp_path):
    result = run("explain", "--layers", "2,3,2", "--output", "softmax", "--seed", 1,
                 "--x=-0.5,0.3", "--y", 1, "--digits", 4)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Network 2-3-2: hidden activation relu, output softmax, "
                                    "loss cross_entropy")
    assert "x = [-0.5, 0.3]; target y = 1" in result.stdout
    net = pybackprop.MLP([2, 3, 2], output="softmax", seed=1)
    loss = net.loss(np.array([[-0.5, 0.3]]), np.array([1]))
    assert f"loss {loss:.10g}" in result.stdout

    model = tmp_path / "small.npz"
    net.save(model)
    result = run("explain", "--model", model, "--seed", 5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Network 2-3-2")


def test_explain_html(tmp_path):
    page = tmp_path / "page.html"
    result = run("explain", "--html", page)
    assert result.returncode == 0, result.stderr
    assert f"wrote the explained computation to {page}" in result.stdout
    assert "<html" in page.read_text(encoding="utf-8").lower()
    too_big = run("explain", "--html", tmp_path / "big.html", "--layers", "30,30,2")
    assert "too many to draw" in assert_one_line_error(too_big)
    assert not (tmp_path / "big.html").exists()


def test_gradcheck_passes():
    result = run("gradcheck", "--layers", "3,6,4,2", "--activation", "relu,sigmoid",
                 "--output", "sigmoid", "--loss", "squared_error", "--samples", 5, "--seed", 2)
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("network: MLP 3-6-4-2 relu,sigmoid, sigmoid + squared_error")
    assert lines[1].startswith("PASS  pure-Python reference")
    assert lines[2].startswith("PASS  finite differences")
    assert lines[-1] == "PASS"
    assert float(re.search(r"worst relative error (\S+)", lines[1]).group(1)) <= 1e-10


def test_gradcheck_float32():
    result = run("gradcheck", "--dtype", "float32")
    assert result.returncode == 0, result.stdout
    assert "float32" in result.stdout and result.stdout.splitlines()[-1] == "PASS"


def test_gradcheck_fails_with_exit_code_1():
    # a step of 1 is far too coarse for a difference quotient of sigmoids
    result = run("gradcheck", "--activation", "sigmoid", "--eps", 1)
    assert result.returncode == 1, result.stdout
    assert "FAIL  finite differences (eps 1" in result.stdout
    assert "PASS  pure-Python reference" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAIL")
    assert "Traceback" not in result.stderr


def test_bench_help():
    # bench --quick takes ~40 s on 2 cores, so CI runs it separately; here the
    # help shows that the command reaches the benchmark's own parser.
    result = run("bench", "--help")
    assert result.returncode == 0
    assert "--quick" in result.stdout and "python -m pybackprop bench" in result.stdout


def test_bench_passes_its_arguments_through(monkeypatch):
    from pybackprop.bench import runner

    seen = []
    monkeypatch.setattr(runner, "main", lambda argv=None: seen.append(argv) or 0)
    assert cli.main(["bench", "--quick", "--configs", "tiny", "--plain"]) == 0
    assert seen == [["--quick", "--configs", "tiny", "--plain"]]
    monkeypatch.setattr(runner, "main", lambda argv=None: 2)
    assert cli.main(["bench", "--impls", "nothing"]) == 2


def test_help_of_every_command(capsys):
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "predict", "bench", "explain", "gradcheck"):
        assert command in result.stdout
    for command, option in (("train", "--validation-split"), ("predict", "--output"),
                            ("explain", "--html"), ("gradcheck", "--samples")):
        assert cli.main([command, "--help"]) == 0
        assert option in capsys.readouterr().out, command


def test_help_names_come_from_the_library(capsys):
    """The activation, output and loss names in the help are the library's own."""
    assert cli.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"hidden activation ({', '.join(HIDDEN_ACTIVATIONS)}), or one per hidden layer" in text
    assert cli.main(["gradcheck", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--output {" + ",".join(OUTPUT_ACTIVATIONS) + "}" in text
    assert "--loss {" + ",".join(LOSSES) + "}" in text


def test_main_returns_exit_codes(capsys):
    assert cli.main(["gradcheck", "--layers", "2,2,2"]) == 0
    assert cli.main(["explain", "--layers", "2,2"]) == 0
    assert cli.main(["--version"]) == 0
    assert cli.main(["train", "--data", "no-such-file.csv"]) == 2
    assert cli.main(["no-such-command"]) == 2
    captured = capsys.readouterr()
    assert "error: data file 'no-such-file.csv' does not exist" in captured.err


# ---------------------------------------------------------------------------
# bad input: exit 2, one line on stderr, never a traceback


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    files = {
        "empty.csv": "",
        "header_only.csv": "a,b,label\n",
        "text_value.csv": "a,b,label\n1,2,0\n3,oops,1\n",
        "ragged.csv": "a,b,label\n1,2,0\n3,4\n",
        "no_header.csv": "1,2,0\n3,4,1\n",
        "one_class.csv": "a,b,label\n1,2,x\n3,4,x\n",
        "nan.csv": "a,b,label\n1,nan,0\n3,4,1\n",
        "text_target.csv": "a,b,price\n1,2,cheap\n3,4,dear\n",
        "ok.csv": "a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n",
        "not_a_model.npz": "this is not a zip file\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    np.savez(d / "wrong_keys.npz", features=np.ones((3, 2)), targets=np.ones(3), extra=np.ones(3))
    np.save(d / "one_d.npy", np.arange(5.0))
    np.save(d / "table.npy", np.arange(12.0).reshape(4, 3))
    np.save(d / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    net = pybackprop.MLP([2, 3, 2], output="softmax", seed=0)
    net.save(d / "model2.npz")
    return d


BAD_INPUT_CASES = {
    "missing data file": (["train", "--data", "missing.csv"], "does not exist"),
    "empty file": (["train", "--data", "empty.csv"], "is empty"),
    "header only": (["train", "--data", "header_only.csv"], "no data rows"),
    "non-numeric feature": (["train", "--data", "text_value.csv"], "'oops' is not a number"),
    "ragged row": (["train", "--data", "ragged.csv"], "line 3 has 2 fields"),
    "no header row": (["train", "--data", "no_header.csv"], "header row"),
    "unknown label column": (["train", "--data", "ok.csv", "--label", "price"],
                             "no column named 'price'"),
    "label index out of range": (["train", "--data", "ok.csv", "--label", "7"], "out of range"),
    "label name for an array file": (["train", "--data", "table.npy", "--label", "price"],
                                     "must be a column index, got 'price'"),
    "single class": (["train", "--data", "one_class.csv"], "at least 2 classes"),
    "nan feature": (["train", "--data", "nan.csv"], "NaN"),
    "non-numeric regression target": (["train", "--data", "text_target.csv", "--task",
                                       "regression"], "'cheap'"),
    "unknown activation": (["train", "--data", "ok.csv", "--activation", "relux"],
                           "unknown activation"),
    "activation list of the wrong length": (["train", "--data", "ok.csv", "--hidden", "4,4",
                                             "--activation", "relu,tanh,relu"], "activation"),
    "bad hidden sizes": (["train", "--data", "ok.csv", "--hidden", "4,x"], "--hidden"),
    "momentum with adam": (["train", "--data", "ok.csv", "--momentum", "0.9"], "--momentum"),
    "validation split too large": (["train", "--data", "ok.csv", "--validation-split", "1.5"],
                                   "--validation-split"),
    "negative learning rate": (["train", "--data", "ok.csv", "--lr", "-1"], "learning rate"),
    "npz with wrong arrays": (["train", "--data", "wrong_keys.npz"], "'X' and 'y'"),
    "1-D npy": (["train", "--data", "one_d.npy"], "2-D"),
    "string npy": (["train", "--data", "strings.npy"], "numeric"),
    "model is not a network file": (["predict", "--model", "not_a_model.npz", "--data", "ok.csv"],
                                    "not_a_model.npz"),
    "missing model": (["predict", "--model", "nope.npz", "--data", "ok.csv"], "does not exist"),
    "predict with a label column left in": (["predict", "--model", "model2.npz", "--data",
                                             "ok.csv"], "--label"),
    "explain --x of the wrong length": (["explain", "--layers", "2,3,1", "--x", "1,2,3"],
                                        "--x has 3 value(s)"),
    "explain a too large network": (["explain", "--layers", "20,30,10"], "at most 500"),
    "explain --y class out of range": (["explain", "--layers", "2,3", "--output", "softmax",
                                        "--y", "5"], "class label"),
    "explain --model and --layers": (["explain", "--model", "model2.npz", "--layers", "2,1"],
                                     "not both"),
    "gradcheck invalid output/loss pair": (["gradcheck", "--output", "identity", "--loss",
                                            "cross_entropy"], "valid"),
    "gradcheck one layer size": (["gradcheck", "--layers", "3"], "--layers"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_CASES))
def test_bad_input_is_one_line_exit_2(case, bad_files, monkeypatch, capsys):
    # In-process (an exception escaping main fails the test just as a
    # traceback would); a few cases also run as subprocesses below.
    args, expected = BAD_INPUT_CASES[case]
    monkeypatch.chdir(bad_files)
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("case", ["non-numeric feature", "model is not a network file",
                                  "explain --x of the wrong length"])
def test_bad_input_in_a_subprocess(case, bad_files):
    args, expected = BAD_INPUT_CASES[case]
    result = run(*args, cwd=bad_files)
    assert expected in assert_one_line_error(result)


@pytest.mark.parametrize("args", [
    ["train"],                                   # --data is required
    ["train", "--data", "ok.csv", "--optimizer", "rmsprop"],
    ["train", "--data", "ok.csv", "--dtype", "float16"],
    ["--epochs", "many"],
    ["--seed", "1", "train", "--data", "ok.csv"],   # default-run option before a command
    ["frobnicate"],
])
def test_usage_errors_exit_2(args, bad_files):
    result = run(*args, cwd=bad_files)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_diverged_training_exits_1_with_one_line(regression_data, tmp_path, capsys):
    X, y = regression_data
    data = tmp_path / "reg.npz"
    np.savez(data, X=X, y=y)
    code = cli.main(["train", "--data", str(data), "--task", "regression", "--optimizer", "sgd",
                     "--lr", "1e6", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged"), err


def test_outputs_are_checked_before_training(moons_csv, tmp_path, capsys):
    data, _, _ = moons_csv
    missing = tmp_path / "no" / "model.npz"
    assert cli.main(["train", "--data", str(data), "--save", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing read or trained
    assert "does not exist" in captured.err
