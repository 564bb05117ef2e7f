"""Tests for eiginit._checks, the shared input checks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from eiginit._checks import (
    as_int_array,
    as_real_array,
    check_bool,
    check_callable,
    check_int,
    check_positive_float,
    check_real,
    check_tol,
)


def test_fractions_and_huge_integers() -> None:
    # np.isfinite(Fraction) raised numpy's "ufunc 'isfinite' not supported".
    assert check_positive_float(Fraction(1, 1000), "tol") == 0.001
    assert check_real(Fraction(-3, 2), "x") == -1.5
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        check_positive_float(10**400, "tol")
    with pytest.raises(ValueError, match="x must be a finite number"):
        check_real(-(10**400), "x")
    with pytest.raises(TypeError, match="x must be a real number"):
        check_real(True, "x")


def test_unsigned_integers_do_not_wrap() -> None:
    with pytest.raises(ValueError, match="at most 9223372036854775807"):
        as_int_array(np.array([1, 2**64 - 1], dtype=np.uint64), "k")
    assert as_int_array(np.uint64(2**63 - 1), "k").dtype == np.int64


def test_check_int_bounds() -> None:
    assert check_int(5, "n", minimum=1, maximum=5) == 5
    with pytest.raises(ValueError, match="n must be an integer <= 5, got 6"):
        check_int(6, "n", maximum=5)


def test_long_double_beyond_float64_is_named() -> None:
    big = np.array([np.finfo(np.longdouble).max], dtype=np.longdouble)
    if np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(ValueError, match="beyond float64's range"):
        as_real_array(big, "A")


def test_keep_float32() -> None:
    assert as_real_array(np.ones(2, np.float32), "h", keep_float32=True).dtype == np.float32
    assert as_real_array(np.ones(2, np.float16), "h", keep_float32=True).dtype == np.float32
    assert as_real_array([1, 2], "h", keep_float32=True).dtype == np.float64


def test_bool_callable_tol() -> None:
    assert check_bool(np.True_, "log") is True
    with pytest.raises(TypeError, match="log must be True or False"):
        check_bool(1, "log")
    with pytest.raises(TypeError, match="f must be a callable f"):
        check_callable(None, "f", "f(x)")
    assert check_tol(1e-12) == 1e-12
    with pytest.raises(ValueError, match="tol must be < 1"):
        check_tol(1.0)


def test_as_array_of_refuses_strings_ragged_and_other_kinds():
    from eiginit._checks import as_array_of

    assert as_array_of([1, 2], "x").dtype.kind == "i"
    with pytest.raises(TypeError, match="x must be an array of real numbers"):
        as_array_of("12", "x")
    with pytest.raises(TypeError, match="y must be a flat array of integers"):
        as_array_of([[1], [2, 3]], "y", kinds="iu", what="integers", layout="flat")
    with pytest.raises(TypeError, match=r"must hold integers, got .*"):
        as_array_of([1.5], "y", kinds="iu", what="integers")
    with pytest.raises(TypeError, match="complex input is not supported"):
        as_array_of([1j], "z")
