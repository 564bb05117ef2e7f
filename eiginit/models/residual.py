r"""Residual stacks, normalization at initialization and branch multipliers, in plain numpy.

The engine of chapter "Residual networks and normalization" (Part V). A residual stack of
depth :math:`L` and width :math:`n` computes

.. math:: x_{\ell+1} = x_\ell + \alpha_\ell\, F_\ell(x_\ell), \qquad \ell = 0, \dots, L-1,

where the branch :math:`F_\ell` is a small pre-activation ReLU network of :math:`m` layers
(He et al. 2016, "Identity mappings in deep residual networks"),

.. math:: u_0 = x_\ell, \qquad u_j = W_{\ell j}\, \mathrm{relu}(N(u_{j-1})),
          \qquad F_\ell(x_\ell) = u_m ,

with :math:`N` the identity, batch normalization (over the batch, per feature) or layer
normalization (over the features, per input), both at initialization (scale 1, shift 0).
Without the skip (``skip=False``) the same stack is the plain network
:math:`x_{\ell+1} = \alpha_\ell F_\ell(x_\ell)`; with ``post_norm=True`` the sum is
layer-normalized, :math:`x_{\ell+1} = \mathrm{LN}(x_\ell + \alpha_\ell F_\ell(x_\ell))`, the
"Post-LN" transformer arrangement (Xiong et al. 2020).

Every array carries a leading *replica* axis ``R``, so that ``R`` independent networks run as one
stacked matmul: weights have shape ``(R, L, m, n, n)``, activations ``(R, batch, n)``. The
module has

- :class:`ResidualStack` with :meth:`~ResidualStack.forward`, :meth:`~ResidualStack.backward`
  (checked against finite differences in the tests) and the input-output Jacobian
  :math:`J = \prod_\ell (I + \alpha_\ell\, \partial F_\ell / \partial x)`;
- :func:`batch_norm` and :func:`layer_norm` at initialization;
- :func:`mean_square_profile`, the per-layer mean square of :math:`x_\ell` of fresh random stacks,
  beside its closed form :func:`residual_variance` :math:`= (1 + \alpha^2)^\ell` for a
  Kaiming-scaled ReLU branch;
- :func:`fixup_scale`, Fixup's :math:`L^{-1/(2m-2)}` (Zhang, Dauphin & Ma 2019);
- :func:`residual_classifier`, residual MLP classifiers under several initialization schemes,
  :data:`SCHEMES`; :class:`eiginit.training.engine.ResidualModel` trains them with
  :func:`eiginit.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _as_real_array,
    _describe,
    cast_finite,
    check_bool,
    check_entries,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_real,
    check_rng,
)

__all__ = [
    "NORMALIZATIONS",
    "SCHEMES",
    "ResidualClassifier",
    "ResidualForward",
    "ResidualGradients",
    "ResidualStack",
    "batch_norm",
    "fixup_scale",
    "layer_norm",
    "layer_norm_vjp",
    "mean_square_profile",
    "residual_block_jacobians",
    "residual_classifier",
    "residual_variance",
]

#: The normalizations a branch may apply to its input: none, batch norm or layer norm.
NORMALIZATIONS: tuple[str | None, ...] = (None, "batch", "layer")

#: The initialization schemes of :func:`residual_classifier`.
SCHEMES: tuple[str, ...] = ("kaiming", "scaled", "fixup", "rezero")

_EPS = 1e-5  # the eps of torch.nn.BatchNorm1d and torch.nn.LayerNorm


# ------------------------------------------------------------------------------ normalization
def _standardize(u: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, Any]:
    r"""Return ``(z, r, e)``: :math:`z = (u - \mu)/\sqrt{\sigma^2 + \epsilon}` along `axis`.

    :math:`1/\sqrt{\sigma^2 + \epsilon} = r\, 2^{-e}`, with ``e`` None (meaning 0) when the
    direct formula could be used. The direct formula squares the centred entries, which
    overflows once they pass about 1e154 (float64) or 2e19 (float32); then every slice is first
    divided by :math:`2^e`, its largest entry's power of two (for :math:`e \ge 1`), and
    :math:`\epsilon` by :math:`4^e`. Powers of two scale exactly, so the two routes give the
    same digits wherever the direct one does not overflow. No input checks.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        centred = u - u.mean(axis=axis, keepdims=True)
        var = (centred**2).mean(axis=axis, keepdims=True)
    if np.all(np.isfinite(var)):
        inv_std = 1 / np.sqrt(var + _EPS)
        return centred * inv_std, inv_std, None
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN in u (a diverged replica)
        exponent = np.maximum(np.frexp(np.max(np.abs(u), axis=axis, keepdims=True))[1], 0)
        scaled = np.ldexp(u, -exponent)
        centred = scaled - scaled.mean(axis=axis, keepdims=True)
        var = (centred**2).mean(axis=axis, keepdims=True)
        r = 1 / np.sqrt(var + np.ldexp(u.dtype.type(_EPS), -2 * exponent))
    return centred * r, r, exponent


def _normalize(u: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(u - mean) / sqrt(var + eps) along `axis`, and 1 / sqrt(var + eps) (no input checks)."""
    z, r, exponent = _standardize(u, axis)
    return z, (r if exponent is None else np.ldexp(r, -exponent))


def _normalize_backward(g: np.ndarray, z: np.ndarray, inv_std: np.ndarray, axis: int) -> np.ndarray:
    """Return the vector-Jacobian product of :func:`_normalize` (batch norm's backward)."""
    return inv_std * (
        g - g.mean(axis=axis, keepdims=True) - z * (g * z).mean(axis=axis, keepdims=True)
    )


def _check_activations(x: Any, name: str = "x") -> np.ndarray:
    """Return `x` as a finite float array (float32 stays float32), of shape (B, n) or (R, B, n)."""
    array = _as_real_array(x, name, keep_float32=True)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(
            f"{name} must have shape (batch, n) or (replicas, batch, n), got shape {array.shape}"
        )
    return array


def batch_norm(x: Any) -> np.ndarray:
    r"""Batch normalization at initialization: every feature standardized over the batch.

    .. math:: \mathrm{BN}(u)_{bi} = \frac{u_{bi} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
              \mu_i = \frac1B \sum_b u_{bi}, \quad \sigma_i^2 = \frac1B \sum_b (u_{bi} - \mu_i)^2,

    with :math:`\epsilon = 10^{-5}` and the learned scale and shift at their initial values 1 and
    0 (Ioffe & Szegedy 2015; torch.nn.BatchNorm1d in training mode).

    Any finite input is normalized correctly: where the squares would overflow (entries above
    about 1e154 in float64, 2e19 in float32) each feature is first divided by a power of two,
    exactly, and :math:`\epsilon` with it; elsewhere the formula is evaluated as written.

    Parameters
    ----------
    x : array_like, shape (batch, n) or (replicas, batch, n)
        At least two rows per batch. float32 stays float32; other real input becomes float64.

    Returns
    -------
    numpy.ndarray, the shape of `x`

    Raises
    ------
    TypeError, ValueError
        For input that is not a finite real array of one of those shapes.

    Examples
    --------
    >>> z = batch_norm([[1.0, 10.0], [3.0, 30.0]])
    >>> np.round(z, 3).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> batch_norm([[1e200], [-1e200]]).tolist()  # scale-invariant once var >> eps
    [[1.0], [-1.0]]
    """
    array = _check_activations(x)
    if array.shape[-2] < 2:
        raise ValueError(f"batch_norm needs a batch of at least 2 rows, got shape {array.shape}")
    return _normalize(array, -2)[0]


def layer_norm(x: Any) -> np.ndarray:
    r"""Layer normalization at initialization: every input standardized over its features.

    .. math:: \mathrm{LN}(u)_{bi} = \frac{u_{bi} - \mu_b}{\sqrt{\sigma_b^2 + \epsilon}}

    with the mean and variance over the :math:`n` features of row :math:`b`,
    :math:`\epsilon = 10^{-5}`, scale 1 and shift 0 (Ba, Kiros & Hinton 2016; torch.nn.LayerNorm).
    Inputs of any finite magnitude, as in :func:`batch_norm`.

    Parameters
    ----------
    x : array_like, shape (batch, n) or (replicas, batch, n)
        At least two features.

    Returns
    -------
    numpy.ndarray, the shape of `x`

    Examples
    --------
    >>> np.round(layer_norm([[1.0, 3.0]]), 3).tolist()
    [[-1.0, 1.0]]
    """
    array = _check_activations(x)
    if array.shape[-1] < 2:
        raise ValueError(f"layer_norm needs at least 2 features, got shape {array.shape}")
    return _normalize(array, -1)[0]


def layer_norm_vjp(x: Any, grad: Any) -> np.ndarray:
    r"""Return :math:`J^\top g`, the gradient through :func:`layer_norm` at `x`.

    With :math:`z = \mathrm{LN}(x)` and :math:`s = 1/\sqrt{\sigma^2 + \epsilon}` per row,

    .. math:: J^\top g = s\,\big(g - \bar g - z\, \overline{g \odot z}\big),

    bars meaning means over the features (the backward formula of Ioffe & Szegedy 2015, section
    3, applied along the features). Used for the final layer norm of a Pre-LN stack. `x` and
    `grad` of any finite magnitude: both are divided by powers of two before the formula, and the
    result is scaled back once; a result beyond the dtype's range is refused with a ValueError.

    Parameters
    ----------
    x : array_like, shape (batch, n) or (replicas, batch, n)
        The input of the layer norm.
    grad : array_like, the shape of `x`
        The gradient with respect to its output.

    Returns
    -------
    numpy.ndarray, the shape of `x`

    Examples
    --------
    >>> layer_norm_vjp([[1.0, 3.0]], [[1.0, 1.0]]).tolist()   # a shift changes nothing
    [[0.0, 0.0]]
    """
    array = _check_activations(x)
    g = _check_activations(grad, "grad")
    if g.shape != array.shape:
        raise ValueError(f"grad must have the shape of x, {array.shape}, got {g.shape}")
    if array.shape[-1] < 2:
        raise ValueError(f"layer_norm needs at least 2 features, got shape {array.shape}")
    z, r, exponent = _standardize(array, -1)
    # g is divided by its largest power of two too, so that g - mean(g) cannot overflow; the
    # result is scaled back once, and refused only if it is beyond the dtype's range.
    g_exponent = int(np.frexp(np.max(np.abs(g)))[1])
    h = _normalize_backward(np.ldexp(g, -g_exponent), z, r, -1)
    with np.errstate(over="ignore"):
        out = np.ldexp(h, g_exponent - (0 if exponent is None else exponent))
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"the gradient is beyond {out.dtype}'s range: grad is too large for an input x this "
            "small (the layer norm multiplies by 1/sqrt(var + 1e-5), up to 316)"
        )
    return out


def _check_norm(norm: Any) -> str | None:
    if not (norm is None or isinstance(norm, str)) or norm not in NORMALIZATIONS:
        raise ValueError(f"norm must be one of None, 'batch', 'layer', got {_describe(norm)}")
    return norm


# ----------------------------------------------------------------------------- closed forms
def residual_variance(alpha: float, depth: int) -> np.ndarray:
    r"""Return :math:`(1 + \alpha^2)^\ell`, ``l = 0..depth``: the residual variance growth.

    For :math:`x_{\ell+1} = x_\ell + \alpha W \mathrm{relu}(x_\ell)` with :math:`W` drawn afresh
    with entries :math:`\mathcal{N}(0, 2/n)` (Kaiming), the branch is uncorrelated with
    :math:`x_\ell` and :math:`\mathbb{E}\|W\mathrm{relu}(x)\|^2 = \|x\|^2` for a symmetric
    :math:`x`, so :math:`\mathbb{E}\|x_{\ell+1}\|^2 = (1 + \alpha^2)\,\mathbb{E}\|x_\ell\|^2`.
    A branch of :math:`m` such layers gives the same factor.

    Parameters
    ----------
    alpha : float
        The branch multiplier (0 or more).
    depth : int
        The number of blocks :math:`L`.

    Returns
    -------
    numpy.ndarray, shape (depth + 1,)
        :math:`\mathbb{E}\|x_\ell\|^2 / \|x_0\|^2`.

    Examples
    --------
    >>> residual_variance(1.0, 3).tolist()
    [1.0, 2.0, 4.0, 8.0]
    """
    a = _check_alpha(alpha)
    depth = check_int(depth, "depth", minimum=1)
    check_entries(depth + 1, "the profile", "depth")
    growth = np.arange(depth + 1) * np.log1p(a * a)
    if growth[-1] > 700:
        raise ValueError(
            f"(1 + alpha^2)^depth overflows float64 for alpha = {a} and depth = {depth}; "
            "use a smaller alpha or depth"
        )
    return np.exp(growth)


def fixup_scale(depth: int, branch_layers: int) -> float:
    r"""Fixup's scale :math:`L^{-1/(2m-2)}` for the branch layers that are not zero.

    Fixup (Zhang, Dauphin & Ma 2019, section 3, "Fixup initialization") sets the last layer of
    each of the :math:`L` residual branches to zero and rescales the other layers of a branch of
    :math:`m \ge 2` layers, initialized by He's rule, by :math:`L^{-1/(2m-2)}`.

    Parameters
    ----------
    depth : int
        The number of residual branches :math:`L`.
    branch_layers : int
        The number of layers :math:`m \ge 2` in a branch.

    Returns
    -------
    float

    Examples
    --------
    >>> fixup_scale(16, 2)
    0.25
    """
    depth = check_int(depth, "depth", minimum=1)
    m = check_int(branch_layers, "branch_layers", minimum=2)
    if depth > 2**1000:  # beyond float64's range as a float: take the power through its logarithm
        return math.exp(-math.log(depth) / (2 * m - 2))
    return float(depth ** (-1 / (2 * m - 2)))


def _check_alpha(alpha: Any) -> float:
    a = check_real(alpha, "alpha")  # any real number: int, float, Fraction, numpy scalar
    if a < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    return a


# ------------------------------------------------------------------------- the residual stack
@dataclass(frozen=True, eq=False)
class ResidualForward:
    r"""What :meth:`ResidualStack.forward` computed, kept for the backward pass.

    Attributes
    ----------
    states : tuple of numpy.ndarray
        ``states[l]`` is :math:`x_\ell`, shape ``(R, batch, n)``, ``l = 0..L``.
    branch_out : tuple of numpy.ndarray
        ``branch_out[l]`` is the branch output :math:`F_\ell(x_\ell)` before the multiplier.
    normalized : tuple of tuple of numpy.ndarray
        ``normalized[l][j]`` is :math:`N(u_{j})`, the normalized input of branch layer ``j``.
    inv_std : tuple of tuple
        The normalizations' :math:`1/\sqrt{\sigma^2 + \epsilon}` (None without normalization).
    post_inv_std : tuple of numpy.ndarray
        With ``post_norm``: the post-addition layer norms' :math:`1/\sqrt{\sigma^2 + \epsilon}`.
    """

    states: tuple[np.ndarray, ...]
    branch_out: tuple[np.ndarray, ...]
    normalized: tuple[tuple[np.ndarray, ...], ...]
    inv_std: tuple[tuple[Any, ...], ...]
    post_inv_std: tuple[np.ndarray, ...]

    @property
    def output(self) -> np.ndarray:
        """The stack's output :math:`x_L`, shape ``(R, batch, n)``."""
        return self.states[-1]


@dataclass(frozen=True, eq=False)
class ResidualGradients:
    r"""Gradients of a scalar loss from :meth:`ResidualStack.backward`, summed over the batch.

    Attributes
    ----------
    weights : numpy.ndarray
        Shape ``(R, L, m, n, n)``.
    alpha : numpy.ndarray
        Shape ``(R, L)``.
    states : tuple of numpy.ndarray
        ``states[l]`` is :math:`\partial \mathcal{L} / \partial x_\ell`, shape ``(R, batch, n)``.
    """

    weights: np.ndarray
    alpha: np.ndarray
    states: tuple[np.ndarray, ...]

    @property
    def inputs(self) -> np.ndarray:
        r""":math:`\partial \mathcal{L} / \partial x_0`, shape ``(R, batch, n)``."""
        return self.states[0]


@dataclass(frozen=True, eq=False)
class ResidualStack:
    r"""A stack of residual blocks :math:`x_{\ell+1} = x_\ell + \alpha_\ell F_\ell(x_\ell)`.

    See the module docstring for the branch :math:`F_\ell`. Build one with
    :meth:`ResidualStack.create`.

    Attributes
    ----------
    weights : numpy.ndarray
        Shape ``(R, L, m, n, n)``. ``weights[r, l, j]`` is :math:`W_{\ell j}` of replica
        ``r``, PyTorch's ``(fan_out, fan_in)``.
    alpha : numpy.ndarray
        Shape ``(R, L)``. The branch multipliers :math:`\alpha_\ell`.
    skip : bool, default True
        False drops the identity: the plain network :math:`x_{\ell+1} = \alpha_\ell F_\ell(x_\ell)`.
    norm : str or None, default None
        The normalization applied to the input of every branch layer: None, ``"batch"`` or
        ``"layer"``.
    post_norm : bool, default False
        Layer-normalize every block's output (Post-LN).

    Examples
    --------
    >>> stack = ResidualStack.create(4, 3, rng=np.random.default_rng(0), alpha=0.0)
    >>> x = np.ones((2, 4))
    >>> bool(np.allclose(stack(x)[0], x))   # alpha = 0: every block is the identity
    True
    >>> stack.weights.shape
    (1, 3, 1, 4, 4)
    """

    weights: np.ndarray
    alpha: np.ndarray
    skip: bool = True
    norm: str | None = None
    post_norm: bool = False

    def __post_init__(self) -> None:
        W, a = self.weights, self.alpha
        if not isinstance(W, np.ndarray) or W.dtype.kind != "f" or W.ndim != 5:
            raise TypeError(
                "weights must be a float array of shape (replicas, depth, branch_layers, n, n), "
                f"got {_describe(W)}"
            )
        if W.shape[-1] != W.shape[-2] or min(W.shape) < 1:
            raise ValueError(
                f"weights must hold non-empty square n x n matrices, got shape {W.shape}"
            )
        if not isinstance(a, np.ndarray) or a.shape != W.shape[:2] or a.dtype != W.dtype:
            raise ValueError(
                f"alpha must be an array of shape {W.shape[:2]} (replicas, depth) and dtype "
                f"{W.dtype}, got {_describe(a)}"
            )
        # numpy booleans are accepted and stored as bool, as check_bool does everywhere else.
        object.__setattr__(self, "skip", check_bool(self.skip, "skip"))
        object.__setattr__(self, "post_norm", check_bool(self.post_norm, "post_norm"))
        _check_norm(self.norm)
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(a))):
            raise ValueError("weights and alpha must be finite, got NaN or infinite entries")

    @classmethod
    def create(
        cls,
        width: int,
        depth: int,
        *,
        rng: np.random.Generator,
        branch_layers: int = 1,
        alpha: float = 1.0,
        gain: float = np.sqrt(2.0),
        replicas: int = 1,
        skip: bool = True,
        norm: str | None = None,
        post_norm: bool = False,
        dtype: Any = np.float64,
    ) -> ResidualStack:
        r"""Draw a stack with Gaussian weights :math:`\mathcal{N}(0, \mathrm{gain}^2 / n)`.

        The default gain :math:`\sqrt 2` is Kaiming's for ReLU (He et al. 2015).

        Parameters
        ----------
        width, depth : int
            :math:`n` and :math:`L`, at least 1.
        rng : numpy.random.Generator
        branch_layers : int, default 1
            :math:`m`, the layers of one branch.
        alpha : float, default 1.0
            Every branch multiplier (0 is SkipInit/ReZero: every block is the identity).
        gain : float, default sqrt(2)
        replicas : int, default 1
            Independent stacks drawn at once (the leading axis).
        skip, norm, post_norm
            As in the class.
        dtype : numpy dtype, default float64
            ``np.float64`` or ``np.float32``.

        Returns
        -------
        ResidualStack
        """
        check_rng(rng)
        n = check_int(width, "width", minimum=1)
        depth = check_int(depth, "depth", minimum=1)
        m = check_int(branch_layers, "branch_layers", minimum=1)
        R = check_int(replicas, "replicas", minimum=1)
        a = _check_alpha(alpha)
        g = check_positive_float(gain, "gain")
        dtype = check_float_dtype(dtype)
        _check_norm(norm)
        check_entries(
            R * depth * m * n * n, "the weights", "width, depth, branch_layers or replicas"
        )
        with np.errstate(over="ignore"):
            W = ((g / np.sqrt(n)) * rng.standard_normal((R, depth, m, n, n))).astype(dtype)
            alphas = np.full((R, depth), a).astype(dtype)
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(alphas))):
            raise ValueError(
                f"gain = {g} or alpha = {a} is beyond {dtype}'s range for these weights; use "
                "smaller values"
            )
        return cls(W, alphas, skip, norm, post_norm)

    @property
    def replicas(self) -> int:
        """The number of independent stacks R."""
        return self.weights.shape[0]

    @property
    def depth(self) -> int:
        """The number of blocks L."""
        return self.weights.shape[1]

    @property
    def branch_layers(self) -> int:
        """The layers m of one branch."""
        return self.weights.shape[2]

    @property
    def width(self) -> int:
        """The width n."""
        return self.weights.shape[3]

    def _inputs(self, x: Any) -> np.ndarray:
        array = _check_activations(x)
        if array.shape[-1] != self.width:
            raise ValueError(
                f"x must have {self.width} features (the stack's width), got shape {array.shape}"
            )
        if array.ndim == 2:
            array = np.broadcast_to(array, (self.replicas, *array.shape))
        elif array.shape[0] != self.replicas:
            raise ValueError(
                f"x of shape (replicas, batch, n) must have {self.replicas} replicas, "
                f"got shape {array.shape}"
            )
        if self.norm == "batch" and array.shape[1] < 2:
            raise ValueError(f"batch norm needs a batch of at least 2 inputs, got {array.shape}")
        return cast_finite(array, self.weights.dtype, "x")

    def __call__(self, x: Any) -> np.ndarray:
        """Return the output :math:`x_L`, shape ``(R, batch, n)``, keeping nothing else."""
        return self._output(self._inputs(x), strict=True)

    def _output(self, x: np.ndarray, *, strict: bool) -> np.ndarray:
        """Return the output on checked input, without storing the intermediate activations."""
        axis = {"batch": -2, "layer": -1}.get(self.norm or "", 0)
        mode = "raise" if strict else "ignore"
        with np.errstate(over=mode, invalid=mode):
            try:
                for layer in range(self.depth):
                    u = x
                    for j in range(self.branch_layers):
                        z = _normalize(u, axis)[0] if axis else u
                        u = np.maximum(z, 0) @ np.swapaxes(self.weights[:, layer, j], -1, -2)
                    u = self.alpha[:, layer, None, None] * u
                    x = x + u if self.skip else u
                    if self.post_norm:
                        x = _normalize(x, -1)[0]
            except FloatingPointError as error:
                raise ValueError(
                    f"the activations overflow {x.dtype} at block {layer + 1} of {self.depth}; "
                    f"use {'float64, ' if x.dtype == np.float32 else ''}a smaller alpha, a "
                    "smaller depth or a smaller x"
                ) from error
        return x

    def forward(self, x: Any) -> ResidualForward:
        r"""Run the stack on `x` and keep what the backward pass needs.

        Parameters
        ----------
        x : array_like, shape (batch, n) or (R, batch, n)
            The same batch is fed to every replica if it has no replica axis.

        Returns
        -------
        ResidualForward

        Raises
        ------
        ValueError
            If the activations overflow the dtype.
        """
        return self._run(self._inputs(x), strict=True)

    def _run(self, x: np.ndarray, *, strict: bool) -> ResidualForward:
        """Run the forward pass on checked input; `strict` turns overflow into a ValueError."""
        axis = {"batch": -2, "layer": -1}.get(self.norm or "", 0)
        states, branch_out, normalized, inv_std, post_inv_std = [x], [], [], [], []
        mode = "raise" if strict else "ignore"
        with np.errstate(over=mode, invalid=mode):
            try:
                for layer in range(self.depth):
                    u, zs, stds = x, [], []
                    for j in range(self.branch_layers):
                        z, std = _normalize(u, axis) if axis else (u, None)
                        zs.append(z)
                        stds.append(std)
                        u = np.maximum(z, 0) @ np.swapaxes(self.weights[:, layer, j], -1, -2)
                    normalized.append(tuple(zs))
                    inv_std.append(tuple(stds))
                    branch_out.append(u)
                    total = self.alpha[:, layer, None, None] * u
                    if self.skip:
                        total = total + x
                    if self.post_norm:
                        total, std = _normalize(total, -1)
                        post_inv_std.append(std)
                    x = total
                    states.append(x)
            except FloatingPointError as error:
                raise ValueError(
                    f"the activations overflow {x.dtype} at block {layer + 1} of {self.depth}; "
                    f"use {'float64, ' if x.dtype == np.float32 else ''}a smaller alpha, a "
                    "smaller depth or a smaller x"
                ) from error
        return ResidualForward(
            tuple(states), tuple(branch_out), tuple(normalized), tuple(inv_std), tuple(post_inv_std)
        )

    def backward(self, fp: ResidualForward, grad_out: Any) -> ResidualGradients:
        r"""Backpropagate :math:`\partial \mathcal{L} / \partial x_L` through the stack.

        Block by block, from the top: with :math:`g = \partial\mathcal{L}/\partial x_{\ell+1}`,
        :math:`\partial\mathcal{L}/\partial\alpha_\ell = \langle g, F_\ell(x_\ell)\rangle`, the
        branch receives :math:`\alpha_\ell g`, each branch layer gives
        :math:`\partial\mathcal{L}/\partial W_{\ell j} = \delta^\top \mathrm{relu}(N(u_{j-1}))`
        and passes back :math:`N'(\cdot)^\top (\mathbf 1_{N(u) > 0} \odot W_{\ell j}^\top\delta)`,
        and the skip adds :math:`g` itself.

        Parameters
        ----------
        fp : ResidualForward
            From :meth:`forward` of this stack.
        grad_out : array_like, shape (batch, n) or (R, batch, n)

        Returns
        -------
        ResidualGradients
        """
        if (
            not isinstance(fp, ResidualForward)
            or len(fp.states) != self.depth + 1
            or fp.output.shape[0] != self.replicas
        ):
            raise TypeError(f"fp must be this stack's ResidualForward, got {_describe(fp)}")
        g = _check_activations(grad_out, "grad_out")
        if g.ndim == 2:
            g = np.broadcast_to(g, (self.replicas, *g.shape))
        if g.shape != fp.output.shape:
            raise ValueError(
                f"grad_out must have the output's shape {fp.output.shape}, got {g.shape}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            grads = self._backprop(fp, cast_finite(g, self.weights.dtype, "grad_out"))
        if not all(np.all(np.isfinite(a)) for a in (grads.weights, grads.alpha, *grads.states)):
            raise ValueError(
                f"the gradients overflow {self.weights.dtype}: grad_out is too large for this "
                "stack; divide it by a power of two and scale the gradients back"
            )
        return grads

    def _backprop(self, fp: ResidualForward, g: np.ndarray) -> ResidualGradients:
        """Run the backward pass on checked input (training uses it unchecked)."""
        axis = {"batch": -2, "layer": -1}.get(self.norm or "", 0)
        dW = np.empty_like(self.weights)
        dalpha = np.empty_like(self.alpha)
        dstates = [g]
        for layer in reversed(range(self.depth)):
            if self.post_norm:
                g = _normalize_backward(g, fp.states[layer + 1], fp.post_inv_std[layer], -1)
            dalpha[:, layer] = (g * fp.branch_out[layer]).sum(axis=(1, 2))
            delta = self.alpha[:, layer, None, None] * g
            for j in reversed(range(self.branch_layers)):
                z = fp.normalized[layer][j]
                dW[:, layer, j] = np.swapaxes(delta, -1, -2) @ np.maximum(z, 0)
                delta = (delta @ self.weights[:, layer, j]) * (z > 0)
                if axis:
                    delta = _normalize_backward(delta, z, fp.inv_std[layer][j], axis)
            g = g + delta if self.skip else delta
            dstates.append(g)
        return ResidualGradients(dW, dalpha, tuple(reversed(dstates)))

    def jacobian(self, x: Any) -> np.ndarray:
        r"""Return the input-output Jacobian :math:`J = \partial x_L / \partial x_0` at every input.

        .. math:: J = \prod_{\ell = L-1}^{0} \big(I + \alpha_\ell\, W_{\ell m} D_{\ell m}
                  \cdots W_{\ell 1} D_{\ell 1}\big), \qquad
                  D_{\ell j} = \operatorname{diag} \mathbf 1_{u_{j-1} > 0},

        without the :math:`I` when ``skip=False``. Refused with a normalization: batch norm
        couples the inputs of a batch, so one input has no Jacobian of its own.

        Parameters
        ----------
        x : array_like, shape (batch, n) or (R, batch, n)

        Returns
        -------
        numpy.ndarray, shape (R, batch, n, n)
        """
        if self.norm is not None or self.post_norm:
            raise ValueError(
                "jacobian is defined here for stacks without normalization (norm=None, "
                f"post_norm=False), got norm={self.norm!r}, post_norm={self.post_norm}"
            )
        fp = self.forward(x)
        R, B, n = fp.output.shape
        J = np.broadcast_to(np.eye(n, dtype=self.weights.dtype), (R, B, n, n)).copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for layer in range(self.depth):
                branch = J
                for j in range(self.branch_layers):
                    mask = (fp.normalized[layer][j] > 0).astype(J.dtype)
                    branch = self.weights[:, layer, j, None] @ (mask[..., None] * branch)
                branch = self.alpha[:, layer, None, None, None] * branch
                J = J + branch if self.skip else branch
        if not np.all(np.isfinite(J)):
            hint = "float64, " if J.dtype == np.float32 else ""
            raise ValueError(
                f"the Jacobian overflows {J.dtype}: its entries grow past the dtype's range "
                f"through the blocks; use {hint}a smaller alpha or a smaller depth"
            )
        return J

    def jacobian_singular_values(self, x: Any) -> np.ndarray:
        """Return the singular values of :meth:`jacobian`, largest first, shape ``(R, batch, n)``.

        Examples
        --------
        >>> stack = ResidualStack.create(3, 2, rng=np.random.default_rng(1), alpha=0.0)
        >>> stack.jacobian_singular_values(np.ones((1, 3))).round(12).tolist()
        [[[1.0, 1.0, 1.0]]]
        """
        return np.linalg.svd(self.jacobian(x), compute_uv=False)


def mean_square_profile(
    width: int,
    depth: int,
    alpha: float,
    *,
    rng: np.random.Generator,
    trials: int = 8,
    batch: int = 32,
    norm: str | None = None,
    skip: bool = True,
) -> np.ndarray:
    r"""Measure :math:`\mathbb{E}\,\|x_\ell\|^2 / n`, ``l = 0..depth``, over fresh random stacks.

    Runs `trials` independent stacks of one-layer Kaiming branches
    (:math:`x_{\ell+1} = x_\ell + \alpha W_\ell \mathrm{relu}(N(x_\ell))`, entries of
    :math:`W_\ell` from :math:`\mathcal{N}(0, 2/n)`) on a batch of standard Gaussian inputs,
    drawing one layer's weights at a time so that deep stacks need little memory. Compare with
    :func:`residual_variance` (no normalization) or :math:`1 + \alpha^2 \ell` (batch norm:
    every branch adds a unit-variance signal, De & Smith 2020).

    Parameters
    ----------
    width, depth : int
    alpha : float
    rng : numpy.random.Generator
    trials : int, default 8
    batch : int, default 32
    norm : {None, "batch", "layer"}, default None
    skip : bool, default True

    Returns
    -------
    numpy.ndarray, shape (depth + 1,)
        The mean square of the entries of :math:`x_\ell` over trials, batch and features.

    Raises
    ------
    ValueError
        If the activations overflow float64.

    Examples
    --------
    >>> mean_square_profile(8, 2, 0.0, rng=np.random.default_rng(0))[-1] > 0
    np.True_
    """
    check_rng(rng)
    n = check_int(width, "width", minimum=1)
    depth = check_int(depth, "depth", minimum=1)
    a = _check_alpha(alpha)
    trials = check_int(trials, "trials", minimum=1)
    norm = _check_norm(norm)
    batch = check_int(batch, "batch", minimum=2 if norm == "batch" else 1)
    skip = check_bool(skip, "skip")
    check_entries(trials * n * max(n, batch), "one layer", "trials, width or batch")
    check_entries(depth + 1, "the profile", "depth")
    axis = {"batch": -2, "layer": -1}.get(norm or "", 0)
    x = rng.standard_normal((trials, batch, n))
    profile = [float(np.mean(x**2))]
    with np.errstate(over="raise", invalid="raise"):
        try:
            for _ in range(depth):
                W = np.sqrt(2 / n) * rng.standard_normal((trials, n, n))
                z = _normalize(x, axis)[0] if axis else x
                branch = a * (np.maximum(z, 0) @ np.swapaxes(W, -1, -2))
                x = x + branch if skip else branch
                profile.append(float(np.mean(x**2)))
        except FloatingPointError as error:
            raise ValueError(
                f"the activations overflow float64 after {len(profile) - 1} of {depth} blocks; "
                "use a smaller alpha or depth"
            ) from error
    return np.array(profile)


# ------------------------------------------------------------------------------ training
@dataclass(frozen=True, eq=False)
class ResidualClassifier:
    r"""A residual MLP classifier: an input layer, a :class:`ResidualStack`, a linear readout.

    .. math:: x_0 = W_{\mathrm{in}}\, v + b_{\mathrm{in}}, \qquad x_L = \text{stack}(x_0),
              \qquad \text{logits} = W_{\mathrm{out}}\, \mathrm{relu}(x_L) + b_{\mathrm{out}}

    for an input :math:`v`, with a leading replica axis on every parameter.

    Attributes
    ----------
    w_in : numpy.ndarray
        Shape ``(R, n, d)``.
    b_in : numpy.ndarray
        Shape ``(R, n)``.
    stack : ResidualStack
    w_out : numpy.ndarray
        Shape ``(R, c, n)``.
    b_out : numpy.ndarray
        Shape ``(R, c)``.
    train_alpha : numpy.ndarray of bool
        Shape ``(R,)``. Which replicas' branch multipliers training updates (ReZero's are).
    """

    w_in: np.ndarray
    b_in: np.ndarray
    stack: ResidualStack
    w_out: np.ndarray
    b_out: np.ndarray
    train_alpha: np.ndarray

    def parameters(self) -> list[np.ndarray]:
        """Return the arrays an optimizer updates, in a fixed order."""
        return [self.w_in, self.b_in, self.stack.weights, self.stack.alpha, self.w_out, self.b_out]

    def logits(self, v: np.ndarray) -> np.ndarray:
        """Return the logits of every replica, shape ``(R, batch, c)``."""
        x0 = v @ np.swapaxes(self.w_in, -1, -2) + self.b_in[:, None]
        top = np.maximum(self.stack._output(x0, strict=False), 0)
        return top @ np.swapaxes(self.w_out, -1, -2) + self.b_out[:, None]


def residual_classifier(
    schemes: str | Sequence[str],
    *,
    inputs: int,
    classes: int,
    width: int,
    depth: int,
    rng: np.random.Generator | Sequence[np.random.Generator],
    dtype: Any = np.float32,
) -> ResidualClassifier:
    r"""Draw residual MLP classifiers (two-layer branches), one replica per scheme named.

    Every scheme draws the input layer with Kaiming's :math:`\mathcal{N}(0, 2/d)` (zero
    biases) and the branch layers with :math:`\mathcal{N}(0, 2/n)`; they differ in:

    ============  ================================================================================
    ``kaiming``   nothing more: :math:`\alpha = 1`, the variance grows as :math:`2^\ell`
    ``scaled``    :math:`\alpha = 1/\sqrt{L}`, the branch scaling of GPT-2 (Radford et al. 2019)
    ``fixup``     the second layer of every branch and the readout zero, the first scaled by
                  :func:`fixup_scale` :math:`= L^{-1/2}` (Zhang, Dauphin & Ma 2019; without
                  Fixup's scalar biases and multipliers)
    ``rezero``    :math:`\alpha = 0`, trained (Bachlechner et al. 2021)
    ============  ================================================================================

    The readout is :math:`\mathcal{N}(0, 1/n)` except under Fixup.

    Parameters
    ----------
    schemes : str or sequence of str
        One of :data:`SCHEMES` per replica (a single name gives one replica).
    inputs, classes, width, depth : int
    rng : numpy.random.Generator or sequence of them
        One generator draws every replica; a sequence of one generator per replica draws
        replica ``r`` from ``rng[r]`` alone (what :class:`eiginit.training.protocol.Contender`'s
        ``build`` needs: a replica's weights do not depend on how many others are drawn).
    dtype : numpy dtype, default float32

    Returns
    -------
    ResidualClassifier

    Examples
    --------
    >>> net = residual_classifier(["fixup", "rezero"], inputs=4, classes=3, width=8, depth=2,
    ...                           rng=np.random.default_rng(0))
    >>> net.stack.weights.shape, net.train_alpha.tolist()
    ((2, 2, 2, 8, 8), [False, True])

    With one generator per replica, replica r is the network its generator draws alone:

    >>> pair = residual_classifier(["scaled"] * 2, inputs=4, classes=3, width=8, depth=2,
    ...                            rng=[np.random.default_rng(1), np.random.default_rng(2)])
    >>> alone = residual_classifier("scaled", inputs=4, classes=3, width=8, depth=2,
    ...                             rng=np.random.default_rng(2))
    >>> bool(np.array_equal(pair.stack.weights[1], alone.stack.weights[0]))
    True
    """
    if not isinstance(schemes, str | Sequence | np.ndarray):
        raise TypeError(
            f"schemes must be a scheme name or a sequence of them ({', '.join(SCHEMES)}), "
            f"got {_describe(schemes)}"
        )
    names = [schemes] if isinstance(schemes, str) else list(schemes)
    if not names or any(not isinstance(name, str) or name not in SCHEMES for name in names):
        raise ValueError(
            f"schemes must name one or more of {', '.join(SCHEMES)}, got {_describe(schemes)}"
        )
    d = check_int(inputs, "inputs", minimum=1)
    c = check_int(classes, "classes", minimum=2)
    n = check_int(width, "width", minimum=1)
    L = check_int(depth, "depth", minimum=1)
    R = len(names)
    if not isinstance(rng, np.random.Generator):
        if (
            isinstance(rng, str | bytes)
            or not isinstance(rng, Sequence)
            or len(rng) != R
            or not all(isinstance(g, np.random.Generator) for g in rng)
        ):
            raise TypeError(
                f"rng must be a numpy.random.Generator or a sequence of {R} of them (one per "
                f"replica), got {_describe(rng)}"
            )
        check_entries(R * n * (d + c), "the input and readout layers", "inputs, classes or width")
        parts = [
            residual_classifier(name, inputs=d, classes=c, width=n, depth=L, rng=g, dtype=dtype)
            for name, g in zip(names, rng, strict=True)
        ]

        def stacked(get: Any) -> np.ndarray:
            return np.concatenate([get(part) for part in parts])

        stack = ResidualStack(stacked(lambda p: p.stack.weights), stacked(lambda p: p.stack.alpha))
        return ResidualClassifier(
            stacked(lambda p: p.w_in),
            stacked(lambda p: p.b_in),
            stack,
            stacked(lambda p: p.w_out),
            stacked(lambda p: p.b_out),
            train_alpha=stacked(lambda p: p.train_alpha),
        )
    check_entries(R * n * (d + c), "the input and readout layers", "inputs, classes or width")
    stack = ResidualStack.create(n, L, rng=rng, branch_layers=2, replicas=R, dtype=dtype)
    w_in = np.sqrt(2 / d) * rng.standard_normal((R, n, d))
    w_out = rng.standard_normal((R, c, n)) / np.sqrt(n)
    for r, name in enumerate(names):
        stack.alpha[r] = {"kaiming": 1.0, "scaled": 1 / np.sqrt(L), "fixup": 1.0, "rezero": 0.0}[
            name
        ]
        if name == "fixup":
            stack.weights[r, :, 0] *= fixup_scale(L, 2)
            stack.weights[r, :, 1] = 0
            w_out[r] = 0
    return ResidualClassifier(
        w_in.astype(dtype),
        np.zeros((R, n), dtype),
        stack,
        w_out.astype(dtype),
        np.zeros((R, c), dtype),
        train_alpha=np.array([name == "rezero" for name in names]),
    )


def residual_block_jacobians(stack: Any, x: Any, *, replica: int = 0) -> np.ndarray:
    r"""Return the block Jacobians :math:`I + \alpha_\ell\, \partial F_\ell / \partial x_\ell`.

    For an :class:`eiginit.ResidualStack` without normalization, at one input `x`: factor
    :math:`\ell` is :math:`I + \alpha_\ell W_{\ell m} D_{\ell m} \cdots W_{\ell 1} D_{\ell 1}`
    (without the :math:`I` when ``skip=False``), so that the input-output Jacobian is
    ``factors[L-1] @ ... @ factors[0]``, the product :meth:`eiginit.ResidualStack.jacobian` forms.
    Hand them to :func:`eiginit.product_singular_values`.

    Parameters
    ----------
    stack : ResidualStack
        Without normalization (``norm=None``, ``post_norm=False``).
    x : array_like, shape (n,)
        One input.
    replica : int, default 0
        Which of the stack's replicas.

    Returns
    -------
    numpy.ndarray, shape (L, n, n)

    Examples
    --------
    >>> from eiginit import ResidualStack
    >>> stack = ResidualStack.create(3, 2, rng=np.random.default_rng(0), alpha=0.0)
    >>> residual_block_jacobians(stack, np.ones(3)).shape
    (2, 3, 3)
    """
    if not isinstance(stack, ResidualStack):
        raise TypeError(f"stack must be a ResidualStack, got {_describe(stack)}")
    if stack.norm is not None or stack.post_norm:
        raise ValueError(
            "block Jacobians are defined here for stacks without normalization, got "
            f"norm={stack.norm!r}, post_norm={stack.post_norm}"
        )
    r = check_int(replica, "replica", minimum=0, maximum=stack.replicas - 1)
    n = stack.width
    v = np.asarray(x, dtype=float) if not isinstance(x, str | bytes) else None
    if v is None or v.shape != (n,):
        raise ValueError(f"x must be one input of shape ({n},), got {_describe(x)}")
    fp = stack.forward(v[None, :])
    eye = np.eye(n)
    out = np.empty((stack.depth, n, n))
    for layer in range(stack.depth):
        branch = eye
        for j in range(stack.branch_layers):
            mask = (fp.normalized[layer][j][r, 0] > 0).astype(float)
            branch = stack.weights[r, layer, j] @ (mask[:, None] * branch)
        branch = stack.alpha[r, layer] * branch
        out[layer] = eye + branch if stack.skip else branch
    return out
