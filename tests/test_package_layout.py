"""The package's shape: subpackages along the pipeline, no import cycle, house style."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "nanowire_utils"
SUBPACKAGES = ("synth", "maskrcnn", "real", "viz", "cli", "chapters")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _in_type_checking(node, parents) -> bool:
    for p in parents:
        if isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, at module level or inside functions
    (imports under ``if TYPE_CHECKING`` are annotations only and left out)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        edges = set()
        for node in ast.walk(tree):
            chain, p = [], node
            while p in parents:
                p = parents[p]
                chain.append(p)
            if _in_type_checking(node, chain):
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def find_cycle(graph) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert "nanowire_utils.maskrcnn.engine" in graph and graph["nanowire_utils.maskrcnn.torchvision_engine"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_engines_import_only_the_interface_not_each_other():
    graph = import_graph()
    tv, d2 = "nanowire_utils.maskrcnn.torchvision_engine", "nanowire_utils.maskrcnn.detectron2_engine"
    assert "nanowire_utils.maskrcnn.engine" in graph[tv] and "nanowire_utils.maskrcnn.engine" in graph[d2]
    assert d2 not in graph[tv] and tv not in graph[d2]
    assert not {tv, d2} & graph["nanowire_utils.maskrcnn.engine"], "engine.py must not import an engine"


def test_layout_shows_the_pipeline():
    tops = sorted(p.name for p in PKG.iterdir() if p.suffix == ".py")
    assert tops == ["__init__.py", "_checks.py", "coco.py", "instances.py", "overrides.py", "paper.py"], tops
    for sub in SUBPACKAGES:
        assert (PKG / sub / "__init__.py").exists(), sub


def test_low_layers_do_not_import_high_layers():
    """synth needs no model; real images need no training code; nothing imports the book glue."""
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("nanowire_utils.synth"):
            assert not any(d.startswith(("nanowire_utils.maskrcnn", "nanowire_utils.chapters")) for d in deps), mod
        if not mod.startswith(
            (
                "nanowire_utils.chapters",
                "nanowire_utils.viz",
                "nanowire_utils.cli",
                "nanowire_utils.app",
                "nanowire_utils.sweep",
            )
        ):
            assert not any(d.startswith("nanowire_utils.chapters") for d in deps), mod


def test_ruff_lint_and_format_are_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    lint = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, "run `ruff format .`:\n" + fmt.stdout[-3000:]


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    """The README's Python blocks run as written, in order, in a fresh folder (new layout only)."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README lost its Python examples"
    script = tmp_path / "readme_examples.py"
    script.write_text("import torch\ntorch.set_num_threads(1)\n" + "\n".join(blocks))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1].split()[:2] == ["20", "max_iter"], lines  # the smoke preset's 20 iterations
