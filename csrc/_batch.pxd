# What the Network methods run on one batch, built from the layer kernels:
# prediction and loss evaluation (in chunks, so any number of rows fits the
# buffers), a gradient step, a fused SGD step and the backward pass from a
# user-supplied dL/dA_L.  The rows travel as a Batch and the buffers as a
# Workspace: structs with untyped data pointers, since Cython structs cannot
# be fused; each kernel reads them as the floating type of its params.

from cython cimport floating
from libc.math cimport isfinite
from libc.string cimport memcpy

from _backward cimport propagate, store_gradients, apply_sgd, output_backward
from _forward cimport forward, apply_output
from _layout cimport Layout, intp_t
from _output_loss cimport output_loss


cdef struct Batch:
    const void* X              # (n_rows, n_in) inputs
    const void* Y              # (n_rows, n_out) targets, or NULL when labels are given
    const intp_t* labels       # (n_rows,) class labels (cross-entropy), or NULL
    const void* sample_weight  # (n_rows,) weights, or NULL: every row weighs 1
    int n_rows
    double weight_total        # sum of the weights (n_rows without weights)


cdef struct Workspace:
    void* acts                 # A_i of every layer (see Layout.a_off)
    void* deltas               # dZ_i, laid out as acts
    void* bias_step            # (max_width,): sum_rows dZ_i of a fused SGD update
    void* dX                   # (dx_capacity, n_in): dL/dX when the caller asks for it
    void* rows_X               # a shuffled minibatch's rows, gathered
    void* rows_Y               # (gather_capacity rows each; see csrc/_epoch.pxd)
    intp_t* rows_labels
    void* rows_weight


cdef inline void predict_rows(const Layout* L, const floating* params, const Batch* batch,
                              const Workspace* work, int chunk, floating* out) noexcept nogil:
    """out := MLP(X) (n_rows, n_out), in chunks of at most chunk rows."""
    cdef int rows, start = 0
    cdef int n_in = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef const floating* X = <const floating*> batch.X
    cdef floating* acts = <floating*> work.acts
    cdef floating* Z = acts + L.a_off[L.n_layers - 1]
    while start < batch.n_rows:
        rows = min(chunk, batch.n_rows - start)
        forward(L, params, X + <Py_ssize_t> start * n_in, rows, acts)
        apply_output(L.act[L.n_layers - 1], Z, rows, n_out)
        memcpy(out + <Py_ssize_t> start * n_out, Z, <Py_ssize_t> rows * n_out * sizeof(floating))
        start += rows


cdef inline double loss_rows(const Layout* L, const floating* params, const Batch* batch,
                             const Workspace* work, int chunk) noexcept nogil:
    """The batch's weighted mean loss, in chunks of at most chunk rows
    (dZ_L is computed into the deltas buffer and not used)."""
    cdef int rows, start = 0
    cdef int n_in = L.sizes[0], n_out = L.sizes[L.n_layers], last = L.n_layers - 1
    cdef const floating* X = <const floating*> batch.X
    cdef const floating* Y = <const floating*> batch.Y
    cdef const floating* sw = <const floating*> batch.sample_weight
    cdef floating* acts = <floating*> work.acts
    cdef double total = 0
    while start < batch.n_rows:
        rows = min(chunk, batch.n_rows - start)
        forward(L, params, X + <Py_ssize_t> start * n_in, rows, acts)
        total += output_loss(L, acts + L.a_off[last], rows,
                             Y + <Py_ssize_t> start * n_out if Y != NULL else NULL,
                             batch.labels + start if batch.labels != NULL else NULL,
                             sw + start if sw != NULL else NULL,
                             batch.weight_total, <floating*> work.deltas + L.a_off[last])
        start += rows
    return total


cdef inline double forward_and_loss(const Layout* L, const floating* params, const Batch* batch,
                                    const Workspace* work) noexcept nogil:
    """Forward pass and loss of the batch (at most capacity rows); dZ_L is
    left in the deltas buffer for the backward pass."""
    cdef int last = L.n_layers - 1
    cdef floating* acts = <floating*> work.acts
    forward(L, params, <const floating*> batch.X, batch.n_rows, acts)
    return output_loss(L, acts + L.a_off[last], batch.n_rows, <const floating*> batch.Y,
                       batch.labels, <const floating*> batch.sample_weight,
                       batch.weight_total, <floating*> work.deltas + L.a_off[last])


cdef inline double gradient_step(const Layout* L, const floating* params, const Batch* batch,
                                 const Workspace* work, floating* grads,
                                 floating* dX) noexcept nogil:
    """The loss; dW, db into grads, and dX (unless NULL).  Nothing is
    backpropagated when the loss is not finite."""
    cdef double loss = forward_and_loss(L, params, batch, work)
    if isfinite(loss):
        propagate(L, params, batch.n_rows, <const floating*> work.acts,
                  <floating*> work.deltas, dX)
        store_gradients(L, <const floating*> batch.X, batch.n_rows,
                        <const floating*> work.acts, <const floating*> work.deltas, grads)
    return loss


cdef inline double sgd_step(Layout* L, floating* params, const Batch* batch,
                            const Workspace* work, floating lr, bint* refused) noexcept nogil:
    """The loss before one plain SGD step, which is applied inside the
    backward pass.  Nothing changes when the loss is not finite, or when the
    update could overflow (*refused set, see apply_sgd)."""
    cdef double loss = forward_and_loss(L, params, batch, work)
    refused[0] = False
    if isfinite(loss):
        propagate(L, params, batch.n_rows, <const floating*> work.acts,
                  <floating*> work.deltas, <floating*> NULL)
        refused[0] = apply_sgd(L, params, <const floating*> batch.X, batch.n_rows,
                               <const floating*> work.acts, <const floating*> work.deltas,
                               lr, <floating*> work.bias_step)
    return loss


cdef inline void backward_from_output(const Layout* L, const floating* params,
                                      const Batch* batch, const Workspace* work,
                                      const floating* dA_out, floating* grads,
                                      floating* dX) noexcept nogil:
    """Forward pass, then backward from dZ_L = dA_L * out'(Z_L): dW, db into
    grads, and dX (unless NULL)."""
    cdef int last = L.n_layers - 1, n = batch.n_rows
    cdef int n_out = L.sizes[L.n_layers]
    cdef floating* acts = <floating*> work.acts
    cdef floating* deltas = <floating*> work.deltas
    forward(L, params, <const floating*> batch.X, n, acts)
    apply_output(L.act[last], acts + L.a_off[last], n, n_out)
    output_backward(L.act[last], acts + L.a_off[last], dA_out, n, n_out, deltas + L.a_off[last])
    propagate(L, params, n, acts, deltas, dX)
    store_gradients(L, <const floating*> batch.X, n, acts, deltas, grads)
