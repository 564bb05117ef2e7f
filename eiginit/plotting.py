"""One plotting style for the whole book.

Every chapter starts with ``eiginit.use_book_style()``: a white figure background (legible in
the theme's dark mode), the colour-blind-safe Okabe-Ito palette (Okabe & Ito 2008, "Color
Universal Design"), light grids, and deterministic SVG output for Jupyter (a fixed hash salt
and no date stamp), so two builds of the same commit give byte-identical figures.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
from cycler import cycler

from eiginit._checks import check_bool

__all__ = ["PALETTE", "use_book_style"]

#: The Okabe-Ito colour-blind-safe palette by name; black comes last, as the "theory" ink.
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

_RC: dict[str, Any] = {
    "axes.prop_cycle": cycler(color=list(PALETTE.values())),
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "axes.labelsize": "medium",
    "legend.frameon": False,
    "legend.fontsize": "small",
    "lines.linewidth": 1.6,
    "font.size": 12,
    "svg.hashsalt": "eiginit",
    "svg.fonttype": "path",
    "image.cmap": "viridis",
}


def use_book_style(*, svg: bool = True) -> None:
    """Apply the book's matplotlib style (and, inside Jupyter, SVG output).

    Parameters
    ----------
    svg : bool, default True
        In a Jupyter kernel, render inline figures as deterministic SVG (vector, crisp at any
        zoom). Outside a kernel this has no effect. Dense scatters should pass
        ``rasterized=True`` to the artist to keep the file small.

    Examples
    --------
    >>> use_book_style()
    >>> import matplotlib as mpl
    >>> mpl.rcParams["figure.facecolor"]
    'white'
    """
    svg = check_bool(svg, "svg")
    mpl.rcParams.update(_RC)
    if svg:
        _inline_svg()


def _inline_svg() -> None:
    """Ask the Jupyter inline backend for SVG without a date stamp, if it is running."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to configure
        return
    if get_ipython() is None:
        return
    set_matplotlib_formats("svg", metadata={"Date": None})
