"""Benchmark: the built-in torchvision engine against the detectron2 engine, same configuration.

Both engines train the ``cpu`` preset (ResNet-18 + FPN 128, light heads, batch 4; the results
record the preset as it was when they ran) from scratch on the same synthetic data for the same number of iterations, one after the
other, in this process, with the same threads. Then each run's model predicts the same
synthetic test split through the engine interface (``engine.load_predictor``) and is scored by
the same code (``maskrcnn.evaluate.evaluate_split``): COCO AP for boxes and masks.

What differs between the two runs is only what differs between the engines (see the
``nanowire_utils.maskrcnn.detectron2_engine`` docstring: background rows of the predictors,
ROIAlign variant, L1 vs smooth L1, each engine's own data pipeline and random streams).
Changes from the preset, for both: ``SOLVER.MAX_ITER`` = ``--iters``, the LR drop at 80 % of it,
a shorter warm-up (``--warmup``), no time budget (matched iterations), no periodic
validation and no val split (the loop timings hold training only).

Iterations per second depend on the machine's load; AP at matched iterations does not (only on
the seeds). The load average is recorded before and after each run.

Usage::

    nanowire-utils generate --n 1000 --preset paper --seed 0 --out /work/expdata/cpu
    nohup python benchmarks/bench_engines.py --data /work/expdata/cpu --iters 200 \\
        --out benchmarks/results/engines > /tmp/bench_engines.log 2>&1 &
    # quick check of the script (a minute): --iters 4 --test-images 4 --out /tmp/bench_engines

Writes ``OUT/bench_engines.json`` (after each engine, so a partial run keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def train_only_view(data_dir: Path, view: Path) -> Path:
    """A folder with ``data_dir``'s train and test splits only (symlinks), so that neither
    engine validates on a val split while the loop is timed."""
    for split in ("train", "test"):
        (view / "annotations").mkdir(parents=True, exist_ok=True)
        (view / "images").mkdir(parents=True, exist_ok=True)
        for src, dst in (
            (data_dir / "annotations" / f"instances_{split}.json", view / "annotations" / f"instances_{split}.json"),
            (data_dir / "images" / split, view / "images" / split),
        ):
            if not src.exists():
                raise FileNotFoundError(f"{src} is missing: generate the data first (see the module docstring)")
            if not dst.exists():
                dst.symlink_to(src.resolve())
    return view


def bench_config(iters: int, warmup: int, engine: str, seed: int):
    from nanowire_utils.maskrcnn.config import TrainConfig

    return TrainConfig.from_preset(
        "cpu",
        {
            "ENGINE": engine,
            "DEVICE": "cpu",
            "SEED": seed,
            "SOLVER.MAX_ITER": iters,
            "SOLVER.STEPS": [max(1, int(0.8 * iters))],
            "SOLVER.WARMUP_ITERS": min(warmup, iters // 2),
            "SOLVER.MAX_MINUTES": 0.0,
            "SOLVER.CHECKPOINT_PERIOD": max(iters, 1),
            "TEST.EVAL_PERIOD": 0,
            # the detectron2 engine has no bfloat16 autocast on CPU: both in float32
            "SOLVER.AMP.CPU_BF16": False,
        },
    )


def run_engine(engine: str, data: Path, work: Path, iters: int, warmup: int, seed: int, test_images: int) -> dict:
    from nanowire_utils.maskrcnn import engine as eng
    from nanowire_utils.maskrcnn.evaluate import evaluate_split

    cfg = bench_config(iters, warmup, engine, seed)
    out = work / engine
    rec = {"engine": engine, "iterations_asked": iters, "load_before": load_average()}
    t0 = time.perf_counter()
    res = eng.train(cfg, data, out, resume=False, progress=False)
    rec["train_call_s"] = round(time.perf_counter() - t0, 1)
    rec["loop_s"] = round(res.elapsed_s, 1)
    rec["iterations"] = res.iterations
    rec["iters_per_s"] = round(res.iterations / res.elapsed_s, 4)
    rec["s_per_iter"] = round(res.elapsed_s / max(1, res.iterations), 3)
    rec["weights"] = res.weights.get("source")
    rec["load_after_train"] = load_average()
    pred = eng.load_predictor(out, device="cpu")
    m = evaluate_split(pred, data, "test", max_images=test_images, progress=False)
    rec["test_images"] = m["n_images"]
    rec["eval_s_per_image"] = round(m["seconds_per_image"], 3)
    for task in ("bbox", "segm"):
        rec[task] = {k: round(float(v), 2) for k, v in m[task].items()}
    rec["config_data"] = json.loads((out / "config.json").read_text()).get("_data")
    return rec


def write_readme(result: dict, out: Path) -> Path:
    """``OUT/README.md``: the figures of ``bench_engines.json`` as a table, with the command."""
    rows = [
        "| engine | iterations | loop (s) | s / iteration | iterations / s | load avg before -> after | "
        "test bbox AP / AP50 | test segm AP / AP50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        rows.append(
            f"| {r['engine']} | {r['iterations']} | {r['loop_s']} | {r['s_per_iter']} | {r['iters_per_s']} | "
            f"{r['load_before'][0]} -> {r['load_after_train'][0]} | {r['bbox']['AP']} / {r['bbox']['AP50']} | "
            f"{r['segm']['AP']} / {r['segm']['AP50']} |"
        )
    m = result["machine"]
    text = (
        "# The two engines on the `cpu` preset: speed and AP at matched iterations\n\n"
        f"Command: `{result['command']}` (data: `{result['data']}`, commit {result['git_commit']}, "
        f"{result['started']} to {result.get('finished', '(unfinished)')}).\n\n"
        f"Machine: {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}. "
        "Both engines train the `cpu` preset from scratch (see `benchmarks/bench_engines.py` for the few "
        "changes, the same for both) one after the other; the test AP is computed by the same code "
        f"(`evaluate_split` on each run's `engine.load_predictor`) on the first {result['runs'][0]['test_images']} "
        "synthetic test images.\n\n" + "\n".join(rows) + "\n"
    )
    path = out / "README.md"
    path.write_text(text)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/expdata/cpu", help="synthetic data set (the cpu preset's, 1000 images)")
    ap.add_argument("--out", default="benchmarks/results/engines", help="folder for bench_engines.json")
    ap.add_argument("--work", default="/tmp/bench_engines", help="folder for the two run folders (deleted first)")
    ap.add_argument("--iters", type=int, default=200, help="training iterations of each engine")
    ap.add_argument("--warmup", type=int, default=50, help="LR warm-up iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-images", type=int, default=0, help="test images scored (0: the whole test split)")
    ap.add_argument("--engines", default="torchvision,detectron2")
    args = ap.parse_args(argv)

    import shutil

    import torch

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    data = train_only_view(Path(args.data), work / "data")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    result = {
        "command": "python benchmarks/bench_engines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": str(Path(args.data).resolve()),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cores": len(os.sched_getaffinity(0)),
            "cpu": platform.processor() or platform.machine(),
        },
        "git_commit": commit,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "runs": [],
    }
    for engine in args.engines.split(","):
        print(f"== {engine}: {args.iters} iterations (load {load_average()})", flush=True)
        rec = run_engine(engine, data, work, args.iters, args.warmup, args.seed, args.test_images)
        print(json.dumps(rec), flush=True)
        result["runs"].append(rec)
        (out / "bench_engines.json").write_text(json.dumps(result, indent=1) + "\n")
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (out / "bench_engines.json").write_text(json.dumps(result, indent=1) + "\n")
    print(write_readme(result, out).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
