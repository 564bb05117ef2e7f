r"""Check the PDF edition: the whole book is there, and LaTeX dropped nothing on the way.

``nox -s pdf`` runs it after latexmk (and CI runs that session)::

    python -m booktools.pdf_check _build/latex/eiginit.pdf --latex-dir _build/latex \\
        --doctrees _build/doctrees [--html-dir _build/html]

It fails, naming every problem, unless

- the page count is sane: between :data:`MIN_PAGES_PER_DOC` and :data:`MAX_PAGES_PER_DOC` pages
  for each page of the book's table of contents;
- every page of the table of contents (read from the Sphinx environment the build used, so the
  chapters, the practitioner's guide and the back matter as built) is typeset in the ``.tex``
  file and its title is in the PDF's text, and the practitioner's guide is among them;
- no figure is missing: every image LaTeX was told to include exists, the LaTeX log reports no
  file as not found, and (given the built HTML site) the ``.tex`` file includes exactly as many
  images as the HTML pages show;
- nothing is undefined: no ``??`` in the text, no undefined reference or citation in the log, no
  character the fonts lack ("Missing character");
- the exercises and their solutions are there: as many "Exercise" and "Solution to" headings as
  the sources have ``exercise`` and ``solution`` directives.

The text and the page count come from Debian's ``poppler-utils`` (``pdftotext``, ``pdfinfo``).
Every check is a plain function of strings and numbers, tested in ``tests/test_pdf.py``.
"""

from __future__ import annotations

import argparse
import pickle
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GUIDE_DOC",
    "MAX_PAGES_PER_DOC",
    "MIN_PAGES_PER_DOC",
    "PdfFacts",
    "count_directives",
    "find_problems",
    "html_image_count",
    "included_images",
    "log_problems",
    "main",
    "normalize",
    "page_count",
    "pdf_text",
    "toctree_titles",
    "typeset_docs",
]

#: The sane range of pages, per page of the table of contents (chapters run 10 to 40 pages).
MIN_PAGES_PER_DOC = 2
MAX_PAGES_PER_DOC = 80
#: The practitioner's guide, which the PDF must carry like any chapter.
GUIDE_DOC = "practitioners-guide"

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def normalize(text: str) -> str:
    r"""Return `text` as pdftotext and a title can both be compared: NFKC, plain quotes, one space.

    >>> normalize("The practitioner\u2019s  guide,\nthe \ufb01rst")
    "the practitioner's guide, the first"
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = re.sub(r"-\n(?=[a-z])", "", text)  # a word hyphenated across a line break
    return re.sub(r"\s+", " ", text).strip().lower()


# --- What the PDF and the LaTeX run say -------------------------------------------------------

#: Lines of a LaTeX log that mean something is missing from the PDF. TeX wraps its log at 79
#: columns, so each pattern needs only the start of its message.
_LOG_PATTERNS = (
    (re.compile(r"File [`'](.+?)' not found"), "LaTeX could not find the file {0}"),
    (
        re.compile(r"Missing character: There is no (\S+(?: \(U\+[0-9A-Fa-f]+\))?)"),
        "no glyph for {0} in the fonts",
    ),
    (re.compile(r"LaTeX Warning: (?:Hyper )?[Rr]eference [`'](.+?)'"), "undefined reference {0}"),
    (re.compile(r"LaTeX Warning: Citation [`'](.+?)'"), "undefined citation {0}"),
    (re.compile(r"LaTeX Warning: There were undefined references"), "undefined references"),
)


def log_problems(log: str) -> list[str]:
    r"""Return what a LaTeX log says is missing: files, glyphs, references, citations.

    >>> log_problems("LaTeX Warning: File `fig.pdf' not found on input line 3.\n"
    ...              "Missing character: There is no ^^c3 in font lmroman10-regular!")
    ['LaTeX could not find the file fig.pdf', 'no glyph for ^^c3 in the fonts']
    """
    found = []
    for line in log.splitlines():
        for pattern, message in _LOG_PATTERNS:
            match = pattern.search(line)
            if match:
                found.append(message.format(*match.groups()))
    return list(dict.fromkeys(found))


_INCLUDE = re.compile(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{(.+?)\}(\.[A-Za-z]+)\}")


def included_images(tex: str) -> list[str]:
    r"""Return the file of every image the ``.tex`` file includes, in order, repeats kept.

    >>> included_images(r"\sphinxincludegraphics[width=4in]{{a-b}.pdf}"
    ...                 r" \sphinxincludegraphics{{c}.png}")
    ['a-b.pdf', 'c.png']
    """
    return [stem + suffix for stem, suffix in _INCLUDE.findall(tex)]


def typeset_docs(tex: str) -> set[str]:
    r"""Return the pages the ``.tex`` file typesets (Sphinx labels each page ``<docname>::doc``).

    >>> sorted(typeset_docs(r"\label{\detokenize{index::doc}} \label{\detokenize{a-b::doc}}"))
    ['a-b', 'index']
    """
    return set(re.findall(r"\\label\{\\detokenize\{([^{}]+?)::doc\}\}", tex))


def html_image_count(html_dir: Path) -> int:
    """Count the content images of the built HTML pages (``src`` into ``_images/``).

    Only the site's top-level pages: the book's pages are all there (the API's highlighted
    source under ``_modules/`` has no images and is no part of the PDF).
    """
    return sum(
        len(re.findall(r"<img\b[^>]*\bsrc=\"_images/", page.read_text(encoding="utf-8")))
        for page in sorted(html_dir.glob("*.html"))
    )


_DIRECTIVE = re.compile(r"^\s*(?::{3,}|`{3,})\{(exercise|solution)(?:-start)?\}", re.MULTILINE)


def count_directives(sources: list[str]) -> dict[str, int]:
    r"""Count the ``exercise`` and ``solution`` directives (fenced or ``-start`` form) in sources.

    >>> count_directives([":::{exercise}\n:label: a\n:::\n::::{solution} a\n::::\n"])
    {'exercise': 1, 'solution': 1}
    """
    counts = {"exercise": 0, "solution": 0}
    for text in sources:
        for kind in _DIRECTIVE.findall(text):
            counts[kind] += 1
    return counts


def page_count(pdf: Path) -> int:
    """Return the number of pages of `pdf` (``pdfinfo``)."""
    out = subprocess.run(
        [_tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE)
    if match is None:
        raise ValueError(f"pdfinfo printed no page count for {pdf}: {out!r}")
    return int(match.group(1))


def pdf_text(pdf: Path) -> str:
    """Return the text of `pdf` (``pdftotext``, UTF-8, reading order)."""
    return subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found: apt-get install poppler-utils")
    return path


def toctree_titles(doctree_dir: Path) -> dict[str, str]:
    """Return docname -> title of every page in the book's table of contents, in reading order.

    Read from the Sphinx environment the build pickled into `doctree_dir`, so the titles are
    the ones the build used (a page that includes another file included).
    """
    env_file = doctree_dir / "environment.pickle"
    if not env_file.is_file():
        raise FileNotFoundError(f"no Sphinx environment at {env_file}: build the book first")
    with env_file.open("rb") as handle:
        env = pickle.load(handle)  # written by this project's own build
    ordered: list[str] = []

    def walk(doc: str) -> None:
        for child in env.toctree_includes.get(doc, []):
            if child not in ordered:
                ordered.append(child)
                walk(child)

    walk(env.config.root_doc)
    return {doc: env.titles[doc].astext() for doc in ordered}


# --- The verdict ------------------------------------------------------------------------------


@dataclass
class PdfFacts:
    """Everything the check looks at, gathered from the PDF, the LaTeX run and the sources."""

    pages: int
    text: str
    titles: dict[str, str]
    log: str = ""
    images: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    html_images: int | None = None
    directives: dict[str, int] = field(default_factory=dict)
    typeset: set[str] | None = None


def find_problems(facts: PdfFacts) -> list[str]:
    """Return every problem of the PDF described by `facts` (an empty list: the PDF passes)."""
    problems = []
    docs = len(facts.titles)
    if docs == 0:
        problems.append("the table of contents lists no page")
    low, high = MIN_PAGES_PER_DOC * docs, MAX_PAGES_PER_DOC * max(docs, 1)
    if not low <= facts.pages <= high:
        problems.append(
            f"{facts.pages} pages, expected {low} to {high} for {docs} pages of contents"
        )
    text = normalize(facts.text)
    for doc, title in facts.titles.items():
        if normalize(title) not in text:
            problems.append(f"the title of {doc!r} is not in the PDF: {title!r}")
    if facts.typeset is not None:
        # A title alone could come from the landing page's chapter map or the contents.
        for doc in facts.titles:
            if doc not in facts.typeset:
                problems.append(f"the page {doc!r} is not typeset in the .tex file")
    if GUIDE_DOC not in facts.titles:
        problems.append(f"the practitioner's guide ({GUIDE_DOC}) is not in the table of contents")
    if "??" in facts.text:
        where = facts.text.index("??")
        context = facts.text[max(where - 60, 0) : where + 20]
        problems.append(f"an undefined reference (??) in the text: {context!r}")
    problems += log_problems(facts.log)
    problems += [f"an included image is missing: {name}" for name in facts.missing_files]
    if facts.html_images is not None and facts.html_images != len(facts.images):
        problems.append(
            f"the PDF includes {len(facts.images)} images, the HTML pages show {facts.html_images}"
        )
    exercises = len(re.findall(r"(?<!to )\bExercise \d+", facts.text))
    solutions = len(re.findall(r"\bSolution to Exercise", facts.text))
    if exercises < facts.directives.get("exercise", 0):
        problems.append(
            f"{exercises} exercise headings in the PDF, "
            f"{facts.directives['exercise']} exercises in the sources"
        )
    if solutions < facts.directives.get("solution", 0):
        problems.append(
            f"{solutions} solutions in the PDF, {facts.directives['solution']} in the sources"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Gather the facts of a built PDF, print them and every problem; 1 if there is any."""
    parser = argparse.ArgumentParser(prog="python -m booktools.pdf_check", description=__doc__)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--latex-dir", type=Path, required=True, help="where the .tex and .log are")
    parser.add_argument("--doctrees", type=Path, required=True, help="the build's doctree folder")
    parser.add_argument("--html-dir", type=Path, default=None, help="the built HTML site")
    args = parser.parse_args(argv)
    if not args.pdf.is_file():
        print(f"no PDF at {args.pdf}: run `nox -s pdf`", file=sys.stderr)
        return 1
    stem = args.pdf.stem
    tex = (args.latex_dir / f"{stem}.tex").read_text(encoding="utf-8")
    log = (args.latex_dir / f"{stem}.log").read_text(encoding="utf-8", errors="replace")
    images = included_images(tex)
    titles = toctree_titles(args.doctrees)
    srcdir = Path(__file__).resolve().parent.parent / "book"
    sources = [(srcdir / f"{doc}.md").read_text(encoding="utf-8") for doc in titles]
    facts = PdfFacts(
        pages=page_count(args.pdf),
        text=pdf_text(args.pdf),
        titles=titles,
        log=log,
        images=images,
        missing_files=sorted({n for n in images if not (args.latex_dir / n).is_file()}),
        html_images=html_image_count(args.html_dir) if args.html_dir else None,
        directives=count_directives(sources),
        typeset=typeset_docs(tex),
    )
    size = args.pdf.stat().st_size / 1e6
    print(
        f"{args.pdf}: {facts.pages} pages, {size:.1f} MB, {len(titles)} pages of contents, "
        f"{len(images)} images (HTML: {facts.html_images}), "
        f"{facts.directives.get('exercise', 0)} exercises, "
        f"{facts.directives.get('solution', 0)} solutions"
    )
    problems = find_problems(facts)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if problems:
        print(f"the PDF check failed: {len(problems)} problems", file=sys.stderr)
        return 1
    print("the PDF check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
