"""Read the book's table of contents and chapters, and check that chapters follow the house style.

A *page* is any ``book/*.md`` but ``index.md``; a *chapter* is a page that is a notebook (its
front matter names a ``kernelspec``). Chapters are discovered, never listed by hand, so the
checks in ``tests/test_book.py`` cover whatever chapters exist. Each ``check_*`` function takes
a :class:`Chapter` and returns a list of problems (empty when the chapter is fine), each saying
what was found and what is expected.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import jupytext

__all__ = [
    "ALL_CHECKS",
    "BOOK",
    "ROOT",
    "Chapter",
    "chapter_paths",
    "check_exercises",
    "check_figures",
    "check_global_random_state",
    "check_glue_prefix",
    "check_label",
    "check_runs_without_sphinx",
    "check_sections",
    "check_seeded_generator",
    "global_random_state_uses",
    "notebook_paths",
    "page_paths",
    "toctree_entries",
]

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

# numpy.random names that do not touch the hidden global state.
_EXPLICIT_RANDOM = {
    "BitGenerator",
    "Generator",
    "MT19937",
    "PCG64",
    "PCG64DXSM",
    "Philox",
    "RandomState",
    "SFC64",
    "SeedSequence",
    "default_rng",
}
# Constructors that draw fresh OS entropy when called without a seed.
_NEEDS_SEED = {"default_rng", "RandomState", "SeedSequence", "PCG64", "PCG64DXSM", "Philox",
               "SFC64", "MT19937"}  # fmt: skip
_FIGURE_CALL = re.compile(r"\bplt\.(subplots|figure|subplot_mosaic|show)\(")
_TOCTREE = re.compile(r"^(```+|:::+)\{toctree\}[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
_DIRECTIVE = re.compile(r"^(```+|:::+)\{(?P<name>[\w:-]+)\}(?P<arg>[^\n]*)\n(?P<body>.*?)^\1\s*$",
                        re.M | re.S)  # fmt: skip


def toctree_entries(index: Path | None = None) -> list[tuple[str, list[str]]]:
    r"""Return the toctrees of ``index.md`` as (caption, [docname, ...]) in reading order.

    >>> text = "```{toctree}\n:caption: Part I\n\nintro\nMore <more>\n```\n"
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "index.md").write_text(text)
    ...     toctree_entries(Path(tmp) / "index.md")
    [('Part I', ['intro', 'more'])]
    """
    index = BOOK / "index.md" if index is None else index
    trees = []
    for match in _TOCTREE.finditer(index.read_text(encoding="utf-8")):
        caption, entries = "", []
        for line in match.group(2).splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith(":caption:"):
                caption = line.removeprefix(":caption:").strip()
            elif not line.startswith(":"):
                explicit = re.fullmatch(r".*<(.+)>", line)
                entries.append((explicit.group(1) if explicit else line).removesuffix(".md"))
        trees.append((caption, entries))
    return trees


def page_paths(book: Path | None = None) -> list[Path]:
    """Return every page of the book (``book/*.md`` except ``index.md``), sorted."""
    book = BOOK if book is None else book
    return sorted(p for p in book.glob("*.md") if p.name != "index.md")


def _is_notebook(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    front = re.match(r"---\n(.*?)\n---\n", text, re.S)
    return bool(front and re.search(r"^kernelspec:", front.group(1), re.M))


def notebook_paths(book: Path | None = None) -> list[Path]:
    """Return every page that executes (the chapters, and index.md if it is a notebook)."""
    book = BOOK if book is None else book
    index = [book / "index.md"] if _is_notebook(book / "index.md") else []
    return index + chapter_paths(book)


def chapter_paths(book: Path | None = None) -> list[Path]:
    """Return the chapters (notebook pages), in table-of-contents order, then any others."""
    book = BOOK if book is None else book
    chapters = [p for p in page_paths(book) if _is_notebook(p)]
    order = [doc for _, docs in toctree_entries(book / "index.md") for doc in docs]
    rank = {doc: i for i, doc in enumerate(order)}
    return sorted(chapters, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


@dataclass(frozen=True)
class Chapter:
    """A chapter read through jupytext: its slug, its text and its cells."""

    slug: str
    text: str = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> Chapter:
        """Read ``book/<slug>.md``."""
        return cls(path.stem, path.read_text(encoding="utf-8"))

    @cached_property
    def notebook(self):  # returns an nbformat.NotebookNode
        """The chapter as an nbformat notebook (jupytext's MyST reader)."""
        return jupytext.reads(self.text, fmt="md:myst")

    @property
    def code_cells(self) -> list:
        """The code cells, with their ``metadata`` (tags, ``mystnb`` options)."""
        return [c for c in self.notebook.cells if c.cell_type == "code"]

    @property
    def markdown(self) -> str:
        """All markdown cells joined, with MyST comment lines (``% ...``) removed."""
        text = "\n\n".join(c.source for c in self.notebook.cells if c.cell_type == "markdown")
        return "\n".join(line for line in text.splitlines() if not line.startswith("%"))

    def trees(self) -> Iterator[tuple[int, ast.Module]]:
        """Yield (cell number, parsed code) for each code cell; IPython magics are blanked."""
        for number, cell in enumerate(self.code_cells, start=1):
            lines = [
                "pass" if line.lstrip().startswith(("%", "!")) else line
                for line in cell.source.splitlines()
            ]
            yield number, ast.parse("\n".join(lines), filename=f"{self.slug}.md cell {number}")

    def figure_names(self) -> list[str]:
        """Return the chapter's figure names (``mystnb: figure: name:`` of its code cells)."""
        names = []
        for cell in self.code_cells:
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            if figure.get("name"):
                names.append(str(figure["name"]))
        return names

    def glue_names(self) -> list[str]:
        """Return the names the chapter glues (first argument of ``glue(...)`` calls)."""
        names = []
        for _, tree in self.trees():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and _dotted(node.func).split(".")[-1] == "glue"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    names.append(node.args[0].value)
        return names


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _random_aliases(tree: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """Names bound to numpy, to numpy.random, and to functions imported from numpy.random."""
    numpy, random, functions = {"np", "numpy"}, set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy":
                    numpy.add(alias.asname or "numpy")
                elif alias.name == "numpy.random" and alias.asname:
                    random.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy":
            random.update(a.asname or a.name for a in node.names if a.name == "random")
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy.random":
            functions.update(
                a.asname or a.name for a in node.names if a.name not in _EXPLICIT_RANDOM
            )
    return numpy, random, functions


def global_random_state_uses(source: str | ast.AST) -> list[str]:
    r"""Return the uses of numpy's hidden global random state in Python code.

    ``np.random.seed``, ``np.random.randn``, ``np.random.normal``... all draw from (or reset)
    one generator shared by the whole process. Explicit generators (``default_rng``,
    ``RandomState``, bit generators) are fine.

    >>> global_random_state_uses("import numpy as np\nnp.random.seed(0)\nx = np.random.randn(3)")
    ['np.random.seed', 'np.random.randn']
    >>> global_random_state_uses("rng = np.random.default_rng(1)\nx = rng.standard_normal(3)")
    []
    """
    tree = ast.parse(source) if isinstance(source, str) else source
    numpy, random, functions = _random_aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts = _dotted(node).split(".")
            global_state = (len(parts) == 3 and parts[0] in numpy and parts[1] == "random") or (
                len(parts) == 2 and parts[0] in random
            )
            if global_state and parts[-1] not in _EXPLICIT_RANDOM:
                found.append(".".join(parts))
        elif isinstance(node, ast.Name) and node.id in functions:
            found.append(node.id)
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy.random":
            found.extend(
                f"from numpy.random import {a.name}"
                for a in node.names
                if a.name not in _EXPLICIT_RANDOM
            )
    return list(dict.fromkeys(found))


# --- checks -----------------------------------------------------------------------------------


def check_label(chapter: Chapter) -> list[str]:
    """Check that the title is preceded by the label ``(ch-<slug>)=``."""
    lines = [ln for ln in chapter.markdown.splitlines() if ln.strip()]
    title = next((i for i, ln in enumerate(lines) if ln.startswith("# ")), None)
    if title is None:
        return ["no title: expected a '# Title' heading"]
    expected = f"(ch-{chapter.slug})="
    if title == 0 or lines[title - 1].strip() != expected:
        return [f"the title {lines[title]!r} is not preceded by the label {expected}"]
    return []


def check_sections(chapter: Chapter) -> list[str]:
    """Check that the chapter has a Summary and an Exercises section, in that order, at level 2."""
    headings = re.findall(r"^## +(.+?)\s*$", chapter.markdown, re.M)
    problems = [
        f"no '## {name}' section" for name in ("Summary", "Exercises") if name not in headings
    ]
    if not problems and headings.index("Summary") > headings.index("Exercises"):
        problems.append("'## Summary' comes after '## Exercises'; expected Summary first")
    return problems


def check_figures(chapter: Chapter) -> list[str]:
    """Check that every figure has a caption, a ``fig-`` name and a {numref} in the text."""
    problems = []
    for number, cell in enumerate(chapter.code_cells, start=1):
        figure = cell.metadata.get("mystnb", {}).get("figure")
        plots = bool(_FIGURE_CALL.search(cell.source))
        if figure is None:
            if plots:
                problems.append(
                    f"code cell {number} draws a figure without a caption: add a "
                    "'mystnb: figure: {caption: ..., name: fig-...}' option block"
                )
            continue
        if not str(figure.get("caption") or "").strip():
            problems.append(f"code cell {number}: the figure has no caption")
        name = str(figure.get("name") or "")
        if not name.startswith("fig-"):
            problems.append(f"code cell {number}: figure name {name!r} does not start with 'fig-'")
    for match in _DIRECTIVE.finditer(chapter.markdown):
        if match["name"] == "figure":
            body = [ln for ln in match["body"].splitlines() if ln.strip()]
            if not [ln for ln in body if not ln.startswith(":")]:
                problems.append(f"the {{figure}} {match['arg'].strip()} has no caption")
        elif match["name"] == "image":
            problems.append(f"bare {{image}} {match['arg'].strip()}: use a captioned figure")
    if re.search(r"!\[[^\]]*\]\(", chapter.markdown):
        problems.append("a markdown image ![...](...) has no caption: use a captioned figure")
    numrefs = re.findall(r"\{numref\}`([^`]*)`", chapter.markdown)
    targets = {re.sub(r".*<(.+)>$", r"\1", ref.strip()) for ref in numrefs}
    problems += [
        f"figure {name} is never referred to by {{numref}}"
        for name in chapter.figure_names()
        if name not in targets
    ]
    return problems


def _exercise_labels(chapter: Chapter) -> tuple[list[str], set[str]]:
    exercises, solutions = [], set()
    for match in _DIRECTIVE.finditer(chapter.markdown):
        if match["name"] == "exercise":
            label = re.search(r"^:label:\s*(\S+)", match["body"], re.M)
            exercises.append(label.group(1) if label else "")
        elif match["name"] in {"solution", "solution-start"}:
            solutions.add(match["arg"].strip())
    return exercises, solutions


def check_exercises(chapter: Chapter, minimum: int = 3) -> list[str]:
    """Check for at least ``minimum`` labelled exercises, each with a solution (sphinx-exercise)."""
    exercises, solutions = _exercise_labels(chapter)
    problems = []
    if len(exercises) < minimum:
        problems.append(f"{len(exercises)} exercise(s); expected at least {minimum}")
    for label in exercises:
        if not label:
            problems.append("an {exercise} has no :label:")
        elif label not in solutions:
            problems.append(f"exercise {label} has no {{solution-start}} {label}")
    return problems


def check_seeded_generator(chapter: Chapter) -> list[str]:
    """Check that the chapter makes its generator with an explicit seed, and never without one."""
    seeded, problems = 0, []
    for number, tree in chapter.trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] in _NEEDS_SEED:
                name = _dotted(node.func)
                unseeded = not (node.args or node.keywords) or (
                    node.args
                    and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value is None
                )
                if unseeded:
                    problems.append(f"code cell {number}: {name}() without a seed")
                elif name.endswith("default_rng"):
                    seeded += 1
    if not seeded:
        problems.append("no seeded generator: expected rng = np.random.default_rng(<seed>)")
    return problems


def check_global_random_state(chapter: Chapter) -> list[str]:
    """Check that no code cell uses numpy's global random state (np.random.seed, ...)."""
    return [
        f"code cell {number} uses numpy's global random state: {use}; draw from "
        "rng = np.random.default_rng(<seed>) instead"
        for number, tree in chapter.trees()
        for use in global_random_state_uses(tree)
    ]


def check_glue_prefix(chapter: Chapter) -> list[str]:
    """Check that all glue names share one ``<abbreviation>_`` prefix."""
    prefixes = {name.split("_", 1)[0] for name in chapter.glue_names()}
    unprefixed = [n for n in chapter.glue_names() if "_" not in n]
    if unprefixed:
        return [f"glue names without a '<abbreviation>_' prefix: {unprefixed}"]
    if len(prefixes) > 1:
        return [f"glue names use several prefixes {sorted(prefixes)}; expected one per chapter"]
    return []


def check_runs_without_sphinx(chapter: Chapter) -> list[str]:
    """Check that the chapter imports nothing only the book build has (myst-nb, Sphinx).

    A reader runs the downloaded notebook with ``eiginit[notebooks]`` alone, so ``glue`` comes
    from eiginit (which hands it to myst-nb inside the build and prints the value elsewhere).
    """
    build_only = ("myst_nb", "sphinx", "docutils", "booktools")
    problems = []
    for number, tree in chapter.trees():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            problems += [
                f"code cell {number} imports {name}, which a reader's environment lacks; "
                "import glue from eiginit"
                for name in names
                if name.split(".")[0] in build_only
            ]
    return problems


def count_claims(chapter: Chapter) -> int:
    """Count the sentence checks in a chapter's code: calls of eiginit's ``claim`` and ``compare``.

    Every sentence that states a direction, an order, a threshold or a tie about a number the
    page computes is guarded by one (CONTRIBUTING.md, "Sentences that answer to their numbers").
    """
    count = 0
    for _, tree in chapter.trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] in {
                "claim",
                "compare",
            }:
                count += 1
    return count


ALL_CHECKS = (
    check_label,
    check_sections,
    check_figures,
    check_exercises,
    check_seeded_generator,
    check_global_random_state,
    check_glue_prefix,
    check_runs_without_sphinx,
)
