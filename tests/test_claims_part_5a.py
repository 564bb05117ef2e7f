"""Claims of chapters 9 and 10 (Part V) at small size: the adding problem's two reference levels."""

from __future__ import annotations

import mpmath
import numpy as np

from eiginit import adding_problem


def test_adding_problem_reference_levels_are_one_sixth_and_one_twelfth():
    # Predicting the mean (1) scores Var(u1 + u2) = 1/6; remembering only the second marked
    # value and predicting u2 + 1/2 scores Var(u1) = 1/12. Tolerance: 4 standard errors.
    x, y = adding_problem(200_000, 30, rng=np.random.default_rng(12))
    values, markers = x[..., 0], x[..., 1]
    second = values[np.arange(len(x)), 29 - np.argmax(markers[:, ::-1], axis=1)]
    for prediction, level in ((np.ones(len(x)), 1 / 6), (second + 0.5, 1 / 12)):
        err = (y[:, 0] - prediction) ** 2
        assert abs(err.mean() - level) < 4 * err.std() / np.sqrt(len(err))


def test_the_second_marker_is_in_the_last_half_and_the_first_in_the_first():
    x, _ = adding_problem(5000, 31, rng=np.random.default_rng(3))
    positions = np.array([np.flatnonzero(row) for row in x[..., 1]])
    assert positions[:, 0].max() < 31 // 2 <= positions[:, 1].min()
    assert positions[:, 1].max() == 30  # the second value can be 0 steps old


def _exact_memory_curve(W: np.ndarray, w: np.ndarray, delays: int) -> np.ndarray:
    """MC_d = (W^d w)^T G^{-1} (W^d w), G = sum_j W^j w w^T W^jT, at 50 digits (mpmath)."""
    with mpmath.workdps(50):
        A, v = mpmath.matrix(W.tolist()), mpmath.matrix(w.tolist())
        krylov = [v]
        while mpmath.norm(krylov[-1]) > mpmath.mpf(10) ** -30:  # the rest adds < 1e-60 to G
            krylov.append(A * krylov[-1])
        k = len(w)
        G = mpmath.zeros(k, k)
        for u in krylov:
            G += u * u.T
        Ginv = mpmath.inverse(G)
        return np.array(
            [
                float((krylov[d].T * Ginv * krylov[d])[0])
                for d in range(min(delays, len(krylov) - 1) + 1)
            ]
        )


def test_a_linear_reservoir_holds_k_at_every_radius():
    # Chapter 9: in exact arithmetic the capacity over all delays is k whatever the radius, so
    # Jaeger's MC (delay 0 left out) is at least k - 1.
    from eiginit import echo_state_reservoir

    k = 4
    for rho in (0.3, 0.6, 0.9):
        W = echo_state_reservoir(k, rho, rng=np.random.default_rng(int(10 * rho)))
        w = np.random.default_rng(1).standard_normal(k)
        curve = _exact_memory_curve(W, w, 2000)
        assert abs(curve.sum() - k) < 1e-12  # every delay, 0 included: exactly k
        assert 0 < curve[0] <= 1  # the input just read
        assert curve[1:].sum() >= k - 1  # Jaeger's MC, delay 0 left out


def test_the_simulated_memory_curve_matches_the_exact_one_where_it_is_well_conditioned():
    from eiginit import echo_state_reservoir, memory_capacity

    W = echo_state_reservoir(4, 0.5, rng=np.random.default_rng(5))
    w = np.random.default_rng(6).standard_normal(4)
    exact = _exact_memory_curve(W, w, 8)
    measured = memory_capacity(W, w, rng=np.random.default_rng(7), steps=20_000, max_delay=8)
    np.testing.assert_allclose(measured.per_delay[:6], exact[:6], atol=0.03)


def test_the_excess_over_the_closed_form_is_positive_at_small_width():
    # Chapter 10, "What goes wrong": pooled over many stacks of width 16 and depth 4 the mean
    # square grows by more than 2^4 (the excess is positive, of order 1/n per block).
    from eiginit import mean_square_profile

    growth = np.array(
        [
            (lambda p: p[-1] / p[0])(
                mean_square_profile(
                    16, 4, 1.0, rng=np.random.default_rng(500 + i), trials=2000, batch=1
                )
            )
            for i in range(12)
        ]
    )
    se = growth.std(ddof=1) / np.sqrt(len(growth))
    assert growth.mean() - 16 > 4 * se
    assert growth.mean() < 16 * (1 + 1 / 16) ** 4  # below one full 1/n per block


def test_pre_ln_weight_gradients_are_bottom_heavy_and_post_ln_flat():
    # Chapter 10: with Kaiming branches Pre-LN's weight gradients fall from the first block to
    # the last (each branch's backward contribution is divided by the growing stream's rms);
    # Post-LN's stay level (from block 2: block 1 reads the tiny embedding).
    from eiginit import ResidualStack, layer_norm_vjp

    rng = np.random.default_rng(48)
    n, L, batch = 64, 24, 16
    x0 = 0.02 * rng.standard_normal((batch, n))
    g_out = rng.standard_normal((batch, n))
    pre = ResidualStack.create(n, L, rng=rng, norm="layer", replicas=6)
    fp = pre.forward(x0)
    g = layer_norm_vjp(fp.output, np.broadcast_to(g_out, fp.output.shape))
    pre_w = np.linalg.norm(pre.backward(fp, g).weights[:, :, 0], axis=(2, 3))  # (R, L)
    post = ResidualStack.create(n, L, rng=rng, post_norm=True, replicas=6)
    fq = post.forward(x0)
    post_w = np.linalg.norm(post.backward(fq, g_out).weights[:, :, 0], axis=(2, 3))
    assert np.all(pre_w[:, 0] > 2 * pre_w[:, -1])
    assert np.all(np.max(post_w[:, 1:], axis=1) < 2.5 * np.min(post_w[:, 1:], axis=1))
