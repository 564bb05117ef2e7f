"""Tests for eiginit.models.recurrent (chapter "Recurrent networks: the same matrix again")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import orthogonal, spectral_radius
from eiginit.models.recurrent import (
    ElmanRNN,
    _noise_covariance,
    adding_problem,
    echo_state_reservoir,
    fisher_memory,
    memory_capacity,
)
from eiginit.training.engine import RNNModel, fit


def delay_line(k: int, gain: float = 1.0) -> np.ndarray:
    """The shift x -> (0, g x_1, ..., g x_{k-1}): a chain that passes the signal along."""
    return gain * np.eye(k, k=-1)


def linear_memory_closed_form(W: np.ndarray, w: np.ndarray, delays: int) -> np.ndarray:
    """Exact linear MC_d = (W^d w)^T G^{-1} W^d w, G = sum_j W^j w w^T W^jT (the Gramian)."""
    k = W.shape[0]
    G = np.zeros((k, k))
    v = w.copy()
    for _ in range(5000):
        G += np.outer(v, v)
        v = W @ v
    columns = [np.linalg.matrix_power(W, d) @ w for d in range(delays + 1)]
    P = np.array(columns).T
    return np.einsum("id,id->d", P, np.linalg.solve(G, P))


# --- echo_state_reservoir ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "radius", "density"), [(5, 0.9, 1.0), (50, 0.95, 0.1), (200, 1.2, 0.3)]
)
def test_reservoir_has_exactly_the_requested_radius(k, radius, density) -> None:
    W = echo_state_reservoir(k, radius, density=density, rng=np.random.default_rng(k))
    assert W.shape == (k, k)
    assert spectral_radius(W) == pytest.approx(radius, rel=1e-12)


def test_reservoir_density_within_binomial_error() -> None:
    k, density = 300, 0.2
    W = echo_state_reservoir(k, 0.9, density=density, rng=np.random.default_rng(1))
    fraction = np.count_nonzero(W) / k**2
    se = np.sqrt(density * (1 - density) / k**2)
    assert abs(fraction - density) < 4 * se


def test_reservoir_is_reproducible() -> None:
    a = echo_state_reservoir(20, 0.9, density=0.5, rng=np.random.default_rng(3))
    b = echo_state_reservoir(20, 0.9, density=0.5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 0.9), {}, ValueError, "k must be"),
        ((5, 0.0), {}, ValueError, "spectral_radius"),
        ((5, 0.9), {"density": 0.0}, ValueError, "density"),
        ((5, 0.9), {"density": 1.5}, ValueError, "density"),
        ((5, 0.9), {"density": "half"}, TypeError, "density"),
        ((5.0, 0.9), {}, TypeError, "k must be an integer"),
    ],
)
def test_reservoir_errors(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        echo_state_reservoir(*args, rng=np.random.default_rng(0), **kwargs)


def test_reservoir_refuses_a_matrix_without_radius() -> None:
    # A 1 x 1 reservoir whose single entry is masked out is the zero matrix.
    with pytest.raises(ValueError, match="no eigenvalue that can be rescaled"):
        echo_state_reservoir(1, 0.9, density=1e-12, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        echo_state_reservoir(5, 0.9, rng=0)


# --- memory_capacity --------------------------------------------------------------------------


def test_delay_line_remembers_exactly_its_length() -> None:
    k, steps = 6, 4000
    mc = memory_capacity(delay_line(k), np.eye(k)[0], rng=np.random.default_rng(0), steps=steps)
    np.testing.assert_allclose(mc.per_delay[:k], 1.0, atol=1e-9)
    # Beyond the line, the held-out r^2 of an unrelated input is about 1 / (steps / 2) each.
    assert np.all(mc.per_delay[k:] < 10 / (steps / 2))
    assert mc.total == pytest.approx(k - 1, abs=0.05)
    assert mc.units == k
    assert mc.delays.tolist() == list(range(2 * k + 1))


@pytest.mark.parametrize("seed", range(3))
def test_linear_memory_matches_the_gramian_closed_form(seed) -> None:
    rng = np.random.default_rng(seed)
    k, steps = 4, 20_000
    W = echo_state_reservoir(k, 0.6, rng=rng)
    w = rng.standard_normal(k)
    exact = linear_memory_closed_form(W, w, 2 * k)
    mc = memory_capacity(W, w, rng=rng, steps=steps)
    # Standard error of a squared correlation r^2 over n = steps / 2 points:
    # about 2 r (1 - r^2) / sqrt(n); plus the held-out fit's bias, about k / n.
    n = steps / 2
    tolerance = 5 * 2 * np.sqrt(exact) * (1 - exact) / np.sqrt(n) + 3 * k / n
    assert np.all(np.abs(mc.per_delay - exact) <= tolerance + 1e-9)
    assert exact.sum() == pytest.approx(k, abs=0.02)  # sum over d >= 0 of the exact values: k


@pytest.mark.parametrize("activation", ["linear", "tanh"])
@pytest.mark.parametrize("radius", [0.5, 0.95])
def test_memory_capacity_is_bounded_by_the_number_of_units(activation, radius) -> None:
    rng = np.random.default_rng(7)
    k = 20
    W = echo_state_reservoir(k, radius, rng=rng)
    mc = memory_capacity(W, 0.1 * rng.standard_normal(k), rng=rng, activation=activation)
    assert 0 < mc.total <= k
    assert mc.per_delay.sum() <= k + 0.2  # d >= 0, held-out: at most k up to sampling error
    assert np.all((mc.per_delay >= 0) & (mc.per_delay <= 1 + 1e-9))


def test_memory_grows_with_the_radius() -> None:
    rng = np.random.default_rng(11)
    k = 30
    G = rng.standard_normal((k, k))
    w = rng.standard_normal(k)
    totals = [
        memory_capacity(r * G / spectral_radius(G), w, rng=np.random.default_rng(1)).total
        for r in (0.3, 0.6, 0.9)
    ]
    assert totals[0] < totals[1] < totals[2]


@pytest.mark.parametrize(
    ("W", "w", "kwargs", "error", "match"),
    [
        (np.eye(3) * 0.5, np.ones(3), {"activation": "relu"}, ValueError, "'linear' or 'tanh'"),
        (np.eye(3) * 0.5, np.ones(3), {"washout": 2, "max_delay": 5}, ValueError, "washout"),
        (np.eye(3) * 0.5, np.ones(2), {}, ValueError, "w_in"),
        (np.eye(3) * 0.5, np.ones(3), {"steps": 5}, ValueError, "steps"),
        (np.eye(3) * 1.5, np.ones(3), {}, ValueError, "overflowed"),
        (np.ones((2, 3)), np.ones(3), {}, ValueError, "square"),
    ],
)
def test_memory_capacity_errors(W, w, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        memory_capacity(W, w, rng=np.random.default_rng(0), **kwargs)


# --- fisher_memory ----------------------------------------------------------------------------


def test_noise_covariance_solves_the_lyapunov_equation() -> None:
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    for W in (
        echo_state_reservoir(8, 0.9, rng=rng),
        delay_line(8, 3.0),
        0.99 * orthogonal((8, 8), rng=rng),
    ):
        C = _noise_covariance(W)
        expected = linalg.solve_discrete_lyapunov(W, np.eye(8))
        np.testing.assert_allclose(C, expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(W @ C @ W.T + np.eye(8), C, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["orthogonal", "symmetric", "diagonal"])
def test_normal_networks_have_total_fisher_memory_exactly_one(kind) -> None:
    rng = np.random.default_rng(4)
    k, a = 10, 0.9
    if kind == "orthogonal":
        W = a * orthogonal((k, k), rng=rng)
    elif kind == "symmetric":
        S = rng.standard_normal((k, k))
        W = a * normalize(S + S.T)
    else:
        W = np.diag(rng.uniform(-a, a, k))
    v = rng.standard_normal(k)
    v /= np.linalg.norm(v)
    max_delay = 600
    J = fisher_memory(W, v, max_delay=max_delay)
    tail = a ** (2 * (max_delay + 1)) / (1 - a**2)  # what the truncation leaves out, at most
    assert 1 - tail - 1e-9 <= J.sum() <= 1 + 1e-9


def normalize(S: np.ndarray) -> np.ndarray:
    return S / spectral_radius(S)


@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0, 4.0])
def test_delay_line_fisher_memory_closed_form(gain) -> None:
    k = 12
    J = fisher_memory(delay_line(k, gain), np.eye(k)[0], max_delay=k + 3)
    d = np.arange(k)
    exact = gain ** (2 * d) / np.array([np.sum(gain ** (2 * np.arange(j + 1))) for j in d])
    np.testing.assert_allclose(J[:k], exact, rtol=1e-10)
    np.testing.assert_allclose(J[k:], 0.0, atol=1e-12)
    if gain == 1.0:  # the harmonic number H_k
        assert J.sum() == pytest.approx(np.sum(1 / np.arange(1, k + 1)), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 8), radius=st.floats(0.05, 0.95))
def test_fisher_memory_never_exceeds_the_number_of_units(seed, k, radius) -> None:
    rng = np.random.default_rng(seed)
    W = radius * normalize(rng.standard_normal((k, k))) if k > 1 else np.array([[radius]])
    v = rng.standard_normal(k)
    v /= np.linalg.norm(v)
    J = fisher_memory(W, v, max_delay=200)
    assert np.all(J >= -1e-12)
    assert J.sum() <= k + 1e-8


@pytest.mark.parametrize(
    ("W", "v", "max_delay", "error", "match"),
    [
        (np.eye(3), np.ones(3), 5, ValueError, "spectral radius < 1"),
        (np.eye(3) * 0.5, np.ones(2), 5, ValueError, "v must have length 3"),
        (np.eye(3) * 0.5, np.ones(3), -1, ValueError, "max_delay"),
        (np.eye(3) * 0.5, np.ones(3), 2.0, TypeError, "max_delay"),
    ],
)
def test_fisher_memory_errors(W, v, max_delay, error, match) -> None:
    with pytest.raises(error, match=match):
        fisher_memory(W, v, max_delay=max_delay)


# --- the Elman network ------------------------------------------------------------------------


def small_rnn(activation: str, models: int = 2, seed: int = 0) -> ElmanRNN:
    rng = np.random.default_rng(seed)
    net = ElmanRNN.create(
        0.9 * rng.standard_normal((models, 5, 5)) / np.sqrt(5), 3, 2, rng=rng, activation=activation
    )
    net.bias[...] = 0.3 * rng.standard_normal(net.bias.shape)  # away from symmetric points
    return net


def loss_of(net: ElmanRNN, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-model loss 0.5 * sum (y - target)^2, whose output gradient is y - target."""
    return 0.5 * np.sum((net(x) - target) ** 2, axis=(1, 2))


@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid"])
def test_bptt_matches_finite_differences(activation) -> None:
    net = small_rnn(activation)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 3))
    target = rng.standard_normal((net.models, 4, 2))
    fp = net.forward(x)
    grads = net.backward(fp, fp.output - target).parameters()
    eps = 1e-6
    for param, grad in zip(net.parameters(), grads, strict=True):
        for index in np.ndindex(param.shape):
            if rng.random() > 0.3:  # a random third of the entries keeps the test quick
                continue
            old = param[index]
            param[index] = old + eps
            up = loss_of(net, x, target)
            param[index] = old - eps
            down = loss_of(net, x, target)
            param[index] = old
            numeric = (up - down)[index[0]] / (2 * eps)
            assert grad[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_linear_bptt_is_repeated_multiplication_by_the_transpose() -> None:
    rng = np.random.default_rng(5)
    W = echo_state_reservoir(6, 0.95, rng=rng)
    net = ElmanRNN.create(W, 1, 1, rng=rng, activation="linear")
    steps = 40
    fp = net.forward(np.zeros((1, steps, 1)))
    g = net.backward(fp, np.ones((1, 1, 1)))
    top = g.hidden[-1, 0, 0]
    for s in (1, 10, 40):
        expected = np.linalg.matrix_power(W.T, s) @ top
        np.testing.assert_allclose(g.hidden[steps - s, 0, 0], expected, rtol=1e-10, atol=1e-14)
    assert g.step_norms.shape == (1, steps + 1)
    assert g.step_norms[0, -1] == pytest.approx(np.linalg.norm(top))


def test_linear_forward_closed_form() -> None:
    rng = np.random.default_rng(6)
    net = small_rnn("linear", models=1)
    x = rng.standard_normal((2, 5, 3))
    W, U, b = net.w_rec[0], net.w_in[0], net.bias[0]
    h = np.zeros((2, 5))
    for t in range(5):
        h = h @ W.T + x[:, t] @ U.T + b
    np.testing.assert_allclose(net.forward(x).hidden[-1, 0], h, rtol=1e-12)


def test_models_are_independent() -> None:
    net = small_rnn("tanh", models=3)
    x = np.random.default_rng(2).standard_normal((4, 6, 3))
    together = net(x)
    for i in range(3):
        alone = ElmanRNN(*(p[i : i + 1] for p in net.parameters()), activation="tanh")
        np.testing.assert_allclose(alone(x)[0], together[i], rtol=1e-12)


def test_float32_matches_float64() -> None:
    rng = np.random.default_rng(3)
    W = rng.standard_normal((2, 8, 8)) / np.sqrt(8)
    n64 = ElmanRNN.create(W, 2, 1, rng=np.random.default_rng(0))
    n32 = ElmanRNN.create(W, 2, 1, rng=np.random.default_rng(0), dtype=np.float32)
    x = rng.standard_normal((5, 20, 2))
    assert n32(x).dtype == np.float32
    np.testing.assert_allclose(n32(x), n64(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: ElmanRNN.create(np.ones((2, 3)), 1, 1, rng=np.random.default_rng(0)),
            ValueError,
            "w_rec must have shape",
        ),
        (
            lambda: ElmanRNN.create(np.eye(3), 0, 1, rng=np.random.default_rng(0)),
            ValueError,
            "input_size",
        ),
        (
            lambda: ElmanRNN.create(
                np.eye(3), 1, 1, rng=np.random.default_rng(0), activation="elu"
            ),
            ValueError,
            "unknown activation",
        ),
        (
            lambda: ElmanRNN.create(np.eye(3), 1, 1, rng=np.random.default_rng(0), dtype=np.int64),
            ValueError,
            "dtype",
        ),
        (lambda: small_rnn("tanh")(np.ones((4, 6, 2))), ValueError, "x must have shape"),
        (lambda: small_rnn("tanh")(np.full((4, 6, 3), np.nan)), ValueError, "finite"),
        (lambda: small_rnn("tanh").backward(None, np.ones((2, 1, 2))), TypeError, "forward_pass"),
        (
            lambda: ElmanRNN(
                np.ones((1, 3, 1)),
                np.eye(3)[None],
                np.zeros((1, 2)),
                np.ones((1, 1, 3)),
                np.zeros((1, 1)),
            ),
            ValueError,
            "bias must have",
        ),
    ],
)
def test_rnn_errors(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


# --- the adding problem and training ----------------------------------------------------------


def test_adding_problem_baseline_is_one_sixth() -> None:
    x, y = adding_problem(40_000, 20, rng=np.random.default_rng(0))
    assert np.all(x[..., 1].sum(axis=1) == 2)
    assert np.all(x[:, :10, 1].sum(axis=1) == 1)  # one marker in each half
    squared = (y[:, 0] - 1.0) ** 2
    se = squared.std(ddof=1) / np.sqrt(squared.size)
    assert abs(squared.mean() - 1 / 6) < 4 * se


def test_adding_problem_second_value_alone_scores_one_twelfth() -> None:
    # The chapter's second reference level: remember only the second marked value, predict
    # u2 + 1/2, and the error is Var(u1) = 1/12. The second marker is at most T - T//2 - 1 steps
    # from the end, the first at least T - T//2 (review E9.1).
    T = 30
    x, y = adding_problem(40_000, T, rng=np.random.default_rng(1))
    marks = x[..., 1] == 1
    last = T - 1 - np.argmax(marks[:, ::-1], axis=1)
    first = np.argmax(marks, axis=1)
    assert (T - 1 - last).max() == T - T // 2 - 1 < (T - 1 - first).min()
    squared = (y[:, 0] - (x[np.arange(len(x)), last, 0] + 0.5)) ** 2
    se = squared.std(ddof=1) / np.sqrt(squared.size)
    assert abs(squared.mean() - 1 / 12) < 4 * se


def test_clipping_bounds_every_step() -> None:
    # With plain SGD (no momentum) a clipped step has length lr * clip exactly.
    net = small_rnn("tanh", models=2)
    model, params = RNNModel.from_network(net, dtype=np.float64)
    x, y = adding_problem(8, 8, rng=np.random.default_rng(0))
    x3, y2 = np.concatenate([x, x[..., :1]], axis=-1), np.repeat(y, 2, axis=1)  # fit small_rnn
    lr, clip = 0.5, 0.01
    result = fit(model, params, (x3, y2), lr=lr, seeds=[0, 1], optimizer="sgd", momentum=0.0,
                 full_batch=True, epochs=1, clip=clip, record_steps=True)  # fmt: skip
    assert np.all(result.grad_norm > clip)  # clipping had work to do on both replicas
    step = np.sqrt(
        sum(
            np.sum((a - b) ** 2, axis=tuple(range(1, a.ndim)))
            for a, b in zip(result.final_params, params, strict=True)
        )
    )
    np.testing.assert_allclose(step, lr * clip, rtol=1e-9)


def test_training_lowers_the_loss_and_flags_divergence() -> None:
    rng = np.random.default_rng(0)
    W = np.stack([0.5 * np.eye(8), 0.5 * np.eye(8)])
    net = ElmanRNN.create(W, 2, 1, rng=rng)
    model, params = RNNModel.from_network(net, dtype=np.float64)
    data = adding_problem(512, 4, rng=np.random.default_rng(1))
    result = fit(model, params, data, lr=[0.05, 1e6], seeds=[0, 1], optimizer="sgd",
                 epochs=8, batch_size=32)  # fmt: skip
    assert result.train_loss[0, -1] < 0.5 * result.train_loss[0, 0]
    assert result.diverged.tolist() == [False, True]
    assert np.all(np.isfinite(result.train_loss[0]))
    assert np.isnan(result.train_loss[1, -1])  # kept in the record, as NaN from its divergence
    np.testing.assert_array_equal(net.w_rec, W)  # the input networks are left alone


def test_rnn_model_from_networks_keeps_each_replica_from_its_own_generator() -> None:
    rngs = [np.random.default_rng(s) for s in (3, 4, 5)]
    nets = [ElmanRNN.create(orthogonal((6, 6), rng=r), 2, 1, rng=r) for r in rngs]
    model, params = RNNModel.from_networks(nets, dtype=np.float64)
    assert model.activation == "tanh"
    for r, net in enumerate(nets):
        for got, want in zip(params, net.parameters(), strict=True):
            np.testing.assert_array_equal(got[r], want[0])
    again = ElmanRNN.create(orthogonal((6, 6), rng=np.random.default_rng(4)), 2, 1,
                            rng=np.random.default_rng(4))  # fmt: skip
    np.testing.assert_array_equal(params[1][1], again.w_rec[0])  # independent of its neighbours
    x, _ = adding_problem(5, 7, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.predict(params, x)[2], nets[2](x)[0], rtol=1e-12)


@pytest.mark.parametrize(
    ("nets", "error", "match"),
    [
        ([], ValueError, "at least one network"),
        ("nets", TypeError, "list of eiginit.ElmanRNN"),
        ([np.eye(3)], TypeError, r"nets\[0\] must be an eiginit.ElmanRNN"),
        (
            [ElmanRNN.create(np.eye(3), 2, 1, rng=np.random.default_rng(0)),
             ElmanRNN.create(np.eye(4), 2, 1, rng=np.random.default_rng(0))],
            ValueError,
            "share one architecture",
        ),
        (
            [ElmanRNN.create(np.eye(3), 2, 1, rng=np.random.default_rng(0)),
             ElmanRNN.create(np.eye(3), 2, 1, rng=np.random.default_rng(0), activation="relu")],
            ValueError,
            "share one architecture",
        ),
    ],
)  # fmt: skip
def test_rnn_model_from_networks_errors(nets, error, match) -> None:
    with pytest.raises(error, match=match):
        RNNModel.from_networks(nets)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": [0.1, 0.1, 0.1]}, ValueError, "lr"),
        ({"lr": 0.1, "clip": -1.0}, ValueError, "clip"),
        ({"lr": 0.1, "optimizer": "sgd", "momentum": 1.0}, ValueError, "momentum"),
        ({"lr": 0.1, "epochs": 0}, ValueError, "epochs"),
    ],
)
def test_fit_rnn_errors(kwargs, error, match) -> None:
    net = ElmanRNN.create(np.stack([np.eye(3)] * 2), 2, 1, rng=np.random.default_rng(0))
    model, params = RNNModel.from_network(net)
    data = adding_problem(8, 4, rng=np.random.default_rng(0))
    options = {"seeds": [0, 1], "epochs": 1, "batch_size": 2} | kwargs
    with pytest.raises(error, match=match):
        fit(model, params, data, **options)


# --- claims of the chapter's framework audit and exercises ------------------------------------


@pytest.mark.parametrize("gates", [3, 4])
def test_gate_blocks_of_an_orthogonal_kernel(gates) -> None:
    n = 64
    kernel = orthogonal((gates * n, n), rng=np.random.default_rng(gates))
    blocks = kernel.reshape(gates, n, n)
    np.testing.assert_allclose(sum(B.T @ B for B in blocks), np.eye(n), atol=1e-12)
    s = np.linalg.svd(blocks, compute_uv=False)
    assert np.mean(s**2) == pytest.approx(1 / gates, rel=1e-12)  # exact, not statistical
    assert s.max() <= 1 + 1e-12
    for B in blocks:  # Schur: the eigenvalues' mean square is at most the mean s^2
        lam = np.linalg.eigvals(B)
        assert np.mean(np.abs(lam) ** 2) <= np.mean(np.linalg.svd(B, compute_uv=False) ** 2)


def test_uniform_recurrent_default_follows_the_circular_law() -> None:
    n = 400
    rng = np.random.default_rng(0)
    W = rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), (n, n))
    lam = np.abs(np.linalg.eigvals(W))
    # Circular law for variance 1/(3n): |lambda|^2 uniform on [0, 1/3], mean 1/6.
    mean_square = float(np.mean(lam**2))
    se = (1 / 3) / np.sqrt(12 * n)  # std of U(0, 1/3) over n eigenvalues (they repel: smaller)
    assert abs(mean_square - 1 / 6) < 5 * se
    assert spectral_radius(W) == pytest.approx(1 / np.sqrt(3), rel=0.08)  # finite-size edge
    assert np.linalg.norm(W, 2) == pytest.approx(2 / np.sqrt(3), rel=0.05)


def test_linear_memory_capacity_sees_only_the_eigenvalues() -> None:
    rng = np.random.default_rng(8)
    W = echo_state_reservoir(6, 0.7, rng=rng)
    lam = np.linalg.eigvals(W)
    S = rng.standard_normal((6, 6))  # another basis: same eigenvalues, other eigenvectors
    W2 = S @ W @ np.linalg.inv(S)
    w = rng.standard_normal(6)
    a = memory_capacity(W, w, rng=np.random.default_rng(1), steps=2000)
    b = memory_capacity(W2, rng.standard_normal(6), rng=np.random.default_rng(1), steps=2000)
    np.testing.assert_allclose(a.per_delay, b.per_delay, atol=1e-6)
    assert spectral_radius(W2) == pytest.approx(0.7)
    assert np.allclose(np.sort_complex(np.linalg.eigvals(W2)), np.sort_complex(lam))


@pytest.mark.parametrize("width", [1, 3])
def test_rnn_model_refuses_targets_that_would_broadcast(width) -> None:
    # A target of the wrong width broadcast against the readout without a word (or failed deep
    # in BPTT); the model names the targets instead, in training and in scoring.
    net = ElmanRNN.create(np.stack([np.eye(3)] * 2), 2, 2, rng=np.random.default_rng(0))
    model, params = RNNModel.from_network(net, dtype=np.float64)
    x, _ = adding_problem(4, 5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"targets y must have one row of 2 output\(s\)"):
        model.loss_and_gradients(params, np.stack([x, x]), np.ones((2, 4, width)))
    with pytest.raises(ValueError, match=r"targets y must have one row of 2 output\(s\)"):
        model.loss(model.predict(params, x), np.ones((4, width)))
