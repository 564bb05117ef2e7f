"""Tests for eiginit.models.parametrization (chapter "Width, the spectral condition and muP")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eiginit import (
    PARAMETRIZATIONS,
    ROLES,
    Dataset,
    MuPModel,
    coordinate_check,
    fit,
    forward_replicas,
    init_weights,
    layer_scale,
    loss_and_gradients,
    parametrize,
)

D_IN, N_CLASSES, BASE = 40, 10, 64


def _norms(scales, rng):
    """The spectral norm of one draw of every layer's initial weights."""
    weights = init_weights(scales, replicas=1, rng=rng)
    return np.array([np.linalg.norm(W[0], 2) for W in weights])


# --- the table of layer_scale --------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("role", ROLES)
def test_mup_equals_sp_at_the_base_width(role, optimizer) -> None:
    fans = {"input": (D_IN, BASE), "hidden": (BASE, BASE), "output": (BASE, N_CLASSES)}[role]
    sp = layer_scale(*fans, role, "sp", optimizer=optimizer, gain=1.5)
    mup = layer_scale(*fans, role, "mup", base_width=BASE, optimizer=optimizer, gain=1.5)
    assert mup.init_std == pytest.approx(sp.init_std)
    assert mup.lr_multiplier == pytest.approx(sp.lr_multiplier) == 1.0


@pytest.mark.parametrize(
    ("role", "fans", "std", "sgd", "adam"),
    [  # the unnormalized form (base width 1): n = 512 is the width, 40 and 10 are fixed
        ("input", (40, 512), 1 / math.sqrt(40), 512, 1.0),
        ("hidden", (512, 512), 1 / math.sqrt(512), 1.0, 1 / 512),
        ("output", (512, 10), 1 / 512, 1 / 512, 1 / 512),
    ],
)
def test_mup_table_without_base_width(role, fans, std, sgd, adam) -> None:
    assert layer_scale(*fans, role).init_std == pytest.approx(std)
    assert layer_scale(*fans, role).lr_multiplier == pytest.approx(sgd)
    assert layer_scale(*fans, role, optimizer="adam").lr_multiplier == pytest.approx(adam)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 10_000), base=st.integers(1, 512), fixed=st.integers(1, 100))
def test_mup_scales_are_powers_of_the_width_multiplier(n, base, fixed) -> None:
    r = n / base
    sp_out = layer_scale(n, fixed, "output", "sp")
    mup_out = layer_scale(n, fixed, "output", base_width=base)
    assert mup_out.init_std == pytest.approx(sp_out.init_std / math.sqrt(r))
    assert mup_out.lr_multiplier == pytest.approx(1 / r)
    assert layer_scale(fixed, n, "input", base_width=base).lr_multiplier == pytest.approx(r)
    assert layer_scale(n, n, "hidden", base_width=base).lr_multiplier == 1.0


def test_parametrize_assigns_roles_and_gain() -> None:
    scales = parametrize([D_IN, 128, 128, 128, N_CLASSES], "sp", gain=math.sqrt(2))
    assert [s.role for s in scales] == ["input", "hidden", "hidden", "output"]
    assert scales[0].init_std == pytest.approx(math.sqrt(2 / D_IN))
    assert scales[-1].init_std == pytest.approx(1 / math.sqrt(128))  # the readout is linear


# --- the spectral condition at several widths ------------------------------------------------


@pytest.mark.parametrize("width", [64, 256, 1024])
def test_initial_norms_follow_the_random_matrix_edge(width) -> None:
    # ||W|| of a Gaussian matrix is within a few percent of s (sqrt(m) + sqrt(n)) at these sizes
    # (Gordon's bound; the Tracy-Widom correction is O(n^(-2/3)) relative).
    scales = parametrize([D_IN, width, width, N_CLASSES], base_width=BASE)
    norms = _norms(scales, np.random.default_rng(width))
    edge = np.array([s.expected_norm for s in scales])
    np.testing.assert_allclose(norms, edge, rtol=0.12)
    assert np.all(norms <= edge * 1.03)


def test_mup_satisfies_the_spectral_condition_and_sp_does_not() -> None:
    widths = [64, 256, 1024]
    ratio = {}
    for p in PARAMETRIZATIONS:
        rows = []
        for n in widths:
            scales = parametrize([D_IN, n, n, N_CLASSES], p, base_width=BASE)
            norms = _norms(scales, np.random.default_rng(n))
            rows.append(norms / np.array([s.spectral_target for s in scales]))
        ratio[p] = np.array(rows)  # (widths, layers): ||W|| / sqrt(fan_out / fan_in)
    # muP: every layer's ratio stays within a fixed band at every width.
    assert np.all(ratio["mup"] > 0.9)
    assert np.all(ratio["mup"] < 4.0)
    spread = ratio["mup"].max(axis=0) / ratio["mup"].min(axis=0)
    assert np.all(spread < 1.6)
    # SP: hidden layers agree with muP; the readout's ratio grows with the width, as the edge
    # (1 + sqrt(10 / n)) sqrt(n / 10) predicts: like sqrt(n) once n >> 10.
    np.testing.assert_allclose(ratio["sp"][:, :2], ratio["mup"][:, :2], rtol=1e-12)
    growth = ratio["sp"][-1, -1] / ratio["sp"][0, -1]

    def edge(n):
        return (1 + math.sqrt(N_CLASSES / n)) * math.sqrt(n / N_CLASSES)

    assert growth == pytest.approx(edge(1024) / edge(64), rel=0.05)
    assert growth > 3


def _one_step_update_norms(p, n, rng):
    scales = parametrize([D_IN, n, n, N_CLASSES], p, base_width=BASE, gain=math.sqrt(2))
    weights = init_weights(scales, replicas=1, rng=rng)
    x = rng.standard_normal((32, D_IN))
    y = rng.integers(0, N_CLASSES, 32)
    _, grads = loss_and_gradients(weights, x, y)
    updates = [s.lr_multiplier * g[0] for s, g in zip(scales, grads, strict=True)]
    return np.array(
        [np.linalg.norm(u, 2) / s.spectral_target for u, s in zip(updates, scales, strict=True)]
    )


def test_update_norms_under_mup_keep_the_spectral_condition() -> None:
    # ||Delta W_l|| / sqrt(fan_out / fan_in) after one SGD step with muP's multipliers does not
    # drift with width; with SP the readout's grows like the width.
    rng = np.random.default_rng(3)
    small = {p: _one_step_update_norms(p, 64, rng) for p in PARAMETRIZATIONS}
    large = {p: _one_step_update_norms(p, 1024, rng) for p in PARAMETRIZATIONS}
    change = large["mup"] / small["mup"]
    assert np.all(change > 0.5)
    assert np.all(change < 2.0)
    sp_readout = large["sp"][-1] / small["sp"][-1]
    # like the width, up to the finite-size part of ||x_{L-1}|| (batch 32 against n = 64)
    assert 0.5 * 1024 / 64 < sp_readout < 1.5 * 1024 / 64


# --- the coordinate check -------------------------------------------------------------------


def _log_slope(widths, values):
    return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def test_coordinate_check_slopes() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((32, D_IN))
    y = rng.integers(0, N_CLASSES, 32)
    widths = [128, 256, 512]
    change = {}
    for p in PARAMETRIZATIONS:
        rows = []
        for n in widths:
            scales = parametrize([D_IN, n, n, N_CLASSES], p, base_width=BASE, gain=math.sqrt(2))
            cc = coordinate_check(scales, x, y, 0.05, replicas=4, rng=rng)
            rows.append(cc.change.mean(axis=0))
        change[p] = np.array(rows)
    # SP at a fixed learning rate: the last hidden layer moves like sqrt(n), the logits like n.
    assert _log_slope(widths, change["sp"][:, 1]) == pytest.approx(0.5, abs=0.2)
    assert _log_slope(widths, change["sp"][:, 2]) == pytest.approx(1.0, abs=0.2)
    # muP: no layer's change grows with the width.
    for layer in range(3):
        assert _log_slope(widths, change["mup"][:, layer]) < 0.15


def test_zero_readout_starts_at_uniform_predictions() -> None:
    rng = np.random.default_rng(0)
    scales = parametrize([D_IN, 64, 64, N_CLASSES], base_width=BASE)
    x = rng.standard_normal((16, D_IN))
    cc = coordinate_check(
        scales, x, np.arange(16) % 10, 0.1, replicas=2, rng=rng, zero_readout=True
    )
    assert np.all(cc.before[:, -1] == 0)
    assert np.all(cc.change[:, -1] > 0)  # the readout learns in the first step


# --- forward pass and gradients --------------------------------------------------------------


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(5)
    scales = parametrize([4, 6, 5, 3], "sp", gain=math.sqrt(2))
    weights = init_weights(scales, replicas=2, rng=rng)
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7)
    loss, grads = loss_and_gradients(weights, x, y)
    eps = 1e-6
    for layer in range(3):
        for _ in range(4):
            r, i, j = (rng.integers(s) for s in weights[layer].shape)
            bumped = [W.copy() for W in weights]
            bumped[layer][r, i, j] += eps
            up, _ = loss_and_gradients(bumped, x, y)
            numeric = (up[r] - loss[r]) / eps
            assert numeric == pytest.approx(grads[layer][r, i, j], abs=1e-5)


def test_replicas_are_independent_networks() -> None:
    rng = np.random.default_rng(2)
    weights = init_weights(parametrize([5, 8, 8, 3]), replicas=3, rng=rng)
    x = rng.standard_normal((4, 5))
    together = forward_replicas(weights, x)[-1]
    for r in range(3):
        alone = forward_replicas([W[r : r + 1] for W in weights], x)[-1]
        np.testing.assert_allclose(together[r], alone[0])


# --- training many replicas -----------------------------------------------------------------


def _toy_data(rng, n=256):
    """Two Gaussian blobs in 6 dimensions: separable, so SGD must make progress."""
    y = np.arange(n) % 2
    x = rng.standard_normal((n, 6)) + 1.5 * (2 * y[:, None] - 1)
    return Dataset(x[:192], y[:192], x[192:], y[192:], 2, "blobs", x_val=x[192:], y_val=y[192:])


def _fit_mup(scales, data, lrs, *, epochs, batch_size, rng, seeds):
    model, params = MuPModel.create(scales, replicas=len(lrs), rng=rng)
    return fit(model, params, data, lr=lrs, seeds=seeds, optimizer="sgd", momentum=0.0,
               epochs=epochs, batch_size=batch_size, drop_last=True, metric="loss",
               diverge_above=100 * math.log(data.n_classes))  # fmt: skip


def test_fit_trains_mup_replicas_and_flags_divergence() -> None:
    rng = np.random.default_rng(8)
    data = _toy_data(rng)
    scales = parametrize([6, 32, 32, 2], "sp", gain=math.sqrt(2))
    res = _fit_mup(scales, data, [0.05, 0.05, 1e4], epochs=3, batch_size=16, rng=rng, seeds=1)
    assert list(res.diverged) == [False, False, True]
    model = MuPModel(tuple(scales))
    logits = model.predict(list(res.final_params), data.x_val)
    accuracy = np.mean(np.argmax(logits, axis=2) == data.y_val, axis=1)
    assert np.all(accuracy[:2] > 0.9)
    assert np.all(res.train_loss[:2, -1] < res.train_loss[:2, 1])
    assert np.isnan(res.val_metric[2, -1])
    assert np.all(np.isfinite(res.val_metric[:2]))
    assert res.train_loss[0, 1] != res.train_loss[1, 1]  # own initialization and data order


def test_fit_of_mup_replicas_is_reproducible() -> None:
    data = _toy_data(np.random.default_rng(0))
    scales = parametrize([6, 16, 16, 2], base_width=8)
    a, b = (
        _fit_mup(
            scales,
            data,
            [0.1, 0.3],
            epochs=1,
            batch_size=32,
            rng=np.random.default_rng(4),
            seeds=[5, 6],
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(a.val_metric, b.val_metric)
    np.testing.assert_array_equal(a.final_params[1], b.final_params[1])


def test_mup_model_uses_the_layers_rates_and_the_readouts_scale() -> None:
    # MuPModel's default multipliers are parametrize's lr_multiplier per layer, and one SGD step
    # of fit moves layer l by -eta m_l dL/dW_l (m_l of muP, base width 8, width 32).
    data = _toy_data(np.random.default_rng(1))
    scales = parametrize([6, 32, 32, 2], base_width=8)
    model, params = MuPModel.create(scales, replicas=1, rng=np.random.default_rng(2),
                                    dtype=np.float64)  # fmt: skip
    np.testing.assert_array_equal(model.default_multipliers, [4.0, 1.0, 0.25])
    res = fit(model, params, (data.x_train[:16], data.y_train[:16]), lr=0.1, seeds=0,
              optimizer="sgd", momentum=0.0, epochs=1, full_batch=True)  # fmt: skip
    _, grads = loss_and_gradients(params, data.x_train[:16], data.y_train[:16])
    for W, W1, g, s in zip(params, res.final_params, grads, scales, strict=True):
        np.testing.assert_allclose(W1, W - 0.1 * s.lr_multiplier * g, rtol=1e-12, atol=1e-15)


# --- clear errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"role": "middle"}, ValueError, "role must be one of"),
        ({"role": 3}, TypeError, "role must be one of"),
        ({"parametrization": "ntk"}, ValueError, "parametrization must be one of"),
        ({"optimizer": "lion"}, ValueError, "optimizer must be one of"),
        ({"fan_in": 0}, ValueError, "fan_in must be an integer >= 1"),
        ({"fan_out": 2.0}, TypeError, "fan_out must be an integer"),
        ({"base_width": 0}, ValueError, "base_width"),
        ({"gain": -1.0}, ValueError, "gain must be a finite number > 0"),
    ],
)
def test_layer_scale_errors(kwargs, error, match) -> None:
    args = {"fan_in": 64, "fan_out": 64, "role": "hidden", "parametrization": "mup"} | kwargs
    with pytest.raises(error, match=match):
        layer_scale(
            args.pop("fan_in"),
            args.pop("fan_out"),
            args.pop("role"),
            args.pop("parametrization"),
            **args,
        )


def test_other_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least one hidden"):
        parametrize([4, 2])
    scales = parametrize([4, 8, 2])
    with pytest.raises(ValueError, match="do not chain"):
        init_weights([scales[0], scales[0]], replicas=1, rng=rng)
    with pytest.raises(TypeError, match="sequence of LayerScale"):
        init_weights([1, 2], replicas=1, rng=rng)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        init_weights(scales, replicas=1, rng=0)
    weights = init_weights(scales, replicas=2, rng=rng)
    with pytest.raises(ValueError, match="must have shape"):
        forward_replicas(weights, np.ones((3, 5)))
    with pytest.raises(ValueError, match="labels must lie"):
        loss_and_gradients(weights, np.ones((3, 4)), [0, 1, 2])
    with pytest.raises(TypeError, match="integer class indices"):
        loss_and_gradients(weights, np.ones((3, 4)), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        coordinate_check(scales, np.ones((3, 4)), [0, 1, 1], 0.0, replicas=1, rng=rng)
    data = _toy_data(rng)
    good = parametrize([6, 8, 2])
    with pytest.raises(ValueError, match="lr must be > 0"):
        _fit_mup(good, data, [0.1, -1.0], epochs=1, batch_size=8, rng=rng, seeds=0)
    with pytest.raises(ValueError, match="batch_size must be at most 192 with drop_last"):
        _fit_mup(good, data, [0.1], epochs=1, batch_size=10_000, rng=rng, seeds=0)
    with pytest.raises(TypeError, match="sequence of LayerScale"):
        MuPModel((1, 2))
