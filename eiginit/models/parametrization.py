r"""How initialization scales and learning rates should change with width: SP against muP.

Used by the chapter "Width, the spectral condition and muP" (Part V). Variance
:math:`1/\mathrm{fan\_in}` keeps activations of order one at initialization at every width, but it
says nothing about the *updates*, and it gives the readout layer a spectral norm far above
:math:`\sqrt{\mathrm{fan\_out}/\mathrm{fan\_in}}`, the size that keeps a layer's output of order
one once training has aligned its input with its weights. The maximal update parametrization
(muP; Yang & Hu 2021, Yang et al. 2022, "Tensor Programs V") rescales the readout's
initialization and every layer's learning rate by its *role*:

- :func:`layer_scale` gives one layer's initialization standard deviation and learning-rate
  multiplier under the standard parametrization (``"sp"``) or muP (``"mup"``), for SGD or Adam,
  from its fans and its role (``"input"``, ``"hidden"`` or ``"output"``); :func:`parametrize`
  does it for a whole multilayer perceptron;
- :func:`init_weights` draws the Gaussian weights of many independent replicas of one network
  at once (replicas on a leading axis); :func:`forward_replicas` and :func:`loss_and_gradients`
  run them;
- :func:`coordinate_check` measures how much each layer's activations move after one SGD step
  (the "coordinate check" of Tensor Programs V); :class:`eiginit.MuPModel` makes the network a
  model of the training engine, so :func:`eiginit.fit` trains its replicas with muP's per-layer
  rates (the learning-rate-transfer experiment).

The networks are bias-free ReLU perceptrons with a linear readout and the softmax cross-entropy
loss: small enough to read, large enough to show what width does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _INT64_MAX,
    _as_real_array,
    _describe,
    as_array_of,
    cast_finite,
    check_bool,
    check_entries,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_rng,
    check_widths,
)

__all__ = [
    "PARAMETRIZATIONS",
    "ROLES",
    "CoordinateCheck",
    "LayerScale",
    "coordinate_check",
    "forward_replicas",
    "init_weights",
    "layer_scale",
    "loss_and_gradients",
    "parametrize",
]

#: The parametrizations :func:`layer_scale` knows: the standard one and muP.
PARAMETRIZATIONS: tuple[str, ...] = ("sp", "mup")
#: The roles a layer can play: it maps a fixed input size to the width, the width to the width,
#: or the width to a fixed output size.
ROLES: tuple[str, ...] = ("input", "hidden", "output")
_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class LayerScale:
    r"""How one layer is initialized and how fast it learns.

    Attributes
    ----------
    role : str
        ``"input"``, ``"hidden"`` or ``"output"``.
    fan_in, fan_out : int
        The layer's weight matrix has shape ``(fan_out, fan_in)``.
    init_std : float
        The standard deviation of its Gaussian entries.
    lr_multiplier : float
        The layer's learning rate is the global learning rate times this.
    """

    role: str
    fan_in: int
    fan_out: int
    init_std: float
    lr_multiplier: float

    @property
    def spectral_target(self) -> float:
        r"""The spectral norm the spectral condition asks for, up to a constant.

        :math:`\sqrt{\mathrm{fan\_out}/\mathrm{fan\_in}}`, times any width-independent factor.
        """
        return math.sqrt(self.fan_out / self.fan_in)

    @property
    def expected_norm(self) -> float:
        r"""The random-matrix size of the initial weights.

        :math:`s(\sqrt{\mathrm{fan\_out}} + \sqrt{\mathrm{fan\_in}})`: the upper bound on
        :math:`\mathbb{E}\|W\|_2` for Gaussian entries of standard deviation :math:`s` (Gordon's
        inequality), reached as both fans grow.
        """
        return self.init_std * (math.sqrt(self.fan_out) + math.sqrt(self.fan_in))


def layer_scale(
    fan_in: int,
    fan_out: int,
    role: str,
    parametrization: str = "mup",
    *,
    base_width: int | None = None,
    optimizer: str = "sgd",
    gain: float = 1.0,
) -> LayerScale:
    r"""Return a layer's initialization standard deviation and learning-rate multiplier.

    The *width* of a layer is the fan that grows with the network: ``fan_out`` for an input
    layer, ``fan_in`` for a hidden or an output layer. With :math:`r = \mathrm{width} /
    \mathrm{base\_width}` (the width multiplier) and :math:`g` the gain:

    - SP, every role: init std :math:`g/\sqrt{\mathrm{fan\_in}}`, learning-rate multiplier 1
      (SGD and Adam);
    - muP, input layer: init std :math:`g/\sqrt{\mathrm{fan\_in}}`, multiplier :math:`r` for
      SGD, 1 for Adam;
    - muP, hidden layer: init std :math:`g/\sqrt{\mathrm{fan\_in}}`, multiplier 1 for SGD,
      :math:`1/r` for Adam;
    - muP, output layer: init std :math:`g/\sqrt{r\,\mathrm{fan\_in}}`, multiplier :math:`1/r`
      for SGD and for Adam.

    At the base width (:math:`r = 1`) muP equals SP, so a learning rate tuned on the base
    model is the one to start from. Without ``base_width`` the width multiplier is the width
    itself, the form in which muP is usually tabulated (readout variance
    :math:`1/\mathrm{fan\_in}^2`, input SGD rate :math:`\propto \mathrm{fan\_out}`). These
    scalings are those the ``mup`` package implements (``MuSGD`` and ``MuAdam`` in
    ``mup/optim.py``, ``MuReadout`` in ``mup/layer.py``; Yang et al. 2022, arXiv:2203.03466),
    written with the readout's :math:`1/r` multiplier folded into its weights.

    Under muP every layer's initial spectral norm is :math:`\Theta(\sqrt{\mathrm{fan\_out} /
    \mathrm{fan\_in}})` as the width grows, the spectral condition of Yang, Simon & Bernstein
    (2023, arXiv:2310.17813); under SP the readout's is :math:`\Theta(1)` instead, too large by a
    factor growing like :math:`\sqrt{\mathrm{width}}`.

    Parameters
    ----------
    fan_in, fan_out : int
        The layer's weight matrix is ``(fan_out, fan_in)``; both >= 1.
    role : {"input", "hidden", "output"}
        Which of the layer's fans grow with the network.
    parametrization : {"sp", "mup"}, default "mup"
    base_width : int, optional
        The width at which muP coincides with SP (>= 1). Default: 1.
    optimizer : {"sgd", "adam"}, default "sgd"
        The learning-rate multipliers differ between the two.
    gain : float, default 1.0
        Multiplies the standard deviation, as in torch.nn.init (``sqrt(2)`` for ReLU layers).

    Returns
    -------
    LayerScale

    Raises
    ------
    TypeError, ValueError
        For an unknown role, parametrization or optimizer, or fans, base width or gain that are
        not positive.

    Examples
    --------
    >>> sp = layer_scale(1024, 10, "output", "sp")
    >>> mup = layer_scale(1024, 10, "output", "mup", base_width=64)
    >>> round(sp.init_std * 1024**0.5, 6), round(mup.init_std * 1024**0.5, 6)
    (1.0, 0.25)
    >>> mup.lr_multiplier, layer_scale(40, 1024, "input", base_width=64).lr_multiplier
    (0.0625, 16.0)
    >>> layer_scale(64, 64, "middle")
    Traceback (most recent call last):
    ...
    ValueError: role must be one of ['input', 'hidden', 'output'], got 'middle'
    """
    # Fans beyond int64 describe no layer, and their square roots overflow float64 near 1e308.
    fan_in = check_int(fan_in, "fan_in", minimum=1, maximum=_INT64_MAX)
    fan_out = check_int(fan_out, "fan_out", minimum=1, maximum=_INT64_MAX)
    role = _check_choice(role, "role", ROLES)
    parametrization = _check_choice(parametrization, "parametrization", PARAMETRIZATIONS)
    optimizer = _check_choice(optimizer, "optimizer", _OPTIMIZERS)
    gain = check_positive_float(gain, "gain")
    base = (
        1
        if base_width is None
        else check_int(base_width, "base_width", minimum=1, maximum=_INT64_MAX)
    )
    std = gain / math.sqrt(fan_in)
    if not math.isfinite(std * (math.sqrt(fan_in) + math.sqrt(fan_out))):
        raise ValueError(
            f"gain = {gain} is too large: the layer's expected norm would overflow float64"
        )
    if parametrization == "sp":
        return LayerScale(role, fan_in, fan_out, std, 1.0)
    r = (fan_out if role == "input" else fan_in) / base
    if role == "input":
        multiplier = r if optimizer == "sgd" else 1.0
    elif role == "hidden":
        multiplier = 1.0 if optimizer == "sgd" else 1.0 / r
    else:
        std, multiplier = std / math.sqrt(r), 1.0 / r
    return LayerScale(role, fan_in, fan_out, std, multiplier)


def parametrize(
    widths: Sequence[int],
    parametrization: str = "mup",
    *,
    base_width: int | None = None,
    optimizer: str = "sgd",
    gain: float = 1.0,
) -> tuple[LayerScale, ...]:
    r"""Return :func:`layer_scale` for every layer of a perceptron with the given widths.

    The first layer is the input layer, the last the output (readout) layer, the others hidden.
    `gain` applies to every layer but the readout, which is linear (gain 1).

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)`` with :math:`L \ge 2`: input size, hidden widths, output size.
    parametrization, base_width, optimizer, gain
        As in :func:`layer_scale`.

    Returns
    -------
    tuple of LayerScale, one per layer

    Examples
    --------
    >>> [s.role for s in parametrize([40, 256, 256, 10])]
    ['input', 'hidden', 'output']
    >>> [s.lr_multiplier for s in parametrize([40, 256, 256, 10], base_width=64)]
    [4.0, 1.0, 0.25]
    """
    sizes = check_widths(widths, "widths")
    if len(sizes) < 3:
        raise ValueError(
            f"widths must have an input, at least one hidden and an output width, got {list(sizes)}"
        )
    depth = len(sizes) - 1
    roles = ["input"] + ["hidden"] * (depth - 2) + ["output"]
    return tuple(
        layer_scale(
            sizes[i],
            sizes[i + 1],
            role,
            parametrization,
            base_width=base_width,
            optimizer=optimizer,
            gain=gain if role != "output" else 1.0,
        )
        for i, role in enumerate(roles)
    )


def _check_scales(scales: Any) -> tuple[LayerScale, ...]:
    if not isinstance(scales, Sequence) or not all(isinstance(s, LayerScale) for s in scales):
        raise TypeError(
            f"scales must be a sequence of LayerScale (from parametrize), got {_describe(scales)}"
        )
    if len(scales) < 2:
        raise ValueError(f"scales must describe at least two layers, got {len(scales)}")
    for i in range(len(scales) - 1):
        if scales[i].fan_out != scales[i + 1].fan_in:
            raise ValueError(
                f"layer {i} has fan_out {scales[i].fan_out} but layer {i + 1} has fan_in "
                f"{scales[i + 1].fan_in}: the layers do not chain"
            )
    return tuple(scales)


def init_weights(
    scales: Sequence[LayerScale],
    *,
    replicas: int,
    rng: np.random.Generator,
    zero_readout: bool = False,
    dtype: Any = np.float64,
) -> list[np.ndarray]:
    r"""Draw Gaussian weights for `replicas` independent copies of a network.

    Layer :math:`\ell` gets an array of shape ``(replicas, fan_out, fan_in)`` with entries
    :math:`\mathcal{N}(0, s_\ell^2)`, :math:`s_\ell` = ``scales[l].init_std``.

    Parameters
    ----------
    scales : sequence of LayerScale
        From :func:`parametrize`.
    replicas : int
        How many independent networks, >= 1.
    rng : numpy.random.Generator
    zero_readout : bool, default False
        Start the readout at zero, as ``mup``'s ``readout_zero_init`` does.
    dtype : numpy dtype, default float64

    Examples
    --------
    >>> W = init_weights(parametrize([3, 5, 2]), replicas=4, rng=np.random.default_rng(0))
    >>> [w.shape for w in W]
    [(4, 5, 3), (4, 2, 5)]
    """
    layers = _check_scales(scales)
    replicas = check_int(replicas, "replicas", minimum=1)
    rng = check_rng(rng)
    zero_readout = check_bool(zero_readout, "zero_readout")
    dtype = check_float_dtype(dtype)
    check_entries(
        replicas * sum(s.fan_in * s.fan_out for s in layers), "the weights", "widths or replicas"
    )
    weights = []
    for i, s in enumerate(layers):
        shape = (replicas, s.fan_out, s.fan_in)
        if zero_readout and i == len(layers) - 1:
            weights.append(np.zeros(shape, dtype=dtype))
        else:
            with np.errstate(over="ignore"):
                weights.append((s.init_std * rng.standard_normal(shape)).astype(dtype))
            if not np.all(np.isfinite(weights[-1])):
                raise ValueError(
                    f"layer {i}'s init_std {s.init_std:g} gives weights beyond {dtype}'s range; "
                    "use a smaller gain"
                )
    return weights


def _check_weights(weights: Any) -> list[np.ndarray]:
    if not isinstance(weights, Sequence) or len(weights) < 2:
        raise TypeError(
            f"weights must be a list of at least two arrays of shape (replicas, fan_out, fan_in), "
            f"got {_describe(weights)}"
        )
    arrays = [
        as_array_of(w, f"weights[{i}]", kinds="f", what="floats", layout="rectangular")
        for i, w in enumerate(weights)
    ]
    for i, w in enumerate(arrays):
        if w.ndim != 3 or w.dtype.kind != "f" or w.size == 0:
            raise ValueError(
                f"weights[{i}] must be a non-empty float array of shape (replicas, fan_out, "
                f"fan_in), got {_describe(w)}"
            )
        if not np.all(np.isfinite(w)):
            raise ValueError(f"weights[{i}] must be finite, got NaN or infinite entries")
        if w.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"every layer needs the same number of replicas: weights[0] has "
                f"{arrays[0].shape[0]}, weights[{i}] has {w.shape[0]}"
            )
        if i and w.shape[2] != arrays[i - 1].shape[1]:
            raise ValueError(
                f"weights[{i}] has fan_in {w.shape[2]} but weights[{i - 1}] has fan_out "
                f"{arrays[i - 1].shape[1]}"
            )
    return arrays


def _batch(weights: list[np.ndarray], x: Any, name: str = "x") -> np.ndarray:
    array = cast_finite(_as_real_array(x, name), weights[0].dtype, name)
    replicas, fan_in = weights[0].shape[0], weights[0].shape[2]
    if array.ndim == 2:
        array = np.broadcast_to(array, (replicas, *array.shape))
    if (
        array.ndim != 3
        or array.shape[0] != replicas
        or array.shape[2] != fan_in
        or array.shape[1] == 0
    ):
        raise ValueError(
            f"{name} must have shape (batch, {fan_in}) or ({replicas}, batch, {fan_in}) with "
            f"batch >= 1, got shape {np.shape(x)}"
        )
    return array


def _forward(weights: list[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    acts, last = [x], len(weights) - 1
    for i, W in enumerate(weights):
        h = acts[-1] @ W.transpose(0, 2, 1)
        acts.append(h if i == last else np.maximum(h, 0))
    return acts


def forward_replicas(weights: Sequence[np.ndarray], x: Any) -> list[np.ndarray]:
    r"""Run every replica on a batch, ReLU layers and a linear readout.

    :math:`x_\ell = \mathrm{relu}(W_\ell x_{\ell-1})` for :math:`\ell < L`, :math:`x_L = W_L
    x_{L-1}`.

    Parameters
    ----------
    weights : list of arrays, shape (replicas, fan_out, fan_in) each
    x : array_like, shape (batch, fan_in) or (replicas, batch, fan_in)
        One batch for all replicas, or one per replica.

    Returns
    -------
    list of numpy.ndarray
        ``[x_0, x_1, ..., x_L]``, each of shape (replicas, batch, n_l); ``x_L`` are the logits.

    Examples
    --------
    >>> W = init_weights(parametrize([3, 4, 2]), replicas=2, rng=np.random.default_rng(1))
    >>> [a.shape for a in forward_replicas(W, np.ones((5, 3)))]
    [(2, 5, 3), (2, 5, 4), (2, 5, 2)]
    """
    arrays = _check_weights(weights)
    xb = _batch(arrays, x)
    with np.errstate(over="ignore", invalid="ignore"):
        acts = _forward(arrays, xb)
    _check_overflow(acts, "the activations", "x or the weights")
    return acts


def _check_overflow(arrays: Sequence[np.ndarray], what: str, culprits: str) -> None:
    """Refuse results that overflowed their dtype (finite input, too large a product)."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(
            f"{what} overflow {arrays[0].dtype}: {culprits} too large; divide by a power of two"
        )


def _labels(labels: Any, shape: tuple[int, int], n_classes: int) -> np.ndarray:
    y = as_array_of(labels, "labels", kinds="iu", what="integer class indices")
    if y.ndim == 1 and y.shape == shape[1:]:
        y = np.broadcast_to(y, shape)
    if y.shape != shape:
        raise ValueError(f"labels must have shape {shape[1:]} or {shape}, got {np.shape(labels)}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0 .. {n_classes - 1}, got {y.min()} .. {y.max()}")
    return y


def _loss_grads(
    weights: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    acts = _forward(weights, x)
    z = acts[-1]
    z = z - z.max(axis=2, keepdims=True)
    exp = np.exp(z)
    total = exp.sum(axis=2, keepdims=True)
    r_idx, b_idx = np.indices(y.shape)
    loss = np.mean(np.log(total[..., 0]) - z[r_idx, b_idx, y], axis=1)
    delta = exp / total
    delta[r_idx, b_idx, y] -= 1
    delta /= y.shape[1]
    grads = [np.empty(0)] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        grads[i] = delta.transpose(0, 2, 1) @ acts[i]
        if i:
            delta = (delta @ weights[i]) * (acts[i] > 0)
    return loss.astype(np.float64), grads


def loss_and_gradients(
    weights: Sequence[np.ndarray], x: Any, labels: Any
) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""Return each replica's mean softmax cross-entropy and its gradient for every layer.

    Backpropagation through :func:`forward_replicas`: with :math:`\delta_L =
    (\mathrm{softmax}(x_L) - e_y)/B`,
    :math:`\partial\mathcal{L}/\partial W_\ell = \delta_\ell^\top x_{\ell-1}` and
    :math:`\delta_{\ell-1} = (\delta_\ell W_\ell) \odot [h_{\ell-1} > 0]`.

    Parameters
    ----------
    weights : list of arrays, shape (replicas, fan_out, fan_in) each
    x : array_like, shape (batch, fan_in) or (replicas, batch, fan_in)
    labels : array_like of int, shape (batch,) or (replicas, batch)

    Returns
    -------
    loss : numpy.ndarray, shape (replicas,)
    grads : list of numpy.ndarray, shaped like `weights`

    Examples
    --------
    >>> W = init_weights(parametrize([3, 4, 10]), replicas=2, rng=np.random.default_rng(1),
    ...                  zero_readout=True)
    >>> loss, grads = loss_and_gradients(W, np.ones((5, 3)), [0, 1, 2, 3, 4])
    >>> np.round(loss, 4)  # a zero readout predicts uniformly: log 10
    array([2.3026, 2.3026])
    """
    arrays = _check_weights(weights)
    xb = _batch(arrays, x)
    y = _labels(labels, xb.shape[:2], arrays[-1].shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        loss, grads = _loss_grads(arrays, xb, y)
    _check_overflow([loss, *grads], "the loss and gradients", "x or the weights")
    return loss, grads


@dataclass(frozen=True)
class CoordinateCheck:
    r"""How much one SGD step moves each layer's activations, per replica.

    Attributes
    ----------
    before : numpy.ndarray, shape (replicas, layers)
        The root-mean-square coordinate of :math:`x_1, \dots, x_L` (the last are the logits)
        at initialization, on the batch.
    change : numpy.ndarray, shape (replicas, layers)
        The root-mean-square coordinate of :math:`x_\ell^{\text{after}} - x_\ell^{\text{before}}`
        on the same batch after one step.
    """

    before: np.ndarray
    change: np.ndarray


def coordinate_check(
    scales: Sequence[LayerScale],
    x: Any,
    labels: Any,
    lr: float,
    *,
    replicas: int,
    rng: np.random.Generator,
    zero_readout: bool = False,
) -> CoordinateCheck:
    r"""Take one SGD step on a batch and measure how far each layer's activations move.

    Layer :math:`\ell` moves by :math:`\Delta W_\ell = -\eta\, m_\ell\, \partial\mathcal{L}/
    \partial W_\ell` (:math:`m_\ell` its learning-rate multiplier); the batch is then run again.
    Tensor Programs V's "coordinate check": in a correct muP the typical coordinate of every
    :math:`\Delta x_\ell` stays of order one as the width grows; in SP with a fixed learning
    rate, hidden ones grow like :math:`\sqrt{n}` and the logits like :math:`n`.

    Parameters
    ----------
    scales : sequence of LayerScale
        From :func:`parametrize`.
    x : array_like, shape (batch, fan_in)
    labels : array_like of int, shape (batch,)
    lr : float
        The global learning rate, > 0.
    replicas : int
        Independent initializations, >= 1.
    rng : numpy.random.Generator
    zero_readout : bool, default False

    Returns
    -------
    CoordinateCheck

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((8, 5)), np.arange(8) % 3
    >>> cc = coordinate_check(parametrize([5, 16, 16, 3]), x, y, 0.1, replicas=2, rng=rng)
    >>> cc.change.shape
    (2, 3)
    """
    layers = _check_scales(scales)
    lr = check_positive_float(lr, "lr")
    weights = init_weights(layers, replicas=replicas, rng=rng, zero_readout=zero_readout)
    xb = _batch(weights, x)
    y = _labels(labels, xb.shape[:2], layers[-1].fan_out)

    def rms(a: np.ndarray) -> np.ndarray:  # the root mean square, without overflow in a**2
        peak = np.max(np.abs(a), axis=(1, 2), keepdims=True)
        exponent = np.frexp(peak)[1]
        return np.ldexp(
            np.sqrt(np.mean(np.ldexp(a, -exponent) ** 2, axis=(1, 2))), exponent[:, 0, 0]
        )

    with np.errstate(over="ignore", invalid="ignore"):
        before = _forward(weights, xb)
        _, grads = _loss_grads(weights, xb, y)
        stepped = [
            W - lr * s.lr_multiplier * g for W, s, g in zip(weights, layers, grads, strict=True)
        ]
        after = _forward(stepped, xb)
        result = CoordinateCheck(
            before=np.stack([rms(a) for a in before[1:]], axis=1),
            change=np.stack(
                [rms(a - b) for a, b in zip(after[1:], before[1:], strict=True)], axis=1
            ),
        )
    _check_overflow([result.before, result.change], "the activations after the step", "x or lr")
    return result
