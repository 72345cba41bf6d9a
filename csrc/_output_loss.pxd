# The output activation fused with the loss, one function per (output,
# loss) pair the core supports (VALID_PAIRS in csrc/_core.pyx): each turns
# Z_L into A_L in place, returns sum_r c_r l_r over its rows and writes
# dZ_L := c_r dl_r/dZ_L, the exact derivative of that loss.
#
# c_r = sw[r] / weight_total (1 / weight_total without weights, sw NULL),
# so a batch's loss is the weighted mean of its per-sample losses.  Fusing
# the output with the loss lets every log term be taken from Z, never from
# a saturated A, and gives each pair's simple gradient (A - Y for the
# matched pairs) instead of a Jacobian product.

from cython cimport floating
from libc.math cimport exp, log

from _activations cimport SIGMOID, BINARY_CROSS_ENTROPY, CROSS_ENTROPY
from _activations cimport sigmoid, softplus
from _layout cimport Layout, intp_t, debug_range


cdef inline double row_coefficient(const floating* sw, int r, double weight_total) noexcept nogil:
    """c_r: row r's share of the batch loss."""
    return (sw[r] if sw != NULL else 1.0) / weight_total


cdef inline double identity_squared_error(floating* Z, int n, int n_out, const floating* Y,
                                          const floating* sw, double weight_total,
                                          floating* dZ) noexcept nogil:
    """l = 0.5 |A - y|^2 with A = Z; dZ = c (A - y)."""
    cdef int r, k
    cdef const floating* z
    cdef const floating* y
    cdef floating* dz
    cdef floating diff, c
    cdef double coef, row_loss, total = 0
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        y = Y + <Py_ssize_t> r * n_out
        dz = dZ + <Py_ssize_t> r * n_out
        coef = row_coefficient(sw, r, weight_total)
        c = <floating> coef
        row_loss = 0
        for k in range(n_out):
            diff = z[k] - y[k]
            row_loss += 0.5 * (<double> diff) * diff
            dz[k] = c * diff
        total += coef * row_loss
    return total


cdef inline double sigmoid_squared_error(floating* Z, int n, int n_out, const floating* Y,
                                         const floating* sw, double weight_total,
                                         floating* dZ) noexcept nogil:
    """l = 0.5 |A - y|^2 with A = sigmoid(Z); dZ = c (A - y) A (1 - A)."""
    cdef int r, k
    cdef floating* z
    cdef const floating* y
    cdef floating* dz
    cdef floating a, diff, c
    cdef double coef, row_loss, total = 0
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        y = Y + <Py_ssize_t> r * n_out
        dz = dZ + <Py_ssize_t> r * n_out
        coef = row_coefficient(sw, r, weight_total)
        c = <floating> coef
        row_loss = 0
        for k in range(n_out):
            a = sigmoid(z[k])
            z[k] = a
            diff = a - y[k]
            row_loss += 0.5 * (<double> diff) * diff
            dz[k] = c * diff * (a * (1 - a))
        total += coef * row_loss
    return total


cdef inline double sigmoid_binary_cross_entropy(floating* Z, int n, int n_out,
                                                const floating* Y, const floating* sw,
                                                double weight_total,
                                                floating* dZ) noexcept nogil:
    """l = sum_k y softplus(-z) + (1 - y) softplus(z) (the log-loss of
    A = sigmoid(Z), from Z); dZ = c (A - y)."""
    cdef int r, k
    cdef floating* z
    cdef floating* dz
    cdef const floating* y
    cdef floating a, c
    cdef double coef, row_loss, total = 0
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        y = Y + <Py_ssize_t> r * n_out
        dz = dZ + <Py_ssize_t> r * n_out
        coef = row_coefficient(sw, r, weight_total)
        c = <floating> coef
        row_loss = 0
        for k in range(n_out):
            row_loss += y[k] * softplus(-z[k]) + (1 - y[k]) * softplus(z[k])
            a = sigmoid(z[k])
            z[k] = a
            dz[k] = c * (a - y[k])
        total += coef * row_loss
    return total


cdef inline double log_sum_exp(const floating* z, int n_out) noexcept nogil:
    """log sum_k exp(z_k), shifted by the largest z_k so no exp overflows."""
    cdef int k
    cdef floating zmax = z[0]
    cdef double expsum = 0
    for k in range(1, n_out):
        if z[k] > zmax:
            zmax = z[k]
    for k in range(n_out):
        expsum += exp(z[k] - zmax)
    return zmax + log(expsum)


cdef inline double softmax_cross_entropy(floating* Z, int n, int n_out, const floating* Y,
                                         const floating* sw, double weight_total,
                                         floating* dZ) noexcept nogil:
    """Targets as probability rows y: l = sum_k y_k (lse - z_k) with
    A = softmax(Z); dZ = c (A sum_k y_k - y)."""
    cdef int r, k
    cdef floating* z
    cdef floating* dz
    cdef const floating* y
    cdef floating c
    cdef double coef, row_loss, total = 0, lse, ysum
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        y = Y + <Py_ssize_t> r * n_out
        dz = dZ + <Py_ssize_t> r * n_out
        coef = row_coefficient(sw, r, weight_total)
        c = <floating> coef
        lse = log_sum_exp(z, n_out)
        row_loss = 0
        ysum = 0
        for k in range(n_out):
            if y[k] != 0:
                row_loss += y[k] * (lse - z[k])
            ysum += y[k]
        for k in range(n_out):
            z[k] = <floating> exp(z[k] - lse)
            dz[k] = c * (z[k] * <floating> ysum - y[k])
        total += coef * row_loss
    return total


cdef inline double softmax_cross_entropy_labels(floating* Z, int n, int n_out,
                                                const intp_t* labels, const floating* sw,
                                                double weight_total,
                                                floating* dZ) noexcept nogil:
    """Targets as class labels: l = lse - z_label with A = softmax(Z);
    dZ = c (A - onehot(label))."""
    cdef int r, k, label
    cdef floating* z
    cdef floating* dz
    cdef floating c
    cdef double coef, total = 0, lse
    for r in range(n):
        z = Z + <Py_ssize_t> r * n_out
        dz = dZ + <Py_ssize_t> r * n_out
        coef = row_coefficient(sw, r, weight_total)
        c = <floating> coef
        lse = log_sum_exp(z, n_out)
        label = <int> labels[r]
        debug_range(label, 1, n_out)
        total += coef * (lse - z[label])
        for k in range(n_out):
            z[k] = <floating> exp(z[k] - lse)
            dz[k] = c * (z[k] - (1 if k == label else 0))
    return total


cdef inline double output_loss(const Layout* L, floating* Z, int n, const floating* Y,
                               const intp_t* labels, const floating* sw,
                               double weight_total, floating* dZ) noexcept nogil:
    """The network's (output, loss) pair on n rows of Z_L: A_L in place,
    dZ_L into dZ, the rows' share of the loss returned.  Targets are Y
    (n, n_out) or, for cross-entropy, class labels (labels not NULL)."""
    cdef int n_out = L.sizes[L.n_layers]
    if L.loss == CROSS_ENTROPY:
        if labels != NULL:
            return softmax_cross_entropy_labels(Z, n, n_out, labels, sw, weight_total, dZ)
        return softmax_cross_entropy(Z, n, n_out, Y, sw, weight_total, dZ)
    if L.loss == BINARY_CROSS_ENTROPY:
        return sigmoid_binary_cross_entropy(Z, n, n_out, Y, sw, weight_total, dZ)
    if L.act[L.n_layers - 1] == SIGMOID:
        return sigmoid_squared_error(Z, n, n_out, Y, sw, weight_total, dZ)
    return identity_squared_error(Z, n, n_out, Y, sw, weight_total, dZ)
