"""The book's browser check (scripts/check_book_html.py) on small hand-made sites.

Each site has one defect the check must catch (a traceback, an image that does not load, a
broken link or anchor, a doubled chapter number); a clean site must pass. The pages are opened in
the real headless Chromium of the ``browser`` fixture (skips without it).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_book_html.py"
# a valid 1 x 1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def checker(load_script):
    return load_script(SCRIPT)


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"


def _site(tmp_path: Path, **pages: str) -> Path:
    """index.html and chapter.html (a clean pair) plus any page given, then the image."""
    html = tmp_path / "html"
    (html / "_images").mkdir(parents=True)
    (html / "_images" / "fig.png").write_bytes(PNG)
    (html / "notebooks").mkdir()
    base = {
        "index.html": _page(
            "Intro", '<p><a href="notebooks/ch1.html#results">results</a> <a href="https://example.org">ext</a></p>'
        ),
        "notebooks/ch1.html": _page(
            "1. Generating 3D nanowire networks",
            '<h2 id="results">Results</h2><img src="../_images/fig.png"><a href="../index.html">home</a>',
        ),
    }
    base.update({k.replace("__", "/"): v for k, v in pages.items()})
    for rel, text in base.items():
        (html / rel).write_text(text, encoding="utf-8")
    return html


def _kinds(problems):
    return sorted({p.kind for p in problems})


def test_clean_site_passes_and_is_screenshotted(checker, browser, tmp_path):
    html = _site(tmp_path)
    problems, checked = checker.check_site(html, tmp_path / "shots", browser=browser)
    assert problems == []
    assert checked == ["index.html", "notebooks/ch1.html"]
    shots = sorted(p.name for p in (tmp_path / "shots").glob("*.png"))
    assert shots == ["index.png", "notebooks__ch1.png"]
    assert all((tmp_path / "shots" / s).read_bytes()[:4] == b"\x89PNG" for s in shots)


@pytest.mark.parametrize(
    "defect, page, kind",
    [
        (
            "traceback",
            _page(
                "3. A dataset",
                '<div class="cell_output"><pre>{\n"a": 1\nTraceback (most recent call last):\n'
                '  File "x.py", line 1\nBrokenPipeError: [Errno 32] Broken pipe</pre></div>',
            ),
            "error output",
        ),
        (
            "error cell",
            _page("3. A dataset", '<div class="output traceback"><pre>ValueError: bad</pre></div>'),
            "error output",
        ),
        ("missing image", _page("3. A dataset", '<img src="../_images/missing.png">'), "broken image"),
        ("not an image", _page("3. A dataset", '<img src="../index.html">'), "broken image"),
        ("missing page", _page("3. A dataset", '<a href="04_train.html">next</a>'), "broken internal link"),
        (
            "missing anchor",
            _page("3. A dataset", '<a href="ch1.html#no-such-section">there</a>'),
            "broken internal link",
        ),
        ("doubled number", _page("1. 1. Generating 3D nanowire networks", "<p>text</p>"), "doubled chapter number"),
        (
            "doubled in nav",
            _page("Intro", '<nav><a href="ch1.html">2. 2. From a network</a></nav>'),
            "doubled chapter number",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_each_defect_fails(checker, browser, tmp_path, defect, page, kind):
    html = _site(tmp_path)
    (html / "notebooks" / "ch3.html").write_text(page, encoding="utf-8")
    problems, checked = checker.check_site(html, None, browser=browser)
    assert "notebooks/ch3.html" in checked
    assert kind in _kinds(problems), f"{defect}: expected {kind!r}, got {[str(p) for p in problems]}"
    assert all(p.page == "notebooks/ch3.html" for p in problems), [str(p) for p in problems]


def test_cli_exit_status(checker, tmp_path, capsys):
    if checker.chromium_path() is None:
        pytest.skip("no chromium on PATH")
    pytest.importorskip("playwright.sync_api")
    html = _site(tmp_path)
    assert checker.main([str(html), "--screenshots", str(tmp_path / "s")]) == 0
    (html / "notebooks" / "bad.html").write_text(_page("1. 1. Twice", ""), encoding="utf-8")
    assert checker.main([str(html), "--screenshots", str(tmp_path / "s")]) == 1
    assert "doubled chapter number" in capsys.readouterr().out
    assert checker.main([str(tmp_path / "nothing")]) == 2
