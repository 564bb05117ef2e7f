r"""How much a matrix can stretch: the spectral norm and the growth of matrix powers.

Used by the chapter "Eigenvalues are not the whole story" (Part I). The spectral radius
:math:`\rho(A)` sets the long-run growth rate of :math:`A^n`, but a single step can stretch a
vector by up to the spectral norm :math:`\sigma_{\max}(A) = \|A\|_2`, which is larger when `A` is
not normal. :func:`spectral_norm` estimates :math:`\|A\|_2` by power iteration on
:math:`A^\top A`, the estimator behind spectral normalization (Miyato et al. 2018);
:func:`transient_growth` records :math:`\|A^n\|_2` step by step, in log space so that it never
overflows (Trefethen & Embree, *Spectra and Pseudospectra*, 2005, chapter 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    as_matrix,
    as_square_stack,
    as_vector,
    check_bool,
    check_int,
    check_tol,
)
from eiginit._numerics import restore, scale_by_power_of_two, unit_and_log_norm

__all__ = ["SpectralNormResult", "spectral_norm", "transient_growth"]

# log(largest finite float64): exp of a larger log-norm overflows.
_LOG_MAX = float(np.log(np.finfo(np.float64).max))
_LN2 = float(np.log(2.0))
# The seed of the default start vector of spectral_norm (a fixed Gaussian vector).
_START_SEED = 20181107
# transient_growth rescales a matrix only when its largest entry lies outside this range.
_SAFE_EXPONENT = 400
_MAX_ENTRIES = int(np.iinfo(np.intp).max) // 8


@dataclass(frozen=True)
class SpectralNormResult:
    r"""The outcome of :func:`spectral_norm`.

    Attributes
    ----------
    value : float
        The estimate of :math:`\sigma_{\max}(A) = \|A\|_2`, namely :math:`\|A v\|` for the
        last unit iterate :math:`v`; it never exceeds the true value.
    right_vector : numpy.ndarray, shape (fan_in,)
        The last unit iterate :math:`v`: the direction `A` stretches most.
    left_vector : numpy.ndarray, shape (fan_out,)
        :math:`u = A v / \|A v\|`.
    iterations : int
        Power-iteration steps performed (each is one product with `A` and one with its
        transpose).
    converged : bool
        True only if the singular-triplet residual passed:
        :math:`\|A^\top u - \sigma v\| \le tol \, \|A\|_F`.
    residual : float
        The final :math:`\|A^\top u - \sigma v\|`.
    estimates : numpy.ndarray, shape (iterations,)
        The estimate after each step.
    reason : str
        Why the iteration stopped, in words.
    """

    value: float
    right_vector: np.ndarray
    left_vector: np.ndarray
    iterations: int
    converged: bool
    residual: float
    estimates: np.ndarray
    reason: str


def spectral_norm(
    A: Any, *, tol: float = 1e-12, max_iter: int = 10_000, x0: Any = None
) -> SpectralNormResult:
    r"""Estimate the spectral norm :math:`\sigma_{\max}(A)` by power iteration on :math:`A^\top A`.

    .. math::

        u_n = \frac{A v_n}{\|A v_n\|}, \qquad \sigma_n = \|A v_n\|, \qquad
        v_{n+1} = \frac{A^\top u_n}{\|A^\top u_n\|} ,

    which is power iteration on the symmetric matrix :math:`A^\top A`, whose eigenvalues are the
    squared singular values. The direction error shrinks like :math:`(\sigma_2/\sigma_1)^{2n}`
    and the estimate :math:`\sigma_n`, a Rayleigh quotient of a symmetric matrix, like
    :math:`(\sigma_2/\sigma_1)^{4n}` (Golub & Van Loan 2013, sections 7.3.1 and 8.6). Spectral
    normalization (Miyato et al. 2018) runs one such step per training update. The iteration
    stops when :math:`(\sigma_n, u_n, v_n)` is a singular triplet of a matrix within
    :math:`tol\,\|A\|_F` of `A`: :math:`\|A^\top u_n - \sigma_n v_n\| \le tol\,\|A\|_F`.

    Parameters
    ----------
    A : array_like, shape (fan_out, fan_in)
        A finite real matrix, not necessarily square.
    tol : float, default 1e-12
        Relative residual tolerance, 0 < tol < 1.
    max_iter : int, default 10000
        The most steps, >= 1. Nothing of size `max_iter` is allocated up front.
    x0 : array_like, shape (fan_in,), optional
        The start vector. By default a fixed standard Gaussian vector (drawn with
        ``np.random.default_rng(20181107)``), so the result is deterministic, costs
        :math:`O(\mathrm{fan\_in})` to form and never forms :math:`A^\top A`. Its component along
        the top right singular vector :math:`v_1` is nonzero with probability one for any `A`
        not built from that vector, block-diagonal and sparse matrices included. (A start built
        from `A`, such as a row of :math:`A^\top A`, can be an exact singular vector of a
        smaller singular value, and then the iteration converges to the wrong value.)

    Returns
    -------
    SpectralNormResult

    Raises
    ------
    TypeError, ValueError
        On a malformed matrix or start vector, a zero matrix or zero start vector, `tol`
        outside (0, 1), `max_iter` < 1, or a norm beyond float64's range.

    Notes
    -----
    As for :func:`eiginit.power_iteration`, the residual test bounds the backward error: on
    convergence :math:`\sigma_n` is an exact singular value of a matrix within
    :math:`tol\,\|A\|_F` of `A`, and, singular values being perfectly conditioned (Weyl),
    within :math:`tol\,\|A\|_F` of *some* singular value of `A`. It is the largest one when the
    start has a component along :math:`v_1`. `A` and `x0` are scaled by powers of two
    (exactly), so entries of any finite magnitude work.

    Examples
    --------
    >>> r = spectral_norm([[3.0, 0.0], [4.0, 5.0]])
    >>> r.converged, round(r.value, 10), round(float(np.linalg.norm([[3, 0], [4, 5]], 2)), 10)
    (True, 6.7082039325, 6.7082039325)
    """
    matrix = as_matrix(A)
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if x0 is None:
        v = np.random.default_rng(_START_SEED).standard_normal(matrix.shape[1])
    else:
        v = as_vector(x0, matrix.shape[1], "x0")
    v, log_norm = unit_and_log_norm(v)
    if log_norm == -np.inf:
        raise ValueError("x0 must be a nonzero vector, got the zero vector")
    if not np.any(matrix):
        raise ValueError("A is the zero matrix: its spectral norm is 0 and there is no direction")
    matrix, exponent = scale_by_power_of_two(matrix)  # exact; results are scaled back
    scale = float(np.linalg.norm(matrix))
    estimates: list[float] = []
    sigma, residual = 0.0, np.inf
    u = np.zeros(matrix.shape[0])
    for n in range(max_iter):
        image = matrix @ v
        sigma = float(np.linalg.norm(image))
        if sigma == 0.0:
            raise ValueError(
                f"A maps the iterate to the zero vector at step {n + 1}: x0 lies in the null "
                "space of A, so the top singular vector cannot be reached from it"
            )
        u = image / sigma
        back = matrix.T @ u
        residual = float(np.linalg.norm(back - sigma * v))
        estimates.append(sigma)
        if residual <= tol * scale:
            return SpectralNormResult(
                value=float(restore(sigma, exponent, "the spectral norm")),
                right_vector=v,
                left_vector=u,
                iterations=n + 1,
                converged=True,
                residual=float(restore(residual, exponent, "the residual")),
                estimates=restore(np.array(estimates), exponent, "an estimate"),
                reason=f"relative residual {residual / scale:.2e} <= tol after {n + 1} steps",
            )
        if n + 1 < max_iter:  # the returned v is the one sigma and the residual belong to
            v = back / float(np.linalg.norm(back))
    return SpectralNormResult(
        value=float(restore(sigma, exponent, "the spectral norm")),
        right_vector=v,
        left_vector=u,
        iterations=max_iter,
        converged=False,
        residual=float(restore(residual, exponent, "the residual")),
        estimates=restore(np.array(estimates), exponent, "an estimate"),
        reason=(
            f"no convergence in {max_iter} steps (relative residual {residual / scale:.2e}): "
            "the top two "
            "singular values may be equal or too close for max_iter"
        ),
    )


def transient_growth(A: Any, steps: int, *, log: bool = False) -> np.ndarray:
    r"""Return :math:`\|A^n\|_2` for :math:`n = 0, \dots, steps`, for one matrix or a batch.

    The powers are kept as :math:`A^n = e^{s_n} P_n` with :math:`\|P_n\|_2 = 1`, so

    .. math:: \log\|A^{n+1}\|_2 = s_n + \log\|A P_n\|_2

    is exact and nothing overflows. A matrix with entries beyond :math:`2^{\pm 400}` is first
    scaled by a power of two (exactly), so entries of any finite magnitude work. By Gelfand's
    formula :math:`\|A^n\|_2^{1/n} \to \rho(A)`; for a normal matrix :math:`\|A^n\|_2 =
    \rho(A)^n` at every `n`, while a non-normal one can grow for a while even when
    :math:`\rho(A) < 1` (Trefethen & Embree 2005, chapter 14).

    Parameters
    ----------
    A : array_like, shape (k, k) or (trials, k, k)
        Finite real square matrices.
    steps : int
        The largest power, >= 0.
    log : bool, default False
        Return natural logarithms (``-inf`` once a power is exactly zero, as for a nilpotent
        matrix) instead of the norms.

    Returns
    -------
    numpy.ndarray, shape (steps + 1,) or (trials, steps + 1)
        :math:`\|A^n\|_2`, or its logarithm.

    Raises
    ------
    TypeError, ValueError
        On malformed matrices, negative `steps`, a non-bool `log`, or, with ``log=False``, when
        a norm would overflow float64 (then use ``log=True``).

    Examples
    --------
    >>> transient_growth([[0.5, 4.0], [0.0, 0.5]], 4).round(4).tolist()
    [1.0, 4.0616, 4.0156, 3.0052, 2.002]
    >>> transient_growth(np.eye(2) * 10.0, 400, log=True)[-1].round(4)
    np.float64(921.034)
    """
    batch, single = as_square_stack(A)
    trials, k, _ = batch.shape
    steps = check_int(steps, "steps", minimum=0, maximum=_MAX_ENTRIES // trials - 1)
    log = check_bool(log, "log")
    exponents = np.frexp(np.max(np.abs(batch), axis=(-2, -1)))[1]
    exponents = np.where(np.abs(exponents) > _SAFE_EXPONENT, exponents, 0)
    batch = np.ldexp(batch, -exponents[:, None, None])  # exact; log A^n gains n e log 2
    out = np.empty((trials, steps + 1))
    out[:, 0] = 0.0  # ||A^0|| = ||I|| = 1
    power = np.broadcast_to(np.eye(k), batch.shape).copy()
    for n in range(steps):
        power = batch @ power
        norms = np.linalg.norm(power, ord=2, axis=(-2, -1))
        with np.errstate(divide="ignore"):
            out[:, n + 1] = out[:, n] + np.log(norms) + exponents * _LN2
        power /= np.where(norms > 0, norms, 1.0)[:, None, None]
    if not log:
        if np.max(out) > _LOG_MAX:
            raise ValueError(
                f"||A^n||_2 reaches exp({np.max(out):.1f}), beyond float64's largest number; "
                "pass log=True"
            )
        out = np.exp(out)
    return out[0] if single else out
