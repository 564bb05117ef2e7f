"""Tests of the reader-facing machinery: the browser check, the Sphinx extension, the API docs.

The browser session itself (`nox -s browser`) needs Chromium and a built book; these tests check
its pure parts and the build-time guards without either.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eiginit
from booktools import browser_check, sphinx_ext

ROOT = Path(__file__).resolve().parents[1]


# --- booktools/browser_check.py ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/index.html", True),
        ("http://127.8.9.10/", True),
        ("http://localhost:1234/a.js", True),
        ("http://[::1]:8000/", True),
        ("data:image/svg+xml;base64,AAAA", True),
        ("blob:http://127.0.0.1/abc", True),
        ("about:blank", True),
        ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js", False),
        ("https://fonts.googleapis.com/css?family=Lato", False),
        ("http://10.0.0.1/", False),
        ("http://192.168.1.1/", False),
        ("//example.org/x.js", False),
        ("ws://203.0.113.5/socket", False),
    ],
)
def test_is_loopback_url(url, expected):
    assert browser_check.is_loopback_url(url) is expected


@given(st.ip_addresses(v=4))
def test_an_ipv4_host_is_loopback_exactly_when_in_127_slash_8(address):
    expected = address in ipaddress.ip_network("127.0.0.0/8")
    assert browser_check.is_loopback_url(f"http://{address}:8000/page.html") is expected


def test_site_pages_lists_pages_but_not_static_assets(tmp_path):
    for name in ["index.html", "a.html", "_modules/m.html", "_static/x/y.html", "b.css"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("<html></html>")
    assert browser_check.site_pages(tmp_path) == ["_modules/m.html", "a.html", "index.html"]


def test_gzip_size_is_smaller_for_repetitive_text(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<p>eigenvalue</p>\n" * 1000)
    assert 0 < browser_check.gzip_size(path) < path.stat().st_size / 20


def _events(*pairs):
    return [{"method": m, "params": p} for m, p in pairs]


def test_problems_in_events_reports_console_errors_http_errors_and_offsite_requests():
    report = browser_check.PageReport("p.html")
    events = _events(
        ("Runtime.consoleAPICalled", {"type": "error", "args": [{"value": "boom"}]}),
        ("Runtime.consoleAPICalled", {"type": "log", "args": [{"value": "fine"}]}),
        ("Runtime.exceptionThrown", {"exceptionDetails": {"text": "Uncaught", "exception": {}}}),
        ("Log.entryAdded", {"entry": {"level": "error", "text": "Failed to load", "url": "u"}}),
        ("Log.entryAdded", {"entry": {"level": "warning", "text": "meh"}}),
        ("Network.requestWillBeSent", {"requestId": "1", "request": {"url": "http://127.0.0.1/a"}}),
        ("Network.requestWillBeSent", {"requestId": "2", "request": {"url": "https://cdn.x/b"}}),
        ("Network.responseReceived", {"requestId": "1", "type": "Script",
                                      "response": {"status": 404, "url": "http://127.0.0.1/a"}}),
        ("Network.loadingFinished", {"requestId": "1", "encodedDataLength": 100}),
        ("Network.loadingFailed", {"requestId": "2", "errorText": "net::ERR_PROXY"}),
        ("Network.loadingFailed", {"requestId": "3", "errorText": "x", "canceled": True}),
    )  # fmt: skip
    browser_check.problems_in_events(events, report)
    text = "\n".join(report.problems)
    assert "console error: boom" in text
    assert "fine" not in text
    assert "meh" not in text
    assert "uncaught exception" in text
    assert "Failed to load" in text
    assert "request leaves loopback: https://cdn.x/b" in text
    assert "HTTP 404" in text
    assert "net::ERR_PROXY" in text
    assert len(report.problems) == 6  # the canceled request is not a problem
    assert report.bytes == 100
    assert report.by_type == {"Script": 100}
    assert report.sizes == {"http://127.0.0.1/a": 100}


def test_a_clean_page_has_no_problems():
    report = browser_check.PageReport("p.html")
    events = _events(
        ("Network.requestWillBeSent", {"requestId": "1", "request": {"url": "http://127.0.0.1/a"}}),
        ("Network.responseReceived", {"requestId": "1", "type": "Document",
                                      "response": {"status": 200, "url": "http://127.0.0.1/a"}}),
        ("Network.loadingFinished", {"requestId": "1", "encodedDataLength": 7}),
    )  # fmt: skip
    browser_check.problems_in_events(events, report)
    assert report.problems == []
    assert report.requests == 1


def test_main_refuses_a_folder_without_a_built_book(tmp_path, capsys):
    assert browser_check.main([str(tmp_path)]) == 2
    assert "build the book first" in capsys.readouterr().err


# --- booktools/sphinx_ext.py -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ext():
    return sphinx_ext


def test_public_modules_cover_every_exported_name_once(ext):
    modules = ext.public_modules()
    names = [name for names in modules.values() for name in names]
    assert sorted(names) == sorted(eiginit.__all__)
    assert all(m.startswith("eiginit.") for m in modules)
    assert "PALETTE" in modules["eiginit.plotting"]  # a dict: found through plotting.__all__
    assert "power_iteration" in modules["eiginit.linalg.power"]


def test_find_remote_assets_flags_what_a_browser_loads_but_not_links(ext, tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.example/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/f.css">'
        '<img src="http://img.example/i.png">'
        '<a href="https://doi.org/10.1000/1">a citation link is fine</a>'
        '<script src="_static/local.js"></script>'
    )
    (tmp_path / "s.css").write_text('@font-face { src: url("https://fonts.example/f.woff2"); }')
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "x.html").write_text('<script src="https://ignored/x.js">')
    found = ext.find_remote_assets(tmp_path)
    assert found == [
        ("a.html", "https://cdn.example/x.js"),
        ("a.html", "//fonts.example/f.css"),
        ("a.html", "http://img.example/i.png"),
        ("s.css", "https://fonts.example/f.woff2"),
    ]


def test_favicon_is_a_valid_ico_holding_a_png(ext):
    data = ext.favicon_ico(32)
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 1)
    width, height, *_, size, offset = struct.unpack("<BBBBHHII", data[6:22])
    assert (width, height, offset) == (32, 32, 22)
    assert data[offset : offset + 8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) == offset + size


def _env(found, titles):
    return SimpleNamespace(
        found_docs=set(found),
        titles={d: SimpleNamespace(astext=lambda t=t: t) for d, t in titles.items()},
    )


def test_chapter_map_links_by_slug_then_by_title_keyword_and_never_to_a_missing_page(ext):
    env = _env(
        ["index", "repeated-multiplication", "powers"],
        {"index": "Home", "repeated-multiplication": "Repeated", "powers": "Power iteration"},
    )
    taken: set[str] = set()
    assert ext._find_chapter(env, "repeated-multiplication", [], taken) == "repeated-multiplication"
    assert ext._find_chapter(env, "power-iteration", ["power iteration"], taken) == "powers"
    taken.add("powers")
    assert ext._find_chapter(env, "power-iteration", ["power iteration"], taken) is None
    assert ext._find_chapter(env, "training", ["train"], taken) is None


def test_mathjax_is_served_from_a_package_not_a_cdn(ext):
    es5 = ext.mathjax_source()
    assert (es5 / ext.MATHJAX_ENTRY).stat().st_size > 100_000
    assert (es5 / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    conf = (ROOT / "conf.py").read_text()
    assert f'mathjax_path = "mathjax/{ext.MATHJAX_ENTRY}"' in conf


# --- the API reference: every public name documented, every function with an example --------


@pytest.mark.parametrize("name", eiginit.__all__)
def test_every_public_name_is_documented(name):
    obj = getattr(eiginit, name)
    if inspect.isfunction(obj):
        doc = inspect.getdoc(obj) or ""
        assert "Examples" in doc, f"eiginit.{name} needs an Examples section"
        assert ">>>" in doc, f"eiginit.{name} needs a runnable example"
    elif inspect.isclass(obj):
        assert inspect.getdoc(obj), f"eiginit.{name} needs a docstring"
    else:  # a constant: documented by a `#:` comment on the line above its definition
        lines = inspect.getsource(sys.modules[_module_of(name)]).splitlines()
        line = next(i for i, text in enumerate(lines) if re.match(rf"{name}\s*[:=]", text))
        assert lines[line - 1].startswith("#: "), f"eiginit.{name} needs a #: comment"


def _module_of(name: str) -> str:
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("eiginit.") and name in getattr(module, "__all__", ()):
            return module_name
    raise LookupError(name)


def test_browser_check_doctests():
    import doctest

    result = doctest.testmod(browser_check)
    assert result.attempted >= 6
    assert result.failed == 0


def _fake_app(objects, tmp_path=None, drop=True):
    domain = SimpleNamespace(objects=objects)
    env = SimpleNamespace(get_domain=lambda name: domain)
    builder = SimpleNamespace(format="html", get_relative_uri=lambda page, doc: f"{doc}.html")
    config = SimpleNamespace(eiginit_drop_fontawesome_js=drop)
    return SimpleNamespace(env=env, builder=builder, config=config, outdir=str(tmp_path))


def test_code_links_to_the_api_entry_of_a_documented_name_only(ext):
    entry = SimpleNamespace(docname="api", node_id="eiginit.linalg.power.iterate")
    app = _fake_app({"eiginit.linalg.power.iterate": entry, "eiginit.linalg.power": entry})
    dot = '<span class="n">eiginit</span><span class="o">.</span>'
    context = {
        "body": f'{dot}<span class="n">iterate</span>(A) {dot}<span class="n">undocumented</span>'
    }
    ext.link_code_to_api(app, "chapter", "page.html", context, None)
    assert context["body"].count("eiginit-api-link") == 1
    assert 'href="api.html#eiginit.linalg.power.iterate"' in context["body"]
    assert '<span class="n">undocumented</span>' in context["body"]


def test_drop_fontawesome_js_removes_only_that_script(ext, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        '<head>\n  <script defer src="_static/scripts/fontawesome.js?digest=1"></script>\n'
        '  <script src="_static/scripts/bootstrap.js"></script>\n</head>'
    )
    ext.drop_fontawesome_js(_fake_app({}, tmp_path), None)
    text = page.read_text()
    assert "fontawesome.js" not in text
    assert "bootstrap.js" in text
    page.write_text('<script src="_static/scripts/fontawesome.js"></script>')
    ext.drop_fontawesome_js(_fake_app({}, tmp_path, drop=False), None)
    assert "fontawesome.js" in page.read_text()


def test_public_alias_maps_the_import_path_to_the_defining_module(ext):
    modules = {"eiginit.linalg.power": ["Trajectory", "iterate"], "eiginit.data": ["seed_matrix"]}
    assert ext.public_alias("eiginit.iterate", modules) == "eiginit.linalg.power.iterate"
    expected = "eiginit.linalg.power.Trajectory.norms"
    assert ext.public_alias("eiginit.Trajectory.norms", modules) == expected
    assert ext.public_alias("eiginit.linalg.power.iterate", modules) is None  # already a full path
    assert ext.public_alias("eiginit.missing", modules) is None
    assert ext.public_alias("numpy.linalg.eig", modules) is None


# --- the notebooks' execution-time budget -----------------------------------------------------


def _exec_table(times):
    from myst_nb.ext.execution_tables import make_stat_table

    metadata = {
        doc: {"exec_data": {"mtime": 0.0, "runtime": t, "method": "force", "succeeded": True}}
        for doc, t in times.items()
    }
    return make_stat_table("execution-statistics", metadata)


def _budget_app(times, budget=60, limit=None):
    metadata = {doc: {"exec_data": {"runtime": t}} for doc, t in times.items()}
    config = SimpleNamespace(eiginit_notebook_budget=budget, eiginit_notebook_time_limit=limit)
    return SimpleNamespace(env=SimpleNamespace(nb_metadata=metadata), config=config)


def test_rows_of_notebooks_over_budget_are_marked(ext):
    from docutils import nodes

    times = {"fast": 12.0, "slow": 61.5, "edge": 60.0}
    document = nodes.section()
    document += _exec_table(times)
    ext.mark_over_budget(_budget_app(times), document, "execution-statistics")
    rows = list(document.findall(nodes.row))[1:]  # the header row first
    marked = {row.children[0].astext(): "over-budget" in row["classes"] for row in rows}
    assert marked == {"edge": False, "fast": False, "slow": True}


def test_a_notebook_over_the_limit_is_a_warning(ext, caplog):
    app = _budget_app({"fast": 12.0, "slow": 95.0}, limit=90)
    with caplog.at_level("INFO"):
        ext.check_notebook_times(app, None)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "slow executed in 95.0 s, over the limit of 90 s" in warnings[0].getMessage()
    assert "slowest slow, 95.0 s; over the 60 s budget: slow" in caplog.text


def test_no_limit_means_no_warning_however_slow(ext, caplog):
    with caplog.at_level("INFO"):
        ext.check_notebook_times(_budget_app({"slow": 500.0}), None)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "over the 60 s budget: slow" in caplog.text


def test_conf_sets_the_budget_bench_reports_and_a_limit_in_ci_only():
    from booktools.bench import NOTEBOOK_BUDGET

    conf = (ROOT / "conf.py").read_text()
    assert f"eiginit_notebook_budget = {NOTEBOOK_BUDGET:g}\n" in conf
    assert '"120" if _build.in_ci() else "0"' in conf


# --- chapter numbers, continuous across the parts; figures and equations per chapter -----------

_MINI_CONF = """
import sys
sys.path.insert(0, {root!r})
from booktools import sphinx_ext

extensions = ["myst_parser"]
myst_enable_extensions = ["dollarmath", "amsmath"]
numfig = True
math_numfig = True
numfig_secnum_depth = 1
html_theme = "basic"

def setup(app):
    app.connect("env-get-updated", sphinx_ext.continue_chapter_numbers, priority=600)
"""


def _chapter(label: str, title: str, figure: str) -> str:
    return (
        f"({label})=\n# {title}\n\n```{{figure}} ../pic.svg\n:name: {figure}\n\nA caption.\n```\n\n"
        "$$\nx = 1\n$$ (eq-" + label + ")\n\nSee {numref}`chapter %s <ch-b>`.\n"
    )


def test_chapters_are_numbered_on_across_parts_with_figures_and_equations_per_chapter(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "pic.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'
    )
    (src / "conf.py").write_text(_MINI_CONF.format(root=str(ROOT)))
    (src / "index.md").write_text(
        "# Book\n\n"
        "```{toctree}\n:caption: Part I\n:numbered: 1\n\na\nb\n```\n\n"
        "```{toctree}\n:caption: Part II\n:numbered: 1\n\nc\n```\n\n"
        "```{toctree}\n:caption: Guide\n\nguide\n```\n"
    )
    for name, title in [("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")]:
        (src / f"{name}.md").write_text(_chapter(f"ch-{name}", title, f"fig-{name}"))
    (src / "guide.md").write_text("# Guide\n\nAs {numref}`chapter %s <ch-c>` shows.\n")
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(src), str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    gamma = (out / "c.html").read_text()
    assert "<title>3. Gamma" in gamma
    assert re.search(r"<h1><span class=\"section-number\">3\. </span>Gamma", gamma)
    assert "Fig. 3.1" in gamma  # not Fig. 1.1 (Part II restarts) nor Fig. 3
    assert "(3.1)" in gamma
    assert "2. Beta" in gamma  # the navigation, numbered on from Part I
    assert "chapter 2" in gamma  # the {numref} renders as the words it replaced
    assert "chapter 3" in (out / "guide.html").read_text()
    guide = (out / "guide.html").read_text()
    assert "<title>Guide" in guide  # the guide is not numbered


# --- the API reference, one page per module ------------------------------------------------------


def test_every_public_module_has_its_committed_api_page_and_no_other(ext, tmp_path):
    modules = list(ext.public_modules())
    folder = ROOT / "book" / "api"
    pages = sorted(p.stem for p in folder.glob("*.md"))
    assert pages == sorted(m.rpartition(".")[2] for m in modules)
    for module in modules:
        page = folder / f"{module.rpartition('.')[2]}.md"
        assert page.read_text() == ext.api_page_text(module), f"refresh {page}: build the book"
    # A new module's page is written, a stale one removed, an unchanged one left alone.
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "gone.md").write_text("old")
    written = ext.write_api_pages(tmp_path, ["eiginit.linalg.power"])
    assert sorted(p.name for p in written) == ["gone.md", "power.md"]
    assert ext.write_api_pages(tmp_path, ["eiginit.linalg.power"]) == []


def test_api_index_lists_the_module_pages_in_a_hidden_toctree():
    text = (ROOT / "book" / "api.md").read_text()
    assert "```{eval-rst}\n.. eiginit-api::\n```" in text
    assert re.search(r"```\{toctree\}\n:hidden:\n:glob:\n\napi/\*\n```", text)


def test_conf_breaks_long_signatures():
    assert "python_maximum_signature_line_length = 60" in (ROOT / "conf.py").read_text()


# --- figures: alternative text from the caption, a link to the full-size image, lazy ----------


def test_figure_alt_text_is_the_captions_first_sentence(ext):
    from docutils import nodes

    doc = nodes.document(None, None)
    figure = nodes.figure()
    figure += nodes.image(uri="_images/abc.svg", alt="_images/abc.svg")
    figure += nodes.caption(text="Left: the spectrum of one W. Right: its radius, 1.02.")
    doc += figure
    bare = nodes.image(uri="_images/def.svg", alt="_images/def.svg")
    doc += bare
    ext.caption_alt_text(None, doc, "page")
    assert figure[0]["alt"] == "Left: the spectrum of one W."
    assert bare["alt"] == ""


def test_figures_link_to_their_image_and_load_lazily(ext):
    body = (
        '<div class="cell_output"><img alt="The spectrum." src="../_images/a1.svg" /></div>'
        '<img alt="logo" src="_static/logo.svg" />'
    )
    context = {"body": body}
    ext.link_figures(_fake_app({}), "ch", "page.html", context, None)
    assert (
        '<a class="eiginit-figure-link" href="../_images/a1.svg" title="Open the figure at full'
        ' size"><img alt="The spectrum." src="../_images/a1.svg" loading="lazy" /></a>'
    ) in context["body"]
    assert '<img alt="logo" src="_static/logo.svg" />' in context["body"]


# --- the header: one search field, menu buttons that work ----------------------------------------


def test_theme_has_no_top_navbar_and_no_fullscreen_button():
    conf = (ROOT / "conf.py").read_text()
    assert '"navbar_persistent": [],' in conf
    assert '"use_fullscreen_button": False,' in conf


# --- the browser check's judgements at two widths --------------------------------------------


def _layout(**changes):
    base = {
        "viewport": 1400, "page": 1400, "column": 772, "wide": [], "searches": 1,
        "math": {"overflowing": 0, "unscrollable": [], "clipped": []},
    }  # fmt: skip
    return {**base, **changes}


def _wide(kind, width, limit, where="x"):
    return {"kind": kind, "where": where, "width": width, "limit": limit}


def test_a_table_may_scroll_a_little_on_a_phone_but_never_on_a_desktop():
    short = [_wide("table", 380 + browser_check.PHONE_TABLE_SCROLL, 380)]
    long = [_wide("table", 381 + browser_check.PHONE_TABLE_SCROLL, 380)]
    assert browser_check.layout_problems(_layout(wide=short), "phone", "a.html") == []
    assert browser_check.layout_problems(_layout(wide=long), "phone", "a.html") != []
    desk = [_wide("table", 800, 772)]
    assert browser_check.layout_problems(_layout(wide=desk), "desktop", "a.html") != []


def test_printed_lines_must_fit_on_a_desktop_and_may_scroll_on_a_phone():
    line = [_wide("output line", 959, 772)]
    assert browser_check.layout_problems(_layout(wide=line), "phone", "a.html") == []
    [problem] = browser_check.layout_problems(_layout(wide=line), "desktop", "a.html")
    assert problem == "desktop: printed line 959 px wide in a 772 px column (#x)"


def test_figures_wider_than_the_column_and_cut_math_fail_at_any_width():
    for width in ("desktop", "phone"):
        fig = _layout(wide=[_wide("figure", 500, 380)])
        assert browser_check.layout_problems(fig, width, "a.html")
        cut = _layout(math={"overflowing": 1, "unscrollable": ["eq"], "clipped": ["p"]})
        assert len(browser_check.layout_problems(cut, width, "a.html")) == 2


def test_one_search_field_per_page_and_the_search_page_its_own():
    assert browser_check.layout_problems(_layout(searches=2), "desktop", "a.html")
    assert browser_check.layout_problems(_layout(searches=2), "desktop", "search.html") == []
    assert browser_check.layout_problems(_layout(searches=3), "desktop", "search.html")


def test_the_menu_button_must_open_the_navigation_on_a_phone_and_hide_it_on_a_desktop():
    dead = {"button": True, "open": False, "links": 0, "hidden": False}
    assert browser_check.toggle_problems(dead, "primary", "phone")
    assert browser_check.toggle_problems(dead, "primary", "desktop")
    assert browser_check.toggle_problems(dead, "secondary", "phone")
    empty = {"button": True, "open": True, "links": 0}
    assert browser_check.toggle_problems(empty, "primary", "phone")
    assert browser_check.toggle_problems({"button": False}, "primary", "phone")
    assert browser_check.toggle_problems({"button": False}, "secondary", "phone") == []


def test_chapter_numbers_are_checked_in_heading_title_figures_and_equations():
    seen = {
        "heading": "9. Recurrent networks", "title": "9. Recurrent networks - Book",
        "captions": ["Fig. 9.1", "Fig. 9.2"], "equations": ["(9.1)"],
    }  # fmt: skip
    assert browser_check.numbering_problems("r.html", 9, seen) == []
    for key, wrong in [
        ("heading", "Recurrent networks"),
        ("title", "Recurrent networks - Book"),
        ("captions", ["Fig. 41"]),
        ("equations", ["(28)"]),
    ]:
        assert browser_check.numbering_problems("r.html", 9, {**seen, key: wrong})


def test_a_figure_must_open_at_full_size_on_a_phone_with_legible_text():
    good = {"figures": 3, "opened": 3, "minText": 13.3, "where": "fig-a"}
    assert browser_check.figure_view_problems(good) == []
    assert browser_check.figure_view_problems({**good, "opened": 2})
    assert browser_check.figure_view_problems({**good, "minText": 8.9})
    assert browser_check.figure_view_problems({**good, "minText": None}) == []


def test_a_shadowed_name_is_documented_on_its_own_modules_page():
    # eiginit.Contender is the study's; the protocol's own Contender must still get an entry
    assert sphinx_ext.shadowed_names("eiginit.training.protocol") == ["Contender"]
    assert sphinx_ext.shadowed_names("eiginit.training.study") == []


def test_api_targets_are_module_level_names_in_any_package_folder(ext):
    def entry(kind):
        return SimpleNamespace(docname="api/power", node_id="x", objtype=kind)

    objects = {
        "eiginit.linalg.power": entry("module"),
        "eiginit.linalg.power.iterate": entry("function"),
        "eiginit.linalg.power.Trajectory": entry("class"),
        "eiginit.linalg.power.Trajectory.norms": entry("method"),
        "eiginit.linalg.power._private": entry("function"),
    }
    app = _fake_app(objects)
    assert sorted(ext.api_targets(app.env)) == ["Trajectory", "iterate"]
