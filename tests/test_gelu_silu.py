"""GELU and SiLU in eiginit's activations and mean-field theory, against independent numerics.

The references here share no code with eiginit: GELU from ``math.erf`` (eiginit uses
``math.erfc``), Gaussian expectations by the trapezoid rule on a fine grid over [-40, 40]
(eiginit uses Gauss-Legendre on each half-line) or by Monte Carlo with a seeded Generator,
fixed points and the critical line by root-finds written here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import eiginit
from eiginit import (
    activation_derivative,
    activation_function,
    apply_activation,
    critical_sigma_w2,
    gaussian_expectation,
    mean_field,
    q_star,
    variance_recursion,
)
from eiginit.theory.curvature import _second_derivative
from eiginit.training.study import CRITICAL_SIGMA_B2

NAMES = ("gelu", "silu")

# --- independent references ----------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[float])


def ref_phi(name: str, h: np.ndarray) -> np.ndarray:
    """GELU from erf (loses relative digits below about h = -3: see test_gelu_tail), SiLU from
    tanh (sigma(h) = (1 + tanh(h / 2)) / 2, no overflow)."""
    h = np.asarray(h, dtype=float)
    if name == "gelu":
        return h * 0.5 * (1.0 + _erf(h / math.sqrt(2.0)))
    return h * 0.5 * (1.0 + np.tanh(0.5 * h))


def ref_dphi(name: str, h: np.ndarray) -> np.ndarray:
    """The derivative written out from the reference by central differences of ref_phi."""
    eps = 1e-6
    return (ref_phi(name, h + eps) - ref_phi(name, h - eps)) / (2 * eps)


# The trapezoid rule on a grid of step 0.02 over [-40, 40]: for these entire (GELU) or
# pole-free-near-the-real-axis (SiLU) integrands times a Gaussian it is accurate to rounding.
_Z = np.linspace(-40.0, 40.0, 4001)
_W = np.exp(-0.5 * _Z**2) / math.sqrt(2 * math.pi) * (_Z[1] - _Z[0])


def expect(f, q: float) -> float:
    return float(f(math.sqrt(q) * _Z) @ _W)


def length_map(name: str, q: float, sw2: float, sb2: float) -> float:
    return sw2 * expect(lambda h: ref_phi(name, h) ** 2, q) + sb2


def chi_1(name: str, q: float, sw2: float) -> float:
    return sw2 * expect(lambda h: ref_dphi(name, h) ** 2, q)


def bisect(f, lo: float, hi: float, steps: int = 80) -> float:
    flo = f(lo)
    assert flo * f(hi) < 0, "no sign change in the bracket"
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (flo > 0):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --- the functions themselves -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_values_match_reference(name: str) -> None:
    h = np.linspace(-3, 30, 331)
    np.testing.assert_allclose(apply_activation(name, h), ref_phi(name, h), rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(apply_activation(name, [-1e300, 1e300])))
    assert np.all(np.isfinite(activation_derivative(name, [-1e300, 1e300])))
    assert np.all(np.isfinite(_second_derivative(name, np.array([-1e300, 1e300]))))


def test_gelu_tail() -> None:
    # Far below zero GELU is h Phi(h), tiny but not zero: 50-digit references from mpmath.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    h = np.array([-3.5, -8.0, -20.0, -37.0])
    ref = [float(x * mpmath.ncdf(x)) for x in h]
    dref = [float(mpmath.ncdf(x) + x * mpmath.npdf(x)) for x in h]
    np.testing.assert_allclose(apply_activation("gelu", h), ref, rtol=1e-13)
    np.testing.assert_allclose(activation_derivative("gelu", h), dref, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_finite_differences(name: str) -> None:
    h = np.linspace(-8, 8, 321) + 0.013
    eps = 1e-6
    first = (ref_phi(name, h + eps) - ref_phi(name, h - eps)) / (2 * eps)
    np.testing.assert_allclose(activation_derivative(name, h), first, rtol=1e-7, atol=1e-9)
    second = (activation_derivative(name, h + eps) - activation_derivative(name, h - eps)) / (
        2 * eps
    )
    np.testing.assert_allclose(_second_derivative(name, h), second, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name: str) -> None:
    h = np.linspace(-3, 3, 7, dtype=np.float32)
    assert apply_activation(name, h).dtype == np.float32
    assert activation_derivative(name, h).dtype == np.float32
    np.testing.assert_allclose(apply_activation(name, h), ref_phi(name, h), rtol=1e-6, atol=1e-7)


def test_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    h = np.linspace(-12, 12, 241)
    for name, fn in [
        ("gelu", lambda t: torch.nn.functional.gelu(t, approximate="none")),
        ("silu", torch.nn.functional.silu),
    ]:
        t = torch.tensor(h, requires_grad=True)
        out = fn(t)
        (grad,) = torch.autograd.grad(out.sum(), t)
        # torch's GELU is 0 below about -10 (1 + erf cancels); eiginit keeps h Phi(h).
        np.testing.assert_allclose(
            apply_activation(name, h), out.detach().numpy(), rtol=1e-14, atol=1e-15
        )
        np.testing.assert_allclose(
            activation_derivative(name, h), grad.numpy(), rtol=1e-13, atol=1e-15
        )
    # torch.nn.GELU() defaults to the exact form, the one eiginit implements.
    assert torch.nn.GELU().approximate == "none"


# --- Gaussian expectations ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("q", [0.01, 1.0, 7.0])
def test_gaussian_expectations_match_trapezoid(name: str, q: float) -> None:
    phi, dphi = activation_function(name)
    for ours, ref in [
        (lambda h: phi(h) ** 2, lambda h: ref_phi(name, h) ** 2),
        (lambda h: dphi(h) ** 2, lambda h: ref_dphi(name, h) ** 2),
        (phi, lambda h: ref_phi(name, h)),
    ]:
        assert float(gaussian_expectation(ours, q)) == pytest.approx(expect(ref, q), rel=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_gaussian_expectations_match_monte_carlo(name: str) -> None:
    phi, dphi = activation_function(name)
    z = np.random.default_rng(2016).standard_normal(400_000) * math.sqrt(2.0)
    for f in (lambda h: phi(h) ** 2, lambda h: dphi(h) ** 2):
        sample = f(z)
        se = sample.std() / math.sqrt(sample.size)
        assert abs(float(gaussian_expectation(f, 2.0)) - sample.mean()) < 5 * se


def test_small_variance_limits() -> None:
    # phi(h) = h / 2 + O(h^2) for both: E[phi^2] / q -> 1/4 and E[phi'^2] -> 1/4 as q -> 0,
    # and the ReLU values 1/2 as q -> infinity.
    for name in NAMES:
        phi, dphi = activation_function(name)
        square, slope = (lambda h, f=phi: f(h) ** 2), (lambda h, f=dphi: f(h) ** 2)
        assert float(gaussian_expectation(square, 1e-8)) / 1e-8 == pytest.approx(0.25, rel=1e-3)
        assert float(gaussian_expectation(slope, 1e-8)) == pytest.approx(0.25, rel=1e-3)
        assert float(gaussian_expectation(square, 1e8)) / 1e8 == pytest.approx(0.5, rel=1e-3)


# --- mean field -------------------------------------------------------------------------------


def reached_fixed_point(name: str, sw2: float, sb2: float) -> float:
    """The fixed point the length map reaches from q = 1: iterate, then bisect on F(q) - q."""
    q = 1.0
    for _ in range(60):
        q = length_map(name, q, sw2, sb2)
    assert q < 1e3, "the variance grows"
    g = lambda p: length_map(name, p, sw2, sb2) - p  # noqa: E731
    return bisect(g, q * 0.5, q * 2.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("sw2", "sb2"), [(2.0, CRITICAL_SIGMA_B2), (1.5, 0.1), (1.9, 0.3)])
def test_q_star_and_chi_1_match_direct_quadrature(name: str, sw2: float, sb2: float) -> None:
    q = reached_fixed_point(name, sw2, sb2)
    assert float(q_star(sw2, sb2, name)) == pytest.approx(q, rel=1e-9)
    mf = mean_field(sw2, sb2, name)
    assert float(mf.q_star) == pytest.approx(q, rel=1e-9)
    assert float(mf.chi_1) == pytest.approx(chi_1(name, q, sw2), rel=1e-6)
    # In the ordered phase the correlation map's slope at c* = 1 is chi_1 itself.
    assert float(mf.c_star) == 1.0
    assert float(mf.chi_c) == float(mf.chi_1)


@pytest.mark.parametrize("name", NAMES)
def test_kaiming_is_ordered_at_small_bias(name: str) -> None:
    # Near 0 both act like h / 2, so sigma_w^2 = 2 halves the variance per layer: q* ~ 2 sb2
    # and chi_1 ~ 2 / 4.
    mf = mean_field(2.0, CRITICAL_SIGMA_B2, name)
    assert float(mf.q_star) == pytest.approx(2 * CRITICAL_SIGMA_B2, rel=1e-2)
    assert float(mf.chi_1) == pytest.approx(0.5, rel=1e-3)
    assert not bool(mf.chaotic)


@pytest.mark.parametrize("name", NAMES)
def test_mean_field_gain_keeps_unit_variance(name: str) -> None:
    # The sigma_w^2 that makes q = 1 a fixed point without bias, 1 / E[phi(z)^2] (torch has no
    # gain for either: see test_torch_has_no_gain). It is where q* = 0 gives way to unbounded
    # growth, followed from q = 1, and where critical_sigma_w2 reports a jump.
    sw2 = 1.0 / expect(lambda h: ref_phi(name, h) ** 2, 1.0)
    rec = variance_recursion([50] * 7, [1 / 50] + [sw2 / 50] * 5, name)
    np.testing.assert_allclose(rec.preactivation, 1.0, rtol=1e-9)
    assert q_star(sw2 * (1 - 1e-6), 0.0, name) == 0.0
    with pytest.raises(ValueError, match="grows without bound"):
        q_star(sw2 * (1 + 1e-6), 0.0, name)
    # chi_1 leaps from sigma_w^2 E[phi'(0)^2] = sigma_w^2 / 4 (q* = 0) to sigma_w^2 / 2 (ReLU's).
    jump = f"jumps from {sw2 / 4:.4f} to {sw2 / 2:.4f} at sigma_w2 = "
    with pytest.raises(ValueError, match=f"no critical line for {name} .* {jump}") as error:
        critical_sigma_w2(0.0, name)
    where = float(str(error.value).split("at sigma_w2 = ")[1].split(",")[0])
    assert where == pytest.approx(sw2, abs=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_two_basins(name: str) -> None:
    # sigma_w^2 = 3 without bias: a small variance dies out, a large one grows (q_star docstring).
    q_small, q_large = 0.05, 20.0
    for _ in range(40):
        q_small, q_large = length_map(name, q_small, 3.0, 0.0), length_map(name, q_large, 3.0, 0.0)
    assert q_small < 1e-4
    assert q_large > 1e3


def test_critical_line_matches_root_find() -> None:
    # Where a critical point is reached from q = 1 (GELU from a bias of about 0.2, SiLU from
    # about 1): on the critical line sigma_w^2 = 1 / E[phi'^2] at q*, and the bias follows from
    # the fixed point, sb2(q) = q - sigma_w^2 E[phi^2]; solve sb2(q) = target for q.
    for name, sb2 in [("gelu", 0.3), ("gelu", 0.5), ("silu", 1.0)]:

        def sw2_of(q: float, name: str = name) -> float:
            return 1.0 / expect(lambda h: ref_dphi(name, h) ** 2, q)

        def excess(q: float, name: str = name, sb2: float = sb2) -> float:
            return q - sw2_of(q) * expect(lambda h: ref_phi(name, h) ** 2, q) - sb2

        q = bisect(excess, 1.0, 200.0, steps=50)
        expected = sw2_of(q)
        assert critical_sigma_w2(sb2, name) == pytest.approx(expected, rel=1e-6)
        assert float(q_star(expected, sb2, name)) == pytest.approx(q, rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_no_critical_line_at_small_bias(name: str) -> None:
    with pytest.raises(ValueError, match=f"no critical line for {name} at sigma_b2 = 5e-06"):
        critical_sigma_w2(CRITICAL_SIGMA_B2, name)
    with pytest.raises(ValueError, match=r"sigma_b2 = 0\.01"):  # arrays name the first bad bias
        critical_sigma_w2([0.5, 0.01], "gelu")


def test_chaotic_phase_runs() -> None:
    # GELU with a bias: past its critical line (1.956 at sb2 = 0.3) c* < 1 and chi_c < 1.
    mf = mean_field([1.8, 1.97], 0.3, "gelu")
    assert mf.chaotic.tolist() == [False, True]
    assert float(mf.c_star[1]) < 1
    assert 0 < float(mf.chi_c[1]) < 1
    assert float(mf.q_star[1]) == pytest.approx(reached_fixed_point("gelu", 1.97, 0.3), rel=1e-9)
    # At sigma_w^2 = 2 the map stays above the diagonal (by less than the rule resolves at large
    # q): no fixed point, not one made of rounding.
    assert length_map("gelu", 1e4, 2.0, 0.3) > 1e4
    with pytest.raises(ValueError, match="grows without bound"):
        mean_field(2.0, 0.3, "gelu")


def test_torch_has_no_gain() -> None:
    torch = pytest.importorskip("torch")
    for name in NAMES:
        with pytest.raises(ValueError, match="Unsupported nonlinearity"):
            torch.nn.init.calculate_gain(name)
        with pytest.raises(ValueError, match="nonlinearity"):  # eiginit's copy of torch's table
            eiginit.calculate_gain(name)
