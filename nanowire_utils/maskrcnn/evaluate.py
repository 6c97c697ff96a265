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

    coco, records = load_split(data_dir, split)
    if max_images:
        records = records[:max_images]
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
