# Activations, their derivatives taken from the saved activation A (so the
# backward pass never needs Z), and the numerically stable scalar pieces the
# losses are built from.

from cython cimport floating
from libc.math cimport exp, log, log1p, tanh, fabs, isfinite


# Activation codes shared by the kernels and pybackprop/_validation.py.
cdef enum Activation:
    IDENTITY = 0
    SIGMOID = 1
    RELU = 2
    TANH = 3
    SOFTMAX = 4

# Loss codes.
cdef enum Loss:
    SQUARED_ERROR = 0
    BINARY_CROSS_ENTROPY = 1
    CROSS_ENTROPY = 2


cdef inline floating sigmoid(floating z) noexcept nogil:
    """1 / (1 + exp(-z)), never overflowing: exp only sees -|z|."""
    cdef floating e
    if z >= 0:
        return 1 / (1 + exp(-z))
    e = exp(z)
    return e / (1 + e)


cdef inline double softplus(double t) noexcept nogil:
    """log(1 + exp(t)) = max(t, 0) + log1p(exp(-|t|)), finite for finite t."""
    if t > 0:
        return t + log1p(exp(-t))
    return log1p(exp(t))


cdef inline floating activate(int code, floating z) noexcept nogil:
    """A := act(Z) for the elementwise activations."""
    if code == RELU:
        return z if z > 0 else 0
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return tanh(z)
    return z


cdef inline floating derivative(int code, floating a) noexcept nogil:
    """act'(Z) written in terms of A = act(Z)."""
    if code == RELU:
        return 1 if a > 0 else 0
    if code == SIGMOID:
        return a * (1 - a)
    if code == TANH:
        return 1 - a * a
    return 1


cdef inline void activate_rows(int code, floating* z, Py_ssize_t count) noexcept nogil:
    """A := act(Z) in place over count contiguous values."""
    cdef Py_ssize_t i
    if code == RELU:
        for i in range(count):
            if not (z[i] > 0):
                z[i] = 0
    elif code == SIGMOID:
        for i in range(count):
            z[i] = sigmoid(z[i])
    elif code == TANH:
        for i in range(count):
            z[i] = tanh(z[i])


cdef inline void multiply_derivative(int code, floating* da, const floating* a,
                                     Py_ssize_t count) noexcept nogil:
    """dZ := dA * act'(Z), in place over dA, from the saved A."""
    cdef Py_ssize_t i
    if code == RELU:
        for i in range(count):
            if not (a[i] > 0):
                da[i] = 0
    elif code == SIGMOID:
        for i in range(count):
            da[i] = da[i] * (a[i] * (1 - a[i]))
    elif code == TANH:
        for i in range(count):
            da[i] = da[i] * (1 - a[i] * a[i])
