"""Find the BLAS that scipy.linalg.cython_blas calls, and its thread control.

SciPy's wheels ship their own OpenBLAS (``scipy.libs/libscipy_openblas*.so``),
separate from NumPy's.  OpenBLAS 0.3.27 and later export
``openblas_set_num_threads_local``, which sets the thread count of the
calling thread only; the compiled core uses it to run small and mid-sized
products on one thread (see csrc/_blas.pxd).  When the library or the
function cannot be found (a SciPy built against another BLAS), nothing is
installed and BLAS keeps its own threading.
"""

import ctypes
import glob
import os

import scipy

from . import _core


def scipy_openblas_path():
    """Path of the OpenBLAS library inside SciPy's wheel, or None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    candidates = sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*")))
    return candidates[0] if candidates else None


def install_thread_hook():
    """Hand openblas_set_num_threads_local to the core; return whether it was found."""
    path = scipy_openblas_path()
    if path is None:
        return False
    try:
        library = ctypes.CDLL(path)
        function = library.openblas_set_num_threads_local
    except (OSError, AttributeError):
        return False
    _core._set_blas_threads_hook(ctypes.cast(function, ctypes.c_void_p).value)
    return True


THREAD_HOOK = install_thread_hook()
