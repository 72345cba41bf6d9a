"""Shared setup for ``pytest benchmarks/``: one thread count for every library.

``PYBACKPROP_BENCH_THREADS`` sets it (default: all logical CPUs); BLAS and
OpenMP pools are limited with threadpoolctl when it is installed, PyTorch
with ``torch.set_num_threads``. ``PYBACKPROP_BENCH_FULL=1`` adds the 'wide'
configuration (about a minute more).
"""
import os

import pytest

try:
    import pytest_benchmark  # noqa: F401
    HAVE_BENCHMARK = True
except ImportError:  # pragma: no cover
    HAVE_BENCHMARK = False


def bench_threads():
    return int(os.environ.get("PYBACKPROP_BENCH_THREADS", 0)) or os.cpu_count() or 1


@pytest.fixture(scope="session", autouse=True)
def _same_threads_everywhere():
    try:
        import torch  # noqa: F401  (so that its pool is limited too)
    except ImportError:
        pass
    from pybackprop.bench.runner import _Threads

    with _Threads(bench_threads()) as limiter:
        yield limiter


if not HAVE_BENCHMARK:  # pragma: no cover
    @pytest.fixture
    def benchmark():
        pytest.skip("pytest-benchmark not installed (pip install pytest-benchmark)")
