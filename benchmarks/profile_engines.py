"""Interleaved profile of the two engines (cProfile): torchvision, detectron2, torchvision, detectron2.

Each run trains the configuration of ``bench_engines.py`` for N iterations (default 8) on the
``cpu`` preset's data; one JSON line per run: loop seconds, seconds per iteration, seconds in
``backward`` and in the data loader's ``__next__``; then the top functions by own time.

Usage::

    python benchmarks/profile_engines.py 8 > /tmp/profile_engines.log
"""

from __future__ import annotations

import cProfile
import json
import pstats
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engines  # noqa: E402

from nanowire_utils.maskrcnn import engine  # noqa: E402


def main(
    n: int = 8, data="/work/expdata/cpu", work="/tmp/prof_engines", order=("torchvision", "detectron2") * 2
) -> None:
    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    view = bench_engines.train_only_view(Path(data), work / "data")
    for k, name in enumerate(order):
        cfg = bench_engines.bench_config(n, 4, name, 0)
        prof = cProfile.Profile()
        prof.enable()
        res = engine.train(cfg, view, work / f"{name}_{k}", resume=False, progress=False)
        prof.disable()
        stats = pstats.Stats(prof)
        backward = data_s = 0.0
        for (path, _line, func), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
            if func == "backward" and "torch/_tensor.py" in path:
                backward += cumulative
            if func == "__next__" and "dataloader.py" in path:
                data_s += cumulative
        rec = {
            "engine": name,
            "iters": res.iterations,
            "loop_s": round(res.elapsed_s, 1),
            "s_per_iter": round(res.elapsed_s / res.iterations, 2),
            "backward_s": round(backward, 1),
            "dataloader_next_s": round(data_s, 1),
        }
        print(json.dumps(rec), flush=True)
        stats.sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 8,
        order=tuple(sys.argv[2].split(",")) if len(sys.argv) > 2 else ("torchvision", "detectron2") * 2,
    )
