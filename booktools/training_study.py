"""Run the training study of chapter "Does it train?" and store its results.

Part of ``nox -s study`` (``booktools/studies.py``, which runs every chapter's stored study with
one progress bar); alone: ``PYTHONPATH=. python -m booktools.training_study [CELL ...]``.

A cell is dataset-activation-optimizer (for example ``mnist1d-relu-adam``), optionally with the
suffix ``-shallow`` (depth 3, longer, see STUDY); with no argument every cell runs. Each cell is
written to ``eiginit/data/training-study/<cell>.npz`` (the arrays of ``eiginit.StudyCell``) and
``<cell>.json`` (``eiginit.training.study.record``: every setting, every contender's constants, the
versions
of numpy and eiginit, and a brief run that the chapter repeats at every build). The settings are
``eiginit.training.study.STUDY`` and the constants beside it; the chapter fails the build, naming
what
changed, when they or the code no longer match the stored files: then re-run this script.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

import eiginit
from eiginit import study
from eiginit.training.study import STUDY, cell_settings, cells, run_cell

__all__ = ["OUT", "STUDY", "cells", "estimate", "load", "main", "run", "write"]

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


_SIZES = {"digits": None, "mnist1d": None}


def estimate(cell: str) -> float:
    """Return the work (``eiginit.training.study.work``) `cell` needs if no rate grid is widened.

    GELU and SiLU count double: their activation and its derivative cost about as much as the
    matrix products at these sizes.
    """
    s = cell_settings(cell)
    if _SIZES[s["dataset"]] is None:
        _SIZES[s["dataset"]] = load(s["dataset"])
    runs = len(study.contenders(s["activation"])) * (
        len(s["lr_grid"]) * len(s["sweep_seeds"]) + len(s["seeds"]) + 1
    )
    factor = 2.0 if s["activation"] in ("gelu", "silu") else 1.0
    return factor * study.work(_SIZES[s["dataset"]], s["depth"], runs, s["epochs"])


def run(cell: str, progress: Callable[[float], None] | None = None) -> None:
    """Run `cell` and write its two files; `progress(work)` is called as the runs finish."""
    s = cell_settings(cell)
    data = load(s["dataset"])
    factor = 2.0 if s["activation"] in ("gelu", "silu") else 1.0

    def report(done: float) -> None:
        if progress is not None:
            progress(factor * done)

    result = run_cell(
        data, s["activation"], s["optimizer"],
        depth=s["depth"], width=s["width"], batch_size=s["batch_size"],
        lr_grid=s["lr_grid"], sweep_seeds=s["sweep_seeds"], seeds=s["seeds"],
        epochs=s["epochs"], dtype=np.dtype(s["dtype"]), max_widen=s["max_widen"],
        progress=report,
    )  # fmt: skip
    write(cell, result, data)
    report(study.work(data, s["depth"], len(result.names), study.BRIEF["epochs"]))


def main(argv: list[str] | None = None) -> int:
    """Run the cells named in `argv` (all if none) with the progress bar of booktools.studies."""
    from booktools import studies

    names = sys.argv[1:] if argv is None else argv
    return studies.main([f"training:{n}" for n in names] if names else ["training"])


if __name__ == "__main__":
    sys.exit(main())
