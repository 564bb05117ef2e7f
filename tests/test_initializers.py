"""Tests of eiginit.models.initializers: gains, fans, and the statistics of every initializer.

Statistical tests use fixed seeds and tolerances of five standard errors of the estimate:
for n i.i.d. draws the sample variance s^2 has standard error sigma^2 sqrt(2 / n) for a normal,
sigma^2 sqrt(0.8 / n) for a uniform (kurtosis 1.8), and below sigma^2 sqrt(2 / n) for a
truncated normal, so sqrt(2 / n) is a safe bound for all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eiginit
from eiginit import (
    KERAS_TRUNCATED_NORMAL_STD,
    calculate_fan_in_and_fan_out,
    calculate_gain,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    normal,
    orthogonal,
    spectral_radius_normal,
    torch_linear_default,
    trunc_normal,
    uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)


def assert_variance(w: np.ndarray, expected: float, *, se_factor: float = 5.0) -> None:
    """Check the sample variance (about zero mean) within se_factor standard errors."""
    n = w.size
    measured = float(np.mean(w**2))
    tolerance = se_factor * expected * math.sqrt(2.0 / n)
    assert abs(measured - expected) < tolerance, (measured, expected, tolerance)


# ---------------------------------------------------------------- gains and fans


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("linear", 1.0),
        ("conv1d", 1.0),
        ("conv2d", 1.0),
        ("conv3d", 1.0),
        ("conv_transpose1d", 1.0),
        ("conv_transpose2d", 1.0),
        ("conv_transpose3d", 1.0),
        ("sigmoid", 1.0),
        ("tanh", 5.0 / 3.0),
        ("relu", math.sqrt(2.0)),
        ("leaky_relu", math.sqrt(2.0 / (1.0 + 0.01**2))),
        ("selu", 0.75),
    ],
)
def test_gain_table(name: str, expected: float) -> None:
    assert calculate_gain(name) == pytest.approx(expected, rel=1e-15)


def test_leaky_relu_gain_uses_param() -> None:
    assert calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(1 / math.sqrt(3))
    assert calculate_gain("relu", 0.5) == pytest.approx(math.sqrt(2))  # param ignored


def test_gain_errors() -> None:
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        calculate_gain("gelu")
    with pytest.raises(TypeError, match="nonlinearity must be a string"):
        calculate_gain(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="param"):
        calculate_gain("leaky_relu", "0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="param"):
        calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="finite"):
        calculate_gain("leaky_relu", math.inf)


def test_fans_like_pytorch() -> None:
    assert calculate_fan_in_and_fan_out((64, 128)) == (128, 64)
    assert calculate_fan_in_and_fan_out([16, 3, 5, 5]) == (75, 400)
    assert calculate_fan_in_and_fan_out((8, 4, 3)) == (12, 24)
    assert calculate_fan_in_and_fan_out((np.int64(3), 2)) == (2, 3)


@given(st.lists(st.integers(1, 9), min_size=2, max_size=5))
def test_fans_property(shape: list[int]) -> None:
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    assert fan_in * shape[0] == fan_out * shape[1]
    assert fan_in * fan_out == math.prod(shape) * math.prod(shape[2:])


@pytest.mark.parametrize(
    ("shape", "error", "match"),
    [
        ((5,), ValueError, "at least 2 dimension"),
        (5, ValueError, "at least 2 dimension"),
        ((0, 4), ValueError, "zero fans"),
        ((4, -1), ValueError, ">= 1"),
        ((4, 2.0), TypeError, "must hold ints"),
        ((4, True), TypeError, "must hold ints"),
        ("44", TypeError, "shape must be an int or a sequence"),
        (None, TypeError, "shape must be an int or a sequence"),
    ],
)
def test_fan_errors(shape: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        calculate_fan_in_and_fan_out(shape)


# ---------------------------------------------------------------- plain distributions


def test_uniform_and_normal() -> None:
    rng = np.random.default_rng(1)
    u = uniform((200, 300), -3.0, 1.0, rng=rng)
    assert u.dtype == np.float64
    assert u.shape == (200, 300)
    assert u.min() >= -3.0
    assert u.max() <= 1.0
    assert_variance(u - (-1.0), 16 / 12)
    x = normal(60_000, 2.0, 0.5, rng=rng)
    assert x.shape == (60_000,)
    assert abs(x.mean() - 2.0) < 5 * 0.5 / math.sqrt(x.size)
    assert_variance(x - 2.0, 0.25)


def test_uniform_normal_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="a < b"):
        uniform((2, 2), 1.0, 1.0, rng=rng)
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        normal((2, 2), 0.0, 0.0, rng=rng)
    with pytest.raises(TypeError, match="mean must be a real number"):
        normal((2, 2), "0", rng=rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        normal((2, 2), math.nan, rng=rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        normal((2, 2), rng=np.random.RandomState(0))  # type: ignore[arg-type]


def test_trunc_normal_absolute_cutoffs() -> None:
    rng = np.random.default_rng(2)
    # a, b are absolute: with std 0.02 the default [-2, 2] cuts nothing.
    w = trunc_normal((300, 300), std=0.02, rng=rng)
    assert_variance(w, 0.02**2)
    # Cut at +-2 std: the std shrinks to 0.8796 std.
    w = trunc_normal((300, 300), std=0.5, a=-1.0, b=1.0, rng=rng)
    assert np.all(np.abs(w) <= 1.0)
    assert_variance(w, (0.5 * KERAS_TRUNCATED_NORMAL_STD) ** 2)
    # An asymmetric window away from the mean is respected.
    w = trunc_normal(10_000, mean=0.0, std=1.0, a=1.0, b=1.5, rng=rng)
    assert w.min() >= 1.0
    assert w.max() <= 1.5


def test_keras_constant_is_truncated_std() -> None:
    # Var of N(0,1) truncated to [-2, 2] is 1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2)).
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert math.sqrt(1 - 4 * phi / mass) == pytest.approx(KERAS_TRUNCATED_NORMAL_STD, rel=1e-14)


def test_trunc_normal_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="a < b"):
        trunc_normal((2, 2), a=1.0, b=-1.0, rng=rng)
    with pytest.raises(ValueError, match="absolute cut-offs"):
        trunc_normal((2, 2), mean=0.0, std=0.01, a=5.0, b=6.0, rng=rng)


# ---------------------------------------------------------------- Xavier, Kaiming, LeCun


def test_xavier_variance_and_bound() -> None:
    rng = np.random.default_rng(3)
    shape = (300, 500)
    target = 2.0 / 800
    w = xavier_uniform(shape, rng=rng)
    assert np.abs(w).max() <= math.sqrt(6.0 / 800)
    assert_variance(w, target)
    assert_variance(xavier_normal(shape, rng=rng), target)
    assert_variance(xavier_normal(shape, gain=5 / 3, rng=rng), target * 25 / 9)
    # Convolution kernel: fans include the receptive field.
    assert_variance(xavier_uniform((64, 32, 3, 3), rng=rng), 2.0 / (9 * 96))


def test_kaiming_variants() -> None:
    rng = np.random.default_rng(4)
    shape = (400, 250)
    assert_variance(kaiming_normal(shape, nonlinearity="relu", rng=rng), 2.0 / 250)
    assert_variance(kaiming_normal(shape, rng=rng), 2.0 / (1 + 1e-4) / 250)  # leaky 0.01
    assert_variance(kaiming_normal(shape, a=0.3, rng=rng), 2.0 / 1.09 / 250)
    assert_variance(kaiming_normal(shape, mode="fan_out", nonlinearity="relu", rng=rng), 2 / 400)
    assert_variance(kaiming_normal(shape, nonlinearity="tanh", rng=rng), (25 / 9) / 250)
    u = kaiming_uniform(shape, nonlinearity="relu", rng=rng)
    assert np.abs(u).max() <= math.sqrt(6.0 / 250)
    assert_variance(u, 2.0 / 250)


def test_torch_linear_default_is_third_of_lecun() -> None:
    rng = np.random.default_rng(5)
    w = torch_linear_default((500, 256), rng=rng)
    assert np.abs(w).max() <= 1 / math.sqrt(256)
    assert np.abs(w).max() > 0.99 / math.sqrt(256)
    assert_variance(w, 1.0 / (3 * 256))
    same = kaiming_uniform((500, 256), a=math.sqrt(5), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(w, same)


def test_lecun() -> None:
    rng = np.random.default_rng(6)
    assert_variance(lecun_normal((300, 200), rng=rng), 1 / 200)
    assert_variance(lecun_normal((300, 200), gain=2.0, rng=rng), 4 / 200)
    w = lecun_uniform((300, 200), rng=rng)
    assert np.abs(w).max() <= math.sqrt(3 / 200)
    assert_variance(w, 1 / 200)


@pytest.mark.parametrize(
    "init", [xavier_uniform, xavier_normal, lecun_normal, lecun_uniform, orthogonal]
)
def test_gain_must_be_positive(init) -> None:
    with pytest.raises(ValueError, match="gain must be a finite number > 0"):
        init((3, 3), 0.0, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="gain must be a real number"):
        init((3, 3), "1", rng=np.random.default_rng(0))


def test_kaiming_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mode must be one of"):
        kaiming_normal((3, 3), mode="fan_avg", rng=rng)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        kaiming_uniform((3, 3), nonlinearity="swish", rng=rng)
    with pytest.raises(ValueError, match="at least 2 dimension"):
        kaiming_uniform((3,), rng=rng)
    with pytest.raises(TypeError, match="negative slope"):
        kaiming_uniform((3, 3), a=None, rng=rng)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "init",
    [
        xavier_uniform,
        xavier_normal,
        kaiming_uniform,
        kaiming_normal,
        lecun_normal,
        lecun_uniform,
        orthogonal,
        torch_linear_default,
        variance_scaling,
    ],
)
def test_reproducible_from_seed(init) -> None:
    a = init((7, 5), rng=np.random.default_rng(11))
    b = init((7, 5), rng=np.random.default_rng(11))
    c = init((7, 5), rng=np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float64
    assert a.shape == (7, 5)


# ---------------------------------------------------------------- Keras variance scaling


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling(mode: str, distribution: str) -> None:
    shape = (300, 120)  # (fan_out, fan_in)
    n = {"fan_in": 120, "fan_out": 300, "fan_avg": 210}[mode]
    w = variance_scaling(shape, 2.0, mode, distribution, rng=np.random.default_rng(7))
    assert_variance(w, 2.0 / n)
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * math.sqrt(2.0 / n) / KERAS_TRUNCATED_NORMAL_STD
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3 * 2.0 / n)


def test_variance_scaling_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="distribution must be one of"):
        variance_scaling((3, 3), distribution="gaussian", rng=rng)
    with pytest.raises(ValueError, match="mode must be one of"):
        variance_scaling((3, 3), mode="avg", rng=rng)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        variance_scaling((3, 3), scale=-1.0, rng=rng)


# ---------------------------------------------------------------- orthogonal


@pytest.mark.parametrize("shape", [(6, 6), (3, 8), (8, 3), (4, 2, 3, 3)])
def test_orthogonal_is_orthonormal(shape: tuple[int, ...]) -> None:
    w = orthogonal(shape, gain=1.5, rng=np.random.default_rng(8))
    assert w.shape == shape
    flat = w.reshape(shape[0], -1) / 1.5
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_orthogonal_is_haar() -> None:
    # Under the Haar measure on O(k), every entry is symmetric about 0 and Q_00^2 has mean 1/k.
    # Without the sign fix of diag(R), LAPACK's Householder QR makes Q_00 = -|G_00| / ||G_0||,
    # always negative: the mean test below would fail by far more than 5 standard errors.
    k, trials = 4, 4000
    rng = np.random.default_rng(9)
    q = np.stack([orthogonal((k, k), rng=rng) for _ in range(trials)])
    diag = q[:, np.arange(k), np.arange(k)]
    se = math.sqrt(1.0 / k / trials)  # sd of one entry is sqrt(1/k)
    assert np.all(np.abs(diag.mean(axis=0)) < 5 * se)
    second = (q[:, 0, 0] ** 2).mean()
    assert abs(second - 1 / k) < 5 * math.sqrt(2 / (k * (k + 2)) * (k - 1) / k / trials)
    # Invariance: the law of Q and of O Q agree, compared on the top-left entry's mean square.
    o = orthogonal((k, k), rng=np.random.default_rng(10))
    # Same Beta law, so the same standard error, about 0.004 here: 0.02 is five of them.
    rotated = np.einsum("ij,tjk->tik", o, q)
    assert abs((rotated[:, 0, 0] ** 2).mean() - 1 / k) < 0.02


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_orthogonal_preserves_norms(rows: int, cols: int, seed: int) -> None:
    w = orthogonal((rows, cols), rng=np.random.default_rng(seed))
    s = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(s, 1.0, atol=1e-12)


# ---------------------------------------------------------------- the seed's recipe


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.floats(0.1, 10.0), st.integers(0, 2**32 - 1))
def test_spectral_radius_normal(k: int, radius: float, seed: int) -> None:
    w = spectral_radius_normal((k, k), radius, rng=np.random.default_rng(seed))
    assert eiginit.spectral_radius(w) == pytest.approx(radius, rel=1e-10)


def test_spectral_radius_normal_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="square"):
        spectral_radius_normal((3, 4), rng=rng)
    with pytest.raises(ValueError, match="square"):
        spectral_radius_normal((3, 3, 3), rng=rng)
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        spectral_radius_normal((3, 3), 0.0, rng=rng)


# ---------------------------------------------------------------- against PyTorch itself


def test_against_torch() -> None:
    torch = pytest.importorskip("torch")
    init = torch.nn.init
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert calculate_gain(name) == pytest.approx(init.calculate_gain(name))
    assert calculate_gain("leaky_relu", 0.3) == pytest.approx(
        init.calculate_gain("leaky_relu", 0.3)
    )
    for shape in [(64, 128), (16, 3, 5, 5), (8, 4, 3)]:
        t = torch.empty(shape)
        assert calculate_fan_in_and_fan_out(shape) == init._calculate_fan_in_and_fan_out(t)
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 500)
    w = layer.weight.detach().double().numpy()
    assert np.abs(w).max() <= 1 / 16
    assert_variance(w, 1.0 / (3 * 256))


# --- Validation mismatches and crashes found by the reviews (each failed before its fix) ---


def test_mode_and_distribution_in_any_case() -> None:
    # torch.nn.init lower-cases mode; Keras accepts upper-case names and "normal".
    a = kaiming_normal((20, 30), mode="FAN_IN", rng=np.random.default_rng(0))
    b = kaiming_normal((20, 30), mode="fan_in", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    c = variance_scaling(
        (20, 30), mode="Fan_Avg", distribution="UNIFORM", rng=np.random.default_rng(0)
    )
    d = variance_scaling(
        (20, 30), mode="fan_avg", distribution="uniform", rng=np.random.default_rng(0)
    )
    np.testing.assert_array_equal(c, d)
    e = variance_scaling((20, 30), distribution="normal", rng=np.random.default_rng(0))
    f = variance_scaling((20, 30), distribution="truncated_normal", rng=np.random.default_rng(0))
    np.testing.assert_array_equal(e, f)


def test_huge_negative_slopes_do_not_overflow() -> None:
    assert calculate_gain("leaky_relu", 1e200) == pytest.approx(math.sqrt(2) / 1e200)
    w = kaiming_uniform((4, 5), a=1e200, rng=np.random.default_rng(0))
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize(
    "call",
    [
        lambda rng: uniform((3, 3), -1e308, 1e308, rng=rng),
        lambda rng: xavier_uniform((3, 3), gain=1e308, rng=rng),
        lambda rng: lecun_uniform((3, 3), gain=1e308, rng=rng),
        lambda rng: normal((3, 3), mean=1e308, std=1e308, rng=rng),
    ],
)
def test_overflowing_parameters_are_refused(call) -> None:
    with pytest.raises(ValueError, match="float64"):
        call(np.random.default_rng(0))


def test_shapes_as_arrays_and_beyond_memory() -> None:
    rng = np.random.default_rng(0)
    assert xavier_normal(np.array([3, 4]), rng=rng).shape == (3, 4)
    with pytest.raises(ValueError, match="more than any float64 array can hold"):
        normal((2**40, 2**40), rng=rng)
    with pytest.raises(ValueError, match="at least one dimension") as info:
        normal((), rng=rng)
    assert "fan" not in str(info.value)  # normal has no fans


def test_calculate_gain_checks_param_for_every_nonlinearity() -> None:
    from fractions import Fraction

    with pytest.raises(TypeError, match="param"):
        calculate_gain("relu", "x")  # type: ignore[arg-type]
    assert calculate_gain("leaky_relu", Fraction(1, 5)) == pytest.approx(
        calculate_gain("leaky_relu", 0.2)
    )
