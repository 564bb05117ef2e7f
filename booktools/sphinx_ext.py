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
from sphinx.application import Sphinx
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
        label = f"{entry['number']}. {title}"
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
    for path in sorted(Path(pkg.__file__).parent.glob("[!_]*.py")):
        module = importlib.import_module(f"{package}.{path.stem}")
        if name in getattr(module, "__all__", ()):
            return module.__name__
    raise ValueError(f"{package}.{name} is exported but no {package} submodule lists it")


class EiginitApi(SphinxDirective):
    """One section per public module: its docstring, then every exported name it defines."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """Emit automodule directives (reStructuredText) and parse them in place."""
        lines: list[str] = []
        for module, names in public_modules().items():
            self.env.note_dependency(importlib.import_module(module).__file__)
            title = f"``{module}``"
            lines += [title, "-" * len(title), ""]
            lines += [f".. automodule:: {module}", f"   :members: {', '.join(names)}", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, "<eiginit-api>"), container)
        return container.children


def public_alias(target: str, modules: dict[str, list[str]]) -> str | None:
    """Map a public name to its documented path: ``eiginit.iterate`` -> ``eiginit.power.iterate``.

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
    for name, entry in env.get_domain("py").objects.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "eiginit" and not parts[1].startswith("_"):
            targets.setdefault(parts[2], (entry.docname, entry.node_id))
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
