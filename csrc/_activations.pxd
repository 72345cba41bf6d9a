# Activations, their derivatives taken from the saved activation A (so the
# backward pass never needs Z), and the numerically stable scalar pieces the
# losses are built from.

from cython cimport floating
from libc.math cimport exp, log1p, fabs


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


# Vectorisable exp/expm1.  libm's exp is a scalar call the compiler cannot
# vectorise, and it dominated sigmoid layers (65k exps per step); these
# branch-free versions (Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2,
# then a Taylor polynomial for expm1(r) accurate to the last bit or two)
# vectorise.  They are only called with x <= 0.  The power of two 2^k is
# built as 2^(k + 64) and scaled by 2^-64 at the end, so results down in the
# subnormal range come out right (rounded once more there, never flushed);
# below EXP_LOW exp rounds to exactly 0.

cdef union DoubleBits:
    double value
    long long bits

cdef union FloatBits:
    float value
    int bits


cdef inline double expm1_reduced_d(double x, double* scale) noexcept nogil:
    """expm1(r) for x = k ln2 + r; *scale := 2^(k + 64).  -746 <= x <= 0."""
    cdef double shifter = 6755399441055744.0          # 1.5 * 2^52: rounds to integer
    cdef DoubleBits t, s
    cdef double k, r, p, r2, r4, r8
    t.value = x * 1.4426950408889634 + shifter
    k = t.value - shifter
    r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    s.bits = (t.bits - 0x4338000000000000LL + 1023 + 64) << 52
    scale[0] = s.value
    # The polynomial 1/2! + r/3! + ... + r^11/13! by Estrin's scheme: eight
    # dependent operations instead of Horner's twenty-four, which matters
    # when one sample's sigmoid is all there is to compute (per-sample
    # training is bound by this latency).  Written out, so every build
    # evaluates it in the same order and rounds the same.
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    p = (((0.5 + r * 1.66666666666666667e-01)
          + r2 * (4.16666666666666667e-02 + r * 8.33333333333333333e-03))
         + r4 * ((1.38888888888888889e-03 + r * 1.98412698412698413e-04)
                 + r2 * (2.48015873015873016e-05 + r * 2.75573192239858907e-06))
         + r8 * ((2.75573192239858907e-07 + r * 2.50521083854417188e-08)
                 + r2 * (2.08767569878680990e-09 + r * 1.6059043836821613e-10)))
    return (p * r + 1.0) * r


cdef inline float expm1_reduced_f(float x, float* scale) noexcept nogil:
    """expm1(r) for x = k ln2 + r in float32; *scale := 2^(k + 64).  -104 <= x <= 0."""
    cdef float shifter = 12582912.0                   # 1.5 * 2^23
    cdef float log2e = 1.44269504088896341, ln2_hi = 0.693359375, ln2_lo = -2.12194440e-4
    cdef float c7 = 1.98412698412698413e-04, c6 = 1.38888888888888889e-03
    cdef float c5 = 8.33333333333333333e-03, c4 = 4.16666666666666667e-02
    cdef float c3 = 1.66666666666666667e-01, c2 = 0.5, one = 1.0
    cdef FloatBits t, s
    cdef float k, r, p, r2
    t.value = x * log2e + shifter
    k = t.value - shifter
    r = (x - k * ln2_hi) - k * ln2_lo
    s.bits = (t.bits - 0x4B400000 + 127 + 64) << 23
    scale[0] = s.value
    r2 = r * r
    p = ((c2 + r * c3) + r2 * (c4 + r * c5)) + (r2 * r2) * (c6 + r * c7)   # Estrin
    return (p * r + one) * r


cdef inline floating exp_low(floating x) noexcept nogil:
    """Below this, exp(x) rounds to 0 (half the smallest subnormal)."""
    return -745.1 if floating is double else -103.9


cdef inline floating expm1_reduced(floating x, floating* scale) noexcept nogil:
    """expm1(r) and *scale = 2^(k + 64) for x = k ln2 + r, x <= 0, with x
    clamped at exp_low."""
    cdef floating low = exp_low(x)
    cdef floating clamped = x if x > low else low
    if floating is double:
        return expm1_reduced_d(clamped, scale)
    else:
        return expm1_reduced_f(clamped, scale)


cdef inline floating exp_nonpositive(floating x) noexcept nogil:
    """exp(x) for x <= 0, vectorisable; subnormal results kept."""
    cdef floating scale
    cdef floating q = expm1_reduced(x, &scale)
    cdef floating unshift = 5.421010862427522e-20      # 2^-64
    return (scale * q + scale) * unshift if x > exp_low(x) else 0


cdef inline floating expm1_nonpositive(floating x) noexcept nogil:
    """expm1(x) for x <= 0, vectorisable, accurate near 0."""
    cdef floating unshift = 5.421010862427522e-20      # 2^-64
    cdef floating scale
    cdef floating q = expm1_reduced(x, &scale)
    scale = scale * unshift                            # exact: 2^k, or 0 far below
    return scale * q + (scale - 1)


cdef inline floating sigmoid(floating z) noexcept nogil:
    """sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) for z < 0, with
    e = exp(-|z|) <= 1: branch-free, never overflowing."""
    # The cast keeps float32 in float32: libc's fabs returns a double, which
    # would select the (4x slower) float64 exp specialisation.
    cdef floating e = exp_nonpositive(<floating>-fabs(z))
    cdef floating one = 1
    return (one if z >= 0 else e) / (one + e)


cdef inline floating vector_tanh(floating z) noexcept nogil:
    """tanh(z) = -t / (2 + t) with t = expm1(-2|z|), sign of z: accurate to
    a few ulp for every z (no cancellation near 0), branch-free."""
    cdef floating t = expm1_nonpositive(<floating>(-2 * fabs(z)))
    cdef floating magnitude = -t / (2 + t)
    return magnitude if z >= 0 else -magnitude


cdef inline double softplus(double t) noexcept nogil:
    """log(1 + exp(t)) = max(t, 0) + log1p(exp(-|t|)), finite for finite t."""
    if t > 0:
        return t + log1p(exp(-t))
    return log1p(exp(t))


cdef inline void activate_rows(int code, floating* z, Py_ssize_t count) noexcept nogil:
    """A := act(Z) in place over count contiguous values."""
    cdef Py_ssize_t i
    # Unconditional stores of a selected value: the compiler turns them into
    # vector max/blend instructions, where a conditional store would be a
    # mispredicted branch per element (random signs).
    if code == RELU:
        for i in range(count):
            z[i] = z[i] if z[i] > 0 else 0
    elif code == SIGMOID:
        for i in range(count):
            z[i] = sigmoid(z[i])
    elif code == TANH:
        for i in range(count):
            z[i] = vector_tanh(z[i])


cdef inline void multiply_derivative(int code, floating* da, const floating* a,
                                     Py_ssize_t count) noexcept nogil:
    """dZ := dA * act'(Z), in place over dA, from the saved A."""
    cdef Py_ssize_t i
    if code == RELU:
        for i in range(count):
            da[i] = da[i] if a[i] > 0 else 0
    elif code == SIGMOID:
        for i in range(count):
            da[i] = da[i] * (a[i] * (1 - a[i]))
    elif code == TANH:
        for i in range(count):
            da[i] = da[i] * (1 - a[i] * a[i])
