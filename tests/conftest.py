"""Shared test setup.

Tests that start ``python -m pybackprop`` or ``python -c ...`` in a
subprocess must import the installed package, not the source checkout (where
the compiled core is not built): with the working directory at the project
root, Python would put the checkout first on ``sys.path``.  PYTHONSAFEPATH
(Python 3.11+) stops that for every subprocess the tests start; the ``cwd``
fallback below covers older Pythons.
"""

import os
import pathlib
import sys

os.environ["PYTHONSAFEPATH"] = "1"

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent

if sys.version_info < (3, 11) and pathlib.Path.cwd() == PROJECT_ROOT:
    os.chdir(PROJECT_ROOT / "tests")
