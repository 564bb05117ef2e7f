"""Sessions for the eiginit book and package: `nox -s docs`, `nox -s tests`, `nox -s lint`.

Contributor loop (CONTRIBUTING.md): `nox -s chapter -- <slug> "<Title>"` scaffolds a chapter,
`nox -s preview` (or `nox -s docs -- --serve`) serves the book and rebuilds on every edit,
`nox -s bench` times the build, `nox -s repro` proves two clean builds are byte-identical,
`nox -s template` proves a chapter made from the template builds strictly, `nox -s lock`
refreshes the lock file.

Every session installs from the lock file, requirements.lock (pip-tools' format, written by
`uv pip compile`): it pins every package of every extra, resolved together, and each session
passes it as a constraints file (`-c`), so a session gets only the packages it asks for, each at
its locked version. Build tooling lives in booktools/ and runs as `python -m booktools.<tool>`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
BUILD = ROOT / "_build"
LOCK = ROOT / "requirements.lock"
#: The uv release that writes the lock file (and that nox may use to make environments).
UV = "uv==0.13.9"

nox.options.sessions = ["lint", "tests", "docs"]
# uv makes environments when it is installed (CI installs it beside nox), else venv and pip. A
# first `nox -s docs --install-only` on a fresh machine, empty caches, took 2 min 8 s with venv
# and pip and 16 s with uv 0.13.9. The tests and lock sessions always use venv and pip (see them).
nox.options.default_venv_backend = "uv|venv"


SPHINX_ARGS = ["-b", "html", "-c", str(ROOT), "-d", str(BUILD / "doctrees")]
# sphinx-autobuild watches book/ (the source folder) and these; it never watches its own
# outputs (_build/, outside book/) nor files a build writes (bytecode, the execution cache).
PREVIEW_ARGS = [
    "--watch", str(ROOT / "eiginit"),
    "--watch", str(ROOT / "CONTRIBUTING.md"),
    "--watch", str(ROOT / "conf.py"),
    "--re-ignore", r"(__pycache__|\.ipynb_checkpoints|\.jupyter_cache|jupyter_execute)(/|$)",
    "--re-ignore", r"(\.pyc|~|\.sw[a-z]|\.tmp)$|/\.#",
]  # fmt: skip


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML book, executing every chapter (warnings are errors).

    Locally, chapter outputs are cached (keyed on each chapter and on eiginit's files); with
    CI=true everything executes. `nox -s docs -- --serve` serves a live preview instead.
    """
    if "--serve" in session.posargs:
        _preview(session, [a for a in session.posargs if a != "--serve"])
        return
    _install(session, "docs")
    out = BUILD / "html"
    # In CI every chapter executes ("force": no shared cache), so chapters can run in parallel.
    # Never with the local cache: its SQLite database races between workers (CONTRIBUTING.md).
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    forced = os.environ.get("EIGINIT_EXECUTION_MODE", "force") == "force"
    parallel = ["-j", "auto"] if in_ci and forced else []
    session.run(
        "sphinx-build",
        *SPHINX_ARGS,
        *parallel,
        "-W", "--keep-going",
        "-n",
        str(ROOT / "book"),
        str(out),
        *session.posargs,
    )  # fmt: skip
    session.log(f"The book is at {out / 'index.html'}")
    session.log(f"Serve it with: python3 -m http.server -d {out.relative_to(ROOT)} 8000")


@nox.session
def pdf(session: nox.Session) -> None:
    """Build the PDF edition (xelatex via Sphinx's LaTeX builder), check it, serve it with the site.

    Needs TeX Live from Debian (README.md; booktools.pdf.APT_PACKAGES). Run it after `nox -s docs`:
    the LaTeX build reuses that build's doctrees (same environment, same configuration), so no
    chapter executes again; on its own it executes every chapter first. The PDF is checked
    (booktools.pdf_check), then copied to _build/html/eiginit-book.pdf, the file the landing page
    links; it is _build/latex/eiginit.pdf.
    """
    _install(session, "docs")  # exactly the docs environment: the same execution-cache key
    latex = BUILD / "latex"
    session.run(
        "sphinx-build",
        "-b", "latex", "-c", str(ROOT), "-d", str(BUILD / "doctrees"),
        "-W", "--keep-going",
        "-n",
        str(ROOT / "book"),
        str(latex),
        *session.posargs,
    )  # fmt: skip
    session.run(
        "python", "-m", "booktools.pdf", str(latex),
        "--doctrees", str(BUILD / "doctrees"),
        "--html-dir", str(BUILD / "html"),
        env=_tool_env(),
    )  # fmt: skip


@nox.session
def preview(session: nox.Session) -> None:
    """Serve the book at http://127.0.0.1:8000 and rebuild on edits to chapters and eiginit."""
    _preview(session, session.posargs)


def _preview(session: nox.Session, extra: list[str]) -> None:
    _install(session, "docs", "preview")
    session.run(
        "sphinx-autobuild",
        *SPHINX_ARGS,
        "-n", "--keep-going",
        *PREVIEW_ARGS,
        "--port", "8000",
        str(ROOT / "book"),
        str(BUILD / "html"),
        *extra,
    )  # fmt: skip


@nox.session(venv_backend="none")
def chapter(session: nox.Session) -> None:
    """Make a new chapter from templates/chapter.md and add it to the table of contents.

    `nox -s chapter -- power-iteration "Power iteration" [--part "Part I"] [--abbr pi]`
    """
    if not session.posargs:
        session.error('usage: nox -s chapter -- <slug> "<Title>" [--part P] [--abbr A]')
    session.run(sys.executable, "-m", "booktools.scaffold", *session.posargs, env=_tool_env())


@nox.session
def template(session: nox.Session) -> None:
    """Prove that a chapter made from the template builds strictly (on a throw-away copy)."""
    _install(session, "docs", "test")
    session.run("python", "-m", "booktools.template_check", *session.posargs, env=_tool_env())


@nox.session
def bench(session: nox.Session) -> None:
    """Time full, no-op and one-chapter builds against plain Python; print page weights.

    ``nox -s bench -- --engine`` times the training engine instead (booktools/bench_engine.py).
    """
    _install(session, "docs", "test")
    session.run("python", "-m", "booktools.bench", *session.posargs, env=_tool_env())


@nox.session
def study(session: nox.Session) -> None:
    """Re-run every chapter's stored study (chapter 8's training, chapter 9's gated) and store it.

    Tens of minutes of CPU: the build does not run it. `booktools/studies.py` runs each study's
    cells with one progress bar and an estimate of the time left (stderr). Each cell stores its
    arrays and a record of every setting, constant and version plus a brief run; the chapter
    (eiginit.training.study.check_stored) fails the build, naming what changed, when the code no
    longer matches them. `nox -s study -- training:mnist1d-relu-adam` (or just the cell's name)
    runs one cell, `nox -s study -- gated` one study. Run it after any such change, then commit
    the files.
    """
    _install(session, "docs")
    session.run(
        "python", "-m", "booktools.studies", *session.posargs,
        env={**_tool_env(), "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip


@nox.session
def repro(session: nox.Session) -> None:
    """Build the book twice from scratch, in two places, and require byte-identical output."""
    _install(session, "docs", "test")
    session.run("python", "-m", "booktools.repro", *session.posargs, env=_tool_env())


def _tool_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def _install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with these extras, every package at its locked version."""
    if not LOCK.is_file():
        session.error(f"no lock file at {LOCK}: run `nox -s lock`")
    session.install("-c", str(LOCK), "-e", f".[{','.join(extras)}]")


@nox.session(venv_backend="venv")
def tests(session: nox.Session) -> None:
    """Run every test: unit, property and doctests of eiginit, the build tooling, the Sphinx
    extension, the PyTorch parity test and the Keras names of the practitioner's guide (nothing
    is skipped for a missing package; Keras 3 runs on the torch backend).

    Installed by pip (the venv backend), never uv: pip on the project's machines finds torch's
    CPU-only wheel (the lock's torch==2.13.0+cpu) in its configured find-links; uv ignores pip's
    configuration, so it would not find that wheel, and, given any looser pin, would download a
    CUDA build of several GB.
    """
    _install(session, "test", "docs", "torch")
    # One BLAS thread, as the book's chapters run: one summation order, so iterative solvers
    # (ARPACK, power iteration) take the same path on every run.
    session.run(
        "pytest", *session.posargs, env={"KERAS_BACKEND": "torch", "OPENBLAS_NUM_THREADS": "1"}
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("-c", str(LOCK), "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# --- The built site, checked in a real browser ------------------------------------------------
@nox.session
def browser(session: nox.Session) -> None:
    """Check the built book in headless Chromium: console, images, math, search, no network.

    Needs Debian's `chromium` (`apt-get install -y chromium`) and a built book (`nox -s docs`
    first; pass another folder as the first argument). Serves it on 127.0.0.1 only.
    """
    _install(session, "browser")
    site = session.posargs[0] if session.posargs else str(BUILD / "html")
    if not (Path(site) / "index.html").is_file():
        session.error(f"no built book in {site}: run `nox -s docs` first")
    session.run(
        "python", "-m", "booktools.browser_check", site, *session.posargs[1:], env=_tool_env()
    )


@nox.session(venv_backend="venv")
def reader(session: nox.Session) -> None:
    """Run downloaded chapters as a reader would: the built site's wheel, installed with the line
    each chapter page prints into a fresh environment, executing the site's notebooks.

    Needs a built book (`nox -s docs` first; pass another folder as the first argument), and
    PyPI for the packages of `eiginit[notebooks]`. `-- --chapters SLUG ...` picks the chapters.
    Only the standard library runs here; the reader's environment is made inside the check.
    """
    session.run("python", "-m", "booktools.reader_check", *session.posargs, env=_tool_env())


@nox.session(venv_backend="venv")
def lock(session: nox.Session) -> None:
    """Re-resolve requirements.lock from pyproject.toml's dependencies and every extra.

    Keeps the locked versions that still satisfy pyproject.toml; `nox -s lock -- --upgrade`
    moves every package to its newest release (`--upgrade-package NAME` just one). Resolved for
    Python 3.11 on x86-64 Linux, the machines that build the book. torch resolves to its
    CPU-only wheel from pip's configured find-links (`pip config list`); the lock has no hashes,
    since pip allows none in a constraints file and that wheel is a local file, not PyPI's.
    After a myst-nb change, `python -m booktools.mystnb_patches` says which patch to re-check.
    """
    session.install(UV)
    find_links = []
    for location in _pip_find_links(session):
        find_links += ["--find-links", location]
    session.run(
        "uv", "pip", "compile", "pyproject.toml",
        "--all-extras",
        "--python-version", "3.11",
        "--python-platform", "x86_64-unknown-linux-gnu",
        *find_links,
        "--no-emit-find-links",
        "--custom-compile-command", "nox -s lock",
        "--output-file", str(LOCK.relative_to(ROOT)),
        *session.posargs,
    )  # fmt: skip
    text = LOCK.read_text()
    if "\nnvidia-" in text or not re.search(r"^torch==[^\s]*\+cpu$", text, re.MULTILINE):
        session.error("torch resolved to a CUDA build: pip's find-links must hold its CPU wheel")


def _pip_find_links(session: nox.Session) -> list[str]:
    """The find-links locations of pip's configuration (where the CPU-only torch wheel is)."""
    out = session.run("python", "-m", "pip", "config", "list", silent=True) or ""
    found = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".find-links"):
            found += value.strip().strip("'\"").split()
    return list(dict.fromkeys(found))
