"""Claims of chapters 1-4 (Parts I and II) that the errata added: each at a small size.

What a converged power iteration certifies (chapter 2), when the Rayleigh quotient converges
at r^n or r^2n (chapter 2), the quotient of a +-lambda tie and of a normal complex pair
(chapter 1), how far an oblique start can sit from its limit (chapter 1), the exact drift of
products of W / rho(W) (chapter 3) and the Jordan-block fade of Gelfand's formula (chapter 3).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

import eiginit


def _rate(err: np.ndarray, first: int, last: int) -> float:
    n = np.arange(first, last)
    return float(np.exp(np.polyfit(n, np.log(err[n]), 1)[0]))


def _rayleigh_error(A: np.ndarray, x0: np.ndarray, steps: int, lam1: float) -> np.ndarray:
    u = eiginit.iterate(A, x0, steps).directions
    return np.abs(np.einsum("ni,ij,nj->n", u, A, u) - lam1)


def test_residual_is_an_exact_backward_error() -> None:
    """(mu, u) is an exact eigenpair of A + E with E = -r u^T and ||E||_2 = ||r||."""
    A = eiginit.seed_matrix()
    x0 = np.random.default_rng(2).standard_normal(5)
    result = eiginit.power_iteration(A, x0, tol=1e-6)
    u, mu = result.eigenvector, result.eigenvalue
    r = A @ u - mu * u
    E = -np.outer(r, u)
    assert np.linalg.norm((A + E) @ u - mu * u) < 1e-14
    assert np.isclose(np.linalg.norm(E, 2), np.linalg.norm(r), rtol=1e-12)


def test_forward_error_within_kappa_times_residual() -> None:
    """|mu - lambda_1| <~ kappa(lambda_1) ||r|| for the seed matrix at loose tolerances."""
    A = eiginit.seed_matrix()
    x0 = np.random.default_rng(2).standard_normal(5)
    values, vectors = np.linalg.eig(A)
    top = int(np.argmax(np.abs(values)))
    x1, y1 = vectors[:, top].real, np.linalg.inv(vectors)[top].real
    kappa = np.linalg.norm(x1) * np.linalg.norm(y1) / abs(y1 @ x1)
    assert 1.0 < kappa < 1.5  # the chapter's "well conditioned"
    for tol in (1e-4, 1e-6, 1e-8):
        res = eiginit.power_iteration(A, x0, tol=tol)
        r = A @ res.eigenvector - res.eigenvalue * res.eigenvector
        error = abs(res.eigenvalue - values[top].real)
        assert res.converged
        assert error <= kappa * np.linalg.norm(r)


def test_defective_eigenvalue_error_is_sqrt_of_residual() -> None:
    """On a 2 x 2 Jordan block a converged result is off by about sqrt(||r||), not ||r||."""
    J = np.array([[1.0, 1.0], [0.0, 1.0]])
    res = eiginit.power_iteration(J, [0.3, 1.0], tol=1e-8, max_iter=100_000)
    r = np.linalg.norm(J @ res.eigenvector - res.eigenvalue * res.eigenvector)
    error = abs(res.eigenvalue - 1.0)
    assert res.converged
    assert 0.5 < error / np.sqrt(r) < 2.0
    assert error > 1e3 * r


def test_converged_is_not_dominant_without_a_component_along_v1() -> None:
    """A start with no component along v1 converges, honestly, to another eigenpair."""
    res = eiginit.power_iteration(np.diag([1.0, 2.0]), [1.0, 0.0])
    assert res.converged
    assert res.eigenvalue == 1.0


def test_rayleigh_rate_r_squared_iff_v1_is_a_left_eigenvector() -> None:
    """The eigenvalue error contracts like r^2 when A^T v1 is parallel to v1, like r otherwise."""
    r = 0.6
    rng = np.random.default_rng(0)
    # Non-normal, yet v1 = e1 is also a left eigenvector: first row and column are (1, 0, 0).
    left = np.array([[1.0, 0.0, 0.0], [0.0, r, 5.0], [0.0, 0.0, 0.3]])
    x0 = rng.standard_normal(3)
    assert np.linalg.norm(left @ left.T - left.T @ left) > 1.0
    err = _rayleigh_error(left, x0, 60, 1.0)
    assert abs(_rate(err, 10, 25) - r**2) < 0.02
    # Oblique v2 (cos(v1, v2) = 0.6): the first-order term survives and the rate is r.
    V = np.array([[1.0, 0.6, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 1.0]])
    oblique = V @ np.diag([1.0, r, 0.3]) @ np.linalg.inv(V)
    err = _rayleigh_error(oblique, x0, 60, 1.0)
    assert abs(_rate(err, 10, 40) - r) < 0.02


def test_plus_minus_lambda_tie_quotient() -> None:
    """Symmetric +-lambda tie: norm quotient settles at |lambda|; non-normal: it alternates."""
    start = np.random.default_rng(2).standard_normal(4)
    spectrum = [2.0, -2.0, 1.0, 0.5]
    sym = eiginit.matrix_with_spectrum(spectrum, rng=np.random.default_rng(1), normal=True)
    q = eiginit.iterate(sym, start, 200).quotients[-4:]
    np.testing.assert_allclose(q, 2.0, rtol=1e-10)
    non = eiginit.matrix_with_spectrum(spectrum, rng=np.random.default_rng(1), normal=False)
    q = eiginit.iterate(non, start, 200).quotients[-4:]
    assert abs(q[0] - q[1]) > 1.0
    np.testing.assert_allclose(q[0] * q[1], 4.0, rtol=1e-8)  # two steps multiply by 2^2


def test_normal_complex_pair_quotient_is_constant() -> None:
    """A scaled rotation has a complex dominant pair, yet its norm quotient is exactly |lambda|."""
    q = eiginit.iterate([[0.0, 2.0], [-2.0, 0.0]], [1.0, 0.3], 20).quotients
    np.testing.assert_allclose(q, 2.0, rtol=1e-14)


def test_oblique_limit_can_exceed_the_start() -> None:
    """|c1| is a coordinate in an oblique basis: the limit can be 100 times ||x0||."""
    V = np.array([[1.0, 1.0], [0.0, 0.01]])
    V /= np.linalg.norm(V, axis=0)
    B = V @ np.diag([1.0, 0.5]) @ np.linalg.inv(V)
    traj = eiginit.iterate(B, V[:, 0] - V[:, 1], 60)
    assert abs(traj.norms[-1] - 1.0) < 1e-9
    assert traj.norms[-1] > 90 * traj.norms[0]


def test_drift_of_normalized_products_matches_closed_form() -> None:
    """E log||W x|| / rho(W) per layer = E log chi_k - E log rho(G), k = 3, fixed seed."""
    k, depth, trials = 3, 20, 4000
    rng = np.random.default_rng(123)
    Ws = rng.standard_normal((trials, depth, k, k))
    rhos = np.max(np.abs(np.linalg.eigvals(Ws)), axis=-1)
    x = rng.standard_normal((trials, k))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    log_norm = np.zeros(trials)
    for layer in range(depth):
        x = np.einsum("tij,tj->ti", Ws[:, layer] / rhos[:, layer, None, None], x)
        norms = np.linalg.norm(x, axis=1)
        log_norm += np.log(norms)
        x /= norms[:, None]
    measured = log_norm / depth
    # The trials are independent, so their mean drifts are i.i.d.; the closed form estimates
    # E log rho from a separate, larger batch.
    rho_ref = np.max(np.abs(np.linalg.eigvals(rng.standard_normal((200_000, k, k)))), axis=-1)
    predicted = 0.5 * (digamma(k / 2) + np.log(2)) - np.log(rho_ref).mean()
    se = np.sqrt(measured.var() / trials + np.log(rho_ref).var() / rho_ref.size)
    assert abs(measured.mean() - predicted) < 4 * se
    assert abs(predicted) > 20 * se  # the drift is real, not noise


def test_gelfand_fade_for_a_jordan_block_is_log_n_over_n() -> None:
    """||J^n||^(1/n) - 1 ~ log(n) / n for a 2 x 2 Jordan block with eigenvalue 1."""
    n = 1000
    log_norms = eiginit.transient_growth([[1.0, 1.0], [0.0, 1.0]], n, log=True)
    excess = np.exp(log_norms[-1] / n) - 1
    assert abs(excess / (np.log(n) / n) - 1) < 0.01
