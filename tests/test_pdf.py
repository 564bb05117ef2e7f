"""Tests of the PDF edition's tooling (booktools/pdf.py, booktools/pdf_check.py), without TeX.

`nox -s pdf` needs TeX Live and a built book; these tests check the configuration, the commands
the tooling runs (with stand-in programs), and every verdict of the checker on made-up inputs.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document
from sphinx import addnodes

from booktools import browser_check, pdf, pdf_check

ROOT = Path(__file__).resolve().parents[1]


def _conf_assignments() -> dict[str, ast.expr]:
    tree = ast.parse((ROOT / "conf.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            found.setdefault(f"{node.target.id}+=", [])
            found[f"{node.target.id}+="].append(node.value)
    return found


# --- the configuration ------------------------------------------------------------------------


def test_conf_typesets_with_xelatex_and_loads_the_converter_for_every_build():
    conf = _conf_assignments()
    assert ast.literal_eval(conf["latex_engine"]) == "xelatex"
    assert ast.literal_eval(conf["latex_use_xindy"]) is False  # xindy is not in the apt list
    added = [ast.literal_eval(value) for value in conf["extensions+="]]
    assert any("booktools.pdf" in names for names in added)
    strings = {n.value for n in ast.walk(conf["latex_documents"]) if isinstance(n, ast.Constant)}
    assert {"index", f"{pdf.LATEX_BASENAME}.tex"} <= strings
    elements = conf["latex_elements"]
    assert isinstance(elements, ast.Dict)
    keys = [ast.literal_eval(k) for k in elements.keys]
    fonts = ast.literal_eval(elements.values[keys.index("fontpkg")])
    assert "DejaVu Serif" in fonts  # Debian's fonts-dejavu-core, in APT_PACKAGES
    assert ast.unparse(elements.values[keys.index("preamble")]) == "_PDF_PREAMBLE"


def test_the_preamble_maps_every_emoji_the_fonts_lack_to_a_glyph_dejavu_has():
    mapped = re.findall(
        r"\\newunicodechar\{(.)\}\{\{\\fontspec\{DejaVu Sans\}(.)\}\}", pdf.LATEX_PREAMBLE
    )
    assert ("\u2705", "\u2713") in mapped  # the execution-statistics table's mark


def test_the_latex_build_takes_the_svg_figures_and_html_keeps_its_order():
    from myst_nb.core.render import get_mime_priority

    overrides = ast.literal_eval(_conf_assignments()["nb_mime_priority_overrides"])
    latex = get_mime_priority("latex", overrides)
    assert "image/svg+xml" in latex
    assert latex.index("image/svg+xml") < latex.index("image/png") < latex.index("text/plain")
    assert get_mime_priority("html", overrides) == get_mime_priority("html", [])
    assert "image/svg+xml" not in get_mime_priority("latex", [])  # why the override exists


def test_the_apt_packages_are_the_same_in_the_tooling_ci_and_readme():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    for package in pdf.APT_PACKAGES:
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", ci), package
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", readme), package
    sessions = re.search(r"for session in ([\w ]+); do", ci).group(1).split()
    assert sessions.index("docs") < sessions.index("pdf") < sessions.index("browser")
    assert "nox -s pdf" in readme


def test_the_served_pdf_name_is_the_one_the_site_links_and_the_browser_check_expects():
    noxfile = (ROOT / "noxfile.py").read_text()
    assert '"booktools.pdf", str(latex)' in noxfile
    assert pdf.PDF_NAME in browser_check.BUILT_LATER
    link = pdf.pdf_link()
    assert [r["refuri"] for r in link.findall(nodes.reference)] == [pdf.PDF_NAME]


# --- the Sphinx side: the link, the converter -------------------------------------------------


def _doc_with_title(title: str) -> nodes.document:
    doc = new_document("<test>", get_default_settings(Parser))
    section = nodes.section()
    section += nodes.title(text=title)
    section += nodes.paragraph(text="first paragraph")
    doc += section
    return doc


def _app(fmt: str) -> SimpleNamespace:
    return SimpleNamespace(
        builder=SimpleNamespace(format=fmt), config=SimpleNamespace(root_doc="index")
    )


def test_the_pdf_link_goes_under_the_landing_page_title_in_html_only():
    doc = _doc_with_title("Eigenvalues")
    pdf.add_pdf_link(_app("html"), doc, "index")
    section = next(iter(doc.findall(nodes.section)))
    assert isinstance(section[0], nodes.title)
    assert "pdf-edition" in section[1]["classes"]
    for fmt, docname in [("latex", "index"), ("html", "power-iteration")]:
        other = _doc_with_title("x")
        pdf.add_pdf_link(_app(fmt), other, docname)
        assert not [n for n in other.findall(nodes.paragraph) if "pdf-edition" in n["classes"]]


def _fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_the_converter_calls_rsvg_convert_and_fails_loudly(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in rsvg-convert: copies its input to the --output=... file, fails on "bad".
    _fake_tool(
        bin_dir,
        "rsvg-convert",
        'for a; do case "$a" in --output=*) out="${a#--output=}";; *) last="$a";; esac; done\n'
        'case "$last" in *bad*) echo "cannot parse" >&2; exit 1;; esac\n'
        'cp "$last" "$out"\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    converter = object.__new__(pdf.SvgToPdfConverter)
    assert pdf.SvgToPdfConverter.conversion_rules == [("image/svg+xml", "application/pdf")]
    assert converter.is_available()
    (tmp_path / "fig.svg").write_text("<svg/>")
    assert converter.convert(tmp_path / "fig.svg", tmp_path / "fig.pdf")
    assert (tmp_path / "fig.pdf").read_text() == "<svg/>"
    (tmp_path / "bad.svg").write_text("<svg")
    with pytest.raises(RuntimeError, match=r"rsvg-convert failed on .*bad\.svg: cannot parse"):
        converter.convert(tmp_path / "bad.svg", tmp_path / "bad.pdf")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not converter.is_available()


def test_build_pdf_runs_latexmk_on_the_tex_file_and_says_what_is_missing(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    system_path = os.environ["PATH"]
    latex = tmp_path / "latex"
    latex.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no eiginit\.tex"):
        pdf.build_pdf(latex)
    (latex / "eiginit.tex").write_text("\\documentclass{article}")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="latexmk not found: apt-get install"):
        pdf.build_pdf(latex)
    # A stand-in latexmk: records its arguments, writes the PDF of its last argument.
    script = 'echo "$@" > args.txt\nfor a; do f="$a"; done\ntouch "${f%.tex}.pdf"\n'
    script += 'echo "$SOURCE_DATE_EPOCH $FORCE_SOURCE_DATE" > env.txt\n'
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # restored after the test
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    _fake_tool(bin_dir, "latexmk", script)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{system_path}")
    assert pdf.build_pdf(latex) == latex / "eiginit.pdf"
    args = (latex / "args.txt").read_text().split()
    assert args[0] == "-pdf"
    assert args[-1] == "eiginit.tex"
    assert "-halt-on-error" in args
    assert (latex / "env.txt").read_text().split() == ["1700000000", "1"]  # dates from the commit
    _fake_tool(bin_dir, "latexmk", "exit 12\n")
    (latex / "eiginit.pdf").unlink()
    with pytest.raises(RuntimeError, match="latexmk failed"):
        pdf.build_pdf(latex)


# --- the checker ------------------------------------------------------------------------------

TITLES = {
    "repeated-multiplication": "Repeated multiplication",
    "width": "Width, the spectral condition and muP",
    "practitioners-guide": "The practitioner's guide",
}
GOOD_TEXT = (
    "Contents\n1 Repeated multiplication 3\n"
    "Exercise 1.1 (a first one) ... Solution to Exercise 1.1 ...\n"
    "Width, the spectral\ncondition and muP\nThe practitioner\u2019s guide\n"
)


def _facts(**changes) -> pdf_check.PdfFacts:
    facts = pdf_check.PdfFacts(
        pages=40,
        text=GOOD_TEXT,
        titles=dict(TITLES),
        log="Output written on eiginit.pdf (40 pages).",
        images=["a.pdf", "b.pdf"],
        missing_files=[],
        html_images=2,
        directives={"exercise": 1, "solution": 1},
        typeset={"index", *TITLES},
    )
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def test_a_complete_pdf_passes():
    assert pdf_check.find_problems(_facts()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pages": 3}, "3 pages, expected 6 to"),
        ({"pages": 100_000}, "100000 pages"),
        ({"text": GOOD_TEXT.replace("Repeated", "Repeat")}, "'repeated-multiplication'"),
        ({"text": GOOD_TEXT + "see equation (??)"}, "undefined reference (??)"),
        ({"text": "?? " + GOOD_TEXT}, "in the text: '?? Contents"),
        ({"log": "LaTeX Warning: File `fig-3.pdf' not found on input line 9."}, "fig-3.pdf"),
        ({"log": "LaTeX Warning: Citation `he2015' on page 3 undefined on input"}, "he2015"),
        ({"log": "LaTeX Warning: Reference `ch:x' on page 3 undefined on input"}, "ch:x"),
        ({"log": "Missing character: There is no \u03b7 in font lmroman10!"}, "no glyph"),
        # TeX wraps its log at 79 columns: the font's name and the "!" may be on the next line.
        (
            {"log": "Missing character: There is no \u2705 (U+2705) in font DejaVu Serif/OT:s"},
            "no glyph for \u2705 (U+2705)",
        ),
        ({"log": "LaTeX Warning: Hyper reference `ch:ex-a' on page 1 undefined on"}, "ch:ex-a"),
        ({"missing_files": ["b.pdf"]}, "an included image is missing: b.pdf"),
        ({"html_images": 3}, "the PDF includes 2 images, the HTML pages show 3"),
        ({"directives": {"exercise": 2, "solution": 1}}, "1 exercise headings in the PDF, 2"),
        ({"directives": {"exercise": 1, "solution": 4}}, "1 solutions in the PDF, 4"),
        ({"titles": {"a": "A"}, "text": "A " * 10}, "practitioner's guide"),
        ({"titles": {}}, "lists no page"),
        (
            {"typeset": {"index", "width", "practitioners-guide"}},
            "'repeated-multiplication' is not",
        ),
    ],
)
def test_each_defect_is_named(changes, expected):
    problems = pdf_check.find_problems(_facts(**changes))
    assert any(expected in p for p in problems), problems


def test_image_counts_come_from_the_tex_and_the_html_pages(tmp_path):
    tex = r"x \sphinxincludegraphics{{fig-1}.pdf} \sphinxincludegraphics[width=3in]{{img}.png}"
    assert pdf_check.included_images(tex) == ["fig-1.pdf", "img.png"]
    (tmp_path / "a.html").write_text('<img alt="" src="_images/x.svg" /><img src="_static/l.svg">')
    (tmp_path / "b.html").write_text('<p><img class="f" src="_images/y.svg"/></p>')
    (tmp_path / "_modules").mkdir()
    (tmp_path / "_modules" / "c.html").write_text('<img src="_images/z.svg">')
    assert pdf_check.html_image_count(tmp_path) == 2


def test_directives_are_counted_in_both_forms():
    source = (
        "::::{exercise} One\n:label: ex-a\n::::\n"
        ":::{solution} ex-a\n:class: dropdown\n:::\n"
        "```{exercise-start}\n```\n```{exercise-end}\n```\n"
        "Text that mentions {solution} in passing.\n"
    )
    assert pdf_check.count_directives([source]) == {"exercise": 2, "solution": 1}


def test_titles_follow_the_environment_toctree(tmp_path):
    env = SimpleNamespace(
        config=SimpleNamespace(root_doc="index"),
        toctree_includes={"index": ["b", "a"], "b": ["c"]},
        titles={doc: nodes.title(text=doc.upper()) for doc in ["index", "a", "b", "c"]},
    )
    with (tmp_path / "environment.pickle").open("wb") as handle:
        pickle.dump(env, handle)
    assert pdf_check.toctree_titles(tmp_path) == {"b": "B", "c": "C", "a": "A"}
    with pytest.raises(FileNotFoundError, match="build the book first"):
        pdf_check.toctree_titles(tmp_path / "nowhere")


def test_exercises_get_the_label_their_solutions_link_to_in_latex():
    recorded = {}

    def add_translation_handlers(node, **handlers):
        recorded[node.__name__] = handlers["latex"]

    registry = SimpleNamespace(add_translation_handlers=add_translation_handlers)
    pdf.label_exercises_for_latex(SimpleNamespace(extensions={}, registry=registry))
    assert recorded == {}  # sphinx-exercise not loaded: nothing to fix
    app = SimpleNamespace(extensions={"sphinx_exercise": object()}, registry=registry)
    pdf.label_exercises_for_latex(app)
    assert set(recorded) == {"exercise_node", "exercise_enumerable_node"}
    translator = SimpleNamespace(
        body=[], hypertarget_to=lambda node, anchor: f"<label {node['ids'][0]} {anchor}>"
    )
    visit = pdf._labelled(lambda self, node: self.body.append("<admonition>"))
    visit(translator, {"ids": ["ex-power"]})
    assert translator.body == ["<label ex-power True>", "<admonition>"]


def _chapter(docname: str, title: str) -> addnodes.start_of_file:
    sof = addnodes.start_of_file(docname=docname)
    section = nodes.section()
    section += nodes.title(text=title)
    sof += section
    return sof


def test_toctrees_become_parts_and_only_part_chapters_are_numbered():
    doc = _doc_with_title("The book")
    top = next(iter(doc.findall(nodes.section)))
    contents = nodes.section()
    contents += nodes.title(text="Contents")
    toctrees = [
        ("Part I, one matrix", ["a", "b"]),
        ("The practitioner's guide", ["guide"]),
        ("Back matter", ["notation"]),
    ]
    titles = {"a": "A", "b": "B", "guide": "The practitioner\u2019s guide", "notation": "Notation"}
    for _, docs in toctrees:
        wrapper = nodes.compound(classes=["toctree-wrapper"])
        wrapper.extend(_chapter(d, titles[d]) for d in docs)
        contents += wrapper
    top += contents
    pdf.structure_parts(doc, toctrees)
    assert contents not in top.children  # the emptied "Contents" section is gone
    sequence = [
        c["docname"] if isinstance(c, addnodes.start_of_file) else c.astext()
        for c in top.children
        if isinstance(c, addnodes.start_of_file | nodes.raw)
    ]
    raw = [s for s in sequence if "\\" in s]
    assert "\\setcounter{secnumdepth}{-1}" in raw[0]  # the landing page's sections: unnumbered
    assert sequence.index("a") < sequence.index("b") < sequence.index("guide")
    assert sequence.index("guide") < sequence.index("notation")
    before_a = "".join(sequence[: sequence.index("a")])
    assert "secnumdepth}{\\value{eiginitsecnumdepth}}" in before_a
    assert "\\part*{Part I, one matrix}" in before_a
    between = "".join(sequence[sequence.index("b") : sequence.index("guide")])
    assert "\\appendix" in between  # guide and back matter: lettered, numbers never repeat
    assert "\\part*" not in between  # a caption that only repeats its one page's title
    assert "\\part*{Back matter}" in "".join(sequence[sequence.index("guide") :])


def test_a_page_without_toctrees_is_left_alone():
    doc = _doc_with_title("Lone")
    before = doc.pformat()
    pdf.structure_parts(doc, [])
    assert doc.pformat() == before


def test_tables_in_the_running_text_may_break_across_pages_but_not_those_in_boxes():
    doc = _doc_with_title("Notation")
    section = next(iter(doc.findall(nodes.section)))
    flowing = nodes.table()
    section += flowing
    boxed = nodes.table()
    note = nodes.admonition()
    note += boxed
    section += note
    assert pdf.break_long_tables(doc) == 1
    assert "longtable" in flowing["classes"]
    assert "longtable" not in boxed["classes"]
    assert pdf.break_long_tables(doc) == 0  # once only


@pytest.mark.parametrize(("verdict", "with_site"), [(0, True), (1, True), (0, False)])
def test_the_pdf_is_served_with_the_site_only_when_it_passes(
    tmp_path, monkeypatch, verdict, with_site
):
    latex, site = tmp_path / "latex", tmp_path / "html"
    latex.mkdir()
    site.mkdir()
    if with_site:
        (site / "index.html").write_text("<html></html>")
    built = latex / "eiginit.pdf"
    built.write_bytes(b"%PDF-1.5 the book")
    monkeypatch.setattr(pdf, "build_pdf", lambda folder: built)
    checked = []
    monkeypatch.setattr(pdf_check, "main", lambda argv: checked.append(argv) or verdict)
    code = pdf.main([str(latex), "--doctrees", str(tmp_path / "d"), "--html-dir", str(site)])
    assert code == verdict
    assert checked[0][0] == str(built)
    assert ("--html-dir" in checked[0]) is with_site  # figures are counted against the site
    served = site / pdf.PDF_NAME
    assert served.is_file() is (verdict == 0 and with_site)
    if served.is_file():
        assert served.read_bytes() == built.read_bytes()


def _table(columns: int) -> nodes.table:
    table = nodes.table()
    table += nodes.tgroup(cols=columns)
    return table


def test_wide_tables_are_set_smaller():
    doc = _doc_with_title("Guide")
    section = next(iter(doc.findall(nodes.section)))
    wide, narrow = _table(6), _table(3)
    section += [wide, narrow]
    assert pdf.shrink_wide_tables(doc) == 1
    around = section.children[section.index(wide) - 1 : section.index(wide) + 2]
    assert "\\footnotesize" in around[0].astext()
    assert around[2].astext().strip() == "\\endgroup"
    assert len(list(section.findall(nodes.raw))) == 2  # the narrow table is left as it was
    assert section.children[-1] is narrow


def test_the_pdf_session_installs_exactly_what_docs_installs():
    # The execution cache's key hashes the installed distributions (booktools.build.cache_key)
    # and its path is a config value: one extra package in the pdf session would make Sphinx
    # re-read, and in CI re-execute, every chapter.
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    sessions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def installs(name: str) -> list[str]:
        calls = [n for n in ast.walk(sessions[name]) if isinstance(n, ast.Call)]
        return [
            ast.unparse(c)
            for c in calls
            if (isinstance(c.func, ast.Name) and c.func.id == "_install")
            or (isinstance(c.func, ast.Attribute) and c.func.attr == "install")
        ]

    assert installs("pdf") == ["_install(session, 'docs')"]
    assert "_install(session, 'docs')" in installs("docs")
