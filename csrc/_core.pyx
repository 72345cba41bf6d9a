"""The compiled core of pybackprop: the ``Network`` class, where Python hands
arrays to the kernels, and the names of every code the kernels know.

Border.  pybackprop/network.py builds and initialises the parameters; the
``def`` methods here check, in C, that the arrays they receive are already
in the exact form the kernels read (dtype, C order, shape) and hand anything
else to a Python coercion function that converts or raises; they check
values (NaN/inf, label ranges) in compiled loops so no batch-sized temporary
is built.  The ``cdef ... noexcept nogil`` kernels trust their inputs and
only compute, with the GIL released and a per-network lock held.

The kernels live in one inline .pxd per concern, cimported here so that
every instruction-set variant stays one translation unit:

- _layout.pxd       the Layout of the flat buffers; debug and ISA build macros
- _scans.pxd        largest magnitude, first NaN/inf, labels out of range
- _checks.pxd       the entry points' input checks (array form, values)
- _activations.pxd  activation functions and their derivatives; code enums
- _blas.pxd         row-major matrix products (BLAS or small loops)
- _forward.pxd      the forward pass and the output activation
- _output_loss.pxd  one function per (output activation, loss) pair
- _backward.pxd     propagate, store gradients, apply SGD (guarded)
- _optimizers.pxd   SGD and Adam: check pass and apply pass
- _batch.pxd        a batch's passes (predict, loss, gradient/SGD step)
- _epoch.pxd        the epoch loop of MLP.fit
"""

import os
import weakref

import numpy as np
cimport numpy as cnp
from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock, PyThread_release_lock,
    PyThread_acquire_lock, NOWAIT_LOCK, PyLockStatus, PY_LOCK_ACQUIRED,
)
from cython cimport floating
from libc.limits cimport INT_MAX
from libc.math cimport isfinite
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from _activations cimport (
    IDENTITY, SIGMOID, RELU, TANH, SOFTMAX,
    SQUARED_ERROR, BINARY_CROSS_ENTROPY, CROSS_ENTROPY,
)
from _backward cimport scan_parameter_bounds
from _batch cimport (
    Batch, Workspace, predict_rows, loss_rows, gradient_step, sgd_step, backward_from_output,
)
from _blas cimport set_blas_threads_hook, blas_set_threads_local
from _checks cimport (
    ready, data_pointer, check_values, check_finite, weight_total, raise_if_not_finite,
)
from _epoch cimport EpochTotals, epoch_batches
from _layout cimport (
    Layout, intp_t, debug_range, pybackprop_cpu_runs,
    PYBACKPROP_DEBUG, PYBACKPROP_VIOLATIONS, PYBACKPROP_RESET_VIOLATIONS,
    PYBACKPROP_ISA, PYBACKPROP_BUILD_ID,
)
from _optimizers cimport Optimizer, OptimizerSettings, FUSED_SGD, SGD, ADAM, optimizer_update

cdef extern from "pythread.h":
    # (Not declared by Cython's cpython/pythread.pxd.)
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, long long microseconds,
                                             int intr_flag) nogil

cnp.import_array()


# The one definition of every code the kernels read, by name.  The Python
# side (pybackprop/_validation.py, pybackprop/optim.py) reads these tables.
HIDDEN_ACTIVATIONS = {"identity": IDENTITY, "sigmoid": SIGMOID, "relu": RELU, "tanh": TANH}
OUTPUT_ACTIVATIONS = {"identity": IDENTITY, "sigmoid": SIGMOID, "softmax": SOFTMAX}
LOSSES = {"squared_error": SQUARED_ERROR, "binary_cross_entropy": BINARY_CROSS_ENTROPY,
          "cross_entropy": CROSS_ENTROPY}
# The (output, loss) pairs output_loss (csrc/_output_loss.pxd) implements,
# each with its exact gradient.
VALID_PAIRS = (
    ("identity", "squared_error"),
    ("sigmoid", "squared_error"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
)
# Optimizer kinds, the "kind" of the settings optimizer_step and
# train_epoch take; "fused_sgd" is plain SGD applied inside the backward pass.
OPTIMIZER_KINDS = {"fused_sgd": FUSED_SGD, "sgd": SGD, "adam": ADAM}
# The settings by name (OptimizerSettings in csrc/_optimizers.pxd); those a
# kind does not use may be left out.
OPTIMIZER_SETTINGS = ("kind", "lr", "momentum", "dampening", "nesterov", "weight_decay",
                      "beta1", "beta2", "eps", "decoupled")

DEBUG_BUILD = bool(PYBACKPROP_DEBUG)
ISA = PYBACKPROP_ISA.decode("ascii")
BUILD_ID = PYBACKPROP_BUILD_ID.decode("ascii")

# Rows per forward chunk when predicting or evaluating a loss on a batch
# larger than the training buffers: bounds memory without hurting BLAS.
cdef enum:
    EVAL_CHUNK = 1024

# A thread waiting for a network's lock wakes this often (microseconds) to
# run signal handlers (Ctrl-C) while it waits.
cdef enum:
    LOCK_WAIT_SLICE_US = 20000

# Every live Network, so that a forked child can give each a fresh lock.
_live_networks = weakref.WeakSet()


def _fresh_locks_after_fork():
    """In a forked child: a new, free lock for every network.  A thread of
    the parent may have held a network's lock at the fork; that thread does
    not exist in the child, so its lock would never be released.  The old
    lock is left allocated: freeing a held lock is undefined."""
    cdef Network net
    for net in list(_live_networks):
        net._new_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_after_fork)


def _cpu_runs(str isa):
    """Whether this CPU and OS run the code of an instruction-set variant:
    'baseline', 'avx2' (x86-64-v3) or 'avx512' (x86-64-v4)."""
    if isa == "baseline":
        return True
    if isa == "avx2":
        return bool(pybackprop_cpu_runs(3))
    if isa == "avx512":
        return bool(pybackprop_cpu_runs(4))
    raise ValueError(f"unknown instruction-set variant {isa!r}; "
                     "expected 'baseline', 'avx2' or 'avx512'")


cdef check_debug_violations():
    """Raise if a kernel of this call computed an out-of-bounds block."""
    if PYBACKPROP_DEBUG and PYBACKPROP_VIOLATIONS() > 0:
        PYBACKPROP_RESET_VIOLATIONS()
        raise AssertionError("debug build: a kernel addressed memory outside its buffers")


cdef OptimizerSettings optimizer_settings(dict named) except *:
    """OptimizerSettings from a dict of settings by name (see
    OPTIMIZER_SETTINGS); "kind" and "lr" are required, the rest default to 0."""
    cdef OptimizerSettings settings
    unknown = sorted(set(named) - set(OPTIMIZER_SETTINGS))
    if unknown:
        raise ValueError(f"unknown optimizer settings {unknown}; "
                         f"known: {', '.join(OPTIMIZER_SETTINGS)}")
    kind = named.get("kind")
    if kind not in OPTIMIZER_KINDS:
        raise ValueError(f"unknown optimizer kind {kind!r}; "
                         f"expected one of {', '.join(OPTIMIZER_KINDS)}")
    if "lr" not in named:
        raise ValueError("optimizer settings need a learning rate 'lr'")
    settings.kind = OPTIMIZER_KINDS[kind]
    settings.lr = float(named["lr"])
    settings.momentum = float(named.get("momentum", 0.0))
    settings.dampening = float(named.get("dampening", 0.0))
    settings.nesterov = bool(named.get("nesterov", False))
    settings.weight_decay = float(named.get("weight_decay", 0.0))
    settings.beta1 = float(named.get("beta1", 0.0))
    settings.beta2 = float(named.get("beta2", 0.0))
    settings.eps = float(named.get("eps", 0.0))
    settings.decoupled = bool(named.get("decoupled", False))
    if not (isfinite(settings.lr) and settings.lr >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {settings.lr!r}")
    return settings


cdef class EpochProgress:
    """How far :meth:`Network.train_epoch` got.  Filled as the epoch runs, so
    it holds the partial progress when the epoch is interrupted (Ctrl-C) or
    stops at a diverging batch.  It belongs to the caller: threads sharing a
    network each see their own.

    Attributes
    ----------
    step : int
        The optimizer's step count after the last update applied.
    loss_sum : float
        Sum over the trained batches of batch loss x batch weight.
    weight_sum : float
        Sum of the trained batches' weights.
    rows : int
        Rows of the epoch trained (or skipped for a zero weight).
    """

    cdef readonly long long step
    cdef readonly double loss_sum, weight_sum
    cdef readonly Py_ssize_t rows

    def __repr__(self):
        return (f"EpochProgress(step={self.step}, loss_sum={self.loss_sum!r}, "
                f"weight_sum={self.weight_sum!r}, rows={self.rows})")


# Everything one Network entry point hands to its work under the lock: the
# rows, the call's options and, for the entry point to read afterwards, its
# results.  Each entry point fills the fields it uses.
cdef struct Call:
    Batch batch                # the rows the call works on
    void* out                  # predict: the (n_rows, n_out) output
    const void* grad_output    # backward_output: dL/dA_L (n_rows, n_out)
    bint input_grad            # also compute dL/dX into the dX buffer
    double lr                  # train_step: the SGD learning rate
    Optimizer optimizer        # optimizer_step, train_epoch
    const intp_t* order        # train_epoch: the rows' order, or NULL (stored order)
    int batch_size             # train_epoch
    Py_ssize_t max_batches     # train_epoch: batches between signal checks
    const void* values         # write_params: the values to copy in
    const void* mask           # write_params: which of them to copy (npy_bool), or NULL
    Py_ssize_t offset          # write_params: where in params values[0] goes
    Py_ssize_t count           # read_params, write_params: how many values
    bint more                  # set by work that _locked runs again after a signal check
    double loss                # result: the batch's loss
    bint refused               # result: the SGD update could overflow; nothing changed
    bint finite                # result: the optimizer update was applied
    EpochTotals totals         # result: train_epoch's progress
    int status                 # result: train_epoch: 1 when a batch diverged


# The work of an entry point, run by Network._locked with the lock held.  It
# runs no Python code (no callbacks, no signal handlers): a signal handler
# may use the same network.
ctypedef object (*LockedWork)(Network net, Call* call)


cdef class Network:
    """Parameters, buffers and kernels of one MLP.  Use pybackprop.MLP.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, n_hidden..., n_out]``.
    activation_codes : sequence of int
        One code per weight layer (HIDDEN_ACTIVATIONS), the output
        activation (OUTPUT_ACTIVATIONS) last.
    loss_code : int
        LOSSES; with the output activation, one of VALID_PAIRS.
    params : ndarray of float32 or float64, shape (n_params,)
        The flat parameter vector, used in place (never copied).
    coerce : callable
        ``coerce(X, y, sample_weight) -> (X, y, sample_weight)`` converting
        inputs to the exact form the kernels read, or raising.  Called only
        when the compiled fast check fails.
    """

    cdef Layout layout
    cdef readonly bint is_double
    cdef readonly int n_in, n_out
    cdef readonly Py_ssize_t n_params, capacity
    cdef readonly object params, grads
    cdef int typenum
    cdef object coerce
    cdef void* params_data
    cdef void* grads_data
    # The work buffers: the arrays own the memory, work points into them.
    cdef Workspace work
    cdef object _acts_array, _deltas_array, _dx_array, _bias_step_array
    cdef object _rows_x, _rows_y, _rows_labels, _rows_weight
    cdef object _adam_step_array
    cdef Py_ssize_t act_width, dx_capacity, gather_capacity
    cdef PyThread_type_lock lock
    cdef object __weakref__

    # The progress record train_epoch fills, reachable from a network so a
    # caller gets the one of this network's variant of the core.
    EpochProgress = EpochProgress

    def __cinit__(self):
        self._new_lock()
        _live_networks.add(self)
        self.layout.sizes = NULL
        self.layout.act = NULL
        self.layout.w_off = NULL
        self.layout.b_off = NULL
        self.layout.a_off = NULL
        self.layout.w_bound = NULL
        self.layout.pending = NULL

    def __init__(self, layer_sizes, activation_codes, int loss_code,
                 cnp.ndarray params not None, coerce):
        cdef int n_layers = len(layer_sizes) - 1
        cdef int i
        cdef Py_ssize_t offset = 0
        if n_layers < 1 or len(activation_codes) != n_layers:
            raise ValueError("need at least one layer and one activation per layer")
        _check_codes(activation_codes, loss_code)
        if self.layout.sizes != NULL:
            raise RuntimeError("Network is already initialised")
        self.layout.n_layers = n_layers
        self.layout.loss = loss_code
        self.layout.sizes = <int*> malloc((n_layers + 1) * sizeof(int))
        self.layout.act = <int*> malloc(n_layers * sizeof(int))
        self.layout.w_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.b_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.a_off = <Py_ssize_t*> malloc(n_layers * sizeof(Py_ssize_t))
        self.layout.w_bound = <double*> malloc(n_layers * sizeof(double))
        self.layout.pending = <double*> malloc(n_layers * sizeof(double))
        if (self.layout.sizes == NULL or self.layout.act == NULL or self.layout.w_off == NULL
                or self.layout.b_off == NULL or self.layout.a_off == NULL
                or self.layout.w_bound == NULL or self.layout.pending == NULL):
            raise MemoryError()
        self.layout.max_width = 0
        for i in range(n_layers + 1):
            self.layout.sizes[i] = int(layer_sizes[i])
            if self.layout.sizes[i] < 1:
                raise ValueError("layer sizes must be positive")
        self.act_width = 0
        for i in range(n_layers):
            self.layout.act[i] = int(activation_codes[i])
            self.layout.w_off[i] = offset
            offset += <Py_ssize_t> self.layout.sizes[i + 1] * self.layout.sizes[i]
            self.layout.b_off[i] = offset
            offset += self.layout.sizes[i + 1]
            self.act_width += self.layout.sizes[i + 1]
            if self.layout.sizes[i + 1] > self.layout.max_width:
                self.layout.max_width = self.layout.sizes[i + 1]
            self.layout.a_off[i] = 0
        self.n_in = self.layout.sizes[0]
        self.n_out = self.layout.sizes[n_layers]
        self.n_params = offset
        self.layout.n_params = offset
        self.layout.capacity = 0
        self.layout.act_size = 0

        if params.ndim != 1 or params.shape[0] != offset or not params.flags.c_contiguous:
            raise ValueError(f"params must be a contiguous vector of {offset} values")
        if params.dtype == np.float64:
            self.is_double = True
            self.typenum = cnp.NPY_DOUBLE
        elif params.dtype == np.float32:
            self.is_double = False
            self.typenum = cnp.NPY_FLOAT
        else:
            raise TypeError(f"params must be float32 or float64, got {params.dtype}")
        self.params = params
        self.grads = np.zeros(offset, dtype=params.dtype)
        self.params_data = cnp.PyArray_DATA(params)
        self.grads_data = cnp.PyArray_DATA(<cnp.ndarray> self.grads)
        self._bias_step_array = np.zeros(self.layout.max_width, dtype=params.dtype)
        self.work.bias_step = cnp.PyArray_DATA(<cnp.ndarray> self._bias_step_array)
        self.coerce = coerce
        self.capacity = 0
        self.dx_capacity = 0
        self.gather_capacity = 0

    def __dealloc__(self):
        free(self.layout.sizes)
        free(self.layout.act)
        free(self.layout.w_off)
        free(self.layout.b_off)
        free(self.layout.a_off)
        free(self.layout.w_bound)
        free(self.layout.pending)
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    # -- the lock -------------------------------------------------------------

    cdef object _locked(self, LockedWork work, Call* call):
        """Run work(self, call) holding the network's lock.  The one place the
        lock is taken: buffers are (re)allocated, kernels run and parameters
        are copied only under it, so threads may share a network.

        No Python code runs while the lock is held, so a signal handler (or
        any code it calls) may use this network: waiting for the lock runs
        signal handlers every LOCK_WAIT_SLICE_US, and work that sets
        ``call.more`` (an epoch, between groups of batches) is run again
        after the lock is released and signal handlers have run.  An
        exception a handler raises (KeyboardInterrupt) propagates with the
        lock free.
        """
        cdef object result
        while True:
            self._acquire()
            call.more = False
            try:
                result = work(self, call)
            finally:
                PyThread_release_lock(self.lock)
            if not call.more:
                return result
            PyErr_CheckSignals()

    cdef int _acquire(self) except -1:
        """Take the lock: at once when it is free, else waiting with the GIL
        released in slices, running signal handlers between them (only the
        main thread runs handlers; other threads just keep waiting)."""
        cdef PyLockStatus status
        if PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            return 0
        while True:
            with nogil:
                status = PyThread_acquire_lock_timed(self.lock, LOCK_WAIT_SLICE_US, 1)
            if status == PY_LOCK_ACQUIRED:
                return 0
            PyErr_CheckSignals()

    cdef _new_lock(self):
        """Allocate the network's lock (at construction, and in a forked child)."""
        cdef PyThread_type_lock lock = PyThread_allocate_lock()
        if lock == NULL:
            raise MemoryError("could not allocate the network lock")
        self.lock = lock

    # -- buffers (lock held) --------------------------------------------------

    cdef _ensure_capacity(self, Py_ssize_t n):
        """Grow the activation and delta buffers to hold n rows."""
        cdef int i
        cdef Py_ssize_t offset = 0
        if n <= self.capacity:
            return
        self._acts_array = np.empty(n * self.act_width, dtype=self.params.dtype)
        self._deltas_array = np.empty(n * self.act_width, dtype=self.params.dtype)
        self.work.acts = cnp.PyArray_DATA(<cnp.ndarray> self._acts_array)
        self.work.deltas = cnp.PyArray_DATA(<cnp.ndarray> self._deltas_array)
        for i in range(self.layout.n_layers):
            self.layout.a_off[i] = offset
            offset += n * self.layout.sizes[i + 1]
        self.capacity = n
        self.layout.capacity = n
        self.layout.act_size = n * self.act_width

    cdef _reserve(self, Py_ssize_t n, bint input_grad):
        """Buffers for a training step on n rows (and dX when input_grad)."""
        self._ensure_capacity(n)
        if input_grad and n > self.dx_capacity:
            self._dx_array = np.empty(n * self.n_in, dtype=self.params.dtype)
            self.work.dX = cnp.PyArray_DATA(<cnp.ndarray> self._dx_array)
            self.dx_capacity = n

    cdef _ensure_gather(self, int batch_size):
        """Buffers for the rows of a shuffled minibatch."""
        if batch_size <= self.gather_capacity:
            return
        dtype = self.params.dtype
        self._rows_x = np.empty(<Py_ssize_t> batch_size * self.n_in, dtype=dtype)
        self._rows_y = np.empty(<Py_ssize_t> batch_size * self.n_out, dtype=dtype)
        self._rows_labels = np.empty(batch_size, dtype=np.intp)
        self._rows_weight = np.empty(batch_size, dtype=dtype)
        self.work.rows_X = cnp.PyArray_DATA(<cnp.ndarray> self._rows_x)
        self.work.rows_Y = cnp.PyArray_DATA(<cnp.ndarray> self._rows_y)
        self.work.rows_labels = <intp_t*> cnp.PyArray_DATA(<cnp.ndarray> self._rows_labels)
        self.work.rows_weight = cnp.PyArray_DATA(<cnp.ndarray> self._rows_weight)
        self.gather_capacity = batch_size

    cdef void* _adam_step_buffer(self) except NULL:
        """Adam's scratch of n_params values, allocated at its first update:
        an SGD-only network never holds it."""
        if self._adam_step_array is None:
            self._adam_step_array = np.empty(self.n_params, dtype=self.params.dtype)
        return cnp.PyArray_DATA(<cnp.ndarray> self._adam_step_array)

    cdef _dx_view(self, int n):
        return self._dx_array[:n * self.n_in].reshape(n, self.n_in)

    # -- input checks ---------------------------------------------------------

    cdef tuple _check(self, X, y, sample_weight, bint need_y):
        """Return (X, y, sample_weight, y_is_labels) in kernel-ready form.

        The compiled fast check accepts arrays already in that form; the
        Python coerce function handles everything else (or raises).  Value
        checks run here in compiled loops either way.
        """
        cdef bint labels = False
        if need_y and y is None:
            raise TypeError("y is required: the targets for X (an array of values, or of "
                            "class labels for cross-entropy), got None")
        if not self._fast_ok(X, y, sample_weight, need_y):
            X, y, sample_weight = self.coerce(X, y, sample_weight)
            if not self._fast_ok(X, y, sample_weight, need_y):
                raise RuntimeError("internal error: coerce returned arrays the core cannot read")
        if need_y and cnp.PyArray_TYPE(<cnp.ndarray> y) == cnp.NPY_INTP:
            labels = True
        if not need_y:
            y = None
        if self.is_double:
            check_values(X, y, sample_weight, labels, self.layout.loss, self.n_out,
                         <double*> NULL)
        else:
            check_values(X, y, sample_weight, labels, self.layout.loss, self.n_out,
                         <float*> NULL)
        return X, y, sample_weight, labels

    cdef bint _fast_ok(self, X, y, sample_weight, bint need_y):
        cdef intp_t* dims
        cdef intp_t n
        if not ready(X, self.typenum, 2):
            return False
        dims = cnp.PyArray_DIMS(<cnp.ndarray> X)
        n = dims[0]
        if n < 1 or n > INT_MAX or dims[1] != self.n_in:
            return False
        if need_y:
            if self.layout.loss == CROSS_ENTROPY and ready(y, cnp.NPY_INTP, 1):
                if cnp.PyArray_DIMS(<cnp.ndarray> y)[0] != n:
                    return False
            elif ready(y, self.typenum, 2):
                dims = cnp.PyArray_DIMS(<cnp.ndarray> y)
                if dims[0] != n or dims[1] != self.n_out:
                    return False
            elif self.n_out == 1 and ready(y, self.typenum, 1):
                if cnp.PyArray_DIMS(<cnp.ndarray> y)[0] != n:
                    return False
            else:
                return False
        if sample_weight is not None:
            if not ready(sample_weight, self.typenum, 1):
                return False
            if cnp.PyArray_DIMS(<cnp.ndarray> sample_weight)[0] != n:
                return False
        return True

    cdef Batch _batch(self, X, y, sample_weight, bint labels):
        """The Batch of checked arrays (from _check); the caller keeps them alive."""
        cdef Batch batch
        batch.X = data_pointer(X)
        batch.Y = NULL if labels else data_pointer(y)
        batch.labels = <intp_t*> data_pointer(y) if labels else NULL
        batch.sample_weight = data_pointer(sample_weight)
        batch.n_rows = <int> cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        batch.weight_total = (weight_total(sample_weight, self.is_double)
                              if sample_weight is not None else batch.n_rows)
        return batch

    # -- entry points ---------------------------------------------------------

    def predict(self, X):
        """A_L (n, n_out) for X (n, n_in); a new array."""
        X, _, _, _ = self._check(X, None, None, False)
        cdef Call call
        call.batch = self._batch(X, None, None, False)
        cdef cnp.npy_intp dims[2]
        dims[0] = call.batch.n_rows
        dims[1] = self.n_out
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        call.out = cnp.PyArray_DATA(<cnp.ndarray> out)
        self._locked(_predict_work, &call)
        check_debug_violations()
        return out

    def loss(self, X, y, sample_weight=None):
        """Weighted mean loss of the batch (a float); the network is unchanged."""
        X, y, sample_weight, labels = self._check(X, y, sample_weight, True)
        cdef Call call
        call.batch = self._batch(X, y, sample_weight, labels)
        self._locked(_loss_work, &call)
        check_debug_violations()
        return call.loss

    def loss_and_grad(self, X, y, sample_weight=None, bint input_grad=False):
        """Loss of the batch; dW, db into ``grads`` (and dX into an internal
        buffer, returned as a view, when input_grad).  Returns (loss, dX or None)."""
        X, y, sample_weight, labels = self._check(X, y, sample_weight, True)
        cdef Call call
        call.batch = self._batch(X, y, sample_weight, labels)
        call.input_grad = input_grad
        dX = self._locked(_gradient_work, &call)
        check_debug_violations()
        raise_if_not_finite(call.loss)
        return call.loss, dX

    def train_step(self, X, y, sample_weight, double lr):
        """One SGD step fused into the backward pass; returns the loss before it.

        Raises FloatingPointError, leaving the parameters untouched, when the
        loss is not finite or the update could overflow.
        """
        if not (lr >= 0 and isfinite(lr)):
            raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
        X, y, sample_weight, labels = self._check(X, y, sample_weight, True)
        cdef Call call
        call.batch = self._batch(X, y, sample_weight, labels)
        call.lr = lr
        self._locked(_sgd_work, &call)
        check_debug_violations()
        raise_if_not_finite(call.loss)
        if call.refused:
            raise FloatingPointError(
                f"the SGD update could overflow {'float64' if self.is_double else 'float32'} "
                f"(learning rate {lr:g} too large for gradients this size); "
                "the parameters are unchanged")
        return call.loss

    def backward_output(self, X, grad_output, bint input_grad=False):
        """Backpropagate a user-supplied dL/dA_L (n, n_out) through the network
        at X: dW, db into ``grads``; returns dX (a view) or None."""
        X, _, _, _ = self._check(X, None, None, False)
        cdef Call call
        call.batch = self._batch(X, None, None, False)
        cdef int n = call.batch.n_rows
        if not ready(grad_output, self.typenum, 2) or \
                cnp.PyArray_DIMS(<cnp.ndarray> grad_output)[0] != n or \
                cnp.PyArray_DIMS(<cnp.ndarray> grad_output)[1] != self.n_out:
            raise ValueError(f"grad_output must be a C-contiguous ({n}, {self.n_out}) array "
                             "of the network's dtype")
        check_finite("grad_output", grad_output, self.is_double,
                     "NaN or infinity; gradients must be finite")
        call.grad_output = data_pointer(grad_output)
        call.input_grad = input_grad
        dX = self._locked(_backward_output_work, &call)
        check_debug_violations()
        return dX

    # -- parameters -----------------------------------------------------------

    def read_params(self, out, source=None):
        """Copy the parameters (or ``source``) into ``out`` holding the lock:
        a snapshot taken between two calls (whole steps, whole batches of an
        epoch), never in the middle of another thread's update.  Returns
        ``out``.

        out: a writeable C-contiguous (n_params,) array of the network's
        dtype.  source: None (the parameters), or another such vector that
        this network's calls update (an optimizer's state).
        """
        cdef Call call
        if not ready(out, self.typenum, 1) or \
                cnp.PyArray_DIMS(<cnp.ndarray> out)[0] != self.n_params or \
                not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> out):
            raise ValueError(f"out must be a writeable contiguous vector of {self.n_params} "
                             "values of the network's dtype")
        if source is None:
            source = self.params
        elif not ready(source, self.typenum, 1) or \
                cnp.PyArray_DIMS(<cnp.ndarray> source)[0] != self.n_params:
            raise ValueError(f"source must be a contiguous vector of {self.n_params} "
                             "values of the network's dtype")
        if _shares_memory(out, source):
            raise ValueError("out must not overlap the array it copies")
        call.out = cnp.PyArray_DATA(<cnp.ndarray> out)
        call.values = cnp.PyArray_DATA(<cnp.ndarray> source)
        call.count = self.n_params
        self._locked(_read_params_work, &call)
        return out

    def write_params(self, values, target=None, mask=None):
        """Copy ``values`` into ``target`` (the parameters, or a view of part
        of them such as one layer's W) holding the lock, so that no other
        thread's call sees a partial write and no update of another thread
        is half overwritten.

        values: a C-contiguous 1-D array of the network's dtype, every
        value finite.  target: None (all of ``params``) or a C-contiguous
        view into ``params`` of as many values, in their order.  mask:
        None, or a C-contiguous bool vector as long as values: only values
        where it is True are copied (the others keep the network's values).
        """
        cdef Call call
        cdef Py_ssize_t count, itemsize = sizeof(double) if self.is_double else sizeof(float)
        cdef Py_ssize_t start = 0
        if not ready(values, self.typenum, 1):
            raise ValueError("values must be a contiguous vector of the network's dtype")
        count = cnp.PyArray_DIMS(<cnp.ndarray> values)[0]
        if target is not None:
            if not (cnp.PyArray_Check(target) and cnp.PyArray_TYPE(<cnp.ndarray> target) == self.typenum
                    and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> target)):
                raise ValueError("target must be a C-contiguous view of the network's parameters")
            start = <char*> cnp.PyArray_DATA(<cnp.ndarray> target) - <char*> self.params_data
            if start < 0 or start % itemsize != 0 or \
                    start // itemsize + cnp.PyArray_SIZE(<cnp.ndarray> target) > self.n_params:
                raise ValueError("target must be a view of the network's parameters")
            start //= itemsize
            if cnp.PyArray_SIZE(<cnp.ndarray> target) != count:
                raise ValueError(f"target holds {cnp.PyArray_SIZE(<cnp.ndarray> target)} values; "
                                 f"got {count}")
        elif count != self.n_params:
            raise ValueError(f"values must hold the {self.n_params} parameters; got {count}")
        if mask is not None and (not ready(mask, cnp.NPY_BOOL, 1)
                                 or cnp.PyArray_DIMS(<cnp.ndarray> mask)[0] != count):
            raise ValueError(f"mask must be a contiguous vector of {count} bools")
        check_finite("values", values, self.is_double, "NaN or infinity; parameters must be finite")
        if _shares_memory(values, self.params):
            # (A copy: the lock would not stop the source changing.)
            values = values.copy()
        call.values = data_pointer(values)
        call.mask = data_pointer(mask)
        call.offset = start
        call.count = count
        self._locked(_write_params_work, &call)

    # -- training -------------------------------------------------------------

    def check_batch(self, X, y, sample_weight=None):
        """(X, y, sample_weight) converted and checked as a training step would;
        used to validate a whole data set once before training on it."""
        X, y, sample_weight, _ = self._check(X, y, sample_weight, True)
        return X, y, sample_weight

    cdef void* _state_pointer(self, state, str name) except? NULL:
        """Data pointer of an optimizer state vector, after checking it."""
        if not ready(state, self.typenum, 1) or \
                cnp.PyArray_DIMS(<cnp.ndarray> state)[0] != self.n_params:
            raise ValueError(f"optimizer {name} must be a contiguous vector of {self.n_params} "
                             f"values of the network's dtype")
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> state):
            raise ValueError(f"optimizer {name} must be writeable")
        return cnp.PyArray_DATA(<cnp.ndarray> state)

    cdef Optimizer _optimizer(self, dict settings, long long step, moment,
                              second_moment) except *:
        """The Optimizer of one update or epoch, its state vectors checked."""
        cdef Optimizer opt
        opt.settings = optimizer_settings(settings)
        if step < 0:
            raise ValueError("optimizer step count must be >= 0")
        opt.step = step
        opt.velocity = NULL
        opt.exp_avg = NULL
        opt.exp_avg_sq = NULL
        opt.adam_step = NULL
        if opt.settings.kind == SGD and opt.settings.momentum != 0:
            opt.velocity = self._state_pointer(moment, "momentum buffer")
        elif opt.settings.kind == ADAM:
            opt.exp_avg = self._state_pointer(moment, "first moment (exp_avg)")
            opt.exp_avg_sq = self._state_pointer(second_moment, "second moment (exp_avg_sq)")
        return opt

    def optimizer_step(self, dict settings not None, long long step, moment=None,
                       second_moment=None):
        """Apply one optimizer update from ``grads`` in place; returns the new
        step count.

        settings: by name, see OPTIMIZER_SETTINGS ("fused_sgd" runs as "sgd":
        the gradients are already stored).  moment: SGD's momentum buffer or
        Adam's exp_avg; second_moment: Adam's exp_avg_sq (n_params values of
        the network's dtype, updated in place).
        """
        cdef Call call
        call.optimizer = self._optimizer(settings, step, moment, second_moment)
        if call.optimizer.settings.kind == FUSED_SGD:
            call.optimizer.settings.kind = SGD
        self._locked(_optimizer_work, &call)
        check_debug_violations()
        if not call.finite:
            raise FloatingPointError(
                f"the update would make parameters or optimizer state NaN or infinite "
                f"(learning rate {call.optimizer.settings.lr:g} too large for gradients "
                "this size?); nothing was changed")
        return call.optimizer.step

    def train_epoch(self, X, y, sample_weight, order, int batch_size, dict settings not None,
                    long long step, moment, second_moment, EpochProgress progress not None):
        """One epoch of minibatch training, entirely in compiled code.

        X, y, sample_weight must come from :meth:`check_batch`.  order is a
        permutation of the rows (intp) or None for the stored order.
        settings, step, moment, second_moment: as for :meth:`optimizer_step`.
        ``progress`` says how far the epoch got, after the call or when it
        raises (see EpochProgress).  Returns True, or False when a batch's
        loss was not finite (training stopped before that batch changed
        anything).  Between groups of batches the lock is released and
        signal handlers (Ctrl-C) run: other threads' calls, and handlers,
        may use the network there, between two whole batches.
        """
        cdef Call call
        cdef Py_ssize_t n, macs = 0
        cdef int i
        if not self._fast_ok(X, y, sample_weight, True):
            raise ValueError("train_epoch needs arrays prepared by check_batch")
        n = cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if order is not None and (not ready(order, cnp.NPY_INTP, 1)
                                  or cnp.PyArray_DIMS(<cnp.ndarray> order)[0] != n):
            raise ValueError(f"order must be a permutation of {n} intp row indices")
        call.optimizer = self._optimizer(settings, step, moment, second_moment)
        call.batch = self._batch(X, y, sample_weight,
                                 cnp.PyArray_TYPE(<cnp.ndarray> y) == cnp.NPY_INTP)
        call.order = <intp_t*> data_pointer(order)
        # Release the lock and run signal handlers about every 2e8 multiply-adds.
        for i in range(self.layout.n_layers):
            macs += <Py_ssize_t> self.layout.sizes[i] * self.layout.sizes[i + 1]
        call.max_batches = max(1, min(65536, <Py_ssize_t> (2e8 / (3.0 * macs * batch_size))))
        call.batch_size = <int> min(<Py_ssize_t> batch_size, n)
        call.totals.rows = 0
        call.totals.loss_sum = 0
        call.totals.weight_sum = 0
        call.status = 0
        try:
            self._locked(_epoch_work, &call)
        finally:
            progress.step = call.optimizer.step
            progress.loss_sum = call.totals.loss_sum
            progress.weight_sum = call.totals.weight_sum
            progress.rows = call.totals.rows
        check_debug_violations()
        return call.status == 0


# -- the work of each entry point, run under the lock --------------------------

cdef object _predict_work(Network net, Call* call):
    net._ensure_capacity(min(call.batch.n_rows, max(net.capacity, EVAL_CHUNK)))
    with nogil:
        if net.is_double:
            predict_rows(&net.layout, <double*> net.params_data, &call.batch, &net.work,
                         <int> net.capacity, <double*> call.out)
        else:
            predict_rows(&net.layout, <float*> net.params_data, &call.batch, &net.work,
                         <int> net.capacity, <float*> call.out)


cdef object _loss_work(Network net, Call* call):
    net._ensure_capacity(min(call.batch.n_rows, max(net.capacity, EVAL_CHUNK)))
    with nogil:
        if net.is_double:
            call.loss = loss_rows(&net.layout, <double*> net.params_data, &call.batch,
                                  &net.work, <int> net.capacity)
        else:
            call.loss = loss_rows(&net.layout, <float*> net.params_data, &call.batch,
                                  &net.work, <int> net.capacity)


cdef object _gradient_work(Network net, Call* call):
    """Returns the dX view when asked for and the loss is finite."""
    net._reserve(call.batch.n_rows, call.input_grad)
    with nogil:
        if net.is_double:
            call.loss = gradient_step(&net.layout, <double*> net.params_data, &call.batch,
                                      &net.work, <double*> net.grads_data,
                                      <double*> net.work.dX if call.input_grad else NULL)
        else:
            call.loss = gradient_step(&net.layout, <float*> net.params_data, &call.batch,
                                      &net.work, <float*> net.grads_data,
                                      <float*> net.work.dX if call.input_grad else NULL)
    if call.input_grad and isfinite(call.loss):
        return net._dx_view(call.batch.n_rows)
    return None


cdef object _sgd_work(Network net, Call* call):
    net._reserve(call.batch.n_rows, False)
    with nogil:
        if net.is_double:
            call.loss = _scan_and_sgd_step(&net.layout, <double*> net.params_data, call,
                                           &net.work)
        else:
            call.loss = _scan_and_sgd_step(&net.layout, <float*> net.params_data, call,
                                           &net.work)


cdef inline double _scan_and_sgd_step(Layout* L, floating* params, Call* call,
                                      const Workspace* work) noexcept nogil:
    # The update guard starts from a fresh scan of the parameters: they may
    # have been written from Python since the last call.
    scan_parameter_bounds(L, params)
    return sgd_step(L, params, &call.batch, work, <floating> call.lr, &call.refused)


cdef object _backward_output_work(Network net, Call* call):
    """Returns the dX view when asked for."""
    net._reserve(call.batch.n_rows, call.input_grad)
    with nogil:
        if net.is_double:
            backward_from_output(&net.layout, <double*> net.params_data, &call.batch, &net.work,
                                 <const double*> call.grad_output, <double*> net.grads_data,
                                 <double*> net.work.dX if call.input_grad else NULL)
        else:
            backward_from_output(&net.layout, <float*> net.params_data, &call.batch, &net.work,
                                 <const float*> call.grad_output, <float*> net.grads_data,
                                 <float*> net.work.dX if call.input_grad else NULL)
    return net._dx_view(call.batch.n_rows) if call.input_grad else None


cdef object _optimizer_work(Network net, Call* call):
    if call.optimizer.settings.kind == ADAM:
        call.optimizer.adam_step = net._adam_step_buffer()
    with nogil:
        if net.is_double:
            call.finite = optimizer_update(&net.layout, &call.optimizer,
                                           <double*> net.params_data, <double*> net.grads_data)
        else:
            call.finite = optimizer_update(&net.layout, &call.optimizer,
                                           <float*> net.params_data, <float*> net.grads_data)


cdef object _read_params_work(Network net, Call* call):
    cdef size_t itemsize = sizeof(double) if net.is_double else sizeof(float)
    with nogil:
        memcpy(call.out, call.values, call.count * itemsize)


cdef object _write_params_work(Network net, Call* call):
    with nogil:
        if net.is_double:
            _masked_copy(<double*> net.params_data + call.offset, <const double*> call.values,
                         <const cnp.npy_bool*> call.mask, call.count)
        else:
            _masked_copy(<float*> net.params_data + call.offset, <const float*> call.values,
                         <const cnp.npy_bool*> call.mask, call.count)


cdef inline void _masked_copy(floating* target, const floating* values, const cnp.npy_bool* mask,
                              Py_ssize_t count) noexcept nogil:
    """target[k] = values[k] for k < count where mask[k] (everywhere without a mask)."""
    cdef Py_ssize_t k
    if mask == NULL:
        memcpy(target, values, count * sizeof(floating))
        return
    for k in range(count):
        if mask[k]:
            target[k] = values[k]


cdef object _epoch_work(Network net, Call* call):
    """One group of at most max_batches batches; sets call.more when the
    epoch has batches left, so that Network._locked runs it again after
    releasing the lock and running signal handlers.  The epoch's state
    between groups (totals, optimizer step) is in call, so an exception a
    handler raises leaves it there for the caller."""
    net._ensure_capacity(call.batch_size)
    net._ensure_gather(call.batch_size)
    if call.optimizer.settings.kind == ADAM:
        call.optimizer.adam_step = net._adam_step_buffer()
    with nogil:
        if net.is_double:
            _epoch_group(&net.layout, call, <double*> net.params_data,
                         <double*> net.grads_data, &net.work)
        else:
            _epoch_group(&net.layout, call, <float*> net.params_data,
                         <float*> net.grads_data, &net.work)
    call.more = call.totals.rows < call.batch.n_rows and call.status == 0


cdef inline void _epoch_group(Layout* L, Call* call, floating* params, floating* grads,
                              const Workspace* work) noexcept nogil:
    # The update guard starts from a fresh scan of the parameters: another
    # call may have written them between two groups.
    scan_parameter_bounds(L, params)
    call.status = epoch_batches(L, &call.optimizer, params, grads, &call.batch, call.order,
                                call.batch_size, call.max_batches, work, &call.totals)


# -- helpers -------------------------------------------------------------------

cdef bint _shares_memory(a, b):
    """Whether two arrays (or None) may share memory."""
    return a is not None and b is not None and np.may_share_memory(a, b)


cdef _check_codes(activation_codes, int loss_code):
    """Refuse codes the kernels do not implement (see the tables above)."""
    # (Indexed from the front: this build does not wrap negative indices.)
    codes = list(activation_codes)
    cdef Py_ssize_t last = len(codes) - 1
    hidden = set(HIDDEN_ACTIVATIONS.values())
    for code in codes[:last]:
        if code not in hidden:
            raise ValueError(f"unknown hidden activation code {code!r}; see HIDDEN_ACTIVATIONS")
    outputs = {code: name for name, code in OUTPUT_ACTIVATIONS.items()}
    losses = {code: name for name, code in LOSSES.items()}
    if (outputs.get(codes[last]), losses.get(loss_code)) not in VALID_PAIRS:
        raise ValueError(f"output activation code {codes[last]!r} with loss code {loss_code!r} "
                         "is not one of VALID_PAIRS")


def _debug_selftest():
    """Record one out-of-bounds block and report it: raises AssertionError in
    a debug build, does nothing in a release build (the checks compile out).
    Used by the tests to show the debug checks are live."""
    with nogil:
        debug_range(5, 10, 12)
    check_debug_violations()


def _set_blas_threads_hook(size_t address):
    """Install OpenBLAS's openblas_set_num_threads_local (its address, from
    pybackprop/_blasinfo.py; 0 removes it).  With it, products below
    BLAS_SINGLE_THREAD_MACS run on one BLAS thread of the calling thread."""
    set_blas_threads_hook(<void*> address)


def _blas_threads_hook_installed():
    """Whether _set_blas_threads_hook installed a function."""
    return blas_set_threads_local != NULL
