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

# Execution: every chapter runs at build time; a failing cell fails the build.
# Kernels inherit this process's environment: one BLAS thread each. The book's matrices are
# small, and on shared cores threaded LAPACK (QR above all) runs up to 20 times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
nb_execution_mode = os.environ.get("EIGINIT_EXECUTION_MODE", "force")
nb_execution_raise_on_error = True
nb_execution_timeout = 180  # seconds per cell
nb_execution_show_tb = True
nb_merge_streams = True

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
