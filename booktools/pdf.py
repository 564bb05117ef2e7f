"""The PDF edition of the book: Sphinx's LaTeX builder, xelatex, and the SVG figures as PDF.

Two jobs, both run by ``nox -s pdf`` (see noxfile.py):

- A Sphinx extension, loaded from ``conf.py`` for every build (so the HTML and LaTeX builds share
  one configuration, and the LaTeX build reuses the HTML build's executed doctrees instead of
  executing the chapters again). For the HTML builder it only links the PDF from the landing
  page. For the LaTeX builder it converts every SVG image (the book style draws its figures as
  SVG) to a vector PDF with ``rsvg-convert`` (Debian's ``librsvg2-bin``), since LaTeX includes
  PDF, PNG and JPEG only; makes the landing page's toctrees parts and their pages chapters
  (:func:`structure_parts`); lets long tables break across pages and sets wide ones smaller; and
  labels exercises so that their solutions' titles link to them.
- ``python -m booktools.pdf LATEX_DIR --doctrees DIR [--html-dir SITE]``: runs ``latexmk`` on the
  ``.tex`` file Sphinx wrote (xelatex, as Sphinx's own ``latexmkrc`` says), checks the PDF
  (:mod:`booktools.pdf_check`), then copies it into the built HTML site, where the landing page
  links it (:data:`PDF_NAME`).

The TeX side comes from Debian (README.md, :data:`APT_PACKAGES`). xelatex sets the prose in
DejaVu, whose fonts cover the Greek letters and symbols the chapters write as Unicode.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms.images import ImageConverter
from sphinx.util import logging
from sphinx.util.texescape import escape

from booktools.build import make_reproducible

logger = logging.getLogger(__name__)

__all__ = [
    "APT_PACKAGES",
    "LATEX_BASENAME",
    "LATEX_PREAMBLE",
    "PDF_NAME",
    "SvgToPdfConverter",
    "add_pdf_link",
    "break_long_tables",
    "build_pdf",
    "label_exercises_for_latex",
    "latex_structure",
    "main",
    "pdf_link",
    "setup",
    "shrink_wide_tables",
    "structure_parts",
    "toctrees_of",
]

#: The Debian packages the PDF edition needs (``apt-get install --no-install-recommends``).
APT_PACKAGES = (
    "texlive-xetex",
    "texlive-latex-recommended",
    "texlive-latex-extra",
    "texlive-fonts-recommended",
    "latexmk",
    "librsvg2-bin",
    "poppler-utils",
    "fonts-dejavu-core",
)
#: The name of the ``.tex`` file (and so of the PDF) that ``latex_documents`` in conf.py names.
LATEX_BASENAME = "eiginit"
#: The name under which the PDF is served at the site's root (the landing page links it).
PDF_NAME = "eiginit-book.pdf"
#: Added to the LaTeX preamble (conf.py). DejaVu covers the chapters' Greek letters and symbols
#: but has no emoji: the execution-statistics table marks a notebook that ran with U+2705, which
#: the PDF draws as DejaVu Sans's check mark (U+2713); a failure mark likewise, in case. Sphinx
#: titles the table of contents with the root page's first toctree caption ("Part I, ..."): the
#: book's is "Contents" (the captions are the parts, see :func:`structure_parts`). The PDF's
#: outline (its bookmarks) is plain text: hyperref drops the math of a section title, so
#: "Estimating $\sigma_{\max}$" read "Estimating : ..."; the symbols the titles use are spelled in
#: Unicode there instead.
LATEX_PREAMBLE = r"""
\addto\captionsenglish{\renewcommand{\contentsname}{Contents}}
\usepackage{newunicodechar}
\newunicodechar{✅}{{\fontspec{DejaVu Sans}✓}}
\newunicodechar{❌}{{\fontspec{DejaVu Sans}✗}}
\AtBeginDocument{\pdfstringdefDisableCommands{%
  \def\({}\def\){}\def\alpha{α}\def\beta{β}\def\gamma{γ}\def\eta{η}\def\lambda{λ}%
  \def\mu{μ}\def\rho{ρ}\def\sigma{σ}\def\chi{χ}\def\max{max}\def\min{min}%
  \def\approx{ ≈ }\def\sqrt#1{√#1}}}
"""  # noqa: RUF001 (Greek letters, on purpose)
RSVG = "rsvg-convert"


class SvgToPdfConverter(ImageConverter):
    """Convert SVG images to PDF with ``rsvg-convert`` for builders that cannot include SVG.

    Sphinx runs an image converter only where the builder lacks the image's type, so the HTML
    pages keep their SVG figures and the LaTeX build gets a vector PDF of each.
    """

    default_priority = 200
    conversion_rules = [("image/svg+xml", "application/pdf")]  # noqa: RUF012 (Sphinx's API)

    def is_available(self) -> bool:
        """Tell whether ``rsvg-convert`` is on the PATH (warn once when it is not)."""
        if shutil.which(RSVG):
            return True
        logger.warning(
            "%s not found: the PDF edition's SVG figures cannot be converted "
            "(apt-get install librsvg2-bin)",
            RSVG,
        )
        return False

    def convert(self, _from: str | os.PathLike[str], _to: str | os.PathLike[str]) -> bool:
        """Write `_to`, a PDF of the SVG file `_from`; a failure is an error that names the file."""
        command = [RSVG, "--format=pdf", f"--output={os.fspath(_to)}", os.fspath(_from)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{RSVG} failed on {_from}: {done.stderr.strip()}")
        return True


def pdf_link() -> nodes.paragraph:
    """Return the landing page's line that links the PDF edition (served as :data:`PDF_NAME`)."""
    para = nodes.paragraph(classes=["pdf-edition"])
    para += nodes.Text("The whole book is also one PDF, for print or offline reading: ")
    para += nodes.reference("", PDF_NAME, refuri=PDF_NAME)
    para += nodes.Text(" (every chapter with its figures, equations, exercises and solutions).")
    return para


def add_pdf_link(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Put the PDF link under the landing page's title, in the HTML pages only.

    Every HTML build writes the link; ``nox -s pdf`` puts the file beside it (``python -m
    booktools.pdf --html-dir``), after checking it. Until then the link has no file behind it,
    which ``booktools.browser_check`` reports as a note, not a failure: the HTML build stays
    strict and independent of TeX, and CI runs the pdf session before the browser session, so
    there the link is checked like any other.
    """
    if app.builder.format != "html" or docname != app.config.root_doc:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    title_index = next(
        (i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1
    )
    section.insert(title_index + 1, pdf_link())


# --- The book's structure in LaTeX: parts, and chapters numbered as on the site --------------

#: A toctree whose caption starts with this word holds the book's chapters ("Part I, ..."); the
#: pages of the toctrees after them (the practitioner's guide, the back matter) are appendices.
NUMBERED_CAPTION = re.compile(r"^part\b", re.IGNORECASE)


def _raw_latex(text: str) -> nodes.raw:
    return nodes.raw("", text, format="latex")


def _part(caption: str) -> nodes.raw:
    title = escape(caption)
    return _raw_latex(
        f"\\clearpage\\phantomsection\\addcontentsline{{toc}}{{part}}{{{title}}}"
        f"\\part*{{{title}}}\n"
    )


def structure_parts(largetree: nodes.document, toctrees: list[tuple[str, list[str]]]) -> None:
    """Make the root page's toctrees the book's parts and their pages its chapters, in LaTeX.

    `toctrees` lists the root page's toctrees in order, each as (caption, included docnames).
    Sphinx inlines every included page where its toctree stood; on the landing page that is
    inside a section ("Contents"), so every chapter would become a section of one chapter. Here
    each toctree's pages move up to the top level, where they are chapters, and a toctree's
    caption becomes an unnumbered part (unless it is the title of its only page). The chapters
    of the toctrees captioned "Part ..." are numbered 1, 2, ..., as the prose and the site number
    them; the pages of the toctrees after them are lettered appendices (A, B, ...), so their
    figures and equations never repeat a chapter's numbers; the landing page's own sections
    before them are unnumbered.
    """
    top = next(iter(largetree.findall(nodes.section)), None)
    if top is None:
        return
    by_first = {docs[0]: (caption, docs) for caption, docs in toctrees if docs}
    groups = [
        sof
        for sof in largetree.findall(addnodes.start_of_file)
        if sof["docname"] in by_first and sof.parent is not top
    ]
    if not groups:
        return
    top.insert(
        0,
        _raw_latex(
            "\\newcounter{eiginitsecnumdepth}"
            "\\setcounter{eiginitsecnumdepth}{\\value{secnumdepth}}"
            "\\setcounter{secnumdepth}{-1}\n"
        ),
    )
    holders = []
    appendix = False
    for index, first in enumerate(groups):
        caption, docs = by_first[first["docname"]]
        wrapper = first.parent
        members = [c for c in wrapper.children if isinstance(c, addnodes.start_of_file)]
        holders.append(wrapper.parent)
        wrapper.parent.remove(wrapper)
        if index == 0:
            top += _raw_latex("\\setcounter{secnumdepth}{\\value{eiginitsecnumdepth}}\n")
        if not appendix and not NUMBERED_CAPTION.match(caption.strip()):
            top += _raw_latex("\\appendix\n")
            appendix = True
        if not (len(docs) == 1 and _first_title(members[0]) == _plain(caption)):
            top += _part(caption)
        top.extend(members)
    for holder in dict.fromkeys(holders):
        empty = all(isinstance(c, nodes.title | nodes.target) for c in holder.children)
        if holder is not top and isinstance(holder, nodes.section) and empty:
            holder.parent.remove(holder)


def _plain(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split()).lower()


def _first_title(sof: nodes.Element) -> str:
    title = next(iter(sof.findall(nodes.title)), None)
    return _plain(title.astext()) if title is not None else ""


def toctrees_of(doctree: nodes.document) -> list[tuple[str, list[str]]]:
    """Return (caption, included docnames) of every toctree of a page, in order."""
    return [
        (node.get("caption") or "", list(node.get("includefiles", [])))
        for node in doctree.findall(addnodes.toctree)
    ]


_FLOWING = (nodes.section, nodes.document, addnodes.start_of_file)


def break_long_tables(doctree: nodes.document) -> int:
    """Let every table in the running text break across pages (LaTeX's ``longtable``).

    Sphinx sets a table of up to 30 rows in one unbreakable block, and the notation page's tables
    of tall rows ran past the foot of the page. A table inside a box (an admonition, an exercise,
    a container) keeps Sphinx's choice: ``longtable`` cannot sit in a box. Returns the count.
    """
    changed = 0
    for table in doctree.findall(nodes.table):
        ancestor, flowing = table.parent, True
        while ancestor is not None:
            flowing = flowing and isinstance(ancestor, _FLOWING)
            ancestor = ancestor.parent
        if flowing and "longtable" not in table["classes"]:
            table["classes"].append("longtable")
            changed += 1
    return changed


#: A table with at least this many columns is set in a smaller font in the PDF.
WIDE_TABLE_COLUMNS = 5


def shrink_wide_tables(doctree: nodes.document, columns: int = WIDE_TABLE_COLUMNS) -> int:
    """Set every table of `columns` or more columns in a small font; return the count.

    A portrait page gives each of the practitioner's guide's six columns under 3 cm, too narrow
    for its code (``torch.nn.init.orthogonal_(w, gain=math.sqrt(sigma_w2))``) at the body size.
    """
    changed = 0
    for table in list(doctree.findall(nodes.table)):
        group = next(iter(table.findall(nodes.tgroup)), None)
        if group is None or int(group.get("cols", 0)) < columns or table.parent is None:
            continue
        parent = table.parent
        at = parent.index(table)
        parent.insert(at + 1, _raw_latex("\\endgroup\n"))
        parent.insert(at, _raw_latex("\\begingroup\\footnotesize\n"))
        changed += 1
    return changed


def latex_structure(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """On the LaTeX builder's assembled book (the root page): parts, chapters, long tables."""
    if app.builder.format != "latex" or docname != app.config.root_doc:
        return
    structure_parts(doctree, toctrees_of(app.env.get_doctree(docname)))
    break_long_tables(doctree)
    shrink_wide_tables(doctree)


def _labelled(visit: Callable[[Any, nodes.Element], None]) -> Callable[[Any, nodes.Element], None]:
    """Wrap a LaTeX visitor of sphinx-exercise so the exercise also gets Sphinx's own label.

    sphinx-exercise (1.x) labels an exercise ``exercise:<label>`` in LaTeX, but the title of its
    solution ("Solution to Exercise 3.2") is a Sphinx reference to ``<docname>:<label>``, which
    then points nowhere: LaTeX reports an undefined reference and the link is dead. Writing the
    node's standard labels (``hypertarget_to``) first makes both kinds of reference resolve.
    """

    def visit_with_label(self: Any, node: nodes.Element) -> None:
        self.body.append(self.hypertarget_to(node, anchor=True))
        visit(self, node)

    return visit_with_label


def label_exercises_for_latex(app: Sphinx) -> None:
    """Give sphinx-exercise's exercise nodes Sphinx's standard LaTeX labels (see `_labelled`)."""
    if "sphinx_exercise" not in app.extensions:
        return
    from sphinx_exercise import nodes as exercise

    for node, visit, depart in [
        (exercise.exercise_node, exercise.visit_exercise_node, exercise.depart_exercise_node),
        (
            exercise.exercise_enumerable_node,
            exercise.visit_exercise_enumerable_node,
            exercise.depart_exercise_enumerable_node,
        ),
    ]:
        app.registry.add_translation_handlers(node, latex=(_labelled(visit), depart))


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the SVG-to-PDF converter (it acts only for builders without SVG), the PDF link."""
    app.add_post_transform(SvgToPdfConverter)
    app.connect("doctree-resolved", add_pdf_link)
    app.connect("doctree-resolved", latex_structure)
    label_exercises_for_latex(app)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


# --- latexmk, and the PDF served with the site ------------------------------------------------


def build_pdf(latex_dir: str | os.PathLike[str], *, basename: str = LATEX_BASENAME) -> Path:
    """Run latexmk in `latex_dir` on ``<basename>.tex`` as Sphinx's Makefile would; return the PDF.

    Sphinx writes a ``latexmkrc`` beside the ``.tex`` file that selects the engine (xelatex
    here) and its options; latexmk reruns the engine until the cross-references settle.
    """
    folder = Path(latex_dir)
    tex = folder / f"{basename}.tex"
    if not tex.is_file():
        raise FileNotFoundError(f"no {tex.name} in {folder}: run the LaTeX build first")
    if shutil.which("latexmk") is None:
        raise FileNotFoundError(
            "latexmk not found: apt-get install --no-install-recommends " + " ".join(APT_PACKAGES)
        )
    command = ["latexmk", "-pdf", "-dvi-", "-ps-", "-interaction=nonstopmode", "-halt-on-error"]
    # The PDF's dates and identifier come from the last commit's time, not the clock (xdvipdfmx
    # reads SOURCE_DATE_EPOCH; FORCE_SOURCE_DATE makes TeX's own date follow it too).
    make_reproducible()
    env = {**os.environ, "FORCE_SOURCE_DATE": "1"}
    done = subprocess.run([*command, tex.name], cwd=folder, env=env, check=False)
    pdf = folder / f"{basename}.pdf"
    if done.returncode != 0 or not pdf.is_file():
        raise RuntimeError(f"latexmk failed in {folder} (see {basename}.log there)")
    return pdf


def main(argv: list[str] | None = None) -> int:
    """Build the PDF from Sphinx's LaTeX output, check it, and serve it with the HTML site.

    The check is :mod:`booktools.pdf_check`; the PDF goes into the site (as :data:`PDF_NAME`,
    the file the landing page links) only when it passes, and only when there is a built site.
    """
    parser = argparse.ArgumentParser(prog="python -m booktools.pdf", description=__doc__)
    parser.add_argument("latex_dir", type=Path, help="the LaTeX builder's output folder")
    parser.add_argument(
        "--doctrees", type=Path, required=True, help="the build's doctree folder (for the check)"
    )
    parser.add_argument(
        "--html-dir",
        type=Path,
        default=None,
        help=f"the built HTML site: the check counts its figures, the PDF is served as {PDF_NAME}",
    )
    args = parser.parse_args(argv)
    pdf = build_pdf(args.latex_dir)
    print(f"built {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    site = args.html_dir if args.html_dir and (args.html_dir / "index.html").is_file() else None
    check = [str(pdf), "--latex-dir", str(args.latex_dir), "--doctrees", str(args.doctrees)]
    if site is not None:
        check += ["--html-dir", str(site)]
    from booktools import pdf_check

    if pdf_check.main(check) != 0:
        return 1
    if site is None:
        print("no built HTML site: the PDF is not copied into one (run `nox -s docs` first)")
        return 0
    target = site / PDF_NAME
    shutil.copyfile(pdf, target)
    print(f"served with the site as {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
