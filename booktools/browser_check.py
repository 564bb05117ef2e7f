"""Check the built book in a real browser: headless Chromium driven over the DevTools protocol.

Serves the built site on 127.0.0.1 (an ephemeral port), opens every page in Debian's
``chromium`` with a fresh profile, and fails if any page

- logs a console error, throws an uncaught exception, or gets an HTTP error for a resource;
- shows an image that did not load, or links to a file of the site that does not exist (the
  ``.ipynb`` and ``.md`` downloads included);
- has math that MathJax did not typeset (or typeset with an error);
- makes a request that leaves loopback (any non-127.0.0.0/8, non-::1 host);
- shows a figure without an opaque light background in dark mode (illegible there);

and if the search page does not find ``Xavier``. Every page is also laid out at two widths, a
desktop (1,400 px) and a phone (412 px, touch), and fails if, at either width,

- the page pans sideways, or a figure, an output or a table is wider than its column (a table may
  scroll sideways on a phone, but only a little: :data:`PHONE_TABLE_SCROLL`), or printed output
  needs a scrollbar on the desktop;
- inline math is cut off, or display math wider than its line cannot be scrolled;
- more than one search field shows (the page's own field on the search page);
- the menu button does not open the navigation (phone: the dialog with the chapter list; desktop:
  the sidebar hides), or the "On this page" button does not open the page's contents;
- a chapter's number is missing from the sidebar, its heading, its tab title or its figure and
  equation numbers;
- on a phone, a tap on a figure does not open it at full size, or its text there is smaller than
  :data:`FIGURE_TEXT_PX`.

It reports the first-visit page weight of a chapter (every byte the browser fetched, with a cold
cache, to show that page), the widest element at each width, and the smallest text in a figure
as drawn on a phone.

Usage (``nox -s browser`` runs it after building the book)::

    python -m booktools.browser_check _build/html [--chromium /usr/bin/chromium] [--screenshots DIR]

It needs only ``websockets`` (a pure-Python package) besides the browser: no WebDriver.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import http.server
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Flags for a quiet, isolated headless browser: no GPU, no sandbox (CI runs as root), and none
#: of Chromium's own background traffic. A proxy that refuses every connection catches any
#: request the page makes off loopback (loopback itself always bypasses proxies).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--proxy-server=127.0.0.1:9",
    "--window-size=1280,900",
)

#: URL schemes that never touch the network.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-error", "devtools"})

IMAGES_JS = """
(async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = "eager"; }
  await Promise.all(imgs.map((img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done); img.addEventListener("error", done);
    setTimeout(done, 15000);
  })));
  return {
    count: imgs.length,
    broken: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src),
  };
})()
"""

MATH_JS = """
(async () => {
  const math = Array.from(document.querySelectorAll("div.math, span.math"));
  if (math.length === 0) { return {math: 0, typeset: 0, errors: 0, untypeset: 0}; }
  if (!window.MathJax || !window.MathJax.startup) { return {math: math.length, missing: true}; }
  await window.MathJax.startup.promise;
  return {
    math: math.length,
    typeset: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror").length,
    untypeset: math.filter((el) => !el.querySelector("mjx-container")).length,
  };
})()
"""

LINKS_JS = "Array.from(document.querySelectorAll('a[href]')).map((a) => a.href)"
#: Files of the site that a later session puts there, and that session: the landing page links
#: the PDF edition, which `nox -s pdf` adds (booktools/pdf.py). A link to one of them is checked
#: when the file is there; before that it is a note, not a failure.
BUILT_LATER = {"eiginit-book.pdf": "pdf"}

SEARCH_JS = """
(async () => {
  for (let i = 0; i < 150; i++) {
    const hits = document.querySelectorAll("#search-results ul.search li");
    if (hits.length > 0) {
      return Array.from(hits).map((li) => li.querySelector("a").textContent.trim());
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
})()
"""

#: In dark mode, every figure must sit on an opaque light background: sample a pixel near each of
#: its four corners at full resolution (the figure's margin, two pixels in, clear of the
#: anti-aliased edge of a fractional-size SVG; same-origin images do not taint a canvas) and
#: fall back to the element's own background. Averaging a downscaled corner region instead would
#: mistake a dark plot near the corner (a heat map) for a dark background.
DARK_FIGURES_JS = """
(() => {
  const figures = Array.from(document.querySelectorAll(".cell_output img, figure img"));
  const bad = [];
  for (const img of figures) {
    let light = false;
    try {
      const w = img.naturalWidth || 4, h = img.naturalHeight || 4;
      const c = document.createElement("canvas");
      c.width = w; c.height = h;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0, w, h);
      light = [[2, 2], [w - 3, 2], [2, h - 3], [w - 3, h - 3]].every(([x, y]) => {
        const [r, g, b, a] = ctx.getImageData(x, y, 1, 1).data;
        return a > 250 && (r + g + b) / 3 > 200;
      });
    } catch (e) { light = false; }
    if (!light) {
      const bg = getComputedStyle(img).backgroundColor;
      light = bg === "rgb(255, 255, 255)";
    }
    if (!light) { bad.push(img.src); }
  }
  return {count: figures.length, bad: bad};
})()
"""


#: The two widths every page is laid out at: (name, width, height, mobile).
WIDTHS = (("desktop", 1400, 900, False), ("phone", 412, 915, True))
#: How far a table may scroll sideways inside its box on a phone (px): "a short scroll".
PHONE_TABLE_SCROLL = 120
#: The smallest text a figure may show (CSS px): in its full-size view on a phone (a tap), where
#: it is enforced; in the column it is reported (a phone shows a figure at about half size).
FIGURE_TEXT_PX = 9.0

#: Measure the layout of the page as it is now (at the current width). Figures are SVG with text
#: drawn as paths: each text item is a group scaled by its font size in pt / 100 (matplotlib's
#: convention), so its height on screen is that size, in px, times the displayed width over the
#: SVG's viewBox width (its natural width in pt).
LAYOUT_JS = """
(async () => {
  const article = document.querySelector("article.bd-article") || document.body;
  const box = article.getBoundingClientRect();
  const style = getComputedStyle(article);
  const left = box.left + parseFloat(style.paddingLeft);
  const right = box.right - parseFloat(style.paddingRight);
  const column = right - left;
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const where = (el) => {
    const fig = el.closest("figure, table, div.math, .cell, section");
    return (fig && fig.id) || (el.closest("section") || {}).id || "";
  };
  const wide = [];
  const note = (kind, el, width, limit) => {
    if (width > limit + 1) { wide.push({kind, where: where(el), width: Math.round(width),
                                        limit: Math.round(limit)}); }
  };
  let widest = {kind: "", width: 0, where: ""};
  const consider = (kind, el, width) => {
    if (width > widest.width) { widest = {kind, where: where(el), width: Math.round(width)}; }
  };
  for (const table of article.querySelectorAll("table")) {
    if (table.closest(".highlight, .highlighttable") || table.classList.contains("highlighttable")
        || !shown(table)) { continue; }
    const width = table.getBoundingClientRect().width;
    consider("table", table, width);
    note("table", table, width, column);
  }
  for (const img of article.querySelectorAll("img")) {
    if (!shown(img)) { continue; }
    const r = img.getBoundingClientRect();
    consider("figure", img, r.width);
    note("figure", img, r.width, column);
  }
  for (const pre of article.querySelectorAll(".cell_output pre, div.output pre")) {
    if (!shown(pre)) { continue; }
    consider("output", pre, pre.scrollWidth);
    note("output box", pre, pre.getBoundingClientRect().width, column);
    if (pre.scrollWidth > pre.clientWidth + 1) {
      wide.push({kind: "output line", where: where(pre), width: pre.scrollWidth,
                 limit: pre.clientWidth});
    }
  }
  const math = {overflowing: 0, unscrollable: [], clipped: []};
  for (const mjx of article.querySelectorAll("div.math mjx-container")) {
    if (mjx.scrollWidth > mjx.clientWidth + 1) {
      math.overflowing += 1;
      consider("equation", mjx, mjx.scrollWidth);
      const s = getComputedStyle(mjx);
      // Scrollable, and with the edge shadow that says so (eiginit.css).
      if ((s.overflowX !== "auto" && s.overflowX !== "scroll") ||
          !s.backgroundImage.includes("gradient")) { math.unscrollable.push(where(mjx)); }
    }
  }
  for (const span of article.querySelectorAll("span.math")) {
    // Cut off: wider than the line it sits in, and clipped (not scrollable).
    const formula = span.querySelector("mjx-container");
    const block = span.parentElement &&
      span.parentElement.closest("p, li, dd, dt, td, th, figcaption, div");
    if (!formula || !block) { continue; }
    const bs = getComputedStyle(block);
    const line = block.clientWidth - parseFloat(bs.paddingLeft) - parseFloat(bs.paddingRight);
    const o = getComputedStyle(span).overflowX;
    if (formula.getBoundingClientRect().width > line + 1 && o !== "auto" && o !== "scroll") {
      math.clipped.push(where(span));
    }
  }
  const codeScroll = Array.from(article.querySelectorAll(".cell_input pre, div.highlight pre"))
    .filter((pre) => shown(pre) && !pre.closest(".cell_output") &&
      pre.scrollWidth > pre.clientWidth + 1).length;
  const shrunk = Array.from(article.querySelectorAll("img"))
    .filter((img) => shown(img) && img.naturalWidth > img.getBoundingClientRect().width + 1).length;
  const searches = Array.from(document.querySelectorAll(".search-button-field, form.bd-search"))
    .filter(shown).length;
  const texts = [];
  window.__eiginitSvg = window.__eiginitSvg || {};  // each SVG read once per page
  for (const img of article.querySelectorAll("img")) {
    if (!shown(img) || !/\\.svg$/.test(img.src)) { continue; }
    if (!(img.src in window.__eiginitSvg)) {
      let svg = "";
      try { svg = await (await fetch(img.src)).text(); } catch (e) { svg = ""; }
      const view = /viewBox="[\\d.\\s-]*?\\s([\\d.]+)\\s[\\d.]+"/.exec(svg);
      const sizes = Array.from(svg.matchAll(/scale\\(([\\d.]+) -\\1\\)/g), (m) => 100 * m[1]);
      window.__eiginitSvg[img.src] = view ? {width: parseFloat(view[1]),
        sizes: sizes.filter((pt) => pt > 0 && pt < 100)} : null;
    }
    const svg = window.__eiginitSvg[img.src];
    if (!svg) { continue; }
    const scale = img.getBoundingClientRect().width / svg.width;
    for (const pt of svg.sizes) { texts.push(pt * scale); }
  }
  return {
    viewport: window.innerWidth, page: document.documentElement.scrollWidth,
    column: Math.round(column), wide, widest, math, searches, codeScroll, shrunk,
    figureText: texts.length ? Math.min(...texts) : null,
    textItems: texts.length, smallText: texts.filter((px) => px < %(small)s).length,
  };
})()
""".replace("%(small)s", str(FIGURE_TEXT_PX))

#: What a reader sees of the book's numbering: the sidebar's entries, the page's heading, its
#: tab title, and its figure, table and equation numbers.
NUMBERS_JS = """
(() => {
  const nav = document.querySelector("nav.bd-docs-nav");
  const h1 = document.querySelector("article.bd-article h1");
  return {
    sidebar: nav ? Array.from(nav.querySelectorAll("a.reference"), (a) => [
      a.getAttribute("href"), a.textContent.trim()]) : [],
    heading: h1 ? h1.textContent.replace("#", "").trim() : "",
    title: document.title,
    captions: Array.from(document.querySelectorAll("article .caption-number"),
                         (s) => s.textContent.trim()),
    equations: Array.from(document.querySelectorAll("article span.eqno"),
                          (s) => s.textContent.replace("#", "").trim()),
  };
})()
"""

#: Press the visible menu button (and then the "On this page" button) and see what opens. On a
#: phone each opens a dialog; on a desktop the menu button hides the sidebar.
TOGGLE_JS = """
(async (which) => {
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const until = async (test) => {
    for (let i = 0; i < 16 && !test(); i++) { await new Promise((r) => setTimeout(r, 40)); }
    return test();
  };
  const button = Array.from(document.querySelectorAll("." + which + "-toggle")).find(shown);
  if (!button) { return {button: false}; }
  const sidebar = document.getElementById("pst-" + which + "-sidebar");
  const dialog = document.getElementById("pst-" + which + "-sidebar-modal");
  const before = sidebar ? sidebar.getBoundingClientRect() : null;
  const wasShown = !!(sidebar && shown(sidebar) && before.right > 0);
  // Hiding: gone, or on its way out (sliding left or narrowing; the theme animates it).
  const gone = () => {
    const r = sidebar.getBoundingClientRect();
    return !shown(sidebar) || r.right <= 0 || r.right < before.right - 8 ||
      r.width < before.width - 8;
  };
  button.click();
  const isOpen = () => !!(dialog && dialog.open);
  await until(() => isOpen() || (wasShown && gone()));
  const open = isOpen();
  const links = open ? Array.from(dialog.querySelectorAll("a")).filter(shown).length : 0;
  const hidden = !open && wasShown && gone();
  if (open) { dialog.close(); }
  if (hidden) { button.click(); }  // shown again (the check does not wait for it)
  return {button: true, open, links, hidden};
})
"""

#: On a phone, tap each figure: it must open at full size (eiginit.js), where its smallest text
#: is measured as LAYOUT_JS does (the SVG sizes it read are reused).
FIGURE_VIEW_JS = """
(async () => {
  const until = async (test) => {
    for (let i = 0; i < 25 && !test(); i++) { await new Promise((r) => setTimeout(r, 20)); }
    return test();
  };
  const links = Array.from(document.querySelectorAll("article a.eiginit-figure-link"));
  const result = {figures: links.length, opened: 0, minText: null, where: ""};
  for (const link of links) {
    link.click();
    const view = document.getElementById("eiginit-figure-view");
    const big = () => view && view.querySelector("img");
    const ready = await until(() => view && view.open && big().complete && big().naturalWidth > 0);
    if (!ready) { continue; }
    result.opened += 1;
    const svg = (window.__eiginitSvg || {})[big().src];
    if (svg && svg.sizes.length) {
      const px = Math.min(...svg.sizes) * big().getBoundingClientRect().width / svg.width;
      if (result.minText === null || px < result.minText) {
        result.minText = px;
        const fig = link.closest("figure");
        result.where = fig ? fig.id : "";
      }
    }
    view.close();
  }
  return result;
})()
"""


_SCROLL_TO_FIGURE_JS = """
(async () => {
  const fig = document.querySelector("figure img, .cell_output img");
  if (fig) { fig.scrollIntoView({block: "center"}); }
  await new Promise((r) => setTimeout(r, 300));
})()
"""


def is_loopback_url(url: str) -> bool:
    """Return True if fetching `url` stays on this machine (loopback host or a local scheme).

    >>> is_loopback_url("http://127.0.0.1:8000/index.html")
    True
    >>> is_loopback_url("http://[::1]:8000/")
    True
    >>> is_loopback_url("data:image/png;base64,AAAA")
    True
    >>> is_loopback_url("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js")
    False
    """
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    host = parts.hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def site_pages(site: Path) -> list[str]:
    """Return every HTML page of a built site as a path relative to it (posix, sorted).

    Theme and library assets under ``_static`` are not pages.
    """
    pages = [
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if "_static" not in p.relative_to(site).parts
    ]
    return sorted(pages)


def missing_local_targets(site: Path, base: str, hrefs: list[str]) -> list[str]:
    """Return the links of a page into the site (downloads included) whose file does not exist.

    >>> import tempfile; site = Path(tempfile.mkdtemp()); (site / "a.html").write_text("")
    0
    >>> missing_local_targets(site, "http://127.0.0.1:1/", [
    ...     "http://127.0.0.1:1/a.html#top", "http://127.0.0.1:1/b.ipynb", "https://doi.org/x"])
    ['b.ipynb']
    """
    missing = []
    for href in dict.fromkeys(hrefs):
        if not href.startswith(base):
            continue
        relative = unquote(urlsplit(href).path).removeprefix(urlsplit(base).path)
        target = site / relative
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            missing.append(relative)
    return missing


def reading_order(site: Path) -> list[str]:
    """Return the pages in the order of the book's navigation (the landing page's sidebar).

    >>> import tempfile; site = Path(tempfile.mkdtemp())
    >>> _ = (site / "index.html").write_text('<nav class="bd-links bd-docs-nav"><a href="b.html">'
    ...     'B</a><a href="a.html#s">A</a><a href="b.html">B</a></nav><a href="z.html">Z</a>')
    >>> reading_order(site)
    ['b.html', 'a.html']
    """
    text = (site / "index.html").read_text(encoding="utf-8")
    match = re.search(r'<nav class="[^"]*\bbd-docs-nav\b', text)
    if match is None:
        return []
    start = match.start()
    nav = text[start : text.find("</nav>", start)]
    hrefs = re.findall(r'href="([^"#?]+\.html)', nav)
    return list(dict.fromkeys(h for h in hrefs if "://" not in h))


def gzip_size(path: Path) -> int:
    """Size in bytes of a file compressed as a web server would send it (gzip, level 6)."""
    return len(gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))


@dataclass
class PageReport:
    """What the browser saw on one page."""

    page: str
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    bytes: int = 0
    images: int = 0
    math: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    layout: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    visit: PageReport | None = None  # the load alone (lazy figures far down not fetched)
    dark: dict[str, Any] | None = None  # DARK_FIGURES_JS in dark mode
    figure_view: dict[str, Any] | None = None  # FIGURE_VIEW_JS on a phone


def layout_problems(layout: dict[str, Any], width: str, page: str) -> list[str]:
    """Judge one page's layout at one width (what :data:`LAYOUT_JS` measured).

    >>> ok = {"viewport": 412, "page": 412, "column": 364, "wide": [], "searches": 1,
    ...       "math": {"overflowing": 2, "unscrollable": [], "clipped": []}}
    >>> layout_problems(ok, "phone", "a.html")
    []
    >>> table = {"kind": "table", "where": "t", "width": 600, "limit": 364}
    >>> layout_problems({**ok, "page": 600, "wide": [table]}, "phone", "a.html")
    ['phone: the page is 600 px wide in a 412 px window (it pans sideways)', \
'phone: table 600 px wide in a 364 px column (#t)']
    """
    problems = []
    if layout["page"] > layout["viewport"] + 1:
        problems.append(
            f"{width}: the page is {layout['page']} px wide in a {layout['viewport']} px window"
            " (it pans sideways)"
        )
    for item in layout["wide"]:
        kind, over = item["kind"], item["width"] - item["limit"]
        if width == "phone" and kind == "table" and over <= PHONE_TABLE_SCROLL:
            continue  # a short sideways scroll inside the table's box
        if width == "phone" and kind == "output line":
            continue  # printed output scrolls inside its box on a phone, as code does
        what = "printed line" if kind == "output line" else kind
        problems.append(
            f"{width}: {what} {item['width']} px wide in a {item['limit']} px column"
            f" (#{item['where']})"
        )
    math = layout["math"]
    for where in math["unscrollable"]:
        problems.append(
            f"{width}: an equation wider than its line shows no scroll or no cue (#{where})"
        )
    for where in math["clipped"]:
        problems.append(f"{width}: inline math is cut off (#{where})")
    allowed = 2 if Path(page).name == "search.html" else 1
    if layout["searches"] > allowed:
        problems.append(f"{width}: {layout['searches']} search fields on the page")
    return problems


def figure_view_problems(view: dict[str, Any]) -> list[str]:
    """Judge the full-size figure view on a phone: every figure opens, its text is legible.

    >>> figure_view_problems({"figures": 2, "opened": 2, "minText": 13.3, "where": "fig-a"})
    []
    >>> figure_view_problems({"figures": 2, "opened": 1, "minText": 8.0, "where": "fig-a"})
    ['phone: 1 of 2 figures do not open at full size on a tap', \
'phone: text of 8.0 px in the full-size view of #fig-a']
    """
    problems = []
    if view["opened"] < view["figures"]:
        problems.append(
            f"phone: {view['figures'] - view['opened']} of {view['figures']} figures do not open"
            " at full size on a tap"
        )
    if view["minText"] is not None and view["minText"] < FIGURE_TEXT_PX:
        problems.append(
            f"phone: text of {view['minText']:.1f} px in the full-size view of #{view['where']}"
        )
    return problems


def toggle_problems(result: dict[str, Any], which: str, width: str) -> list[str]:
    """Judge what pressing the menu (``primary``) or contents (``secondary``) button did.

    >>> toggle_problems({"button": True, "open": False, "hidden": False}, "primary", "phone")
    ['phone: the menu button does not open the navigation']
    >>> toggle_problems({"button": True, "open": True, "links": 40}, "primary", "phone")
    []
    >>> toggle_problems({"button": True, "open": False, "hidden": True}, "primary", "desktop")
    []
    """
    name = "menu button" if which == "primary" else "contents button"
    if not result.get("button"):
        return [f"{width}: no visible {name}"] if which == "primary" else []
    if width == "phone" and not (result.get("open") and result.get("links", 0) > 0):
        what = "the navigation" if which == "primary" else "the page's contents"
        return [f"{width}: the {name} does not open {what}"]
    if width == "desktop" and not (result.get("open") or result.get("hidden")):
        return [f"{width}: the {name} does nothing"]
    return []


_NUMBERED = re.compile(r"^(\d+)\.\s+\S")


def chapter_numbers(sidebar: list[list[str]]) -> dict[str, int]:
    """Map each numbered page of the sidebar to its chapter number ("7. The backward pass").

    >>> chapter_numbers([["a.html", "1. One"], ["b.html#s", "Two"], ["c.html", "2. Three"]])
    {'a.html': 1, 'c.html': 2}
    """
    numbers = {}
    for href, text in sidebar:
        match = _NUMBERED.match(text)
        if match and "#" not in href:
            numbers.setdefault(href, int(match.group(1)))
    return numbers


def numbering_problems(page: str, number: int, seen: dict[str, Any]) -> list[str]:
    """Check that a chapter's number shows where a reader looks for it.

    >>> seen = {"heading": "7. The backward pass", "title": "7. The backward pass - Book",
    ...         "captions": ["Fig. 7.1", "Table 7.1"], "equations": ["(7.1)", "(7.2)"]}
    >>> numbering_problems("b.html", 7, seen)
    []
    >>> for problem in numbering_problems("b.html", 7, {**seen, "captions": ["Fig. 31"]}):
    ...     print(problem)
    b.html: 'Fig. 31' is not numbered in chapter 7
    """
    problems = []
    prefix = f"{number}."
    if not seen["heading"].startswith(prefix + " "):
        problems.append(f"{page}: the heading does not start with {prefix}: {seen['heading']!r}")
    if not seen["title"].startswith(prefix + " "):
        problems.append(f"{page}: the tab title does not start with {prefix}: {seen['title']!r}")
    for caption in seen["captions"]:
        if not re.match(rf"^\S+\.? {number}\.\d+", caption):
            problems.append(f"{page}: {caption!r} is not numbered in chapter {number}")
    for equation in seen["equations"]:
        if not equation.startswith(f"({number}."):
            problems.append(f"{page}: equation {equation} is not numbered in chapter {number}")
    return problems


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Chromium:
    """A headless Chromium with a fresh profile and one tab, spoken to over DevTools."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        from websockets.sync.client import connect  # the only third-party import

        self.profile = tempfile.mkdtemp(prefix="eiginit-chromium-")
        self.process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.is_file() or len(port_file.read_text().splitlines()) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{executable} did not start its DevTools endpoint")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=timeout)
        )
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False):
        """Send one DevTools command and return its result (events are kept in order)."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str, *, quiet: float = 0.3, timeout: float = 60.0) -> list[dict]:
        """Navigate to `url`, wait for the load event and network quiet; return its events."""
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + timeout
        loaded = False
        while not loaded and time.monotonic() < deadline:
            self.pump(0.2)
            loaded = any(e.get("method") == "Page.loadEventFired" for e in self.events)
        if not loaded:
            raise RuntimeError(f"{url} did not finish loading in {timeout} s")
        seen = -1
        while len(self.events) != seen and time.monotonic() < deadline:  # network quiet
            seen = len(self.events)
            self.pump(quiet)
        events, self.events = self.events, []
        return events

    def emulate(self, width: int, height: int, mobile: bool) -> None:
        """Lay the page out as a window of this size (a touch phone if `mobile`)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=True,
        )
        self.send("Emulation.setTouchEmulationEnabled", {"enabled": mobile}, session=True)

    def set_color_scheme(self, scheme: str) -> None:
        """Emulate the reader's system colour scheme; wait until the theme has followed it."""
        self.send(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            session=True,
        )
        wait = (
            "(async () => { for (let i = 0; i < 25 && document.documentElement.dataset.theme"
            " !== %s; i++) { await new Promise((r) => setTimeout(r, 20)); } })()"
        )
        self.evaluate(wait % json.dumps(scheme))

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the visible part of the page."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def problems_in_events(events: list[dict[str, Any]], report: PageReport) -> None:
    """Record console errors, exceptions, HTTP errors, failed and off-loopback requests."""
    types: dict[str, str] = {}
    urls: dict[str, str] = {}
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            report.problems.append(f"console error: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description", details.get("text"))
            report.problems.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            report.problems.append(f"console error: {entry['text']} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            report.urls.append(url)
            if not is_loopback_url(url):
                report.problems.append(f"request leaves loopback: {url}")
        elif method == "Network.responseReceived":
            types[params["requestId"]] = params.get("type", "Other")
            status = params["response"]["status"]
            if status >= 400:
                report.problems.append(f"HTTP {status}: {params['response']['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            report.problems.append(f"request failed: {params.get('errorText')}")
        elif method == "Network.loadingFinished":
            size = int(params.get("encodedDataLength", 0))
            kind = types.get(params["requestId"], "Other")
            report.requests += 1
            report.bytes += size
            report.by_type[kind] = report.by_type.get(kind, 0) + size
            url = urls.get(params["requestId"], "?")
            report.sizes[url] = report.sizes.get(url, 0) + size


def check_page(browser: Chromium, site: Path, base: str, page: str) -> PageReport:
    """Load one page and run every check on it, at both widths."""
    report = PageReport(page)
    name, width, height, mobile = WIDTHS[0]
    browser.emulate(width, height, mobile)
    problems_in_events(browser.load(base + page), report)
    # What the visit itself fetched, before the checks below load every (lazy) figure.
    report.visit = PageReport(
        page, requests=report.requests, bytes=report.bytes, by_type=dict(report.by_type),
        urls=list(report.urls), sizes=dict(report.sizes),
    )  # fmt: skip
    for target in missing_local_targets(site, base, browser.evaluate(LINKS_JS)):
        if target in BUILT_LATER:
            continue  # not built yet: main() says so once
        report.problems.append(f"link to a missing file: {target}")
    images = browser.evaluate(IMAGES_JS)
    report.images = images["count"]
    report.problems += [f"image did not load: {src}" for src in images["broken"]]
    math = browser.evaluate(MATH_JS)
    report.math = math["math"]
    if math.get("missing"):
        report.problems.append(f"{math['math']} math elements but MathJax is not loaded")
    elif math["untypeset"] or math["errors"]:
        report.problems.append(
            f"math not typeset: {math['untypeset']} of {math['math']} left as TeX, "
            f"{math['errors']} MathJax errors"
        )
    report.numbers = browser.evaluate(NUMBERS_JS)
    for name, width, height, mobile in WIDTHS:
        if (width, mobile) != (WIDTHS[0][1], WIDTHS[0][3]):
            browser.emulate(width, height, mobile)
            browser.pump(0.2)  # let the page lay itself out again
        layout = browser.evaluate(LAYOUT_JS)
        report.layout[name] = layout
        report.problems += layout_problems(layout, name, page)
        for which in ("primary", "secondary"):
            result = browser.evaluate(f"({TOGGLE_JS})({json.dumps(which)})")
            report.problems += toggle_problems(result, which, name)
        if mobile and report.images:
            report.figure_view = browser.evaluate(FIGURE_VIEW_JS)
            report.problems += figure_view_problems(report.figure_view)
    if report.images:  # the same page in the reader's dark mode (no reload: the theme follows)
        browser.set_color_scheme("dark")
        report.dark = browser.evaluate(DARK_FIGURES_JS)
        browser.set_color_scheme("light")
    problems_in_events(browser.events, report)  # anything logged while checking
    return report


def served_gzip_bytes(site: Path, base: str, urls: list[str]) -> int:
    """Return the bytes of the same visit from a server that gzips text (fonts, PNGs as is)."""
    total = 0
    for url in dict.fromkeys(urls):
        if not url.startswith(base):
            continue
        path = site / unquote(urlsplit(url).path.lstrip("/"))
        if path.is_dir():
            path = path / "index.html"
        if path.is_file():
            compressible = path.suffix in {".html", ".js", ".css", ".svg", ".json", ".txt"}
            total += gzip_size(path) if compressible else path.stat().st_size
    return total


def report_numbering(reports: list[PageReport]) -> int:
    """Check the chapter numbers of every chapter page against the sidebar; return failures."""
    by_page = {r.page: r for r in reports}
    index = by_page.get("index.html")
    numbers = chapter_numbers(index.numbers.get("sidebar", [])) if index else {}
    problems = []
    if not numbers:
        problems.append("no numbered chapter in the sidebar")
    elif sorted(numbers.values()) != list(range(1, len(numbers) + 1)):
        problems.append(f"the sidebar's chapter numbers are not 1 to N: {numbers}")
    for page, number in numbers.items():
        if page in by_page:
            problems += numbering_problems(page, number, by_page[page].numbers)
    print(f"\nChapter numbers: {len(numbers)} chapters in the sidebar, checked on their pages")
    for problem in problems:
        print(f"FAIL {problem}")
    return len(problems)


def summarize_layout(reports: list[PageReport]) -> None:
    """Print what the layout checks measured at each width (the widest element, figure text)."""
    for name, width, _height, _mobile in WIDTHS:
        laid = [(r.page, r.layout[name]) for r in reports if name in r.layout]
        if not laid:
            continue
        page, layout = max(laid, key=lambda pl: pl[1]["widest"]["width"])
        widest = layout["widest"]
        texts = [(pg, lay["figureText"]) for pg, lay in laid if lay.get("figureText") is not None]
        items = sum(lay.get("textItems", 0) for _, lay in laid)
        small = sum(lay.get("smallText", 0) for _, lay in laid)
        scrolling = sum(lay["math"]["overflowing"] for _, lay in laid)
        print(f"\nAt {width} px ({name}), {len(laid)} pages: column {layout['column']} px;")
        clean = [
            (r.page, r.layout[name])
            for r in reports
            if name in r.layout and not any(pr.startswith(name + ":") for pr in r.problems)
        ]
        if clean and len(clean) < len(laid):
            ok_page, ok_layout = max(clean, key=lambda pl: pl[1]["widest"]["width"])
            ok_widest = ok_layout["widest"]
            print(
                f"  widest element on the {len(clean)} pages that pass: a {ok_widest['kind']} of"
                f" {ok_widest['width']} px on {ok_page} (#{ok_widest['where']})"
            )
        code = sum(lay.get("codeScroll", 0) for _, lay in laid)
        shrunk = sum(lay.get("shrunk", 0) for _, lay in laid)
        print(
            f"  widest element: a {widest['kind']} of {widest['width']} px on {page}"
            f" (#{widest['where']}); {scrolling} equations and {code} code blocks scroll"
            f" sideways; {shrunk} figures shown below their natural size"
        )
        if texts:
            low_page, low = min(texts, key=lambda pt: pt[1])
            print(
                f"  figure text: smallest {low:.1f} px ({low_page}); {small} of {items} text"
                f" items below {FIGURE_TEXT_PX:g} px"
            )
        views = [(r.page, r.figure_view) for r in reports if r.figure_view and name == "phone"]
        sizes = [(pg, v["minText"]) for pg, v in views if v["minText"] is not None]
        if sizes:
            low_page, low = min(sizes, key=lambda pt: pt[1])
            opened = sum(v["opened"] for _, v in views)
            print(
                f"  full-size view on a tap: {opened} figures opened; smallest text {low:.1f} px"
                f" ({low_page})"
            )


def main(argv: list[str] | None = None) -> int:
    """Run every check; print a report; return 0 only if nothing failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML folder, e.g. _build/html")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument(
        "--weight-page", help="page whose first-visit weight is measured (default: chapter 1)"
    )
    parser.add_argument("--search", default="Xavier", help="a word the search must find")
    parser.add_argument("--screenshots", type=Path, help="save light and dark screenshots here")
    args = parser.parse_args(argv)

    site: Path = args.site.resolve()
    pages = site_pages(site)
    if "index.html" not in pages:
        print(f"no index.html in {site}: build the book first", file=sys.stderr)
        return 2
    chapters = [p for p in reading_order(site) + pages if "/" not in p and p not in _BACK_MATTER]
    for name, session in BUILT_LATER.items():
        if not (site / name).is_file():
            print(f"note: no {name} (`nox -s {session}` builds it): links to it are not checked")
    weight_page = args.weight_page or (chapters[0] if chapters else "index.html")
    order = [weight_page] + [p for p in pages if p != weight_page]

    failures = 0
    browser = Chromium(args.chromium)
    try:
        with serve(site) as base:
            print(f"Checking {len(pages)} pages served at {base} in {args.chromium}")
            reports = []
            for page in order:
                report = check_page(browser, site, base, page)
                reports.append(report)
                status = "ok" if not report.problems else "FAIL"
                print(
                    f"  {status:4} {page}: {report.images} images, {report.math} math, "
                    f"{report.requests} requests"
                )
                for problem in report.problems:
                    print(f"         - {problem}")
                failures += bool(report.problems)

            failures += report_numbering(reports)
            summarize_layout(reports)

            first = reports[0].visit or reports[0]
            print(f"\nFirst visit of {weight_page} (cold cache, fresh profile, 1,400 px window):")
            print(f"  {first.requests} requests, {first.bytes / 1024:.0f} KiB as served here")
            print(f"  (uncompressed); {served_gzip_bytes(site, base, first.urls) / 1024:.0f} KiB")
            print("  from a server that gzips text. By type (KiB, uncompressed):")
            for kind, size in sorted(first.by_type.items(), key=lambda kv: -kv[1]):
                print(f"    {kind:12} {size / 1024:8.0f}")
            print("  Largest requests (KiB, uncompressed):")
            for url, size in sorted(first.sizes.items(), key=lambda kv: -kv[1])[:8]:
                print(f"    {size / 1024:8.0f}  {url.removeprefix(base)}")

            problems_in_events(browser.load(f"{base}search.html?q={args.search}"), PageReport(""))
            hits = browser.evaluate(SEARCH_JS)
            if hits:
                print(f"\nSearch for {args.search!r}: {len(hits)} pages, e.g. {hits[:3]}")
            else:
                print(f"\nFAIL search for {args.search!r} found nothing")
                failures += 1

            figures = 0
            for report in reports:
                dark = report.dark or {"count": 0, "bad": []}
                figures += dark["count"]
                for src in dark["bad"]:
                    print(f"FAIL dark mode: figure without a light background on {report.page}")
                    print(f"     {src}")
                    failures += 1
            print(f"Dark mode: {figures} figures checked for an opaque light background")

            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                for scheme in ("light", "dark"):
                    browser.set_color_scheme(scheme)
                    for page in ("index.html", weight_page):
                        for width_name, width, height, mobile in WIDTHS:
                            browser.emulate(width, height, mobile)
                            browser.load(base + page)
                            browser.evaluate(_SCROLL_TO_FIGURE_JS)
                            name = f"{Path(page).stem}-{width_name}-{scheme}.png"
                            browser.screenshot(args.screenshots / name)
                print(f"Screenshots in {args.screenshots}")
    finally:
        browser.close()

    checked = len(order) + 1
    print(f"\n{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


#: Pages at the top of the site that are not chapters (for choosing the weight page).
_BACK_MATTER = frozenset(
    {
        "index.html",
        "genindex.html",
        "search.html",
        "py-modindex.html",
        "api.html",
        "notation.html",
        "bibliography.html",
        "contributing.html",
    }
)


if __name__ == "__main__":
    sys.exit(main())
