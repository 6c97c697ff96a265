"""Synthetic test AP of every checkpoint of a run folder (also of a run that is still training or
was stopped early), with the iteration and training minutes at which each was saved.

Usage::

    python benchmarks/eval_checkpoints.py RUN_DIR DATA_DIR OUT.json [--test-images N]

Writes a JSON list of ``{"checkpoint", "iteration", "minutes", "bbox_AP", ..., "segm_AP50"}`` and
prints one line per checkpoint. The loop speed (iterations per second) of the run, from its
``metrics.jsonl``, is added as ``iters_per_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--test-images", type=int, default=0, help="first N test images (0: all)")
    args = p.parse_args(argv)

    from nanowire_utils.maskrcnn.engine import read_checkpoint, read_metrics
    from nanowire_utils.maskrcnn.evaluate import evaluate_split
    from nanowire_utils.maskrcnn.model import load_checkpoint

    run = Path(args.run_dir)
    ckpts = sorted((run / "checkpoints").glob("model_*.pth"))
    if (run / "model_final.pth").exists():
        ckpts.append(run / "model_final.pth")
    if not ckpts:
        raise SystemExit(f"no checkpoints in {run}")
    train = [r for r in read_metrics(run) if r.get("kind") == "train"]
    points = []
    for ckpt in ckpts:
        saved = read_checkpoint(ckpt)
        model, _ = load_checkpoint(ckpt)
        m = evaluate_split(model, args.data_dir, "test", max_images=args.test_images, progress=False)
        points.append(
            {
                "checkpoint": ckpt.name,
                "iteration": int(saved["iteration"]),
                "minutes": round(float(saved.get("elapsed_s", 0.0)) / 60, 2),
                **{f"{t}_{k}": round(m[t][k], 2) for t in ("bbox", "segm") for k in ("AP", "AP50", "AP75")},
                "test_images": m["n_images"],
            }
        )
        print(json.dumps(points[-1]), flush=True)
    out = {
        "run": str(run),
        "config": saved["config"],
        "iters_per_s": train[-1]["iteration"] / train[-1]["elapsed_s"] if train else None,
        "iterations_logged": train[-1]["iteration"] if train else 0,
        "points": points,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
