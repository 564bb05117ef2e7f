"""Regression tests for the Part V bad-input report, modules residual, convolution, parametrization.

Every test names the defect of ``/work/shared/reviews/2026-12-part-5-bad-input.md`` it guards
(H = high, M = medium, L = low; the report's appendix lists the calls). Each one failed on the
package the report reviewed (commit ``b4bb7dc``): a wrong number, a crash from numpy or Python
internals, or a message that did not name the argument. Tests marked "beyond the report" cover
the same kind of input in functions the report did not probe. Tests marked "guard" passed before
too: they pin what the fixes must not change (the digits of ordinary results, valid calls).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import eiginit as E
from eiginit import residual

rng = np.random.default_rng


def _old_normalize(u: np.ndarray, axis: int) -> np.ndarray:
    """The normalization as the reviewed package computed it (its digits must not move)."""
    centred = u - u.mean(axis=axis, keepdims=True)
    return centred * (1 / np.sqrt((centred**2).mean(axis=axis, keepdims=True) + 1e-5))


def _toy(classes: int = 2, length: int = 8) -> E.Dataset:
    x = rng(0).standard_normal((120, length))
    y = (np.abs(x[:, 0] * 2).astype(int)) % classes
    return E.Dataset(x[:80], y[:80], x[100:], y[100:], classes, "toy", x[80:100], y[80:100])


def _cnn(*, length: int = 8, init: Any = E.delta_orthogonal, **kwargs: Any) -> E.CNN1d:
    return E.CNN1d.create(
        length=length, depth=2, channels=4, width=3, n_classes=2, init=init, replicas=2,
        rng=rng(0), **kwargs,
    )  # fmt: skip


def _huge_readout() -> E.CNN1d:
    net = _cnn()
    net.readout *= np.float32(1e10)
    return net


def _fit_cnn(net: E.CNN1d | None = None, data: E.Dataset | None = None, **kwargs: Any) -> Any:
    """Train `net` (default `_cnn()`) through the one engine, as train_cnn's cases did."""
    model, params = E.CNNModel.from_network(_cnn() if net is None else net)
    options: dict[str, Any] = {"lr": 1e-3, "seeds": [1, 2], "epochs": 1, "batch_size": 16}
    return E.fit(model, params, _toy() if data is None else data, **{**options, **kwargs})


def _classifier(classes: int = 2) -> E.ResidualClassifier:
    return E.residual_classifier(
        ["fixup", "rezero"], inputs=8, classes=classes, width=4, depth=2, rng=rng(0)
    )


def _fit_residual(data: E.Dataset | None = None, **kwargs: Any) -> E.FitResult:
    """Train `_classifier` through the one engine (train_residual's cases now point at fit)."""
    model, params = E.ResidualModel.from_network(_classifier())
    options: dict[str, Any] = {"lr": 0.1, "seeds": [0, 1], "epochs": 1}
    return E.fit(model, params, _toy() if data is None else data, **{**options, **kwargs})


def _weights() -> list[np.ndarray]:
    return E.init_weights(E.parametrize([3, 5, 2]), replicas=2, rng=rng(0))


def _huge_data() -> E.Dataset:
    d = _toy()
    return E.Dataset(d.x_train * 1e300, d.y_train, d.x_test, d.y_test, 2, "huge", d.x_val, d.y_val)


# ------------------------------------------------------------- H6: normalization of large input
def test_H6_batch_norm_of_huge_entries_is_plus_minus_one() -> None:
    z = E.batch_norm([[1e200, 3.0], [-1e200, 1.0]])
    np.testing.assert_array_equal(z[:, 0], [1.0, -1.0])
    np.testing.assert_array_equal(z[:, 1], _old_normalize(np.array([[3.0], [1.0]]), 0)[:, 0])


def test_H6_layer_norm_of_huge_entries_is_plus_minus_one() -> None:
    np.testing.assert_array_equal(E.layer_norm([[1e200, -1e200]]), [[1.0, -1.0]])
    np.testing.assert_array_equal(E.layer_norm([[1e308, -1e308, 0.0]])[0, 1], -(1.5**0.5))


@pytest.mark.parametrize("norm", [E.batch_norm, E.layer_norm], ids=["batch_norm", "layer_norm"])
def test_H6_float32_beyond_2e19(norm: Any) -> None:
    x = np.array([[1e20, -1e20]], np.float32)
    z = norm(x.T if norm is E.batch_norm else x)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(np.abs(z), 1.0)
    big = np.array([[3e38, -3e38]], np.float32)  # near float32's largest number
    np.testing.assert_array_equal(np.abs(norm(big.T if norm is E.batch_norm else big)), 1.0)


def test_H6_tiny_entries_are_divided_by_sqrt_eps() -> None:
    # guard
    # var << eps: the answer is (x - mean) / sqrt(eps), far from zero in float64.
    z = E.batch_norm([[1e-200], [-1e-200]])
    np.testing.assert_allclose(z[:, 0], [1e-200 / 1e-5**0.5, -1e-200 / 1e-5**0.5], rtol=1e-14)


def test_H6_ordinary_columns_keep_their_digits_beside_a_huge_one() -> None:
    # One huge column sends batch_norm through the rescaled route; the others must come out
    # bit for bit as the reviewed package computed them (powers of two scale exactly).
    x = rng(3).standard_normal((16, 6)) * np.array([1e-3, 1.0, 7.0, 1e3, 1e100, 1.0])
    x[:, -1] *= 1e250
    z = E.batch_norm(x)
    np.testing.assert_array_equal(z[:, :5], _old_normalize(x[:, :5], 0))
    centred = x[:, 5] / 1e250 - np.mean(x[:, 5] / 1e250)  # eps is negligible beside 1e500
    np.testing.assert_allclose(z[:, 5], centred / np.sqrt(np.mean(centred**2)), rtol=1e-13)


def test_H6_ordinary_input_keeps_its_digits() -> None:
    # guard
    for seed, scale in [(0, 1.0), (1, 1e-3), (2, 1e5), (3, 1e100)]:
        x = scale * rng(seed).standard_normal((2, 8, 5))
        np.testing.assert_array_equal(E.batch_norm(x), _old_normalize(x, -2))
        np.testing.assert_array_equal(E.layer_norm(x), _old_normalize(x, -1))


def test_H6_layer_norm_vjp_of_huge_input_scales_as_one_over_c() -> None:
    x, g = rng(4).standard_normal((3, 5)), rng(5).standard_normal((3, 5))
    reference = E.layer_norm_vjp(x * 2.0**40, g)  # eps negligible already
    for k in (200, 600, 1000):
        got = E.layer_norm_vjp(np.ldexp(x, k), g)
        np.testing.assert_allclose(np.ldexp(got, k - 40), reference, rtol=1e-12, atol=0)


def test_H6_layer_norm_vjp_refuses_a_gradient_beyond_float64() -> None:
    # x tiny: the layer norm multiplies by 1/sqrt(1e-5) ~ 316, so 1e307 becomes 3e309.
    with pytest.raises(ValueError, match="gradient is beyond float64's range"):
        E.layer_norm_vjp([[1e-3, -1e-3]], [[1e307, -1e307]])


def test_H6_normalized_stack_takes_huge_input() -> None:
    # Beyond the report: the stack used to refuse inputs above 1e154 ("activations overflow");
    # with a layer-normalized branch the output is the input plus O(1).
    stack = E.ResidualStack.create(4, 2, rng=rng(0), norm="layer")
    x = 1e200 * rng(1).standard_normal((3, 4))
    np.testing.assert_allclose(stack(x)[0], x, rtol=1e-15)


# ------------------------------------------------------------------------- residual: refusals
RESIDUAL_REFUSALS = [
    ("M7-lr-wrong-length", lambda: _fit_residual(lr=[0.1] * 3),
     ValueError, "lr must be one number or 2 numbers"),
    ("M7-labels-beyond-readout",
     lambda: _fit_residual(_toy(classes=3)),
     ValueError, "data.y_train must hold labels below the model's 2 outputs"),
    ("L2-M7-lr-complex", lambda: _fit_residual(lr=0.01 + 1j),
     TypeError, "lr must hold .*complex"),
    ("L3-M7-lr-string", lambda: _fit_residual(lr="0.01"),
     TypeError, "lr must be an array"),
    ("L3-M7-lr-bool", lambda: _fit_residual(lr=True),
     TypeError, "lr must hold"),
    ("L1-batch_norm-ragged", lambda: E.batch_norm([[1, 2], [3]]), TypeError, "x must be"),
    ("L1-layer_norm-ragged", lambda: E.layer_norm([[1, 2], [3]]), TypeError, "x must be"),
    ("L1-layer_norm_vjp-ragged", lambda: E.layer_norm_vjp([[1.0, 2.0]], [[1, 2], [3]]),
     TypeError, "grad must be"),
    ("L1-ResidualStack.forward-ragged",
     lambda: E.ResidualStack.create(2, 1, rng=rng(0)).forward([[1, 2], [3]]),
     TypeError, "x must be"),
    ("L2-residual_classifier-None",
     lambda: E.residual_classifier(None, inputs=2, classes=2, width=2, depth=1, rng=rng(0)),
     TypeError, "schemes must be"),
    ("L4-mean_square_profile-skip-str",
     lambda: E.mean_square_profile(4, 2, 1.0, rng=rng(0), skip="no"), TypeError, "skip must be"),
    ("L4-mean_square_profile-skip-None",
     lambda: E.mean_square_profile(4, 2, 1.0, rng=rng(0), skip=None), TypeError, "skip must be"),
    ("L6-residual_variance-depth-1e12", lambda: E.residual_variance(0.0, 10**12),
     ValueError, "use smaller depth"),
    ("L6-ResidualStack.create-width-1e5", lambda: E.ResidualStack.create(10**5, 1, rng=rng(0)),
     ValueError, "use smaller width"),
    ("L6-mean_square_profile-width-1e5",
     lambda: E.mean_square_profile(10**5, 1, 1.0, rng=rng(0)), ValueError, "width"),
    ("L7-ResidualStack.create-dtype-abc",
     lambda: E.ResidualStack.create(2, 1, rng=rng(0), dtype="abc"), TypeError, "dtype must be"),
    ("L7-ResidualStack.create-dtype-int",
     lambda: E.ResidualStack.create(2, 1, rng=rng(0), dtype=int), ValueError, "dtype must be"),
    ("beyond-report-ResidualStack-nan-weights",
     lambda: E.ResidualStack(np.full((1, 1, 1, 2, 2), np.nan), np.ones((1, 1))),
     ValueError, "must be finite"),
    ("beyond-report-backward-overflow",
     lambda: (lambda s: s.backward(s.forward(np.ones((2, 3))), np.full((2, 3), 1e308)))(
         E.ResidualStack.create(3, 4, rng=rng(0), alpha=3.0)),
     ValueError, "gradients overflow"),
    ("beyond-report-jacobian-overflow",  # the output is 1e18, the Jacobian beyond 1e308
     lambda: E.ResidualStack.create(16, 700, rng=rng(0), alpha=3.0).jacobian(
         np.abs(rng(1).standard_normal((1, 16))) * 1e-300),
     ValueError, "Jacobian overflows float64"),
    ("beyond-report-float32-stack-input-beyond-range",
     lambda: E.ResidualStack.create(2, 1, rng=rng(0), dtype=np.float32)(np.full((2, 2), 1e300)),
     ValueError, "x has entries beyond float32's range"),
    ("beyond-report-residual_classifier-inputs-1e9",
     lambda: E.residual_classifier("fixup", inputs=10**9, classes=2, width=4, depth=1,
                                   rng=rng(0)),
     ValueError, "use smaller inputs"),
    ("beyond-report-ResidualStack.create-width-10**400",
     lambda: E.ResidualStack.create(10**400, 1, rng=rng(0)), ValueError, "about 1e800 entries"),
    ("beyond-report-norm-array",
     lambda: E.ResidualStack.create(2, 1, rng=rng(0), norm=np.zeros(0)), ValueError,
     "norm must be one of"),
    ("beyond-report-fit-residual-epochs-huge",
     lambda: _fit_residual(epochs=10**12),
     ValueError, "use smaller epochs"),
    ("beyond-report-fit-residual-lr-beyond-float32",
     lambda: _fit_residual(lr=1e39),
     ValueError, "lr has entries beyond float32's range"),
    ("L7-residual_classifier-dtype-None",
     lambda: E.residual_classifier("fixup", inputs=2, classes=2, width=2, depth=1, rng=rng(0),
                                   dtype=None),
     TypeError, "dtype must be np.float32 or np.float64, got None"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [case[1:] for case in RESIDUAL_REFUSALS],
    ids=[case[0] for case in RESIDUAL_REFUSALS],
)
def test_residual_refuses_with_the_argument_named(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_L8_stack_takes_numpy_booleans() -> None:
    # Beyond the report (its L8 class): np.bool_ was refused where True was accepted.
    stack = E.ResidualStack.create(2, 1, rng=rng(0), skip=np.bool_(False), post_norm=np.True_)
    assert stack.skip is False
    assert stack.post_norm is True
    with pytest.raises(TypeError, match="post_norm must be True or False"):
        E.ResidualStack.create(2, 1, rng=rng(0), post_norm="yes")


def test_L5_residual_variance_takes_a_fraction() -> None:
    np.testing.assert_array_equal(E.residual_variance(Fraction(1, 2), 2), [1.0, 1.25, 1.5625])


def test_L5_fixup_scale_of_a_huge_depth() -> None:
    assert E.fixup_scale(10**400, 2) == pytest.approx(1e-200, rel=1e-12)
    assert E.fixup_scale(16, 2) == 0.25  # ordinary depths keep their digits


def test_M7_fit_residual_takes_one_rate_per_replica_as_before() -> None:
    # guard (train_residual's case, now fit's with the residual model)
    # The lr check must not change what valid rates do: a scalar equals the same rate twice.
    runs = [_fit_residual(lr=lr, seeds=[2, 2]) for lr in (0.01, [0.01, 0.01], np.float32(0.01))]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.train_loss, runs[0].train_loss)


# ------------------------------------------------------------------------ convolution: spectra
def test_L10_singular_values_beyond_float64_are_refused() -> None:
    with pytest.raises(ValueError, match="singular values are beyond float64's range"):
        E.conv_singular_values(np.full((1, 1, 3), 1e308), 3)


def test_L10_huge_and_tiny_kernels_give_scaled_singular_values() -> None:
    # guard
    K = rng(6).standard_normal((3, 2, 4))
    base = E.conv_singular_values(K, 6)
    for k in (-1000, -700, 700, 1000):
        np.testing.assert_allclose(
            E.conv_singular_values(np.ldexp(K, k), 6), np.ldexp(base, k), rtol=1e-13, atol=0
        )
    top = E.conv_singular_values(np.full((1, 1, 3), 1e300), 3)[0]
    assert top == pytest.approx(3e300, rel=1e-15)


def test_L10_frequency_blocks_and_eigenvalues_of_a_huge_kernel() -> None:
    # Beyond the report: the same sums in conv_frequency_blocks and conv_eigenvalues.
    K = rng(7).standard_normal((2, 2, 3))
    blocks = E.conv_frequency_blocks(np.ldexp(K, 1000), 5)
    np.testing.assert_allclose(blocks / 2.0**1000, E.conv_frequency_blocks(K, 5), rtol=1e-14)
    eig = E.conv_eigenvalues(np.ldexp(K, 1000), 5)
    np.testing.assert_allclose(eig / 2.0**1000, E.conv_eigenvalues(K, 5), rtol=1e-12)
    with pytest.raises(ValueError, match="eigenvalues are beyond float64's range"):
        E.conv_eigenvalues(np.full((1, 1, 3), 1e308), 3)


def test_spectra_of_ordinary_kernels_keep_their_digits() -> None:
    # guard
    # Nothing is rescaled inside [2**-400, 2**400]: the FFT route as before, digit for digit.
    K = rng(8).standard_normal((3, 3, 3))
    phase = np.exp(2j * np.pi * np.arange(7)[:, None] * (np.arange(3)[None, :] - 1) / 7)
    blocks = np.einsum("ois,ws->woi", K, phase)
    np.testing.assert_array_equal(E.conv_frequency_blocks(K, 7), blocks)
    expected = np.sort(np.linalg.svd(blocks, compute_uv=False).ravel())[::-1]
    np.testing.assert_array_equal(E.conv_singular_values(K, 7), expected)


# ------------------------------------------------------------------ convolution: refusals
CONV_REFUSALS = [
    ("M3-betas-beta1-one", lambda: _fit_cnn(betas=(1.0, 0.999)), ValueError, "beta1 must be"),
    ("M3-betas-beta2-1.5", lambda: _fit_cnn(betas=(0.9, 1.5)), ValueError, "beta2 must be"),
    ("M3-betas-single", lambda: _fit_cnn(betas=(0.9,)), TypeError, "betas must be a pair"),
    ("L2-betas-float", lambda: _fit_cnn(betas=0.9), TypeError, "betas must be a pair"),
    ("M3-eps-inf", lambda: _fit_cnn(eps=np.inf), ValueError, "eps must be a finite number"),
    ("M3-eps-string", lambda: _fit_cnn(eps="1e-8"), TypeError, "eps must be a real number"),
    ("M3-lr-bool", lambda: _fit_cnn(lr=True), TypeError, "lr must hold"),
    ("M4-init-wrong-shape", lambda: _cnn(init=lambda shape, rng: np.zeros((2, 2))),
     ValueError, "init returned shape"),
    ("M4-init-nan", lambda: _cnn(init=lambda shape, rng: np.full(shape, np.nan)),
     ValueError, "init must return finite real numbers"),
    ("M4-init-complex", lambda: _cnn(init=lambda shape, rng: np.ones(shape) + 1j),
     ValueError, "init must return finite real numbers"),
    ("M4-dtype-int", lambda: _cnn(dtype=int), ValueError, "dtype must be float32 or float64"),
    ("L2-M4-pool_after-int", lambda: _cnn(pool_after=1), TypeError, "pool_after must be"),
    ("L6-conv_singular_values-n-1e9",
     lambda: E.conv_singular_values(np.ones((1, 1, 3)), 10**9), ValueError, "use smaller n"),
    ("L7-CNN1d.create-dtype-abc", lambda: _cnn(dtype="abc"), TypeError, "dtype must be"),
    ("L12-fit-CNNModel-data-length", lambda: _fit_cnn(_cnn(length=10)),
     ValueError, "data has signals of length 8, but the network takes length 10"),
    ("beyond-report-fit-CNNModel-classes", lambda: _fit_cnn(data=_toy(classes=3)),
     ValueError, "data.y_train must hold labels below the model's 2 outputs, got 2"),
    ("beyond-report-gradients-label-range",
     lambda: _cnn().gradients(np.ones((2, 8)), [0, 2]), ValueError, "labels must lie in 0..1"),
    ("beyond-report-gradients-label-float",
     lambda: _cnn().gradients(np.ones((2, 8)), [0.0, 1.0]), TypeError, "labels must be"),
    ("beyond-report-conv1d-overflow",
     lambda: E.conv1d([[[1e308, 1e308, 1e308]]], [[[1.0, 1.0, 1.0]]]),
     ValueError, "overflow in the output .float64 holds at most 1.8e.308"),
    ("beyond-report-conv1d_backward-overflow",
     lambda: E.conv1d_backward([[[1.0, 1.0, 1.0]]], [[[1.0, 1.0, 1.0]]], [[[1e308] * 3]]),
     ValueError, "overflow in the input gradient"),
    ("beyond-report-logits-overflow", lambda: _huge_readout().logits(np.full((2, 8), 1e30)),
     ValueError, "overflow in the logits .float32"),
    ("beyond-report-float32-cnn-input-beyond-range",
     lambda: _cnn().logits(np.full((2, 8), 1e300)), ValueError, "x has entries beyond float32"),
    ("beyond-report-delta_orthogonal-huge-shape",
     lambda: E.delta_orthogonal((10**5, 10**5, 3), rng=rng(0)), ValueError, "the kernel would"),
    ("beyond-report-conv_operator-n-10**400",
     lambda: E.conv_operator(np.ones((1, 1, 3)), 10**400), ValueError, "about 1e800 entries"),
    ("beyond-report-fit-CNNModel-epochs-huge", lambda: _fit_cnn(epochs=10**12),
     ValueError, "use smaller epochs"),
    ("beyond-report-fit-CNNModel-lr-beyond-float32", lambda: _fit_cnn(lr=1e39),
     ValueError, "lr has entries beyond float32's range"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [case[1:] for case in CONV_REFUSALS],
    ids=[case[0] for case in CONV_REFUSALS],
)
def test_convolution_refuses_with_the_argument_named(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_M4_create_keeps_the_weights_it_drew_before() -> None:
    # guard
    # The checks on init's output must not change the kernels of a valid call.
    net = _cnn()
    r = rng(0)
    expected = np.stack([E.delta_orthogonal((4, 1, 3), rng=r) for _ in range(2)])
    np.testing.assert_array_equal(net.kernels[0], expected.astype(np.float32))


# ------------------------------------------------------------- parametrization: refusals
PARAM_REFUSALS = [
    ("M5-init_weights-dtype-int",
     lambda: E.init_weights(E.parametrize([3, 5, 2]), replicas=1, rng=rng(0), dtype=int),
     ValueError, "dtype must be float32 or float64"),
    ("M5-train_replicas-dtype-int",
     lambda: E.train_replicas(E.parametrize([8, 5, 2]), _toy(), [0.1], epochs=1, batch_size=8,
                              rng=rng(0), dtype=int),
     ValueError, "dtype must be float32 or float64"),
    ("M6-loss_and_gradients-labels-length-3",
     lambda: E.loss_and_gradients(_weights(), np.ones((4, 3)), [0, 1, 1]),
     ValueError, r"labels must have shape \(4,\) or \(2, 4\)"),
    ("M6-coordinate_check-labels-length-7",
     lambda: E.coordinate_check(E.parametrize([3, 5, 2]), np.ones((4, 3)), [0] * 7, 0.1,
                                replicas=2, rng=rng(0)),
     ValueError, r"labels must have shape \(4,\) or \(2, 4\)"),
    ("M6-loss_and_gradients-empty-batch",
     lambda: E.loss_and_gradients(_weights(), np.ones((0, 3)), []),
     ValueError, "x must have shape .* batch >= 1"),
    ("L4-init_weights-zero_readout-str",
     lambda: E.init_weights(E.parametrize([3, 5, 2]), replicas=1, rng=rng(0), zero_readout="no"),
     TypeError, "zero_readout must be"),
    ("L4-coordinate_check-zero_readout-str",
     lambda: E.coordinate_check(E.parametrize([3, 5, 2]), np.ones((4, 3)), [0] * 4, 0.1,
                                replicas=2, rng=rng(0), zero_readout="no"),
     TypeError, "zero_readout must be"),
    ("L5-layer_scale-fan_in-1e400", lambda: E.layer_scale(10**400, 3, "input"),
     ValueError, "fan_in must be an integer <="),
    ("L5-layer_scale-hidden-1e400", lambda: E.layer_scale(10**400, 10**400, "hidden"),
     ValueError, "fan_in must be an integer <="),
    ("L9-forward_replicas-nan-weight",
     lambda: E.forward_replicas([_weights()[0], np.full((2, 2, 5), np.nan)], np.ones((3, 3))),
     ValueError, r"weights\[1\] must be finite"),
    ("beyond-report-weights-ragged",
     lambda: E.forward_replicas([[[1.0, 2.0], [3.0]], _weights()[1]], np.ones((3, 3))),
     TypeError, r"weights\[0\] must be"),
    ("beyond-report-train_replicas-lr-bool",
     lambda: E.train_replicas(E.parametrize([8, 5, 2]), _toy(), [True], epochs=1, batch_size=8,
                              rng=rng(0)),
     TypeError, "learning_rates must hold"),
    ("beyond-report-coordinate_check-overflow",
     lambda: E.coordinate_check(E.parametrize([3, 5, 2]), np.ones((4, 3)), [0] * 4, 1e300,
                                replicas=2, rng=rng(0)),
     ValueError, "overflow .* x or lr too large"),
    ("beyond-report-forward_replicas-overflow",
     lambda: E.forward_replicas([w * 1e200 for w in _weights()], np.full((3, 3), 1e10)),
     ValueError, "activations overflow"),
    ("beyond-report-train_replicas-float32-data-beyond-range",
     lambda: E.train_replicas(E.parametrize([8, 5, 2]), _huge_data(), [0.1], epochs=1,
                              batch_size=8, rng=rng(0)),
     ValueError, "data.x_train has entries beyond float32's range"),
    ("beyond-report-train_replicas-lr-beyond-float32",
     lambda: E.train_replicas(E.parametrize([8, 5, 2]), _toy(), [1e39], epochs=1, batch_size=8,
                              rng=rng(0)),
     ValueError, "learning_rates times the layers' lr_multiplier has entries beyond float32"),
    ("beyond-report-layer_scale-gain-1e308", lambda: E.layer_scale(4, 4, "hidden", gain=1e308),
     ValueError, "gain = 1e.308 is too large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [case[1:] for case in PARAM_REFUSALS],
    ids=[case[0] for case in PARAM_REFUSALS],
)
def test_parametrization_refuses_with_the_argument_named(
    call: Any, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_M6_labels_of_either_documented_shape_still_work() -> None:
    # guard
    W, x = _weights(), rng(9).standard_normal((4, 3))
    loss1, _ = E.loss_and_gradients(W, x, [0, 1, 1, 0])
    loss2, _ = E.loss_and_gradients(W, x, [[0, 1, 1, 0], [0, 1, 1, 0]])
    np.testing.assert_array_equal(loss1, loss2)


def test_coordinate_check_keeps_its_digits() -> None:
    # guard
    # The overflow-safe root mean square scales by powers of two: the same digits as before.
    scales = E.parametrize([5, 16, 16, 3])
    x, y = rng(10).standard_normal((8, 5)), np.arange(8) % 3
    cc = E.coordinate_check(scales, x, y, 0.1, replicas=2, rng=rng(11))
    W = E.init_weights(scales, replicas=2, rng=rng(11))
    before = E.forward_replicas(W, x)[1:]
    np.testing.assert_array_equal(
        cc.before, np.stack([np.sqrt(np.mean(a**2, axis=(1, 2))) for a in before], axis=1)
    )


def test_residual_module_keeps_its_private_helpers() -> None:
    # The rescaled route is one helper shared by the stack and the public functions.
    z, inv_std = residual._normalize(np.array([[1e200, -1e200]]), -1)
    np.testing.assert_array_equal(z, [[1.0, -1.0]])
    assert inv_std[0, 0] == pytest.approx(1e-200, rel=1e-15)
