"""Issue 24, chapters 11-13: the functions added for the errata, checked at small size."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import eiginit
from eiginit import initializers as ini
from eiginit.datasets import Dataset


def _toy_data(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((120, 8))
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).astype(int)
    return Dataset(x[:80], y[:80], x[100:], y[100:], 2, "toy", x_val=x[80:100], y_val=y[80:100])


def _toy_cnn(replicas: int, seed: int = 0) -> eiginit.CNN1d:
    return eiginit.CNN1d.create(
        length=8,
        depth=2,
        channels=4,
        width=3,
        n_classes=2,
        init=eiginit.delta_orthogonal,
        replicas=replicas,
        rng=np.random.default_rng(seed),
        pool_after=(1, 2),
        dtype=np.float64,
    )


# --- convolution: independent minibatch orders, through the one engine ------------------------


def _cnn_model(net: eiginit.CNN1d) -> tuple[eiginit.CNNModel, list[np.ndarray]]:
    return eiginit.CNNModel.from_network(net, dtype=np.float64)


def test_replica_gradients_equal_shared_gradients_when_batches_agree():
    net = _toy_cnn(3)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 8)), rng.integers(0, 2, 5)
    loss, grads = net.gradients(x, y)
    model, params = _cnn_model(net)
    loss2, grads2 = model.loss_and_gradients(params, np.stack([x] * 3), np.stack([y] * 3))
    np.testing.assert_allclose(loss2, loss, atol=1e-12)
    for g, h in zip(grads, grads2, strict=True):
        np.testing.assert_allclose(h, g, atol=1e-12)


def test_replica_gradients_match_a_finite_difference_per_replica():
    model, params = _cnn_model(_toy_cnn(2))
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((2, 4, 8)), rng.integers(0, 2, (2, 4))
    _, grads = model.loss_and_gradients(params, x, y)
    k = params[1]
    eps = 1e-6
    for r in range(2):
        k[r, 0, 1, 2] += eps
        up = model.loss_and_gradients(params, x, y)[0][r]
        k[r, 0, 1, 2] -= 2 * eps
        down = model.loss_and_gradients(params, x, y)[0][r]
        k[r, 0, 1, 2] += eps
        assert (up - down) / (2 * eps) == pytest.approx(grads[1][r, 0, 1, 2], rel=1e-5, abs=1e-9)


def test_independent_seeds_give_replicas_different_orders():
    data = _toy_data()
    model, params = _cnn_model(_toy_cnn(2))
    for p in params:  # make the two replicas identical at the start
        p[1] = p[0]
    same = eiginit.fit(model, params, data, lr=1e-2, seeds=[3, 3], epochs=2, batch_size=16)
    own = eiginit.fit(model, params, data, lr=1e-2, seeds=[3, 4], epochs=2, batch_size=16)
    np.testing.assert_array_equal(same.final_params[0][0], same.final_params[0][1])  # one order
    assert not np.allclose(own.final_params[0][0], own.final_params[0][1])  # own orders


def test_independent_training_is_reproducible_and_learns():
    data = _toy_data()
    model, params = _cnn_model(_toy_cnn(2))
    ra = eiginit.fit(model, params, data, lr=3e-2, seeds=4, epochs=6, batch_size=16)
    rb = eiginit.fit(model, params, data, lr=3e-2, seeds=4, epochs=6, batch_size=16)
    np.testing.assert_array_equal(ra.final_params[-2], rb.final_params[-2])
    assert np.all(ra.train_loss[:, -1] < ra.train_loss[:, 1])
    assert not ra.diverged.any()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -1.0}, ValueError, "lr must be"),
        ({"lr": [1e-2]}, ValueError, "lr must be"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seeds": [0, 1, 2]}, ValueError, "seeds must be"),
    ],
)
def test_independent_training_rejects_bad_input(kwargs, error, match):
    args = {"lr": 1e-2, "seeds": [0, 1], "epochs": 1, "batch_size": 8} | kwargs
    model, params = _cnn_model(_toy_cnn(2))
    with pytest.raises(error, match=match):
        eiginit.fit(model, params, _toy_data(), **args)
    with pytest.raises(TypeError, match=r"net must be an eiginit\.CNN1d"):
        eiginit.CNNModel.from_network("net")


# --- curvature: both ends of the spectrum by Lanczos ------------------------------------------


def _tiny(activation: str = "tanh", seed: int = 0):
    rng = np.random.default_rng(seed)
    net = eiginit.MLP.create([6, 5, 3], activation, ini.lecun_normal, rng=rng)
    x, y = rng.standard_normal((12, 6)), rng.integers(0, 3, 12)
    return net, x, y


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("gauss_newton", [False, True])
def test_lanczos_ends_equal_the_dense_spectrum(activation, gauss_newton):
    net, x, y = _tiny(activation)
    n = eiginit.flatten_parameters(net).size
    H = np.column_stack(
        [eiginit.hessian_vector_product(net, x, y, e, gauss_newton=gauss_newton) for e in np.eye(n)]
    )
    dense = np.linalg.eigvalsh((H + H.T) / 2)
    with threadpool_limits(limits=1):  # one summation order: ARPACK's path is then reproducible
        ends = eiginit.hessian_extreme_eigenvalues(
            net, x, y, rng=np.random.default_rng(1), tol=1e-10, gauss_newton=gauss_newton
        )
    assert ends.largest == pytest.approx(dense[-1], rel=1e-7, abs=1e-10)
    if gauss_newton:
        # Positive semi-definite with a null space of about half the parameters: the small end is
        # zero, which a relative tolerance cannot resolve (the docstring's hard case). Ritz values
        # lie inside the spectrum, and the edge of the zero cluster is small against the top.
        assert dense[0] - 1e-9 <= ends.smallest <= dense[0] + 1e-3 * dense[-1]
    else:
        assert ends.smallest == pytest.approx(dense[0], rel=1e-7, abs=1e-9)
    assert ends.products > 0


def test_lanczos_resolves_a_spectrum_with_equal_moduli_where_power_iteration_stalls():
    # A softmax-regression-like case is PSD; use tanh with large weights for a balanced spectrum.
    net, x, y = _tiny("tanh", seed=5)
    n = eiginit.flatten_parameters(net).size
    H = np.column_stack([eiginit.hessian_vector_product(net, x, y, e) for e in np.eye(n)])
    dense = np.linalg.eigvalsh((H + H.T) / 2)
    ends = eiginit.hessian_extreme_eigenvalues(net, x, y, rng=np.random.default_rng(2), tol=1e-10)
    assert ends.smallest < 0 < ends.largest
    assert (ends.smallest, ends.largest) == pytest.approx((dense[0], dense[-1]), rel=1e-6)


def test_lanczos_rejects_bad_input():
    net, x, y = _tiny()
    with pytest.raises(TypeError, match="rng"):
        eiginit.hessian_extreme_eigenvalues(net, x, y, rng=0)
    with pytest.raises(ValueError, match="tol"):
        eiginit.hessian_extreme_eigenvalues(net, x, y, rng=np.random.default_rng(0), tol=0.0)
    with pytest.raises(TypeError, match="gauss_newton"):
        eiginit.hessian_extreme_eigenvalues(net, x, y, rng=np.random.default_rng(0), gauss_newton=1)


# --- convolution: orthogonal kernels spread over the taps -------------------------------------


@pytest.mark.parametrize("shape", [(4, 4, 3), (6, 3, 4), (8, 8, 5), (2, 1, 2)])
def test_spread_orthogonal_layer_is_an_isometry_with_weight_on_every_tap(shape):
    K = eiginit.spread_orthogonal(shape, gain=1.5, rng=np.random.default_rng(0))
    assert K.shape == shape
    for n in (shape[2], 7, 12):
        A = eiginit.conv_operator(K, n)
        np.testing.assert_allclose(A.T @ A, 1.5**2 * np.eye(shape[1] * n), atol=1e-12)
    assert np.all(np.linalg.norm(K, axis=(0, 1)) > 0)


def test_spread_orthogonal_rejects_bad_shapes():
    with pytest.raises(ValueError, match="c_out >= c_in"):
        eiginit.spread_orthogonal((2, 4, 3), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="gain"):
        eiginit.spread_orthogonal((4, 4, 3), gain=0.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-D convolution"):
        eiginit.spread_orthogonal((4, 4, 3, 3), rng=np.random.default_rng(0))


def test_few_channels_spread_the_spectrum_but_lower_the_typical_maximum():
    # Chapter 11's "few channels, small blocks", at small size: 30 draws at c = 4 and c = 16.
    rng = np.random.default_rng(7)
    stats = {}
    for c in (4, 16):
        s = [
            eiginit.conv_singular_values(
                eiginit.kaiming_normal((c, c, 3), nonlinearity="linear", rng=rng), 16
            )
            for _ in range(30)
        ]
        stats[c] = (np.mean([x.max() for x in s]), np.mean([np.mean(x > 2) for x in s]))
    assert stats[4][1] > stats[16][1]  # a larger share beyond the edge at 2
    assert stats[4][0] < stats[16][0]  # yet a lower typical maximum


# --- parametrization: SP with a 1/n learning rate freezes the hidden layers --------------------


def test_sp_with_a_one_over_width_rate_keeps_logits_and_freezes_the_first_layer():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((32, 20)), rng.integers(0, 10, 32)
    widths = [32, 64, 128, 256]
    change = np.array(
        [
            eiginit.coordinate_check(
                eiginit.parametrize([20, n, n, 10], "sp", base_width=32, gain=np.sqrt(2)),
                x,
                y,
                0.05 * 32 / n,
                replicas=3,
                rng=rng,
            ).change.mean(axis=0)
            for n in widths
        ]
    )
    slope = np.polyfit(np.log(widths), np.log(change), 1)[0]
    assert slope[0] == pytest.approx(-1.5, abs=0.3)  # x_1: (1/sqrt n) * (1/n)
    assert abs(slope[2]) < 0.3  # logits: order one
