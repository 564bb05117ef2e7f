"""Run the gated-network study of chapter "Recurrent networks" and store its results.

    nox -s study -- gated    (or: PYTHONPATH=. python -m booktools.gated_study)

The settings are ``eiginit.gated_study.GATED_STUDY``; the results go to
``eiginit/data/gated-study/`` (``scores.npz`` and ``record.json``). The chapter checks them
against the code at every build (``eiginit.gated_study.check_stored``).
"""

from __future__ import annotations

import sys
import time

from eiginit import gated_study


def main() -> int:
    """Run every contender, print progress and the time per contender, and store the results."""
    names = gated_study.GATED_STUDY["contenders"]
    start = time.perf_counter()
    done: list[float] = []

    def progress(name: str) -> None:
        k = len(done)
        now = time.perf_counter() - start
        done.append(now)
        left = "" if k == 0 else f", about {now / k * (len(names) - k) / 60:.0f} min left"
        print(f"[{k + 1}/{len(names)}] {name} ({now / 60:.1f} min so far{left})",
              file=sys.stderr, flush=True)  # fmt: skip

    trial = gated_study.run(progress=progress)
    gated_study.save(trial)
    for name in names:
        c = trial.choices[name]
        s = trial.scores[name]
        print(f"{name:18s} lr {c.chosen:.3g} (widened {c.widened}, edge {c.on_edge}) "
              f"test MSE {s.mean():.4f} +- {s.std(ddof=1):.4f}")  # fmt: skip
    print(f"total {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
