"""Reorganising the code must not change a single bit of what it computes.

tests/data/golden_outputs.npz holds the outputs of the fixed calls in
tests/golden_calls.py (predict, loss, loss_and_grad with dX, backward,
train_step, fit with SGD, momentum, Adam, AdamW, per-sample and in-order
epochs; float32 and float64), recorded before the compiled core was split
into one file per concern.  Every instruction-set variant this machine runs
must reproduce them exactly.

The bits also depend on the BLAS that SciPy ships (its version and the
kernel it picks for the CPU).  When that differs from the recording's, the
exact comparison cannot apply, and the outputs are compared to a tolerance
that still catches any change of formula: 1e-10 relative in float64 and
1e-4 in float32 (three epochs of training amplify rounding differences).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pybackprop import _dispatch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_calls  # noqa: E402

GOLDEN = np.load(golden_calls.GOLDEN_PATH)


@pytest.mark.parametrize("isa", _dispatch.available())
def test_outputs_match_the_recording(isa, tmp_path):
    out = tmp_path / "outputs.npz"
    env = dict(os.environ, PYBACKPROP_ISA=isa)
    subprocess.run([sys.executable, os.path.join(HERE, "golden_calls.py"), "dump", str(out)],
                   env=env, check=True, cwd=str(tmp_path))
    now = np.load(out)
    assert sorted(now.files) == sorted(GOLDEN.files)
    same_blas = str(now["__fingerprint__"]) == str(GOLDEN["__fingerprint__"])
    if not same_blas:
        print("BLAS differs from the recording's; comparing to a tolerance:\n"
              f"  recorded {json.loads(str(GOLDEN['__fingerprint__']))}\n"
              f"  here     {json.loads(str(now['__fingerprint__']))}")
    mismatched = []
    for key in GOLDEN.files:
        if key == "__fingerprint__":
            continue
        expected, actual = GOLDEN[key], now[key]
        if key.endswith("#sha256"):
            if same_blas and str(expected) != str(actual):
                mismatched.append(key)
            continue
        assert expected.dtype == actual.dtype and expected.shape == actual.shape, key
        if same_blas:
            if expected.tobytes() != actual.tobytes():
                mismatched.append(key)
        else:
            rtol = 1e-10 if expected.dtype == np.float64 else 1e-4
            if not np.allclose(actual, expected, rtol=rtol, atol=rtol):
                mismatched.append(key)
    assert not mismatched, f"{len(mismatched)} outputs changed: {mismatched[:10]}"
    assert len(GOLDEN.files) > 200
