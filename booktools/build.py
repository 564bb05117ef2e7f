"""Execution mode, execution-cache key and reproducibility settings for the book build.

``conf.py`` imports this module (it has no dependency beyond the standard library), and so do the
benchmark and the reproducibility check, so all three agree on where the cache lives.

Why a key of our own: jupyter-cache identifies a notebook by the hash of its code cells. A
chapter's output also depends on the eiginit code it imports and on the installed numpy,
matplotlib, ..., which the stock cache does not see (executablebooks/MyST-NB issue 299): edit
``eiginit/linalg/power.py`` and the book keeps showing the old figures. We key the cache
*directory* on
a hash of every file under ``eiginit/`` and of the Python version and installed distributions.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "CACHE_ROOT",
    "KEEP_CACHES",
    "cache_dir",
    "cache_key",
    "execution_mode",
    "in_ci",
    "make_reproducible",
]

#: Where the keyed cache directories live, relative to the project root.
CACHE_ROOT = Path("_build") / ".jupyter_cache"
#: How many cache directories to keep (the most recently used), so switching back and forth
#: between two versions of eiginit (two branches, say) does not re-execute everything.
KEEP_CACHES = 4

_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ipynb_checkpoints"}


def in_ci() -> bool:
    """Return whether we run in continuous integration (``CI`` set to true, as on GitHub)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def execution_mode() -> str:
    """Return myst-nb's execution mode: ``EIGINIT_EXECUTION_MODE``, else force in CI, else cache."""
    mode = os.environ.get("EIGINIT_EXECUTION_MODE", "").strip()
    allowed = {"off", "auto", "force", "cache", "inline"}
    if mode and mode not in allowed:
        raise ValueError(f"EIGINIT_EXECUTION_MODE must be one of {sorted(allowed)}, got {mode!r}")
    if mode:
        return mode
    return "force" if in_ci() else "cache"


def _source_files(package: Path) -> list[Path]:
    files = [
        p
        for p in package.rglob("*")
        if p.is_file() and not _SKIP_PARTS.intersection(p.parts) and p.suffix != ".pyc"
    ]
    return sorted(files, key=lambda p: p.relative_to(package).as_posix())


def _environment_fingerprint() -> str:
    """Python version and every installed distribution, from the names of their metadata folders.

    ``numpy-2.4.6.dist-info`` carries the name and the version; listing folders is much faster
    than parsing every distribution's metadata, which conf.py would pay on every build.
    """
    installed = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        installed.update(n for n in names if n.endswith((".dist-info", ".egg-info")))
    return "\n".join(
        [platform.python_implementation(), platform.python_version(), *sorted(installed)]
    )


def cache_key(root: str | os.PathLike[str]) -> str:
    r"""Return a short hash of eiginit's files and of the Python environment.

    Every file under ``<root>/eiginit`` counts (sources and data, by relative path and bytes),
    as do the Python version and the name and version of every installed distribution.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "eiginit").mkdir()
    ...     _ = (Path(tmp) / "eiginit" / "a.py").write_text("x = 1\n")
    ...     before = cache_key(tmp)
    ...     _ = (Path(tmp) / "eiginit" / "a.py").write_text("x = 2\n")
    ...     before != cache_key(tmp)
    True
    """
    package = Path(root) / "eiginit"
    if not package.is_dir():
        raise ValueError(f"expected the eiginit package at {package}, found no such folder")
    digest = hashlib.sha256()
    for path in _source_files(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(_environment_fingerprint().encode())
    return digest.hexdigest()[:16]


def cache_dir(root: str | os.PathLike[str], *, prune: bool = True) -> Path:
    """Return (and create) the execution-cache directory for the current key.

    Older keyed directories beyond the :data:`KEEP_CACHES` most recently used are deleted.
    """
    base = Path(root) / CACHE_ROOT
    path = base / cache_key(root)
    path.mkdir(parents=True, exist_ok=True)
    os.utime(path)  # mark as most recently used
    if prune:
        others = sorted(
            (p for p in base.iterdir() if p.is_dir() and p != path),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in others[KEEP_CACHES - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)
    return path


def _commit_time(root: str | os.PathLike[str]) -> str | None:
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    stamp = out.stdout.strip()
    return stamp if stamp.isdigit() else None


def make_reproducible(root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Set the environment variables that make a build reproducible, unless already set.

    ``SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/) becomes the
    time of the last commit, and ``PYTHONHASHSEED`` 0, so that the kernels executing the chapters
    (they inherit this environment) iterate sets and dicts of strings in a fixed order. The
    figures' own determinism (SVG hash salt, no date) is set by ``eiginit.use_book_style``.
    Returns the variables it set.
    """
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    wanted: dict[str, str | None] = {"PYTHONHASHSEED": "0"}
    if "SOURCE_DATE_EPOCH" not in os.environ:
        wanted["SOURCE_DATE_EPOCH"] = _commit_time(root)
    set_now = {}
    for name, value in wanted.items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
            set_now[name] = value
    return set_now
