from __future__ import annotations

import matplotlib as mpl
import pytest

import eiginit


def test_style_is_white_and_colour_blind_safe() -> None:
    eiginit.use_book_style()
    assert mpl.rcParams["figure.facecolor"] == "white"
    assert mpl.rcParams["savefig.facecolor"] == "white"
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    assert colours[:3] == [
        eiginit.PALETTE["blue"],
        eiginit.PALETTE["orange"],
        eiginit.PALETTE["green"],
    ]
    assert mpl.rcParams["svg.hashsalt"] == "eiginit"


def test_style_rejects_non_bool() -> None:
    with pytest.raises(TypeError, match="svg must be True or False"):
        eiginit.use_book_style(svg="yes")  # type: ignore[arg-type]


def test_style_text_is_legible_in_the_column() -> None:
    """12-pt text: in an 8-inch figure shown 1:1 in the 772-px column, labels are 16 px and
    legends ("small", 10 pt) 13 px; the browser check measures what a phone shows."""
    from matplotlib.font_manager import FontProperties

    eiginit.use_book_style()
    assert mpl.rcParams["font.size"] == 12
    legend = FontProperties(size=mpl.rcParams["legend.fontsize"]).get_size_in_points()
    assert legend >= 9.9  # "small" is 0.833 of 12 pt
    width, _height = mpl.rcParams["figure.figsize"]
    assert width <= 8
