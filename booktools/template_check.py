"""Prove that a chapter made from the template builds strictly (``nox -s template``).

On a throw-away copy of the project, scaffold a chapter with :mod:`booktools.scaffold` exactly as
a contributor would, run the house-style checks on it, and build the whole book with warnings as
errors, executing every chapter. The real ``book/`` is never touched.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from booktools.chapters import ALL_CHECKS, Chapter
from booktools.runner import copy_project, sphinx_build
from booktools.scaffold import new_chapter

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Scaffold, check and build; return 0 when the scaffolded chapter builds strictly."""
    slug = (argv or sys.argv[1:] or ["template-check"])[0]
    with tempfile.TemporaryDirectory(prefix="eiginit-template-") as tmp:
        project = copy_project(Path(tmp) / "project")
        made = new_chapter(slug, "A chapter from the template", root=project)
        print(f"scaffolded {made.path.name} into the toctree {made.part!r}")
        problems = [p for check in ALL_CHECKS for p in check(Chapter.read(made.path))]
        for problem in problems:
            print(f"  house style: {problem}")
        result = sphinx_build(project, mode="force", clean=True)
        if not result.ok:
            print(result.log[-4000:], file=sys.stderr)
        ran = result.executed.get(slug)
        print(
            f"strict build {'passed' if result.ok else 'FAILED'} in {result.seconds:.1f} s; "
            f"the new chapter executed in {ran if ran is not None else float('nan'):.1f} s"
        )
        page = project / "_build" / "html" / f"{slug}.html"
        if result.ok and not page.is_file():
            print(f"{page.name} was not written", file=sys.stderr)
            return 1
        return 0 if result.ok and not problems and ran is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
