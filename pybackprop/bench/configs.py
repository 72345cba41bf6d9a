"""The benchmark configurations: architectures, batch sizes and data.

A *step* configuration times one training step (forward + backward + SGD
update on one batch). An *epoch* configuration times a whole epoch at batch
size 1 (per-sample SGD) and reports samples per second.
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["StepConfig", "EpochConfig", "STEP_CONFIGS", "EPOCH_CONFIGS", "get_config",
           "make_batch", "make_epoch_data", "step_flops"]


@dataclass(frozen=True)
class StepConfig:
    """One training-step benchmark."""

    name: str
    layer_sizes: tuple
    activation: str
    output: str
    loss: str
    batch: int
    dtype: str = "float32"
    quick: bool = True  # run in --quick mode
    description: str = ""
    lr: float = 0.01

    @property
    def n_layers(self):
        return len(self.layer_sizes) - 1


@dataclass(frozen=True)
class EpochConfig:
    """One per-sample (batch size 1) epoch benchmark."""

    name: str
    layer_sizes: tuple
    activation: str
    output: str
    loss: str
    dataset: str  # "xor" or "digits"
    n_samples: int = 0  # 0: the whole dataset
    dtype: str = "float64"
    description: str = ""
    lr: float = 0.01
    quick_samples: int = field(default=0)  # smaller epoch in --quick mode (0: same)


STEP_CONFIGS = (
    StepConfig("tiny", (2, 2, 1), "sigmoid", "sigmoid", "squared_error", 1, "float64",
               description="2-2-1 sigmoid, batch 1, float64"),
    StepConfig("mnist", (784, 128, 10), "relu", "softmax", "cross_entropy", 64,
               description="784-128-10 relu/softmax, batch 64"),
    StepConfig("mnist_f64", (784, 128, 10), "relu", "softmax", "cross_entropy", 64,
               "float64", description="784-128-10 relu/softmax, batch 64, float64"),
    StepConfig("deep", (32,) + (32,) * 16 + (1,), "relu", "identity", "squared_error", 32,
               description="16 x 32 relu, batch 32"),
    StepConfig("sigmoid_mid", (256, 256, 256, 1), "sigmoid", "identity", "squared_error", 128,
               description="256-256-256-1 sigmoid, batch 128"),
    StepConfig("wide", (1024, 2048, 2048, 10), "relu", "softmax", "cross_entropy", 512,
               quick=False, description="1024-2048-2048-10 relu/softmax, batch 512"),
)

EPOCH_CONFIGS = (
    EpochConfig("epoch_221", (2, 2, 1), "sigmoid", "sigmoid", "squared_error", "xor",
                n_samples=2000, description="2-2-1 sigmoid on XOR points, batch 1",
                lr=0.5),
    EpochConfig("epoch_digits", (64, 32, 10), "relu", "softmax", "cross_entropy", "digits",
                description="64-32-10 relu/softmax on digits (1797), batch 1",
                lr=0.01, quick_samples=600),
)


def get_config(name):
    """Return the step or epoch configuration called ``name``."""
    for config in STEP_CONFIGS + EPOCH_CONFIGS:
        if config.name == name:
            return config
    names = [c.name for c in STEP_CONFIGS + EPOCH_CONFIGS]
    raise ValueError(f"unknown configuration {name!r}; valid: {', '.join(names)}")


def make_batch(config, seed=0):
    """Fixed-seed random X (batch, n_in) and targets for a step configuration.

    Targets are class labels (int64) for cross-entropy, values in (0, 1) for a
    sigmoid output, standard normal otherwise (shape (batch, n_out)).
    """
    rng = np.random.default_rng(seed)
    n, n_in, n_out = config.batch, config.layer_sizes[0], config.layer_sizes[-1]
    X = rng.standard_normal((n, n_in)).astype(config.dtype)
    if config.loss == "cross_entropy":
        y = rng.integers(0, n_out, n).astype(np.int64)
    elif config.output == "sigmoid":
        y = rng.uniform(0.05, 0.95, (n, n_out)).astype(config.dtype)
    else:
        y = rng.standard_normal((n, n_out)).astype(config.dtype)
    return X, y


def make_epoch_data(config, quick=False):
    """X (n, n_in) and y for an epoch configuration (standardized digits or XOR)."""
    from pybackprop import datasets

    y: np.ndarray  # class labels (digits) or float targets (XOR)
    if config.dataset == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        X = datasets.standardize(X)
    elif config.dataset == "xor":
        X, y = datasets.make_xor(config.n_samples, noise=0.1, seed=0)
        y = y.astype(np.float64).reshape(-1, 1)
    else:  # pragma: no cover
        raise ValueError(config.dataset)
    n = config.quick_samples if quick and config.quick_samples else (config.n_samples or len(X))
    X = np.ascontiguousarray(X[:n], dtype=config.dtype)
    y = np.ascontiguousarray(y[:n]) if y.dtype.kind in "iu" else \
        np.ascontiguousarray(y[:n], dtype=config.dtype)
    return X, y


def step_flops(layer_sizes, batch):
    """Matrix-multiply FLOPs of one training step (2 per multiply-add).

    Per layer of shape (n_in -> n_out): forward ``X W^T`` and ``dW = dZ^T A``
    are ``2 n n_in n_out`` each, and the input gradient ``dZ W`` is the same
    again for every layer but the first. Elementwise work is not counted.
    """
    flops = 0
    for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        products = 2 if i == 0 else 3
        flops += products * 2 * batch * n_in * n_out
    return flops
