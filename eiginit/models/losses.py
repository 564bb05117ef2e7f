r"""The classifier's loss and accuracy on logits: softmax cross-entropy, written once.

:func:`softmax_cross_entropy` is the mean cross-entropy of softmax probabilities against integer
labels with its gradient, computed with a stable log-sum-exp (subtract each row's maximum before
exponentiating); :func:`accuracy` is the share of rows whose largest logit is the label. The
networks of :mod:`eiginit.models.convolution`, the Hessians of :mod:`eiginit.theory.curvature` and
the first
steps of :mod:`eiginit.training.first_steps` use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eiginit._checks import as_array_of
from eiginit.datasets import _as_labels

__all__ = ["accuracy", "softmax_cross_entropy"]


# --------------------------------------------------------------------------------------- loss
def _check_logits_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z = as_array_of(logits, "logits", layout="rectangular")
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(
            f"logits must have shape (batch, n_classes) with batch >= 1 and n_classes >= 2, "
            f"got shape {z.shape}"
        )
    y = _as_labels(labels, "labels")
    if y.shape[0] != z.shape[0]:
        raise ValueError(
            f"labels must have one entry per row of logits: got {y.shape[0]} labels for "
            f"{z.shape[0]} rows"
        )
    if y.max() >= z.shape[1]:
        raise ValueError(
            f"labels must be class indices below n_classes = {z.shape[1]}, got a label {y.max()}"
        )
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    return z, y


def softmax_cross_entropy(logits: Any, labels: Any) -> tuple[float, np.ndarray]:
    r"""Return the mean softmax cross-entropy and its gradient with respect to the logits.

    For logits :math:`z \in \mathbb{R}^{B \times C}` and labels :math:`y_i`,

    .. math::

        \ell = -\frac1B \sum_i \log \operatorname{softmax}(z_i)_{y_i}
             = \frac1B \sum_i \Big( \log \sum_c e^{z_{ic}} - z_{i y_i} \Big), \qquad
        \frac{\partial \ell}{\partial z_{ic}} = \frac{\operatorname{softmax}(z_i)_c
             - [c = y_i]}{B}.

    The log-sum-exp is computed as :math:`m_i + \log \sum_c e^{z_{ic} - m_i}` with
    :math:`m_i = \max_c z_{ic}`, so no exponential overflows however large the logits are
    (Goodfellow, Bengio & Courville, *Deep Learning*, 2016, section 4.1). A network whose
    logits are all equal starts at :math:`\ell = \log C` (2.303 for ten classes).

    Parameters
    ----------
    logits : array_like, shape (batch, n_classes)
        Unnormalized scores. float32 input gives a float32 gradient.
    labels : array_like of int, shape (batch,)
        The correct class of each row, in ``0 .. n_classes - 1``.

    Returns
    -------
    loss : float
        The mean loss over the batch; ``inf`` or ``nan`` only if the logits are.
    grad : numpy.ndarray, shape (batch, n_classes)
        :math:`\partial \ell / \partial z`.

    Raises
    ------
    TypeError, ValueError
        For non-numeric logits, non-integer labels, or labels that do not match the logits.

    Examples
    --------
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 10)), [3, 7])
    >>> round(loss, 4), round(float(np.log(10)), 4)
    (2.3026, 2.3026)
    >>> loss, _ = softmax_cross_entropy([[1000.0, 0.0]], [0])  # no overflow
    >>> loss
    0.0
    """
    z, y = _check_logits_labels(logits, labels)
    rows = np.arange(z.shape[0])
    shifted = z - z.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    log_prob_true = shifted[rows, y] - np.log(total[:, 0])
    loss = float(-np.mean(log_prob_true, dtype=np.float64))
    grad = exp / total
    grad[rows, y] -= 1
    grad /= z.shape[0]
    return loss, grad


def accuracy(logits: Any, labels: Any) -> float:
    """Return the fraction of rows whose largest logit is at the correct label.

    Rows with a NaN logit count as wrong.

    Examples
    --------
    >>> accuracy([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]], [0, 1, 1])
    0.6666666666666666
    """
    z, y = _check_logits_labels(logits, labels)
    finite = np.all(np.isfinite(z), axis=1)
    return float(np.mean(finite & (np.argmax(np.nan_to_num(z), axis=1) == y)))


# ------------------------------------------------------------- for replica-stacked models
def replica_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-replica mean softmax cross-entropy of logits z (R, B, C), labels y (R, B).

    Returns the loss (R,) in float64 and :math:`\partial/\partial z = (\mathrm{softmax}(z) -
    e_y)/B`.
    """
    shifted = z - z.max(axis=2, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=2, keepdims=True)
    index = y[:, :, None]
    true = np.take_along_axis(shifted, index, axis=2)[:, :, 0]
    loss = -np.mean(true - np.log(total[:, :, 0]), axis=1, dtype=np.float64)
    exp /= total
    np.put_along_axis(exp, index, np.take_along_axis(exp, index, 2) - 1, 2)
    exp /= z.shape[1]
    return loss, exp


def shared_cross_entropy(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica mean cross-entropy of outputs (R, n, C) against labels y (n,) shared by all."""
    labels = np.broadcast_to(np.asarray(y, dtype=np.int64), outputs.shape[:2])
    return replica_cross_entropy(outputs, labels)[0]
