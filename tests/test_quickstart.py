"""The README's quick start: after `pip install .`, `python -m pybackprop`
run from the project root must use the installed build, even though the
source checkout (without a compiled core) is first on sys.path."""

import os
import pathlib
import subprocess
import sys

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_python_m_pybackprop_runs_from_the_project_root():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "pybackprop", "explain", "--digits", "6"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "0.70739" in result.stdout


def test_the_imported_core_is_a_compiled_module():
    code = "import pybackprop._core as c, sys; print(c.__file__)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")}
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith((".so", ".pyd"))
