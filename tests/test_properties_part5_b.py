"""Property tests of Part V's residual, convolution and parametrization modules (hypothesis).

Each property is a promise of a docstring, checked on random shapes and over magnitudes from
about 1e-300 to 1e300:

- the FFT route to a convolution's singular values equals the SVD of its dense matrix;
- a delta-orthogonal kernel makes the layer exactly orthogonal times its gain;
- batch and layer normalization are what their formula says at every scale, hence
  scale-invariant once the variance dwarfs eps; the layer norm's gradient scales as 1/c;
- training R replicas at once equals R separate one-replica runs from the same draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import eiginit as E

seeds = st.integers(0, 2**32 - 1)
EPS = 1e-5  # the normalizations' eps (torch's default)
fast = settings(max_examples=30, deadline=None, derandomize=True)
slow = settings(max_examples=6, deadline=None, derandomize=True)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- convolution spectrum --------------------------------------------------------------------
@st.composite
def kernels(draw: Any) -> tuple[np.ndarray, int]:
    c_out, c_in, width = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    n = draw(st.integers(width, 9))
    exponent = draw(st.integers(-1000, 1000))
    K = rng(draw(seeds)).standard_normal((c_out, c_in, width))
    return np.ldexp(K, exponent), n


@fast
@given(kernels())
def test_fft_singular_values_equal_the_dense_operators(case: tuple[np.ndarray, int]) -> None:
    K, n = case
    fft = E.conv_singular_values(K, n)
    dense = np.linalg.svd(E.conv_operator(K, n), compute_uv=False)
    assert fft.shape == (min(K.shape[:2]) * n,)
    assert np.all(np.diff(fft) <= 0)  # largest first
    # The dense matrix has max(c_out, c_in) * n - min(...) * n further zero singular values.
    np.testing.assert_allclose(fft, dense[: fft.size], rtol=0, atol=1e-12 * dense[0])
    np.testing.assert_allclose(dense[fft.size :], 0.0, atol=1e-12 * dense[0])


@fast
@given(
    seeds,
    st.integers(1, 4),
    st.integers(0, 3),
    st.integers(1, 5),
    st.integers(0, 4),
    st.integers(-300, 300),
)
def test_delta_orthogonal_layer_is_orthogonal_times_the_gain(
    seed: int, c_in: int, extra: int, width: int, n_extra: int, exponent: int
) -> None:
    gain = 2.0**exponent * 1.5
    K = E.delta_orthogonal((c_in + extra, c_in, width), gain, rng=rng(seed))
    n = width + n_extra
    A = E.conv_operator(K, n)
    np.testing.assert_allclose(A.T @ A, gain**2 * np.eye(c_in * n), rtol=0, atol=1e-13 * gain**2)
    np.testing.assert_allclose(E.conv_singular_values(K, n), gain, rtol=1e-13)
    taps = np.delete(K, (width - 1) // 2, axis=2)
    assert not np.any(taps)  # every tap but the centre is zero


# --- normalization at every scale ------------------------------------------------------------
@st.composite
def activations(draw: Any) -> np.ndarray:
    rows, cols = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    x = rng(draw(seeds)).standard_normal((rows, cols)) + draw(st.sampled_from([0.0, 3.0, -50.0]))
    return x


def _reference(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """(c x - mean) / sqrt(var(c x) + eps) for c = 2**k, written so nothing over- or underflows."""
    centred = x - x.mean(axis=axis, keepdims=True)
    var = (centred**2).mean(axis=axis, keepdims=True)
    if k >= 0:  # = (x - mean) / sqrt(var + eps / c^2)
        return centred / np.sqrt(var + np.ldexp(EPS, -2 * k))
    return np.ldexp(centred, k) / np.sqrt(np.ldexp(var, 2 * k) + EPS)


@fast
@given(activations(), st.integers(-1000, 1000), st.sampled_from(["batch", "layer"]))
def test_normalization_follows_its_formula_at_every_scale(x: np.ndarray, k: int, kind: str) -> None:
    axis = 0 if kind == "batch" else 1
    norm = E.batch_norm if kind == "batch" else E.layer_norm
    got = norm(np.ldexp(x, k))
    np.testing.assert_allclose(got, _reference(x, k, axis), rtol=1e-12, atol=1e-300)


@fast
@given(activations(), st.integers(40, 1000), st.integers(40, 1000), st.sampled_from([0, 1]))
def test_normalization_is_scale_invariant_once_eps_is_negligible(
    x: np.ndarray, k: int, j: int, axis: int
) -> None:
    """For c = 2^k >= 2^40 eps / (c^2 var) is below 1e-17: N(2^k x) = N(2^j x)."""
    assume(np.min(x.var(axis=axis)) > 1e-6)
    norm = E.batch_norm if axis == 0 else E.layer_norm
    np.testing.assert_allclose(norm(np.ldexp(x, k)), norm(np.ldexp(x, j)), rtol=1e-13, atol=1e-15)


@fast
@given(activations(), st.integers(-100, 100), st.sampled_from([0, 1]))
def test_normalization_in_float32_at_every_scale(x: np.ndarray, k: int, axis: int) -> None:
    norm = E.batch_norm if axis == 0 else E.layer_norm
    x32 = np.ldexp(x, k).astype(np.float32)
    got = norm(x32)
    assert got.dtype == np.float32
    exact = _reference(np.ldexp(x32.astype(np.float64), -k), k, axis)
    # float32 rounds the mean to about 6e-8 |x|: z carries that error divided by the spread.
    spread = np.ldexp(np.sqrt(x.var(axis=axis, keepdims=True) + np.ldexp(EPS, -2 * k)), k)
    bound = 4e-7 * np.max(np.abs(x32), axis=axis, keepdims=True) / spread * x.shape[axis]
    assert np.all(np.abs(got - exact) <= bound + 4e-7 * np.abs(exact))


@fast
@given(activations(), seeds, st.integers(-1000, 1000))
def test_layer_norm_vjp_is_the_formula_at_every_scale(x: np.ndarray, seed: int, k: int) -> None:
    g = rng(seed).standard_normal(x.shape)
    centred = x - x.mean(axis=1, keepdims=True)
    var = (centred**2).mean(axis=1, keepdims=True)
    # With c = 2^k: s = 1/sqrt(c^2 var + eps), z = c (x - mean) s, J^T g = s (g - g_bar -
    # z mean(g z)); for k >= 0 written with c s = 1/sqrt(var + eps/c^2) to keep it finite.
    if k >= 0:
        cs = 1 / np.sqrt(var + np.ldexp(EPS, -2 * k))
        z = centred * cs
        inner = g - g.mean(1, keepdims=True) - z * (g * z).mean(1, keepdims=True)
        expected, s = np.ldexp(cs * inner, -k), np.ldexp(cs, -k)
    else:
        s = 1 / np.sqrt(np.ldexp(var, 2 * k) + EPS)
        z = np.ldexp(centred, k) * s
        expected = s * (g - g.mean(1, keepdims=True) - z * (g * z).mean(1, keepdims=True))
    got = E.layer_norm_vjp(np.ldexp(x, k), g)
    size = s * np.max(np.abs(g)) * x.shape[1]  # the size of the terms before they cancel
    assert np.all(np.abs(got - expected) <= 1e-13 * size)
    # A shift of the input changes nothing: the gradient has zero mean over the features.
    assert np.all(np.abs(got.sum(axis=1, keepdims=True)) <= 1e-13 * size * x.shape[1])


@fast
@given(activations(), seeds, st.integers(40, 1000))
def test_layer_norm_vjp_scales_as_one_over_c(x: np.ndarray, seed: int, k: int) -> None:
    """Scale invariance N(c x) = N(x) (eps negligible) gives J(c x) = J(x) / c."""
    assume(np.min(x.var(axis=1)) > 1e-6)
    g = rng(seed).standard_normal(x.shape)
    got = np.ldexp(E.layer_norm_vjp(np.ldexp(x, k), g), k - 40)
    reference = E.layer_norm_vjp(np.ldexp(x, 40), g)
    size = 2.0**-40 / np.sqrt(np.min(x.var(axis=1))) * np.max(np.abs(g)) * x.shape[1]
    assert np.all(np.abs(got - reference) <= 1e-13 * size)


# --- replicas are separate runs --------------------------------------------------------------
def _data(seed: int, features: int, classes: int) -> E.Dataset:
    x = rng(seed).standard_normal((60, features))
    y = (np.argmax(x[:, :classes], axis=1)).astype(int)
    return E.Dataset(x[:40], y[:40], x[50:], y[50:], classes, "toy", x[40:50], y[40:50])


@slow
@given(
    seeds, st.integers(1, 3), st.lists(st.sampled_from([1e-3, 1e-2, 3e-2]), min_size=3, max_size=3)
)
def test_fit_cnn_replicas_equal_separate_runs(seed: int, depth: int, lrs: list[float]) -> None:
    data = _data(seed, 8, 3)
    net = E.CNN1d.create(
        length=8,
        depth=depth,
        channels=3,
        width=3,
        n_classes=3,
        replicas=3,
        init=E.delta_orthogonal,
        rng=rng(seed),
        pool_after=(1,),
        dtype=np.float64,
    )
    model, params = E.CNNModel.from_network(net, dtype=np.float64)
    orders = [seed + 1, seed + 2, seed + 3]
    together = E.fit(model, params, data, lr=lrs, seeds=orders, epochs=2, batch_size=16)
    for r in range(3):
        single = [p[r : r + 1] for p in params]
        alone = E.fit(model, single, data, lr=lrs[r], seeds=orders[r], epochs=2, batch_size=16)
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        np.testing.assert_array_equal(together.val_metric[r], alone.val_metric[0])
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-10, atol=1e-12)


@slow
@given(seeds, st.lists(st.sampled_from([1e-3, 1e-2, 1e-1]), min_size=3, max_size=3))
def test_fit_residual_replicas_equal_separate_runs(seed: int, lrs: list[float]) -> None:
    """fit with ResidualModel: every replica (its own seed) equals its run alone."""
    data = _data(seed, 5, 3)
    net = E.residual_classifier(
        ["kaiming", "fixup", "rezero"],
        inputs=5,
        classes=3,
        width=6,
        depth=2,
        rng=rng(seed),
        dtype=np.float64,
    )
    model, params = E.ResidualModel.from_network(net, dtype=np.float64)
    orders = [seed + 1, seed + 2, seed + 3]
    together = E.fit(model, params, data, lr=lrs, seeds=orders, epochs=2, batch_size=16)
    for r in range(3):
        single = E.ResidualModel(model.template, model.train_alpha[r : r + 1])
        alone = E.fit(
            single,
            [p[r : r + 1].copy() for p in params],
            data,
            lr=lrs[r],
            seeds=[orders[r]],
            epochs=2,
            batch_size=16,
        )
        np.testing.assert_allclose(together.train_loss[r], alone.train_loss[0], rtol=1e-12)
        np.testing.assert_array_equal(together.val_metric[r], alone.val_metric[0])
        for a, b in zip(together.final_params, alone.final_params, strict=True):
            np.testing.assert_allclose(a[r], b[0], rtol=1e-12, atol=1e-14)


@slow
@given(seeds, st.lists(st.sampled_from([0.01, 0.1, 0.5, 1e6]), min_size=3, max_size=3))
def test_train_replicas_equal_separate_runs(seed: int, lrs: list[float]) -> None:
    """Replay train_replicas' draws and run every replica alone through loss_and_gradients."""
    data = _data(seed, 4, 3)
    scales = E.parametrize([4, 8, 8, 3])
    batch, epochs = 8, 2
    result = E.train_replicas(
        scales, data, lrs, epochs=epochs, batch_size=batch, rng=rng(seed), dtype=np.float64
    )
    draws = rng(seed)
    weights = E.init_weights(scales, replicas=3, rng=draws)
    orders = [np.argsort(draws.random((3, 40)), axis=1) for _ in range(epochs)]
    limit = 100 * np.log(3)
    for r in range(3):
        W = [w[r : r + 1].copy() for w in weights]
        losses, alive = [], True
        for order in orders:
            total = 0.0
            for b in range(40 // batch):
                idx = order[r, b * batch : (b + 1) * batch]
                with np.errstate(all="ignore"):
                    try:
                        loss, grads = E.loss_and_gradients(W, data.x_train[idx], data.y_train[idx])
                    except ValueError:  # overflow: this replica diverged
                        loss, grads = np.array([np.inf]), None
                if not (np.isfinite(loss[0]) and loss[0] < limit):
                    alive = False
                    break
                total += loss[0]
                for w, g, s in zip(W, grads, scales, strict=True):
                    w -= lrs[r] * s.lr_multiplier * g
            if not alive:
                break
            losses.append(total / (40 // batch))
        assert bool(result.diverged[r]) == (not alive)
        np.testing.assert_allclose(result.train_loss[r, : len(losses)], losses, rtol=1e-12)
        if alive:
            np.testing.assert_allclose(result.train_loss[r], losses, rtol=1e-12)
            logits = E.forward_replicas(W, data.x_val)[-1][0]
            accuracy = np.mean(np.argmax(logits, axis=1) == data.y_val)
            assert result.val_accuracy[r] == pytest.approx(accuracy)
