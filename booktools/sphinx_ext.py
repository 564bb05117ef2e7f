"""Sphinx extension for the eiginit book: the reader-facing machinery that themes do not provide.

Loaded from ``conf.py``. It adds, for any number of chapters and modules, with no per-chapter edit:

- ``chapter-map``: the landing page's map of the planned chapters, in words. A planned chapter
  becomes a link as soon as a page with its slug (or a title matching one of its keywords)
  exists; until then it reads "in preparation". A link to a missing page is never emitted.
- ``eiginit-api``: the API reference, one section per module that exports a name in
  ``eiginit.__all__``, each documented by autodoc from its numpy-style docstrings. A new module
  needs no edit here: exporting its names from ``eiginit/__init__.py`` is enough. References
  may use the public path (``:func:`eiginit.iterate```) or the module's.
- A local MathJax: the MathJax 3 files of the ``django-static-mathjax`` wheel (PyPI) are copied
  into ``_static/mathjax``, so math renders with no network.
- A ``.ipynb`` download on every executed chapter (the notebook with its outputs), beside the
  ``.md`` source that the theme already offers.
- Code that calls ``eiginit.<name>`` links to that name's entry in the API reference.
- An offline guard: any ``<script>``, stylesheet, font or ``url()`` in the built site that points
  off-site is reported as a warning (the strict build turns it into an error).
- The notebooks' execution-time budget: the execution-statistics table marks every notebook
  whose run time exceeds ``eiginit_notebook_budget`` (seconds), the build log names the slowest,
  and a notebook over ``eiginit_notebook_time_limit`` (if set; conf.py sets it in CI) is a
  warning, so the strict build fails.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment.collectors.toctree import TocTreeCollector
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.fileutil import copy_asset
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

#: What of MathJax's ``es5`` folder is served: the TeX-to-CommonHTML component, the pieces it
#: loads on demand (TeX extensions, fonts, the context menu and its accessibility tools).
MATHJAX_ENTRY = "tex-chtml.js"
MATHJAX_PARTS = ("tex-chtml.js", "input", "output", "ui", "a11y", "sre", "adaptors")


# --- chapter map ---------------------------------------------------------------------------


class chapter_map_entry(nodes.General, nodes.Element):
    """Placeholder for one planned chapter; resolved to a link or a plain title after reading."""


class ChapterMap(SphinxDirective):
    """The landing page's chapter map.

    Content: part headings on their own line, and one line per planned chapter::

        slug | Title | one line of description | keyword, keyword

    The keywords (optional) match the title of an existing page, so the map finds a chapter
    whose slug differs from the plan.
    """

    has_content = True

    def run(self) -> list[nodes.Node]:
        """Build one list per part; chapter titles are resolved once every page is read."""
        container = nodes.container(classes=["chapter-map"])
        current: nodes.bullet_list | None = None
        number = 0
        for lineno, raw in enumerate(self.content, start=self.content_offset):
            line = raw.strip()
            if not line:
                continue
            if "|" not in line:
                heading = nodes.paragraph(classes=["chapter-map-part"])
                heading += nodes.strong(text=line)
                container += heading
                current = nodes.bullet_list(classes=["chapter-map-list"])
                container += current
                continue
            fields = [f.strip() for f in line.split("|")]
            if len(fields) not in (3, 4) or current is None:
                raise self.error(
                    f"chapter-map line {lineno + 1}: expected a part heading first, then "
                    f"'slug | Title | description [| keywords]', got {line!r}"
                )
            number += 1
            slug, title, description = fields[:3]
            keywords = [k.strip().lower() for k in fields[3].split(",")] if len(fields) == 4 else []
            entry = chapter_map_entry(slug=slug, title=title, keywords=keywords, number=number)
            item = nodes.list_item()
            para = nodes.paragraph()
            para += entry
            para += nodes.Text(": ")
            text_nodes, messages = self.state.inline_text(description, lineno)
            para.extend(text_nodes)
            item += para
            item.extend(messages)
            current += item
        return [container]


def _find_chapter(env: Any, slug: str, keywords: list[str], taken: set[str]) -> str | None:
    """Return the docname of an existing page for a planned chapter, or None."""
    if slug in env.found_docs and slug not in taken:
        return slug
    for docname in sorted(env.found_docs):
        if docname in taken or docname not in env.titles:
            continue
        title = env.titles[docname].astext().lower()
        if any(k and k in title for k in keywords):
            return docname
    return None


def resolve_chapter_map(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Turn each planned chapter into a link if its page exists, else into 'in preparation'."""
    taken: set[str] = set()
    for entry in doctree.findall(chapter_map_entry):
        target = _find_chapter(app.env, entry["slug"], entry["keywords"], taken)
        title = entry["title"] if target is None else app.env.titles[target].astext()
        number = entry["number"] if target is None else chapter_number(app.env, target)
        if target is not None and number != entry["number"]:
            logger.warning(
                "chapter map: %s is chapter %s in the table of contents but number %s in the"
                " map; put the map in the order of the toctrees",
                target,
                number,
                entry["number"],
                location=docname,
            )
        label = f"{number}. {title}"
        if target is None:
            replacement: nodes.Node = nodes.inline(
                "", "", nodes.Text(label), nodes.emphasis(text=" (in preparation)")
            )
        else:
            taken.add(target)
            uri = app.builder.get_relative_uri(docname, target)
            replacement = nodes.reference(
                "", "", nodes.strong(text=label), internal=True, refuri=uri
            )
        entry.replace_self(replacement)


# --- chapter numbers, continuous across the parts ------------------------------------------


def numbered_chapters(env: Any, root: str) -> list[str]:
    """Return the chapters of the root document's numbered toctrees, in reading order."""
    if root not in env.tocs:
        return []
    chapters = []
    for toctree in env.get_doctree(root).findall(addnodes.toctree):
        if toctree.get("numbered"):
            chapters += [ref for _title, ref in toctree["entries"] if ref in env.tocs]
    return chapters


def _shift(number: Any, by: int) -> Any:
    """Add `by` to the first (chapter) element of a section or figure number."""
    if not number:
        return number
    shifted = [number[0] + by, *number[1:]]
    return tuple(shifted) if isinstance(number, tuple) else shifted


def continue_chapter_numbers(app: Sphinx, env: Any) -> list[str]:
    """Make the chapter numbers run on (1, 2, ...) across the root document's numbered toctrees.

    Sphinx starts each numbered toctree at 1 again, so with one toctree per part Part II would
    restart at 1. After Sphinx has numbered sections (``env-get-updated``), shift each
    toctree's section numbers (headings, sidebar, prev/next, the tab title, which Sphinx renders
    from the numbered title) by the chapters before it, then let
    Sphinx count figures, tables and equations again, per chapter with ``numfig_secnum_depth =
    1`` (``Fig. 9.2``, ``(13.4)``). Returns the pages to rewrite.
    """
    root = app.config.root_doc
    if root not in env.numbered_toctrees:
        return []
    offset, changed = 0, []
    for toctree in env.get_doctree(root).findall(addnodes.toctree):
        if not toctree.get("numbered"):
            continue
        refs = [ref for _title, ref in toctree["entries"] if ref in env.toc_secnumbers]
        if offset:
            for ref in refs:
                numbers = env.toc_secnumbers[ref]
                for anchor in numbers:
                    numbers[anchor] = _shift(numbers[anchor], offset)
                for node in env.tocs[ref].findall(nodes.reference):
                    if node.get("secnumber"):
                        node["secnumber"] = _shift(node["secnumber"], offset)
                title = env.titles.get(ref)
                if title is not None and title.get("secnumber"):
                    title["secnumber"] = _shift(title["secnumber"], offset)
                changed.append(ref)
        offset += sum(1 for ref in refs if len(env.toc_secnumbers[ref].get("", ())) == 1)
    # Figures, tables and equations are counted per chapter number: count them again.
    return changed + TocTreeCollector().assign_figure_numbers(env)


def chapter_number(env: Any, docname: str) -> int | None:
    """Return the chapter number of a page (its numbered toctree entry), or None if it has none."""
    number = env.toc_secnumbers.get(docname, {}).get("")
    return number[0] if number and len(number) == 1 else None


# --- figures: a full-size view on tap, lazy loading, alternative text ------------------------

_FIGURE_IMG = re.compile(r'<img alt="([^"]*)" src="([^"]*_images/[^"]+)"([^>]*?)\s*/?>')


def _first_sentence(text: str, limit: int = 160) -> str:
    """Return the first sentence of a caption, at most `limit` characters, for an image's alt text.

    >>> _first_sentence("Left: the spectrum. Right: its radius, e.g. 1.02.")
    'Left: the spectrum.'
    """
    text = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def caption_alt_text(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every figure's image the first sentence of its caption as alternative text.

    MyST-NB leaves a computed figure's ``alt`` as its file name (a 64-digit hash read aloud by a
    screen reader); an image without a caption gets an empty ``alt`` (the text beside it says
    what it shows).
    """
    for image in doctree.findall(nodes.image):
        alt = image.get("alt", "")
        if alt and not alt.startswith("_images/") and "/" not in alt:
            continue
        figure = image.parent
        while figure is not None and not isinstance(figure, nodes.figure):
            figure = figure.parent
        captions = list(figure.findall(nodes.caption)) if figure is not None else []
        image["alt"] = _first_sentence(captions[0].astext()) if captions else ""


def link_figures(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Make each figure a link to its image, loaded lazily.

    On a phone a figure is shown at the column's width, its labels at about half size; a tap
    opens it at full size (``book/_static/eiginit.js``: a view that pans sideways; a desktop
    browser opens the SVG). ``loading="lazy"`` fetches a figure only as the reader nears it.
    """
    body = context.get("body")
    if app.builder.format != "html" or not body or "_images/" not in body:
        return

    def wrap(match: re.Match[str]) -> str:
        alt, src, rest = match.groups()
        rest = rest if "loading=" in rest else rest + ' loading="lazy"'
        return (
            f'<a class="eiginit-figure-link" href="{src}" title="Open the figure at full size">'
            f'<img alt="{alt}" src="{src}"{rest} /></a>'
        )

    context["body"] = _FIGURE_IMG.sub(wrap, body)


# --- API reference -------------------------------------------------------------------------


def public_modules(package: str = "eiginit") -> dict[str, list[str]]:
    """Map each module that defines a name of ``package.__all__`` to those names, sorted."""
    pkg = importlib.import_module(package)
    modules: dict[str, list[str]] = {}
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str) or not module.startswith(package + "."):
            module = _defining_module(package, name)
        modules.setdefault(module, []).append(name)
    return {m: sorted(names) for m, names in sorted(modules.items())}


def _defining_module(package: str, name: str) -> str:
    """Find the submodule whose ``__all__`` lists ``name`` (for constants such as dicts)."""
    pkg = importlib.import_module(package)
    base = Path(pkg.__file__).parent
    for path in sorted(base.rglob("[!_]*.py")):
        dotted = ".".join(path.relative_to(base).with_suffix("").parts)
        module = importlib.import_module(f"{package}.{dotted}")
        if name in getattr(module, "__all__", ()):
            return module.__name__
    raise ValueError(f"{package}.{name} is exported but no {package} submodule lists it")


#: Where the API reference's per-module pages live, relative to the source folder.
API_FOLDER = "api"


def api_page_name(module: str) -> str:
    """Return the docname of a module's API page: ``eiginit.linalg.power`` -> ``api/power``."""
    return f"{API_FOLDER}/{module.rpartition('.')[2]}"


def api_page_text(module: str) -> str:
    """Return the source of a module's API page: a title, a label and the ``eiginit-api`` directive.

    The directive runs in reStructuredText (``eval-rst``): it writes autodoc directives.

    >>> print(api_page_text("eiginit.linalg.power"))
    (api-power)=
    # eiginit.linalg.power
    <BLANKLINE>
    ```{eval-rst}
    .. eiginit-api:: eiginit.linalg.power
    ```
    <BLANKLINE>
    """
    stem = module.rpartition(".")[2]
    return (
        f"({API_FOLDER}-{stem})=\n# {module}\n\n```{{eval-rst}}\n.. eiginit-api:: {module}\n```\n"
    )


def write_api_pages(srcdir: Path, modules: list[str]) -> list[Path]:
    """Write (or refresh) one page per public module under ``srcdir/api``; remove stale ones.

    The pages are sources, committed with the book: a new module's page appears on the next
    build (commit it then); an unchanged page is never rewritten, so a live preview does not
    loop. Returns the files written or removed.
    """
    folder = srcdir / API_FOLDER
    folder.mkdir(exist_ok=True)
    changed = []
    wanted = {folder / f"{m.rpartition('.')[2]}.md": api_page_text(m) for m in modules}
    for path, text in wanted.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in sorted(folder.glob("*.md")):
        if path not in wanted:
            path.unlink()
            changed.append(path)
    return changed


def refresh_api_pages(app: Sphinx) -> None:
    """Keep ``book/api/`` in step with ``eiginit.__all__`` before Sphinx looks for sources."""
    for path in write_api_pages(Path(app.srcdir), list(public_modules())):
        logger.info("API reference: refreshed %s (commit it)", path.relative_to(app.srcdir))


class EiginitApi(SphinxDirective):
    """The API reference: with a module name, that module's page; without, the list of modules.

    Used inside ``eval-rst`` (it emits reStructuredText). ``.. eiginit-api:: eiginit.linalg.power``
    documents the names of ``eiginit.__all__`` that the module defines (autodoc, numpy-style
    docstrings), after the module's docstring. With no argument it lists every public module
    with the first line of its docstring and a link to its page.
    """

    has_content = False
    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Emit reStructuredText (automodule, or a list of links) and parse it in place."""
        modules = public_modules()
        lines: list[str] = []
        if self.arguments:
            module = self.arguments[0]
            if module not in modules:
                raise self.error(
                    f"eiginit-api: {module!r} defines no name of eiginit.__all__; "
                    f"expected one of {', '.join(modules)}"
                )
            self.env.note_dependency(importlib.import_module(module).__file__)
            members = modules[module] + shadowed_names(module)
            lines += [f".. automodule:: {module}", f"   :members: {', '.join(members)}"]
        else:
            for wing, members in api_wings(modules).items():
                if wing is not None:
                    head = (importlib.import_module(wing).__doc__ or "").strip().splitlines()
                    lines += ["", f"**{head[0] if head else wing}** (``{wing}``)", ""]
                elif len(members) < len(modules):
                    lines += ["", "**Checks, plots and data** (``eiginit``)", ""]
                for module in members:
                    path = importlib.import_module(module).__file__
                    self.env.note_dependency(path)
                    doc = (importlib.import_module(module).__doc__ or "").strip()
                    summary = doc.splitlines()[0] if doc else ""
                    page = "/" + api_page_name(module)
                    lines += [f"- :doc:`{module} <{page}>`: {summary}"]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, "<eiginit-api>"), container)
        return container.children


def api_wings(modules: dict[str, list[str]] | list[str]) -> dict[str | None, list[str]]:
    """Group public modules by the package folder they live in, the top level last.

    >>> api_wings(["eiginit.data", "eiginit.linalg.power", "eiginit.linalg.spectra"])
    {'eiginit.linalg': ['eiginit.linalg.power', 'eiginit.linalg.spectra'], None: ['eiginit.data']}
    """
    groups: dict[str | None, list[str]] = {}
    for module in modules:
        parts = module.split(".")
        groups.setdefault(".".join(parts[:2]) if len(parts) > 2 else None, []).append(module)
    top = groups.pop(None, [])
    return {**groups, None: top} if top else groups


def shadowed_names(module: str, package: str = "eiginit") -> list[str]:
    """Names a module defines and exports whose top-level name belongs to another module's object.

    ``eiginit.Contender`` is the training study's; :mod:`eiginit.training.protocol` defines a
    ``Contender`` of its own, reachable as ``eiginit.training.protocol.Contender``. Its page
    documents it
    too, so that references to it resolve.
    """
    pkg = importlib.import_module(package)
    mod = importlib.import_module(module)
    out = []
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name, None)
        if (
            name in pkg.__all__
            and getattr(pkg, name, None) is not obj
            and getattr(obj, "__module__", None) == module
        ):
            out.append(name)
    return sorted(out)


def public_alias(target: str, modules: dict[str, list[str]]) -> str | None:
    """Map a public name to its documented path: ``eiginit.iterate`` -> ``...power.iterate``.

    Works for members too (``eiginit.Trajectory.norms``); returns None for anything else.
    """
    parts = target.split(".")
    if len(parts) < 2 or parts[0] != "eiginit":
        return None
    for module, names in modules.items():
        if parts[1] in names:
            return ".".join([module, *parts[1:]])
    return None


def resolve_public_alias(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``:func:`eiginit.name``` (how readers import it) to the module that defines it."""
    if node.get("refdomain") != "py":
        return None
    target = public_alias(node.get("reftarget", ""), public_modules())
    if target is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


# --- MathJax served with the site ----------------------------------------------------------


def mathjax_source() -> Path:
    """Return the ``es5`` folder of MathJax 3 shipped by the ``django-static-mathjax`` wheel."""
    try:
        module = importlib.import_module("mathjax")
    except ImportError as exc:  # pragma: no cover - a docs install always has it
        raise RuntimeError(
            "MathJax is served with the book from the 'django-static-mathjax' package; "
            "install the docs extra: pip install -e '.[docs]'"
        ) from exc
    es5 = Path(module.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"no MathJax {MATHJAX_ENTRY} under {es5}")
    return es5


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    """Copy the MathJax pieces (and its licence) into ``_static/mathjax`` of an HTML build."""
    if exc is not None or app.builder.format != "html":
        return
    es5 = mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source = es5 / part
        if source.is_dir():
            copy_asset(source, dest / part)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest / part)
    shutil.copyfile(es5.parent / "LICENSE", dest / "LICENSE")


# --- notebook downloads --------------------------------------------------------------------


def add_notebook_download(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Offer the executed notebook of a chapter as ``_sources/<page>.ipynb``.

    MyST-NB writes each executed page to ``jupyter_execute/`` beside the HTML folder; the book
    theme shows a ``.ipynb`` download button when ``ipynb_source`` is in the page context.
    """
    if doctree is None or app.builder.format != "html":
        return
    config = getattr(app.env, "mystnb_config", None)
    folder = getattr(config, "output_folder", None) or Path(app.outdir).parent / "jupyter_execute"
    executed = Path(folder) / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


# --- code cells link to the API reference ---------------------------------------------------

_EIGINIT_ATTRIBUTE = re.compile(
    r'(<span class="n">eiginit</span><span class="o">\.</span>)<span class="n">(\w+)</span>'
)


def api_targets(env: Any) -> dict[str, tuple[str, str]]:
    """Map each documented public name of eiginit to ``(docname, anchor)`` in the API pages."""
    targets: dict[str, tuple[str, str]] = {}
    objects = env.get_domain("py").objects
    for name, entry in objects.items():
        parent, _, attr = name.rpartition(".")
        if not parent.startswith("eiginit.") or any(p.startswith("_") for p in name.split(".")):
            continue
        # a module-level name: its parent is a documented module (eiginit.linalg.power), not a
        # class whose member it is
        if parent in objects and getattr(objects[parent], "objtype", "module") == "module":
            targets.setdefault(attr, (entry.docname, entry.node_id))
    return targets


def link_code_to_api(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Make ``eiginit.name`` in highlighted code a link to the name's API entry.

    Works on the page's HTML body (Pygments' output), so it needs no per-chapter markup: any
    ``eiginit.<public name>`` in a code cell links to the reference; other names stay text.
    """
    body = context.get("body")
    if app.builder.format != "html" or not body or "eiginit" not in body:
        return
    targets = api_targets(app.env)

    def link(match: re.Match[str]) -> str:
        target = targets.get(match.group(2))
        if target is None:
            return match.group(0)
        docname, anchor = target
        uri = app.builder.get_relative_uri(pagename, docname) + "#" + anchor
        return (
            f'{match.group(1)}<a class="eiginit-api-link" href="{uri}" '
            f'title="eiginit.{match.group(2)} in the API reference">'
            f'<span class="n">{match.group(2)}</span></a>'
        )

    context["body"] = _EIGINIT_ATTRIBUTE.sub(link, body)


# --- lighter pages ---------------------------------------------------------------------------

_FONTAWESOME_JS = re.compile(
    r"""[ \t]*<script\b[^>]*\bsrc=["'][^"']*/fontawesome\.js[^"']*["'][^>]*>\s*</script>\n?"""
)


def drop_fontawesome_js(app: Sphinx, exc: Exception | None) -> None:
    """Remove the theme's Font Awesome *script* (1.5 MB) from every page.

    The theme loads it only "so that users can add custom icons"; its own icons are drawn by
    the Font Awesome web font that its stylesheet already loads, so the script roughly doubles
    a chapter's first-visit weight for nothing this book uses. Set
    ``eiginit_drop_fontawesome_js = False`` in ``conf.py`` to keep it (e.g. for custom icons).
    """
    if (
        exc is not None
        or app.builder.format != "html"
        or not app.config.eiginit_drop_fontawesome_js
    ):
        return
    for path in Path(app.outdir).rglob("*.html"):
        if "_static" in path.relative_to(app.outdir).parts:
            continue
        text = path.read_text(encoding="utf-8")
        lighter = _FONTAWESOME_JS.sub("", text)
        if lighter != text:
            path.write_text(lighter, encoding="utf-8")


# --- favicon.ico ---------------------------------------------------------------------------


def favicon_ico(size: int = 32) -> bytes:
    """Return a small ICO file (one PNG inside): the book's mark, a white lambda on blue.

    Pages link ``_static/favicon.svg``, but browsers still ask for ``/favicon.ico`` on pages
    without the link (Sphinx's viewcode pages), and a 404 there is a console error.
    """
    import io
    import struct

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), dpi=size, facecolor="#0072B2")
    fig.text(0.5, 0.45, r"$\lambda$", color="white", fontsize=size * 0.6, ha="center", va="center")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=size, metadata={"Software": None})
    data = png.getvalue()
    header = struct.pack("<HHH", 0, 1, 1)  # reserved, type 1 = icon, one image
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(data), 6 + 16)
    return header + entry + data


def write_favicon(app: Sphinx, exc: Exception | None) -> None:
    """Write ``favicon.ico`` at the root of an HTML build."""
    if exc is None and app.builder.format == "html":
        (Path(app.outdir) / "favicon.ico").write_bytes(favicon_ico())


# --- offline guard -------------------------------------------------------------------------

_HTML_ASSET = re.compile(
    r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=["'](?P<a>(?:https?:)?//[^"']+)"""
    r"""|<link\b[^>]*\brel=["'](?:stylesheet|preload|modulepreload|icon|prefetch)["'][^>]*"""
    r"""\bhref=["'](?P<b>(?:https?:)?//[^"']+)""",
    re.IGNORECASE,
)
_CSS_ASSET = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])(?P<a>(?:https?:)?//[^"')\s]+)""")


def find_remote_assets(outdir: Path) -> list[tuple[str, str]]:
    """Return ``(file, url)`` for every off-site script, stylesheet, font or image in a site.

    Hyperlinks (``<a href>``) are fine: a reader follows them on purpose. Only what a browser
    loads by itself counts. Source maps of bundled libraries are not loaded and not scanned.
    """
    found: list[tuple[str, str]] = []
    for path in sorted(outdir.rglob("*")):
        if path.suffix not in {".html", ".css"} or "_sources" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        pattern = _HTML_ASSET if path.suffix == ".html" else _CSS_ASSET
        for match in pattern.finditer(text):
            url = next(g for g in match.groups() if g)
            found.append((str(path.relative_to(outdir)), url))
    return found


def check_offline(app: Sphinx, exc: Exception | None) -> None:
    """Warn (an error under -W) for every asset of the built site that is not served with it."""
    if exc is not None or app.builder.format != "html":
        return
    for file, url in find_remote_assets(Path(app.outdir)):
        logger.warning("%s loads %s from the network; serve it with the site", file, url)


# --- execution-time budget -------------------------------------------------------------------

#: The header of myst-nb's execution-statistics column holding each notebook's run time.
RUNTIME_HEADER = "Run Time (s)"


def notebook_times(env: Any) -> dict[str, float]:
    """Return each executed notebook's run time in seconds, as myst-nb recorded it.

    A notebook served from the execution cache reports the run time of the execution cached.

    >>> from types import SimpleNamespace
    >>> env = SimpleNamespace(nb_metadata={"a": {"exec_data": {"runtime": 12.5}}, "b": {}})
    >>> notebook_times(env)
    {'a': 12.5}
    """
    times = {}
    for docname, data in getattr(env, "nb_metadata", {}).items():
        runtime = (data.get("exec_data") or {}).get("runtime")
        if runtime is not None:
            times[docname] = float(runtime)
    return times


def mark_over_budget(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give the class ``over-budget`` to each row of an execution-statistics table over budget."""
    budget = app.config.eiginit_notebook_budget
    for table in doctree.findall(nodes.table):
        heads = list(table.findall(nodes.thead))
        if not heads:
            continue
        header = [entry.astext().strip() for entry in heads[0].findall(nodes.entry)]
        if RUNTIME_HEADER not in header:
            continue
        column = header.index(RUNTIME_HEADER)
        for body in table.findall(nodes.tbody):
            for row in body.children:
                try:
                    seconds = float(row.children[column].astext())
                except (IndexError, ValueError):
                    continue
                if seconds > budget:
                    row["classes"].append("over-budget")


def check_notebook_times(app: Sphinx, exc: Exception | None) -> None:
    """Log the slowest notebook against the budget; warn for each one over the time limit."""
    if exc is not None:
        return
    times = notebook_times(app.env)
    if not times:
        return
    budget, limit = app.config.eiginit_notebook_budget, app.config.eiginit_notebook_time_limit
    slowest = max(times, key=times.__getitem__)
    over = sorted(d for d, t in times.items() if t > budget)
    logger.info(
        "notebook run times: slowest %s, %.1f s; over the %g s budget: %s",
        slowest,
        times[slowest],
        budget,
        ", ".join(over) or "none",
    )
    if not limit:
        return
    for docname in sorted(times):
        if times[docname] > limit:
            logger.warning(
                "%s executed in %.1f s, over the limit of %g s per notebook (the budget is %g s):"
                " make it faster (smaller sizes, fewer seeds) or split it",
                docname,
                times[docname],
                limit,
                budget,
                location=docname,
            )


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives and hooks."""
    app.add_node(chapter_map_entry)
    app.add_directive("chapter-map", ChapterMap)
    app.add_directive("eiginit-api", EiginitApi)
    app.connect("doctree-resolved", resolve_chapter_map)
    app.connect("env-get-updated", continue_chapter_numbers, priority=600)
    app.connect("doctree-resolved", caption_alt_text)
    app.connect("html-page-context", link_figures)
    app.connect("builder-inited", refresh_api_pages)
    app.connect("missing-reference", resolve_public_alias)
    app.connect("html-page-context", add_notebook_download, priority=400)
    app.connect("html-page-context", link_code_to_api)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", write_favicon)
    app.connect("build-finished", drop_fontawesome_js, priority=800)
    app.add_config_value("eiginit_drop_fontawesome_js", True, "html", types=frozenset({bool}))
    app.connect("build-finished", check_offline, priority=900)
    seconds = frozenset({int, float})
    app.add_config_value("eiginit_notebook_budget", 60.0, "", types=seconds)
    app.add_config_value("eiginit_notebook_time_limit", None, "", types=seconds | {type(None)})
    app.connect("doctree-resolved", mark_over_budget)
    app.connect("build-finished", check_notebook_times)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
