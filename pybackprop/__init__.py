"""pybackprop: fast, verified backpropagation for dense multilayer perceptrons.

The forward and backward passes run in a compiled Cython core over BLAS
(``pybackprop._core``); :mod:`pybackprop.reference` is a plain-Python
implementation of the same mathematics that the core is tested against.
"""

import os as _os
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES
from typing import Any as _Any
from typing import Literal as _Literal
from typing import Optional as _Optional
from typing import Union as _Union
from typing import overload as _overload


def _use_installed_build() -> None:
    """Import the compiled modules from the installed copy when this package
    is the unbuilt source checkout.

    ``pip install . && python -m pybackprop`` run from the project root puts
    the checkout first on ``sys.path``; its ``pybackprop/`` has no compiled
    ``_core``.  Then the first other ``pybackprop`` directory on ``sys.path``
    that has one (the installed copy) goes first on this package's
    ``__path__``, so every submodule (``_core`` included) comes from what pip
    installed.  An in-place build (``pip install -e .``) has ``_core`` here
    and changes nothing.
    """
    import sys

    def compiled(directory: str) -> bool:
        return any(_os.path.exists(_os.path.join(directory, "_core" + suffix))
                   for suffix in _EXTENSION_SUFFIXES)

    here = _os.path.dirname(_os.path.abspath(__file__))
    if compiled(here):
        return
    for entry in sys.path:
        candidate = _os.path.join(_os.path.abspath(entry or _os.curdir), "pybackprop")
        if candidate != here and compiled(candidate):
            __path__.insert(0, candidate)
            return


_use_installed_build()

from . import optim  # noqa: E402
from .network import MLP  # noqa: E402
from .training import History, TrainingDiverged  # noqa: E402

__version__ = "0.1.0"


@_overload
def load(path: _Union[str, "_os.PathLike[str]"], with_optimizer_state: _Literal[False] = ...,
         ) -> MLP: ...


@_overload
def load(path: _Union[str, "_os.PathLike[str]"], with_optimizer_state: _Literal[True],
         ) -> tuple[MLP, _Optional[dict[str, _Any]]]: ...


@_overload
def load(path: _Union[str, "_os.PathLike[str]"], with_optimizer_state: bool = ...,
         ) -> _Union[MLP, tuple[MLP, _Optional[dict[str, _Any]]]]: ...


def load(path: _Union[str, "_os.PathLike[str]"], with_optimizer_state: bool = False,
         ) -> _Union[MLP, tuple[MLP, _Optional[dict[str, _Any]]]]:
    """Load a network saved with :meth:`MLP.save` (never unpickles).

    Returns the network, or ``(network, optimizer_state)`` with
    ``with_optimizer_state=True``; pass that state to an optimizer's
    ``load_state_dict``.  See :func:`pybackprop.io.load`.
    """
    return MLP.load(path, with_optimizer_state=with_optimizer_state)


__all__ = ["MLP", "History", "TrainingDiverged", "load", "optim", "__version__"]
