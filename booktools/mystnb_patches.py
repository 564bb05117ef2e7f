"""Patches to myst-nb that make the book's build reproducible and its cached builds complete.

``conf.py`` calls :func:`apply_all`. Each patch replaces one function of myst-nb's internals,
which a new myst-nb release may change without notice. So each patch records the myst-nb
version it was written for and a hash of the source of every upstream function it replaces or
relies on (:data:`PATCHES`). Before patching, :func:`check_upstream` compares the installed
code with that record: same code, whatever the version, is fine; changed code stops the build
with a :class:`UpstreamChanged` error naming the patch, the functions that changed and what to
re-check. After re-checking a patch against the new code, refresh its record with::

    python -m booktools.mystnb_patches --record

which prints the new hashes to paste into :data:`PATCHES`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import importlib.metadata
import inspect
import sys
from dataclasses import dataclass

__all__ = [
    "PATCHES",
    "Patch",
    "UpstreamChanged",
    "apply_all",
    "check_upstream",
    "fix_cached_notebook_outputs",
    "fix_cell_ids",
    "fix_stream_merging",
    "join_stream_chunks",
    "number_cells",
    "source_hash",
]


class UpstreamChanged(RuntimeError):
    """The myst-nb code a patch replaces or relies on is not the code it was written for."""


@dataclass(frozen=True)
class Patch:
    """What one patch replaces, the myst-nb version it was written for, and what to re-check.

    ``sources`` maps a dotted path (``module:qualified.name``) of every upstream function the
    patch replaces or whose behaviour it relies on to the first 16 hex digits of the SHA-256 of
    that function's source (:func:`source_hash`).
    """

    name: str
    written_for: str
    sources: dict[str, str]
    recheck: str


#: The patches, in the order :func:`apply_all` applies them.
PATCHES: tuple[Patch, ...] = (
    Patch(
        name="fix_stream_merging",
        written_for="1.4.0",
        sources={
            "myst_nb.core.utils:coalesce_streams": "d556bc58bd611257",
            "myst_nb.core.render:MditRenderMixin._get_nb_code_cell_outputs": "981819b40b81ee72",
        },
        recheck=(
            "that MditRenderMixin._get_nb_code_cell_outputs still calls the name "
            "coalesce_streams of myst_nb.core.render with the cell's own outputs list, and that "
            "coalesce_streams still only merges streams (tests/test_booktools.py checks both)"
        ),
    ),
    Patch(
        name="fix_cell_ids",
        written_for="1.4.0",
        sources={
            "myst_nb.core.read:create_nb_reader": "1d1758a76eb31f3f",
            "myst_nb.sphinx_:Parser.parse": "ecc3d86c99af54f3",
        },
        recheck=(
            "that Parser.parse still calls the name create_nb_reader of myst_nb.sphinx_, and "
            "that the reader it returns has a read(text) method returning the notebook"
        ),
    ),
    Patch(
        name="fix_cached_notebook_outputs",
        written_for="1.4.0",
        sources={
            "myst_nb.core.execute.cache:NotebookClientCache.start_client": "7a1e3f8b7c24e990",
            "myst_nb.core.execute.base:NotebookClientBase.__init__": "e05be36c270d16ef",
        },
        recheck=(
            "that a cache hit in NotebookClientCache.start_client still replaces self._notebook "
            "with a merged copy while the original (output-less) notebook is the one saved to "
            "jupyter_execute/; if myst-nb now saves the merged copy, drop this patch"
        ),
    ),
)


def _resolve(dotted: str):
    module_name, _, qualname = dotted.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_hash(obj) -> str:
    """Return the first 16 hex digits of the SHA-256 of ``obj``'s source code.

    A wrapper's ``__wrapped__`` is followed (``inspect.getsource`` unwraps), so a function
    already patched in this process still hashes as the upstream one.

    >>> source_hash(source_hash) == source_hash(source_hash)
    True
    >>> len(source_hash(source_hash))
    16
    """
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def check_upstream(patch: Patch) -> None:
    """Raise :class:`UpstreamChanged` if the installed myst-nb differs where ``patch`` touches it.

    A function that is missing, or whose source hash differs from the recorded one, counts as
    changed, whatever the installed version says.
    """
    version = importlib.metadata.version("myst-nb")
    changed = []
    for dotted, expected in patch.sources.items():
        try:
            found = source_hash(_resolve(dotted))
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            changed.append(f"{dotted} (not found: {exc})")
            continue
        if found != expected:
            changed.append(f"{dotted} (source hash {found}, recorded {expected})")
    if changed:
        raise UpstreamChanged(
            f"booktools.mystnb_patches.{patch.name} was written for myst-nb "
            f"{patch.written_for}; the installed myst-nb {version} changed "
            + ", ".join(changed)
            + f". Re-check {patch.recheck}. Then update its record in booktools/mystnb_patches.py"
            " (python -m booktools.mystnb_patches --record prints the new hashes), or pin myst-nb"
            " back in the lock file (nox -s lock)."
        )


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


def fix_stream_merging(*, check: bool = True) -> None:
    """Make myst-nb's ``merge_streams`` deterministic (see :func:`join_stream_chunks`).

    Wraps ``myst_nb.core.render.coalesce_streams`` so that it first joins each stream's raw
    chunks, in the cell itself (so the executed ``.ipynb`` holds one output per stream, not
    chunks, and not the text twice, as myst-nb's in-place merge left it); myst-nb's own handling
    (trailing newline, carriage returns, stderr after stdout) is kept for what is rendered.
    Applying it twice changes nothing more. ``check`` runs :func:`check_upstream` first.
    """
    if check:
        check_upstream(_patch("fix_stream_merging"))
    from myst_nb.core import render

    original = render.coalesce_streams
    if getattr(original, "_eiginit_joined", False):
        return

    def coalesce_streams(outputs: list) -> list:
        joined = join_stream_chunks(outputs)
        # The list is the cell's own: the executed .ipynb written for download keeps one output
        # per stream too, instead of chunks cut at random (myst-nb's cleanup, on a copy, only
        # shapes what is rendered).
        outputs[:] = joined
        return original(copy.deepcopy(joined))

    coalesce_streams._eiginit_joined = True  # type: ignore[attr-defined]
    coalesce_streams.__wrapped__ = original  # type: ignore[attr-defined]  # the source check reads this
    render.coalesce_streams = coalesce_streams


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


def fix_cell_ids(*, check: bool = True) -> None:
    """Make myst-nb give the cells of text notebooks deterministic ids (see :func:`number_cells`).

    Wraps ``myst_nb.sphinx_.create_nb_reader`` so that notebooks read from text (not ``.ipynb``
    files, whose ids are kept) are renumbered. Execution and the cache key ignore cell ids.
    Applying it twice changes nothing more. ``check`` runs :func:`check_upstream` first.
    """
    if check:
        check_upstream(_patch("fix_cell_ids"))
    from myst_nb import sphinx_ as nb_sphinx

    original = nb_sphinx.create_nb_reader
    if getattr(original, "_eiginit_numbered", False):
        return

    def create_nb_reader(path, *args, **kwargs):  # myst-nb's signature
        reader = original(path, *args, **kwargs)
        if reader is None or str(path).endswith(".ipynb"):
            return reader
        read = reader.read
        reader.read = lambda text: number_cells(read(text))
        return reader

    create_nb_reader._eiginit_numbered = True  # type: ignore[attr-defined]
    create_nb_reader.__wrapped__ = original  # type: ignore[attr-defined]  # the source check reads this
    nb_sphinx.create_nb_reader = create_nb_reader


def fix_cached_notebook_outputs(*, check: bool = True) -> None:
    """Put the outputs of a chapter served from the cache into the notebook myst-nb saves.

    On a cache hit, myst-nb renders from a merged copy of the notebook but writes the original,
    output-less one to ``jupyter_execute/`` (the executed ``.ipynb`` offered for download): a
    cached build would offer a notebook without outputs where a fresh build offers one with.
    Wraps ``NotebookClientCache.start_client`` to hand the merged cells back to the original.
    Applying it twice changes nothing more. ``check`` runs :func:`check_upstream` first.
    """
    if check:
        check_upstream(_patch("fix_cached_notebook_outputs"))
    from myst_nb.core.execute.cache import NotebookClientCache

    original = NotebookClientCache.start_client
    if getattr(original, "_eiginit_outputs", False):
        return

    def start_client(self) -> None:
        before = getattr(self, "_notebook", None)
        original(self)
        after = getattr(self, "_notebook", None)
        if before is not None and after is not None and after is not before:
            before["cells"] = after["cells"]

    start_client._eiginit_outputs = True  # type: ignore[attr-defined]
    start_client.__wrapped__ = original  # type: ignore[attr-defined]  # the source check reads this
    NotebookClientCache.start_client = start_client


def _patch(name: str) -> Patch:
    return next(p for p in PATCHES if p.name == name)


def apply_all() -> None:
    """Check every patch against the installed myst-nb (:func:`check_upstream`), then apply it.

    Every check runs before any patch is applied, so a build never runs half-patched.
    """
    for patch in PATCHES:
        check_upstream(patch)
    fix_stream_merging(check=False)
    fix_cell_ids(check=False)
    fix_cached_notebook_outputs(check=False)


def main(argv: list[str] | None = None) -> int:
    """Check the patches against the installed myst-nb, or print their new records."""
    parser = argparse.ArgumentParser(
        prog="python -m booktools.mystnb_patches", description=main.__doc__
    )
    parser.add_argument("--record", action="store_true", help="print the installed hashes")
    args = parser.parse_args(argv)
    if args.record:
        print(f"# myst-nb {importlib.metadata.version('myst-nb')}")
        for patch in PATCHES:
            print(f"{patch.name}:")
            for dotted in patch.sources:
                print(f'    "{dotted}": "{source_hash(_resolve(dotted))}",')
        return 0
    failed = 0
    for patch in PATCHES:
        try:
            check_upstream(patch)
        except UpstreamChanged as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(f"{patch.name}: upstream unchanged")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
