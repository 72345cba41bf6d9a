"""The compiled core of pybackprop: forward and backward passes of a dense MLP.

Layout.  All parameters live in one flat array ``params``: for each layer i,
``W_i`` (n_out, n_in) row-major followed by ``b_i`` (n_out,).  ``grads`` has
the same layout.  The activations of a batch live in one flat buffer
``acts``: layer i's block holds ``A_i`` (n, n_out) at an offset fixed by the
buffer's row capacity, so a smaller batch reuses the same blocks.  ``deltas``
mirrors ``acts`` and holds ``dZ_i``.  The input ``X`` is never copied.

Border.  pybackprop/network.py builds and initialises the parameters; the
``def`` methods here check, in C, that the arrays they receive are already
in the exact form the kernels read (dtype, C order, shape) and hand anything
else to a Python coercion function that converts or raises; they check
values (NaN/inf, label ranges) in compiled loops so no batch-sized temporary
is built.  The ``cdef ... noexcept nogil`` kernels trust their inputs and
only compute, with the GIL released and a per-network lock held.
"""

import numpy as np
cimport numpy as cnp
from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
    PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK,
)
from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating
from libc.math cimport exp, log, isfinite, pow, sqrt, NAN
from libc.stdint cimport int32_t, int64_t
from libc.float cimport DBL_MAX, FLT_MAX
from libc.limits cimport INT_MAX
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from _blas cimport gemm, SMALL_GEMM_MACS, set_blas_threads_hook, blas_set_threads_local
from _activations cimport (
    Activation, IDENTITY, SIGMOID, RELU, TANH, SOFTMAX,
    Loss, SQUARED_ERROR, BINARY_CROSS_ENTROPY, CROSS_ENTROPY,
    sigmoid, softplus, activate_rows, multiply_derivative,
)

cnp.import_array()

ctypedef cnp.npy_intp intp_t

# Rows per forward chunk when predicting or evaluating a loss on a batch
# larger than the training buffers: bounds memory without hurting BLAS.
cdef enum:
    EVAL_CHUNK = 1024

# Shuffled epochs prefetch the next batch's rows when the data set is larger
# than this (about the L2 cache of these machines).
cdef enum:
    PREFETCH_MIN_BYTES = 1048576


cdef struct Layout:
    int n_layers          # number of weight layers (hidden layers + output)
    int loss              # Loss code
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


# Debug builds (PYBACKPROP_DEBUG=1 at build time) check every block a kernel
# computes against the buffer it lies in: the kernels index raw pointers,
# which Cython's boundscheck cannot see.  A violation is counted in nogil
# code and raised as an AssertionError when the call returns to Python.
# In normal builds PYBACKPROP_DEBUG is the constant 0 and the checks vanish.
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

DEBUG_BUILD = bool(PYBACKPROP_DEBUG)


# Instruction-set variants.  setup.py compiles this file three times on
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

ISA = PYBACKPROP_ISA.decode("ascii")
BUILD_ID = PYBACKPROP_BUILD_ID.decode("ascii")


def _cpu_runs(str isa):
    """Whether this CPU and OS run the code of an instruction-set variant:
    'baseline', 'avx2' (x86-64-v3) or 'avx512' (x86-64-v4)."""
    if isa == "baseline":
        return True
    if isa == "avx2":
        return bool(pybackprop_cpu_runs(3))
    if isa == "avx512":
        return bool(pybackprop_cpu_runs(4))
    raise ValueError(f"unknown instruction-set variant {isa!r}; expected 'baseline', 'avx2' or 'avx512'")


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


cdef check_debug_violations():
    """Raise if a kernel of this call computed an out-of-bounds block."""
    if PYBACKPROP_DEBUG and PYBACKPROP_VIOLATIONS() > 0:
        PYBACKPROP_RESET_VIOLATIONS()
        raise AssertionError("debug build: a kernel addressed memory outside its buffers")


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------

cdef extern from *:
    """
    /* Prefetch the rows a shuffled epoch will gather next.  Kept out of line
       (noinline) because, inlined, it changed how the compiler laid out the
       epoch loop and slowed small-data epochs by 12%. */
    #if defined(__GNUC__) || defined(__clang__)
    __attribute__((noinline))
    #endif
    static void pybackprop_prefetch_rows(const char* X, Py_ssize_t x_row_bytes,
                                         const char* T, Py_ssize_t t_row_bytes,
                                         const npy_intp* order, Py_ssize_t count) {
        Py_ssize_t r;
        for (r = 0; r < count; r++) {
    #if defined(__GNUC__) || defined(__clang__)
            __builtin_prefetch(X + order[r] * x_row_bytes);
            __builtin_prefetch(T + order[r] * t_row_bytes);
    #endif
        }
    }
    """
    void prefetch_rows_of "pybackprop_prefetch_rows"(
        const char* X, Py_ssize_t x_row_bytes, const char* T, Py_ssize_t t_row_bytes,
        const intp_t* order, Py_ssize_t count) noexcept nogil


cdef inline void copy_values(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    """dst[:count] := src[:count].  A loop, not memcpy: most copies here are a
    few values (a bias row, one sample), where a libc call costs more than
    the copy; the compiler vectorises the long ones."""
    cdef Py_ssize_t i
    for i in range(count):
        dst[i] = src[i]


cdef enum:
    DOT_LANES = 16


cdef inline void affine_one_sample(const floating* W, const floating* b, const floating* a,
                                   int n_in, int n_out, floating* z) noexcept nogil:
    """z := W a + b for one sample, W (n_out, n_in).  Per-sample training of
    small networks spends its time in call and loop overhead, so one sample
    gets these plain loops instead of BLAS.

    Each dot product runs in DOT_LANES partial sums, added pairwise in a
    fixed order at the end: a loop over independent lanes vectorises, where one running
    sum is a chain of dependent additions the compiler may not reorder
    (a 64-input layer: 64 additions back to back per output).  Inputs past
    the last full group of lanes, and layers narrower than DOT_LANES (the
    2-2-1 network), are summed one by one as before."""
    cdef int j, p, lane, half, full = n_in - n_in % DOT_LANES
    cdef floating acc
    cdef floating lanes[DOT_LANES]
    cdef const floating* w_row
    for j in range(n_out):
        w_row = W + <Py_ssize_t> j * n_in
        acc = 0
        if full > 0:
            for lane in range(DOT_LANES):
                lanes[lane] = a[lane] * w_row[lane]
            p = DOT_LANES
            while p < full:
                for lane in range(DOT_LANES):
                    lanes[lane] = lanes[lane] + a[p + lane] * w_row[p + lane]
                p += DOT_LANES
            half = DOT_LANES // 2
            while half > 0:                     # pairwise: 4 dependent steps, not 16
                for lane in range(half):
                    lanes[lane] = lanes[lane] + lanes[lane + half]
                half = half // 2
            acc = lanes[0]
        for p in range(full, n_in):
            acc = acc + a[p] * w_row[p]
        z[j] = b[j] + acc


cdef inline void propagate_one_sample(const floating* W, const floating* dz, int n_in,
                                      int n_out, floating* da_prev) noexcept nogil:
    """One sample, one layer: da_prev := W^T dz (same rounding as the batched path)."""
    cdef int j, p
    cdef floating g
    cdef const floating* w_row
    for p in range(n_in):
        da_prev[p] = 0
    for j in range(n_out):
        g = dz[j]
        w_row = W + <Py_ssize_t> j * n_in
        for p in range(n_in):
            da_prev[p] = da_prev[p] + g * w_row[p]


cdef inline void update_one_sample(floating* W, floating* b, const floating* dz,
                                   const floating* a_prev, int n_in, int n_out,
                                   floating* dW, floating* db, floating lr) noexcept nogil:
    """One sample, one layer: dW := dz a_prev^T and db := dz (when dW is not
    NULL), or W -= lr dz a_prev^T and b -= lr dz.  Same rounding as the
    batched path."""
    cdef int j, p
    cdef floating g
    cdef floating* out_row
    if dW != NULL:
        for j in range(n_out):
            g = dz[j]
            out_row = dW + <Py_ssize_t> j * n_in
            for p in range(n_in):
                out_row[p] = g * a_prev[p]
            db[j] = dz[j]
    else:
        for j in range(n_out):
            g = -lr * dz[j]
            out_row = W + <Py_ssize_t> j * n_in
            for p in range(n_in):
                out_row[p] = out_row[p] + g * a_prev[p]
            b[j] -= lr * dz[j]


cdef void forward(const Layout* L, const floating* params, const floating* X,
                  int n, floating* acts) noexcept nogil:
    """Z_i := A_{i-1} W_i^T + b_i and A_i := act_i(Z_i) for the hidden layers.

    The output block is left holding Z_L: its activation is fused with the
    loss (output_and_loss) or applied by apply_output.
    """
    cdef int i, r, n_in, n_out
    cdef const floating* A_prev = X
    cdef floating* Z
    for i in range(L.n_layers):
        n_in = L.sizes[i]
        n_out = L.sizes[i + 1]
        debug_layer_blocks(L, i, n)
        Z = acts + L.a_off[i]
        if n == 1 and n_in * n_out <= SMALL_GEMM_MACS:
            affine_one_sample(params + L.w_off[i], params + L.b_off[i], A_prev, n_in, n_out, Z)
            if i < L.n_layers - 1:
                activate_rows(L.act[i], Z, n_out)
            A_prev = Z
            continue
        # The bias is preloaded into Z and the product added with beta = 1:
        # one pass over Z instead of two.
        for r in range(n):
            copy_values(Z + <Py_ssize_t> r * n_out, params + L.b_off[i], n_out)
        gemm(False, True, n, n_out, n_in, <floating> 1, A_prev, n_in,
             params + L.w_off[i], n_in, <floating> 1, Z, n_out)
        if i < L.n_layers - 1:
            activate_rows(L.act[i], Z, <Py_ssize_t> n * n_out)
        A_prev = Z


cdef void apply_output(int code, floating* Z, int n, int n_out) noexcept nogil:
    """A_L := out(Z_L) in place (identity, sigmoid or row-wise softmax)."""
    cdef int r, k
    cdef floating* z
    cdef floating m
    cdef double total
    if code == SOFTMAX:
        for r in range(n):
            z = Z + <Py_ssize_t> r * n_out
            m = z[0]
            for k in range(1, n_out):
                if z[k] > m:
                    m = z[k]
            total = 0
            for k in range(n_out):
                z[k] = exp(z[k] - m)
                total += z[k]
            for k in range(n_out):
                z[k] = <floating> (z[k] / total)
    else:
        activate_rows(code, Z, <Py_ssize_t> n * n_out)


cdef double output_and_loss(const Layout* L, floating* Z, int n, int row0,
                            const floating* Y, const intp_t* labels,
                            const floating* sw, double weight_total,
                            floating* dZ) noexcept nogil:
    """A_L := out(Z_L) in place and return sum_r c_r l_r over these n rows.

    c_r = sw[row0 + r] / weight_total (1 / weight_total without weights), so
    the batch loss is the weighted mean of the per-sample losses.  When dZ is
    not NULL, also dZ_L := c_r dl_r/dZ_L, the exact derivative of that loss.
    Targets are Y (rows of n_out) or, for cross-entropy, integer labels.
    Every log term is taken from Z, never from a saturated A.
    """
    cdef int n_out = L.sizes[L.n_layers]
    cdef int out_code = L.act[L.n_layers - 1]
    cdef int r, k, label
    cdef floating* z
    cdef floating* dz = NULL
    cdef const floating* y = NULL
    cdef floating a, diff, zmax, c
    cdef double coef, row_loss, total = 0, expsum, lse, ysum
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        if dZ != NULL:
            dz = dZ + <Py_ssize_t> r * n_out
        if Y != NULL:
            y = Y + <Py_ssize_t> (row0 + r) * n_out
        coef = (sw[row0 + r] if sw != NULL else 1.0) / weight_total
        c = <floating> coef
        row_loss = 0
        if L.loss == CROSS_ENTROPY:
            zmax = z[0]
            for k in range(1, n_out):
                if z[k] > zmax:
                    zmax = z[k]
            expsum = 0
            for k in range(n_out):
                expsum += exp(z[k] - zmax)
            lse = zmax + log(expsum)
            if labels != NULL:
                label = <int> labels[row0 + r]
                debug_range(label, 1, n_out)
                row_loss = lse - z[label]
                ysum = 1
            else:
                ysum = 0
                for k in range(n_out):
                    if y[k] != 0:
                        row_loss += y[k] * (lse - z[k])
                    ysum += y[k]
            for k in range(n_out):
                z[k] = <floating> exp(z[k] - lse)
                if dz != NULL:
                    if labels != NULL:
                        dz[k] = c * (z[k] - (1 if k == label else 0))
                    else:
                        dz[k] = c * (z[k] * <floating> ysum - y[k])
        elif L.loss == BINARY_CROSS_ENTROPY:
            for k in range(n_out):
                row_loss += y[k] * softplus(-z[k]) + (1 - y[k]) * softplus(z[k])
                a = sigmoid(z[k])
                z[k] = a
                if dz != NULL:
                    dz[k] = c * (a - y[k])
        else:
            for k in range(n_out):
                if out_code == SIGMOID:
                    a = sigmoid(z[k])
                    z[k] = a
                else:
                    a = z[k]
                diff = a - y[k]
                row_loss += 0.5 * (<double> diff) * diff
                if dz != NULL:
                    if out_code == SIGMOID:
                        dz[k] = c * diff * (a * (1 - a))
                    else:
                        dz[k] = c * diff
        total += coef * row_loss
    return total


cdef void column_sums(const floating* M, int n, int width, floating* out) noexcept nogil:
    """out := sum over the n rows of M (n, width)."""
    cdef int r, j
    cdef const floating* row
    copy_values(out, M, width)
    for r in range(1, n):
        row = M + <Py_ssize_t> r * width
        for j in range(width):
            out[j] += row[j]


cdef inline int64_t largest_magnitude_bits(const floating* x, Py_ssize_t count) noexcept nogil:
    """The largest bit pattern of |x[i]| over count values, as an integer
    (0 when count is 0).

    With the sign bit cleared, IEEE values order like their bit patterns read
    as integers, and every inf/NaN pattern lies above every finite one.  An
    integer maximum is a reduction the compiler vectorises as it is (a float
    maximum it may not reorder without fast-math); memcpy is the aliasing-safe
    way to read the bits and compiles to a plain load."""
    cdef Py_ssize_t i
    cdef int32_t bits32, largest32 = 0
    cdef int64_t bits64, largest64 = 0
    if floating is float:
        for i in range(count):
            memcpy(&bits32, x + i, 4)
            bits32 = bits32 & 0x7fffffff
            largest32 = bits32 if bits32 > largest32 else largest32
        return largest32
    else:
        for i in range(count):
            memcpy(&bits64, x + i, 8)
            bits64 = bits64 & 0x7fffffffffffffffLL
            largest64 = bits64 if bits64 > largest64 else largest64
        return largest64


cdef inline bint finite_bits(int64_t magnitude_bits, bint is_float) noexcept nogil:
    """Whether a sign-cleared bit pattern is below the all-ones exponent."""
    if is_float:
        return magnitude_bits < 0x7f800000
    return magnitude_bits < 0x7ff0000000000000LL


cdef inline int nonfinite(floating x) noexcept nogil:
    """1 when x is NaN or infinite, else 0, from its exponent bits: a test
    the compiler vectorises inside a loop (isfinite in a condition, with
    the branch it brings, kept the optimizer's check passes scalar)."""
    cdef int32_t bits32
    cdef int64_t bits64
    if floating is float:
        memcpy(&bits32, &x, 4)
        return (bits32 & 0x7f800000) == 0x7f800000
    else:
        memcpy(&bits64, &x, 8)
        return (bits64 & 0x7ff0000000000000LL) == 0x7ff0000000000000LL


cdef inline double max_abs(const floating* x, Py_ssize_t count) noexcept nogil:
    """max |x[i]| (0 for no values), or NaN when any x[i] is NaN or infinite."""
    cdef int64_t bits = largest_magnitude_bits(x, count)
    cdef int32_t bits32
    cdef float value32
    cdef double value64
    if not finite_bits(bits, floating is float):
        return NAN
    if floating is float:
        bits32 = <int32_t> bits
        memcpy(&value32, &bits32, 4)
        value64 = value32
    else:
        memcpy(&value64, &bits, 8)
    return value64


cdef void scan_parameter_bounds(Layout* L, const floating* params) noexcept nogil:
    """L.w_bound[i] := max |W_i|, |b_i|: where the update guard starts."""
    cdef int i
    for i in range(L.n_layers):
        L.w_bound[i] = max_abs(params + L.w_off[i],
                               L.b_off[i] + L.sizes[i + 1] - L.w_off[i])


cdef double update_bound(const floating* dZ, const floating* A_prev, int n, int n_in,
                         int n_out, double lr) noexcept nogil:
    """A bound on every |lr dW_jk| = lr |sum_r dZ_rj A_rk| and |lr db_j|:
    lr * n * max|dZ| * max(max|A|, 1).  Two vectorised scans of contiguous
    blocks; NaN or inf when dZ or A holds a non-finite value."""
    cdef double dz_max = max_abs(dZ, <Py_ssize_t> n * n_out)
    cdef double a_max = max_abs(A_prev, <Py_ssize_t> n * n_in)
    return lr * n * dz_max * (a_max if not (a_max <= 1) else 1)


cdef bint backward(Layout* L, floating* params, const floating* X, int n,
                   const floating* acts, floating* deltas, floating* grads,
                   floating lr, floating* scratch, floating* dX) noexcept nogil:
    """Backpropagate dZ_L (already in the output block of deltas).

    First, for each layer from the last: dA_{i-1} := dZ_i W_i, then
    dZ_{i-1} := dA_{i-1} * act'(A_{i-1}) from the saved activation (and
    dX := dZ_0 W_0 when dX is not NULL).  Then either dW_i := dZ_i^T A_{i-1},
    db_i := sum_rows dZ_i into grads, or, when grads is NULL, the SGD update
    W_i -= lr dZ_i^T A_{i-1} done by the product itself (alpha = -lr,
    beta = 1) and b_i -= lr db_i.

    The SGD update is guarded: before any parameter changes, each layer's
    update is bounded (update_bound) and added to the bound of its current
    magnitudes (L.w_bound, from scan_parameter_bounds); if any could pass
    half the dtype's largest value, nothing is updated and True is returned
    (refused).  Otherwise the bounds grow by the updates and False is returned.
    """
    cdef int i, j, n_in, n_out
    cdef floating* dZ
    cdef floating* dA
    cdef floating* W
    cdef floating* b
    cdef const floating* A_prev
    cdef double limit = 0.5 * (DBL_MAX if floating is double else FLT_MAX)
    cdef bint one_sample
    for i in range(L.n_layers - 1, -1, -1):
        n_in = L.sizes[i]
        n_out = L.sizes[i + 1]
        debug_layer_blocks(L, i, n)
        dA = NULL
        if i > 0:
            debug_layer_blocks(L, i - 1, n)
            dA = deltas + L.a_off[i - 1]
        elif dX != NULL:
            dA = dX
        if dA == NULL:
            continue
        dZ = deltas + L.a_off[i]
        W = params + L.w_off[i]
        if n == 1 and n_in * n_out <= SMALL_GEMM_MACS:
            propagate_one_sample(W, dZ, n_in, n_out, dA)
        else:
            gemm(False, False, n, n_in, n_out, <floating> 1, dZ, n_out,
                 W, n_in, <floating> 0, dA, n_in)
        if i > 0:
            multiply_derivative(L.act[i - 1], dA, acts + L.a_off[i - 1], <Py_ssize_t> n * n_in)

    if grads == NULL:
        for i in range(L.n_layers):
            A_prev = X if i == 0 else acts + L.a_off[i - 1]
            L.pending[i] = update_bound(deltas + L.a_off[i], A_prev, n, L.sizes[i],
                                        L.sizes[i + 1], lr)
            if not (L.w_bound[i] + L.pending[i] <= limit):
                return True

    for i in range(L.n_layers):
        n_in = L.sizes[i]
        n_out = L.sizes[i + 1]
        dZ = deltas + L.a_off[i]
        W = params + L.w_off[i]
        b = params + L.b_off[i]
        A_prev = X if i == 0 else acts + L.a_off[i - 1]
        one_sample = n == 1 and n_in * n_out <= SMALL_GEMM_MACS
        if grads != NULL:
            if one_sample:
                update_one_sample(W, b, dZ, A_prev, n_in, n_out,
                                  grads + L.w_off[i], grads + L.b_off[i], lr)
            else:
                gemm(True, False, n_out, n_in, n, <floating> 1, dZ, n_out,
                     A_prev, n_in, <floating> 0, grads + L.w_off[i], n_in)
                column_sums(dZ, n, n_out, grads + L.b_off[i])
        else:
            if one_sample:
                update_one_sample(W, b, dZ, A_prev, n_in, n_out, NULL, NULL, lr)
            else:
                gemm(True, False, n_out, n_in, n, -lr, dZ, n_out,
                     A_prev, n_in, <floating> 1, W, n_in)
                column_sums(dZ, n, n_out, scratch)
                for j in range(n_out):
                    b[j] -= lr * scratch[j]
            L.w_bound[i] += L.pending[i]
    return False


# Optimizer kinds (pybackprop/optim.py builds the configuration).
cdef enum OptimizerKind:
    FUSED_SGD = 0     # plain SGD, applied inside the backward pass
    SGD = 1           # SGD with momentum / Nesterov / weight decay
    ADAM = 2          # Adam, or AdamW when decoupled


cdef struct OptConfig:
    int kind
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps
    bint nesterov, decoupled
    long long step        # updates applied so far
    void* update          # Adam: n_params values of scratch (see adam_segment)


cdef bint sgd_segment(const OptConfig* opt, floating* p, const floating* g,
                      floating* velocity, Py_ssize_t count, double weight_decay,
                      bint write) noexcept nogil:
    """PyTorch's SGD on one contiguous segment (opt.step already counts this update):
    g' = g + wd p; v := g' on the first step, else v := mu v + (1 - dampening) g';
    d = g' + mu v (Nesterov) or v (or g' without momentum); p := p - lr d.

    With write False nothing is stored: returns whether every new value
    would be finite (the check pass of optimizer_update)."""
    cdef Py_ssize_t i
    cdef floating gi, v_new, p_new
    cdef floating lr = <floating> opt.lr, wd = <floating> weight_decay
    cdef floating mu = <floating> opt.momentum, damp = <floating> (1 - opt.dampening)
    cdef int bad = 0
    # Loop-invariant settings in locals: read through opt, the compiler must
    # assume a store to p may change them.  Within a loop they only select
    # between values (vector blends); only momentum, which decides whether
    # velocity exists, splits the loop.
    cdef bint decay = weight_decay != 0, first = opt.step == 1, nesterov = opt.nesterov
    if opt.momentum == 0:
        for i in range(count):
            gi = g[i] + wd * p[i] if decay else g[i]
            p_new = p[i] - lr * gi
            if write:
                p[i] = p_new
            else:
                bad |= nonfinite(p_new)
        return not bad
    for i in range(count):
        gi = g[i] + wd * p[i] if decay else g[i]
        v_new = gi if first else mu * velocity[i] + damp * gi
        p_new = p[i] - lr * (gi + mu * v_new if nesterov else v_new)
        if write:
            velocity[i] = v_new
            p[i] = p_new
        else:
            bad |= nonfinite(p_new) | nonfinite(v_new)
    return not bad


cdef bint adam_segment(const OptConfig* opt, floating* p, const floating* g,
                       floating* m, floating* v, floating* update, Py_ssize_t count,
                       double weight_decay, bint write) noexcept nogil:
    """PyTorch's Adam/AdamW on one contiguous segment, step t = opt.step:
    AdamW: p := p (1 - lr wd); Adam: g' = g + wd p.
    m := b1 m + (1 - b1) g'; v := b2 v + (1 - b2) g'^2;
    p := p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    With write False only update (scratch) is stored, the step subtracted
    from p: returns whether every new value would be finite.  The write pass
    then takes the step from update instead of recomputing its square root
    and two divisions, which were most of an update's cost."""
    cdef Py_ssize_t i
    cdef floating gi, p_i, m_new, v_new, p_new, step
    cdef floating b1 = <floating> opt.beta1, b2 = <floating> opt.beta2
    cdef floating one_b1 = <floating> (1 - opt.beta1), one_b2 = <floating> (1 - opt.beta2)
    cdef floating step_size = <floating> (opt.lr / (1 - pow(opt.beta1, <double> opt.step)))
    cdef floating bc2_sqrt = <floating> sqrt(1 - pow(opt.beta2, <double> opt.step))
    cdef floating eps = <floating> opt.eps, wd = <floating> weight_decay
    cdef floating shrink = <floating> (1 - opt.lr * weight_decay)
    cdef int bad = 0
    cdef bint decay = weight_decay != 0, decoupled = opt.decoupled
    # Two loops, not one with 'if write' inside: GCC vectorised neither
    # branch of the single loop (an update took 121 us instead of 33 on
    # 19,210 parameters), so the decay lines are written twice.
    if write:
        for i in range(count):
            gi = g[i]
            p_i = p[i]
            if decay:
                if decoupled:
                    p_i = p_i * shrink
                else:
                    gi = gi + wd * p_i
            m[i] = b1 * m[i] + one_b1 * gi
            v[i] = b2 * v[i] + one_b2 * gi * gi
            p[i] = p_i - update[i]
        return True
    for i in range(count):
        gi = g[i]
        p_i = p[i]
        if decay:
            if decoupled:
                p_i = p_i * shrink
            else:
                gi = gi + wd * p_i
        m_new = b1 * m[i] + one_b1 * gi
        v_new = b2 * v[i] + one_b2 * gi * gi
        step = step_size * (m_new / (sqrt(v_new) / bc2_sqrt + eps))
        update[i] = step
        p_new = p_i - step
        bad |= nonfinite(p_new) | nonfinite(m_new) | nonfinite(v_new)
    return not bad


cdef bint optimizer_update(const Layout* L, OptConfig* opt, floating* params,
                           const floating* grads, floating* state1,
                           floating* state2) noexcept nogil:
    """One optimizer update of every parameter from grads, in place.

    Weight decay applies to the weights only, never to the biases.  A first
    pass computes every new value without storing it; if any would be NaN or
    infinite, nothing changes (not even the step count) and False is
    returned, so an overflowing update can never corrupt the network.
    """
    cdef int i, write
    cdef Py_ssize_t w_count, b_count
    cdef bint finite = True
    opt.step += 1
    for write in range(2):
        for i in range(L.n_layers):
            w_count = L.b_off[i] - L.w_off[i]
            b_count = L.sizes[i + 1]
            if opt.kind == ADAM:
                finite &= adam_segment(opt, params + L.w_off[i], grads + L.w_off[i],
                                       state1 + L.w_off[i], state2 + L.w_off[i],
                                       <floating*> opt.update + L.w_off[i], w_count,
                                       opt.weight_decay, write)
                finite &= adam_segment(opt, params + L.b_off[i], grads + L.b_off[i],
                                       state1 + L.b_off[i], state2 + L.b_off[i],
                                       <floating*> opt.update + L.b_off[i], b_count,
                                       0, write)
            else:
                finite &= sgd_segment(opt, params + L.w_off[i], grads + L.w_off[i],
                                      state1 + L.w_off[i], w_count, opt.weight_decay, write)
                finite &= sgd_segment(opt, params + L.b_off[i], grads + L.b_off[i],
                                      state1 + L.b_off[i], b_count, 0, write)
        if not finite:
            opt.step -= 1
            return False
    return True


cdef void output_backward(int code, floating* A, const floating* dA, int n, int n_out,
                          floating* dZ) noexcept nogil:
    """dZ_L := dA_L * out'(Z_L) for a user-supplied dL/dA_L, from the saved A_L.

    Softmax uses its Jacobian: dZ_k = A_k (dA_k - sum_j dA_j A_j).
    """
    cdef int r, k
    cdef double inner
    cdef Py_ssize_t i
    if code == SOFTMAX:
        for r in range(n):
            inner = 0
            for k in range(n_out):
                inner += dA[r * n_out + k] * A[r * n_out + k]
            for k in range(n_out):
                i = <Py_ssize_t> r * n_out + k
                dZ[i] = A[i] * <floating> (dA[i] - inner)
    elif code == SIGMOID:
        for i in range(<Py_ssize_t> n * n_out):
            dZ[i] = dA[i] * (A[i] * (1 - A[i]))
    else:
        memcpy(dZ, dA, <Py_ssize_t> n * n_out * sizeof(floating))


cdef enum:
    FINITE_CHECK_BLOCK = 1024


cdef Py_ssize_t first_nonfinite(const floating* values, Py_ssize_t count) noexcept nogil:
    """Index of the first NaN or inf in values, or -1.

    Blocks are checked with the vectorised bit-pattern maximum; only a block
    that holds a non-finite value is searched element by element."""
    cdef Py_ssize_t start = 0, i, size
    while start < count:
        size = min(<Py_ssize_t> FINITE_CHECK_BLOCK, count - start)
        if not finite_bits(largest_magnitude_bits(values + start, size), floating is float):
            for i in range(start, start + size):
                if not isfinite(values[i]):
                    return i
        start += size
    return -1


cdef Py_ssize_t first_outside(const floating* values, Py_ssize_t count,
                              double low, double high) noexcept nogil:
    """Index of the first value that is NaN/inf or outside [low, high], or -1."""
    cdef Py_ssize_t i
    for i in range(count):
        if not (values[i] >= low and values[i] <= high):
            return i
    return -1


cdef Py_ssize_t first_bad_label(const intp_t* labels, Py_ssize_t count,
                                intp_t n_classes) noexcept nogil:
    """Index of the first label outside 0 .. n_classes - 1, or -1."""
    cdef Py_ssize_t i
    for i in range(count):
        if labels[i] < 0 or labels[i] >= n_classes:
            return i
    return -1


# ---------------------------------------------------------------------------
# The network object
# ---------------------------------------------------------------------------

cdef inline bint _ready(object a, int typenum, int ndim) noexcept:
    """True when a is exactly what the kernels read: an ndarray of this
    type number and rank, native byte order, aligned and C-contiguous."""
    if not cnp.PyArray_CheckExact(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray> a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_NDIM(arr) == ndim
            and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


cdef class Network:
    """Parameters, buffers and kernels of one MLP.  Use pybackprop.MLP.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, n_hidden..., n_out]``.
    activation_codes : sequence of int
        One code per weight layer, the output activation last.
    loss_code : int
    params : ndarray of float32 or float64, shape (n_params,)
        The flat parameter vector, used in place (never copied).
    coerce : callable
        ``coerce(X, y, sample_weight) -> (X, y, sample_weight)`` converting
        inputs to the exact form the kernels read, or raising.  Called only
        when the compiled fast check fails.
    """

    cdef Layout layout
    cdef readonly bint is_double
    cdef readonly int n_in, n_out
    cdef readonly Py_ssize_t n_params, capacity
    cdef readonly object params, grads
    cdef int typenum
    cdef object coerce
    cdef object _acts_array, _deltas_array, _dx_array, _scratch_array
    cdef float[::1] params32, grads32, acts32, deltas32, dx32, scratch32
    cdef double[::1] params64, grads64, acts64, deltas64, dx64, scratch64
    cdef Py_ssize_t act_width, dx_capacity, gather_capacity
    cdef object _gather_x, _gather_y, _gather_labels, _gather_w
    cdef object _update_array
    cdef PyThread_type_lock lock
    cdef object __weakref__

    def __cinit__(self):
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError("could not allocate the network lock")
        self.layout.sizes = NULL
        self.layout.act = NULL
        self.layout.w_off = NULL
        self.layout.b_off = NULL
        self.layout.a_off = NULL
        self.layout.w_bound = NULL
        self.layout.pending = NULL

    def __init__(self, layer_sizes, activation_codes, int loss_code,
                 cnp.ndarray params not None, coerce):
        cdef int n_layers = len(layer_sizes) - 1
        cdef int i
        cdef Py_ssize_t offset = 0
        if n_layers < 1 or len(activation_codes) != n_layers:
            raise ValueError("need at least one layer and one activation per layer")
        if self.layout.sizes != NULL:
            raise RuntimeError("Network is already initialised")
        self.layout.n_layers = n_layers
        self.layout.loss = loss_code
        self.layout.sizes = <int*> malloc((n_layers + 1) * sizeof(int))
        self.layout.act = <int*> malloc(n_layers * sizeof(int))
        self.layout.w_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.b_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.a_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.w_bound = <double*> malloc(n_layers * sizeof(double))
        self.layout.pending = <double*> malloc(n_layers * sizeof(double))
        if (self.layout.sizes == NULL or self.layout.act == NULL or self.layout.w_off == NULL
                or self.layout.b_off == NULL or self.layout.a_off == NULL
                or self.layout.w_bound == NULL or self.layout.pending == NULL):
            raise MemoryError()
        self.layout.max_width = 0
        for i in range(n_layers + 1):
            self.layout.sizes[i] = int(layer_sizes[i])
            if self.layout.sizes[i] < 1:
                raise ValueError("layer sizes must be positive")
        self.act_width = 0
        for i in range(n_layers):
            self.layout.act[i] = int(activation_codes[i])
            self.layout.w_off[i] = offset
            offset += <Py_ssize_t> self.layout.sizes[i + 1] * self.layout.sizes[i]
            self.layout.b_off[i] = offset
            offset += self.layout.sizes[i + 1]
            self.act_width += self.layout.sizes[i + 1]
            if self.layout.sizes[i + 1] > self.layout.max_width:
                self.layout.max_width = self.layout.sizes[i + 1]
            self.layout.a_off[i] = 0
        self.n_in = self.layout.sizes[0]
        self.n_out = self.layout.sizes[n_layers]
        self.n_params = offset
        self.layout.n_params = offset
        self.layout.capacity = 0
        self.layout.act_size = 0

        if params.ndim != 1 or params.shape[0] != offset or not params.flags.c_contiguous:
            raise ValueError(f"params must be a contiguous vector of {offset} values")
        if params.dtype == np.float64:
            self.is_double = True
            self.typenum = cnp.NPY_DOUBLE
            self.params64 = params
            self.grads = np.zeros(offset, dtype=np.float64)
            self.grads64 = self.grads
            self._scratch_array = np.zeros(self.layout.max_width, dtype=np.float64)
            self.scratch64 = self._scratch_array
        elif params.dtype == np.float32:
            self.is_double = False
            self.typenum = cnp.NPY_FLOAT
            self.params32 = params
            self.grads = np.zeros(offset, dtype=np.float32)
            self.grads32 = self.grads
            self._scratch_array = np.zeros(self.layout.max_width, dtype=np.float32)
            self.scratch32 = self._scratch_array
        else:
            raise TypeError(f"params must be float32 or float64, got {params.dtype}")
        self.params = params
        self.coerce = coerce
        self.capacity = 0
        self.dx_capacity = 0
        self.gather_capacity = 0

    def __dealloc__(self):
        free(self.layout.sizes)
        free(self.layout.act)
        free(self.layout.w_off)
        free(self.layout.b_off)
        free(self.layout.a_off)
        free(self.layout.w_bound)
        free(self.layout.pending)
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    # -- buffers ------------------------------------------------------------

    cdef _ensure_capacity(self, Py_ssize_t n):
        """Grow the activation and delta buffers to hold n rows (lock held)."""
        cdef int i
        cdef Py_ssize_t offset = 0
        if n <= self.capacity:
            return
        dtype = np.float64 if self.is_double else np.float32
        self._acts_array = np.empty(n * self.act_width, dtype=dtype)
        self._deltas_array = np.empty(n * self.act_width, dtype=dtype)
        if self.is_double:
            self.acts64 = self._acts_array
            self.deltas64 = self._deltas_array
        else:
            self.acts32 = self._acts_array
            self.deltas32 = self._deltas_array
        for i in range(self.layout.n_layers):
            self.layout.a_off[i] = offset
            offset += n * self.layout.sizes[i + 1]
        self.capacity = n
        self.layout.capacity = n
        self.layout.act_size = n * self.act_width

    cdef void _scan_bounds(self) noexcept nogil:
        """Start the update guard from a fresh scan of the parameters: they may
        have been written from Python since the last call."""
        if self.is_double:
            scan_parameter_bounds(&self.layout, &self.params64[0])
        else:
            scan_parameter_bounds(&self.layout, &self.params32[0])

    cdef _reserve(self, Py_ssize_t n, bint input_grad):
        """Buffers for a training step on n rows (and dX when input_grad)."""
        self._ensure_capacity(n)
        if input_grad:
            self._ensure_dx_capacity(n)

    cdef _ensure_dx_capacity(self, Py_ssize_t n):
        if n <= self.dx_capacity:
            return
        dtype = np.float64 if self.is_double else np.float32
        self._dx_array = np.empty(n * self.n_in, dtype=dtype)
        if self.is_double:
            self.dx64 = self._dx_array
        else:
            self.dx32 = self._dx_array
        self.dx_capacity = n

    # -- input checks -------------------------------------------------------

    cdef tuple _check(self, X, y, sample_weight, bint need_y):
        """Return (X, y, sample_weight, y_is_labels) in kernel-ready form.

        The compiled fast check accepts arrays already in that form; the
        Python coerce function handles everything else (or raises).  Value
        checks run here in compiled loops either way.
        """
        cdef Py_ssize_t n
        cdef bint labels = False
        if need_y and y is None:
            raise TypeError("y is required: the targets for X (an array of values, or of "
                            "class labels for cross-entropy), got None")
        if not self._fast_ok(X, y, sample_weight, need_y):
            X, y, sample_weight = self.coerce(X, y, sample_weight)
            if not self._fast_ok(X, y, sample_weight, need_y):
                raise RuntimeError("internal error: coerce returned arrays the core cannot read")
        n = cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        if need_y and cnp.PyArray_TYPE(<cnp.ndarray> y) == cnp.NPY_INTP:
            labels = True
        self._check_values(X, y if need_y else None, sample_weight, labels)
        return X, y, sample_weight, labels

    cdef bint _fast_ok(self, X, y, sample_weight, bint need_y):
        cdef intp_t* dims
        cdef intp_t n
        if not _ready(X, self.typenum, 2):
            return False
        dims = cnp.PyArray_DIMS(<cnp.ndarray> X)
        n = dims[0]
        if n < 1 or n > INT_MAX or dims[1] != self.n_in:
            return False
        if need_y:
            if self.layout.loss == CROSS_ENTROPY and _ready(y, cnp.NPY_INTP, 1):
                if cnp.PyArray_DIMS(<cnp.ndarray> y)[0] != n:
                    return False
            elif _ready(y, self.typenum, 2):
                dims = cnp.PyArray_DIMS(<cnp.ndarray> y)
                if dims[0] != n or dims[1] != self.n_out:
                    return False
            elif self.n_out == 1 and _ready(y, self.typenum, 1):
                if cnp.PyArray_DIMS(<cnp.ndarray> y)[0] != n:
                    return False
            else:
                return False
        if sample_weight is not None:
            if not _ready(sample_weight, self.typenum, 1):
                return False
            if cnp.PyArray_DIMS(<cnp.ndarray> sample_weight)[0] != n:
                return False
        return True

    cdef _check_values(self, X, y, sample_weight, bint labels):
        cdef cnp.ndarray arr = <cnp.ndarray> X
        cdef Py_ssize_t count = cnp.PyArray_SIZE(arr)
        cdef Py_ssize_t bad
        cdef void* data = cnp.PyArray_DATA(arr)
        cdef double low = 0, high = 1, total
        cdef intp_t n_out = self.n_out
        with nogil:
            if self.is_double:
                bad = first_nonfinite(<double*> data, count)
            else:
                bad = first_nonfinite(<float*> data, count)
        if bad >= 0:
            _raise_bad_value("X", X, bad, "NaN or infinity; inputs must be finite")
        if y is not None:
            arr = <cnp.ndarray> y
            count = cnp.PyArray_SIZE(arr)
            data = cnp.PyArray_DATA(arr)
            if labels:
                with nogil:
                    bad = first_bad_label(<intp_t*> data, count, n_out)
                if bad >= 0:
                    raise ValueError(
                        f"class label {int(y[bad])} at index {bad} is out of range: "
                        f"labels must be integers in 0..{n_out - 1} for {n_out} outputs")
            elif self.layout.loss == SQUARED_ERROR:
                with nogil:
                    if self.is_double:
                        bad = first_nonfinite(<double*> data, count)
                    else:
                        bad = first_nonfinite(<float*> data, count)
                if bad >= 0:
                    _raise_bad_value("y", y, bad, "NaN or infinity; targets must be finite")
            else:
                with nogil:
                    if self.is_double:
                        bad = first_outside(<double*> data, count, low, high)
                    else:
                        bad = first_outside(<float*> data, count, low, high)
                if bad >= 0:
                    _raise_bad_value("y", y, bad,
                                     "outside [0, 1]; cross-entropy targets are probabilities")
        if sample_weight is not None:
            arr = <cnp.ndarray> sample_weight
            count = cnp.PyArray_SIZE(arr)
            data = cnp.PyArray_DATA(arr)
            high = np.inf
            with nogil:
                if self.is_double:
                    bad = first_outside(<double*> data, count, low, high)
                else:
                    bad = first_outside(<float*> data, count, low, high)
            if bad >= 0:
                _raise_bad_value("sample_weight", sample_weight, bad,
                                 "negative, NaN or infinite; weights must be finite and >= 0")
            total = _weight_total(sample_weight, self.is_double)
            if not total > 0:
                raise ValueError("sample_weight sums to zero: at least one weight must be positive")
            if not isfinite(total):
                raise ValueError("sample_weight sums to infinity: the weights are too large "
                                 "(only their ratios matter; scale them down)")

    # -- entry points -------------------------------------------------------

    def predict(self, X):
        """A_L (n, n_out) for X (n, n_in); a new array."""
        X, _, _, _ = self._check(X, None, None, False)
        cdef cnp.ndarray arr = <cnp.ndarray> X
        cdef int n = <int> cnp.PyArray_DIMS(arr)[0]
        cdef cnp.npy_intp dims[2]
        dims[0] = n
        dims[1] = self.n_out
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        cdef void* x = cnp.PyArray_DATA(arr)
        cdef void* o = cnp.PyArray_DATA(<cnp.ndarray> out)
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            self._ensure_capacity(min(n, max(self.capacity, EVAL_CHUNK)))
            with nogil:
                if self.is_double:
                    _predict_chunks(&self.layout, &self.params64[0], <double*> x, n,
                                    &self.acts64[0], <int> self.capacity, <double*> o)
                else:
                    _predict_chunks(&self.layout, &self.params32[0], <float*> x, n,
                                    &self.acts32[0], <int> self.capacity, <float*> o)
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        return out

    def loss(self, X, y, sample_weight=None):
        """Weighted mean loss of the batch (a float); the network is unchanged."""
        X, y, sample_weight, is_labels = self._check(X, y, sample_weight, True)
        cdef int n = <int> cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        cdef double total = _weight_total(sample_weight, self.is_double) if sample_weight is not None else n
        cdef void* x = cnp.PyArray_DATA(<cnp.ndarray> X)
        cdef void* t = NULL
        cdef intp_t* labels = NULL
        cdef void* w = cnp.PyArray_DATA(<cnp.ndarray> sample_weight) if sample_weight is not None else NULL
        if is_labels:
            labels = <intp_t*> cnp.PyArray_DATA(<cnp.ndarray> y)
        else:
            t = cnp.PyArray_DATA(<cnp.ndarray> y)
        cdef double result
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            self._ensure_capacity(min(n, max(self.capacity, EVAL_CHUNK)))
            with nogil:
                if self.is_double:
                    result = _loss_chunks(&self.layout, &self.params64[0], <double*> x, n,
                                          <double*> t, labels,
                                          <double*> w, total, &self.acts64[0], <int> self.capacity)
                else:
                    result = _loss_chunks(&self.layout, &self.params32[0], <float*> x, n,
                                          <float*> t, labels,
                                          <float*> w, total, &self.acts32[0], <int> self.capacity)
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        return result

    def loss_and_grad(self, X, y, sample_weight=None, bint input_grad=False):
        """Loss of the batch; dW, db into ``grads`` (and dX into an internal
        buffer, returned as a view, when input_grad).  Returns (loss, dX or None)."""
        return self._step(X, y, sample_weight, 0.0, False, input_grad)

    def train_step(self, X, y, sample_weight, double lr):
        """One SGD step fused into the backward pass; returns the loss before it.

        Raises FloatingPointError, leaving the parameters untouched, when the
        loss is not finite.
        """
        if not (lr >= 0 and isfinite(lr)):
            raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
        return self._step(X, y, sample_weight, lr, True, False)[0]

    cdef tuple _step(self, X, y, sample_weight, double lr, bint update, bint input_grad):
        X, y, sample_weight, is_labels = self._check(X, y, sample_weight, True)
        cdef int n = <int> cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        cdef double total = _weight_total(sample_weight, self.is_double) if sample_weight is not None else n
        cdef void* x = cnp.PyArray_DATA(<cnp.ndarray> X)
        cdef void* t = NULL
        cdef intp_t* labels = NULL
        cdef void* w = cnp.PyArray_DATA(<cnp.ndarray> sample_weight) if sample_weight is not None else NULL
        if is_labels:
            labels = <intp_t*> cnp.PyArray_DATA(<cnp.ndarray> y)
        else:
            t = cnp.PyArray_DATA(<cnp.ndarray> y)
        cdef double result
        cdef bint refused = False
        dx_view = None
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            self._reserve(n, input_grad)
            with nogil:
                if update:
                    self._scan_bounds()
                if self.is_double:
                    result = _step_kernel(
                        &self.layout, &self.params64[0], <double*> x, n,
                        <double*> t, labels,
                        <double*> w, total, &self.acts64[0], &self.deltas64[0],
                        NULL if update else &self.grads64[0], <double> lr, &self.scratch64[0],
                        &self.dx64[0] if input_grad else NULL, &refused)
                else:
                    result = _step_kernel(
                        &self.layout, &self.params32[0], <float*> x, n,
                        <float*> t, labels,
                        <float*> w, total, &self.acts32[0], &self.deltas32[0],
                        NULL if update else &self.grads32[0], <float> lr, &self.scratch32[0],
                        &self.dx32[0] if input_grad else NULL, &refused)
            if input_grad and isfinite(result):
                dx_view = self._dx_array[:n * self.n_in].reshape(n, self.n_in)
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        if not isfinite(result):
            raise FloatingPointError(
                f"the loss is {result}: the network's outputs overflowed (diverging "
                "weights?); no gradient was computed and the parameters are unchanged")
        if refused:
            raise FloatingPointError(
                f"the SGD update could overflow {'float64' if self.is_double else 'float32'} "
                f"(learning rate {lr:g} too large for gradients this size); "
                "the parameters are unchanged")
        return result, dx_view


    # -- training ---------------------------------------------------------------

    def check_batch(self, X, y, sample_weight=None):
        """(X, y, sample_weight) converted and checked as a training step would;
        used to validate a whole data set once before training on it."""
        X, y, sample_weight, _ = self._check(X, y, sample_weight, True)
        return X, y, sample_weight

    cdef void* _state_pointer(self, state, str name) except? NULL:
        """Data pointer of an optimizer state vector, after checking it."""
        if not _ready(state, self.typenum, 1) or cnp.PyArray_DIMS(<cnp.ndarray> state)[0] != self.n_params:
            raise ValueError(f"optimizer {name} must be a contiguous vector of {self.n_params} "
                             f"values of the network's dtype")
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> state):
            raise ValueError(f"optimizer {name} must be writeable")
        return cnp.PyArray_DATA(<cnp.ndarray> state)

    cdef _state_pointers(self, OptConfig* opt, state1, state2, void** s1, void** s2):
        s1[0] = NULL
        s2[0] = NULL
        if opt.kind == ADAM or (opt.kind == SGD and opt.momentum != 0):
            s1[0] = self._state_pointer(state1, "state")
        if opt.kind == ADAM:
            s2[0] = self._state_pointer(state2, "second state")

    def optimizer_step(self, tuple config, long long step, state1=None, state2=None):
        """Apply one optimizer update from ``grads`` in place; returns the new step count."""
        cdef OptConfig opt = _make_config(config, step)
        cdef void* s1
        cdef void* s2
        if opt.kind == FUSED_SGD:
            opt.kind = SGD
        cdef bint finite
        self._state_pointers(&opt, state1, state2, &s1, &s2)
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            if opt.kind == ADAM:
                opt.update = self._update_buffer()
            with nogil:
                if self.is_double:
                    finite = optimizer_update(&self.layout, &opt, &self.params64[0],
                                              &self.grads64[0], <double*> s1, <double*> s2)
                else:
                    finite = optimizer_update(&self.layout, &opt, &self.params32[0],
                                              &self.grads32[0], <float*> s1, <float*> s2)
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        if not finite:
            raise FloatingPointError(
                f"the update would make parameters or optimizer state NaN or infinite "
                f"(learning rate {opt.lr:g} too large for gradients this size?); "
                "nothing was changed")
        return opt.step

    cdef void* _update_buffer(self) except NULL:
        """Adam's scratch of n_params values, allocated at its first update
        (lock held): an SGD-only network never holds it."""
        if self._update_array is None:
            self._update_array = np.empty(self.n_params, dtype=self.params.dtype)
        return cnp.PyArray_DATA(<cnp.ndarray> self._update_array)

    cdef _ensure_gather(self, int batch_size):
        if batch_size <= self.gather_capacity:
            return
        dtype = np.float64 if self.is_double else np.float32
        self._gather_x = np.empty(<Py_ssize_t> batch_size * self.n_in, dtype=dtype)
        self._gather_y = np.empty(<Py_ssize_t> batch_size * self.n_out, dtype=dtype)
        self._gather_labels = np.empty(batch_size, dtype=np.intp)
        self._gather_w = np.empty(batch_size, dtype=dtype)
        self.gather_capacity = batch_size

    def train_epoch(self, X, y, sample_weight, order, int batch_size, tuple config,
                    long long step, state1, state2, double[::1] progress not None):
        """One epoch of minibatch training, entirely in compiled code.

        X, y, sample_weight must come from :meth:`check_batch`.  order is a
        permutation of the rows (intp) or None for the stored order.  After
        the call, or when it raises, ``progress`` (float64, 4 values: optimizer
        step count, sum of batch loss x batch weight, sum of batch weights,
        rows trained) says how far it got; it belongs to the caller, so
        threads sharing a network each see their own.
        Returns True, or False when a batch's loss was not finite (training
        stopped before that batch changed anything).  Signals (Ctrl-C) are
        checked between groups of batches.
        """
        cdef OptConfig opt = _make_config(config, step)
        cdef void* s1
        cdef void* s2
        cdef Py_ssize_t n, start = 0, max_batches, macs = 0
        cdef int i, status = 0
        cdef bint labels
        cdef double loss_sum = 0, weight_sum = 0
        cdef void* gx
        cdef void* gy
        cdef void* gl
        cdef void* gw
        if not self._fast_ok(X, y, sample_weight, True):
            raise ValueError("train_epoch needs arrays prepared by check_batch")
        n = cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        labels = cnp.PyArray_TYPE(<cnp.ndarray> y) == cnp.NPY_INTP
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if order is not None and (not _ready(order, cnp.NPY_INTP, 1)
                                  or cnp.PyArray_DIMS(<cnp.ndarray> order)[0] != n):
            raise ValueError(f"order must be a permutation of {n} intp row indices")
        self._state_pointers(&opt, state1, state2, &s1, &s2)
        cdef void* x = cnp.PyArray_DATA(<cnp.ndarray> X)
        cdef void* t = NULL if labels else cnp.PyArray_DATA(<cnp.ndarray> y)
        cdef intp_t* lab = <intp_t*> cnp.PyArray_DATA(<cnp.ndarray> y) if labels else NULL
        cdef void* w = cnp.PyArray_DATA(<cnp.ndarray> sample_weight) if sample_weight is not None else NULL
        cdef intp_t* perm = <intp_t*> cnp.PyArray_DATA(<cnp.ndarray> order) if order is not None else NULL
        # Return to Python (to check for Ctrl-C) about every 2e8 multiply-adds.
        for i in range(self.layout.n_layers):
            macs += <Py_ssize_t> self.layout.sizes[i] * self.layout.sizes[i + 1]
        max_batches = max(1, min(65536, <Py_ssize_t> (2e8 / (3.0 * macs * batch_size))))
        batch_size = <int> min(<Py_ssize_t> batch_size, n)
        if progress.shape[0] != 4:
            raise ValueError("progress must hold 4 values")
        progress[0] = step
        progress[1] = 0
        progress[2] = 0
        progress[3] = 0
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            self._ensure_capacity(batch_size)
            self._ensure_gather(batch_size)
            if opt.kind == ADAM:
                opt.update = self._update_buffer()
            gx = cnp.PyArray_DATA(<cnp.ndarray> self._gather_x)
            gy = cnp.PyArray_DATA(<cnp.ndarray> self._gather_y)
            gl = cnp.PyArray_DATA(<cnp.ndarray> self._gather_labels)
            gw = cnp.PyArray_DATA(<cnp.ndarray> self._gather_w)
            with nogil:
                self._scan_bounds()
            while start < n and status == 0:
                with nogil:
                    if self.is_double:
                        status = epoch_batches(
                            &self.layout, &opt, &self.params64[0], &self.grads64[0],
                            <double*> s1, <double*> s2, <double*> x, <double*> t, lab,
                            <double*> w, perm, n, batch_size, &start, max_batches,
                            <double*> gx, <double*> gy, <intp_t*> gl, <double*> gw,
                            &self.acts64[0], &self.deltas64[0], &self.scratch64[0],
                            &loss_sum, &weight_sum)
                    else:
                        status = epoch_batches(
                            &self.layout, &opt, &self.params32[0], &self.grads32[0],
                            <float*> s1, <float*> s2, <float*> x, <float*> t, lab,
                            <float*> w, perm, n, batch_size, &start, max_batches,
                            <float*> gx, <float*> gy, <intp_t*> gl, <float*> gw,
                            &self.acts32[0], &self.deltas32[0], &self.scratch32[0],
                            &loss_sum, &weight_sum)
                progress[0] = opt.step
                progress[1] = loss_sum
                progress[2] = weight_sum
                progress[3] = start
                PyErr_CheckSignals()
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        return status == 0

    def backward_output(self, X, grad_output, bint input_grad=False):
        """Backpropagate a user-supplied dL/dA_L (n, n_out) through the network
        at X: dW, db into ``grads``; returns dX (a view) or None."""
        X, _, _, _ = self._check(X, None, None, False)
        cdef int n = <int> cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        cdef Py_ssize_t bad
        if not _ready(grad_output, self.typenum, 2) or \
                cnp.PyArray_DIMS(<cnp.ndarray> grad_output)[0] != n or \
                cnp.PyArray_DIMS(<cnp.ndarray> grad_output)[1] != self.n_out:
            raise ValueError(f"grad_output must be a C-contiguous ({n}, {self.n_out}) array "
                             "of the network's dtype")
        cdef void* x = cnp.PyArray_DATA(<cnp.ndarray> X)
        cdef void* g = cnp.PyArray_DATA(<cnp.ndarray> grad_output)
        cdef Py_ssize_t count = <Py_ssize_t> n * self.n_out
        with nogil:
            if self.is_double:
                bad = first_nonfinite(<double*> g, count)
            else:
                bad = first_nonfinite(<float*> g, count)
        if bad >= 0:
            _raise_bad_value("grad_output", grad_output, bad, "NaN or infinity; gradients must be finite")
        dx_view = None
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        try:
            self._reserve(n, input_grad)
            with nogil:
                if self.is_double:
                    _backward_output_kernel(&self.layout, &self.params64[0], <double*> x, n,
                                            <double*> g, &self.acts64[0], &self.deltas64[0],
                                            &self.grads64[0], &self.scratch64[0],
                                            &self.dx64[0] if input_grad else NULL)
                else:
                    _backward_output_kernel(&self.layout, &self.params32[0], <float*> x, n,
                                            <float*> g, &self.acts32[0], &self.deltas32[0],
                                            &self.grads32[0], &self.scratch32[0],
                                            &self.dx32[0] if input_grad else NULL)
            if input_grad:
                dx_view = self._dx_array[:n * self.n_in].reshape(n, self.n_in)
        finally:
            PyThread_release_lock(self.lock)
        check_debug_violations()
        return dx_view


cdef double _weight_total(sample_weight, bint is_double):
    """sum(sample_weight) in double, by a compiled loop (no temporary)."""
    cdef cnp.ndarray arr = <cnp.ndarray> sample_weight
    cdef Py_ssize_t i, count = cnp.PyArray_SIZE(arr)
    cdef double total = 0
    cdef double* d = <double*> cnp.PyArray_DATA(arr)
    cdef float* f = <float*> cnp.PyArray_DATA(arr)
    with nogil:
        if is_double:
            for i in range(count):
                total += d[i]
        else:
            for i in range(count):
                total += f[i]
    return total


cdef _raise_bad_value(str name, array, Py_ssize_t flat_index, str what):
    index = np.unravel_index(flat_index, array.shape)
    where = index[0] if len(index) == 1 else tuple(int(i) for i in index)
    raise ValueError(f"{name}[{where}] = {array.flat[flat_index]!r} is {what}")


cdef void _predict_chunks(const Layout* L, const floating* params, const floating* X,
                          int n, floating* acts, int chunk, floating* out) noexcept nogil:
    """out := MLP(X) in chunks of at most chunk rows."""
    cdef int rows
    cdef int n_in = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef floating* Z = acts + L.a_off[L.n_layers - 1]
    cdef int start = 0
    while start < n:
        rows = min(chunk, n - start)
        forward(L, params, X + <Py_ssize_t> start * n_in, rows, acts)
        apply_output(L.act[L.n_layers - 1], Z, rows, n_out)
        memcpy(out + <Py_ssize_t> start * n_out, Z, <Py_ssize_t> rows * n_out * sizeof(floating))
        start += rows


cdef double _loss_chunks(const Layout* L, const floating* params, const floating* X, int n,
                         const floating* Y, const intp_t* labels, const floating* sw,
                         double weight_total, floating* acts, int chunk) noexcept nogil:
    """Weighted mean loss over X in chunks of at most chunk rows."""
    cdef int rows
    cdef int n_in = L.sizes[0]
    cdef double total = 0
    cdef floating* Z = acts + L.a_off[L.n_layers - 1]
    cdef int start = 0
    while start < n:
        rows = min(chunk, n - start)
        forward(L, params, X + <Py_ssize_t> start * n_in, rows, acts)
        total += output_and_loss(L, Z, rows, start, Y, labels, sw, weight_total, NULL)
        start += rows
    return total


cdef double _step_kernel(Layout* L, floating* params, const floating* X, int n,
                         const floating* Y, const intp_t* labels, const floating* sw,
                         double weight_total, floating* acts, floating* deltas,
                         floating* grads, floating lr, floating* scratch,
                         floating* dX, bint* refused) noexcept nogil:
    """Forward, loss and backward of one batch; the loss is returned.

    grads NULL means the fused SGD update.  Nothing is backpropagated when
    the loss is not finite, and *refused is set when the update could
    overflow (see backward): either way the parameters are as they were.
    """
    cdef int last = L.n_layers - 1
    refused[0] = False
    forward(L, params, X, n, acts)
    cdef double loss = output_and_loss(L, acts + L.a_off[last], n, 0, Y, labels, sw,
                                       weight_total, deltas + L.a_off[last])
    if isfinite(loss):
        refused[0] = backward(L, params, X, n, acts, deltas, grads, lr, scratch, dX)
    return loss


cdef int epoch_batches(Layout* L, OptConfig* opt, floating* params, floating* grads,
                       floating* state1, floating* state2,
                       const floating* X, const floating* Y, const intp_t* labels,
                       const floating* sw, const intp_t* order, Py_ssize_t n,
                       int batch_size, Py_ssize_t* start, Py_ssize_t max_batches,
                       floating* Xb, floating* Yb, intp_t* Lb, floating* swb,
                       floating* acts, floating* deltas, floating* scratch,
                       double* loss_sum, double* weight_sum) noexcept nogil:
    """Train on the minibatches from row start[0] of the epoch's order, for at
    most max_batches batches; start[0] advances past each batch trained.

    Rows are gathered through order (a permutation) into the batch buffers,
    or read in place when order is NULL.  A batch whose weights sum to zero
    is skipped.  Returns 1, with start[0] at the failing batch and nothing
    changed by it, when a batch's loss is not finite; else 0.
    """
    cdef int n_in = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef int r, rows
    cdef Py_ssize_t done = 0, src
    cdef const floating* xb
    cdef const floating* yb
    cdef const intp_t* lb
    cdef const floating* wb
    cdef double total, loss
    cdef bint refused
    cdef Py_ssize_t row_bytes = n_in * sizeof(floating) + (
        n_out * sizeof(floating) if Y != NULL else sizeof(intp_t))
    cdef bint prefetch_rows = n * row_bytes > PREFETCH_MIN_BYTES
    while start[0] < n and done < max_batches:
        rows = <int> min(<Py_ssize_t> batch_size, n - start[0])
        if order != NULL:
            debug_range(0, rows, L.capacity)
            if prefetch_rows and start[0] + rows < n:
                # Ask for the next batch's rows now: shuffled rows are random
                # reads, a cache miss each once the data set outgrows L2, and
                # the prefetch overlaps them with this step.
                prefetch_rows_of(<const char*> X, n_in * sizeof(floating),
                                 <const char*> Y if Y != NULL else <const char*> labels,
                                 n_out * sizeof(floating) if Y != NULL else sizeof(intp_t),
                                 order + start[0] + rows, min(<Py_ssize_t> rows, n - start[0] - rows))
            for r in range(rows):
                src = order[start[0] + r]
                debug_range(src, 1, n)
                copy_values(Xb + <Py_ssize_t> r * n_in, X + src * n_in, n_in)
                if Y != NULL:
                    copy_values(Yb + <Py_ssize_t> r * n_out, Y + src * n_out, n_out)
                else:
                    Lb[r] = labels[src]
                if sw != NULL:
                    swb[r] = sw[src]
            xb = Xb
            yb = Yb if Y != NULL else NULL
            lb = Lb if Y == NULL else NULL
            wb = swb if sw != NULL else NULL
        else:
            xb = X + start[0] * n_in
            yb = Y + start[0] * n_out if Y != NULL else NULL
            lb = labels + start[0] if Y == NULL else NULL
            wb = sw + start[0] if sw != NULL else NULL
        if wb != NULL:
            total = 0
            for r in range(rows):
                total += wb[r]
        else:
            total = rows
        if total > 0:
            if opt.kind == FUSED_SGD:
                loss = _step_kernel(L, params, xb, rows, yb, lb, wb, total, acts, deltas,
                                    NULL, <floating> opt.lr, scratch, NULL, &refused)
            else:
                loss = _step_kernel(L, params, xb, rows, yb, lb, wb, total, acts, deltas,
                                    grads, 0, scratch, NULL, &refused)
            if not isfinite(loss) or refused:
                return 1
            if opt.kind != FUSED_SGD:
                if not optimizer_update(L, opt, params, grads, state1, state2):
                    return 1
            loss_sum[0] += loss * total
            weight_sum[0] += total
        start[0] += rows
        done += 1
    return 0


cdef OptConfig _make_config(tuple config, long long step) except *:
    """OptConfig from (kind, lr, momentum, dampening, nesterov, weight_decay,
    beta1, beta2, eps, decoupled), as built by pybackprop.optim."""
    cdef OptConfig opt
    if len(config) != 10:
        raise ValueError("optimizer configuration must have 10 entries")
    opt.kind = int(config[0])
    opt.lr = float(config[1])
    opt.momentum = float(config[2])
    opt.dampening = float(config[3])
    opt.nesterov = bool(config[4])
    opt.weight_decay = float(config[5])
    opt.beta1 = float(config[6])
    opt.beta2 = float(config[7])
    opt.eps = float(config[8])
    opt.decoupled = bool(config[9])
    opt.step = step
    opt.update = NULL
    if opt.kind not in (FUSED_SGD, SGD, ADAM):
        raise ValueError(f"unknown optimizer kind {opt.kind}")
    if not (isfinite(opt.lr) and opt.lr >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {opt.lr!r}")
    if step < 0:
        raise ValueError("optimizer step count must be >= 0")
    return opt


cdef void _backward_output_kernel(Layout* L, floating* params, const floating* X, int n,
                                  const floating* dA_out, floating* acts, floating* deltas,
                                  floating* grads, floating* scratch, floating* dX) noexcept nogil:
    """Forward pass, then backward from dZ_L = dA_L * out'(Z_L)."""
    cdef int last = L.n_layers - 1
    cdef int n_out = L.sizes[L.n_layers]
    forward(L, params, X, n, acts)
    apply_output(L.act[last], acts + L.a_off[last], n, n_out)
    output_backward(L.act[last], acts + L.a_off[last], dA_out, n, n_out, deltas + L.a_off[last])
    backward(L, params, X, n, acts, deltas, grads, 0, scratch, dX)


def _debug_selftest():
    """Record one out-of-bounds block and report it: raises AssertionError in
    a debug build, does nothing in a release build (the checks compile out).
    Used by the tests to show the debug checks are live."""
    with nogil:
        debug_range(5, 10, 12)
    check_debug_violations()


def _set_blas_threads_hook(size_t address):
    """Install OpenBLAS's openblas_set_num_threads_local (its address, from
    pybackprop/_blasinfo.py; 0 removes it).  With it, products below
    BLAS_SINGLE_THREAD_MACS run on one BLAS thread of the calling thread."""
    set_blas_threads_hook(<void*> address)


def _blas_threads_hook_installed():
    return blas_set_threads_local != NULL
