#!/usr/bin/env python
"""Write the student edition of the notebooks: every exercise solution removed.

    python scripts/make_student_edition.py              # notebooks/*.ipynb -> student/*.ipynb
    python scripts/make_student_edition.py --out hw1/ notebooks/04_train_mask_rcnn.ipynb

In the book, a solution is the cells from a ``{solution-start}`` Markdown cell to the next
``{solution-end}`` cell (sphinx-exercise's gated solution: its code, outputs and notes), and the
folded answers of the "Check your understanding" sections; all of them are also tagged
``solution``. The student edition drops those cells, puts an empty code cell under each exercise
for the student's answer, and clears every output. ``student/`` is git-ignored: hand it out
(a zip, nbgitpuller from a branch, the hub's shared folder), do not commit it.

The student notebooks keep the ``parameters`` cell and the setup cell, and run from ``student/``
as from ``notebooks/`` (their relative paths ``../data``, ``../runs`` point to the same folders).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_START = re.compile(r"^\s*(```+|:::+)\s*\{solution-start\}", re.M)
_END = re.compile(r"^\s*(```+|:::+)\s*\{solution-end\}", re.M)
_ANSWERS = re.compile(r"^\s*(```+|:::+)\s*\{admonition\}\s*Answers", re.M)


def _is_solution_tagged(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def student_version(nb):
    """A copy of notebook ``nb`` without solutions, with an answer cell after each exercise.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A notebook of the book (version 4).

    Returns
    -------
    nbformat.NotebookNode
        The student notebook; ``nb`` is not changed.

    Raises
    ------
    ValueError
        When a ``{solution-start}`` has no matching ``{solution-end}`` (the solution would leak
        or the rest of the notebook would be cut).
    """
    out = nbformat.from_dict(nbformat.v4.new_notebook())
    out.metadata = nbformat.from_dict(dict(nb.metadata))
    kept = []
    inside = False
    for i, cell in enumerate(nb.cells):
        source = cell.source
        if cell.cell_type == "markdown" and _START.search(source):
            if inside:
                raise ValueError(f"cell {i}: a solution-start inside another solution (missing solution-end)")
            inside = True
            kept.append(_answer_cell())
            continue
        if inside:
            if cell.cell_type == "markdown" and _END.search(source):
                inside = False
            continue
        if _is_solution_tagged(cell):
            continue
        if cell.cell_type == "markdown" and _ANSWERS.search(source):
            source = _drop_answers(source)
        new = nbformat.from_dict(dict(cell))
        new.source = source
        if new.cell_type == "code":
            new.outputs = []
            new.execution_count = None
        kept.append(new)
    if inside:
        raise ValueError("a solution-start without solution-end: the rest of the notebook would be cut")
    out.cells = kept
    return out


def _answer_cell():
    return nbformat.v4.new_code_cell("# Your solution\n", metadata={"tags": ["answer"]})


def _drop_answers(source: str) -> str:
    """Remove the folded ``{admonition} Answers`` block (to its closing fence) from a Markdown cell."""
    m = _ANSWERS.search(source)
    fence = m.group(1)
    end = re.compile(rf"^\s*{re.escape(fence)}\s*$", re.M).search(source, m.end())
    tail = source[end.end() :] if end else ""
    head = source[: m.start()].rstrip()
    return head + "\n\n*(Answers: ask your instructor, or see the book.)*" + tail


def make_student_edition(notebooks, out_dir) -> list[Path]:
    """Write the student version of each notebook into ``out_dir``; return the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        try:
            student = student_version(nb)
        except ValueError as err:
            raise ValueError(f"{path.name}: {err}") from None
        target = out_dir / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--out", default=str(ROOT / "student"), help="output folder (default: student/)")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("make_student_edition: error: no notebooks found", file=sys.stderr)
        return 2
    try:
        written = make_student_edition(notebooks, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"make_student_edition: error: {err}", file=sys.stderr)
        return 2
    for w in written:
        print(w)
    print(f"{len(written)} student notebooks without solutions in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
