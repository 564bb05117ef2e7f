r"""Lyapunov exponents: the growth rates of products of different matrices.

The engine of the chapter "A new matrix every layer" (Part III). When every layer has its own
matrix, ``x_L = W_L ... W_1 x_0``, no single eigenvalue governs the growth; the Lyapunov exponents
:math:`\gamma_1 \ge \dots \ge \gamma_k` do (Crisanti, Paladin & Vulpiani 1993). This module
gives

- :func:`gaussian_lyapunov_spectrum`: Newman's closed form for i.i.d. Gaussian matrices;
- :func:`gaussian_log_norm_moments`: the exact mean and variance of :math:`\log\|x_L\|^2` for
  a deep linear Gaussian network (Hanin 2018);
- :func:`lyapunov_spectrum`: the QR (Benettin) estimate for Gaussian products, vectorized over
  independent trials, with standard errors;
- :func:`lyapunov_exponents`: the same estimate for any given sequence of matrices;
- :func:`log_norm_growth`: :math:`\log\|x_l\|` layer by layer for a batch of inputs, with a
  fresh batch of matrices at every layer, tracked in log space.

Digamma and trigamma at half-integers are computed from their finite sums for small arguments and
from their asymptotic series for large ones, in constant memory, so the module needs numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    as_int_array,
    as_real_array,
    check_callable,
    check_int,
    check_positive_float,
    check_rng,
)
from eiginit._numerics import unit_and_log_norm

__all__ = [
    "LogNormMoments",
    "LyapunovSpectrum",
    "digamma_half",
    "gaussian_log_norm_moments",
    "gaussian_lyapunov_spectrum",
    "log_norm_growth",
    "lyapunov_exponents",
    "lyapunov_spectrum",
    "trigamma_half",
]

_EULER_GAMMA = 0.57721566490153286061
_LN2 = math.log(2.0)
_MAX_ENTRIES = int(np.iinfo(np.intp).max) // 8


# Below this m the finite sums are used (at most 20 terms); from it on the asymptotic series,
# whose first neglected term at x = m / 2 >= 20 is below 1e-17 relative.
_SERIES_FROM = 40
# Bernoulli numbers B_2, B_4, ..., B_12.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730)


def _half_integer_sums(ms: np.ndarray, integer_term: Any, half_term: Any) -> tuple[Any, Any]:
    """Return the finite sums over j = 1..n of integer_term(j) (m = 2n + 2) and half_term(j)."""
    j = np.arange(1, _SERIES_FROM + 1, dtype=np.float64)
    integer = np.concatenate(([0.0], np.cumsum(integer_term(j))))
    half = np.concatenate(([0.0], np.cumsum(half_term(j))))
    small = np.minimum(ms, _SERIES_FROM)
    return integer[np.maximum(small // 2 - 1, 0)], half[(small - 1) // 2]


def digamma_half(m: Any) -> np.ndarray:
    r"""Return the digamma function :math:`\psi(m/2)` at positive integers `m`.

    For :math:`m < 40`, from the finite sums

    .. math::

        \psi(n) = -\gamma + \sum_{j=1}^{n-1} \frac{1}{j}, \qquad
        \psi(n + \tfrac12) = -\gamma - 2\log 2 + \sum_{j=1}^{n} \frac{2}{2j - 1}

    (Abramowitz & Stegun 6.3.2 and 6.3.4); for larger `m`, from the asymptotic series at
    :math:`x = m/2 \ge 20`,

    .. math::

        \psi(x) \sim \log x - \frac{1}{2x} - \sum_{k \ge 1} \frac{B_{2k}}{2k\, x^{2k}}

    (DLMF 5.11.2), truncated after :math:`B_{12}`: the first neglected term is below 1e-17
    relative. Time and memory are constant per value, whatever the size of `m`.

    Parameters
    ----------
    m : int or array_like of int
        Positive integers.

    Returns
    -------
    numpy.ndarray
        :math:`\psi(m/2)`, float64, the shape of `m`.

    Raises
    ------
    TypeError, ValueError
        If `m` is not an integer or an array of integers >= 1 (within int64).

    Examples
    --------
    >>> digamma_half([2, 1]).round(6).tolist()  # psi(1) = -gamma, psi(1/2) = -gamma - 2 log 2
    [-0.577216, -1.96351]
    """
    ms = as_int_array(m, "m", minimum=1)
    integer, half = _half_integer_sums(ms, lambda j: 1.0 / j, lambda j: 2.0 / (2 * j - 1))
    exact = np.where(ms % 2 == 0, -_EULER_GAMMA + integer, -_EULER_GAMMA - 2 * math.log(2) + half)
    x = np.maximum(ms, _SERIES_FROM) / 2.0
    inverse_square = 1.0 / x**2
    tail = np.zeros_like(x)
    for k in range(len(_BERNOULLI), 0, -1):  # Horner's rule in 1 / x^2
        tail = (tail + _BERNOULLI[k - 1] / (2 * k)) * inverse_square
    series = np.log(x) - 0.5 / x - tail
    return np.where(ms < _SERIES_FROM, exact, series).astype(np.float64)


def trigamma_half(m: Any) -> np.ndarray:
    r"""Return the trigamma function :math:`\psi'(m/2)` at positive integers `m`.

    From the asymptotic series (the derivative of the one in :func:`digamma_half`)

    .. math::

        \psi'(x) \sim \frac1x + \frac{1}{2x^2} + \sum_{k \ge 1} \frac{B_{2k}}{x^{2k+1}} ,

    truncated after :math:`B_{12}` and evaluated at :math:`x + N \ge 20`, then brought down to
    :math:`x = m/2` by the recurrence :math:`\psi'(x) = \psi'(x + 1) + 1/x^2` (DLMF 5.15.5),
    at most 40 terms. Every term is positive, so nothing cancels and the relative accuracy is
    about 1e-16 for every `m` (the finite sums :math:`\psi'(n) = \pi^2/6 - \sum_{j<n} 1/j^2`
    of Abramowitz & Stegun 6.4.4 lose about log10(m) digits). For large `m`,
    :math:`\psi'(m/2) \approx 2/m`. Constant time and memory per value.

    Parameters
    ----------
    m : int or array_like of int
        Positive integers.

    Returns
    -------
    numpy.ndarray
        :math:`\psi'(m/2)`, float64, the shape of `m`.

    Raises
    ------
    TypeError, ValueError
        If `m` is not an integer or an array of integers >= 1 (within int64).

    Examples
    --------
    >>> trigamma_half([2, 1]).round(6).tolist()  # pi^2 / 6, pi^2 / 2
    [1.644934, 4.934802]
    """
    ms = as_int_array(m, "m", minimum=1)
    x = ms / 2.0
    shift = np.maximum(np.ceil(_SERIES_FROM / 2 - x), 0.0)  # N with x + N >= 20
    y = x + shift
    inverse_square = 1.0 / y**2
    tail = np.zeros_like(y)
    for k in range(len(_BERNOULLI), 0, -1):  # Horner's rule in 1 / y^2
        tail = (tail + _BERNOULLI[k - 1]) * inverse_square
    total = (1.0 + 0.5 / y + tail) / y
    for j in range(_SERIES_FROM // 2 - 1, -1, -1):  # smallest terms first
        total = total + np.where(j < shift, 1.0 / (x + j) ** 2, 0.0)
    return np.asarray(total, dtype=np.float64)


def gaussian_lyapunov_spectrum(k: int, std: float = 1.0) -> np.ndarray:
    r"""Return the Lyapunov spectrum of products of i.i.d. Gaussian ``k x k`` matrices.

    For matrices with independent :math:`N(0, \mathrm{std}^2)` entries (Newman 1986; Forrester
    2013),

    .. math::

        \gamma_i = \log \mathrm{std} + \frac12\Big[\log 2 + \psi\Big(\frac{k - i + 1}{2}\Big)\Big],
        \qquad i = 1, \dots, k ,

    with :math:`\psi` the digamma function. The top exponent is the growth rate of a typical
    vector, :math:`\frac1L \log\|W_L\cdots W_1 x\| \to \gamma_1`; the sum is
    :math:`\frac1L \log|\det(W_L\cdots W_1)|`.

    Parameters
    ----------
    k : int
        The matrix size, >= 1.
    std : float, default 1
        The standard deviation of every entry, > 0.

    Returns
    -------
    numpy.ndarray, shape (k,)
        The exponents in decreasing order.

    Examples
    --------
    >>> gaussian_lyapunov_spectrum(5).round(3).tolist()
    [0.698, 0.558, 0.365, 0.058, -0.635]
    """
    k = check_int(k, "k", minimum=1)
    std = check_positive_float(std, "std")
    m = np.arange(k, 0, -1)  # k - i + 1 for i = 1..k
    return math.log(std) + 0.5 * (math.log(2.0) + digamma_half(m))


@dataclass(frozen=True)
class LogNormMoments:
    r"""Mean and variance of :math:`\log(\|x_L\|^2 / \|x_0\|^2)` through a linear network.

    Attributes
    ----------
    mean : float
    variance : float
    """

    mean: float
    variance: float

    @property
    def std(self) -> float:
        """The standard deviation, the square root of `variance`."""
        return math.sqrt(self.variance)


def gaussian_log_norm_moments(k: int, depth: int, std: float = 1.0) -> LogNormMoments:
    r"""Exact moments of the log squared norm through a deep linear Gaussian network.

    For :math:`x_L = W_L \cdots W_1 x_0` with independent ``k x k`` matrices of
    :math:`N(0, \mathrm{std}^2)` entries, each layer multiplies the squared norm by an independent
    :math:`\mathrm{std}^2 \chi^2_k` variable, whatever the direction of its input (rotation
    invariance). Hence, with :math:`\psi` and :math:`\psi'` the digamma and trigamma functions,

    .. math::

        E\log\frac{\|x_L\|^2}{\|x_0\|^2} = L\Big[\log(2\,\mathrm{std}^2) + \psi(k/2)\Big], \qquad
        \mathrm{Var}\log\frac{\|x_L\|^2}{\|x_0\|^2} = L\,\psi'(k/2) \approx \frac{2L}{k}

    (Hanin 2018; Hanin & Rolnick 2018). With ``std**2 = 1/k`` the mean square is preserved,
    :math:`E\|x_L\|^2 = \|x_0\|^2`, yet the mean of the log is negative, about :math:`-L/k`.

    Parameters
    ----------
    k : int
        The width, >= 1.
    depth : int
        The number of layers `L`, >= 0.
    std : float, default 1
        The entry standard deviation, > 0.

    Returns
    -------
    LogNormMoments

    Examples
    --------
    >>> m = gaussian_log_norm_moments(100, 50, std=0.1)
    >>> round(m.mean, 4), round(m.variance, 4)
    (-0.5017, 1.0101)
    """
    k = check_int(k, "k", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    std = check_positive_float(std, "std")
    per_layer_mean = _log_two_variance(std) + float(digamma_half(k))
    per_layer_var = float(trigamma_half(k))
    return LogNormMoments(mean=depth * per_layer_mean, variance=depth * per_layer_var)


def _log_two_variance(std: float) -> float:
    """Return log(2 std^2) without forming std^2 when it would over- or underflow."""
    if 1e-150 < std < 1e150:
        return math.log(2.0 * std**2)
    return math.log(2.0) + 2.0 * math.log(std)


@dataclass(frozen=True)
class LyapunovSpectrum:
    r"""A QR estimate of Lyapunov exponents.

    Attributes
    ----------
    exponents : numpy.ndarray, shape (k,)
        The estimates, averaged over trials: :math:`\frac1L \sum_l \log|R^{(l)}_{ii}|`.
    standard_errors : numpy.ndarray or None, shape (k,)
        Their standard errors from the spread across independent trials; None for one sequence.
    steps : int
        The number of matrices multiplied in each trial.
    trials : int
        The number of independent products.
    per_trial : numpy.ndarray, shape (trials, k)
        The estimate of each trial.
    """

    exponents: np.ndarray
    standard_errors: np.ndarray | None
    steps: int
    trials: int
    per_trial: np.ndarray


def _qr_accumulate(
    draw: Callable[[int], np.ndarray], steps: int, trials: int, k: int
) -> np.ndarray:
    """Run the QR (Benettin) iteration; return the per-trial sums of log|R_ii|, (trials, k)."""
    q = np.broadcast_to(np.eye(k), (trials, k, k)).copy()
    sums = np.zeros((trials, k))
    for step in range(steps):
        matrices = draw(step)
        # Matrices with extreme entries are scaled by a power of two (exact), which adds
        # exponent * log 2 to every log|R_ii|; ordinary ones are left alone.
        exponent = np.frexp(np.max(np.abs(matrices), axis=(-2, -1)))[1]
        exponent = np.where(np.abs(exponent) > 400, exponent, 0)
        if np.any(exponent):
            matrices = np.ldexp(matrices, -exponent[..., None, None])
            sums += exponent[..., None] * _LN2
        q, r = np.linalg.qr(matrices @ q)
        diagonal = np.abs(np.diagonal(r, axis1=-2, axis2=-1))
        if np.any(diagonal == 0.0):
            raise ValueError(
                f"matrix {step} maps the tracked subspace onto a lower dimension (a zero pivot "
                "in R): the product is singular and its smallest exponents are -infinity"
            )
        sums += np.log(diagonal)
    return sums


def _summarize(sums: np.ndarray, steps: int) -> LyapunovSpectrum:
    per_trial = sums / steps
    trials = per_trial.shape[0]
    errors = per_trial.std(axis=0, ddof=1) / math.sqrt(trials) if trials > 1 else None
    return LyapunovSpectrum(
        exponents=per_trial.mean(axis=0),
        standard_errors=errors,
        steps=steps,
        trials=trials,
        per_trial=per_trial,
    )


def lyapunov_spectrum(
    k: int, steps: int, *, std: float = 1.0, trials: int = 8, rng: np.random.Generator
) -> LyapunovSpectrum:
    r"""Estimate the Lyapunov spectrum of products of i.i.d. Gaussian matrices by QR.

    The QR (Benettin) method carries an orthonormal frame through the product:
    :math:`W_l Q_{l-1} = Q_l R_l`, and

    .. math:: \hat\gamma_i = \frac{1}{L} \sum_{l=1}^{L} \log |(R_l)_{ii}|

    (Crisanti, Paladin & Vulpiani 1993). Re-orthonormalizing at every step keeps every number of
    order one, so nothing overflows however long the product. The exponents of ``std * G``
    are those of ``G`` plus :math:`\log \mathrm{std}`, so an extreme `std` (beyond
    :math:`2^{\pm 256}`) is factored out of the draws instead of overflowing them. `trials`
    independent products run side by side (batched QR); the spread between them gives the
    standard errors. Compare with :func:`gaussian_lyapunov_spectrum`.

    Parameters
    ----------
    k : int
        Matrix size, >= 1.
    steps : int
        Matrices per product, >= 1.
    std : float, default 1
        Entry standard deviation, > 0.
    trials : int, default 8
        Independent products, >= 2 (for a standard error).
    rng : numpy.random.Generator

    Returns
    -------
    LyapunovSpectrum

    Examples
    --------
    >>> est = lyapunov_spectrum(3, 2000, rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(est.exponents - gaussian_lyapunov_spectrum(3))
    ...             < 5 * est.standard_errors))
    True
    """
    k = check_int(k, "k", minimum=1)
    steps = check_int(steps, "steps", minimum=1)
    std = check_positive_float(std, "std")
    trials = check_int(trials, "trials", minimum=2)
    generator = check_rng(rng)
    if 2.0**-256 < std < 2.0**256:
        sums = _qr_accumulate(
            lambda _: std * generator.standard_normal((trials, k, k)), steps, trials, k
        )
    else:
        sums = _qr_accumulate(lambda _: generator.standard_normal((trials, k, k)), steps, trials, k)
        sums += steps * math.log(std)
    return _summarize(sums, steps)


def lyapunov_exponents(matrices: Any) -> LyapunovSpectrum:
    r"""Estimate the Lyapunov exponents of a given sequence of matrices by QR.

    The product is :math:`W_L \cdots W_2 W_1` with ``matrices[0]`` applied first, as the layers
    of a network. The estimate is :math:`\frac1L \sum_l \log|(R_l)_{ii}|` of
    :func:`lyapunov_spectrum`. A finite product gives finite-``L`` exponents: the logarithms of
    its singular values divided by ``L``, up to an order-``1/L`` correction.

    Parameters
    ----------
    matrices : array_like, shape (steps, k, k) or (trials, steps, k, k)
        One sequence, or several independent ones (then standard errors are returned).

    Returns
    -------
    LyapunovSpectrum

    Raises
    ------
    ValueError
        On a malformed stack, or a singular product (a zero pivot).

    Examples
    --------
    >>> W = np.stack([np.diag([2.0, 0.5])] * 10)  # exponents log 2 and -log 2
    >>> lyapunov_exponents(W).exponents.round(6).tolist()
    [0.693147, -0.693147]
    """
    array = as_real_array(matrices, "matrices")
    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4 or array.shape[-1] != array.shape[-2] or array.size == 0:
        raise ValueError(
            "matrices must have shape (steps, k, k) or (trials, steps, k, k) with every size "
            f">= 1, got shape {array.shape}"
        )
    trials, steps, k, _ = array.shape
    sums = _qr_accumulate(lambda step: array[:, step], steps, trials, k)
    return _summarize(sums, steps)


def log_norm_growth(x0: Any, depth: int, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    r"""Push a batch of vectors through `depth` layers of fresh matrices; return the log-norms.

    .. math::

        x_l = W_l x_{l-1}, \qquad \text{returns } \log\|x_l\| \text{ for } l = 0..L .

    The vectors are renormalized after every layer and the log of the norm accumulated, so the
    run never overflows or underflows; norms are taken after scaling by a power of two, so
    vectors and matrices with entries of any finite magnitude work.

    Parameters
    ----------
    x0 : array_like, shape (trials, k)
        Nonzero start vectors, one per trial.
    depth : int
        The number of layers, >= 0.
    draw : callable
        ``draw(l)`` returns the matrices of layer ``l`` (``l = 0..depth-1``), shape
        ``(trials, k, k)``: one independent matrix per trial.

    Returns
    -------
    numpy.ndarray, shape (trials, depth + 1)
        Natural logarithms of the norms.

    Raises
    ------
    TypeError, ValueError
        On a malformed `x0` or `depth`, a `draw` that is not callable or returns anything but
        finite real matrices of shape ``(trials, k, k)``, or a vector mapped to zero.

    Examples
    --------
    >>> x0 = np.ones((2, 3))
    >>> out = log_norm_growth(x0, 4, lambda l: np.stack([2 * np.eye(3), np.eye(3)]))
    >>> (out - out[:, :1]).round(4).tolist()
    [[0.0, 0.6931, 1.3863, 2.0794, 2.7726], [0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    x = as_real_array(x0, "x0")
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"x0 must have shape (trials, k) with trials, k >= 1, got {x.shape}")
    trials, k = x.shape
    depth = check_int(depth, "depth", minimum=0, maximum=_MAX_ENTRIES // trials - 1)
    check_callable(draw, "draw", "draw(layer) -> array of shape (trials, k, k)")
    u, log_norms = unit_and_log_norm(x)
    if np.any(log_norms == -np.inf):
        raise ValueError("every start vector must be nonzero, got a zero row in x0")
    out = np.empty((trials, depth + 1))
    out[:, 0] = log_norms
    for layer in range(depth):
        w = as_real_array(draw(layer), f"draw({layer})")
        if w.shape != (trials, k, k):
            raise ValueError(f"draw({layer}) must return shape {(trials, k, k)}, got {w.shape}")
        # Matrices with extreme entries are scaled by a power of two (exact); the log gains
        # exponent * log 2. Ordinary ones are left alone, so their results are unchanged.
        exponent = np.frexp(np.max(np.abs(w), axis=(-2, -1)))[1]
        exponent = np.where(np.abs(exponent) > 400, exponent, 0)
        w = np.ldexp(w, -exponent[:, None, None])
        u, log_q = unit_and_log_norm(np.einsum("tij,tj->ti", w, u))
        if np.any(log_q == -np.inf):
            raise ValueError(f"layer {layer} maps a vector to zero; its log-norm is -infinity")
        out[:, layer + 1] = out[:, layer] + log_q + exponent * _LN2
    return out
