"""Whole training runs: ``pybackprop.sklearn.MLPClassifier`` against scikit-learn's own.

The same estimator settings (architecture, activation, solver, learning
rate, momentum, batch size, alpha, epochs) go to both classes, which then
train on the same standardized digits split (:func:`pybackprop.datasets.load_digits`,
75/25 stratified); the table gives the wall time of ``fit`` and the
accuracy on the held-out quarter, side by side.

- Every epoch runs: no early stopping, ``tol=0`` and ``n_iter_no_change``
  equal to the number of epochs (checked: ``n_iter_`` must equal it).
- The two take turns (pybackprop, scikit-learn, pybackprop, ...), each
  repeat with its own ``random_state``; the figures are medians over the
  repeats.  Initial weights differ (each library's own initialisation), so
  accuracies agree only statistically.
- One thread count for both (threadpoolctl, when installed).

Run ``python -m pybackprop.bench.sklearn_compare [--repeats N] [--threads N]``
or call :func:`print_sklearn_comparison`.  Needs scikit-learn.
"""
import argparse
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["COMPARE_CONFIGS", "CompareConfig", "digits_split", "fit_once",
           "compare_sklearn", "format_comparison", "print_sklearn_comparison", "main"]


@dataclass(frozen=True)
class CompareConfig:
    """One row pair of the table: estimator settings shared by both libraries."""

    name: str
    params: dict
    dtype: str = "float64"

    def describe(self):
        p = self.params
        extra = f", momentum {p['momentum']}" if p["solver"] == "sgd" else ""
        return (f"64-{'-'.join(map(str, p['hidden_layer_sizes']))}-10 {p['activation']}, "
                f"{p['solver']} lr {p['learning_rate_init']}{extra}, batch {p['batch_size']}, "
                f"{p['max_iter']} epochs, {self.dtype}")


def _params(**kwargs):
    base = dict(hidden_layer_sizes=(128,), activation="relu", solver="adam", alpha=1e-4,
                batch_size=32, learning_rate_init=1e-3, max_iter=30, shuffle=True,
                early_stopping=False, tol=0.0)
    base.update(kwargs)
    base["n_iter_no_change"] = base["max_iter"]
    return base


COMPARE_CONFIGS = (
    CompareConfig("adam", _params()),
    CompareConfig("sgd", _params(solver="sgd", learning_rate_init=0.01, momentum=0.9,
                                 nesterovs_momentum=True)),
    CompareConfig("adam_f32", _params(), dtype="float32"),
    # scikit-learn's default batch: min(200, n_samples).
    CompareConfig("adam_b200", _params(batch_size=200, max_iter=100)),
)


def digits_split(dtype="float64"):
    """Standardized digits: ``X_train, X_test, y_train, y_test`` (75/25, stratified, seed 0)."""
    from pybackprop.datasets import load_digits, train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0,
                                                        stratify=True)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0  # constant border pixels
    scale = (lambda A: np.ascontiguousarray((A - mean) / std, dtype=dtype))
    return scale(X_train), scale(X_test), y_train, y_test


def make_estimator(impl, config, random_state):
    """An unfitted classifier: impl is "pybackprop" or "sklearn"."""
    if impl == "pybackprop":
        from pybackprop.sklearn import MLPClassifier

        return MLPClassifier(random_state=random_state, dtype=config.dtype, **config.params)
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

        return SklearnMLPClassifier(random_state=random_state, **config.params)
    raise ValueError(f"impl must be 'pybackprop' or 'sklearn', got {impl!r}")


def fit_once(impl, config, data, random_state):
    """Fit one estimator; returns ``(seconds, test accuracy, estimator)``."""
    X_train, X_test, y_train, y_test = data
    estimator = make_estimator(impl, config, random_state)
    with warnings.catch_warnings():
        # tol=0 runs every epoch on purpose; the warning says so.
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    if estimator.n_iter_ != config.params["max_iter"]:
        raise RuntimeError(f"{impl} ran {estimator.n_iter_} epochs, not "
                           f"{config.params['max_iter']}")
    return seconds, float(estimator.score(X_test, y_test)), estimator


@dataclass
class CompareRow:
    config: str
    description: str
    impl: str
    seconds: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)

    @property
    def median_seconds(self):
        return statistics.median(self.seconds)

    @property
    def median_accuracy(self):
        return statistics.median(self.accuracy)


def compare_sklearn(repeats=3, configs=COMPARE_CONFIGS, threads=None):
    """Train each configuration ``repeats`` times with both libraries, taking turns.

    Returns
    -------
    list of CompareRow
        Two rows per configuration (pybackprop, sklearn) with every repeat's
        fit time (s) and test accuracy.
    """
    from .runner import _Threads

    threads = threads or int(os.environ.get("PYBACKPROP_BENCH_THREADS", 0)) or os.cpu_count() or 1
    rows: list[CompareRow] = []
    with _Threads(threads):
        for config in configs:
            data = digits_split(config.dtype)
            pair = {impl: CompareRow(config.name, config.describe(), impl)
                    for impl in ("pybackprop", "sklearn")}
            for impl in pair:  # untimed warm-up: imports, BLAS pools, caches
                fit_once(impl, config, data, random_state=0)
            for repeat in range(repeats):
                for impl, row in pair.items():
                    seconds, accuracy, _ = fit_once(impl, config, data, random_state=repeat)
                    row.seconds.append(seconds)
                    row.accuracy.append(accuracy)
            rows.extend(pair.values())
    return rows


def format_comparison(rows):
    """A Markdown table: per configuration, both libraries' median fit time,
    the speed-up, and median test accuracy."""
    lines = ["| config | library | fit time (median) | speed-up | test accuracy (median) |",
             "|---|---|---:|---:|---:|"]
    by_config: dict[str, dict[str, CompareRow]] = {}
    for row in rows:
        by_config.setdefault(row.config, {})[row.impl] = row
    for name, pair in by_config.items():
        base = pair.get("sklearn")
        for impl, row in pair.items():
            speedup = (f"{base.median_seconds / row.median_seconds:.1f}x"
                       if base is not None else "")
            lines.append(f"| {name} | {impl} | {row.median_seconds:.3f} s | {speedup} | "
                         f"{row.median_accuracy:.4f} |")
    described = {row.config: row.description for row in rows}
    lines.append("")
    lines += [f"- {name}: {text}" for name, text in described.items()]
    return "\n".join(lines)


def print_sklearn_comparison(repeats=3, configs=COMPARE_CONFIGS, threads=None, file=None):
    """Run :func:`compare_sklearn` and print its table; returns the rows."""
    import sklearn

    import pybackprop

    rows = compare_sklearn(repeats=repeats, configs=configs, threads=threads)
    out = file or sys.stdout
    X_train, X_test = digits_split()[:2]
    print(f"Digits ({len(X_train)} train / {len(X_test)} test), whole fit: pybackprop "
          f"{pybackprop.__version__} vs scikit-learn {sklearn.__version__}, median of "
          f"{repeats} repeats", file=out)
    print(format_comparison(rows), file=out)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pybackprop.bench.sklearn_compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--config", action="append", choices=[c.name for c in COMPARE_CONFIGS],
                        help="run only this configuration (repeatable)")
    args = parser.parse_args(argv)
    configs = [c for c in COMPARE_CONFIGS if not args.config or c.name in args.config]
    print_sklearn_comparison(repeats=args.repeats, configs=configs, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
