"""Tests of the book tooling: scaffolding a chapter, the execution-cache key, the build mode."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from booktools import build, mystnb_patches, scaffold
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


def test_cache_key_changes_when_a_package_is_upgraded(package: Path, tmp_path_factory, monkeypatch):
    site = tmp_path_factory.mktemp("site")
    (site / "numpy-2.0.0.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(site))
    key = build.cache_key(package)
    (site / "numpy-2.0.0.dist-info").rename(site / "numpy-2.1.0.dist-info")
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


# --- reproducibility comparison, page weights, project copies ---------------------------------


def test_normalize_exec_table_blanks_only_date_and_time_cells():
    from booktools.repro import normalize_exec_table

    row = "<td><p>2026-11-29 04:05</p></td><td><p>cache</p></td><td><p>5.36</p></td>"
    assert normalize_exec_table(row) == (
        "<td><p>DATE</p></td><td><p>cache</p></td><td><p>SECONDS</p></td>"
    )
    prose = "<p>2026-11-29 04:05 and 5.36</p>"
    assert normalize_exec_table(prose) == prose


def test_compare_trees_finds_every_kind_of_difference(tmp_path: Path):
    from booktools.repro import compare_trees

    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "_images").mkdir(parents=True)
        (root / "same.html").write_text("<p>x</p>", "utf-8")
        (root / "stats.html").write_text("<td><p>1.0</p></td>", "utf-8")
    (a / "stats.html").write_text("<td><p>2.5</p></td>", "utf-8")
    (a / "_images" / "f.svg").write_text("<svg id='1'/>", "utf-8")
    (b / "_images" / "f.svg").write_text("<svg id='2'/>", "utf-8")
    (a / "extra.html").write_text("", "utf-8")
    report = compare_trees(a, b, normalized={"stats.html"})
    assert report["differ"] == ["_images/f.svg"]
    assert report["only in first"] == ["extra.html"]
    assert report["only in second"] == []
    assert compare_trees(a, b)["differ"] == ["_images/f.svg", "stats.html"]


def test_page_weights_count_first_visit_assets_once(tmp_path: Path):
    from booktools.bench import page_weights

    (tmp_path / "_static").mkdir()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_static" / "theme.css").write_text("@font-face{src:url(font.woff2)}", "utf-8")
    (tmp_path / "_static" / "font.woff2").write_bytes(b"f" * 100)
    (tmp_path / "_images" / "fig.svg").write_bytes(b"s" * 50)
    head = '<link rel="stylesheet" href="_static/theme.css?v=1"><link rel="next" href="ch.html">'
    external = '<script src="https://cdn.example.org/mathjax.js"></script>'
    (tmp_path / "index.html").write_text(head + external, "utf-8")
    (tmp_path / "ch.html").write_text(head + '<img src="_images/fig.svg">', "utf-8")
    weights = page_weights(tmp_path, ["ch"])
    css = len("@font-face{src:url(font.woff2)}")
    assert weights["first visit"]["raw"] == len(head + external) + css + 100
    assert weights["ch"]["raw"] == len(head + '<img src="_images/fig.svg">') + 50
    assert weights["ch"]["gzip"] > 0


def test_copy_project_leaves_out_build_products(tmp_path: Path):
    from booktools.runner import copy_project

    src = tmp_path / "src"
    for folder in ("book", "_build/html", ".git", "eiginit/__pycache__"):
        (src / folder).mkdir(parents=True)
    (src / "book" / "a.md").write_text("a", "utf-8")
    (src / "_build" / "html" / "a.html").write_text("a", "utf-8")
    dest = copy_project(tmp_path / "dest", root=src)
    assert (dest / "book" / "a.md").is_file()
    assert not (dest / "_build").exists()
    assert not (dest / ".git").exists()
    assert not (dest / "eiginit" / "__pycache__").exists()


def test_stream_chunks_are_joined_wherever_the_kernel_cut_them():
    whole = [
        {"output_type": "stream", "name": "stdout", "text": "eigenvalues of S: [-3.05 1.71]\n"}
    ]
    for cut in (5, 17, 18, 30):
        text = whole[0]["text"]
        chunks = [
            {"output_type": "stream", "name": "stdout", "text": text[:cut]},
            {"output_type": "display_data", "data": {}},
            {"output_type": "stream", "name": "stdout", "text": text[cut:]},
        ]
        joined = mystnb_patches.join_stream_chunks(chunks)
        assert joined[0]["text"] == text
        assert chunks[0]["text"] == text[:cut]  # the input is left alone
        assert [o["output_type"] for o in joined] == ["stream", "display_data"]


def test_myst_nb_stream_merging_is_made_deterministic():
    from myst_nb.core import render

    mystnb_patches.fix_stream_merging()
    mystnb_patches.fix_stream_merging()  # idempotent
    chunks = [
        {"output_type": "stream", "name": "stdout", "text": "eigenvalues of S:"},
        {"output_type": "stream", "name": "stdout", "text": " [-3.05 1.71]\n"},
    ]
    merged = render.coalesce_streams(chunks)
    assert [o["text"] for o in merged] == ["eigenvalues of S: [-3.05 1.71]\n"]
    # the cell's own outputs (saved in the .ipynb download) are joined too, without duplicates
    assert [o["text"] for o in chunks] == ["eigenvalues of S: [-3.05 1.71]\n"]


def test_notebook_paths_include_an_executable_index(tmp_path: Path):
    front = "---\nkernelspec:\n  name: python3\n---\n"
    (tmp_path / "index.md").write_text(front + "# Book\n\n```{toctree}\nch\n```\n", "utf-8")
    (tmp_path / "ch.md").write_text(front + "# Chapter\n", "utf-8")
    (tmp_path / "notes.md").write_text("# Notes\n", "utf-8")
    assert [p.name for p in bc.chapter_paths(tmp_path)] == ["ch.md"]
    assert [p.name for p in bc.notebook_paths(tmp_path)] == ["index.md", "ch.md"]
    (tmp_path / "index.md").write_text("# Book\n\n```{toctree}\nch\n```\n", "utf-8")
    assert [p.name for p in bc.notebook_paths(tmp_path)] == ["ch.md"]


def test_text_notebooks_get_the_same_cell_ids_on_every_read():
    from myst_nb import sphinx_ as nb_sphinx
    from myst_nb.core.config import NbParserConfig
    from myst_parser.config.main import MdParserConfig

    mystnb_patches.fix_cell_ids()
    mystnb_patches.fix_cell_ids()  # idempotent
    path = bc.ROOT / "book" / "repeated-multiplication.md"
    text = path.read_text("utf-8")

    def ids():
        reader = nb_sphinx.create_nb_reader(str(path), MdParserConfig(), NbParserConfig(), text)
        return [cell["id"] for cell in reader.read(text).cells]

    first = ids()
    assert first == ids()
    assert len(set(first)) == len(first)


def test_cached_outputs_reach_the_notebook_myst_nb_saves(monkeypatch):
    from myst_nb.core.execute import cache as cache_module

    client_class = cache_module.NotebookClientCache

    def start_from_cache(self):  # what a cache hit does: render from a merged copy
        self._notebook = {"cells": ["cell with outputs"]}

    monkeypatch.setattr(client_class, "start_client", start_from_cache)
    mystnb_patches.fix_cached_notebook_outputs(check=False)  # start_client is a stand-in here
    client = object.__new__(client_class)
    saved = {"cells": ["cell without outputs"]}
    client._notebook = saved
    client.start_client()
    assert saved["cells"] == ["cell with outputs"]


def test_normalize_measured_blanks_only_tagged_cell_outputs():
    from booktools.repro import normalize_measured

    tagged = (
        '<div class="cell tag_hide-input tag_measured-time docutils container">'
        '<div class="cell_input docutils container"><pre>t = clock()</pre></div>'
        '<div class="cell_output docutils container"><pre>12 ms</pre></div></div>'
    )
    plain = (
        '<div class="cell docutils container">'
        '<div class="cell_output docutils container"><pre>0.71</pre></div></div>'
    )
    out = normalize_measured("p.html", (tagged + plain).encode()).decode()
    assert "12 ms" not in out
    assert "t = clock()" in out
    assert "0.71" in out
    assert normalize_measured("p.html", plain.encode()) == plain.encode()
    notebook = {
        "cells": [
            {"metadata": {"tags": ["measured-time"]}, "outputs": [{"text": "12 ms"}]},
            {"metadata": {}, "outputs": [{"text": "0.71"}]},
        ]
    }
    blanked = normalize_measured("p.ipynb", json.dumps(notebook).encode()).decode()
    assert "12 ms" not in blanked
    assert "0.71" in blanked


# --- myst-nb patches: each checks the upstream code it was written for -------------------------


@pytest.mark.parametrize("patch", mystnb_patches.PATCHES, ids=lambda p: p.name)
def test_each_patch_matches_the_installed_myst_nb(patch):
    mystnb_patches.check_upstream(patch)  # the lock file pins the myst-nb the patches expect


def test_a_changed_upstream_function_stops_the_build_and_says_what_to_recheck():
    patch = mystnb_patches.PATCHES[0]
    dotted = next(iter(patch.sources))
    changed = dataclasses.replace(patch, sources={**patch.sources, dotted: "0" * 16})
    with pytest.raises(mystnb_patches.UpstreamChanged, match="Re-check") as info:
        mystnb_patches.check_upstream(changed)
    assert dotted in str(info.value)
    assert patch.written_for in str(info.value)


def test_a_missing_upstream_function_stops_the_build():
    patch = mystnb_patches.PATCHES[1]
    gone = dataclasses.replace(patch, sources={"myst_nb.core.read:no_such_function": "0" * 16})
    with pytest.raises(mystnb_patches.UpstreamChanged, match="not found"):
        mystnb_patches.check_upstream(gone)


def test_patches_apply_twice_and_still_check_as_upstream():
    mystnb_patches.apply_all()
    mystnb_patches.apply_all()  # a wrapped function hashes as the function it wraps
    assert mystnb_patches.main([]) == 0


def test_record_prints_every_patched_function(capsys):
    assert mystnb_patches.main(["--record"]) == 0
    out = capsys.readouterr().out
    for patch in mystnb_patches.PATCHES:
        for dotted, recorded in patch.sources.items():
            assert f'"{dotted}": "{recorded}"' in out


# --- the lock file: every requirement of pyproject.toml pinned, and installed from -------------


def _locked() -> dict[str, str]:
    pins = {}
    for line in (bc.ROOT / "requirements.lock").read_text("utf-8").splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.split(";")[0].strip()
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((bc.ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"].values()
    return [Requirement(r) for r in [*project["dependencies"], *(r for e in extras for r in e)]]


def test_lock_pins_every_requirement_of_pyproject_at_a_version_it_allows():
    pins = _locked()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `nox -s lock`"
        version = Version(pins[name])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement.specifier}: "
            "run `nox -s lock`"
        )


def test_lock_holds_torch_cpu_wheel_and_no_cuda_packages():
    pins = _locked()
    assert pins["torch"].endswith("+cpu")
    assert not [name for name in pins if name.startswith("nvidia-")]


def test_every_nox_session_installs_against_the_lock():
    noxfile = (bc.ROOT / "noxfile.py").read_text("utf-8")
    installs = re.findall(r"session\.install\((.*?)\)\n", noxfile)
    assert installs
    for args in installs:
        assert "LOCK" in args or args.strip() == "UV", f"session.install({args}) ignores the lock"


def test_installed_myst_nb_is_the_locked_one():
    assert importlib.metadata.version("myst-nb") == _locked()["myst-nb"]


# --- run a chapter at home: the served wheel and the reader check ------------------------------
from booktools import reader_check, run_at_home  # noqa: E402


def test_install_line_names_the_served_wheel_and_the_notebooks_extra():
    version = run_at_home.project_version()
    expected = f'python -m pip install "eiginit-{version}-py3-none-any.whl[notebooks]"'
    assert expected == run_at_home.INSTALL_LINE
    with pytest.raises(ValueError, match="PEP 440"):
        run_at_home.wheel_name("not a version")


def test_the_notebooks_extra_covers_what_chapters_import():
    extra = tomllib.loads((bc.ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    names = {
        re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower().replace("-", "_")
        for spec in extra["dependencies"] + extra["optional-dependencies"]["notebooks"]
    }
    # Import names that differ from distribution names; IPython comes with any Jupyter kernel.
    provided = (names - {"scikit_learn"}) | {"sklearn", "eiginit", "IPython"}
    stdlib = set(sys.stdlib_module_names)
    imported = set()
    for path in bc.chapter_paths():
        for _, tree in bc.Chapter.read(path).trees():
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module.split(".")[0])
    missing = sorted(imported - stdlib - provided - {"numpy", "matplotlib"})
    assert not missing, f"chapters import {missing}, which eiginit[notebooks] does not bring"


def test_the_wheel_is_built_reproducibly(tmp_path, monkeypatch):
    pytest.importorskip("hatchling")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = run_at_home.build_wheel(tmp_path / "a")
    second = run_at_home.build_wheel(tmp_path / "b")
    assert first.name == run_at_home.wheel_name(run_at_home.project_version())
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "eiginit/notebook.py" in names
    assert any(n.startswith("eiginit/data/") for n in names)  # the seed matrix ships with it


def test_run_at_home_box_links_the_notebook_and_the_wheel():
    box = run_at_home.run_at_home_box("power-iteration", "", "0.1.0")
    from docutils import nodes

    refs = [node["refuri"] for node in box.findall(nodes.reference)]
    assert refs == ["_sources/power-iteration.ipynb", "eiginit-0.1.0-py3-none-any.whl"]
    assert run_at_home.install_line("0.1.0") in box.astext()


def test_reader_check_refuses_a_site_without_wheel_or_notebooks(tmp_path):
    with pytest.raises(SystemExit, match="expected one eiginit wheel"):
        reader_check.find_wheel(tmp_path)
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "a.ipynb").write_text("{}")
    assert reader_check.notebooks(tmp_path, ["a"]) == [tmp_path / "_sources" / "a.ipynb"]
    with pytest.raises(SystemExit, match=r"no notebook for: b\.ipynb"):
        reader_check.notebooks(tmp_path, ["a", "b"])


def test_reader_environment_cannot_see_the_repository(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(bc.ROOT))
    env = reader_check.reader_env()
    assert "PYTHONPATH" not in env
    assert env["MPLBACKEND"] == "Agg"


def test_reader_check_needs_no_sphinx():
    # The reader's session has only the standard library: importing the check must not pull in
    # Sphinx or docutils (the run-at-home extension does; the shared wheel helpers must not).
    code = (
        "import sys; sys.modules['docutils'] = None; sys.modules['sphinx'] = None; "
        "import booktools.reader_check"
    )
    env = {**os.environ, "PYTHONPATH": str(bc.ROOT)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# --- booktools/scaffold.py: the default part is the last numbered toctree ------------------------


def test_new_chapter_defaults_to_the_last_numbered_toctree_not_the_contributors(tmp_path: Path):
    index = (
        "```{toctree}\n:caption: Part I\n:numbered: 1\n\none\n```\n"
        "```{toctree}\n:caption: The guide\n\nguide\n```\n"
        "```{toctree}\n:caption: For contributors\n\ncontributing\n```\n"
    )
    new, caption = scaffold.add_to_toctree(index, "two")
    assert caption == "Part I"
    assert "one\ntwo\n```" in new


# --- booktools/chapter_refs.py: "chapter N" in the prose is a cross-reference --------------------

from booktools import chapter_refs  # noqa: E402

LABELS = {1: "ch-one", 2: "ch-two", 3: "ch-three"}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("as chapter 2 showed", "as {numref}`chapter %s <ch-two>` showed"),
        ("Chapter 3's law", "{numref}`Chapter %s <ch-three>`'s law"),
        ("chapters 1 and 3", "chapters {numref}`%s <ch-one>` and {numref}`%s <ch-three>`"),
        ("chapters 1 to 3.", "chapters {numref}`%s <ch-one>` to {numref}`%s <ch-three>`."),
        ("chapters 1, 2", "chapters {numref}`%s <ch-one>`, {numref}`%s <ch-two>`"),
        ("see [chapter 2](two.md#sec).", "see {numref}`chapter %s <ch-two>`."),
        # another book's chapter, code, math, a role: untouched
        ("Trefethen & Embree, chapter 14", "Trefethen & Embree, chapter 14"),
        ("`chapter 2` and $\\text{chapter 2}$", "`chapter 2` and $\\text{chapter 2}$"),
        ("[chapter 2](three.md)", "[chapter 2](three.md)"),
    ],
)
def test_bare_chapter_references_become_numrefs(before, after):
    assert chapter_refs.convert_text(before + "\n", LABELS) == after + "\n"


def test_chapter_refs_leave_code_comments_and_math_blocks_alone_but_convert_captions():
    page = (
        "---\ntitle: chapter 1\n---\n"
        "% a comment on chapter 1\n"
        "```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: |\n"
        "      As in chapter 2.\n---\nx = 1  # chapter 2\n```\n"
        "$$\nchapter 3\n$$\n"
        "```{note}\nSee chapter 3.\n```\n"
        "```python\nprint('chapter 3')\n```\n"
    )
    out = chapter_refs.convert_text(page, LABELS)
    assert out.count("numref") == 2
    assert "As in {numref}`chapter %s <ch-two>`." in out
    assert "See {numref}`chapter %s <ch-three>`." in out
    assert chapter_refs.convert_text(out, LABELS) == out  # idempotent


def test_chapter_labels_follow_the_numbered_toctrees(tmp_path: Path):
    (tmp_path / "index.md").write_text(
        "```{toctree}\n:numbered: 1\n\na\n```\n```{toctree}\n:numbered: 1\n\nb\n```\n"
        "```{toctree}\n\nguide\n```\n"
    )
    (tmp_path / "a.md").write_text("(ch-a)=\n# A\n")
    (tmp_path / "b.md").write_text("(ch-b)=\n\n# B\n")
    assert chapter_refs.chapter_labels(tmp_path) == {1: "ch-a", 2: "ch-b"}
    (tmp_path / "b.md").write_text("# B\n")
    with pytest.raises(ValueError, match=r"book/b.md: a chapter needs a label line '\(ch-b\)='"):
        chapter_refs.chapter_labels(tmp_path)


def test_no_page_of_the_book_cites_a_chapter_by_a_bare_number(capsys):
    """Every "chapter N" in the prose is a {numref}; fix with python -m booktools.chapter_refs
    --write (a chapter inserted before it would otherwise leave the number stale)."""
    assert chapter_refs.main([]) == 0, capsys.readouterr().out


def test_chapter_refs_check_mode_fails_on_a_bare_reference(tmp_path: Path, capsys):
    (tmp_path / "index.md").write_text("```{toctree}\n:numbered: 1\n\na\n```\n")
    (tmp_path / "a.md").write_text("(ch-a)=\n# A\n\nAs chapter 1 says.\n")
    assert chapter_refs.main(["--book", str(tmp_path)]) == 1
    assert "a.md:4: 'chapter 1'" in capsys.readouterr().out
    assert chapter_refs.main(["--book", str(tmp_path), "--write"]) == 0
    assert chapter_refs.main(["--book", str(tmp_path)]) == 0
    assert "{numref}`chapter %s <ch-a>`" in (tmp_path / "a.md").read_text()
