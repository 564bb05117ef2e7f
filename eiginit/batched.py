r"""Train many networks of one architecture at once: one stacked matrix product per layer per step.

The engine of the training study (chapter "Does it train?") and of Part V's training runs. A
study trains the same architecture many times over: several initializations, several seeds,
several learning rates. Trained one after the other (:func:`eiginit.train`), each small network
pays Python's overhead on every layer of every step. Here the R networks ("replicas") are stacked:
layer l's weights are one array of shape ``(R, fan_out, fan_in)``, its biases ``(R, fan_out)``,
and a minibatch is ``(R, batch, features)``, so a layer's forward or backward pass is a single
batched matrix product (numpy's ``matmul`` over the leading axis). Each replica keeps its own
initial weights, its own minibatch order (its own seed) and its own learning rate; the replicas
never mix.

- :func:`train_batched` trains the stack and returns a :class:`BatchedResult`;
- every epoch it measures each replica's validation accuracy and keeps the weights of its best
  epoch (early stopping on validation); the test set is evaluated once, at the end, on those
  weights;
- a replica whose loss or parameters stop being finite is marked diverged, its record is NaN
  from then on and its parameters are zeroed so that it costs nothing and poisons nothing.

The arithmetic is that of :func:`eiginit.train` with :class:`eiginit.SGD` or :class:`eiginit.Adam`,
step for step: a test checks that both give the same losses to rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit._checks import _describe, check_entries, check_int, check_positive_float
from eiginit.datasets import Dataset, _as_labels
from eiginit.network import MLP, _activation, _derivative

__all__ = ["BatchedResult", "train_batched"]


@dataclass(frozen=True, eq=False)
class BatchedResult:
    """The record of R networks trained together by :func:`train_batched`.

    Row ``r`` of every array is replica ``r`` (of ``replicas`` = R), in the order the networks were
    given.

    Attributes
    ----------
    train_loss : numpy.ndarray, shape (replicas, epochs + 1)
        Column 0 is the loss of the untrained network on the whole training set; column ``e`` the
        mean minibatch loss during epoch ``e``. NaN from the epoch a replica diverged, and after
        the run stopped early (see `epochs_run`).
    val_accuracy : numpy.ndarray, shape (replicas, epochs + 1)
        Validation accuracy before training (column 0) and after each epoch; NaN as above. All
        NaN if the data has no validation split.
    best_epoch : numpy.ndarray of int, shape (replicas,)
        The epoch whose weights were kept: the first epoch with the highest validation accuracy
        (the last epoch run if there is no validation split).
    test_accuracy : numpy.ndarray, shape (replicas,)
        Test accuracy of the kept weights, measured once, after training.
    diverged : numpy.ndarray of bool, shape (replicas,)
        True if the replica's loss or a parameter became NaN or infinite.
    lrs : numpy.ndarray, shape (replicas,)
        Each replica's learning rate.
    seeds : tuple of int
        Each replica's minibatch-order seed.
    optimizer : str
        ``"adam"`` or ``"sgd"``, with its options.
    epochs_run : int
        Epochs actually run (fewer than asked if every replica had stopped improving).
    weights : tuple of numpy.ndarray
        The kept weights, one ``(R, fan_out, fan_in)`` stack per layer.
    biases : tuple of numpy.ndarray
        The kept biases, one ``(R, fan_out)`` stack per layer.
    activation, output_activation : str
        The networks' activations.
    """

    train_loss: np.ndarray
    val_accuracy: np.ndarray
    best_epoch: np.ndarray
    test_accuracy: np.ndarray
    diverged: np.ndarray
    lrs: np.ndarray
    seeds: tuple[int, ...]
    optimizer: str
    epochs_run: int
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str
    output_activation: str
    negative_slope: float = 0.01

    @property
    def replicas(self) -> int:
        """The number of networks R."""
        return int(self.train_loss.shape[0])

    @property
    def best_val_accuracy(self) -> np.ndarray:
        """Each replica's validation accuracy at its kept epoch, shape (R,)."""
        return self.val_accuracy[np.arange(self.replicas), self.best_epoch]

    def network(self, index: int) -> MLP:
        """Return replica `index`'s kept weights as an :class:`eiginit.MLP` (copies)."""
        index = check_int(index, "index")
        if index >= self.replicas:
            raise ValueError(
                f"index must be below the number of replicas {self.replicas}, got {index}"
            )
        return MLP(
            tuple(W[index].copy() for W in self.weights),
            tuple(b[index].copy() for b in self.biases),
            self.activation,
            self.output_activation,
            self.negative_slope,
        )


# ----------------------------------------------------------------------------- checks
def _check_networks(nets: Any) -> list[MLP]:
    if isinstance(nets, MLP) or not isinstance(nets, Sequence) or isinstance(nets, str):
        raise TypeError(f"nets must be a list of eiginit.MLP, got {_describe(nets)}")
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one network, got an empty list")
    first = nets[0]
    for i, net in enumerate(nets):
        if not isinstance(net, MLP):
            raise TypeError(f"nets[{i}] must be an eiginit.MLP, got {_describe(net)}")
        same = (
            net.sizes == first.sizes
            and net.activation == first.activation
            and net.output_activation == first.output_activation
            and net.negative_slope == first.negative_slope
            and net.dtype == first.dtype
        )
        if not same:
            raise ValueError(
                f"every network must share one architecture: nets[0] has sizes {first.sizes}, "
                f"activation {first.activation!r}, dtype {first.dtype}; nets[{i}] has sizes "
                f"{net.sizes}, activation {net.activation!r}, dtype {net.dtype}"
            )
    return nets


def _check_split(data: Dataset, split: str, sizes: tuple[int, ...], dtype: np.dtype) -> None:
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != sizes[0] or x.shape[0] == 0:
        raise ValueError(
            f"data.x_{split} must have shape (n, {sizes[0]}) with n >= 1 to match the networks' "
            f"input width, got {_describe(x)}"
        )
    if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
        raise ValueError(f"data.x_{split} must hold finite real floats, got {_describe(x)}")
    limit = float(np.finfo(dtype).max)
    if x.dtype.itemsize > dtype.itemsize and float(np.max(np.abs(x))) > limit:
        # The networks compute in their own dtype; a plain cast would make these entries inf
        # and every replica would be reported diverged for a fault of the data.
        raise ValueError(
            f"data.x_{split} has entries beyond the range of the networks' dtype {dtype} "
            f"(above {limit:.2g} in modulus); rescale the data or use float64 networks"
        )
    labels = _as_labels(y, f"data.y_{split}")
    if labels.shape[0] != x.shape[0] or labels.max() >= sizes[-1]:
        raise ValueError(
            f"data.y_{split} must hold one label below {sizes[-1]} per row of data.x_{split}, "
            f"got {labels.shape[0]} labels (largest {labels.max()}) for {x.shape[0]} rows"
        )


def _per_replica(value: Any, name: str, replicas: int) -> list[Any]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value] * replicas
    if len(value) != replicas:
        raise ValueError(f"{name} must have one entry per network ({replicas}), got {len(value)}")
    return list(value)


# ----------------------------------------------------------------------------- passes
def _forward(
    weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray, acts: list[str], a: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Stacked forward pass: x of shape (R or 1, batch, n0); returns activations, preactivations."""
    xs, hs = [x], []
    for W, b, act in zip(weights, biases, acts, strict=True):
        # numpy's batched matmul is several times slower when its second operand is a
        # transposed view, so the transpose is copied first.
        h = np.matmul(xs[-1], np.ascontiguousarray(W.transpose(0, 2, 1)))
        h += b[:, None, :]
        hs.append(h)
        xs.append(h if act == "linear" else _activation(act, h, a))
    return xs, hs


def _loss_grad(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-replica mean softmax cross-entropy of logits z (R, B, C) and labels y (R, B)."""
    shifted = z - z.max(axis=2, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=2, keepdims=True)
    true = np.take_along_axis(shifted, y[:, :, None], axis=2)[:, :, 0]
    loss = -np.mean(true - np.log(total[:, :, 0]), axis=1, dtype=np.float64)
    grad = exp / total
    np.put_along_axis(grad, y[:, :, None], np.take_along_axis(grad, y[:, :, None], 2) - 1, 2)
    grad /= z.shape[1]
    return loss, grad


def _logits(
    weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray, acts: list[str], a: float
) -> np.ndarray:
    """Return every replica's outputs on one shared batch x (n, n0), shape (R, n, n_L).

    The first layer of all replicas is one ordinary matrix product with the weights side by side;
    only the current layer's activations are kept, a chunk of rows at a time.
    """
    R, out0 = weights[0].shape[:2]
    first = weights[0].reshape(R * out0, -1).T
    chunks = []
    for start in range(0, x.shape[0], 256):
        h = (x[start : start + 256] @ first).reshape(-1, R, out0).transpose(1, 0, 2)
        h = h + biases[0][:, None, :]
        z = h if acts[0] == "linear" else _activation(acts[0], h, a)
        for W, b, act in zip(weights[1:], biases[1:], acts[1:], strict=True):
            h = np.matmul(z, np.ascontiguousarray(W.transpose(0, 2, 1)))
            h += b[:, None, :]
            z = h if act == "linear" else _activation(act, h, a)
        chunks.append(z)
    return np.concatenate(chunks, axis=1)


def _accuracy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica accuracy of logits z (R, n, C) against labels y (n,); NaN rows count wrong."""
    finite = np.all(np.isfinite(z), axis=2)
    return np.mean(finite & (np.argmax(np.nan_to_num(z), axis=2) == y[None, :]), axis=1)


def _mean_loss(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _loss_grad(z, np.broadcast_to(y, z.shape[:2]))[0]


# ----------------------------------------------------------------------------- training
def train_batched(
    nets: Sequence[MLP],
    data: Dataset,
    *,
    lrs: Any,
    seeds: Any,
    optimizer: str = "adam",
    epochs: int = 10,
    batch_size: int = 32,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    patience: int | None = None,
) -> BatchedResult:
    """Train R networks of one architecture together, each with its own weights, seed and rate.

    Replica r is trained exactly as ``eiginit.train(nets[r], data, rng=np.random.default_rng(
    seeds[r]), optimizer=optimizer, lr=lrs[r], epochs=epochs, batch_size=batch_size)`` would train
    it: each epoch shuffles the training set with the replica's own generator, walks through it
    in minibatches (the last one may be smaller), and takes one optimizer step per minibatch on the
    mean softmax cross-entropy. The only difference is that all R replicas take their step at the
    same time, one stacked matrix product per layer. The networks passed in are not modified.

    After every epoch each replica's accuracy on the validation set (``data.x_val``) is measured
    and the weights of its best epoch so far are kept (the first epoch that reaches the highest
    validation accuracy; epoch 0 is the untrained network). With `patience`, training stops early
    once no replica has improved for that many epochs. At the end the test accuracy of each
    replica's kept weights is measured, once. Without a validation split, the last epoch is kept.

    Parameters
    ----------
    nets : sequence of MLP
        R initialized networks with the same sizes, activations and dtype (float32 is about
        twice as fast as float64).
    data : Dataset
        Training, validation (optional) and test sets, for example :func:`eiginit.load_mnist1d`.
    lrs : float or sequence of float
        The learning rate of every replica (one number for all, or one per network), each > 0.
    seeds : int or sequence of int
        The seed of each replica's minibatch order (one per network; a single int is shared).
    optimizer : {"adam", "sgd"}, default "adam"
        Adam or SGD with heavy-ball momentum, as :class:`eiginit.Adam` and :class:`eiginit.SGD`.
    epochs : int, default 10
        The most passes over the training set, >= 1.
    batch_size : int, default 32
        Examples per step, >= 1.
    momentum : float, default 0.9
        SGD's momentum, in [0, 1).
    betas : tuple of float, default (0.9, 0.999)
        Adam's decay rates, each in [0, 1).
    eps : float, default 1e-8
        Adam's epsilon, > 0.
    patience : int or None, default None
        Stop when no replica's validation accuracy has improved for this many epochs.

    Returns
    -------
    BatchedResult

    Raises
    ------
    TypeError, ValueError
        For networks of different architectures, data that does not match them, non-finite or
        complex data, a learning rate <= 0, or bad epochs, batch size, momentum or betas.

    Examples
    --------
    Three copies of one small network, trained with three learning rates:

    >>> from eiginit.datasets import Dataset
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((96, 2)); y = (x[:, 0] > 0).astype(int)
    >>> data = Dataset(x[:64], y[:64], x[64:], y[64:], 2, "a line", x_val=x[64:], y_val=y[64:])
    >>> init = lambda shape, *, rng: rng.standard_normal(shape) / np.sqrt(shape[1])
    >>> net = MLP.create([2, 8, 2], "tanh", init, rng=rng)
    >>> result = train_batched([net] * 3, data, lrs=[1e-4, 1e-2, 1e-1], seeds=[0, 0, 0], epochs=5)
    >>> result.train_loss.shape, result.test_accuracy.shape
    ((3, 6), (3,))
    >>> bool(result.train_loss[2, -1] < result.train_loss[0, -1])  # the larger rate got further
    True
    """
    nets = _check_networks(nets)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an eiginit.Dataset, got {_describe(data)}")
    sizes, dtype = nets[0].sizes, nets[0].dtype
    splits = ["train", "test"] + ([] if data.x_val is None else ["val"])
    for split in splits:
        _check_split(data, split, sizes, dtype)
    R = len(nets)
    lr = np.array([check_positive_float(v, "lrs") for v in _per_replica(lrs, "lrs", R)])
    if float(lr.max()) > float(np.finfo(dtype).max):
        # The step is taken in the networks' dtype: such a rate would be inf there, and every
        # replica with it reported diverged for a fault of the argument.
        raise ValueError(
            f"lrs must fit the networks' dtype {dtype} (at most {np.finfo(dtype).max:.2g}), "
            f"got {float(lr.max()):g}"
        )
    seed_list = []
    for s in _per_replica(seeds, "seeds", R):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise TypeError(f"seeds must be non-negative integers, got {_describe(s)}")
        seed_list.append(int(s))
    if not isinstance(optimizer, str) or optimizer.lower() not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {_describe(optimizer)}")
    optimizer = optimizer.lower()
    epochs = check_int(epochs, "epochs", minimum=1)
    check_entries(2 * R * (epochs + 1), f"the record of {R} networks", "epochs")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if patience is not None:
        patience = check_int(patience, "patience", minimum=1)
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {_describe(betas)}")
    for name, value in (("momentum", momentum), *zip(("beta1", "beta2"), betas, strict=True)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a real number in [0, 1), got {_describe(value)}")
    eps = check_positive_float(eps, "eps")

    acts = [nets[0].layer_activation(i) for i in range(nets[0].depth)]
    slope = nets[0].negative_slope
    Ws = [np.stack([n.weights[i] for n in nets]) for i in range(len(acts))]
    bs = [np.stack([n.biases[i] for n in nets]) for i in range(len(acts))]
    params = [*Ws, *bs]
    state1 = [np.zeros_like(p) for p in params]  # SGD velocity, or Adam's first moment
    state2 = [np.zeros_like(p) for p in params] if optimizer == "adam" else []
    best = [p.copy() for p in params]
    lr_col = {p.ndim: lr.reshape((R,) + (1,) * (p.ndim - 1)) for p in params}

    x_train = data.x_train.astype(dtype, copy=False)
    y_train = _as_labels(data.y_train, "data.y_train")
    has_val = data.x_val is not None
    x_val = data.x_val.astype(dtype, copy=False) if has_val else None
    y_val = _as_labels(data.y_val, "data.y_val") if has_val else None
    n = x_train.shape[0]
    rngs = [np.random.default_rng(s) for s in seed_list]

    train_loss = np.full((R, epochs + 1), np.nan)
    val_acc = np.full((R, epochs + 1), np.nan)
    diverged = np.zeros(R, dtype=bool)
    best_epoch = np.zeros(R, dtype=np.int64)
    best_val = np.full(R, -np.inf)
    since_best = 0
    epochs_run = 0
    t = 0

    def kill(mask: np.ndarray) -> None:
        """Mark replicas diverged and zero their parameters and optimizer state."""
        diverged[mask] = True
        for arr in (*params, *state1, *state2):
            arr[mask] = 0

    def evaluate(epoch: int) -> None:
        nonlocal since_best
        if not has_val:
            return
        z = _logits(Ws, bs, x_val, acts, slope)
        acc = np.where(diverged, np.nan, _accuracy(z, y_val))
        val_acc[:, epoch] = acc
        improved = ~diverged & (acc > best_val)
        best_val[improved] = acc[improved]
        best_epoch[improved] = epoch
        for b, p in zip(best, params, strict=True):
            b[improved] = p[improved]
        since_best = 0 if improved.any() else since_best + 1

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        z0 = _logits(Ws, bs, x_train, acts, slope)
        train_loss[:, 0] = _mean_loss(z0, y_train)
        kill(~np.isfinite(train_loss[:, 0]))
        train_loss[diverged, 0] = np.nan
        evaluate(0)
        for epoch in range(1, epochs + 1):
            orders = np.stack([g.permutation(n) for g in rngs])
            total, alive_before = np.zeros(R), ~diverged
            for start in range(0, n, batch_size):
                idx = orders[:, start : start + batch_size]
                xs, hs = _forward(Ws, bs, x_train[idx], acts, slope)
                loss, g = _loss_grad(xs[-1], y_train[idx])
                bad = ~np.isfinite(loss) & ~diverged
                if bad.any():
                    kill(bad)
                    g[bad] = 0
                total += np.where(diverged, 0.0, loss) * idx.shape[1]
                grads_W, grads_b = [None] * len(Ws), [None] * len(Ws)
                for layer in reversed(range(len(Ws))):
                    if acts[layer] != "linear":
                        g = g * _derivative(acts[layer], hs[layer], slope)
                    grads_W[layer] = np.matmul(g.transpose(0, 2, 1), xs[layer])
                    grads_b[layer] = g.sum(axis=1)
                    if layer:
                        g = np.matmul(g, Ws[layer])
                t += 1
                _update(optimizer, params, [*grads_W, *grads_b], state1, state2, lr_col, t,
                        momentum, betas, eps)  # fmt: skip
            finite = np.array([all(np.isfinite(p[r]).all() for p in params) for r in range(R)])
            kill(~finite & ~diverged)
            train_loss[:, epoch] = np.where(diverged, np.nan, total / n)
            train_loss[alive_before & diverged, epoch] = np.nan
            epochs_run = epoch
            evaluate(epoch)
            if patience is not None and has_val and since_best >= patience:
                break
        if not has_val:
            best = [p.copy() for p in params]
            best_epoch[:] = epochs_run
        z = _logits(best[: len(Ws)], best[len(Ws) :], data.x_test.astype(dtype), acts, slope)
        test_acc = _accuracy(z, _as_labels(data.y_test, "data.y_test"))
        if not has_val:
            test_acc[diverged] = np.nan
    options = (
        f"momentum={momentum:g}" if optimizer == "sgd" else f"betas={tuple(betas)}, eps={eps:g}"
    )
    return BatchedResult(
        train_loss=train_loss,
        val_accuracy=val_acc,
        best_epoch=best_epoch,
        test_accuracy=test_acc,
        diverged=diverged,
        lrs=lr,
        seeds=tuple(seed_list),
        optimizer=f"{optimizer}({options})",
        epochs_run=epochs_run,
        weights=tuple(best[: len(Ws)]),
        biases=tuple(best[len(Ws) :]),
        activation=nets[0].activation,
        output_activation=nets[0].output_activation,
        negative_slope=slope,
    )


def _update(
    optimizer: str,
    params: list[np.ndarray],
    grads: list[np.ndarray],
    state1: list[np.ndarray],
    state2: list[np.ndarray],
    lr_col: dict[int, np.ndarray],
    t: int,
    momentum: float,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """One in-place step of every replica, with the arithmetic of eiginit.SGD / eiginit.Adam."""
    if optimizer == "sgd":
        for p, g, v in zip(params, grads, state1, strict=True):
            v *= momentum
            v += g
            p -= lr_col[p.ndim].astype(p.dtype) * v
        return
    b1, b2 = betas
    correction = math.sqrt(1 - b2**t) / (1 - b1**t)
    eps_t = eps * math.sqrt(1 - b2**t)
    for p, g, m, v in zip(params, grads, state1, state2, strict=True):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        np.multiply(g, g, out=g)  # the gradient is not needed after this step
        g *= 1 - b2
        v += g
        np.sqrt(v, out=g)
        g += eps_t
        np.divide(m, g, out=g)
        g *= (lr_col[p.ndim] * correction).astype(p.dtype)
        p -= g
