"""Sphinx configuration for the eiginit book (source folder: book/)."""

from __future__ import annotations

import os

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

exclude_patterns = ["_build", "jupyter_execute", ".jupyter_cache", "**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ math, amsmath environments, ::: fences.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# --- Execution, caching and reproducibility (issue 9; see CONTRIBUTING.md) -------------------
# Every chapter runs at build time and a failing cell fails the build. Locally the outputs are
# cached per chapter by jupyter-cache, which keys a chapter on its code cells only and so misses
# edits to the eiginit modules the chapter imports (myst-nb issue 299). The cache directory is
# therefore keyed on eiginit's files and the installed packages (booktools.build.cache_key):
# editing eiginit selects a fresh directory, and since the path is a config value Sphinx
# compares, every page is re-read and every chapter re-executed. Editing one chapter's code
# re-executes that chapter only; an unchanged rebuild executes nothing. CI (CI=true) always
# executes everything ("force"). EIGINIT_EXECUTION_MODE (off, force, cache) overrides both.
import sys  # noqa: E402

_ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _ROOT)
from booktools import build as _build  # noqa: E402

_build.make_reproducible()  # SOURCE_DATE_EPOCH and PYTHONHASHSEED, inherited by the kernels
_build.fix_stream_merging()  # printed output must not depend on when the kernel flushed it
nb_execution_mode = _build.execution_mode()
nb_execution_cache_path = str(_build.cache_dir(_ROOT))
nb_execution_in_temp = True  # a chapter writing files never touches book/ (preview loops)
nb_execution_raise_on_error = True
nb_execution_timeout = 180  # seconds per cell
nb_execution_show_tb = True
nb_merge_streams = True
# --- end of execution block -------------------------------------------------------------------

# Figures, equations and tables are numbered and referred to by number.
numfig = True
math_numfig = True
numfig_secnum_depth = 0

bibtex_bibfiles = ["book/references.bib"]  # relative to this file
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

html_theme = "sphinx_book_theme"
html_title = "Eigenvalues and weight initialization"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_source_button": False,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = True

nitpicky = True
