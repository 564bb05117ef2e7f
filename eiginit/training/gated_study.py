r"""The gated-network study of chapter "Recurrent networks": LSTM and GRU on the adding problem.

Six contenders learn the adding problem (:func:`eiginit.adding_problem`) at one length
``T``, each through the comparison protocol (:func:`eiginit.training.protocol.run_trial`): a
learning-rate
sweep on validation (widened at an edge), then fresh seeds at the chosen rate, scored by test
mean squared error at the best-validation epoch. The contenders:

- an Elman network (tanh) with an orthogonal recurrent matrix, Keras's ``SimpleRNN`` default:
  the network that chapter "Recurrent networks" trains, as the reference that fails;
- the LSTM with PyTorch's defaults, Keras's defaults (orthogonal recurrent kernel, forget-gate
  bias 1) and the chrono initialization (Tallec & Ollivier 2018) with :math:`T_{\max} = T`;
- the GRU with PyTorch's and with Keras's defaults.

Training them all takes several minutes of CPU, more than a chapter's 60 s, so ``nox -s study``
runs it (``python -m booktools.gated_study``) and stores the scores with a record of every
setting (:func:`manifest`) and a brief run, one epoch of one seed per contender, that the chapter
repeats at every build (:func:`check_stored`): changed code or settings stop the build.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eiginit.models.gated import gated_init
from eiginit.models.initializers import orthogonal
from eiginit.models.recurrent import ElmanRNN, adding_problem
from eiginit.training.engine import RNNModel, fit
from eiginit.training.protocol import Contender, RateChoice, Trial, run_trial
from eiginit.training.study import StudyDriftError

__all__ = [
    "GATED_STUDY",
    "check_stored",
    "contenders",
    "data",
    "load",
    "manifest",
    "run",
    "stored_trial",
]

#: Every setting of the study; the stored record must match it.
GATED_STUDY: dict[str, Any] = {
    "T": 100,
    "hidden": 16,
    "n_train": 2000,
    "n_val": 500,
    "n_test": 2000,
    "data_seed": 1997,
    "grid": [0.003, 0.01, 0.03],
    "sweep_seeds": 2,
    "seeds": 12,
    "epochs": 20,
    "batch_size": 32,
    "clip": 1.0,
    "optimizer": "adam",
    "seed": 2018,
    "max_widen": 2,
    "contenders": [
        "Elman orthogonal",
        "LSTM PyTorch",
        "LSTM Keras",
        "LSTM chrono",
        "GRU PyTorch",
        "GRU Keras",
    ],
}

#: Where the results are stored.
STORED = (
    next(p for p in Path(__file__).resolve().parents if p.name == "eiginit")
    / "data"
    / "gated-study"
)


def data(settings: Mapping[str, Any] = GATED_STUDY) -> tuple[np.ndarray, ...]:
    """Return ``(x_train, y_train, x_val, y_val, x_test, y_test)``, fixed by the data seed."""
    rng = np.random.default_rng(settings["data_seed"])
    T = settings["T"]
    parts = [adding_problem(settings[k], T, rng=rng) for k in ("n_train", "n_val", "n_test")]
    return tuple(a.astype(np.float32) for pair in parts for a in pair)


def _elman(rngs: list[np.random.Generator], hidden: int) -> tuple[RNNModel, list[np.ndarray]]:
    """Orthogonal Elman networks (Keras's SimpleRNN default), one per generator."""
    nets = [
        ElmanRNN.create(orthogonal((hidden, hidden), rng=g), 2, 1, rng=g, dtype=np.float32)
        for g in rngs
    ]
    return RNNModel.from_networks(nets)


def contenders(settings: Mapping[str, Any] = GATED_STUDY) -> list[Contender]:
    """Return the study's contenders, in ``settings["contenders"]`` order."""
    H, T = settings["hidden"], settings["T"]
    builders = {
        "Elman orthogonal": lambda rngs: _elman(rngs, H),
        "LSTM PyTorch": lambda rngs: gated_init("lstm", (2, H, 1), "pytorch", rngs=rngs),
        "LSTM Keras": lambda rngs: gated_init("lstm", (2, H, 1), "keras", rngs=rngs),
        "LSTM chrono": lambda rngs: gated_init("lstm", (2, H, 1), "chrono", rngs=rngs, t_max=T),
        "GRU PyTorch": lambda rngs: gated_init("gru", (2, H, 1), "pytorch", rngs=rngs),
        "GRU Keras": lambda rngs: gated_init("gru", (2, H, 1), "keras", rngs=rngs),
    }
    return [Contender(name, builders[name]) for name in settings["contenders"]]


def _fit_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "clip": settings["clip"],
        "optimizer": settings["optimizer"],
    }


def run(settings: Mapping[str, Any] = GATED_STUDY, progress: Any = None) -> Trial:
    """Run the whole study (several minutes of CPU); ``progress(name)`` after each contender."""
    found: dict[str, Trial] = {}
    split = data(settings)
    for c in contenders(settings):
        found[c.name] = run_trial(
            [c], split, grid=settings["grid"], sweep_seeds=settings["sweep_seeds"],
            seeds=settings["seeds"], seed=settings["seed"], max_widen=settings["max_widen"],
            **_fit_options(settings),
        )  # fmt: skip
        if progress is not None:
            progress(c.name)
    first = next(iter(found.values()))

    def merged(field: str) -> dict[str, Any]:
        return {name: getattr(t, field)[name] for name, t in found.items()}

    return Trial(merged("choices"), merged("scores"), merged("val_scores"), merged("results"),
                 merged("diverged"), first.metric, first.split, first.seeds,
                 first.sweep_seeds)  # fmt: skip


def manifest(settings: Mapping[str, Any] = GATED_STUDY) -> dict[str, Any]:
    """Return the record of every setting (JSON-ready)."""
    return json.loads(json.dumps(dict(settings)))


def brief_run(name: str, lr: float, settings: Mapping[str, Any] = GATED_STUDY) -> list[float]:
    """One epoch of one fresh seed of contender `name` at `lr`: the training loss per epoch."""
    c = {c.name: c for c in contenders(settings)}[name]
    model, params = c.build([np.random.default_rng([settings["seed"], 99])])
    x_tr, y_tr, x_val, y_val, _, _ = data(settings)
    n = 256
    result = fit(model, params, (x_tr[:n], y_tr[:n], x_val[:n], y_val[:n]), lr=lr, seeds=[7],
                 epochs=1, batch_size=settings["batch_size"], clip=settings["clip"],
                 optimizer=settings["optimizer"])  # fmt: skip
    return [float(v) for v in result.train_loss[0]]


def save(trial: Trial, directory: Path = STORED, settings: Mapping[str, Any] = GATED_STUDY) -> None:
    """Store the scores (``scores.npz``) and the record (``record.json``) of a finished study."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for k, name in enumerate(settings["contenders"]):
        choice = trial.choices[name]
        arrays[f"{k}_scores"] = trial.scores[name]
        arrays[f"{k}_val"] = trial.val_scores[name]
        arrays[f"{k}_grid"] = np.asarray(choice.grid)
        arrays[f"{k}_sweep"] = choice.scores
        arrays[f"{k}_chosen"] = np.asarray(choice.chosen)
        arrays[f"{k}_widened"] = np.asarray(choice.widened)
        arrays[f"{k}_on_edge"] = np.asarray(choice.on_edge)
        arrays[f"{k}_diverged"] = np.asarray(trial.diverged[name])
        arrays[f"{k}_curves"] = trial.results[name].val_metric
    np.savez_compressed(directory / "scores.npz", **arrays)
    brief = {name: brief_run(name, trial.choices[name].chosen, settings)
             for name in settings["contenders"]}  # fmt: skip
    record = {"manifest": manifest(settings), "brief": brief,
              "numpy": np.__version__}  # fmt: skip
    (directory / "record.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def load(directory: Path = STORED, settings: Mapping[str, Any] = GATED_STUDY) -> dict[str, Any]:
    """Return the stored study as ``{name: {"scores", "val", "grid", "sweep", ...}}``."""
    with np.load(directory / "scores.npz") as f:
        stored = {key: f[key] for key in f.files}
    out = {}
    for k, name in enumerate(settings["contenders"]):
        out[name] = {key.split("_", 1)[1]: value for key, value in stored.items()
                     if key.split("_", 1)[0] == str(k)}  # fmt: skip
    return out


def check_stored(
    directory: Path = STORED, settings: Mapping[str, Any] = GATED_STUDY, *, rtol: float = 1e-3
) -> int:
    """Fail, naming what changed, when the stored study no longer comes from this code.

    The stored record's settings must equal `settings`, and each contender's brief run (one
    epoch of one seed at its stored rate) must give the stored losses to relative `rtol`
    (float32 on another BLAS rounds differently). Returns the number of runs repeated.

    Raises
    ------
    StudyDriftError
        Listing every difference and the command that refreshes the results.
    """
    directory = Path(directory)
    problems = []
    files = [directory / "scores.npz", directory / "record.json"]
    if not all(p.is_file() for p in files):
        problems.append(f"no stored gated study in {directory}")
    else:
        record = json.loads(files[1].read_text())
        now = manifest(settings)
        for key in sorted(set(now) | set(record["manifest"])):
            if record["manifest"].get(key) != now.get(key):
                old = record["manifest"].get(key)
                problems.append(f"setting {key!r}: stored {old!r}, code {now.get(key)!r}")
        if not problems:
            stored = load(directory, settings)
            for name in settings["contenders"]:
                again = brief_run(name, float(stored[name]["chosen"]), settings)
                old = record["brief"][name]
                if len(again) != len(old) or not all(
                    math.isclose(a, b, rel_tol=rtol) for a, b in zip(again, old, strict=True)
                ):
                    problems.append(f"{name}: brief run gives {again}, stored {old}")
    if problems:
        raise StudyDriftError(
            "the stored gated study no longer comes from this code:\n  - "
            + "\n  - ".join(problems)
            + "\nre-run it: nox -s study -- gated"
        )
    return len(settings["contenders"])


def stored_trial(directory: Path = STORED, settings: Mapping[str, Any] = GATED_STUDY) -> Trial:
    """Return the stored study as a :class:`eiginit.training.protocol.Trial` (without its fits).

    Its :meth:`~eiginit.training.protocol.Trial.table` and
    :meth:`~eiginit.training.protocol.Trial.verdicts` are
    the protocol's; ``results`` holds each contender's validation curves (seeds, epochs + 1).
    """
    stored = load(directory, settings)
    choices, scores, val, curves, diverged = {}, {}, {}, {}, {}
    for name, a in stored.items():
        grid = tuple(float(r) for r in a["grid"])
        choices[name] = RateChoice(grid, a["sweep"], float(a["chosen"]), int(a["widened"]),
                                   bool(a["on_edge"]), False)  # fmt: skip
        scores[name], val[name], curves[name] = a["scores"], a["val"], a["curves"]
        diverged[name] = int(a["diverged"])
    return Trial(choices, scores, val, curves, diverged, "loss", "test", settings["seeds"],
                 settings["sweep_seeds"])  # fmt: skip
