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
