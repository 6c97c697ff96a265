"""Benchmark of the training stage: AP against iterations and minutes of a preset, speed of every preset.

What it measures (all on the machine it runs on, CPU unless CUDA is present):

1. ``curve``: trains a preset (default ``cpu``) for its own iteration schedule (or
   ``--max-iter``, with the LR drop kept at the same fraction), keeping a checkpoint every
   ``--every`` iterations, then evaluates COCO AP (bbox, segm) on the synthetic test split at
   each -> AP against iterations, with the training minutes each checkpoint took (the minutes
   depend on the machine and its load; the AP at an iteration does not).
2. ``speed``: training iterations per second of each preset on its own image sizes, a few
   iterations after a warm-up.
3. ``inference``: seconds per 512 x 512 image of the trained model on the CPU.

Outputs ``OUT/bench_training.json`` and ``OUT/ap_vs_iterations.png``.

Usage::

    nanowire-utils generate --n 1000 --out data/synthetic/cpu --preset paper --seed 0
    python benchmarks/bench_training.py --data data/synthetic/cpu --out benchmarks/results/training_v2 --every 300
    # quick check of the script itself:
    python benchmarks/bench_training.py --data /tmp/nw_smoke --out /tmp/bench --preset smoke --every 10 --quick

Speed belongs on a quiet machine: other processes on the same cores slow the iterations
(``uptime`` is recorded before and after).
"""

from __future__ import annotations

import argparse
import json
import os
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


def measure_speed(preset: str, data_dir, n_iter: int = 4, warmup: int = 1, device: str = "cpu", overrides=None) -> dict:
    """Training iterations per second of ``preset`` (batches read from ``data_dir``'s train split),
    with the preset's own precision (bf16 autocast on CPU when ``SOLVER.AMP.CPU_BF16``)."""
    import torch

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.loading import SampleStream, load_split
    from nanowire_utils.maskrcnn.model import build_model
    from nanowire_utils.maskrcnn.weights import scratch_safe

    cfg = TrainConfig.from_preset(preset, **{"DEVICE": device, **(overrides or {})})
    bf16 = device == "cpu" and cfg["SOLVER.AMP.CPU_BF16"]
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
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
        "cpu_bf16": bool(bf16),
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


def run_curve(data_dir, out: Path, preset: str, every: int, overrides: dict, max_iter=None, progress=True) -> dict:
    """Train ``preset`` once (checkpoint every ``every`` iterations), then the test AP of every
    checkpoint, with the iteration and the training minutes at which it was saved."""
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.engine import read_checkpoint, read_metrics, train
    from nanowire_utils.maskrcnn.evaluate import evaluate_split
    from nanowire_utils.maskrcnn.model import load_checkpoint

    run = out / f"run_{preset}"
    cfg = TrainConfig.from_preset(preset, **overrides)
    if max_iter:
        frac = [s / cfg["SOLVER.MAX_ITER"] for s in cfg["SOLVER.STEPS"]]
        cfg = cfg.replace(**{"SOLVER.MAX_ITER": max_iter, "SOLVER.STEPS": [max(1, round(f * max_iter)) for f in frac]})
    cfg = cfg.replace(**{"SOLVER.CHECKPOINT_PERIOD": every, "TEST.EVAL_PERIOD": 0})
    t0 = time.perf_counter()
    train(cfg, data_dir, run, resume=True, progress=progress)
    train_minutes = (time.perf_counter() - t0) / 60
    points = []
    for ckpt in sorted((run / "checkpoints").glob("model_*.pth")) + [run / "model_final.pth"]:
        saved = read_checkpoint(ckpt)
        model, _ = load_checkpoint(ckpt)
        m = evaluate_split(model, data_dir, "test", progress=False)
        points.append(
            {
                "iteration": int(saved["iteration"]),
                "minutes": round(float(saved.get("elapsed_s", 0.0)) / 60, 3),
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
        "preset": preset,
        "points": points,
        "train_wall_minutes": train_minutes,
        "config": cfg.to_dict(),
        "iters_per_s_mean": recs[-1]["iteration"] / recs[-1]["elapsed_s"] if recs else None,
        "model": model,
    }


def plot(points: list[dict], path: Path, title: str):
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), constrained_layout=True)
    its = [p["iteration"] for p in points]
    ax.plot(its, [p["segm_AP"] for p in points], "s-", label="segm AP")
    ax.plot(its, [p["bbox_AP"] for p in points], "o-", label="bbox AP")
    ax.plot(its, [p["segm_AP50"] for p in points], "s--", alpha=0.5, label="segm AP50")
    ax.axhline(90.487, color="gray", lw=0.8, ls=":", label="paper segm AP (GPU, 750 epochs)")
    ax.set(xlabel="iteration", ylabel="synthetic test AP (%)", ylim=(0, 100), title=title)
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda x: np.interp(x, its, [p["minutes"] for p in points]),
            lambda m: np.interp(m, [p["minutes"] for p in points], its),
        ),
    )
    top.set_xlabel("training minutes (this run, this machine)")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def score_real(run: Path, data_dir, tile=None) -> dict:
    """The final model of ``run`` on the three real images, as is and at the input scale
    estimated from each image (training width measured on ``data_dir``); score threshold 0.05;
    ``tile`` as in ``Predictor.predict`` (None: automatic, 0: whole images)."""
    from nanowire_utils.chapters.crossmodality import score_real_images
    from nanowire_utils.maskrcnn.engine import load_predictor

    predictor = load_predictor(run, device="auto", score_thresh=0.05)
    return score_real_images(predictor, data_dir, tile=tile)


def plot_compare(curves: dict, path: Path, title: str):
    """Segm and bbox AP against iterations of several curves (``{label: bench_training.json
    report}``) in one figure, with each curve's training minutes in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nanowire_utils.viz.training import plot_benchmark_curves

    fig = plot_benchmark_curves(curves, x="iteration", title=title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", help="synthetic dataset folder (train and test splits)")
    p.add_argument("--out", required=True, help="output folder (JSON, PNG, the run)")
    p.add_argument("--preset", default="cpu", help="training preset of the curve")
    p.add_argument("--every", type=int, default=300, help="checkpoint (and test AP) every this many iterations")
    p.add_argument("--max-iter", type=int, default=0, help="train this many iterations (0: the preset's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--quick", action="store_true", help="tiny settings to check the script: smoke speed only, 2 speed iterations"
    )
    p.add_argument("--skip-curve", action="store_true", help="only speed and inference")
    p.add_argument("--skip-speed", action="store_true", help="no per-preset speed check (curve and inference only)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override cpu-preset keys"
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="LABEL=JSON",
        help="only plot these runs' curves (bench_training.json files) into OUT/ap_compare.png",
    )
    p.add_argument(
        "--real",
        action="store_true",
        help="also score the final model on the three real images (as is and at the estimated scale)",
    )
    p.add_argument(
        "--real-only",
        action="store_true",
        help="only score OUT/run_PRESET's final model on the real images, into OUT/bench_training.json",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        help="real images: tiles of this many pixels (0: whole images; default: automatic, as chapter 6)",
    )
    args = p.parse_args(argv)
    if args.compare:
        curves = {}
        for item in args.compare:
            label, sep, path = item.partition("=")
            if not sep:
                p.error(f"--compare wants LABEL=JSON, got {item!r}")
            curves[label] = json.loads(Path(path).read_text())
        Path(args.out).mkdir(parents=True, exist_ok=True)
        plot_compare(curves, Path(args.out) / "ap_compare.png", "synthetic test AP at matched iterations")
        return 0
    if not args.data:
        p.error("--data is required (except with --compare)")
    if args.real and args.skip_curve:
        p.error("--real scores the model that the curve trains; with --skip-curve, use --real-only on an earlier run")
    if args.real_only:
        path = Path(args.out) / "bench_training.json"
        report = json.loads(path.read_text()) if path.is_file() else {}
        report["real"] = score_real(Path(args.out) / f"run_{args.preset}", args.data, tile=args.tile)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(json.dumps(report["real"]["real"], indent=1))
        return 0

    import torch

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.model import build_model
    from nanowire_utils.overrides import parse_assignments

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = parse_assignments(args.overrides)
    report = {
        "device": _device_info(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data": str(args.data),
        "command": " ".join(["python", *sys.argv]),
        "preset": args.preset,
        "every": args.every,
        "max_iter": args.max_iter,
        "overrides": overrides,
        "load_average_before": os.getloadavg(),
    }
    model = None
    if not args.skip_curve:
        curve = run_curve(args.data, out, args.preset, args.every, overrides, max_iter=args.max_iter or None)
        model = curve.pop("model")
        report["curve"] = curve
        report["load_average_after_curve"] = os.getloadavg()
        plot(
            curve["points"],
            out / "ap_vs_iterations.png",
            f"{args.preset} preset, {report['device'].get('cores', '?')} cores",
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    presets = ["smoke"] if args.quick else ["smoke", "cpu", "paper"]
    report["speed"] = (
        []
        if args.skip_speed
        else [measure_speed(pr, args.data, n_iter=2 if args.quick else 4, device=device) for pr in presets]
    )
    if model is None:
        model = build_model(TrainConfig.from_preset("cpu"))
    report["inference"] = measure_inference(model, n=2 if args.quick else 5)
    if args.real:
        report["real"] = score_real(out / f"run_{args.preset}", args.data, tile=args.tile)
    (out / "bench_training.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: report[k] for k in ("speed", "inference")}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
