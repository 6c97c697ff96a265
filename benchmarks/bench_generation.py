"""Benchmark synthetic dataset generation: images/s and peak memory.

Measures end-to-end :func:`nanowire_utils.synth.dataset.write_dataset` (512 x 512 "paper" images,
rendering, PNG files, RLE masks, COCO JSON assembly) for the analytic and the voxel
projection path, on 1 worker and on all cores, in one run; and the peak resident memory
(RSS) of a single-process run for a small and a large N, to show memory does not grow with N.
Each memory point runs in a fresh subprocess so the peaks are independent.

Writes benchmarks/results/generation.json and generation.md.

    python benchmarks/bench_generation.py            # full run, about 2-4 minutes on 2 cores
    python benchmarks/bench_generation.py --quick    # smaller N, for a smoke check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nanowire_utils
from nanowire_utils.synth.dataset import _default_workers, write_dataset

RESULTS = Path(__file__).resolve().parent / "results"

MEMORY_CHILD = """
import resource, sys, time
from nanowire_utils.synth.dataset import write_dataset
n, out = int(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
write_dataset(out, n, seed=0, config="paper", workers=1, progress=False)
dt = time.perf_counter() - t
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, dt)
"""


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_available": _default_workers(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "nanowire_utils": nanowire_utils.__version__,
    }


def throughput(path: str, workers: int, n: int, tmp: Path) -> dict:
    out = tmp / f"{path}_{workers}"
    t, cpu = time.perf_counter(), time.process_time()
    summary = write_dataset(out, n, seed=0, config="paper", path=path, workers=workers, progress=False)
    total, cpu = time.perf_counter() - t, time.process_time() - cpu
    shutil.rmtree(out)
    # CPU time is only this process's: meaningful for 1 worker (run in-process), where it
    # shows the speed of an uncontended core even when other jobs share the machine.
    per_cpu_s = round(n / cpu, 1) if workers == 1 else None
    return {
        "images_per_cpu_s": per_cpu_s,
        "path": path,
        "workers": workers,
        "n": n,
        "seconds": round(total, 2),
        "images_per_s": round(n / total, 1),
        "images_per_s_per_worker": round(n / total / workers, 1),
        "masks": sum(summary["annotations"].values()),
    }


def peak_memory(n: int, tmp: Path) -> dict:
    out = tmp / f"mem_{n}"
    res = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(n), str(out)], capture_output=True, text=True, check=True
    )
    rss, seconds = (float(v) for v in res.stdout.split())
    shutil.rmtree(out)
    return {"n": n, "workers": 1, "peak_rss_mib": round(rss, 1), "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N everywhere (a smoke check, not for the results)")
    ap.add_argument("--no-save", action="store_true", help="print only, do not write benchmarks/results")
    args = ap.parse_args(argv)
    n_analytic, n_voxel, n_mem = (40, 6, (20, 100)) if args.quick else (600, 30, (100, 1000))
    cores = _default_workers()
    load_before = os.getloadavg()
    started = datetime.datetime.now().astimezone()
    rows, memory = [], []
    with tempfile.TemporaryDirectory(prefix="bench_gen_") as tmpdir:
        tmp = Path(tmpdir)
        # Warm-up: imports, and the process-pool server (started once per Python session, ~1 s).
        write_dataset(tmp / "warm", 4, config="paper", workers=cores, progress=False)
        for path, n in (("analytic", n_analytic), ("voxel", n_voxel)):
            for workers in sorted({1, cores}):
                rows.append(throughput(path, workers, n, tmp))
                print(rows[-1], flush=True)
        for n in n_mem:
            memory.append(peak_memory(n, tmp))
            print(memory[-1], flush=True)
    load_after = os.getloadavg()

    def rate(path, workers):
        return next(r["images_per_s"] for r in rows if r["path"] == path and r["workers"] == workers)

    result = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_generation.py" + (" --quick" if args.quick else ""),
        "machine": machine_info(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "setup": "preset 'paper' (512 x 512 x 200 voxels, 10-25 wires), PNG, RLE masks, COCO JSON; end-to-end "
        "write_dataset; the one-off start of the process-pool server (~1 s per Python session) is excluded",
        "throughput": rows,
        "analytic_over_voxel": {w: round(rate("analytic", w) / rate("voxel", w), 1) for w in sorted({1, cores})},
        "analytic_over_voxel_cpu": round(
            next(r["images_per_cpu_s"] for r in rows if r["path"] == "analytic" and r["workers"] == 1)
            / next(r["images_per_cpu_s"] for r in rows if r["path"] == "voxel" and r["workers"] == 1),
            1,
        ),
        "memory": memory,
        "target_analytic_images_per_s_per_core": 50,
    }
    lines = [
        "# Synthetic data generation benchmark",
        "",
        f"- Date: {result['date']}; command: `{result['command']}`",
        f"- Machine: {result['machine']['cpu']}, {cores} cores available, Python {result['machine']['python']}, numpy {result['machine']['numpy']}",
        f"- Load average (1, 5, 15 min) before: {result['load_average_before']}, after: {result['load_average_after']} "
        "(the cores are shared with other jobs; a load above the core count means the numbers are pessimistic)",
        f"- Setup: {result['setup']}",
        "",
        "| path | workers | images | seconds | images/s | images/s per worker | images per CPU-second | masks |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['path']} | {r['workers']} | {r['n']} | {r['seconds']} | {r['images_per_s']} | {r['images_per_s_per_worker']} "
            f"| {r['images_per_cpu_s'] or '-'} | {r['masks']} |"
            for r in rows
        ],
        "",
        "Images per CPU-second (1 worker only) counts the CPU time this process got, so it shows the speed of one "
        "uncontended core even when other jobs load the machine.",
        "",
        "Analytic / voxel speed ratio: "
        + ", ".join(f"{v}x on {w} worker(s)" for w, v in result["analytic_over_voxel"].items())
        + f"; {result['analytic_over_voxel_cpu']}x per CPU-second.",
        "",
        "Peak memory (RSS of one process generating everything, masks and COCO files included):",
        "",
        "| images | peak RSS (MiB) | seconds |",
        "|---|---|---|",
        *[f"| {m['n']} | {m['peak_rss_mib']} | {m['seconds']} |" for m in memory],
        "",
    ]
    md = "\n".join(lines)
    print(md)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "generation.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "generation.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
