"""Fixtures shared by the test modules.

The lists of names a test iterates over (activations, output/loss pairs,
dtypes) come from ``pybackprop._validation``, their one definition, so a
new name is tested everywhere without editing the tests.
"""

import numpy as np
import pytest

from pybackprop import _validation


@pytest.fixture(params=list(_validation.DTYPES))
def dtype(request):
    """Each parameter dtype name, "float32" and "float64"."""
    return request.param


@pytest.fixture
def rng():
    """A fresh generator seeded with 0: the same numbers in every test that asks."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def digits():
    """The bundled digits data set: X (1797, 64) float64 pixel values, y (1797,) labels."""
    from pybackprop.datasets import load_digits

    return load_digits(return_X_y=True)
