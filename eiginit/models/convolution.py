r"""Convolution layers as matrices: their spectrum by the FFT, delta-orthogonal kernels, a 1-D CNN.

Used by the chapter "Convolutions: a spectrum one Fourier transform away" (Part V).

A 1-D convolution layer with kernel ``K`` of shape ``(c_out, c_in, width)`` acting on signals of
length ``n`` with circular padding is a ``(c_out * n, c_in * n)`` matrix (:func:`conv_operator`).
The discrete Fourier transform block-diagonalizes it: at every frequency :math:`\omega` it acts as
one small ``c_out x c_in`` complex matrix :math:`\hat K(\omega)` (:func:`conv_frequency_blocks`),
so its singular values are those of the ``n`` small matrices (:func:`conv_singular_values`) and,
for square channels, its eigenvalues are theirs too (:func:`conv_eigenvalues`). This is the
characterization of Sedghi, Gupta & Long (2019) for 2-D convolutions, written here for 1-D.

:func:`delta_orthogonal` is the initializer of Xiao et al. (2018): an orthogonal matrix at the
centre tap, zeros elsewhere, which makes the layer exactly orthogonal. :func:`conv_fans` says what
PyTorch and Keras take as fan-in and fan-out for convolution, transposed-convolution and depthwise
layers, beside the true numbers of inputs and outputs each weight touches.

The training part is plain numpy: :func:`conv1d` and :func:`conv1d_backward` are one layer,
:class:`CNN1d` a stack of them with ReLU and a linear readout, with several independent replicas
along a leading axis; :func:`eiginit.fit` trains them through
:class:`eiginit.training.engine.CNNModel`
(each replica with its own seed, minibatch order and learning rate).

Layout follows PyTorch: a layer computes the cross-correlation
:math:`y_o[t] = \sum_i \sum_s K_{o i s}\, x_i[t + s - s_0]` with :math:`s_0 = \lfloor (w-1)/2
\rfloor` the centre tap, indices modulo ``n``; that is ``torch.nn.functional.conv1d`` on the
input padded circularly by ``s_0`` on the left and ``w - 1 - s_0`` on the right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _as_real_array,
    _describe,
    as_int_array,
    cast_finite,
    check_entries,
    check_float_dtype,
    check_int,
    check_positive_float,
    check_rng,
)
from eiginit.models.initializers import _as_shape, lecun_normal, orthogonal
from eiginit.models.losses import softmax_cross_entropy

__all__ = [
    "CNN1d",
    "ConvFans",
    "conv1d",
    "conv1d_backward",
    "conv_eigenvalues",
    "conv_fans",
    "conv_frequency_blocks",
    "conv_operator",
    "conv_singular_values",
    "delta_orthogonal",
    "spread_orthogonal",
]

# A dense operator bigger than this many entries (400 MB in float64) is refused.
_MAX_DENSE_ENTRIES = 50_000_000
_LAYER_KINDS = ("conv", "conv_transpose", "depthwise")


# ------------------------------------------------------------------------------- the operator
def _check_kernel(kernel: Any, name: str = "kernel") -> np.ndarray:
    """Return *kernel* as a finite float64 array of shape (c_out, c_in, width)."""
    array = _as_real_array(kernel, name)
    if array.ndim != 3 or array.size == 0:
        raise ValueError(
            f"{name} must have shape (c_out, c_in, width) with every dimension >= 1, "
            f"got shape {array.shape}"
        )
    return array


def _check_length(n: Any, width: int) -> int:
    """Return the signal length *n* as an int >= width."""
    n = check_int(n, "n (the signal length)", minimum=1)
    if n < width:
        raise ValueError(
            f"n (the signal length) must be at least the kernel width {width}, got n = {n}"
        )
    return n


# Kernels whose largest entry lies outside [2**-400, 2**400] are divided by its power of two
# before the Fourier sums and SVDs, and the results multiplied back: exact, and no overflow or
# underflow in between. Inside that range nothing is rescaled, so ordinary results keep their
# digits.
_SAFE_EXPONENT = 400


def _kernel_exponent(K: np.ndarray) -> int:
    """Return the power of two to divide the kernel `K` by (0 for ordinary magnitudes)."""
    peak = float(np.max(np.abs(K)))
    exponent = int(np.frexp(peak)[1]) if peak > 0 else 0
    return exponent if abs(exponent) > _SAFE_EXPONENT else 0


def _scale_back(values: np.ndarray, exponent: int, what: str) -> np.ndarray:
    """Return ``values * 2**exponent`` (real or complex), refusing results beyond float64."""
    if exponent == 0:
        return values
    with np.errstate(over="ignore"):
        if np.iscomplexobj(values):
            out = np.ldexp(values.real, exponent) + 1j * np.ldexp(values.imag, exponent)
        else:
            out = np.ldexp(values, exponent)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"{what} are beyond float64's range (about 1.8e308) for this kernel; divide the "
            "kernel by a power of two and scale the result back yourself"
        )
    return out


def _blocks(K: np.ndarray, n: int) -> np.ndarray:
    """Return the frequency blocks of a checked kernel, shape (n, c_out, c_in); no checks."""
    width = K.shape[2]
    centre = (width - 1) // 2
    omega = np.arange(n)[:, None]
    phase = np.exp(2j * np.pi * omega * (np.arange(width)[None, :] - centre) / n)
    return np.einsum("ois,ws->woi", K, phase)


def _check_blocks(kernel: Any, n: Any) -> tuple[np.ndarray, int]:
    """Return the checked kernel and length, refusing blocks too large to hold."""
    K = _check_kernel(kernel)
    c_out, c_in, width = K.shape
    n = _check_length(n, width)
    check_entries(n * (c_out * c_in + width), "the frequency blocks", "n or kernel dimensions")
    return K, n


def conv_operator(kernel: Any, n: int) -> np.ndarray:
    r"""Return the dense matrix of a 1-D circular convolution layer (cross-correlation).

    .. math::

        y_o[t] = \sum_{i=1}^{c_\mathrm{in}} \sum_{s=0}^{w-1} K_{o i s}\, x_i[(t + s - s_0) \bmod n],
        \qquad s_0 = \lfloor (w - 1)/2 \rfloor ,

    as PyTorch's ``conv1d`` computes it on a circularly padded input. With signals flattened
    channel by channel (``x.reshape(-1)`` of a ``(c_in, n)`` array), the layer is the matrix
    :math:`A = \sum_s K_{\cdot\cdot s} \otimes P_s` of shape ``(c_out * n, c_in * n)``, where
    :math:`P_s` is the ``n x n`` cyclic shift by :math:`s - s_0`: one circulant block per pair of
    channels.

    Parameters
    ----------
    kernel : array_like, shape (c_out, c_in, width)
    n : int
        The signal length, ``n >= width``.

    Returns
    -------
    numpy.ndarray, shape (c_out * n, c_in * n)

    Raises
    ------
    TypeError, ValueError
        For a kernel that is not a finite 3-D real array, ``n < width``, or an operator of more
        than 5e7 entries (use :func:`conv_singular_values`, which never forms it).

    Examples
    --------
    >>> conv_operator(np.array([[[1.0, 2.0, 3.0]]]), 4)  # one channel: a circulant matrix
    array([[2., 3., 0., 1.],
           [1., 2., 3., 0.],
           [0., 1., 2., 3.],
           [3., 0., 1., 2.]])
    """
    K = _check_kernel(kernel)
    c_out, c_in, width = K.shape
    n = _check_length(n, width)
    if c_out * c_in * n * n > _MAX_DENSE_ENTRIES:
        entries = c_out * c_in * n * n
        count = f"{entries:.2e}" if entries < 1e300 else f"about 1e{len(str(entries)) - 1}"
        raise ValueError(
            f"the dense operator would have {count} entries (more than "
            f"{_MAX_DENSE_ENTRIES:.0e}); use conv_singular_values, which never forms it"
        )
    centre = (width - 1) // 2
    rows = np.arange(n)
    A = np.zeros((c_out * n, c_in * n))
    for s in range(width):
        shift = np.zeros((n, n))
        shift[rows, (rows + s - centre) % n] = 1.0
        A += np.kron(K[:, :, s], shift)
    return A


def conv_frequency_blocks(kernel: Any, n: int) -> np.ndarray:
    r"""Return the ``c_out x c_in`` matrix by which the layer acts at each frequency.

    .. math::

        \hat K(\omega) = \sum_{s=0}^{w-1} K_{\cdot \cdot s}\, e^{2\pi i\, \omega (s - s_0) / n},
        \qquad \omega = 0, \dots, n - 1,

    so that :math:`\hat y_o(\omega) = \sum_i \hat K_{oi}(\omega)\, \hat x_i(\omega)` for the
    discrete Fourier transforms :math:`\hat x(\omega) = \sum_t x[t] e^{-2\pi i \omega t / n}`: the
    unitary DFT on every channel turns :func:`conv_operator` into a block-diagonal matrix with
    these blocks (Sedghi, Gupta & Long 2019; Gray 2006, "Toeplitz and Circulant Matrices: A
    Review").

    Parameters
    ----------
    kernel : array_like, shape (c_out, c_in, width)
    n : int
        The signal length, ``n >= width``.

    Returns
    -------
    numpy.ndarray of complex, shape (n, c_out, c_in)

    Examples
    --------
    >>> conv_frequency_blocks(np.array([[[0.0, 1.0, 0.0]]]), 4)[:, 0, 0].real  # identity
    array([1., 1., 1., 1.])
    """
    K, n = _check_blocks(kernel, n)
    exponent = _kernel_exponent(K)
    blocks = _blocks(np.ldexp(K, -exponent), n)
    return _scale_back(blocks, exponent, "the frequency blocks")


def conv_singular_values(kernel: Any, n: int) -> np.ndarray:
    r"""Return all singular values of the circular convolution layer, by the FFT, largest first.

    They are the union over the ``n`` frequencies of the singular values of the small matrices
    :math:`\hat K(\omega)` (:func:`conv_frequency_blocks`), ``min(c_out, c_in) * n`` numbers in
    all, the same as the singular values of the dense :func:`conv_operator` (Sedghi, Gupta &
    Long 2019, who prove it for 2-D convolutions). The cost is ``n`` SVDs of ``c_out x c_in``
    matrices instead of one of a ``(c_out n) x (c_in n)`` matrix.

    Parameters
    ----------
    kernel : array_like, shape (c_out, c_in, width)
    n : int
        The signal length, ``n >= width``.

    Kernels of any finite magnitude: one with entries beyond :math:`2^{\pm 400}` is divided by a
    power of two first and the values multiplied back, exactly.

    Returns
    -------
    numpy.ndarray, shape (min(c_out, c_in) * n,)

    Raises
    ------
    TypeError, ValueError
        For a kernel that is not a finite 3-D real array, ``n < width``, more than 5e7 block
        entries, or singular values beyond float64's range.

    Examples
    --------
    >>> conv_singular_values(np.array([[[1.0, 1.0, 1.0]]]), 3).round(6).tolist()
    [3.0, 0.0, 0.0]
    """
    K, n = _check_blocks(kernel, n)
    exponent = _kernel_exponent(K)
    values = np.linalg.svd(_blocks(np.ldexp(K, -exponent), n), compute_uv=False).ravel()
    return _scale_back(np.sort(values)[::-1], exponent, "the singular values")


def conv_eigenvalues(kernel: Any, n: int) -> np.ndarray:
    r"""Return the eigenvalues of a circular convolution layer with as many outputs as inputs.

    The DFT is a similarity transform, so the eigenvalues of :func:`conv_operator` are those of
    the blocks :math:`\hat K(\omega)`. With one channel they are the DFT of the kernel itself,

    .. math:: \lambda_\omega = \sum_{s=0}^{w-1} k_s\, e^{2\pi i\, \omega (s - s_0)/n},

    with the Fourier mode :math:`v_\omega[t] = e^{2\pi i \omega t / n}` as eigenvector: every
    circulant matrix has the same eigenvectors (Gray 2006, "Toeplitz and Circulant Matrices: A
    Review").

    Parameters
    ----------
    kernel : array_like, shape (c, c, width)
    n : int
        The signal length, ``n >= width``.

    Returns
    -------
    numpy.ndarray of complex, shape (c * n,)
        Ordered by frequency, then by ``numpy.linalg.eigvals`` within each block.

    Examples
    --------
    >>> conv_eigenvalues(np.array([[[1.0, 2.0, 3.0]]]), 4).round(6).tolist()
    [(6+0j), (2+2j), (-2+0j), (2-2j)]
    """
    K = _check_kernel(kernel)
    if K.shape[0] != K.shape[1]:
        raise ValueError(
            "eigenvalues need a square layer (c_out == c_in), got kernel shape "
            f"{K.shape}; use conv_singular_values for c_out != c_in"
        )
    K, n = _check_blocks(K, n)
    exponent = _kernel_exponent(K)
    values = np.linalg.eigvals(_blocks(np.ldexp(K, -exponent), n)).ravel()
    return _scale_back(values, exponent, "the eigenvalues")


# ------------------------------------------------------------------------------ initializers
def delta_orthogonal(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Delta-orthogonal kernel (Xiao et al. 2018): an orthogonal matrix at the centre tap.

    .. math::

        K_{\cdot\cdot s} = \begin{cases} \mathrm{gain}\; H & s = s_0 = \lfloor (w-1)/2 \rfloor
        \\ 0 & \text{otherwise,} \end{cases}

    with :math:`H` a ``c_out x c_in`` matrix with orthonormal columns, drawn from the Haar
    measure (:func:`eiginit.orthogonal`). Every frequency block is then
    :math:`\hat K(\omega) = \mathrm{gain}\, H`, so the layer's operator satisfies
    :math:`A^\top A = \mathrm{gain}^2 I` and every singular value equals `gain`: dynamical
    isometry for convolutions (Xiao et al. 2018, Algorithm 2, which builds :math:`H` the same
    way; ``jax.nn.initializers.delta_orthogonal`` puts it at the same tap).

    Parameters
    ----------
    shape : sequence of int
        ``(c_out, c_in, width)`` with ``c_out >= c_in`` (PyTorch's layout of a Conv1d weight).
    gain : float, default 1
        Multiplies :math:`H`, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape `shape`

    Raises
    ------
    ValueError
        If `shape` is not three positive dimensions with ``c_out >= c_in``.

    Examples
    --------
    >>> K = delta_orthogonal((4, 2, 3), rng=np.random.default_rng(0))
    >>> A = conv_operator(K, 5)
    >>> bool(np.allclose(A.T @ A, np.eye(10)))
    True
    """
    dims = _as_shape(shape, min_ndim=3)
    if len(dims) != 3:
        raise ValueError(f"shape must be (c_out, c_in, width) for a 1-D convolution, got {dims!r}")
    c_out, c_in, width = dims
    if c_out < c_in:
        raise ValueError(
            f"delta_orthogonal needs c_out >= c_in (orthonormal columns), got c_out = {c_out} "
            f"and c_in = {c_in}"
        )
    check_entries(c_out * c_in * width, "the kernel", "dimensions in shape")
    kernel = np.zeros(dims)
    kernel[:, :, (width - 1) // 2] = orthogonal((c_out, c_in), gain, rng=rng)
    return kernel


@dataclass(frozen=True)
class ConvFans:
    """Fans of one convolution layer: as PyTorch and Keras compute them, and the true ones.

    Attributes
    ----------
    torch_weight_shape, keras_kernel_shape : tuple of int
        The weight's layout in each framework.
    torch_fan_in, torch_fan_out : int
        ``torch.nn.init._calculate_fan_in_and_fan_out`` of the weight (and so
        :func:`eiginit.calculate_fan_in_and_fan_out`, which every initializer of eiginit uses).
    keras_fan_in, keras_fan_out : int
        Keras's ``compute_fans`` of the kernel.
    true_fan_in, true_fan_out : int
        How many inputs one output sums over, and how many outputs one input reaches (stride 1).
    """

    torch_weight_shape: tuple[int, ...]
    keras_kernel_shape: tuple[int, ...]
    torch_fan_in: int
    torch_fan_out: int
    keras_fan_in: int
    keras_fan_out: int
    true_fan_in: int
    true_fan_out: int


def conv_fans(kind: str, c_in: int, c_out: int, width: int, *, groups: int = 1) -> ConvFans:
    r"""Return the fans of a 1-D convolution layer in PyTorch, in Keras, and the true ones.

    Both frameworks multiply the two channel dimensions of the weight by the receptive field
    (the kernel width here) and read fan-in and fan-out off the *layout*, not the layer:

    ================  ================================  ==========================
    kind              PyTorch weight                    Keras kernel
    ================  ================================  ==========================
    conv              ``(c_out, c_in/groups, w)``       ``(w, c_in/groups, c_out)``
    conv_transpose    ``(c_in, c_out/groups, w)``       ``(w, c_out, c_in)``
    depthwise         ``(c_out, 1, w)``                 ``(w, c_in, c_out/c_in)``
    ================  ================================  ==========================

    PyTorch: fan_in = ``shape[1] * w``, fan_out = ``shape[0] * w``; Keras: fan_in =
    ``shape[-2] * w``, fan_out = ``shape[-1] * w``. The true fans, with stride 1, are
    ``(c_in/groups) w`` in and ``(c_out/groups) w`` out (He et al. 2015, section 2.2, counts
    them the same way for a convolution). A depthwise layer has ``groups = c_in`` and
    ``c_out`` a multiple of ``c_in``.

    Parameters
    ----------
    kind : {"conv", "conv_transpose", "depthwise"}
    c_in, c_out, width : int
        Channels in and out, and the kernel width, each >= 1.
    groups : int, default 1
        Channel groups; must divide both ``c_in`` and ``c_out``. Ignored (set to ``c_in``) for
        ``"depthwise"``; Keras's transposed convolution has no groups, so it must be 1 there.

    Returns
    -------
    ConvFans

    Examples
    --------
    >>> f = conv_fans("conv_transpose", c_in=64, c_out=16, width=3)
    >>> f.torch_fan_in, f.true_fan_in  # PyTorch reads fan_in off the output channels
    (48, 192)
    """
    if not isinstance(kind, str) or kind not in _LAYER_KINDS:
        raise ValueError(f"kind must be one of {list(_LAYER_KINDS)}, got {kind!r}")
    c_in = check_int(c_in, "c_in", minimum=1)
    c_out = check_int(c_out, "c_out", minimum=1)
    width = check_int(width, "width", minimum=1)
    groups = check_int(groups, "groups", minimum=1)
    if kind == "depthwise":
        if c_out % c_in:
            raise ValueError(
                f"a depthwise layer needs c_out a multiple of c_in, got c_in = {c_in}, "
                f"c_out = {c_out}"
            )
        groups = c_in
    if c_in % groups or c_out % groups:
        raise ValueError(
            f"groups must divide c_in and c_out, got groups = {groups}, c_in = {c_in}, "
            f"c_out = {c_out}"
        )
    if kind == "conv_transpose" and groups != 1:
        raise ValueError("Keras's transposed convolution has no groups: use groups = 1")
    if kind == "conv":
        torch_shape = (c_out, c_in // groups, width)
        keras_shape = (width, c_in // groups, c_out)
    elif kind == "conv_transpose":
        torch_shape = (c_in, c_out, width)
        keras_shape = (width, c_out, c_in)
    else:
        torch_shape = (c_out, 1, width)
        keras_shape = (width, c_in, c_out // c_in)
    return ConvFans(
        torch_weight_shape=torch_shape,
        keras_kernel_shape=keras_shape,
        torch_fan_in=torch_shape[1] * width,
        torch_fan_out=torch_shape[0] * width,
        keras_fan_in=keras_shape[-2] * width,
        keras_fan_out=keras_shape[-1] * width,
        true_fan_in=(c_in // groups) * width,
        true_fan_out=(c_out // groups) * width,
    )


# ------------------------------------------------------------------ one layer, forward/backward
# Internally activations are position-major, (R, n, batch, channels): a slice of positions is
# then one contiguous block per replica, so each tap of the kernel is a single batched matrix
# product of shape (n * batch, c_in) @ (c_in, c_out), with no im2col copy.
def _pad_circular(x: np.ndarray, width: int) -> np.ndarray:
    """Pad the position axis (1) of an (R, n, B, c) array circularly for a kernel of `width`."""
    n = x.shape[1]
    left, right = (width - 1) // 2, width - 1 - (width - 1) // 2
    return np.concatenate([x[:, n - left :], x, x[:, :right]], axis=1)


def _conv_forward(x: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replica-batched forward: x (R, n, B, c_in), kernel (R, c_out, c_in, w) -> (R, n, B, c_out).

    Also returns the padded input, which the backward pass needs.
    """
    R, n, B, c_in = x.shape
    c_out, width = kernel.shape[1], kernel.shape[3]
    padded = _pad_circular(x, width)
    y = np.zeros((R, n * B, c_out), dtype=np.result_type(x, kernel))
    for s in range(width):  # y[t] += K_s x[t + s - s_0]
        window = padded[:, s : s + n].reshape(R, n * B, c_in)
        y += np.matmul(window, kernel[..., s].transpose(0, 2, 1))
    return y.reshape(R, n, B, c_out), padded


def _conv_backward(
    padded: np.ndarray, kernel: np.ndarray, grad_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of _conv_forward: returns (grad_x (R, n, B, c_in), grad_kernel like kernel)."""
    R, c_out, c_in, width = kernel.shape
    n, B = grad_y.shape[1], grad_y.shape[2]
    g = grad_y.reshape(R, n * B, c_out)
    gT = g.transpose(0, 2, 1)
    grad_kernel = np.empty_like(kernel)
    grad_padded = np.zeros((R, n + width - 1, B, c_in), dtype=grad_y.dtype)
    for s in range(width):
        window = padded[:, s : s + n].reshape(R, n * B, c_in)
        grad_kernel[..., s] = np.matmul(gT, window)
        grad_padded[:, s : s + n] += np.matmul(g, kernel[..., s]).reshape(R, n, B, c_in)
    left = (width - 1) // 2
    grad_x = grad_padded[:, left : left + n].copy()
    grad_x[:, n - left :] += grad_padded[:, :left]  # the wrapped-around left padding
    right = width - 1 - left
    grad_x[:, :right] += grad_padded[:, left + n :]  # and the right padding
    return grad_x, grad_kernel


def _check_finite(values: np.ndarray, what: str, culprits: str) -> None:
    """Refuse a result that overflowed: sums of finite products beyond the dtype's range."""
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"overflow in {what} ({values.dtype} holds at most {np.finfo(values.dtype).max:.1e}):"
            f" {culprits} too large; divide by a power of two and scale the result back"
        )


def _check_signal_and_kernel(x: Any, kernel: Any) -> tuple[np.ndarray, np.ndarray]:
    K = _check_kernel(kernel)
    X = _as_real_array(x, "x")
    if X.ndim != 3 or X.shape[1] != K.shape[1] or X.shape[0] == 0:
        raise ValueError(
            f"x must have shape (batch, c_in, n) with c_in = {K.shape[1]} (the kernel's), "
            f"got shape {X.shape}"
        )
    _check_length(X.shape[2], K.shape[2])
    return X, K


def conv1d(x: Any, kernel: Any) -> np.ndarray:
    r"""Apply a 1-D circular convolution layer (cross-correlation, no bias) to a batch.

    .. math:: y_o[t] = \sum_i \sum_s K_{o i s}\, x_i[(t + s - s_0) \bmod n]

    computed as one matrix product per tap :math:`s`: the input shifted by :math:`s - s_0`, as a
    ``(n * batch, c_in)`` matrix, times :math:`K_{\cdot\cdot s}^\top`. Equal to
    ``conv_operator(kernel, n) @ x[b].reshape(-1)`` for every example.

    Parameters
    ----------
    x : array_like, shape (batch, c_in, n)
    kernel : array_like, shape (c_out, c_in, width)

    Returns
    -------
    numpy.ndarray, shape (batch, c_out, n)

    Examples
    --------
    >>> conv1d([[[1.0, 0.0, 0.0, 0.0]]], [[[1.0, 2.0, 3.0]]])  # an impulse gives the kernel
    array([[[2., 1., 0., 3.]]])
    """
    X, K = _check_signal_and_kernel(x, kernel)
    with np.errstate(over="ignore", invalid="ignore"):
        y, _ = _conv_forward(X.transpose(2, 0, 1)[None], K[None])
    _check_finite(y, "the output", "x or kernel")
    return y[0].transpose(1, 2, 0)


def conv1d_backward(x: Any, kernel: Any, grad_y: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the gradients of :func:`conv1d` with respect to its input and its kernel.

    For a loss :math:`\mathcal{L}` with :math:`g = \partial\mathcal{L}/\partial y`,

    .. math::

        \frac{\partial \mathcal{L}}{\partial K_{ois}} = \sum_{b, t} g_{b o t}\, x_{b i}[t+s-c],
        \qquad
        \frac{\partial \mathcal{L}}{\partial x_{b i}[u]} = \sum_{o, s} K_{ois}\,
        g_{b o}[u - s + s_0],

    indices modulo ``n``: the input gradient is the transposed operator
    :math:`A^\top g`, a convolution with the flipped kernel.

    Parameters
    ----------
    x : array_like, shape (batch, c_in, n)
    kernel : array_like, shape (c_out, c_in, width)
    grad_y : array_like, shape (batch, c_out, n)

    Returns
    -------
    grad_x : numpy.ndarray, shape (batch, c_in, n)
    grad_kernel : numpy.ndarray, shape (c_out, c_in, width)

    Examples
    --------
    >>> gx, gk = conv1d_backward([[[1.0, 0.0, 0.0, 0.0]]], [[[1.0, 2.0, 3.0]]],
    ...                          [[[1.0, 0.0, 0.0, 0.0]]])
    >>> gx.tolist(), gk.tolist()
    ([[[2.0, 3.0, 0.0, 1.0]]], [[[0.0, 1.0, 0.0]]])
    """
    X, K = _check_signal_and_kernel(x, kernel)
    G = _as_real_array(grad_y, "grad_y")
    expected = (X.shape[0], K.shape[0], X.shape[2])
    if G.shape != expected:
        raise ValueError(f"grad_y must have the output's shape {expected}, got {G.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        _, padded = _conv_forward(X.transpose(2, 0, 1)[None], K[None])
        grad_x, grad_kernel = _conv_backward(padded, K[None], G.transpose(2, 0, 1)[None])
    _check_finite(grad_x, "the input gradient", "kernel or grad_y")
    _check_finite(grad_kernel, "the kernel gradient", "x or grad_y")
    return grad_x[0].transpose(1, 2, 0), grad_kernel[0]


# ------------------------------------------------------------------------------ a small CNN
Initializer = Callable[..., np.ndarray]


def _init_kernel(init: Initializer, shape: tuple[int, int, int], rng: np.random.Generator) -> Any:
    """Call ``init(shape, rng=rng)`` and check that it returns finite real numbers of `shape`."""
    try:
        kernel = np.asarray(init(shape, rng=rng))
    except TypeError as error:
        if "rng" not in str(error):
            raise
        raise TypeError(
            "init must accept the keyword argument rng, as init(shape, *, rng); bind other "
            f"options with functools.partial ({error})"
        ) from error
    if kernel.shape != shape:
        raise ValueError(
            f"init returned shape {kernel.shape} for a kernel of shape (c_out, c_in, width) = "
            f"{shape}"
        )
    if kernel.dtype.kind not in "iuf" or not np.all(np.isfinite(kernel)):
        raise ValueError(f"init must return finite real numbers, got {_describe(kernel)}")
    return kernel


class CNN1d:
    r"""Circular 1-D convolutions with ReLU, optional pooling and a linear readout, R replicas.

    .. math::

        x_\ell = P_\ell\, \operatorname{relu}(K_\ell * x_{\ell-1} + b_\ell), \quad
        \ell = 1..L, \qquad
        z = W_\mathrm{out}\, \operatorname{flatten}(x_L) + b_\mathrm{out}

    where :math:`P_\ell` averages neighbouring pairs of positions (halving the length) after
    the layers listed in ``pool_after`` and is the identity elsewhere. Every parameter carries a
    leading replica axis of length ``R``: replica ``r`` is an independent network (its own
    seed, its own learning rate in :func:`eiginit.fit` with
    :class:`eiginit.training.engine.CNNModel`),
    and all of them run in the same batched
    matrix products. Activations are stored position-major, ``(R, n, batch, channels)``.

    Build one with :meth:`create`; the attributes are the parameter arrays.

    Attributes
    ----------
    kernels : list of numpy.ndarray, each (replicas, c_out, c_in, width)
    biases : list of numpy.ndarray, each (replicas, c_out)
    readout : numpy.ndarray, shape (replicas, n_classes, n_L * channels)
    readout_bias : numpy.ndarray, shape (replicas, n_classes)
    pool_after : tuple of int
        The layers (1-based) followed by average pooling by 2.
    length : int
        The input length n.
    """

    def __init__(
        self,
        kernels: list[np.ndarray],
        biases: list[np.ndarray],
        readout: np.ndarray,
        readout_bias: np.ndarray,
        pool_after: tuple[int, ...],
        length: int,
    ) -> None:
        self.kernels = kernels
        self.biases = biases
        self.readout = readout
        self.readout_bias = readout_bias
        self.pool_after = pool_after
        self.length = length

    @classmethod
    def create(
        cls,
        *,
        length: int,
        depth: int,
        channels: int,
        width: int,
        n_classes: int,
        init: Initializer,
        replicas: int,
        rng: np.random.Generator,
        pool_after: tuple[int, ...] = (),
        dtype: Any = np.float32,
    ) -> CNN1d:
        r"""Draw `replicas` networks: kernels from ``init(shape, rng=rng)``, biases zero.

        The readout is LeCun normal, :math:`\mathcal{N}(0, 1/\mathrm{fan\_in})`, for every
        choice of `init`.

        Parameters
        ----------
        length : int
            The signal length n (>= width).
        depth : int
            Number of convolution layers L >= 1; the first maps 1 channel to `channels`.
        channels, width, n_classes, replicas : int
        init : callable
            ``init((c_out, c_in, width), rng=rng)`` returns one kernel, e.g.
            ``functools.partial(eiginit.kaiming_normal, nonlinearity="relu")`` or
            :func:`delta_orthogonal`.
        rng : numpy.random.Generator
        pool_after : tuple of int, default ()
            Layers (1..L) after which neighbouring positions are averaged in pairs; the length
            must stay even and >= width up to there.
        dtype : numpy dtype, default float32

        Examples
        --------
        >>> net = CNN1d.create(length=8, depth=2, channels=4, width=3, n_classes=3,
        ...                    init=delta_orthogonal, replicas=2, rng=np.random.default_rng(0),
        ...                    pool_after=(1,))
        >>> net.logits(np.zeros((5, 8))).shape, net.readout.shape
        ((2, 5, 3), (2, 3, 16))
        """
        length = check_int(length, "length", minimum=1)
        depth = check_int(depth, "depth", minimum=1)
        channels = check_int(channels, "channels", minimum=1)
        width = check_int(width, "width", minimum=1)
        n_classes = check_int(n_classes, "n_classes", minimum=2)
        replicas = check_int(replicas, "replicas", minimum=1)
        if not callable(init):
            raise TypeError(f"init must be callable as init(shape, rng=rng), got {_describe(init)}")
        if isinstance(pool_after, str | bytes) or not isinstance(
            pool_after, tuple | list | range | np.ndarray
        ):
            raise TypeError(
                f"pool_after must be a tuple of layer numbers, such as (1,), got "
                f"{_describe(pool_after)}"
            )
        pools = tuple(
            sorted({check_int(p, "each entry of pool_after", minimum=1) for p in pool_after})
        )
        if pools and pools[-1] > depth:
            raise ValueError(f"pool_after must list layers in 1..{depth}, got {pool_after!r}")
        rng = check_rng(rng)
        dtype = check_float_dtype(dtype)
        check_entries(
            replicas * (channels * channels * width * depth + n_classes * length * channels),
            "the parameters",
            "replicas, channels, width, depth, length or n_classes",
        )
        n = length
        kernels, biases = [], []
        for layer in range(1, depth + 1):
            _check_length(n, width)
            shape = (channels, 1 if layer == 1 else channels, width)
            kernels.append(np.stack([_init_kernel(init, shape, rng) for _ in range(replicas)]))
            if not np.all(np.isfinite(kernels[-1].astype(dtype))):
                raise ValueError(f"init returned kernels beyond {dtype}'s range")
            kernels[-1] = kernels[-1].astype(dtype)
            biases.append(np.zeros((replicas, channels), dtype=dtype))
            if layer in pools:
                if n % 2:
                    raise ValueError(f"pooling after layer {layer} needs an even length, got {n}")
                n //= 2
        readout = np.stack(
            [lecun_normal((n_classes, n * channels), rng=rng) for _ in range(replicas)]
        ).astype(dtype)
        readout_bias = np.zeros((replicas, n_classes), dtype=dtype)
        return cls(kernels, biases, readout, readout_bias, pools, length)

    @property
    def replicas(self) -> int:
        """The number of independent networks R."""
        return int(self.readout.shape[0])

    @property
    def params(self) -> list[np.ndarray]:
        """Every parameter array, in the order :meth:`gradients` returns their gradients."""
        return [*self.kernels, *self.biases, self.readout, self.readout_bias]

    def _input(self, x: Any) -> np.ndarray:
        X = _as_real_array(x, "x")
        if X.ndim != 2 or X.shape[1] != self.length or X.shape[0] == 0:
            raise ValueError(f"x must have shape (batch, {self.length}), got shape {X.shape}")
        X = cast_finite(X, self.readout.dtype, "x").T  # (n, batch)
        return np.broadcast_to(X[None, :, :, None], (self.replicas, *X.shape, 1))

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list, list, np.ndarray]:
        h, padded_inputs, masks = x, [], []
        for layer, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True), 1):
            pre, padded = _conv_forward(h, kernel)
            pre += bias[:, None, None, :]
            mask = pre > 0
            h = pre * mask
            if layer in self.pool_after:  # average neighbouring pairs of positions
                R, n, B, c = h.shape
                h = h.reshape(R, n // 2, 2, B, c).mean(axis=2)
            padded_inputs.append(padded)
            masks.append(mask)
        R, n, B, c = h.shape
        flat = h.transpose(0, 2, 1, 3).reshape(R, B, n * c)  # flatten position-major
        logits = np.matmul(flat, self.readout.transpose(0, 2, 1)) + self.readout_bias[:, None]
        return logits, padded_inputs, masks, flat

    def _labels(self, labels: Any, batch: int) -> np.ndarray:
        """Return `labels` as int64 class indices, one per row of a batch of `batch` rows."""
        y = as_int_array(labels, "labels")
        if y.shape != (batch,):
            raise ValueError(
                f"labels must have one entry per row of x ({batch}), got shape {y.shape}"
            )
        classes = self.readout.shape[1]
        if int(y.max()) >= classes:
            raise ValueError(
                f"labels must lie in 0..{classes - 1} (the network's classes), got {int(y.max())}"
            )
        return y

    def logits(self, x: Any) -> np.ndarray:
        """Return the logits of every replica, shape (R, batch, n_classes), for x (batch, n).

        Raises ValueError if they overflow (inputs or weights too large for the dtype).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            z = self._forward(self._input(x))[0]
        _check_finite(z, "the logits", "x or the weights")
        return z

    def gradients(self, x: Any, labels: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return each replica's mean cross-entropy (R,) and the gradients of :attr:`params`.

        The chain rule of :func:`conv1d_backward` applied layer by layer, through ReLU's 0/1
        mask and the pooling (whose gradient gives each of the two positions half).

        Examples
        --------
        >>> net = CNN1d.create(length=6, depth=1, channels=2, width=3, n_classes=2,
        ...                    init=delta_orthogonal, replicas=3, rng=np.random.default_rng(0))
        >>> loss, grads = net.gradients(np.ones((4, 6)), [0, 1, 0, 1])
        >>> loss.shape, [g.shape for g in grads] == [p.shape for p in net.params]
        ((3,), True)
        """
        X = self._input(x)
        y = self._labels(labels, X.shape[2])
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = self._gradients(X, y)
        _check_finite(loss, "the loss", "x or the weights")
        for g in grads:
            _check_finite(g, "the gradients", "x or the weights")
        return loss, grads

    def _gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return :meth:`gradients` for checked input (training: NaN marks a diverged replica)."""
        logits, padded_inputs, masks, flat = self._forward(x)
        R, B, C = logits.shape
        _, g = softmax_cross_entropy(logits.reshape(R * B, C), np.tile(y, R))
        g = (g * R).reshape(R, B, C)  # each replica's own mean over its batch
        shifted = logits - logits.max(axis=2, keepdims=True)
        log_prob = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        loss = -log_prob[:, np.arange(B), y].mean(axis=1)
        grad_readout = np.matmul(g.transpose(0, 2, 1), flat)
        grad_readout_bias = g.sum(axis=1)
        c = self.kernels[-1].shape[1]
        h_grad = np.matmul(g, self.readout).reshape(R, B, -1, c).transpose(0, 2, 1, 3)
        depth = len(self.kernels)
        grad_kernels: list[Any] = [None] * depth
        grad_biases: list[Any] = [None] * depth
        for layer in reversed(range(depth)):
            if layer + 1 in self.pool_after:  # each of the two positions gets half
                h_grad = np.repeat(h_grad, 2, axis=1) / 2
            delta = h_grad * masks[layer]
            grad_biases[layer] = delta.sum(axis=(1, 2))  # over positions and batch
            h_grad, grad_kernels[layer] = _conv_backward(
                padded_inputs[layer], self.kernels[layer], delta
            )
        grads = [*grad_kernels, *grad_biases, grad_readout, grad_readout_bias]
        return loss.astype(np.float64), grads

    def accuracy(self, x: Any, labels: Any) -> np.ndarray:
        """Return each replica's accuracy on (x, labels), shape (R,); NaN logits count as wrong."""
        X = self._input(x)
        y = self._labels(labels, X.shape[2])
        with np.errstate(over="ignore", invalid="ignore"):
            z = self._forward(X)[0]
        finite = np.all(np.isfinite(z), axis=2)
        right = np.argmax(np.where(np.isfinite(z), z, -np.inf), axis=2) == y[None]
        return (right & finite).mean(axis=1)


# -------------------------------------- orthogonal kernels spread over every tap (issue 24)
def spread_orthogonal(shape: Any, gain: float = 1.0, *, rng: np.random.Generator) -> np.ndarray:
    r"""Draw a kernel that uses every tap and makes a circular layer exactly orthogonal (Xiao 2018).

    Delta-orthogonal kernels (:func:`delta_orthogonal`) make a layer orthogonal by putting all
    the weight on the centre tap. Xiao et al. (2018) also construct orthogonal layers whose
    kernel is spread over the taps, from products of two-tap kernels built on symmetric
    projections (TensorFlow ships the construction as ``ConvolutionOrthogonal1D``, whose
    docstring cites their Algorithm 1). In polynomial notation, :math:`K(z) = \sum_s
    K_{\cdot\cdot s} z^s`,

    .. math::

        K(z) = \mathrm{gain}\; \prod_{j=1}^{w-1} \big(P_j + (I - P_j)\, z\big)\; H ,

    with :math:`H` a Haar ``c_out x c_in`` matrix with orthonormal columns and each :math:`P_j`
    the orthogonal projection onto a random :math:`\lfloor c_\mathrm{out}/2 \rfloor`-dimensional
    subspace. At :math:`z = e^{i\theta}` each factor :math:`P + (I - P) e^{i\theta}` is unitary
    (it multiplies the range of :math:`P` by 1 and its complement by :math:`e^{i\theta}`), so
    every frequency block :math:`\hat K(\omega)` (:func:`conv_frequency_blocks`) is `gain`
    times an isometry and the layer satisfies :math:`A^\top A = \mathrm{gain}^2 I` for any
    signal length :math:`n \ge w`, with weight on every tap.

    Parameters
    ----------
    shape : sequence of int
        ``(c_out, c_in, width)`` with ``c_out >= c_in`` and ``c_out >= 2``.
    gain : float, default 1
        Multiplies the kernel, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape `shape`

    Raises
    ------
    ValueError
        If `shape` is not three positive dimensions with ``c_out >= c_in`` and ``c_out >= 2``,
        or `gain` is not > 0.
    TypeError
        If `rng` is not a numpy Generator.

    Examples
    --------
    >>> K = spread_orthogonal((4, 4, 3), rng=np.random.default_rng(0))
    >>> A = conv_operator(K, 6)
    >>> bool(np.allclose(A.T @ A, np.eye(24))), bool(np.all(np.abs(K).sum(axis=(0, 1)) > 0))
    (True, True)
    """
    dims = _as_shape(shape, min_ndim=3)
    if len(dims) != 3:
        raise ValueError(f"shape must be (c_out, c_in, width) for a 1-D convolution, got {dims!r}")
    c_out, c_in, width = dims
    if c_out < c_in or c_out < 2:
        raise ValueError(
            f"spread_orthogonal needs c_out >= c_in and c_out >= 2, got c_out = {c_out} "
            f"and c_in = {c_in}"
        )
    gain = check_positive_float(gain, "gain")
    rng = check_rng(rng)
    kernel = np.zeros((c_out, c_in, width))
    kernel[:, :, 0] = orthogonal((c_out, c_in), rng=rng)
    eye = np.eye(c_out)
    for _ in range(1, width):
        basis = orthogonal((c_out, c_out // 2), rng=rng)
        projection = basis @ basis.T
        shifted = np.zeros_like(kernel)
        shifted[:, :, 1:] = kernel[:, :, :-1]  # multiply by z: every tap moves one to the right
        kernel = np.einsum("ab,bcs->acs", projection, kernel) + np.einsum(
            "ab,bcs->acs", eye - projection, shifted
        )
    return float(gain) * kernel
