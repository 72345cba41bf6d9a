"""Choose the compiled core for this CPU.

On x86-64 the build holds up to three compilations of csrc/_core.pyx:
``_core`` (baseline x86-64, runs everywhere), ``_core_avx2`` (x86-64-v3) and
``_core_avx512`` (x86-64-v4).  They compute bit-for-bit the same results
(no fused multiply-add contraction, no fast-math; tests/test_isa.py checks
this); the wider vectors only make the elementwise passes, the scans and the
small-matrix loops faster.  ``core`` is the best variant that was built, came
from the same build as the baseline, and that this CPU and OS can run.

Set the environment variable ``PYBACKPROP_ISA`` to ``baseline``, ``avx2`` or
``avx512`` before importing pybackprop to choose one; asking for a variant
this machine cannot run, or one that was not built, raises ImportError.
"""

import importlib
import os

from . import _blasinfo
from . import _core as _baseline

#: Variant names, widest first, with their module names.
VARIANTS = {"avx512": "_core_avx512", "avx2": "_core_avx2", "baseline": "_core"}


def load(isa):
    """The compiled core for one variant, with its BLAS thread hook installed.

    Raises ImportError when the variant was not built (or comes from another
    build) and RuntimeError when this CPU cannot run it.
    """
    if isa not in VARIANTS:
        raise ValueError(f"unknown instruction-set variant {isa!r}; "
                         f"expected one of {', '.join(VARIANTS)}")
    if not _baseline._cpu_runs(isa):
        raise RuntimeError(f"this CPU cannot run the {isa} variant of the compiled core")
    module = importlib.import_module("." + VARIANTS[isa], __package__)
    if module.BUILD_ID != _baseline.BUILD_ID:
        raise ImportError(f"pybackprop.{VARIANTS[isa]} is left over from another build; "
                          "reinstall pybackprop")
    _blasinfo.install_thread_hook(module)
    return module


def available():
    """Names of the variants that are built and that this CPU runs, widest first."""
    names = []
    for isa in VARIANTS:
        try:
            load(isa)
        except (ImportError, RuntimeError):
            continue
        names.append(isa)
    return names


def _choose():
    forced = os.environ.get("PYBACKPROP_ISA", "").strip()
    if forced:
        try:
            return load(forced)
        except (ValueError, RuntimeError, ImportError) as error:
            raise ImportError(f"PYBACKPROP_ISA={forced}: {error}") from None
    for isa in VARIANTS:
        try:
            return load(isa)
        except (ImportError, RuntimeError):
            continue
    raise ImportError("no compiled core could be loaded")  # the baseline always loads


#: The compiled core module in use; ``core.ISA`` names its variant.
core = _choose()

_LEVELS = {"baseline": "x86-64 baseline", "avx2": "x86-64-v3", "avx512": "x86-64-v4"}


def describe():
    """The core in use, e.g. 'pybackprop._core_avx512 (x86-64-v4)'."""
    return f"{core.__name__} ({_LEVELS.get(core.ISA, core.ISA)})"
