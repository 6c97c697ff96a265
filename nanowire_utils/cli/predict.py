"""``nanowire-utils predict`` and ``nanowire-utils evaluate``: run a trained model.

predict:   nanowire-utils predict RUN_DIR IMAGE... --out DIR [--modality M] [--score-thresh S] [--tile N]
           writes DIR/results.json (COCO results: RLE masks, xywh boxes, scores), DIR/images.json
           (which image id is which file) and DIR/<stem>_overlay.png per image.
evaluate:  nanowire-utils evaluate RUN_DIR --data DIR [--split test]
           prints COCO bbox/segm AP, AP50, AP75, APs, APm, APl and the paper's Table 1 columns,
           and saves them to RUN_DIR/eval_<split>.json.

torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from nanowire_utils.cli._argtypes import fraction
from nanowire_utils.paper import MODALITIES

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _nonneg_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, got {text!r}") from None
    if value < 0 or 0 < value < 32:
        raise argparse.ArgumentTypeError(f"--tile must be 0 (no tiling) or at least 32 px, got {value}")
    return value


def register(subparsers) -> None:
    """Add the ``predict`` and ``evaluate`` sub-commands."""
    p = subparsers.add_parser(
        "predict",
        help="segment images with a trained model (COCO results JSON + overlay PNGs)",
        description="Segment nanowires in images with a trained run. Writes OUT/results.json (COCO "
        "results with RLE masks, xywh boxes and scores; image ids 1..n in the order given), "
        "OUT/images.json (id -> file) and one OUT/<name>_overlay.png per image.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run folder (or a .pth checkpoint)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, TIFF, JPEG) or folders of them")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument(
        "--modality",
        choices=MODALITIES,
        default=None,
        help="preprocess as this kind of real image (default: scale by data type only)",
    )
    p.add_argument(
        "--score-thresh",
        type=fraction,
        default=0.5,
        metavar="S",
        help="keep instances scoring at least S in [0, 1] (default 0.5, for pictures and "
        "counts; use the run's low test threshold, e.g. 0.05, for COCO AP)",
    )
    p.add_argument(
        "--tile",
        type=_nonneg_int,
        default=None,
        metavar="N",
        help="tile size in pixels for large images (0: never tile; default: tile images "
        "over 1.5x the training size with tiles of the training size)",
    )
    p.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay PNGs")
    p.set_defaults(func=run_predict)

    e = subparsers.add_parser(
        "evaluate",
        help="COCO AP of a trained model on a synthetic split (the paper's Table 1 metrics)",
        description="Evaluate a trained run on DATA/annotations/instances_<split>.json: prints bbox and "
        "segm AP, AP50, AP75, APs, APm, APl (percent) and saves them to RUN_DIR/eval_<split>.json.",
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="training run folder")
    e.add_argument("--data", required=True, metavar="DIR", help="synthetic data set folder (nanowire-utils generate)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default test)")
    e.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    e.add_argument(
        "--score-thresh",
        type=fraction,
        default=None,
        metavar="S",
        help="score threshold (default: the run's, low as COCO AP wants)",
    )
    e.set_defaults(func=run_evaluate)


def _expand_images(items) -> list[Path]:
    from nanowire_utils.maskrcnn.inference import list_images

    paths = []
    for item in items:
        paths.extend(list_images(item))
    return paths


def run_predict(args) -> int:
    """Handler of ``nanowire-utils predict``."""
    from nanowire_utils.maskrcnn.engine import load_predictor
    from nanowire_utils.maskrcnn.inference import predict_folder

    paths = _expand_images(args.images)
    predictor = load_predictor(args.run_dir, device=args.device, score_thresh=args.score_thresh)
    out = predict_folder(
        predictor, paths, out_dir=args.out, modality=args.modality, tile=args.tile, overlays=not args.no_overlay
    )
    n = sum(len(v) for v in out.values())
    print(f"{len(out)} image(s), {n} instance(s) -> {Path(args.out) / 'results.json'}")
    for path, inst in out.items():
        print(f"  {path.name}: {len(inst)} instances")
    return 0


def format_metrics(metrics: dict) -> str:
    """Text table of ``{"bbox": {...}, "segm": {...}}`` COCO metrics (percent)."""
    lines = ["        " + "".join(f"{m:>8}" for m in METRICS)]
    for kind in ("bbox", "segm"):
        row = metrics.get(kind, {})
        cells = []
        for m in METRICS:
            v = row.get(m, math.nan)
            cells.append(f"{'-':>8}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:8.2f}")
        lines.append(f"{kind:<8}" + "".join(cells))
    return "\n".join(lines)


def _table1_line(run_dir, metrics) -> str | None:
    try:
        from nanowire_utils.maskrcnn.evaluate import table1_row
    except ImportError:
        return None
    try:
        row = table1_row(metrics, run_dir)
    except Exception as err:  # a run folder without the provenance Table 1 needs
        return f"(no Table 1 row: {err})"
    if not isinstance(row, dict):
        return str(row)
    keys = list(row)
    widths = [max(len(str(k)), len(_fmt(row[k]))) for k in keys]
    head = " | ".join(str(k).rjust(w) for k, w in zip(keys, widths))
    vals = " | ".join(_fmt(row[k]).rjust(w) for k, w in zip(keys, widths))
    return f"{head}\n{vals}"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def evaluate_run(run_dir, data_dir, split="test", device="auto", score_thresh=None, progress=True) -> dict:
    """COCO metrics ``{"bbox": {...}, "segm": {...}}`` (percent) of a run on a data split, with
    the run's own engine (:func:`nanowire_utils.maskrcnn.engine.load_predictor`) and
    :func:`nanowire_utils.maskrcnn.evaluate.evaluate_split`."""
    from nanowire_utils.maskrcnn.engine import load_predictor
    from nanowire_utils.maskrcnn.evaluate import evaluate_split

    data_dir = Path(data_dir)
    ann = data_dir / "annotations" / f"instances_{split}.json"
    if not ann.is_file():
        raise FileNotFoundError(
            f"no annotations {ann}: generate the data set first (nanowire-utils generate --out {data_dir})"
        )
    predictor = load_predictor(run_dir, device=device, score_thresh=score_thresh)
    return evaluate_split(predictor.predict, data_dir, split, progress=progress)


def run_evaluate(args) -> int:
    """Handler of ``nanowire-utils evaluate``."""
    from nanowire_utils.coco import write_json_atomic

    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(
            f"run folder {run_dir} does not exist: train first with nanowire-utils train --out {run_dir}"
        )
    metrics = evaluate_run(run_dir, args.data, args.split, device=args.device, score_thresh=args.score_thresh)
    print(f"COCO metrics of {run_dir} on {args.data} ({args.split}), percent:")
    print(format_metrics(metrics))
    if metrics.get("n_images"):
        print(f"{metrics['n_images']} images, {metrics.get('seconds_per_image', float('nan')):.3f} s per image")
    line = _table1_line(run_dir, metrics)
    if line and not line.startswith("("):
        print("\nAs a row of the paper's Table 1:")
    if line:
        print(line)
    out = run_dir / f"eval_{args.split}.json" if run_dir.is_dir() else run_dir.with_name(f"eval_{args.split}.json")
    write_json_atomic(out, {"split": args.split, "data": str(args.data), **{k: metrics[k] for k in metrics}})
    print(f"saved {out}")
    return 0
