"""Tests for eiginit.linalg.power and the claims of the chapter "Repeated multiplication"."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import eiginit
from eiginit import (
    dominant_is_real,
    iterate,
    normalize_spectral_radius,
    power_iteration,
    seed_matrix,
    spectral_radius,
)

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def square_matrices(draw, min_k: int = 1, max_k: int = 6) -> np.ndarray:
    k = draw(st.integers(min_k, max_k))
    return draw(arrays(np.float64, (k, k), elements=finite))


# --- The seed matrix and the chapter's claims ---


def test_seed_matrix_stretching_factor_is_2_6036() -> None:
    assert round(spectral_radius(seed_matrix()), 4) == 2.6036


def test_seed_matrix_dominant_eigenvalue_is_real_and_negative() -> None:
    A = seed_matrix()
    result = power_iteration(A, np.ones(5))
    assert result.converged
    assert result.eigenvalue == pytest.approx(-2.60359043, abs=1e-8)
    assert dominant_is_real(A)


def test_seed_iterate_flips_sign_every_step() -> None:
    A = seed_matrix()
    traj = iterate(A, np.random.default_rng(2020).standard_normal(5), 60)
    v1 = power_iteration(A, np.ones(5)).eigenvector
    projections = traj.directions[30:] @ v1
    assert np.all(np.sign(projections[1:]) == -np.sign(projections[:-1]))


def test_quotient_settles_at_spectral_radius() -> None:
    A = seed_matrix()
    traj = iterate(A, np.random.default_rng(0).standard_normal(5), 80)
    assert traj.quotients[-1] == pytest.approx(spectral_radius(A), rel=1e-12)


def test_alignment_error_decays_at_eigenvalue_ratio() -> None:
    # sin(theta_n) ~ C |lambda2 / lambda1|^n: the fitted log-slope matches log of the ratio.
    A = seed_matrix()
    moduli = np.sort(np.abs(np.linalg.eigvals(A)))[::-1]
    traj = iterate(A, np.random.default_rng(1).standard_normal(5), 60)
    v1 = power_iteration(A, np.ones(5)).eigenvector
    sin = np.linalg.norm(traj.directions - np.outer(traj.directions @ v1, v1), axis=1)
    n = np.arange(5, 50)
    slope = np.polyfit(n, np.log(sin[n]), 1)[0]
    assert slope == pytest.approx(np.log(moduli[1] / moduli[0]), rel=0.05)


def test_normalized_norm_settles_at_principal_component() -> None:
    A = seed_matrix()
    x0 = np.random.default_rng(3).standard_normal(5)
    values, vectors = np.linalg.eig(A)
    vectors = vectors / np.linalg.norm(vectors, axis=0)
    c1 = abs(np.linalg.solve(vectors, x0)[np.argmax(np.abs(values))])
    traj = iterate(normalize_spectral_radius(A), x0, 120)
    assert traj.norms[-1] == pytest.approx(c1, rel=1e-9)


def test_normalized_matrix_still_stretches_in_single_steps() -> None:
    # Chapter 1: rho(A / rho) = 1, yet a one-step quotient exceeds 1, because
    # sigma_max(A) / rho(A) = 4.128 / 2.604 > 1 (the seed matrix is far from normal).
    A = seed_matrix()
    B = normalize_spectral_radius(A)
    assert np.linalg.norm(B, 2) == pytest.approx(4.12847869 / 2.60359043, rel=1e-7)
    traj = iterate(B, np.random.default_rng(2020).standard_normal(5), 50)
    assert traj.quotients.max() > 1.0
    assert traj.quotients[-1] == pytest.approx(1.0, rel=1e-9)


def test_complex_pair_fraction_matches_closed_form_for_k2() -> None:
    # For k = 2 the dominant eigenvalue is real exactly when both are: P = 2^(-1/2) (Edelman 1997).
    trials = 40_000
    batch = np.random.default_rng(11).standard_normal((trials, 2, 2))
    p = dominant_is_real(batch).mean()
    expected = 2**-0.5
    assert abs(p - expected) < 4 * math.sqrt(expected * (1 - expected) / trials)


def test_complex_pair_fraction_for_k5_is_about_43_percent() -> None:
    # Reference: P(dominant real) ~ 0.57 for k = 5 (REFERENCES.md, simulated); allow the
    # reference's rounding (0.005) plus four standard errors of this sample.
    trials = 40_000
    p = dominant_is_real(np.random.default_rng(12).standard_normal((trials, 5, 5))).mean()
    assert abs(p - 0.57) < 0.005 + 4 * math.sqrt(0.25 / trials)


def test_gelfand_growth_rate_for_complex_pair() -> None:
    rot = np.array([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues +-2i: the quotient does not settle
    A = np.block([[rot, np.ones((2, 1))], [np.zeros((1, 2)), np.array([[0.5]])]])
    traj = iterate(A, np.array([1.0, 0.3, 1.0]), 2000)
    assert traj.log_norms[-1] / 2000 == pytest.approx(np.log(2.0), abs=1e-3)
    assert not dominant_is_real(A)


# --- iterate ---


def test_iterate_shapes_and_consistency() -> None:
    rng = np.random.default_rng(5)
    A, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    traj = iterate(A, x, 7)
    assert traj.log_norms.shape == (8,)
    assert traj.quotients.shape == (7,)
    assert traj.directions.shape == (8, 4)
    assert traj.steps == 7
    direct = np.linalg.norm(np.linalg.matrix_power(A, 7) @ x)
    assert traj.norms[-1] == pytest.approx(direct, rel=1e-12)
    assert np.allclose(np.diff(traj.log_norms), np.log(traj.quotients))
    assert np.allclose(np.linalg.norm(traj.directions, axis=1), 1.0)


def test_iterate_zero_steps() -> None:
    traj = iterate(np.eye(2), [3.0, 4.0], 0)
    assert traj.quotients.shape == (0,)
    assert traj.norms == pytest.approx([5.0], rel=1e-15)


def test_iterate_long_run_neither_overflows_nor_warns() -> None:
    A = np.diag([10.0, 1.0, -3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj = iterate(A, np.ones(3), 10_000)
    assert np.all(np.isfinite(traj.log_norms))
    assert traj.log_norms[-1] == pytest.approx(10_000 * np.log(10.0) + np.log(1.0), rel=1e-9)
    with pytest.raises(ValueError, match="log_norms"):
        _ = traj.norms


def test_trajectory_is_frozen() -> None:
    traj = iterate(np.eye(2), [1.0, 0.0], 1)
    with pytest.raises(AttributeError):
        traj.quotients = np.zeros(1)  # type: ignore[misc]


@settings(max_examples=60, deadline=None)
@given(square_matrices(), st.integers(0, 20), st.data())
def test_iterate_matches_direct_powers(A: np.ndarray, steps: int, data: st.DataObject) -> None:
    k = A.shape[0]
    x = data.draw(arrays(np.float64, (k,), elements=finite))
    if np.linalg.norm(x) < 1e-3:
        x = np.ones(k)
    try:
        traj = iterate(A, x, steps)
    except ValueError as error:  # an exactly annihilated iterate is reported, never NaN
        assert "zero vector" in str(error)
        return
    assert np.all(np.isfinite(traj.log_norms))
    u = x / np.linalg.norm(x)
    for n in range(min(steps, 5)):
        u = A @ u
        norm = np.linalg.norm(u)
        if (
            not 1e-150 < norm < 1e150
        ):  # the unscaled reference under- or overflows; iterate does not
            return
        u /= norm
        assert np.allclose(traj.directions[n + 1], u, atol=1e-6)


# --- spectral radius and normalization ---


@settings(max_examples=80, deadline=None)
@given(square_matrices())
def test_normalizing_gives_spectral_radius_one(A: np.ndarray) -> None:
    rho = spectral_radius(A)
    if rho < 1e-6:  # (near) nilpotent matrices are rejected or numerically meaningless
        return
    try:
        normalized = normalize_spectral_radius(A)
    except ValueError as refusal:  # a nearly nilpotent A is refused, by name, never divided
        assert "nilpotent" in str(refusal)
        return
    assert spectral_radius(normalized) == pytest.approx(1.0, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(square_matrices(), st.floats(0.1, 10))
def test_spectral_radius_is_homogeneous(A: np.ndarray, c: float) -> None:
    assert spectral_radius(c * A) == pytest.approx(c * spectral_radius(A), rel=1e-6, abs=1e-9)


def test_normalize_does_not_modify_input() -> None:
    A = np.diag([2.0, 1.0])
    normalize_spectral_radius(A)
    assert A.tolist() == [[2.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("A", [np.zeros((3, 3)), np.array([[0.0, 1.0], [0.0, 0.0]])])
def test_normalize_rejects_zero_spectral_radius(A: np.ndarray) -> None:
    with pytest.raises(ValueError, match="spectral radius of A is 0"):
        normalize_spectral_radius(A)


# --- power iteration ---


def test_power_iteration_reaches_machine_precision_on_separated_eigenvalues() -> None:
    rng = np.random.default_rng(9)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    V = Q + 0.3 * rng.standard_normal((6, 6))  # non-orthogonal eigenvectors
    lambdas = np.array([-5.0, 2.0, 1.5, 1.0, -0.5, 0.1])
    A = V @ np.diag(lambdas) @ np.linalg.inv(V)
    result = power_iteration(A, rng.standard_normal(6))
    assert result.converged
    assert result.eigenvalue == pytest.approx(-5.0, rel=1e-12)
    assert abs(abs(result.eigenvector @ V[:, 0]) / np.linalg.norm(V[:, 0]) - 1) < 1e-12
    assert result.estimates.shape == (result.iterations,)


def test_power_iteration_iterations_follow_the_gap() -> None:
    # Error ~ |lambda2/lambda1|^n, so halving log|ratio| roughly doubles the iterations.
    x0 = np.ones(3)
    fast = power_iteration(np.diag([1.0, 0.25, 0.1]), x0, tol=1e-10)
    slow = power_iteration(np.diag([1.0, 0.5, 0.1]), x0, tol=1e-10)
    assert fast.converged
    assert slow.converged
    assert slow.iterations / fast.iterations == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize(
    "A",
    [
        np.array([[0.0, -1.0], [1.0, 0.0]]),  # complex pair +-i
        np.diag([2.0, -2.0]),  # equal moduli, opposite signs
        np.array([[0.5, -2.0, 0.0], [2.0, 0.5, 0.0], [0.0, 0.0, 1.0]]),  # pair dominates a real
    ],
)
def test_power_iteration_never_reports_a_wrong_value(A: np.ndarray) -> None:
    result = power_iteration(A, np.array([1.0, 0.3, 0.2][: A.shape[0]]), max_iter=500)
    assert not result.converged
    assert "no convergence" in result.reason


@settings(max_examples=50, deadline=None)
@given(square_matrices(min_k=2, max_k=5))
def test_power_iteration_converged_means_true_eigenpair(A: np.ndarray) -> None:
    try:
        result = power_iteration(A, np.linspace(1.0, 2.0, A.shape[0]), max_iter=2000)
    except ValueError as error:  # annihilated start vector or zero matrix: said, never NaN
        assert "zero" in str(error)
        return
    if result.converged:
        u, mu = result.eigenvector, result.eigenvalue
        assert np.linalg.norm(A @ u - mu * u) <= 1e-14 * np.linalg.norm(A) + 1e-300


# --- dominant_is_real ---


def test_dominant_is_real_single_and_batch_agree() -> None:
    batch = np.random.default_rng(4).standard_normal((50, 4, 4))
    flags = dominant_is_real(batch)
    assert flags.dtype == bool
    assert flags.shape == (50,)
    assert [dominant_is_real(m) for m in batch] == flags.tolist()


# --- bad input: clear errors ---


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: spectral_radius(np.ones(3)), ValueError, "2-D"),
        (lambda: spectral_radius(np.ones((2, 3))), ValueError, "square"),
        (lambda: spectral_radius(np.empty((0, 0))), ValueError, "empty"),
        (lambda: spectral_radius([[1.0, np.nan], [0.0, 1.0]]), ValueError, "finite"),
        (lambda: spectral_radius([[1.0, np.inf], [0.0, 1.0]]), ValueError, "finite"),
        (lambda: spectral_radius("abc"), TypeError, "real numbers"),
        (lambda: spectral_radius(np.eye(2) * 1j), TypeError, "complex"),
        (lambda: spectral_radius([[1, 2], [3]]), TypeError, "real numbers"),
        (lambda: iterate(np.eye(3), np.ones(2), 3), ValueError, "length 3"),
        (lambda: iterate(np.eye(2), np.ones((2, 1)), 3), ValueError, "1-D"),
        (lambda: iterate(np.eye(2), np.zeros(2), 3), ValueError, "zero vector"),
        (lambda: iterate(np.eye(2), np.ones(2), -1), ValueError, ">= 0"),
        (lambda: iterate(np.eye(2), np.ones(2), 2.5), TypeError, "integer"),
        (lambda: iterate(np.eye(2), np.ones(2), True), TypeError, "integer"),
        (lambda: iterate(np.zeros((2, 2)), np.ones(2), 2), ValueError, "zero vector at step 1"),
        (lambda: power_iteration(np.eye(2), np.zeros(2)), ValueError, "zero vector"),
        (lambda: power_iteration(np.zeros((2, 2)), np.ones(2)), ValueError, "zero matrix"),
        (lambda: power_iteration(np.eye(2), np.ones(2), tol=0.0), ValueError, "tol"),
        (lambda: power_iteration(np.eye(2), np.ones(2), max_iter=0), ValueError, "max_iter"),
        (lambda: dominant_is_real(np.ones((2, 3, 4))), ValueError, "trials, k, k"),
        (lambda: dominant_is_real(np.ones(4)), ValueError, "trials, k, k"),
    ],
)
def test_bad_input_gives_clear_errors(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_error_message_says_what_was_received() -> None:
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        spectral_radius(np.ones((2, 3)))


def test_public_api_is_exported() -> None:
    for name in eiginit.__all__:
        assert hasattr(eiginit, name), name


# --- Defects found by the bad-input review (each failed before its fix) ---


def test_power_iteration_with_huge_entries_finds_the_right_eigenvalue() -> None:
    # ||A||_F overflowed to inf, so "residual <= tol * inf" passed after one step with 1.5e200.
    r = power_iteration(np.diag([2e200, 1e200]), [1.0, 1.0])
    assert r.converged
    assert r.eigenvalue == pytest.approx(2e200, rel=1e-12)
    assert math.isfinite(r.residual)


def test_power_iteration_with_tiny_entries_is_not_the_zero_matrix() -> None:
    r = power_iteration(np.diag([2e-170, 1e-170]), [1.0, 1.0])
    assert r.converged
    assert r.eigenvalue == pytest.approx(2e-170, rel=1e-12)
    r = power_iteration(1e-310 * np.array([[2.0, 0.0], [0.0, 1.0]]), [1.0, 1.0])
    assert r.eigenvalue == pytest.approx(2e-310, rel=1e-3)  # subnormal: fewer digits


@pytest.mark.parametrize("x0", [[1e200, 1e200], [1e-200, 1e-200], [1e-320, 5e-321]])
def test_power_iteration_and_iterate_accept_any_finite_start(x0: list[float]) -> None:
    assert power_iteration(np.diag([2.0, 1.0]), x0).eigenvalue == pytest.approx(2.0)
    traj = iterate(np.diag([2.0, 1.0]), x0, 3)
    assert traj.log_norms[0] == pytest.approx(
        math.log(math.hypot(*x0)) if x0[0] > 1e-300 else math.log(math.hypot(1e-320, 5e-321)),
        rel=1e-3,
    )
    assert np.all(np.isfinite(traj.log_norms))


@pytest.mark.parametrize("scale", [1e200, 1e300, 1e-200, 1e-310])
def test_iterate_at_extreme_scales(scale: float) -> None:
    A = np.array([[2.0, 1.0], [1.0, 1.0]])
    traj = iterate(scale * A, [1.0, 1.0], 30)
    rho = scale * (3 + math.sqrt(5)) / 2
    assert traj.quotients[-1] == pytest.approx(rho, rel=1e-6 if scale > 1e-300 else 1e-2)
    assert np.all(np.isfinite(traj.log_norms))


def test_iterate_refuses_quotients_beyond_float64() -> None:
    with pytest.raises(ValueError, match="beyond float64's range"):
        iterate(1.7e308 * np.ones((2, 2)), [1.0, 1.0], 1)


def test_power_iteration_unconverged_eigenvalue_belongs_to_the_eigenvector() -> None:
    A = np.array([[1.0, 0.0, 0.0], [0.0, 0.999, 0.0], [0.0, 0.0, 0.5]])
    r = power_iteration(A, [1e-3, 1.0, 1.0], max_iter=7)
    assert not r.converged
    u = r.eigenvector
    assert r.eigenvalue == pytest.approx(float(u @ A @ u), rel=1e-14)
    assert r.residual == pytest.approx(float(np.linalg.norm(A @ u - r.eigenvalue * u)), rel=1e-10)


def test_power_iteration_does_not_preallocate_max_iter() -> None:
    r = power_iteration([[2.0, 0.0], [0.0, 1.0]], [1.0, 0.0], max_iter=10**12)
    assert r.converged
    assert r.iterations == 1
    assert r.estimates.shape == (1,)


@pytest.mark.parametrize("tol", [1.0, 10.0])
def test_tolerances_of_one_or_more_certify_nothing(tol: float) -> None:
    with pytest.raises(ValueError, match="tol must be < 1"):
        power_iteration([[2.0, 1.0], [1.0, 3.0]], [1.0, 0.0], tol=tol)


def test_fraction_tolerance_is_accepted() -> None:
    from fractions import Fraction

    r = power_iteration([[2.0, 1.0], [1.0, 3.0]], [1.0, 0.0], tol=Fraction(1, 10**12))
    assert r.converged


def test_docstring_guarantee_the_dominant_one_needs_a_component_along_v1() -> None:
    # The residual test certifies an eigenpair, not the dominant one: diag(1, 2) from e1.
    r = power_iteration(np.diag([1.0, 2.0]), [1.0, 0.0])
    assert r.converged
    assert r.eigenvalue == 1.0
    assert "component along" in power_iteration.__doc__


def test_normalize_refuses_a_nilpotent_matrix_that_is_not_triangular() -> None:
    V = np.random.default_rng(1).standard_normal((5, 5))
    N = np.diag(np.ones(4), 1)
    with pytest.raises(ValueError, match="below what floating point resolves"):
        normalize_spectral_radius(V @ N @ np.linalg.inv(V))
    with pytest.raises(ValueError, match="zero matrix or nilpotent"):
        normalize_spectral_radius(N)


def test_normalize_accepts_a_defective_matrix_with_a_nonzero_eigenvalue() -> None:
    V = np.random.default_rng(2).standard_normal((3, 3))
    J = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    B = normalize_spectral_radius(V @ J @ np.linalg.inv(V))
    assert spectral_radius(B) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("A", "expected"),
    [
        (0.9e308 * np.ones((2, 2)), 0.5 * np.ones((2, 2))),
        ([[1e-310]], [[1.0]]),
        (1e-310 * np.array([[1.0, 1.0], [1.0, 1.0]]), 0.5 * np.ones((2, 2))),
    ],
)
def test_normalize_at_extreme_scales(A: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(normalize_spectral_radius(A), expected, rtol=1e-12)


def test_dominant_is_real_with_a_repeated_real_eigenvalue() -> None:
    J = np.array([[2.0, 1.0], [0.0, 2.0]])
    D = np.diag([2.0, 2.0, 1.0, 0.5])
    for seed in range(100):
        rng = np.random.default_rng(seed)
        V = rng.standard_normal((2, 2))
        assert dominant_is_real(V @ J @ np.linalg.inv(V))
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        assert dominant_is_real(Q @ D @ Q.T)


def test_dominant_is_real_with_a_tie_does_not_depend_on_the_order() -> None:
    T = np.zeros((3, 3))
    T[0, 0] = 2.0
    T[1:, 1:] = [[0.0, 2.0], [-2.0, 0.0]]  # eigenvalues 2 and +-2i
    for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1]):
        assert not dominant_is_real(T[np.ix_(order, order)])
    assert dominant_is_real(np.diag([2.0, -2.0, 1.0]))  # both tied eigenvalues real
