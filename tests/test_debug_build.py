"""The debug build: PYBACKPROP_DEBUG=1 at build time turns the kernels' block
checks (and Cython's bounds checks) on.  CI runs the whole suite once against
such a build, with PYBACKPROP_EXPECT_DEBUG=1 so this file knows which it has."""

import os

import numpy as np
import pytest

import pybackprop
from pybackprop._dispatch import core as _core

EXPECT_DEBUG = os.environ.get("PYBACKPROP_EXPECT_DEBUG", "") not in ("", "0")


def test_the_installed_build_is_the_expected_one():
    assert _core.DEBUG_BUILD == EXPECT_DEBUG


def test_block_checks_are_live_exactly_in_debug_builds():
    if _core.DEBUG_BUILD:
        with pytest.raises(AssertionError, match="outside its buffers"):
            _core._debug_selftest()
        # The violation was reported once and cleared.
    else:
        assert _core._debug_selftest() is None
    # Normal work after a reported violation raises nothing.
    net = pybackprop.MLP([3, 4, 2], output="softmax", seed=0)
    assert np.isfinite(net.train_step(np.ones((5, 3)), np.array([0, 1, 0, 1, 1]), 0.1))
