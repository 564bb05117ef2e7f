r"""Mean-field signal propagation in wide random networks: q*, chi_1, the edge of chaos.

Used by the chapter "The backward pass". A layer of a wide network with weights :math:`W_{ij} \sim
\mathcal{N}(0, \sigma_w^2 / n)` and biases :math:`b_i \sim \mathcal{N}(0, \sigma_b^2)` maps the
variance :math:`q` of its pre-activations and the correlation :math:`c` between two inputs to (Poole
et al. 2016; Schoenholz et al. 2017)

.. math::

    q_\ell &= \sigma_w^2 \, \mathbb{E}_z\bigl[\phi(\sqrt{q_{\ell-1}}\, z)^2\bigr] + \sigma_b^2, \\
    c_\ell &= \frac{1}{q^*}\Bigl(\sigma_w^2\, \mathbb{E}\bigl[\phi(u_1)\phi(u_2)\bigr]
             + \sigma_b^2\Bigr), \quad u_1 = \sqrt{q^*} z_1,\;
             u_2 = \sqrt{q^*}\bigl(c_{\ell-1} z_1 + \sqrt{1 - c_{\ell-1}^2}\, z_2\bigr),

with :math:`z, z_1, z_2` independent standard normals. The variance settles at a fixed point
:math:`q^*`; the slope of the correlation map at :math:`c = 1`,

.. math:: \chi_1 = \sigma_w^2\, \mathbb{E}_z\bigl[\phi'(\sqrt{q^*} z)^2\bigr],

is also the mean squared singular value of one layer's Jacobian :math:`D_\ell W_\ell`: it separates
the ordered phase (:math:`\chi_1 < 1`, gradients vanish, inputs merge) from the chaotic one
(:math:`\chi_1 > 1`, gradients explode, inputs decorrelate). Correlations approach their fixed
point :math:`c^*` like :math:`e^{-l/\xi_c}` with :math:`\xi_c = -1/\log \chi_c`,
:math:`\chi_c = \sigma_w^2\,\mathbb{E}[\phi'(u_1)\phi'(u_2)]` at :math:`c^*`; it diverges on the
critical line :math:`\chi_1 = 1`.

All expectations use the Gauss-Legendre rule split at zero that
:func:`eiginit.theory.propagation.gaussian_expectation` uses (one rule for the package), and every
function broadcasts over arrays of :math:`(\sigma_w^2, \sigma_b^2)`, so a whole phase diagram
is one call.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, as_real_array, check_int
from eiginit._numerics import normal_rule
from eiginit.models.network import _check_activation, activation_derivative, apply_activation

__all__ = [
    "MeanField",
    "critical_sigma_w2",
    "mean_field",
    "q_star",
]

# Gauss-Legendre nodes per half-line of the shared rule (eiginit._numerics): 120 points per
# one-dimensional expectation. No node sits on the kink of ReLU at 0.
_DEFAULT_NODES = 60
# Positively homogeneous activations, phi(t h) = t phi(h) for t > 0: their variance map is
# linear, F(q) = sigma_w2 * E[phi(z)^2] * q + sigma_b2, with these second moments E[phi(z)^2]
# (leaky ReLU with the default negative slope 0.01 of eiginit.models.network).
_HOMOGENEOUS = {"linear": 1.0, "relu": 0.5, "leaky_relu": (1.0 + 0.01**2) / 2}
# sqrt(q) stand-ins for q* = 0 and q* = infinity: phi' there gives the limits q -> 0+ and
# q -> infinity of E[phi'(sqrt(q) z)^2] on the quadrature nodes (|z| <= 12), not phi'(0).
_SQRT_Q_ZERO = 1e-300
_SQRT_Q_INFINITY = 1e300
# Fixed points beyond this multiple of 1 + sigma_w2 + sigma_b2 are not resolved by the rule.
_ROUNDING_Q = 1e10
# A change of chi_1 larger than this across the final bisection bracket (about 1e-16 wide) is
# a jump, not a root: chi_1 is smooth in sigma_w2 wherever q* is.
_JUMP = 1e-6
# More nodes than this buy no accuracy and only memory (the pair rule holds (2 m)^2 points).
_MAX_NODES = 2000


def _as_parameter(value: Any, name: str, *, positive: bool) -> np.ndarray:
    expected = f"{name} must be a real number or array, got {_describe(value)}"
    if isinstance(value, bool | np.bool_):
        raise TypeError(expected)
    try:
        array = as_real_array(value, name)
    except TypeError as error:  # strings, complex, ragged lists, objects
        raise TypeError(expected) from error
    except ValueError:  # NaN or infinite: reported below with the value
        array = np.asarray(value, dtype=np.float64)
    if np.asarray(value).dtype.kind == "b":
        raise TypeError(expected)
    bad = ~np.isfinite(array) | (array <= 0 if positive else array < 0)
    if np.any(bad):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {float(array[bad].ravel()[0])!r}")
    return array


def _broadcast(sw2: np.ndarray, sb2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast the two parameters, naming them when their shapes do not fit."""
    try:
        return np.broadcast_arrays(sw2, sb2)
    except ValueError as error:
        raise ValueError(
            f"sigma_w2 and sigma_b2 must broadcast together, got shapes {sw2.shape} and {sb2.shape}"
        ) from error


def _length_map(q: np.ndarray, sw2: np.ndarray, sb2: np.ndarray, act: str, n: int) -> np.ndarray:
    x, w = normal_rule(n)
    phi = apply_activation(act, np.sqrt(q)[..., None] * x)
    return sw2 * (phi**2 @ w) + sb2


def q_star(
    sigma_w2: Any,
    sigma_b2: Any,
    activation: str = "tanh",
    *,
    nodes: int = _DEFAULT_NODES,
) -> np.ndarray | float:
    r"""Return the fixed point :math:`q^*` of the variance (length) map.

    .. math:: q^* = \sigma_w^2\, \mathbb{E}_z\bigl[\phi(\sqrt{q^*} z)^2\bigr] + \sigma_b^2

    (Poole et al. 2016, eq. 3.) Found by bisection in :math:`\log q` on
    :math:`F(q) - q`, which is positive below the fixed point the iteration reaches from
    :math:`q_0 = 1` and negative above it. When :math:`\sigma_b = 0` and :math:`q = 0` is the
    attracting fixed point, returns 0.

    For linear, tanh, ReLU, leaky ReLU, SELU and sigmoid every :math:`q_0 > 0` reaches the same
    fixed point. GELU and SiLU are not so simple: :math:`E[\phi(\sqrt q z)^2]/q` rises from
    1/4 (:math:`\phi'(0) = 1/2`) to 1/2 (ReLU's) as :math:`q` grows, so for
    :math:`2 < \sigma_w^2 < 4` and a small bias the map has an attracting fixed point near 0 and
    a repelling one above it: a smaller input variance dies out, a larger one grows without
    bound. This function follows :math:`q_0 = 1` (unit-variance pre-activations).

    For the positively homogeneous activations (linear, relu, leaky_relu) the map is linear,
    :math:`F(q) = c\, q + \sigma_b^2` with :math:`c = \sigma_w^2 \mathbb{E}[\phi(z)^2]`
    (1, 1/2, :math:`(1 + a^2)/2`), and the closed form :math:`q^* = \sigma_b^2 / (1 - c)` for
    :math:`c < 1` is used. At :math:`c = 1` with :math:`\sigma_b = 0` (He initialization for
    ReLU) every :math:`q` is a fixed point and 0 is returned.

    Parameters
    ----------
    sigma_w2, sigma_b2 : float or array_like
        Weight variance times fan-in (> 0) and bias variance (>= 0); broadcast together.
    activation : str, default "tanh"
        A name from :data:`eiginit.models.network.ACTIVATIONS`.
    nodes : int, default 60
        Gauss-Legendre nodes per half-line for each expectation (``2 * nodes`` points).

    Returns
    -------
    float or numpy.ndarray
        :math:`q^*`, with the broadcast shape of the inputs (a float for scalar input).

    Raises
    ------
    ValueError
        If the variance grows without bound (for example ReLU with :math:`\sigma_w^2 \ge 2`), or
        for bad parameters.

    Examples
    --------
    >>> round(q_star(1.0, 0.5, "relu"), 6)  # q = q / 2 + 0.5
    1.0
    >>> q_star(0.8, 0.0)  # tanh with no bias and sigma_w^2 < 1: the signal dies out
    0.0
    """
    sw2 = _as_parameter(sigma_w2, "sigma_w2", positive=True)
    sb2 = _as_parameter(sigma_b2, "sigma_b2", positive=False)
    act = _check_activation(activation)
    n = check_int(nodes, "nodes", minimum=2, maximum=_MAX_NODES)
    sw2, sb2 = _broadcast(sw2, sb2)
    scalar = sw2.ndim == 0
    result = _q_star(np.atleast_1d(sw2), np.atleast_1d(sb2), act, n)
    return float(result[0]) if scalar else result


def _q_star(
    sw2: np.ndarray, sb2: np.ndarray, act: str, n: int, *, unbounded: bool = False
) -> np.ndarray:
    """q* at every point; where the variance grows without bound, raise or (`unbounded`) inf."""
    if act in _HOMOGENEOUS:
        slope = sw2 * _HOMOGENEOUS[act]
        finite = (slope < 1) | ((slope == 1) & (sb2 == 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(slope < 1, sb2 / (1 - slope), 0.0)
        return _unbounded(np.where(finite, q, np.inf), sw2, sb2, unbounded)
    lo = np.full(sw2.shape, 1e-200)
    hi = np.ones(sw2.shape)
    # Grow the upper end until the map pulls the variance back down, F(hi) < hi: by factors
    # of 4 up to 4**20, then of 1e8 up to 1e300, beyond which the variance has no fixed point.
    up = _length_map(hi, sw2, sb2, act, n) >= hi
    for step in range(60):
        if not np.any(up):
            break
        hi = np.where(up, hi * (4.0 if step < 20 else 1e8), hi)
        up = up & (hi <= 1e300)
        up = up & (_length_map(np.where(up, hi, 1.0), sw2, sb2, act, n) >= hi)
    unbound = hi > 1e300
    if np.any(unbound):
        hi = np.where(unbound, 1.0, hi)
    zero = _length_map(lo, sw2, sb2, act, n) <= lo  # q = 0 attracts
    for _ in range(120):
        mid = np.sqrt(lo * hi)
        above = _length_map(mid, sw2, sb2, act, n) < mid
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    q = np.where(zero, 0.0, np.sqrt(lo * hi))
    # A "fixed point" this far above sigma_w2 and sigma_b2 is the rule's rounding, not the map:
    # GELU and SiLU behave like ReLU at large q, and at sigma_w2 = 2 with a bias their map stays
    # above the diagonal by less than 1e-15 q. The variance grows without bound there.
    unbound = unbound | (q > _ROUNDING_Q * (1 + sw2 + sb2))
    return _unbounded(np.where(unbound, np.inf, q), sw2, sb2, unbounded)


def _unbounded(q: np.ndarray, sw2: np.ndarray, sb2: np.ndarray, allowed: bool) -> np.ndarray:
    """Return q, or raise where it is infinite unless that is `allowed`."""
    if not allowed and np.any(np.isinf(q)):
        i = np.flatnonzero(np.isinf(q))[0]
        raise ValueError(
            "the variance grows without bound (no fixed point q*) at "
            f"sigma_w2 = {sw2.flat[i]}, sigma_b2 = {sb2.flat[i]}"
        )
    return q


def _chi_1(q: np.ndarray, sw2: np.ndarray, act: str, n: int) -> np.ndarray:
    """sigma_w2 E[phi'(sqrt(q) z)^2], with its limits at q = 0 (q -> 0+) and q = inf."""
    if act in _HOMOGENEOUS:  # E[phi'(sqrt(q) z)^2] = E[phi(z)^2] for these, at every q > 0
        return sw2 * _HOMOGENEOUS[act]
    x, w = normal_rule(n)
    root = np.where(q == 0, _SQRT_Q_ZERO, np.where(np.isinf(q), _SQRT_Q_INFINITY, np.sqrt(q)))
    return sw2 * (activation_derivative(act, root[..., None] * x) ** 2 @ w)


def _pair_expectation(
    c: np.ndarray, q: np.ndarray, act: str, n: int, *, derivative: bool
) -> np.ndarray:
    """E[f(u1) f(u2)], f = phi or phi', for (u1, u2) of variance q and correlation c."""
    x, w = normal_rule(n)
    s = np.sqrt(q)[..., None, None]
    cc = np.clip(c, -1.0, 1.0)[..., None, None]
    fn = activation_derivative if derivative else apply_activation
    f1 = fn(act, s * x[:, None])  # depends on z1 only: shape (..., n, 1)
    f2 = fn(act, s * (cc * x[:, None] + np.sqrt(1 - cc**2) * x[None, :]))
    return np.einsum("...ij,i,j->...", f1 * f2, w, w)


@dataclass(frozen=True, eq=False)
class MeanField:
    r"""The mean-field description of a deep random network at :math:`(\sigma_w^2, \sigma_b^2)`.

    Arrays share the broadcast shape of the parameters passed to :func:`mean_field`.

    Attributes
    ----------
    sigma_w2, sigma_b2 : numpy.ndarray
        The parameters.
    q_star : numpy.ndarray
        Fixed-point pre-activation variance.
    chi_1 : numpy.ndarray
        :math:`\sigma_w^2 \mathbb{E}[\phi'(\sqrt{q^*}z)^2]`; 1 on the critical line.
    c_star : numpy.ndarray
        Fixed point of the correlation map (1 in the ordered phase).
    chi_c : numpy.ndarray
        Slope of the correlation map at :math:`c^*`.
    xi_c : numpy.ndarray
        Correlation depth scale :math:`-1/\log \chi_c` (infinite where :math:`\chi_c = 1`).
    """

    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    q_star: np.ndarray
    chi_1: np.ndarray
    c_star: np.ndarray
    chi_c: np.ndarray
    xi_c: np.ndarray

    @property
    def chaotic(self) -> np.ndarray:
        r"""True where :math:`\chi_1 > 1` (the chaotic phase)."""
        return self.chi_1 > 1


def mean_field(
    sigma_w2: Any,
    sigma_b2: Any,
    activation: str = "tanh",
    *,
    nodes: int = _DEFAULT_NODES,
    pair_nodes: int = 20,
) -> MeanField:
    r"""Compute :math:`q^*`, :math:`\chi_1`, :math:`c^*`, :math:`\chi_c` and :math:`\xi_c`.

    Formulas of Poole et al. (2016) and Schoenholz et al. (2017), see the module docstring.
    In the ordered phase (:math:`\chi_1 \le 1`) the correlation fixed point is
    :math:`c^* = 1` and :math:`\chi_c = \chi_1`; in the chaotic phase :math:`c^* < 1` is
    found by bisection and then Newton's method on the correlation map, whose slope at
    :math:`c` is :math:`\sigma_w^2 \mathbb{E}[\phi'(u_1)\phi'(u_2)]` (Price's theorem).

    Parameters
    ----------
    sigma_w2, sigma_b2 : float or array_like
        Broadcast together; :math:`\sigma_w^2 > 0`, :math:`\sigma_b^2 \ge 0`.
    activation : str, default "tanh"
    nodes : int, default 60
        Gauss-Legendre nodes per half-line for the one-dimensional expectations (:math:`q^*`,
        :math:`\chi_1`).
    pair_nodes : int, default 20
        Nodes per half-line and per dimension for the two-input correlation map
        (``(2 * pair_nodes)**2`` points per evaluation), used in the chaotic phase only.

    Returns
    -------
    MeanField
        Where :math:`q^* = 0`, :math:`\chi_1` is the limit :math:`q \to 0^+` of
        :math:`\sigma_w^2 \mathbb{E}[\phi'(\sqrt q z)^2]`: :math:`\sigma_w^2/2` for ReLU (the
        derivative at the kink itself, 0, would give 0), :math:`\sigma_w^2 (1 + a^2)/2` for leaky
        ReLU.

    Raises
    ------
    TypeError, ValueError
        For bad parameters, or where the variance grows without bound (no :math:`q^*`).

    Examples
    --------
    >>> float(mean_field(2.0, 0.0, "relu").chi_1)  # He initialization is critical
    1.0
    >>> mf = mean_field(1.0, 0.0)  # tanh, sigma_w^2 = 1, no bias: q* = 0, critical
    >>> float(mf.q_star), round(float(mf.chi_1), 6)
    (0.0, 1.0)
    >>> mf = mean_field([0.5, 3.0], 0.05)
    >>> mf.chaotic.tolist()
    [False, True]
    """
    sw2 = _as_parameter(sigma_w2, "sigma_w2", positive=True)
    sb2 = _as_parameter(sigma_b2, "sigma_b2", positive=False)
    act = _check_activation(activation)
    n = check_int(nodes, "nodes", minimum=2, maximum=_MAX_NODES)
    m = check_int(pair_nodes, "pair_nodes", minimum=2, maximum=_MAX_NODES)
    sw2, sb2 = (np.array(a) for a in _broadcast(sw2, sb2))
    q = _q_star(sw2.reshape(-1), sb2.reshape(-1), act, n).reshape(sw2.shape)
    chi_1 = _chi_1(q, sw2, act, n)

    # In the chaotic phase, c* < 1: bisection on the correlation map c -> f(c), which lies above
    # the diagonal below c* and under it above c*. Only the chaotic points are computed.
    chi_1 = np.array(chi_1, dtype=np.float64)
    c_star, chi_c = np.ones(q.shape), chi_1.copy()
    chaotic = (chi_1 > 1) & (q > 0)
    if np.any(chaotic):
        sw2_c, sb2_c, q_c = sw2[chaotic], sb2[chaotic], q[chaotic]

        # Normalized by the same quadrature at c = 1, so that f(1) = 1 exactly on this grid too.
        q_m = sw2_c * _pair_expectation(np.ones(q_c.shape), q_c, act, m, derivative=False) + sb2_c

        def excess(c: np.ndarray) -> np.ndarray:
            return (sw2_c * _pair_expectation(c, q_c, act, m, derivative=False) + sb2_c) / q_m - c

        lo, hi = np.full(q_c.shape, -1.0), np.ones(q_c.shape)
        for _ in range(12):  # bisection to about 5e-4 ...
            mid = (lo + hi) / 2
            above = excess(mid) > 0
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        c = (lo + hi) / 2
        for _ in range(6):  # ... then Newton, kept inside the bracket. f'(c) = chi_c(c) (Price).
            slope = sw2_c * _pair_expectation(c, q_c, act, m, derivative=True) * q_c / q_m
            c = np.clip(c - excess(c) / (slope - 1), lo, hi)
        slope_c = sw2_c * _pair_expectation(c, q_c, act, m, derivative=True)
        # Just above the critical line c* is closer to 1 than the quadrature resolves, and the
        # slope found there is chi_1 itself. Expanding the map to second order about c = 1 gives
        # c* - 1 ~ (1 - chi_1)/a and f'(c*) ~ 2 - chi_1: use that first-order value instead.
        unresolved = slope_c >= 1
        c_star[chaotic] = np.where(unresolved, 1.0, c)
        chi_c[chaotic] = np.where(unresolved, 2 - chi_1[chaotic], slope_c)
    with np.errstate(divide="ignore"):
        xi_c = np.where(np.isclose(chi_c, 1.0, rtol=0, atol=1e-12), np.inf, -1 / np.log(chi_c))
    return MeanField(sw2, sb2, q, chi_1, c_star, chi_c, xi_c)


def _check_bracket(bracket: Any) -> tuple[float, float]:
    """Return `bracket` as floats (low, high) with 0 < low < high < inf."""
    if (
        isinstance(bracket, str | bytes)
        or not isinstance(bracket, Sequence)
        or len(bracket) != 2
        or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in bracket)
    ):
        raise TypeError(
            f"bracket must be a pair of real numbers (low, high), got {_describe(bracket)}"
        )
    low, high = float(bracket[0]), float(bracket[1])
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"bracket must be finite with 0 < low < high, got {tuple(bracket)!r}")
    return low, high


def critical_sigma_w2(
    sigma_b2: Any,
    activation: str = "tanh",
    *,
    nodes: int = _DEFAULT_NODES,
    bracket: tuple[float, float] = (0.05, 20.0),
) -> np.ndarray | float:
    r"""Return the :math:`\sigma_w^2` of the critical line :math:`\chi_1 = 1` at each bias.

    Bisection on :math:`\chi_1(\sigma_w^2, \sigma_b^2) - 1` inside `bracket` (Schoenholz et
    al. 2017, fig. 1). For tanh the line starts at :math:`(1, 0)` and bends to larger
    :math:`\sigma_w^2` as the bias grows. For ReLU :math:`\chi_1 = \sigma_w^2/2` at every
    :math:`q^*`, so the line is :math:`\sigma_w^2 = 2` (linear: 1, leaky ReLU:
    :math:`2/(1 + a^2)`). Where the variance grows without bound inside the bracket (ReLU or
    SELU with a large :math:`\sigma_w^2`), :math:`\chi_1` is taken at its limit
    :math:`q \to \infty`, which is above 1 there.

    Parameters
    ----------
    sigma_b2 : float or array_like
        Bias variances, >= 0.
    activation : str, default "tanh"
    nodes : int, default 60
        Gauss-Legendre nodes per half-line for each expectation.
    bracket : (float, float), default (0.05, 20.0)
        The range of :math:`\sigma_w^2` searched; :math:`\chi_1 - 1` must change sign in it.

    Returns
    -------
    float or numpy.ndarray

    Raises
    ------
    TypeError
        If `bracket` is not a pair of real numbers.
    ValueError
        If `bracket` is not finite with 0 < low < high, or :math:`\chi_1 - 1` does not change
        sign within it, or jumps over 1 instead of crossing it (GELU and SiLU with a small bias:
        their fixed point reached from :math:`q = 1` vanishes, see :func:`q_star`).

    Examples
    --------
    >>> round(critical_sigma_w2(0.0), 6)
    1.0
    >>> round(critical_sigma_w2(0.0, "relu"), 6)
    2.0
    >>> critical_sigma_w2([0.0, 0.05]).round(3).tolist()
    [1.0, 1.761]
    """
    sb2 = _as_parameter(sigma_b2, "sigma_b2", positive=False)
    act = _check_activation(activation)
    n = check_int(nodes, "nodes", minimum=2, maximum=_MAX_NODES)
    low, high = _check_bracket(bracket)
    scalar = sb2.ndim == 0
    sb2 = np.atleast_1d(sb2).reshape(-1)

    def excess(sw2: np.ndarray) -> np.ndarray:
        return _chi_1(_q_star(sw2, sb2, act, n, unbounded=True), sw2, act, n) - 1

    lo, hi = np.full(sb2.shape, low), np.full(sb2.shape, high)
    if np.any(excess(lo) > 0) or np.any(excess(hi) < 0):
        raise ValueError(
            f"chi_1 - 1 does not change sign for sigma_w2 in {bracket} at some sigma_b2; "
            "widen the bracket"
        )
    for _ in range(60):
        mid = (lo + hi) / 2
        up = excess(mid) > 0
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    # chi_1 may jump over 1 instead of crossing it: for GELU and SiLU with a small bias, the
    # fixed point reached from q = 1 vanishes there (see q_star) and chi_1 leaps from below 1
    # to its value at q = infinity. The bisection then converges on the jump, not on a root.
    below, above = excess(lo), excess(hi)
    jump = (above - below) > _JUMP
    if np.any(jump):
        i = int(np.flatnonzero(jump)[0])
        raise ValueError(
            f"no critical line for {act} at sigma_b2 = {sb2[i]}: chi_1 jumps from "
            f"{below[i] + 1:.4f} to {above[i] + 1:.4f} at sigma_w2 = {lo[i]:.6f}, where the "
            "fixed point q* reached from q = 1 vanishes and the variance grows without bound"
        )
    result = (lo + hi) / 2
    return float(result[0]) if scalar else result
