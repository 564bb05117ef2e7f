"""Tests of eiginit.linalg.lyapunov: closed forms, QR estimates and log-norm growth.

Statistical tests use fixed seeds and tolerances of five standard errors. A QR estimate over L
steps also carries a start-up bias of order 1/L (the frame needs a few steps to align), which the
tolerances add explicitly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    LogNormMoments,
    digamma_half,
    gaussian_log_norm_moments,
    gaussian_lyapunov_spectrum,
    log_norm_growth,
    lyapunov_exponents,
    lyapunov_spectrum,
    orthogonal,
    trigamma_half,
)

GAMMA = 0.5772156649015329


# ---------------------------------------------------------------- special functions


def test_digamma_known_values() -> None:
    values = digamma_half([1, 2, 3, 4, 5])
    expected = [
        -GAMMA - 2 * math.log(2),
        -GAMMA,
        -GAMMA - 2 * math.log(2) + 2,
        -GAMMA + 1,
        -GAMMA - 2 * math.log(2) + 2 + 2 / 3,
    ]
    np.testing.assert_allclose(values, expected, rtol=1e-14)
    assert digamma_half(4).shape == ()


def test_trigamma_known_values() -> None:
    values = trigamma_half([1, 2, 3, 4])
    expected = [math.pi**2 / 2, math.pi**2 / 6, math.pi**2 / 2 - 4, math.pi**2 / 6 - 1]
    np.testing.assert_allclose(values, expected, rtol=1e-14)
    # Asymptotics: psi'(x) = 1/x + 1/(2x^2) + O(x^-3).
    x = 500.0
    assert trigamma_half(1000) == pytest.approx(1 / x + 1 / (2 * x**2), rel=1e-6)


def test_special_against_scipy() -> None:
    special = pytest.importorskip("scipy.special")
    m = np.arange(1, 3001)
    np.testing.assert_allclose(digamma_half(m), special.digamma(m / 2), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(trigamma_half(m), special.polygamma(1, m / 2), rtol=1e-10)


def test_special_errors() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        digamma_half([0, 1])
    with pytest.raises(TypeError, match="integer"):
        trigamma_half(1.5)
    # An empty array is the right kind with a wrong value: ValueError, as in the shared checks.
    with pytest.raises(ValueError, match="empty"):
        trigamma_half([])
    with pytest.raises(TypeError, match="integer"):
        digamma_half([[], [0]])  # ragged


# ---------------------------------------------------------------- the closed form


def test_newman_k5() -> None:
    spectrum = gaussian_lyapunov_spectrum(5)
    np.testing.assert_allclose(spectrum, [0.698, 0.558, 0.365, 0.058, -0.635], atol=5e-4)
    assert math.exp(spectrum[0]) == pytest.approx(2.01, abs=5e-3)
    assert np.all(np.diff(spectrum) < 0)


@given(st.integers(1, 60), st.floats(0.01, 100.0))
def test_std_shifts_every_exponent(k: int, std: float) -> None:
    shift = gaussian_lyapunov_spectrum(k, std) - gaussian_lyapunov_spectrum(k)
    np.testing.assert_allclose(shift, math.log(std), atol=1e-12)


def test_sum_is_mean_log_determinant() -> None:
    # Sum of exponents = E log|det W| per layer; measured on 20,000 Gaussian 4 x 4 matrices.
    k, n = 4, 20_000
    logdet = np.linalg.slogdet(np.random.default_rng(0).standard_normal((n, k, k)))[1]
    se = logdet.std(ddof=1) / math.sqrt(n)
    assert abs(logdet.mean() - gaussian_lyapunov_spectrum(k).sum()) < 5 * se


def test_one_by_one_is_mean_log_abs_gaussian() -> None:
    # k = 1: gamma = E log|g| = -(gamma_Euler + log 2) / 2.
    assert gaussian_lyapunov_spectrum(1)[0] == pytest.approx(-(GAMMA + math.log(2)) / 2)


def test_closed_form_errors() -> None:
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        gaussian_lyapunov_spectrum(0)
    with pytest.raises(TypeError, match="k must be an integer"):
        gaussian_lyapunov_spectrum(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        gaussian_lyapunov_spectrum(3, -1.0)


# ---------------------------------------------------------------- the QR estimate


@pytest.mark.parametrize(("k", "std"), [(2, 1.0), (5, 1.0), (5, 0.3), (10, 1 / math.sqrt(10))])
def test_qr_estimate_matches_closed_form(k: int, std: float) -> None:
    steps = 1500
    est = lyapunov_spectrum(k, steps, std=std, trials=8, rng=np.random.default_rng(k))
    assert est.exponents.shape == (k,)
    assert est.standard_errors is not None
    assert est.per_trial.shape == (8, k)
    tolerance = 5 * est.standard_errors + 2.0 / steps
    assert np.all(np.abs(est.exponents - gaussian_lyapunov_spectrum(k, std)) < tolerance)


def test_qr_estimate_can_fail() -> None:
    # The same estimate is far from the closed form of a different width: the test has teeth.
    est = lyapunov_spectrum(5, 1500, trials=8, rng=np.random.default_rng(1))
    assert np.any(np.abs(est.exponents - gaussian_lyapunov_spectrum(6)[:5]) > 0.05)


def test_qr_estimate_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="trials must be an integer >= 2"):
        lyapunov_spectrum(3, 10, trials=1, rng=rng)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        lyapunov_spectrum(3, 0, rng=rng)
    with pytest.raises(TypeError, match="rng"):
        lyapunov_spectrum(3, 10, rng=0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- any sequence


def test_sequence_diagonal_and_shapes() -> None:
    seq = np.stack([np.diag([3.0, 1.0, 0.5])] * 7)
    est = lyapunov_exponents(seq)
    np.testing.assert_allclose(est.exponents, np.log([3.0, 1.0, 0.5]), atol=1e-12)
    assert est.standard_errors is None
    assert est.trials == 1
    assert est.steps == 7


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.floats(0.1, 10.0), st.integers(0, 2**32 - 1))
def test_orthogonal_products_have_exponents_log_gain(
    k: int, steps: int, gain: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    seq = np.stack([orthogonal((k, k), gain, rng=rng) for _ in range(steps)])
    np.testing.assert_allclose(lyapunov_exponents(seq).exponents, math.log(gain), atol=1e-10)


def test_sequence_with_trials_matches_gaussian() -> None:
    rng = np.random.default_rng(3)
    seq = rng.standard_normal((6, 800, 3, 3))
    est = lyapunov_exponents(seq)
    assert est.standard_errors is not None
    assert np.all(
        np.abs(est.exponents - gaussian_lyapunov_spectrum(3)) < 5 * est.standard_errors + 2 / 800
    )


def test_sequence_errors() -> None:
    with pytest.raises(ValueError, match=r"\(steps, k, k\)"):
        lyapunov_exponents(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"\(steps, k, k\)"):
        lyapunov_exponents(np.ones((2, 2)))
    with pytest.raises(ValueError, match="singular"):
        lyapunov_exponents(np.stack([np.eye(2), np.zeros((2, 2))]))
    with pytest.raises(TypeError, match="real numbers"):
        lyapunov_exponents("abc")
    with pytest.raises(ValueError, match="finite"):
        lyapunov_exponents(np.full((1, 2, 2), np.nan))


# ---------------------------------------------------------------- log-norms through depth


def test_log_norm_moments_formula() -> None:
    m = gaussian_log_norm_moments(50, 20, std=1 / math.sqrt(50))
    assert isinstance(m, LogNormMoments)
    assert m.mean < 0  # the typical norm shrinks although the mean square is preserved
    assert m.mean == pytest.approx(-20 / 50, rel=0.05)  # about -L/k
    assert m.variance == pytest.approx(2 * 20 / 50, rel=0.05)  # about 2L/k
    assert m.std == pytest.approx(math.sqrt(m.variance))
    assert gaussian_log_norm_moments(7, 0) == LogNormMoments(0.0, 0.0)


@pytest.mark.parametrize(("k", "depth"), [(4, 6), (16, 20)])
def test_log_norm_moments_against_simulation(k: int, depth: int) -> None:
    trials = 4000
    rng = np.random.default_rng(k + depth)
    x0 = rng.standard_normal((trials, k))
    logs = log_norm_growth(x0, depth, lambda _: rng.standard_normal((trials, k, k)) / math.sqrt(k))
    change = 2 * (logs[:, -1] - logs[:, 0])  # log of the squared-norm ratio
    theory = gaussian_log_norm_moments(k, depth, std=1 / math.sqrt(k))
    assert abs(change.mean() - theory.mean) < 5 * math.sqrt(theory.variance / trials)
    # Standard error of a sample variance: sqrt((m4 - var^2) / n), m4 measured.
    centred = change - change.mean()
    se_var = math.sqrt((np.mean(centred**4) - np.mean(centred**2) ** 2) / trials)
    assert abs(centred.var() - theory.variance) < 5 * se_var
    # The mean square is preserved: E ||x_L||^2 / ||x_0||^2 = 1.
    ratio = np.exp(change)
    assert abs(ratio.mean() - 1.0) < 5 * ratio.std() / math.sqrt(trials)


def test_log_norm_growth_errors() -> None:
    x0 = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"must return shape \(2, 3, 3\)"):
        log_norm_growth(x0, 1, lambda _: np.ones((3, 3)))
    with pytest.raises(ValueError, match="maps a vector to zero"):
        log_norm_growth(x0, 1, lambda _: np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="nonzero"):
        log_norm_growth(np.zeros((2, 3)), 1, lambda _: np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match=r"shape \(trials, k\)"):
        log_norm_growth(np.ones(3), 1, lambda _: np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="depth must be an integer >= 0"):
        log_norm_growth(x0, -1, lambda _: np.ones((2, 3, 3)))


# ------------------------------------------------ chapter "A new matrix every layer"


def test_top_exponent_is_not_the_mean_spectral_radius() -> None:
    # k = 5: exp(gamma_1) = 2.01 while E[rho] = 2.32 (and sqrt(5) = 2.236 lies between).
    radii = np.abs(np.linalg.eigvals(np.random.default_rng(0).standard_normal((20_000, 5, 5))))
    rho = radii.max(axis=-1)
    se = rho.std(ddof=1) / math.sqrt(rho.size)
    assert abs(rho.mean() - 2.32) < 5 * se + 0.005
    growth = math.exp(gaussian_lyapunov_spectrum(5)[0])
    assert growth < math.sqrt(5) < rho.mean() - 5 * se


def _spectral_radii(g: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.eigvals(g)).max(axis=-1)


@pytest.mark.parametrize("k", [5, 16])
def test_seed_recipe_per_layer_shifts_exponents_by_mean_log_rho(k: int) -> None:
    # Dividing W_l by rho(W_l) shifts every exponent by -E log rho(W), exactly in the limit.
    rng = np.random.default_rng(20 + k)
    g = rng.standard_normal((6, 600, k, k))
    radii = _spectral_radii(g)
    est = lyapunov_exponents(g / radii[..., None, None])
    # Theory with the sample's own mean log rho; its error is part of the per-trial spread.
    predicted = gaussian_lyapunov_spectrum(k)[0] - np.log(radii).mean()
    assert est.standard_errors is not None
    assert abs(est.exponents[0] - predicted) < 5 * est.standard_errors[0] + 2 / 600


def test_seed_recipe_loses_to_sqrt_k_at_k16() -> None:
    # The chapter's claim: at k = 16 the seed's recipe shrinks the norm faster than 1/sqrt(k).
    k = 16
    mean_log_rho = np.log(_spectral_radii(np.random.default_rng(1).standard_normal((5000, k, k))))
    se = mean_log_rho.std(ddof=1) / math.sqrt(mean_log_rho.size)
    seed_rate = gaussian_lyapunov_spectrum(k)[0] - mean_log_rho.mean()
    sqrt_k_rate = gaussian_lyapunov_spectrum(k, 1 / math.sqrt(k))[0]
    assert seed_rate + 5 * se < sqrt_k_rate < 0


def test_uniform_weights_differ_from_gaussian_at_k2() -> None:
    # The closed form needs rotation invariance: uniform entries of the same variance miss it at
    # k = 2 by many standard errors.
    rng = np.random.default_rng(7)
    seq = rng.uniform(-math.sqrt(3), math.sqrt(3), (4, 1000, 2, 2)) / math.sqrt(2)
    est = lyapunov_exponents(seq)
    assert est.standard_errors is not None
    gap = abs(est.exponents[0] - gaussian_lyapunov_spectrum(2, 1 / math.sqrt(2))[0])
    assert gap > 5 * est.standard_errors[0] + 2 / 1000


# --- Defects found by the bad-input review (each failed before its fix) ---


@pytest.mark.parametrize("m", [41, 999, 10**5, 10**7, 10**9, 10**12, 2**62])
def test_special_functions_at_large_m_against_scipy(m: int) -> None:
    special = pytest.importorskip("scipy.special")
    assert float(digamma_half(m)) == pytest.approx(float(special.digamma(m / 2)), rel=1e-14)
    # The finite sum lost 2.8e-7 relative at m = 1e7; the series keeps full accuracy.
    assert float(trigamma_half(m)) == pytest.approx(float(special.polygamma(1, m / 2)), rel=1e-14)


def test_special_functions_use_constant_memory() -> None:
    import tracemalloc

    tracemalloc.start()
    digamma_half(10**9)
    trigamma_half(10**9)
    gaussian_log_norm_moments(10**9, 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # the finite sums needed 7.45 GiB


def test_unsigned_integers_beyond_int64_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        digamma_half(np.uint64(2**64 - 1))


@pytest.mark.parametrize("std", [1e200, 1e-200])
def test_log_norm_moments_at_extreme_std(std: float) -> None:
    m = gaussian_log_norm_moments(7, 3, std=std)
    expected = 3 * (math.log(2.0) + 2 * math.log(std) + float(digamma_half(7)))
    assert m.mean == pytest.approx(expected, rel=1e-14)


def test_lyapunov_spectrum_with_extreme_std_shifts_by_log_std() -> None:
    one = lyapunov_spectrum(3, 50, std=1.0, rng=np.random.default_rng(4))
    for std in (2.0**300, 1e308, 1e-300):
        est = lyapunov_spectrum(3, 50, std=std, rng=np.random.default_rng(4))
        np.testing.assert_allclose(est.exponents, one.exponents + math.log(std), rtol=1e-12)


def test_log_norm_growth_at_extreme_scales() -> None:
    out = log_norm_growth(np.full((2, 3), 1e200), 2, lambda _: np.stack([1e200 * np.eye(3)] * 2))
    expected = math.log(1e200 * math.sqrt(3)) + np.arange(3) * math.log(1e200)
    np.testing.assert_allclose(out, np.stack([expected] * 2), rtol=1e-13)


@pytest.mark.parametrize(
    ("draw", "error", "match"),
    [
        (None, TypeError, "draw must be a callable"),
        (3, TypeError, "draw must be a callable"),
        (lambda _: np.full((1, 2, 2), np.nan), ValueError, r"draw\(0\) must be finite"),
        (lambda _: np.eye(2)[None] * 1j, TypeError, r"draw\(0\) must hold real numbers"),
        (lambda _: "abc", TypeError, r"draw\(0\)"),
    ],
)
def test_log_norm_growth_checks_draw(draw: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        log_norm_growth(np.ones((1, 2)), 1, draw)  # type: ignore[arg-type]


def test_lyapunov_exponents_of_huge_matrices() -> None:
    W = np.stack([np.diag([2.0, 0.5])] * 10)
    base = lyapunov_exponents(W).exponents
    np.testing.assert_allclose(lyapunov_exponents(1e300 * W).exponents, base + math.log(1e300))
    np.testing.assert_allclose(lyapunov_exponents(1e-300 * W).exponents, base + math.log(1e-300))
