"""Tests for eiginit.theory.meanfield: q*, chi_1, the correlation map and the critical line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit.models.network import activation_derivative, apply_activation
from eiginit.theory.meanfield import MeanField, critical_sigma_w2, mean_field, q_star

# --- Closed forms ---


@pytest.mark.parametrize(("sw2", "sb2"), [(0.5, 0.1), (0.9, 1.0), (0.2, 0.0)])
def test_linear_network_closed_form(sw2: float, sb2: float) -> None:
    # q = sw2 q + sb2  =>  q* = sb2 / (1 - sw2); chi_1 = sw2.
    mf = mean_field(sw2, sb2, "linear")
    assert float(mf.q_star) == pytest.approx(sb2 / (1 - sw2), rel=1e-9, abs=1e-12)
    assert float(mf.chi_1) == pytest.approx(sw2, rel=1e-12)
    assert float(mf.xi_c) == pytest.approx(-1 / np.log(sw2), rel=1e-9)


@pytest.mark.parametrize(("sw2", "sb2"), [(1.0, 0.5), (1.5, 0.2), (1.9, 0.01)])
def test_relu_closed_form(sw2: float, sb2: float) -> None:
    # E[relu(sqrt(q) z)^2] = q / 2 and E[relu'(.)^2] = 1/2.
    assert q_star(sw2, sb2, "relu") == pytest.approx(sb2 / (1 - sw2 / 2), rel=1e-6)
    assert float(mean_field(sw2, sb2, "relu").chi_1) == pytest.approx(sw2 / 2, rel=1e-3)


def test_relu_without_fixed_point_is_refused() -> None:
    with pytest.raises(ValueError, match="grows without bound"):
        q_star(3.0, 0.1, "relu")


def test_tanh_q_star_is_a_fixed_point_monte_carlo() -> None:
    # Independent check of the quadrature by Monte Carlo: the standard error of the mean of
    # tanh(.)^2 over 10^6 draws is below 5e-4; allow 4 standard errors.
    sw2, sb2 = 2.0, 0.3
    q = q_star(sw2, sb2)
    z = np.random.default_rng(0).standard_normal(1_000_000)
    values = sw2 * np.tanh(np.sqrt(q) * z) ** 2 + sb2
    se = values.std() / np.sqrt(z.size)
    assert abs(values.mean() - q) < 4 * se


def test_zero_fixed_point_below_one_without_bias() -> None:
    assert q_star(0.8, 0.0) == 0.0
    assert q_star(1.2, 0.0) > 0.0
    mf = mean_field(0.8, 0.0)
    assert float(mf.chi_1) == pytest.approx(0.8)


# --- The critical line ---


def test_critical_points_of_the_literature() -> None:
    # (1, 0) by symmetry; (1.76, 0.05) in Schoenholz et al. (2017); sigma_w^2 about 1.03 at
    # sigma_b^2 = 5e-6 (REFERENCES.md, Pennington et al. 2017).
    values = critical_sigma_w2([0.0, 0.05, 5e-6])
    assert values[0] == pytest.approx(1.0, abs=1e-9)
    assert values[1] == pytest.approx(1.76, abs=0.005)
    assert values[2] == pytest.approx(1.03, abs=0.005)
    chi = mean_field(values, [0.0, 0.05, 5e-6]).chi_1
    np.testing.assert_allclose(chi, 1.0, atol=1e-9)


def test_critical_line_increases_with_bias() -> None:
    values = critical_sigma_w2(np.linspace(0, 1, 11))
    assert np.all(np.diff(values) > 0)


def simulated_chi_1(sw2: float, sb2: float, *, seed: int) -> tuple[float, float]:
    """Mean squared growth of a tangent vector per layer of a random tanh network.

    Returns the estimate and its standard error (std of the per-layer ratios / sqrt(count)).
    The input starts at the fixed point q*, so every layer is at equilibrium.
    """
    rng = np.random.default_rng(seed)
    n, depth, trials = 300, 10, 10
    h = np.sqrt(q_star(sw2, sb2)) * rng.standard_normal((trials, n))
    t = rng.standard_normal((trials, n))
    ratios = []
    for _ in range(depth):
        W = rng.standard_normal((trials, n, n)) * np.sqrt(sw2 / n)
        b = rng.standard_normal((trials, n)) * np.sqrt(sb2)
        t_new = np.einsum("tij,tj->ti", W, activation_derivative("tanh", h) * t)
        h = np.einsum("tij,tj->ti", W, apply_activation("tanh", h)) + b
        ratios.append(np.sum(t_new**2, axis=1) / np.sum(t**2, axis=1))
        t = t_new
    ratios = np.concatenate(ratios)
    return float(ratios.mean()), float(ratios.std() / np.sqrt(ratios.size))


@pytest.mark.parametrize("sb2", [0.01, 0.05, 0.3])
def test_critical_line_against_direct_simulation(sb2: float) -> None:
    # On the line, a tangent vector's squared norm neither grows nor shrinks on average;
    # 20 % off the line, it shrinks or grows as chi_1 predicts. Tolerance: 5 standard errors
    # plus 1 % for the finite width (n = 300).
    sw2_c = critical_sigma_w2(sb2)
    for factor, seed in ((1.0, 1), (0.8, 2), (1.2, 3)):
        sw2 = factor * sw2_c
        measured, se = simulated_chi_1(sw2, sb2, seed=seed)
        predicted = float(mean_field(sw2, sb2).chi_1)
        assert abs(measured - predicted) < 5 * se + 0.01 * predicted
        if factor == 1.0:
            assert abs(measured - 1.0) < 5 * se + 0.01


# --- Correlations ---


def test_chaotic_correlation_fixed_point_against_simulation() -> None:
    # Two inputs with correlation 0.5 through wide tanh networks in the chaotic phase: their
    # correlation settles at c* < 1 within a few xi_c (about 9 layers here). Each network's
    # average over layers 30..39 is one sample; the tolerance is 4 standard errors across
    # networks plus 0.01 for what is left of the transient and the finite width.
    sw2, sb2 = 3.0, 0.05
    mf = mean_field(sw2, sb2)
    assert 0 < float(mf.c_star) < 1
    rng = np.random.default_rng(4)
    n, networks = 600, 6
    z = rng.standard_normal((2, n))
    x = np.stack([z[0], 0.5 * z[0] + np.sqrt(0.75) * z[1]]) * np.sqrt(float(mf.q_star))
    samples = []
    for _ in range(networks):
        h, cs = x.copy(), []
        for layer in range(40):
            W = rng.standard_normal((n, n)) * np.sqrt(sw2 / n)
            h = apply_activation("tanh", h) @ W.T + rng.standard_normal(n) * np.sqrt(sb2)
            if layer >= 30:
                cs.append(np.sum(h[0] * h[1]) / np.sqrt(np.sum(h[0] ** 2) * np.sum(h[1] ** 2)))
        samples.append(np.mean(cs))
    se = np.std(samples, ddof=1) / np.sqrt(networks)
    assert abs(np.mean(samples) - float(mf.c_star)) < 4 * se + 0.01


def test_pair_quadrature_is_converged() -> None:
    # The default 40 x 40 nodes of the correlation map against 100 x 100, over the chaotic part
    # of the chapter's phase diagram (chi_c, not xi_c: xi_c = -1/log chi_c is ill-conditioned
    # next to the critical line, where it diverges anyway).
    sw2, sb2 = np.meshgrid(np.linspace(1.0, 4.0, 13), np.linspace(0.0, 0.5, 6))
    coarse, fine = mean_field(sw2, sb2), mean_field(sw2, sb2, pair_nodes=100)
    np.testing.assert_allclose(coarse.c_star, fine.c_star, atol=5e-3)
    np.testing.assert_allclose(coarse.chi_c, fine.chi_c, atol=5e-3)


def test_ordered_phase_has_c_star_one_and_chi_c_equal_chi_1() -> None:
    mf = mean_field([0.5, 1.2], [0.05, 0.3])
    np.testing.assert_array_equal(mf.c_star, 1.0)
    np.testing.assert_array_equal(mf.chi_c, mf.chi_1)
    assert not np.any(mf.chaotic)


def test_depth_scale_diverges_at_the_critical_line() -> None:
    sw2_c = critical_sigma_w2(0.05)
    xi = mean_field(sw2_c * np.array([0.7, 0.9, 0.99, 1.01, 1.1, 1.5]), 0.05).xi_c
    assert xi[2] > 50
    assert xi[3] > 50
    assert xi[2] > xi[1] > xi[0]
    assert xi[3] > xi[4] > xi[5]


@settings(max_examples=30, deadline=None)
@given(
    sw2=st.floats(0.1, 6.0),
    sb2=st.floats(0.0, 2.0),
    activation=st.sampled_from(["tanh", "sigmoid", "selu", "linear"]),
)
def test_mean_field_invariants(sw2: float, sb2: float, activation: str) -> None:
    if activation in ("linear", "selu") and sw2 > 0.9:
        sw2 = 0.9  # these two grow without bound above some sigma_w^2
    mf = mean_field(sw2, sb2, activation)
    assert isinstance(mf, MeanField)
    assert float(mf.q_star) >= 0
    assert float(mf.chi_1) > 0
    assert -1 <= float(mf.c_star) <= 1
    assert float(mf.xi_c) > 0


def test_broadcasting_shapes() -> None:
    sw2, sb2 = np.meshgrid(np.linspace(0.5, 3, 4), np.linspace(0, 0.3, 3))
    mf = mean_field(sw2, sb2)
    assert mf.q_star.shape == mf.chi_1.shape == mf.xi_c.shape == (3, 4)
    assert q_star([1.5, 2.0], 0.1).shape == (2,)
    assert isinstance(q_star(1.5, 0.1), float)
    assert isinstance(critical_sigma_w2(0.1), float)


# --- Bad input ---


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match=r"sigma_w2 must be finite and > 0, got -1\.0"):
        mean_field(-1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_b2 must be finite and >= 0"):
        q_star(1.0, -0.1)
    with pytest.raises(ValueError, match="sigma_b2 must be finite"):
        critical_sigma_w2(np.nan)
    with pytest.raises(TypeError, match="sigma_w2 must be a real number or array"):
        mean_field("1.0", 0.1)
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        mean_field(1.0, 0.1, "mish")
    with pytest.raises(ValueError, match="nodes must be an integer >= 2"):
        q_star(1.0, 0.1, nodes=1)
    with pytest.raises(ValueError, match="pair_nodes must be an integer >= 2"):
        mean_field(3.0, 0.1, pair_nodes=0)
    with pytest.raises(ValueError, match="bracket must be finite with 0 < low < high"):
        critical_sigma_w2(0.1, bracket=(2.0, 1.0))
    with pytest.raises(ValueError, match="bracket must be finite"):
        critical_sigma_w2(0.1, bracket=(0.05, np.inf))
    with pytest.raises(TypeError, match="bracket must be a pair of real numbers"):
        critical_sigma_w2(0.1, bracket=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not change sign"):
        critical_sigma_w2(0.1, bracket=(2.0, 3.0))


def test_pytorch_tanh_gain_is_chaotic() -> None:
    # The chapter: gain 5/3 without bias gives chi_1 about 1.21 > 1.
    assert float(mean_field(25 / 9, 0.0).chi_1) == pytest.approx(1.2098, abs=1e-3)


# --- Defects found by the bad-input review (each failed before its fix) ---

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@pytest.mark.parametrize("sw2", [0.5, 1.0, 1.5, 2.0])
def test_chi_1_at_zero_variance_is_the_limit_from_above(sw2: float) -> None:
    # q* = 0 made chi_1 use phi'(0) = 0 (the left derivative): 0 instead of sigma_w2 / 2.
    assert float(mean_field(sw2, 0.0, "relu").chi_1) == pytest.approx(sw2 / 2, rel=1e-14)
    if sw2 * (1 + 0.01**2) / 2 <= 1:  # else leaky ReLU's variance grows without bound
        leaky = float(mean_field(sw2, 0.0, "leaky_relu").chi_1)
        assert leaky == pytest.approx(sw2 * (1 + 0.01**2) / 2, rel=1e-14)


def test_he_initialization_is_critical() -> None:
    mf = mean_field(2.0, 0.0, "relu")  # the book's exercise ex-bp-relu-mean prints this
    assert float(mf.chi_1) == 1.0
    assert not bool(mf.chaotic)
    assert np.isinf(mf.xi_c)


def test_selu_chi_1_at_zero_variance() -> None:
    expected = 0.3 * SELU_SCALE**2 * (1 + SELU_ALPHA**2) / 2
    assert float(mean_field(0.3, 0.0, "selu").chi_1) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    ("activation", "expected"),
    [("relu", 2.0), ("linear", 1.0), ("leaky_relu", 2 / (1 + 0.01**2))],
)
def test_critical_sigma_w2_of_homogeneous_activations(activation: str, expected: float) -> None:
    # The bracket end sigma_w2 = 20 has no q*; this raised "grows without bound".
    np.testing.assert_allclose(critical_sigma_w2([0.0, 0.5], activation), expected, rtol=1e-12)


def test_critical_sigma_w2_of_selu_is_on_the_critical_line() -> None:
    sw2 = critical_sigma_w2(0.1, "selu")
    assert 0.05 < sw2 < 20
    assert float(mean_field(sw2, 0.1, "selu").chi_1) == pytest.approx(1.0, abs=1e-8)


def test_q_star_with_a_huge_bias_exists() -> None:
    # The upper end of the bisection stopped growing at 4**200 and reported no fixed point.
    assert q_star(1.0, 1e130) == pytest.approx(1e130, rel=1e-6)


def test_parameters_checked_clearly() -> None:
    with pytest.raises(TypeError, match="sigma_w2 must be a real number or array"):
        q_star([[], [0]], 0.0)
    with pytest.raises(ValueError, match="must broadcast together"):
        mean_field([1.0, 2.0], [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="pair_nodes"):
        mean_field(0.5, 0.1, pair_nodes="abc")  # ordered phase: checked anyway
    with pytest.raises(ValueError, match="pair_nodes"):
        mean_field(0.5, 0.1, pair_nodes=0)


def test_barely_chaotic_points_keep_a_positive_depth_scale() -> None:
    # SELU at sigma_w^2 = 0.5, no bias: q* is tiny and chi_1 exceeds 1 by 3e-4, so c* is closer
    # to 1 than the quadrature resolves; the depth scale must still be positive and large.
    mf = mean_field(0.5, 0.0, "selu")
    assert float(mf.chi_1) > 1
    assert float(mf.chi_c) < 1
    assert float(mf.xi_c) > 1000
    # Further from the line the slope at c* is resolved and below 1 too.
    far = mean_field(0.56, 0.0, "selu")
    assert float(far.chi_c) < 1
