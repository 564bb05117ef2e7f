"""Tests for eiginit.models.attention: attention matrices, rank collapse and the logits' scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eiginit.models.attention import (
    AttentionStackResult,
    attention_entropy,
    attention_logits,
    attention_matrix,
    attention_stack,
    logit_variance,
    rank_collapse_residual,
    second_eigenvalue_modulus,
    sigma_reparam,
    softmax_rows,
)


def draw(rng: np.random.Generator, t: int = 12, d: int = 16, d_k: int = 8, trials: int = 0):
    shape = (trials,) if trials else ()
    x = rng.standard_normal((*shape, t, d))
    w_q = rng.standard_normal((*shape, d, d_k)) / math.sqrt(d)
    w_k = rng.standard_normal((*shape, d, d_k)) / math.sqrt(d)
    return x, w_q, w_k


def test_attention_matrix_is_row_stochastic_with_perron_eigenvalue_one():
    rng = np.random.default_rng(1)
    x, w_q, w_k = draw(rng)
    a = attention_matrix(x, w_q, w_k)
    assert np.all(a > 0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(a @ np.ones(len(a)), np.ones(len(a)), atol=1e-14)
    values = np.linalg.eigvals(a)
    top = values[np.argmax(np.abs(values))]
    assert abs(top - 1.0) < 1e-12
    assert second_eigenvalue_modulus(a) < 1.0


def test_logits_match_the_formula_and_the_default_scale():
    rng = np.random.default_rng(2)
    x, w_q, w_k = draw(rng)
    expected = (x @ w_q) @ (x @ w_k).T / math.sqrt(w_q.shape[1])
    np.testing.assert_allclose(attention_logits(x, w_q, w_k), expected, rtol=1e-13)
    np.testing.assert_allclose(
        attention_logits(x, w_q, w_k, scale=1.0), expected * math.sqrt(w_q.shape[1]), rtol=1e-13
    )


def test_softmax_is_stable_for_huge_logits_and_uniform_at_zero():
    a = softmax_rows(np.array([[1e300, 0.0, -1e300]]))
    np.testing.assert_array_equal(a, [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(softmax_rows(np.zeros((3, 5))), 0.2)


def test_entropy_is_log_t_at_zero_logits_and_zero_for_one_hot_rows():
    for t in (2, 7, 64):
        assert attention_entropy(softmax_rows(np.zeros((t, t)))) == pytest.approx(math.log(t))
    assert attention_entropy(np.eye(5)[[1, 2, 0, 0, 4]]) == 0.0


def test_entropy_second_derivative_in_the_logit_scale_is_minus_the_row_variance():
    """Finite differences of H(softmax(s z)) at s = 0 against log T - s^2 var(z)/2."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((9, 9))
    h = 1e-3

    def entropy(s: float) -> float:
        return attention_entropy(softmax_rows(s * z))

    second = (entropy(h) - 2 * entropy(0.0) + entropy(-h)) / h**2
    assert second == pytest.approx(-z.var(axis=1).mean(), rel=1e-4)
    first = (entropy(h) - entropy(-h)) / (2 * h)
    assert abs(first) < 10 * h**2  # zero slope; the central difference errs by O(h^2)


def test_fixed_matrix_collapses_at_the_rate_of_lambda2():
    """res(A^L X) / res(A^(L-1) X) -> |lambda_2|, the power-iteration rate."""
    rng = np.random.default_rng(4)
    x, w_q, w_k = draw(rng, t=10, d=12, d_k=12)
    a = attention_matrix(x, w_q, w_k, scale=2.0)  # a slow enough rate to measure
    lam2 = second_eigenvalue_modulus(a)
    residuals = []
    y = x.copy()
    for _ in range(12):
        y = a @ y
        residuals.append(rank_collapse_residual(y))
    ratio = residuals[-1] / residuals[-2]
    assert ratio == pytest.approx(lam2, rel=0.05)
    values = np.linalg.eigvals(a)
    third = np.sort(np.abs(values))[-3]
    # The ratio's error is of the order (|lambda_3| / |lambda_2|)^L: allow a few times that.
    assert abs(ratio - lam2) / lam2 < 5 * (third / lam2) ** 10 + 1e-6


def test_second_eigenvalue_of_a_two_by_two_stochastic_matrix():
    # [[1-p, p], [q, 1-q]] has eigenvalues 1 and 1 - p - q.
    for p, q in [(0.1, 0.2), (0.5, 0.5), (0.9, 0.8)]:
        a = np.array([[1 - p, p], [q, 1 - q]])
        assert second_eigenvalue_modulus(a) == pytest.approx(abs(1 - p - q), abs=1e-14)
    stack = np.array([[[0.5, 0.5], [0.2, 0.8]], [[1.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_allclose(second_eigenvalue_modulus(stack), [0.3, 1.0], atol=1e-14)


def test_small_logit_scale_first_order_lambda2():
    """A = J + (s/T) Z P + O(s^2), so |lambda_2| ~ s rho(P Z P) / T; for iid Gaussian Z this is
    about s sqrt(T - 1) / T (the circular law, chapter 4)."""
    rng = np.random.default_rng(5)
    t = 40
    z = rng.standard_normal((t, t))
    p = np.eye(t) - 1.0 / t
    s = 1e-4
    predicted = s * np.max(np.abs(np.linalg.eigvals(p @ z @ p))) / t
    assert second_eigenvalue_modulus(softmax_rows(s * z)) == pytest.approx(predicted, rel=1e-3)
    zs = rng.standard_normal((400, t, t))
    mean = np.mean(second_eigenvalue_modulus(softmax_rows(s * zs))) / s
    assert mean == pytest.approx(math.sqrt(t - 1) / t, rel=0.1)


def test_logit_variance_closed_form_against_measurement():
    """Off-diagonal logits: variance d_k unscaled, 1 with 1/sqrt(d_k) (unit tokens, 1/d weights)."""
    rng = np.random.default_rng(6)
    d, t, trials = 32, 8, 3000
    off = ~np.eye(t, dtype=bool)
    for d_k in (1, 4, 16):
        x, w_q, w_k = draw(rng, t=t, d=d, d_k=d_k, trials=trials)
        for scale in (None, 1.0):
            logits = attention_logits(x, w_q, w_k, scale=scale)[:, off]
            predicted = logit_variance(d_k, scale=scale)
            # Independent pairs: one per trial; its variance's standard error is about
            # sqrt((kurtosis - 1) / trials) * variance, and the kurtosis stays below 10 here.
            measured = logits[:, 0].var()
            assert measured == pytest.approx(predicted, rel=5 * math.sqrt(9 / trials))
    assert logit_variance(64) == 1.0
    assert logit_variance(64, scale=1.0) == 64.0
    assert logit_variance(4, scale=0.5, sigma_q2=2.0) == pytest.approx(4.0)


def test_rank_collapse_residual_is_scale_free_and_bounded():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5))
    r = rank_collapse_residual(x)
    assert 0 < r <= 1
    assert rank_collapse_residual(3.5 * x) == pytest.approx(r)
    assert rank_collapse_residual(x - x.mean(axis=0)) == pytest.approx(1.0)
    one = np.ones((6, 1)) @ rng.standard_normal((1, 5))
    assert rank_collapse_residual(one) < 1e-15
    stack = rank_collapse_residual(np.stack([x, one]))
    assert stack.shape == (2,)


def test_attention_stack_pure_collapses_and_residual_keeps_more():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 12, 16))
    pure = attention_stack(x, 4, rng=np.random.default_rng(9), d_k=8)
    skip = attention_stack(x, 4, rng=np.random.default_rng(9), d_k=8, alpha=1.0)
    assert isinstance(pure, AttentionStackResult)
    assert pure.residual.shape == (20, 5)
    assert pure.lambda2.shape == pure.entropy.shape == (20, 4)
    np.testing.assert_allclose(pure.residual[:, 0], rank_collapse_residual(x))
    assert np.median(pure.residual[:, -1]) < 1e-3
    assert np.median(skip.residual[:, -1]) > 0.1
    assert np.all(pure.entropy <= math.log(12) + 1e-12)


def test_attention_stack_is_reproducible_and_matches_a_manual_layer():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 6, 4))
    one = attention_stack(x, 1, rng=np.random.default_rng(11), d_k=2)
    gen = np.random.default_rng(11)
    w_q = gen.standard_normal((3, 4, 2)) / 2.0
    w_k = gen.standard_normal((3, 4, 2)) / 2.0
    a = attention_matrix(x, w_q, w_k)
    np.testing.assert_allclose(one.residual[:, 1], rank_collapse_residual(a @ x))
    np.testing.assert_allclose(one.lambda2[:, 0], second_eigenvalue_modulus(a))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: softmax_rows("abc"), TypeError, "logits"),
        (lambda: softmax_rows([1.0, 2.0]), ValueError, "logits"),
        (lambda: softmax_rows([[np.nan, 1.0]]), ValueError, "logits"),
        (
            lambda: attention_logits(np.ones((3, 4)), np.ones((5, 2)), np.ones((4, 2))),
            ValueError,
            "w_q and w_k",
        ),
        (
            lambda: attention_logits(np.ones((3, 4)), np.ones((4, 2)), np.ones((4, 3))),
            ValueError,
            "d_k",
        ),
        (
            lambda: attention_logits(np.ones((3, 4)), np.ones((4, 2)), np.ones((4, 2)), scale=0.0),
            ValueError,
            "scale",
        ),
        (lambda: second_eigenvalue_modulus([[0.5, 0.6], [0.5, 0.5]]), ValueError, "rows summing"),
        (lambda: second_eigenvalue_modulus([[1.5, -0.5], [0.5, 0.5]]), ValueError, "non-negative"),
        (lambda: second_eigenvalue_modulus(np.ones((2, 3)) / 3), ValueError, "square"),
        (lambda: second_eigenvalue_modulus([[1.0]]), ValueError, "2 x 2"),
        (lambda: attention_entropy([[0.5, 0.6]]), ValueError, "rows summing"),
        (lambda: rank_collapse_residual(np.zeros((3, 2))), ValueError, "all zeros"),
        (lambda: logit_variance(0), ValueError, "d_k"),
        (lambda: logit_variance(2.0), TypeError, "d_k"),
        (
            lambda: attention_stack(np.ones((3, 4)), 0, rng=np.random.default_rng(0)),
            ValueError,
            "depth",
        ),
        (
            lambda: attention_stack(np.ones((1, 4)), 1, rng=np.random.default_rng(0)),
            ValueError,
            "2 tokens",
        ),
        (lambda: attention_stack(np.ones((3, 4)), 1, rng=0), TypeError, "rng"),
        (
            lambda: attention_stack(
                np.ones((3, 4)), 1, rng=np.random.default_rng(0), logit_scale=-1.0
            ),
            ValueError,
            "logit_scale",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_sigma_reparam_one_step_never_overestimates_and_converges():
    rng = np.random.default_rng(12)
    w = rng.standard_normal((20, 12))
    s = np.linalg.svd(w, compute_uv=False)
    u = rng.standard_normal(20)
    estimates = []
    for _ in range(300):
        step = sigma_reparam(w, 2.0, u)
        u = step.u
        estimates.append(step.sigma)
    estimates = np.array(estimates)
    assert np.all(estimates <= s[0] * (1 + 1e-12))
    assert np.all(np.diff(estimates) >= -1e-12)  # the Rayleigh quotient of W^T W only rises
    assert estimates[-1] == pytest.approx(s[0], rel=1e-10)
    assert np.linalg.norm(step.weight, 2) == pytest.approx(2.0, rel=1e-10)
    # The estimate's error falls like (sigma_2 / sigma_1)^(4n) (a Rayleigh quotient).
    err = s[0] - estimates
    k = 10
    assert err[k + 5] / err[k] == pytest.approx((s[1] / s[0]) ** 20, rel=0.3)


def test_sigma_reparam_is_exact_from_the_top_singular_vector():
    rng = np.random.default_rng(13)
    w = rng.standard_normal((7, 9))
    u_svd, s, _ = np.linalg.svd(w)
    step = sigma_reparam(w, 0.5, u_svd[:, 0])
    assert step.sigma == pytest.approx(s[0], rel=1e-12)
    assert np.linalg.norm(step.weight, 2) == pytest.approx(0.5, rel=1e-12)
    assert abs(abs(step.u @ u_svd[:, 0]) - 1) < 1e-12


def test_sigma_reparam_tracks_a_slowly_changing_matrix_with_one_step_per_call():
    rng = np.random.default_rng(14)
    w0, e = rng.standard_normal((2, 16, 16)) / 4.0
    u = rng.standard_normal(16)
    errors = []
    for t in range(200):
        w = (1 + t / 50) * w0 + (t / 200) * e
        step = sigma_reparam(w, 1.0, u)
        u = step.u
        errors.append(1 - step.sigma / np.linalg.norm(w, 2))
    errors = np.array(errors)
    assert np.all(errors >= -1e-12)
    assert errors[-50:].max() < 1e-3 < errors[0]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: sigma_reparam(np.ones((3, 2)), 1.0, np.ones(2)), ValueError, "u must have"),
        (lambda: sigma_reparam(np.ones((3, 2)), 0.0, np.ones(3)), ValueError, "gamma"),
        (lambda: sigma_reparam(np.ones(3), 1.0, np.ones(3)), ValueError, "w must"),
        (
            lambda: sigma_reparam(np.zeros((3, 2)), 1.0, np.ones(3)),
            ValueError,
            "w must not be zero",
        ),
        (
            lambda: sigma_reparam(np.diag([1.0, 0.0]), 1.0, np.array([0.0, 1.0])),
            ValueError,
            "orthogonal",
        ),
        (lambda: sigma_reparam(np.eye(2), 1.0, "ab"), TypeError, "u"),
    ],
)
def test_sigma_reparam_refuses_bad_input(call, error, words):
    with pytest.raises(error, match=words):
        call()
