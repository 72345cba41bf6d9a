"""The PyTorch column: nn.Sequential of nn.Linear + activations, torch.optim.SGD.

Optional: importing this module needs PyTorch, which is never a runtime
dependency of pybackprop. The loss is scaled to equal pybackprop's exactly
(mean over samples; squared error with the 0.5 and summed over outputs), so
the gradients equal too (checked in tests/test_bench_baselines.py).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .numpy_mlp import check_architecture

__all__ = ["TorchMLP", "torch_info"]

# torch's module for each of the library's hidden activations (the keys are
# checked against pybackprop._validation by tests/test_bench_baselines.py).
_HIDDEN = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_info():
    """Version and thread count of the installed PyTorch, as one string."""
    return f"torch {torch.__version__} ({torch.get_num_threads()} threads)"


def _gradient(parameter: torch.Tensor) -> np.ndarray:
    """A parameter's gradient after ``backward()``, as a NumPy copy."""
    if parameter.grad is None:
        raise RuntimeError("no gradient: backward() has not reached this parameter")
    return parameter.grad.detach().numpy().copy()


class TorchMLP:
    """``pybackprop.MLP`` in PyTorch.

    Parameters
    ----------
    layer_sizes, activation, output, loss, dtype
        As in ``pybackprop.MLP``.
    weights, biases : lists of ndarray
        ``W`` (n_out, n_in) and ``b`` (n_out,) per layer, copied
        (``nn.Linear.weight`` has pybackprop's (out, in) layout).

    Notes
    -----
    A softmax output is not a layer: ``F.cross_entropy`` takes the logits
    (the stable log-sum-exp form). Likewise sigmoid + binary cross-entropy
    uses ``F.binary_cross_entropy_with_logits``. Sigmoid + squared error has
    an ``nn.Sigmoid`` output layer.
    """

    def __init__(self, layer_sizes, activation, output, loss, dtype, weights, biases):
        sizes, hidden, output, loss, dtype = check_architecture(layer_sizes, activation, output,
                                                                loss, dtype)
        n_hidden = len(hidden)
        self.dtype = _DTYPES[dtype.name]
        self.output, self.loss_name = output, loss
        modules: list[nn.Module] = []
        for i, (W, b) in enumerate(zip(weights, biases)):
            linear = nn.Linear(W.shape[1], W.shape[0], dtype=self.dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.as_tensor(np.asarray(W)))
                linear.bias.copy_(torch.as_tensor(np.asarray(b)))
            modules.append(linear)
            if i < n_hidden:
                modules.append(_HIDDEN[hidden[i]]())
        if output == "sigmoid" and loss == "squared_error":
            modules.append(nn.Sigmoid())
        self.model = nn.Sequential(*modules)
        self._linears = [m for m in modules if isinstance(m, nn.Linear)]
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.0)
        self._lr = 0.01
        self.n_out = sizes[-1]

    def prepare(self, X, y):
        """Tensors for a batch (zero-copy where possible): ``(X, y)``."""
        X = torch.as_tensor(np.ascontiguousarray(X)).to(self.dtype)
        y = np.asarray(y)
        if self.loss_name == "cross_entropy" and y.ndim == 1:
            y = torch.as_tensor(y).long()
        else:
            y = torch.as_tensor(np.ascontiguousarray(y)).to(self.dtype)
            if y.ndim == 1:
                y = y.reshape(-1, 1)
        return X, y

    def _loss(self, X, y):
        out = self.model(X)
        n = X.shape[0]
        if self.loss_name == "squared_error":
            # pybackprop: 0.5 * sum over outputs, mean over samples
            return F.mse_loss(out, y, reduction="sum") * (0.5 / n)
        if self.loss_name == "binary_cross_entropy":
            return F.binary_cross_entropy_with_logits(out, y, reduction="sum") / n
        if y.dtype == torch.long:
            return F.cross_entropy(out, y)  # mean over samples, like pybackprop
        return F.cross_entropy(out, y, reduction="sum") / n  # probability targets

    def train_step(self, X, y, lr):
        """One SGD step on prepared tensors; returns the loss before it."""
        if lr != self._lr:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self._lr = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(X, y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def loss_and_grad(self, X, y):
        """Loss and gradients as NumPy arrays (for checking against pybackprop)."""
        X, y = self.prepare(X, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(X, y)
        loss.backward()
        grad_w = [_gradient(m.weight) for m in self._linears]
        grad_b = [_gradient(m.bias) for m in self._linears]
        return loss.item(), grad_w, grad_b

    def numpy_weights(self):
        """Current weights as NumPy arrays (n_out, n_in)."""
        return [m.weight.detach().numpy().copy() for m in self._linears]
