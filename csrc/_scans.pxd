# Scans over whole arrays: the largest magnitude (the SGD update guard's
# bounds), the first NaN/inf or out-of-range value (the input checks the
# Network methods run before any kernel) and class labels out of range.
#
# They read IEEE bit patterns as integers where they can: an integer maximum
# or test is a reduction the compiler vectorises as written, where a float
# maximum or isfinite() in a condition it may not reorder or vectorise
# without fast-math.  memcpy is the aliasing-safe way to read the bits and
# compiles to a plain load.

from cython cimport floating
from libc.math cimport isfinite, NAN
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy

from _layout cimport intp_t

# first_nonfinite checks blocks of this many values with the vectorised
# maximum and searches only a block that holds a non-finite value.
cdef enum:
    FINITE_CHECK_BLOCK = 1024


cdef inline int64_t largest_magnitude_bits(const floating* x, Py_ssize_t count) noexcept nogil:
    """The largest bit pattern of |x[i]| over count values, as an integer
    (0 when count is 0).  With the sign bit cleared, IEEE values order like
    their bit patterns read as integers, and every inf/NaN pattern lies
    above every finite one."""
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


cdef inline Py_ssize_t first_nonfinite(const floating* values, Py_ssize_t count) noexcept nogil:
    """Index of the first NaN or inf in values, or -1."""
    cdef Py_ssize_t start = 0, i, size
    while start < count:
        size = min(<Py_ssize_t> FINITE_CHECK_BLOCK, count - start)
        if not finite_bits(largest_magnitude_bits(values + start, size), floating is float):
            for i in range(start, start + size):
                if not isfinite(values[i]):
                    return i
        start += size
    return -1


cdef inline Py_ssize_t first_outside(const floating* values, Py_ssize_t count,
                                     double low, double high) noexcept nogil:
    """Index of the first value that is NaN/inf or outside [low, high], or -1."""
    cdef Py_ssize_t i
    for i in range(count):
        if not (values[i] >= low and values[i] <= high):
            return i
    return -1


cdef inline Py_ssize_t first_bad_label(const intp_t* labels, Py_ssize_t count,
                                       intp_t n_classes) noexcept nogil:
    """Index of the first label outside 0 .. n_classes - 1, or -1."""
    cdef Py_ssize_t i
    for i in range(count):
        if labels[i] < 0 or labels[i] >= n_classes:
            return i
    return -1


cdef inline double sum_in_double(const floating* values, Py_ssize_t count) noexcept nogil:
    """sum(values) accumulated in double, in order (sample weights' total)."""
    cdef Py_ssize_t i
    cdef double total = 0
    for i in range(count):
        total += values[i]
    return total
