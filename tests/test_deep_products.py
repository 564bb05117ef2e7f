"""Singular values of deep products (eiginit.linalg.deep_products) against 50-digit arithmetic."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from eiginit import ResidualStack
from eiginit.linalg.deep_products import product_singular_values
from eiginit.models.residual import residual_block_jacobians


def _exact_log10_singular_values(factors: np.ndarray, digits: int = 50) -> np.ndarray:
    """log10 of the singular values of factors[-1] @ ... @ factors[0], at `digits` digits."""
    with mpmath.workdps(digits):
        n = factors.shape[1]
        J = mpmath.eye(n)
        for A in factors:  # every float64 entry is exact in mpmath
            J = mpmath.matrix(A.tolist()) * J
        s = mpmath.svd_r(J, compute_uv=False)
        return np.sort([float(mpmath.log10(v)) for v in s])[::-1]


@pytest.fixture(scope="module")
def deep_residual():
    """An unscaled (alpha = 1) residual stack, width 12, depth 80: a spread past float64."""
    rng = np.random.default_rng(7)
    stack = ResidualStack.create(12, 80, rng=rng, alpha=1.0)
    x = rng.standard_normal(12)
    return stack, x


def test_block_jacobians_multiply_to_the_stacks_jacobian(deep_residual):
    stack, x = deep_residual
    factors = residual_block_jacobians(stack, x)
    J = np.eye(12)
    for A in factors:
        J = A @ J
    direct = stack.jacobian(x[None, :])[0, 0]
    assert np.linalg.norm(J - direct) <= 1e-12 * np.linalg.norm(direct)


def test_singular_values_match_fifty_digit_arithmetic(deep_residual):
    stack, x = deep_residual
    factors = residual_block_jacobians(stack, x)
    exact = _exact_log10_singular_values(factors)
    got = product_singular_values(factors)
    assert exact[0] - exact[-1] > 20  # far beyond what float64 resolves in one SVD
    np.testing.assert_allclose(got.log10_singular_values, exact, rtol=0, atol=1e-9)
    assert got.log10_abs_det == pytest.approx(exact.sum(), abs=1e-9)
    assert got.spread == pytest.approx(exact[0] - exact[-1], abs=1e-9)


def test_a_direct_svd_of_the_formed_product_gets_the_small_values_wrong(deep_residual):
    # The reason for the module: the same product, formed and decomposed in float64.
    stack, x = deep_residual
    exact = _exact_log10_singular_values(residual_block_jacobians(stack, x))
    direct = np.log10(np.linalg.svd(stack.jacobian(x[None, :])[0, 0], compute_uv=False))
    assert abs(direct[0] - exact[0]) < 1e-9  # the top is fine
    assert direct[-1] - exact[-1] > 5  # the bottom is rounding, many decades too large


def test_small_scaled_product_also_matches():
    rng = np.random.default_rng(3)
    factors = np.eye(6) + 0.4 * rng.standard_normal((25, 6, 6))
    exact = _exact_log10_singular_values(factors)
    got = product_singular_values(factors).log10_singular_values
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-9)


def test_products_beyond_float64_range_are_tracked_in_log_space():
    factors = np.broadcast_to(np.diag([1e20, 1e10]), (20, 2, 2))  # 1e400 and 1e200
    got = product_singular_values(factors)
    np.testing.assert_allclose(got.log10_singular_values, [400.0, 200.0], atol=1e-9)
    assert got.log10_abs_det == pytest.approx(600.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="singular"):
        product_singular_values(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"shape \(L, n, n\)"):
        product_singular_values(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="real numbers"):
        product_singular_values(np.array([[["a"]]]))
    with pytest.raises(ValueError, match="finite"):
        product_singular_values(np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="float64's range"):
        product_singular_values(np.broadcast_to(np.diag([1e200, 1e-200]), (2, 2, 2)))
    stack = ResidualStack.create(3, 2, rng=np.random.default_rng(0), norm="batch")
    with pytest.raises(ValueError, match="without normalization"):
        residual_block_jacobians(stack, np.ones(3))
    with pytest.raises(TypeError, match="ResidualStack"):
        residual_block_jacobians(np.eye(3), np.ones(3))
    plain = ResidualStack.create(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        residual_block_jacobians(plain, np.ones(4))
