r"""Singular values of long products of matrices, accurate where a direct SVD is not.

Chapter "Residual networks and normalization" (Part V) needs the singular values of a deep
network's input-output Jacobian :math:`J = A_{L-1} \cdots A_1 A_0`. Forming :math:`J` and
handing it to an SVD fails once the product's singular values spread beyond what float64 can
resolve: the SVD's error is about :math:`\varepsilon \|J\|` in *absolute* terms
(:math:`\varepsilon \approx 2.2 \times 10^{-16}`), so every singular value below
:math:`\varepsilon \|J\|` comes out as rounding noise. Chapter 5's remedy is to never form the
product: push an orthonormal basis through the factors one at a time and re-orthonormalize
after each, :math:`A_\ell Q_{\ell} = Q_{\ell+1} R_\ell` (the QR method of Benettin et al.;
:func:`eiginit.lyapunov_spectrum`). Then

.. math:: J = Q_L\, R, \qquad R = R_{L-1} \cdots R_1 R_0 ,

and :math:`J` has the singular values of the upper-triangular :math:`R`. The product of
triangular factors is graded: its rows scale like its diagonal, which carries the spread, and
what is left is well conditioned. For such column-scaled matrices one-sided Jacobi SVD
(LAPACK's ``dgejsv`` with ``JOBA = 'C'``, Drmač & Veselić 2008) has *relative* accuracy for
every singular value, however small (Demmel & Veselić 1992). This module applies it to
:math:`R^\top`, tracking powers of two so that nothing overflows.

- :func:`product_singular_values` takes the factors and returns :class:`ProductSpectrum`,
  the base-10 logarithms of the singular values and :math:`\log_{10} |\det J|`;
- :func:`eiginit.residual_block_jacobians` (beside the network, in :mod:`eiginit.models.residual`)
  returns the factors :math:`I + \alpha_\ell\,\partial F_\ell/\partial x` of an
  :class:`eiginit.ResidualStack` at one input.

The tests check both against 50-digit arithmetic (mpmath) at a small size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg.lapack as _lapack

from eiginit._checks import _describe

__all__ = ["ProductSpectrum", "product_singular_values"]

_LOG10_2 = float(np.log10(2.0))


@dataclass(frozen=True, eq=False)
class ProductSpectrum:
    r"""The singular values of a product :math:`J = A_{L-1} \cdots A_0`, in log space.

    Attributes
    ----------
    log10_singular_values : numpy.ndarray, shape (n,)
        :math:`\log_{10} \sigma_i(J)`, largest first. Kept as logarithms: the values of a deep
        product can lie outside float64's range even when their logarithms do not.
    log10_abs_det : float
        :math:`\log_{10} |\det J| = \sum_\ell \log_{10} |\det A_\ell|`, accumulated from the
        diagonals of the QR factors; it equals the sum of ``log10_singular_values``.
    """

    log10_singular_values: np.ndarray
    log10_abs_det: float

    @property
    def spread(self) -> float:
        """Decades between the largest and the smallest singular value."""
        s = self.log10_singular_values
        return float(s[0] - s[-1])


def _as_factors(factors: Any) -> np.ndarray:
    if isinstance(factors, str | bytes) or not hasattr(factors, "__len__"):
        raise TypeError(
            f"factors must be an array of shape (L, n, n) of real numbers, got {_describe(factors)}"
        )
    try:
        A = np.asarray(factors)
    except ValueError as error:  # ragged nesting
        raise TypeError(f"factors must be a rectangular array (L, n, n), got {error}") from None
    if A.dtype.kind not in "biuf":
        raise TypeError(f"factors must hold real numbers, got dtype {A.dtype}")
    if A.ndim != 3 or A.shape[1] != A.shape[2] or min(A.shape) < 1:
        raise ValueError(f"factors must have shape (L, n, n) with L, n >= 1, got {A.shape}")
    A = A.astype(np.float64)
    if not np.all(np.isfinite(A)):
        raise ValueError("factors must be finite, got NaN or infinity")
    return A


def product_singular_values(factors: Any) -> ProductSpectrum:
    r"""Return the singular values of :math:`J = A_{L-1} \cdots A_1 A_0` without forming it.

    Accumulated QR, :math:`A_\ell Q_\ell = Q_{\ell+1} R_\ell` with :math:`Q_0 = I`, gives
    :math:`J = Q_L R` with :math:`R = R_{L-1} \cdots R_0` upper triangular; one-sided Jacobi
    SVD of :math:`R^\top` (LAPACK ``dgejsv``, ``JOBA = 'C'``) then returns its singular values
    with relative accuracy (Demmel & Veselić 1992, "Jacobi's method is more accurate than QR",
    SIAM J. Matrix Anal. Appl. 13; Drmač & Veselić 2008, *ibid.* 29). Powers of two are
    factored out of :math:`R` after every step (exactly), so products far beyond float64's
    range are fine as long as the ratio of the largest to the smallest singular value is not.

    Parameters
    ----------
    factors : array_like, shape (L, n, n)
        :math:`A_0, \dots, A_{L-1}`, applied in that order (``factors[0]`` acts first), each
        invertible.

    Returns
    -------
    ProductSpectrum

    Raises
    ------
    TypeError
        If `factors` is not a real array.
    ValueError
        If it is not of shape (L, n, n), not finite, if a factor is singular (a zero pivot), or
        if the singular values spread beyond float64's range (about 300 decades).

    Examples
    --------
    Two diagonal factors: the product is diag(6, 1e-30), whatever the order of rounding.

    >>> A = np.array([np.diag([2.0, 1e-10]), np.diag([3.0, 1e-20])])
    >>> product_singular_values(A).log10_singular_values.round(6).tolist()
    [0.778151, -30.0]
    """
    A = _as_factors(factors)
    n = A.shape[1]
    q = np.eye(n)
    r_total = np.eye(n)
    exponent = 0  # r_total is the product R_{l} ... R_0 divided by 2**exponent
    log10_det = 0.0
    for step, factor in enumerate(A):
        q, r = np.linalg.qr(factor @ q)
        diagonal = np.abs(np.diagonal(r))
        if np.any(diagonal == 0.0):
            raise ValueError(
                f"factor {step} is singular (a zero pivot in its QR step): the product has "
                "exact zero singular values; take a direct SVD instead"
            )
        log10_det += float(np.sum(np.log10(diagonal)))
        r_total = r @ r_total
        shift = int(np.frexp(np.max(np.abs(r_total)))[1])
        r_total = np.ldexp(r_total, -shift)
        exponent += shift
    if not np.all(np.abs(np.diagonal(r_total)) > np.finfo(float).tiny):
        raise ValueError(
            "the singular values of the product spread beyond float64's range (about 300 "
            "decades): split the product and compare its parts instead"
        )
    # JOBA='C' (0): relative accuracy for column-scaled matrices; no vectors (JOBU = JOBV =
    # 'N', 3); no range restriction (JOBR = 'N', 0) and no perturbation of tiny entries
    # (JOBP = 'N', 0), so small singular values are kept, not flushed.
    sva, _, _, work, _, info = _lapack.dgejsv(
        np.asfortranarray(r_total.T), joba=0, jobu=3, jobv=3, jobr=0, jobt=0, jobp=0
    )
    if info != 0 or not np.all(sva > 0):
        raise ValueError(f"the Jacobi SVD did not converge (LAPACK dgejsv info = {info})")
    logs = np.log10(sva) + np.log10(work[0]) - np.log10(work[1]) + exponent * _LOG10_2
    return ProductSpectrum(np.sort(logs)[::-1], log10_det)
