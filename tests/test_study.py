"""The stored training study (eiginit/data/training-study/) must come from the code as it is.

`eiginit.training.study.check_stored` is what chapter "Does it train?" runs at every build; these
tests
run it too (quickly: a changed setting is found before anything is trained) and show that each
kind of change fails with a message naming it and the command that refreshes the results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eiginit import initializers, protocol, study

STORED = Path(study.__file__).parents[1] / "data" / "training-study"
REFRESH = "nox -s study"


@pytest.mark.parametrize("cell", study.cells())
def test_stored_manifest_matches_the_code_now(cell):
    stored = json.loads((STORED / f"{cell}.json").read_text("utf-8"))
    now = study.manifest(cell)
    for key in ("versions", "brief_run"):
        stored.pop(key, None)
    now.pop("versions")
    assert stored == now, f"{cell}: run `{REFRESH} -- {cell}` and commit its files"


def drift_message(monkeypatch, cell="mnist1d-tanh-adam", **changes) -> str:
    for name, value in changes.items():
        monkeypatch.setattr(study, name, value)
    with pytest.raises(study.StudyDriftError) as info:
        study.check_stored(STORED, names=[cell])
    message = str(info.value)
    assert REFRESH in message
    return message


def test_a_changed_critical_bias_variance_is_named(monkeypatch):
    message = drift_message(monkeypatch, CRITICAL_SIGMA_B2=5e-3)
    assert "constants.CRITICAL_SIGMA_B2: stored 5e-06, code 0.005" in message
    assert "contenders['critical orthogonal'].bias_variance" in message
    assert "contenders['critical orthogonal'].gain" in message


def test_a_changed_lsuv_tolerance_is_named(monkeypatch):
    message = drift_message(monkeypatch, cell="digits-relu-sgd", LSUV_TOL=0.1)
    assert "constants.LSUV_TOL: stored 0.01, code 0.1" in message
    assert "contenders['LSUV'].lsuv_tol: stored 0.01, code 0.1" in message


def test_a_changed_epoch_count_or_grid_is_named(monkeypatch):
    settings = {**study.STUDY, "epochs": {"digits": 20, "mnist1d": 16}}
    message = drift_message(monkeypatch, STUDY=settings)
    assert "settings.epochs: stored 15, code 16" in message
    settings = {**study.STUDY, "lr_grid": {"adam": (1e-3, 3e-3, 1e-2), "sgd": (1e-2, 1e-1)}}
    assert "settings.lr_grid" in drift_message(monkeypatch, STUDY=settings)


def test_a_changed_gain_or_optimizer_option_is_named(monkeypatch):
    monkeypatch.setattr(initializers, "calculate_gain", lambda name, param=None: 1.5)
    message = drift_message(monkeypatch)
    assert "contenders['Kaiming'].gain" in message
    assert "contenders['orthogonal'].gain" in message
    monkeypatch.undo()
    options = {"adam": {"betas": (0.9, 0.999), "eps": 1e-6}, "sgd": {"momentum": 0.9}}
    message = drift_message(monkeypatch, OPTIMIZER_OPTIONS=options)
    assert "settings.optimizer_options.eps: stored 1e-08, code 1e-06" in message


def test_a_changed_contender_is_named(monkeypatch):
    original = study.contenders

    def renamed(activation):
        return [
            study.Contender("LeCun", "lecun_normal", 1.1) if c.name == "LeCun" else c
            for c in original(activation)
        ]

    message = drift_message(monkeypatch, contenders=renamed)
    assert "contenders['LeCun'].gain: stored 1.0, code 1.1" in message


def test_the_brief_run_repeats_the_stored_one():
    data = {"digits": study.load_dataset("digits")}
    report = study.check_stored(STORED, names=["digits-tanh-sgd"], datasets=data)
    assert report["runs"] == len(study.contenders("tanh"))
    assert report["loss"] <= 1e-3
    assert report["accuracy"] <= 0.02


def test_a_code_change_that_changes_training_is_caught(monkeypatch):
    """A change no setting shows (here: the rate each run really gets) fails the brief run."""
    train = study.fit

    def changed(model, params, data, *, lr, **kw):
        return train(model, params, data, lr=[1.2 * r for r in lr], **kw)

    monkeypatch.setattr(study, "fit", changed)
    data = {"digits": study.load_dataset("digits")}
    with pytest.raises(study.StudyDriftError) as info:
        study.check_stored(STORED, names=["digits-tanh-sgd"], datasets=data)
    message = str(info.value)
    assert "training loss" in message
    assert "in the stored brief run" in message
    assert "in the stored study" in message
    assert REFRESH in message


def test_missing_files_and_a_callers_settings_are_named(tmp_path):
    with pytest.raises(study.StudyDriftError, match=r"no stored mnist1d-relu-sgd\.npz"):
        study.check_stored(tmp_path, names=["mnist1d-relu-sgd"])
    with pytest.raises(study.StudyDriftError, match="depth: the study uses 12, the caller 10"):
        study.check_stored(STORED, names=["mnist1d-relu-sgd"], expect={"depth": 10},
                           datasets={"mnist1d": None})  # fmt: skip
    with pytest.raises(ValueError, match="cell must be one of"):
        study.check_stored(STORED, names=["mnist1d-selu-adam"])


def test_stored_arrays_are_checked_against_the_settings(tmp_path):
    cell = "digits-relu-adam"
    (tmp_path / f"{cell}.json").write_bytes((STORED / f"{cell}.json").read_bytes())
    with np.load(STORED / f"{cell}.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["val_curves"] = arrays["val_curves"][..., :-1]  # one epoch fewer than the settings
    np.savez(tmp_path / f"{cell}.npz", **arrays)
    with pytest.raises(study.StudyDriftError, match="epochs in the arrays: stored 19, code 20"):
        study.check_stored(tmp_path, names=[cell])


def test_a_stored_rate_choice_the_protocol_would_not_make_is_named(tmp_path):
    cell = "digits-relu-adam"
    (tmp_path / f"{cell}.json").write_bytes((STORED / f"{cell}.json").read_bytes())
    with np.load(STORED / f"{cell}.npz") as f:
        arrays = {k: f[k] for k in f.files}
    grid = arrays["sweep_lr"][0]
    other = next(float(lr) for lr in grid if lr == lr and lr != arrays["chosen_lr"][0])
    arrays["chosen_lr"] = arrays["chosen_lr"].copy()
    arrays["chosen_lr"][0] = other
    np.savez(tmp_path / f"{cell}.npz", **arrays)
    with pytest.raises(study.StudyDriftError, match=r"LeCun: protocol\.choose_rate on the stored"):
        study.check_stored(tmp_path, names=[cell])


def test_every_stored_choice_replays_through_the_protocol():
    for cell in study.cells():
        with np.load(STORED / f"{cell}.npz") as f:
            arrays = {k: f[k] for k in f.files}
        for row in range(len(arrays["names"])):
            choice = study.replay_choice(arrays, row)
            assert choice.chosen == pytest.approx(float(arrays["chosen_lr"][row]), rel=1e-12)
            assert choice.widened == int(arrays["widened"][row])
            assert isinstance(choice, protocol.RateChoice)


def test_final_seeds_are_fresh_and_every_contender_draws_its_own():
    assert not set(study.STUDY["sweep_seeds"]) & set(study.STUDY["seeds"])
    names = {c.name for a in ("relu", "tanh", "gelu", "silu") for c in study.contenders(a)}
    drawn = [v for n in names for s in (0, 1, 100) for v in study.streams(n, s)]
    assert len(set(drawn)) == len(drawn)
