"""Run the gated-network study of chapter "Recurrent networks" and store its results.

    nox -s study -- gated    (or: PYTHONPATH=. python -m booktools.gated_study)

The settings are ``eiginit.training.gated_study.GATED_STUDY``; the results go to
``eiginit/data/gated-study/`` (``scores.npz`` and ``record.json``). The chapter checks them
against the code at every build (``eiginit.training.gated_study.check_stored``). For ``nox -s
study`` the
study is one cell whose work is its contenders (``cells``, ``estimate``, ``run``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from eiginit import gated_study

__all__ = ["cells", "estimate", "main", "run"]


def cells() -> list[str]:
    """Return the study's units of work: one, the whole study (its scores are stored together)."""
    return ["all"]


def estimate(cell: str) -> float:
    """Return the work of `cell`: its number of contenders."""
    return float(len(gated_study.GATED_STUDY["contenders"]))


def run(cell: str, progress: Callable[[float], None]) -> None:
    """Train every contender (``progress(1)`` after each), then store the results."""
    trial = gated_study.run(progress=lambda name: progress(1.0))
    gated_study.save(trial)
    for name in gated_study.GATED_STUDY["contenders"]:
        c, s = trial.choices[name], trial.scores[name]
        print(f"{name:18s} lr {c.chosen:.3g} (widened {c.widened}, edge {c.on_edge}) "
              f"test MSE {s.mean():.4f} +- {s.std(ddof=1):.4f}")  # fmt: skip


def main() -> int:
    """Run the study with a one-line progress report per contender."""
    done = [0.0]

    def progress(work: float) -> None:
        done[0] += work
        print(f"{done[0]:.0f} of {estimate('all'):.0f} contenders done", file=sys.stderr,
              flush=True)  # fmt: skip

    run("all", progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
