"""Turn "chapter 7" in the book's prose into a cross-reference that cannot go stale.

A chapter cited by number in the text ("as chapter 7 showed") is wrong as soon as a chapter is
added before it. The book's chapters are numbered by the ``:numbered:`` toctrees of
``book/index.md`` (continuously across the parts, see ``booktools/sphinx_ext.py``), and every
chapter opens with a label ``(ch-<slug>)=``. This tool rewrites each bare reference into a
``{numref}`` of that label, which Sphinx renders as the same words, "chapter 7", now a link
whose number comes from the table of contents::

    chapter 7        ->  {numref}`chapter %s <ch-backward-pass>`
    Chapter 7's      ->  {numref}`Chapter %s <ch-backward-pass>`'s
    chapters 2 and 3 ->  chapters {numref}`%s <ch-power-iteration>` and {numref}`%s <ch-...>`

Only prose is touched: not code cells (except their ``mystnb`` caption header), code blocks,
math, inline code, roles or MyST comments (``%`` lines). A link whose text is "chapter N" and
whose target is that chapter becomes the reference; one to another page is reported, not
rewritten (rephrase it by hand). A number larger than the book's chapter
count is left alone (it is another book's chapter: "Trefethen & Embree, chapter 14"); a smaller
one always means this book, so cite another book's chapter with "ch." or "§".

Usage::

    python -m booktools.chapter_refs            # check: list bare references, exit 1 if any
    python -m booktools.chapter_refs --write    # rewrite them in book/*.md (idempotent)
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

__all__ = ["Bare", "chapter_labels", "convert_text", "find_bare", "main"]

_TOCTREE = re.compile(r"^(```+|:::+)\{toctree\}[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
_LABEL = re.compile(r"^\((?P<label>[^)\s]+)\)=[ \t]*\n+#[ \t]", re.M)
#: "chapter 7", "Chapters 2 and 3", "chapters 4 to 7", "chapters 2, 3 and 8", "chapters 5–7".
_REFERENCE = re.compile(
    r"\b(?P<word>[Cc]hapters?)(?P<sep>[ \u00a0~]+)(?P<numbers>\d+"
    r"(?:(?:,?[ \u00a0]+(?:and|or|to)[ \u00a0]+|,[ \u00a0]*|[\u2013-])\d+)*)\b(?![.,]?\d)"
)
#: What a prose line keeps as is: inline code and roles (`...`), inline and display math.
_PROTECTED = re.compile(r"(`+)(?:.|\n)*?\1|\$\$.*?\$\$|\$[^$\n]+\$")
#: ... and, when rewriting, the text of a Markdown link (a role cannot sit inside a link).
_PROTECTED_OR_LINK = re.compile(_PROTECTED.pattern + r"|\[[^\]]*\]\([^)\s]*\)")


def chapter_labels(book: Path = BOOK) -> dict[int, str]:
    """Map each chapter number to its label, from the numbered toctrees of ``book/index.md``.

    Raises ValueError naming the chapter when a chapter has no ``(label)=`` before its title.
    """
    index = (book / "index.md").read_text(encoding="utf-8")
    labels: dict[int, str] = {}
    for match in _TOCTREE.finditer(index):
        body = match.group(2)
        if not re.search(r"^:numbered:", body, re.M):
            continue
        for line in body.splitlines():
            line = line.strip()
            if not line or line.startswith(":"):
                continue
            explicit = re.fullmatch(r".*<(.+)>", line)
            slug = (explicit.group(1) if explicit else line).removesuffix(".md")
            text = (book / f"{slug}.md").read_text(encoding="utf-8")
            label = _LABEL.search(text)
            if label is None:
                raise ValueError(
                    f"book/{slug}.md: a chapter needs a label line '(ch-{slug})=' right before "
                    "its title, for references by number; found none"
                )
            labels[len(labels) + 1] = label.group("label")
    return labels


def _convert_span(text: str, labels: dict[int, str]) -> str:
    """Rewrite the bare references in a piece of prose with no code or math in it."""

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group("numbers"))]
        if any(n not in labels for n in numbers):
            return match.group(0)
        word, sep = match.group("word"), match.group("sep")
        if len(numbers) == 1 and not word.endswith("s"):
            return f"{{numref}}`{word} %s <{labels[numbers[0]]}>`"
        joined = re.sub(
            r"\d+",
            lambda m: f"{{numref}}`%s <{labels[int(m.group(0))]}>`",
            match.group("numbers"),
        )
        return f"{word}{sep}{joined}"

    return _REFERENCE.sub(replace, text)


#: A Markdown link whose whole text is one chapter reference: ``[chapter 8](training.md#x)``.
_LINKED = re.compile(r"\[(?P<text>[Cc]hapter[ \u00a0]+(?P<n>\d+))\]\((?P<target>[^)\s]+)\)")


def _convert_line(line: str, labels: dict[int, str]) -> str:
    """Rewrite one prose line, leaving code, roles and math as they are.

    A link whose text is a chapter reference to that chapter's page becomes the reference (a
    link already; the section anchor goes, the chapter stays): a role cannot sit in a link.
    """

    def unlink(match: re.Match[str]) -> str:
        label = labels.get(int(match.group("n")))
        page = match.group("target").split("#")[0].removesuffix(".md").removesuffix(".html")
        if label is None or label != f"ch-{Path(page).name}":
            return match.group(0)
        return match.group("text")

    line = _LINKED.sub(unlink, line)
    out, last = [], 0
    for match in _PROTECTED_OR_LINK.finditer(line):
        out.append(_convert_span(line[last : match.start()], labels))
        out.append(match.group(0))
        last = match.end()
    out.append(_convert_span(line[last:], labels))
    return "".join(out)


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>[^\n]*)$")
#: Fenced blocks whose content is prose (MyST directives); everything else fenced is code.
_CODE_DIRECTIVES = {"code-cell", "code-block", "code", "math", "eval-rst", "raw", "literalinclude"}


def _prose_lines(text: str) -> list[bool]:
    """Return, for each line of a MyST page, whether it is prose a reader sees as text."""
    lines = text.split("\n")
    prose = [True] * len(lines)
    stack: list[tuple[str, bool]] = []  # open fences and whether their content is prose
    in_math = in_front = False
    header_of_cell = -1  # index of the code-cell fence whose metadata header is open
    for i, line in enumerate(lines):
        if i == 0 and line.strip() == "---":
            in_front = True
            prose[i] = False
            continue
        if in_front:
            prose[i] = False
            in_front = line.strip() != "---"
            continue
        inside_prose = all(p for _, p in stack)
        fence = _FENCE.match(line)
        if header_of_cell >= 0:  # a code cell's --- metadata --- header: captions are prose
            if line.strip() == "---" and i > header_of_cell + 1:
                header_of_cell = -1
                prose[i] = False
            else:
                prose[i] = line.strip() != "---"
            continue
        if fence:
            mark, info = fence.group("fence"), fence.group("info").strip()
            if stack and mark[0] == stack[-1][0][0] and len(mark) >= len(stack[-1][0]) and not info:
                stack.pop()
            else:
                name = re.match(r"\{([^}]*)\}", info)
                is_prose = name is not None and name.group(1) not in _CODE_DIRECTIVES
                if not name and mark[0] == ":":
                    is_prose = True
                stack.append((mark, is_prose))
                opens_header = i + 1 < len(lines) and lines[i + 1].strip() == "---"
                if name and name.group(1) == "code-cell" and opens_header:
                    header_of_cell = i
            prose[i] = False
            continue
        if not inside_prose:
            prose[i] = False
            continue
        stripped = line.strip()
        if stripped.startswith("$$"):
            prose[i] = False
            if not (stripped.endswith("$$") and len(stripped) > 2) or stripped == "$$":
                in_math = not in_math
            continue
        if in_math or stripped.startswith("%") or stripped.startswith(":"):
            prose[i] = False
    return prose


def convert_text(text: str, labels: dict[int, str]) -> str:
    r"""Return a MyST page with every bare chapter reference in its prose made a ``{numref}``.

    >>> labels = {1: "ch-one", 2: "ch-two", 3: "ch-three"}
    >>> convert_text("As chapter 2 showed, chapters 1 and 3 agree.\n", labels)
    'As {numref}`chapter %s <ch-two>` showed, chapters {numref}`%s <ch-one>` and {numref}`%s
    <ch-three>` agree.\n'
    >>> convert_text("`chapter 2` and $\\text{chapter 2}$ and chapter 14 stay.\n", labels)
    '`chapter 2` and $\\text{chapter 2}$ and chapter 14 stay.\n'
    >>> once = convert_text("Chapter 3's law.\n", labels)
    >>> once, convert_text(once, labels) == once
    ("{numref}`Chapter %s <ch-three>`'s law.\n", True)
    """
    lines = text.split("\n")
    prose = _prose_lines(text)
    return "\n".join(
        _convert_line(line, labels) if is_prose else line
        for line, is_prose in zip(lines, prose, strict=True)
    )


@dataclass(frozen=True)
class Bare:
    """A bare chapter reference left in a page's prose."""

    path: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text!r}"


def find_bare(path: Path, labels: dict[int, str]) -> list[Bare]:
    """Return the bare chapter references in one page's prose (what ``--write`` would change)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for number, (line, is_prose) in enumerate(
        zip(text.split("\n"), _prose_lines(text), strict=True), start=1
    ):
        if is_prose:
            for match in _REFERENCE.finditer(_PROTECTED.sub(" ", line)):
                numbers = [int(n) for n in re.findall(r"\d+", match.group("numbers"))]
                if all(n in labels for n in numbers):
                    found.append(Bare(path, number, match.group(0)))
    return found


def main(argv: list[str] | None = None) -> int:
    """Check (default) or rewrite (``--write``) every page of the book; return an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the pages in place")
    parser.add_argument("--book", type=Path, default=BOOK, help="the book's source folder")
    args = parser.parse_args(argv)
    labels = chapter_labels(args.book)
    pages = sorted(args.book.rglob("*.md"))
    if args.write:
        changed = 0
        for path in pages:
            text = path.read_text(encoding="utf-8")
            new = convert_text(text, labels)
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed += 1
                print(f"rewrote {path.relative_to(args.book.parent)}")
        print(f"{changed} pages rewritten; {len(labels)} chapters")
        return 0
    bare = [b for path in pages for b in find_bare(path, labels)]
    for item in bare:
        print(item)
    if bare:
        print(f"{len(bare)} bare chapter references: run python -m booktools.chapter_refs --write")
        return 1
    print(f"no bare chapter reference in {len(pages)} pages ({len(labels)} chapters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
