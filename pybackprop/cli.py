"""The command line: ``python -m pybackprop [command] [options]`` (or ``pybackprop ...``).

Without a command, trains a network on the handwritten digits shipped with
the package and reports its test accuracy.  Commands:

- ``train``: train on your own CSV / ``.npy`` / ``.npz`` data and save the model;
- ``predict``: apply a saved model to a data file and write a CSV;
- ``bench``: the training-step benchmark (:mod:`pybackprop.bench.runner`);
- ``explain``: the forward and backward pass of one sample, step by step;
- ``gradcheck``: check an architecture's gradients against the pure-Python
  reference and finite differences.

Design decisions (also in ``--help``):

- Standardisation is folded into the saved network.  With ``--standardize``
  (the default) ``train`` fits the feature mean ``m`` and scale ``s`` on the
  training part only and trains on ``(X - m) / s``; before saving, the first
  layer becomes ``W' = W / s`` (column-wise) and ``b' = b - W' m``, so that
  ``W' x + b' = W (x - m) / s + b`` exactly (up to rounding) and the model
  file takes raw features.  Regression targets are standardised the same way
  and folded into the output layer (``W_L' = s_y W_L``, ``b_L' = s_y b_L +
  m_y``).  The model file stays an ordinary network file: ``predict`` and
  ``pybackprop.load`` need nothing else.  The folding is
  :func:`pybackprop.standardize.fold_standardization`; reading the data
  files is :mod:`pybackprop.tables`.
- Classification labels may be any values.  A CSV label column is text
  and stays text: the classes are its distinct strings (``"02134"`` and
  ``"2134"`` are two classes, ``"5"`` is written back as ``5``), ordered
  by value when they are all numbers.  The class list is written next to
  the model as ``<model>.classes.json`` (``model.npz`` ->
  ``model.classes.json``, any other name ``<name>.classes.json``; the
  network file format has no slot for it) with the SHA-256 of the model
  file it belongs to; ``predict`` reads it when it belongs to the model and
  otherwise reports the output index 0..k-1 as the class.
- A command never writes over one of its own files: an output that is the
  same file as an input or another output (by path, symbolic link or hard
  link) is refused before any work, a class list that belongs to another
  model is never replaced, and nothing is removed.  Every file is written
  to a temporary file in the target's directory and renamed into place
  when complete (:func:`pybackprop.io.atomic_write`).

Every error in the arguments or the data ends the program with a one-line
``error: ...`` on stderr and exit code 2 (numbers out of their range
included; argument errors name the option); a failed gradient check or a
diverged training run exits with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import os
import sys
import zipfile
from typing import Any, Sequence

import numpy as np

from . import __version__
from . import io as _io
from ._dispatch import describe as describe_core
from ._validation import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, LossName, OutputActivation
from .network import MLP
from .standardize import fold_standardization
from .tables import check_exists, encode_classes, one_line_message, read_data, regression_targets

__all__ = ["main", "build_parser", "core_status", "textbook_example", "fold_standardization",
           "classes_path", "read_data"]

DIGITS_CREDIT = ("UCI Optical Recognition of Handwritten Digits "
                 "(Alpaydin & Kaynak, 1998), CC BY 4.0")

# The default run's recipe: test accuracy 0.971-0.989 for seeds 0-7 (the same
# in float32 and float64; seed 0: 0.973) in under a second of training on 2 cores.
DIGITS_HIDDEN = (256,)
DIGITS_EPOCHS = 40
DIGITS_BATCH_SIZE = 32
DIGITS_LR = 1e-3
DIGITS_TEST_SIZE = 0.25
DIGITS_VALIDATION_SPLIT = 0.1
# Samples for the reference check before training: the pure-Python reference
# costs about a microsecond per multiply-add, so a few samples take ~0.1 s.
DIGITS_GRADCHECK_SAMPLES = 4

# train: below this many multiply-adds per layer and batch, BLAS runs
# single-threaded (see _single_threaded_blas); larger products gain from threads.
SMALL_PRODUCT = 2**21

# explain prints a few lines per parameter; past this nobody reads it.
EXPLAIN_MAX_PARAMETERS = 500
# gradcheck: finite differences cost two loss evaluations per parameter;
# beyond this many parameters check random directions instead.
GRADCHECK_MAX_FD_PARAMETERS = 20_000

# Bounds of the numeric options.  Counts reach the core as C ints.
MAX_COUNT = 2**31 - 1
# numpy's seeds take any non-negative integer; 128 bits is more than the
# generator's state can use.
MAX_SEED = 2**128 - 1
# gradcheck compares every sample with the pure-Python reference.
GRADCHECK_MAX_SAMPLES = 10_000
# float64 has 17 significant digits; 0 would print nothing.
EXPLAIN_MAX_DIGITS = 17


class CommandError(ValueError):
    """A problem with the user's arguments or data: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one ``error:`` line like every other error."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn
        raise CommandError(f"{message} (see {self.prog} --help)")


# ---------------------------------------------------------------------------
# status and the textbook example


def core_status() -> list[str]:
    """Lines describing the compiled core: version, dtypes, BLAS."""
    import scipy

    blas = scipy.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    blas_name = f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()
    return [
        f"pybackprop {__version__} (NumPy {np.__version__}, SciPy {scipy.__version__})",
        f"compiled core: {describe_core()}, float32 and float64 kernels",
        f"matrix products: scipy.linalg.cython_blas ({blas_name}); small layers: compiled loops",
    ]


def textbook_example() -> tuple[MLP, np.ndarray, np.ndarray]:
    """The 2-2-1 sigmoid network of the textbook walk-through, and its sample.

    Returns
    -------
    net : MLP
    X : ndarray, shape (1, 2)
    y : ndarray, shape (1,)
    """
    from . import reference

    example = reference.textbook_221()
    net = MLP([2, 2, 1], activation=example["activation"], output=example["output"],
              loss=example["loss"])
    for target, value in zip(net.weights, example["weights"]):
        target[...] = value
    for target, value in zip(net.biases, example["biases"]):
        target[...] = value
    return net, np.array([example["x"]]), np.array([example["y"]])


# ---------------------------------------------------------------------------
# small helpers


def _describe(net):
    """One line: sizes, activations, output and loss, dtype, parameter count."""
    acts = net.activations
    hidden = (acts[0] if len(set(acts)) == 1 else ",".join(acts)) if acts else "no hidden layer"
    return (f"MLP {'-'.join(map(str, net.layer_sizes))} {hidden}, {net.output} + {net.loss_name}, "
            f"{net.dtype.name}, {net.n_params:,} parameters")


def _int_list(text, option):
    """'64,32' -> [64, 32]; '' or 'none' -> []."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return []
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise CommandError(f"{option} must be comma-separated integers like 64,32, "
                           f"got {text!r}") from None
    if any(not 1 <= v <= MAX_COUNT for v in values):
        raise CommandError(f"{option} sizes must be between 1 and {MAX_COUNT}, got {text!r}")
    return values


def _float_list(text, option):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise CommandError(f"{option} must be comma-separated numbers like 0.5,0.3, "
                           f"got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise CommandError(f"{option} must be finite numbers, got {text!r}")
    return values


def _integer(low, high, high_text=None):
    """argparse type: an integer in [low, high] (high shown as high_text in messages)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high_text or high}, "
                                             f"got {value}")
        return value
    return parse


# The option types of seeds (numpy takes any integer >= 0) and of counts.
_seed = _integer(0, MAX_SEED, "2**128 - 1")
_count = _integer(1, MAX_COUNT)


def _real(low, high=math.inf, low_open=False, high_open=False, what="the value"):
    """argparse type: a finite number in [low, high] (either end open when asked)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        inside = ((value > low if low_open else value >= low)
                  and (value < high if high_open else value <= high))
        if not math.isfinite(value) or not inside:
            if math.isfinite(high):
                interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            else:
                interval = f"{'>' if low_open else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"{what} must be a finite number {interval}, "
                                             f"got {text!r}")
        return value
    return parse


def _activation_arg(text):
    """'relu' -> 'relu'; 'relu,tanh' -> ['relu', 'tanh'] (MLP checks the names)."""
    names = [part.strip() for part in text.split(",")]
    return names[0] if len(names) == 1 else names


def _network(sizes, **options):
    """MLP(sizes, **options), with running out of memory as a CommandError."""
    try:
        return MLP(sizes, **options)
    except MemoryError:
        n_params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        raise CommandError(f"not enough memory for a network of {'-'.join(map(str, sizes))} "
                           f"({n_params:,} parameters); use smaller layers") from None


# ---------------------------------------------------------------------------
# files: outputs never overwrite inputs; a class-list sidecar per model


def _same_file(a, b):
    """Whether paths a and b name one file: the same inode when both exist
    (symbolic and hard links included), else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _check_files(outputs, inputs):
    """Refuse, before any work, an output that cannot be written or that would
    replace an input or another output.

    outputs, inputs: lists of (option, path); a path of None is skipped.
    """
    checked: list[tuple[str, str]] = []
    for option, path in outputs:
        if path is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CommandError(f"{option} {path!r}: the directory {directory!r} does not exist")
        if os.path.isdir(path):
            raise CommandError(f"{option} {path!r} is a directory")
        for other_option, other in inputs:
            if other is not None and _same_file(path, other):
                raise CommandError(f"{option} {path!r} is the same file as {other_option} "
                                   f"{other!r}: writing it would destroy the input; choose "
                                   "another file")
        for other_option, other in checked:
            if _same_file(path, other):
                raise CommandError(f"{option} {path!r} and {other_option} {other!r} are the same "
                                   "file; choose two different files")
        checked.append((option, path))


def classes_path(model_path: str) -> str:
    """Where the class list of a saved classifier lives.

    ``model.npz`` -> ``model.classes.json``; a name without the ``.npz``
    suffix keeps all of it (``model.v2`` -> ``model.v2.classes.json``), so
    that it never points at the class list of ``model.npz``.
    """
    model_path = os.fspath(model_path)
    if model_path.lower().endswith(".npz"):
        return model_path[:-len(".npz")] + ".classes.json"
    return model_path + ".classes.json"


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_sidecar(sidecar):
    """The sidecar's JSON content (None when there is no sidecar)."""
    if not os.path.exists(sidecar):
        return None
    try:
        with open(sidecar, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"{sidecar} is not valid JSON ({one_line_message(exc)})") from None


def _sidecar_model_hash(content):
    return content.get("model_sha256") if isinstance(content, dict) else None


def _check_sidecar_is_ours(model_path, option):
    """Refuse to save a classifier to model_path when its class-list file exists
    and belongs to another model file (say model.npz when saving as model)."""
    sidecar = classes_path(model_path)
    if not os.path.exists(sidecar):
        return
    try:
        content = _read_sidecar(sidecar)
    except CommandError:
        content = None
    recorded = _sidecar_model_hash(content)
    if recorded is None:
        # Written before the checksum existed, by the same name mapping for .npz.
        ours = model_path.lower().endswith(".npz")
    else:
        ours = os.path.isfile(model_path) and _file_sha256(model_path) == recorded
    if not ours:
        raise CommandError(f"{option} {model_path!r}: its class list would replace {sidecar!r}, "
                           "which belongs to another model file; move that file or choose "
                           "another name")


def _save_model(net, path, classes=None, label_name=None):
    """Save the network and, for a classifier, its class list (never removing a file)."""
    net.save(path)
    if classes is None:
        return f"saved the model to {path}"
    sidecar = classes_path(path)
    content = {"classes": classes, "label": label_name, "model_sha256": _file_sha256(path)}
    with _io.atomic_write(sidecar, "w", encoding="utf-8") as f:
        json.dump(content, f, indent=1)
        f.write("\n")
    return f"saved the model to {path} (class labels in {sidecar})"


def _is_classifier(net):
    return net.output == "softmax" or (net.loss_name == "binary_cross_entropy" and net.n_out == 1)


def _load_classes(model_path, net):
    """(classes, label name) from the model's sidecar, or (None, None) when
    there is none, the network is not a classifier, or the sidecar was
    written for another model file."""
    if not _is_classifier(net):
        return None, None
    sidecar = classes_path(model_path)
    content = _read_sidecar(sidecar)
    if content is None:
        return None, None
    recorded = _sidecar_model_hash(content)
    if recorded is not None and recorded != _file_sha256(model_path):
        print(f"warning: {sidecar} belongs to another model file (its checksum differs from "
              f"{model_path}'s); reporting output indices as classes", file=sys.stderr)
        return None, None
    classes = content.get("classes") if isinstance(content, dict) else None
    n_classes = 2 if net.n_out == 1 else net.n_out
    if (not isinstance(classes, list) or len(classes) != n_classes
            or not all(isinstance(c, (str, int, float)) for c in classes)):
        raise CommandError(f"{sidecar} must hold {{\"classes\": [...]}} with {n_classes} labels "
                           f"for the {net.n_out} outputs of {model_path}")
    label = content.get("label")
    return classes, label if isinstance(label, str) else None


def _load_model(path):
    from . import io

    check_exists(path, "model file")
    return io.load(path)


# ---------------------------------------------------------------------------
# training, shared by the default run and ``train``


def _plot_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _write_plot(history, path, classifier):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, history.epochs_run + 1)
    panels = 2 if classifier and history.val_accuracy else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, history.loss, label="training loss")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    if panels == 2:
        ax = axes[0, 1]
        ax.plot(epochs, history.val_accuracy, label="validation accuracy", color="C2")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.legend()
    fig.tight_layout()
    image_format = os.path.splitext(path)[1][1:].lower() or "png"
    try:
        with _io.atomic_write(path) as f:
            fig.savefig(f, dpi=100, format=image_format)
    finally:
        plt.close(fig)


def _single_threaded_blas():
    """Limit BLAS to one thread (with threadpoolctl, when installed) for small layers.

    The digits network's products (batch 32, 64 x 256) are too small to
    share between threads: on a busy 2-core machine OpenBLAS's spinning
    threads made the run 10-20 times slower (measured: 0.3 s vs 5-19 s).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _make_optimizer(net, name, lr, momentum):
    from . import optim

    if momentum is not None and name != "sgd":
        raise CommandError("--momentum applies to --optimizer sgd only")
    if name == "sgd":
        return optim.SGD(net, lr=0.01 if lr is None else lr,
                         momentum=0.9 if momentum is None else momentum)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW}[name]
    return cls(net) if lr is None else cls(net, lr=lr)


def _split(X, y, fraction, seed, stratify):
    """(X_train, y_train, X_val, y_val); the validation part is None when fraction is 0."""
    from .datasets import train_test_split

    if fraction == 0:
        return X, y, None, None
    if not 0 < fraction < 1:
        raise CommandError(f"--validation-split must be in [0, 1), got {fraction}")
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=fraction, seed=seed,
                                                      stratify=True if stratify else None)
    return X_train, y_train, X_val, y_val


# ---------------------------------------------------------------------------
# the default run: handwritten digits


def run_default(args: argparse.Namespace) -> int:
    """Train on the shipped digits and report test accuracy; returns the exit code."""
    from . import gradcheck
    from .datasets import StandardScaler, load_digits, train_test_split

    _check_files([("--save", args.save),
                  ("--save's class list", args.save and classes_path(args.save))], [])
    if args.save:
        _check_sidecar_is_ours(args.save, "--save")
    print(f"pybackprop {__version__}: an MLP on handwritten digits")
    print(f"data: {DIGITS_CREDIT}")
    for line in core_status()[1:]:
        print(line)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=DIGITS_TEST_SIZE, seed=args.seed, stratify=True)
    scaler = StandardScaler().fit(X_train)
    X_train_std, X_test_std = scaler.transform(X_train), scaler.transform(X_test)
    print(f"{X.shape[0]} images of 8x8 pixels, 10 classes; {len(y_train)} for training, "
          f"{len(y_test)} for testing (stratified, seed {args.seed}); features standardised "
          "with the training part's mean and scale")

    net = MLP([X.shape[1], *DIGITS_HIDDEN, 10], activation="relu", output="softmax",
              loss="cross_entropy", dtype=args.dtype, seed=args.seed)
    print(f"network: {_describe(net)}")

    k = DIGITS_GRADCHECK_SAMPLES
    check = gradcheck.compare_with_reference(net, X_train_std[:k], y_train[:k])
    verdict = "PASS" if check.passed else "FAIL"
    print(f"gradient check, compiled core vs pure-Python reference on {k} samples: worst "
          f"relative error {check.max_rel_error:.2g} (tolerance {check.tol:g}) {verdict}")
    if not check.passed:
        print(f"error: the compiled gradients disagree with the reference: {check!r}",
              file=sys.stderr)
        return 1

    X_fit, y_fit, X_val, y_val = _split(X_train_std, y_train, DIGITS_VALIDATION_SPLIT,
                                        args.seed, stratify=True)
    print(f"training: Adam, learning rate {DIGITS_LR:g}, batch {DIGITS_BATCH_SIZE}, "
          f"{args.epochs} epochs; {len(y_fit)} training and {len(y_val)} validation samples")
    from .optim import Adam

    with _single_threaded_blas():
        history = net.fit(X_fit, y_fit, epochs=args.epochs, batch_size=DIGITS_BATCH_SIZE,
                          optimizer=Adam(net, lr=DIGITS_LR), seed=args.seed,
                          validation_data=(X_val, y_val), verbose=not args.quiet)
    predicted = net.predict_classes(X_test_std)
    correct = int(np.sum(predicted == y_test))
    print(f"validation accuracy after the last epoch: {history.val_accuracy[-1]:.4f}")
    print(f"test accuracy: {correct / len(y_test):.4f} ({correct}/{len(y_test)})")
    print(f"training time: {history.time:.2f} s ({history.epochs_run} epochs, "
          f"{history.samples_per_second:,.0f} samples/s)")
    if args.save:
        saved = fold_standardization(net.copy(), scaler.mean_, scaler.scale_)
        print(_save_model(saved, args.save, classes=list(range(10)), label_name="digit")
              + "; it takes raw pixel values 0..16 (the standardisation is folded into "
              "the first layer)")
    return 0


# ---------------------------------------------------------------------------
# train


def run_train(args: argparse.Namespace) -> int:
    """``train``: fit a network to a data file; returns the exit code."""
    from .datasets import StandardScaler

    if args.plot and not _plot_available():
        print("error: --plot needs matplotlib: pip install pybackprop[plot]", file=sys.stderr)
        return 2
    classification = args.task == "classification"
    sidecar = classes_path(args.save) if args.save and classification else None
    _check_files([("--save", args.save), ("--save's class list", sidecar), ("--plot", args.plot)],
                 [("--data", args.data)])
    if sidecar:
        _check_sidecar_is_ours(args.save, "--save")
    say = (lambda *a: None) if args.quiet else print
    table = read_data(args.data, args.label, with_label=True)
    labels = table.y
    assert labels is not None  # read with with_label=True
    X = table.X
    classes: list[Any] | None = None
    y: np.ndarray
    output: OutputActivation
    loss: LossName
    if classification:
        classes, y = encode_classes(labels, args.data, table.label_name)
        n_out = len(classes)
        output, loss = "softmax", "cross_entropy"
        target = (f"{n_out} classes: {', '.join(map(str, classes[:10]))}"
                  f"{', ...' if n_out > 10 else ''}")
    else:
        y = regression_targets(labels, args.data, table.label_name)
        n_out = 1 if y.ndim == 1 else y.shape[1]
        output, loss = "identity", "squared_error"
        target = "regression target"
    hidden = _int_list(args.hidden, "--hidden")
    net = _network([X.shape[1], *hidden, n_out], activation=_activation_arg(args.activation),
                   output=output, loss=loss, dtype=args.dtype, seed=args.seed)
    optimizer = _make_optimizer(net, args.optimizer, args.lr, args.momentum)

    say(f"data: {args.data}: {X.shape[0]} samples, {X.shape[1]} features, label "
        f"{table.label_name!r} ({target})")
    say(f"network: {_describe(net)}")

    X_fit, y_fit, X_val, y_val = _split(X, y, args.validation_split, args.seed,
                                        stratify=classification)
    scaler = y_scaler = None
    X_fit_t, X_val_t, y_fit_t, y_val_t = X_fit, X_val, y_fit, y_val
    if args.standardize:
        scaler = StandardScaler().fit(X_fit)
        X_fit_t = scaler.transform(X_fit)
        X_val_t = None if X_val is None else scaler.transform(X_val)
        if not classification:
            y_scaler = StandardScaler().fit(y_fit.reshape(len(y_fit), -1))
            y_fit_t = y_scaler.transform(y_fit.reshape(len(y_fit), -1)).reshape(y_fit.shape)
            y_val_t = (None if y_val is None else
                       y_scaler.transform(y_val.reshape(len(y_val), -1)).reshape(y_val.shape))
        say("standardising " + ("features" if classification else "features and target")
            + " with the training part's mean and scale (folded into the saved model's "
            + ("first layer)" if classification else "first and last layers)"))
    validation = (f"{len(y_val)} validation samples ({args.validation_split:.0%}"
                  f"{', stratified' if classification else ''})" if X_val is not None
                  else "no validation data")
    stopping = f", early stopping (patience {args.patience})" if args.early_stopping else ""
    say(f"training: {type(optimizer).__name__} (lr {optimizer.lr:g}), batch {args.batch_size}, "
        f"up to {args.epochs} epochs{stopping}; {len(y_fit)} training samples, {validation}")

    largest_product = args.batch_size * max(
        n_in * n_out for n_in, n_out in zip(net.layer_sizes[:-1], net.layer_sizes[1:]))
    threads = (_single_threaded_blas() if largest_product <= SMALL_PRODUCT
               else contextlib.nullcontext())
    with threads:
        history = net.fit(X_fit_t, y_fit_t, epochs=args.epochs, batch_size=args.batch_size,
                          optimizer=optimizer, seed=args.seed,
                          validation_data=None if X_val is None else (X_val_t, y_val_t),
                          early_stopping=args.early_stopping, patience=args.patience,
                          verbose=not args.quiet)
    if scaler is not None:
        fold_standardization(net, scaler.mean_, scaler.scale_,
                             None if y_scaler is None else y_scaler.mean_,
                             None if y_scaler is None else y_scaler.scale_)

    # From here on the network takes raw features: the metrics below also
    # check the folding.
    summary = f"epochs run: {history.epochs_run}"
    if history.stopped_early:
        # Stopping needs `patience` epochs without improvement on a best one.
        assert history.best_epoch is not None
        summary += f" (stopped early; best epoch {history.best_epoch + 1}"
        summary += ", its weights restored)" if history.restored_best else ")"
    say(summary)
    print(_metrics_line("training", net, X_fit, y_fit, classification))
    if X_val is not None:
        print(_metrics_line("validation", net, X_val, y_val, classification))
    print(f"training time: {history.time:.2f} s ({history.samples_per_second:,.0f} samples/s)")
    if args.save:
        print(_save_model(net, args.save, classes, table.label_name if classification else None))
    else:
        say("not saved (use --save model.npz to keep the model)")
    if args.plot:
        _write_plot(history, args.plot, classification)
        print(f"wrote the training curves to {args.plot}")
    return 0


def _metrics_line(name, net, X, y, classification):
    if classification:
        correct = int(np.sum(net.predict_classes(X) == y))
        return (f"{name}: loss {net.loss(X, y):.4g}, accuracy {correct / len(y):.4f} "
                f"({correct}/{len(y)})")
    prediction = net.predict(X).reshape(y.shape)
    rmse = float(np.sqrt(np.mean((prediction - y) ** 2)))
    return f"{name}: RMSE {rmse:.4g}, R^2 {net.score(X, y):.4f}"


# ---------------------------------------------------------------------------
# predict


def run_predict(args: argparse.Namespace) -> int:
    """``predict``: apply a saved model to a data file and write a CSV; returns the exit code."""
    output = None if args.output in (None, "-") else args.output
    _check_files([("--output", output)],
                 [("--model", args.model), ("--model's class list", classes_path(args.model)),
                  ("--data", args.data)])
    net = _load_model(args.model)
    classes, label_name = _load_classes(args.model, net)
    table = read_data(args.data, args.label, with_label=False)
    if table.X.shape[1] != net.n_in:
        hint = "" if args.label else " (use --label COLUMN to drop a label column)"
        raise CommandError(f"{args.data} has {table.X.shape[1]} feature columns but the model "
                           f"{args.model} takes {net.n_in} inputs{hint}")
    outputs = np.asarray(net.predict(table.X), dtype=np.float64)
    header, rows = _prediction_rows(net, outputs, classes, label_name)
    if output is None:
        _write_csv(sys.stdout, header, rows)
    else:
        with _io.atomic_write(output, "w", encoding="utf-8", newline="") as f:
            _write_csv(f, header, rows)
        print(f"wrote {len(rows)} predictions to {output}")
    return 0


def _prediction_rows(net, outputs, classes, label_name):
    """Header and rows of the predictions CSV.  Numbers are written with
    ``repr`` (shortest round-trip form), so the file holds the outputs exactly."""
    label_name = label_name or "label"
    if net.output == "softmax":
        names = classes if classes is not None else list(range(net.n_out))
        index = np.argmax(outputs, axis=1)
        header = [label_name] + [f"prob_{c}" for c in names]
        rows = [[names[i]] + [repr(float(p)) for p in row] for i, row in zip(index, outputs)]
    elif net.loss_name == "binary_cross_entropy" and net.n_out == 1:
        names = classes if classes is not None else [0, 1]
        header = [label_name, f"prob_{names[1]}"]
        rows = [[names[int(p > 0.5)], repr(float(p))] for p in outputs[:, 0]]
    elif net.loss_name == "binary_cross_entropy":
        header = ([f"label_{k}" for k in range(net.n_out)]
                  + [f"prob_{k}" for k in range(net.n_out)])
        rows = [[int(p > 0.5) for p in row] + [repr(float(p)) for p in row] for row in outputs]
    else:
        header = (["prediction"] if net.n_out == 1
                  else [f"prediction_{k}" for k in range(net.n_out)])
        rows = [[repr(float(v)) for v in row] for row in outputs]
    return header, rows


def _write_csv(stream, header, rows):
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


# ---------------------------------------------------------------------------
# bench


def run_bench(argv: Sequence[str]) -> int:
    """``bench``: delegate to :func:`pybackprop.bench.runner.main`; returns the exit code."""
    try:
        from .bench import runner
    except ImportError as exc:
        raise CommandError(f"the benchmark (pybackprop.bench.runner) is not available in this "
                           f"installation: {exc}") from None
    code = runner.main(list(argv))
    return 0 if code is None else int(code)


# ---------------------------------------------------------------------------
# explain and gradcheck: a network from --model or --layers, and a sample


def _network_from_args(args):
    """The network named by --model FILE or built from --layers (None if neither)."""
    if args.model and args.layers:
        raise CommandError("give --model or --layers, not both")
    if args.model:
        return _load_model(args.model)
    if args.layers:
        sizes = _int_list(args.layers, "--layers")
        if len(sizes) < 2:
            raise CommandError(f"--layers needs at least an input and an output size, "
                               f"got {args.layers!r}")
        return _network(sizes, activation=_activation_arg(args.activation), output=args.output,
                        loss=args.loss, dtype=getattr(args, "dtype", "float64"), seed=args.seed)
    return None


def _random_targets(net, n, rng):
    """Targets of the right kind for the network's loss: labels, 0/1 or reals."""
    if net.loss_name == "cross_entropy":
        return rng.integers(0, net.n_out, size=n)
    if net.loss_name == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(n, net.n_out)).astype(np.float64)
    elif net.output == "sigmoid":
        y = rng.uniform(0.0, 1.0, size=(n, net.n_out))
    else:
        y = rng.standard_normal((n, net.n_out))
    return y[:, 0] if net.n_out == 1 else y


def _sample(net, x_text, y_text, seed):
    """One sample (x a list, y as the reference wants it): --x/--y, or random with the seed."""
    rng = np.random.default_rng(seed)
    if x_text is None:
        x = [round(float(v), 4) for v in rng.uniform(-1.0, 1.0, size=net.n_in)]
    else:
        x = _float_list(x_text, "--x")
        if len(x) != net.n_in:
            raise CommandError(f"--x has {len(x)} value(s) but the network has {net.n_in} input(s)")
    if y_text is None:
        y = _random_targets(net, 1, rng)[0]
        y = int(y) if net.loss_name == "cross_entropy" else (
            round(float(y), 4) if np.ndim(y) == 0 else [round(float(v), 4) for v in y])
        return x, y
    values = _float_list(y_text, "--y")
    if net.loss_name == "cross_entropy" and len(values) == 1:
        label = values[0]
        if label != int(label) or not 0 <= label < net.n_out:
            raise CommandError(f"--y for a {net.n_out}-class network is a class label "
                               f"0..{net.n_out - 1} or {net.n_out} target values, "
                               f"got {y_text!r}")
        return x, int(label)
    if len(values) != net.n_out:
        raise CommandError(f"--y has {len(values)} value(s) but the network has "
                           f"{net.n_out} output(s)")
    return x, values[0] if net.n_out == 1 else values


def run_explain(args: argparse.Namespace) -> int:
    """``explain``: the step-by-step log of one sample; returns the exit code."""
    from . import reference

    _check_files([("--html", args.html)], [("--model", args.model)])
    net = _network_from_args(args)
    custom_sample = args.x is not None or args.y is not None
    if net is None and custom_sample:
        net = textbook_example()[0]
    x: list[float] | None = None
    y: Any = None  # a target as the reference takes it: a number, a label or a row
    if net is not None:
        x, y = _sample(net, args.x, args.y, args.seed)

    if args.html:
        try:
            from . import explain_html
        except ImportError as exc:
            raise CommandError(f"the HTML explainer (pybackprop.explain_html) is not available in "
                               f"this installation: {exc}") from None
        page = explain_html.render_html(net, x, y, args.lr)
        with _io.atomic_write(args.html, "w", encoding="utf-8") as f:
            f.write(page)
        print(f"wrote the explained computation to {args.html}")
        return 0

    if net is not None and net.n_params > EXPLAIN_MAX_PARAMETERS:
        raise CommandError(f"the network has {net.n_params:,} parameters; explain prints every "
                           f"one, so it takes at most {EXPLAIN_MAX_PARAMETERS} "
                           "(e.g. --layers 2,3,1)")
    if net is None:
        example = reference.textbook_221()
        print(reference.explain(**example, digits=args.digits))
        net, X, Y = textbook_example()
    else:
        example = {"weights": [W.tolist() for W in net.weights],
                   "biases": [b.tolist() for b in net.biases], "x": x, "y": y,
                   "activation": list(net.activations), "output": net.output,
                   "loss": net.loss_name}
        print(reference.explain(**example, digits=args.digits))
        X = np.array([x])
        Y = np.array([y]) if np.ndim(y) == 0 else np.array([y], dtype=np.float64)
    # The same numbers from the compiled core, as a cross-check of both.
    loss, grad_weights, grad_biases = net.loss_and_grad(X, Y, copy=True)
    print()
    print(f"compiled core ({net.dtype.name}): output {_row(net.predict(X)[0])}, "
          f"loss {loss:.10g}")
    for layer, (gW, gb) in enumerate(zip(grad_weights, grad_biases), start=1):
        print(f"  dL/dW[{layer}] = {_row(gW)}")
        print(f"  dL/db[{layer}] = {_row(gb)}")
    return 0


def _row(array):
    """An array on one line with 10 significant digits."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):.10g}"
    return "[" + ", ".join(_row(item) for item in array) + "]"


def run_gradcheck(args: argparse.Namespace) -> int:
    """``gradcheck``: reference and finite-difference checks; returns 0 (pass) or 1 (fail)."""
    from . import gradcheck

    net = _network_from_args(args)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, net.n_in))
    y = _random_targets(net, args.samples, rng)
    print(f"network: {_describe(net)}; {args.samples} random samples (seed {args.seed})")

    results = []
    ref = gradcheck.compare_with_reference(net, X, y)
    results.append(("pure-Python reference", ref.passed,
                    f"worst relative error {ref.max_rel_error:.3g} at {ref.where} "
                    f"(tolerance {ref.tol:g})"))
    if net.n_params <= GRADCHECK_MAX_FD_PARAMETERS:
        fd = gradcheck.check_gradients(net, X, y, eps=args.eps, tol=args.tol)
        results.append((f"finite differences (eps {args.eps:g}, every parameter)", fd.passed,
                        f"worst relative error {fd.max_rel_error:.3g} at {fd.where} "
                        f"(network {fd.value:.6g}, difference quotient {fd.expected:.6g}; "
                        f"tolerance {fd.tol:g})"))
    else:
        directional = gradcheck.check_directional(net, X, y, eps=args.eps, tol=args.tol,
                                                  n_directions=10, seed=args.seed)
        results.append((f"finite differences (eps {args.eps:g}, 10 random directions)",
                        directional.passed,
                        f"worst relative error {directional.max_rel_error:.3g} "
                        f"(tolerance {directional.tol:g})"))
    for name, passed, detail in results:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")
    passed = all(p for _, p, _ in results)
    print("PASS" if passed else "FAIL: the gradients disagree")
    return 0 if passed else 1


# ---------------------------------------------------------------------------
# argument parsing


_DESCRIPTION = """\
Dense MLPs with a compiled, verified backward pass.

Without a command: train a network on the handwritten digits shipped with
pybackprop (UCI Optical Recognition of Handwritten Digits, Alpaydin & Kaynak
1998, CC BY 4.0): a stratified train/test split, a gradient check against the
pure-Python reference, training with a progress bar, and the test accuracy.
"""

_TRAIN_EPILOG = """\
data files: a CSV file with a header row (.tsv: tab-separated), a .npy file
holding one 2-D array (the label is a column, by index), or an .npz file with
arrays X (n_samples, n_features) and y, or holding a single 2-D array.

classification: the label column may hold any values. A CSV label is text
and stays text: the distinct strings are the classes ("02134" and "2134" are
two), ordered by value when all are numbers, and predict writes them back as
read. Saving writes them to MODEL.classes.json next to the model (model.npz ->
model.classes.json, any other name NAME.classes.json) with the model file's
SHA-256; predict reads that file when it belongs to the model, so keep the two
together.

files: no command writes over its own input files (the same path, a symbolic
or a hard link), replaces another model's class list, or removes a file;
outputs are written to a temporary file and renamed into place when complete.

standardisation (default on): the features' mean and scale are computed on
the training part only (not the validation part) and folded into the saved
model's first layer (W' = W / scale, b' = b - W' mean); regression targets
likewise into the last layer. The model file therefore takes raw data and
needs nothing else: predict and pybackprop.load use it as it is.
"""


def _add_architecture_options(parser, activation, output, applies_to):
    """--activation, --output and --loss of a network built from the command
    line (explain --layers, gradcheck), with these defaults."""
    parser.add_argument("--activation", default=activation, metavar="NAME[,NAME...]",
                        help=f"hidden activation(s){applies_to} (default {activation})")
    parser.add_argument("--output", default=output, choices=tuple(OUTPUT_ACTIVATIONS),
                        help=f"output activation{applies_to} (default {output})")
    parser.add_argument("--loss", default=None, choices=tuple(LOSSES),
                        help=f"loss{applies_to} (default: the output's natural loss)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m pybackprop`` and its commands."""
    parser = _Parser(
        prog="python -m pybackprop", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pybackprop {__version__}")
    # The default run's options have their own dest names, so that they are
    # never mistaken for a command's options of the same name.
    parser.add_argument("--epochs", dest="top_epochs", type=_count, default=None, metavar="N",
                        help=f"training epochs (default {DIGITS_EPOCHS})")
    parser.add_argument("--seed", dest="top_seed", type=_seed, default=None, metavar="N",
                        help="seed of the split, the initial weights and the shuffling (default 0)")
    parser.add_argument("--dtype", dest="top_dtype", choices=("float64", "float32"), default=None,
                        help="computation dtype (default float64)")
    parser.add_argument("--save", dest="top_save", metavar="FILE", default=None,
                        help="save the trained model (.npz; it takes raw pixel values)")
    parser.add_argument("--quiet", dest="top_quiet", action="store_true",
                        help="no progress bar")
    parser.set_defaults(handler=None)
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    # -- train --
    p = commands.add_parser(
        "train", help="train a network on your own data file and save it",
        description="Train an MLP on a CSV, .npy or .npz file.", epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="FILE", help="the training data")
    p.add_argument("--label", metavar="COLUMN",
                   help="the target column: a CSV column name or an index "
                   "(default: the last column)")
    p.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="classification: softmax + cross_entropy; regression: identity + "
                   "squared_error (default classification)")
    p.add_argument("--hidden", default="64,32", metavar="SIZES",
                   help="hidden layer sizes, e.g. 64,32 (default); 'none' for no hidden layer")
    p.add_argument("--activation", default="relu", metavar="NAME[,NAME...]",
                   help=f"hidden activation ({', '.join(HIDDEN_ACTIVATIONS)}), or one per "
                   "hidden layer, e.g. relu,tanh (default relu)")
    p.add_argument("--epochs", type=_count, default=100, help="maximum epochs (default 100)")
    p.add_argument("--batch-size", type=_count, default=32,
                   help="minibatch size (default 32)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam",
                   help="default adam")
    p.add_argument("--lr", type=_real(0, what="the learning rate"), default=None,
                   help="learning rate (default: sgd 0.01, adam/adamw 0.001)")
    p.add_argument("--momentum", type=_real(0, 1, high_open=True), default=None,
                   help="SGD momentum (sgd only; default 0.9)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="default float64")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the split, initial weights and shuffling (default 0)")
    p.add_argument("--validation-split", type=_real(0, 1, high_open=True), default=0.2, metavar="FRACTION",
                   help="fraction held out for validation, stratified for classification; "
                   "0 for none (default 0.2)")
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation loss (training loss without validation data) "
                   "stops improving, and keep the best epoch's weights")
    p.add_argument("--patience", type=_count, default=10,
                   help="epochs without improvement before early stopping (default 10)")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                   help="standardise features (and regression targets) with training statistics, "
                   "folded into the saved model (default on)")
    p.add_argument("--save", metavar="MODEL.npz", help="save the trained model here")
    p.add_argument("--plot", metavar="FILE.png",
                   help="plot the loss and accuracy curves (needs matplotlib: "
                   "pip install pybackprop[plot])")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar; print only the final metrics")
    p.set_defaults(handler=run_train)

    # -- predict --
    p = commands.add_parser(
        "predict", help="apply a saved model to a data file and write predictions as CSV",
        description="Write the predictions of a saved model as CSV with a header: the class "
        "label and one probability column per class for classifiers (labels from "
        "MODEL.classes.json when present, else the output index), the predicted values "
        "for regression. Numbers are written in full precision.")
    p.add_argument("--model", required=True, metavar="MODEL.npz",
                   help="a model saved by train or MLP.save")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="CSV (with a header), .npy or .npz (array X, or a single 2-D array)")
    p.add_argument("--label", metavar="COLUMN",
                   help="a label column in the file to drop (name or index)")
    p.add_argument("--output", metavar="FILE.csv", default=None,
                   help="where to write the predictions (default: standard output)")
    p.set_defaults(handler=run_predict)

    # -- bench --
    p = commands.add_parser(
        "bench", add_help=False,
        help="time training steps against NumPy, PyTorch and scikit-learn "
        "(see: bench --help; --quick for CI)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=None)

    # -- explain --
    p = commands.add_parser(
        "explain", help="print every number of one forward and backward pass, with formulas",
        description="Print the forward and backward pass of one sample step by step (the "
        "pure-Python reference), then the same numbers from the compiled core. Default: "
        "the textbook 2-2-1 sigmoid example. Write negative numbers as --x=-0.5,0.3.")
    p.add_argument("--model", metavar="FILE", help="explain a saved network")
    p.add_argument("--layers", metavar="SIZES", help="explain a new network, e.g. 2,3,1")
    _add_architecture_options(p, "relu", "identity", " for --layers")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the weights (--layers) and of a random sample (default 0)")
    p.add_argument("--x", metavar="VALUES", help="the input, e.g. 0.5,0.3 (default: random)")
    p.add_argument("--y", metavar="VALUES",
                   help="the target, e.g. 0.8, or a class label for softmax (default: random)")
    p.add_argument("--digits", type=_integer(1, EXPLAIN_MAX_DIGITS), default=6,
                   help=f"significant digits shown, 1 to {EXPLAIN_MAX_DIGITS} (default 6)")
    p.add_argument("--html", metavar="FILE.html",
                   help="write an interactive page of the computation instead")
    p.add_argument("--lr", type=_real(0, low_open=True, what="the learning rate"), default=0.5,
                   help="learning rate of the update step shown in the HTML page (default 0.5)")
    p.set_defaults(handler=run_explain)

    # -- gradcheck --
    p = commands.add_parser(
        "gradcheck", help="check an architecture's gradients (reference and finite differences)",
        description="Check the compiled gradients of a randomly initialised network on random "
        "samples against the pure-Python reference and central finite differences. "
        "Exit code 0 when both pass, 1 when one fails.")
    p.add_argument("--layers", default="4,8,3", metavar="SIZES", help="layer sizes (default 4,8,3)")
    _add_architecture_options(p, "tanh", "softmax", "")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="default float64 (finite differences always run in float64)")
    p.add_argument("--samples", type=_integer(1, GRADCHECK_MAX_SAMPLES), default=8,
                   help=f"random samples, at most {GRADCHECK_MAX_SAMPLES} (default 8)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of weights and samples (default 0)")
    p.add_argument("--eps", type=_real(0, low_open=True), default=1e-6,
                   help="finite-difference step (default 1e-6)")
    p.add_argument("--tol", type=_real(0, low_open=True), default=1e-4,
                   help="finite-difference pass threshold (default 1e-4)")
    p.set_defaults(handler=run_gradcheck, model=None)
    return parser


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "bench":
        # Everything after "bench" belongs to the benchmark's own parser.
        return run_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    top = {name: getattr(args, "top_" + name) for name in ("epochs", "seed", "dtype", "save")}
    top["quiet"] = args.top_quiet or None
    if args.command is not None:
        given = [f"--{name}" for name, value in top.items() if value is not None]
        if given:
            parser.error(f"{', '.join(given)} before the command {args.command!r} applies only to "
                         f"the default run; put options after the command")
        if args.command == "bench":
            return run_bench(args.bench_args)
        return args.handler(args)
    args.epochs = DIGITS_EPOCHS if top["epochs"] is None else top["epochs"]
    args.seed = 0 if top["seed"] is None else top["seed"]
    args.dtype = top["dtype"] or "float64"
    args.save = top["save"]
    args.quiet = bool(top["quiet"])
    return run_default(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    0 success; 1 a failed gradient check or diverged training; 2 bad
    arguments or data (a one-line ``error: ...`` on stderr); 130 interrupted.
    """
    from .training import TrainingDiverged

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): stop quietly, as Unix tools do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except TrainingDiverged as exc:
        print(f"error: {one_line_message(exc)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, zipfile.BadZipFile) as exc:
        print(f"error: {one_line_message(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        # Building a network is checked where it happens (_network); this is
        # any other allocation, e.g. the data or the training buffers.
        print(f"error: not enough memory ({one_line_message(exc)})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
