"""Type stubs for the compiled core (csrc/_core.pyx and the .pxd files it cimports).

pybackprop/_dispatch.py loads one of its instruction-set variants
(``_core``, ``_core_avx2``, ``_core_avx512``); every variant has this interface.
"""

import weakref
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Type, Union

import numpy as np
from numpy.typing import NDArray
from typing_extensions import disjoint_base

_FloatArray = NDArray[Union[np.float32, np.float64]]
_Coerce = Callable[[Any, Any, Any], Tuple[Any, Any, Any]]

#: Hidden activation name -> the code the kernels read.
HIDDEN_ACTIVATIONS: Dict[str, int]
#: Output activation name -> code.
OUTPUT_ACTIVATIONS: Dict[str, int]
#: Loss name -> code.
LOSSES: Dict[str, int]
#: The (output activation, loss) name pairs the kernels implement.
VALID_PAIRS: Tuple[Tuple[str, str], ...]
#: Optimizer kind name ("fused_sgd", "sgd", "adam") -> code.
OPTIMIZER_KINDS: Dict[str, int]
#: The names optimizer settings may have ("kind" and "lr" are required).
OPTIMIZER_SETTINGS: Tuple[str, ...]

DEBUG_BUILD: bool
ISA: str  # "baseline", "avx2" or "avx512" (pybackprop/_dispatch.py picks one)
BUILD_ID: str

def _cpu_runs(isa: str) -> bool: ...
def _debug_selftest() -> None: ...
def _set_blas_threads_hook(address: int) -> None: ...
def _blas_threads_hook_installed() -> bool: ...
def _fresh_locks_after_fork() -> None: ...

@disjoint_base
class EpochProgress:
    """How far Network.train_epoch got (filled even when it is interrupted)."""

    @property
    def step(self) -> int: ...
    @property
    def loss_sum(self) -> float: ...
    @property
    def weight_sum(self) -> float: ...
    @property
    def rows(self) -> int: ...
    def __init__(self) -> None: ...

_Progress = EpochProgress

@disjoint_base
class Network:
    #: The type of train_epoch's progress argument, for this variant of the core.
    EpochProgress: Type[_Progress]
    @property
    def is_double(self) -> bool: ...
    @property
    def n_in(self) -> int: ...
    @property
    def n_out(self) -> int: ...
    @property
    def n_params(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def params(self) -> _FloatArray: ...
    @property
    def grads(self) -> _FloatArray: ...
    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation_codes: Sequence[int],
        loss_code: int,
        params: _FloatArray,
        coerce: _Coerce,
    ) -> None: ...
    def predict(self, X: Any) -> _FloatArray: ...
    def loss(self, X: Any, y: Any, sample_weight: Any = ...) -> float: ...
    def loss_and_grad(
        self, X: Any, y: Any, sample_weight: Any = ..., input_grad: bool = ...
    ) -> Tuple[float, Optional[_FloatArray]]: ...
    def train_step(self, X: Any, y: Any, sample_weight: Any, lr: float) -> float: ...
    def backward_output(
        self, X: Any, grad_output: _FloatArray, input_grad: bool = ...
    ) -> Optional[_FloatArray]: ...
    def read_params(self, out: _FloatArray, source: Optional[_FloatArray] = None) -> _FloatArray: ...
    def write_params(
        self,
        values: _FloatArray,
        target: Optional[_FloatArray] = ...,
        mask: Optional[NDArray[np.bool_]] = ...,
    ) -> None: ...
    def check_batch(
        self, X: Any, y: Any, sample_weight: Any = ...
    ) -> Tuple[_FloatArray, NDArray[Any], Optional[_FloatArray]]: ...
    def optimizer_step(
        self,
        settings: Dict[str, Any],
        step: int,
        moment: Optional[_FloatArray] = ...,
        second_moment: Optional[_FloatArray] = ...,
    ) -> int: ...
    def train_epoch(
        self,
        X: _FloatArray,
        y: NDArray[Any],
        sample_weight: Optional[_FloatArray],
        order: Optional[NDArray[np.intp]],
        batch_size: int,
        settings: Dict[str, Any],
        step: int,
        moment: Optional[_FloatArray],
        second_moment: Optional[_FloatArray],
        progress: _Progress,
    ) -> bool: ...

#: Every live Network (a forked child gives each a fresh lock).
_live_networks: weakref.WeakSet[Network]
