r"""Signal propagation through a deep fully connected network, forward and backward.

The experiment of the chapter "Variance scaling with nonlinearities" (Part III): a batch of
inputs goes through ``L`` layers :math:`h_l = W_l x_{l-1}`, :math:`x_l = \phi(h_l)` (no biases),
a random unit-variance gradient comes back, and every layer's activation and gradient variance is
recorded (:func:`propagate`). Beside it, the mean-field prediction of the same variances
(:func:`variance_recursion`), which treats every pre-activation as Gaussian, as in Glorot &
Bengio (2010), He et al. (2015) and Poole et al. (2016). Gaussian expectations are computed by
quadrature, so the module needs numpy only.

This is a measuring instrument, not a trainable network: the multilayer perceptron of the later
chapters lives in its own module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _as_real_array, check_int, check_rng
from eiginit.network import ACTIVATIONS

__all__ = [
    "ACTIVATIONS",
    "PropagationStats",
    "VarianceRecursion",
    "activation_function",
    "gaussian_expectation",
    "propagate",
    "variance_recursion",
]

#: SELU's constants (Klambauer et al. 2017).
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
_LEAKY_SLOPE = 0.01
# Entries beyond this would overflow when squared for a variance: report the pass as overflowed.
_TOO_LARGE = 1e150


_Fn = Callable[[np.ndarray], np.ndarray]


def _sigmoid(h: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * h))  # overflow-free form of 1 / (1 + e^-h)


def _selu(h: np.ndarray) -> np.ndarray:
    return _SELU_SCALE * np.where(h > 0, h, _SELU_ALPHA * np.expm1(np.minimum(h, 0.0)))


def _selu_prime(h: np.ndarray) -> np.ndarray:
    return _SELU_SCALE * np.where(h > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(h, 0.0)))


_TABLE: dict[str, tuple[_Fn, _Fn]] = {
    "linear": (lambda h: h, np.ones_like),
    "tanh": (np.tanh, lambda h: 1.0 - np.tanh(h) ** 2),
    "relu": (lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(np.float64)),
    "leaky_relu": (
        lambda h: np.where(h > 0, h, _LEAKY_SLOPE * h),
        lambda h: np.where(h > 0, 1.0, _LEAKY_SLOPE),
    ),
    "selu": (_selu, _selu_prime),
    "sigmoid": (_sigmoid, lambda h: _sigmoid(h) * (1.0 - _sigmoid(h))),
}


def activation_function(name: str) -> tuple[_Fn, _Fn]:
    """Return the activation `name` and its derivative, both vectorized.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`. ``leaky_relu`` has PyTorch's default slope 0.01; ``selu``
        Klambauer et al.'s constants.

    Returns
    -------
    tuple of callables
        ``(phi, phi_prime)``.

    Examples
    --------
    >>> phi, dphi = activation_function("relu")
    >>> phi(np.array([-1.0, 2.0])).tolist(), dphi(np.array([-1.0, 2.0])).tolist()
    ([0.0, 2.0], [0.0, 1.0])
    """
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, one of {list(ACTIVATIONS)}, got {name!r}")
    if name not in _TABLE:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {name!r}")
    return _TABLE[name]


# Gauss-Legendre on [0, 12] for each half-line: the activations are smooth on either side of
# zero (ReLU's kink and SELU's jump in slope sit exactly at the split), and the normal density
# beyond 12 standard deviations is below 1e-31.
_HALF_NODES, _HALF_WEIGHTS = np.polynomial.legendre.leggauss(160)
_HALF_NODES = 6.0 * (_HALF_NODES + 1.0)
_HALF_WEIGHTS = 6.0 * _HALF_WEIGHTS * np.exp(-0.5 * _HALF_NODES**2) / math.sqrt(2.0 * math.pi)


def gaussian_expectation(f: _Fn, q: Any) -> np.ndarray:
    r"""Return :math:`E[f(\sqrt{q}\, z)]` for :math:`z \sim N(0, 1)`, by quadrature.

    .. math::

        E[f(\sqrt q\, z)] = \int_0^\infty \big[f(\sqrt q\, t) + f(-\sqrt q\, t)\big]\,
        \frac{e^{-t^2/2}}{\sqrt{2\pi}}\, dt ,

    by 160-point Gauss-Legendre on :math:`[0, 12]`. Splitting at zero keeps the rule accurate
    (about 1e-12) for activations with a kink at zero, such as ReLU and SELU, where a Hermite rule
    over the whole line loses digits.

    Parameters
    ----------
    f : callable
        Vectorized function of an array, smooth on each side of zero.
    q : float or array_like
        Variances, >= 0.

    Returns
    -------
    numpy.ndarray
        The expectations, the shape of `q`.

    Examples
    --------
    >>> round(float(gaussian_expectation(lambda h: h**2, 3.0)), 10)
    3.0
    >>> relu, drelu = activation_function("relu")
    >>> round(float(gaussian_expectation(lambda h: relu(h) ** 2, 2.0)), 10)  # q / 2
    1.0
    >>> round(float(gaussian_expectation(drelu, 2.0)), 10)  # P(h > 0)
    0.5
    """
    qs = _as_real_array(q, "q")
    if np.any(qs < 0):
        raise ValueError(f"q must be a variance, >= 0, got minimum {qs.min()}")
    t = np.sqrt(qs)[..., None] * _HALF_NODES
    values = f(t) + f(-t)
    return np.asarray(values @ _HALF_WEIGHTS, dtype=np.float64)


def _product_variance(delta: np.ndarray, x: np.ndarray) -> float:
    r"""Return the variance of the entries of ``delta.T @ x / B`` without forming it.

    With Gram matrices of the batch, :math:`\sum_{ij} (\delta^\top x)_{ij}^2 =
    \sum_{bc} (\delta\delta^\top)_{bc} (x x^\top)_{bc}`: cheaper when the batch is smaller
    than the widths.
    """
    b = delta.shape[0]
    size = delta.shape[1] * x.shape[1]
    mean_square = float(np.sum((delta @ delta.T) * (x @ x.T))) / (b * b * size)
    mean = float(delta.sum(axis=1) @ x.sum(axis=1)) / (b * size)
    return max(mean_square - mean**2, 0.0)


def _as_widths(widths: Any) -> tuple[int, ...]:
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence of ints (n_0, ..., n_L), got {widths!r}"[:160])
    out = tuple(check_int(n, "every width", minimum=1) for n in widths)
    if len(out) < 2:
        raise ValueError(f"widths must hold at least an input and an output width, got {out}")
    return out


@dataclass(frozen=True)
class VarianceRecursion:
    r"""Mean-field predictions per layer, from :func:`variance_recursion`.

    Attributes
    ----------
    preactivation : numpy.ndarray, shape (depth,)
        :math:`q_l = E[h_l^2]` for ``l = 1..L``.
    activation : numpy.ndarray, shape (depth + 1,)
        :math:`E[x_l^2]` for ``l = 0..L`` (the input's is 1).
    gradient : numpy.ndarray, shape (depth + 1,)
        :math:`E[(\partial \ell / \partial x_l)^2]` for ``l = 0..L`` (the output's is 1).
    """

    preactivation: np.ndarray
    activation: np.ndarray
    gradient: np.ndarray


def variance_recursion(
    widths: Sequence[int], weight_variances: Any, activation: str
) -> VarianceRecursion:
    r"""Predict per-layer second moments forward and backward, treating pre-activations as Gaussian.

    With unit-variance inputs, weights of variance :math:`v_l` and :math:`q_l = E[h_l^2]`,

    .. math::

        q_1 = n_0 v_1, \qquad
        q_{l+1} = n_l\, v_{l+1}\, E[\phi(\sqrt{q_l} z)^2], \qquad
        g_{l-1} = n_l\, v_l\, E[\phi'(\sqrt{q_l} z)^2]\; g_l, \quad g_L = 1,

    where :math:`g_l` is the second moment of the gradient reaching :math:`x_l` (Glorot & Bengio
    2010; He et al. 2015; Poole et al. 2016). Exact for linear layers; for nonlinear ones it
    ignores the correlations that finite width creates.

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)``.
    weight_variances : array_like, shape (depth,)
        The entry variance of each layer's weights.
    activation : str
        One of :data:`ACTIVATIONS`.

    Returns
    -------
    VarianceRecursion

    Examples
    --------
    >>> # He initialization of a ReLU network: the variance is preserved
    >>> mf = variance_recursion([100, 100, 100], [2 / 100, 2 / 100], "relu")
    >>> mf.preactivation.round(4).tolist(), mf.gradient.round(4).tolist()
    ([2.0, 2.0], [1.0, 1.0, 1.0])
    """
    ns = _as_widths(widths)
    variances = _as_real_array(weight_variances, "weight_variances")
    depth = len(ns) - 1
    if variances.shape != (depth,) or np.any(variances <= 0):
        raise ValueError(
            f"weight_variances must hold {depth} positive numbers (one per layer), got "
            f"shape {variances.shape}"
        )
    phi, dphi = activation_function(activation)
    q = np.empty(depth)
    act = np.ones(depth + 1)
    slope = np.empty(depth)
    for layer in range(depth):
        q[layer] = ns[layer] * variances[layer] * act[layer]
        act[layer + 1] = gaussian_expectation(lambda h: phi(h) ** 2, q[layer])
        slope[layer] = gaussian_expectation(lambda h: dphi(h) ** 2, q[layer])
    grad = np.ones(depth + 1)
    for layer in range(depth - 1, -1, -1):
        grad[layer] = ns[layer + 1] * variances[layer] * slope[layer] * grad[layer + 1]
    return VarianceRecursion(preactivation=q, activation=act, gradient=grad)


@dataclass(frozen=True)
class PropagationStats:
    r"""Per-layer statistics of one forward and backward pass, from :func:`propagate`.

    Layer ``l = 0`` is the input. Variances are over every entry of the batch at that layer.

    Attributes
    ----------
    widths : tuple of int
        ``(n_0, ..., n_L)``.
    activation : str
        The nonlinearity's name.
    weight_var : numpy.ndarray, shape (depth,)
        The variance of the weights actually drawn, per layer.
    preactivation_var : numpy.ndarray, shape (depth,)
        :math:`\mathrm{Var}(h_l)`, ``l = 1..L``.
    activation_var : numpy.ndarray, shape (depth + 1,)
        :math:`\mathrm{Var}(x_l)`, ``l = 0..L``.
    activation_second_moment : numpy.ndarray, shape (depth + 1,)
        :math:`E[x_l^2]` (differs from the variance when the mean is not zero, as after ReLU).
    gradient_var : numpy.ndarray, shape (depth + 1,)
        :math:`\mathrm{Var}(\partial \ell / \partial x_l)`, ``l = 0..L``.
    weight_gradient_var : numpy.ndarray, shape (depth,)
        :math:`\mathrm{Var}(\partial \ell / \partial W_l)`, the batch-averaged weight gradient.
    activations : tuple of numpy.ndarray
        ``(x_0, ..., x_L)``, each ``(batch, n_l)``, if requested; else empty.
    """

    widths: tuple[int, ...]
    activation: str
    weight_var: np.ndarray
    preactivation_var: np.ndarray
    activation_var: np.ndarray
    activation_second_moment: np.ndarray
    gradient_var: np.ndarray
    weight_gradient_var: np.ndarray
    activations: tuple[np.ndarray, ...]

    @property
    def depth(self) -> int:
        """The number of layers L."""
        return len(self.widths) - 1


def propagate(
    widths: Sequence[int],
    initializer: Callable[..., np.ndarray],
    activation: str = "tanh",
    *,
    batch: int = 256,
    keep_activations: bool = False,
    rng: np.random.Generator,
) -> PropagationStats:
    r"""Run a batch forward through a fresh deep network and a random gradient back.

    Forward, with :math:`x_0 \sim N(0, I)` and no biases:
    :math:`h_l = x_{l-1} W_l^\top`, :math:`x_l = \phi(h_l)`, ``l = 1..L``, where each
    :math:`W_l` of shape ``(n_l, n_{l-1})`` is ``initializer((n_l, n_{l-1}), rng=rng)``.
    Backward, from a unit-variance gradient :math:`g_L \sim N(0, I)` at the output (what a loss
    would send, independent of the forward pass):

    .. math::

        \delta_l = g_l \odot \phi'(h_l), \qquad g_{l-1} = \delta_l W_l, \qquad
        \frac{\partial \ell}{\partial W_l} = \frac{1}{B}\, \delta_l^\top x_{l-1} .

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)``, every width >= 1, at least two entries.
    initializer : callable
        ``initializer(shape, rng=rng)`` returning a float array of that shape, for example
        :func:`eiginit.xavier_normal` or ``functools.partial(eiginit.kaiming_normal,
        nonlinearity="relu")``.
    activation : str, default "tanh"
        One of :data:`ACTIVATIONS`.
    batch : int, default 256
        Inputs per pass, >= 2.
    keep_activations : bool, default False
        Also return every layer's activations (memory: batch x sum of widths floats).
    rng : numpy.random.Generator
        Draws the inputs, the output gradient and (through `initializer`) the weights.

    Returns
    -------
    PropagationStats

    Raises
    ------
    ValueError
        On bad widths, an initializer returning the wrong shape, or a pass that overflows.

    Examples
    --------
    >>> from functools import partial
    >>> from eiginit import kaiming_normal
    >>> he = partial(kaiming_normal, nonlinearity="relu")
    >>> s = propagate([200] * 11, he, "relu", batch=100, rng=np.random.default_rng(0))
    >>> s.depth, s.activation_var.shape, s.gradient_var.shape
    (10, (11,), (11,))
    >>> round(float(s.weight_var[0] * 200), 1)  # He: variance 2 / fan_in
    2.0
    """
    ns = _as_widths(widths)
    if not callable(initializer):
        raise TypeError(
            f"initializer must be callable as initializer(shape, rng=rng), got {initializer!r}"
        )
    phi, dphi = activation_function(activation)
    batch = check_int(batch, "batch", minimum=2)
    if not isinstance(keep_activations, bool):
        raise TypeError(f"keep_activations must be True or False, got {keep_activations!r}")
    generator = check_rng(rng)
    depth = len(ns) - 1

    x = generator.standard_normal((batch, ns[0]))
    xs, hs, weights = [x], [], []
    for layer in range(depth):
        shape = (ns[layer + 1], ns[layer])
        w = np.asarray(initializer(shape, rng=generator), dtype=np.float64)
        if w.shape != shape:
            raise ValueError(
                f"initializer returned shape {w.shape} for layer {layer + 1}, expected {shape}"
            )
        h = x @ w.T
        if not np.max(np.abs(h)) < _TOO_LARGE:
            raise ValueError(
                f"the forward pass overflowed at layer {layer + 1}: the initializer's variance "
                "is far too large for this depth"
            )
        x = phi(h)
        weights.append(w)
        hs.append(h)
        xs.append(x)

    g = generator.standard_normal((batch, ns[-1]))
    grads = [g]
    weight_grad_var = np.empty(depth)
    for layer in range(depth - 1, -1, -1):
        delta = g * dphi(hs[layer])
        weight_grad_var[layer] = _product_variance(delta, xs[layer])
        g = delta @ weights[layer]
        if not np.max(np.abs(g)) < _TOO_LARGE:
            raise ValueError(
                f"the backward pass overflowed at layer {layer + 1}: the gradient grows too fast "
                "for this depth"
            )
        grads.append(g)
    grads.reverse()

    return PropagationStats(
        widths=ns,
        activation=activation,
        weight_var=np.array([np.var(w) for w in weights]),
        preactivation_var=np.array([np.var(h) for h in hs]),
        activation_var=np.array([np.var(a) for a in xs]),
        activation_second_moment=np.array([np.mean(a**2) for a in xs]),
        gradient_var=np.array([np.var(a) for a in grads]),
        weight_gradient_var=weight_grad_var,
        activations=tuple(xs) if keep_activations else (),
    )
