#!/usr/bin/env python
"""Open every page of a built book in headless Chromium, screenshot it, and fail on defects.

    python scripts/check_book_html.py _build/html --screenshots _build/screenshots

Each page is served from a local HTTP server (as GitHub Pages would serve it), opened in
Debian's Chromium through Playwright (``executable_path=/usr/bin/chromium`` or whatever
``chromium`` is on PATH; Playwright's own browser download is never used), and saved as a
full-page PNG. The check fails (exit status 1, one line per problem) on:

- **error output**: a Python traceback in the page text (``Traceback (most recent call last)``,
  ``Exception ignored in``) or an error output cell of myst-nb (``.output.traceback``,
  ``.output.error``);
- **broken image**: an ``<img>`` from the book itself that did not load (missing file, not an
  image), or a page resource of the book answered with an HTTP error;
- **broken internal link**: a relative link to a page that does not exist in the build, or to an
  ``#anchor`` that the target page does not have;
- **doubled chapter number**: a page title, heading or navigation entry that starts with two
  numbers, such as ``1. 1. Generating 3D nanowire networks`` (the table of contents numbering a
  part whose notebook titles already carry their numbers).

Requests to other hosts (MathJax from a CDN, fonts, launch buttons) are not made: the pages are
checked as a reader without network would see them, and external links are not followed.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

#: Flags for headless Chromium on machines without a network or a display (root in CI, no
#: sandbox; without the background-networking flags it keeps dialling out). The tests'
#: ``browser`` fixture (tests/conftest.py) imports this list.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Folders of a Sphinx build that hold no pages of the book.
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static", ".doctrees"}
#: Pages Sphinx writes that are not part of the book's text (a search page that needs JS, the index).
SKIP_PAGES = {"search.html", "genindex.html", "py-modindex.html"}

TRACEBACK_PATTERNS = (
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r"Exception ignored in"),
)
#: Two chapter numbers at the start of a title: "1. 1. Title", "2.1. 3. Title", "1 1. Title".
DOUBLED_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)*\.?\s+\d+(?:\.\d+)*\.\s+\S")


@dataclass
class Problem:
    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


# --------------------------------------------------------------------------- static checks
class _LinkParser(HTMLParser):
    """Collects ``id``/``name`` anchors, ``<a href>`` targets and a meta-refresh redirect of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.redirect: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            m = re.search(r"url\s*=\s*(\S+)", a.get("content") or "", re.I)
            if m:
                self.redirect = m.group(1).strip("'\"")
                self.hrefs.append(self.redirect)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])


@functools.cache
def _parse(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def pages_of(html_dir: Path) -> list[Path]:
    """Every HTML page of the book under ``html_dir``, sorted."""
    pages = []
    for p in sorted(html_dir.rglob("*.html")):
        rel = p.relative_to(html_dir)
        if rel.parts[0] in SKIP_DIRS or (len(rel.parts) == 1 and rel.name in SKIP_PAGES):
            continue
        pages.append(p)
    return pages


def check_links(html_dir: Path, page: Path) -> list[Problem]:
    """Relative links of ``page`` that point to a missing file or a missing anchor."""
    html_dir, page = Path(html_dir).resolve(), Path(page).resolve()
    problems = []
    name = page.relative_to(html_dir).as_posix()
    for href in _parse(page).hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:", "data:")):
            continue  # external: not followed
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        try:
            target.relative_to(html_dir)
        except ValueError:
            problems.append(Problem(name, "broken internal link", f"{href!r} points outside the build"))
            continue
        if not target.exists():
            problems.append(Problem(name, "broken internal link", f"{href!r}: no file {target.name}"))
            continue
        anchor = unquote(parts.fragment)
        if anchor and target.suffix == ".html" and anchor not in _parse(target).ids:
            problems.append(Problem(name, "broken internal link", f"{href!r}: {target.name} has no #{anchor}"))
    return problems


# --------------------------------------------------------------------------- in the browser
_PAGE_FACTS_JS = """
() => {
  const text = document.body ? document.body.innerText : "";
  const imgs = Array.from(document.images).map(i => ({
    src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0, sameOrigin: i.src.startsWith(location.origin)}));
  const errors = Array.from(document.querySelectorAll(
      ".output.traceback, .output.error, div.cell_output .traceback, .nboutput .stderr .traceback"))
    .map(e => e.innerText.slice(0, 200));
  const titles = [document.title]
    .concat(Array.from(document.querySelectorAll("h1, h2, nav a, .bd-sidenav a, .toctree-wrapper a"))
      .map(e => e.innerText));
  return {text, imgs, errors, titles};
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


def _serve(html_dir: Path):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium_path() -> str | None:
    """Debian's Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def check_page_in_browser(context, url: str, name: str, screenshot: Path | None, timeout_ms: int = 60000):
    """Open one page, take its screenshot, and return its problems."""
    problems: list[Problem] = []
    origin = url.split("/", 3)[:3]
    origin = "/".join(origin) + "/"
    page = context.new_page()
    failed: list[str] = []
    page.on(
        "response",
        lambda r: failed.append(f"{r.status} {r.url}") if r.url.startswith(origin) and r.status >= 400 else None,
    )
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        # images below the fold: make lazy ones load, then wait until the network is idle
        page.evaluate("() => { for (const i of document.images) i.loading = 'eager'; }")
        try:
            page.wait_for_load_state("networkidle", timeout=10000)
        except Exception:  # a page that keeps polling: check what is there
            pass
        facts = page.evaluate(_PAGE_FACTS_JS)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    for pattern in TRACEBACK_PATTERNS:
        m = pattern.search(facts["text"])
        if m:
            start = max(0, m.start() - 80)
            snippet = facts["text"][start : m.end() + 120].replace("\n", " | ")
            problems.append(Problem(name, "error output", f"...{snippet}..."))
    for err in facts["errors"]:
        problems.append(Problem(name, "error output", err.replace("\n", " | ")))
    for img in facts["imgs"]:
        if img["sameOrigin"] and not img["ok"]:
            problems.append(Problem(name, "broken image", img["src"].replace(origin, "")))
    for f in failed:
        problems.append(Problem(name, "broken resource", f.replace(origin, "")))
    for title in dict.fromkeys(t.strip() for t in facts["titles"] if t):
        if DOUBLED_NUMBER.match(title):
            problems.append(Problem(name, "doubled chapter number", repr(title)))
    return problems


def check_site(html_dir, screenshots=None, browser=None, pages=None) -> tuple[list[Problem], list[str]]:
    """Check every page of a built book.

    Parameters
    ----------
    html_dir : str or Path
        The build's HTML folder (``_build/html``).
    screenshots : str or Path, optional
        Folder for one full-page PNG per page (named after the page's path); None takes none.
    browser : playwright Browser, optional
        An open Chromium; None launches Debian's Chromium headless with :data:`CHROMIUM_ARGS`.
    pages : list of Path, optional
        The pages to check (default: :func:`pages_of`).

    Returns
    -------
    problems : list of Problem
        Everything found; empty when the book is fine.
    checked : list of str
        The pages checked, relative to ``html_dir``.
    """
    html_dir = Path(html_dir).resolve()
    if not (html_dir / "index.html").exists() and pages is None:
        raise FileNotFoundError(f"{html_dir} has no index.html: build the book first (bash scripts/build_book.sh)")
    pages = pages_of(html_dir) if pages is None else [Path(p).resolve() for p in pages]
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}")
    _parse.cache_clear()
    problems: list[Problem] = []
    for page in pages:
        problems += check_links(html_dir, page)

    server, base = _serve(html_dir)
    own_playwright = None
    try:
        if browser is None:
            exe = chromium_path()
            if exe is None:
                raise RuntimeError("no chromium on PATH: install Debian's chromium (apt-get install -y chromium)")
            from playwright.sync_api import sync_playwright

            own_playwright = sync_playwright().start()
            browser = own_playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        # other hosts (CDNs, launch buttons) are never contacted: abort at once instead of timing out
        context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort())
        try:
            for page in pages:
                rel = page.relative_to(html_dir).as_posix()
                if _parse(page).redirect is not None:
                    continue  # a redirect (Jupyter Book's index.html): its target is checked as a link
                shot = None
                if screenshots is not None:
                    shot = Path(screenshots) / (rel.replace("/", "__").removesuffix(".html") + ".png")
                problems += check_page_in_browser(context, urljoin(base, rel), rel, shot)
        finally:
            context.close()
    finally:
        if own_playwright is not None:
            browser.close()
            own_playwright.stop()
        server.shutdown()
        server.server_close()
    checked = [p.relative_to(html_dir).as_posix() for p in pages]
    return problems, checked


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html", help="the build's HTML folder (default: _build/html)")
    ap.add_argument(
        "--screenshots", default=None, help="folder for one full-page PNG per page (default: <html_dir>/../screenshots)"
    )
    args = ap.parse_args(argv)
    html_dir = Path(args.html_dir)
    shots = Path(args.screenshots) if args.screenshots else html_dir.resolve().parent / "screenshots"
    try:
        problems, checked = check_site(html_dir, shots)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"check_book_html: error: {err}", file=sys.stderr)
        return 2
    print(f"checked {len(checked)} pages in headless Chromium; screenshots in {shots}")
    for p in problems:
        print(f"  FAIL {p}")
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print("no tracebacks, broken images, broken internal links or doubled chapter numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
