r"""The spectrum of a Gaussian matrix: sampling it and the laws that describe it.

The engine of Part II of the book (chapter "The spectrum of a Gaussian matrix"). :func:`ginibre`
draws real Gaussian matrices, one or a batch; the other functions are the exact and limiting
laws the chapter puts beside the measurements: the expected number of real eigenvalues
(Edelman, Kostlan & Shub 1994), the probability that all eigenvalues are real (Edelman 1997),
the circular law for the eigenvalues of :math:`A/\sqrt{k}` (Ginibre 1965; Edelman 1997;
Tao & Vu 2010), the quarter-circle law for its singular values and the Marchenko-Pastur law
for the eigenvalues of a sample covariance matrix (Marchenko & Pastur 1967).

Every law is vectorized: pass a scalar and get a ``float``, pass an array and get an array of
the same shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from eiginit._checks import (
    as_int_array,
    as_real_array,
    check_bool,
    check_int,
    check_positive_float,
    check_rng,
)

__all__ = [
    "circular_law_cdf",
    "expected_real_eigenvalues",
    "ginibre",
    "marchenko_pastur_pdf",
    "prob_all_real",
    "quarter_circle_pdf",
]

# expected_real_eigenvalues stores one term per size up to max(k): cap the memory it may use.
_MAX_K_EXACT = 10**7
# Arrays of more entries than this cannot be addressed (8-byte float64 entries).
_MAX_ENTRIES = int(np.iinfo(np.intp).max) // 8


def _scalar_or_array(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    """Return a Python float for scalar input, else the array itself."""
    return float(values) if scalar else values


def ginibre(
    k: int,
    *,
    rng: np.random.Generator,
    trials: int | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    r"""Draw real Gaussian matrices with independent :math:`N(0, \text{scale}^2)` entries.

    With the default ``scale=1`` this is the real Ginibre ensemble (Ginibre 1965). Pass
    ``scale=1/np.sqrt(k)`` for the matrices :math:`A/\sqrt{k}` whose eigenvalues fill the unit
    disk (the circular law, :func:`circular_law_cdf`) and for which
    :math:`\mathbb{E}\|A x\|^2 = \|x\|^2` for every fixed vector :math:`x`.

    Parameters
    ----------
    k : int
        The size of each square matrix, >= 1.
    rng : numpy.random.Generator
        The source of randomness (keyword only), for example ``np.random.default_rng(0)``.
    trials : int or None, default None
        None for one matrix of shape ``(k, k)``; an integer >= 1 for a batch of shape
        ``(trials, k, k)``, ready for numpy's batched ``linalg`` functions.
    scale : float, default 1.0
        The standard deviation of every entry, > 0.

    Returns
    -------
    numpy.ndarray, shape (k, k) or (trials, k, k)

    Raises
    ------
    TypeError
        If `k` or `trials` is not an integer, `scale` not a real number, or `rng` not a
        :class:`numpy.random.Generator`.
    ValueError
        If `k` < 1, `trials` < 1 or `scale` is not a finite positive number.

    Examples
    --------
    >>> import numpy as np
    >>> A = ginibre(3, rng=np.random.default_rng(0), trials=4, scale=0.5)
    >>> A.shape
    (4, 3, 3)
    >>> ginibre(2, rng=np.random.default_rng(0)).round(3).tolist()
    [[0.126, -0.132], [0.64, 0.105]]
    """
    k = check_int(k, "k", minimum=1, maximum=math.isqrt(_MAX_ENTRIES))
    rng = check_rng(rng)
    scale = check_positive_float(scale, "scale")
    if trials is not None:
        trials = check_int(trials, "trials", minimum=1, maximum=_MAX_ENTRIES // (k * k))
    shape = (k, k) if trials is None else (trials, k, k)
    with np.errstate(over="ignore", invalid="ignore"):
        out = scale * rng.standard_normal(shape)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"scale is too large: the entries overflow float64, got scale={scale:g}")
    return out


def expected_real_eigenvalues(k: Any) -> float | np.ndarray:
    r"""Return the exact expected number of real eigenvalues of a k x k real Gaussian matrix.

    Edelman, Kostlan & Shub (1994): with :math:`c_m = (2m-1)!!/(2m)!!`
    (:math:`c_0 = 1`),

    .. math::

        E_k = \sqrt{2} \sum_{i=0}^{k/2 - 1} c_{2i} \quad (k \text{ even}), \qquad
        E_k = 1 + \sqrt{2} \sum_{i=1}^{(k-1)/2} c_{2i-1} \quad (k \text{ odd}),

    and :math:`E_k = \sqrt{2k/\pi} + 1/2 + O(k^{-1/2})` as :math:`k \to \infty`. The count does
    not depend on the scale of the entries. The terms are built by the stable recursion
    :math:`c_m = c_{m-1} (2m - 1) / (2m)`, so nothing overflows.

    Parameters
    ----------
    k : int or array_like of int
        Matrix sizes, each between 1 and 10**7 (the cost is one pass over the sizes up to the
        largest; beyond that the asymptotic formula is accurate to better than 1e-3).

    Returns
    -------
    float or numpy.ndarray of float
        A float for a scalar `k`, else an array of the shape of `k`.

    Raises
    ------
    TypeError
        If `k` is not an integer or an array of integers.
    ValueError
        If any `k` is below 1 or above 10**7, or `k` is empty.

    Examples
    --------
    >>> round(expected_real_eigenvalues(5), 5)
    2.14905
    >>> expected_real_eigenvalues([1, 2, 3]).round(6).tolist()
    [1.0, 1.414214, 1.707107]
    """
    sizes = as_int_array(k, "k", minimum=1)
    largest = int(sizes.max())
    if largest > _MAX_K_EXACT:
        raise ValueError(
            f"k must be <= {_MAX_K_EXACT:_} for the exact formula, got {largest}; "
            "use the asymptote sqrt(2 k / pi) + 1/2 instead"
        )
    m = np.arange(1, max(largest - 1, 1))
    c = np.concatenate(([1.0], np.cumprod((2 * m - 1) / (2 * m))))  # c_0 .. c_{largest-2}
    # partial[j] = sum of c_m over m <= j with m of the same parity as j (and partial[-1] = 0).
    partial = np.zeros(c.size + 2)
    for parity in (0, 1):
        partial[2 + parity :: 2] = np.cumsum(c[parity::2])
    # E_k = (k odd) + sqrt(2) * sum over m = k - 2, k - 4, ... >= 0 of c_m; index shifted by 2.
    values = (sizes % 2) + np.sqrt(2.0) * partial[sizes]
    return _scalar_or_array(values, sizes.ndim == 0)


def prob_all_real(k: Any, *, log: bool = False) -> float | np.ndarray:
    r"""Return the probability that every eigenvalue of a k x k real Gaussian matrix is real.

    .. math:: p_k = 2^{-k(k-1)/4}

    (Edelman 1997). It falls so fast that it underflows to 0.0 in float64
    beyond k = 66; pass ``log=True`` for :math:`\log p_k = -k(k-1)\log(2)/4` instead.

    Parameters
    ----------
    k : int or array_like of int
        Matrix sizes, each >= 1.
    log : bool, default False
        Return the natural logarithm of the probability.

    Returns
    -------
    float or numpy.ndarray of float
        A float for a scalar `k`, else an array of the shape of `k`.

    Raises
    ------
    TypeError
        If `k` is not an integer or an array of integers, or `log` is not a bool.
    ValueError
        If any `k` is below 1, or `k` is empty.

    Examples
    --------
    >>> prob_all_real(5)
    0.03125
    >>> prob_all_real([1, 2, 3]).round(6).tolist()
    [1.0, 0.707107, 0.353553]
    >>> round(prob_all_real(100, log=True), 3)
    -1715.539
    """
    log = check_bool(log, "log")
    sizes = as_int_array(k, "k", minimum=1).astype(np.float64)
    log_p = -sizes * (sizes - 1) * np.log(2.0) / 4
    return _scalar_or_array(log_p if log else np.exp(log_p), sizes.ndim == 0)


def circular_law_cdf(r: Any) -> float | np.ndarray:
    r"""Return the limiting fraction of eigenvalues of :math:`A/\sqrt{k}` with modulus <= r.

    The circular law: as :math:`k \to \infty` the eigenvalues of :math:`A/\sqrt{k}`, for `A`
    with independent standard Gaussian entries, become uniform on the unit disk (Ginibre 1965
    for complex, Edelman 1997 for real Gaussian matrices; Tao & Vu 2010 for any entries of
    mean 0 and variance 1). The fraction inside radius `r` is the area ratio

    .. math:: F(r) = \min(r, 1)^2 \quad (r \ge 0), \qquad F(r) = 0 \quad (r < 0).

    Parameters
    ----------
    r : float or array_like of float
        Radii, finite.

    Returns
    -------
    float or numpy.ndarray of float
        A float for a scalar `r`, else an array of the shape of `r`.

    Raises
    ------
    TypeError
        If `r` is not real-valued.
    ValueError
        If `r` holds NaN or infinite values.

    Examples
    --------
    >>> circular_law_cdf(0.5)
    0.25
    >>> circular_law_cdf([-1.0, 0.1, 2.0]).round(6).tolist()
    [0.0, 0.01, 1.0]
    """
    radius = as_real_array(r, "r")
    values = np.clip(radius, 0.0, 1.0) ** 2
    return _scalar_or_array(values, radius.ndim == 0)


def quarter_circle_pdf(s: Any) -> float | np.ndarray:
    r"""Return the limiting density of the singular values of :math:`A/\sqrt{k}`, on [0, 2].

    For `A` with independent standard Gaussian entries (or any entries of mean 0, variance 1),
    the singular values of :math:`A/\sqrt{k}` follow, as :math:`k \to \infty`, the
    quarter-circle law

    .. math:: f(s) = \frac{1}{\pi}\sqrt{4 - s^2}, \qquad 0 \le s \le 2,

    and 0 elsewhere. It is the Marchenko-Pastur law with ratio 1 (Marchenko & Pastur 1967)
    after the change of variable :math:`x = s^2`; see :func:`marchenko_pastur_pdf`.

    Parameters
    ----------
    s : float or array_like of float
        Points at which to evaluate the density, finite.

    Returns
    -------
    float or numpy.ndarray of float
        A float for a scalar `s`, else an array of the shape of `s`.

    Raises
    ------
    TypeError
        If `s` is not real-valued.
    ValueError
        If `s` holds NaN or infinite values.

    Examples
    --------
    >>> round(quarter_circle_pdf(0.0), 6)  # 2 / pi
    0.63662
    >>> quarter_circle_pdf([-0.5, 2.0, 3.0]).tolist()
    [0.0, 0.0, 0.0]
    """
    points = as_real_array(s, "s")
    inside = (points >= 0) & (points <= 2)
    values = np.where(inside, np.sqrt(np.clip(4 - points**2, 0.0, None)) / np.pi, 0.0)
    return _scalar_or_array(values, points.ndim == 0)


def marchenko_pastur_pdf(x: Any, ratio: float) -> float | np.ndarray:
    r"""Return the Marchenko-Pastur density of the eigenvalues of :math:`X^\top X / n`.

    For an :math:`n \times p` matrix `X` of independent entries of mean 0 and variance 1, the
    eigenvalues of the :math:`p \times p` matrix :math:`X^\top X / n` follow, as
    :math:`n, p \to \infty` with :math:`p/n \to y \in (0, 1]`, the density
    (Marchenko & Pastur 1967)

    .. math::

        f_y(x) = \frac{\sqrt{(b - x)(x - a)}}{2 \pi y x}, \qquad
        a = (1 - \sqrt{y})^2 \le x \le b = (1 + \sqrt{y})^2 ,

    and 0 elsewhere. For :math:`y = 1` (a square matrix) :math:`a = 0` and the density blows
    up like :math:`1/\sqrt{x}` at the left edge: it is ``inf`` at exactly ``x = 0``.

    Parameters
    ----------
    x : float or array_like of float
        Points at which to evaluate the density, finite.
    ratio : float
        :math:`y = p / n`, in (0, 1].

    Returns
    -------
    float or numpy.ndarray of float
        A float for a scalar `x`, else an array of the shape of `x`.

    Raises
    ------
    TypeError
        If `x` is not real-valued or `ratio` is not a real number.
    ValueError
        If `x` holds NaN or infinite values, or `ratio` is not in (0, 1].

    Examples
    --------
    >>> round(marchenko_pastur_pdf(1.0, 0.25), 6)  # sqrt(1.25 * 0.75) / (pi / 2)
    0.616404
    >>> marchenko_pastur_pdf([0.0, 1.0, 5.0], 1.0).round(6).tolist()
    [inf, 0.275664, 0.0]
    """
    points = as_real_array(x, "x")
    y = check_positive_float(ratio, "ratio")
    if y > 1:
        raise ValueError(
            f"ratio = p / n must be in (0, 1], got {y}; for p > n, X^T X / n has p - n zero "
            "eigenvalues: use the transposed matrix (ratio n / p) instead"
        )
    a, b = (1 - np.sqrt(y)) ** 2, (1 + np.sqrt(y)) ** 2
    inside = (points > a) & (points < b)
    safe = np.where(inside, points, 1.0)  # keep sqrt and division away from the outside
    values = np.where(inside, np.sqrt((b - safe) * (safe - a)) / (2 * np.pi * y * safe), 0.0)
    if y == 1:
        values = np.where(points == 0, np.inf, values)
    return _scalar_or_array(values, points.ndim == 0)
