"""The PDF edition of the book: Sphinx's LaTeX builder, xelatex, and the SVG figures as PDF.

Two jobs, both run by ``nox -s pdf`` (see noxfile.py):

- A Sphinx extension, loaded from ``conf.py`` for every build (so the HTML and LaTeX builds share
  one configuration, and the LaTeX build reuses the HTML build's executed doctrees instead of
  executing the chapters again). It does nothing for the HTML builder. For the LaTeX builder it
  converts every SVG image (the book style draws its figures as SVG) to a vector PDF with
  ``rsvg-convert`` (Debian's ``librsvg2-bin``), since LaTeX includes PDF, PNG and JPEG only.
- ``python -m booktools.pdf LATEX_DIR [--copy-to FOLDER]``: runs ``latexmk`` on the ``.tex`` file
  Sphinx wrote (xelatex, as Sphinx's own ``latexmkrc`` says), then copies the PDF into the
  built HTML site, where the landing page links it (:data:`PDF_NAME`).

The TeX side comes from Debian (README.md): ``texlive-xetex texlive-latex-recommended
texlive-latex-extra texlive-fonts-recommended latexmk librsvg2-bin poppler-utils
fonts-dejavu-core``. xelatex sets the
prose in DejaVu, whose fonts cover the Greek letters and symbols the chapters write as Unicode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms.images import ImageConverter
from sphinx.util import logging

logger = logging.getLogger(__name__)

__all__ = [
    "APT_PACKAGES",
    "LATEX_BASENAME",
    "LATEX_PREAMBLE",
    "PDF_NAME",
    "SvgToPdfConverter",
    "add_pdf_link",
    "build_pdf",
    "label_exercises_for_latex",
    "main",
    "pdf_link",
    "setup",
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
#: the PDF draws as DejaVu Sans's check mark (U+2713); a failure mark likewise, in case.
LATEX_PREAMBLE = r"""
\usepackage{newunicodechar}
\newunicodechar{✅}{{\fontspec{DejaVu Sans}✓}}
\newunicodechar{❌}{{\fontspec{DejaVu Sans}✗}}
"""
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

    The link is written by every HTML build; the file is put beside it by ``nox -s pdf``
    (``python -m booktools.pdf --copy-to``). Until then the link has no file behind it, which
    ``booktools.browser_check`` reports as a note, not a failure.
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
    done = subprocess.run([*command, tex.name], cwd=folder, check=False)
    pdf = folder / f"{basename}.pdf"
    if done.returncode != 0 or not pdf.is_file():
        raise RuntimeError(f"latexmk failed in {folder} (see {basename}.log there)")
    return pdf


def main(argv: list[str] | None = None) -> int:
    """Build the PDF from Sphinx's LaTeX output and copy it into the HTML site."""
    parser = argparse.ArgumentParser(prog="python -m booktools.pdf", description=__doc__)
    parser.add_argument("latex_dir", type=Path, help="the LaTeX builder's output folder")
    parser.add_argument(
        "--copy-to",
        type=Path,
        default=None,
        help=f"a folder (the built HTML site) to copy the PDF into as {PDF_NAME}",
    )
    args = parser.parse_args(argv)
    pdf = build_pdf(args.latex_dir)
    print(f"built {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    if args.copy_to is not None:
        args.copy_to.mkdir(parents=True, exist_ok=True)
        target = args.copy_to / PDF_NAME
        shutil.copyfile(pdf, target)
        print(f"copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
