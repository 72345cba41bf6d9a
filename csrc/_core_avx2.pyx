# The avx2 variant of the compiled core: csrc/_core.pyx compiled for
# x86-64-v3 (see setup.py and pybackprop/_dispatch.py).
include "_core.pyx"
