"""Build the compiled core: cythonize csrc/ into the extension pybackprop._core.

Compiler directives are set once here for the whole build.  Kernels run with
bounds checking off; setting PYBACKPROP_DEBUG=1 at build time turns Cython's
bounds, wraparound and initialisation checks back on, defines the C macro
PYBACKPROP_DEBUG=1 that makes every kernel check each block it computes
against its buffer (see csrc/_core.pyx), and drops -O3, so a test run catches
an out-of-bounds index in a kernel.  ``pybackprop._core.DEBUG_BUILD`` says
which build is installed.
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PYBACKPROP_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-trapping-math lets GCC turn the branch-free selects of the
# activation loops into vector blends (it changes no result, only whether
# spurious FP exception flags may be raised); -fno-math-errno lets sqrt be
# an instruction.  Neither is -ffast-math: IEEE results are unchanged.
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-trapping-math", "-fno-math-errno"]

extensions = [
    Extension(
        "pybackprop._core",
        sources=["csrc/_core.pyx"],
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("PYBACKPROP_DEBUG", "1" if DEBUG else "0")],
        extra_compile_args=compile_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc"],
        compiler_directives=directives,
        # Always regenerate the C: a debug and a release build write the same
        # csrc/_core.c, and a stale one would silently give the other build.
        force=True,
    )
)
