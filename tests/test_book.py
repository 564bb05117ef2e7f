"""Consistency checks on the book's chapters, run with the tests (no build, no execution).

Chapters are discovered from book/*.md (a chapter is a page whose front matter names a
kernelspec), so these tests cover every chapter that exists. The template is checked too, as
the scaffolding tool renders it.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

from booktools import chapters as bc
from booktools.scaffold import render

CHAPTERS = [bc.Chapter.read(p) for p in bc.chapter_paths()]
TEMPLATE = bc.Chapter(
    "my-topic",
    render(
        (bc.ROOT / "templates" / "chapter.md").read_text("utf-8"),
        slug="my-topic",
        title="My topic",
        abbr="mt",
        seed=1,
    ),
)
CHECKED = [*CHAPTERS, TEMPLATE]
IDS = [f"{c.slug}" if c is not TEMPLATE else "template" for c in CHECKED]


def test_the_book_has_chapters():
    assert CHAPTERS, "no chapter found in book/ (a .md page with a kernelspec)"


def test_every_page_is_in_the_toctree():
    listed = [doc for _, docs in bc.toctree_entries() for doc in docs]
    pages = [p.stem for p in bc.page_paths()]
    missing = sorted(set(pages) - set(listed))
    assert not missing, f"pages not in any toctree of book/index.md: {missing}"


def test_every_toctree_entry_exists_once():
    listed = [doc for _, docs in bc.toctree_entries() for doc in docs]
    duplicated = [doc for doc, n in collections.Counter(listed).items() if n > 1]
    absent = [doc for doc in listed if not (bc.BOOK / f"{doc}.md").exists()]
    assert not duplicated, f"listed twice in the toctree: {duplicated}"
    assert not absent, f"toctree entries with no book/<entry>.md: {absent}"


@pytest.mark.parametrize("check", bc.ALL_CHECKS, ids=lambda f: f.__name__.removeprefix("check_"))
@pytest.mark.parametrize("chapter", CHECKED, ids=IDS)
def test_chapter(chapter, check):
    problems = check(chapter)
    assert not problems, f"{chapter.slug}.md: " + "; ".join(problems)


def _owners(names_of):
    owners = collections.defaultdict(list)
    for chapter in CHAPTERS:
        for name in set(names_of(chapter)):
            owners[name].append(chapter.slug)
    return {name: slugs for name, slugs in owners.items() if len(slugs) > 1}


def test_glue_names_are_unique_across_chapters():
    shared = _owners(bc.Chapter.glue_names)
    assert not shared, f"glue names defined in several chapters: {shared}"


def test_figure_names_are_unique_across_chapters():
    shared = _owners(bc.Chapter.figure_names)
    assert not shared, f"figure names used in several chapters: {shared}"
    for chapter in CHAPTERS:
        names = chapter.figure_names()
        assert len(names) == len(set(names)), f"{chapter.slug}: duplicated figure names"


def test_eiginit_never_uses_the_global_random_state():
    # Saving and restoring the state draws nothing: it is how eiginit.load_mnist1d undoes the
    # global seeding done by the mnist1d package it wraps (and a test checks that it does).
    restore = {"np.random.get_state", "np.random.set_state"}
    uses = {
        str(path.relative_to(bc.ROOT)): found
        for path in sorted((bc.ROOT / "eiginit").rglob("*.py"))
        if (
            found := [
                u for u in bc.global_random_state_uses(path.read_text("utf-8")) if u not in restore
            ]
        )
    }
    assert not uses, f"numpy's global random state used in eiginit: {uses}"


# --- the checks themselves can fail ------------------------------------------------------------

GOOD = TEMPLATE.text


def _broken(old: str, new: str) -> bc.Chapter:
    assert old in GOOD, old
    return bc.Chapter("my-topic", GOOD.replace(old, new, 1))


@pytest.mark.parametrize(
    ("check", "old", "new", "message"),
    [
        (bc.check_label, "(ch-my-topic)=", "(ch-other)=", "not preceded by the label"),
        (bc.check_sections, "## Summary", "## Recap", "no '## Summary'"),
        (bc.check_figures, "    caption: |", "    alt: |", "no caption"),
        (bc.check_figures, "({numref}`fig-mt-mean-norm`)", "", "never referred to"),
        (bc.check_figures, "name: fig-mt-mean-norm", "name: mean-norm", "does not start"),
        (bc.check_exercises, ":label: ex-mt-uniform", ":label: ex-mt-other", "no {solution-start}"),
        (bc.check_seeded_generator, "default_rng(1)", "default_rng()", "without a seed"),
        (bc.check_global_random_state, "rng.uniform(", "np.random.uniform(", "np.random.uniform"),
        (bc.check_glue_prefix, 'glue("mt_k_max"', 'glue("kmax"', "without a '<abbreviation>_'"),
        (
            bc.check_runs_without_sphinx,
            "from eiginit import glue",
            "from myst_nb import glue",
            "imports myst_nb",
        ),
    ],
)
def test_check_detects(check, old, new, message):
    problems = check(_broken(old, new))
    assert any(message in p for p in problems), problems


def test_figure_without_option_block_is_detected():
    chapter = _broken("---\ntags: [hide-input]\nmystnb:", "---\ntags: [hide-input]\nnotmystnb:")
    assert any("without a caption" in p for p in bc.check_figures(chapter))


def test_too_few_exercises_are_detected():
    assert bc.check_exercises(TEMPLATE, minimum=3) == []
    assert "3 exercise(s); expected at least 4" in bc.check_exercises(TEMPLATE, minimum=4)


@pytest.mark.parametrize(
    "code",
    [
        "np.random.seed(0)",
        "x = np.random.randn(3)",
        "import numpy as onp\nonp.random.shuffle(x)",
        "from numpy.random import normal\nnormal()",
        "from numpy import random\nrandom.rand()",
        "import numpy.random as npr\nnpr.choice(3)",
    ],
)
def test_global_random_state_uses_found(code):
    assert bc.global_random_state_uses(code)


@pytest.mark.parametrize(
    "code",
    [
        "rng = np.random.default_rng(0)\nrng.normal()",
        "np.random.RandomState(8675309).randn(5, 5)",
        "from numpy.random import default_rng\ndefault_rng(3)",
        "np.random.Generator(np.random.PCG64(5))",
    ],
)
def test_explicit_generators_allowed(code):
    assert bc.global_random_state_uses(code) == []


def test_toctree_entries_reads_explicit_titles(tmp_path: Path):
    index = tmp_path / "index.md"
    index.write_text(
        "# Book\n\n:::{toctree}\n:caption: A\n:maxdepth: 1\n\none\nTitle <two>\n:::\n", "utf-8"
    )
    assert bc.toctree_entries(index) == [("A", ["one", "two"])]


#: The sentence checks (calls of eiginit's ``claim`` and ``compare``) a page must keep: every
#: sentence that states a direction, an order, a threshold or a tie about a number the page
#: computes has one. Raise a page's number when you add a check; never lower it to pass.
CLAIMS_AT_LEAST = {
    "my-topic": 1,
    "training": 55,  # 52 + the seed count, fresh seeds, streams, SiLU, GELU (issue 25, 29)
    "recurrent-networks": 34,
    "residual-networks": 37,
    "convolutions": 18,  # 14 + 4 (seed count, fresh spread, no edge rate, all finite)
    "width": 21,
    "curvature": 22,
    "attention": 23,
    "practitioners-guide": 20,
    "repeated-multiplication": 13,
    "power-iteration": 22,
    "beyond-eigenvalues": 23,
    "gaussian-spectra": 20,
    "lyapunov-exponents": 17,
    "variance-scaling": 24,
    "backward-pass": 38,  # 32 + 6 (GELU and SiLU)
}


def test_sentence_checks_per_page():
    counts = {c.slug: bc.count_claims(c) for c in CHECKED}
    short = {s: (counts.get(s), n) for s, n in CLAIMS_AT_LEAST.items() if counts.get(s, 0) < n}
    assert not short, f"pages with fewer sentence checks than they had (found, expected): {short}"


@pytest.mark.parametrize("chapter", CHECKED, ids=IDS)
def test_cross_page_glue_has_a_format_spec(chapter):
    # myst-nb reads `page.md::name` without a spec as the key 'page.md:' and the strict build
    # fails; a spec (`:s`, `:d`, `:.3f`) makes it parse the page and the name.
    bare = re.findall(r"\{glue(?::text)?\}`[\w./-]+\.md::\w+`", chapter.markdown)
    assert not bare, f"cross-page glue without a format spec: {bare}"
