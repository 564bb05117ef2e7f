r"""Exact Hessian-vector products of the engine's models, by Pearlmutter's R-operator.

For a loss :math:`\mathcal L(\theta)` and a direction :math:`v`, the Hessian-vector product is
the directional derivative of the gradient,

.. math:: H v = \frac{d}{dt} \nabla \mathcal L(\theta + t v) \Big|_{t=0} = R\{\nabla \mathcal L\},

and Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact multiplication by the Hessian",
Neural Computation 6(1), section 3) computes it exactly, without forming :math:`H`: apply
:math:`R\{\cdot\} = \frac{d}{dt}(\cdot)(\theta + t v)|_{t=0}` to every line of the forward pass
(the tangents :math:`R\{a\}` of the activations: forward mode), then to every line of the
backward pass (reverse mode). The rules are the product rule, :math:`R\{A B\} = R\{A\} B + A
R\{B\}`, and :math:`R\{\phi(a)\} = \phi'(a) R\{a\}`, so a backward line
:math:`\delta = \phi'(a) \odot \bar x` becomes :math:`R\{\delta\} = \phi'(a) \odot R\{\bar x\}
+ \phi''(a) \odot R\{a\} \odot \bar x`. ReLU's :math:`\phi''` is zero away from the kink, so its
products are exact there; a finite difference of gradients straddling a kink is not.

Every function here takes the parameters and the direction with the replica axis first (one
minibatch per replica) and returns :math:`H_r v_r` for every replica r at once, shaped like the
parameters: the Hessian of the sum of the replicas' losses is block-diagonal. The adapters of
:mod:`eiginit.training.engine` call them as their ``hvp`` method:

- :func:`rnn_hvp`: the Elman network with the mean squared error (backpropagation through time,
  differentiated once more);
- :func:`cnn_hvp`: the circular 1-D CNN with the softmax cross-entropy (a convolution is
  bilinear in its input and its kernel, so its R-operator is two convolutions);
- :func:`residual_hvp`: the residual classifier, including batch and layer normalization,
  whose Jacobian :math:`N'(u) = r(I - \mathbf 1 \mathbf 1^\top / n - z z^\top / n)` is
  symmetric, with :math:`R\{r\} = -r^2 \langle z, R\{u\} \rangle / n` for :math:`r =
  1/\sqrt{\sigma^2 + \epsilon}`.

The MLP's and the muP network's products are :meth:`eiginit.MLPModel.hvp` (the muP network is
the bias-free ReLU MLP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eiginit._checks import _describe, cast_finite, check_replica_params
from eiginit.models.convolution import CNN1d, _conv_backward, _conv_forward
from eiginit.models.network import _derivative
from eiginit.models.recurrent import ElmanRNN
from eiginit.models.residual import ResidualStack, _normalize_backward
from eiginit.theory.curvature import _second_derivative

__all__ = [
    "check_arguments",
    "check_labels",
    "check_vectors",
    "cnn_hvp",
    "cross_entropy_tangent",
    "residual_hvp",
    "rnn_hvp",
]


def check_arguments(
    params: Any, x: Any, y: Any, vectors: Any
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[np.ndarray]]:
    """Check the arguments of a model's ``hvp``; return params, x, y and the cast `vectors`.

    `params` must be a list of float32 or float64 arrays with one replica axis and dtype; `x`
    and `y` real arrays with one minibatch per replica, ``(R, batch, ...)``, finite; `vectors`
    as :func:`check_vectors` asks.
    """
    arrays = check_replica_params(params)
    R, dtype = arrays[0].shape[0], arrays[0].dtype
    checked = []
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real array, got {_describe(value)}")
        if value.ndim < 2 or value.shape[0] != R or value.shape[1] == 0:
            raise ValueError(
                f"{name} must hold one non-empty minibatch per replica, shape ({R}, batch, ...), "
                f"got shape {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite, got NaN or infinite entries")
        checked.append(value)
    x, y = checked
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"y must have one target per input of x ({x.shape[1]} per replica), got shape {y.shape}"
        )
    if x.dtype != dtype:
        x = cast_finite(x, dtype, "x")
    if y.dtype.kind == "f" and y.dtype != dtype:
        y = cast_finite(y, dtype, "y")
    return arrays, x, y, check_vectors(arrays, vectors)


def check_labels(y: np.ndarray, classes: int) -> np.ndarray:
    """Return class labels `y` as int64, refusing non-integers and labels outside 0..classes-1."""
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer class labels, got {_describe(y)}")
    if y.min() < 0 or y.max() >= classes:
        raise ValueError(
            f"y must hold labels in 0..{classes - 1} (the model's classes), got labels from "
            f"{int(y.min())} to {int(y.max())}"
        )
    return y.astype(np.int64)


def check_vectors(params: Sequence[np.ndarray], vectors: Any) -> list[np.ndarray]:
    """Return `vectors` as arrays of `params`' shapes and dtype, or raise naming the argument.

    Parameters
    ----------
    params : sequence of numpy.ndarray
        The (checked) parameters, replica axis first.
    vectors : sequence of numpy.ndarray
        One float array per parameter array, of the same shape.

    Raises
    ------
    TypeError
        If `vectors` is not a list of arrays or an entry is not a float array.
    ValueError
        If it holds the wrong number of arrays, an array of the wrong shape, non-finite
        entries, or entries beyond the parameters' dtype.
    """
    if isinstance(vectors, np.ndarray) or not isinstance(vectors, Sequence):
        raise TypeError(
            f"vectors must be a list of {len(params)} arrays shaped like params (the direction "
            f"v of H v), got {_describe(vectors)}"
        )
    if len(vectors) != len(params):
        raise ValueError(
            f"vectors must hold one array per parameter array ({len(params)}), got {len(vectors)}"
        )
    out = []
    for i, (v, p) in enumerate(zip(vectors, params, strict=True)):
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            raise TypeError(f"vectors[{i}] must be a float array, got {_describe(v)}")
        if v.shape != p.shape:
            raise ValueError(
                f"vectors[{i}] must have the shape of params[{i}], {p.shape}, got {v.shape}"
            )
        if not np.all(np.isfinite(v)):
            raise ValueError(f"vectors[{i}] must be finite, got NaN or infinite entries")
        out.append(cast_finite(v, p.dtype, f"vectors[{i}]"))
    return out


def cross_entropy_tangent(
    z: np.ndarray, y: np.ndarray, r_z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the logits' gradient :math:`\bar z` of the mean cross-entropy and its tangent.

    For logits z (R, B, C) and labels y (R, B): :math:`\bar z = (p - e_y)/B` with
    :math:`p = \mathrm{softmax}(z)`, and :math:`R\{\bar z\} = (p \odot R\{z\} - p\,\langle p,
    R\{z\}\rangle)/B`, the softmax Hessian :math:`(\operatorname{diag} p - p p^\top)/B` times
    :math:`R\{z\}`, row by row.
    """
    shifted = z - z.max(axis=2, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=2, keepdims=True)
    B = z.shape[1]
    r_g = (p * r_z - p * np.sum(p * r_z, axis=2, keepdims=True)) / B
    g = p.copy()
    index = y[:, :, None]
    np.put_along_axis(g, index, np.take_along_axis(g, index, 2) - 1, 2)
    g /= B
    return g, r_g


# ----------------------------------------------------------------------------- Elman RNN
def rnn_hvp(
    params: Sequence[np.ndarray],
    activation: str,
    x: np.ndarray,
    y: np.ndarray,
    vectors: Sequence[np.ndarray],
) -> list[np.ndarray]:
    r"""Hessian-vector products of the Elman network's mean squared error, every replica.

    The loss of replica r is :math:`\frac{1}{Bo}\sum \|\hat y - y\|^2` with :math:`\hat y = V h_T
    + c`, :math:`h_t = \phi(a_t)`, :math:`a_t = U x_t + W h_{t-1} + b`
    (:class:`eiginit.ElmanRNN`). With :math:`(\dot U, \dot W, \dot b, \dot V, \dot c)` the
    direction, the forward tangents are

    .. math:: R\{a_t\} = \dot U x_t + \dot W h_{t-1} + W R\{h_{t-1}\} + \dot b, \qquad
              R\{h_t\} = \phi'(a_t) R\{a_t\}, \qquad
              R\{\hat y\} = \dot V h_T + V R\{h_T\} + \dot c,

    and backpropagation through time, differentiated: :math:`R\{\bar h_T\} = V^\top R\{\bar y\}
    + \dot V^\top \bar y` with :math:`R\{\bar y\} = \frac{2}{Bo} R\{\hat y\}`; for :math:`t =
    T..1`, :math:`R\{\delta_t\} = \phi'(a_t) R\{\bar h_t\} + \phi''(a_t) R\{a_t\} \bar h_t`,
    :math:`R\{\bar h_{t-1}\} = W^\top R\{\delta_t\} + \dot W^\top \delta_t`, and
    :math:`R\{\nabla W\} = \sum_t R\{\delta_t\} h_{t-1}^\top + \delta_t R\{h_{t-1}\}^\top`
    (likewise for U, b, V, c).

    Parameters
    ----------
    params : sequence of numpy.ndarray
        ``[w_in, w_rec, bias, w_out, b_out]``, replica axis first.
    activation : str
    x : numpy.ndarray, shape (R, batch, T, d)
    y : numpy.ndarray, shape (R, batch, o)
    vectors : sequence of numpy.ndarray
        The direction, shaped like `params` (checked by the caller).

    Returns
    -------
    list of numpy.ndarray
        :math:`H_r v_r`, shaped like `params`.
    """
    net = ElmanRNN(*params, activation=activation)
    w_in, w_rec, _, w_out, _ = params
    d_in, d_rec, d_bias, d_out, d_bout = vectors
    fp = net._forward(x)
    B, o = fp.output.shape[1:]
    g = (2.0 / (B * o)) * (fp.output - y)
    grads = net._backward(fp, g)
    steps = fp.inputs.shape[0]
    inputs, hidden, pre, h_bar = fp.inputs, fp.hidden, fp.preactivations, grads.hidden
    swap = np.swapaxes
    # forward tangents
    r_h = np.zeros_like(hidden)
    r_a = np.empty_like(pre)
    d1 = np.empty_like(pre)
    for t in range(steps):
        r_a[t] = inputs[t] @ swap(d_in, 1, 2) + hidden[t] @ swap(d_rec, 1, 2)
        r_a[t] += r_h[t] @ swap(w_rec, 1, 2) + d_bias[:, None, :]
        d1[t] = _derivative(activation, pre[t], 0.01)
        r_h[t + 1] = d1[t] * r_a[t]
    r_y = r_h[-1] @ swap(w_out, 1, 2) + hidden[-1] @ swap(d_out, 1, 2) + d_bout[:, None, :]
    r_g = (2.0 / (B * o)) * r_y
    # backward tangents
    r_hbar = r_g @ w_out + g @ d_out
    out_in, out_rec = np.zeros_like(w_in), np.zeros_like(w_rec)
    out_bias = np.zeros_like(params[2])
    for t in reversed(range(steps)):
        delta = d1[t] * h_bar[t + 1]
        r_delta = d1[t] * r_hbar
        second = _second_derivative(activation, pre[t])
        if second is not None:
            r_delta = r_delta + (second * r_a[t] * h_bar[t + 1]).astype(r_delta.dtype)
        r_delta_t, delta_t = swap(r_delta, 1, 2), swap(delta, 1, 2)
        out_rec += r_delta_t @ hidden[t] + delta_t @ r_h[t]
        out_in += r_delta_t @ inputs[t]
        out_bias += r_delta.sum(axis=1)
        r_hbar = r_delta @ w_rec + delta @ d_rec
    out_w = swap(r_g, 1, 2) @ hidden[-1] + swap(g, 1, 2) @ r_h[-1]
    return [out_in, out_rec, out_bias, out_w, r_g.sum(axis=1)]


# ----------------------------------------------------------------------------- 1-D CNN
def cnn_hvp(
    net: CNN1d, x: np.ndarray, y: np.ndarray, vectors: Sequence[np.ndarray]
) -> list[np.ndarray]:
    r"""Hessian-vector products of the circular 1-D CNN's mean cross-entropy, every replica.

    A layer computes :math:`a = K * h + b`, :math:`h' = P\,\mathrm{relu}(a)` (pooling
    :math:`P` optional, linear). The convolution is bilinear in :math:`(K, h)`, so with
    :math:`(\dot K, \dot b)` the direction, :math:`R\{a\} = K * R\{h\} + \dot K * h + \dot b`
    and :math:`R\{h'\} = P(\mathbf 1_{a>0} \odot R\{a\})`. Backwards, the convolution's two
    gradients are bilinear as well: with :math:`\delta = \mathbf 1_{a>0} \odot P^\top \bar h'`,
    :math:`R\{\bar h\} = K^\top \star R\{\delta\} + \dot K^\top \star \delta` and
    :math:`R\{\nabla K\} = R\{\delta\} \star h + \delta \star R\{h\}` (each one call of the
    convolution's backward pass), and ReLU's :math:`\phi'' = 0` adds nothing. The readout is
    an affine layer, :math:`R\{\nabla W\} = R\{\bar z\}^\top f + \bar z^\top R\{f\}`.

    Parameters
    ----------
    net : CNN1d
        The network whose arrays are the parameters (replica axis first).
    x : numpy.ndarray, shape (R, length, batch, 1)
        Position-major inputs, as :meth:`eiginit.CNN1d._forward` takes them.
    y : numpy.ndarray of int, shape (R, batch)
    vectors : sequence of numpy.ndarray
        ``[K_1.., b_1.., W_out, b_out]``-shaped direction (checked by the caller).

    Returns
    -------
    list of numpy.ndarray
        :math:`H_r v_r`, shaped like :attr:`eiginit.CNN1d.params`.
    """
    depth = len(net.kernels)
    d_kernels, d_biases = vectors[:depth], vectors[depth : 2 * depth]
    d_readout, d_rbias = vectors[-2], vectors[-1]
    logits, padded_inputs, masks, flat = net._forward(x)
    R, B, _ = logits.shape
    # forward tangents
    r_h = np.zeros_like(x)
    r_padded = []
    for layer in range(depth):
        width = net.kernels[layer].shape[3]
        n = r_h.shape[1]
        left = (width - 1) // 2
        h_prev = padded_inputs[layer][:, left : left + n]
        r_a, r_pad = _conv_forward(r_h, net.kernels[layer])
        r_a += _conv_forward(h_prev, d_kernels[layer])[0]
        r_a += d_biases[layer][:, None, None, :]
        r_padded.append(r_pad)
        r_h = r_a * masks[layer]
        if layer + 1 in net.pool_after:
            Rr, n, Bb, c = r_h.shape
            r_h = r_h.reshape(Rr, n // 2, 2, Bb, c).mean(axis=2)
    n, c = r_h.shape[1], r_h.shape[3]
    r_flat = r_h.transpose(0, 2, 1, 3).reshape(R, B, n * c)
    r_z = r_flat @ np.swapaxes(net.readout, 1, 2) + flat @ np.swapaxes(d_readout, 1, 2)
    r_z += d_rbias[:, None, :]
    g, r_g = cross_entropy_tangent(logits, y, r_z)
    out_readout = np.swapaxes(r_g, 1, 2) @ flat + np.swapaxes(g, 1, 2) @ r_flat
    out_rbias = r_g.sum(axis=1)

    def unflatten(a: np.ndarray) -> np.ndarray:
        return a.reshape(R, B, -1, c).transpose(0, 2, 1, 3)

    h_grad = unflatten(g @ net.readout)
    r_h_grad = unflatten(r_g @ net.readout + g @ d_readout)
    out_kernels: list[Any] = [None] * depth
    out_biases: list[Any] = [None] * depth
    for layer in reversed(range(depth)):
        if layer + 1 in net.pool_after:
            h_grad = np.repeat(h_grad, 2, axis=1) / 2
            r_h_grad = np.repeat(r_h_grad, 2, axis=1) / 2
        delta = h_grad * masks[layer]
        r_delta = r_h_grad * masks[layer]
        out_biases[layer] = r_delta.sum(axis=(1, 2))
        kernel = net.kernels[layer]
        r_x1, r_k1 = _conv_backward(padded_inputs[layer], kernel, r_delta)
        r_x2, r_k2 = _conv_backward(r_padded[layer], d_kernels[layer], delta)
        out_kernels[layer] = r_k1 + r_k2
        if layer:
            h_grad = _conv_backward(padded_inputs[layer], kernel, delta)[0]
            r_h_grad = r_x1 + r_x2
    return [*out_kernels, *out_biases, out_readout, out_rbias]


# ----------------------------------------------------------------------------- residual
def _norm_tangent(r_u: np.ndarray, z: np.ndarray, r: np.ndarray, axis: int) -> tuple[Any, Any]:
    r"""Return the tangents :math:`R\{z\} = N'(u) R\{u\}` and :math:`R\{r\}`.

    :math:`R\{r\} = -r^2 \langle z, R\{u\}\rangle/n` for :math:`r = 1/\sqrt{\sigma^2 +
    \epsilon}`, means along `axis`.
    """
    r_z = _normalize_backward(r_u, z, r, axis)
    r_r = -r * r * (z * r_u).mean(axis=axis, keepdims=True)
    return r_z, r_r


def _norm_backward_tangent(
    g: np.ndarray,
    r_g: np.ndarray,
    z: np.ndarray,
    r_z: np.ndarray,
    r: np.ndarray,
    r_r: np.ndarray,
    axis: int,
) -> np.ndarray:
    r"""Return the tangent of :math:`r(\bar z - \overline{\bar z} - z\, \overline{\bar z z})`.

    (Means along `axis`.) :math:`R\{\cdot\} = \frac{R\{r\}}{r} N'^\top \bar z + r(R\{\bar z\} -
    \overline{R\{\bar z\}} - R\{z\} \overline{\bar z z} - z\, \overline{R\{\bar z\} z + \bar z
    R\{z\}})`.
    """
    mean = np.mean
    gz = mean(g * z, axis=axis, keepdims=True)
    first = (r_r / r) * (r * (g - mean(g, axis=axis, keepdims=True) - z * gz))
    inner = mean(r_g * z + g * r_z, axis=axis, keepdims=True)
    return first + r * (r_g - mean(r_g, axis=axis, keepdims=True) - r_z * gz - z * inner)


def residual_hvp(
    stack: ResidualStack,
    params: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    vectors: Sequence[np.ndarray],
) -> list[np.ndarray]:
    r"""Hessian-vector products of the residual classifier's mean cross-entropy, every replica.

    The classifier is :math:`x_0 = W_{\mathrm{in}} v + b_{\mathrm{in}}`, the stack's blocks
    :math:`x_{\ell+1} = [\mathrm{LN}](x_\ell + \alpha_\ell F_\ell(x_\ell))` with branch layers
    :math:`u_j = W_{\ell j}\,\mathrm{relu}(N(u_{j-1}))`, and logits :math:`W_{\mathrm{out}}
    \mathrm{relu}(x_L) + b_{\mathrm{out}}` (:class:`eiginit.ResidualClassifier`). Every line of
    the forward pass and of :meth:`eiginit.ResidualStack.backward` is differentiated once more
    in the direction :math:`v`: products by the product rule, ReLU through its 0/1 mask, the
    block sum :math:`R\{\alpha F\} = \dot\alpha F + \alpha R\{F\}`, and each normalization
    :math:`z = (u - \bar u) r` by :math:`R\{z\} = N'(u) R\{u\}` (the same symmetric map as its
    backward pass) and its backward pass :math:`N'^\top \bar z = r(\bar z - \overline{\bar z}
    - z\,\overline{\bar z z})` by its tangent in :math:`(\bar z, z, r)`.

    Parameters
    ----------
    stack : ResidualStack
        The stack whose ``weights`` and ``alpha`` are ``params[2]`` and ``params[3]``.
    params : sequence of numpy.ndarray
        ``[w_in, b_in, stack weights, alpha, w_out, b_out]``, replica axis first.
    x : numpy.ndarray, shape (R, batch, d)
    y : numpy.ndarray of int, shape (R, batch)
    vectors : sequence of numpy.ndarray
        The direction, shaped like `params` (checked by the caller).

    Returns
    -------
    list of numpy.ndarray
        :math:`H_r v_r`, shaped like `params`.
    """
    w_in, _, W, alpha, w_out, _ = params
    d_win, d_bin, dW, d_alpha, d_wout, d_bout = vectors
    swap = np.swapaxes
    axis = {"batch": -2, "layer": -1}.get(stack.norm or "", 0)
    fp = stack._run(x @ swap(w_in, -1, -2) + params[1][:, None], strict=False)
    top_mask = fp.output > 0
    top = fp.output * top_mask
    z = top @ swap(w_out, -1, -2) + params[5][:, None]
    # forward tangents through the stack
    r_x = x @ swap(d_win, -1, -2) + d_bin[:, None]
    r_states, r_branch, r_zs, r_rs, r_post_r = [r_x], [], [], [], []
    for layer in range(stack.depth):
        r_u, zs_t, rs_t = r_x, [], []
        for j in range(stack.branch_layers):
            zj = fp.normalized[layer][j]
            if axis:
                r_zj, r_rj = _norm_tangent(r_u, zj, fp.inv_std[layer][j], axis)
            else:
                r_zj, r_rj = r_u, None
            zs_t.append(r_zj)
            rs_t.append(r_rj)
            act = np.maximum(zj, 0)
            r_u = (r_zj * (zj > 0)) @ swap(W[:, layer, j], -1, -2)
            r_u += act @ swap(dW[:, layer, j], -1, -2)
        r_zs.append(zs_t)
        r_rs.append(rs_t)
        r_branch.append(r_u)
        r_total = d_alpha[:, layer, None, None] * fp.branch_out[layer]
        r_total += alpha[:, layer, None, None] * r_u
        if stack.skip:
            r_total += r_x
        if stack.post_norm:
            r_total, r_r = _norm_tangent(r_total, fp.states[layer + 1], fp.post_inv_std[layer], -1)
            r_post_r.append(r_r)
        r_x = r_total
        r_states.append(r_x)
    r_top = r_x * top_mask
    r_z = r_top @ swap(w_out, -1, -2) + top @ swap(d_wout, -1, -2) + d_bout[:, None]
    dz, r_dz = cross_entropy_tangent(z, y, r_z)
    out_wout = swap(r_dz, -1, -2) @ top + swap(dz, -1, -2) @ r_top
    out_bout = r_dz.sum(axis=1)
    g = (dz @ w_out) * top_mask
    r_g = (r_dz @ w_out + dz @ d_wout) * top_mask
    # backward tangents through the stack (ResidualStack._backprop, differentiated)
    out_W = np.empty_like(W)
    out_alpha = np.empty_like(alpha)
    for layer in reversed(range(stack.depth)):
        if stack.post_norm:
            zpost, rpost = fp.states[layer + 1], fp.post_inv_std[layer]
            r_g = _norm_backward_tangent(
                g, r_g, zpost, r_states[layer + 1], rpost, r_post_r[layer], -1
            )
            g = _normalize_backward(g, zpost, rpost, -1)
        out_alpha[:, layer] = (r_g * fp.branch_out[layer] + g * r_branch[layer]).sum(axis=(1, 2))
        delta = alpha[:, layer, None, None] * g
        r_delta = d_alpha[:, layer, None, None] * g + alpha[:, layer, None, None] * r_g
        for j in reversed(range(stack.branch_layers)):
            zj, r_zj = fp.normalized[layer][j], r_zs[layer][j]
            mask = zj > 0
            out_W[:, layer, j] = swap(r_delta, -1, -2) @ (zj * mask)
            out_W[:, layer, j] += swap(delta, -1, -2) @ (r_zj * mask)
            r_delta = (r_delta @ W[:, layer, j] + delta @ dW[:, layer, j]) * mask
            delta = (delta @ W[:, layer, j]) * mask
            if axis:
                rj = fp.inv_std[layer][j]
                r_delta = _norm_backward_tangent(delta, r_delta, zj, r_zj, rj, r_rs[layer][j], axis)
                delta = _normalize_backward(delta, zj, rj, axis)
        g, r_g = (g + delta, r_g + r_delta) if stack.skip else (delta, r_delta)
    out_win = swap(r_g, -1, -2) @ x
    return [out_win, r_g.sum(axis=1), out_W, out_alpha, out_wout, out_bout]
