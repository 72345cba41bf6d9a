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

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

import numpy as np

from . import _validation
from ._validation import FloatArray

if TYPE_CHECKING:
    # For annotations only: at run time this module never imports network,
    # which imports it.
    from .network import MLP

#: The optimizer names ``fit`` accepts (see :func:`make_optimizer`).
OptimizerName = Literal["sgd", "adam", "adamw"]
#: ``schedule(epoch) -> factor`` of the base learning rate.
Schedule = Callable[[int], float]

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "StepLR", "ExponentialLR", "CosineLR"]


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

    kind: ClassVar[Optional[str]] = None
    # The names of the vectors _state() returns, in its order, as state_dict() shows them.
    _state_names: ClassVar[tuple[str, ...]] = ()
    # pybackprop 0.1.0 saved them as these, by position; load_state_dict still
    # reads them so that its files keep loading.
    _state_names_0_1_0: ClassVar[tuple[str, ...]] = ("state1", "state2")

    def __init__(self, net: MLP, lr: float, schedule: Optional[Schedule] = None) -> None:
        # Checked by what the update uses rather than by class: this module
        # sits below network.py and never imports it.
        if not all(hasattr(net, name) for name in ("n_params", "dtype", "parameters", "_core")):
            raise TypeError(f"optimizer needs a pybackprop.MLP, got {type(net).__name__}")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch -> factor), got {schedule!r}")
        self.net = net
        self.base_lr = _validation.check_learning_rate(lr)
        self.lr = self.base_lr
        self.schedule = schedule
        self.step_count = 0

    def _state(self) -> tuple[Optional[FloatArray], Optional[FloatArray]]:
        """The state vectors the compiled update reads and writes, as its
        ``moment`` and ``second_moment`` arguments (None when unused)."""
        return None, None

    def _config(self, fused: bool = False) -> dict[str, Any]:
        """The settings by name, as the compiled core reads them (its
        ``OPTIMIZER_SETTINGS``; ``kind`` is one of its ``OPTIMIZER_KINDS``).
        ``fused`` asks for the update inside the backward pass where the
        optimizer allows it."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> float:
        """Set ``lr`` for a 0-based epoch from the schedule (no-op without one)."""
        if self.schedule is not None:
            factor = self.schedule(epoch)
            if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Real) \
                    or not math.isfinite(factor) or factor < 0:
                raise ValueError(f"schedule({epoch}) must return a finite factor >= 0, got {factor!r}")
            self.lr = self.base_lr * float(factor)
        return self.lr

    def step(self) -> None:
        """Update the network from its gradient buffers (the last
        ``loss_and_grad`` or ``backward``), in place."""
        self.lr = _validation.check_learning_rate(self.lr)
        moment, second_moment = self._state()
        self.step_count = self.net._core.optimizer_step(self._config(), self.step_count,
                                                        moment, second_moment)

    def zero_grad(self) -> None:
        """Zero the network's gradient buffers.

        pybackprop's ``loss_and_grad`` overwrites the gradients rather than
        accumulating them, so a training loop does not need this; it exists
        for loops written the PyTorch way and for clearing stale gradients.
        """
        self.net._core.grads[...] = 0

    def _named_state(self) -> list[tuple[str, str, Any]]:
        """(name, name in 0.1.0, live vector) of each state vector in use."""
        named = zip(self._state_names, self._state_names_0_1_0, self._state())
        return [(name, legacy, vector) for name, legacy, vector in named if vector is not None]

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and state vectors (copies), as a flat dict.

        Returns
        -------
        dict
            ``"kind"`` (the class name), ``"lr"``, ``"base_lr"``, ``"step"``,
            the hyperparameters, and the state vectors, each an ndarray
            ``(n_params,)`` in the network's parameter layout and dtype:
            ``"momentum_buffer"`` (SGD with momentum), ``"exp_avg"`` and
            ``"exp_avg_sq"`` (Adam, AdamW), PyTorch's names.
        """
        state = {"kind": type(self).__name__, "lr": self.lr, "base_lr": self.base_lr,
                 "step": self.step_count}
        state.update(self._hyperparameters())
        for name, _, vector in self._named_state():
            state[name] = vector.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (checked before anything changes).

        States saved by pybackprop 0.1.0, whose vectors were named
        ``"state1"`` and ``"state2"``, load too.
        """
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"state is for optimizer {state.get('kind')!r}, not {type(self).__name__!r}")
        step = _validation.check_int("optimizer step", state.get("step"), 0)
        lr = _validation.check_learning_rate(state.get("lr", self.lr))
        base_lr = _validation.check_learning_rate(state.get("base_lr", self.base_lr))
        # The saved hyperparameters decide which state vectors exist (SGD has a
        # velocity only with momentum), so they go in first, and come out again
        # if anything else is wrong.
        previous = self._hyperparameters()
        self._set_hyperparameters(**{key: state[key] for key in previous if key in state})
        try:
            arrays = []
            for name, legacy, current in self._named_state():
                if name not in state and legacy not in state:
                    raise ValueError(f"optimizer state is missing {name!r}")
                value = _validation._as_real_array(state[name if name in state else legacy], name)
                if value.shape != current.shape:
                    raise ValueError(f"optimizer {name} has shape {value.shape}, expected {current.shape}")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"optimizer {name} must be finite")
                arrays.append((current, value))
        except (ValueError, TypeError):
            self._set_hyperparameters(**previous)
            raise
        self.lr, self.base_lr, self.step_count = lr, base_lr, step
        for current, value in arrays:
            current[...] = value

    def _hyperparameters(self) -> dict[str, Any]:
        return {}

    def _set_hyperparameters(self, **hyper: Any) -> None:
        for key, value in hyper.items():
            setattr(self, key, value)
        self._check()

    def _check(self) -> None:
        pass

    def __repr__(self) -> str:
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
    _state_names = ("momentum_buffer",)

    def __init__(self, net: MLP, lr: float = 0.01, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 schedule: Optional[Schedule] = None) -> None:
        super().__init__(net, lr, schedule)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self._check()
        self._velocity = np.zeros(net.n_params, dtype=net.dtype)

    def _check(self):
        self.momentum = _validation.check_real("momentum", self.momentum, 0.0, 1.0, high_open=True)
        self.dampening = _validation.check_real("dampening", self.dampening, 0.0, 1.0)
        self.weight_decay = _validation.check_real("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        self.nesterov = bool(self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening == 0")

    def _hyperparameters(self):
        return {"momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _state(self) -> tuple[Optional[FloatArray], Optional[FloatArray]]:
        return (self._velocity if self.momentum != 0 else None), None

    @property
    def fused(self) -> bool:
        """True when the update can run inside the backward pass."""
        return self.momentum == 0 and self.weight_decay == 0

    def _config(self, fused: bool = False) -> dict[str, Any]:
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
    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, net: MLP, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False,
                 schedule: Optional[Schedule] = None) -> None:
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
        self.beta1 = _validation.check_real("beta1", self.beta1, 0.0, 1.0, high_open=True)
        self.beta2 = _validation.check_real("beta2", self.beta2, 0.0, 1.0, high_open=True)
        self.eps = _validation.check_real("eps", self.eps, 0.0, low_open=True)
        self.weight_decay = _validation.check_real("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.decoupled, (bool, np.bool_)):
            raise TypeError(f"decoupled must be True or False, got {self.decoupled!r}")
        self.decoupled = bool(self.decoupled)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _hyperparameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "weight_decay": self.weight_decay, "decoupled": self.decoupled}

    def _state(self) -> tuple[Optional[FloatArray], Optional[FloatArray]]:
        return self._m, self._v

    def _config(self, fused: bool = False) -> dict[str, Any]:
        return {"kind": "adam", "lr": self.lr, "weight_decay": self.weight_decay,
                "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "decoupled": self.decoupled}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01), as ``torch.optim.AdamW``."""

    def __init__(self, net: MLP, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01,
                 schedule: Optional[Schedule] = None) -> None:
        super().__init__(net, lr, betas, eps, weight_decay, decoupled=True, schedule=schedule)


def make_optimizer(net: MLP, optimizer: OptimizerName | Optimizer,
                   lr: Optional[float]) -> Optimizer:
    """An Optimizer from a name ("sgd", "adam", "adamw") or an instance."""
    if isinstance(optimizer, Optimizer):
        if optimizer.net is not net:
            raise ValueError("the optimizer is bound to a different network")
        if lr is not None:
            optimizer.base_lr = optimizer.lr = _validation.check_learning_rate(lr)
        return optimizer
    classes = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
    name = _validation.check_choice("optimizer", optimizer, classes)
    return classes[name](net) if lr is None else classes[name](net, lr=lr)


# -- schedules: callables epoch -> factor of the base learning rate -----------

class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _validation.check_int("step_size", step_size, 1)
        self.gamma = _validation.check_real("gamma", gamma, 0.0)

    def __call__(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)

    def __repr__(self) -> str:
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class ExponentialLR:
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, gamma: float) -> None:
        self.gamma = _validation.check_real("gamma", gamma, 0.0)

    def __call__(self, epoch: int) -> float:
        return self.gamma ** epoch

    def __repr__(self) -> str:
        return f"ExponentialLR(gamma={self.gamma})"


class CosineLR:
    """Cosine annealing from 1 to ``min_factor`` over ``t_max`` epochs, then flat:
    ``min_factor + (1 - min_factor) (1 + cos(pi min(epoch, t_max) / t_max)) / 2``."""

    def __init__(self, t_max: int, min_factor: float = 0.0) -> None:
        self.t_max = _validation.check_int("t_max", t_max, 1)
        self.min_factor = _validation.check_real("min_factor", min_factor, 0.0, 1.0)

    def __call__(self, epoch: int) -> float:
        progress = min(epoch, self.t_max) / self.t_max
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2

    def __repr__(self) -> str:
        return f"CosineLR(t_max={self.t_max}, min_factor={self.min_factor})"
