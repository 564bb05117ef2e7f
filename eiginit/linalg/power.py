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
    check_tol,
)
from eiginit._numerics import restore, scale_by_power_of_two, unit_and_log_norm

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
# The relative size of the perturbation that tests whether the spectral radius is resolved.
_RESOLUTION_PROBE = 2.0**-30
# dominant_is_real: moduli within _CROWD (relative) of the top are looked at closely, with a
# slack of _CLUSTER_SLACK * cond(X) * eps * ||A||_F, at most _MAX_SLACK * rho.
_CROWD = 1e-2
_CLUSTER_SLACK = 1e3
_MAX_SLACK = 1e-3
_EPS = float(np.finfo(np.float64).eps)
_LN2 = float(np.log(2.0))
_TINY = float(np.finfo(np.float64).tiny)
# Arrays of more entries than this cannot be addressed (8-byte float64 entries).
_MAX_ENTRIES = int(np.iinfo(np.intp).max) // 8


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
        If the spectral radius of `A` is zero (the zero matrix, a triangular nilpotent matrix)
        or below what floating point resolves, plus the errors of :func:`spectral_radius`.

    Notes
    -----
    The eigenvalues are computed for `A` scaled by a power of two, so entries of any finite
    magnitude work. A nilpotent matrix that is not triangular, such as :math:`V N V^{-1}`, has
    computed eigenvalues of about :math:`\epsilon^{1/k} \|A\|` instead of 0 (a perturbation
    :math:`E` moves an eigenvalue of a :math:`k \times k` Jordan block by about
    :math:`\|E\|^{1/k}`, Golub & Van Loan 2013, section 7.2.2); dividing by that noise would
    return a matrix of huge entries. So the radius is recomputed for :math:`A + E` with a fixed
    perturbation of relative size :math:`2^{-30}` in the Frobenius norm, and refused when it
    moves by more than a quarter of itself: then the spectral radius of `A` is not determined
    by its entries in floating point.

    Examples
    --------
    >>> B = normalize_spectral_radius([[2.0, 1.0], [0.0, -4.0]])
    >>> spectral_radius(B)
    1.0
    """
    matrix, exponent = scale_by_power_of_two(as_square_matrix(A))
    rho = float(np.max(np.abs(np.linalg.eigvals(matrix))))
    if rho == 0.0:
        raise ValueError(
            "cannot normalize: the spectral radius of A is 0 (A is the zero matrix or "
            "nilpotent); expected a matrix with at least one nonzero eigenvalue"
        )
    probe = np.random.default_rng(20261201).standard_normal(matrix.shape)
    probe *= _RESOLUTION_PROBE * np.linalg.norm(matrix) / np.linalg.norm(probe)
    moved = abs(float(np.max(np.abs(np.linalg.eigvals(matrix + probe)))) - rho)
    if moved > rho / 4:
        shown = float(np.ldexp(rho, exponent))
        raise ValueError(
            f"cannot normalize: the computed spectral radius of A, {shown:.3g}, is below what "
            f"floating point resolves (a relative perturbation of {_RESOLUTION_PROBE:.1e} of A "
            f"moves it by {100 * moved / rho:.0f}%); A is nilpotent or nearly so, for example "
            "V N V^-1 with N strictly triangular, and has no meaningful spectral radius to "
            "divide by"
        )
    return matrix / rho


def dominant_is_real(A: Any) -> np.ndarray | bool:
    r"""Say whether the eigenvalue of largest modulus is real, for one matrix or a batch.

    For a real matrix, eigenvalues are real or come in complex-conjugate pairs; when the
    largest modulus belongs to a pair, the consecutive-norm quotient of repeated multiplication
    never settles (see the chapter "Repeated multiplication").

    Which eigenvalues are real, and which are tied in modulus, is decided to the accuracy
    floating point gives them. A repeated real eigenvalue of a non-normal matrix is computed as
    a cluster with imaginary parts up to a few times :math:`\kappa\,\epsilon\,\|A\|_F` (its
    condition number :math:`\kappa` is huge; Golub & Van Loan 2013, section 7.2.2). So, for a
    matrix whose top moduli are within 1e-2 (relative) of each other, one of them within 1e-2 of
    the real axis (a tie or a cluster), an eigenvalue counts as real when
    :math:`|\operatorname{Im}\lambda| \le \tau`, and as dominant when :math:`|\lambda| \ge \rho
    - \tau`, with :math:`\tau = 10^3\, \operatorname{cond}(X)\, \epsilon\, \|A\|_F` (at most
    :math:`10^{-3} \rho`), where `X` holds the unit eigenvectors and bounds every eigenvalue's
    condition number. The answer is True only if every dominant eigenvalue is real: with 2 and
    :math:`\pm 2i` tied, it is False whatever order LAPACK returns them in.

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
    exponents = np.frexp(np.max(np.abs(batch), axis=(-2, -1)))[1]
    batch = np.ldexp(batch, -exponents[:, None, None])  # exact; avoids overflow in eig
    eigenvalues = np.linalg.eigvals(batch)
    moduli = np.abs(eigenvalues)
    rho = np.max(moduli, axis=-1)
    real = eigenvalues[np.arange(len(batch)), np.argmax(moduli, axis=-1)].imag == 0
    # Matrices with more than one eigenvalue near the top modulus: decide to the accuracy of eig.
    near = moduli >= rho[:, None] * (1 - _CROWD)
    nearly_real = np.abs(eigenvalues.imag) <= _CROWD * rho[:, None]
    crowded = np.flatnonzero((np.sum(near, axis=-1) > 1) & np.any(near & nearly_real, axis=-1))
    if crowded.size:
        values, vectors = np.linalg.eig(batch[crowded])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            condition = np.nan_to_num(np.linalg.cond(vectors), nan=np.inf)
        top = np.max(np.abs(values), axis=-1)
        tau = _CLUSTER_SLACK * _EPS * condition * np.linalg.norm(batch[crowded], axis=(-2, -1))
        tau = np.minimum(tau, _MAX_SLACK * top)[:, None]
        dominant = np.abs(values) >= top[:, None] - tau
        nonreal = np.abs(values.imag) > tau
        real[crowded] = ~np.any(dominant & nonreal, axis=-1)
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
    ten neither overflow nor warn. `A` and `x` are scaled by powers of two (exactly) before the
    norms are taken, so entries of any finite magnitude, from subnormal to 1e308, work. The
    quotients :math:`q_n` are the consecutive-norm ratios of the seed experiment; when the
    dominant eigenvalue is real and simple they tend to :math:`\rho(A)` (Golub & Van Loan 2013,
    section 7.3).

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
        On a malformed matrix or vector, a zero start vector, negative `steps`, when `A`
        maps the iterate to exactly zero (then the direction is undefined), or when a quotient
        :math:`q_n` is beyond float64's range (entries near 1e308).

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
    k = matrix.shape[0]
    steps = check_int(steps, "steps", minimum=0, maximum=_MAX_ENTRIES // (k + 2) - 1)
    matrix, exponent = scale_by_power_of_two(matrix)  # exact; quotients are scaled back
    unit, log_norm = unit_and_log_norm(vector)
    if log_norm == -np.inf:
        raise ValueError("x must be a nonzero vector, got the zero vector")
    log_norms = np.empty(steps + 1)
    quotients = np.empty(steps)
    directions = np.empty((steps + 1, k))
    log_norms[0] = log_norm
    directions[0] = unit
    for n in range(steps):
        image = matrix @ directions[n]
        unit, log_q = unit_and_log_norm(image)
        if log_q == -np.inf:
            raise ValueError(
                f"A maps the iterate to the zero vector at step {n + 1}; the direction is "
                "undefined (A is singular along it, for example nilpotent)"
            )
        q = float(np.linalg.norm(image))
        quotients[n] = restore(q, exponent, f"the quotient ||A u|| at step {n + 1}")
        ordinary = quotients[n] >= _TINY  # a normal float: its log is exact to rounding
        log_norms[n + 1] = log_norms[n] + (
            np.log(quotients[n]) if ordinary else float(log_q) + exponent * _LN2
        )
        directions[n + 1] = unit
    return Trajectory(log_norms=log_norms, quotients=quotients, directions=directions)


@dataclass(frozen=True)
class PowerIterationResult:
    r"""The outcome of :func:`power_iteration`.

    Attributes
    ----------
    eigenvalue : float
        The estimate of the dominant eigenvalue (sign included): the Rayleigh quotient
        :math:`\mu = u^\top A u` of the returned unit vector `eigenvector`.
    eigenvector : numpy.ndarray, shape (k,)
        The last unit iterate :math:`u`, the one `eigenvalue` and `residual` are computed from.
    iterations : int
        Multiplications performed.
    converged : bool
        True only if the residual test passed: :math:`\|A u - \mu u\| \le tol \, \|A\|_F`.
        This bounds the backward error only; see :func:`power_iteration` for what it does and
        does not guarantee.
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

    stopping when the residual :math:`r = A u_n - \mu_n u_n` is small:
    :math:`\|r\| \le tol\, \|A\|_F`. The error shrinks like :math:`|\lambda_2 / \lambda_1|^n`
    (Golub & Van Loan 2013, section 7.3.1). `A` and `x0` are scaled by powers of two
    (exactly) before the iteration, so entries of any finite magnitude work.

    **What convergence guarantees.** The residual test bounds the *backward* error only:
    :math:`(\mu, u)` is an exact eigenpair of :math:`A + E` with :math:`E = -r u^\top`,
    :math:`\|E\|_2 = \|r\| \le tol\,\|A\|_F`. It does not bound the *forward* error
    :math:`|\mu - \lambda|` by itself. To first order, :math:`|\mu - \lambda| \lesssim
    \kappa(\lambda)\, \|r\|` with :math:`\kappa(\lambda) = 1 / |y^\top x|` for unit left and
    right eigenvectors :math:`y, x` (Golub & Van Loan 2013, section 7.2.2), and this holds only
    for a simple eigenvalue: for a defective one (a Jordan block) the error can be about
    :math:`\sqrt{\|r\|}`. Nor does the test certify that :math:`\mu` is the *dominant*
    eigenvalue: an eigenpair is found for whichever eigenvalue is reachable, and :math:`\mu`
    is the dominant one only when `x0` has a component along the dominant eigenvector
    :math:`v_1` (equivalently, :math:`y_1^\top x_0 \ne 0`). ``diag(1, 2)`` from
    ``x0 = [1, 0]`` converges, correctly, to the eigenvalue 1.

    When the dominant eigenvalues are a complex-conjugate pair (or two real eigenvalues of
    equal modulus and opposite sign), no single real vector is an eigenvector: the residual
    never gets small and the result says ``converged=False``. The reason then reports what the
    last two iterates reveal: they span (nearly) the real invariant plane of the pair, and the
    eigenvalues of `A` projected on that plane (Rayleigh-Ritz) estimate the pair, which
    :func:`eiginit.subspace_iteration` with ``p=2`` computes to full accuracy.

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix, not the zero matrix.
    x0 : array_like, shape (k,)
        A finite, nonzero start vector. It must have a component along the dominant
        eigenvector (not be orthogonal to the dominant left eigenvector; a random vector almost
        surely is not).
    tol : float, default 1e-14
        Relative residual tolerance, 0 < tol < 1.
    max_iter : int, default 10000
        The most multiplications, >= 1. Nothing of size `max_iter` is allocated up front.

    Returns
    -------
    PowerIterationResult
        When not converged, `eigenvalue`, `residual` and `eigenvector` all belong to the last
        iterate.

    Raises
    ------
    TypeError, ValueError
        On malformed input (see :func:`iterate`), `tol` outside (0, 1), `max_iter` < 1, the zero
        matrix, or an eigenvalue estimate beyond float64's range.

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
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    u, log_norm = unit_and_log_norm(vector)
    if log_norm == -np.inf:
        raise ValueError("x0 must be a nonzero vector, got the zero vector")
    if not np.any(matrix):
        raise ValueError("A is the zero matrix: every eigenvalue is 0 and there is no direction")
    matrix, exponent = scale_by_power_of_two(matrix)  # exact; results are scaled back
    scale = float(np.linalg.norm(matrix))
    estimates: list[float] = []
    mu, residual, following = 0.0, np.inf, u
    for n in range(max_iter):
        image = matrix @ u
        following, log_q = unit_and_log_norm(image)
        if log_q == -np.inf:
            raise ValueError(
                f"A maps the iterate to the zero vector at step {n + 1}; x0 lies in a subspace "
                "that A annihilates, so the dominant eigenvalue cannot be reached from it"
            )
        mu = float(u @ image)
        residual = float(np.linalg.norm(image - mu * u))
        estimates.append(mu)
        if residual <= tol * scale:
            return PowerIterationResult(
                eigenvalue=float(restore(mu, exponent, "the eigenvalue")),
                eigenvector=u,
                iterations=n + 1,
                converged=True,
                residual=float(restore(residual, exponent, "the residual")),
                estimates=restore(np.array(estimates), exponent, "an eigenvalue estimate"),
                reason=f"residual {np.ldexp(residual, exponent):.2e} <= tol * ||A||_F after "
                f"{n + 1} steps",
            )
        if n + 1 < max_iter:
            u = following
    start = f"no convergence in {max_iter} steps (residual {np.ldexp(residual, exponent):.2e})"
    pair = _dominant_pair(matrix, u, following, scale, exponent)
    return PowerIterationResult(
        eigenvalue=float(restore(mu, exponent, "the eigenvalue")),
        eigenvector=u,
        iterations=max_iter,
        converged=False,
        residual=float(restore(residual, exponent, "the residual")),
        estimates=restore(np.array(estimates), exponent, "an eigenvalue estimate"),
        reason=(
            start + ": " + pair
            if pair is not None
            else start + ": the dominant eigenvalue may be a complex pair or not unique in "
            "modulus, or the gap |lambda2 / lambda1| is too close to 1 for max_iter"
        ),
    )


def _dominant_pair(
    matrix: np.ndarray, u: np.ndarray, w: np.ndarray, scale: float, exponent: int = 0
) -> str | None:
    """Describe the eigenvalue pair of the plane spanned by two iterates, if it is invariant.

    Rayleigh-Ritz on span(u, w): with an orthonormal basis Q, the 2 x 2 matrix H = Q^T A Q has
    the pair as eigenvalues when the plane is invariant, that is when ||A Q - Q H|| is small.
    Returns None when the iterates are parallel or the plane is not (nearly) invariant.
    `matrix` is A / 2**exponent; the eigenvalues are reported for A.
    """
    Q, R = np.linalg.qr(np.column_stack([u, w]))
    if abs(R[1, 1]) <= 1e-8:
        return None
    image = matrix @ Q
    H = Q.T @ image
    if np.linalg.norm(image - Q @ H) > 1e-6 * scale:
        return None
    with np.errstate(over="ignore"):
        values = np.linalg.eigvals(H)
        values = np.ldexp(values.real, exponent) + 1j * np.ldexp(values.imag, exponent)
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
