# The optimizers' update of the flat parameter vector from grads: PyTorch's
# SGD (momentum, dampening, Nesterov, weight decay) and Adam/AdamW, weight
# decay on the weights only.  pybackprop/optim.py holds the settings and the
# state vectors; they reach these kernels as an Optimizer struct.
#
# Every update is two passes: a check pass computes every new value without
# storing it, and only when all are finite does the apply pass store them, so
# an overflowing update can never corrupt the network.  Each pass is its own
# loop: GCC vectorised neither branch of one loop with an 'if write' inside
# (an Adam update took 121 us instead of 33 on 19,210 parameters).  Adam's
# check pass stores each step (its square root and two divisions were most of
# an update's cost) and the apply pass takes it from there.

from cython cimport floating
from libc.math cimport pow, sqrt

from _layout cimport Layout
from _scans cimport nonfinite


cdef enum OptimizerKind:
    FUSED_SGD = 0     # plain SGD, applied inside the backward pass (apply_sgd)
    SGD = 1           # SGD with momentum / Nesterov / weight decay
    ADAM = 2          # Adam, or AdamW when decoupled


# What pybackprop/optim.py configures, filled by field name (see
# optimizer_settings in csrc/_core.pyx); fields a kind does not use are 0.
cdef struct OptimizerSettings:
    int kind              # OptimizerKind
    double lr
    double momentum       # SGD
    double dampening      # SGD
    bint nesterov         # SGD
    double weight_decay   # SGD and Adam: applied to the weights only
    double beta1          # Adam
    double beta2          # Adam
    double eps            # Adam
    bint decoupled        # Adam: AdamW's decay of the parameters


cdef struct Optimizer:
    OptimizerSettings settings
    long long step        # updates applied so far
    void* velocity        # SGD with momentum: the momentum buffer (n_params,)
    void* exp_avg         # Adam: first moment m (n_params,)
    void* exp_avg_sq      # Adam: second moment v (n_params,)
    void* adam_step       # Adam: (n_params,) scratch, the check pass's steps


cdef inline bint sgd_check(const Optimizer* opt, const floating* p, const floating* g,
                           const floating* velocity, Py_ssize_t count,
                           double weight_decay) noexcept nogil:
    """Whether SGD's update of one segment (opt.step already counts it) keeps
    every parameter and velocity finite; nothing is stored."""
    cdef Py_ssize_t i
    cdef floating gi, v_new, p_new
    cdef floating lr = <floating> opt.settings.lr, wd = <floating> weight_decay
    cdef floating mu = <floating> opt.settings.momentum
    cdef floating damp = <floating> (1 - opt.settings.dampening)
    cdef int bad = 0
    # Loop-invariant settings in locals: read through opt, the compiler must
    # assume a store may change them.  Within a loop they only select
    # between values (vector blends); only momentum, which decides whether
    # velocity exists, splits the loop.
    cdef bint decay = weight_decay != 0, first = opt.step == 1
    cdef bint nesterov = opt.settings.nesterov
    if opt.settings.momentum == 0:
        for i in range(count):
            gi = g[i] + wd * p[i] if decay else g[i]
            p_new = p[i] - lr * gi
            bad |= nonfinite(p_new)
        return not bad
    for i in range(count):
        gi = g[i] + wd * p[i] if decay else g[i]
        v_new = gi if first else mu * velocity[i] + damp * gi
        p_new = p[i] - lr * (gi + mu * v_new if nesterov else v_new)
        bad |= nonfinite(p_new) | nonfinite(v_new)
    return not bad


cdef inline void sgd_apply(const Optimizer* opt, floating* p, const floating* g,
                           floating* velocity, Py_ssize_t count,
                           double weight_decay) noexcept nogil:
    """PyTorch's SGD on one segment, step t = opt.step:
    g' = g + wd p; v := g' on the first step, else v := mu v + (1 - dampening) g';
    d = g' + mu v (Nesterov) or v (or g' without momentum); p := p - lr d."""
    cdef Py_ssize_t i
    cdef floating gi, v_new
    cdef floating lr = <floating> opt.settings.lr, wd = <floating> weight_decay
    cdef floating mu = <floating> opt.settings.momentum
    cdef floating damp = <floating> (1 - opt.settings.dampening)
    cdef bint decay = weight_decay != 0, first = opt.step == 1
    cdef bint nesterov = opt.settings.nesterov
    if opt.settings.momentum == 0:
        for i in range(count):
            gi = g[i] + wd * p[i] if decay else g[i]
            p[i] = p[i] - lr * gi
        return
    for i in range(count):
        gi = g[i] + wd * p[i] if decay else g[i]
        v_new = gi if first else mu * velocity[i] + damp * gi
        p[i] = p[i] - lr * (gi + mu * v_new if nesterov else v_new)
        velocity[i] = v_new


cdef inline bint adam_check(const Optimizer* opt, const floating* p, const floating* g,
                            const floating* m, const floating* v, floating* step_out,
                            Py_ssize_t count, double weight_decay) noexcept nogil:
    """Adam's step of one segment into step_out (what adam_apply subtracts);
    returns whether every new parameter and moment would be finite."""
    cdef Py_ssize_t i
    cdef floating gi, p_i, m_new, v_new, p_new, step
    cdef floating b1 = <floating> opt.settings.beta1, b2 = <floating> opt.settings.beta2
    cdef floating one_b1 = <floating> (1 - opt.settings.beta1)
    cdef floating one_b2 = <floating> (1 - opt.settings.beta2)
    cdef floating step_size = <floating> (opt.settings.lr
                                          / (1 - pow(opt.settings.beta1, <double> opt.step)))
    cdef floating bc2_sqrt = <floating> sqrt(1 - pow(opt.settings.beta2, <double> opt.step))
    cdef floating eps = <floating> opt.settings.eps, wd = <floating> weight_decay
    cdef floating shrink = <floating> (1 - opt.settings.lr * weight_decay)
    cdef int bad = 0
    cdef bint decay = weight_decay != 0, decoupled = opt.settings.decoupled
    for i in range(count):
        gi = g[i]
        p_i = p[i]
        if decay:
            if decoupled:
                p_i = p_i * shrink
            else:
                gi = gi + wd * p_i
        m_new = b1 * m[i] + one_b1 * gi
        v_new = b2 * v[i] + one_b2 * gi * gi
        step = step_size * (m_new / (sqrt(v_new) / bc2_sqrt + eps))
        step_out[i] = step
        p_new = p_i - step
        bad |= nonfinite(p_new) | nonfinite(m_new) | nonfinite(v_new)
    return not bad


cdef inline void adam_apply(const Optimizer* opt, floating* p, const floating* g,
                            floating* m, floating* v, const floating* step,
                            Py_ssize_t count, double weight_decay) noexcept nogil:
    """PyTorch's Adam/AdamW on one segment, step t = opt.step:
    AdamW: p := p (1 - lr wd); Adam: g' = g + wd p.
    m := b1 m + (1 - b1) g'; v := b2 v + (1 - b2) g'^2;
    p := p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps),
    the last term taken from step (adam_check computed it).  The decay lines
    repeat adam_check's: each pass is its own loop (see the header)."""
    cdef Py_ssize_t i
    cdef floating gi, p_i
    cdef floating b1 = <floating> opt.settings.beta1, b2 = <floating> opt.settings.beta2
    cdef floating one_b1 = <floating> (1 - opt.settings.beta1)
    cdef floating one_b2 = <floating> (1 - opt.settings.beta2)
    cdef floating wd = <floating> weight_decay
    cdef floating shrink = <floating> (1 - opt.settings.lr * weight_decay)
    cdef bint decay = weight_decay != 0, decoupled = opt.settings.decoupled
    for i in range(count):
        gi = g[i]
        p_i = p[i]
        if decay:
            if decoupled:
                p_i = p_i * shrink
            else:
                gi = gi + wd * p_i
        m[i] = b1 * m[i] + one_b1 * gi
        v[i] = b2 * v[i] + one_b2 * gi * gi
        p[i] = p_i - step[i]


cdef inline bint optimizer_check(const Layout* L, const Optimizer* opt, const floating* params,
                                 const floating* grads) noexcept nogil:
    """The check pass over every layer's W (decayed) and b (not decayed)."""
    cdef int i
    cdef Py_ssize_t w, b
    cdef bint finite = True
    cdef double wd = opt.settings.weight_decay
    cdef const floating* velocity = <const floating*> opt.velocity
    cdef const floating* m = <const floating*> opt.exp_avg
    cdef const floating* v = <const floating*> opt.exp_avg_sq
    cdef floating* step = <floating*> opt.adam_step
    for i in range(L.n_layers):
        w = L.w_off[i]
        b = L.b_off[i]
        if opt.settings.kind == ADAM:
            finite &= adam_check(opt, params + w, grads + w, m + w, v + w, step + w, b - w, wd)
            finite &= adam_check(opt, params + b, grads + b, m + b, v + b, step + b,
                                 L.sizes[i + 1], 0)
        else:
            finite &= sgd_check(opt, params + w, grads + w, velocity + w, b - w, wd)
            finite &= sgd_check(opt, params + b, grads + b, velocity + b, L.sizes[i + 1], 0)
    return finite


cdef inline void optimizer_apply(const Layout* L, const Optimizer* opt, floating* params,
                                 const floating* grads) noexcept nogil:
    """The apply pass over every layer's W (decayed) and b (not decayed)."""
    cdef int i
    cdef Py_ssize_t w, b
    cdef double wd = opt.settings.weight_decay
    cdef floating* velocity = <floating*> opt.velocity
    cdef floating* m = <floating*> opt.exp_avg
    cdef floating* v = <floating*> opt.exp_avg_sq
    cdef const floating* step = <const floating*> opt.adam_step
    for i in range(L.n_layers):
        w = L.w_off[i]
        b = L.b_off[i]
        if opt.settings.kind == ADAM:
            adam_apply(opt, params + w, grads + w, m + w, v + w, step + w, b - w, wd)
            adam_apply(opt, params + b, grads + b, m + b, v + b, step + b, L.sizes[i + 1], 0)
        else:
            sgd_apply(opt, params + w, grads + w, velocity + w, b - w, wd)
            sgd_apply(opt, params + b, grads + b, velocity + b, L.sizes[i + 1], 0)


cdef inline bint optimizer_update(const Layout* L, Optimizer* opt, floating* params,
                                  const floating* grads) noexcept nogil:
    """One optimizer update of every parameter from grads, in place.

    If any new value would be NaN or infinite, nothing changes (not even the
    step count) and False is returned."""
    opt.step += 1
    if not optimizer_check(L, opt, params, grads):
        opt.step -= 1
        return False
    optimizer_apply(L, opt, params, grads)
    return True
