"""Run the training study of chapter "Does it train?" and store its results.

    nox -s study [-- CELL ...]    (or: PYTHONPATH=. python -m booktools.training_study [CELL ...])

A cell is dataset-activation-optimizer (for example ``mnist1d-relu-adam``), optionally with the
suffix ``-shallow`` (depth 3, longer, see STUDY); with no argument every cell runs. Each cell is
written to ``eiginit/data/training-study/<cell>.npz`` (the arrays of ``eiginit.StudyCell``) and
``<cell>.json`` (``eiginit.study.record``: every setting, every contender's constants, the versions
of numpy and eiginit, and a brief run that the chapter repeats at every build). The settings are
``eiginit.study.STUDY`` and the constants beside it; the chapter fails the build, naming what
changed, when they or the code no longer match the stored files: then re-run this script. The
whole study takes tens of minutes of CPU time.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

import eiginit
from eiginit import study
from eiginit.study import STUDY, cell_settings, cells, run_cell

__all__ = ["OUT", "STUDY", "cells", "load", "main", "write"]

OUT = Path(__file__).resolve().parents[1] / "eiginit" / "data" / "training-study"


def load(name: str) -> eiginit.Dataset:
    """Return the dataset `name` with the study's split (``STUDY["split_seed"]``)."""
    return study.load_dataset(name)


def write(cell: str, result: eiginit.StudyCell, data: eiginit.Dataset, out: Path = OUT) -> None:
    """Store `cell`'s arrays (``.npz``) and its record (``.json``: manifest and brief run)."""
    settings = cell_settings(cell)
    arrays = {k: np.asarray(v) for k, v in asdict(result).items()}
    for key in ("depth", "width", "batch_size"):
        arrays[key] = np.asarray(settings[key])
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{cell}.npz", **arrays)
    record = study.record(cell, data, result.chosen_lr.tolist())
    (out / f"{cell}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the cells named in `argv` (all if none) and write two files per cell."""
    names = sys.argv[1:] if argv is None else argv
    unknown = sorted(set(names) - set(cells()))
    if unknown:
        print(f"unknown cells {unknown}; the cells are {cells()}")
        return 2
    for cell in names or cells():
        s = cell_settings(cell)
        start = time.perf_counter()
        data = load(s["dataset"])
        result = run_cell(
            data, s["activation"], s["optimizer"],
            depth=s["depth"], width=s["width"], batch_size=s["batch_size"],
            lr_grid=s["lr_grid"], sweep_seeds=s["sweep_seeds"], seeds=s["seeds"],
            epochs=s["epochs"], dtype=np.dtype(s["dtype"]),
        )  # fmt: skip
        write(cell, result, data)
        print(f"{cell}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
