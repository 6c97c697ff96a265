"""The book built at scale="smoke" and checked in headless Chromium (what CI runs before the long build).

Executes every notebook of the table of contents with papermill at ``scale="smoke"`` into a
staging copy (scripts/stage_book.py), builds it with Jupyter Book, and runs the browser check
(scripts/check_book_html.py) on the HTML: no tracebacks, broken images or links, no doubled
chapter numbers; every chapter has figures and a screenshot; exercise solutions are collapsed.
About 3 minutes on the 2-core reference machine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec running this interpreter, first on JUPYTER_PATH (as in test_notebooks)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps({**spec, "display_name": "Python 3 (tests)"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # the kernels must draw inline figures: no Agg from the test environment
    monkeypatch.delenv("MPLBACKEND", raising=False)
    return "python3"


@pytest.mark.slow
def test_smoke_build_passes_the_browser_check(tmp_path, kernel, browser):
    pytest.importorskip("papermill")
    stage_dir = tmp_path / "book"
    times = _script("stage_book").stage("smoke", stage_dir, kernel=kernel, log=lambda *a: None)
    chapters = [t["notebook"] for t in times]
    assert chapters, "no notebook in _toc.yml"
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(stage_dir)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    assert not warnings, "Sphinx warnings:\n" + "\n".join(warnings)
    html = stage_dir / "_build" / "html"

    checker = _script("check_book_html")
    shots = tmp_path / "screenshots"
    problems, checked = checker.check_site(html, shots, browser=browser)
    assert not problems, "\n".join(map(str, problems))
    for name in chapters:
        page = html / "notebooks" / f"{name}.html"
        text = page.read_text(encoding="utf-8")
        assert "_images/" in text, f"{name}: no figure"
        assert (shots / f"notebooks__{name}.png").stat().st_size > 10_000
        # every solution of an exercise is a collapsed dropdown
        solutions = re.findall(r'<div class="([^"]*\bsolution\b[^"]*)"', text)
        exercises = len(re.findall(r'<div class="[^"]*\bexercise\b[^"]*"', text))
        assert len(solutions) == exercises, f"{name}: {exercises} exercises, {len(solutions)} solutions"
        assert all("dropdown" in cls for cls in solutions), f"{name}: a solution is not collapsed: {solutions}"
    assert "book/instructors.html" in checked
