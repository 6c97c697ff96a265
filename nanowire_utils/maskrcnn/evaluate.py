"""COCO AP of a trained model on a split of a synthetic dataset, and Table 1 rows.

Engine-agnostic: :func:`evaluate_split` takes a torchvision model, a run folder or checkpoint,
or any predictor (a callable ``image -> Instances``, such as a
:class:`nanowire_utils.maskrcnn.engine.Predictor` of either engine).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from nanowire_utils.coco import instances_to_coco_results
from nanowire_utils.maskrcnn.config import TrainConfig, iterations_to_epochs
from nanowire_utils.maskrcnn.loading import load_split, read_image, to_tensor_image
from nanowire_utils.maskrcnn.model import outputs_to_instances


def _predict_batches(model, images: list[np.ndarray], device, batch_size: int = 2):
    import torch

    outs = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            batch = [to_tensor_image(im).to(device) for im in images[i : i + batch_size]]
            outs.extend({k: v.cpu() for k, v in o.items()} for o in model(batch))
    return outs


def _subset_gt(coco: dict, image_ids) -> dict:
    ids = set(image_ids)
    return {
        "images": [im for im in coco["images"] if im["id"] in ids],
        "annotations": [a for a in coco["annotations"] if a["image_id"] in ids],
        "categories": coco.get("categories") or [{"id": 1, "name": "nanowire"}],
    }


def _split_records(data_dir, split: str, max_images: int = 0):
    """The COCO dict and the records of a split, the first ``max_images`` only (0: all)."""
    coco, records = load_split(data_dir, split)
    return coco, (records[:max_images] if max_images else records)


def _annotated(records):
    """``(record, reference Instances)`` of the records that hold at least one wire."""
    from nanowire_utils.maskrcnn.loading import record_instances

    for rec in records:
        ref = record_instances(rec)
        if len(ref):
            yield rec, ref


def evaluate_split(
    predictor, data_dir, split: str = "test", max_images: int = 0, progress: bool = True, device=None
) -> dict:
    """COCO AP (bbox and segm, percent) of a model on one split of a synthetic dataset.

    Parameters
    ----------
    predictor : torch.nn.Module or str or os.PathLike or callable
        A torchvision detection model (``nn.Module``), a run directory or checkpoint path
        (a torchvision run loaded with :func:`~nanowire_utils.maskrcnn.model.load_checkpoint`,
        another engine's with :func:`~nanowire_utils.maskrcnn.engine.load_predictor`), or a function
        ``image (H, W) float in [0, 1] -> Instances`` (e.g. an inference Predictor).
    data_dir : str or os.PathLike
        The dataset folder (synthetic layout).
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    max_images : int
        Evaluate the first N images only (0: all).
    progress : bool
        Show a tqdm progress bar.
    device : str or torch.device or None
        Where a model runs; None: where its parameters are (``"auto"`` for another
        engine's run).

    Returns
    -------
    dict
        ``{"bbox": {"AP", "AP50", ...}, "segm": {...}, "n_images": n, "split": split,
        "seconds_per_image": s}``; AP in percent, wall-clock seconds.

    Raises
    ------
    FileNotFoundError
        When the dataset, the split or a checkpoint is missing.
    ValueError
        When the split or a checkpoint is invalid.
    """
    from tqdm.auto import tqdm

    from nanowire_utils.real.evaluation import coco_metrics

    coco, records = _split_records(data_dir, split, max_images)
    if isinstance(predictor, (str, os.PathLike)):
        from nanowire_utils.maskrcnn.engine import checkpoint_engine, load_predictor, read_checkpoint

        if checkpoint_engine(read_checkpoint(predictor), predictor) == "torchvision":
            from nanowire_utils.maskrcnn.model import load_checkpoint

            predictor, _ = load_checkpoint(predictor)
        else:  # another engine's run: its own predictor
            predictor = load_predictor(predictor, device=device or "auto")
    results = []
    t0 = time.perf_counter()
    if callable(predictor) and not hasattr(predictor, "state_dict"):
        for rec in tqdm(records, desc=f"evaluate {split}", disable=not progress, leave=False):
            inst = predictor(read_image(rec.path))
            results += instances_to_coco_results(inst, rec.image_id)
    else:
        import torch

        model = predictor.module if hasattr(predictor, "module") else predictor
        dev = device or next(model.parameters()).device
        was_training = model.training
        score = float(model.roi_heads.score_thresh)
        for i in tqdm(range(0, len(records), 2), desc=f"evaluate {split}", disable=not progress, leave=False):
            chunk = records[i : i + 2]
            outs = _predict_batches(model, [read_image(r.path) for r in chunk], torch.device(dev))
            for rec, out in zip(chunk, outs):
                results += instances_to_coco_results(outputs_to_instances(out, score_thresh=score), rec.image_id)
        model.train(was_training)
    dt = (time.perf_counter() - t0) / max(1, len(records))
    metrics = coco_metrics(_subset_gt(coco, [r.image_id for r in records]), results, ("bbox", "segm"))
    metrics.update(n_images=len(records), split=split, seconds_per_image=dt)
    return metrics


def table1_row(metrics: dict, cfg, n_images: int | None = None) -> dict:
    """One row laid out like the paper's Table 1.

    Epochs are computed from the iterations actually run when the run directory records
    them.

    Parameters
    ----------
    metrics : dict
        From :func:`evaluate_split` (``metrics["bbox"]["AP"]``, ``metrics["segm"]["AP"]``).
    cfg : TrainConfig or str or os.PathLike
        The run's configuration, or its run directory (its config.json).
    n_images : int or None
        The data set size (default: the images recorded in config.json, else
        ``DATASET.N_IMAGES``).

    Returns
    -------
    dict
        ``Epochs``, ``Dataset size``, ``Learning rate``, ``ROI head``, ``IoU thr``,
        ``NMS``, ``AP bbox``, ``AP segm`` (AP in percent).

    Raises
    ------
    FileNotFoundError
        When ``cfg`` is a folder without config.json.
    """
    extra = {}
    if isinstance(cfg, (str, os.PathLike)):
        cfg = TrainConfig.from_json(Path(cfg) / "config.json")
    extra = getattr(cfg, "extra", {}) or {}
    data = extra.get("_data", {})
    n_train = data.get("n_train") or cfg["DATASET.N_IMAGES"]
    n = n_images or data.get("n_images") or cfg["DATASET.N_IMAGES"]
    iters = extra.get("_iterations_done") or cfg["SOLVER.MAX_ITER"]
    epochs = iterations_to_epochs(iters, n_train, cfg["SOLVER.IMS_PER_BATCH"])
    return {
        "Epochs": round(epochs, 1),
        "Dataset size": n,
        "Learning rate": cfg["SOLVER.BASE_LR"],
        "ROI head": cfg["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"],
        "IoU thr": cfg["MODEL.RPN.IOU_THRESHOLDS"][1],
        "NMS": cfg["MODEL.RPN.NMS_THRESH"],
        "AP bbox": round(metrics["bbox"]["AP"], 3),
        "AP segm": round(metrics["segm"]["AP"], 3),
    }


def mask_ceiling(
    data_dir,
    split: str = "test",
    mask_size: int | None = None,
    input_scale: float | None = None,
    max_images: int = 0,
    *,
    cfg=None,
) -> dict:
    """The segm AP a perfect mask head would reach: the reference masks passed through Mask
    R-CNN's mask representation and scored like predictions.

    Each reference mask is resized by ``input_scale`` (as the model's transform resizes its
    targets), sampled to ``mask_size`` x ``mask_size`` over its own box with ROIAlign (as
    torchvision makes mask targets), pasted back into the full image and thresholded at 0.5
    (as predictions are). What this loses is lost by any model with that head and input scale.

    Parameters
    ----------
    data_dir : str or os.PathLike
        The dataset folder (synthetic layout).
    split : str
        The split scored.
    mask_size : int, optional
        Side of the predicted mask, pixels (torchvision and detectron2: 2 x
        ``ROI_MASK_HEAD.POOLER_RESOLUTION``; default 28, or the one of ``cfg``).
    input_scale : float, optional
        The model's input scale (:func:`nanowire_utils.maskrcnn.engine.model_input_scale`;
        default 1, or the one of ``cfg``).
    max_images : int
        The first N images only (0: all).
    cfg : TrainConfig or dict, optional
        A model's training configuration (e.g. ``predictor.cfg``): its mask size and input scale
        are used. Give either ``cfg`` or ``mask_size``/``input_scale``, not both.

    Returns
    -------
    dict
        ``{"segm": COCO metrics (percent), "iou": per-wire summary (see :func:`iou_summary`),
        "n_images", "mask_size", "input_scale"}``.
    """
    import torch
    import torch.nn.functional as F
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    from torchvision.ops import roi_align

    from nanowire_utils.instances import Instances
    from nanowire_utils.real.evaluation import coco_metrics

    if cfg is not None:
        from nanowire_utils.maskrcnn.config import TrainConfig
        from nanowire_utils.maskrcnn.engine import model_input_scale

        if mask_size is not None or input_scale is not None:
            raise ValueError("give either cfg or mask_size/input_scale, not both")
        if not isinstance(cfg, TrainConfig):
            cfg = TrainConfig.from_dict(dict(cfg))
        mask_size = 2 * int(cfg["MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION"])
        input_scale = model_input_scale(cfg)
    mask_size = 28 if mask_size is None else mask_size
    input_scale = 1.0 if input_scale is None else input_scale
    if mask_size < 1 or not input_scale > 0:
        raise ValueError(f"mask_size must be >= 1 and input_scale > 0, got {mask_size} and {input_scale}")
    coco, records = _split_records(data_dir, split, max_images)
    results, ious = [], []
    for rec, ref in _annotated(records):
        masks = torch.from_numpy(np.asarray(ref.masks, np.float32))
        boxes = torch.from_numpy(np.asarray(ref.boxes, np.float32))
        if input_scale != 1:
            size = (max(1, round(rec.height * input_scale)), max(1, round(rec.width * input_scale)))
            small = F.interpolate(masks[:, None], size=size)[:, 0]
        else:
            small = masks
        rois = torch.cat([torch.arange(len(boxes), dtype=torch.float32)[:, None], boxes * input_scale], 1)
        grid = roi_align(small[:, None], rois, (mask_size, mask_size), 1.0)
        pasted = paste_masks_in_image(grid, boxes, (rec.height, rec.width))[:, 0].numpy() >= 0.5
        inst = Instances(pasted, np.asarray(ref.boxes), np.ones(len(ref), np.float32))
        results += instances_to_coco_results(inst, rec.image_id)
        inter = (pasted & ref.masks).sum((1, 2))
        union = (pasted | ref.masks).sum((1, 2))
        ious += list(inter / np.maximum(union, 1))
    metrics = coco_metrics(_subset_gt(coco, [r.image_id for r in records]), results, ("segm",))
    return {
        "segm": metrics["segm"],
        "iou": iou_summary(ious),
        "n_images": len(records),
        "mask_size": mask_size,
        "input_scale": input_scale,
    }


def iou_summary(ious, thresholds=(0.5, 0.75, 0.9)) -> dict:
    """Mean of per-wire IoUs and the fractions of wires above thresholds.

    Parameters
    ----------
    ious : sequence of float
        One IoU in [0, 1] per reference wire.
    thresholds : tuple of float
        IoU levels whose exceedance fraction is reported.

    Returns
    -------
    dict
        ``{"n": wires, "mean": mean IoU, "above_<t>": fraction of wires with IoU > t}`` (NaN
        for an empty sequence).
    """
    x = np.asarray(ious, np.float64)
    out = {"n": int(x.size), "mean": float(x.mean()) if x.size else float("nan")}
    out.update({f"above_{t:g}": float((x > t).mean()) if x.size else float("nan") for t in thresholds})
    return out


def matched_ious(predictor, data_dir, split: str = "test", max_images: int = 0, score_thresh: float = 0.5) -> dict:
    """How good a model's masks and boxes are, wire by wire: for each reference wire, the mask
    IoU of the detection whose mask overlaps it most, and that detection's box IoU.

    Separates the two things segm AP mixes: a box IoU well above the mask IoU says the masks,
    not the detections, hold segm AP back.

    Parameters
    ----------
    predictor : callable
        ``image (H, W) float in [0, 1] -> Instances``, e.g. from
        :func:`nanowire_utils.maskrcnn.engine.load_predictor`.
    data_dir : str or os.PathLike
        The dataset folder (synthetic layout).
    split : str
        The split scored.
    max_images : int
        The first N images only (0: all).
    score_thresh : float
        Detections scoring below are ignored.

    Returns
    -------
    dict
        ``{"mask": iou_summary, "box": iou_summary, "n_images"}``; a wire no detection
        overlaps counts 0 in both.
    """
    from nanowire_utils.real.evaluation import mask_iou

    _, records = _split_records(data_dir, split, max_images)
    mask_ious, box_ious = [], []
    for rec, ref in _annotated(records):
        pred = predictor(read_image(rec.path))
        keep = np.asarray(pred.scores) >= score_thresh
        pm, pb = np.asarray(pred.masks)[keep], np.asarray(pred.boxes)[keep]
        if len(pm) == 0:
            mask_ious += [0.0] * len(ref)
            box_ious += [0.0] * len(ref)
            continue
        m = mask_iou(pm, ref.masks)  # (P, R)
        b = _box_iou(pb, np.asarray(ref.boxes))
        best = m.argmax(0)
        cols = np.arange(len(ref))
        mask_ious += list(m[best, cols])
        box_ious += list(np.where(m[best, cols] > 0, b[best, cols], 0.0))
    return {"mask": iou_summary(mask_ious), "box": iou_summary(box_ious), "n_images": len(records)}


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import torch
    from torchvision.ops import box_iou

    return box_iou(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)).numpy()
