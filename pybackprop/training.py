"""``MLP.fit``: minibatch training with the epoch loop in compiled code."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _validation, optim

if TYPE_CHECKING:
    # For annotations only: at run time this module never imports network,
    # which imports it.
    from .network import MLP

#: ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)`` (None: unweighted).
ValidationData = Union[Tuple[ArrayLike, ArrayLike],
                       Tuple[ArrayLike, ArrayLike, Optional[ArrayLike]]]
#: ``callback(net, epoch, logs) -> stop``: called after every epoch of ``fit``
#: with ``logs`` a dict (epoch, loss, lr, val_loss, val_accuracy); a true
#: result stops training.
Callback = Callable[["MLP", int, Dict[str, float]], object]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite during ``fit``.

    The network has been restored to the weights it had at the start of the
    epoch in which that happened; ``history`` holds the epochs completed.
    """

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """What ``fit`` measured, one entry per completed epoch.

    Attributes
    ----------
    loss : list of float
        Training loss per epoch: the weighted mean, over all samples, of each
        batch's loss as it was trained on (as scikit-learn's ``loss_curve_``).
    val_loss : list of float
        Loss on the validation data after each epoch (empty without it).
    val_accuracy : list of float
        Validation accuracy after each epoch, for classification networks
        (softmax, or sigmoid with binary cross-entropy); empty otherwise.
    lr : list of float
        Learning rate used in each epoch.
    epochs_run : int
    best_epoch : int or None
        0-based epoch with the lowest monitored loss (validation loss when
        there is validation data, else training loss).
    best_loss : float or None
    stopped_early : bool
    restored_best : bool
        True when early stopping put the best epoch's weights back.
    time : float
        Wall-clock seconds spent in ``fit``.
    samples_per_second : float
        Training samples processed per second (validation excluded).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: Optional[int] = None
    best_loss: Optional[float] = None
    stopped_early: bool = False
    restored_best: bool = False
    time: float = 0.0
    samples_per_second: float = 0.0


def is_classifier(net: MLP) -> bool:
    """True for networks whose outputs are class probabilities."""
    return net.output == "softmax" or net.loss_name == "binary_cross_entropy"


def accuracy(net: MLP, X: ArrayLike, y: ArrayLike) -> float:
    """Fraction of samples classified correctly.

    Softmax networks: the argmax of the outputs against integer labels (or
    the argmax of one-hot/probability rows).  Sigmoid networks: each output
    thresholded at 0.5 against targets thresholded at 0.5, averaged over
    outputs and samples.
    """
    probabilities = net.predict(X)
    y = np.asarray(y)
    if net.output == "softmax":
        labels = y if y.ndim == 1 else np.argmax(y, axis=1)
        return float(np.mean(np.argmax(probabilities, axis=1) == labels))
    return float(np.mean((probabilities > 0.5) == (y.reshape(probabilities.shape) > 0.5)))


def _split_validation(X: NDArray[Any], y: NDArray[Any], sample_weight: Optional[NDArray[Any]],
                      fraction: float, rng: np.random.Generator,
                      ) -> tuple[tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]],
                                 tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]]]:
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split={fraction} leaves {n - n_val} training and {n_val} "
                         f"validation samples out of {n}; both need at least one")
    order = rng.permutation(n)
    val, train = order[:n_val], order[n_val:]
    pick = (lambda a, rows: None if a is None else np.ascontiguousarray(a[rows]))
    return (X[train], y[train], pick(sample_weight, train)), (X[val], y[val], pick(sample_weight, val))


def fit(net: MLP, X: ArrayLike, y: ArrayLike, *, epochs: int = 10, batch_size: int = 32,
        optimizer: Union[optim.OptimizerName, optim.Optimizer] = "sgd",
        lr: Optional[float] = None, sample_weight: Optional[ArrayLike] = None,
        shuffle: bool = True, seed: Optional[int] = None,
        validation_data: Optional[ValidationData] = None, validation_split: float = 0.0,
        early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0,
        callbacks: Union[Callback, Iterable[Callback]] = (), verbose: bool = False) -> History:
    """Train ``net`` by minibatch gradient descent; see :meth:`MLP.fit`."""
    start_time = time.perf_counter()
    epochs = _validation.check_int("epochs", epochs)
    batch_size = _validation.check_int("batch_size", batch_size)
    patience = _validation.check_int("patience", patience)
    min_delta = _validation.check_real("min_delta", min_delta, 0.0)
    validation_split = _validation.check_real("validation_split", validation_split, 0.0, 1.0,
                                              high_open=True)
    if validation_data is not None and validation_split > 0:
        raise ValueError("give validation_data or validation_split, not both")
    if callable(callbacks):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables callback(net, epoch, logs), got {callback!r}")
    opt = optim.make_optimizer(net, optimizer, lr)
    core = net._core
    rng = np.random.default_rng(seed)

    # Validate and convert the whole data set once; epochs then run on it as is.
    checked: tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]] = \
        core.check_batch(X, y, sample_weight)
    X, y, sample_weight = checked
    if validation_split > 0:
        (X, y, sample_weight), validation_data = _split_validation(X, y, sample_weight,
                                                                   validation_split, rng)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (X_val, y_val) or (X_val, y_val, sample_weight_val)")
        validation_data = core.check_batch(*validation_data)
    n = X.shape[0]
    order = np.arange(n, dtype=np.intp) if shuffle else None
    moment, second_moment = opt._state()

    history = History()
    classifier = is_classifier(net)
    best_params = net.parameters.copy() if early_stopping else None
    epoch_start_params = np.empty_like(net.parameters)
    epoch_progress = core.EpochProgress()  # filled by train_epoch, even when interrupted
    wait = 0
    samples = 0
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=epochs, desc="training", unit="epoch", leave=True)
    try:
        for epoch in range(epochs):
            epoch_start_params[...] = net.parameters
            epoch_lr = opt.set_epoch(epoch)
            if order is not None:
                rng.shuffle(order)
            try:
                finished = core.train_epoch(X, y, sample_weight, order, batch_size,
                                            opt._config(fused=True), opt.step_count, moment, second_moment,
                                            epoch_progress)
            finally:
                opt.step_count = epoch_progress.step
                samples += epoch_progress.rows
            if epoch_progress.weight_sum > 0:
                loss = epoch_progress.loss_sum / epoch_progress.weight_sum
            else:
                loss = math.nan
            if not finished or not math.isfinite(loss) or not np.all(np.isfinite(net.parameters)):
                net.parameters[...] = epoch_start_params
                history.time = time.perf_counter() - start_time
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch} (the loss became NaN or infinite, "
                    f"learning rate {epoch_lr:g}); the weights from the start of that epoch "
                    "were restored. Lower the learning rate.", history)
            history.loss.append(loss)
            history.lr.append(epoch_lr)
            logs = {"epoch": epoch, "loss": loss, "lr": epoch_lr}
            monitored = loss
            if validation_data is not None:
                val_loss = core.loss(*validation_data)
                history.val_loss.append(val_loss)
                logs["val_loss"] = monitored = val_loss
                if classifier:
                    val_accuracy = accuracy(net, validation_data[0], validation_data[1])
                    history.val_accuracy.append(val_accuracy)
                    logs["val_accuracy"] = val_accuracy
            history.epochs_run = epoch + 1
            if history.best_loss is None or monitored < history.best_loss - min_delta:
                history.best_loss, history.best_epoch = monitored, epoch
                wait = 0
                if best_params is not None:
                    best_params[...] = net.parameters
            else:
                wait += 1
            if progress is not None:
                progress.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k not in ("epoch",)})
                progress.update(1)
            stop = False
            for callback in callbacks:
                if callback(net, epoch, logs):
                    stop = True
            if early_stopping and wait >= patience:
                history.stopped_early = True
                stop = True
            if stop:
                break
        if early_stopping and history.best_epoch is not None and history.best_epoch != history.epochs_run - 1:
            net.parameters[...] = best_params
            history.restored_best = True
    finally:
        if progress is not None:
            progress.close()
    history.time = time.perf_counter() - start_time
    history.samples_per_second = samples / history.time if history.time > 0 else 0.0
    return history
