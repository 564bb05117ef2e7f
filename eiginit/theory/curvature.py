r"""Curvature of the training loss: exact Hessian-vector products and the top eigenvalue.

The engine of chapter "Curvature at initialization and the learning rate". The loss is the mean
softmax cross-entropy :math:`\ell(\theta) = \frac1B \sum_i \mathrm{CE}(f_\theta(x_i), y_i)` of an
:class:`eiginit.MLP`, and :math:`\theta` stacks every weight and bias, layer by layer
(``W_1`` row by row, then ``b_1``, then ``W_2``, ...: the order of :func:`flatten_parameters`).

- :func:`loss_and_gradient` returns :math:`\ell` and :math:`\nabla \ell` as one flat vector;
- :func:`hessian_vector_product` returns :math:`H v` with :math:`H = \nabla^2 \ell`, exactly, by
  Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact multiplication by the Hessian",
  Neural Computation 6(1)): a forward pass of directional derivatives
  :math:`R\{h_l\} = \frac{d}{dt} h_l(\theta + t v)|_{t=0}`, then a backward pass of their
  adjoints. It costs a few forward passes and never forms :math:`H`. With
  ``gauss_newton=True`` it returns the Gauss-Newton product :math:`G v = J^\top H_{\text{out}} J v`
  instead (:math:`J = \partial z / \partial \theta` for the logits :math:`z`), the part of the
  Hessian that ignores the curvature of the network itself; it is positive semi-definite;
- :func:`hessian_top_eigenvalue` runs power iteration (chapter "Power iteration") on either
  product and reports the eigenvalue of largest modulus, with its sign and an honest
  convergence flag; given an engine model and its parameters instead of an MLP (any model of
  :mod:`eiginit.training.engine`: the MLP, the muP network, the Elman RNN, the 1-D CNN, the residual
  classifier), it iterates on that model's exact ``hvp`` (Pearlmutter's R-operator, written
  per architecture in ``eiginit.theory.second_order``), one replica or every replica;
- :func:`sharpness_monitor` makes a monitor for :func:`eiginit.fit` that tracks the sharpness
  of replica-stacked networks along training (full-batch gradient descent is
  ``fit(..., full_batch=True, optimizer="sgd", momentum=0)``, warm-up its ``lr_schedule``).

Unlike finite differences of gradients, the R-operator is exact to rounding for smooth
activations (tanh, sigmoid, SELU away from 0) and for ReLU and leaky ReLU away from their kink,
where :math:`\phi'' = 0`: a difference quotient straddling a kink sees a jump in
:math:`\phi'` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import (
    _describe,
    as_array_of,
    check_bool,
    check_entries,
    check_int,
    check_positive_float,
    check_real,
    check_rng,
    check_tol,
)
from eiginit.models.losses import softmax_cross_entropy
from eiginit.models.network import MLP, _normal_pdf

__all__ = [
    "HessianEigenResult",
    "HessianSpectrumEnds",
    "flatten_parameters",
    "hessian_extreme_eigenvalues",
    "hessian_top_eigenvalue",
    "hessian_vector_product",
    "loss_and_gradient",
    "sharpness_monitor",
    "unflatten_parameters",
]

# SELU's constants (Klambauer et al. 2017), as in eiginit.models.network.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _second_derivative(name: str, h: np.ndarray) -> np.ndarray | None:
    """phi''(h) for an activation name, or None where it is zero almost everywhere."""
    if name in ("linear", "relu", "leaky_relu"):
        return None
    if name == "tanh":
        t = np.tanh(h)
        return -2 * t * (1 - t**2)
    if name == "selu":
        return np.where(h > 0, 0.0, _SELU_SCALE * _SELU_ALPHA * np.exp(np.minimum(h, 0)))
    if name == "gelu":  # (h Phi(h))'' = phi(h) (2 - h^2)
        near = np.minimum(np.abs(h), 40.0)  # phi(40) < 1e-300: the product is 0 beyond
        return np.where(np.abs(h) < 40, _normal_pdf(near) * (2 - near * near), 0.0).astype(h.dtype)
    e = np.exp(-np.abs(h))  # sigmoid, without overflow
    s = np.where(h >= 0, 1 / (1 + e), e / (1 + e))
    if name == "silu":  # (h s)'' = s (1 - s) (2 + h (1 - 2 s))
        return s * (1 - s) * (2 + h * (1 - 2 * s))
    return s * (1 - s) * (1 - 2 * s)


def _check_net(net: Any) -> MLP:
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an eiginit.MLP, got {_describe(net)}")
    return net


def _parameter_count(net: MLP) -> int:
    return int(sum(W.size + b.size for W, b in zip(net.weights, net.biases, strict=True)))


def flatten_parameters(net: MLP) -> np.ndarray:
    """Return every weight and bias of `net` as one flat vector (a copy).

    The order is ``W_1`` (row by row), ``b_1``, ``W_2``, ``b_2``, ...; every vector that
    :func:`hessian_vector_product` takes or returns uses it.

    Examples
    --------
    >>> net = MLP((np.eye(2),), (np.array([5.0, 6.0]),), "tanh")
    >>> flatten_parameters(net).tolist()
    [1.0, 0.0, 0.0, 1.0, 5.0, 6.0]
    """
    net = _check_net(net)
    parts = []
    for W, b in zip(net.weights, net.biases, strict=True):
        parts += [W.ravel(), b]
    return np.concatenate(parts).astype(net.dtype)


def _as_flat(net: MLP, vector: Any, name: str) -> np.ndarray:
    return _as_flat_vector(
        vector,
        name,
        _parameter_count(net),
        net.dtype,
        "one entry per weight and bias of the network (see flatten_parameters)",
    )


def _as_flat_vector(vector: Any, name: str, n: int, dtype: Any, what: str) -> np.ndarray:
    array = as_array_of(vector, name, layout="flat")
    if array.shape != (n,):
        raise ValueError(
            f"{name} must be a flat vector of shape ({n},), {what}, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    limit = float(np.finfo(dtype).max)
    if array.size and array.dtype.kind == "f" and float(np.max(np.abs(array))) > limit:
        raise ValueError(
            f"{name} has entries beyond the range of the network's dtype {dtype} (above "
            f"{limit:.2g} in modulus)"
        )
    return array.astype(dtype)


def _split(net: MLP, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    weights, biases, start = [], [], 0
    for W, b in zip(net.weights, net.biases, strict=True):
        weights.append(flat[start : start + W.size].reshape(W.shape))
        start += W.size
        biases.append(flat[start : start + b.size])
        start += b.size
    return weights, biases


def unflatten_parameters(net: MLP, vector: Any) -> MLP:
    """Return a copy of `net` whose weights and biases are read from a flat `vector`.

    The inverse of :func:`flatten_parameters`.

    Examples
    --------
    >>> net = MLP((np.eye(2),), (np.zeros(2),), "tanh")
    >>> unflatten_parameters(net, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).weights[0].tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    net = _check_net(net)
    weights, biases = _split(net, _as_flat(net, vector, "vector"))
    return net.with_parameters([W.copy() for W in weights], [b.copy() for b in biases])


def _flatten(weights: list[np.ndarray], biases: list[np.ndarray]) -> np.ndarray:
    parts = []
    for W, b in zip(weights, biases, strict=True):
        parts += [W.ravel(), b]
    return np.concatenate(parts)


class _Curvature:
    """The loss of one network on one batch, with what every Hessian-vector product reuses."""

    def __init__(self, net: MLP, x: Any, labels: Any) -> None:
        self.net = _check_net(net)
        inputs = as_array_of(x, "x")
        limit = float(np.finfo(net.dtype).max)
        if inputs.dtype.kind == "f" and inputs.size and inputs.dtype.itemsize > net.dtype.itemsize:
            # A float32 network casts x; entries beyond its range would be an inf loss, blamed
            # on the forward pass. (NaN and shapes are net.forward's to check.)
            with np.errstate(invalid="ignore"):
                peak = float(np.nanmax(np.abs(inputs))) if not np.all(np.isnan(inputs)) else 0.0
            if np.isfinite(peak) and peak > limit:
                raise ValueError(
                    f"x has entries beyond the range of the network's dtype {net.dtype} (above "
                    f"{limit:.2g} in modulus); rescale the inputs or use a float64 network"
                )
        with np.errstate(over="ignore", invalid="ignore"):  # reported just below instead
            self.forward = net.forward(x)
            self.loss, grad_logits = softmax_cross_entropy(self.forward.output, labels)
        if not np.isfinite(self.loss):
            raise ValueError(
                f"the loss of the network on this batch is {self.loss}: the forward pass "
                "overflowed, so its curvature is undefined"
            )
        self.size = _parameter_count(net)
        self.dtype = net.dtype
        self.layout = "one entry per weight and bias of the network (see flatten_parameters)"
        z = self.forward.output
        e = np.exp(z - z.max(axis=1, keepdims=True))
        self.probs = e / e.sum(axis=1, keepdims=True)  # softmax(z), row by row
        self.batch = z.shape[0]
        self.gradients = net.backward(self.forward, grad_logits)
        # g_l, the gradient with respect to x_l (output of layer l), for l = 1..L.
        self.outputs_grad = [
            delta @ W
            for delta, W in zip(self.gradients.preactivations[1:], net.weights[1:], strict=True)
        ] + [grad_logits]

    @property
    def gradient(self) -> np.ndarray:
        return _flatten(list(self.gradients.weights), list(self.gradients.biases))

    def apply(self, v: np.ndarray, gauss_newton: bool) -> np.ndarray:
        net, xs, hs = self.net, self.forward.activations, self.forward.preactivations
        V, c = _split(net, v)
        # Forward pass of directional derivatives: R{h_l}, R{x_l}, with R{x_0} = 0.
        r_x, r_hs = np.zeros_like(xs[0]), []
        for layer, W in enumerate(net.weights):
            r_h = xs[layer] @ V[layer].T + c[layer] + (r_x @ W.T if layer else 0.0)
            r_hs.append(r_h)
            r_x = net._dphi(layer, hs[layer]) * r_h
        # R{dl/dz} = H_out R{z}: the softmax Hessian (diag p - p p^T) / B, row by row.
        p = self.probs
        r_g = (p * r_x - p * np.sum(p * r_x, axis=1, keepdims=True)) / self.batch
        if gauss_newton:  # J^T (H_out J v): one ordinary backward pass of H_out J v.
            grads = net.backward(self.forward, r_g)
            return _flatten(list(grads.weights), list(grads.biases))
        # Backward pass of the adjoints, differentiating every line of MLP.backward.
        rW, rb = [None] * net.depth, [None] * net.depth
        for layer in reversed(range(net.depth)):
            delta = self.gradients.preactivations[layer]
            r_delta = net._dphi(layer, hs[layer]) * r_g
            second = _second_derivative(net.layer_activation(layer), hs[layer])
            if second is not None:
                r_delta = r_delta + second * r_hs[layer] * self.outputs_grad[layer]
            x_prev = xs[layer]
            rW[layer] = r_delta.T @ x_prev
            if layer:
                r_x_prev = net._dphi(layer - 1, hs[layer - 1]) * r_hs[layer - 1]
                rW[layer] = rW[layer] + delta.T @ r_x_prev
            rb[layer] = r_delta.sum(axis=0)
            if layer:
                r_g = r_delta @ net.weights[layer] + delta @ V[layer]
        return _flatten(rW, rb)


def _replica_count(params: Any) -> int:
    if isinstance(params, np.ndarray) or not isinstance(params, list | tuple) or not params:
        raise TypeError(
            f"params must be a non-empty list of arrays, replica axis first, got "
            f"{_describe(params)}"
        )
    first = params[0]
    if not isinstance(first, np.ndarray) or first.ndim < 1 or first.shape[0] < 1:
        raise TypeError(
            f"params[0] must be an array with the replica axis first, got {_describe(first)}"
        )
    return int(first.shape[0])


class _ModelCurvature:
    """One replica of an engine model on one shared batch, as a flat Hessian operator.

    The flat vector is the replica's parameter arrays, each row-major, in the model's order.
    """

    def __init__(self, model: Any, params: Any, index: int, x: Any, labels: Any) -> None:
        self.model = model
        self.params = [np.ascontiguousarray(p[index : index + 1]) for p in params]
        for name, value in (("x", x), ("labels", labels)):
            if not isinstance(value, np.ndarray):
                raise TypeError(
                    f"{name} must be a numpy array (one shared batch), got {_describe(value)}"
                )
        if labels.shape[:1] != x.shape[:1]:
            raise ValueError(
                f"labels must have one entry per row of x ({x.shape[0]}), got shape {labels.shape}"
            )
        self.x, self.y = x[None], labels[None]
        self.shapes = [p.shape for p in self.params]
        self.size = int(sum(p.size for p in self.params))
        self.dtype = self.params[0].dtype
        self.layout = "the replica's parameter arrays, flattened one after the other"
        # The checks of the model's hvp (shapes, labels) run on a zero direction.
        try:
            model.hvp(self.params, self.x, self.y, [np.zeros_like(p) for p in self.params])
        except (TypeError, ValueError) as error:
            raise type(error)(
                f"x and labels must fit the model (its hvp(params, x, y, vectors) got x and "
                f"labels as y, with a replica axis added): {error}"
            ) from error
        with np.errstate(over="ignore", invalid="ignore"):
            loss = model.loss_and_gradients(self.params, self.x, self.y)[0]
        self.loss = float(np.asarray(loss)[0])
        if not np.isfinite(self.loss):
            raise ValueError(
                f"the loss of replica {index} on this batch is {self.loss}: the forward pass "
                "overflowed, so its curvature is undefined"
            )

    def apply(self, v: np.ndarray, gauss_newton: bool) -> np.ndarray:
        parts, start = [], 0
        for shape in self.shapes:
            count = int(np.prod(shape))
            parts.append(v[start : start + count].reshape(shape))
            start += count
        product = self.model.hvp(self.params, self.x, self.y, parts)
        return np.concatenate([p.ravel() for p in product]).astype(self.dtype)


def loss_and_gradient(net: MLP, x: Any, labels: Any) -> tuple[float, np.ndarray]:
    r"""Return the mean softmax cross-entropy of `net` on a batch and its gradient, flattened.

    .. math:: \ell(\theta) = \frac1B \sum_{i=1}^B \Big(\log \sum_c e^{z_{ic}} - z_{i y_i}\Big),
              \qquad z_i = f_\theta(x_i),

    and :math:`\nabla_\theta \ell` by :meth:`eiginit.MLP.backward`, in the order of
    :func:`flatten_parameters`.

    Parameters
    ----------
    net : MLP
        The network; its output is read as logits.
    x : array_like, shape (batch, sizes[0])
        Inputs, one per row.
    labels : array_like of int, shape (batch,)
        Class indices below ``sizes[-1]``.

    Returns
    -------
    loss : float
    gradient : numpy.ndarray, shape (n_parameters,)

    Raises
    ------
    TypeError, ValueError
        For a `net` that is not an MLP, inputs or labels that do not fit it, or a loss that
        is not finite (the forward pass overflowed).

    Examples
    --------
    >>> net = MLP((np.zeros((3, 2)),), (np.zeros(3),), "tanh")
    >>> loss, grad = loss_and_gradient(net, [[1.0, 2.0]], [0])
    >>> round(loss, 4), grad.shape  # three equal logits: log 3
    (1.0986, (9,))
    """
    state = _Curvature(net, x, labels)
    return state.loss, state.gradient


def hessian_vector_product(
    net: MLP, x: Any, labels: Any, vector: Any, *, gauss_newton: bool = False
) -> np.ndarray:
    r"""Return :math:`H v`, the Hessian of the mean cross-entropy times a vector, exactly.

    :math:`H = \nabla^2_\theta \ell` for the loss of :func:`loss_and_gradient`. The product is
    the directional derivative of the gradient, :math:`H v = \frac{d}{dt} \nabla \ell(\theta +
    t v)|_{t=0}`, computed by Pearlmutter's R-operator (Pearlmutter 1994, section 3): apply
    :math:`R\{\cdot\} = \frac{d}{dt}(\cdot)|_{t=0}` to every line of the forward pass,

    .. math:: R\{h_l\} = V_l x_{l-1} + W_l R\{x_{l-1}\} + c_l, \qquad
              R\{x_l\} = \phi'(h_l) \odot R\{h_l\},

    (:math:`V_l, c_l` the parts of :math:`v` for :math:`W_l, b_l`), then to every line of the
    backward pass, which brings in :math:`\phi''(h_l)` and the softmax Hessian
    :math:`H_{\text{out}} = (\operatorname{diag} p - p p^\top)/B` of each row.

    With ``gauss_newton=True`` the result is :math:`G v = J^\top H_{\text{out}} J v`, the
    Gauss-Newton (generalized Gauss-Newton) part of :math:`H`: the same forward pass gives
    :math:`J v = R\{z\}`, and one ordinary backward pass of :math:`H_{\text{out}} J v` gives
    :math:`J^\top H_{\text{out}} J v`. :math:`H - G` is the curvature of the network itself,
    weighted by the gradient of the loss with respect to the logits; it can be indefinite,
    so :math:`H` can have negative eigenvalues while :math:`G` cannot.

    Parameters
    ----------
    net : MLP
        The network (any activation; ReLU's :math:`\phi''` is taken as 0, exact away from
        the kink).
    x : array_like, shape (batch, sizes[0])
        Inputs.
    labels : array_like of int, shape (batch,)
        Class indices.
    vector : array_like, shape (n_parameters,)
        The direction :math:`v`, in the order of :func:`flatten_parameters`.
    gauss_newton : bool, default False
        Return :math:`G v` instead of :math:`H v`.

    Returns
    -------
    numpy.ndarray, shape (n_parameters,)

    Raises
    ------
    TypeError, ValueError
        For a `net` that is not an MLP, inputs, labels or `vector` that do not fit it, or a
        loss that is not finite.

    Examples
    --------
    One linear layer: the loss is the cross-entropy of :math:`z = W x + b`, and for zero
    weights the softmax is uniform, so :math:`H` acting on a bias direction :math:`c` is
    :math:`(\operatorname{diag} p - p p^\top) c` with :math:`p = (1/2, 1/2)`:

    >>> net = MLP((np.zeros((2, 1)),), (np.zeros(2),), "linear")
    >>> hessian_vector_product(net, [[0.0]], [0], [0.0, 0.0, 1.0, 0.0]).tolist()
    [0.0, 0.0, 0.25, -0.25]
    """
    gauss_newton = check_bool(gauss_newton, "gauss_newton")
    state = _Curvature(net, x, labels)
    v = _as_flat(state.net, vector, "vector")
    # H v is linear in v, so v is scaled by a power of two (exact) to a largest entry in
    # [0.5, 1) and the product scaled back: a vector of 1e-300 or 1e300 neither underflows
    # nor overflows on the way, and ordinary vectors give the same digits.
    peak = float(np.max(np.abs(v)))
    if peak == 0.0:
        return state.apply(v, gauss_newton)
    exponent = int(np.frexp(peak)[1])
    product = state.apply(np.ldexp(v, -exponent).astype(v.dtype), gauss_newton)
    with np.errstate(over="ignore"):
        result = np.ldexp(product, exponent).astype(product.dtype)
    if not np.all(np.isfinite(result)):
        raise ValueError(
            f"the product H v is beyond {result.dtype}'s range: vector (largest entry "
            f"{peak:.3g}) is too large for this Hessian; scale it down and the result back"
        )
    return result


@dataclass(frozen=True, eq=False)
class HessianEigenResult:
    r"""The outcome of :func:`hessian_top_eigenvalue`.

    Attributes
    ----------
    eigenvalue : float
        The Rayleigh quotient :math:`\mu = u^\top H u` of the last unit iterate: the estimate
        of the eigenvalue of largest modulus, with its sign.
    eigenvector : numpy.ndarray, shape (n_parameters,)
        The last unit iterate :math:`u` (order of :func:`flatten_parameters`); pass it as `v0`
        to warm-start the next call after a small change of the weights.
    iterations : int
        Hessian-vector products performed.
    converged : bool
        True only if :math:`\|H u - \mu u\| \le tol\, |\mu|`. Then :math:`(\mu, u)` is an
        exact eigenpair of a symmetric matrix within :math:`tol\, |\mu| \le tol\, \|H\|_2` of
        :math:`H`, and some eigenvalue of :math:`H` lies within :math:`\|H u - \mu u\|` of
        :math:`\mu`. No residual test can certify that this eigenvalue is the one of largest
        modulus: a start vector nearly orthogonal to the top eigenvector lets the iterate
        settle on the next one first. So, once the test passes, a few power steps from a
        fixed random direction orthogonal to :math:`u` look for a Rayleigh quotient of
        modulus above :math:`|\mu| + \|Hu - \mu u\|`; one found proves :math:`\mu` is not
        dominant, and the iteration goes on from there. The check can miss a larger eigenvalue
        that is close to :math:`\mu` relative to the shift; a smaller `tol`, or a second call
        with another start, guards against that.
    residual : float
        The final residual norm :math:`\|H u - \mu u\|`.
    estimates : numpy.ndarray, shape (iterations,)
        The Rayleigh quotient after each product.
    loss : float
        The loss at the weights where the curvature was measured.
    gauss_newton : bool
        Whether the operator was the Gauss-Newton matrix :math:`G` rather than :math:`H`.
    reason : str
        Why the iteration stopped, in words.
    check_products : int
        Products spent checking, after the residual test passed, that no eigenvalue of larger
        modulus is left (not counted in `iterations`).
    """

    eigenvalue: float
    eigenvector: np.ndarray
    iterations: int
    converged: bool
    residual: float
    estimates: np.ndarray
    loss: float
    gauss_newton: bool
    reason: str
    check_products: int = 0


def hessian_top_eigenvalue(
    net: MLP,
    x: Any,
    labels: Any,
    *,
    rng: np.random.Generator,
    tol: float = 1e-4,
    max_iter: int = 500,
    v0: Any = None,
    gauss_newton: bool = False,
    shift: float = 0.0,
    params: Any = None,
    replica: int | None = None,
) -> HessianEigenResult | tuple[HessianEigenResult, ...]:
    r"""Return the eigenvalue of largest modulus of the loss Hessian, by power iteration.

    Power iteration (Golub & Van Loan, *Matrix Computations*, 4th ed., 2013, section 7.3.1)
    on the exact products of :func:`hessian_vector_product`:

    .. math:: u_{n+1} = \frac{H u_n}{\|H u_n\|}, \qquad \mu_n = u_n^\top H u_n ,

    stopping when :math:`\|H u_n - \mu_n u_n\| \le tol\, |\mu_n|`. :math:`H` is symmetric,
    so the iteration tends to the eigenvalue of largest modulus and the Rayleigh quotient's
    error shrinks like :math:`|\lambda_2/\lambda_1|^{2n}`. The eigenvalue keeps its sign: a
    negative result says the most negative curvature is larger in modulus than the most
    positive one. Where the two have (nearly) equal moduli the iterate oscillates between
    them and the result says ``converged=False``. For gradient descent on a quadratic the
    largest *positive* eigenvalue :math:`\lambda_{\max}` sets the stability limit
    :math:`\eta < 2 / \lambda_{\max}`.

    The forward and backward pass of the network are computed once and reused by every
    product, so each iteration costs about three forward passes.

    Parameters
    ----------
    net : MLP or engine model
        The network, its output read as logits; or an engine model, with `params`.
    x : array_like, shape (batch, sizes[0])
        The batch the loss is averaged over (for an engine model: a numpy array of the
        model's inputs, shared by the replicas).
    labels : array_like of int, shape (batch,)
        Class indices (for an engine model: its targets, a numpy array).
    rng : numpy.random.Generator
        Draws the random start vector (ignored when `v0` is given).
    tol : float, default 1e-4
        Relative residual tolerance, in (0, 1). The eigenvalue's own error is much smaller, about
        ``tol**2`` times :math:`|\lambda_1|^2 / (\lambda_1 - \lambda_2)` when the gap is clear.
    max_iter : int, default 500
        The most Hessian-vector products, >= 1.
    v0 : array_like, shape (n_parameters,), optional
        A start vector, for example the eigenvector of a previous call (warm start).
    gauss_newton : bool, default False
        Iterate on the Gauss-Newton matrix :math:`G = J^\top H_{\text{out}} J` instead.
    shift : float, default 0.0
        Iterate on :math:`H + s I` with :math:`s` = `shift` and report the eigenvalue minus
        :math:`s` (the estimates and the residual refer to :math:`H` itself). With :math:`s`
        at least the modulus of the most negative eigenvalue, every eigenvalue of
        :math:`H + sI` is non-negative and the dominant one is :math:`\lambda_{\max} + s`:
        this finds the largest *positive* curvature when negative curvature dominates in
        modulus (Golub & Van Loan 2013, section 7.3.1, on shifts). The convergence test is on
        the unshifted eigenvalue, so a large shift cannot make it pass early; it does slow
        the iteration, whose rate becomes :math:`(\lambda_2 + s) / (\lambda_{\max} + s)`.
    params : list of numpy.ndarray, optional
        With an engine model as `net` (:class:`eiginit.MLPModel`, :class:`eiginit.MuPModel`,
        :class:`eiginit.RNNModel`, :class:`eiginit.CNNModel`, :class:`eiginit.ResidualModel`,
        or any model with ``loss_and_gradients`` and ``hvp``): its parameter arrays, replica
        axis first. The Hessian is that of one replica's mean loss on the shared batch
        ``(x, labels)`` (labels are the model's targets, real ones for the RNN), its products
        the model's exact ``hvp``; vectors (`v0`, the eigenvector) are the replica's arrays
        flattened one after the other. ``gauss_newton`` must be False.
    replica : int, optional
        The replica of `params` to measure; None (the default) measures every replica, one
        after the other (start vectors drawn from `rng` in turn), and returns a tuple.

    Returns
    -------
    HessianEigenResult, or a tuple of them (one per replica) for an engine model without
    `replica`

    Raises
    ------
    TypeError, ValueError
        For a `net` that is neither an MLP nor an engine model (or an engine model without
        `params`, or an MLP with them), a `replica` out of range, inputs or labels that do not
        fit it, a non-finite loss,
        a bad `tol` (it must be below 1: a relative residual of 1 certifies nothing),
        `max_iter` or `v0`, a Hessian that maps the iterate to zero, or a `shift` so large
        that rounding :math:`(H + sI)u` hides the eigenvalue (about :math:`\epsilon |s|
        \sqrt{n} \ge tol\, |\lambda|`): then no residual test can be trusted.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> init = lambda shape, *, rng: rng.standard_normal(shape) / np.sqrt(shape[1])
    >>> net = MLP.create([4, 8, 3], "tanh", init, rng=rng)
    >>> x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    >>> r = hessian_top_eigenvalue(net, x, y, rng=rng)
    >>> r.converged, r.eigenvalue > 0
    (True, True)

    The same network as an engine model (one replica) gives the same eigenvalue:

    >>> from eiginit.training.engine import MLPModel
    >>> model, params = MLPModel.from_networks([net], dtype=np.float64)
    >>> (same,) = hessian_top_eigenvalue(model, x, y, params=params, rng=rng)
    >>> bool(abs(same.eigenvalue - r.eigenvalue) < 1e-3 * r.eigenvalue)
    True
    """
    check_rng(rng)
    tol = check_tol(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    check_entries(max_iter, "the record of the estimates", "max_iter")
    gauss_newton = check_bool(gauss_newton, "gauss_newton")
    shift = check_real(shift, "shift")
    if isinstance(net, MLP):
        if params is not None or replica is not None:
            raise TypeError(
                "params and replica are for an engine model (eiginit.training.engine.Model "
                "with an hvp "
                "method); an eiginit.MLP carries its own weights"
            )
        state: Any = _Curvature(net, x, labels)
        return _power_iteration(state, rng, tol, max_iter, v0, gauss_newton, shift)
    if not (
        callable(getattr(net, "hvp", None)) and callable(getattr(net, "loss_and_gradients", None))
    ):
        raise TypeError(
            "net must be an eiginit.MLP or an engine model with loss_and_gradients and hvp "
            f"methods (for example eiginit.CNNModel), got {_describe(net)}"
        )
    if gauss_newton:
        raise ValueError(
            "gauss_newton=True needs an eiginit.MLP; the engine models give the full Hessian"
        )
    if params is None:
        raise TypeError("params must be given with an engine model: its parameter arrays")
    R = _replica_count(params)
    if replica is None:
        return tuple(
            _power_iteration(
                _ModelCurvature(net, params, r, x, labels), rng, tol, max_iter, v0, False, shift
            )
            for r in range(R)
        )
    index = check_int(replica, "replica", minimum=0, maximum=R - 1)
    state = _ModelCurvature(net, params, index, x, labels)
    return _power_iteration(state, rng, tol, max_iter, v0, False, shift)


def _power_iteration(
    state: Any,
    rng: np.random.Generator,
    tol: float,
    max_iter: int,
    v0: Any,
    gauss_newton: bool,
    shift: float,
) -> HessianEigenResult:
    """Power iteration with its dominance check, on a checked `state` (see the caller)."""
    if v0 is None:
        u = rng.standard_normal(state.size).astype(state.dtype)
    else:
        u = _as_flat_vector(v0, "v0", state.size, state.dtype, state.layout)
        peak = float(np.max(np.abs(u)))
        if peak == 0.0:
            raise ValueError("v0 must be a nonzero vector, got the zero vector")
        # A power of two (exact) first, so that the norm of a v0 of 1e-200 or 1e200 does not
        # underflow or overflow.
        u = np.ldexp(u, -int(np.frexp(peak)[1])).astype(u.dtype)
    norm = float(np.linalg.norm(u))
    if norm == 0.0:
        raise ValueError("v0 must be a nonzero vector, got the zero vector")
    u = u / norm
    # Rounding H u + s u and mu - s leaves an error of a few eps |s| in the eigenvalue and the
    # residual: below it, the residual test would certify rounding noise (shift=1e20 gives
    # eigenvalue 0 and residual 0).
    noise = 8.0 * float(np.finfo(u.dtype).eps) * abs(shift) * np.sqrt(u.size)
    estimates = np.empty(max_iter)
    mu, residual, n, done, checks, check_products = 0.0, np.inf, 0, 0, 0, 0
    refuted = False
    while True:
        for n in range(done, max_iter):
            product = state.apply(u, gauss_newton)
            image = product + shift * u
            with np.errstate(over="ignore", invalid="ignore"):  # refused just below
                q = float(np.linalg.norm(image))
            if not np.isfinite(q):
                culprit = (
                    f"shift = {shift:g} is too large for float64"
                    if np.all(np.isfinite(product))
                    else "the Hessian-vector product overflowed (the network's weights or "
                    "inputs are too large)"
                )
                raise ValueError(f"the iterate's image (H + shift I) u is not finite: {culprit}")
            if q == 0.0:
                raise ValueError(
                    f"the Hessian maps the iterate to zero at step {n + 1}; the start vector "
                    "lies in its null space (for example a direction the loss does not depend on)"
                )
            mu = float(u @ image)
            residual = float(np.linalg.norm(image - mu * u))
            estimates[n] = mu - shift
            if residual <= tol * abs(mu - shift) or n == max_iter - 1:
                break
            u = image / q
        done = n + 1
        if residual > tol * abs(mu - shift) or checks == _DOMINANCE_ROUNDS:
            break
        # The residual test certifies an eigenpair, not that it is the dominant one: look for
        # a larger one away from u, and go on from there if there is one.
        checks += 1
        larger, used = _larger_eigenvalue(state, gauss_newton, shift, u, abs(mu) + residual)
        check_products += used
        if larger is None:
            break
        if done == max_iter:
            refuted = True  # no products left to converge on the larger eigenvalue
            break
        u = larger
    if shift != 0.0 and tol * abs(mu - shift) <= noise:
        raise ValueError(
            f"shift = {shift:g} swamps the Hessian: rounding (H + shift I) u in {u.dtype} "
            f"leaves errors of about {noise:.1e}, more than tol * |eigenvalue| = "
            f"{tol * abs(mu - shift):.1e}, so the residual test cannot be trusted; use a "
            "shift about the size of the eigenvalues (for example 2 |lambda_min|)"
        )
    if residual <= tol * abs(mu - shift) and not refuted:
        return HessianEigenResult(
            eigenvalue=mu - shift,
            eigenvector=u,
            iterations=done,
            converged=True,
            residual=residual,
            estimates=estimates[:done].copy(),
            loss=state.loss,
            gauss_newton=gauss_newton,
            reason=f"residual {residual:.2e} <= tol * |eigenvalue| after {done} products",
            check_products=check_products,
        )
    return HessianEigenResult(
        eigenvalue=mu - shift,
        eigenvector=u,
        iterations=max_iter,
        converged=False,
        residual=residual,
        estimates=estimates,
        loss=state.loss,
        gauss_newton=gauss_newton,
        reason=(
            f"the residual test passed after {max_iter} products, but a check found an "
            "eigenvalue of larger modulus and no products were left (raise max_iter)"
            if refuted
            else f"no convergence in {max_iter} products (residual {residual:.2e} > tol * "
            f"|eigenvalue|): "
            "the two eigenvalues of largest modulus may be close (for example +lambda and "
            "-lambda), or the gap is too small for max_iter"
        ),
        check_products=check_products,
    )


# The dominance check: a few power steps from a fixed random direction (its own generator, so
# the caller's rng is not advanced), kept orthogonal to the converged eigenvector.
_DOMINANCE_STEPS = 8
_DOMINANCE_ROUNDS = 3
_DOMINANCE_SEED = 20_160_301


def _larger_eigenvalue(
    state: _Curvature, gauss_newton: bool, shift: float, u: np.ndarray, bound: float
) -> tuple[np.ndarray | None, int]:
    r"""Return a unit vector whose Rayleigh quotient exceeds `bound` in modulus, if one is found.

    Power iteration on :math:`(I - u u^\top)(H + sI)` from a fixed random start. Every Rayleigh
    quotient :math:`w^\top (H + sI) w` of a unit :math:`w` lies between the extreme eigenvalues
    of :math:`H + sI`, so one of modulus above ``|mu| + residual`` proves that the converged
    :math:`\mu` is not the dominant eigenvalue. Returns the vector (or None) and the number of
    products spent.
    """
    w = np.random.default_rng(_DOMINANCE_SEED).standard_normal(u.size).astype(u.dtype)
    eps = float(np.finfo(u.dtype).eps)
    for step in range(_DOMINANCE_STEPS):
        w = w - (u @ w) * u
        norm = float(np.linalg.norm(w))
        if not norm > 0:
            return None, step
        w = w / norm
        image = state.apply(w, gauss_newton) + shift * w
        rho = float(w @ image)
        margin = 8.0 * eps * np.sqrt(u.size) * float(np.linalg.norm(image))
        if abs(rho) > bound + margin:
            return w, step + 1
        w = image
    return None, _DOMINANCE_STEPS


def sharpness_monitor(
    model: Any,
    x: Any,
    labels: Any,
    *,
    rng: np.random.Generator,
    every: int = 1,
    replicas: Any = None,
    iterations: int = 20,
    tol: float = 1e-3,
) -> Callable[[list[np.ndarray]], dict[str, np.ndarray]]:
    r"""Return a monitor for :func:`eiginit.fit` that records the sharpness along training.

    Every `every`-th call (the first included) runs power iteration on each selected replica's
    loss Hessian on the batch ``(x, labels)``, with the model's exact Hessian-vector product
    (``model.hvp``, for example :meth:`eiginit.MLPModel.hvp`), all replicas at once:
    :math:`\mu = u^\top H u`, :math:`u \leftarrow H u / \|H u\|`, for at most `iterations`
    products, stopping once every replica's residual :math:`\|H u - \mu u\|` is at most
    ``tol`` times :math:`\|H u\|`. Each measurement starts from the previous one's vectors (a
    random start the first time), so that once the top direction has settled a measurement costs
    a few products. The recorded value is the signed Rayleigh quotient :math:`\mu`: an estimate
    of the eigenvalue of largest *modulus*, which is the sharpness :math:`\lambda_{\max}` when
    the positive end of the spectrum dominates; its convergence is not certified (use
    :func:`hessian_extreme_eigenvalues` for both ends of one network).

    :func:`eiginit.fit` calls its monitor before training and after every epoch, so with
    ``full_batch=True`` column :math:`t` of ``result.monitored["sharpness"]`` is the sharpness
    after :math:`t` gradient steps. The calls in between, the replicas not selected and any
    replica whose parameters are no longer finite record NaN.

    Parameters
    ----------
    model : eiginit.training.engine.Model
        With an ``hvp(params, x, y, vectors)`` method.
    x, labels : numpy.ndarray
        One batch shared by all replicas (in full batch, the whole training set).
    rng : numpy.random.Generator
        Draws the first start vectors.
    every : int, default 1
        Measure at every this many calls, >= 1.
    replicas : sequence of int, optional
        Which replicas to measure (default all); the others cost nothing.
    iterations : int, default 20
        The most Hessian-vector products per measurement, >= 1.
    tol : float, default 1e-3
        The relative residual at which a replica's iteration counts as settled, in (0, 1).

    Returns
    -------
    callable
        ``monitor(params) -> {"sharpness": array of shape (R,)}``.

    Raises
    ------
    TypeError, ValueError
        For a model without ``hvp``, a `rng` that is not a Generator, `every` or `iterations`
        below 1, a bad `tol`, or replica indices that are not distinct non-negative integers (an
        index beyond the replica count is refused at the first call).

    Examples
    --------
    >>> import functools
    >>> from eiginit import MLP, MLPModel, fit, kaiming_normal
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((32, 3)), rng.integers(0, 2, 32)
    >>> init = functools.partial(kaiming_normal, nonlinearity="relu")
    >>> model, params = MLPModel.from_networks([MLP.create([3, 8, 2], "relu", init, rng=rng)] * 2,
    ...                                        dtype=np.float64)
    >>> run = fit(model, params, (x, y), lr=[0.1, 0.5], seeds=0, optimizer="sgd", momentum=0.0,
    ...           epochs=4, full_batch=True,
    ...           monitor=sharpness_monitor(model, x, y, rng=rng, every=2, replicas=[1]))
    >>> np.isfinite(run.monitored["sharpness"]).tolist()
    [[False, False, False, False, False], [True, False, True, False, True]]
    """
    hvp = getattr(model, "hvp", None)
    if not callable(hvp):
        raise TypeError(
            f"model must have an hvp(params, x, y, vectors) method, got {_describe(model)}"
        )
    rng = check_rng(rng)
    every = check_int(every, "every", minimum=1)
    iterations = check_int(iterations, "iterations", minimum=1)
    tol = check_tol(tol, "tol")
    rows: list[int] | None = None
    if replicas is not None:
        if isinstance(replicas, str | bytes) or not isinstance(replicas, Sequence | np.ndarray):
            raise TypeError(
                f"replicas must be a sequence of replica indices, got {_describe(replicas)}"
            )
        rows = [check_int(r, "replicas", minimum=0) for r in replicas]
        if not rows or len(set(rows)) != len(rows):
            raise ValueError(f"replicas must be distinct indices, at least one, got {rows}")
    state: dict[str, Any] = {"calls": 0, "vectors": None}

    def norms(vs: list[np.ndarray], k: int) -> np.ndarray:
        return np.sqrt(sum(np.sum(v.reshape(k, -1) ** 2, axis=1) for v in vs))

    def scaled(vs: list[np.ndarray], factor: np.ndarray) -> list[np.ndarray]:
        return [v * factor.reshape((-1,) + (1,) * (v.ndim - 1)).astype(v.dtype) for v in vs]

    def monitor(params: list[np.ndarray]) -> dict[str, np.ndarray]:
        R = params[0].shape[0]
        out = np.full(R, np.nan)
        call = state["calls"]
        state["calls"] = call + 1
        if call % every:
            return {"sharpness": out}
        chosen = np.arange(R) if rows is None else np.array(rows)
        if chosen.max() >= R:
            raise ValueError(f"replicas must be below the replica count {R}, got {chosen.max()}")
        finite = np.array([all(np.all(np.isfinite(p[r])) for p in params) for r in chosen])
        if state["vectors"] is None:  # one start vector per selected replica, kept across calls
            state["vectors"] = [
                rng.standard_normal((len(chosen), *p.shape[1:])).astype(p.dtype) for p in params
            ]
        if not finite.any():
            return {"sharpness": out}
        rows_f = chosen[finite]
        part = [np.ascontiguousarray(p[rows_f]) for p in params]
        k = len(rows_f)
        u = [np.ascontiguousarray(v[finite]) for v in state["vectors"]]
        xs = np.broadcast_to(x, (k, *np.shape(x)))
        ys = np.broadcast_to(labels, (k, *np.shape(labels)))
        mu = np.zeros(k)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            length = norms(u, k)
            u = scaled(u, 1 / np.where(length > 0, length, 1.0))
            for _ in range(iterations):
                image = hvp(part, xs, ys, u)
                pairs = list(zip(u, image, strict=True))
                mu = sum(np.sum((a * b).reshape(k, -1), axis=1) for a, b in pairs)
                q = norms(image, k)
                column = [mu.reshape((-1,) + (1,) * (a.ndim - 1)) for a, _ in pairs]
                residual = norms([b - m * a for (a, b), m in zip(pairs, column, strict=True)], k)
                settled = ~np.isfinite(q) | (q == 0) | (residual <= tol * q)
                if settled.all():
                    break
                good = np.isfinite(q) & (q > 0)  # an image that overflowed keeps its vector
                u = [
                    np.where(good.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
                    for a, b in zip(u, scaled(image, 1 / np.where(good, q, 1.0)), strict=True)
                ]
        out[rows_f] = np.where(np.isfinite(mu), mu, np.nan)
        for v, w in zip(state["vectors"], u, strict=True):
            v[finite] = w
        return {"sharpness": out}

    return monitor


# ----------------------------------------------- both ends of the spectrum by Lanczos (issue 24)
@dataclass(frozen=True, eq=False)
class HessianSpectrumEnds:
    r"""The result of :func:`hessian_extreme_eigenvalues`.

    Attributes
    ----------
    smallest, largest : float
        :math:`\lambda_{\min}` and :math:`\lambda_{\max}` of the loss Hessian (or of its
        Gauss-Newton part): the most negative curvature and the sharpness.
    products : int
        Hessian-vector products used.
    loss : float
        The loss at the point where the Hessian was taken.
    """

    smallest: float
    largest: float
    products: int
    loss: float


def hessian_extreme_eigenvalues(
    net: MLP,
    x: Any,
    labels: Any,
    *,
    rng: np.random.Generator,
    tol: float = 1e-6,
    max_products: int = 2000,
    gauss_newton: bool = False,
) -> HessianSpectrumEnds:
    r"""Return the smallest and the largest eigenvalue of the loss Hessian, by Lanczos.

    Power iteration (:func:`hessian_top_eigenvalue`) finds the eigenvalue of largest *modulus*
    and stalls when the two ends of the spectrum have nearly equal moduli, at a rate
    :math:`|\lambda_2|/|\lambda_1| \approx 1`. The Lanczos method builds the Krylov space
    :math:`\mathrm{span}\{v, Hv, H^2 v, \dots\}` and finds both ends from it (Golub & Van Loan,
    *Matrix Computations*, 4th ed. 2013, chapter 10; here ARPACK's implicitly restarted
    version, :func:`scipy.sparse.linalg.eigsh` with ``which="BE"``, on a
    :class:`~scipy.sparse.linalg.LinearOperator` that calls the exact Hessian-vector product of
    :func:`hessian_vector_product`), so a sign does not hide the other end.

    Parameters
    ----------
    net : MLP
    x : array_like, shape (batch, sizes[0])
    labels : array_like of int, shape (batch,)
    rng : numpy.random.Generator
        Draws the start vector (the result is reproducible).
    tol : float, default 1e-6
        ARPACK's relative accuracy for the eigenvalues, > 0. It is relative to each eigenvalue,
        so an end of the spectrum at (or within rounding of) zero is the hard case: for the
        Gauss-Newton part of a network with many dead or saturated units, which has a large
        null space, Lanczos may stop at a small positive eigenvalue at the edge of the zero
        cluster, or not converge at all (a ValueError), as power iteration can stop at the
        second eigenvalue. Compare ``smallest`` with the scale of ``largest`` there.
    max_products : int, default 2000
        At most this many restarts' worth of products (ARPACK's ``maxiter``), >= 1.
    gauss_newton : bool, default False
        Use the Gauss-Newton part :math:`G` instead of :math:`H`.

    Returns
    -------
    HessianSpectrumEnds

    Raises
    ------
    TypeError
        If `net` is not an MLP, `rng` not a Generator or `gauss_newton` not a bool.
    ValueError
        If `tol` is not > 0, `max_products` < 1, the network has fewer than 3 parameters, the
        loss is not finite, or ARPACK does not converge (its message is passed on).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> init = lambda shape, *, rng: rng.standard_normal(shape) / np.sqrt(shape[1])
    >>> net = MLP.create([4, 8, 3], "tanh", init, rng=rng)
    >>> x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    >>> ends = hessian_extreme_eigenvalues(net, x, y, rng=rng)
    >>> top = hessian_top_eigenvalue(net, x, y, rng=rng, tol=1e-10, max_iter=10_000)
    >>> bool(abs(ends.largest - top.eigenvalue) < 1e-6), ends.smallest < 0 < ends.largest
    (True, True)
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    net = _check_net(net)
    rng = check_rng(rng)
    tol = check_positive_float(tol, "tol")
    max_products = check_int(max_products, "max_products", minimum=1)
    if not isinstance(gauss_newton, bool):
        raise TypeError(f"gauss_newton must be True or False, got {_describe(gauss_newton)}")
    size = _parameter_count(net)
    if size < 3:
        raise ValueError(f"the network must have at least 3 parameters for Lanczos, got {size}")
    state = _Curvature(net, x, labels)
    count = [0]

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        image = state.apply(np.asarray(v, dtype=net.dtype).ravel(), gauss_newton)
        return image.astype(np.float64)

    operator = LinearOperator((size, size), matvec=matvec, dtype=np.float64)
    try:
        values = eigsh(
            operator,
            k=2,
            which="BE",
            v0=rng.standard_normal(size),
            tol=tol,
            maxiter=max_products,
            return_eigenvectors=False,
        )
    except ArpackNoConvergence as error:
        raise ValueError(f"Lanczos did not converge: {error}") from error
    return HessianSpectrumEnds(
        smallest=float(np.min(values)),
        largest=float(np.max(values)),
        products=count[0],
        loss=float(state.loss),
    )
