"""The BLAS thread hook: small and mid-sized products run on one thread."""

import ctypes

from pybackprop import _blasinfo, _dispatch

_core = _dispatch.core


def test_the_hook_is_installed_when_scipy_ships_openblas():
    path = _blasinfo.scipy_openblas_path()
    has_function = False
    if path is not None:
        has_function = hasattr(ctypes.CDLL(path), "openblas_set_num_threads_local")
    assert _blasinfo.THREAD_HOOK == has_function
    for isa in _dispatch.available():
        assert _dispatch.load(isa)._blas_threads_hook_installed() == has_function


def test_the_hook_restores_the_global_thread_setting():
    """After a step, the calling thread is back on OpenBLAS's global count."""
    import numpy as np

    import pybackprop

    path = _blasinfo.scipy_openblas_path()
    if path is None:
        assert not _core._blas_threads_hook_installed()
        return
    library = ctypes.CDLL(path)
    get = getattr(library, "scipy_openblas_get_num_threads", None) or library.openblas_get_num_threads
    get.restype = ctypes.c_int
    before = get()
    net = pybackprop.MLP([64, 256, 10], output="softmax", seed=0)
    net.train_step(np.ones((32, 64)), np.zeros(32, dtype=int), 0.1)
    assert get() == before
