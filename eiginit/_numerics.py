r"""Numerical kernels that several modules share, so that each exists once.

:func:`normal_rule`, the one quadrature rule for Gaussian expectations :math:`E[f(z)]`, :math:`z
\sim N(0, 1)`, is shared by :mod:`eiginit.theory.propagation` (chapter "Variance scaling with
nonlinearities") and :mod:`eiginit.theory.meanfield` (chapter "The backward pass"). Gauss-Legendre
on
:math:`[0, 12]` for each half-line, mirrored: the activations of :mod:`eiginit.models.network` are
smooth
on either side of zero (ReLU's kink and SELU's jump in slope sit exactly at the split, and no node
lies on it), and the normal density beyond 12 standard deviations is below 1e-31. At equal node
counts this is far more accurate than a Gauss-Hermite rule for steep integrands such as
:math:`\tanh(\sqrt q z)` at large :math:`q`.

:func:`scale_by_power_of_two` prepares a matrix for the iterations of :mod:`eiginit.linalg.power`,
:mod:`eiginit.linalg.norms` (chapter "Eigenvalues are not the whole story") and
:mod:`eiginit.linalg.subspace`
(chapter "Power iteration"); :func:`unit_and_log_norm` normalizes vectors of any finite magnitude
and :func:`restore` scales results back, refusing those beyond float64's range. Multiplying by a
power of two is exact (barring subnormal results), so the scaled iterations give the same digits
as unscaled ones wherever those do not overflow or underflow.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

_CUTOFF = 12.0


@functools.cache
def normal_rule(half_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Return nodes :math:`t_i` and weights :math:`w_i`: :math:`E[f(z)] \approx \sum_i w_i f(t_i)`.

    `half_nodes` Gauss-Legendre nodes on :math:`(0, 12)` and their mirror images: ``2 *
    half_nodes`` points, increasing, symmetric about 0; the weights of each half sum to 1/2.
    The arrays are read-only (they are cached).
    """
    x, w = np.polynomial.legendre.leggauss(half_nodes)
    t = 0.5 * _CUTOFF * (x + 1.0)
    w = 0.5 * _CUTOFF * w * np.exp(-0.5 * t**2) / math.sqrt(2.0 * math.pi)
    nodes = np.concatenate((-t[::-1], t))
    weights = np.concatenate((w[::-1], w))
    nodes.flags.writeable = False
    weights.flags.writeable = False
    return nodes, weights


def scale_by_power_of_two(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    """Return ``(A / 2**e, e)`` with the largest entry of ``A / 2**e`` in [0.5, 1) in modulus.

    Iterating with the scaled matrix, tiny or huge matrices neither underflow nor overflow;
    scaling by a power of two is exact, so results scale back with ``np.ldexp(value, e)``.
    A zero matrix is returned as it is, with ``e = 0``.
    """
    exponent = int(np.frexp(np.max(np.abs(matrix)))[1])
    return np.ldexp(matrix, -exponent), exponent


_LN2 = math.log(2.0)
_TINY = float(np.finfo(np.float64).tiny)


def unit_and_log_norm(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Return ``(x / ||x||, log ||x||)`` along the last axis, for finite `x` of any magnitude.

    Each vector is first scaled by a power of two so that its largest entry lies in [0.5, 1):
    the norm of a vector with entries of 1e-200 or 1e200 neither underflows nor overflows.
    Where the norm is a normal float64 number the logarithm is ``log`` of it, so results for
    ordinary vectors are unchanged; otherwise it is :math:`\log\|2^{-e} x\| + e \log 2`.
    A zero vector gives ``-inf`` and a zero unit vector.
    """
    peak = np.max(np.abs(x), axis=-1, keepdims=True)
    exponent = np.frexp(peak)[1]
    scaled = np.ldexp(x, -exponent)
    norm = np.linalg.norm(scaled, axis=-1, keepdims=True)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        unit = np.where(norm > 0, scaled / np.where(norm > 0, norm, 1.0), 0.0)
        direct = np.ldexp(norm, exponent)
        ordinary = np.isfinite(direct) & (direct >= _TINY)
        log_norm = np.where(
            ordinary, np.log(np.where(ordinary, direct, 1.0)), np.log(norm) + exponent * _LN2
        )
    return unit, log_norm[..., 0]


def restore(value: Any, exponent: int, what: str) -> Any:
    """Return ``value * 2**exponent`` (float or array, real or complex), refusing overflow.

    Raises ValueError naming `what` when a result is beyond float64's range.
    """
    array = np.asarray(value)
    with np.errstate(over="ignore"):
        if np.iscomplexobj(array):
            out = np.ldexp(array.real, exponent) + 1j * np.ldexp(array.imag, exponent)
        else:
            out = np.ldexp(array, exponent)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"{what} is beyond float64's range (about 1.8e308): A's entries are too large for "
            "this result to be represented; divide A by a power of two and scale back yourself"
        )
    return out if isinstance(value, np.ndarray) else out[()] if out.ndim == 0 else out
