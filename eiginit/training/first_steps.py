r"""The book's network before and around training: the loss, the first step and LSUV.

Part IV (chapter "Does it train?"). Everything is plain numpy on top of
:class:`eiginit.models.network.MLP`, so a reader can follow every step. Training itself is
:func:`eiginit.fit` (:mod:`eiginit.training.engine`: one trainer, one optimizer, one result type).

- the loss is :func:`eiginit.softmax_cross_entropy` (:mod:`eiginit.models.losses`);
- :func:`first_step` measures, before any training, the initial loss, each layer's activation
  size and each layer's gradient norm: the diagnostics that predict whether training can start;
- :func:`lsuv` is layer-sequential unit-variance initialization (Mishkin & Matas 2016): rescale
  each layer, first to last, until its output has unit variance on a batch of real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, check_int, check_positive_float
from eiginit.datasets import _as_labels
from eiginit.models.losses import softmax_cross_entropy
from eiginit.models.network import MLP

__all__ = ["FirstStep", "LSUVResult", "first_step", "lsuv"]


# ------------------------------------------------------------------------------- diagnostics
@dataclass(frozen=True, eq=False)
class FirstStep:
    r"""The state of a network before its first update, from :func:`first_step`.

    Attributes
    ----------
    loss : float
        The mean softmax cross-entropy on the batch (:math:`\log C` for uninformative logits;
        ``inf`` or ``nan`` if the forward pass overflowed).
    activation_rms : numpy.ndarray, shape (depth,)
        The root-mean-square of each layer's output :math:`x_l` over the batch and the units.
    grad_norms : numpy.ndarray, shape (depth,)
        The Frobenius norm of each layer's weight gradient :math:`\partial \ell / \partial W_l`.
    """

    loss: float
    activation_rms: np.ndarray
    grad_norms: np.ndarray


def first_step(net: MLP, x: Any, labels: Any) -> FirstStep:
    r"""Measure a network at initialization: loss, activation sizes and gradient norms per layer.

    One forward pass, the mean softmax cross-entropy :math:`\ell`, and one backward pass on the
    batch; nothing is updated. Overflow inside the passes gives ``inf``/``nan`` entries, not
    warnings: this is a diagnostic for networks that may be broken.

    Parameters
    ----------
    net : MLP
    x : array_like, shape (batch, sizes[0])
    labels : array_like of int, shape (batch,)

    Returns
    -------
    FirstStep

    Examples
    --------
    >>> net = MLP((np.zeros((3, 2)),), (np.zeros(3),), "relu")
    >>> fs = first_step(net, np.ones((4, 2)), [0, 1, 2, 0])
    >>> round(fs.loss, 4) == round(float(np.log(3)), 4), fs.grad_norms.shape
    (True, (1,))
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an eiginit.MLP, got {_describe(net)}")
    batch = net._as_batch(x)
    y = _as_labels(labels, "labels")
    if y.shape[0] != batch.shape[0]:
        raise ValueError(
            f"labels must have one entry per row of x: got {y.shape[0]} labels for "
            f"{batch.shape[0]} rows"
        )
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        fp = net.forward(batch)
        loss, grad = softmax_cross_entropy(fp.output, y)
        grads = net.backward(fp, grad)
        rms = np.array(
            [np.sqrt(np.mean(np.square(a, dtype=np.float64))) for a in fp.activations[1:]]
        )
        norms = np.array([np.linalg.norm(g.astype(np.float64)) for g in grads.weights])
    return FirstStep(loss=loss, activation_rms=rms, grad_norms=norms)


# ------------------------------------------------------------------------------------- LSUV
def _copy_network(net: MLP) -> MLP:
    return net.with_parameters([W.copy() for W in net.weights], [b.copy() for b in net.biases])


@dataclass(frozen=True, eq=False)
class LSUVResult:
    """What :func:`lsuv` did.

    Attributes
    ----------
    network : MLP
        The rescaled network (a new one; the input network is untouched).
    variances : numpy.ndarray, shape (depth,)
        Each layer's output variance on the batch after rescaling.
    iterations : numpy.ndarray of int, shape (depth,)
        How many rescalings each layer needed.
    converged : bool
        True if every layer ended within the tolerance.
    tol : float
        The tolerance used.
    """

    network: MLP
    variances: np.ndarray
    iterations: np.ndarray
    converged: bool
    tol: float


def lsuv(net: MLP, x: Any, *, tol: float = 0.1, max_iter: int = 10) -> LSUVResult:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas 2016).

    Start from a network with orthogonal weights (Saxe et al. 2014). Then, for each layer
    :math:`l = 1, \dots, L` in order, run the batch `x` through the network, measure the
    variance of the layer's output :math:`h_l = W_l x_{l-1} + b_l` (the linear layer's output,
    before the nonlinearity, over all batch entries and units), and divide :math:`W_l` by
    :math:`\sqrt{\operatorname{Var}(h_l)}`; repeat until
    :math:`|\operatorname{Var}(h_l) - 1| < \text{tol}` or `max_iter` rescalings. With zero
    biases :math:`h_l` is linear in :math:`W_l`, so one rescaling is exact; biases make it
    iterative. The last (logit) layer is rescaled too, as in the paper.

    Parameters
    ----------
    net : MLP
        The network to rescale, usually orthogonally initialized.
    x : array_like, shape (batch, sizes[0])
        A batch of real inputs (Mishkin & Matas use one minibatch).
    tol : float, default 0.1
        The tolerance on the variance, > 0 (the paper's value).
    max_iter : int, default 10
        The most rescalings per layer, >= 1.

    Returns
    -------
    LSUVResult

    Raises
    ------
    ValueError
        If a layer's output has zero or non-finite variance on the batch (it cannot be
        rescaled to one), plus the checks of the arguments.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> init = lambda shape, *, rng: 5 * rng.standard_normal(shape)
    >>> net = MLP.create([4, 16, 16, 3], "relu", init, rng=rng)
    >>> result = lsuv(net, rng.standard_normal((64, 4)))
    >>> result.converged, bool(np.abs(result.variances - 1).max() < 0.1)
    (True, True)
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an eiginit.MLP, got {_describe(net)}")
    tol = check_positive_float(tol, "tol")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    batch = net._as_batch(x)
    if batch.shape[0] < 2:
        raise ValueError(
            f"x must hold at least 2 examples to measure a variance, got {batch.shape[0]}"
        )
    model = _copy_network(net)
    variances = np.zeros(model.depth)
    iterations = np.zeros(model.depth, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        inputs = batch  # the input of the current layer: fixed while we rescale it
        for layer in range(model.depth):
            W, b = model.weights[layer], model.biases[layer]
            for _ in range(max_iter + 1):
                var = float(np.var((inputs @ W.T + b).astype(np.float64)))
                if not np.isfinite(var) or var <= 0:
                    raise ValueError(
                        f"layer {layer} has output variance {var} on the batch; LSUV needs a "
                        "finite, positive variance to rescale (is the batch constant?)"
                    )
                if abs(var - 1) < tol or iterations[layer] == max_iter:
                    break
                W *= np.asarray(1 / math.sqrt(var), dtype=W.dtype)
                iterations[layer] += 1
            variances[layer] = var
            inputs = model._phi(layer, inputs @ W.T + b)
    return LSUVResult(
        network=model,
        variances=variances,
        iterations=iterations,
        converged=bool(np.all(np.abs(variances - 1) < tol)),
        tol=tol,
    )
