r"""One training engine for every architecture: a model protocol, one optimizer, one loop.

A *model* here is an architecture without weights: it knows how to turn a list of parameter
arrays into outputs, and outputs into a loss and its gradients. Every parameter array carries a
leading **replica axis** of length R: replica ``r`` of every array is one independent network,
and all R networks run in the same batched matrix products (replicas are a shape, not a loop,
as in ``torch.func.vmap``). A model is anything with these three methods (:class:`Model`):

- ``loss_and_gradients(params, x, y) -> (loss, grads)``: each replica's mean loss on its own
  minibatch (``x`` has shape ``(R, B, ...)``, ``y`` ``(R, B, ...)``), shape ``(R,)``, and the
  gradients of the *sum* over replicas of those losses, shaped like `params` (so replica r's
  slice is the gradient of its own loss);
- ``predict(params, x) -> outputs``: every replica's outputs on one shared batch ``x`` of shape
  ``(n, ...)``, shape ``(R, n, outputs)``;
- ``loss(outputs, y) -> loss``: each replica's mean loss of outputs against shared targets,
  shape ``(R,)``.

:func:`fit` trains any model; :class:`Optimizer` is SGD with momentum and Adam, written once,
vectorized over the replica axis; :class:`FitResult` is the one record. The adapters
:class:`MLPModel`, :class:`MuPModel`, :class:`RNNModel`, :class:`CNNModel` and
:class:`ResidualModel` make the book's networks models of the protocol, reusing the forward and
backward passes of their modules.

What a replica owns: its initial parameters (row r of each array), its learning rate, its
per-layer rate multipliers (muP), and its seed, from which an independent
:class:`numpy.random.Generator` draws its own minibatch order every epoch. Replica r of a run of
R replicas therefore follows, step for step, the run of that replica alone with the same seed
(tests check this to 1e-12 in float64 for every adapter).

What the chapters need, and where it lives:

- the loss belongs to the model: cross-entropy for the classifiers, mean squared error for
  :class:`RNNModel` (the adding problem); regression targets make :func:`fit` select on the
  validation loss, labels on the validation accuracy;
- gradient clipping per replica (``clip``), full-batch gradient descent (``full_batch=True``,
  ``optimizer="sgd"``, ``momentum=0``) and muP's per-layer rates (``layer_multipliers``, or the
  model's ``default_multipliers``) are settings of the one loop, not other loops;
- the record: per epoch, the training loss and the validation metric (:class:`FitResult`);
  per step, the loss and the gradient norm (``record_steps=True``); anything else, such as the
  sharpness (:func:`replica_sharpness`, from :meth:`MLPModel.hvp`), through
  ``monitor(params)``, called every epoch;
- divergence: a replica whose loss or gradients stop being finite is marked, frozen (step size
  zero) and kept: NaN in the record from then on, never dropped from a table;
- speed: the adapters return float32 parameters unless asked for float64, parameters are
  contiguous stacked arrays, and the optimizer updates them in place.

This module is the only trainer of the book: the six trainers of the second edition
(``train``, ``train_batched``, ``train_rnn``, ``train_residual``, ``train_cnn``,
``train_replicas``) and ``gradient_descent`` are gone, and so are their optimizers and result
types. Two of their habits are settings here: one minibatch order for every replica is one seed
repeated in `seeds`, and muP's divergence rule is ``diverge_above=100 * log(C)``. Verdicts
from trained replicas come from :mod:`eiginit.training.protocol`.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from eiginit._checks import (
    _describe,
    cast_finite,
    check_betas,
    check_entries,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_rates,
    check_replica_params,
)
from eiginit.datasets import Dataset
from eiginit.models.convolution import CNN1d, _conv_backward
from eiginit.models.losses import replica_cross_entropy, shared_cross_entropy
from eiginit.models.network import MLP, _activation, _check_activation, _derivative
from eiginit.models.parametrization import LayerScale, _check_scales, _loss_grads, init_weights
from eiginit.models.parametrization import _forward as _mup_forward
from eiginit.models.recurrent import ElmanRNN
from eiginit.models.residual import ResidualClassifier, ResidualStack
from eiginit.theory.curvature import _second_derivative
from eiginit.theory.second_order import (
    check_arguments,
    check_labels,
    cnn_hvp,
    residual_hvp,
    rnn_hvp,
)

__all__ = [
    "CNNModel",
    "FitResult",
    "MLPModel",
    "Model",
    "MuPModel",
    "Optimizer",
    "RNNModel",
    "ResidualModel",
    "fit",
    "replica_sharpness",
]


# ----------------------------------------------------------------------------- the protocol
@runtime_checkable
class Model(Protocol):
    """The three calls :func:`fit` makes of an architecture (see the module docstring).

    Every array in ``params`` has the replica axis first; ``x`` and ``y`` of
    ``loss_and_gradients`` hold one minibatch per replica, ``(R, B, ...)``; ``predict`` takes one
    batch shared by all replicas, ``(n, ...)``, and returns ``(R, n, outputs)``. A model may
    also define ``hvp(params, x, y, vectors) -> list`` (Hessian-vector products) for curvature,
    and ``default_multipliers`` (the per-array learning-rate multipliers :func:`fit` uses when it
    is given none, shape ``(P,)`` or ``(R, P)``).
    """

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each replica's mean loss on its own minibatch, and the gradients of every array."""
        ...

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's outputs on one shared batch, shape (R, n, outputs)."""
        ...

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean loss of `outputs` (R, n, ...) against shared targets `y`."""
        ...


# ----------------------------------------------------------------------------- losses
def _mean_squared_error(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    error = outputs - np.asarray(y, dtype=outputs.dtype)
    return np.mean(error * error, axis=tuple(range(1, outputs.ndim)), dtype=np.float64)


def _shared_first_layer(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Return x W_r^T for every replica r, shape (R, n, fan_out), as one 2-D matrix product.

    The replicas' first-layer weights (R, fan_out, fan_in) stand side by side; a batch shared by
    all replicas then needs no copy per replica (numpy's stacked matmul is slow on a broadcast
    operand).
    """
    R, fan_out = W.shape[:2]
    h = x @ W.reshape(R * fan_out, -1).T
    return np.ascontiguousarray(h.reshape(x.shape[0], R, fan_out).transpose(1, 0, 2))


def _check_networks(nets: Any, kind: type, architecture: Callable[[Any], str]) -> Any:
    """Check that `nets` is a non-empty list of `kind` with one `architecture`; return nets[0].

    The adapters' ``from_networks`` stack networks built one by one (each from its own
    generator), so they must agree on everything but their weights.
    """
    label = f"eiginit.{kind.__name__}"
    if isinstance(nets, kind | str) or not isinstance(nets, Sequence):
        raise TypeError(f"nets must be a list of {label}, got {_describe(nets)}")
    if not nets:
        raise ValueError("nets must hold at least one network, got an empty list")
    for i, net in enumerate(nets):
        if not isinstance(net, kind):
            raise TypeError(f"nets[{i}] must be an {label}, got {_describe(net)}")
        if architecture(net) != architecture(nets[0]):
            raise ValueError(
                f"nets must share one architecture: nets[0] has {architecture(nets[0])}, "
                f"nets[{i}] has {architecture(net)}"
            )
    return nets[0]


def _concatenate(parameter_lists: Any) -> list[np.ndarray]:
    """Join several networks' parameter lists along the replica axis, array by array."""
    return [np.concatenate(arrays) for arrays in zip(*parameter_lists, strict=True)]


def _cast(arrays: Sequence[np.ndarray], dtype: Any) -> list[np.ndarray]:
    """Return contiguous copies of `arrays` as `dtype` (refusing values beyond its range)."""
    dtype = check_float_dtype(dtype)
    for i, a in enumerate(arrays):
        if not np.all(np.isfinite(a)):
            raise ValueError(
                f"the network's parameters must be finite, got NaN or inf in array {i}"
            )
    return [np.ascontiguousarray(cast_finite(a, dtype, "the network's parameters")) for a in arrays]


# ----------------------------------------------------------------------------- the MLP
@dataclass(frozen=True)
class MLPModel:
    r"""R stacked multilayer perceptrons (:class:`eiginit.MLP`) as a :class:`Model`.

    .. math:: x_\ell = \phi_\ell(x_{\ell-1} W_\ell^\top + b_\ell), \qquad \ell = 1..L,

    with the softmax cross-entropy on the logits :math:`x_L`. Parameters are
    ``[W_1, ..., W_L, b_1, ..., b_L]`` (weights ``(R, fan_out, fan_in)``, PyTorch's layout,
    biases ``(R, fan_out)``); the forward and backward passes are written out here.

    Attributes
    ----------
    activations : tuple of str
        The activation of every layer (the last is usually ``"linear"``).
    negative_slope : float, default 0.01
        The leaky ReLU's slope.
    """

    activations: tuple[str, ...]
    negative_slope: float = 0.01
    # Buffers that loss_and_gradients reuses from one call to the next (see _buffers).
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.activations, str) or not isinstance(self.activations, Sequence):
            raise TypeError(
                f"activations must be a sequence of activation names, got "
                f"{_describe(self.activations)}"
            )
        names = tuple(_check_activation(a, "activations") for a in self.activations)
        if not names:
            raise ValueError("activations must name at least one layer, got none")
        object.__setattr__(self, "activations", names)
        check_positive_float(self.negative_slope, "negative_slope")

    @classmethod
    def from_networks(
        cls, nets: Sequence[MLP], *, dtype: Any = np.float32
    ) -> tuple[MLPModel, list[np.ndarray]]:
        """Stack R networks of one architecture: return the model and its parameters (copies).

        Parameters
        ----------
        nets : sequence of eiginit.MLP
            Same sizes, activations and dtype.
        dtype : numpy dtype, default float32
            The parameters' type (float32 is the fast default; float64 for exact comparisons).

        Returns
        -------
        model : MLPModel
        params : list of numpy.ndarray
            ``[W_1, ..., W_L, b_1, ..., b_L]``, each with the replica axis first.

        Examples
        --------
        >>> import functools
        >>> from eiginit import MLP, kaiming_normal
        >>> init = functools.partial(kaiming_normal, nonlinearity="relu")
        >>> nets = [MLP.create([4, 8, 3], "relu", init, rng=np.random.default_rng(s))
        ...         for s in range(2)]
        >>> model, params = MLPModel.from_networks(nets)
        >>> model.activations, [p.shape for p in params]
        (('relu', 'linear'), [(2, 8, 4), (2, 3, 8), (2, 8), (2, 3)])
        """
        first = _check_networks(
            nets,
            MLP,
            lambda n: (
                f"sizes {n.sizes}, {n.activation} (output {n.output_activation}, slope "
                f"{n.negative_slope!r}), {n.dtype}"
            ),
        )
        depth = first.depth
        model = cls(tuple(first.layer_activation(i) for i in range(depth)), first.negative_slope)
        weights = [np.stack([n.weights[i] for n in nets]) for i in range(depth)]
        biases = [np.stack([n.biases[i] for n in nets]) for i in range(depth)]
        return model, _cast(weights + biases, dtype)

    def network(self, params: Sequence[np.ndarray], index: int) -> MLP:
        """Return replica `index` of `params` as an :class:`eiginit.MLP` (copies)."""
        depth = len(self.activations)
        index = check_int(index, "index", maximum=params[0].shape[0] - 1)
        hidden = self.activations[0]
        return MLP(
            tuple(W[index].copy() for W in params[:depth]),
            tuple(b[index].copy() for b in params[depth:]),
            hidden,
            self.activations[-1],
            self.negative_slope,
        )

    def _act(self, layer: int, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply layer `layer`'s activation to h (ReLU into `out` if given, e.g. h itself)."""
        act = self.activations[layer]
        if act == "linear":
            return h
        if act == "relu":
            # np.maximum is about three times faster against a row of zeros than against 0.
            return np.maximum(h, np.zeros(h.shape[-1], h.dtype), out=out)
        return _activation(act, h, self.negative_slope)

    def _forward(
        self, params: Sequence[np.ndarray], x: np.ndarray, start: int = 0
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run layers `start`.. on x (R, B, n_start); return activations and preactivations."""
        depth = len(self.activations)
        xs, hs = [x], []
        for layer in range(start, depth):
            # numpy's stacked matmul is several times slower on a transposed view as its second
            # operand, so the (small) transpose is copied first.
            h = np.matmul(xs[-1], np.ascontiguousarray(params[layer].transpose(0, 2, 1)))
            h += params[depth + layer][:, None, :]
            hs.append(h)
            xs.append(self._act(layer, h))
        return xs, hs

    def _buffers(self, params: Sequence[np.ndarray], x: np.ndarray) -> dict[str, list]:
        """Return per-layer work arrays for a minibatch like `x`, reused while shapes stay.

        Fresh arrays of this size cost page faults on every call (the allocator hands their
        memory back to the system between steps). Nothing that ``loss_and_gradients`` returns
        is one of them.
        """
        depth = len(self.activations)
        key = (x.shape, x.dtype, tuple(W.shape for W in params[:depth]))
        if self._cache.get("key") != key:
            R, B = x.shape[:2]
            fan_out = [W.shape[1] for W in params[:depth]]
            self._cache.clear()
            self._cache["key"] = key
            self._cache["WT"] = [
                np.empty((R, W.shape[2], W.shape[1]), W.dtype) for W in params[:depth]
            ]
            self._cache["h"] = [np.empty((R, B, n), x.dtype) for n in fan_out]
            self._cache["mask"] = [np.empty((R, B, n), bool) for n in fan_out]
            self._cache["g"] = [np.empty_like(x)] + [np.empty((R, B, n), x.dtype) for n in fan_out]
        return self._cache

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        r"""Mean cross-entropy per replica and backpropagation's gradients.

        With :math:`\delta_L = (\mathrm{softmax}(x_L) - e_y)/B`: :math:`\partial \mathcal L /
        \partial W_\ell = \delta_\ell^\top x_{\ell-1}`, :math:`\partial \mathcal L / \partial
        b_\ell = \sum_{\text{batch}} \delta_\ell`, :math:`\delta_{\ell-1} = (\delta_\ell
        W_\ell) \odot \phi'(h_{\ell-1})`.

        The forward pass is ``_forward``'s arithmetic, operation for operation, written into
        buffers reused from call to call: ReLU in place, its derivative :math:`1[h_\ell > 0] =
        1[x_\ell > 0]` read off :math:`x_\ell = \mathrm{relu}(h_\ell)`.
        """
        depth = len(self.activations)
        work = self._buffers(params, x)
        xs, hs = [x], []
        for layer in range(depth):
            # numpy's stacked matmul is several times slower on a transposed view as its second
            # operand, so the (small) transpose is copied first.
            WT = work["WT"][layer]
            np.copyto(WT, params[layer].transpose(0, 2, 1))
            h = np.matmul(xs[-1], WT, out=work["h"][layer])
            h += params[depth + layer][:, None, :]
            hs.append(h)
            relu = self.activations[layer] == "relu"  # in place: later 1[h > 0] = 1[x > 0]
            xs.append(self._act(layer, h, out=h if relu else None))
        loss, g = replica_cross_entropy(xs[-1], y)
        # The gradients are fresh arrays (callers may keep them), carved from one block: the
        # allocator keeps one large block for the next call, where a dozen small ones would
        # each be handed back to the system and fault in again.
        block = np.empty(sum(p.size for p in params), x.dtype)
        ends = np.cumsum([p.size for p in params])
        grads = [block[e - p.size : e].reshape(p.shape) for e, p in zip(ends, params, strict=True)]
        for layer in reversed(range(depth)):
            act = self.activations[layer]
            if act == "relu":
                g *= np.greater(xs[layer + 1], 0, out=work["mask"][layer])  # = 1[h > 0]
            elif act == "tanh":
                g *= 1 - xs[layer + 1] * xs[layer + 1]
            elif act != "linear":
                g *= _derivative(act, hs[layer], self.negative_slope)
            np.matmul(g.transpose(0, 2, 1), xs[layer], out=grads[layer])
            np.einsum("rbn->rn", g, out=grads[depth + layer])  # g.sum(axis=1), twice as fast
            if layer:
                g = np.matmul(g, params[layer], out=work["g"][layer])
        return loss, grads

    def hvp(
        self,
        params: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        vectors: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        r"""Every replica's Hessian of its minibatch loss times a direction, exactly.

        Pearlmutter's R-operator (Pearlmutter 1994, section 3), forward mode over the backward
        pass, as :func:`eiginit.hessian_vector_product` computes it for one network: with
        :math:`R\{\cdot\} = \frac{d}{dt}(\cdot)(\theta + t v)|_{t=0}` and :math:`V_\ell,
        c_\ell` the parts of :math:`v` for :math:`W_\ell, b_\ell`,

        .. math::

            R\{h_\ell\} = R\{x_{\ell-1}\} W_\ell^\top + x_{\ell-1} V_\ell^\top + c_\ell,
            \qquad R\{x_\ell\} = \phi'(h_\ell) \odot R\{h_\ell\},

        then :math:`R\{\bar z\} = (p \odot R\{z\} - p\, \langle p, R\{z\}\rangle)/B`
        for the softmax :math:`p` and, layer by layer down,
        :math:`R\{\delta_\ell\} = \phi'(h_\ell) \odot R\{\bar x_\ell\} + \phi''(h_\ell)
        \odot \bar x_\ell \odot R\{h_\ell\}`, :math:`R\{\nabla W_\ell\} =
        R\{\delta_\ell\}^\top x_{\ell-1} + \delta_\ell^\top R\{x_{\ell-1}\}`,
        :math:`R\{\bar x_{\ell-1}\} = R\{\delta_\ell\} W_\ell + \delta_\ell V_\ell`.
        ReLU's :math:`\phi''` is 0 (exact away from the kink).

        Parameters
        ----------
        params : list of numpy.ndarray
            ``[W_1, ..., W_L, b_1, ..., b_L]``, replica axis first.
        x : numpy.ndarray, shape (replicas, batch, n_0)
        y : numpy.ndarray of int, shape (replicas, batch)
        vectors : list of numpy.ndarray
            The direction, one array per parameter array, same shapes.

        Returns
        -------
        list of numpy.ndarray
            :math:`H_r v_r` for every replica, shaped like `params`.
        """
        params, x, y, vectors = check_arguments(params, x, y, vectors)
        y = check_labels(y, params[len(self.activations) - 1].shape[1])
        depth = len(self.activations)
        Ws, Vs, cs = params[:depth], vectors[:depth], vectors[depth:]
        xs, hs = self._forward(params, x)
        r_x = np.zeros_like(x)
        r_xs, r_hs = [r_x], []
        for layer in range(depth):
            r_h = np.matmul(r_xs[-1], np.swapaxes(Ws[layer], 1, 2))
            r_h += np.matmul(xs[layer], np.swapaxes(Vs[layer], 1, 2))
            r_h += cs[layer][:, None, :]
            r_hs.append(r_h)
            act = self.activations[layer]
            slope = _derivative(act, hs[layer], self.negative_slope)
            r_xs.append(r_h * slope)
        _, g = replica_cross_entropy(xs[-1], y)  # (p - e_y) / B
        B = x.shape[1]
        p = g * B
        p[np.arange(p.shape[0])[:, None], np.arange(B)[None, :], y] += 1
        r_z = r_xs[-1]
        r_g = (p * r_z - p * np.sum(p * r_z, axis=2, keepdims=True)) / B
        out: list[Any] = [None] * (2 * depth)
        for layer in reversed(range(depth)):
            act = self.activations[layer]
            d1 = _derivative(act, hs[layer], self.negative_slope)
            delta = g * d1
            r_delta = r_g * d1
            d2 = _second_derivative(act, hs[layer])
            if d2 is not None:
                r_delta = r_delta + d2 * g * r_hs[layer]
            out[layer] = np.matmul(np.swapaxes(r_delta, 1, 2), xs[layer]) + np.matmul(
                np.swapaxes(delta, 1, 2), r_xs[layer]
            )
            out[depth + layer] = r_delta.sum(axis=1)
            if layer:
                r_g = np.matmul(r_delta, Ws[layer]) + np.matmul(delta, Vs[layer])
                g = np.matmul(delta, Ws[layer])
        return out

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's logits on a shared batch x (n, n_0), shape (R, n, n_L)."""
        depth = len(self.activations)
        WTs = [np.ascontiguousarray(W.transpose(0, 2, 1)) for W in params[1:depth]]
        chunks = []
        for start in range(0, x.shape[0], 1024):
            h = _shared_first_layer(x[start : start + 1024], params[0])
            h += params[depth][:, None, :]
            for layer in range(1, depth):  # _forward's arithmetic, activations in place
                h = np.matmul(self._act(layer - 1, h, out=h), WTs[layer - 1])
                h += params[depth + layer][:, None, :]
            chunks.append(self._act(depth - 1, h, out=h))
        return np.concatenate(chunks, axis=1)

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean softmax cross-entropy against shared labels y (n,)."""
        return shared_cross_entropy(outputs, y)


# ----------------------------------------------------------------------------- muP network
@dataclass(frozen=True)
class MuPModel:
    r"""The bias-free ReLU network of :mod:`eiginit.models.parametrization` (SP or muP) as a model.

    :math:`x_\ell = \mathrm{relu}(x_{\ell-1} W_\ell^\top)` for :math:`\ell < L`, logits
    :math:`x_L = x_{L-1} W_L^\top`, softmax cross-entropy; the forward and backward passes are
    :func:`eiginit.forward_replicas` and :func:`eiginit.loss_and_gradients`. Parameters are
    ``[W_1, ..., W_L]``; :attr:`default_multipliers` are the layers' learning-rate
    multipliers :math:`m_\ell` (muP's per-layer rates), which :func:`fit` applies unless it is
    given other `layer_multipliers`.

    Attributes
    ----------
    scales : tuple of LayerScale
        From :func:`eiginit.parametrize`.
    """

    scales: tuple[LayerScale, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", _check_scales(self.scales))

    @classmethod
    def create(
        cls,
        scales: Sequence[LayerScale],
        *,
        replicas: int,
        rng: np.random.Generator,
        zero_readout: bool = False,
        dtype: Any = np.float32,
    ) -> tuple[MuPModel, list[np.ndarray]]:
        """Draw `replicas` networks with :func:`eiginit.init_weights`; return model, params."""
        model = cls(tuple(scales))
        weights = init_weights(
            model.scales, replicas=replicas, rng=rng, zero_readout=zero_readout, dtype=dtype
        )
        return model, list(weights)

    @property
    def default_multipliers(self) -> np.ndarray:
        """Return each layer's learning-rate multiplier, shape (L,)."""
        return np.array([s.lr_multiplier for s in self.scales])

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean cross-entropy per replica and its gradients (parametrization's backward)."""
        return _loss_grads(params, x, y)

    def hvp(
        self,
        params: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        vectors: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        r"""Every replica's Hessian of its minibatch loss times a direction, exactly.

        The network is the bias-free ReLU MLP with a linear readout, so the product is
        :meth:`MLPModel.hvp` (Pearlmutter's R-operator) with zero biases and a zero bias
        direction, of which the weight blocks :math:`H_{WW} v` are kept. The layers'
        multipliers :math:`m_\ell` scale the learning rates, not the loss: the Hessian is that of
        the loss in the stored weights. x (R, B, n_0), y (R, B); returns arrays shaped like
        `params`.
        """
        params, x, y, vectors = check_arguments(params, x, y, vectors)
        y = check_labels(y, params[-1].shape[1])
        R, dtype = params[0].shape[0], params[0].dtype
        zeros = [np.zeros((R, W.shape[1]), dtype) for W in params]
        mlp = MLPModel(("relu",) * (len(params) - 1) + ("linear",))
        return mlp.hvp(list(params) + zeros, x, y, list(vectors) + zeros)[: len(params)]

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's logits on a shared batch, shape (R, n, classes)."""
        if len(params) == 1:
            return _shared_first_layer(x, params[0])
        first = np.maximum(_shared_first_layer(x, params[0]), 0)
        return _mup_forward(params[1:], first)[-1]

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean softmax cross-entropy against shared labels."""
        return shared_cross_entropy(outputs, y)


# ----------------------------------------------------------------------------- Elman RNN
@dataclass(frozen=True)
class RNNModel:
    r"""Stacked Elman networks (:class:`eiginit.ElmanRNN`) with the mean squared error.

    The loss of replica r on a minibatch is :math:`\frac{1}{B o}\sum \|y - \hat y\|^2` of the
    readout :math:`\hat y = V h_T + c`; gradients by :meth:`eiginit.ElmanRNN.backward`
    (backpropagation through time). Parameters are ``[w_in, w_rec, bias, w_out, b_out]``.
    Inputs are sequences ``(n, T, d)`` (for example :func:`eiginit.adding_problem`), targets
    ``(n, o)``. Clip gradients with ``fit(..., clip=...)``.

    Attributes
    ----------
    activation : str, default "tanh"
    """

    activation: str = "tanh"

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", _check_activation(self.activation))

    @classmethod
    def from_network(
        cls, net: ElmanRNN, *, dtype: Any = np.float32
    ) -> tuple[RNNModel, list[np.ndarray]]:
        """Return the model of an :class:`eiginit.ElmanRNN` and its parameters as `dtype`."""
        if not isinstance(net, ElmanRNN):
            raise TypeError(f"net must be an eiginit.ElmanRNN, got {_describe(net)}")
        return cls(net.activation), _cast(net.parameters(), dtype)

    @classmethod
    def from_networks(
        cls, nets: Sequence[ElmanRNN], *, dtype: Any = np.float32
    ) -> tuple[RNNModel, list[np.ndarray]]:
        """Stack the models of several :class:`eiginit.ElmanRNN` into one run of replicas.

        Build each network from its own generator and stack them here: replica r's weights then
        come from generator r alone, whatever else is stacked with it (the protocol's
        ``Contender.build`` needs exactly that).

        Parameters
        ----------
        nets : sequence of eiginit.ElmanRNN
            Same sizes and activation; each may hold several models.
        dtype : numpy dtype, default float32

        Returns
        -------
        model : RNNModel
        params : list of numpy.ndarray
            ``[w_in, w_rec, bias, w_out, b_out]``, the networks' models one after another.

        Examples
        --------
        >>> nets = [ElmanRNN.create(np.eye(4), 2, 1, rng=np.random.default_rng(s)) for s in (0, 1)]
        >>> model, params = RNNModel.from_networks(nets)
        >>> model.activation, [p.shape for p in params]
        ('tanh', [(2, 4, 2), (2, 4, 4), (2, 4), (2, 1, 4), (2, 1)])
        """
        first = _check_networks(
            nets,
            ElmanRNN,
            lambda n: (
                f"{n.activation} units, parameter shapes {[p.shape[1:] for p in n.parameters()]}"
            ),
        )
        return cls(first.activation), _cast(_concatenate(n.parameters() for n in nets), dtype)

    def _net(self, params: Sequence[np.ndarray]) -> ElmanRNN:
        return ElmanRNN(*params, activation=self.activation)

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean squared error per replica and its gradients by backpropagation through time.

        A replica whose state or gradient leaves the float range gets a non-finite loss and
        gradients here, not an exception: :func:`fit` marks it diverged and the others go on.
        """
        net = self._net(params)
        with np.errstate(over="ignore", invalid="ignore"):
            fp = net._forward(net._as_inputs(x))
        _check_target_shape(np.shape(y), fp.output.shape, "y")
        with np.errstate(over="ignore", invalid="ignore"):
            error = fp.output - y
            loss = np.mean(error * error, axis=(1, 2), dtype=np.float64)
            grads = net._backward(fp, (2.0 / (error.shape[1] * error.shape[2])) * error)
        return loss, list(grads.parameters())

    def hvp(
        self,
        params: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        vectors: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        """Every replica's Hessian of its mean squared error times a direction, exactly.

        Pearlmutter's R-operator through backpropagation through time
        (``eiginit.theory.second_order.rnn_hvp``). x (R, B, T, d), y (R, B, o); `vectors` and the
        result are shaped like `params`.
        """
        params, x, y, vectors = check_arguments(params, x, y, vectors)
        if x.ndim != 4 or y.shape[2:] != (params[3].shape[1],):
            raise ValueError(
                f"x must have shape (R, batch, T, d) and y (R, batch, {params[3].shape[1]}), got "
                f"{x.shape} and {y.shape}"
            )
        return rnn_hvp(params, self.activation, x, y.astype(params[0].dtype), vectors)

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's readout on shared sequences x (n, T, d), shape (R, n, o).

        A replica that overflows gets non-finite outputs (it is scored as diverged).
        """
        net = self._net(params)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.concatenate(
                [net._forward(net._as_inputs(x[s : s + 256])).output
                 for s in range(0, x.shape[0], 256)],
                axis=1,
            )  # fmt: skip

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean squared error against shared targets y (n, o)."""
        _check_target_shape(outputs.shape[:1] + np.shape(y), outputs.shape, "y")
        return _mean_squared_error(outputs, y)


def _check_target_shape(got: tuple[int, ...], expected: tuple[int, ...], name: str) -> None:
    """Refuse regression targets that would broadcast against the outputs instead of matching."""
    if tuple(got) != tuple(expected):
        raise ValueError(
            f"the targets {name} must have one row of {expected[-1]} output(s) per sequence, "
            f"shape {expected[1:]}, got shape {tuple(got[1:])}"
        )


# ----------------------------------------------------------------------------- 1-D CNN
@dataclass(frozen=True)
class CNNModel:
    r"""Stacked circular 1-D CNNs (:class:`eiginit.CNN1d`) with the softmax cross-entropy.

    Parameters are :attr:`eiginit.CNN1d.params`: ``[K_1, ..., K_L, b_1, ..., b_L, W_out,
    b_out]``. The forward pass is the network's own; the backward pass applies
    :func:`eiginit.conv1d_backward`'s chain rule layer by layer as :meth:`eiginit.CNN1d.gradients`
    does, with one minibatch (and one set of labels) per replica.

    Attributes
    ----------
    pool_after : tuple of int
    length : int
    """

    pool_after: tuple[int, ...]
    length: int

    @classmethod
    def from_network(
        cls, net: CNN1d, *, dtype: Any = np.float32
    ) -> tuple[CNNModel, list[np.ndarray]]:
        """Return the model of a :class:`eiginit.CNN1d` and its parameters as `dtype`."""
        if not isinstance(net, CNN1d):
            raise TypeError(f"net must be an eiginit.CNN1d, got {_describe(net)}")
        return cls(tuple(net.pool_after), int(net.length)), _cast(net.params, dtype)

    @classmethod
    def from_networks(
        cls, nets: Sequence[CNN1d], *, dtype: Any = np.float32
    ) -> tuple[CNNModel, list[np.ndarray]]:
        """Stack several :class:`eiginit.CNN1d` into one run of replicas.

        Build each network from its own generator and stack them here: replica r's weights then
        come from generator r alone, whatever else is stacked with it (the protocol's
        ``Contender.build`` needs exactly that).

        Parameters
        ----------
        nets : sequence of eiginit.CNN1d
            Same architecture (kernel shapes, pooling, length); each may hold several replicas.
        dtype : numpy dtype, default float32

        Returns
        -------
        model : CNNModel
        params : list of numpy.ndarray
            :attr:`eiginit.CNN1d.params` of the networks, one after another on the replica axis.

        Examples
        --------
        >>> from eiginit import delta_orthogonal
        >>> nets = [CNN1d.create(length=8, depth=2, channels=4, width=3, n_classes=2,
        ...                      init=delta_orthogonal, replicas=1, rng=np.random.default_rng(s))
        ...         for s in (0, 1, 2)]
        >>> model, params = CNNModel.from_networks(nets)
        >>> model.length, params[0].shape
        (8, (3, 4, 1, 3))
        """
        first = _check_networks(
            nets,
            CNN1d,
            lambda n: (
                f"parameter shapes {[p.shape[1:] for p in n.params]}, pool_after "
                f"{tuple(n.pool_after)}, length {n.length}"
            ),
        )
        model = cls(tuple(first.pool_after), int(first.length))
        return model, _cast(_concatenate(n.params for n in nets), dtype)

    def _check_length(self, x: np.ndarray) -> None:
        if x.shape[-1] != self.length:
            raise ValueError(
                f"data has signals of length {x.shape[-1]}, but the network takes length "
                f"{self.length}"
            )

    def _net(self, params: Sequence[np.ndarray]) -> CNN1d:
        depth = (len(params) - 2) // 2
        return CNN1d(
            list(params[:depth]),
            list(params[depth : 2 * depth]),
            params[-2],
            params[-1],
            self.pool_after,
            self.length,
        )

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean cross-entropy per replica and its gradients; x (R, B, n), y (R, B)."""
        self._check_length(x)
        net = self._net(params)
        X = np.ascontiguousarray(x.transpose(0, 2, 1))[..., None]  # (R, n, B, 1)
        logits, padded_inputs, masks, flat = net._forward(X)
        loss, g = replica_cross_entropy(logits, y)
        R, B, _ = logits.shape
        grad_readout = np.matmul(g.transpose(0, 2, 1), flat)
        grad_readout_bias = g.sum(axis=1)
        c = net.kernels[-1].shape[1]
        h_grad = np.matmul(g, net.readout).reshape(R, B, -1, c).transpose(0, 2, 1, 3)
        depth = len(net.kernels)
        grad_kernels: list[Any] = [None] * depth
        grad_biases: list[Any] = [None] * depth
        for layer in reversed(range(depth)):
            if layer + 1 in self.pool_after:  # each of the two pooled positions gets half
                h_grad = np.repeat(h_grad, 2, axis=1) / 2
            delta = h_grad * masks[layer]
            grad_biases[layer] = delta.sum(axis=(1, 2))
            h_grad, grad_kernels[layer] = _conv_backward(
                padded_inputs[layer], net.kernels[layer], delta
            )
        return loss, [*grad_kernels, *grad_biases, grad_readout, grad_readout_bias]

    def hvp(
        self,
        params: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        vectors: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        """Every replica's Hessian of its mean cross-entropy times a direction, exactly.

        Pearlmutter's R-operator through the convolutions, ReLUs and pooling
        (``eiginit.theory.second_order.cnn_hvp``). x (R, B, length), y (R, B); `vectors` and the
        result are shaped like `params`.
        """
        params, x, y, vectors = check_arguments(params, x, y, vectors)
        if x.shape[2:] != (self.length,):
            raise ValueError(f"x must have shape (R, batch, {self.length}), got shape {x.shape}")
        y = check_labels(y, params[-1].shape[1])
        X = np.ascontiguousarray(x.transpose(0, 2, 1))[..., None]
        return cnn_hvp(self._net(params), X, y, vectors)

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's logits on shared signals x (n, length), shape (R, n, classes)."""
        self._check_length(x)
        net = self._net(params)
        R = params[0].shape[0]
        chunks = []
        for start in range(0, x.shape[0], 64):  # a chunk's activations stay in cache
            part = x[start : start + 64].T
            chunks.append(
                net._forward(np.broadcast_to(part[None, :, :, None], (R, *part.shape, 1)))[0]
            )
        return np.concatenate(chunks, axis=1)

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean softmax cross-entropy against shared labels."""
        return shared_cross_entropy(outputs, y)


# ----------------------------------------------------------------------------- residual MLP
@dataclass(frozen=True, eq=False)
class ResidualModel:
    r"""The residual classifier of :mod:`eiginit.models.residual` as a model.

    Input layer, :class:`eiginit.ResidualStack`, ReLU and linear readout, with the softmax
    cross-entropy; the stack's own forward and backward passes. Parameters are
    :meth:`eiginit.ResidualClassifier.parameters`: ``[w_in, b_in, stack weights, alpha, w_out,
    b_out]``. The branch multipliers alpha train only where `train_alpha` is True (ReZero):
    :attr:`default_multipliers`, which :func:`fit` uses unless given `layer_multipliers`, gives
    the alpha array a learning-rate multiplier of 0 for the other replicas, so they never move.

    Attributes
    ----------
    template : ResidualStack
        Gives the stack's options (skip, norm, post-norm); its arrays are not used.
    train_alpha : numpy.ndarray of bool, shape (replicas,)
    """

    template: ResidualStack
    train_alpha: np.ndarray

    @property
    def default_multipliers(self) -> np.ndarray:
        """Return the rate multipliers, shape (replicas, 6): 0 for a frozen alpha, else 1."""
        mults = np.ones((len(self.train_alpha), 6))
        mults[:, 3] = self.train_alpha
        return mults

    @classmethod
    def from_network(
        cls, net: ResidualClassifier, *, dtype: Any = np.float32
    ) -> tuple[ResidualModel, list[np.ndarray]]:
        """Return the model of a :class:`eiginit.ResidualClassifier` and its arrays as `dtype`."""
        if not isinstance(net, ResidualClassifier):
            raise TypeError(f"net must be an eiginit.ResidualClassifier, got {_describe(net)}")
        model = cls(net.stack, np.asarray(net.train_alpha, dtype=bool).copy())
        return model, _cast(net.parameters(), dtype)

    def _stack(self, params: Sequence[np.ndarray]) -> ResidualStack:
        stack = copy.copy(self.template)
        # The stack's constructor refuses non-finite weights; a diverged replica has them, so
        # the checked template's options are kept and only its two arrays are swapped in.
        object.__setattr__(stack, "weights", params[2])
        object.__setattr__(stack, "alpha", params[3])
        return stack

    def _top(
        self, params: Sequence[np.ndarray], v: np.ndarray
    ) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        w_in, b_in, _, _, w_out, b_out = params
        stack = self._stack(params)
        fp = stack._run(v @ np.swapaxes(w_in, -1, -2) + b_in[:, None], strict=False)
        top = np.maximum(fp.output, 0)
        return stack, fp, top, top @ np.swapaxes(w_out, -1, -2) + b_out[:, None]

    def loss_and_gradients(
        self, params: list[np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Mean cross-entropy per replica and its gradients; x (R, B, d), y (R, B)."""
        stack, fp, top, z = self._top(params, x)
        loss, dz = replica_cross_entropy(z, y)
        d_out = np.swapaxes(dz, -1, -2) @ top
        g_top = (dz @ params[4]) * (fp.output > 0)
        grads = stack._backprop(fp, g_top)
        g0 = grads.inputs
        d_in = np.swapaxes(g0, -1, -2) @ x
        return loss, [d_in, g0.sum(axis=1), grads.weights, grads.alpha, d_out, dz.sum(axis=1)]

    def hvp(
        self,
        params: list[np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        vectors: Sequence[np.ndarray],
    ) -> list[np.ndarray]:
        """Every replica's Hessian of its mean cross-entropy times a direction, exactly.

        Pearlmutter's R-operator through the input layer, the stack (its normalizations
        included) and the readout (``eiginit.theory.second_order.residual_hvp``); the Hessian
        includes the alpha block whether or not alpha trains. x (R, B, d), y (R, B); `vectors`
        and the result are shaped like `params`.
        """
        params, x, y, vectors = check_arguments(params, x, y, vectors)
        if x.shape[2:] != (params[0].shape[2],):
            raise ValueError(
                f"x must have shape (R, batch, {params[0].shape[2]}), got shape {x.shape}"
            )
        if self.template.norm == "batch" and x.shape[1] < 2:
            raise ValueError(f"batch norm needs a batch of at least 2 inputs, got {x.shape}")
        y = check_labels(y, params[-1].shape[1])
        return residual_hvp(self._stack(params), params, x, y, vectors)

    def predict(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        """Every replica's logits on a shared batch x (n, d), shape (R, n, classes)."""
        return self._top(params, x)[3]

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each replica's mean softmax cross-entropy against shared labels."""
        return shared_cross_entropy(outputs, y)


# ----------------------------------------------------------------------------- the optimizer
class Optimizer:
    r"""SGD with heavy-ball momentum, or Adam, for R replicas at once, updating in place.

    Replica :math:`r`'s parameter array :math:`i` moves with the step size
    :math:`\eta_{r,i} = \eta_r\, m_{r,i}` (its learning rate times its layer's multiplier).

    SGD (PyTorch's form, ``torch.optim.SGD``):
    :math:`v \leftarrow \mu v + g`, :math:`\theta \leftarrow \theta - \eta v`.

    Adam (Kingma & Ba 2015, Algorithm 1): :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`, :math:`\theta \leftarrow \theta - \eta\,
    \hat m / (\sqrt{\hat v} + \epsilon)` with :math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v =
    v/(1-\beta_2^t)`, computed in the rearranged form of the paper's section 2,
    :math:`\theta \leftarrow \theta - \eta_t m / (\sqrt v + \hat\epsilon)` with
    :math:`\eta_t = \eta \sqrt{1-\beta_2^t}/(1-\beta_1^t)` and :math:`\hat\epsilon = \epsilon
    \sqrt{1-\beta_2^t}` (the same number).

    The gradients passed to :meth:`step` are used as scratch space and overwritten.

    Parameters
    ----------
    kind : {"adam", "sgd"}
    params : list of numpy.ndarray
        The arrays to update, each with the replica axis first.
    rates : numpy.ndarray, shape (replicas, len(params))
        :math:`\eta_{r,i}`, each > 0.
    momentum : float, default 0.9
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8

    Examples
    --------
    One Adam step moves every coordinate by about the learning rate, whatever the gradient:

    >>> theta = [np.ones((2, 3))]
    >>> opt = Optimizer("adam", theta, np.array([[0.1], [0.01]]))
    >>> opt.step(theta, [np.array([[1e-3, 1.0, 1e3], [1.0, 1.0, 1.0]])])
    >>> np.round(theta[0], 6).tolist()
    [[0.9, 0.9, 0.9], [0.99, 0.99, 0.99]]
    """

    def __init__(
        self,
        kind: str,
        params: list[np.ndarray],
        rates: np.ndarray,
        *,
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if not isinstance(kind, str) or kind.lower() not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {_describe(kind)}")
        self.kind = kind.lower()
        params = check_replica_params(params)
        R = params[0].shape[0]
        rates = np.asarray(rates, dtype=np.float64)
        if rates.shape != (R, len(params)) or not np.all(np.isfinite(rates) & (rates >= 0)):
            raise ValueError(
                f"rates must be an array of shape {(R, len(params))} of finite numbers >= 0, "
                f"got {_describe(rates)}"
            )
        self.momentum = _check_fraction(momentum, "momentum")
        self.betas = check_betas(betas)
        self.eps = check_positive_float(eps, "eps")
        self.rates = rates.copy()
        self.t = 0
        self.state1 = [np.zeros_like(p) for p in params]
        self.state2 = [np.zeros_like(p) for p in params] if self.kind == "adam" else []
        self._scratch = [np.empty_like(p) for p in params] if self.kind == "adam" else []
        self._columns = self._make_columns(params)

    def _make_columns(self, params: list[np.ndarray]) -> list[np.ndarray]:
        columns = [
            self.rates[:, i].reshape((-1,) + (1,) * (p.ndim - 1)) for i, p in enumerate(params)
        ]
        # SGD's step sizes in the parameters' dtype, cast once rather than every step
        self._cast_columns = [c.astype(p.dtype) for c, p in zip(columns, params, strict=True)]
        return columns

    def freeze(self, mask: np.ndarray, params: list[np.ndarray]) -> None:
        """Set the step size of the replicas in `mask` to zero from now on (diverged runs)."""
        self.rates[mask] = 0.0
        self._columns = self._make_columns(params)

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update `params` in place with `grads` (which are overwritten)."""
        self.t += 1
        if self.kind == "sgd":
            for p, g, v, col in zip(params, grads, self.state1, self._cast_columns, strict=True):
                v *= self.momentum
                v += g
                np.multiply(v, col, out=g)
                p -= g
            return
        b1, b2 = self.betas
        t = self.t
        correction = math.sqrt(1 - b2**t) / (1 - b1**t)
        eps_t = self.eps * math.sqrt(1 - b2**t)
        for p, g, m, v, col, scratch in zip(
            params, grads, self.state1, self.state2, self._columns, self._scratch, strict=True
        ):
            m *= b1
            m += np.multiply(g, 1 - b1, out=scratch)
            v *= b2
            np.multiply(g, g, out=g)
            g *= 1 - b2
            v += g
            np.sqrt(v, out=g)
            g += eps_t
            np.divide(m, g, out=g)
            g *= (col * correction).astype(p.dtype)
            p -= g


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class FitResult:
    """The record of one :func:`fit`: row ``r`` of every array is replica ``r``.

    Attributes
    ----------
    train_loss : numpy.ndarray, shape (replicas, epochs + 1)
        Column 0: the loss of the untrained replica on the whole training set; column ``e``:
        the mean minibatch loss during epoch ``e`` (weighted by minibatch size). NaN from the
        epoch a replica diverged, and after the run stopped early.
    val_metric : numpy.ndarray, shape (replicas, epochs + 1)
        The validation metric (see `metric`) before training and after every epoch; NaN as
        above, and all NaN without validation data.
    metric : str
        ``"accuracy"`` (higher is better) or ``"loss"`` (lower is better).
    best_epoch : numpy.ndarray of int, shape (replicas,)
        The epoch whose parameters were kept: the first with the best validation metric (the
        last epoch run if there is no validation data).
    diverged : numpy.ndarray of bool, shape (replicas,)
        Replicas whose loss, gradients or parameters stopped being finite (or whose loss
        exceeded `diverge_above`); they were frozen there and kept in every table.
    diverged_step : numpy.ndarray of int, shape (replicas,)
        The optimizer step (1-based) at which a replica was marked diverged; -1 if never.
    params : tuple of numpy.ndarray
        The kept (best-epoch) parameters, replica axis first.
    final_params : tuple of numpy.ndarray
        The parameters at the end of the run (frozen ones where a replica diverged).
    lr : numpy.ndarray, shape (replicas,)
    multipliers : numpy.ndarray, shape (replicas, len(params))
        Each replica's per-array learning-rate multipliers.
    seeds : tuple of int
        Each replica's minibatch-order seed (the entropy of its generator).
    optimizer : str
        The optimizer with its options.
    epochs_run : int
    step_loss, grad_norm : numpy.ndarray or None, shape (replicas, steps)
        With ``record_steps=True``: every minibatch's loss and the gradient's norm before
        clipping (NaN once diverged).
    monitored : dict of str to numpy.ndarray
        What the `monitor` callback returned, each ``(R, epochs + 1)``.
    """

    train_loss: np.ndarray
    val_metric: np.ndarray
    metric: str
    best_epoch: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    params: tuple[np.ndarray, ...]
    final_params: tuple[np.ndarray, ...]
    lr: np.ndarray
    multipliers: np.ndarray
    seeds: tuple[int, ...]
    optimizer: str
    epochs_run: int
    step_loss: np.ndarray | None = None
    grad_norm: np.ndarray | None = None
    monitored: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        """The number of replicas R."""
        return int(self.train_loss.shape[0])

    @property
    def best_value(self) -> np.ndarray:
        """Each replica's validation metric at its kept epoch, shape (R,)."""
        return self.val_metric[np.arange(self.replicas), self.best_epoch]


# ----------------------------------------------------------------------------- checks
def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {_describe(value)}")
    if not 0 <= float(value) < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _check_data(data: Any) -> tuple[Any, Any, Any, Any]:
    if isinstance(data, Dataset):
        return data.x_train, data.y_train, data.x_val, data.y_val
    if isinstance(data, tuple) and len(data) in (2, 4):
        return (*data, None, None) if len(data) == 2 else data
    raise TypeError(
        "data must be an eiginit.Dataset or a tuple (x_train, y_train) or (x_train, y_train, "
        f"x_val, y_val), got {_describe(data)}"
    )


def _as_inputs(x: Any, name: str, dtype: np.dtype) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf" or x.ndim < 2:
        raise TypeError(f"{name} must be a real array with one example per row, got {_describe(x)}")
    if x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be non-empty and finite, got {_describe(x)}")
    return np.ascontiguousarray(cast_finite(x, dtype, name))


def _as_targets(y: Any, name: str, rows: int, dtype: np.dtype) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iuf" or y.shape[:1] != (rows,):
        raise TypeError(
            f"{name} must be an array of integer labels or real targets with one row per "
            f"example ({rows}), got {_describe(y)}"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} must be finite, got NaN or inf in {_describe(y)}")
        return cast_finite(y, dtype, name)
    if y.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0, got {int(y.min())}")
    return y.astype(np.int64)


def _seeds(seeds: Any, R: int) -> list[int]:
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be an int or one int per replica, got {_describe(seeds)}")
    if isinstance(seeds, numbers.Integral):
        if seeds < 0:
            raise ValueError(f"seeds must be >= 0, got {seeds}")
        if R == 1:
            return [int(seeds)]
        # one root seed: R independent children (numpy's SeedSequence.spawn).
        children = np.random.SeedSequence(int(seeds)).generate_state(R, dtype=np.uint64)
        return [int(c) for c in children]
    if isinstance(seeds, np.ndarray):
        seeds = seeds.tolist()
    if isinstance(seeds, str) or not isinstance(seeds, Sequence) or len(seeds) != R:
        raise ValueError(
            f"seeds must be an int or a sequence of {R} ints (one per replica), got "
            f"{_describe(seeds)}"
        )
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise TypeError(f"seeds must hold non-negative integers, got {_describe(s)}")
        out.append(int(s))
    return out


def _multipliers(value: Any, R: int, P: int) -> np.ndarray:
    if value is None:
        return np.ones((R, P))
    if isinstance(value, str):
        raise TypeError(f"layer_multipliers must be numbers, got {_describe(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"layer_multipliers must be numbers, one per parameter array ({P}) or an (R, {P}) "
            f"array, got {_describe(value)}"
        ) from error
    if array.shape not in ((P,), (R, P)):
        raise ValueError(
            f"layer_multipliers must have shape ({P},) (one per parameter array) or ({R}, {P}), "
            f"got {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"layer_multipliers must be finite and >= 0, got {array.tolist()}")
    return np.broadcast_to(array, (R, P)).copy()


def _lr_schedule(value: Any, R: int, steps: int) -> np.ndarray | None:
    """Return the learning-rate multipliers of every replica and step, shape (R, steps).

    `value` is None (no schedule), a callable ``t -> float or (R,) array`` or an array of shape
    ``(steps,)`` or ``(R, steps)``; every multiplier must be finite and >= 0.
    """
    if value is None:
        return None
    if isinstance(value, str | bytes | bool | np.bool_):
        raise TypeError(
            f"lr_schedule must be a callable step -> multiplier or an array of multipliers, got "
            f"{_describe(value)}"
        )
    if callable(value):
        rows = []
        for t in range(steps):
            out = value(t)
            try:
                row = np.asarray(out, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise TypeError(
                    f"lr_schedule({t}) must return a number or {R} numbers, got {_describe(out)}"
                ) from error
            if row.shape not in ((), (R,)):
                raise ValueError(
                    f"lr_schedule({t}) must return a number or one per replica ({R}), got shape "
                    f"{row.shape}"
                )
            rows.append(np.broadcast_to(row, (R,)))
        array = np.stack(rows, axis=1) if rows else np.ones((R, 0))
        what = "lr_schedule(t)"
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"lr_schedule must be a callable or an array of numbers, got {_describe(value)}"
            ) from error
        if array.shape not in ((steps,), (R, steps)):
            raise ValueError(
                f"lr_schedule must have shape ({steps},) (one multiplier per step) or ({R}, "
                f"{steps}) (per replica and step), got {array.shape}"
            )
        array = np.broadcast_to(array, (R, steps))
        what = "lr_schedule"
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        r, t = np.argwhere(bad)[0]
        raise ValueError(
            f"{what} must give finite multipliers >= 0, got {array[r, t]} at step {t} (replica {r})"
        )
    return np.ascontiguousarray(array)


# ----------------------------------------------------------------------------- curvature
def replica_sharpness(
    model: Model,
    params: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    iterations: int = 100,
) -> np.ndarray:
    r"""Each replica's loss-Hessian eigenvalue of largest modulus, by power iteration on ``hvp``.

    Power iteration (Golub & Van Loan, *Matrix Computations*, 4th ed., 2013, section 7.3.1), all
    replicas at once: :math:`u \leftarrow H_r u / \|H_r u\|` for `iterations` products, then the
    Rayleigh quotient :math:`u^\top H_r u`. The loss is the model's mean loss on the shared batch
    ``(x, y)``; the model must have ``hvp``, as every adapter has (:meth:`MLPModel.hvp`,
    :meth:`MuPModel.hvp`, :meth:`RNNModel.hvp`, :meth:`CNNModel.hvp`,
    :meth:`ResidualModel.hvp`, exact products by Pearlmutter's R-operator). With ``monitor=lambda p:
    {"sharpness": replica_sharpness(model, p, x, y, rng=...)}``, :func:`fit` records it every
    epoch (the quantity of the edge of stability, :math:`\lambda_{\max}` against
    :math:`2/\eta`).

    Parameters
    ----------
    model : Model
        With an ``hvp(params, x, y, vectors)`` method.
    params : sequence of numpy.ndarray
    x : numpy.ndarray, shape (batch, ...)
        One batch shared by all replicas.
    y : numpy.ndarray, shape (batch, ...)
    rng : numpy.random.Generator
        Draws the start vectors.
    iterations : int, default 100
        Hessian-vector products, >= 1.

    Returns
    -------
    numpy.ndarray, shape (replicas,)

    Examples
    --------
    A linear softmax classifier at zero weights on one example: the Hessian of the bias block is
    :math:`\operatorname{diag} p - p p^\top` with :math:`p = (1/2, 1/2)`, eigenvalue 1/2:

    >>> model = MLPModel(("linear",))
    >>> params = [np.zeros((1, 2, 1)), np.zeros((1, 2))]
    >>> x, y = np.zeros((1, 1)), np.array([0])
    >>> replica_sharpness(model, params, x, y, rng=np.random.default_rng(0)).round(6).tolist()
    [0.5]
    """
    hvp = getattr(model, "hvp", None)
    if not callable(hvp):
        raise TypeError(
            f"model must have an hvp(params, x, y, vectors) method, got {_describe(model)}"
        )
    arrays = check_replica_params(params)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {_describe(rng)}")
    iterations = check_int(iterations, "iterations", minimum=1)
    R = arrays[0].shape[0]
    xs = np.broadcast_to(x, (R, *np.shape(x)))
    ys = np.broadcast_to(y, (R, *np.shape(y)))

    def normalized(vs: list[np.ndarray]) -> list[np.ndarray]:
        norm = np.sqrt(sum(np.sum(v.reshape(R, -1) ** 2, axis=1) for v in vs))
        norm = np.where(norm > 0, norm, 1.0)
        return [v / norm.reshape((R,) + (1,) * (v.ndim - 1)) for v in vs]

    u = normalized([rng.standard_normal(p.shape).astype(p.dtype) for p in arrays])
    for _ in range(iterations - 1):
        u = normalized(hvp(arrays, xs, ys, u))
    hu = hvp(arrays, xs, ys, u)
    return sum(np.sum((a * b).reshape(R, -1), axis=1) for a, b in zip(u, hu, strict=True))


# ----------------------------------------------------------------------------- the loop
def _finite_rows(arrays: Sequence[np.ndarray], R: int) -> np.ndarray:
    """Return, per replica, whether every entry is finite (its per-replica sum is finite)."""
    ok = np.ones(R, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for a in arrays:
            rows = a.reshape(R, -1)  # summed by BLAS: several times faster than rows.sum(axis=1)
            ok &= np.isfinite(rows @ np.ones(rows.shape[1], rows.dtype))
    return ok


def _metric(model: Model, params: list[np.ndarray], x: np.ndarray, y: np.ndarray, metric: str):
    outputs = model.predict(params, x)
    if metric == "loss":
        return np.asarray(model.loss(outputs, y), dtype=np.float64)
    finite = np.all(np.isfinite(outputs), axis=2)
    right = np.argmax(np.where(np.isfinite(outputs), outputs, -np.inf), axis=2) == y[None, :]
    return np.mean(finite & right, axis=1)


def fit(
    model: Model,
    params: Sequence[np.ndarray],
    data: Any,
    *,
    lr: Any,
    seeds: Any,
    optimizer: str = "adam",
    epochs: int = 10,
    batch_size: int = 32,
    layer_multipliers: Any = None,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    clip: float | None = None,
    full_batch: bool = False,
    drop_last: bool = False,
    metric: str | None = None,
    patience: int | None = None,
    diverge_above: float | None = None,
    record_steps: bool = False,
    monitor: Callable[[list[np.ndarray]], Mapping[str, Any]] | None = None,
    lr_schedule: Any = None,
) -> FitResult:
    r"""Train the R replicas of `params` together, each with its own seed, rate and multipliers.

    Every epoch, replica r shuffles the training set with its own generator
    (``np.random.default_rng(seeds[r])``, one permutation per epoch), walks through it in
    minibatches of `batch_size` (the last one smaller unless `drop_last`), and takes one
    optimizer step per minibatch on its mean loss; all replicas take their step at once. With
    `full_batch` every step is one full-batch gradient step (gradient descent, no shuffling).
    With `clip`, a replica whose gradient norm :math:`\|g\|` (over all its arrays) exceeds
    `clip` steps along :math:`\mathrm{clip}\, g/\|g\|` (Pascanu, Mikolov & Bengio 2013).

    After every epoch each replica's validation metric is measured and the parameters of its best
    epoch so far are kept (the first epoch with the highest accuracy, or the lowest loss; epoch
    0 is the untrained replica): early stopping on validation, never on test. With `patience`,
    the run stops once no replica has improved for that many epochs.

    A replica whose minibatch loss or gradients stop being finite (or whose loss exceeds
    `diverge_above`) is marked diverged and frozen: its step size becomes zero, so its
    parameters stay where they were (at the end of an epoch whose steps made a parameter
    non-finite, the replica is marked and its parameters are those non-finite values). Its record
    is NaN from then on; it stays in every table.

    Parameters
    ----------
    model : Model
        For example :class:`MLPModel`, :class:`RNNModel`, :class:`CNNModel`,
        :class:`ResidualModel` or :class:`MuPModel`.
    params : sequence of numpy.ndarray
        The initial parameters, replica axis first, float32 (the fast default) or float64; they
        are copied, never modified.
    data : Dataset or tuple
        An :class:`eiginit.Dataset` (its test split is not touched) or ``(x_train, y_train)``
        or ``(x_train, y_train, x_val, y_val)``; targets are integer labels (classification) or
        real arrays (regression).
    lr : float or array_like, shape (replicas,)
        Each replica's learning rate, > 0.
    seeds : int or sequence of int
        Each replica's minibatch-order seed; one int gives R independent seeds derived from it
        (numpy's ``SeedSequence``).
    optimizer : {"adam", "sgd"}, default "adam"
    epochs : int, default 10
    batch_size : int, default 32
    layer_multipliers : array_like, shape (P,) or (replicas, P), optional
        Multipliers of the learning rate for each of the P parameter arrays (muP's per-layer
        rates, 0 for an array that must not train); default the model's
        ``default_multipliers`` if it has them, else 1.
    momentum : float, default 0.9
        SGD's momentum, in [0, 1).
    betas, eps
        Adam's constants.
    clip : float, optional
        The largest gradient norm per replica, > 0.
    full_batch : bool, default False
    drop_last : bool, default False
    metric : {"accuracy", "loss"}, optional
        The validation metric; default "accuracy" for integer labels, "loss" otherwise.
    patience : int, optional
    diverge_above : float, optional
        A minibatch loss above this marks the replica diverged.
    record_steps : bool, default False
        Record every step's loss and gradient norm.
    monitor : callable, optional
        ``monitor(params) -> {name: (R,) array}``, called before training and after every
        epoch (for example a sharpness estimate); recorded in ``result.monitored``.
    lr_schedule : callable or array_like, optional
        A multiplier :math:`s_t \ge 0` of every replica's learning rate at optimizer step
        :math:`t` (0-based, counted over the whole run: ``epochs`` times the steps per epoch;
        one step per epoch with `full_batch`), so step :math:`t` uses :math:`\eta_r m_{r,i}
        s_t`. Either ``lr_schedule(t) -> float or (R,) array`` (evaluated for every step before
        training starts) or an array of shape ``(steps,)`` or ``(R, steps)``; finite and
        >= 0. A linear warm-up over :math:`T` steps is ``lambda t: min(1, (t + 1) / T)``.
        Default: a constant 1.

    Returns
    -------
    FitResult

    Raises
    ------
    TypeError, ValueError
        Naming the argument, for a model without the protocol's methods, parameters of mixed
        replica counts or dtypes, data that does not fit, a learning rate <= 0, seeds that are
        not one per replica, and bad epochs, batch size, momentum, betas, clip, metric or
        lr_schedule.

    Examples
    --------
    Three copies of one small network with three learning rates and three seeds:

    >>> import functools
    >>> from eiginit import MLP, kaiming_normal
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((96, 2)); y = (x[:, 0] > 0).astype(int)
    >>> init = functools.partial(kaiming_normal, nonlinearity="relu")
    >>> model, params = MLPModel.from_networks([MLP.create([2, 8, 2], "relu", init, rng=rng)] * 3)
    >>> result = fit(model, params, (x[:64], y[:64], x[64:], y[64:]), lr=[1e-4, 1e-2, 1e-1],
    ...              seeds=[0, 1, 2], epochs=5)
    >>> result.train_loss.shape, result.diverged.tolist()
    ((3, 6), [False, False, False])
    >>> bool(result.train_loss[2, -1] < result.train_loss[0, -1])  # the larger rate got further
    True
    """
    if not isinstance(model, Model):
        raise TypeError(
            "model must have the methods loss_and_gradients(params, x, y), predict(params, x) "
            f"and loss(outputs, y) (eiginit.training.engine.Model), got {_describe(model)}"
        )
    start_params = check_replica_params(params)
    R, dtype = start_params[0].shape[0], start_params[0].dtype
    for i, p in enumerate(start_params):
        finite = np.isfinite(p).reshape(R, -1).all(axis=1)
        if not finite.all():  # a fault of the weights given, not a divergence of training
            raise ValueError(
                f"params[{i}] must be finite, got NaN or inf in replica(s) "
                f"{np.flatnonzero(~finite)[:10].tolist()}"
            )
    P = len(start_params)
    x_train, y_train, x_val, y_val = _check_data(data)
    x_train = _as_inputs(x_train, "data.x_train", dtype)
    n = x_train.shape[0]
    y_train = _as_targets(y_train, "data.y_train", n, dtype)
    has_val = x_val is not None
    if has_val:
        x_val = _as_inputs(x_val, "data.x_val", dtype)
        y_val = _as_targets(y_val, "data.y_val", x_val.shape[0], dtype)
    rates = check_rates(lr, R)
    cast_finite(rates, dtype, "lr")
    seed_list = _seeds(seeds, R)
    epochs = check_int(epochs, "epochs", minimum=1)
    check_entries(3 * R * (epochs + 1), f"the record of {R} replicas", "epochs")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if layer_multipliers is None:
        layer_multipliers = getattr(model, "default_multipliers", None)
    mults = _multipliers(layer_multipliers, R, P)
    clip = None if clip is None else check_positive_float(clip, "clip")
    for name, flag in (("full_batch", full_batch), ("drop_last", drop_last)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"{name} must be True or False, got {_describe(flag)}")
    if drop_last and not full_batch and batch_size > n:
        raise ValueError(f"batch_size must be at most {n} with drop_last, got {batch_size}")
    if metric is None:
        metric = "accuracy" if y_train.dtype.kind == "i" else "loss"
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {_describe(metric)}")
    if metric == "accuracy" and y_train.dtype.kind != "i":
        raise ValueError("metric='accuracy' needs integer labels; regression targets use 'loss'")
    if patience is not None:
        patience = check_int(patience, "patience", minimum=1)
    if diverge_above is not None:
        diverge_above = check_positive_float(diverge_above, "diverge_above")
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable as monitor(params), got {_describe(monitor)}")
    steps_per_epoch = 1 if full_batch else (n // batch_size if drop_last else -(-n // batch_size))
    schedule = _lr_schedule(lr_schedule, R, epochs * steps_per_epoch)
    work = [np.ascontiguousarray(p).copy() for p in start_params]
    opt = Optimizer(
        optimizer, work, rates[:, None] * mults, momentum=momentum, betas=betas, eps=eps
    )
    base_rates = opt.rates.copy()
    best = [p.copy() for p in work]
    better = np.greater if metric == "accuracy" else np.less
    total_steps = epochs * steps_per_epoch

    train_loss = np.full((R, epochs + 1), np.nan)
    val_metric = np.full((R, epochs + 1), np.nan)
    diverged = np.zeros(R, dtype=bool)
    diverged_step = np.full(R, -1, dtype=np.int64)
    best_epoch = np.zeros(R, dtype=np.int64)
    best_val = np.full(R, -np.inf if metric == "accuracy" else np.inf)
    step_loss = np.full((R, total_steps), np.nan) if record_steps else None
    grad_norm = np.full((R, total_steps), np.nan) if record_steps else None
    monitored: dict[str, np.ndarray] = {}
    rngs = [np.random.default_rng(s) for s in seed_list]
    since_best, epochs_run, step = 0, 0, 0
    batches: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return x_train[idx], y_train[idx] in buffers reused for every minibatch of a size."""
        if idx.shape not in batches:
            batches[idx.shape] = (
                np.empty(idx.shape + x_train.shape[1:], x_train.dtype),
                np.empty(idx.shape + y_train.shape[1:], y_train.dtype),
            )
        xb, yb = batches[idx.shape]
        # np.take with out= is several times faster than x_train[idx]; mode="clip" skips the
        # bounds check that would make it buffer (every index is valid).
        np.take(x_train, idx, axis=0, out=xb, mode="clip")
        np.take(y_train, idx, axis=0, out=yb, mode="clip")
        return xb, yb

    def mark(mask: np.ndarray) -> None:
        new = mask & ~diverged
        if new.any():
            diverged[new] = True
            diverged_step[new] = step
            opt.freeze(diverged, work)

    def observe(epoch: int) -> None:
        nonlocal since_best
        if monitor is not None:
            for name, values in dict(monitor([p.copy() for p in work])).items():
                row = np.asarray(values, dtype=np.float64)
                if row.shape != (R,):
                    raise ValueError(
                        f"monitor must return one number per replica ({R}) for each name, got "
                        f"shape {row.shape} for {name!r}"
                    )
                monitored.setdefault(name, np.full((R, epochs + 1), np.nan))[:, epoch] = row
        if not has_val:
            return
        value = np.where(diverged, np.nan, _metric(model, work, x_val, y_val, metric))
        val_metric[:, epoch] = value
        improved = ~diverged & better(value, best_val)
        best_val[improved] = value[improved]
        best_epoch[improved] = epoch
        for b, p in zip(best, work, strict=True):
            b[improved] = p[improved]
        since_best = 0 if improved.any() else since_best + 1

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        outputs = model.predict(work, x_train)
        if y_train.dtype.kind == "i":
            for name, labels in (("data.y_train", y_train), ("data.y_val", y_val)):
                if labels is not None and labels.max() >= outputs.shape[-1]:
                    raise ValueError(
                        f"{name} must hold labels below the model's {outputs.shape[-1]} outputs, "
                        f"got {int(labels.max())}"
                    )
        initial = np.asarray(model.loss(outputs, y_train), np.float64)
        mark(~np.isfinite(initial))
        train_loss[:, 0] = np.where(diverged, np.nan, initial)
        observe(0)
        for epoch in range(1, epochs + 1):
            if full_batch:
                orders = np.broadcast_to(np.arange(n), (R, n))
            else:
                orders = np.stack([g.permutation(n) for g in rngs])
            total = np.zeros(R)
            seen = 0
            for start in range(0, n, n if full_batch else batch_size):
                idx = orders[:, start : start + (n if full_batch else batch_size)]
                if drop_last and not full_batch and idx.shape[1] < batch_size:
                    break
                loss, grads = model.loss_and_gradients(work, *gather(idx))
                loss = np.asarray(loss, dtype=np.float64)
                bad = ~np.isfinite(loss) | ~_finite_rows(grads, R)
                if diverge_above is not None:
                    bad |= loss > diverge_above
                step += 1
                mark(bad)
                if diverged.any():
                    for g in grads:
                        g[diverged] = 0
                if clip is not None or record_steps:
                    norm = np.sqrt(
                        sum(
                            np.einsum("ij,ij->i", g.reshape(R, -1), g.reshape(R, -1)) for g in grads
                        )
                    )
                    if record_steps:
                        assert step_loss is not None
                        assert grad_norm is not None
                        step_loss[:, step - 1] = np.where(diverged, np.nan, loss)
                        grad_norm[:, step - 1] = np.where(diverged, np.nan, norm)
                    if clip is not None:
                        scale = np.where(norm > clip, clip / np.where(norm > 0, norm, 1), 1.0)
                        if np.any(scale != 1):
                            for g in grads:
                                g *= scale.reshape((R,) + (1,) * (g.ndim - 1)).astype(g.dtype)
                total += np.where(diverged, 0.0, loss) * idx.shape[1]
                seen += idx.shape[1]
                if schedule is not None:  # this step's rates: base rates times s_t, 0 if frozen
                    now = np.where(diverged, 0.0, schedule[:, step - 1])
                    opt.rates = base_rates * now[:, None]
                    opt._columns = opt._make_columns(work)
                opt.step(work, grads)
            mark(~_finite_rows(work, R))
            train_loss[:, epoch] = np.where(diverged, np.nan, total / seen)
            epochs_run = epoch
            observe(epoch)
            if patience is not None and has_val and since_best >= patience:
                break
    if not has_val:
        best = [p.copy() for p in work]
        best_epoch[:] = epochs_run
    name = optimizer.lower()
    options = (
        f"momentum={opt.momentum:g}" if name == "sgd" else f"betas={opt.betas}, eps={opt.eps:g}"
    )
    return FitResult(
        train_loss=train_loss,
        val_metric=val_metric,
        metric=metric,
        best_epoch=best_epoch,
        diverged=diverged,
        diverged_step=diverged_step,
        params=tuple(best),
        final_params=tuple(work),
        lr=rates,
        multipliers=mults,
        seeds=tuple(seed_list),
        optimizer=f"{name}({options})",
        epochs_run=epochs_run,
        step_loss=step_loss,
        grad_norm=grad_norm,
        monitored=monitored,
    )
