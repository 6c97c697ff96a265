"""Scoring predictions against references: COCO AP with pycocotools (and, for real
images, foreground accuracy, precision/recall and comparison maps)."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np

#: pycocotools' ``stats`` order for bbox and segm evaluation.
COCO_METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_metrics(gt: dict, results: list[dict], iou_types=("bbox", "segm")) -> dict:
    """COCO AP of detection ``results`` against the ground truth ``gt``.

    Parameters
    ----------
    gt:
        A COCO instances dict (``images``, ``annotations``, ``categories``), masks as RLE
        or polygons.
    results:
        COCO results list: dicts with ``image_id``, ``category_id``, ``score``, ``bbox``
        (x, y, w, h) and ``segmentation`` (RLE with ``counts`` as str).
    iou_types:
        Which of ``"bbox"`` and ``"segm"`` to evaluate.

    Returns
    -------
    dict
        ``{iou_type: {"AP": ..., "AP50": ..., "AP75": ..., "APs": ..., "APm": ..., "APl": ...}}``
        in percent, as detectron2 and the paper report them; ``nan`` where undefined
        (no references, or no references in that size range). COCO's area ranges are
        used (small < 32^2 px, medium < 96^2 px, large above).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = {}
    gt = copy.deepcopy(gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    for ann in gt.get("annotations", []):
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            raise ValueError(f"annotation {ann.get('id')} has no 'area'; write it with the dataset writer")
    if not gt.get("annotations"):
        return {t: {k: math.nan for k in COCO_METRIC_NAMES} for t in iou_types}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        for iou_type in iou_types:
            if not results:
                out[iou_type] = {k: 0.0 for k in COCO_METRIC_NAMES}
                continue
            res = copy.deepcopy(results)
            if iou_type == "bbox":
                for r in res:
                    r.pop("segmentation", None)
            coco_dt = coco_gt.loadRes(res)
            ev = COCOeval(coco_gt, coco_dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats = ev.stats[:6]
            out[iou_type] = {
                k: (float(v) * 100.0 if v >= 0 else math.nan) for k, v in zip(COCO_METRIC_NAMES, stats)
            }
    return out
