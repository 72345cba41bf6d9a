"""Gradient checking for any :class:`pybackprop.MLP`.

Four independent ways to convince yourself that a network's gradients are
right:

- :func:`check_gradients`: central finite differences over every weight and
  bias (and, optionally, every input), one parameter at a time;
- :func:`check_directional`: one finite difference along a random unit
  direction in parameter space, cheap enough for big networks;
- :func:`check_descent`: a small SGD step must lower the loss by about
  ``lr * ||g||^2``;
- :func:`compare_with_reference`: the gradients of the plain-Python
  :mod:`pybackprop.reference`, computed on the same weights and data.

Errors are relative: ``|a - b| / max(|a|, |b|, floor)``. The absolute
``floor`` keeps entries that are zero or nearly so (dead ReLU units,
saturated sigmoids, gradients that cancel) from turning rounding noise into
huge relative errors; below ``floor`` the error is effectively absolute.

Finite differences are taken in float64: a float32 network is checked
through a float64 copy with the same (exactly converted) parameters, since
float32 has too few digits for a difference quotient. The float32 kernels
themselves are checked by :func:`compare_with_reference`.

Every perturbed parameter is written back exactly (the saved value, not
``value + eps - eps``), so a check leaves the network bit-for-bit unchanged.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import reference
from .network import MLP

__all__ = [
    "DEFAULT_FLOOR",
    "relative_error",
    "GradCheckResult",
    "DirectionalCheckResult",
    "DescentCheckResult",
    "check_gradients",
    "check_directional",
    "check_descent",
    "compare_with_reference",
]

#: Absolute floor of the relative error's denominator for finite differences.
#: A central difference with eps = 1e-6 on a loss of order 1 carries rounding
#: noise of order 1e-16 / 1e-6 = 1e-10 (more for larger losses), so gradient
#: entries smaller than 1e-5 are judged by their absolute error over 1e-5,
#: which keeps that noise near 1e-5 relative, below the default tol of 1e-4.
DEFAULT_FLOOR = 1e-5

#: Floor of :func:`compare_with_reference`, relative to the largest magnitude
#: among the reference's loss and gradient entries: an entry that cancels to
#: nearly zero (a batch sum of terms of both signs) carries the rounding error
#: of its terms, so entries below 1% of the largest are judged by their error
#: relative to that 1%.
REFERENCE_FLOOR = 1e-2
#: Default pass thresholds of :func:`compare_with_reference`, per dtype.
REFERENCE_TOL = {"float64": 1e-10, "float32": 1e-4}

# What the checks compare: (layer or None, "W"/"b"/"X"/"loss", value, expected).
_Comparison = tuple[Optional[int], str, ArrayLike, ArrayLike]


@overload
def relative_error(a: float, b: float, floor: float = ...) -> float: ...


@overload
def relative_error(a: ArrayLike, b: ArrayLike,
                   floor: float = ...) -> Union[float, NDArray[np.float64]]: ...


def relative_error(a: ArrayLike, b: ArrayLike,
                   floor: float = DEFAULT_FLOOR) -> Union[float, NDArray[np.float64]]:
    """Elementwise ``|a - b| / max(|a|, |b|, floor)``.

    Parameters
    ----------
    a, b : array_like
        Values to compare (broadcast together).
    floor : float
        Absolute floor of the denominator; at most 1 when either value
        exceeds the floor in magnitude, and ``|a - b| / floor`` below it.

    Returns
    -------
    ndarray or float
    """
    a_array = np.asarray(a, dtype=np.float64)
    b_array = np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(a_array), np.abs(b_array)), floor)
    err = np.abs(a_array - b_array) / scale
    return float(err) if err.ndim == 0 else err


def _where(layer: Optional[int], param: str, index: tuple[int, ...]) -> str:
    if param == "loss":
        return "the loss"
    position = ", ".join(str(i) for i in index)
    if param == "X":
        return f"input X[{position}]"
    return f"layer {layer} {param}[{position}]"


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of an entry-by-entry gradient comparison.

    Attributes
    ----------
    method : str
        "finite_differences" or "reference".
    max_rel_error : float
        The worst relative error over all entries checked.
    layer : int or None
        Layer (0-based, as in ``net.weights``) of the worst entry; None for
        an input or the loss.
    param : str
        "W", "b", "X" (input) or "loss".
    index : tuple of int
        Index of the worst entry within its array.
    value : float
        The network's analytic value there.
    expected : float
        The finite-difference or reference value there.
    n_checked : int
        Number of values compared.
    tol : float
        Threshold for :attr:`passed`.
    floor : float
        Absolute floor used in the relative error.
    """

    method: str
    max_rel_error: float
    layer: Optional[int]
    param: str
    index: tuple[int, ...]
    value: float
    expected: float
    n_checked: int
    tol: float
    floor: float

    @property
    def passed(self) -> bool:
        """bool: ``max_rel_error <= tol``."""
        return self.max_rel_error <= self.tol

    @property
    def where(self) -> str:
        """str: the worst entry in words, e.g. "layer 1 W[0, 2]"."""
        return _where(self.layer, self.param, self.index)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"GradCheckResult({self.method}: worst relative error {self.max_rel_error:.3g} "
                f"at {self.where} (network {self.value:.10g}, expected {self.expected:.10g}); "
                f"{self.n_checked} values, tol {self.tol:g}: {verdict})")


@dataclass(frozen=True)
class DirectionalCheckResult:
    """Outcome of :func:`check_directional`.

    Attributes
    ----------
    max_rel_error : float
        Worst relative error between the two directional derivatives.
    analytic : float
        ``sum(g * d)`` for the worst direction d.
    numeric : float
        ``(L(theta + eps d) - L(theta - eps d)) / (2 eps)`` for it.
    n_directions : int
    n_params : int
    eps, tol, floor : float
    """

    max_rel_error: float
    analytic: float
    numeric: float
    n_directions: int
    n_params: int
    eps: float
    tol: float
    floor: float

    @property
    def passed(self) -> bool:
        """bool: ``max_rel_error <= tol``."""
        return self.max_rel_error <= self.tol

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"DirectionalCheckResult(worst relative error {self.max_rel_error:.3g} over "
                f"{self.n_directions} random directions in {self.n_params} parameters "
                f"(g.d = {self.analytic:.10g}, finite difference {self.numeric:.10g}); "
                f"tol {self.tol:g}: {verdict})")


@dataclass(frozen=True)
class DescentCheckResult:
    """Outcome of :func:`check_descent`.

    Attributes
    ----------
    loss_before, loss_after : float
        Loss before and after one SGD step of size ``lr``.
    actual_decrease : float
        ``loss_before - loss_after``.
    predicted_decrease : float
        ``lr * ||g||^2``, the first-order prediction.
    ratio : float
        ``actual_decrease / predicted_decrease``; about 1 for a small step
        (nan when the gradient is exactly zero).
    lr, tol : float
    """

    loss_before: float
    loss_after: float
    actual_decrease: float
    predicted_decrease: float
    ratio: float
    lr: float
    tol: float

    @property
    def passed(self) -> bool:
        """bool: ``|ratio - 1| <= tol``."""
        return abs(self.ratio - 1.0) <= self.tol

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"DescentCheckResult(lr {self.lr:g}: loss {self.loss_before:.10g} -> "
                f"{self.loss_after:.10g}, decrease {self.actual_decrease:.4g} vs predicted "
                f"lr*||g||^2 = {self.predicted_decrease:.4g}, ratio {self.ratio:.6f}; "
                f"tol {self.tol:g}: {verdict})")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _float64_net(net: MLP) -> MLP:
    """net itself if it is float64, else a float64 network with the same parameters."""
    if net.dtype == np.float64:
        return net
    clone = MLP(net.layer_sizes, activation=list(net.activations), output=net.output,
                loss=net.loss_name, dtype="float64")
    for target, source in zip(clone.weights, net.weights):
        target[...] = source
    for target, source in zip(clone.biases, net.biases):
        target[...] = source
    return clone


def _central_difference(f: Callable[[], float], array: NDArray[np.floating[Any]],
                        index: tuple[int, ...], eps: float) -> float:
    """(f(x + h) - f(x - h)) / (x+h - (x-h)) for the entry array[index], restored exactly."""
    saved = array[index]
    try:
        array[index] = saved + eps
        up = array[index]
        f_up = f()
        array[index] = saved - eps
        down = array[index]
        f_down = f()
    finally:
        array[index] = saved
    # divide by the step actually taken, which rounding may make differ from 2 eps
    return (f_up - f_down) / (up - down)


def _worst(errors_by_location: Iterable[_Comparison], method: str, tol: float,
           floor: float) -> GradCheckResult:
    """GradCheckResult from a list of (layer, param, value array, expected array)."""
    best: Optional[tuple[float, Optional[int], str, tuple[int, ...], float, float]] = None
    n_checked = 0
    for layer, param, value_like, expected_like in errors_by_location:
        value = np.asarray(value_like, dtype=np.float64)
        expected = np.asarray(expected_like, dtype=np.float64)
        n_checked += value.size
        err = np.atleast_1d(relative_error(value, expected, floor))
        flat = int(np.argmax(err))
        index = tuple(int(i) for i in np.unravel_index(flat, value.shape)) if value.ndim else ()
        if best is None or err.flat[flat] > best[0]:
            best = (float(err.flat[flat]), layer, param, index,
                    float(value[index]), float(expected[index]))
    assert best is not None, "every check compares at least one array"
    max_rel, worst_layer, worst_param, worst_index, worst_value, worst_expected = best
    return GradCheckResult(method, max_rel, worst_layer, worst_param, worst_index, worst_value,
                           worst_expected, n_checked, tol, floor)


def _cast_batch(net: MLP, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike],
                ) -> tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]]:
    """X, y and sample_weight as arrays of the network's dtype (labels stay integers)."""
    X_array = np.array(X, dtype=net.dtype)
    y_array = np.asarray(y)
    if not (net.loss_name == "cross_entropy" and y_array.ndim == 1
            and y_array.dtype.kind in "iu"):
        y_array = y_array.astype(net.dtype)
    w_array = None if sample_weight is None else np.asarray(sample_weight, dtype=net.dtype)
    return X_array, y_array, w_array


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------

def check_gradients(net: MLP, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                    *, eps: float = 1e-6, floor: float = DEFAULT_FLOOR, tol: float = 1e-4,
                    check_input: bool = False) -> GradCheckResult:
    """Compare every analytic gradient entry with a central finite difference.

    For each weight and bias ``p``: ``(L(p + eps) - L(p - eps)) / (2 eps)``
    against ``net.loss_and_grad``. This costs two loss evaluations per
    parameter; for big networks use :func:`check_directional`.

    Parameters
    ----------
    net : pybackprop.MLP
        Left unchanged (a float32 network is checked through a float64 copy).
    X : array_like, shape (n_samples, n_in)
    y : array_like
        Targets, as for ``net.loss``.
    sample_weight : array_like, shape (n_samples,), optional
    eps : float, default 1e-6
        Finite-difference step.
    floor : float, default DEFAULT_FLOOR
        Absolute floor of the relative error.
    tol : float, default 1e-4
        Pass threshold for the worst relative error. Correct gradients
        typically give 1e-10 to 1e-6; a wrong formula gives 1e-2 or more. A
        ReLU whose pre-activation is within eps of 0 (a kink) can also exceed
        the threshold: a finite difference across a kink is not a derivative.
    check_input : bool, default False
        Also check the gradient with respect to every input X[i, k]
        (``loss_and_grad(..., input_grad=True)``) by perturbing X.

    Returns
    -------
    GradCheckResult
    """
    work = _float64_net(net)
    X = np.array(X, dtype=np.float64)
    if check_input:
        _, grad_weights, grad_biases, grad_X = work.loss_and_grad(
            X, y, sample_weight, input_grad=True, copy=True)
    else:
        _, grad_weights, grad_biases = work.loss_and_grad(X, y, sample_weight, copy=True)

    def f() -> float:
        return work.loss(X, y, sample_weight)

    compared: list[_Comparison] = []
    for layer, (W, b) in enumerate(zip(work.weights, work.biases)):
        for param, array, grad in (("W", W, grad_weights[layer]), ("b", b, grad_biases[layer])):
            numeric = np.empty(array.shape)
            for index in np.ndindex(array.shape):
                numeric[index] = _central_difference(f, array, index, eps)
            compared.append((layer, param, grad, numeric))
    if check_input:
        numeric = np.empty(X.shape)
        for index in np.ndindex(X.shape):
            numeric[index] = _central_difference(f, X, index, eps)
        compared.append((None, "X", grad_X, numeric))
    return _worst(compared, "finite_differences", tol, floor)


def check_directional(net: MLP, X: ArrayLike, y: ArrayLike,
                      sample_weight: Optional[ArrayLike] = None, *, eps: float = 1e-6,
                      n_directions: int = 3, seed: Optional[int] = None,
                      floor: float = DEFAULT_FLOOR, tol: float = 1e-4) -> DirectionalCheckResult:
    """Check the gradient along random directions: two loss evaluations each.

    For a random unit vector d over all parameters (weights and biases
    together), the directional derivative ``sum(g * d)`` must match
    ``(L(theta + eps d) - L(theta - eps d)) / (2 eps)``. A wrong entry of g
    shows up for almost every d, so a few directions check a network of any
    size.

    Parameters
    ----------
    net : pybackprop.MLP
        Left unchanged (float32 networks are checked through a float64 copy).
    X, y, sample_weight
        The batch, as for ``net.loss``.
    eps : float, default 1e-6
        Step length along d.
    n_directions : int, default 3
    seed : int or None
        Seed for the directions (``numpy.random.default_rng``).
    floor, tol : float
        As in :func:`check_gradients`.

    Returns
    -------
    DirectionalCheckResult
        For the direction with the worst relative error.
    """
    if n_directions < 1:
        raise ValueError(f"n_directions must be >= 1, got {n_directions}")
    work = _float64_net(net)
    X = np.array(X, dtype=np.float64)
    _, grad_weights, grad_biases = work.loss_and_grad(X, y, sample_weight, copy=True)
    params = list(work.weights) + list(work.biases)
    grads = list(grad_weights) + list(grad_biases)
    saved = [p.copy() for p in params]
    n_params = sum(p.size for p in params)
    rng = np.random.default_rng(seed)

    worst: Optional[tuple[float, float, float]] = None
    for _ in range(n_directions):
        d = [rng.standard_normal(p.shape) for p in params]
        norm = math.sqrt(sum(float(np.sum(di * di)) for di in d))
        d = [di / norm for di in d]
        analytic = math.fsum(float(np.sum(g * di)) for g, di in zip(grads, d))
        try:
            for p, s, di in zip(params, saved, d):
                p[...] = s + eps * di
            loss_up = work.loss(X, y, sample_weight)
            for p, s, di in zip(params, saved, d):
                p[...] = s - eps * di
            loss_down = work.loss(X, y, sample_weight)
        finally:
            for p, s in zip(params, saved):
                p[...] = s
        numeric = (loss_up - loss_down) / (2 * eps)
        err = relative_error(analytic, numeric, floor)
        if worst is None or err > worst[0]:
            worst = (err, analytic, numeric)
    assert worst is not None, "n_directions >= 1 was checked above"
    return DirectionalCheckResult(worst[0], worst[1], worst[2], n_directions, n_params,
                                  eps, tol, floor)


def check_descent(net: MLP, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                  *, lr: float = 1e-4, tol: float = 1e-2) -> DescentCheckResult:
    """Check that one SGD step lowers the loss by about ``lr * ||g||^2``.

    To first order, ``L(theta - lr g) = L(theta) - lr ||g||^2``; the
    second-order term is ``lr^2 g^T H g / 2``, so the ratio actual/predicted
    approaches 1 as ``lr`` shrinks. The step is taken with ``train_step`` on
    a float64 copy, which also checks that ``train_step`` follows the
    gradient.

    Parameters
    ----------
    net : pybackprop.MLP
        Not changed.
    X, y, sample_weight
        The batch, as for ``net.loss``.
    lr : float, default 1e-4
        Step size; small enough that the second-order term is negligible.
    tol : float, default 1e-2
        Pass threshold for ``|ratio - 1|``. A ReLU kink crossed by the step
        also bends the ratio away from 1; a smaller ``lr`` tells the two
        apart.

    Returns
    -------
    DescentCheckResult
    """
    base = _float64_net(net)
    X = np.array(X, dtype=np.float64)
    loss_before, grad_weights, grad_biases = base.loss_and_grad(X, y, sample_weight, copy=True)
    squared_norm = math.fsum(float(np.sum(g * g)) for g in list(grad_weights) + list(grad_biases))
    work = base.copy()  # the step is taken on a copy, so net is never changed
    work.train_step(X, y, lr, sample_weight)
    loss_after = work.loss(X, y, sample_weight)
    actual = loss_before - loss_after
    predicted = lr * squared_norm
    ratio = actual / predicted if predicted > 0 else math.nan
    return DescentCheckResult(loss_before, loss_after, actual, predicted, ratio, lr, tol)


def compare_with_reference(net: MLP, X: ArrayLike, y: ArrayLike,
                           sample_weight: Optional[ArrayLike] = None, *,
                           max_samples: Optional[int] = None, floor: Optional[float] = None,
                           tol: Optional[float] = None) -> GradCheckResult:
    """Compare the network's loss and gradients with :mod:`pybackprop.reference`.

    The reference runs in plain Python on exactly the network's parameters
    and on the batch rounded to the network's dtype, so for a float32
    network the only difference is the core's float32 arithmetic.

    Parameters
    ----------
    net : pybackprop.MLP
    X, y, sample_weight
        The batch, as for ``net.loss``.
    max_samples : int, optional
        Use only the first ``max_samples`` samples (the reference is pure
        Python: about a microsecond per multiply-add).
    floor : float, optional
        Absolute floor of the relative error; default ``REFERENCE_FLOOR``
        (1e-2) times the largest magnitude among the reference's loss and
        gradient entries.
    tol : float, optional
        Pass threshold; default ``REFERENCE_TOL`` for the dtype (1e-10 for
        float64, 1e-4 for float32).

    Returns
    -------
    GradCheckResult
        Over the loss and every gradient entry; ``value`` is the network's,
        ``expected`` the reference's.
    """
    tol = REFERENCE_TOL[net.dtype.name] if tol is None else tol
    X_batch, y_batch, w_batch = _cast_batch(net, X, y, sample_weight)
    if max_samples is not None:
        X_batch, y_batch = X_batch[:max_samples], y_batch[:max_samples]
        if w_batch is not None:
            w_batch = w_batch[:max_samples]
    loss, grad_weights, grad_biases = net.loss_and_grad(X_batch, y_batch, w_batch, copy=True)
    ref_loss, ref_weights, ref_biases = reference.loss_and_grad(
        [W.tolist() for W in net.weights], [b.tolist() for b in net.biases],
        X_batch.tolist(), y_batch.tolist(), activation=list(net.activations), output=net.output,
        loss=net.loss_name,
        sample_weight=None if w_batch is None else w_batch.tolist())
    compared: list[_Comparison] = [(None, "loss", loss, ref_loss)]
    for layer in range(len(grad_weights)):
        compared.append((layer, "W", grad_weights[layer], ref_weights[layer]))
        compared.append((layer, "b", grad_biases[layer], ref_biases[layer]))
    if floor is None:
        scale = max(float(np.max(np.abs(np.asarray(expected)))) for *_, expected in compared)
        floor = max(REFERENCE_FLOOR * scale, np.finfo(np.float64).tiny)
    return _worst(compared, "reference", tol, floor)
