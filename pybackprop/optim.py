"""Optimizers and learning-rate schedules.

An optimizer is bound to one network (as PyTorch's is bound to parameters)
and updates it in place from the gradients of the last
:meth:`MLP.loss_and_grad` or :meth:`MLP.backward` call, in one compiled,
fused pass over the flat parameter vector::

    opt = pybackprop.optim.Adam(net, lr=1e-3)
    for X_batch, y_batch in batches:
        net.loss_and_grad(X_batch, y_batch)
        opt.step()

Update rules follow PyTorch's ``torch.optim.SGD`` and ``torch.optim.Adam`` /
``AdamW`` exactly, with one difference: weight decay applies to the weights
only, never to the biases (PyTorch decays every parameter it is given;
scikit-learn's ``alpha`` also spares the biases).  Differences from
scikit-learn's MLP: scikit-learn's ``alpha`` adds ``alpha * W / n_samples``
per batch to the gradient of a loss it reports with an ``alpha/2 ||W||^2 /
n_samples`` term, and its momentum update is ``v := mu v - lr g``, which
equals PyTorch's rule only for a constant learning rate.
"""

import math
import numbers

import numpy as np

from . import _validation

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "ExponentialLR", "CosineLR"]


def _real(name, value, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


class Optimizer:
    """Base class: a learning rate, an optional schedule and per-parameter state.

    Parameters
    ----------
    net : MLP
        The network whose parameters are updated in place.
    lr : float
        Base learning rate, finite and >= 0.
    schedule : callable, optional
        ``schedule(epoch) -> factor``; the learning rate used in an epoch is
        ``lr * schedule(epoch)`` (see :class:`StepLR`, :class:`ExponentialLR`,
        :class:`CosineLR`).  :meth:`set_epoch` applies it; ``fit`` calls it
        at the start of every epoch.
    """

    kind = None

    def __init__(self, net, lr, schedule=None):
        from .network import MLP

        if not isinstance(net, MLP):
            raise TypeError(f"optimizer needs a pybackprop.MLP, got {type(net).__name__}")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch -> factor), got {schedule!r}")
        self.net = net
        self.base_lr = _validation.check_learning_rate(lr)
        self.lr = self.base_lr
        self.schedule = schedule
        self.step_count = 0

    def _state(self):
        """The state vectors passed to the compiled update (None when unused)."""
        return None, None

    def _config(self):
        raise NotImplementedError

    def set_epoch(self, epoch):
        """Set ``lr`` for a 0-based epoch from the schedule (no-op without one)."""
        if self.schedule is not None:
            factor = self.schedule(epoch)
            if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Real) \
                    or not math.isfinite(factor) or factor < 0:
                raise ValueError(f"schedule({epoch}) must return a finite factor >= 0, got {factor!r}")
            self.lr = self.base_lr * float(factor)
        return self.lr

    def step(self):
        """Update the network from its gradient buffers (the last
        ``loss_and_grad`` or ``backward``), in place."""
        self.lr = _validation.check_learning_rate(self.lr)
        state1, state2 = self._state()
        self.step_count = self.net._core.optimizer_step(self._config(), self.step_count, state1, state2)

    def zero_grad(self):
        """Zero the network's gradient buffers.

        pybackprop's ``loss_and_grad`` overwrites the gradients rather than
        accumulating them, so a training loop does not need this; it exists
        for loops written the PyTorch way and for clearing stale gradients.
        """
        self.net._core.grads[...] = 0

    def state_dict(self):
        """Hyperparameters, step count and state vectors (copies), as a flat dict."""
        state = {"kind": type(self).__name__, "lr": self.lr, "base_lr": self.base_lr,
                 "step": self.step_count}
        state.update(self._hyperparameters())
        for name, value in zip(("state1", "state2"), self._state()):
            if value is not None:
                state[name] = value.copy()
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (checked before anything changes)."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"state is for optimizer {state.get('kind')!r}, not {type(self).__name__!r}")
        step = state.get("step")
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"optimizer step must be an integer >= 0, got {step!r}")
        lr = _validation.check_learning_rate(state.get("lr", self.lr))
        base_lr = _validation.check_learning_rate(state.get("base_lr", self.base_lr))
        # The saved hyperparameters decide which state vectors exist (SGD has a
        # velocity only with momentum), so they go in first, and come out again
        # if anything else is wrong.
        previous = self._hyperparameters()
        self._set_hyperparameters(**{key: state[key] for key in previous if key in state})
        try:
            arrays = {}
            for name, current in zip(("state1", "state2"), self._state()):
                if current is None:
                    continue
                if name not in state:
                    raise ValueError(f"optimizer state is missing {name!r}")
                value = _validation._as_real_array(state[name], name)
                if value.shape != current.shape:
                    raise ValueError(f"optimizer {name} has shape {value.shape}, expected {current.shape}")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"optimizer {name} must be finite")
                arrays[name] = value
        except (ValueError, TypeError):
            self._set_hyperparameters(**previous)
            raise
        self.lr, self.base_lr, self.step_count = lr, base_lr, int(step)
        for name, current in zip(("state1", "state2"), self._state()):
            if name in arrays:
                current[...] = arrays[name]

    def _hyperparameters(self):
        return {}

    def _set_hyperparameters(self, **hyper):
        for key, value in hyper.items():
            setattr(self, key, value)
        self._check()

    def _check(self):
        pass

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr!r}, {params})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov and weight decay.

    The update of step ``t`` (PyTorch's ``torch.optim.SGD``), per parameter
    ``p`` with gradient ``g``::

        g' = g + weight_decay * p            (weights only, not biases)
        v  = g'                              if t == 1
        v  = momentum * v + (1 - dampening) * g'   otherwise
        d  = g' + momentum * v  if nesterov else  v   (d = g' without momentum)
        p  = p - lr * d

    Plain SGD (no momentum, no weight decay) inside ``fit`` is fused into
    the backward pass: each layer's ``dW`` is applied by the matrix product
    that computes it.

    Parameters
    ----------
    net : MLP
    lr : float, default 0.01
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False
        Requires ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float >= 0, default 0
    schedule : callable, optional
        See :class:`Optimizer`.
    """

    kind = "sgd"

    def __init__(self, net, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, schedule=None):
        super().__init__(net, lr, schedule)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self._check()
        self._velocity = np.zeros(net.n_params, dtype=net.dtype)

    def _check(self):
        self.momentum = _real("momentum", self.momentum, 0.0, 1.0, high_open=True)
        self.dampening = _real("dampening", self.dampening, 0.0, 1.0)
        self.weight_decay = _real("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        self.nesterov = bool(self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening == 0")

    def _hyperparameters(self):
        return {"momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _state(self):
        return (self._velocity if self.momentum != 0 else None), None

    @property
    def fused(self):
        """True when the update can run inside the backward pass."""
        return self.momentum == 0 and self.weight_decay == 0

    def _config(self, fused=False):
        """The settings by name, as the compiled core reads them (its
        OPTIMIZER_SETTINGS; the kind is one of its OPTIMIZER_KINDS)."""
        return {"kind": "fused_sgd" if fused and self.fused else "sgd", "lr": self.lr,
                "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba), or AdamW with ``decoupled=True``.

    The update of step ``t`` (PyTorch's ``torch.optim.Adam`` / ``AdamW``)::

        p  = p * (1 - lr * weight_decay)     (AdamW; weights only)
        g' = g + weight_decay * p            (Adam; weights only)
        m  = beta1 * m + (1 - beta1) * g'
        v  = beta2 * v + (1 - beta2) * g'^2
        p  = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    scikit-learn's ``adam`` solver folds both bias corrections into the step
    size and adds ``eps`` to ``sqrt(v)`` before the correction, so its
    effective epsilon is ``eps / sqrt(1 - beta2^t)``; its ``alpha`` is an
    L2 term like ``decoupled=False``.

    Parameters
    ----------
    net : MLP
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float >= 0, default 0
    decoupled : bool, default False
    schedule : callable, optional
    """

    kind = "adam"

    def __init__(self, net, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled=False, schedule=None):
        super().__init__(net, lr, schedule)
        try:
            self.beta1, self.beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.eps = eps
        self.weight_decay = weight_decay
        self.decoupled = decoupled
        self._check()
        self._m = np.zeros(net.n_params, dtype=net.dtype)
        self._v = np.zeros(net.n_params, dtype=net.dtype)

    def _check(self):
        self.beta1 = _real("beta1", self.beta1, 0.0, 1.0, high_open=True)
        self.beta2 = _real("beta2", self.beta2, 0.0, 1.0, high_open=True)
        self.eps = _real("eps", self.eps, 0.0, low_open=True)
        self.weight_decay = _real("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.decoupled, (bool, np.bool_)):
            raise TypeError(f"decoupled must be True or False, got {self.decoupled!r}")
        self.decoupled = bool(self.decoupled)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _hyperparameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay, "decoupled": self.decoupled}

    def _state(self):
        return self._m, self._v

    def _config(self, fused=False):
        """The settings by name, as the compiled core reads them."""
        return {"kind": "adam", "lr": self.lr, "weight_decay": self.weight_decay,
                "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "decoupled": self.decoupled}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01), as ``torch.optim.AdamW``."""

    def __init__(self, net, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 schedule=None):
        super().__init__(net, lr, betas, eps, weight_decay, decoupled=True, schedule=schedule)


def make_optimizer(net, optimizer, lr):
    """An Optimizer from a name ("sgd", "adam", "adamw") or an instance."""
    if isinstance(optimizer, Optimizer):
        if optimizer.net is not net:
            raise ValueError("the optimizer is bound to a different network")
        if lr is not None:
            optimizer.base_lr = optimizer.lr = _validation.check_learning_rate(lr)
        return optimizer
    classes = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
    name = _validation._choice("optimizer", optimizer, classes)
    return classes[name](net) if lr is None else classes[name](net, lr=lr)


# -- schedules: callables epoch -> factor of the base learning rate -----------

class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = _real("gamma", gamma, 0.0)

    def __call__(self, epoch):
        return self.gamma ** (epoch // self.step_size)

    def __repr__(self):
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class ExponentialLR:
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, gamma):
        self.gamma = _real("gamma", gamma, 0.0)

    def __call__(self, epoch):
        return self.gamma ** epoch

    def __repr__(self):
        return f"ExponentialLR(gamma={self.gamma})"


class CosineLR:
    """Cosine annealing from 1 to ``min_factor`` over ``t_max`` epochs, then flat:
    ``min_factor + (1 - min_factor) (1 + cos(pi min(epoch, t_max) / t_max)) / 2``."""

    def __init__(self, t_max, min_factor=0.0):
        if isinstance(t_max, bool) or not isinstance(t_max, numbers.Integral) or t_max < 1:
            raise ValueError(f"t_max must be an integer >= 1, got {t_max!r}")
        self.t_max = int(t_max)
        self.min_factor = _real("min_factor", min_factor, 0.0, 1.0)

    def __call__(self, epoch):
        progress = min(epoch, self.t_max) / self.t_max
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2

    def __repr__(self):
        return f"CosineLR(t_max={self.t_max}, min_factor={self.min_factor})"
