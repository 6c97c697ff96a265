"""Scoring predictions against references: COCO AP with pycocotools (and, for real
images, foreground accuracy, precision/recall and comparison maps)."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np

from nanowire_utils.coco import encode_masks

#: pycocotools' ``stats`` order for bbox and segm evaluation.
COCO_METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_metrics(gt: dict, results: list[dict], iou_types=("bbox", "segm")) -> dict:
    """COCO AP of detection ``results`` against the ground truth ``gt``.

    Parameters
    ----------
    gt : dict
        A COCO instances dict (``images``, ``annotations``, ``categories``), masks as RLE
        or polygons; every annotation needs an ``area`` (pixels).
    results : list of dict
        COCO results list: dicts with ``image_id``, ``category_id``, ``score``, ``bbox``
        (x, y, w, h, pixels) and ``segmentation`` (RLE with ``counts`` as str).
    iou_types : sequence of str
        Which of ``"bbox"`` and ``"segm"`` to evaluate.

    Returns
    -------
    dict
        ``{iou_type: {"AP": ..., "AP50": ..., "AP75": ..., "APs": ..., "APm": ..., "APl": ...}}``
        in percent, as detectron2 and the paper report them; ``nan`` where undefined
        (no references, or no references in that size range). COCO's area ranges are
        used (small < 32^2 px, medium < 96^2 px, large above).

    Raises
    ------
    ValueError
        When a reference annotation has no ``area``.
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
                # nothing detected: AP is 0 where references exist, undefined where none do
                areas = np.array([a["area"] for a in gt["annotations"] if not a.get("iscrowd")], float)
                ranges = {"APs": (0, 32**2), "APm": (32**2, 96**2), "APl": (96**2, math.inf)}
                out[iou_type] = {k: (0.0 if len(areas) else math.nan) for k in ("AP", "AP50", "AP75")}
                for k, (lo, hi) in ranges.items():
                    out[iou_type][k] = 0.0 if np.any((areas >= lo) & (areas <= hi)) else math.nan
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
            out[iou_type] = {k: (float(v) * 100.0 if v >= 0 else math.nan) for k, v in zip(COCO_METRIC_NAMES, stats)}
    return out


# --------------------------------------------------------------------------- real-image metrics

#: Colours of :func:`comparison_map` (the paper's Figs. 6, 7, 9, 11): RGB uint8.
TP_COLOR, FN_COLOR, FP_COLOR = (0, 0, 255), (255, 0, 0), (0, 255, 0)


def _union(x, shape=None) -> np.ndarray:
    """Foreground (bool H x W) of Instances, an (N, H, W) stack or an (H, W) mask."""
    from nanowire_utils.instances import Instances

    if isinstance(x, Instances):
        if len(x) == 0:
            return np.zeros(x.image_shape, bool)
        return x.masks.any(axis=0)
    arr = np.asarray(x)
    if arr.ndim == 3:
        return arr.astype(bool).any(axis=0) if len(arr) else np.zeros(arr.shape[1:], bool)
    if arr.ndim == 2:
        return arr.astype(bool)
    raise ValueError(f"expected Instances, an (N, H, W) mask stack or an (H, W) mask, got shape {arr.shape}")


def _pair(pred, ref):
    p, r = _union(pred), _union(ref)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference image sizes differ: {p.shape} vs {r.shape}")
    return p, r


def foreground_accuracy(pred, ref) -> float:
    """The paper's segmentation accuracy (Eq. 3): TP / (TP + FP + FN) on the foreground.

    Pixels count as foreground where any instance mask covers them (union of masks), so this
    scores semantic segmentation and ignores how the foreground is split into instances.
    Background pixels that both call background (TN) do not enter. This is the Jaccard index
    (IoU) of the two foregrounds.

    Parameters
    ----------
    pred, ref : Instances or numpy.ndarray
        Instances, (N, H, W) mask stacks or (H, W) bool masks of the same image size.

    Returns
    -------
    float
        Fraction in [0, 1] (multiply by 100 for the paper's percent); ``nan`` when both
        foregrounds are empty.

    Raises
    ------
    ValueError
        When the image sizes differ or an input has another shape.
    """
    p, r = _pair(pred, ref)
    tp = np.count_nonzero(p & r)
    denom = np.count_nonzero(p | r)
    return tp / denom if denom else math.nan


def mask_iou(pred_masks: np.ndarray, ref_masks: np.ndarray) -> np.ndarray:
    """IoU matrix between two stacks of masks.

    Computed on run-length encodings with pycocotools (memory stays small for large images).

    Parameters
    ----------
    pred_masks : numpy.ndarray of bool, shape (P, H, W)
        Predicted masks.
    ref_masks : numpy.ndarray of bool, shape (R, H, W)
        Reference masks.

    Returns
    -------
    numpy.ndarray of float64, shape (P, R)
        Mask IoU of every pair, in [0, 1].

    Raises
    ------
    ValueError
        When the mask sizes differ.
    """
    from pycocotools import mask as mask_utils

    p, r = np.asarray(pred_masks, bool), np.asarray(ref_masks, bool)
    if len(p) == 0 or len(r) == 0:
        return np.zeros((len(p), len(r)), np.float64)
    if p.shape[1:] != r.shape[1:]:
        raise ValueError(f"mask sizes differ: {p.shape[1:]} vs {r.shape[1:]}")
    return np.asarray(mask_utils.iou(encode_masks(p), encode_masks(r), [0] * len(r)), dtype=np.float64).reshape(
        len(p), len(r)
    )


def match_instances(pred, ref, iou: float = 0.5) -> dict:
    """One-to-one matching of predicted to reference instances at a mask-IoU threshold.

    Predictions are taken in order of decreasing score (ties: original order); each is
    matched to the still unmatched reference with which it has the highest IoU, if that IoU
    is >= ``iou`` (COCO's greedy rule). Unmatched predictions are spurious (false positives),
    unmatched references missed (false negatives).

    Parameters
    ----------
    pred : Instances
        Predicted instances (their scores set the order).
    ref : Instances
        Reference instances of the same image.
    iou : float
        Mask-IoU threshold, in (0, 1].

    Returns
    -------
    dict
        ``precision`` = matched / predictions and ``recall`` = matched / references (fractions;
        ``nan`` when the denominator is 0), ``n_pred``, ``n_ref``, ``n_matched``,
        ``n_missed``, ``n_spurious``, and ``matches``: list of (pred index, ref index, IoU).

    Raises
    ------
    ValueError
        When ``iou`` is outside (0, 1] or the image sizes differ.
    """
    from nanowire_utils._checks import check_range

    check_range("iou", iou, 0, 1, low_inclusive=False)
    if pred.image_shape != ref.image_shape:
        raise ValueError(f"prediction and reference image sizes differ: {pred.image_shape} vs {ref.image_shape}")
    ious = mask_iou(pred.masks, ref.masks)
    order = np.argsort(-pred.scores, kind="stable")
    taken = np.zeros(len(ref), bool)
    matches = []
    for i in order:
        if len(ref) == 0:
            break
        cand = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            taken[j] = True
            matches.append((int(i), j, float(ious[i, j])))
    n_m = len(matches)
    return {
        "precision": n_m / len(pred) if len(pred) else math.nan,
        "recall": n_m / len(ref) if len(ref) else math.nan,
        "n_pred": len(pred),
        "n_ref": len(ref),
        "n_matched": n_m,
        "n_missed": len(ref) - n_m,
        "n_spurious": len(pred) - n_m,
        "matches": matches,
    }


def evaluate_instances(pred, ref, iou: float = 0.5) -> dict:
    """All metrics of the paper's Tables 2-4 for one image, in one flat dict.

    AP comes from pycocotools via :func:`coco_metrics` with COCO's size ranges: small
    < 32^2 px area, medium 32^2-96^2, large > 96^2 (the paper's text names 32^2 and 69^2,
    but its numbers come from the COCO evaluator, which uses 96^2). Areas are the mask
    areas of the references. Undefined values are ``nan``: every AP when there are no
    references, APs/APm/APl with no reference in that range, precision with no predictions.
    With references but no predictions AP is 0.

    Parameters
    ----------
    pred : Instances
        Predicted instances, with scores.
    ref : Instances
        Reference instances of the same image.
    iou : float
        Mask-IoU threshold of precision and recall, in (0, 1].

    Returns
    -------
    dict
        Keys (all in percent, as the paper reports them, except the counts):
        ``accuracy`` (foreground accuracy, Eq. 3), ``bbox_AP``, ``bbox_AP50``,
        ``bbox_AP75``, ``bbox_APs``, ``bbox_APm``, ``bbox_APl`` and the same for
        ``segm_``, ``precision`` and ``recall`` at mask IoU ``iou``
        (:func:`match_instances`), and ``n_pred``, ``n_ref``, ``n_matched``,
        ``n_missed``, ``n_spurious``.

    Raises
    ------
    ValueError
        When the image sizes differ or ``iou`` is outside (0, 1].
    """
    from nanowire_utils.real.annotations import instances_to_coco

    if pred.image_shape != ref.image_shape:
        raise ValueError(f"prediction and reference image sizes differ: {pred.image_shape} vs {ref.image_shape}")
    gt = instances_to_coco({"image": ref}, encoding="rle")
    res = instances_to_coco({"image": pred}, encoding="rle", results=True)
    ap = coco_metrics(gt, res, ("bbox", "segm"))
    m = match_instances(pred, ref, iou)
    acc = foreground_accuracy(pred, ref)
    out = {"accuracy": acc * 100.0}
    for t in ("bbox", "segm"):
        for k in COCO_METRIC_NAMES:
            out[f"{t}_{k}"] = ap[t][k]
    out["precision"] = m["precision"] * 100.0
    out["recall"] = m["recall"] * 100.0
    for k in ("n_pred", "n_ref", "n_matched", "n_missed", "n_spurious"):
        out[k] = m[k]
    return out


def comparison_map(pred, ref) -> np.ndarray:
    """Picture of foreground agreement, in the paper's colours.

    True positive pixels blue, false negatives (reference only) red, false positives
    (prediction only) green, true negatives black.

    Parameters
    ----------
    pred, ref : Instances or numpy.ndarray
        As in :func:`foreground_accuracy`.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        The RGB picture.

    Raises
    ------
    ValueError
        When the image sizes differ.
    """
    p, r = _pair(pred, ref)
    out = np.zeros((*p.shape, 3), np.uint8)
    out[p & r] = TP_COLOR
    out[~p & r] = FN_COLOR
    out[p & ~r] = FP_COLOR
    return out
