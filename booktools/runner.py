"""Run Sphinx on a throw-away copy of the project (shared by bench, repro and template checks).

The benchmark edits chapters and eiginit to time rebuilds, and the reproducibility check needs
two clean builds in two places, so both work on copies and never touch the working tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "BuildResult", "copy_project", "sphinx_build"]

ROOT = Path(__file__).resolve().parent.parent
_IGNORE = shutil.ignore_patterns(
    ".git", ".nox", "_build", "jupyter_execute", ".jupyter_cache", "__pycache__", "*.pyc",
    ".pytest_cache", ".hypothesis", ".ruff_cache", ".ipynb_checkpoints", ".venv", "*.egg-info",
)  # fmt: skip
_EXECUTED = re.compile(r"^(?P<path>\S+?\.\w+): Executed notebook in (?P<s>[0-9.]+) seconds", re.M)
_CACHED = re.compile(r"^(?P<path>\S+?\.\w+): Using cached notebook", re.M)


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    """Copy the project (sources only: no build products, caches or VCS data) to ``dest``."""
    shutil.copytree(root, dest, ignore=_IGNORE, symlinks=True)
    return dest


@dataclass(frozen=True)
class BuildResult:
    """One Sphinx run: wall time, success, and which chapters executed (with their times)."""

    seconds: float
    returncode: int
    executed: dict[str, float]
    cached: list[str]
    log: str

    @property
    def ok(self) -> bool:
        """Whether Sphinx exited with status 0."""
        return self.returncode == 0


def sphinx_build(
    project: Path,
    *,
    mode: str | None = None,
    jobs: str | None = None,
    strict: bool = True,
    clean: bool = False,
    outdir: Path | None = None,
    env: dict[str, str] | None = None,
) -> BuildResult:
    """Build ``project/book`` into ``project/_build/html`` (or ``outdir``) and time it.

    Doctrees go beside the output (``_build/doctrees``), not inside it, so the HTML folder
    holds only what is published.

    ``mode`` sets ``EIGINIT_EXECUTION_MODE`` (None keeps the project's rule: cache, or force in
    CI); ``clean`` deletes ``_build`` (outputs, doctrees and execution cache) first.
    """
    if clean:
        shutil.rmtree(project / "_build", ignore_errors=True)
    outdir = project / "_build" / "html" if outdir is None else outdir
    command = [sys.executable, "-m", "sphinx", "build", "-b", "html", "-c", str(project)]
    if strict:
        command += ["-W", "--keep-going", "-n"]
    if jobs:
        command += ["-j", jobs]
    command += ["-d", str(outdir.parent / "doctrees"), str(project / "book"), str(outdir)]
    full_env = {**os.environ, "PYTHONPATH": str(project), **(env or {})}
    full_env.pop("EIGINIT_EXECUTION_MODE", None)
    if mode is not None:
        full_env["EIGINIT_EXECUTION_MODE"] = mode
        full_env.pop("CI", None)
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=project, env=full_env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    log = done.stdout + done.stderr
    executed = {Path(m["path"]).stem: float(m["s"]) for m in _EXECUTED.finditer(log)}
    cached = [Path(m["path"]).stem for m in _CACHED.finditer(log)]
    return BuildResult(seconds, done.returncode, executed, cached, log)
