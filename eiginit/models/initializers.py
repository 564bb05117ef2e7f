"""Weight initializers named and meant as in ``torch.nn.init``, plus Keras's and the seed's.

Used from Part III of the book on (chapter "Variance scaling with nonlinearities" derives and
audits them; the chapters on the backward pass and on training use them). Every initializer
returns a **new float64 array** of the requested `shape` and draws only from the keyword-only
``rng: numpy.random.Generator``, so a figure is reproduced by its seed.

Conventions follow PyTorch (Paszke et al. 2019), so what a reader learns here transfers:

- A weight matrix has shape ``(fan_out, fan_in)``: ``W @ x`` maps a ``fan_in`` vector to a
  ``fan_out`` vector. With more than two dimensions (convolutions) the fans are multiplied by the
  receptive field, ``prod(shape[2:])``, exactly as ``torch.nn.init`` does
  (:func:`calculate_fan_in_and_fan_out`).
- :func:`calculate_gain` is PyTorch's table of gains.
- :func:`trunc_normal` takes **absolute** cut-offs ``a, b``, as ``torch.nn.init.trunc_normal_``.

Keras's ``VarianceScaling`` (and so its Glorot, LeCun and He presets) is :func:`variance_scaling`,
in the same ``(fan_out, fan_in)`` layout. The seed blog post's recipe, a Gaussian matrix divided by
its spectral radius, is :func:`spectral_radius_normal`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from eiginit._checks import check_positive_float, check_real, check_rng

__all__ = [
    "KERAS_TRUNCATED_NORMAL_STD",
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "orthogonal",
    "spectral_radius_normal",
    "torch_linear_default",
    "trunc_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
]

#: The standard deviation of a standard normal truncated to [-2, 2]: Keras divides by it so that
#: its truncated normal keeps the requested variance.
KERAS_TRUNCATED_NORMAL_STD = 0.87962566103423978

_LINEAR_LIKE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
_NONLINEARITIES = (*_LINEAR_LIKE, "tanh", "relu", "leaky_relu", "selu")
_MODES = ("fan_in", "fan_out")
_KERAS_MODES = ("fan_in", "fan_out", "fan_avg")
_KERAS_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
# Truncated draws are by rejection; refuse intervals that hold almost none of the normal's mass.
_MIN_TRUNCATED_MASS = 1e-4
# Arrays of more entries than this cannot be addressed (8-byte float64 entries).
_MAX_ENTRIES = int(np.iinfo(np.intp).max) // 8


def _as_shape(shape: Any, *, min_ndim: int = 1) -> tuple[int, ...]:
    """Return *shape* as a tuple of positive ints with at least *min_ndim* entries."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = tuple(shape.tolist())
    if not isinstance(shape, Sequence) or isinstance(shape, str | bytes):
        raise TypeError(
            f"shape must be an int or a sequence of ints such as (fan_out, fan_in), got "
            f"{type(shape).__name__} {shape!r}"[:160]
        )
    dims = tuple(shape)
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"shape must hold ints, got {dims!r}"[:160])
    if len(dims) < min_ndim:
        raise ValueError(
            f"shape must have at least {min_ndim} dimension(s) to define fan_in and fan_out "
            f"(a weight is (fan_out, fan_in, *kernel)), got {dims!r}"
            if min_ndim > 1
            else f"shape must have at least one dimension, got {dims!r}"
        )
    if any(dim < 1 for dim in dims):
        raise ValueError(f"every dimension of shape must be >= 1 (no zero fans), got {dims!r}")
    if math.prod(int(dim) for dim in dims) > _MAX_ENTRIES:
        raise ValueError(
            f"shape {dims!r} has {math.prod(int(dim) for dim in dims):.3g} entries, more than "
            "any float64 array can hold"
        )
    return tuple(int(dim) for dim in dims)


def _check_real(value: Any, name: str) -> float:
    """Return *value* as a finite float (any sign)."""
    return check_real(value, name)


def _check_choice(value: Any, name: str, choices: Sequence[str], *, any_case: bool = False) -> str:
    """Return *value* if it is one of the strings *choices* (in lower case, if `any_case`)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(choices)}, got {value!r}")
    if any_case:
        value = value.lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _uniform(rng: Any, low: float, high: float, dims: tuple[int, ...], what: str) -> np.ndarray:
    """Draw U(low, high), refusing bounds whose range overflows float64."""
    if not math.isfinite(high - low):
        raise ValueError(
            f"{what}: the interval [{low:g}, {high:g}] is wider than float64 can represent; "
            "expected bounds whose difference is finite"
        )
    return check_rng(rng).uniform(low, high, size=dims)


def _finite(out: np.ndarray, what: str) -> np.ndarray:
    """Return *out* if every entry is finite; else the parameters overflowed float64."""
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} are too large: the entries overflow float64")
    return out


def calculate_fan_in_and_fan_out(shape: Any) -> tuple[int, int]:
    r"""Return ``(fan_in, fan_out)`` of a weight of the given shape, as PyTorch computes them.

    .. math::

        \mathrm{fan\_in} = s_1 \prod_{d \ge 2} s_d, \qquad
        \mathrm{fan\_out} = s_0 \prod_{d \ge 2} s_d

    for ``shape = (s_0, s_1, s_2, ...)``: a dense weight is ``(fan_out, fan_in)``, a convolution
    kernel ``(out_channels, in_channels, *kernel_size)`` (``torch.nn.init``, Paszke et al. 2019).

    Parameters
    ----------
    shape : sequence of int
        At least two positive dimensions.

    Returns
    -------
    tuple of int
        ``(fan_in, fan_out)``.

    Raises
    ------
    TypeError
        If `shape` is not a sequence of ints.
    ValueError
        If it has fewer than two dimensions or a dimension below 1.

    Examples
    --------
    >>> calculate_fan_in_and_fan_out((64, 128))  # nn.Linear(128, 64).weight
    (128, 64)
    >>> calculate_fan_in_and_fan_out((16, 3, 5, 5))  # nn.Conv2d(3, 16, 5).weight
    (75, 400)
    """
    dims = _as_shape(shape, min_ndim=2)
    receptive_field = math.prod(dims[2:])
    return dims[1] * receptive_field, dims[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""Return PyTorch's recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    ==========================================  =====================================
    nonlinearity                                gain
    ==========================================  =====================================
    linear, conv*, conv_transpose*, sigmoid     :math:`1`
    tanh                                        :math:`5/3`
    relu                                        :math:`\sqrt{2}`
    leaky_relu (negative slope `param`)         :math:`\sqrt{2 / (1 + \mathrm{param}^2)}`
    selu                                        :math:`3/4`
    ==========================================  =====================================

    The ReLU gain restores the variance that ReLU halves, :math:`E[\mathrm{relu}(h)^2] =
    E[h^2]/2` (He et al. 2015). Tanh's 5/3 and SELU's 3/4 are the framework's choices, not
    derived from a fixed point (see the chapter "Variance scaling with nonlinearities").

    Parameters
    ----------
    nonlinearity : str
        One of the names in the table.
    param : float, optional
        The negative slope of leaky_relu, default 0.01; ignored by the other nonlinearities.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If `nonlinearity` is not a string or `param` not a real number.
    ValueError
        For an unknown nonlinearity or a non-finite `param`.

    Examples
    --------
    >>> calculate_gain("relu") ** 2
    2.0000000000000004
    >>> calculate_gain("tanh")
    1.6666666666666667
    >>> round(calculate_gain("leaky_relu", 0.2), 6)
    1.386750
    """
    name = _check_choice(nonlinearity, "nonlinearity", _NONLINEARITIES)
    if param is not None:
        param = _check_real(param, "param (the negative slope)")
    if name in _LINEAR_LIKE:
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "selu":
        return 3.0 / 4.0
    slope = 0.01 if param is None else param
    if abs(slope) < 1e150:
        return math.sqrt(2.0 / (1.0 + slope**2))
    return math.sqrt(2.0) / math.hypot(1.0, slope)  # slope**2 would overflow


def uniform(shape: Any, a: float = 0.0, b: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Draw from the uniform distribution :math:`U(a, b)` (``torch.nn.init.uniform_``).

    Parameters
    ----------
    shape : int or sequence of int
        Positive dimensions.
    a, b : float
        The bounds, ``a < b``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        A new float64 array of shape `shape`; variance :math:`(b - a)^2 / 12`.

    Examples
    --------
    >>> w = uniform((2, 3), -1.0, 1.0, rng=np.random.default_rng(0))
    >>> w.shape, bool(np.all(np.abs(w) <= 1.0))
    ((2, 3), True)
    """
    dims = _as_shape(shape)
    low, high = _check_real(a, "a"), _check_real(b, "b")
    if not low < high:
        raise ValueError(f"the bounds must satisfy a < b, got a={low}, b={high}")
    return _uniform(rng, low, high, dims, "a and b")


def normal(
    shape: Any, mean: float = 0.0, std: float = 1.0, *, rng: np.random.Generator
) -> np.ndarray:
    r"""Draw from the normal distribution :math:`N(\mathrm{mean}, \mathrm{std}^2)`.

    Same meaning as ``torch.nn.init.normal_``.

    Parameters
    ----------
    shape : int or sequence of int
        Positive dimensions.
    mean : float, default 0
    std : float, default 1
        Must be > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        A new float64 array of shape `shape`.

    Examples
    --------
    >>> normal((1000,), 0.0, 0.1, rng=np.random.default_rng(0)).std().round(2)
    np.float64(0.1)
    """
    dims = _as_shape(shape)
    mu = _check_real(mean, "mean")
    sigma = check_positive_float(std, "std")
    with np.errstate(over="ignore", invalid="ignore"):
        out = mu + sigma * check_rng(rng).standard_normal(dims)
    return _finite(out, "mean and std")


def _normal_cdf(z: float) -> float:
    """Return the standard normal distribution function at *z*."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def trunc_normal(
    shape: Any,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Draw from :math:`N(\mathrm{mean}, \mathrm{std}^2)` truncated to :math:`[a, b]`.

    Same meaning as ``torch.nn.init.trunc_normal_``: `a` and `b` are **absolute** cut-offs, not
    multiples of `std`. With ``std=0.02`` and the defaults ``a=-2, b=2`` (a common pattern in
    transformer code) nothing is cut at all: the bounds are a hundred standard deviations away.
    Truncating at :math:`\pm 2\,\mathrm{std}` also lowers the standard deviation, to
    :math:`0.8796\,\mathrm{std}` (:data:`KERAS_TRUNCATED_NORMAL_STD`); PyTorch does not correct
    for it, Keras's :func:`variance_scaling` does.

    Draws are exact, by rejection: out-of-range values are drawn again.

    Parameters
    ----------
    shape : int or sequence of int
        Positive dimensions.
    mean : float, default 0
    std : float, default 1
        The standard deviation *before* truncation, > 0.
    a, b : float, default -2, 2
        Absolute bounds, ``a < b``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        A new float64 array of shape `shape`, every entry in ``[a, b]``.

    Raises
    ------
    ValueError
        If ``a >= b``, ``std <= 0``, or ``[a, b]`` holds less than 1e-4 of the normal's
        probability (rejection would take too long).

    Examples
    --------
    >>> w = trunc_normal((3, 4), std=1.0, a=-0.5, b=0.5, rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(w) <= 0.5))
    True
    """
    dims = _as_shape(shape)
    mu = _check_real(mean, "mean")
    sigma = check_positive_float(std, "std")
    low, high = _check_real(a, "a"), _check_real(b, "b")
    if not low < high:
        raise ValueError(f"the cut-offs must satisfy a < b, got a={low}, b={high}")
    generator = check_rng(rng)
    mass = _normal_cdf((high - mu) / sigma) - _normal_cdf((low - mu) / sigma)
    if mass < _MIN_TRUNCATED_MASS:
        raise ValueError(
            f"[a, b] = [{low}, {high}] holds only {mass:.2e} of the probability of "
            f"N({mu}, {sigma}^2); expected an interval within a few std of the mean "
            "(a and b are absolute cut-offs, not multiples of std)"
        )
    out = mu + sigma * generator.standard_normal(dims)
    bad = (out < low) | (out > high)
    while np.any(bad):
        count = int(np.count_nonzero(bad))
        redraw = mu + sigma * generator.standard_normal(count)
        out[bad] = redraw
        bad = (out < low) | (out > high)
    return out


def xavier_uniform(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Xavier (Glorot) uniform initialization (``torch.nn.init.xavier_uniform_``).

    .. math::

        W_{ij} \sim U(-\beta, \beta), \qquad
        \beta = \mathrm{gain} \sqrt{\frac{6}{\mathrm{fan\_in} + \mathrm{fan\_out}}}, \qquad
        \mathrm{Var}(W_{ij}) = \mathrm{gain}^2 \frac{2}{\mathrm{fan\_in} + \mathrm{fan\_out}}

    (Glorot & Bengio 2010): the harmonic compromise between preserving the forward variance
    (``1/fan_in``) and the backward one (``1/fan_out``).

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``, at least two positive dimensions.
    gain : float, default 1
        Multiplies the standard deviation, > 0 (see :func:`calculate_gain`).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = xavier_uniform((100, 200), rng=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 300))
    True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    gain = check_positive_float(gain, "gain")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(rng, -bound, bound, _as_shape(shape), "gain")


def xavier_normal(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Xavier (Glorot) normal initialization (``torch.nn.init.xavier_normal_``).

    .. math::

        W_{ij} \sim N\Big(0, \mathrm{gain}^2 \frac{2}{\mathrm{fan\_in} + \mathrm{fan\_out}}\Big)

    (Glorot & Bengio 2010).

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``, at least two positive dimensions.
    gain : float, default 1
        Multiplies the standard deviation, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = xavier_normal((300, 100), rng=np.random.default_rng(0))
    >>> round(float(w.var() * (300 + 100) / 2), 1)
    1.0
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    gain = check_positive_float(gain, "gain")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite(std * check_rng(rng).standard_normal(_as_shape(shape)), "gain")


def _kaiming_std(shape: Any, a: Any, mode: Any, nonlinearity: Any) -> float:
    """Return gain / sqrt(fan) as torch.nn.init.kaiming_* compute it."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    slope = _check_real(a, "a (the negative slope)")
    fan = fan_in if _check_choice(mode, "mode", _MODES, any_case=True) == "fan_in" else fan_out
    return calculate_gain(nonlinearity, slope) / math.sqrt(fan)


def kaiming_uniform(
    shape: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Kaiming (He) uniform initialization (``torch.nn.init.kaiming_uniform_``).

    .. math::

        W_{ij} \sim U(-\sqrt{3}\,s, \sqrt{3}\,s), \qquad
        s = \frac{\mathrm{gain}}{\sqrt{\mathrm{fan}}}, \qquad
        \mathrm{gain} = \texttt{calculate\_gain}(\mathrm{nonlinearity}, a)

    so :math:`\mathrm{Var}(W_{ij}) = 2 / ((1 + a^2)\,\mathrm{fan})` for leaky ReLU with negative
    slope :math:`a` and :math:`2/\mathrm{fan}` for ReLU (He et al. 2015). Note PyTorch's default
    ``nonlinearity="leaky_relu"`` with ``a=0`` *is* ReLU's gain :math:`\sqrt{2}`.

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``, at least two positive dimensions.
    a : float, default 0
        The negative slope of the rectifier (used only with ``"leaky_relu"``).
    mode : {"fan_in", "fan_out"}
        Preserve the forward variance (``fan_in``) or the backward one (``fan_out``); any
        case is accepted, as ``torch.nn.init`` lower-cases it.
    nonlinearity : str, default "leaky_relu"
        A name accepted by :func:`calculate_gain`.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = kaiming_uniform((50, 200), nonlinearity="relu", rng=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 200))
    True
    """
    std = _kaiming_std(shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    return _uniform(rng, -bound, bound, _as_shape(shape), "the gain")


def kaiming_normal(
    shape: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Kaiming (He) normal initialization (``torch.nn.init.kaiming_normal_``).

    .. math::

        W_{ij} \sim N(0, s^2), \qquad s = \frac{\mathrm{gain}}{\sqrt{\mathrm{fan}}}

    with the gain of :func:`calculate_gain` (He et al. 2015). Parameters as in
    :func:`kaiming_uniform`.

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``.
    a : float, default 0
    mode : {"fan_in", "fan_out"}
        In any case, as ``torch.nn.init`` accepts it.
    nonlinearity : str, default "leaky_relu"
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = kaiming_normal((400, 100), nonlinearity="relu", rng=np.random.default_rng(0))
    >>> round(float(w.var() * 100), 1)
    2.0
    """
    std = _kaiming_std(shape, a, mode, nonlinearity)
    return std * check_rng(rng).standard_normal(_as_shape(shape))


def torch_linear_default(shape: Any, *, rng: np.random.Generator) -> np.ndarray:
    r"""Draw the default weight of PyTorch's ``nn.Linear`` (and ``nn.Conv*``).

    ``reset_parameters`` calls ``kaiming_uniform_(w, a=math.sqrt(5))``: the leaky-ReLU gain with
    slope :math:`\sqrt 5` is :math:`\sqrt{2/6} = 1/\sqrt 3`, so

    .. math::

        W_{ij} \sim U\Big(\pm\frac{1}{\sqrt{\mathrm{fan\_in}}}\Big),
        \qquad \mathrm{Var}(W_{ij}) = \frac{1}{3\,\mathrm{fan\_in}} ,

    a third of LeCun's variance and a sixth of He's. (The bias, not drawn here, is
    :math:`U(\pm 1/\sqrt{\mathrm{fan\_in}})` too.)

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = torch_linear_default((10, 25), rng=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 1 / 5)
    True
    """
    return kaiming_uniform(shape, a=math.sqrt(5.0), rng=rng)


def lecun_normal(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""LeCun normal initialization: :math:`W_{ij} \sim N(0, \mathrm{gain}^2 / \mathrm{fan\_in})`.

    Variance :math:`1/\mathrm{fan\_in}` keeps the forward variance of a linear layer (LeCun et al.
    1998) and is the initialization SELU networks are designed for (Klambauer et al. 2017). This
    is the plain (untruncated) normal, as ``kaiming_normal(shape, nonlinearity="linear")``; Keras's
    ``LecunNormal`` truncates, which is ``variance_scaling(shape, 1.0, "fan_in",
    "truncated_normal")``.

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``.
    gain : float, default 1
        Multiplies the standard deviation, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = lecun_normal((400, 100), rng=np.random.default_rng(0))
    >>> round(float(w.var() * 100), 1)
    1.0
    """
    fan_in, _ = calculate_fan_in_and_fan_out(shape)
    gain = check_positive_float(gain, "gain")
    with np.errstate(over="ignore", invalid="ignore"):
        out = gain / math.sqrt(fan_in) * check_rng(rng).standard_normal(_as_shape(shape))
    return _finite(out, "gain")


def lecun_uniform(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""LeCun uniform initialization: :math:`U(\pm \mathrm{gain}\sqrt{3 / \mathrm{fan\_in}})`.

    Variance :math:`\mathrm{gain}^2/\mathrm{fan\_in}` (LeCun et al. 1998), as Keras's
    ``LecunUniform``.

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``.
    gain : float, default 1
        Multiplies the standard deviation, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = lecun_uniform((10, 12), rng=np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 0.5)
    True
    """
    fan_in, _ = calculate_fan_in_and_fan_out(shape)
    gain = check_positive_float(gain, "gain")
    bound = gain * math.sqrt(3.0 / fan_in)
    return _uniform(rng, -bound, bound, _as_shape(shape), "gain")


def orthogonal(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Draw a (semi-)orthogonal matrix from the Haar measure (``torch.nn.init.orthogonal_``).

    The weight is viewed as ``rows = shape[0]`` by ``cols = prod(shape[1:])``. A Gaussian matrix
    :math:`G` (transposed if ``rows < cols``) is factored :math:`G = QR` and

    .. math:: W = \mathrm{gain}\; Q\, \mathrm{diag}(\mathrm{sign}(R_{ii})) .

    Fixing the signs of :math:`R`'s diagonal makes :math:`Q` exactly Haar-distributed; without it
    LAPACK's convention biases the distribution (Mezzadri 2007). Rows (if ``rows <= cols``) or
    columns (otherwise) are orthonormal, times `gain`; every singular value equals `gain`
    (Saxe et al. 2014).

    Parameters
    ----------
    shape : sequence of int
        At least two positive dimensions.
    gain : float, default 1
        Multiplies the matrix, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> Q = orthogonal((4, 4), rng=np.random.default_rng(0))
    >>> bool(np.allclose(Q @ Q.T, np.eye(4)))
    True
    >>> W = orthogonal((2, 5), rng=np.random.default_rng(0))
    >>> bool(np.allclose(W @ W.T, np.eye(2)))
    True
    """
    dims = _as_shape(shape, min_ndim=2)
    gain = check_positive_float(gain, "gain")
    rows, cols = dims[0], math.prod(dims[1:])
    flat = check_rng(rng).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0  # a zero pivot has probability zero; keep Q orthogonal anyway
    q = q * signs
    if rows < cols:
        q = q.T
    return gain * q.reshape(dims)


def variance_scaling(
    shape: Any,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    *,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Keras's ``VarianceScaling`` initializer, in PyTorch's ``(fan_out, fan_in)`` layout.

    With :math:`n` = fan_in, fan_out or their average (`mode`), the target variance is
    :math:`\mathrm{scale}/n` and

    - ``"truncated_normal"``: :math:`N(0, s^2)` truncated to :math:`\pm 2 s`, with
      :math:`s = \sqrt{\mathrm{scale}/n}\, /\, 0.8796...` so that the truncated variance is the
      target (:data:`KERAS_TRUNCATED_NORMAL_STD`);
    - ``"untruncated_normal"``: :math:`N(0, \mathrm{scale}/n)`;
    - ``"uniform"``: :math:`U(\pm\sqrt{3\,\mathrm{scale}/n})`.

    Keras's presets: ``GlorotNormal`` is ``(1.0, "fan_avg", "truncated_normal")``,
    ``GlorotUniform`` ``(1.0, "fan_avg", "uniform")``, ``LecunNormal`` ``(1.0, "fan_in",
    "truncated_normal")``, ``HeNormal`` ``(2.0, "fan_in", "truncated_normal")``, ``HeUniform``
    ``(2.0, "fan_in", "uniform")``. Keras stores a dense kernel as ``(fan_in, fan_out)``; here the
    shape is read as PyTorch reads it (:func:`calculate_fan_in_and_fan_out`), so
    ``variance_scaling((out, in), ...)`` is the transpose of Keras's kernel for the same layer.

    Parameters
    ----------
    shape : sequence of int
        ``(fan_out, fan_in, *kernel)``.
    scale : float, default 1
        > 0.
    mode : {"fan_in", "fan_out", "fan_avg"}
        In any case ("FAN_IN" too), as Keras and PyTorch accept it.
    distribution : {"truncated_normal", "untruncated_normal", "uniform", "normal"}
        In any case; ``"normal"`` is Keras's alias of ``"truncated_normal"``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> w = variance_scaling((500, 200), 2.0, rng=np.random.default_rng(0))  # Keras HeNormal
    >>> round(float(w.var() * 200 / 2), 2)
    1.0
    >>> s = np.sqrt(2 / 200) / KERAS_TRUNCATED_NORMAL_STD
    >>> bool(np.abs(w).max() <= 2 * s)
    True
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    scale = check_positive_float(scale, "scale")
    mode = _check_choice(mode, "mode", _KERAS_MODES, any_case=True)
    distribution = _check_choice(
        distribution, "distribution", (*_KERAS_DISTRIBUTIONS, "normal"), any_case=True
    )
    if distribution == "normal":  # Keras's alias
        distribution = "truncated_normal"
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    target_std = math.sqrt(scale / n)
    if distribution == "uniform":
        bound = math.sqrt(3.0) * target_std
        return _uniform(rng, -bound, bound, _as_shape(shape), "scale")
    if distribution == "untruncated_normal":
        return target_std * check_rng(rng).standard_normal(_as_shape(shape))
    std = target_std / KERAS_TRUNCATED_NORMAL_STD
    return trunc_normal(shape, 0.0, std, -2.0 * std, 2.0 * std, rng=rng)


def spectral_radius_normal(
    shape: Any, radius: float = 1.0, *, rng: np.random.Generator
) -> np.ndarray:
    r"""Draw a Gaussian square matrix scaled to spectral radius `radius` (the seed's recipe).

    .. math:: W = \mathrm{radius}\; G / \rho(G), \qquad G_{ij} \sim N(0, 1)

    (Shreyans 2020). Only the long-run growth of repeated multiplication by the *same* matrix is
    pinned to `radius`; the chapter "A new matrix every layer" shows what it does when every
    layer has its own matrix.

    Parameters
    ----------
    shape : sequence of int
        ``(k, k)``: eigenvalues need a square matrix.
    radius : float, default 1
        The spectral radius of the result, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        If `shape` is not square and 2-D.

    Examples
    --------
    >>> W = spectral_radius_normal((5, 5), 2.0, rng=np.random.default_rng(0))
    >>> round(float(np.abs(np.linalg.eigvals(W)).max()), 12)
    2.0
    """
    dims = _as_shape(shape, min_ndim=2)
    if len(dims) != 2 or dims[0] != dims[1]:
        raise ValueError(f"shape must be square, (k, k), to have eigenvalues; got {dims!r}")
    radius = check_positive_float(radius, "radius")
    g = check_rng(rng).standard_normal(dims)
    return radius * g / float(np.max(np.abs(np.linalg.eigvals(g))))
