"""Build the compiled core: cythonize csrc/ into the extension pybackprop._core.

Compiler directives are set once here for the whole build.  Kernels run with
bounds checking off; setting PYBACKPROP_DEBUG=1 at build time turns bounds,
wraparound and initialisation checks back on (and drops -O3) so a test run can
catch an out-of-bounds index in a kernel.
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
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc"],
        compiler_directives=directives,
        compile_time_env={"PYBACKPROP_DEBUG": DEBUG},
    )
)
