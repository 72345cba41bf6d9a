# The backward pass, in three separate steps the callers combine:
#   propagate        dZ_L (in the deltas buffer) back through the layers:
#                    dA_{i-1} := dZ_i W_i, dZ_{i-1} := dA_{i-1} * act'(A_{i-1}),
#                    and dX := dZ_0 W_0 when asked;
#   store_gradients  dW_i := dZ_i^T A_{i-1}, db_i := sum_rows dZ_i into grads;
#   apply_sgd        W_i -= lr dW_i, b_i -= lr db_i in place, done by the
#                    product itself (alpha = -lr, beta = 1) so plain SGD never
#                    stores a gradient; guarded against overflow.
# One sample through a small layer takes plain loops (call overhead dominates
# there); they round exactly as the batched path does.

from cython cimport floating
from libc.float cimport DBL_MAX, FLT_MAX
from libc.string cimport memcpy

from _activations cimport SIGMOID, SOFTMAX, multiply_derivative
from _blas cimport gemm, SMALL_GEMM_MACS
from _layout cimport Layout, debug_layer_blocks, copy_values
from _scans cimport max_abs


cdef inline void propagate_one_sample(const floating* W, const floating* dz, int n_in,
                                      int n_out, floating* da_prev) noexcept nogil:
    """One sample, one layer: da_prev := W^T dz."""
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


cdef inline void store_one_sample_gradients(const floating* dz, const floating* a_prev,
                                            int n_in, int n_out, floating* dW,
                                            floating* db) noexcept nogil:
    """One sample, one layer: dW := dz a_prev^T and db := dz."""
    cdef int j, p
    cdef floating g
    cdef floating* dw_row
    for j in range(n_out):
        g = dz[j]
        dw_row = dW + <Py_ssize_t> j * n_in
        for p in range(n_in):
            dw_row[p] = g * a_prev[p]
        db[j] = dz[j]


cdef inline void apply_one_sample_sgd(floating* W, floating* b, const floating* dz,
                                      const floating* a_prev, int n_in, int n_out,
                                      floating lr) noexcept nogil:
    """One sample, one layer: W -= lr dz a_prev^T and b -= lr dz."""
    cdef int j, p
    cdef floating g
    cdef floating* w_row
    for j in range(n_out):
        g = -lr * dz[j]
        w_row = W + <Py_ssize_t> j * n_in
        for p in range(n_in):
            w_row[p] = w_row[p] + g * a_prev[p]
        b[j] -= lr * dz[j]


cdef inline void column_sums(const floating* M, int n, int width, floating* out) noexcept nogil:
    """out := sum over the n rows of M (n, width)."""
    cdef int r, j
    cdef const floating* row
    copy_values(out, M, width)
    for r in range(1, n):
        row = M + <Py_ssize_t> r * width
        for j in range(width):
            out[j] += row[j]


cdef inline void propagate(const Layout* L, const floating* params, int n,
                           const floating* acts, floating* deltas, floating* dX) noexcept nogil:
    """dZ_i for every layer below the output, from dZ_L in the deltas buffer;
    and dX := dZ_0 W_0 when dX is not NULL (the input gradient is wanted)."""
    cdef int i, n_in, n_out
    cdef floating* dA
    cdef const floating* W
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
        W = params + L.w_off[i]
        if n == 1 and n_in * n_out <= SMALL_GEMM_MACS:
            propagate_one_sample(W, deltas + L.a_off[i], n_in, n_out, dA)
        else:
            gemm(False, False, n, n_in, n_out, <floating> 1, deltas + L.a_off[i], n_out,
                 W, n_in, <floating> 0, dA, n_in)
        if i > 0:
            multiply_derivative(L.act[i - 1], dA, acts + L.a_off[i - 1], <Py_ssize_t> n * n_in)


cdef inline void store_gradients(const Layout* L, const floating* X, int n,
                                 const floating* acts, const floating* deltas,
                                 floating* grads) noexcept nogil:
    """dW_i := dZ_i^T A_{i-1} and db_i := sum_rows dZ_i into grads (A_{-1} = X)."""
    cdef int i, n_in, n_out
    cdef const floating* dZ
    cdef const floating* A_prev
    for i in range(L.n_layers):
        n_in = L.sizes[i]
        n_out = L.sizes[i + 1]
        dZ = deltas + L.a_off[i]
        A_prev = X if i == 0 else acts + L.a_off[i - 1]
        if n == 1 and n_in * n_out <= SMALL_GEMM_MACS:
            store_one_sample_gradients(dZ, A_prev, n_in, n_out,
                                       grads + L.w_off[i], grads + L.b_off[i])
        else:
            gemm(True, False, n_out, n_in, n, <floating> 1, dZ, n_out,
                 A_prev, n_in, <floating> 0, grads + L.w_off[i], n_in)
            column_sums(dZ, n, n_out, grads + L.b_off[i])


cdef inline void scan_parameter_bounds(Layout* L, const floating* params) noexcept nogil:
    """L.w_bound[i] := max |W_i|, |b_i|: where the update guard starts."""
    cdef int i
    for i in range(L.n_layers):
        L.w_bound[i] = max_abs(params + L.w_off[i],
                               L.b_off[i] + L.sizes[i + 1] - L.w_off[i])


cdef inline double update_bound(const floating* dZ, const floating* A_prev, int n, int n_in,
                                int n_out, double lr) noexcept nogil:
    """A bound on every |lr dW_jk| = lr |sum_r dZ_rj A_rk| and |lr db_j|:
    lr * n * max|dZ| * max(max|A|, 1).  Two vectorised scans of contiguous
    blocks; NaN or inf when dZ or A holds a non-finite value."""
    cdef double dz_max = max_abs(dZ, <Py_ssize_t> n * n_out)
    cdef double a_max = max_abs(A_prev, <Py_ssize_t> n * n_in)
    return lr * n * dz_max * (a_max if not (a_max <= 1) else 1)


cdef inline bint apply_sgd(Layout* L, floating* params, const floating* X, int n,
                           const floating* acts, const floating* deltas, floating lr,
                           floating* bias_step) noexcept nogil:
    """W_i -= lr dZ_i^T A_{i-1} and b_i -= lr sum_rows dZ_i for every layer,
    unless that could overflow: then nothing changes and True (refused) is
    returned.

    The guard: before any parameter changes, each layer's update is bounded
    (update_bound) and added to the bound of its current magnitudes
    (L.w_bound, from scan_parameter_bounds); if any could pass half the
    dtype's largest value the update is refused.  Otherwise the bounds grow
    by the updates, so a run of steps needs no new scan.  bias_step holds
    max_width values of scratch.
    """
    cdef int i, j, n_in, n_out
    cdef const floating* dZ
    cdef const floating* A_prev
    cdef floating* b
    cdef double limit = 0.5 * (DBL_MAX if floating is double else FLT_MAX)
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
        b = params + L.b_off[i]
        A_prev = X if i == 0 else acts + L.a_off[i - 1]
        if n == 1 and n_in * n_out <= SMALL_GEMM_MACS:
            apply_one_sample_sgd(params + L.w_off[i], b, dZ, A_prev, n_in, n_out, lr)
        else:
            gemm(True, False, n_out, n_in, n, -lr, dZ, n_out,
                 A_prev, n_in, <floating> 1, params + L.w_off[i], n_in)
            column_sums(dZ, n, n_out, bias_step)
            for j in range(n_out):
                b[j] -= lr * bias_step[j]
        L.w_bound[i] += L.pending[i]
    return False


cdef inline void output_backward(int code, const floating* A, const floating* dA, int n,
                                 int n_out, floating* dZ) noexcept nogil:
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
