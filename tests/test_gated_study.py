"""The stored gated study must come from the code (eiginit.training.gated_study.check_stored)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiginit import gated_study as gs
from eiginit.training.study import StudyDriftError

TINY = {**gs.GATED_STUDY, "n_train": 96, "n_val": 32, "n_test": 32, "T": 8, "epochs": 1,
        "seeds": 2, "sweep_seeds": 1, "grid": [0.01, 0.03], "max_widen": 1}  # fmt: skip


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gated")
    trial = gs.run(TINY)
    gs.save(trial, folder, TINY)
    return folder, trial


def test_the_stored_study_passes_its_check_and_loads(stored):
    folder, trial = stored
    assert gs.check_stored(folder, TINY) == len(TINY["contenders"])
    loaded = gs.load(folder, TINY)
    for name in TINY["contenders"]:
        np.testing.assert_array_equal(loaded[name]["scores"], trial.scores[name])
        assert float(loaded[name]["chosen"]) == trial.choices[name].chosen


def test_a_changed_setting_fails_the_check_naming_it(stored):
    folder, _ = stored
    with pytest.raises(StudyDriftError, match=r"(?s)setting 'clip'.*nox -s study"):
        gs.check_stored(folder, {**TINY, "clip": 2.0})


def test_a_changed_brief_run_fails_the_check(stored, tmp_path):
    folder, _ = stored
    for name in ("scores.npz", "record.json"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    record = json.loads((tmp_path / "record.json").read_text())
    first = TINY["contenders"][1]
    record["brief"][first] = [v * 1.01 for v in record["brief"][first]]
    (tmp_path / "record.json").write_text(json.dumps(record))
    with pytest.raises(StudyDriftError, match=f"{first}: brief run"):
        gs.check_stored(tmp_path, TINY)


def test_a_missing_study_is_named(tmp_path):
    with pytest.raises(StudyDriftError, match="no stored gated study"):
        gs.check_stored(tmp_path, TINY)


def test_the_data_are_fixed_by_their_seed():
    a, b = gs.data(TINY), gs.data(TINY)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert a[0].shape == (96, 8, 2)
    assert a[1].shape == (96, 1)


def test_the_stored_trial_gives_the_protocols_tables(stored):
    folder, trial = stored
    again = gs.stored_trial(folder, TINY)
    assert again.table() == trial.table()
    pairs = {"a": (TINY["contenders"][1], TINY["contenders"][0])}
    assert again.verdicts(pairs)["a"] == trial.verdicts(pairs)["a"]
