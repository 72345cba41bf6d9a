"""Type stubs for the compiled core (csrc/_core.pyx)."""

from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

DEBUG_BUILD: bool
ISA: str  # "baseline", "avx2" or "avx512" (pybackprop/_dispatch.py picks one)
BUILD_ID: str

def _cpu_runs(isa: str) -> bool: ...

class Network:
    is_double: bool
    n_in: int
    n_out: int
    n_params: int
    capacity: int
    params: NDArray[np.floating[Any]]
    grads: NDArray[np.floating[Any]]
    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation_codes: Sequence[int],
        loss_code: int,
        params: NDArray[np.floating[Any]],
        coerce: Callable[[Any, Any, Any], Tuple[Any, Any, Any]],
    ) -> None: ...
    def predict(self, X: Any) -> NDArray[np.floating[Any]]: ...
    def loss(self, X: Any, y: Any, sample_weight: Any = ...) -> float: ...
    def loss_and_grad(
        self, X: Any, y: Any, sample_weight: Any = ..., input_grad: bool = ...
    ) -> Tuple[float, Optional[NDArray[np.floating[Any]]]]: ...
    def train_step(self, X: Any, y: Any, sample_weight: Any, lr: float) -> float: ...
