"""A fixed set of calls whose outputs must not change when the code is reorganised.

``python tests/golden_calls.py record`` writes ``tests/data/golden_outputs.npz``
from the installed build (it was recorded before the compiled core was split
into one file per concern); ``tests/test_golden_outputs.py`` runs the same
calls in every instruction-set variant this machine runs (``dump FILE``) and
compares them with that file bit for bit.  Every call is on small networks of fixed seeds, so the file
stays small; sizes are chosen so that both the core's own small-product loops
and the BLAS products are exercised.
"""

import json
import os
import sys

import numpy as np

GOLDEN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                           "golden_outputs.npz")

# (name, layer sizes, hidden activation(s), output, loss, batch)
NETWORKS = [
    ("softmax_relu", [6, 9, 4], "relu", "softmax", "cross_entropy", 5),
    ("regress_tanh", [3, 7, 5, 2], ["tanh", "sigmoid"], "identity", "squared_error", 4),
    ("bce_sigmoid", [4, 5, 3], "sigmoid", "sigmoid", "binary_cross_entropy", 6),
    ("mse_sigmoid_out", [2, 2, 1], "sigmoid", "sigmoid", "squared_error", 1),
    ("blas_sized", [64, 96, 10], "relu", "softmax", "cross_entropy", 48),
]

FITS = [
    ("sgd", dict(optimizer="sgd", lr=0.05, batch_size=8)),
    ("momentum", None),   # SGD with momentum, Nesterov and weight decay
    ("adam", dict(optimizer="adam", lr=0.01, batch_size=8)),
    ("adamw", None),
    ("per_sample", dict(optimizer="sgd", lr=0.02, batch_size=1)),
    ("in_order", dict(optimizer="adam", lr=0.01, batch_size=7, shuffle=False)),
]


def _data(sizes, output, loss, n, rng, dtype):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=n)
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, sizes[-1])) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((n, sizes[-1])).astype(dtype)
        if output == "sigmoid":
            y = rng.random((n, sizes[-1])).astype(dtype)
    weights = rng.random(n).astype(dtype) + 0.5
    return X, y, weights


def compute():
    """Run every call; returns {key: ndarray}."""
    import pybackprop
    from pybackprop.optim import SGD, AdamW

    out = {}
    for dtype in ("float32", "float64"):
        for name, sizes, act, output, loss, batch in NETWORKS:
            key = f"{dtype}/{name}"
            rng = np.random.default_rng(1234)
            X, y, w = _data(sizes, output, loss, batch, rng, dtype)
            net = pybackprop.MLP(sizes, activation=act, output=output, loss=loss,
                                 dtype=dtype, seed=7)
            out[f"{key}/init"] = net.parameters.copy()
            out[f"{key}/predict"] = net.predict(X)
            out[f"{key}/loss"] = np.array(net.loss(X, y, w))
            value, dW, db, dX = net.loss_and_grad(X, y, w, input_grad=True, copy=True)
            out[f"{key}/lag_loss"] = np.array(value)
            out[f"{key}/lag_dW"] = np.concatenate([d.ravel() for d in dW])
            out[f"{key}/lag_db"] = np.concatenate([d.ravel() for d in db])
            out[f"{key}/lag_dX"] = dX
            grad_output = rng.standard_normal((batch, sizes[-1])).astype(dtype)
            dW, db, dX = net.backward(X, grad_output, input_grad=True, copy=True)
            out[f"{key}/bwd_dW"] = np.concatenate([d.ravel() for d in dW])
            out[f"{key}/bwd_dX"] = dX
            losses = [net.train_step(X, y, 0.1, w) for _ in range(3)]
            out[f"{key}/train_step_losses"] = np.array(losses)
            out[f"{key}/train_step_params"] = net.parameters.copy()

            Xf, yf, wf = _data(sizes, output, loss, 40, np.random.default_rng(99), dtype)
            for fit_name, kwargs in FITS:
                fnet = pybackprop.MLP(sizes, activation=act, output=output, loss=loss,
                                      dtype=dtype, seed=3)
                if fit_name == "momentum":
                    opt = SGD(fnet, lr=0.03, momentum=0.9, nesterov=True, weight_decay=1e-3)
                    kwargs = dict(optimizer=opt, batch_size=8)
                elif fit_name == "adamw":
                    opt = AdamW(fnet, lr=0.01, weight_decay=0.05)
                    kwargs = dict(optimizer=opt, batch_size=8)
                history = fnet.fit(Xf, yf, epochs=3, seed=5, sample_weight=wf, **kwargs)
                out[f"{key}/fit_{fit_name}_loss"] = np.array(history.loss)
                out[f"{key}/fit_{fit_name}_params"] = fnet.parameters.copy()
    return out


def fingerprint():
    """What the bits depend on besides our code: the BLAS build and kernel."""
    import numpy
    import scipy

    try:
        from threadpoolctl import threadpool_info
        blas = sorted((i.get("internal_api"), i.get("version"), i.get("architecture"))
                      for i in threadpool_info() if i.get("user_api") == "blas"
                      and "scipy" in i.get("filepath", ""))
    except ImportError:
        blas = []
    return json.dumps({"numpy": numpy.__version__, "scipy": scipy.__version__,
                       "scipy_blas": [list(map(str, b)) for b in blas],
                       "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")},
                      sort_keys=True)


# Arrays longer than this are stored as a digest of their bytes (for the exact
# comparison) and an evenly strided sample (for the tolerance comparison on
# another BLAS build), which keeps the file small.
SAMPLE = 64


def condensed(outputs):
    """{key: array} -> what the golden file stores for each key."""
    import hashlib

    stored = {}
    for key, value in outputs.items():
        value = np.ascontiguousarray(value)
        if value.size > SAMPLE:
            stored[key + "#sha256"] = np.array(hashlib.sha256(value.tobytes()).hexdigest())
            stored[key + "#sample"] = value.ravel()[:: -(-value.size // SAMPLE)]
        else:
            stored[key] = value
    return stored


if __name__ == "__main__":
    if sys.argv[1:] == ["record"]:
        outputs = compute()
        np.savez_compressed(GOLDEN_PATH, __fingerprint__=np.array(fingerprint()),
                            **condensed(outputs))
        print(f"wrote {len(outputs)} arrays to {GOLDEN_PATH}")
    elif len(sys.argv) == 3 and sys.argv[1] == "dump":
        np.savez(sys.argv[2], __fingerprint__=np.array(fingerprint()), **condensed(compute()))
    else:
        raise SystemExit("usage: golden_calls.py record | dump FILE")
