"""Standardisation folded into a network's weights, so that a saved model takes raw data.

A network trained on standardised features ``(X - mean) / scale`` can be
rewritten to take the raw ``X`` with the same outputs: the first layer's
affine map absorbs the standardisation. Likewise a regression network trained
on standardised targets can give its outputs in the targets' own units: the
last (identity) layer absorbs the inverse map. The command line's ``train``
does this before saving, so that a model file needs nothing besides itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .network import MLP

__all__ = ["fold_standardization"]


def fold_standardization(net: MLP, mean: ArrayLike, scale: ArrayLike,
                         y_mean: ArrayLike | None = None,
                         y_scale: ArrayLike | None = None) -> MLP:
    """Fold feature (and target) standardisation into the network, in place.

    A network trained on ``(X - mean) / scale`` becomes one that takes raw
    ``X``: the first layer's ``W`` becomes ``W / scale`` (each column by its
    feature's scale) and ``b`` becomes ``b - (W / scale) @ mean``, so that
    ``W' x + b' = W (x - mean) / scale + b``.  With ``y_mean``/``y_scale``
    (regression on standardised targets, identity output) the last layer's
    outputs are mapped back: ``W_L := y_scale W_L`` (row-wise),
    ``b_L := y_scale b_L + y_mean``.  Computed in float64, then rounded to
    the network's dtype.

    Parameters
    ----------
    net : MLP
        Changed in place.
    mean, scale : array-like of shape (n_in,)
        The features' mean and scale the network was trained with.
    y_mean, y_scale : array-like of shape (n_out,), optional
        The targets' mean and scale (both or neither).

    Returns
    -------
    MLP
        ``net``.

    Raises
    ------
    ValueError
        Target standardisation for a network whose output is not identity.
    """
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    W = net.weights[0].astype(np.float64) / scale
    b = net.biases[0].astype(np.float64) - W @ mean
    net.weights[0][...] = W
    net.biases[0][...] = b
    if y_mean is not None:
        if net.output != "identity":
            raise ValueError("target standardisation can only be folded into an identity output")
        y_mean = np.asarray(y_mean, dtype=np.float64).reshape(-1)
        y_scale = np.asarray(y_scale, dtype=np.float64).reshape(-1)
        W_last = net.weights[-1].astype(np.float64) * y_scale[:, None]
        b_last = net.biases[-1].astype(np.float64) * y_scale + y_mean
        net.weights[-1][...] = W_last
        net.biases[-1][...] = b_last
    return net
