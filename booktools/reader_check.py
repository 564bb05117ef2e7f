"""Check the built site the way a reader at home uses it: install its wheel, run its notebooks.

``python -m booktools.reader_check [SITE] [--chapters SLUG ...]`` (``nox -s reader``) takes only
the built site (default ``_build/html``): it creates a fresh virtual environment outside the
repository, runs the install line printed on every chapter page
(:data:`booktools.wheel.INSTALL_LINE`) next to the wheel the site serves, and executes the
chapters' downloaded notebooks (``_sources/<slug>.ipynb``) there with nbclient, from a folder
that holds nothing else, so ``import eiginit`` can only find the installed wheel. Any failing
cell fails the check. It prints how long the install and each notebook took.

Besides the install line, the environment gets nbclient and ipykernel, the notebook runner a
reader's Jupyter provides. ``PIP_CONSTRAINT`` points pip at the repository's lock file when it
exists, so the check installs the locked versions without changing the documented line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from pathlib import Path

from booktools.wheel import INSTALL_LINE

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"

#: One chapter of Part I, the training study and the first chapter of Part V that exists.
DEFAULT_CHAPTERS = ("repeated-multiplication", "training", "recurrent-networks")
#: What a reader's Jupyter brings: the runner and the kernel (not part of the install line).
RUNNER = ("nbclient", "ipykernel")

_RUN = """
import sys, time
import nbformat
from nbclient import NotebookClient

path, cwd = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
where = {"metadata": {"path": cwd}}
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources=where)
client.execute()
print(f"{time.perf_counter() - start:.1f}")
"""

_WHERE = "import eiginit, sys; print(eiginit.__file__)"


def find_wheel(site: Path) -> Path:
    """Return the eiginit wheel at the root of the built site (there must be exactly one)."""
    wheels = sorted(site.glob("eiginit-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(
            f"expected one eiginit wheel at the root of {site}, found {len(wheels)}: build the "
            "book with `nox -s docs` first"
        )
    return wheels[0]


def notebooks(site: Path, chapters: Sequence[str]) -> list[Path]:
    """Return the downloaded notebooks of `chapters`, as the site serves them."""
    found = [site / "_sources" / f"{slug}.ipynb" for slug in chapters]
    missing = [path.name for path in found if not path.is_file()]
    if missing:
        raise SystemExit(f"the site serves no notebook for: {', '.join(missing)}")
    return found


def reader_env() -> dict[str, str]:
    """Return the reader's environment: no repository on the path, headless plots."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if LOCK.is_file():
        env["PIP_CONSTRAINT"] = str(LOCK)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    """Install the site's wheel in a fresh environment and execute downloaded chapters."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / "_build" / "html"))
    parser.add_argument("--chapters", nargs="+", default=list(DEFAULT_CHAPTERS))
    args = parser.parse_args(argv)
    site = Path(args.site).resolve()
    wheel = find_wheel(site)
    books = notebooks(site, args.chapters)
    env = reader_env()

    with tempfile.TemporaryDirectory(prefix="eiginit-reader-") as tmp:
        home = Path(tmp)
        shutil.copy(wheel, home / wheel.name)
        for book in books:
            shutil.copy(book, home / book.name)
        venv.create(home / "venv", with_pip=True)
        python = str(home / "venv" / "bin" / "python")
        line = shlex.split(INSTALL_LINE)
        if line[:4] != ["python", "-m", "pip", "install"]:
            raise SystemExit(f"unexpected install line: {INSTALL_LINE}")
        print(f"$ {INSTALL_LINE}", flush=True)
        start = time.perf_counter()
        subprocess.run([python, *line[1:], "--quiet"], cwd=home, env=env, check=True)
        installed = time.perf_counter() - start
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *RUNNER], cwd=home, env=env, check=True
        )
        where = subprocess.run(
            [python, "-c", _WHERE], cwd=home, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        if not where.startswith(str(home / "venv")):
            raise SystemExit(f"eiginit was imported from {where}, not from the installed wheel")
        print(f"installed {wheel.name} with [notebooks] in {installed:.0f} s", flush=True)
        failed = []
        for book in books:
            run = subprocess.run(
                [python, "-c", _RUN, str(home / book.name), str(home)],
                cwd=home,
                env=env,
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                print(f"ran {book.name} in {run.stdout.strip()} s", flush=True)
            else:
                failed.append(book.name)
                print(f"FAILED {book.name}:\n{run.stderr[-4000:]}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(books)} downloaded notebooks failed: {', '.join(failed)}")
        return 1
    print(f"all {len(books)} downloaded notebooks ran with the served wheel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
