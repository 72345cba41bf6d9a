"""pybackprop: fast, verified backpropagation for dense multilayer perceptrons.

The forward and backward passes run in a compiled Cython core over BLAS
(``pybackprop._core``); :mod:`pybackprop.reference` is a plain-Python
implementation of the same mathematics that the core is tested against.
"""

from . import optim
from .network import MLP
from .training import History, TrainingDiverged

__version__ = "0.1.0"


def load(path, with_optimizer_state=False):
    """Load a network saved with :meth:`MLP.save` (never unpickles).

    Returns the network, or ``(network, optimizer_state)`` with
    ``with_optimizer_state=True``; pass that state to an optimizer's
    ``load_state_dict``.  See :func:`pybackprop.io.load`.
    """
    from . import io

    return io.load(path, with_optimizer_state=with_optimizer_state)


__all__ = ["MLP", "History", "TrainingDiverged", "load", "optim", "__version__"]
