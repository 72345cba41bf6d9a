"""Build the compiled core: cythonize csrc/ into the extension pybackprop._core.

On x86-64 with GCC or Clang the same source is also compiled for x86-64-v3
(pybackprop._core_avx2: AVX2, FMA) and x86-64-v4 (pybackprop._core_avx512);
pybackprop/_dispatch.py imports the best one the CPU runs.  Set
PYBACKPROP_ISA_VARIANTS=0 to build the baseline module only.  Every module is
built with -ffp-contract=off (no fused multiply-add contraction), so the
variants round identically and only their vector width differs.

Compiler directives are set once here for the whole build.  Kernels run with
bounds checking off; setting PYBACKPROP_DEBUG=1 at build time turns Cython's
bounds, wraparound and initialisation checks back on, defines the C macro
PYBACKPROP_DEBUG=1 that makes every kernel check each block it computes
against its buffer (see csrc/_layout.pxd), and drops -O3, so a test run catches
an out-of-bounds index in a kernel.  ``pybackprop._core.DEBUG_BUILD`` says
which build is installed.

Setting PYBACKPROP_SANITIZE=1 at build time compiles and links every module
with GCC's or Clang's AddressSanitizer and UndefinedBehaviorSanitizer (plus
float-cast-overflow, which -fsanitize=undefined leaves out), at -O1 with
frame pointers, so an out-of-bounds access, a use after free or an undefined
operation anywhere in the release kernels stops the run with a report.  The
kernels keep their release directives (no Cython bounds checks): the point is
to check the code users run.  CPython itself is not instrumented, so the
runtime must be loaded first: run Python with
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" and
ASAN_OPTIONS=detect_leaks=0 (the interpreter's own allocations are never
freed at exit); .ci/sanitize shows the whole command.
"""
import glob
import os
import platform
import sys
import uuid

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class ParallelBuildExt(build_ext):
    """Compile the extension modules (the ISA variants) side by side, and
    keep modules of an earlier build out of this one."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        # A compiler too old for -march=x86-64-v3/-v4 (GCC < 11, Clang < 12)
        # builds the baseline module only: the dispatcher then uses it.
        for ext in list(self.extensions):
            flags = [f for f in ext.extra_compile_args if f.startswith("-march=")]
            if flags and not self._compiler_accepts(flags):
                print(f"note: the compiler does not accept {' '.join(flags)}; "
                      f"{ext.name} is not built")
                self.extensions.remove(ext)
        super().build_extensions()

    def _compiler_accepts(self, flags):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write("int main(void) { return 0; }\n")
            try:
                self.compiler.compile([source], output_dir=tmp, extra_postargs=flags)
            except Exception:
                return False
        return True

    def run(self):
        # A build directory reused from a build with more variants (a release
        # build, then a debug build) still holds their modules, and the wheel
        # would ship them.
        built = {os.path.normpath(self.get_ext_filename(ext.name)) for ext in self.extensions}
        stale = glob.glob(os.path.join(self.build_lib, "pybackprop", "_core*"))
        for path in stale:
            relative = os.path.normpath(os.path.relpath(path, self.build_lib))
            if relative.endswith((".so", ".pyd")) and relative not in built:
                os.remove(path)
        super().run()

DEBUG = os.environ.get("PYBACKPROP_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("PYBACKPROP_SANITIZE", "") not in ("", "0")

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
compile_args.append("-ffp-contract=off")
link_args = []
if SANITIZE:
    sanitizers = "-fsanitize=address,undefined,float-cast-overflow"
    compile_args = [f for f in compile_args if not f.startswith("-O")]
    compile_args += ["-O1", "-g", "-fno-omit-frame-pointer", sanitizers]
    link_args.append(sanitizers)

# (module suffix, source, extra flags, name the module reports as its ISA)
variants = [("", "csrc/_core.pyx", [], "baseline")]
x86_64 = platform.machine().lower() in ("x86_64", "amd64")
want_variants = os.environ.get("PYBACKPROP_ISA_VARIANTS", "1") not in ("", "0")
# The debug build checks indexing, which no variant changes: baseline only.
if x86_64 and want_variants and not DEBUG and sys.platform != "win32":
    variants += [("_avx2", "csrc/_core_avx2.pyx", ["-march=x86-64-v3"], "avx2"),
                 ("_avx512", "csrc/_core_avx512.pyx", ["-march=x86-64-v4"], "avx512")]

# The modules of one build carry the same stamp, so pybackprop/_dispatch.py
# never pairs the baseline with a variant left over from an earlier build.
build_id = uuid.uuid4().hex

extensions = [
    Extension(
        "pybackprop._core" + suffix,
        sources=[source],
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       ("PYBACKPROP_DEBUG", "1" if DEBUG else "0"),
                       ("PYBACKPROP_ISA", f'"{isa}"'),
                       ("PYBACKPROP_BUILD_ID", f'"{build_id}"')],
        extra_compile_args=compile_args + flags,
        extra_link_args=link_args,
    )
    for suffix, source, flags, isa in variants
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["csrc"],
        compiler_directives=directives,
        # Always regenerate the C: a debug and a release build write the same
        # csrc/_core.c, and a stale one would silently give the other build.
        force=True,
        nthreads=os.cpu_count() or 1,
    ),
    cmdclass={"build_ext": ParallelBuildExt},
)
