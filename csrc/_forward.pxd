# The forward pass: Z_i := A_{i-1} W_i^T + b_i and A_i := act_i(Z_i), layer
# by layer, into the acts buffer (see the Layout in csrc/_layout.pxd).  The
# output activation is applied separately: training fuses it with the loss
# (csrc/_output_loss.pxd), prediction applies it with apply_output.

from cython cimport floating
from libc.math cimport exp

from _activations cimport SOFTMAX, activate_rows
from _blas cimport gemm, SMALL_GEMM_MACS
from _layout cimport Layout, debug_layer_blocks, copy_values

# Partial sums per dot product in affine_one_sample.
cdef enum:
    DOT_LANES = 16


cdef inline void affine_one_sample(const floating* W, const floating* b, const floating* a,
                                   int n_in, int n_out, floating* z) noexcept nogil:
    """z := W a + b for one sample, W (n_out, n_in).  Per-sample training of
    small networks spends its time in call and loop overhead, so one sample
    gets these plain loops instead of BLAS.

    Each dot product runs in DOT_LANES partial sums, added pairwise in a
    fixed order at the end: a loop over independent lanes vectorises, where
    one running sum is a chain of dependent additions the compiler may not
    reorder (a 64-input layer: 64 additions back to back per output).
    Inputs past the last full group of lanes, and layers narrower than
    DOT_LANES (the 2-2-1 network), are summed one by one."""
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


cdef inline void forward(const Layout* L, const floating* params, const floating* X,
                         int n, floating* acts) noexcept nogil:
    """Z_i := A_{i-1} W_i^T + b_i and A_i := act_i(Z_i) for the hidden layers.

    The output block is left holding Z_L: its activation is fused with the
    loss (output_loss) or applied by apply_output.
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


cdef inline void apply_output(int code, floating* Z, int n, int n_out) noexcept nogil:
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
