"""Sessions for the eiginit book and package: `nox -s docs`, `nox -s tests`, `nox -s lint`.

Contributor loop (CONTRIBUTING.md): `nox -s chapter -- <slug> "<Title>"` scaffolds a chapter,
`nox -s preview` (or `nox -s docs -- --serve`) serves the book and rebuilds on every edit,
`nox -s bench` times the build, `nox -s repro` proves two clean builds are byte-identical,
`nox -s template` proves a chapter made from the template builds strictly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
BUILD = ROOT / "_build"

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.default_venv_backend = "venv"


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
    session.install("-e", ".[docs]")
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
def preview(session: nox.Session) -> None:
    """Serve the book at http://127.0.0.1:8000 and rebuild on edits to chapters and eiginit."""
    _preview(session, session.posargs)


def _preview(session: nox.Session, extra: list[str]) -> None:
    session.install("-e", ".[docs,preview]")
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
    session.install("-e", ".[docs,test]")
    session.run("python", "-m", "booktools.template_check", *session.posargs, env=_tool_env())


@nox.session
def bench(session: nox.Session) -> None:
    """Time full, no-op and one-chapter builds against plain Python; print page weights."""
    session.install("-e", ".[docs,test]")
    session.run("python", "-m", "booktools.bench", *session.posargs, env=_tool_env())


@nox.session
def repro(session: nox.Session) -> None:
    """Build the book twice from scratch, in two places, and require byte-identical output."""
    session.install("-e", ".[docs,test]")
    session.run("python", "-m", "booktools.repro", *session.posargs, env=_tool_env())


def _tool_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit and property tests and the doctests of eiginit."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


# --- The built site, checked in a real browser ------------------------------------------------
@nox.session
def browser(session: nox.Session) -> None:
    """Check the built book in headless Chromium: console, images, math, search, no network.

    Needs Debian's `chromium` (`apt-get install -y chromium`) and a built book (`nox -s docs`
    first; pass another folder as the first argument). Serves it on 127.0.0.1 only.
    """
    session.install("-e", ".[browser]")
    site = session.posargs[0] if session.posargs else str(BUILD / "html")
    if not (Path(site) / "index.html").is_file():
        session.error(f"no built book in {site}: run `nox -s docs` first")
    session.run(
        "python", "-m", "booktools.browser_check", site, *session.posargs[1:], env=_tool_env()
    )
