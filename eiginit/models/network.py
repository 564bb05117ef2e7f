r"""A small multilayer perceptron in plain numpy: forward pass, backward pass, Jacobian.

The engine of Part III and IV of the book (chapter "The backward pass" measures its Jacobian
spectra; chapter "Does it train?" trains it). It is written to be read in one sitting:

- layer :math:`l = 1..L` computes :math:`h_l = W_l x_{l-1} + b_l` and :math:`x_l = \phi(h_l)`,
  with :math:`W_l` of shape ``(fan_out, fan_in)`` as in PyTorch's ``nn.Linear``; inputs are
  batched as rows, so in code ``h = x @ W.T + b``;
- the last layer uses ``output_activation`` (``"linear"`` by default, for logits or a
  regression output), every other layer uses ``activation``;
- :meth:`MLP.forward` keeps every pre-activation :math:`h_l` and activation :math:`x_l`;
- :meth:`MLP.backward` runs the chain rule backwards (vector-Jacobian products):
  :math:`\delta_l = \phi'(h_l) \odot g_l`, :math:`\partial/\partial W_l = \delta_l^\top x_{l-1}`,
  :math:`g_{l-1} = W_l^\top \delta_l`;
- :meth:`MLP.jacobian` multiplies the layer Jacobians :math:`D_l W_l`, with
  :math:`D_l = \operatorname{diag}\phi'(h_l)`, into the input-output Jacobian
  :math:`J = D_L W_L \cdots D_1 W_1`, and :meth:`MLP.jacobian_singular_values` returns its
  singular values (Pennington, Schoenholz & Ganguli 2017).

Everything is vectorized over the batch; nothing loops over samples.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erfc as _erfc

from eiginit._checks import (
    _describe,
    as_array_of,
    as_real_array,
    check_callable,
    check_int,
    check_real,
    check_rng,
    check_widths,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ForwardPass",
    "Gradients",
    "activation_derivative",
    "apply_activation",
]

# The parameter dtypes an MLP computes in.
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: The activation names understood by :class:`MLP` (PyTorch's spelling).
ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
    "sigmoid",
    "gelu",
    "silu",
)

# SELU's constants (Klambauer et al. 2017), the values torch.nn.SELU uses.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# GELU's Gaussian CDF is Phi(h) = erfc(-h / sqrt 2) / 2, never 1 - erf (which loses every digit
# in the lower tail): scipy's vectorized erfc in the bulk, and elementwise the C library's
# math.erfc, exact to a few ulps, in the lower tail, where scipy's drifts to 1e-11.
_ERFC_EXACT = np.frompyfunc(math.erfc, 1, 1)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_cdf(h: np.ndarray) -> np.ndarray:
    """Phi(h), the standard normal CDF, in float64 (the exact form torch.nn.GELU uses)."""
    z = -_SQRT_HALF * np.asarray(h, dtype=np.float64)
    out = np.array(0.5 * _erfc(z), dtype=np.float64)
    tail = z > 2.0  # h < -2.83: the C library's erfc, exact to a few ulps (rare during training)
    if tail.any():
        out[tail] = 0.5 * np.asarray(_ERFC_EXACT(z[tail]), dtype=np.float64)
    return out


def _normal_pdf(h: np.ndarray) -> np.ndarray:
    """Return the standard normal density in float64; 0 (not an overflow) far in the tails."""
    h64 = np.asarray(h, dtype=np.float64)
    return _INV_SQRT_2PI * np.exp(-0.5 * np.minimum(np.abs(h64), 150.0) ** 2)


def _sigmoid(h: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-h), written so that neither branch overflows: exp of -|h| only."""
    e = np.exp(-np.abs(h))
    return np.where(h >= 0, 1 / (1 + e), e / (1 + e)).astype(h.dtype)


def _check_activation(name: Any, argument: str = "activation") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string naming an activation, got {_describe(name)}")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown {argument} {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return name


def _check_slope(value: Any) -> float:
    return check_real(value, "negative_slope")


def _as_preactivations(h: Any) -> np.ndarray:
    """Check `h` (finite real numbers); float32 stays float32, everything else is float64."""
    return as_real_array(h, "h", keep_float32=True)


def _activation(name: str, h: np.ndarray, a: float) -> np.ndarray:
    """phi(h) for a checked name, a float array h and a leaky slope a (no input checks)."""
    if name == "linear":
        return h.copy()
    if name == "tanh":
        return np.tanh(h)
    if name == "relu":
        return np.maximum(h, 0)
    if name == "leaky_relu":
        return np.where(h > 0, h, a * h).astype(h.dtype)
    if name == "selu":
        negative = _SELU_ALPHA * np.expm1(np.minimum(h, 0))
        return (_SELU_SCALE * np.where(h > 0, h, negative)).astype(h.dtype)
    if name == "gelu":
        return (h * _normal_cdf(h)).astype(h.dtype)
    if name == "silu":
        return h * _sigmoid(h)
    return _sigmoid(h)


def _derivative(name: str, h: np.ndarray, a: float) -> np.ndarray:
    """phi'(h) for a checked name, a float array h and a leaky slope a (no input checks)."""
    one = np.ones_like(h)
    if name == "linear":
        return one
    if name == "tanh":
        return 1 - np.tanh(h) ** 2
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "leaky_relu":
        return np.where(h > 0, one, a * one)
    if name == "selu":
        return (_SELU_SCALE * np.where(h > 0, one, _SELU_ALPHA * np.exp(np.minimum(h, 0)))).astype(
            h.dtype
        )
    if name == "gelu":  # Phi(h) + h phi(h)
        return (_normal_cdf(h) + h * _normal_pdf(h)).astype(h.dtype)
    s = _sigmoid(h)
    if name == "silu":  # sigma(h) (1 + h (1 - sigma(h)))
        return s * (1 + h * (1 - s))
    return s * (1 - s)


def apply_activation(name: str, h: Any, *, negative_slope: float = 0.01) -> np.ndarray:
    r"""Apply the activation called `name` elementwise.

    ============  ==========================================================================
    linear        :math:`\phi(h) = h`
    tanh          :math:`\phi(h) = \tanh h`
    relu          :math:`\phi(h) = \max(h, 0)`
    leaky_relu    :math:`\phi(h) = h` for :math:`h > 0`, else :math:`a h` (`negative_slope` a)
    selu          :math:`\phi(h) = s\,h` for :math:`h > 0`, else :math:`s\,\alpha (e^h - 1)`
                  (Klambauer et al. 2017: :math:`\alpha \approx 1.6733`, :math:`s \approx 1.0507`)
    sigmoid       :math:`\phi(h) = \sigma(h) = 1 / (1 + e^{-h})`
    gelu          :math:`\phi(h) = h\,\Phi(h)`, :math:`\Phi` the standard normal CDF (the exact
                  form of Hendrycks & Gimpel 2016, ``torch.nn.GELU()``'s default
                  ``approximate="none"``)
    silu          :math:`\phi(h) = h\,\sigma(h)` (SiLU, Elfwing et al. 2018; Swish with
                  :math:`\beta = 1`, Ramachandran et al. 2017; ``torch.nn.SiLU``)
    ============  ==========================================================================

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    h : array_like
        Pre-activations, any shape. Float32 input stays float32.
    negative_slope : float, default 0.01
        The slope of leaky ReLU for negative input (PyTorch's default); ignored otherwise.

    Returns
    -------
    numpy.ndarray
        :math:`\phi(h)`, the same shape as `h`.

    Raises
    ------
    TypeError, ValueError
        If `name` is not a known activation name, or `h` does not hold finite real numbers.

    Examples
    --------
    >>> apply_activation("relu", [-1.0, 2.0]).tolist()
    [0.0, 2.0]
    >>> apply_activation("leaky_relu", [-1.0, 2.0], negative_slope=0.1).tolist()
    [-0.1, 2.0]
    """
    name = _check_activation(name)
    a = _check_slope(negative_slope)
    return _activation(name, _as_preactivations(h), a)


def activation_derivative(name: str, h: Any, *, negative_slope: float = 0.01) -> np.ndarray:
    r"""Return the derivative :math:`\phi'(h)` of the activation called `name`, elementwise.

    At the kink of ReLU and leaky ReLU (:math:`h = 0`) we take the left derivative, as PyTorch
    does (0 for ReLU, `negative_slope` for leaky ReLU).

    ==========  ================================================================
    linear      :math:`1`
    tanh        :math:`1 - \tanh^2 h`
    relu        :math:`1` for :math:`h > 0`, else :math:`0`
    leaky_relu  :math:`1` for :math:`h > 0`, else :math:`a`
    selu        :math:`s` for :math:`h > 0`, else :math:`s\,\alpha\,e^h`
    sigmoid     :math:`\sigma(h)\,(1 - \sigma(h))`
    gelu        :math:`\Phi(h) + h\,\varphi(h)`, :math:`\varphi` the standard normal density
    silu        :math:`\sigma(h)\,\bigl(1 + h\,(1 - \sigma(h))\bigr)`
    ==========  ================================================================

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    h : array_like
        Pre-activations, any shape.
    negative_slope : float, default 0.01
        The slope of leaky ReLU for negative input; ignored otherwise.

    Returns
    -------
    numpy.ndarray
        :math:`\phi'(h)`, the same shape as `h`.

    Raises
    ------
    TypeError, ValueError
        If `name` is not a known activation name, or `h` does not hold finite real numbers.

    Examples
    --------
    >>> activation_derivative("tanh", [0.0]).tolist()
    [1.0]
    >>> activation_derivative("relu", [-1.0, 0.0, 3.0]).tolist()
    [0.0, 0.0, 1.0]
    """
    name = _check_activation(name)
    a = _check_slope(negative_slope)
    return _derivative(name, _as_preactivations(h), a)


@dataclass(frozen=True, eq=False)
class ForwardPass:
    r"""What :meth:`MLP.forward` computed, kept for the backward pass.

    Attributes
    ----------
    activations : tuple of numpy.ndarray
        ``activations[0]`` is the input batch :math:`x_0`, shape ``(batch, sizes[0])``;
        ``activations[l]`` is :math:`x_l = \phi(h_l)`, shape ``(batch, sizes[l])``.
    preactivations : tuple of numpy.ndarray
        ``preactivations[l - 1]`` is :math:`h_l = W_l x_{l-1} + b_l` for ``l = 1..L``.
    """

    activations: tuple[np.ndarray, ...]
    preactivations: tuple[np.ndarray, ...]

    @property
    def output(self) -> np.ndarray:
        """The network's output :math:`x_L`, shape ``(batch, sizes[-1])``."""
        return self.activations[-1]


@dataclass(frozen=True, eq=False)
class Gradients:
    r"""Gradients of a scalar loss, summed over the batch, from :meth:`MLP.backward`.

    Attributes
    ----------
    weights : tuple of numpy.ndarray
        ``weights[l]`` has the shape of ``MLP.weights[l]``, ``(fan_out, fan_in)``.
    biases : tuple of numpy.ndarray
        ``biases[l]`` has the shape of ``MLP.biases[l]``, ``(fan_out,)``.
    preactivations : tuple of numpy.ndarray
        ``preactivations[l]`` is :math:`\delta = \partial \text{loss} / \partial h`, shape
        ``(batch, sizes[l + 1])``: the backpropagated signal, one row per input.
    inputs : numpy.ndarray
        The gradient with respect to the input batch, shape ``(batch, sizes[0])``.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    preactivations: tuple[np.ndarray, ...]
    inputs: np.ndarray


Initializer = Callable[..., Any]


def _check_dtype(dtype: Any) -> np.dtype:
    """Return `dtype` as a numpy dtype if it is float32 or float64."""
    try:
        checked = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(
            f"dtype must be a numpy float dtype (np.float32 or np.float64), got {_describe(dtype)}"
        ) from error
    if checked not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {checked}")
    return checked


@dataclass(frozen=True, eq=False)
class MLP:
    r"""A fully connected network :math:`x_l = \phi(W_l x_{l-1} + b_l)`, ``l = 1..L``.

    Build one with :meth:`MLP.create` (sizes, activation, initializer, rng). The parameters are
    plain numpy arrays: ``net.weights[l]`` has shape ``(sizes[l + 1], sizes[l])``, PyTorch's
    ``(fan_out, fan_in)``, and ``net.biases[l]`` shape ``(sizes[l + 1],)``. The dataclass is
    frozen (its fields cannot be rebound) but the arrays can be updated in place, which is what
    an optimizer step does; :meth:`with_layer` and :meth:`with_parameters` return modified copies.

    Attributes
    ----------
    weights : tuple of numpy.ndarray
        One ``(fan_out, fan_in)`` matrix per layer.
    biases : tuple of numpy.ndarray
        One ``(fan_out,)`` vector per layer.
    activation : str
        The activation of every layer except the last, one of :data:`ACTIVATIONS`.
    output_activation : str, default "linear"
        The activation of the last layer.
    negative_slope : float, default 0.01
        Leaky ReLU's slope for negative input.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> init = lambda shape, *, rng: rng.standard_normal(shape) / np.sqrt(shape[1])
    >>> net = MLP.create([3, 5, 2], "tanh", init, rng=rng)
    >>> net.sizes, net.depth, net.weights[0].shape
    ((3, 5, 2), 2, (5, 3))
    >>> net(np.ones((4, 3))).shape
    (4, 2)
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "tanh"
    output_activation: str = "linear"
    negative_slope: float = 0.01

    def __post_init__(self) -> None:
        _check_activation(self.activation)
        _check_activation(self.output_activation, "output_activation")
        _check_slope(self.negative_slope)
        weights, biases = tuple(self.weights), tuple(self.biases)
        if len(weights) == 0:
            raise ValueError("an MLP needs at least one layer, got no weight matrices")
        if len(weights) != len(biases):
            raise ValueError(
                f"expected one bias per weight matrix, got {len(weights)} weight matrices "
                f"and {len(biases)} biases"
            )
        for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
            if not isinstance(W, np.ndarray) or W.ndim != 2 or W.dtype not in _DTYPES:
                raise TypeError(
                    f"weights[{i}] must be a 2-D float numpy array (float32 or float64), got "
                    f"{_describe(W)}"
                )
            if 0 in W.shape:
                raise ValueError(
                    f"weights[{i}] must have at least one row and column (no zero-width layer), "
                    f"got shape {W.shape}"
                )
            if not isinstance(b, np.ndarray) or b.shape != (W.shape[0],):
                raise ValueError(
                    f"biases[{i}] must be an array of shape ({W.shape[0]},) to match weights[{i}] "
                    f"of shape {W.shape}, got {_describe(b)}"
                )
            if b.dtype != W.dtype:
                raise TypeError(
                    f"biases[{i}] has dtype {b.dtype} but weights[{i}] has dtype {W.dtype}"
                )
            if i > 0 and W.shape[1] != weights[i - 1].shape[0]:
                raise ValueError(
                    f"weights[{i}] has shape {W.shape} (fan_out, fan_in), but the previous layer "
                    f"has {weights[i - 1].shape[0]} outputs; expected fan_in = "
                    f"{weights[i - 1].shape[0]}"
                )
            if W.dtype != weights[0].dtype:
                raise TypeError(
                    f"all layers must share one dtype, got {W.dtype} and {weights[0].dtype}"
                )
            for name, array in ((f"weights[{i}]", W), (f"biases[{i}]", b)):
                if not np.all(np.isfinite(array)):
                    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
                    raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    # ----------------------------------------------------------------------------- building
    @classmethod
    def create(
        cls,
        sizes: Sequence[int],
        activation: str,
        init: Initializer,
        *,
        rng: np.random.Generator,
        bias_std: float = 0.0,
        output_activation: str = "linear",
        negative_slope: float = 0.01,
        dtype: Any = np.float64,
    ) -> MLP:
        r"""Build a network with layer widths `sizes` and weights drawn by `init`.

        Parameters
        ----------
        sizes : sequence of int
            ``[n_0, n_1, ..., n_L]``: input width, hidden widths, output width (at least two).
        activation : str
            The hidden layers' activation, one of :data:`ACTIVATIONS`.
        init : callable
            ``init(shape, *, rng) -> array`` draws one weight matrix of shape
            ``(fan_out, fan_in)``; the initializers of :mod:`eiginit.models.initializers` fit, with
            their options bound by ``functools.partial`` or a lambda.
        rng : numpy.random.Generator
            The source of randomness, passed to `init` and used for the biases.
        bias_std : float, default 0.0
            Biases are drawn from :math:`N(0, \sigma_b^2)` with :math:`\sigma_b` = `bias_std`
            (zero gives zero biases, the usual choice).
        output_activation : str, default "linear"
            The last layer's activation. Pass the same name as `activation` to make every layer
            alike, as in the mean-field analysis of chapter "The backward pass".
        negative_slope : float, default 0.01
            Leaky ReLU's slope.
        dtype : numpy dtype, default float64
            ``np.float64`` or ``np.float32`` (faster training, less exact).

        Returns
        -------
        MLP

        Raises
        ------
        TypeError, ValueError
            For bad sizes, an unknown activation, a non-callable `init`, an `init` that
            returns the wrong shape or non-finite numbers, or a dtype other than float32/64.
        """
        check_rng(rng)
        sizes = list(check_widths(sizes, "sizes"))
        _check_activation(activation)
        check_callable(init, "init", "init(shape, *, rng)")
        if isinstance(bias_std, bool) or not isinstance(bias_std, numbers.Real):
            raise TypeError(f"bias_std must be a real number, got {_describe(bias_std)}")
        if not np.isfinite(bias_std) or bias_std < 0:
            raise ValueError(f"bias_std must be a finite number >= 0, got {bias_std}")
        dtype = _check_dtype(dtype)
        weights, biases = [], []
        for fan_in, fan_out in itertools.pairwise(sizes):
            try:
                W = np.asarray(init((fan_out, fan_in), rng=rng))
            except TypeError as error:
                if "rng" not in str(error):
                    raise
                raise TypeError(
                    "init must accept the keyword argument rng, as init(shape, *, rng); bind "
                    f"other options with functools.partial ({error})"
                ) from error
            if W.shape != (fan_out, fan_in):
                raise ValueError(
                    f"init returned shape {W.shape} for a layer with shape (fan_out, fan_in) = "
                    f"{(fan_out, fan_in)}"
                )
            if W.dtype.kind not in "biuf" or not np.all(np.isfinite(W)):
                raise ValueError("init must return finite real numbers")
            b = bias_std * rng.standard_normal(fan_out) if bias_std > 0 else np.zeros(fan_out)
            weights.append(W.astype(dtype))
            biases.append(b.astype(dtype))
        return cls(tuple(weights), tuple(biases), activation, output_activation, negative_slope)

    def with_layer(self, index: int, *, weight: Any = None, bias: Any = None) -> MLP:
        """Return a copy with layer `index`'s weight and/or bias replaced (LSUV rescales this way).

        The new arrays must hold finite real numbers and keep the layer's shape; they are cast
        to the network's dtype. The copy shares no array with this network (nor with `weight`
        or `bias`), so updating one in place leaves the other alone.

        Examples
        --------
        >>> net = MLP((np.eye(2), np.eye(2)), (np.zeros(2), np.zeros(2)), "relu")
        >>> net.with_layer(1, weight=2 * net.weights[1]).weights[1].tolist()
        [[2.0, 0.0], [0.0, 2.0]]
        """
        index = self._check_index(index)
        weights, biases = list(self.weights), list(self.biases)
        for name, new, store in (("weight", weight, weights), ("bias", bias, biases)):
            if new is None:
                continue
            new = as_real_array(new, name).astype(self.dtype)
            if new.shape != store[index].shape:
                raise ValueError(
                    f"the new {name} of layer {index} must have shape {store[index].shape}, "
                    f"got {new.shape}"
                )
            store[index] = new
        return self.with_parameters(weights, biases)

    def with_parameters(self, weights: Sequence[Any], biases: Sequence[Any]) -> MLP:
        """Return a network with the same activations and new weights and biases.

        The arrays must hold finite real numbers; they are copied and cast to the network's
        dtype, so the result shares no array with this network or with the arguments.
        """
        if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a sequence of arrays, got {_describe(weights)}")
        if isinstance(biases, str | bytes) or not isinstance(biases, Sequence):
            raise TypeError(f"biases must be a sequence of arrays, got {_describe(biases)}")
        return MLP(
            tuple(
                as_real_array(W, f"weights[{i}]").astype(self.dtype) for i, W in enumerate(weights)
            ),
            tuple(
                as_real_array(b, f"biases[{i}]").astype(self.dtype) for i, b in enumerate(biases)
            ),
            self.activation,
            self.output_activation,
            self.negative_slope,
        )

    # ----------------------------------------------------------------------------- shape
    @property
    def depth(self) -> int:
        """The number of layers L (weight matrices)."""
        return len(self.weights)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The widths ``(n_0, n_1, ..., n_L)``."""
        return (self.weights[0].shape[1], *(W.shape[0] for W in self.weights))

    @property
    def dtype(self) -> np.dtype:
        """The floating-point type of every parameter and computation."""
        return self.weights[0].dtype

    def layer_activation(self, index: int) -> str:
        """Return the activation name of layer `index` (0-based); the last uses the output one."""
        index = self._check_index(index)
        return self.output_activation if index == self.depth - 1 else self.activation

    def _check_index(self, index: Any) -> int:
        """Return `index` if it is an int in 0..depth-1."""
        index = check_int(index, "index")
        if index >= self.depth:
            raise ValueError(f"index must be below the depth {self.depth}, got {index}")
        return index

    def _layer_name(self, index: int) -> str:
        return self.output_activation if index == self.depth - 1 else self.activation

    def _phi(self, index: int, h: np.ndarray) -> np.ndarray:
        return _activation(self._layer_name(index), h, self.negative_slope)

    def _dphi(self, index: int, h: np.ndarray) -> np.ndarray:
        return _derivative(self._layer_name(index), h, self.negative_slope)

    def _as_batch(self, x: Any, name: str = "x") -> np.ndarray:
        """Check `x` and return it as a (batch, n_0) array of the network's dtype."""
        array = as_array_of(x, name)
        if array.ndim != 2 or array.shape[1] != self.sizes[0] or array.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (batch, {self.sizes[0]}) with batch >= 1 to match the "
                f"network's input width {self.sizes[0]}, got shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite, got NaN or infinite entries")
        return array.astype(self.dtype)

    # ----------------------------------------------------------------------------- passes
    def forward(self, x: Any) -> ForwardPass:
        """Run the network on a batch, keeping every pre-activation and activation.

        Parameters
        ----------
        x : array_like, shape (batch, sizes[0])
            One input per row.

        Returns
        -------
        ForwardPass

        Examples
        --------
        >>> net = MLP((np.array([[1.0, -1.0]]),), (np.array([0.5]),), "relu", "relu")
        >>> fp = net.forward([[1.0, 3.0]])
        >>> fp.preactivations[0].tolist(), fp.output.tolist()
        ([[-1.5]], [[0.0]])
        """
        xs = [self._as_batch(x)]
        hs = []
        for layer, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            hs.append(xs[-1] @ W.T + b)
            xs.append(self._phi(layer, hs[-1]))
        return ForwardPass(tuple(xs), tuple(hs))

    def __call__(self, x: Any) -> np.ndarray:
        """Return the output :math:`x_L` for a batch `x` of shape ``(batch, sizes[0])``."""
        return self.forward(x).output

    def backward(self, forward_pass: ForwardPass, grad_output: Any) -> Gradients:
        r"""Backpropagate `grad_output` through the network (vector-Jacobian products).

        With :math:`g_L` = `grad_output` (the gradient of a scalar loss with respect to the
        output, one row per input), for :math:`l = L, \dots, 1`:

        .. math::

            \delta_l = \phi'(h_l) \odot g_l, \qquad
            \frac{\partial \ell}{\partial W_l} = \delta_l^\top x_{l-1}, \qquad
            \frac{\partial \ell}{\partial b_l} = \textstyle\sum_{\text{batch}} \delta_l, \qquad
            g_{l-1} = \delta_l W_l .

        The backward signal is multiplied by the transposed layer Jacobians
        :math:`W_l^\top D_l`: the product of Part I, run in reverse.
        Weight and bias gradients are summed over the batch (divide by the batch size for a
        mean loss).

        Parameters
        ----------
        forward_pass : ForwardPass
            The result of :meth:`forward` on the batch.
        grad_output : array_like, shape (batch, sizes[-1])
            The gradient of the loss with respect to the output. NaN and infinite entries are
            not refused: they propagate, so that the training code can measure a pass that
            overflowed (chapter "Does it train?") and report the run as diverged.

        Returns
        -------
        Gradients

        Examples
        --------
        >>> net = MLP((np.array([[2.0, 3.0]]),), (np.array([0.0]),), "linear")
        >>> g = net.backward(net.forward([[1.0, 1.0]]), [[1.0]])
        >>> g.weights[0].tolist(), g.inputs.tolist()
        ([[1.0, 1.0]], [[2.0, 3.0]])
        """
        if not isinstance(forward_pass, ForwardPass):
            raise TypeError(
                f"forward_pass must be the ForwardPass from net.forward(x), got "
                f"{_describe(forward_pass)}"
            )
        xs, hs = forward_pass.activations, forward_pass.preactivations
        batch = xs[0].shape[0] if len(xs) and np.ndim(xs[0]) == 2 else -1
        expected = [(batch, n) for n in self.sizes]
        if (
            len(hs) != self.depth
            or len(xs) != self.depth + 1
            or [np.shape(x) for x in xs] != expected
            or [np.shape(h) for h in hs] != expected[1:]
        ):
            raise ValueError(
                "forward_pass does not come from a network of this shape: expected activations "
                f"of shapes {expected}, got {[np.shape(x) for x in xs]}"
            )
        try:  # NaN and inf are let through: a diverged or overflowed pass is measured, not refused
            g = np.asarray(grad_output)
        except (TypeError, ValueError) as error:  # ragged nested lists, for example
            raise TypeError(
                f"grad_output must hold real numbers, got {_describe(grad_output)}"
            ) from error
        if g.dtype.kind not in "biuf":
            raise TypeError(f"grad_output must hold real numbers, got {_describe(grad_output)}")
        if g.shape != (batch, self.sizes[-1]):
            raise ValueError(
                f"grad_output must have the output's shape (batch, n_L) = "
                f"{(batch, self.sizes[-1])}, got shape {g.shape}"
            )
        g = g.astype(self.dtype)
        depth = self.depth
        dW, db, deltas = [None] * depth, [None] * depth, [None] * depth
        for layer in reversed(range(depth)):
            linear = self._layer_name(layer) == "linear"
            delta = g if linear else self._dphi(layer, hs[layer]) * g
            dW[layer] = delta.T @ xs[layer]
            db[layer] = delta.sum(axis=0)
            deltas[layer] = delta
            g = delta @ self.weights[layer]
        return Gradients(tuple(dW), tuple(db), tuple(deltas), g)

    def jacobian(self, x: Any) -> np.ndarray:
        r"""Return the input-output Jacobian :math:`J = \partial x_L / \partial x_0` at every input.

        .. math:: J = D_L W_L \, D_{L-1} W_{L-1} \cdots D_1 W_1, \qquad
                  D_l = \operatorname{diag} \phi'(h_l)

        computed forward, one layer at a time, for the whole batch at once.

        Parameters
        ----------
        x : array_like, shape (batch, sizes[0])

        Returns
        -------
        numpy.ndarray, shape (batch, sizes[-1], sizes[0])

        Examples
        --------
        >>> net = MLP((np.array([[2.0, 0.0], [0.0, 3.0]]),), (np.zeros(2),), "linear")
        >>> net.jacobian([[1.0, 1.0]]).tolist()
        [[[2.0, 0.0], [0.0, 3.0]]]
        """
        fp = self.forward(x)
        # Layer 1: D_1 W_1 for every input (scale row i of W_1 by phi'(h_1i)).
        J = self._dphi(0, fp.preactivations[0])[:, :, None] * self.weights[0]
        for layer in range(1, self.depth):
            D = self._dphi(layer, fp.preactivations[layer])
            J = D[:, :, None] * np.matmul(self.weights[layer], J)
        return J

    def jacobian_singular_values(self, x: Any) -> np.ndarray:
        """Return the singular values of the input-output Jacobian at every input, largest first.

        Computed by SVD of the explicit product, so values below about ``1e-16`` times the
        largest (float64) are rounding noise.

        Parameters
        ----------
        x : array_like, shape (batch, sizes[0])

        Returns
        -------
        numpy.ndarray, shape (batch, min(sizes[0], sizes[-1]))

        Examples
        --------
        >>> Q = np.array([[0.0, 1.0], [-1.0, 0.0]])
        >>> net = MLP((Q, Q), (np.zeros(2), np.zeros(2)), "linear")
        >>> net.jacobian_singular_values([[0.3, 0.4]]).tolist()
        [[1.0, 1.0]]
        """
        return np.linalg.svd(self.jacobian(x), compute_uv=False)
