"""The MLP class: validation, parameter layout and dispatch to the compiled core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Optional, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _validation, io, optim, training
from ._dispatch import core as _compiled
from ._validation import DTypeArgument, FloatArray, HiddenActivation, LossName, OutputActivation, PathArgument

if TYPE_CHECKING:
    from . import _core

Network = _compiled.Network

# Initial weights are drawn in float64 blocks of at most this many values.
_INIT_CHUNK_VALUES = 8192


class ParameterList(list[FloatArray]):
    """A list of live parameter arrays (views of the network's parameters).

    Writing into an array (``net.weights[0][...] = W``) changes the network.
    Assigning an item (``net.weights[0] = W``) copies ``W`` into the live
    array after checking its shape, so it changes the network too; the copy
    holds the network's lock, so it lands between two calls of other threads.
    """

    def __init__(self, views: Iterable[FloatArray], network: _core.Network) -> None:
        super().__init__(views)
        self._network = network

    def __setitem__(self, index: Any, value: Any) -> None:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("assign one parameter array at a time: net.weights[i] = array")
        target = self[index]
        value = _validation._as_real_array(value, "parameter")
        if value.shape != target.shape:
            raise ValueError(f"parameter {index} has shape {target.shape}; got {value.shape}")
        with np.errstate(over="ignore"):
            value = np.ascontiguousarray(value, dtype=target.dtype)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"parameter {index} must be finite in {target.dtype.name} "
                             "(NaN, inf, or too large)")
        self._network.write_params(value.ravel(), target)

    def __delitem__(self, index: Any) -> None:
        raise TypeError("the network's parameter list has a fixed length")

    def append(self, value: Any) -> None:
        raise TypeError("the network's parameter list has a fixed length")


class MLP:
    """A dense multilayer perceptron with a compiled forward and backward pass.

    Layer ``i`` computes ``Z_i = A_{i-1} W_i^T + b_i`` with ``W_i`` of shape
    ``(n_out, n_in)`` (the textbook and PyTorch layout), ``A_{-1} = X``, and
    ``A_i = act_i(Z_i)``.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, n_hidden_1, ..., n_out]``; at least input and output.
    activation : str or sequence of str, default "relu"
        Hidden activation: one of "relu", "sigmoid", "tanh", "identity", or a
        list with one name per hidden layer.
    output : str, default "identity"
        Output activation: "identity", "sigmoid" or "softmax".
    loss : str, optional
        "squared_error", "binary_cross_entropy" or "cross_entropy".  Defaults
        to the natural loss of the output: identity -> squared_error,
        sigmoid -> binary_cross_entropy, softmax -> cross_entropy.  Valid
        pairs: (identity, squared_error), (sigmoid, squared_error),
        (sigmoid, binary_cross_entropy), (softmax, cross_entropy).
    dtype : {"float64", "float32"}, default "float64"
        Parameter and computation dtype.  Float and integer inputs of any
        width are converted to it (a copy); bool, complex, object and string
        inputs raise ``TypeError``.
    seed : int or None
        Seed of the initialisation (``numpy.random.default_rng(seed)``).

    Notes
    -----
    Loss of a batch: the weighted mean ``sum_i w_i l_i / sum_i w_i`` of the
    per-sample losses (the plain mean without ``sample_weight``), where
    ``l_i`` is ``0.5 * sum_k (yhat_k - y_k)^2`` (squared_error),
    ``-sum_k [y_k log yhat_k + (1 - y_k) log(1 - yhat_k)]``
    (binary_cross_entropy) or ``-sum_k y_k log softmax(z)_k``
    (cross_entropy).  Gradients are the exact derivatives of that loss.

    Initialisation: weights of a layer followed by ReLU are He-uniform,
    ``U(-sqrt(6 / n_in), sqrt(6 / n_in))``; all other layers (the output
    layer included) are Glorot-uniform, ``U(-sqrt(6 / (n_in + n_out)), ...)``;
    biases start at zero.  Values are drawn in float64 and rounded to the
    dtype, so float32 and float64 networks with one seed start alike.

    Threads: every call holds a per-network lock while it computes (with
    the GIL released), so two threads can share one network without
    corrupting it; their calls run one after the other.  Separate networks
    train in parallel.
    """

    def __init__(self, layer_sizes: Sequence[int],
                 activation: Union[HiddenActivation, Sequence[HiddenActivation]] = "relu",
                 output: OutputActivation = "identity", loss: Optional[LossName] = None,
                 dtype: DTypeArgument = "float64", seed: Optional[int] = None) -> None:
        sizes = _validation.check_layer_sizes(layer_sizes)
        activations = _validation.check_activations(activation, len(sizes) - 2)
        output_name, loss_name = _validation.check_output_loss(output, loss, sizes[-1])
        np_dtype = _validation.check_dtype(dtype)
        n_params = sum(n_out * n_in + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        self._build(sizes, activations, output_name, loss_name, np.zeros(n_params, dtype=np_dtype))
        self.initialize(seed)

    def _build(self, sizes: tuple[int, ...], activations: tuple[HiddenActivation, ...],
               output: OutputActivation, loss: LossName, params: FloatArray) -> None:
        """Wire the compiled core to params, a flat vector it uses in place."""
        self._layer_sizes = sizes
        self._activations = activations
        self._output = output
        self._loss = loss
        codes = [_validation.HIDDEN_ACTIVATIONS[a] for a in activations]
        codes.append(_validation.OUTPUT_ACTIVATIONS[output])
        spec = _validation.BatchSpec(sizes[0], sizes[-1], params.dtype, loss)
        self._core_spec = spec
        self._core = Network(sizes, codes, _validation.LOSSES[loss], params, spec)
        self._params = params
        self._weight_views, self._bias_views = self._views(params)
        self._grad_weight_views, self._grad_bias_views = self._views(self._core.grads)

    def _views(self, flat: FloatArray) -> tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]]:
        """Per-layer (W, b) views into a flat parameter-layout vector."""
        weights, biases = [], []
        offset = 0
        for n_in, n_out in zip(self._layer_sizes[:-1], self._layer_sizes[1:]):
            weights.append(flat[offset:offset + n_out * n_in].reshape(n_out, n_in))
            offset += n_out * n_in
            biases.append(flat[offset:offset + n_out])
            offset += n_out
        return tuple(weights), tuple(biases)

    def initialize(self, seed: Optional[int] = None) -> None:
        """Draw fresh initial weights (He or Glorot uniform) and zero biases.

        Parameters
        ----------
        seed : int or None
            Seed for ``numpy.random.default_rng``.
        """
        rng = np.random.default_rng(seed)
        layer_acts = self._activations + (self._output,)
        for W, b, act in zip(self._weight_views, self._bias_views, layer_acts):
            n_out, n_in = W.shape
            limit = np.sqrt(6.0 / n_in) if act == "relu" else np.sqrt(6.0 / (n_in + n_out))
            # Drawn a few rows at a time: the same stream of values as one
            # draw of the whole matrix, without a float64 copy of the largest
            # layer (which doubled a float32 network's peak memory).
            rows = max(1, _INIT_CHUNK_VALUES // n_in)
            for start in range(0, n_out, rows):
                W[start:start + rows] = rng.uniform(-limit, limit,
                                                    size=(min(rows, n_out - start), n_in))
            b[...] = 0.0

    # -- description --------------------------------------------------------

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """tuple of int: ``(n_in, n_hidden..., n_out)``."""
        return self._layer_sizes

    @property
    def activations(self) -> tuple[HiddenActivation, ...]:
        """tuple of str: the activation of each hidden layer."""
        return self._activations

    @property
    def output(self) -> OutputActivation:
        """str: the output activation."""
        return self._output

    @property
    def loss_name(self) -> LossName:
        """str: the loss function's name."""
        return self._loss

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy.dtype: float32 or float64."""
        return self._params.dtype

    @property
    def n_in(self) -> int:
        """int: number of inputs (features)."""
        return self._layer_sizes[0]

    @property
    def n_out(self) -> int:
        """int: number of outputs."""
        return self._layer_sizes[-1]

    @property
    def n_params(self) -> int:
        """int: number of weights and biases."""
        return self._params.shape[0]

    @property
    def weights(self) -> ParameterList:
        """list of ndarray (n_out, n_in): the live weight matrices, first layer first."""
        return ParameterList(self._weight_views, self._core)

    @property
    def biases(self) -> ParameterList:
        """list of ndarray (n_out,): the live bias vectors."""
        return ParameterList(self._bias_views, self._core)

    @property
    def parameters(self) -> FloatArray:
        """ndarray (n_params,): every weight and bias in one live flat vector
        (per layer, ``W`` row-major then ``b``)."""
        return self._params

    def __repr__(self) -> str:
        acts = self._activations
        activation = repr(acts[0]) if len(set(acts)) == 1 else repr(list(acts))
        return (f"MLP({list(self._layer_sizes)}, activation={activation}, output={self._output!r}, "
                f"loss={self._loss!r}, dtype={self.dtype.name!r})")

    # -- computation --------------------------------------------------------

    def predict(self, X: ArrayLike) -> FloatArray:
        """Network outputs ``A_L``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_in) or (n_in,)

        Returns
        -------
        ndarray, shape (n_samples, n_out), or (n_out,) for a 1-D X
            A new array of the network's dtype (probabilities for sigmoid
            and softmax outputs).
        """
        if getattr(X, "ndim", 2) == 2 and not isinstance(X, (list, tuple)):
            return self._core.predict(X)
        X = _validation._as_real_array(X, "X")
        if X.ndim == 1:
            return self._core.predict(X.reshape(1, -1) if X.shape[0] == self.n_in else X)[0]
        return self._core.predict(X)

    def loss(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None) -> float:
        """Weighted mean loss of a batch; the network is not changed.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_in)
        y : array_like, shape (n_samples, n_out), or (n_samples,) when
            n_out == 1, or integer class labels (n_samples,) for cross_entropy
        sample_weight : array_like, shape (n_samples,), optional
            Non-negative weights; the loss is ``sum w_i l_i / sum w_i``.

        Returns
        -------
        float
        """
        return self._core.loss(X, y, sample_weight)

    @overload
    def loss_and_grad(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = ...,
                      *, input_grad: Literal[False] = ..., copy: bool = ...,
                      ) -> tuple[float, tuple[FloatArray, ...], tuple[FloatArray, ...]]: ...

    @overload
    def loss_and_grad(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = ...,
                      *, input_grad: Literal[True], copy: bool = ...,
                      ) -> tuple[float, tuple[FloatArray, ...], tuple[FloatArray, ...], FloatArray]: ...

    def loss_and_grad(self, X: ArrayLike, y: ArrayLike, sample_weight: Optional[ArrayLike] = None,
                      *, input_grad: bool = False, copy: bool = False,
                      ) -> Union[tuple[float, tuple[FloatArray, ...], tuple[FloatArray, ...]],
                                 tuple[float, tuple[FloatArray, ...], tuple[FloatArray, ...],
                                       FloatArray]]:
        """Loss of a batch and its gradient with respect to every parameter.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`loss`.
        input_grad : bool, default False
            Also return ``dX``, the gradient of the loss with respect to X.
        copy : bool, default False
            Return new arrays.  Without it the gradient arrays are views of
            the network's gradient buffers: the next ``loss_and_grad`` call
            overwrites them (as PyTorch's ``.grad`` is overwritten), which is
            what keeps a training loop free of allocation.

        Returns
        -------
        loss : float
        grad_weights : tuple of ndarray (n_out, n_in)
            ``dW`` per layer, shaped like :attr:`weights`.
        grad_biases : tuple of ndarray (n_out,)
            ``db`` per layer.
        grad_input : ndarray (n_samples, n_in)
            Only with ``input_grad=True``.
        """
        loss, dX = self._core.loss_and_grad(X, y, sample_weight, input_grad)
        grad_weights, grad_biases = self._grad_weight_views, self._grad_bias_views
        if copy:
            grad_weights = tuple(g.copy() for g in grad_weights)
            grad_biases = tuple(g.copy() for g in grad_biases)
            if dX is not None:
                dX = dX.copy()
        if input_grad:
            return loss, grad_weights, grad_biases, dX
        return loss, grad_weights, grad_biases

    def train_step(self, X: ArrayLike, y: ArrayLike, lr: float,
                   sample_weight: Optional[ArrayLike] = None) -> float:
        """One plain SGD step on a batch: ``W -= lr * dW``, ``b -= lr * db``.

        The update is fused into the backward pass (each layer's ``dW`` is
        never stored); it equals :meth:`loss_and_grad` followed by the
        update, up to floating-point rounding.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`loss`.
        lr : float
            Learning rate, finite and >= 0.

        Returns
        -------
        float
            The loss of the batch before the step.

        Raises
        ------
        FloatingPointError
            If the loss is not finite (the outputs overflowed), or if the
            update could overflow the dtype (an absurd learning rate for
            gradients of this size: each layer's update is bounded before
            any parameter changes); the parameters are left unchanged.
        """
        if type(lr) is not float:
            lr = _validation.check_learning_rate(lr)
        return self._core.train_step(X, y, sample_weight, lr)

    @overload
    def backward(self, X: ArrayLike, grad_output: ArrayLike, *, input_grad: Literal[False] = ...,
                 copy: bool = ...) -> tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]]: ...

    @overload
    def backward(self, X: ArrayLike, grad_output: ArrayLike, *, input_grad: Literal[True],
                 copy: bool = ...,
                 ) -> tuple[tuple[FloatArray, ...], tuple[FloatArray, ...], FloatArray]: ...

    def backward(self, X: ArrayLike, grad_output: ArrayLike, *, input_grad: bool = False,
                 copy: bool = False,
                 ) -> Union[tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]],
                            tuple[tuple[FloatArray, ...], tuple[FloatArray, ...], FloatArray]]:
        """Backpropagate a gradient of your own loss with respect to the outputs.

        For losses the library does not have: compute ``A = net.predict(X)``,
        your loss and its gradient ``dL/dA`` (including any ``1 / n_samples``
        of a mean), then call this to get ``dW`` and ``db`` (and ``dX``).
        The output activation's derivative is applied here (for softmax, its
        Jacobian).  Gradients land in the same buffers as
        :meth:`loss_and_grad`, so an optimizer's ``step()`` can follow.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_in)
        grad_output : array_like, shape (n_samples, n_out), or (n_samples,) when n_out == 1
            ``dL/dA_L``, finite.
        input_grad, copy : bool
            As in :meth:`loss_and_grad`.

        Returns
        -------
        grad_weights, grad_biases[, grad_input]
        """
        X, single = self._core_spec.coerce_X(X)
        grad_output = _validation._as_real_array(grad_output, "grad_output")
        n = X.shape[0]
        if grad_output.shape == (n,) and self.n_out == 1 or (single and grad_output.shape == (self.n_out,)):
            grad_output = grad_output.reshape(n, self.n_out)
        if grad_output.shape != (n, self.n_out):
            raise ValueError(f"grad_output must have shape ({n}, {self.n_out}); got {grad_output.shape}")
        grad_output = _validation.kernel_ready(grad_output, self.dtype, "grad_output")
        dX = self._core.backward_output(X, grad_output, input_grad)
        grad_weights, grad_biases = self._grad_weight_views, self._grad_bias_views
        if copy:
            grad_weights = tuple(g.copy() for g in grad_weights)
            grad_biases = tuple(g.copy() for g in grad_biases)
            dX = None if dX is None else dX.copy()
        if input_grad:
            return grad_weights, grad_biases, dX
        return grad_weights, grad_biases

    # -- training -------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike, *, epochs: int = 10, batch_size: int = 32,
            optimizer: Union[optim.OptimizerName, optim.Optimizer] = "sgd",
            lr: Optional[float] = None, sample_weight: Optional[ArrayLike] = None,
            shuffle: bool = True, seed: Optional[int] = None,
            validation_data: Optional[training.ValidationData] = None,
            validation_split: float = 0.0, early_stopping: bool = False, patience: int = 10,
            min_delta: float = 0.0,
            callbacks: Union[training.Callback, Iterable[training.Callback]] = (),
            verbose: bool = False) -> training.History:
        """Train by minibatch gradient descent.

        Each epoch (shuffling, minibatching, forward, backward and the
        optimizer update of every batch) runs inside the compiled core with
        the GIL released, returning to Python only between epochs (and, to
        notice Ctrl-C, between groups of batches: ``KeyboardInterrupt`` then
        propagates and the network keeps the weights of the last completed
        batch).

        Parameters
        ----------
        X : array_like, shape (n_samples, n_in)
        y : array_like
            As in :meth:`loss`.
        epochs : int, default 10
        batch_size : int, default 32
            The last batch of an epoch may be smaller.
        optimizer : {"sgd", "adam", "adamw"} or pybackprop.optim.Optimizer, default "sgd"
            A name builds that optimizer with default settings (and ``lr``);
            pass an instance for momentum, weight decay or a schedule.  An
            instance keeps its state across ``fit`` calls.
        lr : float, optional
            Learning rate (overrides the optimizer's base rate); the default
            is the optimizer's own (SGD 0.01, Adam 0.001).
        sample_weight : array_like, shape (n_samples,), optional
            Each batch's loss is the weighted mean over its samples.
        shuffle : bool, default True
            Reshuffle the samples every epoch.
        seed : int, optional
            Seeds shuffling and the validation split.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
        validation_split : float in [0, 1), default 0
            Fraction of the samples (chosen at random) held out for validation.
        early_stopping : bool, default False
            Stop when the monitored loss (validation loss if there is
            validation data, else training loss) has not improved by more
            than ``min_delta`` for ``patience`` epochs, and restore the
            weights of the best epoch.
        patience : int, default 10
        min_delta : float, default 0
        callbacks : callable or list of callables
            ``callback(net, epoch, logs)`` after every epoch, with ``logs``
            a dict (epoch, loss, lr, val_loss, val_accuracy); returning True
            stops training.
        verbose : bool, default False
            Show a progress bar (tqdm) with the loss and validation metrics.

        Returns
        -------
        History
            Per-epoch training loss, validation loss and accuracy, learning
            rates, epochs run, best epoch, time and samples per second.

        Raises
        ------
        pybackprop.TrainingDiverged
            (a FloatingPointError) when the loss becomes NaN or infinite; the
            weights from the start of that epoch are restored first.
        """
        return training.fit(self, X, y, epochs=epochs, batch_size=batch_size,
                            optimizer=optimizer, lr=lr, sample_weight=sample_weight,
                            shuffle=shuffle, seed=seed, validation_data=validation_data,
                            validation_split=validation_split, early_stopping=early_stopping,
                            patience=patience, min_delta=min_delta, callbacks=callbacks,
                            verbose=verbose)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Class probabilities ``(n_samples, n_out)`` of a softmax or sigmoid network."""
        if self._output == "identity":
            raise ValueError("predict_proba needs a softmax or sigmoid output; this network's is identity")
        return self.predict(X)

    def predict_classes(self, X: ArrayLike) -> NDArray[np.intp]:
        """Predicted classes: the argmax of a softmax output ``(n_samples,)``;
        for a sigmoid output, each output thresholded at 0.5 (``(n_samples,)``
        when there is one output, else ``(n_samples, n_out)`` of 0/1)."""
        probabilities = self.predict_proba(X)
        if self._output == "softmax":
            return np.argmax(probabilities, axis=-1)
        classes = (probabilities > 0.5).astype(np.intp)
        return classes[..., 0] if self.n_out == 1 else classes

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Accuracy for classification networks (softmax, or sigmoid with
        binary cross-entropy), else the coefficient of determination R^2
        averaged uniformly over outputs (as scikit-learn's ``r2_score``)."""
        # The same checks as a training step: shapes, NaN/inf, label ranges.
        checked: tuple[NDArray[Any], NDArray[Any], None] = self._core.check_batch(X, y)
        X, y, _ = checked
        if training.is_classifier(self):
            return training.accuracy(self, X, y)
        prediction = self.predict(X)
        y = y.reshape(prediction.shape).astype(np.float64)
        residual = np.sum((y - prediction) ** 2, axis=0)
        total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                          np.where(residual == 0, 1.0, 0.0))
        return float(np.mean(r2))

    # -- persistence ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Architecture and parameters as plain arrays and strings (copies);
        see :func:`pybackprop.io.state_dict` for the keys.  The parameters
        are one snapshot, taken between two calls of other threads."""
        return io.state_dict(self.copy())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy parameters from a :meth:`state_dict`-style mapping (checked
        completely before anything changes), written between two calls of
        other threads."""
        loaded = self.copy()
        io.load_state_dict(loaded, state, strict=strict)
        # Entries a non-strict state leaves out keep the network's values at
        # the write, not the copy's: another thread may be training.
        given = []  # per parameter, in the layout's order (per layer, W then b)
        for i, (W, b) in enumerate(zip(self._weight_views, self._bias_views)):
            given += [np.full(W.size, f"W{i}" in state), np.full(b.size, f"b{i}" in state)]
        mask = np.concatenate(given)
        self._core.write_params(loaded.parameters, mask=None if mask.all() else mask)

    def save(self, path: PathArgument, optimizer: Optional[io.SupportsStateDict] = None) -> None:
        """Save architecture, dtype and parameters (and an optimizer's state)
        to an ``.npz`` file; see :func:`pybackprop.io.save`.  The parameters
        are one snapshot, taken between two calls of other threads; the file
        is written after."""
        io.save(self.copy(), path, optimizer=optimizer)

    @overload
    @classmethod
    def load(cls, path: PathArgument, with_optimizer_state: Literal[False] = ...) -> MLP: ...

    @overload
    @classmethod
    def load(cls, path: PathArgument, with_optimizer_state: Literal[True],
             ) -> tuple[MLP, Optional[dict[str, Any]]]: ...

    @overload
    @classmethod
    def load(cls, path: PathArgument, with_optimizer_state: bool,
             ) -> Union[MLP, tuple[MLP, Optional[dict[str, Any]]]]: ...

    @classmethod
    def load(cls, path: PathArgument, with_optimizer_state: bool = False,
             ) -> Union[MLP, tuple[MLP, Optional[dict[str, Any]]]]:
        """Load a network saved by :meth:`save` (never unpickles); see
        :func:`pybackprop.load`."""
        return io.load(path, with_optimizer_state=with_optimizer_state)

    @classmethod
    def _from_network_state(cls, state: io.NetworkState) -> MLP:
        """A network on a checked :class:`pybackprop.io.NetworkState`, using
        its parameter vector in place (no initialisation drawn)."""
        net = cls.__new__(cls)
        net._build(state.layer_sizes, state.activations, state.output, state.loss,
                   state.parameters)
        return net

    def copy(self) -> MLP:
        """An independent network with the same architecture and parameters
        (a snapshot, taken between two calls of other threads)."""
        params = np.empty_like(self._params)
        self._core.read_params(params)
        clone = MLP.__new__(MLP)
        clone._build(self._layer_sizes, self._activations, self._output, self._loss, params)
        return clone


# io builds the networks it loads with this (io never imports this module).
io._network_builder = MLP._from_network_state
