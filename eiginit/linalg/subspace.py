r"""Several dominant eigenvalues at once: subspace iteration and matrices with a chosen spectrum.

Used by the chapter "Power iteration" (Part I). Power iteration follows one vector and so cannot
settle when the dominant eigenvalues of a real matrix are a complex-conjugate pair: no real
vector is an eigenvector. :func:`subspace_iteration` follows a p-dimensional subspace instead
and reads the eigenvalues off the small projected matrix (Rayleigh-Ritz), which recovers such a
pair exactly. :func:`matrix_with_spectrum` builds real test matrices
:math:`V \operatorname{diag}(\lambda) V^{-1}` whose eigenvalues are known in advance, so that
convergence rates can be compared with their predictions.

Source: Golub & Van Loan, *Matrix Computations*, 4th ed. (2013), sections 7.3.1-7.3.2
(power method, orthogonal iteration); Saad, *Numerical Methods for Large Eigenvalue Problems*,
2nd ed. (2011), chapter 5 (subspace iteration, Rayleigh-Ritz).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, as_square_matrix, check_bool, check_int, check_rng, check_tol
from eiginit._numerics import restore, scale_by_power_of_two

__all__ = ["SubspaceIterationResult", "matrix_with_spectrum", "subspace_iteration"]


def _sort_by_modulus(values: np.ndarray) -> np.ndarray:
    """Sort eigenvalues by decreasing modulus; within a conjugate pair, positive imaginary first."""
    order = np.lexsort((-values.imag, -np.abs(values)))
    return values[order]


def matrix_with_spectrum(
    eigenvalues: Any, *, rng: np.random.Generator, normal: bool = False
) -> np.ndarray:
    r"""Return a real matrix with exactly the given eigenvalues, in a random eigenbasis.

    .. math:: A = V \, D \, V^{-1},

    where :math:`D` is block diagonal: a real eigenvalue :math:`\lambda` gives a 1 x 1 block and a
    complex pair :math:`a \pm b i` the real 2 x 2 block :math:`\begin{pmatrix} a & b \\ -b & a
    \end{pmatrix}` (the real Schur / real Jordan form, Golub & Van Loan 2013, section 7.4.1).
    With ``normal=False`` the basis :math:`V` has independent standard Gaussian entries, so the
    eigenvectors are oblique and `A` is not normal. With ``normal=True`` it is a Haar-random
    orthogonal matrix (QR with the signs of :math:`\operatorname{diag}(R)` fixed, Mezzadri 2007),
    so `A` is normal, and symmetric when every eigenvalue is real.

    Parameters
    ----------
    eigenvalues : array_like, shape (k,)
        Finite real or complex numbers; non-real ones must come in conjugate pairs (each pair
        listed once with either sign of the imaginary part, then its conjugate, anywhere).
    rng : numpy.random.Generator
        Source of the random basis.
    normal : bool, default False
        Use an orthogonal basis (normal matrix) instead of a Gaussian one.

    Returns
    -------
    numpy.ndarray, shape (k, k)
        A real float64 matrix.

    Raises
    ------
    TypeError
        If `eigenvalues` is not numeric, `rng` is not a Generator, or `normal` is not a bool.
    ValueError
        If `eigenvalues` is empty, not 1-D, not finite, or its non-real entries do not pair up.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> A = matrix_with_spectrum([3.0, 1 + 2j, 1 - 2j, -0.5], rng=rng)
    >>> np.sort_complex(np.linalg.eigvals(A)).round(8).tolist()
    [(-0.5+0j), (1-2j), (1+2j), (3+0j)]
    >>> S = matrix_with_spectrum([2.0, -1.0, 0.5], rng=rng, normal=True)
    >>> bool(np.allclose(S, S.T))
    True
    """
    rng = check_rng(rng)
    normal = check_bool(normal, "normal")
    if isinstance(eigenvalues, str | bytes):
        raise TypeError(f"eigenvalues must be numbers, got {type(eigenvalues).__name__}")
    try:
        values = np.asarray(eigenvalues)
    except (TypeError, ValueError) as error:  # ragged nested lists, for example
        raise TypeError(
            f"eigenvalues must be a 1-D array of real or complex numbers, got "
            f"{_describe(eigenvalues)}"
        ) from error
    if values.dtype.kind not in "biufc":
        raise TypeError(f"eigenvalues must be real or complex numbers, got dtype {values.dtype}")
    values = values.astype(np.complex128)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("eigenvalues must be finite, got NaN or infinite entries")
    k = values.size
    real = values[values.imag == 0].real
    upper = values[values.imag > 0]
    lower = values[values.imag < 0]
    if np.sort_complex(upper).tolist() != np.sort_complex(np.conj(lower)).tolist():
        raise ValueError(
            "the non-real eigenvalues of a real matrix come in conjugate pairs; got "
            f"{np.sort_complex(upper).tolist()} with positive and "
            f"{np.sort_complex(lower).tolist()} with negative imaginary part"
        )
    D = np.zeros((k, k))
    D[np.arange(real.size), np.arange(real.size)] = real
    for j, z in enumerate(upper):
        i = real.size + 2 * j
        D[i : i + 2, i : i + 2] = [[z.real, z.imag], [-z.imag, z.real]]
    if normal:
        Q, R = np.linalg.qr(rng.standard_normal((k, k)))
        V = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        A = V @ D @ V.T
        return (A + A.T) / 2 if upper.size == 0 else A
    V = rng.standard_normal((k, k))
    return np.linalg.solve(V.T, (V @ D).T).T  # V D V^{-1} without forming the inverse


@dataclass(frozen=True)
class SubspaceIterationResult:
    r"""The outcome of :func:`subspace_iteration`.

    Attributes
    ----------
    eigenvalues : numpy.ndarray of complex, shape (p,)
        The Ritz values: the eigenvalues of the projected matrix :math:`Q^\top A Q`, by
        decreasing modulus (a conjugate pair with the positive imaginary part first).
    basis : numpy.ndarray, shape (k, p)
        An orthonormal basis :math:`Q` of the final subspace.
    iterations : int
        Block multiplications :math:`A Q` performed.
    converged : bool
        True only if the subspace is invariant to the tolerance:
        :math:`\|A Q - Q H\|_F \le tol \, \|A\|_F` with :math:`H = Q^\top A Q`.
    residual : float
        The final :math:`\|A Q - Q H\|_F`.
    estimates : numpy.ndarray of complex, shape (iterations, p)
        The Ritz values after each multiplication.
    reason : str
        Why the iteration stopped, in words.
    """

    eigenvalues: np.ndarray
    basis: np.ndarray
    iterations: int
    converged: bool
    residual: float
    estimates: np.ndarray
    reason: str


def subspace_iteration(
    A: Any,
    p: int,
    *,
    rng: np.random.Generator,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> SubspaceIterationResult:
    r"""Estimate the `p` eigenvalues of largest modulus by subspace (orthogonal) iteration.

    Start from a random orthonormal :math:`Q_0` (k x p) and repeat

    .. math::

        Z_n = A Q_n, \qquad H_n = Q_n^\top Z_n, \qquad Q_{n+1} R_{n+1} = Z_n \;\text{(QR)},

    stopping when the subspace is invariant: :math:`\|Z_n - Q_n H_n\|_F \le tol\,\|A\|_F`.
    The eigenvalues of the small matrix :math:`H_n` (Rayleigh-Ritz) are then exact eigenvalues
    of a matrix within :math:`tol\,\|A\|_F` of `A`. The subspace converges like
    :math:`|\lambda_{p+1} / \lambda_p|^n` (Golub & Van Loan 2013, section 7.3.2; Saad 2011,
    chapter 5), so a complex-conjugate dominant pair, which stops power iteration, is found
    exactly with ``p=2``. If :math:`|\lambda_p| = |\lambda_{p+1}|` (for example, `p` splits a
    conjugate pair) the subspace never settles and the result says ``converged=False``.

    Parameters
    ----------
    A : array_like, shape (k, k)
        A finite real square matrix.
    p : int
        How many eigenvalues, 1 <= p <= k.
    rng : numpy.random.Generator
        Source of the random start basis.
    tol : float, default 1e-12
        Relative residual tolerance, 0 < tol < 1.
    max_iter : int, default 10000
        The most block multiplications, >= 1. Nothing of size `max_iter` is allocated up front.

    Returns
    -------
    SubspaceIterationResult

    Raises
    ------
    TypeError, ValueError
        On a malformed matrix, `p` outside 1..k, `tol` outside (0, 1), `max_iter` < 1, a zero
        matrix, `rng` that is not a Generator, or eigenvalues beyond float64's range.

    Notes
    -----
    As for :func:`eiginit.power_iteration`, convergence bounds the backward error only: the
    Ritz values are exact eigenvalues of :math:`A + E` with :math:`\|E\|_F \le tol\,\|A\|_F`.
    Their forward error is about :math:`\kappa(\lambda)` times that for simple eigenvalues
    and can be much larger for defective ones, and they are the `p` dominant eigenvalues only
    if the random start has components along their invariant subspace (with probability one).
    `A` is scaled by a power of two (exactly) first, so entries of any finite magnitude work.

    Examples
    --------
    A rotation by 90 degrees scaled by 2, beside a smaller real eigenvalue: power iteration
    cannot settle, two-dimensional subspace iteration finds the pair :math:`\pm 2i`.

    >>> A = [[0.0, 2.0, 0.0], [-2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    >>> r = subspace_iteration(A, 2, rng=np.random.default_rng(0))
    >>> r.converged, r.eigenvalues.round(10).tolist()
    (True, [2j, -2j])
    """
    matrix = as_square_matrix(A)
    k = matrix.shape[0]
    if isinstance(p, bool) or not isinstance(p, numbers.Integral):
        raise TypeError(f"p must be an integer, got {_describe(p)}")
    if not 1 <= p <= k:
        raise ValueError(f"p must be between 1 and k = {k} (the matrix size), got {p}")
    p = int(p)
    rng = check_rng(rng)
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if not np.any(matrix):
        raise ValueError("A is the zero matrix: every eigenvalue is 0 and there is no subspace")
    matrix, exponent = scale_by_power_of_two(matrix)  # exact; results are scaled back
    scale = float(np.linalg.norm(matrix))
    Q, _ = np.linalg.qr(rng.standard_normal((k, p)))
    estimates: list[np.ndarray] = []
    ritz = np.zeros(p, dtype=np.complex128)
    residual = np.inf
    for n in range(max_iter):
        Z = matrix @ Q
        H = Q.T @ Z
        residual = float(np.linalg.norm(Z - Q @ H))
        ritz = _sort_by_modulus(np.linalg.eigvals(H))
        estimates.append(ritz)
        if residual <= tol * scale:
            return SubspaceIterationResult(
                eigenvalues=restore(ritz, exponent, "an eigenvalue"),
                basis=Q,
                iterations=n + 1,
                converged=True,
                residual=float(restore(residual, exponent, "the residual")),
                estimates=restore(np.array(estimates), exponent, "an estimate"),
                reason=f"relative residual {residual / scale:.2e} <= tol after {n + 1} steps",
            )
        if n + 1 < max_iter:  # the returned basis is the one the Ritz values belong to
            # Householder QR returns an orthonormal Q even when Z has rank < p.
            Q, _ = np.linalg.qr(Z)
    return SubspaceIterationResult(
        eigenvalues=restore(ritz, exponent, "an eigenvalue"),
        basis=Q,
        iterations=max_iter,
        converged=False,
        residual=float(restore(residual, exponent, "the residual")),
        estimates=restore(np.array(estimates), exponent, "an estimate"),
        reason=(
            f"no convergence in {max_iter} steps (relative residual {residual / scale:.2e}): "
            "|lambda_p| may "
            "equal |lambda_(p+1)| (p splits a conjugate pair or a tie in modulus), or the gap "
            "|lambda_(p+1) / lambda_p| is too close to 1 for max_iter"
        ),
    )
