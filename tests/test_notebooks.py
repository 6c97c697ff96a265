"""The book's notebooks: structure checks, and each one executed at ``scale="smoke"``.

Every notebook in ``notebooks/`` is run with papermill in a fresh kernel that uses this test
process's Python (so the installed ``nanowire_utils`` is the one under test), from the notebook
folder. Every path parameter (a string parameter named ``*_root`` or ``*_dir``) points into the
test's own temporary folder, so no test reuses a model or dataset left in the repository by an
earlier run, and no two tests (under ``pytest -n``) write the same folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _ids(paths):
    return [p.stem for p in paths]


def _first_code_cell(nb):
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def path_parameters(nb, root: Path) -> dict:
    """``{name: a fresh folder under root}`` for each ``*_root`` / ``*_dir`` string parameter."""
    import ast

    out = {}
    for node in ast.parse(_first_code_cell(nb).source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if (
                name.endswith(("_root", "_dir"))
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                out[name] = str(root / name)
    return out


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_structure(path):
    """First code cell is tagged ``parameters`` and sets ``scale``; no outputs are committed."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = _first_code_cell(nb)
    assert first is not None, f"{path.name} has no code cell"
    assert "parameters" in first.metadata.get("tags", []), (
        f"{path.name}: the first code cell must be tagged 'parameters' for papermill"
    )
    assert re.search(r"^scale\s*=", first.source, flags=re.M), f"{path.name}: the parameters cell must define `scale`"
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not stored, f"{path.name}: cells {stored} have stored outputs; clear them before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL_NAME, (
        f"{path.name}: kernelspec must be {KERNEL_NAME!r} so that Jupyter Book and papermill find it"
    )


@pytest.fixture(scope="session")
def venv_kernel(tmp_path_factory):
    """A ``python3`` kernelspec that runs ``sys.executable``, first on JUPYTER_PATH.

    A user-level kernel called ``python3`` (in ~/.local/share/jupyter) would otherwise shadow the
    environment's own and run the notebooks with another interpreter.
    """
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root)] + ([old] if old else []))
    yield KERNEL_NAME
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_at_smoke_scale(path, tmp_path, venv_kernel, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / path.name
    paths = path_parameters(nbformat.read(path, as_version=4), tmp_path)
    try:
        papermill.execute_notebook(
            str(path),
            str(out),
            parameters={"scale": "smoke", **paths},
            kernel_name=venv_kernel,
            cwd=str(NOTEBOOK_DIR),
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
    except papermill.PapermillExecutionError as err:
        trace = _ANSI.sub("", "\n".join(err.traceback))
        pytest.fail(
            f"{path.name} failed in cell [{err.exec_count}]: {err.ename}: {err.evalue}\n"
            f"--- cell source ---\n{err.source}\n--- traceback ---\n{trace}\n"
            f"(executed notebook: {out})",
            pytrace=False,
        )
    for name, folder in paths.items():
        assert str(Path(folder).resolve()).startswith(str(tmp_path.resolve())), name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["torchvision", "detectron2"])
def test_training_chapter_runs_with_each_engine(engine, tmp_path, venv_kernel, monkeypatch):
    """Chapter 4 at ``scale="smoke"`` with ``engine`` set (the run above uses its default, "auto")."""
    papermill = pytest.importorskip("papermill")
    if engine == "detectron2":
        from nanowire_utils.maskrcnn.detectron2_engine import available

        ok, why = available()
        if not ok:
            pytest.skip(
                f"detectron2 is not importable ({why[:160]}); scripts/_venv.sh installs it from ../shared/wheels"
            )
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = NOTEBOOK_DIR / "04_train_mask_rcnn.ipynb"
    out = tmp_path / path.name
    paths = path_parameters(nbformat.read(path, as_version=4), tmp_path)
    try:
        papermill.execute_notebook(
            str(path),
            str(out),
            parameters={"scale": "smoke", "engine": engine, **paths},
            kernel_name=venv_kernel,
            cwd=str(NOTEBOOK_DIR),
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
    except papermill.PapermillExecutionError as err:
        pytest.fail(f"{path.name} (engine={engine}) failed in cell [{err.exec_count}]: {err.ename}: {err.evalue}")
    text = out.read_text()
    assert f"engine {engine}" in text  # the training cell prints the engine that trained
    assert "nanowire_train" in text  # the detectron2 config of the run is shown


def test_path_parameters_are_redirected(tmp_path):
    """Every notebook that keeps data, runs or outputs has its folders redirected in tests."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        src = _first_code_cell(nb).source
        found = path_parameters(nb, tmp_path)
        for name in re.findall(r"^(\w+(?:_root|_dir))\s*=\s*[\"']", src, flags=re.M):
            assert name in found and found[name].startswith(str(tmp_path)), (path.name, name)
