"""The command line and the user's files: no command writes over one of its
inputs or removes a file it did not write; class labels come back exactly as
read; every numeric option is bounded where it is parsed (issue 14, items 3,
10 and 11)."""

import csv
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pybackprop
from pybackprop import cli

# Small and quick: the tests are about files, not accuracy.
QUICK = ["--quiet", "--epochs", "2", "--hidden", "4"]


def main(args):
    """cli.main with paths given as they are (the command line's strings)."""
    return cli.main([str(a) for a in args])


def main_error(args, capsys):
    """Run cli.main(args) in-process, expect exit 2 and one ``error:`` line; return it."""
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def snapshot(directory):
    """{name: (bytes, is_symlink)} of every entry of a directory."""
    return {p.name: (p.read_bytes() if p.is_file() else None, p.is_symlink())
            for p in sorted(directory.iterdir())}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path):
    """A CSV data file, a classifier model.npz trained on it and its class list."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "kind"])
        for i in range(40):
            writer.writerow([repr(float(rng.normal())), repr(float(rng.normal())),
                             "yes" if i % 2 else "no"])
    model = tmp_path / "model.npz"
    assert main(["train", "--data", str(data), "--save", str(model), *QUICK]) == 0
    assert (tmp_path / "model.classes.json").exists()
    return tmp_path, data, model


def regression_file(directory):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    np.savez(directory / "reg.npz", X=X, y=X @ [1.0, -2.0])
    return directory / "reg.npz"


# ---------------------------------------------------------------------------
# item 3: outputs never replace inputs


def _link(kind, target, link):
    if kind == "symlink":
        os.symlink(target, link)
    else:
        os.link(target, link)
    return link


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "other spelling"])
@pytest.mark.parametrize("victim", ["data", "model", "classes"])
def test_predict_never_writes_its_output_over_an_input(files, capsys, how, victim):
    d, data, model = files
    target = {"data": data, "model": model, "classes": d / "model.classes.json"}[victim]
    if how == "same path":
        output = target
    elif how == "other spelling":
        output = d / "." / "sub" / ".." / target.name
        (d / "sub").mkdir()
    else:
        output = _link(how, target, d / f"alias-{how.replace(' ', '_')}")
    before = snapshot(d)
    line = main_error(["predict", "--model", model, "--data", data, "--label", "kind",
                       "--output", output], capsys)
    assert "--output" in line and "same file" in line
    assert snapshot(d) == before


@pytest.mark.parametrize("option", ["--save", "--plot"])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_train_never_writes_over_its_data(files, capsys, option, how):
    d, data, model = files
    output = data if how == "same path" else _link(how, data, d / "alias.csv")
    before = snapshot(d)
    line = main_error(["train", "--data", data, option, output, *QUICK], capsys)
    assert option in line and "--data" in line
    assert capsys.readouterr().out == ""  # refused before reading or training
    assert snapshot(d) == before


def test_train_refuses_two_outputs_that_are_one_file(files, capsys):
    d, data, model = files
    before = snapshot(d)
    line = main_error(["train", "--data", data, "--save", d / "m2.npz", "--plot",
                       d / "m2.classes.json", *QUICK], capsys)
    assert "--plot" in line and "class list" in line
    line = main_error(["train", "--data", data, "--save", d / "new.npz", "--plot",
                       d / "new.npz", *QUICK], capsys)
    assert "--plot" in line and "--save" in line
    assert snapshot(d) == before


def test_explain_never_writes_its_page_over_the_model(files, capsys):
    d, _, model = files
    before = snapshot(d)
    line = main_error(["explain", "--model", model, "--html", model], capsys)
    assert "--html" in line and "--model" in line
    assert snapshot(d) == before


def test_a_model_name_without_npz_has_its_own_class_list(files, capsys):
    """train --save model.v2 used to delete model.classes.json, model.npz's."""
    d, data, model = files
    theirs = (d / "model.classes.json").read_bytes()
    assert cli.classes_path(str(d / "model.v2")) == str(d / "model.v2.classes.json")
    assert cli.classes_path(str(d / "model.npz")) == str(d / "model.classes.json")
    # regression: writes no class list and removes none
    assert main(["train", "--data", regression_file(d), "--task", "regression",
                 "--save", d / "model.v2", *QUICK]) == 0
    assert (d / "model.classes.json").read_bytes() == theirs
    assert not (d / "model.v2.classes.json").exists()
    # classification: its own class list
    assert main(["train", "--data", data, "--save", d / "model.v2", *QUICK]) == 0
    assert (d / "model.classes.json").read_bytes() == theirs
    mine = json.loads((d / "model.v2.classes.json").read_text())
    assert mine["classes"] == ["no", "yes"] and mine["model_sha256"] == sha256(d / "model.v2")
    capsys.readouterr()


def test_a_class_list_of_another_model_is_never_replaced(files, capsys):
    """model.npz and model map to the same class-list name: the first owns it."""
    d, data, model = files
    before = snapshot(d)
    line = main_error(["train", "--data", data, "--save", d / "model", *QUICK], capsys)
    assert "belongs to another model" in line and "model.classes.json" in line
    assert snapshot(d) == before
    # Retraining model.npz itself replaces its own class list.
    assert main(["train", "--data", data, "--save", model, "--seed", "3", *QUICK]) == 0
    assert json.loads((d / "model.classes.json").read_text())["model_sha256"] == sha256(model)


def test_a_regression_model_keeps_the_old_class_list_and_predict_ignores_it(files, capsys):
    d, data, model = files
    old = (d / "model.classes.json").read_bytes()
    reg = regression_file(d)
    assert main(["train", "--data", reg, "--task", "regression", "--save", model, *QUICK]) == 0
    assert (d / "model.classes.json").read_bytes() == old  # not ours to remove
    out = d / "p.csv"
    assert main(["predict", "--model", model, "--data", reg, "--output", out]) == 0
    assert out.read_text().splitlines()[0] == "prediction"
    assert capsys.readouterr().err == ""


def test_predict_ignores_a_class_list_written_for_another_model_file(files, capsys):
    """model.npz replaced by another classifier (MLP.save): its labels are not these."""
    d, data, model = files
    pybackprop.MLP([2, 3, 2], output="softmax", seed=5).save(model)
    out = d / "p.csv"
    assert main(["predict", "--model", model, "--data", data, "--label", "kind",
                     "--output", out]) == 0
    assert out.read_text().splitlines()[0] == "label,prob_0,prob_1"
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "belongs to another model file" in err


def test_outputs_replace_a_symlinks_target_and_keep_permissions(files, capsys):
    d, data, model = files
    real = d / "real.csv"
    real.write_text("old\n")
    os.chmod(real, 0o600)
    link = d / "link.csv"
    link.symlink_to(real)
    assert main(["predict", "--model", model, "--data", data, "--label", "kind",
                     "--output", link]) == 0
    assert link.is_symlink() and real.read_text().startswith("kind,prob_no,prob_yes\n")
    assert os.stat(real).st_mode & 0o777 == 0o600
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    capsys.readouterr()


# ---------------------------------------------------------------------------
# item 10: every numeric option is bounded where it is parsed


@pytest.mark.parametrize("args, words", [
    (["train", "--batch-size", "3000000000"], ["--batch-size", "2147483647"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--patience", "-3"], ["--patience"]),
    (["train", "--seed", "-1"], ["--seed", "2**128 - 1"]),
    (["train", "--lr", "nan"], ["--lr", "learning rate"]),
    (["train", "--lr", "1e999"], ["--lr", "finite"]),
    (["train", "--optimizer", "sgd", "--momentum", "1"], ["--momentum", "[0, 1)"]),
    (["train", "--validation-split", "-0.1"], ["--validation-split"]),
    (["train", "--hidden", "3000000000"], ["--hidden", "2147483647"]),
    (["explain", "--digits", "-1"], ["--digits", "between 1 and 17"]),
    (["explain", "--digits", "0"], ["--digits"]),
    (["explain", "--lr", "0", "--html", "x.html"], ["--lr"]),
    (["gradcheck", "--samples", "0"], ["--samples"]),
    (["gradcheck", "--samples", "10001"], ["--samples", "10000"]),
    (["gradcheck", "--eps", "0"], ["--eps"]),
    (["gradcheck", "--tol", "inf"], ["--tol"]),
    (["gradcheck", "--seed", str(2**128)], ["--seed"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--seed", "-5"], ["--seed"]),
])
def test_numeric_options_out_of_range_are_one_error_line(files, capsys, args, words):
    d, data, _ = files
    if args[0] == "train":
        args = [*args[:1], "--data", data, *args[1:]]
    before = snapshot(d)
    line = main_error(args, capsys)
    for word in words:
        assert word in line, line
    assert snapshot(d) == before


def test_a_network_too_large_for_memory_is_one_error_line(files):
    """MemoryError building the network (74 GiB here) is an error line, not a traceback."""
    d, data, _ = files
    result = subprocess.run([sys.executable, "-m", "pybackprop", "train", "--data", str(data),
                             "--hidden", "100000,100000", "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: not enough memory"), result.stderr
    assert "2-100000-100000-2" in lines[0]


# ---------------------------------------------------------------------------
# item 11: class labels are text, written back exactly as read


LABELS = ["02134", "2134", "12345678901234567890", "12345678901234567891", "5"]


def test_csv_labels_are_text_and_come_back_exactly(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "ids.csv"
    rows = []
    for k, label in enumerate(LABELS * 30):
        center = LABELS.index(label) * 10.0
        rows.append([repr(center + rng.normal(scale=0.1)), repr(float(k % 3)), label])
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "noise", "id"])
        writer.writerows(rows)
    model = tmp_path / "ids.npz"
    assert main(["train", "--data", str(data), "--save", str(model), "--hidden", "16",
                     "--epochs", "200", "--lr", "0.01", "--validation-split", "0"]) == 0
    out = capsys.readouterr().out
    # Five classes, none merged; numeric text ordered by value, the text breaking ties.
    assert "5 classes: 5, 02134, 2134, 12345678901234567890, 12345678901234567891" in out
    sidecar = json.loads((tmp_path / "ids.classes.json").read_text())
    assert sidecar["classes"] == ["5", "02134", "2134", "12345678901234567890",
                                  "12345678901234567891"]
    predictions = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model), "--data", str(data), "--label", "id",
                     "--output", str(predictions)]) == 0
    with open(predictions, newline="") as f:
        header, *written = list(csv.reader(f))
    assert header == ["id"] + [f"prob_{c}" for c in sidecar["classes"]]
    predicted = [row[0] for row in written]
    assert set(predicted) <= set(LABELS)
    # One separable cluster per label: merged labels could not reach this.
    expected = [row[2] for row in rows]
    agree = np.mean([p == e for p, e in zip(predicted, expected)])
    assert agree >= 0.95
