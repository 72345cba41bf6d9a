"""pybackprop: fast, verified backpropagation for dense multilayer perceptrons.

The forward and backward passes run in a compiled Cython core over BLAS
(``pybackprop._core``); :mod:`pybackprop.reference` is a plain-Python
implementation of the same mathematics that the core is tested against.
"""

from .network import MLP

__version__ = "0.1.0"

__all__ = ["MLP", "__version__"]
