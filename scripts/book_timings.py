"""Record how long each notebook took in a ``scale="cpu"`` book build, as a committed result.

Jupyter Book keeps every executed notebook in its execution cache (``_build/.jupyter_cache``)
with the seconds its execution took. This script reads those records and writes them, with the
machine, the date and the load average, to a JSON file that ``scripts/figures.py`` turns into
the run times the execution-status and instructors' pages quote (``{{ book_s_04 }}`` ...).

``bash scripts/build_book.sh --force --record`` runs it after a full build from an empty cache
(``--force``, so that every notebook was executed by that build). Record on quiet cores: the
times are those of the machine at that moment.

Usage::

    python scripts/book_timings.py --out benchmarks/results/book_build.json \\
        [--cache _build/.jupyter_cache] [--total-seconds 311] [--load-before 0.1 0.2 0.3] [--model-reused yes]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nanowire_utils.sweep.layout import git_commit, machine_info, utc_now  # noqa: E402


def notebook_times(cache: Path) -> dict[str, dict]:
    """Execution seconds of each notebook in a Jupyter Book execution cache.

    Parameters
    ----------
    cache : Path
        The cache folder (``_build/.jupyter_cache``).

    Returns
    -------
    dict
        ``{notebook stem: {"seconds": float, "executed": ISO time}}``, sorted by name.

    Raises
    ------
    FileNotFoundError
        When ``cache`` is not a Jupyter cache or holds no executed notebook.
    """
    from jupyter_cache import get_cache

    if not (Path(cache) / "global.db").is_file():
        raise FileNotFoundError(f"{cache} is not a Jupyter Book execution cache; build the book first")
    out = {}
    for rec in get_cache(str(cache)).list_cache_records():
        seconds = (rec.data or {}).get("execution_seconds")
        if seconds is not None:
            out[Path(rec.uri).stem] = {"seconds": round(float(seconds), 2), "executed": rec.created.isoformat()}
    if not out:
        raise FileNotFoundError(f"{cache} holds no executed notebook; build the book first")
    return dict(sorted(out.items()))


def record(
    cache: Path,
    total_seconds: float | None = None,
    load_before: list[float] | None = None,
    model_reused: bool | None = None,
    note: str = "",
) -> dict:
    """The results document: per-notebook seconds, build total, machine, commit, date and load.

    Parameters
    ----------
    cache : Path
        The execution cache of the build.
    total_seconds : float, optional
        Wall-clock seconds of the whole build (execution and Sphinx), as the build script timed it.
    load_before : list of float, optional
        The 1/5/15-minute load averages before the build started.
    model_reused : bool, optional
        Whether chapter 4 found a trained model in ``runs/cpu/mask_rcnn`` (and so did not train).
    note : str
        Anything a reader of the figures must know (e.g. that another job shared the cores).
    """
    return {
        "what": "run time of each notebook in a scale='cpu' book build (jupyter-book execution cache)",
        "command": "bash scripts/build_book.sh --force --record",
        "written": utc_now(),
        "machine": machine_info(),
        **git_commit(),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": total_seconds,
        "model_reused": model_reused,
        "notebooks": notebook_times(cache),
        "note": note,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache", help="execution cache")
    p.add_argument("--total-seconds", type=float, default=None, help="wall-clock seconds of the whole build")
    p.add_argument("--load-before", type=float, nargs=3, default=None, help="load averages before the build")
    p.add_argument(
        "--model-reused",
        choices=("yes", "no"),
        default=None,
        help="chapter 4 found runs/cpu/mask_rcnn before the build",
    )
    p.add_argument("--note", default="", help="what a reader of the figures must know (e.g. shared cores)")
    args = p.parse_args(argv)
    try:
        reused = None if args.model_reused is None else args.model_reused == "yes"
        doc = record(args.cache, args.total_seconds, args.load_before, reused, args.note)
    except FileNotFoundError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    for name, rec in doc["notebooks"].items():
        print(f"{name:40s} {rec['seconds']:8.1f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
