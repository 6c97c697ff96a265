"""Where segm AP is lost: the masks or the boxes.

For each run folder: the per-wire mask IoU and box IoU of its final model on the synthetic test
split (:func:`nanowire_utils.maskrcnn.evaluate.matched_ious`), beside the ceiling of its mask
representation (:func:`nanowire_utils.maskrcnn.evaluate.mask_ceiling`: the reference masks
through the model's input scale and mask grid, scored as predictions).

Usage::

    python benchmarks/bench_mask_quality.py --data DATA --out OUT.json LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Writes OUT.json and prints a table. CPU, a few minutes per run for 100 test images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="synthetic dataset folder")
    p.add_argument("--out", required=True, help="JSON file written")
    p.add_argument("--test-images", type=int, default=100, help="first N test images (0: all)")
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    args = p.parse_args(argv)

    from nanowire_utils.maskrcnn.engine import load_predictor
    from nanowire_utils.maskrcnn.evaluate import mask_ceiling, matched_ious

    report = {
        "data": str(args.data),
        "test_images": args.test_images,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "runs": {},
    }
    for item in args.runs:
        label, _, run = item.partition("=")
        if not run:
            raise SystemExit(f"expected LABEL=RUN_DIR, got {item!r}")
        predictor = load_predictor(run)
        ceiling = mask_ceiling(args.data, "test", max_images=args.test_images, cfg=predictor.cfg)
        model = matched_ious(predictor, args.data, "test", max_images=args.test_images)
        report["runs"][label] = {
            "run": str(run),
            "iteration": predictor.iteration,
            "input_scale": ceiling["input_scale"],
            "mask_size": ceiling["mask_size"],
            "ceiling_segm_AP": ceiling["segm"]["AP"],
            "ceiling_iou": ceiling["iou"],
            "model_mask_iou": model["mask"],
            "model_box_iou": model["box"],
        }
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    head = "| run | ceiling segm AP | ceiling mask IoU | model mask IoU: mean / >0.75 / >0.9 | model box IoU: mean / >0.75 / >0.9 |"
    print(head + "\n|---|---|---|---|---|")
    for label, r in report["runs"].items():
        m, b = r["model_mask_iou"], r["model_box_iou"]
        print(
            f"| {label} | {r['ceiling_segm_AP']:.1f} | {r['ceiling_iou']['mean']:.3f} | "
            f"{m['mean']:.3f} / {m['above_0.75']:.2f} / {m['above_0.9']:.2f} | "
            f"{b['mean']:.3f} / {b['above_0.75']:.2f} / {b['above_0.9']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
