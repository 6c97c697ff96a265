#!/usr/bin/env python
"""Execute the book's notebooks at a chosen ``scale`` with papermill into a staging copy of the book.

    python scripts/stage_book.py --scale smoke --stage _build/smoke
    jupyter-book build _build/smoke          # HTML in _build/smoke/_build/html

Jupyter Book 1 cannot pass parameters to notebooks, and the notebooks' parameters cells stay
plain papermill cells (``scale = "cpu"``). For a build at another scale (``smoke`` in CI, to
check the HTML quickly) this script runs every notebook of ``_toc.yml`` with papermill and
``-p scale <scale>``, from the real ``notebooks/`` folder (so ``../data`` and ``../runs`` are the
repository's), and writes the executed copies, the Markdown pages and the table of contents into
``--stage``, with a ``_config.yml`` that tells Jupyter Book not to execute them again. Papermill's
injected-parameters cell is tagged ``remove-cell``: the pages look like the normal build's.
``scripts/build_book.sh --scale smoke`` runs this and the build.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCALES = ("smoke", "cpu", "paper", "auto")


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` of a jb-book ``_toc.yml``, in order (``root`` first)."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def stage(scale: str, stage_dir: Path, kernel: str = "python3", root: Path = ROOT, log=print) -> list[dict]:
    """Execute the notebooks of ``root``'s toc at ``scale`` into ``stage_dir``; return timings.

    Raises
    ------
    papermill.PapermillExecutionError
        When a cell fails (the message names the notebook and the cell).
    """
    import papermill

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    stage_dir = Path(stage_dir).resolve()
    if stage_dir == root.resolve():
        raise ValueError("the stage folder must not be the repository itself")
    for sub in ("book", "notebooks"):
        shutil.rmtree(stage_dir / sub, ignore_errors=True)
    stage_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(root / "book", stage_dir / "book")
    shutil.copy2(root / "_toc.yml", stage_dir / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config["title"] = f"{config.get('title', '')} (scale={scale})".strip()
    (stage_dir / "_config.yml").write_text(
        f"# Written by scripts/stage_book.py: notebooks executed at scale={scale!r} with papermill.\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    (stage_dir / "notebooks").mkdir()
    times = []
    for rel in toc_files(root / "_toc.yml"):
        src = root / (rel if rel.endswith(".ipynb") else rel + ".ipynb")
        if not src.exists():
            continue  # a Markdown page: copied with book/
        out = stage_dir / src.relative_to(root)
        log(f"==> {src.relative_to(root)} at scale={scale!r}")
        t0 = time.perf_counter()
        papermill.execute_notebook(
            str(src),
            str(out),
            parameters={"scale": scale},
            kernel_name=kernel,
            cwd=str(src.parent),
            progress_bar=False,
            request_save_on_cell_execute=False,
        )
        seconds = time.perf_counter() - t0
        _hide_injected_parameters(out)
        times.append({"notebook": src.stem, "scale": scale, "seconds": round(seconds, 1)})
        log(f"    {seconds:.1f} s")
    return times


def _hide_injected_parameters(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nbformat.write(nb, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", required=True, choices=SCALES)
    ap.add_argument("--stage", required=True, help="folder for the staged book (e.g. _build/smoke)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    args = ap.parse_args(argv)
    try:
        times = stage(args.scale, Path(args.stage), kernel=args.kernel)
    except Exception as err:  # papermill's error names the notebook and cell
        print(f"stage_book: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    total = sum(t["seconds"] for t in times)
    print(f"==> {len(times)} notebooks executed at scale={args.scale!r} in {total:.0f} s into {args.stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
