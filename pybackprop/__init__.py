"""pybackprop: fast, verified backpropagation for dense multilayer perceptrons.

The forward and backward passes run in a compiled Cython core over BLAS
(``pybackprop._core``); :mod:`pybackprop.reference` is a plain-Python
implementation of the same mathematics that the core is tested against.
"""

from . import optim
from .network import MLP
from .training import History, TrainingDiverged

__version__ = "0.1.0"


def load(path):
    """Load a network saved with :meth:`MLP.save`; see :func:`pybackprop.io.load`."""
    from . import io

    return io.load(path)


__all__ = ["MLP", "History", "TrainingDiverged", "load", "optim", "__version__"]
