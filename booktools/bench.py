"""Benchmark the book build and print a table (``nox -s bench``; a benchmark, not a test).

On a throw-away copy of the project, it times:

- Sphinx's fixed cost: a clean build that executes nothing (execution mode ``off``);
- a full executing build from a clean checkout with an empty execution cache;
- a no-op rebuild (nothing changed: nothing may execute);
- a prose edit of one chapter (re-read, outputs from the cache);
- a code edit of one chapter (that chapter alone re-executes);
- an edit of eiginit (every chapter re-executes: the cache is keyed on eiginit's files);
- the CI build (mode ``force``, clean), and the same with ``-j`` workers;
- each chapter's execution time in the build, beside the same chapter's code run as a plain
  Python script (jupytext's conversion, ``MPLBACKEND=Agg``): the floor no build can beat;
- the page weight of the first visit (index page and every asset it loads) and of each chapter.

The budget: full build <= 1.3 x floor + Sphinx's fixed cost, no-op rebuild <= a tenth
of the full build, no chapter over 60 s. Usage: ``python -m booktools.bench [--jobs 2]
[--chapter SLUG] [--json PATH]``; ``--engine`` benchmarks the training engine instead
(:mod:`booktools.bench_engine`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urldefrag, urlparse

from booktools.chapters import chapter_paths, notebook_paths
from booktools.runner import ROOT, BuildResult, copy_project, sphinx_build
from booktools.scaffold import new_chapter

__all__ = ["NOTEBOOK_BUDGET", "main", "page_weights", "plain_python_seconds"]

#: Each notebook's execution budget in seconds (conf.py's ``eiginit_notebook_budget``).
NOTEBOOK_BUDGET = 60.0

_TAG = re.compile(r"<(link|script|img|source)\b([^>]*)>", re.I)
_ATTR = re.compile(r"""\b(href|src|rel)=["']([^"']*)["']""", re.I)
# A <link> is downloaded on a visit only for these relations (not next, prev, search, index).
_FETCHED_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut"}
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def _local(html_dir: Path, page: Path, ref: str) -> Path | None:
    ref = urldefrag(ref).url.split("?")[0]
    if not ref or urlparse(ref).scheme or ref.startswith(("//", "data:", "#")):
        return None
    path = (page.parent / ref).resolve()
    return path if path.is_file() and html_dir.resolve() in path.parents else None


def _assets(html_dir: Path, page: Path) -> set[Path]:
    found = set()
    for tag, attributes in _TAG.findall(page.read_text("utf-8")):
        attrs = {k.lower(): v for k, v in _ATTR.findall(attributes)}
        if tag.lower() == "link" and not _FETCHED_RELS & set(attrs.get("rel", "").lower().split()):
            continue
        ref = attrs.get("src") or attrs.get("href")
        if ref and (path := _local(html_dir, page, ref)):
            found.add(path)
    for css in [p for p in found if p.suffix == ".css"]:
        for ref in _CSS_URL.findall(css.read_text("utf-8", errors="replace")):
            font = _local(html_dir, css, ref)
            if font is not None and font.suffix == ".woff2":
                found.add(font)
    return found


def _weight(paths: set[Path]) -> tuple[int, int]:
    raw = sum(p.stat().st_size for p in paths)
    packed = sum(len(gzip.compress(p.read_bytes(), mtime=0)) for p in paths)
    return raw, packed


def page_weights(html_dir: Path, slugs: list[str]) -> dict[str, dict[str, int]]:
    """Bytes (raw and gzip) of the first visit and of each chapter's page.

    First visit: ``index.html`` and every local stylesheet, script, image and woff2 font it
    loads (fonts declared in a stylesheet count even if the page uses no glyph of them, so this
    is an upper bound). A chapter: its HTML and images, plus any asset not already loaded by the
    first visit (a returning reader has those cached). External assets (MathJax from a CDN) are
    not counted.
    """
    index = html_dir / "index.html"
    first = {index} | _assets(html_dir, index)
    weights = {"first visit": dict(zip(("raw", "gzip"), _weight(first), strict=True))}
    for slug in slugs:
        page = html_dir / f"{slug}.html"
        own = ({page} | _assets(html_dir, page)) - first
        weights[slug] = dict(zip(("raw", "gzip"), _weight(own), strict=True))
    return weights


_RENDER_PRELUDE = """\
import io
import matplotlib
import matplotlib.pyplot as plt
def _render_and_close(*args, **kwargs):  # what the Jupyter inline backend does at plt.show()
    for number in plt.get_fignums():
        plt.figure(number).savefig(io.BytesIO(), format="svg", bbox_inches="tight")
    plt.close("all")
plt.show = _render_and_close
"""


def plain_python_seconds(
    chapter: Path, project: Path, workdir: Path, *, render: bool = True
) -> float:
    """Run a chapter's code cells as one plain Python script and return the wall time.

    With ``render`` (the floor used for the goal), every figure is drawn to SVG at
    ``plt.show()``, as the kernel's inline backend does; without it ``plt.show()`` is a no-op on
    the Agg backend and no figure is ever drawn.
    """
    import jupytext

    script = workdir / f"{chapter.stem}{'-render' if render else ''}.py"
    jupytext.write(jupytext.read(chapter), script, fmt="py:percent")
    if render:
        script.write_text(_RENDER_PRELUDE + script.read_text("utf-8"), "utf-8")
    env = {**os.environ, "PYTHONPATH": str(project), "MPLBACKEND": "Agg"}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # as conf.py sets for the kernels: compare like with like
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def _append_code_cell(chapter: Path) -> None:
    with chapter.open("a", encoding="utf-8") as f:
        f.write("\n```{code-cell} ipython3\n# benchmark edit\n```\n")


def _row(label: str, result: BuildResult, note: str = "") -> list[str]:
    status = "ok" if result.ok else f"FAILED ({result.returncode})"
    return [label, f"{result.seconds:.1f}", str(len(result.executed)), status, note]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join("-" * w for w in widths) + " |"
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |", line]
    out += [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in rows
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; return 1 if a build that must pass failed.

    ``--engine`` runs the training engine's benchmark instead (:mod:`booktools.bench_engine`),
    passing it the other arguments.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--engine" in argv:
        from booktools.bench_engine import main as engine_main

        return engine_main([a for a in argv if a != "--engine"])
    parser = argparse.ArgumentParser(prog="nox -s bench --", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="2", help="-j value to measure (0 skips it)")
    parser.add_argument("--chapter", help="the chapter to edit (default: the first)")
    parser.add_argument("--json", type=Path, default=ROOT / "_build" / "bench.json")
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        help="add this many chapters made from the template (to measure a bigger book, or -j)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="eiginit-bench-") as tmp:
        project = copy_project(Path(tmp) / "project")
        for i in range(args.synthetic):
            new_chapter(f"synthetic-{i}", f"Synthetic chapter {i}", root=project, abbr=f"sy{i}")
        chapters = chapter_paths(project / "book")
        notebooks = notebook_paths(project / "book")  # chapters, and index.md if it executes
        slugs = [c.stem for c in chapters]
        executing = [n.stem for n in notebooks]
        if not slugs:
            print("no chapter to benchmark", file=sys.stderr)
            return 1
        target = args.chapter or slugs[0]
        if target not in slugs:
            print(f"--chapter {target!r} is not one of {slugs}", file=sys.stderr)
            return 2
        before_load = os.getloadavg()
        print(f"benchmarking {len(slugs)} chapter(s), {len(executing)} notebook(s) in {project}")
        print(
            f"load average before: {', '.join(f'{x:.1f}' for x in before_load)} "
            f"on {os.cpu_count()} CPUs (timings are wall-clock: a busy machine inflates them)"
        )

        rows, runs = [], {}

        def step(key: str, label: str, note: str = "", **kwargs) -> BuildResult:
            print(f"  {label} ...", flush=True)
            result = sphinx_build(project, **kwargs)
            runs[key] = result
            rows.append(_row(label, result, note))
            if not result.ok:
                print(result.log[-3000:], file=sys.stderr)
            return result

        step("fixed", "Sphinx fixed cost (execution off, clean)", "no -W: glue is missing",
             mode="off", clean=True, strict=False)  # fmt: skip
        full = step("full", "full build (cache mode, empty cache)", mode="cache", clean=True)
        step("noop", "no-op rebuild", mode="cache")
        with (project / "book" / f"{target}.md").open("a", encoding="utf-8") as f:
            f.write("\nA benchmark edit of the prose.\n")
        step("prose", f"prose edit of {target}", "re-read, outputs from cache", mode="cache")
        _append_code_cell(project / "book" / f"{target}.md")
        step("one", f"code edit of {target}", mode="cache")
        with (project / "eiginit" / "__init__.py").open("a", encoding="utf-8") as f:
            f.write("# benchmark edit\n")
        step("eiginit", "eiginit edit (cache key changes)", "every notebook must run", mode="cache")
        edited = project / "book" / f"{target}.md"
        edited.write_text((ROOT / "book" / f"{target}.md").read_text("utf-8"), "utf-8")
        (project / "eiginit" / "__init__.py").write_text(
            (ROOT / "eiginit" / "__init__.py").read_text("utf-8"), "utf-8"
        )
        ci = step("ci", "CI build (force, clean)", mode="force", clean=True)
        weights = page_weights(project / "_build" / "html", slugs) if ci.ok else {}
        if args.jobs not in {"", "0", "1"}:
            note = "unsafe with the cache: SQLite races (booktools.cache_race)"
            step("jcache", f"full build, cache, -j {args.jobs}", note, mode="cache", clean=True,
                 jobs=args.jobs)  # fmt: skip
            step("jnoop", f"no-op rebuild, -j {args.jobs}", mode="cache", jobs=args.jobs)
            step("jforce", f"CI build (force), -j {args.jobs}", "what CI runs", mode="force",
                 clean=True, jobs=args.jobs)  # fmt: skip

        print("  notebooks as plain Python ...", flush=True)
        workdir = Path(tmp) / "plain"
        workdir.mkdir()
        floor = {n.stem: plain_python_seconds(n, project, workdir) for n in notebooks}
        bare = {n.stem: plain_python_seconds(n, project, workdir, render=False) for n in notebooks}

    print()
    print(_table(["build", "wall (s)", "notebooks executed", "status", "note"], rows))
    print()
    chapter_rows = []
    for slug in executing:
        in_build = full.executed.get(slug, float("nan"))
        w = weights.get(slug)  # index.md has none of its own: it is the first visit
        kb = [f"{w['raw'] / 1024:.0f}", f"{w['gzip'] / 1024:.0f}"] if w else ["(first visit)", ""]
        chapter_rows.append(
            [slug, f"{in_build:.1f}", f"{floor[slug]:.1f}", f"{bare[slug]:.1f}",
             f"{in_build / floor[slug]:.2f}", *kb]
        )  # fmt: skip
    first = weights.get("first visit", {"raw": 0, "gzip": 0})
    chapter_rows.append(
        ["first visit (index + assets)", "", "", "", "", f"{first['raw'] / 1024:.0f}",
         f"{first['gzip'] / 1024:.0f}"]
    )  # fmt: skip
    header = ["notebook", "exec in build (s)", "floor: plain Python + SVG (s)", "no figures (s)",
              "build / floor", "page kB", "gzip kB"]  # fmt: skip
    print(_table(header, chapter_rows))
    print()

    floor_total = sum(floor.values())
    fixed = runs["fixed"].seconds
    budget = 1.3 * floor_total + fixed
    noop_ratio = runs["noop"].seconds / full.seconds
    slowest = max(full.executed.values(), default=float("nan"))
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"floor (notebooks as plain Python) {floor_total:.1f} s; Sphinx fixed cost {fixed:.1f} s")
    print(f"full build {full.seconds:.1f} s against the goal 1.3 x floor + fixed = {budget:.1f} s: "
          f"{'met' if full.seconds <= budget else 'NOT met'}")  # fmt: skip
    print(f"no-op rebuild / full build = {noop_ratio:.2f} (goal <= 0.10: "
          f"{'met' if noop_ratio <= 0.10 else 'NOT met'})")  # fmt: skip
    over = sorted(slug for slug, t in full.executed.items() if t > NOTEBOOK_BUDGET)
    print(f"slowest notebook in the build: {slowest:.1f} s; over the {NOTEBOOK_BUDGET:g} s budget: "
          f"{', '.join(over) or 'none'}")  # fmt: skip
    expected = {"noop": 0, "prose": 0, "one": 1, "eiginit": len(executing)}
    wrong = {k: len(runs[k].executed) for k, n in expected.items() if len(runs[k].executed) != n}
    if wrong:
        print(f"CACHE KEY PROBLEM: executed counts {wrong}, expected {expected}")
    else:
        print("cache behaved: no-op and prose edits executed nothing, a code edit one chapter, "
              "an eiginit edit every notebook")  # fmt: skip

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "builds": {
                    k: {"seconds": r.seconds, "ok": r.ok, "executed": r.executed}
                    for k, r in runs.items()
                },
                "plain_python_svg": floor,
                "plain_python_no_figures": bare,
                "load_average": [before_load, os.getloadavg()],
                "page_weights": weights,
            },
            indent=2,
        ),
        "utf-8",
    )
    print(f"raw figures written to {args.json}")
    must_pass = ["full", "noop", "prose", "one", "eiginit", "ci"]
    return 1 if wrong or not all(runs[k].ok for k in must_pass) else 0


if __name__ == "__main__":
    raise SystemExit(main())
