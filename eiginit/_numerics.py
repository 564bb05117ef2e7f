r"""Numerical kernels that several modules share, so that each exists once.

:func:`normal_rule`, the one quadrature rule for Gaussian expectations :math:`E[f(z)]`, :math:`z
\sim N(0, 1)`, is shared by :mod:`eiginit.propagation` (chapter "Variance scaling with
nonlinearities") and :mod:`eiginit.meanfield` (chapter "The backward pass"). Gauss-Legendre on
:math:`[0, 12]` for each half-line, mirrored: the activations of :mod:`eiginit.network` are smooth
on either side of zero (ReLU's kink and SELU's jump in slope sit exactly at the split, and no node
lies on it), and the normal density beyond 12 standard deviations is below 1e-31. At equal node
counts this is far more accurate than a Gauss-Hermite rule for steep integrands such as
:math:`\tanh(\sqrt q z)` at large :math:`q`.

:func:`scale_by_power_of_two` prepares a matrix for the iterations of :mod:`eiginit.norms`
(chapter "Eigenvalues are not the whole story") and :mod:`eiginit.subspace` (chapter "Power
iteration").
"""

from __future__ import annotations

import functools
import math

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
    `matrix` must hold a nonzero entry.
    """
    exponent = int(np.frexp(np.max(np.abs(matrix)))[1])
    return np.ldexp(matrix, -exponent), exponent
