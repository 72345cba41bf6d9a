# The epoch loop of MLP.fit: minibatches taken in a given order (a shuffle)
# or in place, each trained by a fused SGD step or a gradient step and an
# optimizer update, all without returning to Python.  Network.train_epoch
# (csrc/_core.pyx) calls epoch_batches for groups of batches and checks for
# signals (Ctrl-C) between groups.

from cython cimport floating
from libc.math cimport isfinite

from _batch cimport Batch, Workspace, sgd_step, gradient_step
from _layout cimport Layout, intp_t, debug_range, copy_values
from _optimizers cimport Optimizer, FUSED_SGD, optimizer_update

# Shuffled epochs prefetch the next batch's rows when the data set is larger
# than this (about the L2 cache of the machines measured).
cdef enum:
    PREFETCH_MIN_BYTES = 1048576


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


# How far an epoch got: Network.train_epoch reports it to Python even when
# the epoch is interrupted.
cdef struct EpochTotals:
    Py_ssize_t rows            # rows of the epoch's order trained (or skipped) so far
    double loss_sum            # sum of batch loss x batch weight
    double weight_sum          # sum of batch weights


cdef inline void gather_rows(const Layout* L, const Batch* data, const intp_t* order,
                             int rows, const Workspace* work, const floating* X,
                             Batch* minibatch) noexcept nogil:
    """Copy rows order[0:rows] of data into the workspace's batch buffers and
    point minibatch at them.  X is data.X, typed."""
    cdef int r, n_in = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef Py_ssize_t src
    cdef const floating* Y = <const floating*> data.Y
    cdef const floating* sw = <const floating*> data.sample_weight
    cdef floating* Xb = <floating*> work.rows_X
    cdef floating* Yb = <floating*> work.rows_Y
    cdef floating* swb = <floating*> work.rows_weight
    debug_range(0, rows, L.capacity)
    for r in range(rows):
        src = order[r]
        debug_range(src, 1, data.n_rows)
        copy_values(Xb + <Py_ssize_t> r * n_in, X + src * n_in, n_in)
        if Y != NULL:
            copy_values(Yb + <Py_ssize_t> r * n_out, Y + src * n_out, n_out)
        else:
            work.rows_labels[r] = data.labels[src]
        if sw != NULL:
            swb[r] = sw[src]
    minibatch.X = Xb
    minibatch.Y = Yb if Y != NULL else NULL
    minibatch.labels = work.rows_labels if Y == NULL else NULL
    minibatch.sample_weight = swb if sw != NULL else NULL


cdef inline int epoch_batches(Layout* L, Optimizer* opt, floating* params, floating* grads,
                              const Batch* data, const intp_t* order, int batch_size,
                              Py_ssize_t max_batches, const Workspace* work,
                              EpochTotals* totals) noexcept nogil:
    """Train on the minibatches from row totals.rows of the epoch's order,
    for at most max_batches batches; totals advance past each batch trained.

    Rows are gathered through order (a permutation) into the workspace's
    batch buffers, or read in place when order is NULL.  A batch whose
    weights sum to zero is skipped.  Returns 1, with totals.rows at the
    failing batch and nothing changed by it, when a batch's loss is not
    finite or its update would overflow; else 0.
    """
    cdef int n_in = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef Py_ssize_t n = data.n_rows, done = 0, start
    cdef int r, rows
    cdef const floating* X = <const floating*> data.X
    cdef const floating* Y = <const floating*> data.Y
    cdef const floating* sw = <const floating*> data.sample_weight
    cdef const floating* wb
    cdef Batch minibatch
    cdef double loss, total
    cdef bint refused
    cdef Py_ssize_t row_bytes = n_in * sizeof(floating) + (
        n_out * sizeof(floating) if Y != NULL else sizeof(intp_t))
    cdef bint prefetch_rows = n * row_bytes > PREFETCH_MIN_BYTES
    while totals.rows < n and done < max_batches:
        start = totals.rows
        rows = <int> min(<Py_ssize_t> batch_size, n - start)
        if order != NULL:
            if prefetch_rows and start + rows < n:
                # Ask for the next batch's rows now: shuffled rows are random
                # reads, a cache miss each once the data set outgrows L2, and
                # the prefetch overlaps them with this step.
                prefetch_rows_of(<const char*> X, n_in * sizeof(floating),
                                 <const char*> Y if Y != NULL else <const char*> data.labels,
                                 n_out * sizeof(floating) if Y != NULL else sizeof(intp_t),
                                 order + start + rows, min(<Py_ssize_t> rows, n - start - rows))
            gather_rows(L, data, order + start, rows, work, X, &minibatch)
        else:
            minibatch.X = X + start * n_in
            minibatch.Y = Y + start * n_out if Y != NULL else NULL
            minibatch.labels = data.labels + start if Y == NULL else NULL
            minibatch.sample_weight = sw + start if sw != NULL else NULL
        minibatch.n_rows = rows
        wb = <const floating*> minibatch.sample_weight
        if wb != NULL:
            total = 0
            for r in range(rows):
                total += wb[r]
        else:
            total = rows
        minibatch.weight_total = total
        if total > 0:
            if opt.settings.kind == FUSED_SGD:
                loss = sgd_step(L, params, &minibatch, work, <floating> opt.settings.lr,
                                &refused)
                if not isfinite(loss) or refused:
                    return 1
            else:
                loss = gradient_step(L, params, &minibatch, work, grads, <floating*> NULL)
                if not isfinite(loss) or not optimizer_update(L, opt, params, grads):
                    return 1
            totals.loss_sum += loss * total
            totals.weight_sum += total
        totals.rows += rows
        done += 1
    return 0
