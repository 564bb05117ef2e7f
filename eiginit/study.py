r"""The training study of chapter "Does it train?": its contenders and one cell of its grid.

A *cell* is one dataset, one activation, one optimizer and one depth. In a cell every
initialization ("contender") is trained

1. on a log grid of learning rates, with a few seeds (the sweep); the learning rate with the
   highest mean validation accuracy is chosen, per contender;
2. with more seeds at its chosen rate (the sweep's seeds are reused), so that each contender ends
   with the same number of seeds at its own best rate.

Every run keeps the weights of its best validation epoch (early stopping on validation); the test
set is evaluated once per run, on those weights. All runs of a stage train together in one call
of :func:`eiginit.train_batched`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eiginit import initializers as ini
from eiginit.batched import train_batched
from eiginit.datasets import Dataset
from eiginit.meanfield import critical_sigma_w2
from eiginit.network import MLP
from eiginit.training import lsuv

__all__ = [
    "CRITICAL_SIGMA_B2",
    "Contender",
    "StudyCell",
    "build_contender",
    "contenders",
    "networks",
    "run_cell",
]

#: The bias variance of chapter "The backward pass"'s critical tanh network (a small q*).
CRITICAL_SIGMA_B2 = 5e-6

#: LSUV's tolerance here: small enough that every layer is rescaled at least once.
LSUV_TOL = 0.01


@dataclass(frozen=True)
class Contender:
    """One initialization: how to draw a weight matrix and what else to do to the network.

    Attributes
    ----------
    name : str
    init : callable
        ``init(shape, *, rng)``, one ``(fan_out, fan_in)`` matrix.
    bias : str
        ``"zero"``, ``"torch"`` (uniform in +-1/sqrt(fan_in), as ``nn.Linear``) or ``"critical"``
        (normal with variance ``CRITICAL_SIGMA_B2``).
    lsuv : bool
        Rescale the layers on a batch of training data afterwards (Mishkin & Matas 2016).
    """

    name: str
    init: Callable[..., np.ndarray]
    bias: str = "zero"
    lsuv: bool = False


def _seed_recipe(gain: float) -> Callable[..., np.ndarray]:
    def draw(shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
        if shape[0] != shape[1]:  # eigenvalues need a square matrix: first and last layer
            return ini.lecun_normal(shape, gain, rng=rng)
        return gain * ini.spectral_radius_normal(shape, rng=rng)

    return draw


def contenders(activation: str) -> list[Contender]:
    """Return the initializations the study trains for ``"relu"`` or ``"tanh"``.

    LeCun, Xavier (gain 1), Kaiming and orthogonal (PyTorch's gain for the activation), LSUV
    (orthogonal with gain 1, then rescaled), the seed's recipe G / rho(G) per square layer (and,
    for ReLU, times sqrt 2), PyTorch's ``nn.Linear`` default with its uniform bias, and for tanh
    the critical network of chapter "The backward pass": orthogonal at the critical sigma_w^2 for
    sigma_b^2 = ``CRITICAL_SIGMA_B2``.

    Examples
    --------
    >>> [c.name for c in contenders("relu")][:3]
    ['LeCun', 'Xavier', 'Kaiming']
    """
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    gain = ini.calculate_gain(activation)

    def kaiming(s: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
        return ini.kaiming_normal(s, nonlinearity=activation, rng=rng)

    def orthogonal(g: float) -> Callable[..., np.ndarray]:
        return lambda s, *, rng: ini.orthogonal(s, g, rng=rng)

    out = [
        Contender("LeCun", ini.lecun_normal),
        Contender("Xavier", ini.xavier_normal),
        Contender("Kaiming", kaiming),
        Contender("orthogonal", orthogonal(gain)),
        Contender("LSUV", orthogonal(1.0), lsuv=True),
        Contender("seed G/ρ(G)", _seed_recipe(1.0)),  # noqa: RUF001
    ]
    if activation == "relu":
        out.append(Contender("seed √2·G/ρ(G)", _seed_recipe(math.sqrt(2))))  # noqa: RUF001
    out.append(Contender("PyTorch default", ini.torch_linear_default, bias="torch"))
    if activation == "tanh":
        sw = math.sqrt(float(critical_sigma_w2(CRITICAL_SIGMA_B2)))
        out.append(Contender("critical orthogonal", orthogonal(sw), bias="critical"))
    return out


def build_contender(
    contender: Contender,
    sizes: Sequence[int],
    activation: str,
    *,
    seed: int,
    x_batch: np.ndarray,
    dtype: Any = np.float32,
) -> tuple[MLP, int]:
    """Build one network of `contender` from `seed`; return it and how many layers LSUV touched.

    The weights are drawn with ``numpy.random.default_rng(seed)``; LSUV rescales on `x_batch`
    with tolerance ``LSUV_TOL`` (at most 10 rescalings per layer).

    Examples
    --------
    >>> lsuv_contender = contenders("relu")[4]
    >>> x = np.random.default_rng(1).standard_normal((256, 8))
    >>> net, touched = build_contender(lsuv_contender, [8, 32, 32, 3], "relu", seed=0, x_batch=x)
    >>> lsuv_contender.name, net.sizes, touched
    ('LSUV', (8, 32, 32, 3), 3)
    """
    rng = np.random.default_rng(seed)
    net = MLP.create(sizes, activation, contender.init, rng=rng, dtype=dtype)
    if contender.bias != "zero":
        biases = []
        for W in net.weights:
            if contender.bias == "torch":
                bound = 1 / math.sqrt(W.shape[1])
                biases.append(rng.uniform(-bound, bound, W.shape[0]))
            else:
                biases.append(math.sqrt(CRITICAL_SIGMA_B2) * rng.standard_normal(W.shape[0]))
        net = net.with_parameters([W.copy() for W in net.weights], biases)
    touched = 0
    if contender.lsuv:
        result = lsuv(net, x_batch, tol=LSUV_TOL, max_iter=10)
        net, touched = result.network, int(np.count_nonzero(result.iterations))
    return net, touched


def networks(
    data: Dataset,
    activation: str,
    pairs: Sequence[tuple[Contender, int]],
    sizes: Sequence[int],
    *,
    dtype: Any = np.float32,
) -> tuple[list[MLP], list[int]]:
    """Build the study's network for each (contender, seed) pair, and LSUV's touched-layer counts.

    Seed s draws the weights (:func:`build_contender`) and LSUV's batch: 256 training inputs
    chosen by ``numpy.random.default_rng(s)``. :func:`run_cell` builds its networks this way.
    """
    built = []
    for c, s in pairs:
        pick = np.random.default_rng(s).choice(len(data.x_train), 256, replace=False)
        built.append(
            build_contender(c, sizes, activation, seed=s, x_batch=data.x_train[pick], dtype=dtype)
        )
    return [b[0] for b in built], [b[1] for b in built]


@dataclass(frozen=True, eq=False)
class StudyCell:
    """The outcome of :func:`run_cell`.

    Attributes
    ----------
    names : tuple of str
        The contenders, in row order.
    lr_grid : numpy.ndarray, shape (n_lrs,)
        The learning rates of the sweep.
    sweep_val, sweep_diverged : numpy.ndarray, shape (contenders, n_lrs, sweep seeds)
        Best validation accuracy, and divergence, of every sweep run.
    chosen_lr : numpy.ndarray, shape (contenders,)
        The rate with the highest mean validation accuracy over the sweep seeds.
    val, test : numpy.ndarray, shape (contenders, seeds)
        Validation accuracy at the kept epoch, and test accuracy of the kept weights, at the
        chosen rate.
    best_epoch, diverged : numpy.ndarray, shape (contenders, seeds)
        The kept epoch, and whether the run diverged.
    val_curves : numpy.ndarray, shape (contenders, seeds, epochs + 1)
        Validation accuracy after every epoch (NaN after a divergence).
    initial_loss : numpy.ndarray, shape (contenders, seeds)
        The training loss before any update.
    lsuv_touched : numpy.ndarray, shape (contenders, seeds)
        How many layers LSUV rescaled (0 for the other contenders).
    """

    names: tuple[str, ...]
    lr_grid: np.ndarray
    sweep_val: np.ndarray
    sweep_diverged: np.ndarray
    chosen_lr: np.ndarray
    val: np.ndarray
    test: np.ndarray
    best_epoch: np.ndarray
    diverged: np.ndarray
    val_curves: np.ndarray
    initial_loss: np.ndarray
    lsuv_touched: np.ndarray


def run_cell(
    data: Dataset,
    activation: str,
    optimizer: str,
    *,
    depth: int,
    width: int,
    lr_grid: Sequence[float],
    sweep_seeds: Sequence[int],
    seeds: Sequence[int],
    epochs: int,
    batch_size: int = 64,
    dtype: Any = np.float32,
    names: Sequence[str] | None = None,
) -> StudyCell:
    """Run one cell of the study: a learning-rate sweep, then all `seeds` at each chosen rate.

    `sweep_seeds` must be a subset of `seeds`. The minibatch order of seed s uses seed
    ``1000 + s``; the LSUV batch is 256 training inputs drawn with seed s. `names` restricts the
    cell to some contenders.

    Examples
    --------
    >>> from eiginit.datasets import load_digits
    >>> data = load_digits(rng=np.random.default_rng(0))
    >>> cell = run_cell(data, "relu", "adam", depth=3, width=16, lr_grid=[1e-3, 1e-2],
    ...                 sweep_seeds=[0], seeds=[0, 1], epochs=2, names=["Kaiming"])
    >>> cell.names, cell.test.shape, float(cell.chosen_lr[0]) in (1e-3, 1e-2)
    (('Kaiming',), (1, 2), True)
    """
    found = contenders(activation)
    if names is not None:
        found = [c for c in found if c.name in names]
    sizes = [data.n_features] + [width] * (depth - 1) + [data.n_classes]

    def nets_for(pairs: list[tuple[Contender, int]]) -> tuple[list[MLP], list[int]]:
        return networks(data, activation, pairs, sizes, dtype=dtype)

    C, L, S = len(found), len(lr_grid), len(sweep_seeds)
    pairs = [(c, s) for c in found for _ in lr_grid for s in sweep_seeds]
    nets, _ = nets_for(pairs)
    lrs = [lr for _ in found for lr in lr_grid for _ in sweep_seeds]
    sweep = train_batched(nets, data, lrs=lrs, seeds=[1000 + s for _, s in pairs],
                          optimizer=optimizer, epochs=epochs, batch_size=batch_size)  # fmt: skip
    sweep_val = np.nan_to_num(sweep.best_val_accuracy, nan=0.0).reshape(C, L, S)
    sweep_div = sweep.diverged.reshape(C, L, S)
    chosen = np.asarray(lr_grid)[np.argmax(sweep_val.mean(axis=2), axis=1)]

    extra = [s for s in seeds if s not in sweep_seeds]
    pairs2 = [(c, s) for c in found for s in extra]
    nets2, _ = nets_for(pairs2)
    lrs2 = [chosen[i] for i in range(C) for _ in extra]
    more = train_batched(nets2, data, lrs=lrs2, seeds=[1000 + s for _, s in pairs2],
                         optimizer=optimizer, epochs=epochs, batch_size=batch_size)  # fmt: skip

    n_seeds = len(seeds)
    shape = (C, n_seeds)
    val, test, ep, div = (np.zeros(shape), np.zeros(shape), np.zeros(shape, int),
                          np.zeros(shape, bool))  # fmt: skip
    curves, loss0, touched = (
        np.zeros((C, n_seeds, epochs + 1)),
        np.zeros(shape),
        np.zeros(shape, int),
    )
    for i, c in enumerate(found):
        j_lr = int(np.flatnonzero(np.asarray(lr_grid) == chosen[i])[0])
        for k, s in enumerate(seeds):
            if s in sweep_seeds:
                res, r = sweep, (i * L + j_lr) * S + list(sweep_seeds).index(s)
            else:
                res, r = more, i * len(extra) + extra.index(s)
            val[i, k], test[i, k] = res.best_val_accuracy[r], res.test_accuracy[r]
            ep[i, k], div[i, k] = res.best_epoch[r], res.diverged[r]
            curves[i, k], loss0[i, k] = res.val_accuracy[r], res.train_loss[r, 0]
            touched[i, k] = nets_for([(c, s)])[1][0] if c.lsuv else 0
    return StudyCell(tuple(c.name for c in found), np.asarray(lr_grid, float), sweep_val,
                     sweep_div, chosen, val, test, ep, div, curves, loss0, touched)  # fmt: skip
