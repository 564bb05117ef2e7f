"""What a chapter notebook imports besides numpy and matplotlib: ``glue``, with or without Sphinx.

Every chapter computes the numbers its prose quotes and hands them to the book build with
``glue(name, value, display=False)``. Inside the build (and wherever myst-nb is installed) this is
myst-nb's own ``myst_nb.glue``, which stores the value's display form in the cell's metadata
for ``{glue:text}`` to pick up. A reader who downloads a chapter and runs it in plain Jupyter,
VS Code or Colab needs no Sphinx: there :func:`glue` prints ``name = value``, so the numbers the
text refers to appear under the cell that computed them.
"""

from __future__ import annotations

from typing import Any

from eiginit._checks import check_bool

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """Hand `value` to the book under `name`; without myst-nb, print it instead.

    Parameters
    ----------
    name : str
        The name the prose refers to, as in ``{glue:text}`name```.
    value : object
        What to show: a Python number or string (numpy scalars break format specs), or a figure.
    display : bool, default True
        Also show the value in the cell's output (myst-nb's meaning). Without myst-nb a value is
        printed either way, because the prose that would quote it is not there.

    Raises
    ------
    TypeError
        If `name` is not a non-empty string or `display` is not a bool (numpy's included).

    Examples
    --------
    Outside Sphinx and without myst-nb, the value is printed (with myst-nb, nothing is shown
    for ``display=False``):

    >>> import eiginit.notebook as nb
    >>> nb._myst_nb_glue = None  # pretend myst-nb is not installed
    >>> nb.glue("rho", 2.6036, display=False)
    rho = 2.6036
    >>> nb._myst_nb_glue = nb._UNSET  # look for myst-nb again next time
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    display = check_bool(display, "display")
    real = _myst_nb_glue if _myst_nb_glue is not _UNSET else _find_myst_nb_glue()
    if real is not None:
        real(name, value, display)
    else:
        print(f"{name} = {value}")


_UNSET: Any = object()
_myst_nb_glue: Any = _UNSET


def _find_myst_nb_glue() -> Any:
    """Return myst-nb's glue, or None when myst-nb is not installed (looked up once)."""
    global _myst_nb_glue
    try:
        from myst_nb import glue as found
    except ImportError:
        found = None
    _myst_nb_glue = found
    return found
