"""Tests for eiginit.linalg.spectra: exact values, laws against simulation, and input checking.

Statistical tests use fixed seeds. Their tolerances are a number of standard errors of the
simulated quantity (4 unless said otherwise, a 6e-5 two-sided chance of a false alarm for a
normal estimate), plus, where a limit law is compared at finite size, an explicit allowance for
the finite-size bias, stated in a comment with the measurement it comes from.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eiginit
from eiginit import (
    circular_law_cdf,
    dominant_is_real,
    expected_real_eigenvalues,
    ginibre,
    marchenko_pastur_pdf,
    prob_all_real,
    quarter_circle_pdf,
)

Z = 4.0  # standard errors allowed in statistical comparisons


def real_counts(batch: np.ndarray) -> np.ndarray:
    """Number of real eigenvalues of each matrix (LAPACK gives real ones a zero imaginary part)."""
    return (np.linalg.eigvals(batch).imag == 0).sum(axis=1)


# --- ginibre -------------------------------------------------------------------------------


def test_ginibre_shapes_and_reproducibility():
    one = ginibre(4, rng=np.random.default_rng(1))
    batch = ginibre(4, rng=np.random.default_rng(1), trials=3)
    assert one.shape == (4, 4)
    assert batch.shape == (3, 4, 4)
    assert one.dtype == np.float64
    np.testing.assert_array_equal(one, ginibre(4, rng=np.random.default_rng(1)))
    # trials=1 draws the same numbers as a single matrix, one axis deeper.
    np.testing.assert_array_equal(ginibre(4, rng=np.random.default_rng(1), trials=1)[0], one)


def test_ginibre_scale_is_the_entry_standard_deviation():
    k, trials, scale = 30, 200, 0.25
    entries = ginibre(k, rng=np.random.default_rng(2), trials=trials, scale=scale).ravel()
    n = entries.size
    # Mean: SE scale / sqrt(n). Variance: SE of the sample variance is scale^2 sqrt(2 / n).
    assert abs(entries.mean()) < Z * scale / math.sqrt(n)
    assert abs(entries.var() - scale**2) < Z * scale**2 * math.sqrt(2 / n)


def test_ginibre_with_scale_one_over_sqrt_k_preserves_squared_norm_on_average():
    # E ||W x||^2 = ||x||^2 for entries of variance 1/k; ||W x||^2 / ||x||^2 ~ chi2_k / k, whose
    # standard deviation sqrt(2 / k) gives the exact standard error of the mean.
    rng = np.random.default_rng(3)
    for k in (3, 20, 100):
        n = 2000
        W = ginibre(k, rng=rng, trials=n, scale=1 / math.sqrt(k))
        x = rng.standard_normal(k)
        ratio = np.sum((W @ x) ** 2, axis=1) / np.sum(x**2)
        assert abs(ratio.mean() - 1) < Z * math.sqrt(2 / k / n)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be an integer >= 1"),
        ({"k": 2.0}, TypeError, "k must be an integer"),
        ({"k": True}, TypeError, "k must be an integer"),
        ({"k": 2, "trials": 0}, ValueError, "trials must be an integer >= 1"),
        ({"k": 2, "trials": 1.5}, TypeError, "trials must be an integer"),
        ({"k": 2, "scale": 0.0}, ValueError, "scale must be a finite number > 0"),
        ({"k": 2, "scale": -1.0}, ValueError, "scale must be a finite number > 0"),
        ({"k": 2, "scale": float("nan")}, ValueError, "scale must be a finite number > 0"),
        ({"k": 2, "scale": "1"}, TypeError, "scale must be a real number"),
    ],
)
def test_ginibre_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ginibre(rng=np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)])
def test_ginibre_requires_a_generator(rng):
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        ginibre(3, rng=rng)


# --- expected_real_eigenvalues ---------------------------------------------------------------


def test_expected_real_eigenvalues_exact_small_values():
    s2 = math.sqrt(2)
    # E_1 = 1, E_2 = sqrt2, E_3 = 1 + sqrt2 / 2, E_4 = sqrt2 (1 + 3/8),
    # E_5 = 1 + sqrt2 (1/2 + 15/48)
    expected = [1.0, s2, 1 + s2 / 2, s2 * (1 + 3 / 8), 1 + s2 * (1 / 2 + 15 / 48)]
    np.testing.assert_allclose(expected_real_eigenvalues([1, 2, 3, 4, 5]), expected, rtol=1e-14)
    assert expected_real_eigenvalues(5) == pytest.approx(2.14905, abs=5e-6)


def test_expected_real_eigenvalues_scalar_and_shape():
    value = expected_real_eigenvalues(7)
    assert isinstance(value, float)
    grid = expected_real_eigenvalues(np.array([[1, 2], [3, 4]]))
    assert grid.shape == (2, 2)
    assert grid[1, 1] == expected_real_eigenvalues(4)
    assert isinstance(expected_real_eigenvalues(np.int64(3)), float)


@given(st.integers(min_value=1, max_value=3000))
def test_expected_real_eigenvalues_step_of_two(k):
    # The closed forms say E_{k+2} - E_k = sqrt(2) (2k-1)!!/(2k)!! = sqrt(2) Gamma(k + 1/2) /
    # (sqrt(pi) Gamma(k + 1)): an independent check of the cumulative sums by parity.
    step = expected_real_eigenvalues(k + 2) - expected_real_eigenvalues(k)
    c_k = math.exp(math.lgamma(k + 0.5) - math.lgamma(k + 1)) / math.sqrt(math.pi)
    assert step == pytest.approx(math.sqrt(2) * c_k, rel=1e-9)


def test_expected_real_eigenvalues_asymptote():
    # E_k = sqrt(2k/pi) + 1/2 + O(1/sqrt k): the error must shrink like 1/sqrt(k).
    k = np.array([100, 10_000, 1_000_000])
    error = np.abs(expected_real_eigenvalues(k) - np.sqrt(2 * k / np.pi) - 0.5)
    assert np.all(error * np.sqrt(k) < 0.5)
    assert np.all(np.diff(error) < 0)


@pytest.mark.parametrize("k", [2, 3, 5, 8, 12])
def test_expected_real_eigenvalues_against_simulation(k):
    counts = real_counts(ginibre(k, rng=np.random.default_rng(100 + k), trials=20_000))
    se = counts.std() / math.sqrt(counts.size)
    assert abs(counts.mean() - expected_real_eigenvalues(k)) < Z * se


def test_real_eigenvalue_count_does_not_depend_on_scale():
    A = ginibre(6, rng=np.random.default_rng(7), trials=500)
    np.testing.assert_array_equal(real_counts(A), real_counts(1e-3 * A))


@pytest.mark.parametrize(
    ("k", "error", "match"),
    [
        (0, ValueError, "k must be >= 1"),
        ([3, -1], ValueError, "k must be >= 1"),
        ([], ValueError, "must not be empty"),
        (2.0, TypeError, "k must be an integer or an array of integers"),
        ([2.0, 3.0], TypeError, "k must be an integer or an array of integers"),
        ("5", TypeError, "k must be an integer or an array of integers"),
        (True, TypeError, "k must be an integer or an array of integers"),
        ([[1, 2], [3]], TypeError, "k must be an integer or an array of integers"),
        (10**8, ValueError, "use the asymptote"),
    ],
)
def test_expected_real_eigenvalues_rejects_bad_input(k, error, match):
    with pytest.raises(error, match=match):
        expected_real_eigenvalues(k)


# --- prob_all_real ---------------------------------------------------------------------------


def test_prob_all_real_exact_values():
    assert prob_all_real(1) == 1.0
    assert prob_all_real(5) == 1 / 32
    np.testing.assert_allclose(prob_all_real([2, 3, 4]), [2**-0.5, 2**-1.5, 2**-3], rtol=1e-14)


@given(st.integers(min_value=1, max_value=60))
def test_prob_all_real_log_matches(k):
    assert math.exp(prob_all_real(k, log=True)) == pytest.approx(prob_all_real(k), rel=1e-12)


def test_prob_all_real_large_k_underflows_quietly_and_log_stays_finite():
    assert prob_all_real(200) == 0.0
    assert prob_all_real(200, log=True) == pytest.approx(-200 * 199 * math.log(2) / 4)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_prob_all_real_against_simulation(k):
    n = 40_000
    counts = real_counts(ginibre(k, rng=np.random.default_rng(200 + k), trials=n))
    p = prob_all_real(k)
    # Binomial standard error of the measured fraction, under the formula's p.
    assert abs(np.mean(counts == k) - p) < Z * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 1.5}, TypeError, "k must be an integer"),
        ({"k": 3, "log": 1}, TypeError, "log must be True or False"),
    ],
)
def test_prob_all_real_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        prob_all_real(**kwargs)


# --- the chapter's measured claims at small size ---------------------------------------------


def test_dominant_eigenvalue_real_probability_falls_with_k():
    # Chapter claim: P(dominant real) falls from about 0.71 (k = 2) to about 0.57 (k = 5) and
    # about 0.43 (k = 20). No closed form: compare measured fractions with binomial SEs.
    n = 8000
    rng = np.random.default_rng(300)
    p = {k: float(dominant_is_real(ginibre(k, rng=rng, trials=n)).mean()) for k in (2, 5, 20)}

    def se(q: float) -> float:
        return math.sqrt(q * (1 - q) / n)

    assert p[2] - p[5] > Z * math.hypot(se(p[2]), se(p[5]))
    assert p[5] - p[20] > Z * math.hypot(se(p[5]), se(p[20]))
    assert p[5] == pytest.approx(0.57, abs=Z * se(0.57) + 0.005)  # 0.005: the 2-digit rounding


def test_dominant_eigenvalue_real_at_k2_is_prob_all_real():
    # Chapter claim: for k = 2 the dominant eigenvalue is real exactly when both are real.
    n = 40_000
    A = ginibre(2, rng=np.random.default_rng(301), trials=n)
    p = prob_all_real(2)
    assert abs(dominant_is_real(A).mean() - p) < Z * math.sqrt(p * (1 - p) / n)


def test_spectral_radius_at_k5_exceeds_sqrt5():
    # Chapter claim: E rho(A) at k = 5 is about 2.32, not sqrt(5) = 2.236.
    A = ginibre(5, rng=np.random.default_rng(400), trials=20_000)
    rho = np.abs(np.linalg.eigvals(A)).max(axis=1)
    se = rho.std() / math.sqrt(rho.size)
    assert rho.mean() - math.sqrt(5) > Z * se
    assert rho.mean() == pytest.approx(2.32, abs=Z * se + 0.005)


def test_seed_matrix_spectral_radius_is_above_the_median_but_not_extreme():
    # Chapter claim: the seed's 2.60 sits near the 72nd percentile of 5 x 5 spectral radii.
    A = ginibre(5, rng=np.random.default_rng(401), trials=20_000)
    rho = np.abs(np.linalg.eigvals(A)).max(axis=1)
    fraction = float(np.mean(rho <= eiginit.spectral_radius(eiginit.seed_matrix())))
    assert fraction == pytest.approx(0.72, abs=Z * math.sqrt(0.72 * 0.28 / rho.size) + 0.005)


def test_largest_singular_value_at_k5_is_far_below_two_sqrt5():
    # Chapter claim: E sigma_max(A) at k = 5 is about 3.65, against 2 sqrt(5) = 4.47.
    A = ginibre(5, rng=np.random.default_rng(402), trials=20_000)
    smax = np.linalg.svd(A, compute_uv=False)[:, 0]
    se = smax.std() / math.sqrt(smax.size)
    assert smax.mean() == pytest.approx(3.65, abs=Z * se + 0.005)


# --- circular_law_cdf ------------------------------------------------------------------------


def test_circular_law_cdf_values_and_shapes():
    assert circular_law_cdf(0.5) == 0.25
    assert isinstance(circular_law_cdf(0.5), float)
    np.testing.assert_array_equal(circular_law_cdf([-1.0, 0.0, 1.0, 3.0]), [0, 0, 1, 1])
    assert circular_law_cdf(np.zeros((2, 3))).shape == (2, 3)


@given(st.floats(-5, 5), st.floats(-5, 5))
def test_circular_law_cdf_is_monotone_and_in_unit_interval(a, b):
    low, high = sorted((a, b))
    assert 0 <= circular_law_cdf(low) <= circular_law_cdf(high) <= 1


def test_circular_law_against_simulation():
    k, n = 100, 30
    W = ginibre(k, rng=np.random.default_rng(500), trials=n, scale=1 / math.sqrt(k))
    moduli = np.abs(np.linalg.eigvals(W))
    for r in (0.3, 0.5, 0.8):
        per_matrix = np.mean(moduli <= r, axis=1)
        se = per_matrix.std() / math.sqrt(n)
        # Finite-size allowance 0.01: the real axis holds a surplus of real eigenvalues (about
        # sqrt(2k/pi) of them); measured excess at r = 0.5 was about +0.004 for k = 100.
        assert abs(per_matrix.mean() - circular_law_cdf(r)) < Z * se + 0.01
    assert np.mean(moduli <= 1.0) > 0.95  # the edge: at k = 100 nearly all are inside


@pytest.mark.parametrize(
    ("r", "error"),
    [("a", TypeError), ([1j], TypeError), ([float("nan")], ValueError), (np.inf, ValueError)],
)
def test_circular_law_cdf_rejects_bad_input(r, error):
    with pytest.raises(error, match="r must"):
        circular_law_cdf(r)


# --- quarter_circle_pdf ----------------------------------------------------------------------


def _integrate(f, a, b, points=200_001):
    """Trapezoid rule (numpy >= 1.26 has no np.trapezoid); error about step^1.5 at sqrt edges."""
    x = np.linspace(a, b, points)
    y = f(x)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


def test_quarter_circle_pdf_integrates_to_one_and_has_known_moments():
    assert _integrate(quarter_circle_pdf, -1.0, 3.0) == pytest.approx(1.0, abs=1e-5)
    # Mean 8 / (3 pi); second moment 1 (the eigenvalues of W^T W have mean 1).
    mean = _integrate(lambda s: s * quarter_circle_pdf(s), -1.0, 3.0)
    assert mean == pytest.approx(8 / (3 * math.pi), abs=1e-5)
    assert _integrate(lambda s: s**2 * quarter_circle_pdf(s), -1.0, 3.0) == pytest.approx(
        1.0, abs=1e-5
    )


def test_quarter_circle_pdf_values():
    assert quarter_circle_pdf(0.0) == pytest.approx(2 / math.pi)
    assert isinstance(quarter_circle_pdf(1.0), float)
    np.testing.assert_array_equal(quarter_circle_pdf([-0.1, 2.0, 2.5]), [0.0, 0.0, 0.0])


@given(st.floats(min_value=0.01, max_value=1.99))
def test_quarter_circle_is_marchenko_pastur_ratio_one_after_x_equals_s_squared(s):
    assert quarter_circle_pdf(s) == pytest.approx(2 * s * marchenko_pastur_pdf(s**2, 1.0))


def test_quarter_circle_against_simulation():
    k, n = 100, 20
    s = np.linalg.svd(
        ginibre(k, rng=np.random.default_rng(600), trials=n, scale=1 / math.sqrt(k)),
        compute_uv=False,
    )
    per_matrix = s.mean(axis=1)
    se = per_matrix.std() / math.sqrt(n)
    # Finite-size allowance 0.005: measured mean 0.847 at k = 100 against 8 / (3 pi) = 0.849.
    assert abs(per_matrix.mean() - 8 / (3 * math.pi)) < Z * se + 0.005
    assert s.max() < 2.2  # sigma_max(A) / sqrt(k) is near 2 (1.96 measured at k = 100)
    assert s[:, 0].mean() > 1.9


@pytest.mark.parametrize(("s", "error"), [("x", TypeError), ([np.nan], ValueError)])
def test_quarter_circle_pdf_rejects_bad_input(s, error):
    with pytest.raises(error, match="s must"):
        quarter_circle_pdf(s)


# --- marchenko_pastur_pdf --------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.9])
def test_marchenko_pastur_integrates_to_one_with_mean_one_and_second_moment(ratio):
    for power, moment in ((0, 1.0), (1, 1.0), (2, 1 + ratio)):
        value = _integrate(lambda t, m=power: t**m * marchenko_pastur_pdf(t, ratio), 0.0, 5.0)
        assert value == pytest.approx(moment, abs=1e-4)


def test_marchenko_pastur_ratio_one_has_an_integrable_spike_at_zero():
    assert marchenko_pastur_pdf(0.0, 1.0) == np.inf
    assert marchenko_pastur_pdf(1e-8, 1.0) > 1e3
    # Integrate in s = sqrt(x) to absorb the 1/sqrt(x) singularity: f(x) dx = 2 s f(s^2) ds.
    total = _integrate(lambda s: 2 * s * marchenko_pastur_pdf(s**2, 1.0), 1e-9, 2.0)
    assert total == pytest.approx(1.0, abs=1e-5)


def test_marchenko_pastur_support():
    y = 0.25
    a, b = (1 - math.sqrt(y)) ** 2, (1 + math.sqrt(y)) ** 2
    values = marchenko_pastur_pdf([0.0, a, b, 3.0, -1.0], y)
    np.testing.assert_array_equal(values, 0.0)
    assert marchenko_pastur_pdf((a + b) / 2, y) > 0


def test_marchenko_pastur_against_simulation():
    # Eigenvalues of X^T X / n for X of shape (n, p): their mean is exactly 1 in expectation,
    # their mean square 1 + p/n + 1/n. Compare the fraction below the median of the law.
    n, p, trials = 400, 100, 20
    rng = np.random.default_rng(700)
    X = rng.standard_normal((trials, n, p))
    eigs = np.linalg.eigvalsh(np.swapaxes(X, 1, 2) @ X / n)
    x = np.linspace(0, 3, 30_001)
    cdf = np.cumsum(marchenko_pastur_pdf(x, p / n)) * (x[1] - x[0])
    median = float(x[np.searchsorted(cdf, 0.5)])
    per_trial = np.mean(eigs <= median, axis=1)
    se = per_trial.std() / math.sqrt(trials)
    # Finite-size allowance 0.01 (the edges are soft at p = 100); plus the grid step of the cdf.
    assert abs(per_trial.mean() - 0.5) < Z * se + 0.01
    assert eigs.min() > 0.1
    assert eigs.max() < 2.5  # support [0.25, 2.25]


@pytest.mark.parametrize(
    ("x", "ratio", "error", "match"),
    [
        (1.0, 0.0, ValueError, "ratio must be a finite number > 0"),
        (1.0, -0.5, ValueError, "ratio must be a finite number > 0"),
        (1.0, 1.5, ValueError, r"ratio = p / n must be in \(0, 1\]"),
        (1.0, "half", TypeError, "ratio must be a real number"),
        ("one", 0.5, TypeError, "x must"),
        ([1.0, np.inf], 0.5, ValueError, "x must be finite"),
    ],
)
def test_marchenko_pastur_rejects_bad_input(x, ratio, error, match):
    with pytest.raises(error, match=match):
        marchenko_pastur_pdf(x, ratio)


def test_all_laws_are_exported():
    for name in (
        "circular_law_cdf",
        "expected_real_eigenvalues",
        "ginibre",
        "marchenko_pastur_pdf",
        "prob_all_real",
        "quarter_circle_pdf",
    ):
        assert name in eiginit.__all__
        assert callable(getattr(eiginit, name))


# --- Defects found by the bad-input review (each failed before its fix) ---


def test_unsigned_sizes_beyond_int64_are_refused() -> None:
    # np.uint64(2**64 - 1) wrapped to -1 after the range check and gave 2.414.
    for fn in (expected_real_eigenvalues, prob_all_real):
        with pytest.raises(ValueError, match="at most"):
            fn(np.uint64(2**64 - 1))


def test_ginibre_refuses_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="k must be an integer <="):
        ginibre(10**30, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="overflow"):
        ginibre(10, rng=np.random.default_rng(0), scale=1.79e308)
