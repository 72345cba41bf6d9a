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
from types import ModuleType
from typing import Optional

import scipy


def scipy_openblas_path() -> Optional[str]:
    """Path of the OpenBLAS library inside SciPy's wheel, or None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    candidates = sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*")))
    return candidates[0] if candidates else None


def _find_thread_function() -> Optional[int]:
    """Address of openblas_set_num_threads_local in SciPy's OpenBLAS, or None."""
    path = scipy_openblas_path()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(path)
        function = library.openblas_set_num_threads_local
    except (OSError, AttributeError):
        return None
    return ctypes.cast(function, ctypes.c_void_p).value


_THREAD_FUNCTION = _find_thread_function()

#: Whether the thread hook was found (every compiled core gets it).
THREAD_HOOK = _THREAD_FUNCTION is not None


def install_thread_hook(core: ModuleType) -> bool:
    """Hand openblas_set_num_threads_local to one compiled core module (each
    variant keeps its own pointer); return whether it was found."""
    if _THREAD_FUNCTION is None:
        return False
    core._set_blas_threads_hook(_THREAD_FUNCTION)
    return True
