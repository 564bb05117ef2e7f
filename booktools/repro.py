"""Prove that the build is reproducible: two clean builds, byte-identical output (``nox -s repro``).

Two copies of the project, at two different paths, are each built from scratch as CI builds them
(every chapter executed, ``-j auto``, ``SOURCE_DATE_EPOCH`` set to the last commit's time).
Every file of the two HTML trees must be byte-identical: pages, SVG and PNG figures, search
index, inventory.

One exception, by design: a page holding myst-nb's execution-statistics table (``{nb-exec-table}``)
reports *when* each chapter ran and *how long it took*, which no two builds share. In that page
only the table cells with the date and the run time are blanked before comparing; everything else
in it must match too. The same holds for the output of a code cell tagged ``measured-time`` (a
wall-clock measurement a chapter shows on purpose, such as chapter 2's timing table): its printed
output is blanked, in the page and in the ``.ipynb`` download, and nothing else. Such numbers must
never be glued into the prose, where they could not be told apart.
Usage: ``python -m booktools.repro [--keep DIR] [--jobs N]``.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

from booktools.build import make_reproducible
from booktools.runner import ROOT, copy_project, sphinx_build

__all__ = ["compare_trees", "main", "normalize_exec_table", "normalize_measured"]

_DATE_CELL = re.compile(r"(<td[^>]*><p>)\d{4}-\d{2}-\d{2} \d{2}:\d{2}(</p></td>)")
_TIME_CELL = re.compile(r"(<td[^>]*><p>)(?:\d+(?:\.\d+)?|-)(</p></td>)")


def normalize_exec_table(html: str) -> str:
    """Blank the date and run-time cells of execution-statistics tables (and nothing else).

    A row's ``over-budget`` mark (booktools.sphinx_ext) depends on the run time too: dropped.

    >>> row = "<td><p>2026-11-29 04:05</p></td><td><p>cache</p></td><td><p>5.36</p></td>"
    >>> normalize_exec_table(row)
    '<td><p>DATE</p></td><td><p>cache</p></td><td><p>SECONDS</p></td>'
    >>> normalize_exec_table('<tr class="over-budget row-odd"><td>')
    '<tr class="row-odd"><td>'
    """
    html = _DATE_CELL.sub(r"\1DATE\2", html)
    html = _ROW_CLASSES.sub(_drop_over_budget, html)
    return _TIME_CELL.sub(r"\1SECONDS\2", html)


_ROW_CLASSES = re.compile(r'<tr class="([^"]*)"')


def _drop_over_budget(match: re.Match) -> str:
    kept = [c for c in match.group(1).split() if c != "over-budget"]
    return f'<tr class="{" ".join(kept)}"'


MEASURED_TAG = "measured-time"
_MEASURED_CELL = re.compile(
    r'<div class="cell [^"]*\btag_measured-time\b.*?(?=<div class="cell |<section|</section>)', re.S
)
_OUTPUT_PRE = re.compile(r'(<div class="cell_output[^"]*">.*?<pre>)(.*?)(</pre>)', re.S)


def normalize_measured(rel: str, data: bytes) -> bytes:
    """Blank the outputs of cells tagged ``measured-time`` in a page or a notebook download.

    >>> page = ('<div class="cell tag_measured-time docutils container"><div class="cell_input">'
    ...         '<pre>t = clock()</pre></div><div class="cell_output docutils container">'
    ...         '<pre>12 ms</pre></div></div><div class="cell docutils container">'
    ...         '<div class="cell_output docutils container"><pre>kept</pre></div></div>')
    >>> normalize_measured("a.html", page.encode()).decode().count("MEASURED"), b"kept" in (
    ...     normalize_measured("a.html", page.encode()))
    (1, True)
    """
    if MEASURED_TAG.encode() not in data:
        return data
    if rel.endswith(".html"):
        html = data.decode("utf-8")
        html = _MEASURED_CELL.sub(lambda m: _OUTPUT_PRE.sub(r"\1MEASURED\3", m.group(0)), html)
        return html.encode()
    if rel.endswith(".ipynb"):
        notebook = json.loads(data)
        for cell in notebook.get("cells", []):
            if MEASURED_TAG in cell.get("metadata", {}).get("tags", []):
                cell["outputs"] = []
        return json.dumps(notebook, sort_keys=True).encode()
    return data


def _exec_table_pages(book: Path) -> set[str]:
    return {
        f"{p.stem}.html" for p in book.glob("*.md") if "{nb-exec-table}" in p.read_text("utf-8")
    }


def compare_trees(a: Path, b: Path, *, normalized: set[str] = frozenset()) -> dict[str, list[str]]:
    """Compare two output trees file by file; return missing, extra and differing files."""
    files_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    differ = []
    for rel in sorted(files_a & files_b):
        one, two = (a / rel).read_bytes(), (b / rel).read_bytes()
        if rel in normalized:
            one = normalize_exec_table(one.decode("utf-8")).encode()
            two = normalize_exec_table(two.decode("utf-8")).encode()
        one, two = normalize_measured(rel, one), normalize_measured(rel, two)
        if one != two:
            differ.append(rel)
    return {
        "only in first": sorted(files_a - files_b),
        "only in second": sorted(files_b - files_a),
        "differ": differ,
        "compared": sorted(files_a & files_b),
    }


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _show_difference(a: Path, b: Path, rel: str, limit: int = 12) -> str:
    try:
        one = (a / rel).read_text("utf-8").splitlines()
        two = (b / rel).read_text("utf-8").splitlines()
    except UnicodeDecodeError:
        one, two = ((x / rel).read_bytes() for x in (a, b))
        return f"    (binary) sha256 {_short(one)} vs {_short(two)}"
    diff = list(difflib.unified_diff(one, two, lineterm="", n=0))[2 : 2 + limit]
    return "\n".join("    " + line[:160] for line in diff)


def main(argv: list[str] | None = None) -> int:
    """Build twice and compare; return 0 when the outputs are identical."""
    parser = argparse.ArgumentParser(prog="nox -s repro --", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build in this folder and keep the outputs")
    parser.add_argument("--jobs", default="auto", help="-j of both builds (CI's: auto)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project to build")
    args = parser.parse_args(argv)

    epoch = make_reproducible(args.root).get("SOURCE_DATE_EPOCH")
    env = {"CI": "true", **({"SOURCE_DATE_EPOCH": epoch} if epoch else {})}
    with tempfile.TemporaryDirectory(prefix="eiginit-repro-") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        outputs = []
        for name in ("first", "second-build-elsewhere"):
            project = copy_project(base / name / "eiginit-book", root=args.root)
            print(f"clean CI build in {project} ...", flush=True)
            result = sphinx_build(project, env=env, jobs=None if args.jobs == "1" else args.jobs)
            if not result.ok:
                print(result.log[-3000:], file=sys.stderr)
                print("the build failed", file=sys.stderr)
                return 1
            print(f"  {result.seconds:.1f} s, {len(result.executed)} chapter(s) executed")
            outputs.append(project / "_build" / "html")
        normalized = _exec_table_pages(args.root / "book")
        report = compare_trees(*outputs, normalized=normalized)
        images = [f for f in report["compared"] if f.startswith("_images/")]
        pages = [f for f in report["compared"] if f.endswith(".html")]
        print(
            f"compared {len(report['compared'])} files: {len(pages)} HTML pages, "
            f"{len(images)} images"
            + (f"; date/run-time cells blanked in {sorted(normalized)}" if normalized else "")
        )
        problems = report["only in first"] + report["only in second"] + report["differ"]
        for key in ("only in first", "only in second", "differ"):
            for rel in report[key]:
                print(f"  {key}: {rel}")
                if key == "differ":
                    print(_show_difference(*outputs, rel))
        if problems:
            print(f"NOT reproducible: {len(problems)} file(s) differ")
            return 1
        print("reproducible: the two builds are byte-identical")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
