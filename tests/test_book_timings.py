"""scripts/book_timings.py: the per-notebook run times of a book build, read from Jupyter Book's cache."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import book_timings  # noqa: E402


def _cache_with(tmp_path, seconds: dict[str, float | None]) -> Path:
    """A real jupyter-cache holding one executed notebook per entry (None: no timing recorded)."""
    from jupyter_cache import get_cache

    cache = tmp_path / "jupyter_cache"
    jc = get_cache(str(cache))
    for name, secs in seconds.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print({name!r})")])
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, path)
        data = {} if secs is None else {"execution_seconds": secs}
        jc.cache_notebook_file(str(path), data=data, check_validity=False)
    return cache


def test_reads_each_notebooks_execution_seconds(tmp_path):
    cache = _cache_with(tmp_path, {"02_b": 12.345, "01_a": 3.0, "03_untimed": None})
    times = book_timings.notebook_times(cache)
    assert list(times) == ["01_a", "02_b"]
    assert times["02_b"]["seconds"] == 12.35 and times["01_a"]["seconds"] == 3.0

    out = tmp_path / "book_build.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "book_timings.py"), "--out", str(out), "--cache", str(cache)]
    run = subprocess.run([*cmd, "--total-seconds", "20", "--model-reused", "yes"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert doc["total_seconds"] == 20 and doc["model_reused"] is True
    assert doc["notebooks"] == times and doc["machine"]["cpu_count"] >= 1


def test_no_build_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the book first"):
        book_timings.notebook_times(tmp_path)
    cache = _cache_with(tmp_path, {"01_a": None})
    with pytest.raises(FileNotFoundError, match="no executed notebook"):
        book_timings.notebook_times(cache)
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "book_timings.py"),
            "--out",
            str(tmp_path / "x.json"),
            "--cache",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "build the book first" in run.stderr and not (tmp_path / "x.json").exists()
