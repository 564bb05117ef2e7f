"""Run every chapter's stored study, with one progress bar and an estimate of the time left.

    nox -s study [-- NAME ...]     (or: PYTHONPATH=. python -m booktools.studies [NAME ...])

A chapter whose trained comparisons do not fit its one-minute budget stores them with the package
and checks them at every build (issue 22); this command re-runs them. ``STUDIES`` names each
stored study, the module that runs it and a rough number of seconds per unit of its work:
chapter "Does it train?" (``booktools/training_study.py``, ``eiginit/data/training-study/``) and
chapter "Recurrent networks" (``booktools/gated_study.py``, ``eiginit/data/gated-study/``). A
module provides ``cells()`` (its units of work), ``estimate(cell)`` (the work a cell needs, in
its own unit) and ``run(cell, progress)`` (which calls ``progress(work)`` as work gets done).

NAME is a study (``training``), or one of its cells (``training:mnist1d-relu-adam``, or just
``mnist1d-relu-adam``). With no NAME every cell of every study runs. The progress bar goes to
stderr: the share of the estimated work done, the time since the start, and the time left at
the rate so far.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

__all__ = ["STUDIES", "Progress", "main", "plan"]

#: Study name -> (module that runs it, rough seconds per unit of its ``estimate`` on the shared
#: two-core machine). The factors put the studies on one bar; the time left is re-estimated from
#: the rate so far. Training: its 10 cells took about 37 minutes for 1.08e9 units (2026-12-05);
#: gated: about two minutes per contender, a guess until it is measured.
STUDIES = {
    "training": ("booktools.training_study", 2.0e-6),
    "gated": ("booktools.gated_study", 120.0),
}


def _minutes(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A text progress bar on stderr with the time left at the rate so far.

    Parameters
    ----------
    total : float
        The estimated work of the whole run.
    stream : file, default sys.stderr
    """

    def __init__(self, total: float, stream: Any = None, width: int = 30) -> None:
        self.total = float(total)
        self.done = 0.0
        self.start = time.perf_counter()
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.label = ""

    def advance(self, work: float) -> None:
        """Count `work` as done and redraw the bar."""
        self.done += float(work)
        self.total = max(self.total, self.done)
        self.draw()

    def draw(self) -> None:
        """Write the bar: share done, elapsed time, estimated time left, current label."""
        share = self.done / self.total if self.total > 0 else 1.0
        elapsed = time.perf_counter() - self.start
        left = elapsed * (1 - share) / share if share > 0 else float("nan")
        filled = round(self.width * share)
        bar = "#" * filled + "." * (self.width - filled)
        left_text = _minutes(left) if left == left else "?"
        self.stream.write(
            f"[{bar}] {100 * share:5.1f} %  {_minutes(elapsed)} elapsed, ~{left_text} left  "
            f"{self.label}\n"
        )
        self.stream.flush()


def plan(names: list[str]) -> list[tuple[str, Any, str]]:
    """Return (study, module, cell) for every cell that `names` selects (all if empty)."""
    modules = {name: importlib.import_module(path) for name, (path, _) in STUDIES.items()}
    everything = [(s, m, c) for s, m in modules.items() for c in m.cells()]
    if not names:
        return everything
    chosen = []
    for name in names:
        study, _, cell = name.rpartition(":") if ":" in name else ("", "", name)
        if not study and name in modules:
            study, cell = name, ""
        found = [
            (s, m, c)
            for s, m, c in everything
            if (not study or s == study) and (not cell or c == cell)
        ]
        if not found:
            known = ", ".join(list(modules) + [f"{s}:{c}" for s, _, c in everything])
            raise ValueError(f"no study or cell {name!r}; known: {known}")
        chosen += [f for f in found if f not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run the selected cells, in order, drawing the progress bar after every piece of work."""
    names = sys.argv[1:] if argv is None else argv
    try:
        todo = plan(names)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    bar = Progress(sum(STUDIES[s][1] * m.estimate(c) for s, m, c in todo))
    for k, (name, module, cell) in enumerate(todo):
        bar.label = f"{name}:{cell} ({k + 1} of {len(todo)})"
        bar.draw()
        cell_start = time.perf_counter()
        scale = STUDIES[name][1]
        expected = scale * module.estimate(cell)
        before = bar.done
        module.run(cell, lambda work, scale=scale: bar.advance(scale * work))
        # replace the cell's estimate by the work it took (a widened grid takes more)
        bar.total = max(bar.done, bar.total + (bar.done - before) - expected)
        print(f"{name}:{cell}: {time.perf_counter() - cell_start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
