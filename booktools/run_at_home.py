"""Run a chapter at home: the site serves the eiginit wheel it was built with, and says how.

A Sphinx extension, loaded from ``conf.py``. After a successful HTML build it builds the wheel of
the package in this checkout (hatchling's PEP 517 ``build_wheel``, reproducible under
``SOURCE_DATE_EPOCH``) into the site's root folder, so the wheel a reader downloads is always the
code that executed the chapters. Every chapter page (a page that is a notebook, other than the
landing page) opens with a box, right under its title, that links the chapter's notebook and the
wheel and gives the one install line, :data:`INSTALL_LINE`; ``booktools.reader_check`` runs that
same line in a fresh environment and executes downloaded notebooks, as a reader would.

The extra named by the line, ``eiginit[notebooks]`` in ``pyproject.toml``, brings what a chapter
imports beyond numpy and matplotlib (scipy, scikit-learn for the digits, mnist1d for MNIST-1D) and
nothing the book build alone needs: a chapter's ``glue`` calls come from :mod:`eiginit.notebook`,
which prints the values when myst-nb is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

from booktools.wheel import (
    EXTRA,
    INSTALL_LINE,
    build_wheel,
    install_line,
    project_version,
    wheel_name,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRA",
    "INSTALL_LINE",
    "add_run_at_home",
    "build_wheel",
    "install_line",
    "is_chapter",
    "project_version",
    "run_at_home_box",
    "serve_wheel",
    "setup",
    "wheel_name",
]


def serve_wheel(app: Sphinx, exc: Exception | None) -> None:
    """After a successful HTML build, put the wheel the chapters ran with at the site's root."""
    if exc is not None or app.builder.format != "html":
        return
    expected = wheel_name(project_version())
    built = build_wheel(Path(app.outdir))
    if built.name != expected:
        logger.warning("the wheel built as %s, but the chapter pages link %s", built.name, expected)


def is_chapter(app: Sphinx, docname: str) -> bool:
    """Tell whether `docname` is a chapter: a notebook page other than the landing page."""
    if docname == app.config.root_doc:
        return False
    return "kernelspec" in app.env.metadata.get(docname, {})


def run_at_home_box(pagename: str, prefix: str, version: str) -> nodes.Element:
    """Return the box a chapter page opens with: the downloads and the line that installs them.

    `prefix` is the relative path from the page to the site's root ("" for a top-level page).
    """
    box = nodes.admonition(classes=["tip", "dropdown", "run-at-home"])
    box += nodes.title(text="Run this chapter on your own machine")
    notebook = f"{prefix}_sources/{pagename}.ipynb"
    wheel = wheel_name(version)
    para = nodes.paragraph()
    para += nodes.Text("Download the chapter's notebook, ")
    para += nodes.reference("", f"{pagename}.ipynb", refuri=notebook)
    para += nodes.Text(" (or the download button above), and the package it imports, ")
    para += nodes.reference("", wheel, refuri=f"{prefix}{wheel}")
    para += nodes.Text(
        ", into one folder. In a terminal in that folder, with Python 3.11 or newer"
        " (a virtual environment is a good idea), install both:"
    )
    box += para
    box += nodes.literal_block(install_line(version), install_line(version), language="console")
    after = nodes.paragraph()
    after += nodes.Text(
        "then open the notebook in Jupyter, VS Code or Colab and run it (no network, no Sphinx "
        "needed: the digits and MNIST-1D are made from the installed packages). The extra "
    )
    after += nodes.literal(text=f"[{EXTRA}]")
    after += nodes.Text(
        " brings what the chapters import besides eiginit; the numbers the text quotes are"
        " printed under the cells that compute them. Add "
    )
    after += nodes.literal(text="jupyterlab")
    after += nodes.Text(" to the install line if you have no Jupyter.")
    box += after
    return box


def add_run_at_home(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Insert the run-at-home box right under the title of every chapter page."""
    if app.builder.format != "html" or not is_chapter(app, docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    uri = app.builder.get_relative_uri(docname, app.config.root_doc)
    prefix = uri.rsplit("/", 1)[0] + "/" if "/" in uri else ""
    box = run_at_home_box(docname, prefix, project_version())
    title_index = next(
        (i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1
    )
    section.insert(title_index + 1, box)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the run-at-home box and the served wheel."""
    app.connect("doctree-resolved", add_run_at_home)
    app.connect("build-finished", serve_wheel)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
