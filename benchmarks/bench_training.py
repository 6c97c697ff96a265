"""Benchmark of the training stage: AP vs minutes of the ``cpu`` preset, speed of every preset.

What it measures (all on the machine it runs on, CPU unless CUDA is present):

1. ``curve``: trains the ``cpu`` preset for ``--minutes`` of wall clock (its LR drop falls at
   80 % of that budget), keeping a checkpoint every ``--every`` minutes, then evaluates COCO
   AP (bbox, segm) on the synthetic test split at each of them -> AP vs minutes.
2. ``speed``: training iterations per second of each preset (smoke, cpu, paper) on their
   own image sizes, a few iterations after a warm-up.
3. ``inference``: seconds per 512 x 512 image of the trained model (or the cpu preset's
   architecture) on the CPU.

Outputs ``OUT/bench_training.json`` and ``OUT/ap_vs_minutes.png``.

Usage::

    nanowire-utils generate --n 1000 --out /tmp/nw_cpu --preset paper
    python benchmarks/bench_training.py --data /tmp/nw_cpu --out benchmarks/results/training \\
        --minutes 30 --every 5
    # quick check of the script itself (seconds):
    python benchmarks/bench_training.py --data /tmp/nw_cpu --out /tmp/bench --minutes 0.5 --every 0.25 --quick

The long run belongs on a quiet machine: other processes on the same cores slow the
iterations and so lower the AP reached per minute.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path


def _device_info() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(),
    }
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import os

        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def measure_speed(preset: str, data_dir, n_iter: int = 4, warmup: int = 1, device: str = "cpu") -> dict:
    """Training iterations per second of ``preset`` (batches read from ``data_dir``'s train split)."""
    import torch

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.loading import SampleStream, load_split
    from nanowire_utils.maskrcnn.model import build_model
    from nanowire_utils.maskrcnn.weights import scratch_safe

    cfg = TrainConfig.from_preset(preset, **{"DEVICE": device})
    if cfg["MODEL.WEIGHTS"] == "coco":  # speed does not depend on the initial weights; never download here
        cfg = scratch_safe(cfg)
    _, recs = load_split(data_dir, "train")
    torch.manual_seed(0)
    model = build_model(cfg).to(device).train()
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=cfg["SOLVER.BASE_LR"] * 0.1, momentum=0.9
    )
    stream = SampleStream(recs, cfg, 0)
    b = cfg["SOLVER.IMS_PER_BATCH"]
    times = []
    for i in range(warmup + n_iter):
        batch = [stream[i * b + k] for k in range(b)]
        images = [x[0].to(device) for x in batch]
        targets = [{k: v.to(device) for k, v in x[1].items()} for x in batch]
        t = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    s = sorted(times[warmup:])[len(times[warmup:]) // 2]
    return {
        "preset": preset,
        "arch": model.nanowire_arch,
        "ims_per_batch": b,
        "s_per_iter": s,
        "iters_per_s": 1.0 / s,
        "images_per_s": b / s,
        "train_size": cfg["INPUT.CROP.SIZE"] if cfg["INPUT.CROP.ENABLED"] else cfg["INPUT.MIN_SIZE_TRAIN"],
    }


def measure_inference(model, n: int = 5, size: int = 512) -> dict:
    """Seconds per ``size`` x ``size`` gray image (median of ``n`` after one warm-up), CPU."""
    import torch

    model = model.to("cpu").eval()
    img = torch.rand(3, size, size)
    times = []
    with torch.inference_mode():
        for _ in range(n + 1):
            t = time.perf_counter()
            model([img])
            times.append(time.perf_counter() - t)
    return {"size": size, "s_per_image": sorted(times[1:])[n // 2]}


def run_curve(data_dir, out: Path, minutes: float, every: float, overrides: dict, progress: bool = True) -> dict:
    """Train the cpu preset for ``minutes`` (one schedule), pausing every ``every`` minutes to copy a
    snapshot; then test AP of each snapshot."""
    import shutil

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.engine import read_metrics, train
    from nanowire_utils.maskrcnn.evaluate import evaluate_split
    from nanowire_utils.maskrcnn.model import load_checkpoint

    run = out / "run_cpu"
    snaps = run / "snapshots"
    cfg = TrainConfig.from_preset("cpu", **{"SOLVER.MAX_MINUTES": minutes}, **overrides)
    t0 = time.perf_counter()
    taken = []
    k = 1
    while True:
        stop = min(minutes, k * every)
        result = train(
            cfg, data_dir, run, resume=True, progress=progress, stop_at_minutes=stop if stop < minutes else None
        )
        snaps.mkdir(parents=True, exist_ok=True)
        snap = snaps / f"model_{result.elapsed_s / 60:06.2f}min.pth"
        shutil.copy(run / "model_final.pth", snap)
        taken.append((result, snap))
        if result.stopped_by != "stop_at_minutes":
            break
        k += 1
    train_minutes = (time.perf_counter() - t0) / 60
    points = []
    for result, snap in taken:
        model, _ = load_checkpoint(snap)
        m = evaluate_split(model, data_dir, "test", progress=False)
        points.append(
            {
                "minutes": round(result.elapsed_s / 60, 3),
                "iteration": result.iterations,
                "bbox_AP": m["bbox"]["AP"],
                "bbox_AP50": m["bbox"]["AP50"],
                "segm_AP": m["segm"]["AP"],
                "segm_AP50": m["segm"]["AP50"],
                "test_images": m["n_images"],
            }
        )
        print(json.dumps(points[-1]), flush=True)
    recs = [r for r in read_metrics(run) if r.get("kind") == "train"]
    return {
        "points": points,
        "train_wall_minutes": train_minutes,
        "config": cfg.to_dict(),
        "iters_per_s_mean": recs[-1]["iteration"] / recs[-1]["elapsed_s"] if recs else None,
        "model": model,
    }


def plot(points: list[dict], path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    mins = [p["minutes"] for p in points]
    ax.plot(mins, [p["segm_AP"] for p in points], "s-", label="segm AP")
    ax.plot(mins, [p["bbox_AP"] for p in points], "o-", label="bbox AP")
    ax.plot(mins, [p["segm_AP50"] for p in points], "s--", alpha=0.5, label="segm AP50")
    ax.axhline(90.487, color="gray", lw=0.8, ls=":", label="paper segm AP (GPU, 750 epochs)")
    ax.set(xlabel="training minutes", ylabel="synthetic test AP (%)", ylim=(0, 100), title=title)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="synthetic dataset folder (train and test splits)")
    p.add_argument("--out", required=True, help="output folder (JSON, PNG, the run)")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget of the cpu preset")
    p.add_argument("--every", type=float, default=5.0, help="evaluate test AP every this many minutes")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--quick", action="store_true", help="tiny settings to check the script: smoke speed only, 2 speed iterations"
    )
    p.add_argument("--skip-curve", action="store_true", help="only speed and inference")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override cpu-preset keys"
    )
    args = p.parse_args(argv)

    import torch

    from nanowire_utils.maskrcnn.config import TrainConfig, parse_value
    from nanowire_utils.maskrcnn.model import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.overrides)}
    report = {
        "device": _device_info(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data": str(args.data),
        "minutes": args.minutes,
        "every": args.every,
        "overrides": overrides,
    }
    model = None
    if not args.skip_curve:
        curve = run_curve(args.data, out, args.minutes, args.every, overrides)
        model = curve.pop("model")
        report["curve"] = curve
        plot(curve["points"], out / "ap_vs_minutes.png", f"cpu preset, {report['device'].get('cores', '?')} cores")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    presets = ["smoke"] if args.quick else ["smoke", "cpu", "paper"]
    report["speed"] = [measure_speed(pr, args.data, n_iter=2 if args.quick else 4, device=device) for pr in presets]
    if model is None:
        model = build_model(TrainConfig.from_preset("cpu"))
    report["inference"] = measure_inference(model, n=2 if args.quick else 5)
    (out / "bench_training.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: report[k] for k in ("speed", "inference")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
