"""Book delivery: the Pages workflow, the cache keys, the repository URL and the notebooks' setup cell."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- workflow
def _workflow():
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_workflow_builds_on_push_to_main_and_deploys_with_the_pages_actions():
    wf = _workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "main" in triggers["push"]["branches"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    uses = [s.get("uses", "") for job in wf["jobs"].values() for s in job["steps"]]
    for action in ("actions/configure-pages@", "actions/upload-pages-artifact@", "actions/deploy-pages@"):
        assert any(u.startswith(action) for u in uses), f"{action} missing"
    upload = next(
        s for s in wf["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == "_build/html"
    assert wf["jobs"]["deploy"]["needs"] == "build"


def test_workflow_runs_the_readme_build_command_and_existing_scripts():
    runs = "\n".join(s.get("run", "") for job in _workflow()["jobs"].values() for s in job["steps"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    build = re.search(r"^(bash scripts/build_book\.sh)\b", readme, re.M).group(1)
    assert build in runs
    called = set(re.findall(r"scripts/[\w./-]+\.(?:sh|py)", runs))
    assert {"scripts/build_book.sh", "scripts/cache_key.py", "scripts/_venv.sh"} <= called
    missing = [c for c in called if not (ROOT / c).is_file()]
    assert not missing, f"the workflow calls scripts that do not exist: {missing}"
    # the smoke-scale build is checked in the browser too
    assert "--scale smoke --check" in runs


def test_workflow_caches_data_and_model_on_the_cache_keys():
    steps = _workflow()["jobs"]["build"]["steps"]
    caches = {s["with"]["path"]: s["with"]["key"] for s in steps if s.get("uses", "").startswith("actions/cache@")}
    assert caches["data/synthetic/cpu"] == "${{ steps.keys.outputs.data }}"
    assert caches["runs/cpu"] == "${{ steps.keys.outputs.model }}"


def test_cache_keys_follow_the_configuration(monkeypatch):
    ck = _script("cache_key")
    monkeypatch.delenv("CACHE_EPOCH", raising=False)
    cpu, paper, smoke = ck.cache_keys("cpu"), ck.cache_keys("paper"), ck.cache_keys("smoke")
    assert cpu == ck.cache_keys("cpu")  # stable
    # cpu and paper expect the same dataset (1000 paper-generator images of 512 px) but train differently
    assert cpu["data"].rsplit("-", 1)[1] == paper["data"].rsplit("-", 1)[1]
    assert cpu["model"] != paper["model"] and cpu["data"] != smoke["data"]
    monkeypatch.setenv("CACHE_EPOCH", "2")
    bumped = ck.cache_keys("cpu")
    assert bumped["data"] != cpu["data"] and bumped["model"] != cpu["model"]


# --------------------------------------------------------------------------- repository URL
def test_repository_url_is_one_setting(tmp_path):
    su = _script("set_repository_url")
    url = su.config_url()
    assert url.startswith("https://")
    urls = su.notebook_urls()
    assert set(urls) == {p.name for p in NOTEBOOKS}, "every notebook needs the setup cell"
    assert set(urls.values()) == {url}, f"setup cells disagree with _config.yml: {urls}"
    # on a copy: one call changes _config.yml and every setup cell
    copy = tmp_path / "repo"
    (copy / "notebooks").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", copy / "_config.yml")
    for p in NOTEBOOKS:
        shutil.copy2(p, copy / "notebooks" / p.name)
    changed = su.set_url("https://github.com/someone/fork.git", copy)
    assert len(changed) == 1 + len(NOTEBOOKS)
    assert su.config_url(copy) == "https://github.com/someone/fork"
    assert set(su.notebook_urls(copy).values()) == {"https://github.com/someone/fork"}
    yaml.safe_load((copy / "_config.yml").read_text())  # still valid YAML
    with pytest.raises(ValueError, match="not a repository URL"):
        su.set_url("github.com/x", copy)


# --------------------------------------------------------------------------- setup cell
def _setup_cells():
    cells = {}
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        cells[path.name] = (code[0], code[1])
    return cells


def test_every_notebook_has_the_same_setup_cell_after_its_parameters():
    cells = _setup_cells()
    sources = set()
    for name, (params, setup) in cells.items():
        assert "parameters" in params["metadata"].get("tags", []), name
        assert "setup" in setup["metadata"].get("tags", []), f"{name}: the second code cell must be the setup cell"
        sources.add("".join(setup["source"]))
    assert len(sources) == 1, "the setup cells differ between notebooks"


def _setup_code():
    return "".join(next(iter(_setup_cells().values()))[1]["source"])


def test_setup_cell_does_nothing_where_the_package_is_installed(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _setup_code()], cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "pip" not in proc.stderr


@pytest.mark.slow
def test_setup_cell_installs_the_package_in_a_fresh_venv(tmp_path):
    """A fresh venv without the package (as on Colab or Binder), in a clone of the repository:
    the cell installs the clone with pip, and a second run does nothing. The dependencies are
    not installed (PIP_NO_DEPS=1), which keeps the test to the cell's own work."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import importlib.util; print(importlib.util.find_spec('nanowire_utils') is not None)"]
    assert subprocess.run(probe, cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip() == "False"
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "nanowire_utils", clone / "nanowire_utils", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, clone / name)
    (clone / "notebooks").mkdir()
    env = {**os.environ, "PIP_NO_DEPS": "1"}
    env.pop("PYTHONPATH", None)
    first = subprocess.run(
        [str(py), "-c", _setup_code()], cwd=clone / "notebooks", env=env, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"installing nanowire-utils from {clone.as_uri()}" in first.stdout
    version = subprocess.run(
        [
            str(py),
            "-c",
            "import nanowire_utils, pathlib; print(nanowire_utils.__version__, pathlib.Path(nanowire_utils.__file__).parent)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert version[0] == __import__("nanowire_utils").__version__
    assert str(venv) in version[1], "the package must be installed into the fresh venv"
    second = subprocess.run(
        [str(py), "-c", _setup_code()], cwd=clone / "notebooks", env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0 and second.stdout == ""


# --------------------------------------------------------------------------- Binder
def test_binder_installs_cpu_only_torch_then_the_package():
    binder = ROOT / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    post = binder / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    lines = [ln for ln in post.read_text().splitlines() if ln.startswith("python -m pip install")]
    assert "--index-url https://download.pytorch.org/whl/cpu" in lines[0] and "torch" in lines[0]
    assert '-e ".[book]"' in lines[1], "the package is installed after torch, so the CPU wheels stay"
    proc = subprocess.run(["bash", "-n", str(post)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
