"""Run the training-step benchmark and print one table.

``python -m pybackprop bench [--quick] ...`` calls :func:`main`; from Python,
:func:`run` returns the rows and prints the table.

Method
------
- Every implementation starts from the same weights and trains on the same
  fixed-seed batch with the same learning rate; the first-step losses are
  compared (a mismatch is flagged in the notes).
- One thread count for everything: BLAS pools are limited with threadpoolctl
  (when installed) and PyTorch with ``torch.set_num_threads``.
- Implementations take turns in passes (A B C ... A B C ...), so slow
  drift of a shared machine hits all of them alike. Before its turn an
  implementation sleeps ``settle`` seconds and gets an untimed warm-up:
  OpenBLAS threads keep spinning for a while after a call and fight the
  next library's thread pool (PyTorch ran up to 25x slower without the
  pause; to see the effect, run ``python -m pybackprop bench --configs mnist
  --impls numpy torch --settle 0`` and again with the default ``--settle``).
- A timed block runs enough steps to last ``block_time`` seconds; each turn
  times ``blocks`` blocks; the reported figure is the median of all block
  means (per step), with the interquartile range as a spread.
- Memory: before the timing, each implementation is built from the starting
  weights and runs a few steps under tracemalloc (the batch and the weights
  already exist); the peak of what it allocates (parameters, buffers,
  temporaries) is the "peak KiB" column. NumPy, scikit-learn and
  pybackprop allocate through NumPy, which tracemalloc sees; PyTorch's
  allocator is invisible to it, so its cell is empty.
- GFLOP/s counts only the matrix products of the step (see
  :func:`pybackprop.bench.configs.step_flops`); the peak is a large
  ``np.matmul`` in the configuration's dtype, measured in the same run
  (the best seen: measured at the start, before each configuration and at
  the end of the run).
"""
import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from .configs import EPOCH_CONFIGS, STEP_CONFIGS, get_config, make_batch, make_epoch_data, step_flops
from .numpy_mlp import NaiveNumpyMLP, StrongNumpyMLP, init_params

__all__ = ["run", "main", "Result", "IMPLEMENTATIONS", "make_step_impls",
           "measure_peak", "machine_info"]

IMPLEMENTATIONS = ("pybackprop", "numpy", "numpy_naive", "torch", "sklearn")
BASELINE = "numpy"


@dataclass
class Result:
    """One row of the table."""

    config: str
    impl: str
    median: float = float("nan")  # seconds per step (per sample for epoch rows)
    q1: float = float("nan")
    q3: float = float("nan")
    flops: int = 0
    dtype: str = "float32"
    first_loss: float = float("nan")
    note: str = ""
    skipped: bool = False
    samples: int = 0  # epoch rows: samples per epoch
    rounds: list = field(default_factory=list)
    peak_bytes: float = float("nan")  # tracemalloc peak while building and stepping


# ---------------------------------------------------------------------------
# implementations: each is (prepare(X, y) -> batch, step(batch, lr) -> loss)


class _Impl:
    def __init__(self, name, step, batch, note=""):
        self.name, self.step, self.batch, self.note = name, step, batch, note


def _library_available():
    try:
        import pybackprop
        return pybackprop.MLP
    except (ImportError, AttributeError):
        return None


def _library_net(cfg, weights, biases):
    MLP = _library_available()
    net = MLP(list(cfg.layer_sizes), activation=cfg.activation, output=cfg.output,
              loss=cfg.loss, dtype=cfg.dtype, seed=0)
    for W, W0 in zip(net.weights, weights):
        W[...] = W0
    for b, b0 in zip(net.biases, biases):
        b[...] = b0
    return net


def make_step_impls(cfg, X, y, impls=IMPLEMENTATIONS, params=None):
    """Build the requested implementations for a configuration.

    ``params`` is ``(weights, biases)`` to start from (default: the
    configuration's seed-0 initialisation).

    Returns
    -------
    ready : list of _Impl
    skipped : dict name -> reason
    """
    if params is None:
        params = init_params(cfg.layer_sizes, cfg.activation, cfg.output, cfg.dtype, seed=0)
    weights, biases = params
    args = (cfg.layer_sizes, cfg.activation, cfg.output, cfg.loss, cfg.dtype)
    ready, skipped = [], {}
    for name in impls:
        if name not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {name!r}; valid: {IMPLEMENTATIONS}")
    for name in impls:
        try:
            if name == "pybackprop":
                if _library_available() is None:
                    skipped[name] = "compiled pybackprop.MLP not available"
                    continue
                net = _library_net(cfg, weights, biases)
                ready.append(_Impl(name, lambda b, lr, net=net: net.train_step(b[0], b[1], lr),
                                   (X, y), "MLP.train_step"))
            elif name == "numpy":
                net = StrongNumpyMLP(*args, weights=weights, biases=biases)
                ready.append(_Impl(name, lambda b, lr, net=net: net.train_step(b[0], b[1], lr),
                                   (X, y), "strong NumPy baseline"))
            elif name == "numpy_naive":
                net = NaiveNumpyMLP(*args, weights=weights, biases=biases)
                ready.append(_Impl(name, lambda b, lr, net=net: net.train_step(b[0], b[1], lr),
                                   (X, y), "plain NumPy expressions"))
            elif name == "torch":
                try:
                    from .torch_mlp import TorchMLP
                except ImportError:
                    skipped[name] = "PyTorch not installed (pip install torch)"
                    continue
                net = TorchMLP(*args, weights, biases)
                ready.append(_Impl(name, lambda b, lr, net=net: net.train_step(b[0], b[1], lr),
                                   net.prepare(X, y), "nn.Sequential + optim.SGD"))
            elif name == "sklearn":
                try:
                    from .sklearn_mlp import SklearnMLP
                except ImportError:
                    skipped[name] = "scikit-learn not installed (pip install scikit-learn)"
                    continue
                try:
                    net = SklearnMLP(*args, weights, biases, X, y, lr=cfg.lr)
                except ValueError as exc:
                    skipped[name] = f"not representable in scikit-learn: {exc}"
                    continue
                note = f"{type(net.estimator).__name__}, {net.mode}"
                if net.note:
                    note += "; " + net.note
                ready.append(_Impl(name, lambda b, lr, net=net: net.train_step(b[0], b[1], lr),
                                   net.prepare(X, y), note))
        except Exception as exc:  # report, never hide, a failing implementation
            skipped[name] = f"FAILED to build: {type(exc).__name__}: {exc}"
    return ready, skipped


# ---------------------------------------------------------------------------
# timing


def _time_block(step, batch, lr, k):
    t0 = time.perf_counter()
    for _ in range(k):
        step(batch, lr)
    return (time.perf_counter() - t0) / k


def _calibrate(step, batch, lr, block_time):
    """Steps per block so that a block lasts about block_time seconds."""
    k, elapsed = 1, 0.0
    while True:
        elapsed = _time_block(step, batch, lr, k) * k
        if elapsed >= block_time / 4 or k >= 1 << 20:
            break
        k *= 4
    return max(1, int(round(k * block_time / max(elapsed, 1e-9))))


def _quartiles(values):
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return float(med), float(q1), float(q3)


def measure_memory(cfg, X, y, impls, steps=3):
    """Peak bytes each implementation allocates (tracemalloc) while it is built
    from the starting weights and runs ``steps`` training steps on (X, y).

    The batch and the starting weights are allocated before tracing starts.
    Returns a dict name -> bytes (NaN for PyTorch, whose allocator
    tracemalloc does not see, and for implementations that are skipped).
    """
    params = init_params(cfg.layer_sizes, cfg.activation, cfg.output, cfg.dtype, seed=0)
    peaks = {}
    for name in impls:
        peaks[name] = float("nan")
        if name == "torch":
            continue
        gc.collect()
        tracemalloc.start()
        try:
            ready, _ = make_step_impls(cfg, X, y, [name], params=params)
            for impl in ready:
                for _ in range(steps):
                    impl.step(impl.batch, cfg.lr)
                peaks[name] = float(tracemalloc.get_traced_memory()[1])
            del ready
        except Exception:  # the timing reports a failing implementation
            pass
        finally:
            tracemalloc.stop()
    return peaks


def time_step_config(cfg, impls, passes, blocks, block_time, warmup_time, settle):
    """Timing of one step configuration; returns a list of Result.

    Each implementation runs ``blocks`` timed blocks in a row, after sleeping
    ``settle`` seconds (so the previous library's spinning threads go idle)
    and an untimed warm-up of ``warmup_time`` seconds. This repeats for ``passes`` passes over the
    implementations, so slow drift of a shared machine hits all alike.
    """
    X, y = make_batch(cfg)
    memory = measure_memory(cfg, X, y, impls)
    ready, skipped = make_step_impls(cfg, X, y, impls)
    flops = step_flops(cfg.layer_sizes, cfg.batch)
    results = {}
    steps = {}
    for impl in ready:
        res = Result(cfg.name, impl.name, flops=flops, dtype=cfg.dtype, note=impl.note,
                     peak_bytes=memory.get(impl.name, float("nan")))
        try:
            res.first_loss = float(impl.step(impl.batch, cfg.lr))
            time.sleep(settle)
            steps[impl.name] = _calibrate(impl.step, impl.batch, cfg.lr, block_time)
        except Exception as exc:
            res.skipped, res.note = True, f"FAILED: {type(exc).__name__}: {exc}"
        results[impl.name] = res
    for _ in range(passes):
        for impl in ready:
            res = results[impl.name]
            if res.skipped:
                continue
            time.sleep(settle)
            k = steps[impl.name]
            _time_block(impl.step, impl.batch, cfg.lr, max(1, int(k * warmup_time / block_time)))
            for _ in range(blocks):
                res.rounds.append(_time_block(impl.step, impl.batch, cfg.lr, k))
    out = []
    for name in impls:
        if name in skipped:
            out.append(Result(cfg.name, name, dtype=cfg.dtype, note=skipped[name],
                              skipped=True))
        elif name in results:
            res = results[name]
            if res.rounds:
                res.median, res.q1, res.q3 = _quartiles(res.rounds)
            out.append(res)
    return out


def _fit_epoch_call(net, X, y, lr):
    """A function that calls net.fit for one epoch at batch size 1, with the
    keywords its signature takes (inspected once: inspect.signature costs
    far more than a short epoch and must stay out of the timing)."""
    import inspect

    params = inspect.signature(net.fit).parameters
    kwargs = {}
    for names, value in ((("epochs", "n_epochs", "max_epochs", "max_iter"), 1),
                         (("batch_size",), 1), (("lr", "learning_rate"), lr),
                         (("shuffle",), False), (("verbose", "progress"), False)):
        for name in names:
            if name in params:
                kwargs[name] = value
                break
    return lambda: net.fit(X, y, **kwargs)


def time_epoch_config(cfg, impls, rounds, quick, settle=0.0, block_time=0.05):
    """Per-sample SGD over a whole epoch: net.fit, and train_step loops.

    Each round, after the settle, one untimed epoch wakes the core (the first
    few hundred microseconds after a sleep ran 2.5x slower on these VMs),
    then enough epochs to last about block_time are timed together."""
    X, y = make_epoch_data(cfg, quick=quick)
    n = len(X)
    weights, biases = init_params(cfg.layer_sizes, cfg.activation, cfg.output, cfg.dtype,
                                  seed=0)
    args = (cfg.layer_sizes, cfg.activation, cfg.output, cfg.loss, cfg.dtype)
    rows = [X[i:i + 1] for i in range(n)]
    targets = [y[i:i + 1] for i in range(n)]
    runners, out = [], []

    def loop(step):
        def epoch():
            for xi, yi in zip(rows, targets):
                step(xi, yi, cfg.lr)
        return epoch

    MLP = _library_available()
    if "pybackprop" in impls:
        if MLP is None:
            out.append(Result(cfg.name, "pybackprop.fit", note="compiled pybackprop.MLP "
                              "not available", skipped=True))
        else:
            if hasattr(MLP, "fit"):
                net_fit = _library_net(cfg, weights, biases)
                runners.append(("pybackprop.fit", _fit_epoch_call(net_fit, X, y, cfg.lr),
                                "MLP.fit, batch_size=1, 1 epoch"))
            else:
                out.append(Result(cfg.name, "pybackprop.fit", note="fit not available",
                                  skipped=True))
            net = _library_net(cfg, weights, biases)
            runners.append(("pybackprop", loop(net.train_step), "Python loop of train_step"))
    if "numpy" in impls:
        net = StrongNumpyMLP(*args, weights=weights, biases=biases)
        runners.append(("numpy", loop(net.train_step), "Python loop of train_step"))
    if "numpy_naive" in impls:
        net = NaiveNumpyMLP(*args, weights=weights, biases=biases)
        runners.append(("numpy_naive", loop(net.train_step), "Python loop of train_step"))
    if "torch" in impls:
        try:
            from .torch_mlp import TorchMLP
        except ImportError:
            out.append(Result(cfg.name, "torch", note="PyTorch not installed", skipped=True))
        else:
            tnet = TorchMLP(*args, weights, biases)
            batches = [tnet.prepare(xi, yi) for xi, yi in zip(rows, targets)]

            def torch_epoch(tnet=tnet, batches=batches):
                for xb, yb in batches:
                    tnet.train_step(xb, yb, cfg.lr)
            runners.append(("torch", torch_epoch, "loop of optimizer steps"))
    if "sklearn" in impls:
        out.append(Result(cfg.name, "sklearn", skipped=True,
                          note="not timed per sample (partial_fit per sample is "
                               "validation overhead)"))

    results = {}
    repeats = {}
    for name, epoch, note in runners:
        res = results[name] = Result(cfg.name, name, dtype=cfg.dtype, note=note, samples=n)
        try:
            epoch()  # warm-up epoch (and a crash check)
            t0 = time.perf_counter()
            epoch()
            repeats[name] = max(1, int(block_time / max(time.perf_counter() - t0, 1e-9)))
        except Exception as exc:
            res.skipped, res.note = True, f"FAILED: {type(exc).__name__}: {exc}"
    for _ in range(rounds):
        for name, epoch, _note in runners:
            res = results[name]
            if res.skipped:
                continue
            time.sleep(settle)
            epoch()
            t0 = time.perf_counter()
            for _ in range(repeats[name]):
                epoch()
            res.rounds.append((time.perf_counter() - t0) / (n * repeats[name]))
    for name, _epoch, _note in runners:
        res = results[name]
        if res.rounds:
            res.median, res.q1, res.q3 = _quartiles(res.rounds)
        out.append(res)
    return out


def check_gradients(cfg, n=4, seed=1):
    """Max relative difference between the strong NumPy baseline's and the
    library's float64 loss and gradients on ``cfg``'s architecture.

    Returns
    -------
    float or None
        Norm-wise relative difference (max over loss and every array), or
        None when the compiled library is not available.
    """
    if _library_available() is None:
        return None
    weights, biases = init_params(cfg.layer_sizes, cfg.activation, cfg.output, "float64",
                                  seed=seed, bias_scale=0.1)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, cfg.layer_sizes[0]))
    if cfg.loss == "cross_entropy":
        y = rng.integers(0, cfg.layer_sizes[-1], n)
    else:
        y = rng.uniform(0.05, 0.95, (n, cfg.layer_sizes[-1]))
    args = (cfg.layer_sizes, cfg.activation, cfg.output, cfg.loss, "float64")
    ours = StrongNumpyMLP(*args, weights=weights, biases=biases).loss_and_grad(X, y)
    f64 = type(cfg)(**{**cfg.__dict__, "dtype": "float64"})
    lib = _library_net(f64, weights, biases).loss_and_grad(X, y, copy=True)
    worst = abs(ours[0] - lib[0]) / max(abs(lib[0]), 1e-300)
    for a, b in zip(list(ours[1]) + list(ours[2]), list(lib[1]) + list(lib[2])):
        worst = max(worst, float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(b)), 1e-300))
    return worst


# ---------------------------------------------------------------------------
# machine


def measure_peak(dtype, size=2048, repeats=5):
    """GFLOP/s of a size^3 np.matmul in dtype (best of repeats: a peak)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty((size, size), dtype)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2.0 * size ** 3 / min(times) / 1e9


def machine_info():
    """Lines describing CPU, Python, NumPy and the BLAS libraries in use."""
    lines = [f"Python {platform.python_version()}, NumPy {np.__version__}, "
             f"{platform.machine()} with {os.cpu_count()} logical CPUs"]
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    lines.append("CPU: " + line.split(":", 1)[1].strip())
                    break
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("BLAS: threadpoolctl not installed, kernel and threads not reported")
    else:
        for pool in threadpool_info():
            lines.append("{user_api}: {internal_api} {version} kernel={arch} threads="
                         "{num_threads} ({file})".format(
                             user_api=pool.get("user_api"),
                             internal_api=pool.get("internal_api"),
                             version=pool.get("version"),
                             arch=pool.get("architecture", "?"),
                             num_threads=pool.get("num_threads"),
                             file=os.path.basename(os.path.dirname(pool.get("filepath", "")))
                             + "/" + os.path.basename(pool.get("filepath", ""))))
    if os.environ.get("OPENBLAS_CORETYPE"):
        lines.append(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set")
    if _library_available() is not None:
        from .._dispatch import describe

        lines.append(f"pybackprop compiled core: {describe()}")
    return lines


def _cpu_jiffies():
    """(busy, total) CPU jiffies of the whole machine, or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


def _other_load(start, end, own_seconds):
    """Fraction of the machine's CPU time used by other processes."""
    if start is None or end is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy, total = end[0] - start[0], end[1] - start[1]
    if total <= 0:
        return None
    return max(0.0, (busy - own_seconds * ticks) / total)


class _Threads:
    """Limit BLAS/OpenMP pools (threadpoolctl) and PyTorch to n threads."""

    def __init__(self, n):
        self.n, self._limiter, self._torch_before = n, None, None
        self.controlled = False

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            self._limiter = threadpool_limits(limits=self.n)
            self.controlled = True
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            self._torch_before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        if self._torch_before is not None:
            sys.modules["torch"].set_num_threads(self._torch_before)


# ---------------------------------------------------------------------------
# table


def _fmt_time(seconds):
    us = seconds * 1e6
    if not np.isfinite(us):
        return "-"
    if us >= 10000:
        return f"{us:,.0f}"
    if us >= 100:
        return f"{us:.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def format_table(results, peaks, markdown=True):
    """The result table as a string (markdown, or aligned plain text)."""
    baseline = {r.config: r.median for r in results if r.impl == BASELINE and not r.skipped}
    header = ["configuration", "implementation", "median µs/step", "IQR %",
              "× vs NumPy", "GFLOP/s", "% of peak", "peak KiB", "notes"]
    rows = []
    for r in results:
        if r.skipped:
            rows.append([r.config, r.impl, "-", "", "", "", "", "", r.note])
            continue
        memory = f"{r.peak_bytes / 1024:,.0f}" if np.isfinite(r.peak_bytes) else ""
        spread = 100.0 * (r.q3 - r.q1) / r.median if r.median > 0 else float("nan")
        base = baseline.get(r.config)
        ratio = f"{base / r.median:.2f}" if base and r.median > 0 else ""
        if r.samples:  # epoch row: per-sample figures
            time_col = f"{_fmt_time(r.median)} /sample"
            note = f"{1.0 / r.median:,.0f} samples/s over {r.samples}; {r.note}"
            gflops = peak = ""
        else:
            time_col = _fmt_time(r.median)
            rate = r.flops / r.median / 1e9
            gflops = f"{rate:.2f}" if rate < 10 else f"{rate:.1f}"
            p = peaks.get(r.dtype)
            peak = f"{100.0 * rate / p:.1f}" if p else ""
            note = r.note
        rows.append([r.config, r.impl, time_col, f"{spread:.0f}", ratio, gflops, peak, memory,
                     note])
    text_columns = (0, 1, len(header) - 1)
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i in text_columns else "---:"
                                for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    widths[-1] = 0
    fmt = lambda row: "  ".join(c.ljust(w) if i in text_columns else c.rjust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _loss_check_notes(results):
    """Flag implementations whose first-step loss differs from the baseline's."""
    notes = []
    by_config: dict[str, list[Result]] = {}
    for r in results:
        by_config.setdefault(r.config, []).append(r)
    for config, rows in by_config.items():
        base = next((r for r in rows if r.impl == BASELINE and not r.skipped), None)
        if base is None or not np.isfinite(base.first_loss):
            continue
        tol = 1e-4 if rows[0].dtype == "float32" else 1e-9
        for r in rows:
            if r.skipped or not np.isfinite(r.first_loss) or r is base:
                continue
            if "log-loss" in r.note or "ours / n_out" in r.note:
                continue  # a different loss by design (noted in its row)
            if abs(r.first_loss - base.first_loss) > tol * max(1.0, abs(base.first_loss)):
                notes.append(f"WARNING {config}/{r.impl}: first loss {r.first_loss:.9g} != "
                             f"NumPy baseline {base.first_loss:.9g}")
    return notes


# ---------------------------------------------------------------------------
# entry points


def run(quick=False, configs=None, impls=IMPLEMENTATIONS, threads=None, passes=None,
        blocks=None, block_time=None, settle=None, markdown=True, file=None, full=False):
    """Run the benchmark, print the table and notes, and return the rows.

    Parameters
    ----------
    quick : bool
        CI mode: fewer rounds and shorter blocks, no 'wide', a shorter
        digits epoch; finishes in well under a minute.
    configs : list of str, optional
        Configuration names (default: all step configurations, 'wide' only
        when not quick or ``full``, then the epoch rows).
    impls : sequence of str
        Among ``IMPLEMENTATIONS``.
    threads : int, optional
        Threads for every implementation (default: all logical CPUs).
    passes, blocks, block_time, settle : optional
        Passes over the implementations, timed blocks per turn, seconds per
        block, and seconds of sleep before each turn (defaults: 3, 5, 0.1,
        0.25; quick: 1, 7, 0.02, 0.15).
    markdown : bool
        Markdown table (else aligned plain text).
    file : text stream, default sys.stdout
    full : bool
        Include 'wide' even in quick mode.

    Returns
    -------
    list of Result
    """
    file = sys.stdout if file is None else file
    threads = threads or os.cpu_count() or 1
    passes = passes or (1 if quick else 3)
    blocks = blocks or (7 if quick else 5)
    block_time = block_time or (0.02 if quick else 0.1)
    settle = (0.15 if quick else 0.25) if settle is None else settle
    warmup_time = block_time / 2
    if configs is None:
        names = [c.name for c in STEP_CONFIGS if c.quick or full or not quick]
        names += [c.name for c in EPOCH_CONFIGS]
    else:
        names = list(configs)
    chosen = [get_config(n) for n in names]
    for name in impls:
        if name not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {name!r}; valid: {IMPLEMENTATIONS}")
    if "torch" in impls:
        try:
            import torch  # noqa: F401  (imported now so its threads can be limited)
        except ImportError:
            pass

    # Before any timing: the baseline must compute the library's math.
    grad_checks = {}
    if "pybackprop" in impls:
        for cfg in chosen:
            if hasattr(cfg, "batch") or cfg.name.startswith("epoch"):
                try:
                    grad_checks[cfg.name] = check_gradients(cfg)
                except Exception as exc:  # report it, keep benchmarking
                    grad_checks[cfg.name] = f"{type(exc).__name__}: {exc}"

    t_start = time.perf_counter()
    cpu_start, own_start = _cpu_jiffies(), time.process_time()
    results = []
    with _Threads(threads) as limiter:
        dtypes = sorted({c.dtype for c in chosen if hasattr(c, "batch")})
        peaks = {dt: measure_peak(dt, repeats=3 if quick else 5) for dt in dtypes}
        info = machine_info()
        for cfg in chosen:
            gc.collect()
            if hasattr(cfg, "batch"):
                # the peak is the best seen in the run: re-measure before each
                # configuration, since a shared machine's speed drifts
                peaks[cfg.dtype] = max(peaks[cfg.dtype], measure_peak(cfg.dtype, repeats=1))
                results += time_step_config(cfg, impls, passes, blocks, block_time,
                                            warmup_time, settle)
            else:
                results += time_epoch_config(cfg, impls, 3 if quick else 5, quick, settle,
                                             block_time=block_time)
        for dt in dtypes:  # again at the end: the peak is the best seen
            peaks[dt] = max(peaks[dt], measure_peak(dt, repeats=3 if quick else 5))
    elapsed = time.perf_counter() - t_start
    other = _other_load(cpu_start, _cpu_jiffies(), time.process_time() - own_start)

    print(format_table(results, peaks, markdown), file=file)
    print(file=file)
    notes = [f"Threads: {threads} for every implementation "
             + ("(BLAS and OpenMP pools limited with threadpoolctl"
                + (", torch.set_num_threads" if "torch" in sys.modules else "") + ")"
                if limiter.controlled else "(threadpoolctl not installed: BLAS threads "
                "NOT controlled, only torch.set_num_threads)"),
             "Peak (best np.matmul 2048^3 in this run): " + ", ".join(
                 f"{dt} {p:.0f} GFLOP/s" for dt, p in peaks.items()),
             "Median time per training step (forward + backward + SGD update) over "
             f"{passes * blocks} blocks ({passes} pass(es) of {blocks}, ~{block_time * 1e3:.0f} ms "
             "each, implementations taking turns with a sleep and a warm-up between); "
             "IQR % = interquartile range / median; "
             "× vs NumPy = strong-NumPy time / this time (> 1 is faster); GFLOP/s counts "
             "matrix products only.",
             "peak KiB: the most memory (tracemalloc) an implementation had allocated "
             "while being built from the starting weights and running 3 steps, the batch "
             "excluded; PyTorch allocates outside tracemalloc's view (empty cell).",
             "Losses: every implementation uses pybackprop's loss (mean over samples, "
             "0.5 in squared error) except where the notes say otherwise."]
    if "torch" in sys.modules:
        from .torch_mlp import torch_info
        notes.append(torch_info())
    if "sklearn" in sys.modules:
        from .sklearn_mlp import sklearn_info
        notes.append(sklearn_info() + ": time per minibatch = _backprop + "
                     "_optimizer.update_params (its fit loop's step), not partial_fit")
    checked = {k: v for k, v in grad_checks.items() if isinstance(v, float)}
    if checked:
        worst = max(checked.values())
        notes.append(f"Gradient check before timing (float64, batch 4, every configuration's "
                     f"architecture): strong NumPy vs pybackprop.MLP loss and gradients, max "
                     f"relative difference {worst:.1e}"
                     + ("" if worst <= 1e-12 else "  WARNING: above 1e-12"))
    for name, value in grad_checks.items():
        if isinstance(value, str):
            notes.append(f"WARNING gradient check failed on {name}: {value}")
    notes += info + _loss_check_notes(results)
    if other is not None:
        notes.append(f"Other processes used {100 * other:.0f}% of the machine's CPU time "
                     "during the run" + (" (numbers are disturbed: rerun on a quiet machine)"
                                         if other > 0.1 else ""))
    notes.append(f"Total benchmark time {elapsed:.1f} s"
                 + (" (quick mode)" if quick else ""))
    for line in notes:
        print(("- " if markdown else "") + line, file=file)
    return results


def build_parser(prog="python -m pybackprop bench"):
    parser = argparse.ArgumentParser(
        prog=prog, description="Time one training step of pybackprop against a strong "
        "NumPy baseline, a naive NumPy version, PyTorch and scikit-learn (when installed).")
    parser.add_argument("--quick", action="store_true",
                        help="CI mode: under a minute, no 'wide' configuration")
    parser.add_argument("--full", action="store_true",
                        help="include 'wide' even with --quick")
    parser.add_argument("--configs", nargs="+", metavar="NAME",
                        help="configurations to run: "
                        + ", ".join(c.name for c in STEP_CONFIGS + EPOCH_CONFIGS))
    parser.add_argument("--impls", nargs="+", metavar="NAME", default=list(IMPLEMENTATIONS),
                        choices=IMPLEMENTATIONS,
                        help="implementations: " + ", ".join(IMPLEMENTATIONS))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every implementation (default: all CPUs)")
    parser.add_argument("--passes", type=int, default=None,
                        help="passes over the implementations (default 3, quick 1)")
    parser.add_argument("--blocks", type=int, default=None,
                        help="timed blocks per turn (default 5, quick 7)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds of sleep before each turn (default 0.25, quick 0.15)")
    parser.add_argument("--block-time", type=float, default=None,
                        help="seconds per timed block (default 0.1, quick 0.02)")
    parser.add_argument("--plain", action="store_true",
                        help="aligned plain-text table instead of markdown")
    return parser


def main(argv=None):
    """Command-line entry point: ``python -m pybackprop bench [options]``."""
    args = build_parser().parse_args(argv)
    configs = None
    if args.configs:
        configs = [name for item in args.configs for name in item.split(",") if name]
    try:
        run(quick=args.quick, configs=configs, impls=args.impls, threads=args.threads,
            passes=args.passes, blocks=args.blocks, block_time=args.block_time,
            settle=args.settle, markdown=not args.plain,
            full=args.full)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
