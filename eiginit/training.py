r"""Training the book's network on real data: loss, optimizers, the training loop and LSUV.

The engine of Part IV (chapter "Does it train?"). Everything is plain numpy on top of
:class:`eiginit.network.MLP`, so a reader can follow every step:

- :func:`softmax_cross_entropy` is the loss, computed with a stable log-sum-exp;
- :class:`SGD` (with momentum) and :class:`Adam` are the two optimizers, small objects that
  update parameter arrays in place;
- :func:`train` runs minibatch training and returns a :class:`TrainingResult` with the loss,
  the test accuracy and the per-layer gradient norms, epoch by epoch, and says when a run
  diverged instead of silently returning NaN;
- :func:`first_step` measures, before any training, the initial loss, each layer's activation
  size and each layer's gradient norm: the diagnostics that predict whether training can start;
- :func:`lsuv` is layer-sequential unit-variance initialization (Mishkin & Matas 2016): rescale
  each layer, first to last, until its output has unit variance on a batch of real data.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, as_array_of, check_int, check_positive_float, check_rng
from eiginit.datasets import Dataset, _as_labels
from eiginit.network import MLP

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "FirstStep",
    "LSUVResult",
    "TrainingResult",
    "accuracy",
    "first_step",
    "lsuv",
    "make_optimizer",
    "softmax_cross_entropy",
    "train",
]

#: The optimizer names :func:`train` and :func:`make_optimizer` understand.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


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


# --------------------------------------------------------------------------------- optimizers
class SGD:
    r"""Stochastic gradient descent with (heavy-ball) momentum, in PyTorch's form.

    .. math:: v \leftarrow \mu v + g, \qquad \theta \leftarrow \theta - \eta v

    with learning rate :math:`\eta` and momentum :math:`\mu` (Polyak 1964; Sutskever et al.
    2013). ``momentum=0`` is plain SGD.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0`.
    momentum : float, default 0.9
        :math:`\mu \in [0, 1)`.

    Examples
    --------
    >>> theta = np.array([1.0])
    >>> opt = SGD(lr=0.1, momentum=0.5)
    >>> opt.step([theta], [np.array([1.0])]); opt.step([theta], [np.array([1.0])])
    >>> theta.tolist()  # 1 - 0.1 * 1 - 0.1 * (0.5 + 1)
    [0.75]
    """

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        self.lr = check_positive_float(lr, "lr")
        self.momentum = _check_fraction(momentum, "momentum")
        self._velocity: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update every array of `params` in place, given the gradients `grads`.

        Raises
        ------
        TypeError, ValueError
            If `params` are not writable float arrays, a gradient's shape differs from its
            parameter's, or the parameters differ from those of earlier calls.
        """
        params, grads = _check_pairs(params, grads, self._velocity)
        if self._velocity is None:
            self._velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self._velocity, strict=True):
            v *= self.momentum
            v += g
            p -= self.lr * v

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g})"


class Adam:
    r"""Adam (Kingma & Ba 2015): momentum on the gradient, scaled by its running RMS.

    At step :math:`t`, with gradient :math:`g`,

    .. math::

        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \theta \leftarrow \theta - \eta \,
            \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon}.

    Every parameter moves by about :math:`\eta` per step whatever the size of its gradient, which
    is why Adam rescues networks whose gradients vanish or explode by many orders of magnitude,
    as long as the gradients are finite and not exactly zero.

    Parameters
    ----------
    lr : float
        The step size :math:`\eta > 0`.
    betas : tuple of float, default (0.9, 0.999)
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default 1e-8
        :math:`\epsilon > 0`.

    Examples
    --------
    >>> theta = np.array([1.0, 1.0])
    >>> Adam(lr=0.1).step([theta], [np.array([1e-4, 1e4])])
    >>> theta.round(4).tolist()  # the same step for a tiny and a huge gradient
    [0.9, 0.9]
    """

    def __init__(
        self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.lr = check_positive_float(lr, "lr")
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {_describe(betas)}")
        self.betas = (_check_fraction(betas[0], "beta1"), _check_fraction(betas[1], "beta2"))
        self.eps = check_positive_float(eps, "eps")
        self._m: list[np.ndarray] | None = None
        self._v: list[np.ndarray] | None = None
        self._t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update every array of `params` in place, given the gradients `grads`.

        Raises
        ------
        TypeError, ValueError
            If `params` are not writable float arrays, a gradient's shape differs from its
            parameter's, or the parameters differ from those of earlier calls.
        """
        params, grads = _check_pairs(params, grads, self._m)
        if self._m is None or self._v is None:
            self._m = [np.zeros_like(p) for p in params]
            self._v = [np.zeros_like(p) for p in params]
        self._t += 1
        b1, b2 = self.betas
        scale = self.lr * math.sqrt(1 - b2**self._t) / (1 - b1**self._t)
        eps = self.eps * math.sqrt(1 - b2**self._t)  # the same update, rearranged
        for p, g, m, v in zip(params, grads, self._m, self._v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= scale * m / (np.sqrt(v) + eps)

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr:g}, betas={self.betas}, eps={self.eps:g})"


def make_optimizer(name: str, lr: float, **options: Any) -> SGD | Adam:
    """Return a fresh optimizer by name: ``"sgd"`` (:class:`SGD`) or ``"adam"`` (:class:`Adam`).

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS`.
    lr : float
        The learning rate, > 0.
    **options
        Passed on: ``momentum`` for SGD; ``betas``, ``eps`` for Adam.

    Raises
    ------
    ValueError
        For an unknown name or a non-positive learning rate.

    Examples
    --------
    >>> make_optimizer("sgd", 0.01, momentum=0.8)
    SGD(lr=0.01, momentum=0.8)
    """
    if not isinstance(name, str):
        raise TypeError(f"optimizer must be a string naming one, got {_describe(name)}")
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return SGD(lr, **options) if key == "sgd" else Adam(lr, **options)


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _check_pairs(
    params: Any, grads: Any, state: list[np.ndarray] | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Check an optimizer step's arguments; return them as lists.

    Every parameter must be a writable float numpy array (it is updated in place) and every
    gradient a real array of exactly its parameter's shape. Once the optimizer holds state for a
    parameter list, later calls must pass arrays of the same shapes and dtypes.
    """
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, list | tuple):
            raise TypeError(f"{name} must be a list of numpy arrays, got {_describe(value)}")
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"got {len(params)} parameter arrays but {len(grads)} gradients")
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise TypeError(
                f"params[{i}] must be a float numpy array (it is updated in place), got "
                f"{_describe(p)}"
            )
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only; the optimizer updates it in place")
        if not isinstance(g, np.ndarray) or g.dtype.kind not in "biuf":
            raise TypeError(f"grads[{i}] must be a real numpy array, got {_describe(g)}")
        if g.shape != p.shape:
            raise ValueError(
                f"grads[{i}] must have the shape of params[{i}], {p.shape}, got {g.shape}"
            )
    if state is not None and (
        len(state) != len(params)
        or any(
            s.shape != p.shape or s.dtype != p.dtype for s, p in zip(state, params, strict=False)
        )
    ):
        raise ValueError(
            "this optimizer's state belongs to a list of "
            f"{len(state)} arrays with shapes {[s.shape for s in state]}; got "
            f"{len(params)} arrays with shapes {[p.shape for p in params]}. Use a fresh "
            "optimizer for other parameters"
        )
    return params, grads


# --------------------------------------------------------------------------------- training
@dataclass(frozen=True, eq=False)
class TrainingResult:
    """The record of one training run, epoch by epoch.

    Attributes
    ----------
    train_loss : numpy.ndarray, shape (epochs + 1,)
        Entry 0 is the loss of the untrained network on the whole training set; entry ``e``
        is the mean minibatch loss during epoch ``e``. NaN after a divergence.
    test_accuracy : numpy.ndarray, shape (epochs + 1,)
        Test accuracy before training (entry 0) and after each epoch. NaN after a divergence.
    grad_norms : numpy.ndarray, shape (epochs, depth)
        The Frobenius norm of each layer's weight gradient (of the mean loss), averaged over
        the steps of each epoch. NaN after a divergence.
    first_grad_norms : numpy.ndarray, shape (depth,)
        The same norms at the very first step, before any update.
    diverged : bool
        True if the loss or a parameter became NaN or infinite; training stopped there.
    network : MLP
        The trained network (a copy; the network passed in is untouched).
    optimizer : str
        The optimizer's description.
    """

    train_loss: np.ndarray
    test_accuracy: np.ndarray
    grad_norms: np.ndarray
    first_grad_norms: np.ndarray
    diverged: bool
    network: MLP
    optimizer: str

    @property
    def epochs(self) -> int:
        """The number of epochs asked for."""
        return int(self.grad_norms.shape[0])

    @property
    def initial_loss(self) -> float:
        """The training loss before any update."""
        return float(self.train_loss[0])

    @property
    def final_accuracy(self) -> float:
        """The test accuracy after the last epoch (NaN if the run diverged)."""
        return float(self.test_accuracy[-1])

    def epochs_to(self, target: float) -> int | None:
        """Return the first epoch whose test accuracy reaches `target`, or None if none does.

        Examples
        --------
        >>> r = TrainingResult(np.zeros(4), np.array([0.1, 0.5, 0.95, 0.97]), np.zeros((3, 1)),
        ...                    np.zeros(1), False, None, "adam")
        >>> r.epochs_to(0.9), r.epochs_to(0.99)
        (2, None)
        """
        if isinstance(target, bool) or not isinstance(target, numbers.Real):
            raise TypeError(f"target must be an accuracy in [0, 1], got {_describe(target)}")
        if not 0 <= target <= 1:
            raise ValueError(f"target must be an accuracy in [0, 1], got {target}")
        hits = np.flatnonzero(np.nan_to_num(self.test_accuracy, nan=-1.0) >= target)
        return int(hits[0]) if hits.size else None


def _copy_network(net: MLP) -> MLP:
    return net.with_parameters([W.copy() for W in net.weights], [b.copy() for b in net.biases])


def _check_data(net: MLP, data: Any) -> Dataset:
    if not isinstance(net, MLP):
        raise TypeError(f"net must be an eiginit.MLP, got {_describe(net)}")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an eiginit.Dataset, got {_describe(data)}")
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != net.sizes[0]:
            raise ValueError(
                f"data.x_{split} must have shape (n, {net.sizes[0]}) to match the network's "
                f"input width, got {_describe(x)}"
            )
        if x.dtype.kind not in "biuf":
            raise TypeError(
                f"data.x_{split} must hold real numbers, got {_describe(x)}"
                + (" (complex input is not supported)" if x.dtype.kind == "c" else "")
            )
        if not np.all(np.isfinite(x)):
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"data.x_{split} must be finite, got {bad} NaN or infinite entries")
        labels = _as_labels(y, f"data.y_{split}")
        if labels.shape[0] != x.shape[0]:
            raise ValueError(
                f"data.y_{split} must have one label per row of data.x_{split}: got "
                f"{labels.shape[0]} labels for {x.shape[0]} rows"
            )
        if labels.max() >= net.sizes[-1]:
            raise ValueError(
                f"data.y_{split} holds the label {labels.max()}, but the network has only "
                f"{net.sizes[-1]} outputs (classes 0..{net.sizes[-1] - 1})"
            )
    return data


def _interactive() -> bool:
    """Tell whether a person is watching: a terminal or a Python prompt, not a notebook kernel.

    A Jupyter kernel also sets ``sys.ps1``, but it runs book builds as well as readers'
    sessions, so inside one we stay quiet unless asked (``progress=True``).
    """
    if "ipykernel" in sys.modules:
        return False
    return bool(hasattr(sys, "ps1") or sys.flags.interactive or sys.stderr.isatty())


def train(
    net: MLP,
    data: Dataset,
    *,
    rng: np.random.Generator,
    optimizer: str = "adam",
    lr: float = 1e-3,
    epochs: int = 5,
    batch_size: int = 32,
    progress: bool | None = None,
    **optimizer_options: Any,
) -> TrainingResult:
    r"""Train a copy of `net` on `data` with minibatches and return the record.

    Each epoch shuffles the training set (with `rng`), walks through it in minibatches of
    `batch_size` (the last one may be smaller), and for each: forward pass, mean softmax
    cross-entropy (:func:`softmax_cross_entropy`), backward pass, one optimizer step. After each
    epoch it measures the test accuracy. It runs in the network's dtype.

    If the loss or any parameter stops being finite, the run is marked ``diverged`` and stops;
    the rest of its record is NaN. Floating-point overflow inside a diverging run is expected
    and is not reported as a warning.

    Parameters
    ----------
    net : MLP
        The network, already initialized; it is copied, not modified. Its output width must
        be at least the number of classes.
    data : Dataset
        Training and test sets (for example :func:`eiginit.load_digits`).
    rng : numpy.random.Generator
        Shuffles the minibatches.
    optimizer : {"adam", "sgd"}, default "adam"
        :class:`Adam` or :class:`SGD` with momentum.
    lr : float, default 1e-3
        The learning rate, > 0.
    epochs : int, default 5
        Passes over the training set, >= 1.
    batch_size : int, default 32
        Examples per step, >= 1.
    progress : bool or None, default None
        Print one line per epoch to standard error. None means: only when run interactively
        (a Python prompt or a terminal); inside a Jupyter kernel, which also builds the book,
        pass ``progress=True`` to see it.
    **optimizer_options
        Passed to the optimizer (``momentum`` for SGD; ``betas``, ``eps`` for Adam).

    Returns
    -------
    TrainingResult

    Raises
    ------
    TypeError, ValueError
        For an unknown optimizer, a non-positive learning rate, bad epochs or batch size, or
        data whose shapes or labels do not match the network.

    Examples
    --------
    >>> from eiginit.datasets import Dataset
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((64, 2)); y = (x[:, 0] > 0).astype(int)
    >>> data = Dataset(x, y, x, y, 2, "a line")
    >>> init = lambda shape, *, rng: rng.standard_normal(shape) / np.sqrt(shape[1])
    >>> net = MLP.create([2, 8, 2], "tanh", init, rng=rng)
    >>> result = train(net, data, rng=rng, lr=0.05, epochs=10, batch_size=16, progress=False)
    >>> bool(result.train_loss[-1] < result.train_loss[0]), result.final_accuracy > 0.9
    (True, True)
    """
    check_rng(rng)
    data = _check_data(net, data)
    opt = make_optimizer(optimizer, lr, **optimizer_options)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if progress is None:
        progress = _interactive()
    elif not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {_describe(progress)}")

    model = _copy_network(net)
    params = [*model.weights, *model.biases]
    depth = model.depth
    x_train = data.x_train.astype(model.dtype, copy=False)
    x_test = data.x_test.astype(model.dtype, copy=False)
    y_train, y_test = data.y_train, data.y_test
    n = x_train.shape[0]

    train_loss = np.full(epochs + 1, np.nan)
    test_acc = np.full(epochs + 1, np.nan)
    grad_norms = np.full((epochs, depth), np.nan)
    first_norms = np.full(depth, np.nan)
    diverged = False

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        train_loss[0], _ = softmax_cross_entropy(model(x_train), y_train)
        test_acc[0] = accuracy(model(x_test), y_test)
        if not np.isfinite(train_loss[0]):
            diverged = True
        for epoch in range(1, epochs + 1):
            if diverged:
                break
            order = rng.permutation(n)
            losses, norms, sizes = [], np.zeros(depth), []
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                fp = model.forward(x_train[idx])
                loss, grad = softmax_cross_entropy(fp.output, y_train[idx])
                if not np.isfinite(loss):
                    diverged = True
                    break
                grads = model.backward(fp, grad)
                step_norms = np.array([np.linalg.norm(g) for g in grads.weights])
                if not np.all(np.isfinite(step_norms)):
                    diverged = True
                    break
                if epoch == 1 and start == 0:
                    first_norms[:] = step_norms
                opt.step(params, [*grads.weights, *grads.biases])
                losses.append(loss)
                sizes.append(idx.size)
                norms += step_norms
            if diverged:
                break
            train_loss[epoch] = float(np.average(losses, weights=sizes))
            grad_norms[epoch - 1] = norms / len(losses)
            test_acc[epoch] = accuracy(model(x_test), y_test)
            if not all(np.all(np.isfinite(p)) for p in params[:depth]):
                diverged = True
                train_loss[epoch] = test_acc[epoch] = np.nan
                grad_norms[epoch - 1] = np.nan
            if progress:
                print(
                    f"epoch {epoch}/{epochs}: train loss {train_loss[epoch]:.4f}, "
                    f"test accuracy {100 * test_acc[epoch]:.1f} %"
                    + (" (diverged)" if diverged else ""),
                    file=sys.stderr,
                )
    if progress and diverged and not np.isfinite(train_loss[0]):
        print("diverged at initialization: the initial loss is not finite", file=sys.stderr)
    return TrainingResult(
        train_loss=train_loss,
        test_accuracy=test_acc,
        grad_norms=grad_norms,
        first_grad_norms=first_norms,
        diverged=diverged,
        network=model,
        optimizer=repr(opt),
    )


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
