"""Input checks shared by every public function of :mod:`eiginit`.

Each check either returns a clean numpy value or raises :class:`TypeError` (wrong kind of
object) or :class:`ValueError` (right kind, wrong value) with a message that names the
argument, says what was received and what was expected. Public functions call these first,
so nothing downstream ever sees NaN, infinities or shapes it cannot handle. Overflow and
underflow that a computation would create from finite input are a separate matter: the
iterations scale their matrices and vectors by powers of two (``eiginit._numerics``) and
refuse, with a message, only results that float64 cannot hold.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_array_of",
    "as_int_array",
    "as_matrix",
    "as_real_array",
    "as_real_array_for",
    "as_square_matrix",
    "as_square_stack",
    "as_vector",
    "check_bool",
    "check_callable",
    "check_entries",
    "check_float_dtype",
    "check_int",
    "check_positive_float",
    "check_real",
    "check_rng",
    "check_tol",
    "check_widths",
]

# The largest int64, the widest integer type every function here converts to.
_INT64_MAX = int(np.iinfo(np.int64).max)


def _describe(value: Any) -> str:
    """Say briefly what *value* is, for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_array_of(
    value: Any, name: str, *, kinds: str = "biuf", what: str = "real numbers", layout: str = ""
) -> np.ndarray:
    """Return ``np.asarray(value)``, refusing strings, ragged nesting and other element kinds.

    `kinds` are the numpy dtype kinds allowed (``"biuf"``: bool, integers, floats; ``"iu"``:
    integers), `what` names them in the message, and `layout` ("flat", "rectangular") says what
    shape of array was expected. No copy, no cast, no finiteness check: the callers add those.
    """
    an_array = f"a {layout} array" if layout else "an array"
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be {an_array} of {what}, got {_describe(value)}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists, for example
        raise TypeError(f"{name} must be {an_array} of {what}, got {_describe(value)}") from error
    if array.dtype.kind not in kinds:
        raise TypeError(
            f"{name} must hold {what}, got {_describe(value)}"
            + (" (complex input is not supported)" if array.dtype.kind == "c" else "")
        )
    return array


def _as_real_array(value: Any, name: str, *, keep_float32: bool = False) -> np.ndarray:
    """Convert to a float64 array, refusing non-numeric, complex and non-finite input.

    With `keep_float32`, float32 (and float16, promoted to float32) input stays float32.
    """
    array = as_array_of(value, name)
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        # long double: entries beyond float64's range would become infinite in the cast.
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries")
        if np.any(np.abs(array) > np.finfo(np.float64).max):
            raise ValueError(
                f"{name} has entries beyond float64's range (above 1.8e308 in magnitude); "
                "expected values float64 can hold"
            )
    small = keep_float32 and array.dtype.kind == "f" and array.dtype.itemsize <= 4
    array = array.astype(np.float32 if small else np.float64, copy=True)
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite entries")
    return array


def as_real_array(value: Any, name: str, *, keep_float32: bool = False) -> np.ndarray:
    """Return *value* (a scalar or an array of any shape) as a finite float64 array (a copy).

    With `keep_float32`, float32 input stays float32 (float16 becomes float32).
    """
    return _as_real_array(value, name, keep_float32=keep_float32)


def as_int_array(value: Any, name: str, *, minimum: int = 0) -> np.ndarray:
    """Return *value* (an integer or an array of integers) as an int64 array, all >= *minimum*.

    Floats are refused even when they hold whole numbers, as :func:`check_int` refuses them.
    """
    expected = "an integer or an array of integers"
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be {expected}, got {_describe(value)}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists, for example
        raise TypeError(f"{name} must be {expected}, got {_describe(value)}") from error
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be {expected}, got {_describe(value)}")
    if np.any(array < minimum):
        raise ValueError(
            f"{name} must be >= {minimum} everywhere, got {int(np.min(array))} among its values"
        )
    if array.dtype.kind == "u" and int(np.max(array)) > _INT64_MAX:
        # Checked before the cast: unsigned values of 2**63 or more would wrap to negative.
        raise ValueError(
            f"{name} must be at most {_INT64_MAX} (int64), got {int(np.max(array))} among "
            "its values"
        )
    return array.astype(np.int64)


def as_matrix(value: Any, name: str = "A") -> np.ndarray:
    """Return *value* as a finite, non-empty 2-D float64 array (a copy)."""
    array = _as_real_array(value, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got {array.ndim}-D with shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    return array


def as_square_matrix(value: Any, name: str = "A") -> np.ndarray:
    """Return *value* as a finite, non-empty, square 2-D float64 array (a copy)."""
    array = as_matrix(value, name)
    if array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be square (k x k), got shape {array.shape}")
    return array


def as_square_stack(value: Any, name: str = "A") -> tuple[np.ndarray, bool]:
    """Return *value* as a float64 stack of square matrices, shape (trials, k, k).

    A single (k, k) matrix is accepted too; the flag says whether that was the case.
    """
    array = _as_real_array(value, name)
    if array.ndim == 2:
        return as_square_matrix(array, name)[np.newaxis], True
    if array.ndim != 3 or array.shape[1] != array.shape[2] or array.size == 0:
        raise ValueError(
            f"{name} must have shape (k, k) or (trials, k, k) with trials, k >= 1, "
            f"got shape {array.shape}"
        )
    return array, False


def as_vector(value: Any, length: int, name: str = "x") -> np.ndarray:
    """Return *value* as a finite 1-D float64 array of the given length (a copy)."""
    array = _as_real_array(value, name)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D vector, got {array.ndim}-D with shape {array.shape}"
        )
    if array.shape[0] != length:
        raise ValueError(
            f"{name} must have length {length} to match the matrix, got length {array.shape[0]}"
        )
    return array


def check_int(value: Any, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Return *value* as an ``int`` >= *minimum* and, if *maximum* is given, <= *maximum*."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}")
    return int(value)


def check_widths(value: Any, name: str) -> tuple[int, ...]:
    """Return *value*, a network's layer widths ``(n_0, ..., n_L)``, as a tuple of ints >= 1."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a sequence of layer widths (n_0, ..., n_L), got {_describe(value)}"
        )
    widths = tuple(check_int(n, "each layer width", minimum=1) for n in value)
    if len(widths) < 2:
        raise ValueError(
            f"{name} must list at least an input and an output width, got {list(widths)}"
        )
    return widths


def check_real(value: Any, name: str) -> float:
    """Return *value*, a real number (int, float, Fraction, numpy scalar), as a finite ``float``.

    Integers beyond float64's range (``10**400``) are refused as not finite, not left to numpy.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {str(value)[:60]}")
    return number


def check_positive_float(value: Any, name: str) -> float:
    """Return *value* as a finite ``float`` greater than zero."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {str(value)[:60]}")
    return number


def check_tol(value: Any, name: str = "tol") -> float:
    """Return a relative residual tolerance, a finite ``float`` with ``0 < tol < 1``.

    The residual tests of the iterative solvers compare a residual with ``tol * ||A||_F``; the
    residual of a unit vector never exceeds ``||A||_2 <= ||A||_F``, so ``tol >= 1`` would be met
    by every vector and certify nothing.
    """
    tol = check_positive_float(value, name)
    if tol >= 1:
        raise ValueError(
            f"{name} must be < 1 (a relative residual of 1 or more is met by every unit vector), "
            f"got {tol}"
        )
    return tol


def check_bool(value: Any, name: str) -> bool:
    """Return *value* if it is ``True`` or ``False`` (numpy booleans included)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_callable(value: Any, name: str, signature: str) -> Any:
    """Return *value* if it is callable; *signature* says how it is called, for the message."""
    if not callable(value):
        raise TypeError(f"{name} must be a callable {signature}, got {_describe(value)}")
    return value


def check_rng(rng: Any) -> np.random.Generator:
    """Return *rng* if it is a :class:`numpy.random.Generator`, else raise TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator (for example np.random.default_rng(0)), "
            f"got {_describe(rng)}"
        )
    return rng


# --- Part V (recurrent, curvature, datasets, batched; residual, convolution, parametrization)
# Checks for the Part V modules: the floating-point type of a network, arrays that must fit into
# it, and sizes. numpy casts 1e300 to float32 as inf without a word, np.dtype(None) is float64,
# and a size of 10**6 reaches the allocator ("Unable to allocate 7.28 TiB"), so none of these
# can be left to numpy.

#: The most entries an array built from size arguments may hold (400 MB in float64); larger
#: requests are refused with a message instead of reaching the allocator.
MAX_ENTRIES = 50_000_000


def check_entries(entries: int, what: str, sizes: str) -> None:
    """Refuse to build `what` when it would hold more than :data:`MAX_ENTRIES` entries.

    `sizes` names the arguments that set the size, for the message.
    """
    if entries > MAX_ENTRIES:
        count = f"{entries:.3g}" if entries < 1e300 else f"about 1e{len(str(entries)) - 1}"
        raise ValueError(
            f"{what} would hold {count} entries, more than {MAX_ENTRIES:.0e} (400 MB in "
            f"float64); use smaller {sizes}"
        )


def check_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Return `dtype` as a numpy dtype if it is float32 or float64 (an integer would truncate).

    None is refused too: numpy reads it as float64, which would hide a missing argument.
    """
    if dtype is None:
        raise TypeError(f"{name} must be np.float32 or np.float64, got None")
    try:
        checked = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(
            f"{name} must be a numpy float dtype (np.float32 or np.float64), got {_describe(dtype)}"
        ) from error
    if checked not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be float32 or float64, got {checked}")
    return checked


def check_rates(value: Any, replicas: int, name: str = "lr") -> np.ndarray:
    """Return learning rates, one finite number > 0 or one per replica, as a float64 (R,) array.

    Booleans, strings and complex numbers are refused, not read as numbers.
    """
    what = f"positive real numbers (one, or one per replica: {replicas})"
    rates = _as_real_array(as_array_of(value, name, kinds="iuf", what=what), name)
    if rates.ndim == 0:
        rates = np.full(replicas, float(rates))
    if rates.shape != (replicas,):
        raise ValueError(
            f"{name} must be one number or {replicas} numbers (one per replica), got shape "
            f"{rates.shape}"
        )
    if np.any(rates <= 0):
        raise ValueError(f"{name} must be > 0 for every replica, got {rates.tolist()}"[:200])
    return rates


def check_betas(value: Any, name: str = "betas") -> tuple[float, float]:
    """Return Adam's ``(beta1, beta2)``, each a real number in [0, 1)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {_describe(value)}")
    checked = []
    for part, beta in zip(("beta1", "beta2"), value, strict=True):
        number = check_real(beta, part)
        if not 0 <= number < 1:
            # beta1 = 1 divides by 1 - beta1**t = 0; beta2 > 1 takes the root of a negative.
            raise ValueError(f"{part} must be a real number in [0, 1), got {number}")
        checked.append(number)
    return checked[0], checked[1]


def cast_finite(array: np.ndarray, dtype: Any, name: str) -> np.ndarray:
    """Return ``array.astype(dtype)``, refusing entries beyond the range of `dtype` (float32)."""
    with np.errstate(over="ignore"):
        cast = array.astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise ValueError(
            f"{name} has entries beyond {cast.dtype}'s range (at most "
            f"{np.finfo(cast.dtype).max:.1e} in magnitude), the dtype of the network; use "
            "smaller values or float64"
        )
    return cast


def as_real_array_for(value: Any, name: str, dtype: Any) -> np.ndarray:
    """Return *value* as a finite real array of *dtype* (float32 or float64), a copy.

    Refuses strings, ragged nesting, complex and object arrays, NaN and infinities, and
    entries beyond the range of *dtype* (for float32, above 3.4e38 in modulus), which a plain
    cast would turn into infinities.
    """
    dtype = check_float_dtype(dtype)
    array = _as_real_array(value, name)
    if array.size and dtype != array.dtype:
        limit = float(np.finfo(dtype).max)
        if float(np.max(np.abs(array))) > limit:
            raise ValueError(
                f"{name} has entries beyond {dtype}'s range (above {limit:.2g} in modulus); "
                f"expected values a {dtype} array can hold"
            )
    return array.astype(dtype)


def check_replica_params(params: Any) -> list[np.ndarray]:
    """Return a model's parameter arrays as a list, refusing anything but the engine's layout.

    Every array float32 or float64, one dtype, and the replica count R as the leading axis.
    """
    if isinstance(params, np.ndarray) or not isinstance(params, Sequence) or not params:
        raise TypeError(
            f"params must be a non-empty list of arrays, each with the replica axis first, got "
            f"{_describe(params)}"
        )
    arrays = list(params)
    for i, p in enumerate(arrays):
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            raise TypeError(f"params[{i}] must be a float32 or float64 array, got {_describe(p)}")
        if p.ndim < 1 or p.shape[0] != arrays[0].shape[0] or p.dtype != arrays[0].dtype:
            raise ValueError(
                f"params[{i}] must have the replica axis first ({arrays[0].shape[0]}) and dtype "
                f"{arrays[0].dtype} like params[0], got {_describe(p)}"
            )
    return arrays
