"""Claims of chapters 5-7 (Part III), checked at small size against their closed forms.

Each test names the chapter and the claim. Simulations use fixed seeds, and their tolerances
come from a standard error computed in the test (four standard errors unless stated).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from scipy.special import digamma

import eiginit
from eiginit import MLP

# --- Chapter 5, lyapunov-exponents ---


def test_qr_estimate_is_unbiased_for_gaussian_matrices_at_any_depth() -> None:
    # W Q is Gaussian again, so (R_l)_ii ~ sigma * chi_{k-i+1} from the first layer on:
    # even a two-layer product gives Newman's exponents on average.
    rng = np.random.default_rng(51)
    k, trials, std = 4, 4000, 0.7
    est = eiginit.lyapunov_exponents(std * rng.standard_normal((trials, 2, k, k)))
    exact = eiginit.gaussian_lyapunov_spectrum(k, std)
    assert np.all(np.abs(est.exponents - exact) < 4 * est.standard_errors)


def test_qr_estimate_is_biased_at_short_depth_for_one_repeated_matrix() -> None:
    # The contrast: without rotation invariance the first layers are transients. A repeated
    # diagonal matrix started from a rotated frame shows the order-1/L start-up error.
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = rot @ np.diag([2.0, 0.5]) @ rot.T  # eigenvectors not aligned with the starting frame
    short = eiginit.lyapunov_exponents(np.stack([A] * 2)).exponents
    long = eiginit.lyapunov_exponents(np.stack([A] * 400)).exponents
    exact = np.log([2.0, 0.5])
    assert np.abs(long - exact).max() < 0.01
    assert np.abs(short - exact).max() > 10 * np.abs(long - exact).max()


@pytest.mark.parametrize("k", [4, 16])
def test_constant_rescaling_removes_the_drift_but_grows_the_mean_square(k: int) -> None:
    # sigma^2 = exp(-psi(k/2)) / 2 gives gamma_1 = 0 exactly; the mean square then grows by
    # k sigma^2 > 1 per layer. Check gamma_1 = 0 by simulating the log-norm rate.
    sigma2 = np.exp(-digamma(k / 2)) / 2
    assert eiginit.gaussian_lyapunov_spectrum(k, np.sqrt(sigma2))[0] == pytest.approx(0, abs=1e-12)
    assert k * sigma2 > 1
    rng = np.random.default_rng(53)
    trials, depth = 2000, 40
    x0 = rng.standard_normal((trials, k))
    logs = eiginit.log_norm_growth(
        x0, depth, lambda _: np.sqrt(sigma2) * rng.standard_normal((trials, k, k))
    )
    rates = (logs[:, -1] - logs[:, 0]) / depth
    assert abs(rates.mean()) < 4 * rates.std(ddof=1) / np.sqrt(trials)


# --- Chapter 6, variance-scaling ---


def test_selu_at_gain_three_quarters_has_a_stable_small_fixed_point() -> None:
    selu, dselu = eiginit.activation_function("selu")
    v = 0.75**2
    q = float(eiginit.q_star(v, 0.0, "selu"))
    assert 0.01 < q < 0.05

    def length_map(x: float) -> float:
        return v * float(eiginit.gaussian_expectation(lambda h: selu(h) ** 2, x))

    assert length_map(q) == pytest.approx(q, rel=1e-6)
    # Small variances grow (factor v * (lambda^2 + (lambda alpha)^2) / 2 > 1), unit ones shrink.
    slopes = dselu(np.array([1e-12, -1e-12]))
    small = v * (slopes[0] ** 2 + slopes[1] ** 2) / 2
    assert length_map(1e-8) / 1e-8 == pytest.approx(small, rel=1e-3)
    assert small > 1
    assert length_map(1.0) == pytest.approx(v, rel=1e-6)  # SELU keeps unit variance
    # Stable: the map's slope at q* is below one.
    eps = 1e-4 * q
    assert (length_map(q + eps) - length_map(q - eps)) / (2 * eps) < 1


def test_selu_network_at_gain_three_quarters_settles_instead_of_decaying() -> None:
    init = partial(eiginit.kaiming_normal, nonlinearity="selu")
    runs = [
        eiginit.propagate([512] * 61, init, "selu", batch=64, rng=np.random.default_rng(s))
        for s in range(6)
    ]
    q = float(eiginit.q_star(0.75**2, 0.0, "selu"))
    recursion = eiginit.variance_recursion([512] * 61, [0.75**2 / 512] * 60, "selu").preactivation
    # The recursion approaches q* from above (slowly: its slope at q* is close to one).
    assert np.all(recursion > q)
    assert recursion[-1] == pytest.approx(q, rel=0.05)
    early = np.array([r.preactivation_var[30:40].mean() for r in runs])
    late = np.array([r.preactivation_var[50:60].mean() for r in runs])
    diff = late - early
    # No downward trend between layers 30-40 and 50-60 (settled, not decaying) ...
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(runs))
    # ... and settled near q*: at width 512 one network sits about 10 % above it, a
    # finite-width bias of order 1/n, so the bound is 25 %, not a few standard errors.
    assert late.mean() == pytest.approx(q, rel=0.25)


def test_torch_default_bias_keeps_relu_variance_at_two_fifths_over_n_but_merges_inputs() -> None:
    n = 256
    q = float(eiginit.q_star(1 / 3, 1 / (3 * n), "relu"))
    assert q == pytest.approx(2 / (5 * n), rel=1e-6)
    assert float(eiginit.mean_field(1 / 3, 1 / (3 * n), "relu").chi_1) == pytest.approx(
        1 / 6, rel=1e-3
    )
    rng = np.random.default_rng(61)
    net = MLP.create(
        [n] * 31,
        "relu",
        eiginit.torch_linear_default,
        rng=rng,
        bias_std=np.sqrt(1 / (3 * n)),
    )
    fp = net.forward(rng.standard_normal((2, n)))
    h = fp.preactivations[-1]
    # Variance near q* (one network of width 256: within 30 %) ...
    assert np.mean(h**2) == pytest.approx(q, rel=0.3)
    # ... but two independent inputs end up almost the same: correlation -> 1.
    assert np.corrcoef(h[0], h[1])[0, 1] > 0.99


def test_fan_in_scaling_costs_only_the_ratio_of_end_widths_backwards() -> None:
    # He et al. 2015, sec. 2.2: the backward factors n_l / n_{l-1} telescope.
    widths = [64, 100, 37, 200, 90, 128]
    rec = eiginit.variance_recursion(widths, [1 / w for w in widths[:-1]], "linear")
    assert rec.gradient[0] / rec.gradient[-1] == pytest.approx(widths[-1] / widths[0], rel=1e-9)
    runs = [
        eiginit.propagate(
            widths, eiginit.lecun_normal, "linear", batch=32, rng=np.random.default_rng(s)
        )
        for s in range(200)
    ]
    ratio = np.array([r.gradient_var[0] / r.gradient_var[-1] for r in runs])
    se = ratio.std(ddof=1) / np.sqrt(len(ratio))
    assert abs(ratio.mean() - widths[-1] / widths[0]) < 4 * se


def test_unscaled_residual_relu_stack_doubles_the_variance_per_block() -> None:
    # x <- x + alpha * W relu(x), W He-initialized: E||x_L||^2 = (1 + alpha^2)^L ||x_0||^2.
    rng = np.random.default_rng(62)
    n, depth, trials = 128, 8, 400
    for alpha in (1.0, 0.5):
        x = rng.standard_normal((trials, n))
        start = np.sum(x**2, axis=1)
        for _ in range(depth):
            W = rng.standard_normal((trials, n, n)) * np.sqrt(2 / n)
            x = x + alpha * np.einsum("tij,tj->ti", W, np.maximum(x, 0))
        ratio = np.sum(x**2, axis=1) / start
        se = ratio.std(ddof=1) / np.sqrt(trials)
        assert abs(ratio.mean() - (1 + alpha**2) ** depth) < 4 * se


# --- Chapter 7, backward-pass ---


def _looks_linear(Qs: list[np.ndarray]) -> MLP:
    tied = tuple(np.block([[Q, -Q], [-Q, Q]]) for Q in Qs)
    width = 2 * Qs[0].shape[0]
    return MLP(tied, tuple(np.zeros(width) for _ in Qs), "relu", output_activation="relu")


def test_looks_linear_relu_network_is_exactly_isometric() -> None:
    rng = np.random.default_rng(71)
    m, depth = 12, 30
    Qs = [eiginit.orthogonal((m, m), rng=rng) for _ in range(depth)]
    net = _looks_linear(Qs)
    u0 = rng.standard_normal(m)
    x0 = np.concatenate([np.maximum(u0, 0), np.maximum(-u0, 0)])
    # The network computes u_L = Q_L ... Q_1 u_0 exactly.
    product = np.linalg.multi_dot(Qs[::-1])
    out = net(x0[None])[0]
    assert np.allclose(out[:m] - out[m:], product @ u0, atol=1e-12)
    embed = np.vstack([np.diag(1.0 * (u0 > 0)), -np.diag(1.0 * (u0 < 0))])
    readout = np.hstack([np.eye(m), -np.eye(m)])
    s = np.linalg.svd(readout @ net.jacobian(x0[None])[0] @ embed, compute_uv=False)
    assert np.allclose(s, 1.0, atol=1e-12)


def test_independent_orthogonal_relu_layers_are_not_isometric() -> None:
    # The same weights without the tying: half the units are off in every layer, and the
    # Jacobian loses rank.
    rng = np.random.default_rng(72)
    n, depth = 24, 30
    weights = tuple(np.sqrt(2) * eiginit.orthogonal((n, n), rng=rng) for _ in range(depth))
    net = MLP(weights, tuple(np.zeros(n) for _ in weights), "relu", output_activation="relu")
    s = net.jacobian_singular_values(rng.standard_normal((1, n)))[0]
    assert np.mean(s < 1e-10 * s[0]) >= 0.3
