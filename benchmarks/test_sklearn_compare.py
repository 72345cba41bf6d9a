"""pytest-benchmark: whole ``fit`` runs, pybackprop.sklearn.MLPClassifier against
sklearn.neural_network.MLPClassifier with the same settings on the digits data.

Run ``pytest benchmarks/test_sklearn_compare.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; each configuration is one benchmark
group with both libraries.  The side-by-side table with test accuracies is
``python -m pybackprop.bench.sklearn_compare`` (function
``pybackprop.bench.sklearn_compare.print_sklearn_comparison``).  Configurations
and method: :mod:`pybackprop.bench.sklearn_compare`.
"""
import pytest

pytest.importorskip("sklearn")

from pybackprop.bench.sklearn_compare import COMPARE_CONFIGS, digits_split, fit_once  # noqa: E402

ROUNDS = 3


@pytest.fixture(scope="module")
def splits():
    return {dtype: digits_split(dtype) for dtype in ("float64", "float32")}


@pytest.mark.parametrize("impl", ["pybackprop", "sklearn"])
@pytest.mark.parametrize("config", COMPARE_CONFIGS, ids=[c.name for c in COMPARE_CONFIGS])
def test_fit_digits(benchmark, splits, config, impl):
    data = splits[config.dtype]
    benchmark.group = f"fit digits {config.name}: {config.describe()}"
    seeds = iter(range(10_000))
    accuracies = []

    def fit():
        seconds, accuracy, estimator = fit_once(impl, config, data, random_state=next(seeds))
        accuracies.append(accuracy)
        return estimator

    estimator = benchmark.pedantic(fit, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(implementation=impl, test_accuracy=accuracies,
                                epochs=config.params["max_iter"])
    # Every epoch ran (fit_once checks n_iter_), and both libraries learn the
    # digits: a 128-unit ReLU layer reaches ~97-98% held-out accuracy.
    assert estimator.n_iter_ == config.params["max_iter"]
    assert min(accuracies) >= 0.95
