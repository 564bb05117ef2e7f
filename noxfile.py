"""Sessions for the eiginit book and package: `nox -s docs`, `nox -s tests`, `nox -s lint`."""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
BUILD = ROOT / "_build"

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.default_venv_backend = "venv"


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML book, executing every chapter (warnings are errors)."""
    session.install("-e", ".[docs]")
    out = BUILD / "html"
    session.run(
        "sphinx-build",
        "-b", "html",
        "-c", str(ROOT),
        "-W", "--keep-going",
        "-n",
        str(ROOT / "book"),
        str(out),
        *session.posargs,
    )  # fmt: skip
    session.log(f"The book is at {out / 'index.html'}")
    session.log(f"Serve it with: python3 -m http.server -d {out.relative_to(ROOT)} 8000")


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


# --- Reader experience (issue 8): the built site, checked in a real browser -----------------
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
    session.run("python", str(ROOT / "tools" / "browser_check.py"), site, *session.posargs[1:])
