"""Tests for eiginit.linalg.subspace, and for power_iteration on a dominant pair (chapter 2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    dominant_is_real,
    matrix_with_spectrum,
    power_iteration,
    subspace_iteration,
)


def sorted_eigs(A: np.ndarray) -> np.ndarray:
    return np.sort_complex(np.linalg.eigvals(A))


# --- matrix_with_spectrum --------------------------------------------------------------------


@pytest.mark.parametrize("normal", [False, True])
def test_matrix_with_spectrum_has_the_spectrum(normal: bool) -> None:
    spectrum = np.array([4.0, -3.0, 1 + 2j, 1 - 2j, 0.5, 0.0])
    A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(1), normal=normal)
    assert A.dtype == np.float64
    assert A.shape == (6, 6)
    np.testing.assert_allclose(sorted_eigs(A), np.sort_complex(spectrum), atol=1e-9)


def test_normal_matrix_is_normal_and_symmetric_when_real() -> None:
    rng = np.random.default_rng(2)
    N = matrix_with_spectrum([2.0, 1 + 1j, 1 - 1j], rng=rng, normal=True)
    np.testing.assert_allclose(N @ N.T, N.T @ N, atol=1e-12)
    assert not np.allclose(N, N.T)
    S = matrix_with_spectrum([2.0, -1.0, 0.3], rng=rng, normal=True)
    np.testing.assert_array_equal(S, S.T)


def test_gaussian_basis_is_not_normal() -> None:
    A = matrix_with_spectrum([2.0, -1.0, 0.3], rng=np.random.default_rng(3))
    assert np.linalg.norm(A @ A.T - A.T @ A) > 1e-3


@settings(max_examples=40, deadline=None)
@given(
    real=st.lists(st.floats(-10, 10), min_size=0, max_size=4),
    pairs=st.lists(st.tuples(st.floats(-5, 5), st.floats(0.1, 5)), min_size=0, max_size=2),
    seed=st.integers(0, 2**32 - 1),
    normal=st.booleans(),
)
def test_matrix_with_spectrum_property(real, pairs, seed, normal) -> None:
    spectrum = list(real) + [complex(a, b) for a, b in pairs] + [complex(a, -b) for a, b in pairs]
    if not spectrum:
        spectrum = [1.0]
    A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(seed), normal=normal)
    # Eigenvalues are sensitive for an oblique basis: compare with a tolerance scaled by the
    # condition number of the eigenvector matrix (Bauer-Fike).
    _, vectors = np.linalg.eig(A)
    tol = 1e-10 * max(1.0, np.linalg.cond(vectors)) * max(1.0, np.max(np.abs(spectrum)))
    got = np.linalg.eigvals(A)
    for z in spectrum:
        assert np.min(np.abs(got - z)) <= max(tol, 1e-6)


@pytest.mark.parametrize(
    ("eigenvalues", "kwargs", "error", "match"),
    [
        ("abc", {}, TypeError, "numbers"),
        ([[1.0, 2.0]], {}, ValueError, "1-D"),
        ([], {}, ValueError, "non-empty"),
        ([1.0, np.nan], {}, ValueError, "finite"),
        ([1 + 1j, 2.0], {}, ValueError, "conjugate pairs"),
        ([1 + 1j, 1 - 2j], {}, ValueError, "conjugate pairs"),
        ([1.0], {"normal": 1}, TypeError, "normal"),
        ([None, 1.0], {}, TypeError, "real or complex"),
    ],
)
def test_matrix_with_spectrum_errors(eigenvalues, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        matrix_with_spectrum(eigenvalues, rng=np.random.default_rng(0), **kwargs)


def test_matrix_with_spectrum_needs_a_generator() -> None:
    with pytest.raises(TypeError, match="Generator"):
        matrix_with_spectrum([1.0], rng=0)  # type: ignore[arg-type]


# --- subspace_iteration ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_subspace_iteration_matches_numpy_on_constructed_spectra(seed: int, p: int) -> None:
    spectrum = [3.0, -2.0 + 1.0j, -2.0 - 1.0j, 1.0, 0.5, -0.2]
    A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(seed))
    result = subspace_iteration(A, p, rng=np.random.default_rng(seed))
    if p == 2:  # |lambda_2| = |lambda_3|: p = 2 splits the conjugate pair
        assert not result.converged
        assert "no convergence" in result.reason
        return
    assert result.converged
    expected = np.array(spectrum[:p])
    np.testing.assert_allclose(result.eigenvalues, expected, atol=1e-9)
    Q = result.basis
    np.testing.assert_allclose(Q.T @ Q, np.eye(p), atol=1e-12)
    assert result.estimates.shape == (result.iterations, p)


@pytest.mark.parametrize("seed", range(20))
def test_subspace_iteration_on_gaussian_matrices(seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((6, 6))
    values = np.linalg.eigvals(A)
    values = values[np.lexsort((-values.imag, -np.abs(values)))]
    p = 1 if dominant_is_real(A) else 2
    result = subspace_iteration(A, p, rng=rng, max_iter=100_000)
    assert result.converged, result.reason
    # Backward error tol * ||A||_F, amplified by the eigenvalue condition numbers: use a
    # generous absolute tolerance that a wrong eigenvalue (gaps here are > 1e-3) cannot meet.
    np.testing.assert_allclose(result.eigenvalues, values[:p], atol=1e-7)


def test_complex_dominant_pair_comes_out_exactly() -> None:
    A = matrix_with_spectrum(
        [2 * np.exp(1j), 2 * np.exp(-1j), 1.0, -0.5], rng=np.random.default_rng(4)
    )
    result = subspace_iteration(A, 2, rng=np.random.default_rng(5))
    assert result.converged
    np.testing.assert_allclose(result.eigenvalues, [2 * np.exp(1j), 2 * np.exp(-1j)], atol=1e-11)
    assert result.eigenvalues[0].imag > 0


def test_symmetric_matrix() -> None:
    S = matrix_with_spectrum([5.0, -4.0, 1.0, 0.1], rng=np.random.default_rng(6), normal=True)
    result = subspace_iteration(S, 2, rng=np.random.default_rng(7))
    assert result.converged
    np.testing.assert_allclose(result.eigenvalues, [5.0, -4.0], atol=1e-12)


def test_defective_dominant_block() -> None:
    # A Jordan block for 3 (one eigenvector only) and a smaller eigenvalue: the 2-D invariant
    # subspace of the block is found, with the double eigenvalue 3.
    J = np.array([[3.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    V = np.random.default_rng(8).standard_normal((3, 3))
    A = V @ J @ np.linalg.inv(V)
    result = subspace_iteration(A, 2, rng=np.random.default_rng(9))
    assert result.converged
    # A double defective eigenvalue is only determined to about sqrt(backward error).
    np.testing.assert_allclose(result.eigenvalues, [3.0, 3.0], atol=1e-5)


def test_nearly_equal_moduli_are_separated() -> None:
    spectrum = [1.0, -0.999, 0.3, 0.1]
    A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(10))
    result = subspace_iteration(A, 2, rng=np.random.default_rng(11))
    assert result.converged
    np.testing.assert_allclose(np.sort(result.eigenvalues.real), [-0.999, 1.0], atol=1e-9)
    slow = power_iteration(A, np.ones(4), max_iter=200)
    assert not slow.converged


def test_ritz_value_error_decays_at_the_predicted_rate() -> None:
    # Prediction (Golub & Van Loan 7.3.2): error ~ C |lambda_3 / lambda_2|^n = 0.6^n.
    spectrum = [2 * np.exp(0.7j), 2 * np.exp(-0.7j), 1.2, 0.3]
    A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(12))
    result = subspace_iteration(A, 2, rng=np.random.default_rng(13), tol=1e-15, max_iter=60)
    error = np.abs(result.estimates[:, 0] - spectrum[0])
    n = np.arange(10, 40)
    slope = np.polyfit(n, np.log(error[n]), 1)[0]
    assert slope == pytest.approx(np.log(0.6), rel=0.1)


def test_nilpotent_matrix_gives_zero_eigenvalues() -> None:
    N = np.diag([1.0, 1.0, 1.0], k=1)
    result = subspace_iteration(N, 2, rng=np.random.default_rng(0), max_iter=10)
    assert result.converged
    # A defective eigenvalue moves by about sqrt(backward error) = sqrt(1e-12 ||N||_F).
    np.testing.assert_allclose(result.eigenvalues, 0.0, atol=1e-5)


def test_max_iter_reached_is_reported() -> None:
    A = matrix_with_spectrum([1.0, 0.99, 0.1], rng=np.random.default_rng(14))
    result = subspace_iteration(A, 1, rng=np.random.default_rng(15), max_iter=3)
    assert not result.converged
    assert result.iterations == 3
    assert result.estimates.shape == (3, 1)


@pytest.mark.parametrize(
    ("A", "p", "kwargs", "error", "match"),
    [
        ([[1.0, 2.0]], 1, {}, ValueError, "square"),
        ([[1.0, np.inf], [0.0, 1.0]], 1, {}, ValueError, "finite"),
        ([[1.0 + 1j]], 1, {}, TypeError, "complex"),
        (np.eye(3), 0, {}, ValueError, "between 1 and k = 3"),
        (np.eye(3), 4, {}, ValueError, "between 1 and k = 3"),
        (np.eye(3), 1.0, {}, TypeError, "p must be an integer"),
        (np.eye(3), True, {}, TypeError, "p must be an integer"),
        (np.eye(3), 1, {"tol": 0.0}, ValueError, "tol"),
        (np.eye(3), 1, {"max_iter": 0}, ValueError, "max_iter"),
        (np.zeros((3, 3)), 1, {}, ValueError, "zero matrix"),
    ],
)
def test_subspace_iteration_errors(A, p, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        subspace_iteration(A, p, rng=np.random.default_rng(0), **kwargs)


def test_subspace_iteration_needs_a_generator() -> None:
    with pytest.raises(TypeError, match="Generator"):
        subspace_iteration(np.eye(2), 1, rng=None)  # type: ignore[arg-type]


def test_result_is_frozen() -> None:
    result = subspace_iteration(np.eye(2), 1, rng=np.random.default_rng(0))
    with pytest.raises(AttributeError):
        result.converged = False  # type: ignore[misc]


# --- power_iteration on a dominant pair (issue 3) ---------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_power_iteration_never_converges_on_a_complex_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = rng.standard_normal((40, 5, 5))
    mask = ~dominant_is_real(batch)
    for C in batch[mask][:3]:
        result = power_iteration(C, rng.standard_normal(5), max_iter=300)
        assert not result.converged


def test_power_iteration_names_the_complex_pair() -> None:
    pair = 2 * np.exp(1.1j)
    A = matrix_with_spectrum([pair, np.conj(pair), 0.5, -0.3], rng=np.random.default_rng(16))
    result = power_iteration(A, np.ones(4), max_iter=200)
    assert not result.converged
    assert "complex pair" in result.reason
    assert f"{pair.real:.6g} +- {pair.imag:.6g}i" in result.reason
    assert "subspace_iteration" in result.reason


def test_power_iteration_names_a_plus_minus_pair() -> None:
    A = matrix_with_spectrum([2.0, -2.0, 0.5], rng=np.random.default_rng(17))
    result = power_iteration(A, np.ones(3), max_iter=200)
    assert not result.converged
    assert "real pair -2 and 2" in result.reason


def test_power_iteration_generic_reason_when_no_plane_is_found() -> None:
    A = matrix_with_spectrum([1.0, 0.99, 0.98, 0.97], rng=np.random.default_rng(18))
    result = power_iteration(A, np.ones(4), max_iter=5)
    assert not result.converged
    assert "may be a complex pair" in result.reason


# --- chapter 2's quantitative claims, at small size ------------------------------------------


def _rayleigh_errors(A: np.ndarray, steps: int) -> np.ndarray:
    from eiginit import iterate

    values = np.linalg.eigvals(A)
    top = values[np.argmax(np.abs(values))].real
    u = iterate(A, np.random.default_rng(23).standard_normal(A.shape[0]), steps).directions
    return np.abs(np.einsum("ni,ij,nj->n", u, A, u) - top)


@pytest.mark.parametrize("seed", [20, 21, 22])
@pytest.mark.parametrize("r", [0.4, 0.7])
def test_eigenvalue_error_rate_r_nonnormal_and_r_squared_symmetric(r: float, seed: int) -> None:
    # Golub & Van Loan 7.3.1 and 8.2: |mu_n - lambda_1| ~ r^n (non-normal), r^(2n) (symmetric).
    # The start is random: a start nearly orthogonal to v_2 (np.ones is, for seed 20) lets the
    # faster terms dominate the short fitting window, as chapter 2 warns.
    spectrum = [1.0, r, *(r * np.array([-0.5, 0.3, 0.1]))]
    for normal, power in ((False, 1), (True, 2)):
        A = matrix_with_spectrum(spectrum, rng=np.random.default_rng(seed), normal=normal)
        err = _rayleigh_errors(A, 120)
        n = np.arange(np.argmax(err < 1e-2), np.argmax(err < 1e-11))
        rate = np.exp(np.polyfit(n, np.log(err[n]), 1)[0])
        assert rate == pytest.approx(r**power, abs=0.03)


def test_gap_closes_as_k_grows() -> None:
    # Median |lambda2/lambda1| among real-dominant Gaussian matrices rises with k (chapter 2);
    # the medians differ by far more than their sampling error (about 0.01 for these trials).
    rng = np.random.default_rng(21)
    medians = []
    for k in (5, 20):
        ev = np.linalg.eigvals(rng.standard_normal((1500, k, k)))
        ev = np.take_along_axis(ev, np.argsort(-np.abs(ev), axis=1), axis=1)
        real = ev[:, 0].imag == 0
        medians.append(np.median(np.abs(ev[real, 1]) / np.abs(ev[real, 0])))
    assert medians[0] == pytest.approx(0.74, abs=0.03)  # REFERENCES.md: about 0.74 for k = 5
    assert medians[1] > medians[0] + 0.1


# --- Defects found by the bad-input review (each failed before its fix) ---


@pytest.mark.parametrize(("A", "value"), [([[1e308]], 1e308), (1.7e308 * np.eye(2), 1.7e308)])
def test_subspace_iteration_scales_back_without_overflow(A: np.ndarray, value: float) -> None:
    # 2.0**exponent raised OverflowError for any entry of 2**1023 or more.
    r = subspace_iteration(A, 1, rng=np.random.default_rng(0))
    assert r.converged
    assert r.eigenvalues[0] == pytest.approx(value, rel=1e-14)


def test_subspace_iteration_does_not_preallocate_max_iter() -> None:
    r = subspace_iteration(np.diag([3.0, 1.0]), 2, rng=np.random.default_rng(0), max_iter=10**12)
    assert r.converged
    assert r.estimates.shape == (r.iterations, 2)


def test_subspace_iteration_unconverged_ritz_values_belong_to_the_basis() -> None:
    A = np.diag([1.0, 0.999, 0.5])
    r = subspace_iteration(A, 1, rng=np.random.default_rng(0), max_iter=3)
    assert not r.converged
    Q = r.basis
    np.testing.assert_allclose(r.eigenvalues, np.linalg.eigvals(Q.T @ A @ Q), rtol=1e-14)


def test_matrix_with_spectrum_refuses_ragged_input_clearly() -> None:
    with pytest.raises(TypeError, match="eigenvalues must be a 1-D array"):
        matrix_with_spectrum([[], [0]], rng=np.random.default_rng(0))
