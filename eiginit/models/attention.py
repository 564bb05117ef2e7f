r"""Self-attention at initialization: row-stochastic matrices, rank collapse and logit scale.

The engine of chapter "Attention" (Part V). The tokens are the rows of a matrix
:math:`X \in \mathbb{R}^{T \times d}` (as in Vaswani et al. 2017, section 3.2), the query and
key weights :math:`W_Q, W_K \in \mathbb{R}^{d \times d_k}` act on the right, and one head of
self-attention mixes the tokens with

.. math:: A = \operatorname{softmax}\!\Big(\frac{X W_Q (X W_K)^\top}{\sqrt{d_k}}\Big),

the softmax taken along each row, so that :math:`A` has positive entries and rows summing to
one: :math:`A \mathbf 1 = \mathbf 1`. By Perron and Frobenius its largest eigenvalue is exactly
1, with eigenvector :math:`\mathbf 1`, and every other eigenvalue has modulus below 1. Applying
attention again and again is therefore power iteration (chapter "Power iteration"): the tokens
approach a matrix with identical rows, :math:`\mathbf 1 \bar x^\top`, at the rate of the second
eigenvalue modulus :math:`|\lambda_2|` when the same :math:`A` is applied (rank collapse; Dong,
Cordonnier & Loukas 2021). The module has

- :func:`attention_logits`, :func:`softmax_rows` and :func:`attention_matrix`;
- :func:`second_eigenvalue_modulus`, :math:`|\lambda_2|` of a row-stochastic matrix;
- :func:`rank_collapse_residual`, the relative distance of :math:`X` from the nearest matrix
  with identical rows, :math:`\|X - \mathbf 1 \bar x^\top\|_F / \|X\|_F`;
- :func:`attention_entropy`, the mean entropy of the rows of :math:`A`;
- :func:`logit_variance`, the closed-form variance of a logit at initialization;
- :func:`attention_stack`, stacks of freshly drawn attention layers, pure or with a residual
  connection :math:`X + \alpha A X W_V`, vectorized over trials;
- :func:`sigma_reparam`, :math:`\sigma\mathrm{Reparam}`'s :math:`\hat W = \gamma W / \hat\sigma`
  with one power-iteration step per call (Zhai et al. 2023).

Every function accepts a stack of matrices (leading trial axes) where that is natural.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    as_matrix,
    as_real_array,
    check_int,
    check_positive_float,
    check_real,
    check_rng,
)

__all__ = [
    "AttentionStackResult",
    "SigmaReparamStep",
    "attention_entropy",
    "attention_logits",
    "attention_matrix",
    "attention_stack",
    "logit_variance",
    "rank_collapse_residual",
    "second_eigenvalue_modulus",
    "sigma_reparam",
    "softmax_rows",
]


def _as_stack(value: Any, name: str, what: str) -> np.ndarray:
    array = as_real_array(value, name)
    if array.ndim < 2:
        raise ValueError(f"{name} must be {what} (at least 2-D), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    return array


def _as_row_stochastic(value: Any, name: str = "a", tol: float = 1e-8) -> np.ndarray:
    a = _as_stack(value, name, "a square row-stochastic matrix or a stack of them")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be square (T x T), got shape {a.shape}")
    if np.any(a < 0):
        raise ValueError(f"{name} must have non-negative entries, got minimum {float(a.min())}")
    worst = float(np.max(np.abs(a.sum(axis=-1) - 1.0)))
    if worst > tol:
        raise ValueError(f"{name} must have rows summing to 1, got a row sum off by {worst:.3g}")
    return a


def softmax_rows(logits: Any) -> np.ndarray:
    r"""Return the softmax of each row, :math:`A_{ij} = e^{z_{ij}} / \sum_k e^{z_{ik}}`.

    The row maximum is subtracted first, so large logits do not overflow.

    Parameters
    ----------
    logits : array_like, shape (..., T, T')
        Finite real logits; the softmax runs along the last axis.

    Returns
    -------
    numpy.ndarray
        Positive entries, each row summing to 1.

    Examples
    --------
    >>> softmax_rows([[0.0, 0.0], [0.0, 1000.0]]).round(3)
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    z = _as_stack(logits, "logits", "a matrix of logits")
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def attention_logits(x: Any, w_q: Any, w_k: Any, *, scale: float | None = None) -> np.ndarray:
    r"""Return the logits :math:`s\, X W_Q (X W_K)^\top`, by default :math:`s = 1/\sqrt{d_k}`.

    Parameters
    ----------
    x : array_like, shape (..., T, d)
        The tokens, one per row (a stack of token matrices is allowed).
    w_q, w_k : array_like, shape (..., d, d_k)
        Query and key weights (Vaswani et al. 2017, section 3.2.2, keep this orientation).
    scale : float, optional
        The factor :math:`s`; ``None`` means :math:`1/\sqrt{d_k}`, the scaling of Vaswani et
        al.'s scaled dot-product attention (section 3.2.1). Pass ``1.0`` for none.

    Returns
    -------
    numpy.ndarray, shape (..., T, T)

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> attention_logits(x, np.eye(2), np.eye(2))  # x x^T / sqrt(2)
    array([[0.70710678, 0.        ],
           [0.        , 2.82842712]])
    """
    x = _as_stack(x, "x", "a token matrix (T, d)")
    w_q = _as_stack(w_q, "w_q", "a weight matrix (d, d_k)")
    w_k = _as_stack(w_k, "w_k", "a weight matrix (d, d_k)")
    if w_q.shape[-2] != x.shape[-1] or w_k.shape[-2] != x.shape[-1]:
        raise ValueError(
            f"w_q and w_k must have d = {x.shape[-1]} rows to match x of shape {x.shape}, "
            f"got w_q {w_q.shape} and w_k {w_k.shape}"
        )
    if w_q.shape[-1] != w_k.shape[-1]:
        raise ValueError(
            f"w_q and w_k must have the same number d_k of columns, got {w_q.shape} and {w_k.shape}"
        )
    d_k = w_q.shape[-1]
    s = 1.0 / math.sqrt(d_k) if scale is None else check_positive_float(scale, "scale")
    q = x @ w_q
    k = x @ w_k
    return s * (q @ np.swapaxes(k, -1, -2))


def attention_matrix(x: Any, w_q: Any, w_k: Any, *, scale: float | None = None) -> np.ndarray:
    r"""Return the attention matrix :math:`A = \operatorname{softmax}(s\, X W_Q (X W_K)^\top)`.

    Row-stochastic: :math:`A_{ij} > 0` and :math:`A \mathbf 1 = \mathbf 1`, so 1 is an
    eigenvalue with eigenvector :math:`\mathbf 1`, and by the Perron-Frobenius theorem every other
    eigenvalue has modulus below 1 (Horn & Johnson, Matrix Analysis, 8.2).

    Parameters
    ----------
    x, w_q, w_k, scale
        As in :func:`attention_logits`.

    Returns
    -------
    numpy.ndarray, shape (..., T, T)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((5, 8))
    >>> w_q, w_k = rng.standard_normal((2, 8, 4)) / np.sqrt(8)
    >>> a = attention_matrix(x, w_q, w_k)
    >>> bool(np.allclose(a.sum(axis=1), 1.0)), bool(np.all(a > 0))
    (True, True)
    """
    return softmax_rows(attention_logits(x, w_q, w_k, scale=scale))


def second_eigenvalue_modulus(a: Any) -> np.ndarray | float:
    r"""Return :math:`|\lambda_2|`, the second largest eigenvalue modulus of a stochastic matrix.

    For a row-stochastic :math:`A` the largest modulus is :math:`\lambda_1 = 1`; the
    iterates :math:`A^L x` approach the constant vector at the rate :math:`|\lambda_2|^L`
    (chapter "Power iteration").

    Parameters
    ----------
    a : array_like, shape (..., T, T)
        Row-stochastic matrices (non-negative, rows summing to 1 within 1e-8), T >= 2.

    Returns
    -------
    float or numpy.ndarray
        A float for one matrix, an array of shape ``a.shape[:-2]`` for a stack.

    Examples
    --------
    >>> float(second_eigenvalue_modulus([[0.5, 0.5], [0.2, 0.8]]))  # eigenvalues 1 and 0.3
    0.3
    """
    a = _as_row_stochastic(a)
    if a.shape[-1] < 2:
        raise ValueError(f"a must be at least 2 x 2 to have a second eigenvalue, got {a.shape}")
    moduli = np.sort(np.abs(np.linalg.eigvals(a)), axis=-1)
    second = moduli[..., -2]
    return float(second) if second.ndim == 0 else second


def rank_collapse_residual(x: Any) -> np.ndarray | float:
    r"""Return :math:`\|X - \mathbf 1 \bar x^\top\|_F / \|X\|_F`, the distance from rank one.

    :math:`\bar x` is the mean of the rows (the tokens), which makes :math:`\mathbf 1 \bar x^\top`
    the nearest matrix with identical rows in the Frobenius norm. The value is 0 when all tokens
    are equal ("rank collapse", Dong, Cordonnier & Loukas 2021, who measure the distance to
    that set in another norm) and at most 1.

    Parameters
    ----------
    x : array_like, shape (..., T, d)
        Token matrices, not all zero.

    Returns
    -------
    float or numpy.ndarray
        A float for one matrix, an array of shape ``x.shape[:-2]`` for a stack.

    Examples
    --------
    >>> rank_collapse_residual([[1.0, 2.0], [1.0, 2.0]])
    0.0
    >>> rank_collapse_residual([[1.0, 0.0], [-1.0, 0.0]])
    1.0
    """
    x = _as_stack(x, "x", "a token matrix (T, d)")
    total = np.linalg.norm(x, axis=(-2, -1))
    if np.any(total == 0):
        raise ValueError("x must not be all zeros: the relative residual of 0 is undefined")
    centred = x - x.mean(axis=-2, keepdims=True)
    ratio = np.linalg.norm(centred, axis=(-2, -1)) / total
    return float(ratio) if ratio.ndim == 0 else ratio


def attention_entropy(a: Any) -> np.ndarray | float:
    r"""Return the mean entropy of the rows, :math:`-\frac1T \sum_{i,j} A_{ij} \log A_{ij}` (nats).

    A uniform row (all logits equal) has the largest entropy, :math:`\log T`; a one-hot row has 0.
    For small logits :math:`s z_{ij}` a row's entropy is
    :math:`\log T - \tfrac{s^2}{2} \operatorname{var}_j z_{ij} + O(s^3)`, with the variance
    taken over the row (population variance).

    Parameters
    ----------
    a : array_like, shape (..., T, T')
        Row-stochastic matrices (rows non-negative, summing to 1 within 1e-8); need not be
        square.

    Returns
    -------
    float or numpy.ndarray
        A float for one matrix, an array of shape ``a.shape[:-2]`` for a stack.

    Examples
    --------
    >>> round(attention_entropy(np.full((4, 4), 0.25)) - math.log(4), 12)
    0.0
    """
    a = _as_stack(a, "a", "a row-stochastic matrix")
    if np.any(a < 0):
        raise ValueError(f"a must have non-negative entries, got minimum {float(a.min())}")
    worst = float(np.max(np.abs(a.sum(axis=-1) - 1.0)))
    if worst > 1e-8:
        raise ValueError(f"a must have rows summing to 1, got a row sum off by {worst:.3g}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, -a * np.log(np.where(a > 0, a, 1.0)), 0.0)
    h = terms.sum(axis=-1).mean(axis=-1)
    return float(h) if h.ndim == 0 else h


def logit_variance(d_k: int, *, scale: float | None = None, sigma_q2: float = 1.0) -> float:
    r"""Return the variance of an off-diagonal logit at initialization, :math:`s^2 d_k\, \sigma^4`.

    With the entries of the queries and of the keys of two different tokens uncorrelated, of
    mean 0 and variance :math:`\sigma^2` (``sigma_q2``), the dot product
    :math:`q \cdot k = \sum_{j=1}^{d_k} q_j k_j` is a sum of :math:`d_k` uncorrelated terms of
    variance :math:`\sigma^4`. Tokens of unit variance and weights of variance :math:`1/d` give
    :math:`\sigma^2 = 1`: the logit variance is :math:`d_k` without scaling and exactly 1 with
    Vaswani et al.'s :math:`s = 1/\sqrt{d_k}`.

    Parameters
    ----------
    d_k : int
        The key dimension, >= 1.
    scale : float, optional
        The factor :math:`s`; ``None`` means :math:`1/\sqrt{d_k}`.
    sigma_q2 : float
        The variance :math:`\sigma^2` of a query or key entry, > 0.

    Examples
    --------
    >>> logit_variance(64), logit_variance(64, scale=1.0)
    (1.0, 64.0)
    """
    d_k = check_int(d_k, "d_k", minimum=1)
    s = 1.0 / math.sqrt(d_k) if scale is None else check_positive_float(scale, "scale")
    sigma_q2 = check_positive_float(sigma_q2, "sigma_q2")
    return float(s * s * d_k * sigma_q2 * sigma_q2)


@dataclass(frozen=True)
class AttentionStackResult:
    r"""What :func:`attention_stack` measured, layer by layer.

    Attributes
    ----------
    residual : numpy.ndarray, shape (trials, depth + 1)
        :func:`rank_collapse_residual` of the tokens before the first layer and after each.
    lambda2 : numpy.ndarray, shape (trials, depth)
        :math:`|\lambda_2|` of each layer's attention matrix.
    entropy : numpy.ndarray, shape (trials, depth)
        :func:`attention_entropy` of each layer's attention matrix.
    """

    residual: np.ndarray
    lambda2: np.ndarray
    entropy: np.ndarray


def attention_stack(
    x: Any,
    depth: int,
    *,
    rng: np.random.Generator,
    d_k: int | None = None,
    alpha: float | None = None,
    logit_scale: float = 1.0,
) -> AttentionStackResult:
    r"""Run stacks of single-head self-attention layers with fresh weights, vectorized over trials.

    Layer :math:`\ell` draws :math:`W_Q, W_K \in \mathbb{R}^{d \times d_k}` with independent
    :math:`N(0, 1/d)` entries, forms :math:`A_\ell` = :func:`attention_matrix` of the current
    tokens with the scale :math:`c/\sqrt{d_k}` (``logit_scale`` :math:`= c`), and updates

    .. math:: X_{\ell+1} = A_\ell X_\ell \quad (\text{pure attention, values the identity}),
              \qquad X_{\ell+1} = X_\ell + \alpha A_\ell X_\ell W_V

    with a residual connection (``alpha`` given), :math:`W_V` of :math:`N(0, 1/d)` entries.

    Parameters
    ----------
    x : array_like, shape (trials, T, d) or (T, d)
        The input tokens.
    depth : int
        The number of layers, >= 1.
    rng : numpy.random.Generator
        The source of every weight.
    d_k : int, optional
        The key dimension; default ``d``.
    alpha : float, optional
        The residual branch multiplier; ``None`` runs pure attention (no skip).
    logit_scale : float
        A factor :math:`c > 0` on the scaled logits (an inverse temperature).

    Returns
    -------
    AttentionStackResult

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((16, 32))
    >>> pure = attention_stack(x, 4, rng=np.random.default_rng(1))
    >>> bool(pure.residual[0, -1] < 1e-3 * pure.residual[0, 0])  # the tokens have collapsed
    True
    """
    x = as_real_array(x, "x")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.size == 0:
        raise ValueError(f"x must have shape (trials, T, d) or (T, d), got shape {x.shape}")
    depth = check_int(depth, "depth", minimum=1)
    rng = check_rng(rng)
    trials, t, d = x.shape
    if t < 2:
        raise ValueError(f"x must hold at least 2 tokens (rows), got T = {t}")
    d_k = d if d_k is None else check_int(d_k, "d_k", minimum=1)
    a_val = None if alpha is None else check_real(alpha, "alpha")
    c = check_positive_float(logit_scale, "logit_scale")
    residual = np.empty((trials, depth + 1))
    lambda2 = np.empty((trials, depth))
    entropy = np.empty((trials, depth))
    residual[:, 0] = rank_collapse_residual(x)
    sd = 1.0 / math.sqrt(d)
    for layer in range(depth):
        w_q = sd * rng.standard_normal((trials, d, d_k))
        w_k = sd * rng.standard_normal((trials, d, d_k))
        a = attention_matrix(x, w_q, w_k, scale=c / math.sqrt(d_k))
        lambda2[:, layer] = second_eigenvalue_modulus(a)
        entropy[:, layer] = attention_entropy(a)
        if a_val is None:
            x = a @ x
        else:
            w_v = sd * rng.standard_normal((trials, d, d))
            x = x + a_val * (a @ x @ w_v)
        residual[:, layer + 1] = rank_collapse_residual(x)
    return AttentionStackResult(residual=residual, lambda2=lambda2, entropy=entropy)


@dataclass(frozen=True)
class SigmaReparamStep:
    r"""One step of :func:`sigma_reparam`.

    Attributes
    ----------
    weight : numpy.ndarray
        The reparametrized weight :math:`\hat W = (\gamma / \hat\sigma) W`.
    sigma : float
        The estimate :math:`\hat\sigma = \|W v\|` of :math:`\sigma_{\max}(W)`, never above it.
    u : numpy.ndarray
        The left vector to pass to the next call (unit length).
    """

    weight: np.ndarray
    sigma: float
    u: np.ndarray


def sigma_reparam(w: Any, gamma: float, u: Any) -> SigmaReparamStep:
    r"""Return :math:`\hat W = \gamma W / \hat\sigma`, with :math:`\hat\sigma` from one power step.

    :math:`\sigma\mathrm{Reparam}` (Zhai et al. 2023) reparametrizes a linear layer with spectral
    normalization and a learned scalar :math:`\gamma`. The estimate is one step of power
    iteration on :math:`W^\top W` in the two-vector form of spectral normalization (Miyato et al.
    2018), started from the vector ``u`` the previous call returned:

    .. math:: v = \frac{W^\top u}{\|W^\top u\|}, \qquad
              \hat\sigma = \|W v\|, \qquad u' = \frac{W v}{\hat\sigma} .

    Since :math:`v` is a unit vector, :math:`\hat\sigma \le \sigma_{\max}(W)` always, so
    :math:`\|\hat W\|_2 \ge \gamma`, with equality when :math:`u` is the top left singular vector.
    Called once per training step, the estimate tracks :math:`\sigma_{\max}` of a slowly changing
    :math:`W` (chapter "Eigenvalues are not the whole story", exercise).

    Parameters
    ----------
    w : array_like, shape (m, n)
        The weight matrix, finite, not zero.
    gamma : float
        The scale :math:`\gamma > 0`.
    u : array_like, shape (m,)
        The left vector from the previous call (any non-zero vector at the first call).

    Returns
    -------
    SigmaReparamStep

    Examples
    --------
    >>> w = np.diag([3.0, 1.0])
    >>> step = sigma_reparam(w, 1.0, np.array([1.0, 0.0]))
    >>> step.sigma, float(np.linalg.norm(step.weight, 2))
    (3.0, 1.0)
    """
    w = as_matrix(w, "w")
    if not np.any(w):
        raise ValueError("w must not be zero: its largest singular value would be 0")
    gamma = check_positive_float(gamma, "gamma")
    u = as_real_array(u, "u")
    if u.shape != (w.shape[0],):
        raise ValueError(f"u must have shape ({w.shape[0]},) to match w {w.shape}, got {u.shape}")
    wtu = w.T @ u
    norm = float(np.linalg.norm(wtu))
    if norm == 0.0:
        raise ValueError("u must not be orthogonal to the column space of w (W^T u = 0)")
    v = wtu / norm
    wv = w @ v
    sigma = float(np.linalg.norm(wv))
    return SigmaReparamStep(weight=(gamma / sigma) * w, sigma=sigma, u=wv / sigma)
