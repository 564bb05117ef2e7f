r"""Gradients with respect to a one-dimensional input, for the shattered-gradients experiment.

Chapter "Residual networks and normalization" (Part V) follows Balduzzi et al. (2017, "The
shattered gradients problem: if resnets are the answer, then what is the question?", ICML): feed
a line of inputs :math:`x_0(t) = t\, a + b` through a deep ReLU stack and a linear readout
:math:`y = r^\top x_L`, and look at :math:`dy/dt` as a function of :math:`t`. Its correlation
between neighbouring inputs measures how smooth the gradient is.

:func:`line_input_gradients` computes :math:`dy/dt` by forward-mode differentiation, for plain
and residual stacks of one-layer ReLU branches, optionally *centring* every unit: each layer's
input is standardized per unit over the inputs of the line, :math:`z = (x - \mu) / s`, with
:math:`\mu` and :math:`s` computed once from the forward pass and then held fixed (batch
normalization's statistics, frozen, so that every input has a derivative of its own):

.. math:: \dot x_0 = a, \qquad \dot z_\ell = \dot x_\ell / s_\ell, \qquad
          \dot x_{\ell+1} = \dot x_\ell\,[\text{skip}] + \alpha\, W_\ell\,
          (\mathbf 1_{z_\ell > 0} \odot \dot z_\ell), \qquad \frac{dy}{dt} = r^\top \dot x_L .

Without centring, :math:`z_\ell = x_\ell` and this is the derivative that
:meth:`eiginit.ResidualStack.backward` gives by reverse mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eiginit._checks import _describe, check_bool, check_real

__all__ = ["line_input_gradients"]


def _as_float_array(value: Any, name: str, ndim: int) -> np.ndarray:
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a real array, got {_describe(value)}")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real array, got {_describe(value)}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return array


def line_input_gradients(
    weights: Any,
    x0: Any,
    direction: Any,
    readout: Any,
    *,
    alpha: float = 1.0,
    skip: bool = True,
    centre: bool = False,
) -> np.ndarray:
    r"""Return :math:`dy/dt` along a line of inputs, for every replica and every depth.

    Parameters
    ----------
    weights : array_like, shape (R, L, n, n)
        :math:`W_\ell` of ``R`` independent stacks (PyTorch's ``(fan_out, fan_in)``).
    x0 : array_like, shape (B, n)
        The inputs :math:`x_0(t_i)` along the line.
    direction : array_like, shape (n,)
        :math:`a = dx_0/dt`.
    readout : array_like, shape (n,)
        :math:`r`, the readout :math:`y = r^\top x_\ell`.
    alpha : float, default 1.0
        The branch multiplier :math:`\alpha`.
    skip : bool, default True
        False drops the identity: the plain network :math:`x_{\ell+1} = \alpha W_\ell
        \mathrm{relu}(z_\ell)`.
    centre : bool, default False
        Standardize every unit over the ``B`` inputs before each ReLU (frozen batch-norm
        statistics, epsilon 1e-5 as in torch.nn.BatchNorm1d).

    Returns
    -------
    numpy.ndarray, shape (L, R, B)
        ``out[l - 1]`` is :math:`dy/dt` read out after ``l`` blocks.

    Raises
    ------
    TypeError, ValueError
        On arrays of the wrong kind, shape or with non-finite entries, or an overflow.

    Examples
    --------
    One linear-looking block: all inputs positive, no centring, so :math:`dy/dt = r^\top
    (I + W) a`.

    >>> W = np.array([[[[0.5, 0.0], [0.0, 2.0]]]])
    >>> x0 = np.array([[1.0, 1.0], [2.0, 2.0]])
    >>> line_input_gradients(W, x0, [1.0, 1.0], [1.0, 1.0]).tolist()
    [[[4.5, 4.5]]]
    """
    W = _as_float_array(weights, "weights", 4)
    if W.shape[-1] != W.shape[-2] or min(W.shape) < 1:
        raise ValueError(f"weights must hold non-empty square matrices, got shape {W.shape}")
    n = W.shape[-1]
    x = _as_float_array(x0, "x0", 2)
    if x.shape[1] != n or x.shape[0] < 2:
        raise ValueError(f"x0 must have shape (B, {n}) with B >= 2, got {x.shape}")
    a = _as_float_array(direction, "direction", 1)
    r = _as_float_array(readout, "readout", 1)
    if a.shape != (n,) or r.shape != (n,):
        raise ValueError(
            f"direction and readout must have shape ({n},), got {a.shape} and {r.shape}"
        )
    alpha = check_real(alpha, "alpha")
    skip, centre = check_bool(skip, "skip"), check_bool(centre, "centre")
    R, L = W.shape[:2]
    x = np.broadcast_to(x, (R, *x.shape)).copy()
    dx = np.broadcast_to(a, x.shape).copy()
    out = np.empty((L, R, x.shape[1]))
    with np.errstate(over="raise", invalid="raise"):
        try:
            for layer in range(L):
                if centre:
                    mean = x.mean(axis=1, keepdims=True)
                    inv_std = 1 / np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
                    z, dz = (x - mean) * inv_std, dx * inv_std
                else:
                    z, dz = x, dx
                Wt = np.swapaxes(W[:, layer], -1, -2)
                branch, dbranch = np.maximum(z, 0) @ Wt, ((z > 0) * dz) @ Wt
                x = x + alpha * branch if skip else alpha * branch
                dx = dx + alpha * dbranch if skip else alpha * dbranch
                out[layer] = dx @ r
        except FloatingPointError as error:
            raise ValueError(
                "the activations or their derivatives overflow float64; use a smaller alpha "
                "or depth"
            ) from error
    return out
