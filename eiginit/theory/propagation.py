r"""Signal propagation through a deep fully connected network, forward and backward.

The experiment of the chapter "Variance scaling with nonlinearities" (Part III): a batch of inputs
goes through ``L`` layers :math:`h_\ell = W_\ell x_{\ell-1}`, :math:`x_\ell = \phi(h_\ell)` (no
biases), a random unit-variance gradient comes back, and every layer's activation and gradient
variance is recorded (:func:`propagate`). Beside it, the mean-field prediction of the same variances
(:func:`variance_recursion`), which treats every pre-activation as Gaussian, as in Glorot & Bengio
(2010), He et al. (2015) and Poole et al. (2016). Gaussian expectations are computed by quadrature,
so the module needs numpy only.

This is a measuring instrument, not a trainable network: the multilayer perceptron of the later
chapters lives in its own module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from eiginit._checks import (
    as_real_array,
    check_bool,
    check_callable,
    check_int,
    check_rng,
    check_widths,
)
from eiginit._numerics import normal_rule
from eiginit.models.network import (
    ACTIVATIONS,
    _check_activation,
    activation_derivative,
    apply_activation,
)

__all__ = [
    "ACTIVATIONS",
    "PropagationStats",
    "VarianceRecursion",
    "activation_function",
    "gaussian_expectation",
    "propagate",
    "variance_recursion",
]

# Nodes per half-line of the quadrature (eiginit._numerics): about 1e-12 for these activations.
_HALF_NODES = 160
# Entries beyond this would overflow when squared for a variance: report the pass as overflowed.
_TOO_LARGE = 1e150


_Fn = Callable[[np.ndarray], np.ndarray]


def activation_function(name: str) -> tuple[_Fn, _Fn]:
    """Return the activation `name` and its derivative, both vectorized.

    The two functions are :func:`eiginit.models.network.apply_activation` and
    :func:`eiginit.models.network.activation_derivative` with the name fixed, so that a formula
    reads
    ``phi(h)``.

    Parameters
    ----------
    name : str
        One of :data:`~eiginit.models.network.ACTIVATIONS`. ``leaky_relu`` has PyTorch's default
        slope
        0.01; ``selu`` Klambauer et al.'s constants.

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
    name = _check_activation(name)
    return partial(apply_activation, name), partial(activation_derivative, name)


def gaussian_expectation(f: _Fn, q: Any) -> np.ndarray:
    r"""Return :math:`\mathbb{E}[f(\sqrt{q}\, z)]`, :math:`z \sim \mathcal{N}(0, 1)`, by quadrature.

    .. math::

        \mathbb{E}[f(\sqrt q\, z)] = \int_0^\infty \big[f(\sqrt q\, t) + f(-\sqrt q\, t)\big]\,
        \frac{e^{-t^2/2}}{\sqrt{2\pi}}\, dt ,

    by 160-point Gauss-Legendre on :math:`[0, 12]` (the rule :mod:`eiginit.theory.meanfield` uses
    too,
    with its own node count). Splitting at zero keeps the rule accurate
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

    Raises
    ------
    TypeError, ValueError
        If `f` is not callable or does not return finite real numbers of its argument's shape
        (a scalar is broadcast), `q` is not finite and >= 0, or the expectation overflows.

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
    check_callable(f, "f", "f(h) -> array of the shape of h")
    qs = as_real_array(q, "q")
    if np.any(qs < 0):
        raise ValueError(f"q must be a variance, >= 0, got minimum {qs.min()}")
    nodes, weights = normal_rule(_HALF_NODES)
    h = np.sqrt(qs)[..., None] * nodes
    with np.errstate(over="ignore", invalid="ignore"):
        raw = f(h)
    values = as_real_array(raw, "f(h)")
    if values.shape != h.shape:
        try:  # a constant function, for example, returns a scalar
            values = np.broadcast_to(values, h.shape)
        except ValueError as error:
            raise ValueError(
                f"f must return an array of the shape of its argument {h.shape}, got shape "
                f"{values.shape}"
            ) from error
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values @ weights, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            "the expectation overflows float64: f(sqrt(q) z) is too large at these variances "
            f"(largest q {float(np.max(qs)):.3g})"
        )
    return out


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


@dataclass(frozen=True)
class VarianceRecursion:
    r"""Mean-field predictions per layer, from :func:`variance_recursion`.

    Attributes
    ----------
    preactivation : numpy.ndarray, shape (depth,)
        :math:`q_\ell = \mathbb{E}[h_\ell^2]` for ``l = 1..L``.
    activation : numpy.ndarray, shape (depth + 1,)
        :math:`\mathbb{E}[x_\ell^2]` for ``l = 0..L`` (the input's is 1).
    gradient : numpy.ndarray, shape (depth + 1,)
        :math:`\mathbb{E}[(\partial \mathcal{L} / \partial x_\ell)^2]` for ``l = 0..L`` (the
        output's is 1).
    """

    preactivation: np.ndarray
    activation: np.ndarray
    gradient: np.ndarray


def variance_recursion(
    widths: Sequence[int], weight_variances: Any, activation: str
) -> VarianceRecursion:
    r"""Predict per-layer second moments forward and backward, treating pre-activations as Gaussian.

    With unit-variance inputs, weights of variance :math:`v_\ell` and
    :math:`q_\ell = \mathbb{E}[h_\ell^2]`,

    .. math::

        q_1 = n_0 v_1, \qquad
        q_{\ell+1} = n_\ell\, v_{\ell+1}\, \mathbb{E}[\phi(\sqrt{q_\ell} z)^2], \qquad
        \mathbb{E}[\bar x_{\ell-1}^2] = n_\ell\, v_\ell\, \mathbb{E}[\phi'(\sqrt{q_\ell} z)^2]\;
        \mathbb{E}[\bar x_\ell^2], \quad \mathbb{E}[\bar x_L^2] = 1,

    where :math:`\bar x_\ell = \partial \mathcal{L} / \partial x_\ell` is the gradient reaching
    :math:`x_\ell` (Glorot & Bengio
    2010; He et al. 2015; Poole et al. 2016). Exact for linear layers; for nonlinear ones it
    ignores the correlations that finite width creates.

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)``.
    weight_variances : array_like, shape (depth,)
        The entry variance of each layer's weights.
    activation : str
        One of :data:`~eiginit.models.network.ACTIVATIONS`.

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
    ns = check_widths(widths, "widths")
    variances = as_real_array(weight_variances, "weight_variances")
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
        if not q[layer] < _TOO_LARGE:
            raise ValueError(
                f"the predicted variance overflows at layer {layer + 1}: weight_variances are "
                "far too large for these widths and this depth"
            )
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
        :math:`\mathrm{Var}(h_\ell)`, ``l = 1..L``.
    activation_var : numpy.ndarray, shape (depth + 1,)
        :math:`\mathrm{Var}(x_\ell)`, ``l = 0..L``.
    activation_second_moment : numpy.ndarray, shape (depth + 1,)
        :math:`\mathbb{E}[x_\ell^2]` (differs from the variance when the mean is not zero, as
        after ReLU).
    gradient_var : numpy.ndarray, shape (depth + 1,)
        :math:`\mathrm{Var}(\partial \mathcal{L} / \partial x_\ell)`, ``l = 0..L``.
    weight_gradient_var : numpy.ndarray, shape (depth,)
        :math:`\mathrm{Var}(\partial \mathcal{L} / \partial W_\ell)`, the batch-averaged weight
        gradient.
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

    Forward, with :math:`x_0 \sim \mathcal{N}(0, I)` and no biases:
    :math:`h_\ell = x_{\ell-1} W_\ell^\top`, :math:`x_\ell = \phi(h_\ell)`, ``l = 1..L``, where each
    :math:`W_\ell` of shape ``(n_l, n_{l-1})`` is ``initializer((n_l, n_{l-1}), rng=rng)``.
    Backward, from a unit-variance gradient :math:`\bar x_L \sim \mathcal{N}(0, I)` at the output
    (what a loss would send, independent of the forward pass):

    .. math::

        \delta_\ell = \bar x_\ell \odot \phi'(h_\ell), \qquad \bar x_{\ell-1} = \delta_\ell W_\ell,
        \qquad
        \frac{\partial \mathcal{L}}{\partial W_\ell} = \frac{1}{B}\, \delta_\ell^\top x_{\ell-1} .

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L)``, every width >= 1, at least two entries.
    initializer : callable
        ``initializer(shape, rng=rng)`` returning a float array of that shape, for example
        :func:`eiginit.xavier_normal` or ``functools.partial(eiginit.kaiming_normal,
        nonlinearity="relu")``.
    activation : str, default "tanh"
        One of :data:`~eiginit.models.network.ACTIVATIONS`.
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
    ns = check_widths(widths, "widths")
    check_callable(initializer, "initializer", "initializer(shape, rng=rng)")
    phi, dphi = activation_function(activation)
    batch = check_int(batch, "batch", minimum=2)
    keep_activations = check_bool(keep_activations, "keep_activations")
    generator = check_rng(rng)
    depth = len(ns) - 1

    x = generator.standard_normal((batch, ns[0]))
    xs, hs, weights = [x], [], []
    for layer in range(depth):
        shape = (ns[layer + 1], ns[layer])
        w = as_real_array(initializer(shape, rng=generator), f"the initializer's layer {layer + 1}")
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
