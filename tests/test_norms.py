"""Tests for eiginit.linalg.norms (chapter 3: eigenvalues are not the whole story)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eiginit import (
    matrix_with_spectrum,
    normalize_spectral_radius,
    seed_matrix,
    spectral_norm,
    spectral_radius,
    transient_growth,
)

# --- the seed matrix facts quoted in chapter 3 -----------------------------------------------


def test_seed_matrix_radius_versus_norm() -> None:
    A = seed_matrix()
    rho = spectral_radius(A)
    sigma = spectral_norm(A)
    assert sigma.converged
    assert rho == pytest.approx(2.604, abs=5e-4)
    assert sigma.value == pytest.approx(4.128, abs=5e-4)
    assert sigma.value / rho == pytest.approx(1.59, abs=5e-3)
    # The right singular vector is stretched by sigma_max / rho in one step of A / rho.
    B = normalize_spectral_radius(A)
    stretch = np.linalg.norm(B @ sigma.right_vector)
    assert stretch == pytest.approx(sigma.value / rho, rel=1e-12)


# --- spectral_norm -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (8, 2), (1, 4), (4, 1)])
@pytest.mark.parametrize("seed", range(4))
def test_spectral_norm_matches_numpy(shape, seed) -> None:
    A = np.random.default_rng(seed).standard_normal(shape)
    result = spectral_norm(A)
    assert result.converged, result.reason
    assert result.value == pytest.approx(np.linalg.norm(A, 2), rel=1e-10)
    np.testing.assert_allclose(A @ result.right_vector, result.value * result.left_vector)
    assert np.linalg.norm(result.right_vector) == pytest.approx(1.0)
    assert result.estimates.shape == (result.iterations,)


@settings(max_examples=60, deadline=None)
@given(
    A=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        elements=st.floats(-100, 100, allow_nan=False),
    )
)
def test_estimates_never_exceed_the_true_norm(A) -> None:
    if not np.any(A):
        return
    result = spectral_norm(A, max_iter=50, x0=np.ones(A.shape[1]) + np.arange(A.shape[1]))
    # ||A v|| <= ||A||_2 for a unit v: a lower bound at every step (up to rounding).
    assert np.all(result.estimates <= np.linalg.norm(A, 2) * (1 + 1e-12))
    assert np.all(np.diff(result.estimates) >= -1e-9 * np.linalg.norm(A, 2))


def test_rates_are_squared_and_fourth_power() -> None:
    # Prediction: direction error ~ (s2/s1)^(2n), estimate error ~ (s2/s1)^(4n), s2/s1 = 0.9.
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    V, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s = np.array([2.0, 1.8, 1.0, 0.5, 0.3, 0.1])
    A = U @ np.diag(s) @ V.T
    x0 = rng.standard_normal(6)
    n = np.arange(5, 25)
    result = spectral_norm(A, tol=1e-300, max_iter=60, x0=x0)
    assert not result.converged
    assert "no convergence" in result.reason
    value_error = s[0] - result.estimates[n - 1]
    slope = np.polyfit(n, np.log(value_error), 1)[0]
    assert slope == pytest.approx(4 * np.log(0.9), rel=0.05)
    # The direction after m steps: rerun with max_iter = m and measure sin(angle to v_1).
    cosines = [spectral_norm(A, tol=1e-300, max_iter=m, x0=x0).right_vector @ V[:, 0] for m in n]
    sines = np.sqrt(1 - np.minimum(1.0, np.square(cosines)))
    slope = np.polyfit(n, np.log(sines), 1)[0]
    assert slope == pytest.approx(2 * np.log(0.9), rel=0.05)


def test_default_start_is_deterministic() -> None:
    A = seed_matrix()
    first, second = spectral_norm(A), spectral_norm(A)
    np.testing.assert_array_equal(first.estimates, second.estimates)


@pytest.mark.parametrize(
    ("A", "kwargs", "error", "match"),
    [
        ([1.0, 2.0], {}, ValueError, "2-D"),
        ("A", {}, TypeError, "real numbers"),
        ([[np.nan, 1.0]], {}, ValueError, "finite"),
        (np.zeros((2, 3)), {}, ValueError, "zero matrix"),
        (np.eye(2), {"tol": -1.0}, ValueError, "tol"),
        (np.eye(2), {"tol": "small"}, TypeError, "tol"),
        (np.eye(2), {"max_iter": 0}, ValueError, "max_iter"),
        (np.eye(2), {"max_iter": 2.5}, TypeError, "max_iter"),
        (np.eye(2), {"x0": [0.0, 0.0]}, ValueError, "zero vector"),
        (np.eye(2), {"x0": [1.0, 0.0, 0.0]}, ValueError, "length 2"),
        (np.diag([1.0, 0.0]), {"x0": [0.0, 1.0]}, ValueError, "null space"),
    ],
)
def test_spectral_norm_errors(A, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        spectral_norm(A, **kwargs)


# --- transient_growth --------------------------------------------------------------------------


def test_jordan_block_closed_form() -> None:
    a, b, steps = 0.8, 3.0, 30
    A = np.array([[a, b], [0.0, a]])
    expected = [np.linalg.norm(np.linalg.matrix_power(A, n), 2) for n in range(steps + 1)]
    np.testing.assert_allclose(transient_growth(A, steps), expected, rtol=1e-12)
    # Non-normal: it grows first although rho = 0.8 < 1.
    assert transient_growth(A, steps).max() > 2


def test_normal_matrix_has_no_transient() -> None:
    spectrum = [1.5 * np.exp(0.4j), 1.5 * np.exp(-0.4j), -1.0, 0.2]
    N = matrix_with_spectrum(spectrum, rng=np.random.default_rng(0), normal=True)
    np.testing.assert_allclose(transient_growth(N, 20), 1.5 ** np.arange(21), rtol=1e-10)


def test_batch_matches_single() -> None:
    batch = np.random.default_rng(1).standard_normal((3, 4, 4))
    out = transient_growth(batch, 10)
    assert out.shape == (3, 11)
    for A, row in zip(batch, out, strict=True):
        np.testing.assert_allclose(transient_growth(A, 10), row, rtol=1e-12)


def test_log_space_never_overflows() -> None:
    log = transient_growth(np.eye(3) * 10.0, 400, log=True)
    np.testing.assert_allclose(log, np.arange(401) * np.log(10.0), rtol=1e-12)
    with pytest.raises(ValueError, match="log=True"):
        transient_growth(np.eye(3) * 10.0, 400)


def test_nilpotent_matrix_reaches_zero() -> None:
    N = np.diag([2.0, 2.0], k=1)
    np.testing.assert_array_equal(transient_growth(N, 4), [1.0, 2.0, 4.0, 0.0, 0.0])
    assert np.all(np.isneginf(transient_growth(N, 4, log=True)[3:]))


def test_gelfand_formula_on_the_seed_matrix() -> None:
    A = seed_matrix()
    log = transient_growth(A, 2000, log=True)
    rate = np.exp(log[-1] / 2000)
    # ||A^n||^(1/n) = rho * C^(1/n) with C the eigenvector condition constant: within 0.1 %.
    assert rate == pytest.approx(spectral_radius(A), rel=1e-3)


@pytest.mark.parametrize(
    ("A", "steps", "kwargs", "error", "match"),
    [
        (np.ones((2, 3)), 3, {}, ValueError, "square"),
        (np.ones((2, 2, 3)), 3, {}, ValueError, "trials"),
        (np.eye(2), -1, {}, ValueError, "steps"),
        (np.eye(2), 1.5, {}, TypeError, "steps"),
        (np.eye(2), 3, {"log": "yes"}, TypeError, "log"),
        ([[np.inf]], 3, {}, ValueError, "finite"),
    ],
)
def test_transient_growth_errors(A, steps, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        transient_growth(A, steps, **kwargs)


# --- chapter 3's other claims, at small size --------------------------------------------------


def test_transient_settles_at_the_eigenvalue_condition_number() -> None:
    A = seed_matrix()
    values, vectors = np.linalg.eig(A)
    top = np.argmax(np.abs(values))
    x = np.real(vectors[:, top])
    y = np.real(np.linalg.inv(vectors)[top])
    kappa = np.linalg.norm(x) * np.linalg.norm(y) / abs(y @ x)
    growth = transient_growth(normalize_spectral_radius(A), 60)
    assert growth[1] == pytest.approx(spectral_norm(A).value / spectral_radius(A), rel=1e-12)
    assert growth[-1] == pytest.approx(kappa, rel=1e-8)


def test_products_of_rho_normalized_matrices_drift_down() -> None:
    # Chapter 3: a new 5 x 5 Gaussian matrix per layer, each divided by its spectral radius,
    # makes log||x_L|| drift down. The drift (about -0.11 per layer) is many standard errors
    # (about 0.003 here) below zero.
    rng = np.random.default_rng(22)
    trials, depth = 400, 30
    Ws = rng.standard_normal((trials, depth, 5, 5))
    Ws /= np.max(np.abs(np.linalg.eigvals(Ws)), axis=-1)[..., None, None]
    x = rng.standard_normal((trials, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for layer in range(depth):
        x = np.einsum("tij,tj->ti", Ws[:, layer], x)
    per_layer = np.log(np.linalg.norm(x, axis=1)) / depth
    se = per_layer.std() / np.sqrt(trials)
    assert per_layer.mean() < -10 * se
    assert per_layer.mean() == pytest.approx(-0.11, abs=5 * se + 0.01)


# --- Defects found by the bad-input review (each failed before its fix) ---


@pytest.mark.parametrize(
    "A",
    [
        [[-1.0, 0.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]],
        [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, math.sqrt(1.5)]],
        [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.9]],
    ],
)
def test_default_start_is_not_a_singular_vector_of_block_matrices(A: list[list[float]]) -> None:
    # The old default, the largest row of A^T A, was an exact singular vector of a smaller sigma.
    r = spectral_norm(A)
    assert r.converged
    assert r.value == pytest.approx(float(np.linalg.norm(A, 2)), rel=1e-10)


def test_default_start_on_random_sparse_integer_matrices() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        m, n = rng.integers(2, 7, size=2)
        A = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0, 2.0], size=(m, n))
        if not np.any(A):
            continue
        r = spectral_norm(A)
        if r.converged:
            assert r.value == pytest.approx(float(np.linalg.norm(A, 2)), rel=1e-9)


def test_default_start_never_forms_the_gram_matrix() -> None:
    import tracemalloc

    A = np.random.default_rng(0).standard_normal((8, 16000))
    tracemalloc.start()
    spectral_norm(A, max_iter=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # the 16000 x 16000 Gram matrix alone is 1.9 GiB


@pytest.mark.parametrize("x0", [[1e200, 1e200], [1e-200, 1e-200]])
def test_spectral_norm_accepts_any_finite_start(x0: list[float]) -> None:
    assert spectral_norm(np.diag([3.0, 1.0]), x0=x0).value == pytest.approx(3.0)


def test_spectral_norm_refuses_tol_of_one() -> None:
    with pytest.raises(ValueError, match="tol must be < 1"):
        spectral_norm(np.eye(2), tol=1.0)


def test_transient_growth_of_huge_matrices_in_log_space() -> None:
    # ||(c J)^n||_2 = c^n 2^n for the 2 x 2 matrix of ones J: finite logs, no NaN.
    out = transient_growth(1e308 * np.ones((2, 2)), 3, log=True)
    expected = np.arange(4) * (math.log(1e308) + math.log(2.0))
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    tiny = transient_growth(1e-320 * np.eye(2), 2, log=True)
    np.testing.assert_allclose(tiny, np.arange(3) * math.log(1e-320), rtol=1e-3)
