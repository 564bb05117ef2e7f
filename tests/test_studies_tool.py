"""`nox -s study` (booktools/studies.py): one command for every chapter's stored study."""

from __future__ import annotations

import io

import pytest

from booktools import studies, training_study
from eiginit import study


def test_plan_selects_studies_and_cells_and_names_unknown_ones():
    everything = studies.plan([])
    assert [c for s, _, c in everything if s == "training"] == study.cells()
    assert {s for s, _, _ in everything} == set(studies.STUDIES) == {"training", "gated"}
    one = studies.plan(["training:digits-relu-sgd"])
    assert [(s, c) for s, _, c in one] == [("training", "digits-relu-sgd")]
    assert studies.plan(["digits-relu-sgd"]) == one  # a bare cell name works too
    assert len(studies.plan(["training"])) == len(study.cells())
    with pytest.raises(ValueError, match="no study or cell 'training:nope'"):
        studies.plan(["training:nope"])


def test_progress_reports_the_share_done_and_the_time_left():
    out = io.StringIO()
    bar = studies.Progress(200.0, stream=out, width=10)
    bar.label = "training:x"
    bar.advance(50.0)
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("[##")
    assert " 25.0 %" in line
    assert "elapsed, ~" in line
    assert "left" in line
    assert line.endswith("training:x")
    bar.advance(400.0)  # more work than estimated: never above 100 %
    assert "100.0 %" in out.getvalue().splitlines()[-1]


def test_estimates_grow_with_seeds_epochs_and_contenders():
    small = training_study.estimate("digits-relu-adam")
    assert small > 0
    assert training_study.estimate("mnist1d-relu-adam") > small  # more rows, same grid
    assert training_study.estimate("digits-tanh-adam") > small  # one contender more
