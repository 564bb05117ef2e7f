"""Make a new chapter from ``templates/chapter.md`` and add it to the table of contents.

Usage (``nox -s chapter -- ...`` runs exactly this)::

    python -m booktools.scaffold <slug> "<Title>" [--part "Part II"] [--abbr xy] [--seed N]

The slug names the file (``book/<slug>.md``) and so the chapter's URL: short, lower case, words
joined by hyphens, naming the subject. The abbreviation prefixes the chapter's glue names, figure
names and equation labels (default: the initials of the slug); the seed is shown to the reader.
The chapter goes at the end of the toctree whose caption contains ``--part`` (default: the last
numbered toctree, the chapters' last part).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NewChapter", "add_to_toctree", "default_abbreviation", "new_chapter", "render"]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "chapter.md"
_SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_ABBR = re.compile(r"[a-z][a-z0-9]{0,5}")
_TOCTREE = re.compile(r"^(```+|:::+)\{toctree\}[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class NewChapter:
    """What :func:`new_chapter` made."""

    path: Path
    abbr: str
    seed: int
    part: str


def default_abbreviation(slug: str) -> str:
    """Return the initials of a slug's words (the first two letters of a one-word slug).

    >>> default_abbreviation("power-iteration"), default_abbreviation("spectra")
    ('pi', 'sp')
    """
    words = slug.split("-")
    return "".join(w[0] for w in words) if len(words) > 1 else slug[:2]


def render(template: str, *, slug: str, title: str, abbr: str, seed: int) -> str:
    """Fill the template's ``{{ slug }}``, ``{{ title }}``, ``{{ abbr }}``, ``{{ seed }}``."""
    values = {"slug": slug, "title": title, "abbr": abbr, "seed": str(seed), "label": f"ch-{slug}"}
    text = template
    for key, value in values.items():
        text = text.replace("{{ " + key + " }}", value)
    left = re.findall(r"\{\{ *\w+ *\}\}", text)
    if left:
        raise ValueError(f"the template has placeholders this tool does not know: {left}")
    return text


def add_to_toctree(index_text: str, slug: str, part: str | None = None) -> tuple[str, str]:
    r"""Return ``index_text`` with ``slug`` appended to a toctree, and that toctree's caption.

    >>> text = "```{toctree}\n:caption: Part I\n\none\n```\n"
    >>> text += "```{toctree}\n:caption: Back matter\n\nbib\n```\n"
    >>> new, caption = add_to_toctree(text, "two")
    >>> caption, "one\ntwo\n```" in new
    ('Part I', True)

    The default is the last numbered toctree (the chapters), else the last that is not the back
    matter or the contributors' pages.
    """
    trees = list(_TOCTREE.finditer(index_text))
    if not trees:
        raise ValueError("index.md has no {toctree}; expected at least one")

    def caption(match: re.Match[str]) -> str:
        found = re.search(r"^:caption:\s*(.*)$", match.group(2), re.M)
        return found.group(1).strip() if found else ""

    for match in trees:
        entries = [ln.strip() for ln in match.group(2).splitlines()]
        if slug in entries or any(e.endswith(f"<{slug}>") for e in entries):
            raise ValueError(f"{slug!r} is already in the toctree {caption(match)!r}")
    if part is not None:
        chosen = [m for m in trees if part.lower() in caption(m).lower()]
        if not chosen:
            known = [caption(m) for m in trees]
            raise ValueError(f"no toctree caption contains {part!r}; the captions are {known}")
    else:
        numbered = [m for m in trees if re.search(r"^:numbered:", m.group(2), re.M)]
        chosen = numbered or [
            m for m in trees if not caption(m).lower().startswith(("back matter", "for contrib"))
        ]
        chosen = chosen or trees
    target = chosen[-1]
    body = target.group(2).rstrip("\n") + f"\n{slug}\n"
    start, end = target.span(2)
    return index_text[:start] + body + index_text[end:], caption(target)


def _glue_prefixes(book: Path) -> set[str]:
    prefixes = set()
    for path in book.glob("*.md"):
        prefixes.update(re.findall(r"""\bglue\(\s*["']([a-z0-9]+)_""", path.read_text("utf-8")))
    return prefixes


def new_chapter(
    slug: str,
    title: str,
    *,
    root: Path = ROOT,
    part: str | None = None,
    abbr: str | None = None,
    seed: int | None = None,
) -> NewChapter:
    """Write ``<root>/book/<slug>.md`` from the template and add it to ``book/index.md``."""
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise ValueError(
            f"slug must be lower-case words joined by hyphens, like 'power-iteration'; got {slug!r}"
        )
    if not title.strip():
        raise ValueError("title must not be empty")
    book = root / "book"
    path = book / f"{slug}.md"
    if path.exists():
        raise ValueError(f"{path} already exists; choose another slug")
    abbr = default_abbreviation(slug) if abbr is None else abbr
    if not _ABBR.fullmatch(abbr):
        raise ValueError(f"abbr must be 1 to 6 lower-case letters or digits; got {abbr!r}")
    if abbr in _glue_prefixes(book):
        raise ValueError(f"abbreviation {abbr!r} is already used by another chapter; pass --abbr")
    if seed is None:
        seed = int(hashlib.sha256(slug.encode()).hexdigest(), 16) % 10_000
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    index = book / "index.md"
    index_text, caption = add_to_toctree(index.read_text("utf-8"), slug, part)
    text = render(
        (root / "templates" / "chapter.md").read_text("utf-8"),
        slug=slug,
        title=title.strip(),
        abbr=abbr,
        seed=seed,
    )
    path.write_text(text, encoding="utf-8")
    index.write_text(index_text, encoding="utf-8")
    return NewChapter(path, abbr, seed, caption)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="nox -s chapter --", description=__doc__.splitlines()[0])
    parser.add_argument("slug", help="file name without .md, e.g. power-iteration")
    parser.add_argument("title", help='the chapter title, e.g. "Power iteration"')
    parser.add_argument("--part", help="a word of the toctree caption to add the chapter to")
    parser.add_argument("--abbr", help="prefix for glue names, figures and labels")
    parser.add_argument("--seed", type=int, help="the seed of the chapter's generator")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        made = new_chapter(
            args.slug, args.title, root=args.root, part=args.part, abbr=args.abbr, seed=args.seed
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {made.path} (abbreviation {made.abbr!r}, seed {made.seed})")
    print(f"added {made.path.stem!r} to the toctree {made.part!r} in book/index.md")
    print("next: edit the chapter, preview it with `nox -s preview`, then `nox -s tests docs`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
