"""House style: numpydoc docstrings on the public API (issue 7, item 6).

Parsed with :mod:`ast` (nothing is imported, no extra dependency). For every module listed in
:data:`CHECKED`, each public function, class and public method of a public class (names without
a leading underscore, defined at module level) must have a docstring, and:

- a function with parameters other than ``self``/``cls``/``*args``/``**kwargs`` documents each
  one in a ``Parameters`` section as a ``name : type`` line (``a, b : int`` covers both); a class
  documents the parameters of its ``__init__`` in its own docstring (or in ``__init__``'s);
- a ``Parameters`` section names no parameter that the signature does not have;
- a function that returns a value (a ``return <expr>`` in its own body) has a ``Returns`` or
  ``Yields`` section (properties excepted: their summary says what they are).

A module joins :data:`CHECKED` once its docstrings are converted; modules still being
rewritten by others are held to the rule when they are added here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nanowire_utils"

CHECKED = [
    "synth/geometry.py",
    "synth/voxels.py",
    "synth/projection.py",
    "synth/generator_presets.py",
    "synth/dataset.py",
    "real/annotations.py",
    "real/postprocess.py",
    "real/evaluation.py",
    "real/statistics.py",
    "real/samples.py",
    "viz/plotting.py",
    "viz/volume.py",
    "viz/training.py",
    "viz/statistics.py",
    "viz/crossmodality.py",
    "viz/model.py",
    "maskrcnn/config.py",
    "maskrcnn/model.py",
    "maskrcnn/weights.py",
    "maskrcnn/loading.py",
    "maskrcnn/inference.py",
    "maskrcnn/evaluate.py",
    "instances.py",
    "coco.py",
    "paper.py",
    "overrides.py",
]

_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s+:\s*\S")


def _sections(doc: str) -> dict[str, list[str]]:
    """Split a cleaned docstring into numpydoc sections: ``{title: lines}``.

    Parameters
    ----------
    doc : str
        The docstring as returned by :func:`ast.get_docstring` (dedented).

    Returns
    -------
    dict of str to list of str
        Each section title (a line underlined by dashes) to the lines below it.
    """
    lines = doc.splitlines()
    out: dict[str, list[str]] = {}
    current = None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"\s*-{3,}\s*", nxt) and line.strip()[0].isalpha():
            current = line.strip()
            out[current] = []
            i += 2
            continue
        if current is not None:
            out[current].append(line)
        i += 1
    return out


def _documented(doc: str) -> set[str] | None:
    """The names a docstring's ``Parameters`` section gives as ``name : type`` entries.

    Parameters
    ----------
    doc : str
        A dedented docstring.

    Returns
    -------
    set of str or None
        The documented names (``*`` stripped), or None when there is no ``Parameters``
        section.
    """
    lines = _sections(doc).get("Parameters")
    if lines is None:
        return None
    names: set[str] = set()
    for line in lines:
        if not line.strip() or line[:1].isspace():  # descriptions are indented
            continue
        m = _ENTRY.match(line)
        if m:
            names.update(n.strip().lstrip("*") for n in m.group(1).split(","))
    return names


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The parameters that must be documented: all but self/cls and ``*args``/``**kwargs``.

    Parameters
    ----------
    fn : ast.FunctionDef or ast.AsyncFunctionDef
        The function's syntax node.

    Returns
    -------
    list of str
        Parameter names in signature order.
    """
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return [n for n in names if n not in ("self", "cls")]


def _all_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Every name in the signature, including ``*args``/``**kwargs``.

    Parameters
    ----------
    fn : ast.FunctionDef or ast.AsyncFunctionDef
        The function's syntax node.

    Returns
    -------
    set of str
        All parameter names.
    """
    a = fn.args
    names = set(_params(fn))
    names.update(p.arg for p in (a.vararg, a.kwarg) if p is not None)
    return names


def _decorators(node: ast.AST) -> set[str]:
    """Names of a definition's decorators (``property``, ``overload``, ``dataclass``, ...).

    Parameters
    ----------
    node : ast.AST
        A function or class definition.

    Returns
    -------
    set of str
        The last dotted component of each decorator (calls included).
    """
    out = set()
    for d in getattr(node, "decorator_list", []):
        d = d.func if isinstance(d, ast.Call) else d
        if isinstance(d, ast.Attribute):
            out.add(d.attr)
        elif isinstance(d, ast.Name):
            out.add(d.id)
    return out


def _returns_value(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function's own body (not nested definitions) returns something not None.

    Parameters
    ----------
    fn : ast.FunctionDef or ast.AsyncFunctionDef
        The function's syntax node.

    Returns
    -------
    bool
        True when a ``return <expr>`` (other than ``return None``) or a ``yield`` occurs.
    """
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _module_defs(body: list[ast.stmt]):
    """Definitions at module level, including those under ``if``/``try`` blocks.

    Parameters
    ----------
    body : list of ast.stmt
        A module's (or block's) statements.

    Yields
    ------
    ast.FunctionDef or ast.AsyncFunctionDef or ast.ClassDef
        Each definition.
    """
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        elif isinstance(node, (ast.If, ast.Try)):
            yield from _module_defs(node.body + node.orelse)
            for h in getattr(node, "handlers", []):
                yield from _module_defs(h.body)


def _check_function(fn, where: str, problems: list[str], doc_for_params: str | None = None):
    """Append the rule violations of one function to ``problems``.

    Parameters
    ----------
    fn : ast.FunctionDef or ast.AsyncFunctionDef
        The function's syntax node.
    where : str
        ``path:line name`` used in the messages.
    problems : list of str
        Collects the messages.
    doc_for_params : str or None
        A docstring that may document the parameters instead (a class's, for ``__init__``).
    """
    doc = ast.get_docstring(fn)
    decos = _decorators(fn)
    if "overload" in decos:
        return
    if not doc and fn.name != "__init__":
        problems.append(f"{where}: no docstring")
        return
    params = _params(fn)
    if params:
        documented = _documented(doc or "")
        if documented is None and doc_for_params is not None:
            documented = _documented(doc_for_params)
        if documented is None:
            problems.append(f"{where}: no 'Parameters' section (parameters: {', '.join(params)})")
        else:
            missing = [p for p in params if p not in documented]
            if missing:
                problems.append(f"{where}: no 'name : type' entry for {', '.join(missing)}")
            unknown = sorted(documented - _all_params(fn))
            if unknown:
                problems.append(f"{where}: documents unknown parameter(s) {', '.join(unknown)}")
    if fn.name != "__init__" and "property" not in decos and "cached_property" not in decos and _returns_value(fn):
        sections = _sections(doc or "")
        if "Returns" not in sections and "Yields" not in sections:
            problems.append(f"{where}: returns a value but has no 'Returns' section")


def problems_in(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Every violation of the docstring rule in one source file.

    Parameters
    ----------
    path : pathlib.Path
        A Python source file.
    root : pathlib.Path
        The folder that the messages' file names are relative to.

    Returns
    -------
    list of str
        One message per violation, ``file:line name: what is wrong``; empty when clean.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root)
    problems: list[str] = []
    for node in _module_defs(tree.body):
        if node.name.startswith("_"):
            continue
        where = f"{rel}:{node.lineno} {node.name}"
        if isinstance(node, ast.ClassDef):
            cdoc = ast.get_docstring(node)
            if not cdoc:
                problems.append(f"{where}: no docstring")
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                if item.name == "__init__":
                    _check_function(item, f"{where}.__init__", problems, doc_for_params=cdoc or "")
                elif not item.name.startswith("_"):
                    _check_function(item, f"{where}.{item.name}", problems)
        else:
            _check_function(node, where, problems)
    return problems


@pytest.mark.parametrize("module", CHECKED)
def test_public_docstrings_follow_numpydoc(module):
    path = PACKAGE / module
    assert path.is_file(), f"{module} is listed in CHECKED but does not exist"
    problems = problems_in(path)
    assert not problems, "numpydoc docstring rule broken:\n" + "\n".join(problems)


def test_checker_catches_a_missing_parameter_entry(tmp_path):
    """The rule can fail: a dropped entry, an unknown entry and a missing section are caught."""
    src = tmp_path / "m.py"
    good = '''
def f(a, b=1, *args, c, **kw):
    """Do f.

    Parameters
    ----------
    a, b : int
        Numbers.
    c : str
        A name.

    Returns
    -------
    int
        The sum.
    """
    return a + b
'''

    def check(text):
        src.write_text(text)
        return problems_in(src, root=tmp_path)

    assert check(good) == []
    assert any("entry for c" in p for p in check(good.replace("    c : str\n        A name.\n", "")))
    assert any("unknown parameter(s) d" in p for p in check(good.replace("c : str", "d : str")))
    no_returns = good.replace("    Returns\n    -------\n", "    Notes\n    -----\n")
    assert any("no 'Returns'" in p for p in check(no_returns))
    found = check("class K:\n    def run(self, x):\n        return x\n")
    assert any("K: no docstring" in p for p in found)
    assert any("K.run: no docstring" in p for p in found)


if __name__ == "__main__":  # list every violation: python tests/test_docstrings.py
    import sys

    files = sys.argv[1:] or CHECKED
    for m in files:
        for p in problems_in(PACKAGE / m):
            print(p)
