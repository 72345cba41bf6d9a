# Row-major matrix products for the kernels: BLAS through SciPy's
# cython_blas for anything big enough to amortise a BLAS call, and a plain
# loop for the products of small layers where the call costs more than the
# arithmetic.  All arrays are C-contiguous row-major with leading dimension
# equal to their row length unless an ld argument says otherwise.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


# Below this many multiply-adds a hand-written loop beats a BLAS call.
cdef enum:
    SMALL_GEMM_MACS = 4096

# Below this many multiply-adds a product runs on one BLAS thread.  OpenBLAS
# itself splits products above 2^18 MACs over its threads, but up to a few
# million MACs two threads gained little on the machines measured (107 vs
# 128 GFLOP/s at 6.4M MACs, timed as benchmarks/blas_floor.py times a
# product, with threadpool_limits(1) against (2)) and, when the other core
# is busy, the step waits for a descheduled BLAS thread: a 64-256-10 digits
# epoch took 5-19 s instead of 0.3 s on a loaded machine.
cdef enum:
    BLAS_SINGLE_THREAD_MACS = 4194304

# OpenBLAS's openblas_set_num_threads_local (thread-local, returns the
# previous count; 0 restores the global setting), found by
# pybackprop/_blasinfo.py in the library SciPy's BLAS comes from.  NULL when
# that library has no such function: then BLAS keeps its own threading.
cdef extern from *:
    """
    typedef int (*pybackprop_set_threads_t)(int);
    static pybackprop_set_threads_t pybackprop_blas_set_threads_local = NULL;
    #define pybackprop_set_blas_threads_hook(p) \
        (pybackprop_blas_set_threads_local = (pybackprop_set_threads_t)(p))
    """
    ctypedef int (*pybackprop_set_threads_t)(int) noexcept nogil
    pybackprop_set_threads_t blas_set_threads_local "pybackprop_blas_set_threads_local"
    void set_blas_threads_hook "pybackprop_set_blas_threads_hook"(void* function) noexcept nogil


cdef inline void blas_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                           floating alpha, const floating* a, int lda,
                           const floating* b, int ldb, floating beta,
                           floating* c, int ldc) noexcept nogil:
    """C := alpha op(A) op(B) + beta C, row-major, C (m, n), through BLAS.

    BLAS is column-major; a row-major C is a column-major C^T, and
    C^T = op(B)^T op(A)^T, so B goes first and the dimensions swap.  No copy.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef bint one_thread = (blas_set_threads_local != NULL
                            and <double> m * n * k < BLAS_SINGLE_THREAD_MACS)
    if one_thread:
        blas_set_threads_local(1)
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*> b, &ldb,
              <float*> a, &lda, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*> b, &ldb,
              <double*> a, &lda, &beta, c, &ldc)
    if one_thread:
        blas_set_threads_local(0)


cdef inline void small_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                            floating alpha, const floating* a, int lda,
                            const floating* b, int ldb, floating beta,
                            floating* c, int ldc) noexcept nogil:
    """C := alpha op(A) op(B) + beta C, row-major, by direct loops.

    beta == 0 never reads C (it may hold garbage), as in BLAS.
    """
    cdef Py_ssize_t i, j, p
    cdef floating acc, a_ip
    cdef floating* c_row
    cdef const floating* b_row
    if trans_b:
        # C[i, j] = sum_p op(A)[i, p] B[j, p]: B rows are contiguous dots.
        for i in range(m):
            c_row = c + i * ldc
            for j in range(n):
                b_row = b + j * ldb
                acc = 0
                if trans_a:
                    for p in range(k):
                        acc = acc + a[p * lda + i] * b_row[p]
                else:
                    for p in range(k):
                        acc = acc + a[i * lda + p] * b_row[p]
                if beta == 0:
                    c_row[j] = alpha * acc
                else:
                    c_row[j] = beta * c_row[j] + alpha * acc
    else:
        # C[i, :] += alpha op(A)[i, p] B[p, :]: contiguous row updates.
        for i in range(m):
            c_row = c + i * ldc
            if beta == 0:
                for j in range(n):
                    c_row[j] = 0
            elif beta != 1:
                for j in range(n):
                    c_row[j] = beta * c_row[j]
            for p in range(k):
                if trans_a:
                    a_ip = alpha * a[p * lda + i]
                else:
                    a_ip = alpha * a[i * lda + p]
                b_row = b + p * ldb
                for j in range(n):
                    c_row[j] = c_row[j] + a_ip * b_row[j]


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """C := alpha op(A) op(B) + beta C, row-major; picks loop or BLAS by size.

    An inner dimension of 1 (the input gradient of a one-output layer) is
    an outer product, which OpenBLAS runs very slowly: it takes the loop.
    """
    if k <= 2 or <long long> m * n * k <= SMALL_GEMM_MACS:
        small_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    else:
        blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
