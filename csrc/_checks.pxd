# The input checks of the Network entry points: whether an array is already
# in the exact form the kernels read (else pybackprop/_validation.py's
# coercion converts it or raises), and the value checks (NaN/inf, labels out
# of range, targets outside [0, 1], bad sample weights) run as compiled scans
# over the arrays, so no batch-sized temporary is built.  Each raises a
# ValueError naming the first bad value before any kernel runs.

cimport numpy as cnp
from cython cimport floating
from libc.math cimport isfinite, INFINITY

from _activations cimport SQUARED_ERROR
from _layout cimport intp_t
from _scans cimport first_nonfinite, first_outside, first_bad_label, sum_in_double


cdef inline bint ready(object a, int typenum, int ndim) noexcept:
    """True when a is exactly what the kernels read: an ndarray of this
    type number and rank, native byte order, aligned and C-contiguous."""
    if not cnp.PyArray_CheckExact(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray> a
    return (cnp.PyArray_TYPE(arr) == typenum and cnp.PyArray_NDIM(arr) == ndim
            and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline void* data_pointer(array) noexcept:
    """The data pointer of an ndarray, or NULL for None."""
    return cnp.PyArray_DATA(<cnp.ndarray> array) if array is not None else NULL


cdef inline raise_bad_value(str name, array, Py_ssize_t flat_index, str what):
    """ValueError naming a bad value by its index in array (flat_index in C order)."""
    index = []
    remaining = flat_index
    for size in reversed(array.shape):
        index.insert(0, remaining % size)
        remaining //= size
    where = index[0] if len(index) == 1 else tuple(index)
    raise ValueError(f"{name}[{where}] = {array.flat[flat_index]!r} is {what}")


cdef inline check_values(X, y, sample_weight, bint labels, int loss, intp_t n_out,
                         const floating* dtype):
    """NaN/inf in X, y; labels out of range; y outside [0, 1] for the
    cross-entropies; negative, non-finite or all-zero weights.  dtype only
    selects the specialisation (NULL)."""
    cdef cnp.ndarray arr = <cnp.ndarray> X
    cdef Py_ssize_t count = cnp.PyArray_SIZE(arr)
    cdef Py_ssize_t bad
    cdef const floating* values = <const floating*> cnp.PyArray_DATA(arr)
    cdef double low = 0, high = 1, total
    with nogil:
        bad = first_nonfinite(values, count)
    if bad >= 0:
        raise_bad_value("X", X, bad, "NaN or infinity; inputs must be finite")
    if y is not None:
        arr = <cnp.ndarray> y
        count = cnp.PyArray_SIZE(arr)
        values = <const floating*> cnp.PyArray_DATA(arr)
        if labels:
            with nogil:
                bad = first_bad_label(<const intp_t*> values, count, n_out)
            if bad >= 0:
                raise ValueError(
                    f"class label {int(y[bad])} at index {bad} is out of range: "
                    f"labels must be integers in 0..{n_out - 1} for {n_out} outputs")
        elif loss == SQUARED_ERROR:
            with nogil:
                bad = first_nonfinite(values, count)
            if bad >= 0:
                raise_bad_value("y", y, bad, "NaN or infinity; targets must be finite")
        else:
            with nogil:
                bad = first_outside(values, count, low, high)
            if bad >= 0:
                raise_bad_value("y", y, bad,
                                "outside [0, 1]; cross-entropy targets are probabilities")
    if sample_weight is not None:
        arr = <cnp.ndarray> sample_weight
        count = cnp.PyArray_SIZE(arr)
        values = <const floating*> cnp.PyArray_DATA(arr)
        high = INFINITY
        with nogil:
            bad = first_outside(values, count, low, high)
            total = sum_in_double(values, count)
        if bad >= 0:
            raise_bad_value("sample_weight", sample_weight, bad,
                            "negative, NaN or infinite; weights must be finite and >= 0")
        if not total > 0:
            raise ValueError("sample_weight sums to zero: at least one weight must be positive")
        if not isfinite(total):
            raise ValueError("sample_weight sums to infinity: the weights are too large "
                             "(only their ratios matter; scale them down)")


cdef inline check_finite(str name, array, bint is_double, str what):
    """Raise ValueError naming the first NaN/inf of a kernel-ready array."""
    cdef Py_ssize_t bad, count = cnp.PyArray_SIZE(<cnp.ndarray> array)
    cdef void* values = cnp.PyArray_DATA(<cnp.ndarray> array)
    with nogil:
        if is_double:
            bad = first_nonfinite(<double*> values, count)
        else:
            bad = first_nonfinite(<float*> values, count)
    if bad >= 0:
        raise_bad_value(name, array, bad, what)


cdef inline double weight_total(sample_weight, bint is_double) noexcept:
    """sum(sample_weight) in double, by a compiled loop (no temporary)."""
    cdef Py_ssize_t count = cnp.PyArray_SIZE(<cnp.ndarray> sample_weight)
    cdef void* values = cnp.PyArray_DATA(<cnp.ndarray> sample_weight)
    cdef double total
    with nogil:
        if is_double:
            total = sum_in_double(<double*> values, count)
        else:
            total = sum_in_double(<float*> values, count)
    return total


cdef inline raise_if_not_finite(double loss):
    """FloatingPointError for a loss that overflowed."""
    if not isfinite(loss):
        raise FloatingPointError(
            f"the loss is {loss}: the network's outputs overflowed (diverging "
            "weights?); no gradient was computed and the parameters are unchanged")
