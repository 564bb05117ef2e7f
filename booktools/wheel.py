"""The eiginit wheel a built site serves, and the one line that installs it (standard library only).

Shared by the Sphinx extension :mod:`booktools.run_at_home` (which builds the wheel into the site
and prints the line on every chapter page) and by :mod:`booktools.reader_check` (which runs that
line in a fresh environment, where neither Sphinx nor docutils is installed).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The extra of ``pyproject.toml`` that a downloaded chapter needs.
EXTRA = "notebooks"


def wheel_name(version: str) -> str:
    """Return the file name of eiginit's pure-Python wheel at `version` (PEP 427).

    >>> wheel_name("0.1.0")
    'eiginit-0.1.0-py3-none-any.whl'
    """
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+!]*", version):
        raise ValueError(f"version must be a PEP 440 version string, got {version!r}")
    return f"eiginit-{version}-py3-none-any.whl"


def install_line(version: str) -> str:
    """Return the one command that installs a downloaded wheel with what the chapters import.

    >>> install_line("0.1.0")
    'python -m pip install "eiginit-0.1.0-py3-none-any.whl[notebooks]"'
    """
    return f'python -m pip install "{wheel_name(version)}[{EXTRA}]"'


def project_version(root: Path = ROOT) -> str:
    """Return the version in ``pyproject.toml`` (the wheel's version)."""
    import tomllib

    with (root / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


#: The install line for this checkout's version, as printed on every chapter page.
INSTALL_LINE = install_line(project_version())


def build_wheel(outdir: Path, root: Path = ROOT) -> Path:
    """Build eiginit's wheel from `root` into `outdir` and return its path.

    Calls hatchling's PEP 517 hook in this process (no network, no isolated environment).
    Hatchling writes reproducible archives: fixed file order and permissions, and every
    timestamp set from ``SOURCE_DATE_EPOCH``, which the book build sets.
    """
    from hatchling.build import build_wheel as hatchling_build_wheel

    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        here = Path.cwd()
        os.chdir(root)
        try:
            name = hatchling_build_wheel(staging)
        finally:
            os.chdir(here)
        built = Path(staging) / name
        target = outdir / name
        target.write_bytes(built.read_bytes())
    return target
