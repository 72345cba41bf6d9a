"""Fuzz target: ``pybackprop.load`` on arbitrary file contents.

The bytes are written to a file and loaded with its optimizer state.  The
documented outcomes (``pybackprop.io.load``'s Raises section): a network, or
``ValueError`` for anything wrong with the contents (``OSError`` subclasses
concern the path, which is always a readable file here).  Any other
exception is a finding.  A network that loads must also work: it predicts
on a batch of its input width without error, and saving and loading it
again gives bit-identical parameters.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_common  # noqa: E402

import pybackprop  # noqa: E402

TARGET = "load"
_scratch = fuzz_common.scratch_directory()


def check(data: bytes) -> None:
    path = fuzz_common.write_file(_scratch, "input.npz", data)
    try:
        net, optimizer_state = pybackprop.load(path, with_optimizer_state=True)
    except ValueError as exc:
        if not str(exc).startswith(f"cannot load network from {path!r}: "):
            raise fuzz_common.Finding(f"the ValueError does not name the file: {exc}") from exc
        return
    params = net.parameters.copy()
    if not np.all(np.isfinite(params)):
        raise fuzz_common.Finding("a loaded network has non-finite parameters")
    if optimizer_state is not None and not isinstance(optimizer_state, dict):
        raise fuzz_common.Finding(f"optimizer state is a {type(optimizer_state).__name__}")
    X = np.zeros((2, net.layer_sizes[0]), dtype=net.dtype)
    outputs = net.predict(X)
    if outputs.shape != (2, net.layer_sizes[-1]):
        raise fuzz_common.Finding(f"predict gave shape {outputs.shape} for layer sizes "
                                  f"{net.layer_sizes}")
    again_path = os.path.join(_scratch, "again.npz")
    net.save(again_path)
    again = pybackprop.load(again_path)
    if again.dtype != net.dtype or again.layer_sizes != net.layer_sizes or \
            again.parameters.tobytes() != params.tobytes():
        raise fuzz_common.Finding("save then load changed the network")


if __name__ == "__main__":
    fuzz_common.fuzz(TARGET, check)
