# The Layout every kernel reads (where each layer's W, b and activation
# block live in the flat buffers), the two build switches every kernel can
# consult (debug block checks, the instruction set the module is compiled
# for) and the small helpers all kernels share.
#
# Layout.  All parameters live in one flat array ``params``: for each layer
# i, ``W_i`` (n_out, n_in) row-major followed by ``b_i`` (n_out,).
# ``grads`` has the same layout.  The activations of a batch live in one
# flat buffer ``acts``: layer i's block holds ``A_i`` (n, n_out) at an
# offset fixed by the buffer's row capacity, so a smaller batch reuses the
# same blocks.  ``deltas`` mirrors ``acts`` and holds ``dZ_i``.  The input
# ``X`` is never copied.

cimport numpy as cnp
from cython cimport floating

ctypedef cnp.npy_intp intp_t


cdef struct Layout:
    int n_layers          # number of weight layers (hidden layers + output)
    int loss              # Loss code (csrc/_activations.pxd)
    int* sizes            # n_layers + 1 layer widths, input first
    int* act              # n_layers activation codes, output last
    Py_ssize_t* w_off     # offset of W_i in params
    Py_ssize_t* b_off     # offset of b_i in params
    Py_ssize_t* a_off     # offset of layer i's (capacity, n_out) block in acts
    int max_width         # widest layer output
    Py_ssize_t n_params   # length of params and grads
    Py_ssize_t capacity   # rows the acts/deltas buffers hold
    Py_ssize_t act_size   # length of the acts and deltas buffers
    double* w_bound       # per layer: a bound on max |W_i|, |b_i| (update guard)
    double* pending       # per layer: a bound on the update being applied


# Debug builds (PYBACKPROP_DEBUG=1 at build time, see setup.py) check every
# block a kernel computes against the buffer it lies in: the kernels index
# raw pointers, which Cython's boundscheck cannot see.  A violation is
# counted in nogil code and raised as an AssertionError when the call
# returns to Python.  In release builds PYBACKPROP_DEBUG is the constant 0
# and the checks compile out.
cdef extern from *:
    """
    #ifndef PYBACKPROP_DEBUG
    #define PYBACKPROP_DEBUG 0
    #endif
    static Py_ssize_t pybackprop_debug_violations = 0;
    #define PYBACKPROP_COUNT_VIOLATION() (pybackprop_debug_violations++)
    #define PYBACKPROP_VIOLATIONS() (pybackprop_debug_violations)
    #define PYBACKPROP_RESET_VIOLATIONS() (pybackprop_debug_violations = 0)
    """
    const int PYBACKPROP_DEBUG
    void PYBACKPROP_COUNT_VIOLATION() noexcept nogil
    Py_ssize_t PYBACKPROP_VIOLATIONS() noexcept nogil
    void PYBACKPROP_RESET_VIOLATIONS() noexcept nogil


# Instruction-set variants.  setup.py compiles csrc/_core.pyx three times on
# x86-64: the baseline module pybackprop._core (SSE2, runs everywhere) and
# pybackprop._core_avx2 / _core_avx512 (-march=x86-64-v3 / -v4), each with
# PYBACKPROP_ISA naming its target.  pybackprop/_dispatch.py asks the
# baseline module which ones this CPU (and OS) can run and imports the best.
# Every variant is built with -ffp-contract=off and without fast-math, so
# they differ only in vector width: their results are bit-for-bit the same.
cdef extern from *:
    """
    #ifndef PYBACKPROP_ISA
    #define PYBACKPROP_ISA "baseline"
    #endif
    #ifndef PYBACKPROP_BUILD_ID
    #define PYBACKPROP_BUILD_ID "unknown"
    #endif
    static int pybackprop_cpu_runs(int level) {
    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        /* x86-64-v3 and -v4 as the psABI defines them; the checks include
           the OS's support for the wider register state. */
        int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                 && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
        int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                 && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
                 && __builtin_cpu_supports("avx512vl");
        return level == 3 ? v3 : level == 4 ? v4 : 0;
    #else
        return 0;
    #endif
    }
    """
    const char* PYBACKPROP_ISA
    const char* PYBACKPROP_BUILD_ID
    int pybackprop_cpu_runs(int level) noexcept nogil


cdef inline void debug_range(Py_ssize_t start, Py_ssize_t count, Py_ssize_t size) noexcept nogil:
    """Debug builds: count a block [start, start + count) that leaves [0, size)."""
    if PYBACKPROP_DEBUG and (start < 0 or count < 0 or start + count > size):
        PYBACKPROP_COUNT_VIOLATION()


cdef inline void debug_layer_blocks(const Layout* L, int i, int n) noexcept nogil:
    """Debug builds: layer i's W, b and its (n, n_out) activation block fit."""
    cdef Py_ssize_t n_in = L.sizes[i], n_out = L.sizes[i + 1]
    if PYBACKPROP_DEBUG:
        debug_range(L.w_off[i], n_out * n_in, L.n_params)
        debug_range(L.b_off[i], n_out, L.n_params)
        debug_range(L.a_off[i], n * n_out, L.act_size)
        debug_range(0, n, L.capacity + 1)


cdef inline void copy_values(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    """dst[:count] := src[:count].  A loop, not memcpy: most copies here are a
    few values (a bias row, one sample), where a libc call costs more than
    the copy; the compiler vectorises the long ones."""
    cdef Py_ssize_t i
    for i in range(count):
        dst[i] = src[i]
