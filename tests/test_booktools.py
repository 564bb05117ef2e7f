"""Tests of the book tooling: scaffolding a chapter, the execution-cache key, the build mode."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from booktools import build, scaffold
from booktools import chapters as bc

INDEX = """# Book

```{toctree}
:caption: Part I, one
:maxdepth: 2

first
```

```{toctree}
:caption: Part II, two

second
```

```{toctree}
:caption: Back matter

bibliography
```
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "index.md").write_text(INDEX, "utf-8")
    (tmp_path / "book" / "first.md").write_text('glue("fi_x", 1)\n', "utf-8")
    shutil.copytree(bc.ROOT / "templates", tmp_path / "templates")
    return tmp_path


def test_new_chapter_writes_the_file_and_the_toctree(root: Path):
    made = scaffold.new_chapter("power-iteration", "Power iteration", root=root, seed=12)
    assert made.path == root / "book" / "power-iteration.md"
    assert (made.abbr, made.seed, made.part) == ("pi", 12, "Part II, two")
    trees = bc.toctree_entries(root / "book" / "index.md")
    assert trees[1] == ("Part II, two", ["second", "power-iteration"])
    chapter = bc.Chapter.read(made.path)
    assert "# Power iteration" in chapter.text
    assert "np.random.default_rng(12)" in chapter.text
    assert "{{" not in chapter.text
    for check in bc.ALL_CHECKS:
        assert check(chapter) == [], check.__name__


def test_new_chapter_goes_into_the_named_part(root: Path):
    made = scaffold.new_chapter("norms", "Norms", root=root, part="part i,")
    assert made.part == "Part I, one"
    assert bc.toctree_entries(root / "book" / "index.md")[0][1] == ["first", "norms"]


def test_default_seed_depends_on_the_slug_only(root: Path, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(root, other, dirs_exist_ok=True)
    one = scaffold.new_chapter("spectra", "Spectra", root=root)
    two = scaffold.new_chapter("spectra", "Other title", root=other)
    assert one.seed == two.seed
    assert 0 <= one.seed < 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slug": "Power_Iteration"}, "slug must be lower-case words"),
        ({"slug": "ch 2"}, "slug must be lower-case words"),
        ({"slug": "first"}, "already exists"),
        ({"slug": "second-one", "title": "  "}, "title must not be empty"),
        ({"slug": "fast-iteration"}, "already used by another chapter"),
        ({"slug": "new-one", "abbr": "Bad-Abbr"}, "abbr must be 1 to 6"),
        ({"slug": "new-one", "part": "Part IX"}, "no toctree caption contains 'Part IX'"),
        ({"slug": "new-one", "seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_new_chapter_rejects(root: Path, kwargs, message):
    args = {"slug": "x", "title": "A title", **kwargs}
    before = (root / "book" / "index.md").read_text("utf-8")
    with pytest.raises(ValueError, match=message):
        scaffold.new_chapter(args.pop("slug"), args.pop("title"), root=root, **args)
    assert (root / "book" / "index.md").read_text("utf-8") == before


def test_add_to_toctree_refuses_a_listed_slug():
    with pytest.raises(ValueError, match="already in the toctree"):
        scaffold.add_to_toctree(INDEX, "second")


def test_add_to_toctree_needs_a_toctree():
    with pytest.raises(ValueError, match="no \\{toctree\\}"):
        scaffold.add_to_toctree("# no toc\n", "x")


def test_render_rejects_unknown_placeholders():
    with pytest.raises(ValueError, match="placeholders"):
        scaffold.render("{{ slug }} {{ author }}", slug="a", title="A", abbr="a", seed=1)


def test_command_line(root: Path, capsys):
    assert scaffold.main(["spectra", "Spectra", "--root", str(root), "--abbr", "spec"]) == 0
    assert "abbreviation 'spec'" in capsys.readouterr().out
    assert scaffold.main(["spectra", "Spectra", "--root", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err


# --- execution cache key and mode -------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path) -> Path:
    (tmp_path / "eiginit" / "data").mkdir(parents=True)
    (tmp_path / "eiginit" / "power.py").write_text("x = 1\n", "utf-8")
    (tmp_path / "eiginit" / "data" / "m.txt").write_text("1 2\n", "utf-8")
    return tmp_path


def test_cache_key_changes_with_any_source_or_data_file(package: Path):
    key = build.cache_key(package)
    assert build.cache_key(package) == key
    (package / "eiginit" / "power.py").write_text("x = 2\n", "utf-8")
    key2 = build.cache_key(package)
    assert key2 != key
    (package / "eiginit" / "data" / "m.txt").write_text("1 3\n", "utf-8")
    assert build.cache_key(package) != key2


def test_cache_key_changes_when_a_module_is_added_or_renamed(package: Path):
    key = build.cache_key(package)
    (package / "eiginit" / "power.py").rename(package / "eiginit" / "powers.py")
    assert build.cache_key(package) != key


def test_cache_key_ignores_bytecode(package: Path):
    key = build.cache_key(package)
    (package / "eiginit" / "__pycache__").mkdir()
    (package / "eiginit" / "__pycache__" / "power.cpython-311.pyc").write_bytes(b"\0")
    assert build.cache_key(package) == key


def test_cache_key_needs_the_package(tmp_path: Path):
    with pytest.raises(ValueError, match="expected the eiginit package"):
        build.cache_key(tmp_path)


def test_cache_dir_is_keyed_and_pruned(package: Path):
    base = package / build.CACHE_ROOT
    for i in range(6):
        (base / f"old{i}").mkdir(parents=True)
        os.utime(base / f"old{i}", (1000 + i, 1000 + i))
    path = build.cache_dir(package)
    assert path == base / build.cache_key(package)
    kept = sorted(p.name for p in base.iterdir())
    assert len(kept) == build.KEEP_CACHES
    assert path.name in kept
    assert {"old5", "old4", "old3"} <= set(kept)


@pytest.mark.parametrize(
    ("ci", "override", "expected"),
    [
        (None, None, "cache"),
        ("true", None, "force"),
        ("1", None, "force"),
        ("false", None, "cache"),
        ("true", "off", "off"),
        (None, "force", "force"),
    ],
)
def test_execution_mode(monkeypatch, ci, override, expected):
    for name, value in (("CI", ci), ("EIGINIT_EXECUTION_MODE", override)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert build.execution_mode() == expected


def test_execution_mode_rejects_unknown(monkeypatch):
    monkeypatch.setenv("EIGINIT_EXECUTION_MODE", "sometimes")
    with pytest.raises(ValueError, match="EIGINIT_EXECUTION_MODE must be one of"):
        build.execution_mode()


def test_make_reproducible_sets_only_missing_variables(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert build.make_reproducible() == {"PYTHONHASHSEED": "0"}
    assert os.environ["SOURCE_DATE_EPOCH"] == "86400"
    assert build.make_reproducible() == {}


def test_make_reproducible_takes_the_commit_time(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    set_now = build.make_reproducible()
    if shutil.which("git") is None or not (bc.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert set_now["SOURCE_DATE_EPOCH"].isdigit()
