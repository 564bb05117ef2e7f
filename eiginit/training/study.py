r"""The training study of chapter "Does it train?": its settings, contenders and cells.

A *cell* is one dataset, one activation, one optimizer and one depth. In a cell every
initialization ("contender") is trained under the comparison protocol of
:mod:`eiginit.training.protocol`:

1. on a log grid of learning rates, with the sweep's seeds; the rate with the best mean
   validation accuracy is chosen per contender by :func:`eiginit.training.protocol.choose_rate`,
   which
   adds a rate beyond the grid's edge (up to ``MAX_WIDEN`` times) when the best sits on one;
2. with FRESH seeds at its chosen rate: the final seeds are never sweep seeds, so the choice of
   the rate does not flatter the scores it is judged by.

Seeds are independent across contenders too: seed ``s`` of contender ``c`` draws its weights,
its LSUV batch and its minibatch order from three streams of ``numpy.random.SeedSequence``
keyed by ``(s, crc32(c.name))`` (``streams``), so no two runs of a cell share a draw.
Every run keeps the weights of its best validation epoch (early stopping on validation); the test
set is evaluated once per run, on those. Every stage trains through :func:`eiginit.fit`
(:class:`eiginit.training.engine.MLPModel`, one optimizer,
:class:`eiginit.training.engine.FitResult`).

The whole study (``STUDY``, every cell of ``cells()``) takes tens of minutes, so
``nox -s study`` runs it and stores each cell in ``eiginit/data/training-study/``: the arrays of
:class:`StudyCell` (``<cell>.npz``) and a record (``<cell>.json``) of everything that produced
them, ``manifest(cell)`` (the settings, every contender's weight rule, gain, bias rule and LSUV
tolerance, the constants, the versions of numpy and eiginit), and a *brief run*
(``brief_run``: the first epoch of the first final seed of every contender, the same code path).
The chapter calls ``check_stored``, which recomputes both from the code, replays every rate choice
through :func:`eiginit.training.protocol.choose_rate` on the stored sweep, and fails, naming what
changed,
when the stored results no longer come from this code.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eiginit._checks import _describe, check_int, check_positive_float
from eiginit.datasets import Dataset, load_digits, load_mnist1d
from eiginit.models import initializers as ini
from eiginit.models.network import MLP
from eiginit.theory.meanfield import critical_sigma_w2
from eiginit.theory.propagation import activation_function, gaussian_expectation
from eiginit.training import protocol
from eiginit.training.engine import FitResult, MLPModel, fit
from eiginit.training.first_steps import lsuv

__all__ = [
    "BRIEF",
    "CRITICAL_SIGMA_B2",
    "LSUV_BATCH",
    "LSUV_MAX_ITER",
    "LSUV_TOL",
    "MAX_WIDEN",
    "OPTIMIZER_OPTIONS",
    "SMOOTH_CRITICAL_SIGMA_B2",
    "STUDY",
    "Contender",
    "StudyCell",
    "StudyDriftError",
    "brief_run",
    "build_contender",
    "cell_settings",
    "cells",
    "check_stored",
    "contenders",
    "load_dataset",
    "manifest",
    "networks",
    "record",
    "replay_choice",
    "run_cell",
    "streams",
    "unit_variance_sigma_w2",
    "work",
]

#: The bias variance of chapter "The backward pass"'s critical tanh network (a small q*).
CRITICAL_SIGMA_B2 = 5e-6

#: GELU and SiLU have no critical line at a small bias (chapter "The backward pass"): the bias
#: variance of their critical contender, where the line exists (0.3 is the chapter's GELU value;
#: SiLU needs more, and 0.7 is the first tenth with a line).
SMOOTH_CRITICAL_SIGMA_B2 = {"gelu": 0.3, "silu": 0.7}

#: LSUV's tolerance here: small enough that almost every layer is rescaled at least once.
LSUV_TOL = 0.01

#: The most rescalings LSUV makes per layer.
LSUV_MAX_ITER = 10

#: How many training inputs LSUV measures the variances on (all of them if there are fewer).
LSUV_BATCH = 256

#: How many rates :func:`eiginit.training.protocol.choose_rate` may add beyond an edge of the grid.
MAX_WIDEN = 2

#: The optimizers' options the study passes to :func:`eiginit.fit`.
OPTIMIZER_OPTIONS: dict[str, dict[str, Any]] = {
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8},
    "sgd": {"momentum": 0.9},
}

#: The settings of the study that ``nox -s study`` runs (``booktools/training_study.py``).
STUDY: dict[str, Any] = {
    "depth": 12,
    "width": 64,
    "batch_size": 64,
    # Seeds 0 and 1 choose the rate; the final runs use seeds 100, 101, ... (never a sweep seed).
    "sweep_seeds": (0, 1),
    "seeds": tuple(range(100, 120)),
    # Half-decade grids (log-uniform, so a widened rate is one more half-decade).
    "lr_grid": {
        "adam": (10**-3.5, 10**-3.0, 10**-2.5),
        "sgd": (10**-2.0, 10**-1.5, 10**-1.0),
    },
    "epochs": {"digits": 20, "mnist1d": 15},
    # The "-shallow" cell: two hidden layers, trained longer and with a higher rate grid, for the
    # published anchor (Greydanus 2020's MLP on MNIST-1D).
    "shallow": {"depth": 3, "epochs": 60, "lr_grid": (10**-3.0, 10**-2.5, 10**-2.0)},
    # Both datasets are split with numpy.random.default_rng(split_seed).
    "split_seed": 0,
    "dtype": "float32",
}

#: The brief run that :func:`check_stored` repeats at build time: the first final seed of every
#: contender of every cell, at its stored learning rate, for this many epochs.
BRIEF: dict[str, int] = {"epochs": 1}

_WEIGHT_RULES = (
    "lecun_normal",
    "xavier_normal",
    "orthogonal",
    "spectral_radius_normal",
    "torch_linear_default",
)
_BIAS_RULES = ("zero", "torch", "normal")


@dataclass(frozen=True)
class Contender:
    r"""One initialization, described by data: its weight rule, gain, bias rule and LSUV.

    Attributes
    ----------
    name : str
    weights : str
        How each ``(fan_out, fan_in)`` matrix is drawn (by the method ``init``):

        - ``"lecun_normal"``: :math:`N(0, \mathrm{gain}^2/\mathrm{fan\_in})` (LeCun with gain 1,
          Kaiming's normal with the activation's gain);
        - ``"xavier_normal"``: :math:`N(0, 2\,\mathrm{gain}^2/(\mathrm{fan\_in} +
          \mathrm{fan\_out}))`;
        - ``"orthogonal"``: gain times a Haar-random orthogonal matrix;
        - ``"spectral_radius_normal"``: the seed's recipe, gain times :math:`G/\rho(G)` for a
          square layer, ``"lecun_normal"`` for the first and last (eigenvalues need a square
          matrix);
        - ``"torch_linear_default"``: ``nn.Linear``'s uniform weights (gain must be 1).
    gain : float, default 1
    bias : str, default "zero"
        ``"zero"``, ``"torch"`` (uniform in :math:`\pm 1/\sqrt{\mathrm{fan\_in}}`, as
        ``nn.Linear``) or ``"normal"`` (:math:`N(0, \mathrm{bias\_variance})`).
    bias_variance : float, default 0
        The variance of the ``"normal"`` bias (0 for the other rules).
    lsuv_tol : float or None, default None
        If set, LSUV (Mishkin & Matas 2016) rescales the layers afterwards on a batch of
        training data, with this tolerance.
    lsuv_max_iter : int, default 10
        LSUV's most rescalings per layer.
    """

    name: str
    weights: str
    gain: float = 1.0
    bias: str = "zero"
    bias_variance: float = 0.0
    lsuv_tol: float | None = None
    lsuv_max_iter: int = LSUV_MAX_ITER

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {_describe(self.name)}")
        if self.weights not in _WEIGHT_RULES:
            raise ValueError(f"weights must be one of {_WEIGHT_RULES}, got {self.weights!r}")
        check_positive_float(self.gain, "gain")
        if self.weights == "torch_linear_default" and self.gain != 1:
            raise ValueError(f"torch_linear_default takes no gain, got gain={self.gain}")
        if self.bias not in _BIAS_RULES:
            raise ValueError(f"bias must be one of {_BIAS_RULES}, got {self.bias!r}")
        if self.bias == "normal":
            check_positive_float(self.bias_variance, "bias_variance")
        elif self.bias_variance != 0:
            raise ValueError(f"bias_variance is for bias='normal' only, got {self.bias_variance}")
        if self.lsuv_tol is not None:
            check_positive_float(self.lsuv_tol, "lsuv_tol")
        check_int(self.lsuv_max_iter, "lsuv_max_iter", minimum=1)

    @property
    def lsuv(self) -> bool:
        """Whether LSUV rescales the network after it is drawn."""
        return self.lsuv_tol is not None

    def init(self, shape: tuple[int, int], *, rng: np.random.Generator) -> np.ndarray:
        """Draw one ``(fan_out, fan_in)`` weight matrix by ``weights`` and ``gain``."""
        if self.weights == "lecun_normal":
            return ini.lecun_normal(shape, self.gain, rng=rng)
        if self.weights == "xavier_normal":
            return ini.xavier_normal(shape, self.gain, rng=rng)
        if self.weights == "orthogonal":
            return ini.orthogonal(shape, self.gain, rng=rng)
        if self.weights == "spectral_radius_normal":
            if shape[0] != shape[1]:  # eigenvalues need a square matrix: first and last layer
                return ini.lecun_normal(shape, self.gain, rng=rng)
            return self.gain * ini.spectral_radius_normal(shape, rng=rng)
        return ini.torch_linear_default(shape, rng=rng)

    def describe(self) -> dict[str, Any]:
        """Return the contender as plain data (what ``manifest`` stores)."""
        return asdict(self)


def unit_variance_sigma_w2(activation: str) -> float:
    r"""Return :math:`\sigma_w^2 = 1/\mathbb{E}[\phi(z)^2]`, :math:`z \sim N(0, 1)`.

    The weight variance that makes unit variance a fixed point of the length map without bias
    (chapter "The backward pass"); for ReLU it is Kaiming's 2.

    Examples
    --------
    >>> round(unit_variance_sigma_w2("relu"), 6)
    2.0
    """
    phi = activation_function(activation)[0]
    return 1.0 / float(gaussian_expectation(lambda h: phi(h) ** 2, 1.0))


def contenders(activation: str) -> list[Contender]:
    """Return the initializations the study trains for an activation (relu, tanh, gelu, silu).

    ReLU and tanh: LeCun, Xavier (gain 1), Kaiming and orthogonal (PyTorch's gain for the
    activation), LSUV (orthogonal with gain 1, then rescaled with tolerance ``LSUV_TOL``), the
    seed's recipe G / rho(G) per square layer (and, for ReLU, times sqrt 2), PyTorch's
    ``nn.Linear`` default with its uniform bias, and for tanh the critical network of chapter
    "The backward pass": orthogonal at the critical sigma_w^2 for sigma_b^2 =
    ``CRITICAL_SIGMA_B2``, and its control, orthogonal with gain 1 and no bias.

    GELU and SiLU (PyTorch's ``calculate_gain`` has no entry for them): LeCun, Kaiming and
    orthogonal with ReLU's gain sqrt 2 (what a practitioner reaches for), Gaussian weights at
    ``unit_variance_sigma_w2``, the critical orthogonal network at the bias
    ``SMOOTH_CRITICAL_SIGMA_B2[activation]`` (:func:`eiginit.critical_sigma_w2`), and PyTorch's
    default.

    Examples
    --------
    >>> [c.name for c in contenders("relu")][:3]
    ['LeCun', 'Xavier', 'Kaiming']
    >>> contenders("relu")[2].weights, round(contenders("relu")[2].gain ** 2, 12)
    ('lecun_normal', 2.0)
    >>> [c.name for c in contenders("gelu")]
    ['LeCun', 'Kaiming', 'orthogonal', 'unit variance', 'critical orthogonal', 'PyTorch default']
    """
    if activation in ("gelu", "silu"):
        sb2 = SMOOTH_CRITICAL_SIGMA_B2[activation]
        sw = math.sqrt(float(critical_sigma_w2(sb2, activation)))
        return [
            Contender("LeCun", "lecun_normal"),
            Contender("Kaiming", "lecun_normal", math.sqrt(2)),
            Contender("orthogonal", "orthogonal", math.sqrt(2)),
            Contender("unit variance", "lecun_normal",
                      math.sqrt(unit_variance_sigma_w2(activation))),
            Contender("critical orthogonal", "orthogonal", sw, bias="normal", bias_variance=sb2),
            Contender("PyTorch default", "torch_linear_default", bias="torch"),
        ]  # fmt: skip
    if activation not in ("relu", "tanh"):
        raise ValueError(
            f"activation must be 'relu', 'tanh', 'gelu' or 'silu', got {_describe(activation)}"
        )
    gain = ini.calculate_gain(activation)
    out = [
        Contender("LeCun", "lecun_normal"),
        Contender("Xavier", "xavier_normal"),
        Contender("Kaiming", "lecun_normal", gain),
        Contender("orthogonal", "orthogonal", gain),
        Contender("LSUV", "orthogonal", 1.0, lsuv_tol=LSUV_TOL, lsuv_max_iter=LSUV_MAX_ITER),
        Contender("seed G/ρ(G)", "spectral_radius_normal"),  # noqa: RUF001
    ]
    if activation == "relu":
        out.append(Contender("seed √2·G/ρ(G)", "spectral_radius_normal", math.sqrt(2)))  # noqa: RUF001
    out.append(Contender("PyTorch default", "torch_linear_default", bias="torch"))
    if activation == "tanh":
        sw = math.sqrt(float(critical_sigma_w2(CRITICAL_SIGMA_B2)))
        out.append(
            Contender(
                "critical orthogonal", "orthogonal", sw, bias="normal",
                bias_variance=CRITICAL_SIGMA_B2,
            )
        )  # fmt: skip
        # The control for the critical network: the same kind of matrix at gain 1, no bias.
        out.append(Contender("orthogonal, gain 1", "orthogonal", 1.0))
    return out


def streams(contender: Contender | str, seed: int) -> tuple[int, int, int]:
    """Return the three seeds of run `seed` of `contender`: weights, LSUV batch, minibatch order.

    Each is a 64-bit integer from ``numpy.random.SeedSequence([seed, crc32(name), k])`` for
    k = 0, 1, 2, so two contenders (or two seeds) never share a draw.

    Examples
    --------
    >>> a, b = streams("LeCun", 0), streams("Kaiming", 0)
    >>> len(set(a + b))
    6
    """
    name = contender.name if isinstance(contender, Contender) else contender
    if not isinstance(name, str):
        raise TypeError(f"contender must be an eiginit.Contender or a name, got {_describe(name)}")
    seed = check_int(seed, "seed")
    key = zlib.crc32(name.encode("utf-8"))
    return tuple(  # type: ignore[return-value]
        int(np.random.SeedSequence([seed, key, k]).generate_state(1, dtype=np.uint64)[0])
        for k in range(3)
    )


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

    The weights are drawn with ``numpy.random.default_rng(seed)``, then the biases with the same
    generator; LSUV rescales on `x_batch` with the contender's tolerance. (``networks`` passes
    the weight stream of ``streams`` as `seed`.)

    Examples
    --------
    >>> lsuv_contender = contenders("relu")[4]
    >>> x = np.random.default_rng(1).standard_normal((256, 8))
    >>> net, touched = build_contender(lsuv_contender, [8, 32, 32, 3], "relu", seed=0, x_batch=x)
    >>> lsuv_contender.name, net.sizes, touched
    ('LSUV', (8, 32, 32, 3), 3)
    """
    if not isinstance(contender, Contender):
        raise TypeError(f"contender must be an eiginit.Contender, got {_describe(contender)}")
    seed = check_int(seed, "seed", maximum=2**64 - 1)
    rng = np.random.default_rng(seed)
    net = MLP.create(sizes, activation, contender.init, rng=rng, dtype=dtype)
    if contender.bias != "zero":
        biases = []
        for W in net.weights:
            if contender.bias == "torch":
                bound = 1 / math.sqrt(W.shape[1])
                biases.append(rng.uniform(-bound, bound, W.shape[0]))
            else:
                biases.append(math.sqrt(contender.bias_variance) * rng.standard_normal(W.shape[0]))
        net = net.with_parameters([W.copy() for W in net.weights], biases)
    touched = 0
    if contender.lsuv:
        result = lsuv(net, x_batch, tol=contender.lsuv_tol, max_iter=contender.lsuv_max_iter)
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

    Seed s of contender c draws the weights from the first of ``streams`` ``(c, s)`` and
    LSUV's batch, ``LSUV_BATCH`` training inputs (all of them if there are fewer), from the
    second. :func:`run_cell` builds its networks this way.
    """
    n = len(data.x_train)
    built = []
    for c, s in pairs:
        weights, batch, _ = streams(c, s)
        pick = np.random.default_rng(batch).choice(n, min(LSUV_BATCH, n), replace=False)
        built.append(
            build_contender(
                c, sizes, activation, seed=weights, x_batch=data.x_train[pick], dtype=dtype
            )
        )
    return [b[0] for b in built], [b[1] for b in built]


def _accuracy(model: MLPModel, params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Each replica's accuracy of `params` on (x, y); a non-finite output counts as wrong."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = model.predict(list(params), np.asarray(x, params[0].dtype))
    finite = np.all(np.isfinite(z), axis=2)
    right = np.argmax(np.where(np.isfinite(z), z, -np.inf), axis=2) == np.asarray(y)[None, :]
    return np.mean(finite & right, axis=1)


#: Replicas per call of :func:`eiginit.fit` (larger stacks gain nothing at these sizes).
_CHUNK = 32


def work(data: Dataset, depth: int, replicas: int, epochs: int) -> float:
    """Return the study's unit of work for `replicas` runs: training rows x depth x epochs.

    Only for the progress bar of ``nox -s study``: the time of a run grows about linearly in each.
    """
    return float(len(data.x_train) * depth * replicas * epochs)


def _train(
    data: Dataset,
    activation: str,
    optimizer: str,
    pairs: Sequence[tuple[Contender, int]],
    lrs: Sequence[float],
    sizes: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    dtype: Any,
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Train the (contender, seed) pairs at their rates with :func:`eiginit.fit`.

    Returns per run: ``train_loss`` and ``val_accuracy`` (epochs + 1 columns), ``best_val``,
    ``test``, ``best_epoch``, ``diverged``; and LSUV's touched-layer counts.
    """
    nets, touched = networks(data, activation, pairs, sizes, dtype=dtype)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(nets), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        model, params = MLPModel.from_networks(nets[chunk], dtype=dtype)
        result: FitResult = fit(
            model, params, data, lr=list(lrs[chunk]),
            seeds=[streams(c, s)[2] for c, s in pairs[chunk]], optimizer=optimizer,
            epochs=epochs, batch_size=batch_size, metric="accuracy",
            **OPTIMIZER_OPTIONS[optimizer],
        )  # fmt: skip
        parts.append(
            {
                "train_loss": result.train_loss,
                "val_accuracy": result.val_metric,
                "best_val": result.best_value,
                "test": _accuracy(model, result.params, data.x_test, data.y_test),
                "best_epoch": result.best_epoch,
                "diverged": result.diverged,
            }
        )
        if progress is not None:
            progress(work(data, len(sizes) - 1, result.replicas, epochs))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, touched


@dataclass(frozen=True, eq=False)
class StudyCell:
    """The outcome of :func:`run_cell`.

    Attributes
    ----------
    names : tuple of str
        The contenders, in row order.
    lr_grid : numpy.ndarray, shape (n_lrs,)
        The learning rates of the sweep before any widening.
    sweep_lr : numpy.ndarray, shape (contenders, n_lrs + MAX_WIDEN)
        The rates each contender's sweep evaluated, increasing, NaN-padded on the right.
    sweep_val, sweep_diverged : numpy.ndarray, shape (contenders, n_lrs + MAX_WIDEN, sweep seeds)
        Best validation accuracy (NaN for a diverged run, and for padding), and divergence, of
        every sweep run.
    chosen_lr : numpy.ndarray, shape (contenders,)
        The rate :func:`eiginit.training.protocol.choose_rate` chose.
    widened : numpy.ndarray of int, shape (contenders,)
        How many rates it added beyond an edge.
    on_edge : numpy.ndarray of bool, shape (contenders,)
        Whether the choice still sits on an edge after widening.
    val, test : numpy.ndarray, shape (contenders, seeds)
        Validation accuracy at the kept epoch, and test accuracy of the kept weights, of the final
        (fresh) seeds at the chosen rate.
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
    sweep_lr: np.ndarray
    sweep_val: np.ndarray
    sweep_diverged: np.ndarray
    chosen_lr: np.ndarray
    widened: np.ndarray
    on_edge: np.ndarray
    val: np.ndarray
    test: np.ndarray
    best_epoch: np.ndarray
    diverged: np.ndarray
    val_curves: np.ndarray
    initial_loss: np.ndarray
    lsuv_touched: np.ndarray


def _seed_list(value: Any, name: str) -> list[int]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a sequence of non-negative integers, got {_describe(value)}"
        )
    seeds = [check_int(s, f"each of {name}") for s in value]
    if not seeds:
        raise ValueError(f"{name} must hold at least one seed, got none")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must not repeat a seed, got {seeds}")
    return seeds


def _check_cell_arguments(
    data: Any, optimizer: Any, lr_grid: Any, sweep_seeds: Any, seeds: Any
) -> tuple[list[float], list[int], list[int]]:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an eiginit.Dataset, got {_describe(data)}")
    if data.x_val is None or data.y_val is None:
        raise ValueError(
            f"data ({data.name!r}) has no validation split: run_cell chooses each learning rate "
            "and stopping epoch on validation accuracy, never on test data; give data x_val and "
            "y_val (eiginit.load_digits and eiginit.load_mnist1d hold one out)"
        )
    if optimizer not in OPTIMIZER_OPTIONS:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {_describe(optimizer)}")
    if isinstance(lr_grid, str | bytes) or not isinstance(lr_grid, Sequence | np.ndarray):
        raise TypeError(f"lr_grid must be a sequence of learning rates, got {_describe(lr_grid)}")
    grid = [check_positive_float(lr, "each learning rate of lr_grid") for lr in lr_grid]
    if len(grid) < 2:
        raise ValueError(
            f"lr_grid must hold at least two learning rates (the protocol widens from an edge), "
            f"got {grid}"
        )
    if len(set(grid)) != len(grid):
        raise ValueError(f"lr_grid must not repeat a rate, got {grid}")
    sweep, final = _seed_list(sweep_seeds, "sweep_seeds"), _seed_list(seeds, "seeds")
    reused = [s for s in sweep if s in final]
    if reused:
        raise ValueError(
            f"seeds must be fresh: the final runs must not reuse a sweep seed (the choice of the "
            f"rate would flatter them), but {reused} are in both sweep_seeds and seeds"
        )
    return sorted(grid), sweep, final


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
    max_widen: int = MAX_WIDEN,
    progress: Callable[[float], None] | None = None,
) -> StudyCell:
    """Run one cell of the study: a rate sweep with widening, then fresh `seeds` at each choice.

    `data` must have a validation split (the rates and the stopping epochs are chosen on it).
    The network has `depth` weight layers (>= 1): ``depth - 1`` hidden layers of `width`.
    Every contender is swept over `lr_grid` with `sweep_seeds` (all contenders in one batch of
    :func:`eiginit.fit` calls); :func:`eiginit.training.protocol.choose_rate` picks the best mean
    validation accuracy and, on an edge, trains one more rate beyond it (up to `max_widen`
    times). Then every contender trains `seeds`, which must not repeat a sweep seed, at its
    chosen rate. Seeds come from ``streams``. `names` restricts the cell to some contenders;
    `progress(work)` is called after every :func:`eiginit.fit` call with the ``work`` done.

    Raises
    ------
    TypeError, ValueError
        For data without a validation split, an unknown activation, optimizer or contender name,
        ``depth < 1``, a width, epoch count or batch size < 1, a rate grid with fewer than two
        rates or a non-positive one, or seeds that are empty, repeated, negative or shared
        between the sweep and the final runs.

    Examples
    --------
    >>> from eiginit.datasets import load_digits
    >>> data = load_digits(rng=np.random.default_rng(0))
    >>> cell = run_cell(data, "relu", "adam", depth=3, width=16, lr_grid=[1e-3, 1e-2],
    ...                 sweep_seeds=[0], seeds=[1, 2], epochs=2, names=["Kaiming"])
    >>> cell.names, cell.test.shape, cell.sweep_lr.shape
    (('Kaiming',), (1, 2), (1, 4))
    """
    lr_grid, sweep_seeds, seeds = _check_cell_arguments(
        data, optimizer, lr_grid, sweep_seeds, seeds
    )
    found = contenders(activation)
    depth = check_int(depth, "depth", minimum=1)
    width = check_int(width, "width", minimum=1)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    max_widen = check_int(max_widen, "max_widen")
    if names is not None:
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise TypeError(f"names must be a sequence of contender names, got {_describe(names)}")
        known = [c.name for c in found]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ValueError(
                f"names must name contenders of {activation!r}, got {list(names)!r}; the "
                f"contenders are {known}"
            )
        found = [c for c in found if c.name in names]
    sizes = [data.n_features] + [width] * (depth - 1) + [data.n_classes]

    def train(pairs: list[tuple[Contender, int]], lrs: list[float]):
        return _train(data, activation, optimizer, pairs, lrs, sizes, epochs=epochs,
                      batch_size=batch_size, dtype=dtype, progress=progress)  # fmt: skip

    # Stage 1: the grid for every contender at once; the widening, contender by contender.
    C, S = len(found), len(sweep_seeds)
    pairs = [(c, s) for c in found for _ in lr_grid for s in sweep_seeds]
    base, _ = train(pairs, [lr for _ in found for lr in lr_grid for _ in sweep_seeds])
    sweep: list[dict[float, tuple[np.ndarray, np.ndarray]]] = []
    for i in range(C):
        rows = {}
        for j, lr in enumerate(lr_grid):
            at = slice((i * len(lr_grid) + j) * S, (i * len(lr_grid) + j + 1) * S)
            div = base["diverged"][at]
            rows[lr] = (np.where(div, np.nan, base["best_val"][at]), div)
        sweep.append(rows)

    # choose_rate asks for one rate beyond an edge at a time. Every contender's choice is replayed
    # from the runs trained so far; the rates they ask for next are trained together, and the
    # choices replayed again, until none asks for more (the same runs as one contender at a time).
    class _Missing(Exception):
        pass

    def choose(i: int) -> protocol.RateChoice:
        def evaluate(rates: list[float]) -> np.ndarray:
            missing = [lr for lr in rates if lr not in sweep[i]]
            if missing:
                raise _Missing(missing)
            return np.stack([sweep[i][lr][0] for lr in rates])

        return protocol.choose_rate(evaluate, lr_grid, max_widen=max_widen)

    while True:
        asked: list[tuple[int, float]] = []
        for i in range(C):
            try:
                choose(i)
            except _Missing as missing:
                asked += [(i, lr) for lr in missing.args[0]]
        if not asked:
            break
        more, _ = train([(found[i], s) for i, _ in asked for s in sweep_seeds],
                        [lr for _, lr in asked for _ in sweep_seeds])  # fmt: skip
        for k, (i, lr) in enumerate(asked):
            at = slice(k * S, (k + 1) * S)
            sweep[i][lr] = (np.where(more["diverged"][at], np.nan, more["best_val"][at]),
                            more["diverged"][at])  # fmt: skip
    choices = [choose(i) for i in range(C)]
    G = len(lr_grid) + max_widen
    sweep_lr = np.full((C, G), np.nan)
    sweep_val = np.full((C, G, S), np.nan)
    sweep_div = np.zeros((C, G, S), bool)
    for i, choice in enumerate(choices):
        for j, lr in enumerate(choice.grid):
            sweep_lr[i, j] = lr
            sweep_val[i, j], sweep_div[i, j] = sweep[i][lr]
    chosen = np.array([ch.chosen for ch in choices])

    # Stage 2: fresh seeds at the chosen rates.
    final, touched = train([(c, s) for c in found for s in seeds],
                           [chosen[i] for i in range(C) for _ in seeds])  # fmt: skip
    N = len(seeds)

    def grid(key: str) -> np.ndarray:
        return final[key].reshape((C, N, *final[key].shape[1:]))

    return StudyCell(
        names=tuple(c.name for c in found),
        lr_grid=np.asarray(lr_grid, float),
        sweep_lr=sweep_lr,
        sweep_val=sweep_val,
        sweep_diverged=sweep_div,
        chosen_lr=chosen,
        widened=np.array([ch.widened for ch in choices]),
        on_edge=np.array([ch.on_edge for ch in choices]),
        val=grid("best_val"),
        test=grid("test"),
        best_epoch=grid("best_epoch"),
        diverged=grid("diverged"),
        val_curves=grid("val_accuracy"),
        initial_loss=grid("train_loss")[:, :, 0],
        lsuv_touched=np.asarray(touched).reshape(C, N),
    )


def replay_choice(cell: Mapping[str, np.ndarray], row: int) -> protocol.RateChoice:
    """Replay row `row`'s rate choice (:func:`eiginit.choose_rate`) on the stored sweep.

    Raises
    ------
    KeyError
        If the choice asks for a rate the stored sweep did not train.
    """
    rates = cell["sweep_lr"][row]
    stored = {float(lr): cell["sweep_val"][row, j] for j, lr in enumerate(rates) if lr == lr}

    def evaluate(asked: list[float]) -> np.ndarray:
        out = []
        for lr in asked:
            match = [r for r in stored if math.isclose(r, lr, rel_tol=1e-9)]
            if not match:
                raise KeyError(f"rate {lr:.6g} was not trained in the stored sweep")
            out.append(stored[match[0]])
        return np.stack(out)

    return protocol.choose_rate(evaluate, [float(v) for v in cell["lr_grid"]], max_widen=MAX_WIDEN)


# --- The stored study, and the check that it still comes from this code ---------------------


class StudyDriftError(AssertionError):
    """The stored results of the training study no longer match the code that should make them."""


_REFRESH = (
    "The stored results no longer come from this code. Refresh them with `nox -s study` "
    "(tens of minutes; `nox -s study -- CELL ...` runs only the cells named) and commit "
    "eiginit/data/training-study/."
)


def cells() -> list[str]:
    """Return the names of every cell: ``dataset-activation-optimizer``, and one ``-shallow``.

    The deep ReLU and tanh cells cover both datasets and both optimizers; SiLU and GELU get one
    cell each, MNIST-1D with Adam, the study's harder dataset and the optimizer they are usually
    trained with (a full grid would double the study's time).
    """
    deep = [f"{d}-{a}-{o}" for d in ("mnist1d", "digits") for a in ("relu", "tanh")
            for o in ("adam", "sgd")]  # fmt: skip
    return [*deep, "mnist1d-relu-adam-shallow", "mnist1d-silu-adam", "mnist1d-gelu-adam"]


def cell_settings(cell: str) -> dict[str, Any]:
    """Return every setting of `cell` (one of :func:`cells`): :data:`STUDY` and the constants.

    Examples
    --------
    >>> s = cell_settings("digits-tanh-sgd")
    >>> s["depth"], s["epochs"], [round(lr, 4) for lr in s["lr_grid"]], s["optimizer_options"]
    (12, 20, [0.01, 0.0316, 0.1], {'momentum': 0.9})
    """
    if cell not in cells():
        raise ValueError(f"cell must be one of {cells()}, got {_describe(cell)}")
    dataset, activation, optimizer, *shallow = cell.split("-")
    part = STUDY["shallow"] if shallow else {}
    return {
        "dataset": dataset,
        "split_seed": STUDY["split_seed"],
        "activation": activation,
        "optimizer": optimizer,
        "optimizer_options": dict(OPTIMIZER_OPTIONS[optimizer]),
        "depth": part.get("depth", STUDY["depth"]),
        "width": STUDY["width"],
        "batch_size": STUDY["batch_size"],
        "epochs": part.get("epochs", STUDY["epochs"][dataset]),
        "lr_grid": tuple(part.get("lr_grid", STUDY["lr_grid"][optimizer])),
        "sweep_seeds": tuple(STUDY["sweep_seeds"]),
        "seeds": tuple(STUDY["seeds"]),
        "dtype": STUDY["dtype"],
        "lsuv_batch": LSUV_BATCH,
        "max_widen": MAX_WIDEN,
    }


def load_dataset(name: str, split_seed: int | None = None) -> Dataset:
    """Return the dataset `name` (``"digits"`` or ``"mnist1d"``) split as the study splits it."""
    seed = STUDY["split_seed"] if split_seed is None else check_int(split_seed, "split_seed")
    rng = np.random.default_rng(seed)
    if name == "digits":
        return load_digits(rng=rng)
    if name == "mnist1d":
        return load_mnist1d(rng=rng)
    raise ValueError(f"name must be 'digits' or 'mnist1d', got {_describe(name)}")


def manifest(cell: str) -> dict[str, Any]:
    """Describe everything that produces `cell`'s stored results, as plain (JSON) data.

    The settings (:func:`cell_settings`), every contender (:meth:`Contender.describe`: weight rule,
    gain, bias rule and variance, LSUV tolerance), the study's constants, and the versions of
    numpy and eiginit. :func:`check_stored` compares it, field by field, with the stored one.
    """
    import eiginit  # the package is fully imported by the time this runs

    settings = cell_settings(cell)
    return _plain(
        {
            "cell": cell,
            "settings": settings,
            "contenders": [c.describe() for c in contenders(settings["activation"])],
            "constants": {
                "CRITICAL_SIGMA_B2": CRITICAL_SIGMA_B2,
                "LSUV_TOL": LSUV_TOL,
                "LSUV_MAX_ITER": LSUV_MAX_ITER,
                "LSUV_BATCH": LSUV_BATCH,
                "SMOOTH_CRITICAL_SIGMA_B2": SMOOTH_CRITICAL_SIGMA_B2,
                "MAX_WIDEN": MAX_WIDEN,
            },
            "brief": dict(BRIEF),
            "versions": {"numpy": np.__version__, "eiginit": eiginit.__version__},
        }
    )


def _plain(value: Any) -> Any:
    """Return `value` as JSON gives it back (tuples become lists, numpy scalars Python ones)."""
    return json.loads(json.dumps(value, default=lambda v: v.item()))


def brief_run(data: Dataset, cell: str, chosen_lr: Sequence[float]) -> dict[str, Any]:
    """Repeat the start of `cell`: its first final seed of every contender, ``BRIEF["epochs"]``.

    Each contender trains at its rate in `chosen_lr` through the code path of :func:`run_cell`
    (same networks, minibatch seeds, optimizer options and batch size). Returns the training loss
    before and during each epoch and the validation accuracy after each, one list per contender:
    the stored study holds the same numbers for that seed (its first columns).
    """
    settings = cell_settings(cell)
    found = contenders(settings["activation"])
    rates = [check_positive_float(lr, "chosen_lr") for lr in chosen_lr]
    if len(rates) != len(found):
        raise ValueError(f"chosen_lr must hold one rate per contender ({len(found)}), got {rates}")
    sizes = [data.n_features] + [settings["width"]] * (settings["depth"] - 1) + [data.n_classes]
    seed = settings["seeds"][0]
    result, touched = _train(
        data, settings["activation"], settings["optimizer"],
        [(c, seed) for c in found], rates, sizes, epochs=BRIEF["epochs"],
        batch_size=settings["batch_size"], dtype=np.dtype(settings["dtype"]),
    )  # fmt: skip
    return _plain(
        {
            "seed": seed,
            "epochs": BRIEF["epochs"],
            "lr": rates,
            "train_loss": result["train_loss"].tolist(),
            "val_accuracy": result["val_accuracy"].tolist(),
            "lsuv_touched": touched,
        }
    )


def record(cell: str, data: Dataset, chosen_lr: Sequence[float]) -> dict[str, Any]:
    """Return what ``nox -s study`` stores beside `cell`'s arrays.

    That is :func:`manifest` and the :func:`brief_run` at the chosen rates.
    """
    return {**manifest(cell), "brief_run": brief_run(data, cell, chosen_lr)}


def _differences(stored: Any, now: Any, path: str) -> list[str]:
    """List the fields where `stored` and `now` differ, as 'path: stored X, code Y'."""
    if isinstance(stored, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(stored) | set(now), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in now:
                out.append(f"{where}: stored {stored[key]!r}, no longer in the code")
            elif key not in stored:
                out.append(f"{where}: not stored, code {now[key]!r}")
            else:
                out += _differences(stored[key], now[key], where)
        return out
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now):
        out = []
        for i, (a, b) in enumerate(zip(stored, now, strict=True)):
            name = b.get("name") if isinstance(b, dict) else None
            out += _differences(a, b, f"{path}[{name!r}]" if name else f"{path}[{i}]")
        return out
    same = (
        math.isclose(stored, now, rel_tol=1e-9)
        if isinstance(stored, float) and isinstance(now, float)
        else stored == now
    )
    return [] if same else [f"{path}: stored {stored!r}, code {now!r}"]


def _array_checks(cell: str, arrays: Mapping[str, np.ndarray], settings: dict) -> list[str]:
    """Check that the stored arrays have the shapes and settings the manifest says."""
    out = []
    names = [str(n) for n in arrays["names"]]
    code_names = [c.name for c in contenders(settings["activation"])]
    if names != code_names:
        out.append(f"{cell}: contenders: stored {names}, code {code_names}")
    checks = {
        "depth": int(arrays["depth"]),
        "width": int(arrays["width"]),
        "batch_size": int(arrays["batch_size"]),
        "epochs": int(arrays["val_curves"].shape[-1] - 1),
        "seeds": len(arrays["test"][0]) if len(arrays["test"]) else 0,
        "lr_grid": [float(v) for v in arrays["lr_grid"]],
    }
    for key, stored in checks.items():
        code = len(settings[key]) if key == "seeds" else settings[key]
        if stored != code:
            out.append(f"{cell}: {key} in the arrays: stored {stored!r}, code {code!r}")
    if out or "sweep_lr" not in arrays:
        return out or [f"{cell}: the stored arrays hold no sweep_lr (an older study)"]
    for row, name in enumerate(names):  # the rate choice, replayed through the protocol
        try:
            chosen = replay_choice(arrays, row).chosen
        except KeyError as error:
            out.append(f"{cell}: {name}: protocol.choose_rate on the stored sweep: {error.args[0]}")
            continue
        if not math.isclose(chosen, float(arrays["chosen_lr"][row]), rel_tol=1e-9):
            out.append(
                f"{cell}: {name}: protocol.choose_rate on the stored sweep chooses {chosen:.6g}, "
                f"the stored study {float(arrays['chosen_lr'][row]):.6g}"
            )
    return out


def _mismatch(
    new: np.ndarray, old: np.ndarray, tol: float, denominator: Any
) -> tuple[float, np.ndarray]:
    """Return the largest finite difference (relative to `denominator`) and the rows that differ.

    A row differs by more than `tol`, or has NaN (a divergence) where the other has none.
    """
    nan_differs = np.isnan(new) != np.isnan(old)
    with np.errstate(invalid="ignore"):
        gap = np.where(np.isnan(new) | np.isnan(old), 0.0, np.abs(new - old) / denominator)
    return float(gap.max(initial=0.0)), (nan_differs | (gap > tol)).any(axis=1)


def _by_cell(lines: list[str]) -> dict[str, list[str]]:
    """Group lines 'cell: what' by what, keeping the order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for line in lines:
        cell, _, what = line.partition(": ")
        grouped.setdefault(what, []).append(cell)
    return grouped


def check_stored(
    directory: str | Path,
    *,
    names: Sequence[str] | None = None,
    datasets: Mapping[str, Dataset] | None = None,
    expect: Mapping[str, Any] | None = None,
    loss_rtol: float = 1e-3,
    accuracy_tol: float = 0.02,
) -> dict[str, float]:
    """Fail, naming what changed, when the stored study no longer comes from this code.

    For every cell (or those in `names`):

    1. the stored record's :func:`manifest` must equal the code's, field by field (settings,
       contenders, constants; the versions are compared only to explain a failure);
    2. the stored arrays must have the stored settings (contenders, depth, width, epochs, seeds,
       rate grid), every stored rate choice must be what
       :func:`eiginit.training.protocol.choose_rate`
       chooses now on the stored sweep (:func:`replay_choice`), and `expect`'s settings
       (``{"depth": 12, "width": 64}``, a chapter's) must
       equal the deep cells';
    3. :func:`brief_run` is repeated at the stored chosen rates and must match the stored brief
       run (losses to relative `loss_rtol`, accuracies to `accuracy_tol`) and the stored arrays
       (initial loss, and the validation curve of that seed).

    The tolerances allow float32 rounding of another BLAS; on one machine the runs are identical.

    Parameters
    ----------
    directory : str or Path
        Where ``<cell>.npz`` and ``<cell>.json`` are, ``eiginit/data/training-study``.
    names : sequence of str, optional
        The cells to check (default: all of :func:`cells`).
    datasets : mapping, optional
        ``{"digits": ..., "mnist1d": ...}`` already loaded with the study's split; loaded if absent.
    expect : mapping, optional
        Settings the caller relies on, compared with every deep cell's.
    loss_rtol, accuracy_tol : float

    Returns
    -------
    dict
        The largest relative loss difference and the largest accuracy difference found
        (``"loss"``, ``"accuracy"``), and the number of runs repeated (``"runs"``).

    Raises
    ------
    StudyDriftError
        Listing every difference, with the command that refreshes the stored results.
    """
    directory = Path(directory)
    chosen = list(cells()) if names is None else list(names)
    for cell in chosen:
        cell_settings(cell)  # a ValueError for an unknown cell
    datasets = dict(datasets or {})
    problems: list[str] = []
    hints: list[str] = []
    worst = {"loss": 0.0, "accuracy": 0.0, "runs": 0}
    for cell in chosen:
        npz, js = directory / f"{cell}.npz", directory / f"{cell}.json"
        missing = [p.name for p in (npz, js) if not p.is_file()]
        if missing:
            problems.append(f"{cell}: no stored {' or '.join(missing)} in {directory}")
            continue
        stored = json.loads(js.read_text("utf-8"))
        now = manifest(cell)
        changed = _differences(
            {k: v for k, v in stored.items() if k not in ("versions", "brief_run")},
            {k: v for k, v in now.items() if k != "versions"},
            "",
        )
        problems += [f"{cell}: {line}" for line in changed]
        hints += [f"{cell}: {line}" for line in _differences(stored["versions"], now["versions"],
                                                             "versions")]  # fmt: skip
        settings = now["settings"]
        if expect and not cell.endswith("-shallow"):
            for key, value in expect.items():
                if settings.get(key) != value:
                    changed.append(
                        f"{key}: the study uses {settings.get(key)!r}, the caller {value!r}"
                    )
                    problems.append(f"{cell}: {changed[-1]}")
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files}
        problems += _array_checks(cell, arrays, settings)
        if changed or len(arrays["chosen_lr"]) != len(now["contenders"]):
            continue  # the code no longer describes the stored runs: nothing to repeat
        name = settings["dataset"]
        if name not in datasets:
            datasets[name] = load_dataset(name)
        redo = brief_run(datasets[name], cell, arrays["chosen_lr"].tolist())
        worst["runs"] += len(redo["lr"])
        before = stored["brief_run"]
        k = 0  # the brief run repeats the first final seed
        e = BRIEF["epochs"]
        references = {
            "the stored brief run": (before["train_loss"], before["val_accuracy"]),
            "the stored study": (
                arrays["initial_loss"][:, k : k + 1],
                arrays["val_curves"][:, k, : e + 1],
            ),
        }
        if not np.allclose(before["lr"], arrays["chosen_lr"], rtol=1e-12, atol=0):
            problems.append(
                f"{cell}: chosen rates: {before['lr']} in the stored brief run, "
                f"{arrays['chosen_lr'].tolist()} in the stored study"
            )
        new_loss = np.asarray(redo["train_loss"], float)
        new_acc = np.asarray(redo["val_accuracy"], float)
        for what, (loss, acc) in references.items():
            loss, acc = np.asarray(loss, float), np.asarray(acc, float)
            now_loss = new_loss[:, : loss.shape[1]]
            scale = np.maximum(np.abs(loss), 1e-12)
            for quantity, new, old, tol, denominator in (
                ("training loss", now_loss, loss, loss_rtol, scale),
                ("validation accuracy", new_acc, acc, accuracy_tol, 1.0),
            ):
                gap, bad = _mismatch(new, old, tol, denominator)
                key = "loss" if quantity == "training loss" else "accuracy"
                worst[key] = max(worst[key], gap)
                for i in np.flatnonzero(bad):
                    problems.append(
                        f"{cell}: {now['contenders'][i]['name']}, seed {settings['seeds'][0]}: "
                        f"{quantity} {np.round(new[i], 6).tolist()} now, "
                        f"{np.round(old[i], 6).tolist()} in {what}"
                    )
    if problems:
        lines = ["the stored training study does not match the code:"]
        for text, where in _by_cell(problems).items():
            lines.append(f"  - {text} ({', '.join(where)})")
        if hints:
            lines.append("  The study was stored with other versions, which may explain it:")
            lines += [f"  - {text} ({', '.join(where)})" for text, where in _by_cell(hints).items()]
        lines.append(_REFRESH)
        raise StudyDriftError("\n".join(lines))
    return worst
