"""Tests for eiginit.models.convolution (chapter "Convolutions": a spectrum per frequency)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    CNN1d,
    Dataset,
    calculate_fan_in_and_fan_out,
    conv1d,
    conv1d_backward,
    conv_eigenvalues,
    conv_fans,
    conv_frequency_blocks,
    conv_operator,
    conv_singular_values,
    delta_orthogonal,
    kaiming_normal,
    orthogonal,
)
from eiginit.training.engine import CNNModel, fit

SHAPES = [(1, 1, 3, 8), (3, 2, 3, 7), (2, 4, 4, 6), (5, 3, 1, 4), (4, 4, 5, 5), (2, 6, 2, 9)]


# --- the operator and its spectrum ------------------------------------------------------------


@pytest.mark.parametrize(("c_out", "c_in", "width", "n"), SHAPES)
def test_fft_singular_values_match_the_dense_svd(c_out, c_in, width, n) -> None:
    kernel = np.random.default_rng(c_out * 100 + n).standard_normal((c_out, c_in, width))
    dense = np.linalg.svd(conv_operator(kernel, n), compute_uv=False)
    fast = conv_singular_values(kernel, n)
    assert fast.shape == (min(c_out, c_in) * n,)
    assert np.all(np.diff(fast) <= 0)
    np.testing.assert_allclose(fast, dense[: fast.size], atol=1e-12 * dense[0])
    # The dense matrix has no other nonzero singular values.
    np.testing.assert_allclose(dense[fast.size :], 0.0, atol=1e-12 * dense[0])


@pytest.mark.parametrize(("c", "width", "n"), [(1, 3, 8), (1, 4, 5), (3, 3, 7), (2, 1, 4)])
def test_eigenvalues_match_the_dense_operator(c, width, n) -> None:
    kernel = np.random.default_rng(c + n).standard_normal((c, c, width))
    dense = np.linalg.eigvals(conv_operator(kernel, n))
    fast = conv_eigenvalues(kernel, n)
    # Match as multisets: every fast eigenvalue has a dense one within rounding, and vice versa.
    gap = np.abs(fast[:, None] - dense[None, :])
    assert gap.min(axis=1).max() < 1e-9
    assert gap.min(axis=0).max() < 1e-9


def test_one_channel_fourier_modes_are_eigenvectors() -> None:
    k, n = np.array([0.5, -1.0, 2.0, 0.25]), 10
    A = conv_operator(k[None, None], n)
    lam = conv_eigenvalues(k[None, None], n)
    t = np.arange(n)
    for omega in range(n):
        v = np.exp(2j * np.pi * omega * t / n)
        np.testing.assert_allclose(A @ v, lam[omega] * v, atol=1e-12)
    # With the centre tap at s = c = 1 the eigenvalue is sum_s k_s exp(2 pi i omega (s - 1) / n).
    s = np.arange(4) - 1
    expected = np.exp(2j * np.pi * np.outer(np.arange(n), s) / n) @ k
    np.testing.assert_allclose(lam, expected, atol=1e-12)


@pytest.mark.parametrize(("c_out", "c_in", "width", "n"), SHAPES)
def test_conv1d_is_the_operator_and_matches_torch(c_out, c_in, width, n) -> None:
    rng = np.random.default_rng(7)
    kernel, x = rng.standard_normal((c_out, c_in, width)), rng.standard_normal((3, c_in, n))
    y = conv1d(x, kernel)
    A = conv_operator(kernel, n)
    for b in range(3):
        np.testing.assert_allclose(y[b].reshape(-1), A @ x[b].reshape(-1), atol=1e-12)
    torch = pytest.importorskip("torch")
    left = (width - 1) // 2
    padded = torch.nn.functional.pad(torch.tensor(x), (left, width - 1 - left), mode="circular")
    expected = torch.nn.functional.conv1d(padded, torch.tensor(kernel)).numpy()
    np.testing.assert_allclose(y, expected, atol=1e-12)


@pytest.mark.parametrize(("c_out", "c_in", "width", "n"), SHAPES)
def test_conv1d_backward_is_the_transpose_and_matches_finite_differences(
    c_out, c_in, width, n
) -> None:
    rng = np.random.default_rng(11)
    kernel, x = rng.standard_normal((c_out, c_in, width)), rng.standard_normal((2, c_in, n))
    g = rng.standard_normal((2, c_out, n))
    grad_x, grad_kernel = conv1d_backward(x, kernel, g)
    A = conv_operator(kernel, n)
    for b in range(2):
        np.testing.assert_allclose(grad_x[b].reshape(-1), A.T @ g[b].reshape(-1), atol=1e-12)
    # The loss sum(g * conv1d(x, K)) is linear in K: central differences are exact up to rounding.
    eps = 1e-6
    numeric = np.zeros_like(kernel)
    for idx in np.ndindex(kernel.shape):
        step = np.zeros_like(kernel)
        step[idx] = eps
        plus, minus = conv1d(x, kernel + step), conv1d(x, kernel - step)
        numeric[idx] = np.sum(g * (plus - minus)) / (2 * eps)
    np.testing.assert_allclose(grad_kernel, numeric, rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(
    c_out=st.integers(1, 4),
    c_in=st.integers(1, 4),
    width=st.integers(1, 5),
    extra=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_frobenius_norm_is_preserved_by_the_fft(c_out, c_in, width, extra, seed) -> None:
    # Parseval: sum of sigma^2 over all frequencies = n * ||K||_F^2 = ||A||_F^2.
    n = width + extra
    kernel = np.random.default_rng(seed).standard_normal((c_out, c_in, width))
    sigma = conv_singular_values(kernel, n)
    assert np.sum(sigma**2) == pytest.approx(n * np.sum(kernel**2), rel=1e-10)


def test_frequency_blocks_of_a_real_kernel_are_conjugate_symmetric() -> None:
    kernel = np.random.default_rng(3).standard_normal((3, 2, 3))
    blocks = conv_frequency_blocks(kernel, 8)
    np.testing.assert_allclose(blocks[1:], np.conj(blocks[1:][::-1]), atol=1e-12)
    np.testing.assert_allclose(blocks[0], kernel.sum(axis=2), atol=1e-12)


# --- initialization ----------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "gain"), [((4, 4, 3), 1.0), ((6, 2, 5), 1.4), ((3, 3, 4), 0.7)])
def test_delta_orthogonal_operator_is_exactly_orthogonal_times_the_gain(shape, gain) -> None:
    kernel = delta_orthogonal(shape, gain, rng=np.random.default_rng(0))
    centre = (shape[2] - 1) // 2
    assert np.count_nonzero(np.delete(kernel, centre, axis=2)) == 0
    A = conv_operator(kernel, 7)
    np.testing.assert_allclose(A.T @ A, gain**2 * np.eye(A.shape[1]), atol=1e-13)
    np.testing.assert_allclose(conv_singular_values(kernel, 7), gain, atol=1e-13)


def test_delta_orthogonal_is_haar_at_the_centre() -> None:
    # The centre tap is eiginit.orthogonal's draw from the same generator: Haar, sign-fixed.
    kernel = delta_orthogonal((5, 3, 3), 2.0, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(
        kernel[:, :, 1], orthogonal((5, 3), 2.0, rng=np.random.default_rng(4))
    )


def test_kaiming_conv_layer_has_mean_squared_singular_value_one() -> None:
    # Variance 1 / (c w) per weight gives E|K_hat_ij(omega)|^2 = 1 / c at every frequency, so the
    # mean of sigma^2 over a layer is 1 in expectation; check over many layers within 4 SE.
    c, width, n, trials = 8, 3, 16, 300
    rng = np.random.default_rng(5)
    means = np.array(
        [
            np.mean(
                conv_singular_values(
                    kaiming_normal((c, c, width), nonlinearity="linear", rng=rng), n
                )
                ** 2
            )
            for _ in range(trials)
        ]
    )
    se = means.std(ddof=1) / np.sqrt(trials)
    assert abs(means.mean() - 1.0) < 4 * se


def test_flattened_orthogonal_kernel_is_isometric_only_on_average() -> None:
    # orthogonal() on (c, c * w) makes sum_s K_s K_s^T = I: the mean of sigma^2 over the layer is
    # exactly 1, but the frequency blocks are not orthogonal, so the values spread.
    c, width, n = 6, 3, 12
    kernel = orthogonal((c, c, width), rng=np.random.default_rng(6))
    sigma = conv_singular_values(kernel, n)
    assert np.mean(sigma**2) == pytest.approx(1.0, rel=1e-12)
    assert sigma.max() > 1.2
    assert sigma.min() < 0.8


def test_linear_stack_of_delta_orthogonal_layers_is_isometric() -> None:
    rng = np.random.default_rng(12)
    c, n = 5, 8
    J = np.broadcast_to(np.eye(c), (n, c, c))
    for _ in range(20):
        J = conv_frequency_blocks(delta_orthogonal((c, c, 3), rng=rng), n) @ J
    np.testing.assert_allclose(np.linalg.svd(J, compute_uv=False), 1.0, atol=1e-12)


def test_linear_stack_of_kaiming_layers_keeps_the_mean_square_and_spreads() -> None:
    # Each Kaiming layer keeps E sigma^2 = 1, so a product of L of them keeps it too (the mean
    # over 400 stacks is within 4 SE of 1), while the log-spread of the values grows with depth.
    rng = np.random.default_rng(13)
    c, n, trials = 6, 8, 400

    def stack(depth: int) -> np.ndarray:
        J = np.broadcast_to(np.eye(c), (n, c, c))
        for _ in range(depth):
            K = kaiming_normal((c, c, 3), nonlinearity="linear", rng=rng)
            J = conv_frequency_blocks(K, n) @ J
        return np.linalg.svd(J, compute_uv=False)

    mean_sq = np.array([np.mean(stack(4) ** 2) for _ in range(trials)])
    assert abs(mean_sq.mean() - 1.0) < 4 * mean_sq.std(ddof=1) / np.sqrt(trials)
    spread = [
        np.std(np.log(np.concatenate([stack(d).ravel() for _ in range(20)]))) for d in (2, 16)
    ]
    assert spread[1] > 2 * spread[0]


@settings(max_examples=40, deadline=None)
@given(
    c_out=st.integers(1, 5),
    c_in=st.integers(1, 5),
    width=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_reshaped_kernel_norm_bounds_the_layer_norm(c_out, c_in, width, seed) -> None:
    # ||M|| <= ||A|| <= sqrt(w) ||M|| for M the kernel reshaped to (c_out, c_in * w).
    kernel = np.random.default_rng(seed).standard_normal((c_out, c_in, width))
    layer = conv_singular_values(kernel, width + 3)[0]
    reshaped = np.linalg.norm(kernel.reshape(c_out, -1), 2)
    assert reshaped <= layer * (1 + 1e-10)
    assert layer <= np.sqrt(width) * reshaped * (1 + 1e-10)


# --- fans --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "c_in", "c_out", "width", "groups"),
    [
        ("conv", 16, 32, 3, 1),
        ("conv", 16, 32, 5, 4),
        ("conv_transpose", 64, 16, 3, 1),
        ("depthwise", 8, 16, 3, 1),
    ],
)
def test_conv_fans_match_torch(kind, c_in, c_out, width, groups) -> None:
    fans = conv_fans(kind, c_in, c_out, width, groups=groups)
    assert calculate_fan_in_and_fan_out(fans.torch_weight_shape) == (
        fans.torch_fan_in,
        fans.torch_fan_out,
    )
    torch = pytest.importorskip("torch")
    if kind == "conv_transpose":
        layer = torch.nn.ConvTranspose1d(c_in, c_out, width, groups=groups)
    else:
        layer = torch.nn.Conv1d(c_in, c_out, width, groups=c_in if kind == "depthwise" else groups)
    assert tuple(layer.weight.shape) == fans.torch_weight_shape
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert (fan_in, fan_out) == (fans.torch_fan_in, fans.torch_fan_out)


def test_conv_fans_pitfalls() -> None:
    transpose = conv_fans("conv_transpose", c_in=64, c_out=16, width=3)
    assert (transpose.torch_fan_in, transpose.true_fan_in) == (48, 192)
    assert (transpose.keras_fan_in, transpose.keras_fan_out) == (48, 192)
    depthwise = conv_fans("depthwise", c_in=32, c_out=32, width=3)
    assert (depthwise.true_fan_in, depthwise.true_fan_out) == (3, 3)
    assert (depthwise.torch_fan_in, depthwise.torch_fan_out) == (3, 96)  # fan_out 32x too big
    assert (depthwise.keras_fan_in, depthwise.keras_fan_out) == (96, 3)  # fan_in 32x too big
    plain = conv_fans("conv", c_in=16, c_out=32, width=3)
    assert plain.torch_fan_in == plain.keras_fan_in == plain.true_fan_in == 48
    assert plain.torch_fan_out == plain.keras_fan_out == plain.true_fan_out == 96


# --- the CNN -----------------------------------------------------------------------------------


def _tiny_data(rng: np.random.Generator) -> Dataset:
    x = rng.standard_normal((40, 8))
    y = (x[:, :4].sum(axis=1) > 0).astype(np.int64)
    return Dataset(x[:24], y[:24], x[32:], y[32:], 2, "tiny", x[24:32], y[24:32])


def test_cnn_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(8)
    net = CNN1d.create(
        length=8,
        depth=3,
        channels=3,
        width=3,
        n_classes=4,
        replicas=2,
        init=functools.partial(kaiming_normal, nonlinearity="relu"),
        rng=rng,
        pool_after=(1, 3),
        dtype=np.float64,
    )
    for b in net.biases:
        b += rng.standard_normal(b.shape) * 0.1
    x, y = rng.standard_normal((5, 8)), np.array([0, 1, 2, 3, 1])
    loss, grads = net.gradients(x, y)
    eps = 1e-6
    for p, g in zip(net.params, grads, strict=True):
        for idx in [tuple(rng.integers(0, d) for d in p.shape) for _ in range(4)]:
            old = p[idx]
            p[idx] = old + eps
            up = net.gradients(x, y)[0]
            p[idx] = old - eps
            down = net.gradients(x, y)[0]
            p[idx] = old
            # Only replica idx[0] depends on this parameter, through its own mean loss.
            numeric = (up - down) / (2 * eps)
            assert numeric[idx[0]] == pytest.approx(g[idx], rel=1e-4, abs=1e-7)
            others = np.delete(numeric, idx[0])
            np.testing.assert_allclose(others, 0.0, atol=1e-9)
    assert loss.shape == (2,)


def test_replicas_are_independent_networks() -> None:
    rng = np.random.default_rng(9)
    net = CNN1d.create(
        length=8,
        depth=2,
        channels=3,
        width=3,
        n_classes=2,
        replicas=3,
        init=delta_orthogonal,
        rng=rng,
        dtype=np.float64,
    )
    x = rng.standard_normal((4, 8))
    z = net.logits(x)
    single = CNN1d(
        [k[1:2] for k in net.kernels],
        [b[1:2] for b in net.biases],
        net.readout[1:2],
        net.readout_bias[1:2],
        net.pool_after,
        net.length,
    )
    np.testing.assert_allclose(single.logits(x)[0], z[1])


def test_training_lowers_the_loss_and_keeps_replicas_apart() -> None:
    rng = np.random.default_rng(10)
    data = _tiny_data(rng)
    net = CNN1d.create(
        length=8,
        depth=2,
        channels=4,
        width=3,
        n_classes=2,
        replicas=2,
        init=delta_orthogonal,
        rng=rng,
    )
    model, params = CNNModel.from_network(net)
    result = fit(model, params, data, lr=[1e-2, 1e3], seeds=[0, 1], epochs=30, batch_size=8)
    assert result.train_loss.shape == (2, 31)
    assert result.val_metric.shape == (2, 31)
    assert result.train_loss[0, -1] < 0.5 * result.train_loss[0, 1]
    assert not result.diverged[0]


# --- clear errors ------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="c_out, c_in, width"):
        conv_operator(np.ones((3, 3)), 5)
    with pytest.raises(ValueError, match="at least the kernel width"):
        conv_singular_values(np.ones((1, 1, 5)), 3)
    with pytest.raises(TypeError, match="integer"):
        conv_singular_values(np.ones((1, 1, 3)), 4.0)
    with pytest.raises(ValueError, match="finite"):
        conv_singular_values(np.full((1, 1, 3), np.nan), 4)
    with pytest.raises(ValueError, match="square"):
        conv_eigenvalues(np.ones((2, 1, 3)), 4)
    with pytest.raises(ValueError, match="c_out >= c_in"):
        delta_orthogonal((2, 3, 3), rng=rng)
    with pytest.raises(ValueError, match="c_out, c_in, width"):
        delta_orthogonal((2, 3, 3, 3), rng=rng)
    with pytest.raises(TypeError, match="Generator"):
        delta_orthogonal((3, 3, 3), rng=0)
    with pytest.raises(ValueError, match="dense operator"):
        conv_operator(np.ones((64, 64, 3)), 200)
    with pytest.raises(ValueError, match="c_in = 2"):
        conv1d(np.ones((1, 3, 5)), np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="grad_y"):
        conv1d_backward(np.ones((1, 2, 5)), np.ones((1, 2, 3)), np.ones((1, 2, 5)))
    with pytest.raises(ValueError, match="kind"):
        conv_fans("dense", 1, 1, 1)
    with pytest.raises(ValueError, match="divide"):
        conv_fans("conv", 6, 4, 3, groups=4)
    with pytest.raises(ValueError, match="multiple of c_in"):
        conv_fans("depthwise", 4, 6, 3)
    with pytest.raises(ValueError, match="even length"):
        CNN1d.create(
            length=6,
            depth=2,
            channels=2,
            width=3,
            n_classes=2,
            replicas=1,
            init=delta_orthogonal,
            rng=rng,
            pool_after=(1, 2),
        )
    net = CNN1d.create(
        length=8,
        depth=1,
        channels=2,
        width=3,
        n_classes=2,
        replicas=2,
        init=delta_orthogonal,
        rng=rng,
    )
    with pytest.raises(ValueError, match=r"\(batch, 8\)"):
        net.logits(np.ones((3, 7)))
    model, params = CNNModel.from_network(net)
    with pytest.raises(ValueError, match="lr"):
        fit(model, params, _tiny_data(rng), lr=[1e-3] * 3, seeds=[0, 1], epochs=1, batch_size=2)
    wrong = CNNModel(model.pool_after, 10)
    with pytest.raises(ValueError, match="length 8, but the network takes length 10"):
        fit(wrong, params, _tiny_data(rng), lr=1e-3, seeds=[0, 1], epochs=1, batch_size=2)


def test_from_networks_stacks_replicas_drawn_from_their_own_generators() -> None:
    def one(seed: int, **kwargs) -> CNN1d:
        options = {"length": 8, "depth": 2, "channels": 4, "width": 3, "n_classes": 2}
        return CNN1d.create(
            **{**options, **kwargs},
            init=delta_orthogonal,
            replicas=1,
            rng=np.random.default_rng(seed),
            dtype=np.float64,
        )

    model, params = CNNModel.from_networks([one(0), one(1), one(2)], dtype=np.float64)
    for r in range(3):
        alone = CNNModel.from_network(one(r), dtype=np.float64)[1]
        for a, b in zip(params, alone, strict=True):
            np.testing.assert_array_equal(a[r], b[0])
    assert (model.length, model.pool_after) == (8, ())
    with pytest.raises(ValueError, match="share one architecture"):
        CNNModel.from_networks([one(0), one(1, channels=3)])
    with pytest.raises(ValueError, match="share one architecture"):
        CNNModel.from_networks([one(0), one(1, pool_after=(1,))])
    with pytest.raises(TypeError, match=r"nets\[1\] must be an eiginit\.CNN1d"):
        CNNModel.from_networks([one(0), "net"])
    with pytest.raises(ValueError, match="at least one network"):
        CNNModel.from_networks([])
