"""``nanowire-utils train``: train Mask R-CNN on a synthetic dataset (resumes an existing run).

torch is imported only inside the handler, so ``nanowire-utils --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json


def _minutes(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 minutes, got {text}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train Mask R-CNN on a synthetic dataset (resumes when --out holds a run)",
        description=(
            "Train Mask R-CNN (torchvision engine, or detectron2 on a GPU) on DATA's train split, "
            "with periodic validation on its val split. Writes OUT/config.json, OUT/checkpoints/, "
            "OUT/model_final.pth, OUT/last_checkpoint and OUT/metrics.jsonl. When OUT already holds "
            "a checkpoint, training resumes from it (raise SOLVER.MAX_ITER to continue a finished run). "
            "Several GPUs: torchrun --nproc_per_node N -m nanowire_utils.cli train ..."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="synthetic dataset folder (from nanowire-utils generate)")
    p.add_argument("--out", required=True, help="run folder for checkpoints, config.json and metrics.jsonl")
    p.add_argument(
        "--preset",
        default="auto",
        help="training preset: smoke (seconds, CI), cpu (about 30 min on 2 cores, from scratch), cpu-long "
        "(cpu four times longer, about 2 h), cpu-finetune "
        "(COCO weights on a CPU), paper (GPU, the paper's settings), auto (paper with CUDA, else cpu-finetune "
        "when COCO weights can be had, else cpu)",
    )
    p.add_argument(
        "--config", default=None, help="start from this config.json (e.g. another run's) instead of a preset"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a detectron2-style key, repeatable: SOLVER.BASE_LR=0.01, MODEL.RPN.IOU_THRESHOLDS=[0.3,0.6] (Python literals)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "torchvision", "detectron2"),
        default=None,
        help="training engine (default: the preset's)",
    )
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="device (default: the preset's, auto)"
    )
    p.add_argument(
        "--max-minutes",
        type=_minutes,
        default=None,
        help="wall-clock budget: stop cleanly with a final checkpoint after M minutes",
    )
    p.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="train for this many epochs (the paper's unit) instead of SOLVER.MAX_ITER",
    )
    p.add_argument("--no-resume", action="store_true", help="refuse to continue when --out already holds a run")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration as JSON and exit")
    p.set_defaults(func=run_train)


def build_config(args):
    """The TrainConfig the arguments describe (preset or --config, then --engine/--device/... then --set)."""
    from nanowire_utils.maskrcnn.config import TrainConfig

    if args.config:
        cfg = TrainConfig.from_json(args.config)
    else:
        cfg = TrainConfig.from_preset(args.preset)
    if args.engine:
        cfg.set("ENGINE", args.engine)
    if args.device:
        cfg.set("DEVICE", args.device)
    if args.max_minutes is not None:
        cfg.set("SOLVER.MAX_MINUTES", args.max_minutes)
    if args.epochs is not None:
        cfg.set("SOLVER.EPOCHS", args.epochs)
    for item in args.overrides:
        cfg.set(item)
    return cfg.validate()


def run_train(args) -> int:
    import logging

    cfg = build_config(args)
    if args.show_config:
        print(cfg.to_json())
        return 0
    from nanowire_utils.maskrcnn.engine import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = train(cfg, args.data, args.out, resume=not args.no_resume, progress=not args.no_progress)
    summary = {
        "run_dir": result.run_dir,
        "iterations": result.iterations,
        "stopped_by": result.stopped_by,
        "minutes": round(result.elapsed_s / 60, 2),
        "final_checkpoint": result.final_checkpoint,
        "weights": result.weights.get("source"),
    }
    if result.val_metrics:
        summary["val_AP_bbox"] = round(result.val_metrics["bbox"]["AP"], 2)
        summary["val_AP_segm"] = round(result.val_metrics["segm"]["AP"], 2)
    print(json.dumps(summary))
    return 0
