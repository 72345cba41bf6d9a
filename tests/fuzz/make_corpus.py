"""Write the seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/.

Run it again after a change of the file format or of fuzz_state_dict's
encoding; the seeds are small valid inputs the fuzzer mutates, so it starts
from what the library accepts rather than from nothing::

    python tests/fuzz/make_corpus.py
"""

import io
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_common  # noqa: E402
import fuzz_state_dict  # noqa: E402

import pybackprop  # noqa: E402
from pybackprop.optim import Adam  # noqa: E402


def _write(target: str, name: str, data: bytes) -> None:
    directory = fuzz_common.corpus_directory(target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def _saved(net, optimizer=None) -> bytes:
    scratch = fuzz_common.scratch_directory()
    path = os.path.join(scratch, "model.npz")
    net.save(path, optimizer=optimizer)
    with open(path, "rb") as f:
        return f.read()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_seeds() -> None:
    _write("load", "mlp-3-4-2-softmax-float32.npz",
           _saved(pybackprop.MLP([3, 4, 2], output="softmax", dtype="float32", seed=0)))
    _write("load", "mlp-2-1-identity-float64.npz",
           _saved(pybackprop.MLP([2, 1], output="identity", seed=1)))
    net = pybackprop.MLP([2, 3, 3, 1], activation=["tanh", "relu"], output="sigmoid",
                         dtype="float32", seed=2)
    optimizer = Adam(net, lr=0.01)
    net.loss_and_grad(np.ones((4, 2)), np.array([0.0, 1.0, 1.0, 0.0]))
    optimizer.step()
    _write("load", "mlp-2-3-3-1-sigmoid-adam.npz", _saved(net, optimizer))
    # A zip whose member is compressed: load accepts DEFLATE too.
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_saved(pybackprop.MLP([2, 1], output="identity", seed=3)))) as src, \
            zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    _write("load", "mlp-2-1-deflated.npz", buffer.getvalue())


def state_dict_seeds() -> None:
    for index, (sizes, kwargs) in enumerate(fuzz_state_dict.NETWORKS):
        state = fuzz_state_dict._network(index).state_dict()
        _write("state_dict", f"network{index}-strict.bin",
               fuzz_state_dict.encode(index, True, False, state))
        _write("state_dict", f"network{index}-new-network.bin",
               fuzz_state_dict.encode(index, True, True, state))
    # Only the first layer's weights, float64 into the float32 network.
    state = {"W0": fuzz_state_dict._network(0).state_dict()["W0"]}
    _write("state_dict", "network1-partial-float64.bin",
           fuzz_state_dict.encode(1, False, False, state))


def tables_seeds() -> None:
    _write("tables", "classes.csv",
           b"x1,x2,kind\n0.5,1.25,left\n-1e3,2,right\n3,4,left\n")
    _write("tables", "integer-labels.csv",
           b"a,b,c,label\n1,2,3,02134\n4,5,6,2134\n7,8,9,5\n1,1,1,5.0\n")
    _write("tables", "regression-quoted.csv",
           b'"first, quoted",second,target\n1,2,0.25\n3,4,-7e-3\n\n5,6,1e2\n')
    _write("tables", "bom-tabs.csv",
           "\ufeffu\tv\ty\n1\t2\t0\n3\t4\t1\n".encode("utf-8"))
    _write("tables", "array.npy",
           _npy(np.array([[0.0, 1.0, 0.0], [1.0, 0.5, 1.0], [2.0, -1.0, 0.0]])))
    buffer = io.BytesIO()
    np.savez(buffer, X=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 1]))
    _write("tables", "x-and-y.npz", buffer.getvalue())


if __name__ == "__main__":
    load_seeds()
    state_dict_seeds()
    tables_seeds()
    for target in ("load", "state_dict", "tables"):
        directory = fuzz_common.corpus_directory(target)
        sizes = {name: os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)}
        print(f"{target}: {len(sizes)} files, {sum(sizes.values())} bytes")
