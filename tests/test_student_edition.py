"""The student edition (scripts/make_student_edition.py): solutions gone, exercises kept."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def student(load_script):
    return load_script(ROOT / "scripts" / "make_student_edition.py")


def _count(nb, pattern):
    return sum(bool(re.search(pattern, c.source, re.M)) for c in nb.cells)


def test_book_notebooks_have_exercises_with_gated_solutions():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        n_ex = _count(nb, r"^```\{exercise\}")
        if n_ex == 0:
            continue  # a notebook without exercises (e.g. an app)
        assert _count(nb, r"^```\{solution-start\}") == n_ex, path.name
        assert _count(nb, r"^```\{solution-end\}") == n_ex, path.name
        assert not [c for c in nb.cells if "hide-input" in c.metadata.get("tags", []) and "Solution" in c.source], (
            f"{path.name}: a solution still uses hide-input"
        )


def test_student_edition_of_the_book(student, tmp_path):
    written = student.make_student_edition(NOTEBOOKS, tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for src, out in zip(NOTEBOOKS, written):
        book = nbformat.read(src, as_version=4)
        nb = nbformat.read(out, as_version=4)
        nbformat.validate(nb)
        solution_code = [
            c.source for c in book.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
        ]
        texts = [c.source for c in nb.cells]
        for code in solution_code:
            assert code not in texts, f"{out.name}: a solution cell is still there"
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)
        assert _count(nb, r"\{solution-(start|end)\}") == 0
        assert _count(nb, r"\{admonition\}\s*Answers") == 0
        # every exercise is kept, with one empty answer cell for each
        assert _count(nb, r"^```\{exercise\}") == _count(book, r"^```\{exercise\}")
        assert sum("answer" in c.metadata.get("tags", []) for c in nb.cells) == _count(book, r"^```\{exercise\}")
        # the notebook still starts like the book's: parameters cell, then the setup cell
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", [])
        assert all(not c.outputs for c in code)
        # the cells outside solutions are unchanged and in order
        outside = [
            c.source
            for c in book.cells
            if "solution" not in c.metadata.get("tags", []) and "{admonition} Answers" not in c.source
        ]
        assert [t for t in texts if t in outside] == outside


def test_self_check_questions_stay_answers_go(student):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "## Check your understanding\n\n1. Why?\n\n```{admonition} Answers\n:class: dropdown\n1. Because.\n```\n\nMore text."
        )
    ]
    out = student.student_version(nb)
    assert "1. Why?" in out.cells[0].source and "More text." in out.cells[0].source
    assert "Because" not in out.cells[0].source


def test_unclosed_solution_is_an_error(student, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("```{exercise} One\n:label: x\n\nDo it.\n```"),
        nbformat.v4.new_markdown_cell("```{solution-start} x\n:class: dropdown\n```"),
        nbformat.v4.new_code_cell("answer = 42"),
    ]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="bad.ipynb: a solution-start without solution-end"):
        student.make_student_edition([path], tmp_path / "out")
    assert student.main([str(path), "--out", str(tmp_path / "out")]) == 2
