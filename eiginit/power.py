"""One matrix applied again and again: repeated multiplication and power iteration.

The engine of Part I of the book (chapter "Repeated multiplication" and the chapters on power
iteration that follow). :func:`iterate` multiplies a vector by the same matrix step after step
and records the growth in log space, so long runs never overflow; :func:`power_iteration`
turns the same loop into an eigenvalue solver with an honest convergence test.

The facts behind it are in Golub & Van Loan, *Matrix Computations*, 4th ed. (2013), section 7.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    as_square_matrix,
    as_square_stack,
    as_vector,
    check_int,
    check_positive_float,
)

__all__ = [
    "PowerIterationResult",
    "Trajectory",
    "dominant_is_real",
    "iterate",
    "normalize_spectral_radius",
    "power_iteration",
    "spectral_radius",
]

# log(largest finite float64): exp of a larger log-norm overflows.
_LOG_MAX = float(np.log(np.finfo(np.float64).max))


def spectral_radius(A: Any) -> float:
    r"""Return the spectral radius of a square matrix.

    .. math:: \rho(A) = \max_i |\lambda_i(A)|

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix.

    Returns
    -------
    float
        The largest modulus among the eigenvalues of `A`.

    Raises
    ------
    TypeError
        If `A` is not an array of real numbers.
    ValueError
        If `A` is not 2-D, not square, empty, or has NaN or infinite entries.

    Examples
    --------
    >>> spectral_radius([[0.0, 2.0], [-2.0, 0.0]])  # eigenvalues +-2i
    2.0
    """
    matrix = as_square_matrix(A)
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def normalize_spectral_radius(A: Any) -> np.ndarray:
    r"""Return `A` divided by its spectral radius, so that the result has spectral radius 1.

    .. math:: \hat A = A / \rho(A)

    This is the recipe of the seed blog post: the stretching factor of :math:`\hat A` is one,
    so repeated multiplication by it neither explodes nor vanishes in the long run.

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix with at least one nonzero eigenvalue.

    Returns
    -------
    numpy.ndarray, shape (k, k)
        A new float64 array.

    Raises
    ------
    ValueError
        If the spectral radius of `A` is zero (the zero matrix, or any nilpotent matrix),
        plus the errors of :func:`spectral_radius`.

    Examples
    --------
    >>> B = normalize_spectral_radius([[2.0, 1.0], [0.0, -4.0]])
    >>> spectral_radius(B)
    1.0
    """
    matrix = as_square_matrix(A)
    rho = float(np.max(np.abs(np.linalg.eigvals(matrix))))
    if rho <= np.finfo(np.float64).tiny:
        raise ValueError(
            f"cannot normalize: the spectral radius of A is {rho:g} (A is zero or nilpotent); "
            "expected a matrix with at least one nonzero eigenvalue"
        )
    return matrix / rho


def dominant_is_real(A: Any) -> np.ndarray | bool:
    """Say whether the eigenvalue of largest modulus is real, for one matrix or a batch.

    For a real matrix, eigenvalues are real or come in complex-conjugate pairs; when the
    largest modulus belongs to a pair, the consecutive-norm quotient of repeated multiplication
    never settles (see the chapter "Repeated multiplication").

    Parameters
    ----------
    A : array_like, shape (k, k) or (trials, k, k)
        Finite real square matrices.

    Returns
    -------
    bool or numpy.ndarray of bool, shape (trials,)
        True where the dominant eigenvalue is real.

    Examples
    --------
    >>> dominant_is_real([[0.0, 1.0], [-1.0, 0.0]])  # eigenvalues +-i
    False
    >>> dominant_is_real([[[3.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [-2.0, 0.0]]]).tolist()
    [True, False]
    """
    batch, single = as_square_stack(A)
    eigenvalues = np.linalg.eigvals(batch)
    top = np.take_along_axis(eigenvalues, np.argmax(np.abs(eigenvalues), axis=-1)[:, None], -1)
    # LAPACK returns real eigenvalues of a real matrix with an imaginary part of exactly zero.
    real = top[:, 0].imag == 0
    return bool(real[0]) if single else real


@dataclass(frozen=True)
class Trajectory:
    r"""The record of repeated multiplication ``x, A x, A^2 x, ...``.

    Attributes
    ----------
    log_norms : numpy.ndarray, shape (steps + 1,)
        Natural logarithm of the norm of :math:`A^n x` for ``n = 0..steps``.
    quotients : numpy.ndarray, shape (steps,)
        Ratios of consecutive norms, :math:`\|A^{n+1} x\| / \|A^n x\|`.
    directions : numpy.ndarray, shape (steps + 1, k)
        The unit vectors :math:`A^n x / \|A^n x\|`.
    """

    log_norms: np.ndarray
    quotients: np.ndarray
    directions: np.ndarray

    @property
    def steps(self) -> int:
        """The number of multiplications recorded."""
        return int(self.quotients.shape[0])

    @property
    def norms(self) -> np.ndarray:
        """The norms themselves; raises ValueError where they would overflow float64."""
        if np.max(self.log_norms) > _LOG_MAX:
            raise ValueError(
                f"the norms reach exp({np.max(self.log_norms):.1f}), beyond float64's largest "
                "number; use log_norms instead"
            )
        return np.exp(self.log_norms)


def iterate(A: Any, x: Any, steps: int) -> Trajectory:
    r"""Multiply `x` by `A` again and again, tracking the norm in log space.

    Each step multiplies the current unit direction :math:`u_n` by `A`, so that

    .. math::

        q_n = \|A u_n\|, \qquad u_{n+1} = A u_n / q_n, \qquad
        \log\|A^{n+1} x\| = \log\|A^n x\| + \log q_n .

    Nothing is ever larger than :math:`\|A\|`, so ten thousand steps with a spectral radius of
    ten neither overflow nor warn. The quotients :math:`q_n` are the consecutive-norm ratios of
    the seed experiment; when the dominant eigenvalue is real and simple they tend to
    :math:`\rho(A)` (Golub & Van Loan 2013, section 7.3).

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix.
    x : array_like, shape (k,)
        A finite, nonzero start vector.
    steps : int
        How many multiplications, at least 0.

    Returns
    -------
    Trajectory
        Log-norms, quotients and unit directions.

    Raises
    ------
    ValueError
        On a malformed matrix or vector, a zero start vector, negative `steps`, or when `A`
        maps the iterate to exactly zero (then the direction is undefined).

    Examples
    --------
    >>> t = iterate([[2.0, 0.0], [0.0, 0.5]], [1.0, 1.0], steps=3)
    >>> t.quotients.round(4).tolist()
    [1.4577, 1.9441, 1.9963]
    >>> t.directions[-1].round(4).tolist()
    [0.9999, 0.0156]
    """
    matrix = as_square_matrix(A)
    vector = as_vector(x, matrix.shape[0], "x")
    steps = check_int(steps, "steps", minimum=0)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError("x must be a nonzero vector, got the zero vector")
    k = matrix.shape[0]
    log_norms = np.empty(steps + 1)
    quotients = np.empty(steps)
    directions = np.empty((steps + 1, k))
    log_norms[0] = np.log(norm)
    directions[0] = vector / norm
    for n in range(steps):
        image = matrix @ directions[n]
        q = float(np.linalg.norm(image))
        if q == 0.0:
            raise ValueError(
                f"A maps the iterate to the zero vector at step {n + 1}; the direction is "
                "undefined (A is singular along it, for example nilpotent)"
            )
        quotients[n] = q
        log_norms[n + 1] = log_norms[n] + np.log(q)
        directions[n + 1] = image / q
    return Trajectory(log_norms=log_norms, quotients=quotients, directions=directions)


@dataclass(frozen=True)
class PowerIterationResult:
    r"""The outcome of :func:`power_iteration`.

    Attributes
    ----------
    eigenvalue : float
        The estimate of the dominant eigenvalue (sign included): the Rayleigh quotient
        :math:`u^\top A u` of the last unit iterate.
    eigenvector : numpy.ndarray, shape (k,)
        The last unit iterate.
    iterations : int
        Multiplications performed.
    converged : bool
        True only if the residual test passed: :math:`\|A u - \mu u\| \le tol \, \|A\|_F`.
    residual : float
        The final residual norm :math:`\|A u - \mu u\|`.
    estimates : numpy.ndarray, shape (iterations,)
        The eigenvalue estimate after each multiplication.
    reason : str
        Why the iteration stopped, in words.
    """

    eigenvalue: float
    eigenvector: np.ndarray
    iterations: int
    converged: bool
    residual: float
    estimates: np.ndarray
    reason: str


def power_iteration(
    A: Any, x0: Any, *, tol: float = 1e-14, max_iter: int = 10_000
) -> PowerIterationResult:
    r"""Estimate the dominant eigenvalue and eigenvector of `A` by power iteration.

    .. math::

        u_{n+1} = \frac{A u_n}{\|A u_n\|}, \qquad \mu_n = u_n^\top A u_n ,

    stopping when the residual is small: :math:`\|A u_n - \mu_n u_n\| \le tol\, \|A\|_F`.
    A small residual means :math:`(\mu_n, u_n)` is an exact eigenpair of a matrix within
    :math:`tol\,\|A\|_F` of `A`, so convergence is never reported for a wrong value. The error
    shrinks like :math:`|\lambda_2 / \lambda_1|^n` (Golub & Van Loan 2013, section 7.3.1).

    When the dominant eigenvalues are a complex-conjugate pair (or two real eigenvalues of
    equal modulus and opposite sign), no single real vector is an eigenvector: the residual
    never gets small and the result says ``converged=False``. The reason then reports what the
    last two iterates reveal: they span (nearly) the real invariant plane of the pair, and the
    eigenvalues of `A` projected on that plane (Rayleigh-Ritz) estimate the pair, which
    :func:`eiginit.subspace_iteration` with ``p=2`` computes to full accuracy.

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix.
    x0 : array_like, shape (k,)
        A finite, nonzero start vector. It must not be orthogonal to the dominant left
        eigenvector (a random vector almost surely is not).
    tol : float, default 1e-14
        Relative residual tolerance, > 0.
    max_iter : int, default 10000
        The most multiplications, >= 1.

    Returns
    -------
    PowerIterationResult

    Raises
    ------
    TypeError, ValueError
        On malformed input (see :func:`iterate`), a non-positive `tol` or `max_iter` < 1.

    Examples
    --------
    >>> r = power_iteration([[2.0, 1.0], [1.0, 3.0]], [1.0, 0.0])
    >>> r.converged, round(r.eigenvalue, 10)
    (True, 3.6180339887)
    >>> r = power_iteration([[0.0, -1.0], [1.0, 0.0]], [1.0, 0.0], max_iter=50)
    >>> r.converged
    False
    >>> print(r.reason)  # doctest: +ELLIPSIS
    no convergence in 50 steps ...: the last two iterates span an invariant plane whose
    eigenvalues are the complex pair 0 +- 1i (modulus 1); ...
    """
    matrix = as_square_matrix(A)
    vector = as_vector(x0, matrix.shape[0], "x0")
    tol = check_positive_float(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError("x0 must be a nonzero vector, got the zero vector")
    scale = float(np.linalg.norm(matrix))
    if scale == 0.0:
        raise ValueError("A is the zero matrix: every eigenvalue is 0 and there is no direction")
    u = previous = vector / norm
    estimates = np.empty(max_iter)
    mu, residual = 0.0, np.inf
    for n in range(max_iter):
        image = matrix @ u
        q = float(np.linalg.norm(image))
        if q == 0.0:
            raise ValueError(
                f"A maps the iterate to the zero vector at step {n + 1}; x0 lies in a subspace "
                "that A annihilates, so the dominant eigenvalue cannot be reached from it"
            )
        mu = float(u @ image)
        residual = float(np.linalg.norm(image - mu * u))
        estimates[n] = mu
        if residual <= tol * scale:
            return PowerIterationResult(
                eigenvalue=mu,
                eigenvector=u,
                iterations=n + 1,
                converged=True,
                residual=residual,
                estimates=estimates[: n + 1].copy(),
                reason=f"residual {residual:.2e} <= tol * ||A||_F after {n + 1} steps",
            )
        previous, u = u, image / q
    start = f"no convergence in {max_iter} steps (residual {residual:.2e})"
    pair = _dominant_pair(matrix, previous, u, scale) if max_iter > 1 else None
    return PowerIterationResult(
        eigenvalue=mu,
        eigenvector=u,
        iterations=max_iter,
        converged=False,
        residual=residual,
        estimates=estimates,
        reason=(
            start + ": " + pair
            if pair is not None
            else start + ": the dominant eigenvalue may be a complex pair or not unique in "
            "modulus, or the gap |lambda2 / lambda1| is too close to 1 for max_iter"
        ),
    )


def _dominant_pair(matrix: np.ndarray, u: np.ndarray, w: np.ndarray, scale: float) -> str | None:
    """Describe the eigenvalue pair of the plane spanned by two iterates, if it is invariant.

    Rayleigh-Ritz on span(u, w): with an orthonormal basis Q, the 2 x 2 matrix H = Q^T A Q has
    the pair as eigenvalues when the plane is invariant, that is when ||A Q - Q H|| is small.
    Returns None when the iterates are parallel or the plane is not (nearly) invariant.
    """
    Q, R = np.linalg.qr(np.column_stack([u, w]))
    if abs(R[1, 1]) <= 1e-8:
        return None
    image = matrix @ Q
    H = Q.T @ image
    if np.linalg.norm(image - Q @ H) > 1e-6 * scale:
        return None
    values = np.linalg.eigvals(H)
    plane = "the last two iterates span an invariant plane whose eigenvalues are"
    advice = "use eiginit.subspace_iteration(A, 2, rng=...)"
    if np.iscomplexobj(values) and values[0].imag != 0:
        z = values[np.argmax(values.imag)]
        return (
            f"{plane} the complex pair {z.real:.6g} +- {abs(z.imag):.6g}i (modulus "
            f"{abs(z):.6g}); no real vector is an eigenvector for a complex pair, so power "
            f"iteration cannot settle: {advice}"
        )
    low, high = np.sort(values.real)
    return (
        f"{plane} the real pair {low:.6g} and {high:.6g}; equal moduli stop power iteration "
        f"and nearly equal ones slow it down: {advice}"
    )
