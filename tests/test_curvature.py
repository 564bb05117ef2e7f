"""Tests for eiginit.theory.curvature (chapter 13: curvature and the learning rate)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    MLP,
    MLPModel,
    fit,
    flatten_parameters,
    hessian_top_eigenvalue,
    hessian_vector_product,
    loss_and_gradient,
    sharpness_monitor,
    unflatten_parameters,
)


def _lecun(gain: float = 1.0):
    def init(shape, *, rng):
        return gain * rng.standard_normal(shape) / np.sqrt(shape[1])

    return init


def _tiny(activation: str, seed: int = 0, gain: float = 1.3, sizes=(5, 7, 6, 4), batch=9):
    rng = np.random.default_rng(seed)
    net = MLP.create(list(sizes), activation, _lecun(gain), rng=rng, bias_std=0.3)
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    return net, x, y


def _dense(net, x, y, *, gauss_newton=False):
    n = flatten_parameters(net).size
    return np.column_stack(
        [hessian_vector_product(net, x, y, e, gauss_newton=gauss_newton) for e in np.eye(n)]
    )


def _torch_loss(net, x, y, torch):
    act = {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "selu": torch.nn.functional.selu,
        "gelu": torch.nn.functional.gelu,
        "silu": torch.nn.functional.silu,
        "linear": lambda h: h,
    }[net.activation]
    X, Y = torch.tensor(x), torch.tensor(y)
    shapes = [(W.shape, b.shape[0]) for W, b in zip(net.weights, net.biases, strict=True)]

    def loss(theta):
        start, h = 0, X
        for layer, (shape, nb) in enumerate(shapes):
            W = theta[start : start + shape[0] * shape[1]].reshape(shape)
            start += shape[0] * shape[1]
            b = theta[start : start + nb]
            start += nb
            h = h @ W.T + b
            if layer < len(shapes) - 1:
                h = act(h)
        return torch.nn.functional.cross_entropy(h, Y)

    return loss


# --- the exact Hessian-vector product ---------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "selu", "gelu", "silu"])
def test_hessian_matches_torch_autograd(activation: str) -> None:
    torch = pytest.importorskip("torch")
    net, x, y = _tiny(activation)
    loss = _torch_loss(net, x, y, torch)
    theta = torch.tensor(flatten_parameters(net))
    H = torch.autograd.functional.hessian(loss, theta).numpy()
    ours = _dense(net, x, y)
    np.testing.assert_allclose(ours, H, atol=1e-12 * np.abs(H).max())
    value, _ = loss_and_gradient(net, x, y)
    assert value == pytest.approx(float(loss(theta)), rel=1e-13)


def test_gauss_newton_matches_jacobian_form() -> None:
    net, x, y = _tiny("tanh")
    theta0 = flatten_parameters(net)
    # J by central differences of the logits (smooth in theta); H_out from the softmax.
    eps, n = 1e-6, theta0.size
    J = np.stack(
        [
            (
                unflatten_parameters(net, theta0 + eps * e)(x)
                - unflatten_parameters(net, theta0 - eps * e)(x)
            )
            / (2 * eps)
            for e in np.eye(n)
        ],
        axis=-1,
    )  # (batch, classes, n)
    z = net(x)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H_out = np.einsum("bc,cd->bcd", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    G = np.einsum("bci,bcd,bdj->ij", J, H_out, J) / len(x)
    ours = _dense(net, x, y, gauss_newton=True)
    np.testing.assert_allclose(ours, G, atol=1e-7 * np.abs(G).max())


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hessian_vector_product_matches_finite_differences_of_gradient(activation: str) -> None:
    net, x, y = _tiny(activation, seed=3)
    theta = flatten_parameters(net)
    v = np.random.default_rng(1).standard_normal(theta.size)
    eps = 1e-5
    plus = loss_and_gradient(unflatten_parameters(net, theta + eps * v), x, y)[1]
    minus = loss_and_gradient(unflatten_parameters(net, theta - eps * v), x, y)[1]
    fd = (plus - minus) / (2 * eps)
    Hv = hessian_vector_product(net, x, y, v)
    # Central differences: error O(eps^2) from the third derivative plus rounding / eps.
    np.testing.assert_allclose(Hv, fd, atol=1e-7 * np.linalg.norm(Hv))


def test_gradient_matches_finite_differences_of_loss() -> None:
    net, x, y = _tiny("tanh", seed=4)
    theta = flatten_parameters(net)
    _, grad = loss_and_gradient(net, x, y)
    rng = np.random.default_rng(2)
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        eps = 1e-6
        up = loss_and_gradient(unflatten_parameters(net, theta + eps * v), x, y)[0]
        down = loss_and_gradient(unflatten_parameters(net, theta - eps * v), x, y)[0]
        assert (up - down) / (2 * eps) == pytest.approx(grad @ v, rel=1e-6, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), activation=st.sampled_from(["tanh", "relu", "sigmoid"]))
def test_hessian_is_symmetric_and_gauss_newton_is_psd(seed: int, activation: str) -> None:
    net, x, y = _tiny(activation, seed=seed, sizes=(3, 4, 3), batch=5)
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, flatten_parameters(net).size))
    Hu, Hv = hessian_vector_product(net, x, y, u), hessian_vector_product(net, x, y, v)
    assert v @ Hu == pytest.approx(u @ Hv, rel=1e-10, abs=1e-12)
    G = _dense(net, x, y, gauss_newton=True)
    np.testing.assert_allclose(G, G.T, atol=1e-13)
    assert np.linalg.eigvalsh(G).min() >= -1e-12 * max(1.0, np.abs(G).max())


def test_full_hessian_has_negative_curvature_gauss_newton_does_not() -> None:
    net, x, y = _tiny("relu", seed=0)
    H, G = _dense(net, x, y), _dense(net, x, y, gauss_newton=True)
    assert np.linalg.eigvalsh(H).min() < -1e-3
    assert np.linalg.eigvalsh(G).min() > -1e-12
    assert np.abs(H - G).max() > 1e-3


def test_linear_softmax_top_eigenvalue_closed_form() -> None:
    # One linear layer with zero weights: softmax is uniform, H_out = (I - 11^T / C) / C for
    # every row, and H = H_out (kron) X~^T X~ / B with X~ = [X, 1]. So
    # lambda_max(H) = lambda_max(X~^T X~ / B) / C.
    rng = np.random.default_rng(5)
    C, k, B = 4, 6, 30
    net = MLP((np.zeros((C, k)),), (np.zeros(C),), "linear")
    x, y = rng.standard_normal((B, k)), rng.integers(0, C, B)
    X = np.hstack([x, np.ones((B, 1))])
    expected = np.linalg.eigvalsh(X.T @ X / B)[-1] / C
    r = hessian_top_eigenvalue(net, x, y, rng=rng, tol=1e-10, max_iter=5000)
    assert r.converged
    assert r.eigenvalue == pytest.approx(expected, rel=1e-10)


# --- power iteration on the Hessian -------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("gauss_newton", [False, True])
def test_top_eigenvalue_matches_dense_hessian(activation: str, gauss_newton: bool) -> None:
    net, x, y = _tiny(activation, seed=1)
    dense = np.linalg.eigvalsh(_dense(net, x, y, gauss_newton=gauss_newton))
    top = dense[np.argmax(np.abs(dense))]
    r = hessian_top_eigenvalue(
        net,
        x,
        y,
        rng=np.random.default_rng(0),
        tol=1e-8,
        max_iter=20_000,
        gauss_newton=gauss_newton,
    )
    assert r.converged, r.reason
    assert r.gauss_newton is gauss_newton
    assert r.eigenvalue == pytest.approx(top, rel=1e-9)
    # Backward-error meaning of the flag: some eigenvalue lies within the residual.
    assert np.min(np.abs(dense - r.eigenvalue)) <= r.residual + 1e-14
    assert r.estimates.shape == (r.iterations,)
    assert r.loss == pytest.approx(loss_and_gradient(net, x, y)[0])


def test_warm_start_and_honest_non_convergence() -> None:
    net, x, y = _tiny("tanh", seed=2)
    first = hessian_top_eigenvalue(
        net, x, y, rng=np.random.default_rng(0), tol=1e-9, max_iter=10_000
    )
    again = hessian_top_eigenvalue(
        net, x, y, rng=np.random.default_rng(1), tol=1e-6, v0=first.eigenvector
    )
    assert again.converged
    assert again.iterations == 1
    short = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), tol=1e-12, max_iter=2)
    assert not short.converged
    assert short.iterations == 2
    assert "no convergence in 2 products" in short.reason


def test_sign_of_a_dominant_negative_eigenvalue() -> None:
    # Find a network whose Hessian's eigenvalue of largest modulus is negative, then check that
    # power iteration reports it with its sign.
    for seed in range(200):
        net, x, y = _tiny("tanh", seed=seed, gain=3.0, sizes=(3, 4, 3), batch=4)
        dense = np.linalg.eigvalsh(_dense(net, x, y))
        if -dense[0] > 1.2 * dense[-1]:
            break
    else:
        pytest.skip("no network with dominant negative curvature among 200 seeds")
    r = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), tol=1e-8, max_iter=50_000)
    assert r.converged
    assert r.eigenvalue == pytest.approx(dense[0], rel=1e-8)


def test_flatten_round_trip() -> None:
    net, _, _ = _tiny("tanh")
    theta = flatten_parameters(net)
    back = unflatten_parameters(net, theta)
    for W, W2 in zip(net.weights, back.weights, strict=True):
        np.testing.assert_array_equal(W, W2)
        assert W is not W2


# --- input checks -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors() -> None:
    net, x, y = _tiny("tanh")
    n = flatten_parameters(net).size
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"eiginit\.MLP"):
        hessian_vector_product("net", x, y, np.zeros(n))
    with pytest.raises(ValueError, match=rf"shape \({n},\)"):
        hessian_vector_product(net, x, y, np.zeros(n + 1))
    with pytest.raises(ValueError, match="finite"):
        hessian_vector_product(net, x, y, np.full(n, np.nan))
    with pytest.raises(TypeError, match="real numbers"):
        hessian_vector_product(net, x, y, ["a"] * n)
    with pytest.raises(TypeError, match="gauss_newton"):
        hessian_vector_product(net, x, y, np.zeros(n), gauss_newton=1)
    with pytest.raises(ValueError, match="shape"):
        hessian_vector_product(net, x[:, :2], y, np.zeros(n))
    with pytest.raises(ValueError, match="labels"):
        hessian_vector_product(net, x, y[:-1], np.zeros(n))
    with pytest.raises(TypeError, match="Generator"):
        hessian_top_eigenvalue(net, x, y, rng=0)
    with pytest.raises(ValueError, match="tol"):
        hessian_top_eigenvalue(net, x, y, rng=rng, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        hessian_top_eigenvalue(net, x, y, rng=rng, max_iter=0)
    with pytest.raises(ValueError, match="zero vector"):
        hessian_top_eigenvalue(net, x, y, rng=rng, v0=np.zeros(n))
    big, _, _ = _tiny("linear", gain=1e200)
    with pytest.raises(ValueError, match="overflowed"):
        hessian_top_eigenvalue(big, 1e200 * x, y, rng=rng)


def test_shift_finds_the_largest_positive_eigenvalue() -> None:
    net, x, y = _tiny("tanh", seed=6, gain=2.5)
    dense = np.linalg.eigvalsh(_dense(net, x, y))
    s = 1.5 * abs(dense[0])
    r = hessian_top_eigenvalue(
        net, x, y, rng=np.random.default_rng(0), tol=1e-9, max_iter=50_000, shift=s
    )
    assert r.converged, r.reason
    assert r.eigenvalue == pytest.approx(dense[-1], rel=1e-7)
    assert r.estimates[-1] == pytest.approx(r.eigenvalue)
    with pytest.raises(TypeError, match="shift"):
        hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), shift="1")
    with pytest.raises(ValueError, match="shift"):
        hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), shift=np.inf)


# --- gradient descent: fit in full batch, with the sharpness monitor ---------------------------


def _full_batch(net, x, y, lr, steps, **options):
    model, params = MLPModel.from_networks([net], dtype=np.float64)
    run = fit(model, params, (x, y), lr=lr, seeds=0, optimizer="sgd", momentum=0.0,
              full_batch=True, epochs=steps, record_steps=True, **options)  # fmt: skip
    return model, params, run


def test_full_batch_fit_is_gradient_descent_with_warm_up_and_tracks_the_sharpness() -> None:
    net, x, y = _tiny("tanh", seed=7, sizes=(5, 8, 3), batch=30)
    first = flatten_parameters(net).copy()
    lam0 = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), tol=1e-8).eigenvalue
    steps, T, lr = 40, 10, 0.5 / lam0
    model = MLPModel.from_networks([net], dtype=np.float64)[0]
    monitor = sharpness_monitor(
        model, x, y, rng=np.random.default_rng(1), every=5, iterations=500, tol=1e-9
    )
    *_, run = _full_batch(
        net, x, y, lr, steps, lr_schedule=lambda t: min(1.0, (t + 1) / T), monitor=monitor
    )
    np.testing.assert_array_equal(flatten_parameters(net), first)  # the input is not modified
    # theta_{t+1} = theta_t - eta min(1, (t + 1) / T) grad, written out with the curvature module
    theta, losses = first.copy(), []
    for t in range(steps):
        loss, grad = loss_and_gradient(unflatten_parameters(net, theta), x, y)
        losses.append(loss)
        theta = theta - lr * min(1.0, (t + 1) / T) * grad
    np.testing.assert_allclose(run.step_loss[0], losses, rtol=1e-12)
    got = np.concatenate([p[0].ravel() for p in run.final_params[:2]])
    trained = unflatten_parameters(net, theta)
    np.testing.assert_allclose(got[: trained.weights[0].size], trained.weights[0].ravel(),
                               rtol=1e-10, atol=1e-13)  # fmt: skip
    assert not run.diverged[0]
    assert np.all(np.diff(run.step_loss[0]) < 0)  # below 2 / lambda the loss decreases here
    sharp = run.monitored["sharpness"][0]
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(sharp)), np.arange(0, steps + 1, 5))
    assert sharp[0] == pytest.approx(lam0, rel=1e-6)
    # every measurement is the top eigenvalue at that point (power iteration, fully converged)
    for t in (10, 40):
        theta_t = first.copy()
        for s in range(t):
            theta_t = theta_t - lr * min(1.0, (s + 1) / T) * loss_and_gradient(
                unflatten_parameters(net, theta_t), x, y)[1]  # fmt: skip
        top = hessian_top_eigenvalue(
            unflatten_parameters(net, theta_t),
            x,
            y,
            rng=np.random.default_rng(2),
            tol=1e-10,
            max_iter=20_000,
        )
        assert sharp[t] == pytest.approx(top.eigenvalue, rel=1e-6)  # fmt: skip


def test_full_batch_fit_reports_divergence_above_the_loss_limit() -> None:
    net, x, y = _tiny("linear", seed=8, sizes=(5, 8, 3), batch=30)
    lam0 = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(0), tol=1e-8).eigenvalue
    *_, run = _full_batch(net, x, y, 200 / lam0, 200, diverge_above=100.0)
    assert run.diverged[0]
    step = int(run.diverged_step[0])
    assert 1 < step < 200
    assert np.all(np.isfinite(run.step_loss[0, : step - 1]))
    assert np.all(np.isnan(run.step_loss[0, step - 1 :]))
    assert run.step_loss[0, step - 2] <= 100.0


def test_sharpness_monitor_selects_replicas_and_skips_non_finite_ones() -> None:
    net, x, y = _tiny("tanh", seed=3, sizes=(5, 8, 3), batch=20)
    model, params = MLPModel.from_networks([net, net, net], dtype=np.float64)
    monitor = sharpness_monitor(model, x, y, rng=np.random.default_rng(0), replicas=[0, 2],
                                iterations=2000, tol=1e-10)  # fmt: skip
    broken = [p.copy() for p in params]
    broken[0][0] = np.nan  # replica 0 is no longer finite
    values = monitor(broken)["sharpness"]
    lam = hessian_top_eigenvalue(net, x, y, rng=np.random.default_rng(1), tol=1e-10).eigenvalue
    assert np.isnan(values[0])
    assert np.isnan(values[1])  # not selected
    assert values[2] == pytest.approx(lam, rel=1e-8)
    # a warm start: the second call needs only a few products to settle again
    again = sharpness_monitor(model, x, y, rng=np.random.default_rng(0), iterations=3, tol=1e-10)
    first = again(params)["sharpness"]
    assert not np.allclose(first, lam, rtol=1e-8)  # three products from a random start: not yet
    for _ in range(400):
        later = again(params)["sharpness"]
    np.testing.assert_allclose(later, lam, rtol=1e-8)  # carried on from where it stopped


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"model": object()}, TypeError, "model must have an hvp"),
        ({"rng": 0}, TypeError, "rng"),
        ({"every": 0}, ValueError, "every must be an integer >= 1"),
        ({"iterations": 0}, ValueError, "iterations must be an integer >= 1"),
        ({"tol": 1.5}, ValueError, "tol"),
        ({"replicas": "0"}, TypeError, "replicas must be a sequence"),
        ({"replicas": [1, 1]}, ValueError, "replicas must be distinct"),
        ({"replicas": [-1]}, ValueError, "replicas must be an integer >= 0"),
    ],
)
def test_sharpness_monitor_refuses_bad_input_by_name(change, error, match) -> None:
    net, x, y = _tiny("tanh")
    model, _ = MLPModel.from_networks([net])
    args = {"model": model, "rng": np.random.default_rng(0)}
    args.update(change)
    with pytest.raises(error, match=match):
        sharpness_monitor(args.pop("model"), x, y, **args)


def test_sharpness_monitor_refuses_a_replica_beyond_the_count() -> None:
    net, x, y = _tiny("tanh")
    model, params = MLPModel.from_networks([net])
    monitor = sharpness_monitor(model, x, y, rng=np.random.default_rng(0), replicas=[3])
    with pytest.raises(ValueError, match="replicas must be below the replica count 1, got 3"):
        monitor(params)


def test_heavy_ball_threshold_on_a_quadratic() -> None:
    # The chapter's claim: heavy-ball momentum on (lambda / 2) theta^2 is stable exactly when
    # eta * lambda < 2 (1 + beta); beta = 0 is the 2 / lambda rule of gradient descent.
    for beta in (0.0, 0.5, 0.9):
        for factor, stable in ((0.99, True), (1.01, False)):
            a = factor * 2 * (1 + beta)
            theta, previous = 1.0, 1.0
            for _ in range(5000):
                theta, previous = theta - a * theta + beta * (theta - previous), theta
            assert (abs(theta) < 1.0) is stable
