"""Run the training study of chapter "Does it train?" and store its results.

    nox -s study [-- CELL ...]    (or: PYTHONPATH=. python -m booktools.training_study [CELL ...])

A cell is dataset-activation-optimizer (for example ``mnist1d-relu-adam``), optionally with the
suffix ``-shallow`` (depth 3, longer, see STUDY); with no argument every cell runs. Each cell is
written to ``eiginit/data/training-study/<cell>.npz``. The chapter reads these files and re-trains a
sample of the runs to check that they come from this code. The settings are in STUDY; changing
them means re-running this script. The whole study takes tens of minutes of CPU time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import eiginit
from eiginit.study import run_cell

OUT = Path(__file__).resolve().parents[1] / "eiginit" / "data" / "training-study"

STUDY = {
    "depth": 12,
    "width": 64,
    "batch_size": 64,
    "sweep_seeds": (0, 1),
    "seeds": (0, 1, 2, 3, 4),
    "lr_grid": {"adam": (3e-4, 1e-3, 3e-3), "sgd": (1e-2, 3e-2, 1e-1)},
    "epochs": {"digits": 20, "mnist1d": 15},
    # The "-shallow" cell: two hidden layers, trained longer and with a higher rate grid, for the
    # published anchor (Greydanus 2020's MLP on MNIST-1D).
    "shallow": {"depth": 3, "epochs": 60, "lr_grid": (1e-3, 3e-3, 1e-2)},
}


def load(name: str) -> eiginit.Dataset:
    """Return the dataset `name` with the chapter's split (seed 0)."""
    rng = np.random.default_rng(0)
    return eiginit.load_digits(rng=rng) if name == "digits" else eiginit.load_mnist1d(rng=rng)


def cells() -> list[str]:
    """Return the names of every cell."""
    deep = [f"{d}-{a}-{o}" for d in ("mnist1d", "digits") for a in ("relu", "tanh")
            for o in ("adam", "sgd")]  # fmt: skip
    return [*deep, "mnist1d-relu-adam-shallow"]


def main(argv: list[str] | None = None) -> int:
    """Run the cells named in `argv` (all if none) and write one file per cell."""
    names = sys.argv[1:] if argv is None else argv
    unknown = sorted(set(names) - set(cells()))
    if unknown:
        print(f"unknown cells {unknown}; the cells are {cells()}")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for cell in names or cells():
        dataset, activation, optimizer, *shallow = cell.split("-")
        depth = STUDY["shallow"]["depth"] if shallow else STUDY["depth"]
        grid = STUDY["shallow"]["lr_grid"] if shallow else STUDY["lr_grid"][optimizer]
        epochs = STUDY["shallow"]["epochs"] if shallow else STUDY["epochs"][dataset]
        start = time.perf_counter()
        result = run_cell(
            load(dataset), activation, optimizer,
            depth=depth, width=STUDY["width"], batch_size=STUDY["batch_size"],
            lr_grid=grid, sweep_seeds=STUDY["sweep_seeds"], seeds=STUDY["seeds"], epochs=epochs,
        )  # fmt: skip
        arrays = {k: np.asarray(v) for k, v in asdict(result).items()}
        arrays["depth"] = np.asarray(depth)
        arrays["width"] = np.asarray(STUDY["width"])
        arrays["batch_size"] = np.asarray(STUDY["batch_size"])
        np.savez_compressed(OUT / f"{cell}.npz", **arrays)
        print(f"{cell}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
