"""Sphinx configuration for the eiginit book (source folder: book/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

project = "Eigenvalues and weight initialization"
author = "The eiginit authors"
copyright = "2026, The eiginit authors"
release = "0.1.0"

extensions = [
    "myst_nb",  # loads myst_parser itself
    "sphinx_copybutton",
    "sphinx_exercise",
    "sphinx_togglebutton",
    "sphinxcontrib.bibtex",
]

# The book's own build tooling (booktools/, importable from the project root): the Sphinx
# extension (chapter map, API reference, offline MathJax, notebook downloads, offline guard).
sys.path.insert(0, str(Path(__file__).resolve().parent))
extensions += [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "booktools.sphinx_ext",
    "booktools.run_at_home",  # serves the wheel; says how to run a chapter at home
]

exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ math, amsmath environments, ::: fences.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# Kernels inherit this process's environment: one BLAS thread each. The book's matrices are
# small; on 2 busy cores threaded OpenBLAS ran batched eigvals and QR 10 to 30 times slower, and a
# single thread also fixes the order of floating-point sums (reproducible figures). A variable
# already set is left alone.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# --- Execution, caching and reproducibility (see CONTRIBUTING.md) -----------------------------
# Every chapter runs at build time and a failing cell fails the build. Locally the outputs are
# cached per chapter by jupyter-cache, which keys a chapter on its code cells only and so misses
# edits to the eiginit modules the chapter imports (myst-nb issue 299). The cache directory is
# therefore keyed on eiginit's files and the installed packages (booktools.build.cache_key):
# editing eiginit selects a fresh directory, and since the path is a config value Sphinx
# compares, every page is re-read and every chapter re-executed. Editing one chapter's code
# re-executes that chapter only; an unchanged rebuild executes nothing. CI (CI=true) always
# executes everything ("force"). EIGINIT_EXECUTION_MODE (off, force, cache) overrides both.
_ROOT = os.path.dirname(os.path.abspath(__file__))
from booktools import build as _build  # noqa: E402
from booktools import mystnb_patches as _patches  # noqa: E402

_build.make_reproducible()  # SOURCE_DATE_EPOCH and PYTHONHASHSEED, inherited by the kernels
# Three patches to myst-nb, each checked first against the myst-nb code it was written for (a
# changed upstream stops the build and says what to re-check): printed output must not depend on
# when the kernel flushed it, the executed .ipynb downloads must not carry random cell ids, and a
# chapter served from the cache keeps its outputs in its download.
_patches.apply_all()
nb_execution_mode = _build.execution_mode()
nb_execution_cache_path = str(_build.cache_dir(_ROOT))
nb_execution_in_temp = True  # a chapter writing files never touches book/ (preview loops)
nb_execution_raise_on_error = True
nb_execution_timeout = 180  # seconds per cell
nb_execution_show_tb = True
nb_merge_streams = True
# Each notebook's budget is 60 s alone on the build machine (2 cores): the execution-statistics
# page marks a notebook over it and the build log names the slowest. A measured time fails the
# build only in CI, on its own machine, and only past 120 s (twice the budget: CI runs two
# chapters at once on its two cores); on a shared machine a chapter within budget can take several
# times as long, and a timing is no reason to fail a contributor's build.
# `nox -s bench` reports every notebook against the budget. EIGINIT_NOTEBOOK_TIME_LIMIT (seconds,
# 0 for none) overrides the limit.
eiginit_notebook_budget = 60
eiginit_notebook_time_limit = (
    float(os.environ.get("EIGINIT_NOTEBOOK_TIME_LIMIT", "120" if _build.in_ci() else "0")) or None
)
# --- end of execution block -------------------------------------------------------------------

# Figures, equations and tables are numbered and referred to by number, per chapter: "Fig. 9.2",
# "(13.4)". The chapters are numbered by book/index.md's `:numbered:` toctrees, one per part;
# booktools/sphinx_ext.py makes the numbers run on across the parts (Sphinx restarts each toctree
# at 1). Prose refers to a chapter with {numref}`chapter %s <ch-slug>` (python -m
# booktools.chapter_refs writes these), so a renumbered chapter is never cited by its old number.
numfig = True
math_numfig = True
numfig_secnum_depth = 1

bibtex_bibfiles = ["book/references.bib"]  # relative to this file
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

html_theme = "sphinx_book_theme"
html_title = "Eigenvalues and weight initialization"
html_theme_options = {
    # No top navbar: pydata-sphinx-theme 0.20 fills an unset navbar with a second search field,
    # and its hidden sidebar toggles there take the click handlers of the visible ones, so the
    # menu buttons did nothing (sphinx-book-theme issue 986, PR 1000).
    "navbar_persistent": [],
    "use_fullscreen_button": False,  # does nothing useful on a phone; browsers have their own
    "show_toc_level": 2,
    "use_download_button": True,
    "use_source_button": False,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = True

# --- Theme, offline assets, math, API reference ----------------------------------------------
html_static_path = ["book/_static"]
html_css_files = ["eiginit.css"]
html_js_files = [("eiginit.js", {"defer": "defer"})]  # inline math that does not fit scrolls
templates_path = ["book/_templates"]  # layout.html: the tab title names the book once
# A logo, not a figure: kept out of book/, where every image is made by the build. Without a
# favicon, browsers ask for /favicon.ico (a 404, which is a console error).
html_favicon = "booktools/assets/favicon.svg"
html_context = {"default_mode": "auto"}  # light or dark as the reader's system says
html_show_sourcelink = True
html_sourcelink_suffix = ""  # _sources/<page>.md, the chapter's own source

# Math renders offline: MathJax 3 is copied from a PyPI package into _static/mathjax by
# booktools/sphinx_ext.py (no CDN); the theme's fonts and icons are bundled by the theme.
mathjax_path = "mathjax/tex-chtml.js"

# Copy buttons skip prompts and outputs, so a copied doctest example runs as it is.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"

# API reference from numpy-style docstrings: type hints in the signature, and each parameter's
# docstring type ("array_like, shape (k, k)") kept as the text the author wrote, not a link.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
# A signature longer than this puts one parameter per line (it ran past a phone's screen).
python_maximum_signature_line_length = 60
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # a result's fields as one compact list
viewcode_line_numbers = True

# Nitpicky cross-references with no network: intersphinx cannot fetch numpy's or matplotlib's
# inventories, so references into third-party packages stay plain text instead of failing.
nitpicky = True
# "More than one target found" (ref.python) comes only from words of numpy-style type specs that
# are also member names, such as the depth in "shape (depth,)": MLP.depth and
# PropagationStats.depth both exist. Missing targets (ref.class, ref.func, ...) still fail.
suppress_warnings = ["ref.python"]
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|npt|matplotlib|mpl|scipy|sklearn|cycler)(\..*)?"),
    (r"py:.*", r"(torch|jax|tensorflow|keras)(\..*)?"),  # frameworks the chapters compare with
    # The standard library has no local inventory either (builtins and typing resolve already).
    (
        r"py:.*",
        r"(collections|pathlib|dataclasses|enum|types|os|io|numbers|fractions|functools)(\..*)?",
    ),
    (r"py:.*", r"(array_like|array-like|optional|callable|scalar|Generator|NDArray|ArrayLike)"),
    # Words of a numpy-style type spec ("numpy.ndarray, shape (k, k)", "float, default 1e-14")
    # that Sphinx splits into would-be classes: lowercase undotted words and anything with a
    # space, a parenthesis or a digit. Dotted and capitalised names are still checked.
    (r"py:class", r"[a-z_][a-z0-9_]*|.*[\s()+*/0-9].*"),
]

# --- The PDF edition (`nox -s pdf`; booktools/pdf.py, booktools/pdf_check.py) -----------------
# The LaTeX build runs with this same configuration and the HTML build's doctrees, so Sphinx reads
# nothing again and no chapter executes twice. booktools.pdf converts the SVG figures to PDF
# (rsvg-convert) for LaTeX only; myst-nb's LaTeX mime list lacks SVG, so SVG comes right after PDF
# (the HTML list is unchanged). xelatex sets the prose in DejaVu, which has the chapters' Greek
# letters and symbols; no xindy (makeindex ships with TeX Live's binaries).
from booktools.pdf import LATEX_PREAMBLE as _PDF_PREAMBLE  # noqa: E402

extensions += ["booktools.pdf"]

nb_mime_priority_overrides = [("latex", "image/svg+xml", 15)]
latex_engine = "xelatex"
latex_documents = [("index", "eiginit.tex", project, author, "manual")]
latex_use_xindy = False
latex_show_urls = "footnote"
latex_elements = {
    "papersize": "a4paper",
    "pointsize": "10pt",
    "fontpkg": "\\setmainfont{DejaVu Serif}\n\\setsansfont{DejaVu Sans}\n"
    "\\setmonofont{DejaVu Sans Mono}[Scale=0.85]\n",
    "sphinxsetup": "verbatimwrapslines=true, verbatimforcewraps=true",
    "preamble": _PDF_PREAMBLE,
}
