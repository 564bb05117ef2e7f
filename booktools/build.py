"""Execution mode, execution-cache key and reproducibility settings for the book build.

``conf.py`` imports this module (it has no dependency beyond the standard library), and so do the
benchmark and the reproducibility check, so all three agree on where the cache lives.

Why a key of our own: jupyter-cache identifies a notebook by the hash of its code cells. A
chapter's output also depends on the eiginit code it imports and on the installed numpy,
matplotlib, ..., which the stock cache does not see (executablebooks/MyST-NB issue 299): edit
``eiginit/power.py`` and the book keeps showing the old figures. We key the cache *directory* on
a hash of every file under ``eiginit/`` and of the Python version and installed distributions.
"""

from __future__ import annotations

import copy
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
    "fix_cached_notebook_outputs",
    "fix_cell_ids",
    "fix_stream_merging",
    "in_ci",
    "join_stream_chunks",
    "make_reproducible",
    "number_cells",
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


def join_stream_chunks(outputs: list) -> list:
    r"""Concatenate each stream's chunks (stdout with stdout, stderr with stderr), in order.

    The kernel sends what a cell prints in chunks cut wherever its output buffer happened to be
    flushed, which depends on timing. myst-nb's ``merge_streams`` joins chunks with a newline
    (``text.rstrip() + "\n"``), so ``print("a:", array)`` may come out as one line in one build
    and two lines in another: found by ``nox -s repro`` under load. Joining the raw chunks first
    makes the result independent of where the chunks were cut.

    >>> out = [{"output_type": "stream", "name": "stdout", "text": "eigenvalues:"},
    ...        {"output_type": "stream", "name": "stdout", "text": " [1 2]\n"}]
    >>> join_stream_chunks(out)
    [{'output_type': 'stream', 'name': 'stdout', 'text': 'eigenvalues: [1 2]\n'}]
    """
    joined, streams = [], {}
    for output in outputs:
        if output.get("output_type") == "stream":
            name = output.get("name")
            if name in streams:
                streams[name]["text"] += output.get("text", "")
                continue
            output = streams[name] = copy.deepcopy(output)  # never mutate the caller's outputs
        joined.append(output)
    return joined


def fix_stream_merging() -> bool:
    """Make myst-nb's ``merge_streams`` deterministic (see :func:`join_stream_chunks`).

    Wraps ``myst_nb.core.render.coalesce_streams`` so that it first joins each stream's raw
    chunks, in the cell itself (so the executed ``.ipynb`` holds one output per stream, not
    chunks, and not the text twice, as myst-nb's in-place merge left it); myst-nb's own handling
    (trailing newline, carriage returns, stderr after stdout) is kept for what is rendered.
    Returns False, and changes nothing, if myst-nb's internals are not where expected.
    """
    try:
        from myst_nb.core import render
    except ImportError:
        return False
    original = getattr(render, "coalesce_streams", None)
    if original is None or getattr(original, "_eiginit_joined", False):
        return original is not None

    def coalesce_streams(outputs: list) -> list:
        joined = join_stream_chunks(outputs)
        # The list is the cell's own: the executed .ipynb written for download keeps one output
        # per stream too, instead of chunks cut at random (myst-nb's cleanup, on a copy, only
        # shapes what is rendered).
        outputs[:] = joined
        return original(copy.deepcopy(joined))

    coalesce_streams._eiginit_joined = True  # type: ignore[attr-defined]
    render.coalesce_streams = coalesce_streams
    return True


def number_cells(notebook: dict) -> dict:
    """Give every cell an id derived from its position and source, instead of a random one.

    A notebook read from a MyST ``.md`` file gets fresh random cell ids (``uuid4``) on every
    read, and the executed ``.ipynb`` offered for download would differ between two builds.

    >>> nb = {"cells": [{"id": "x1", "source": "a = 1"}, {"id": "x2", "source": "a = 1"}]}
    >>> [c["id"] for c in number_cells(nb)["cells"]]
    ['5b52377b', '1bf8bdf2']
    """
    for index, cell in enumerate(notebook["cells"]):
        if "id" in cell:
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            cell["id"] = hashlib.sha256(f"{index}\n{source}".encode()).hexdigest()[:8]
    return notebook


def fix_cell_ids() -> bool:
    """Make myst-nb give the cells of text notebooks deterministic ids (see :func:`number_cells`).

    Wraps ``myst_nb.sphinx_.create_nb_reader`` so that notebooks read from text (not ``.ipynb``
    files, whose ids are kept) are renumbered. Execution and the cache key ignore cell ids.
    Returns False, and changes nothing, if myst-nb's internals are not where expected.
    """
    try:
        from myst_nb import sphinx_ as nb_sphinx
    except ImportError:
        return False
    original = getattr(nb_sphinx, "create_nb_reader", None)
    if original is None or getattr(original, "_eiginit_numbered", False):
        return original is not None

    def create_nb_reader(path, *args, **kwargs):  # myst-nb's signature
        reader = original(path, *args, **kwargs)
        if reader is None or str(path).endswith(".ipynb"):
            return reader
        read = reader.read
        reader.read = lambda text: number_cells(read(text))
        return reader

    create_nb_reader._eiginit_numbered = True  # type: ignore[attr-defined]
    nb_sphinx.create_nb_reader = create_nb_reader
    return True


def fix_cached_notebook_outputs() -> bool:
    """Put the outputs of a chapter served from the cache into the notebook myst-nb saves.

    On a cache hit, myst-nb renders from a merged copy of the notebook but writes the original,
    output-less one to ``jupyter_execute/`` (the executed ``.ipynb`` offered for download): a
    cached build would offer a notebook without outputs where a fresh build offers one with.
    Wraps ``NotebookClientCache.start_client`` to hand the merged cells back to the original.
    Returns False, and changes nothing, if myst-nb's internals are not where expected.
    """
    try:
        from myst_nb.core.execute.cache import NotebookClientCache
    except ImportError:
        return False
    original = getattr(NotebookClientCache, "start_client", None)
    if original is None or getattr(original, "_eiginit_outputs", False):
        return original is not None

    def start_client(self) -> None:
        before = getattr(self, "_notebook", None)
        original(self)
        after = getattr(self, "_notebook", None)
        if before is not None and after is not None and after is not before:
            before["cells"] = after["cells"]

    start_client._eiginit_outputs = True  # type: ignore[attr-defined]
    NotebookClientCache.start_client = start_client
    return True
