import builtins

import pytest

import eiginit.notebook as nb


@pytest.fixture
def without_myst_nb(monkeypatch):
    """Make `import myst_nb` fail, as in a reader's plain Jupyter environment."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ImportError("No module named 'myst_nb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(nb, "_myst_nb_glue", nb._UNSET)


def test_glue_prints_the_value_without_myst_nb(without_myst_nb, capsys):
    nb.glue("rm_rho", 2.6036, display=False)
    nb.glue("rm_label", "complex pair")
    assert capsys.readouterr().out == "rm_rho = 2.6036\nrm_label = complex pair\n"


def test_glue_delegates_to_myst_nb_when_present(monkeypatch):
    calls = []
    monkeypatch.setattr(nb, "_myst_nb_glue", lambda *args: calls.append(args))
    nb.glue("x", 1.5, display=False)
    assert calls == [("x", 1.5, False)]


def test_glue_finds_myst_nb_when_installed(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    monkeypatch.setattr(nb, "_myst_nb_glue", nb._UNSET)
    assert nb._find_myst_nb_glue() is myst_nb.glue


@pytest.mark.parametrize(("name", "display"), [("", True), (3, True), ("x", "yes")])
def test_glue_refuses_bad_arguments(name, display):
    with pytest.raises(TypeError):
        nb.glue(name, 1.0, display=display)
