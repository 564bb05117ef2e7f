"""Tests of eiginit.theory.propagation: activations, quadrature, mean field and the measured pass.

Simulation tests use fixed seeds. A finite network's variance at layer L fluctuates around the
mean-field value with a log-standard deviation of about sqrt(2 L / n) (linear) to sqrt(5 L / n)
(ReLU), see the chapter "A new matrix every layer"; the tolerances below are five of those.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    ACTIVATIONS,
    VarianceRecursion,
    activation_function,
    calculate_gain,
    gaussian_expectation,
    kaiming_normal,
    lecun_normal,
    normal,
    propagate,
    torch_linear_default,
    variance_recursion,
    xavier_normal,
)

# ---------------------------------------------------------------- activations and quadrature


@pytest.mark.parametrize("name", ACTIVATIONS)
@settings(max_examples=30, deadline=None)
@given(h=st.floats(-6, 6).filter(lambda v: abs(v) > 1e-3))
def test_derivatives_match_finite_differences(name: str, h: float) -> None:
    phi, dphi = activation_function(name)
    eps = 1e-6
    numeric = (phi(np.array(h + eps)) - phi(np.array(h - eps))) / (2 * eps)
    assert float(dphi(np.array(h))) == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)


def test_activation_errors() -> None:
    # The messages of eiginit.models.network, whose activations these are.
    with pytest.raises(ValueError, match="unknown activation 'mish'; expected one of"):
        activation_function("mish")
    with pytest.raises(TypeError, match="activation must be a string"):
        activation_function(3)  # type: ignore[arg-type]


def test_quadrature_known_values() -> None:
    relu, drelu = activation_function("relu")
    q = np.array([0.0, 0.5, 1.0, 4.0])
    np.testing.assert_allclose(gaussian_expectation(lambda h: h**2, q), q, atol=1e-12)
    np.testing.assert_allclose(gaussian_expectation(lambda h: relu(h) ** 2, q), q / 2, atol=1e-12)
    np.testing.assert_allclose(gaussian_expectation(drelu, q[1:]), 0.5, atol=1e-12)
    # E|z| = sqrt(2 / pi).
    assert float(gaussian_expectation(np.abs, 1.0)) == pytest.approx(math.sqrt(2 / math.pi))


def test_selu_fixed_point() -> None:
    # Klambauer et al.'s constants make mean 0 and variance 1 a fixed point of SELU.
    selu, _ = activation_function("selu")
    assert abs(float(gaussian_expectation(selu, 1.0))) < 1e-6
    assert float(gaussian_expectation(lambda h: selu(h) ** 2, 1.0)) == pytest.approx(1.0, abs=1e-6)


def test_quadrature_against_monte_carlo() -> None:
    tanh, dtanh = activation_function("tanh")
    z = np.random.default_rng(0).standard_normal(400_000) * math.sqrt(2.0)
    for f in (lambda h: tanh(h) ** 2, lambda h: dtanh(h) ** 2):
        values = f(z)
        se = values.std() / math.sqrt(z.size)
        assert abs(float(gaussian_expectation(f, 2.0)) - values.mean()) < 5 * se


def test_quadrature_errors() -> None:
    with pytest.raises(ValueError, match="q must be a variance"):
        gaussian_expectation(np.tanh, -1.0)


# ---------------------------------------------------------------- mean field


def test_mean_field_classic_results() -> None:
    n, L = 256, 50
    widths = [n] * (L + 1)
    linear = variance_recursion(widths, [1 / n] * L, "linear")
    assert isinstance(linear, VarianceRecursion)
    np.testing.assert_allclose(linear.preactivation, 1.0)
    np.testing.assert_allclose(linear.gradient, 1.0)
    he = variance_recursion(widths, [2 / n] * L, "relu")
    np.testing.assert_allclose(he.preactivation, 2.0, rtol=1e-10)
    np.testing.assert_allclose(he.gradient, 1.0, rtol=1e-10)
    # nn.Linear's default with ReLU: each layer multiplies the variance by (1/3)(1/2) = 1/6.
    torch_default = variance_recursion(widths, [1 / (3 * n)] * L, "relu")
    ratios = torch_default.preactivation[1:] / torch_default.preactivation[:-1]
    np.testing.assert_allclose(ratios, 1 / 6, rtol=1e-10)
    # SELU with LeCun's variance sits at its fixed point q = 1.
    selu = variance_recursion(widths, [1 / n] * L, "selu")
    np.testing.assert_allclose(selu.preactivation, 1.0, atol=1e-5)


def test_mean_field_tanh_gains() -> None:
    n, L = 256, 50
    widths = [n] * (L + 1)
    plain = variance_recursion(widths, [1 / n] * L, "tanh")
    assert plain.preactivation[-1] < 0.02  # gain 1: the variance decays towards zero
    gain = variance_recursion(widths, [calculate_gain("tanh") ** 2 / n] * L, "tanh")
    assert abs(gain.preactivation[-1] - gain.preactivation[-2]) < 1e-6  # a nonzero fixed point
    assert gain.preactivation[-1] > 1.0
    assert gain.gradient[0] > 1000  # ... at which the gradient grows backwards


def test_mean_field_xavier_compromise() -> None:
    # Widths growing from 64 to 512: LeCun keeps the forward pass, fan_out the backward pass,
    # Xavier changes both, each by less than the full ratio n_L / n_0 = 8.
    widths = np.round(64 * 2 ** (np.arange(31) / 10)).astype(int).tolist()
    fan_in = np.array(widths[:-1], dtype=float)
    fan_out = np.array(widths[1:], dtype=float)
    lecun = variance_recursion(widths, 1 / fan_in, "linear")
    backward = variance_recursion(widths, 1 / fan_out, "linear")
    xavier = variance_recursion(widths, 2 / (fan_in + fan_out), "linear")
    assert lecun.preactivation[-1] == pytest.approx(1.0)
    assert lecun.gradient[0] == pytest.approx(widths[-1] / widths[0])
    assert backward.gradient[0] == pytest.approx(1.0)
    assert backward.preactivation[-1] == pytest.approx(widths[0] / widths[-1])
    assert 1.0 < xavier.gradient[0] < 8.0
    assert 1 / 8 < xavier.preactivation[-1] < 1.0


def test_mean_field_errors() -> None:
    with pytest.raises(ValueError, match="2 positive numbers"):
        variance_recursion([3, 3, 3], [0.1], "tanh")
    with pytest.raises(ValueError, match="2 positive numbers"):
        variance_recursion([3, 3, 3], [0.1, 0.0], "tanh")
    with pytest.raises(ValueError, match="at least an input and an output"):
        variance_recursion([3], [], "tanh")
    with pytest.raises(TypeError, match="widths must be a sequence"):
        variance_recursion(5, [0.1], "tanh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="each layer width must be an integer >= 1"):
        variance_recursion([3, 0], [0.1], "tanh")


# ---------------------------------------------------------------- the measured pass


@pytest.mark.parametrize(
    ("activation", "initializer", "variance", "spread"),
    [
        ("linear", lecun_normal, 1.0, 2.0),
        ("tanh", partial(kaiming_normal, nonlinearity="tanh"), 25 / 9, 2.0),
        ("relu", partial(kaiming_normal, nonlinearity="relu"), 2.0, 5.0),
        ("selu", lecun_normal, 1.0, 2.0),
    ],
)
def test_propagate_matches_mean_field(activation, initializer, variance, spread) -> None:
    n, L = 256, 8
    widths = [n] * (L + 1)
    stats = propagate(widths, initializer, activation, batch=128, rng=np.random.default_rng(1))
    theory = variance_recursion(widths, [variance / n] * L, activation)
    tolerance = 5 * math.sqrt(spread * L / n)  # five standard deviations of the log
    assert np.all(np.abs(np.log(stats.preactivation_var / theory.preactivation)) < tolerance)
    assert np.all(np.abs(np.log(stats.gradient_var / theory.gradient)) < tolerance)


def test_propagate_shapes_and_weights() -> None:
    widths = [20, 30, 10]
    stats = propagate(
        widths, xavier_normal, "tanh", batch=50, keep_activations=True, rng=np.random.default_rng(2)
    )
    assert stats.depth == 2
    assert stats.preactivation_var.shape == (2,)
    assert stats.activation_var.shape == (3,)
    assert stats.gradient_var.shape == (3,)
    assert stats.weight_gradient_var.shape == (2,)
    assert [a.shape for a in stats.activations] == [(50, 20), (50, 30), (50, 10)]
    assert stats.weight_var[0] == pytest.approx(2 / 50, rel=0.3)
    # Without keep_activations nothing large is kept.
    assert propagate(widths, xavier_normal, rng=np.random.default_rng(2)).activations == ()


def test_torch_default_relu_decays_by_six_per_layer() -> None:
    n, L = 256, 10
    stats = propagate([n] * (L + 1), torch_linear_default, "relu", rng=np.random.default_rng(3))
    per_layer = np.exp(np.mean(np.diff(np.log(stats.preactivation_var))))
    # Geometric mean of 9 ratios, each with log-sd about sqrt(5 / n): tolerance five of those.
    assert abs(math.log(per_layer * 6)) < 5 * math.sqrt(5 / n / (L - 1))


def test_propagate_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="initializer returned shape"):
        propagate([3, 4], lambda shape, rng: np.ones((4, 4)), rng=rng)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        propagate([3, 4], "xavier", rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch must be an integer >= 2"):
        propagate([3, 4], xavier_normal, batch=1, rng=rng)
    with pytest.raises(TypeError, match="keep_activations"):
        propagate([3, 4], xavier_normal, keep_activations=1, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown activation 'swish'; expected one of"):
        propagate([3, 4], xavier_normal, "swish", rng=rng)
    huge = partial(normal, std=1e6)
    with pytest.raises(ValueError, match="forward pass overflowed"):
        propagate([50] * 40, huge, "linear", rng=rng)


def test_tanh_gain_one_decays_like_one_over_2l() -> None:
    # Chapter claim: q_{l+1} ~ q_l - 2 q_l^2 near zero, so q_L ~ 1 / (2 L) for large L.
    mf = variance_recursion([256] * 201, [1 / 256] * 200, "tanh")
    assert mf.preactivation[-1] * 2 * 200 == pytest.approx(1.0, rel=0.05)


def test_weight_gradient_variance_matches_explicit_product() -> None:
    # propagate computes Var(delta^T x / B) from B x B Gram matrices; check against the product.
    rng = np.random.default_rng(4)
    stats = propagate([6, 5, 4], xavier_normal, "relu", batch=7, rng=np.random.default_rng(4))
    # Rebuild the same pass by hand, with the same stream of draws.
    x0 = rng.standard_normal((7, 6))
    w1, w2 = xavier_normal((5, 6), rng=rng), xavier_normal((4, 5), rng=rng)
    h1 = x0 @ w1.T
    x1 = np.maximum(h1, 0)
    h2 = x1 @ w2.T
    g2 = rng.standard_normal((7, 4))
    d2 = g2 * (h2 > 0)
    d1 = (d2 @ w2) * (h1 > 0)
    np.testing.assert_allclose(
        stats.weight_gradient_var, [np.var(d1.T @ x0 / 7), np.var(d2.T @ x1 / 7)]
    )
    np.testing.assert_allclose(stats.gradient_var[0], np.var(d1 @ w1))


def test_selu_with_pytorch_gain_decays() -> None:
    # Chapter claim: PyTorch's SELU gain 3/4 gives v = 0.5625 / n and the variance decays.
    mf = variance_recursion([256] * 51, [0.75**2 / 256] * 50, "selu")
    assert np.all(np.diff(mf.preactivation) < 0)
    assert mf.preactivation[-1] < 0.05


def test_relu_log_variance_drifts_down() -> None:
    # He-initialized ReLU: the mean variance is preserved, but log(q_L / q) has mean about
    # -5L/(2n) and sd about sqrt(5L/n) (Hanin & Rolnick 2018). 60 networks, n = 32, L = 32:
    # tolerance five standard errors of the mean plus 0.3 for the first-order approximation
    # (chapter 5's exercise measures about -2.8 for -2.5 at this size).
    n, L, nets = 32, 32, 60
    he = partial(kaiming_normal, nonlinearity="relu")
    logs = np.array(
        [
            math.log(
                propagate(
                    [n] * (L + 1), he, "relu", batch=4, rng=np.random.default_rng(s)
                ).preactivation_var[-1]
                / 2
            )
            for s in range(nets)
        ]
    )
    assert logs.mean() < -1.0  # a drift, not zero
    assert abs(logs.mean() + 5 * L / (2 * n)) < 5 * math.sqrt(5 * L / n / nets) + 0.3


# --- Defects found by the bad-input review (each failed before its fix) ---


@pytest.mark.parametrize(
    ("f", "error", "match"),
    [
        (None, TypeError, "f must be a callable"),
        (3, TypeError, "f must be a callable"),
        (lambda h: h[..., :3], ValueError, "shape of its argument"),
        (lambda h: np.full(h.shape, np.nan), ValueError, r"f\(h\) must be finite"),
    ],
)
def test_gaussian_expectation_checks_f(f, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        gaussian_expectation(f, 2.0)


def test_gaussian_expectation_of_a_constant() -> None:
    assert float(gaussian_expectation(lambda h: 1.0, 2.0)) == pytest.approx(1.0, rel=1e-12)


def test_gaussian_expectation_overflow_is_reported() -> None:
    with pytest.raises(ValueError, match=r"f\(h\) must be finite"):
        gaussian_expectation(lambda h: h**2, 1e308)  # h**2 overflows inside f


def test_propagate_refuses_a_complex_initializer() -> None:
    with pytest.raises(TypeError, match="complex"):
        propagate([3, 3], lambda shape, rng: np.ones(shape) * 1j, rng=np.random.default_rng(0))


def test_variance_recursion_overflow_names_the_weight_variances() -> None:
    with pytest.raises(ValueError, match="weight_variances are far too large"):
        variance_recursion([100] * 5, [1e100] * 4, "linear")
