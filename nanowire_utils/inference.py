"""Running a trained Mask R-CNN on images: one API for both engines.

>>> predictor = load_predictor("runs/smoke")             # engine read from the checkpoint
>>> instances = predictor.predict("sample.png", modality="ptychography")
>>> results = instances_to_coco_results(instances, image_id=1)
>>> fig = overlay(image, instances)

What the model sees
-------------------
The training pipeline feeds 8-bit (or 16-bit) gray images scaled to [0, 1] and replicated to
three channels, at their own pixel size (no resizing). :func:`to_model_input` does the same to
any image: integer images are divided by the largest value of their type (uint8 / 255,
uint16 / 65535, as the dataset reader does), float images already in [0, 1] pass unchanged
and other float images are rescaled from their minimum and maximum; RGB(A) images become
gray (luminance, alpha dropped), all by :func:`nanowire_utils.preprocessing.to_gray_float`. With ``modality`` given, the image goes through
:func:`nanowire_utils.preprocessing.preprocess` instead (e.g. STXM transmission to optical
density), which returns the gray [0, 1] image itself.

Images are never resized: wire widths in pixels must match those of the training images
(NOTES.md), so rescale an image yourself (e.g. ``skimage.transform.rescale``) if its pixel
size differs.

Tiling
------
An image much larger than the training images (either side above 1.5 x the training size,
or whenever ``tile=N`` is given and the image exceeds it) is cut into overlapping square
tiles of ``N`` pixels (default: the training size) that overlap by ``overlap`` pixels
(default 64). Instances are merged by two rules:

1. *Core rule*: the image is partitioned into one cell per tile, with the boundaries in the
   middle of each overlap. An instance found in a tile is kept only if the centre of its box
   lies in that tile's cell, so a wire seen whole by two neighbouring tiles is kept once.
2. *Duplicate rule*: a wire crossing a cell boundary can still be found by both tiles, once
   cut by a tile edge. Two instances **from different tiles** are duplicates if their masks
   have IoU >= ``merge_iou`` (0.5) or if the smaller mask lies at least ``merge_contain``
   (80 %) inside the other; of each duplicate pair only the higher-scoring instance is kept
   (greedily, best score first).

Masks are returned at the full image size.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ._checks import check_choice, check_range
from .instances import Instances

#: File types :func:`read_image` opens.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
#: Modalities known to :func:`nanowire_utils.preprocessing.preprocess`.
MODALITIES = ("ptychography", "stxm", "sem")
ENGINES = ("torchvision", "detectron2")

DEFAULT_OVERLAP = 64
#: A side longer than this many training sizes triggers tiling when ``tile`` is None.
AUTO_TILE_FACTOR = 1.5



# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def read_image(path) -> np.ndarray:
    """Pixel array of an image file (PNG, TIFF, JPEG, BMP, ...) in its stored type.

    The same reader as :func:`nanowire_utils.preprocessing.read_image`, so real images and
    inference read files alike. Raises FileNotFoundError for a missing file and ValueError
    naming the file when it cannot be decoded.
    """
    from .preprocessing import read_image as _read

    return np.asarray(_read(Path(path)))


def _as_array(image, name="image") -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        arr = read_image(image)
        name = str(image)
    else:
        arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass an image with at least one pixel")
    if arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first (C, H, W), as torch stores images
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
        raise ValueError(
            f"{name} must be a 2-D gray image (H, W) or (H, W, C) with C in 1-4 channels, "
            f"got shape {arr.shape}"
        )
    return arr


def to_gray01(image, modality: str | None = None) -> np.ndarray:
    """The float32 gray image in [0, 1] that the model is given for ``image``.

    Parameters
    ----------
    image:
        Array (H, W), (H, W, C) with C = 1-4 (gray, gray+alpha, RGB, RGBA; channels-first
        (C, H, W) is accepted too) of any integer, bool or float type, or the path of an
        image file.
    modality:
        None: :func:`nanowire_utils.preprocessing.to_gray_float` (integers / their type's
        maximum, floats in [0, 1] as they are, other floats min-max rescaled; RGB to
        luminance, alpha dropped). ``"ptychography"``, ``"stxm"`` or ``"sem"``:
        :func:`nanowire_utils.preprocessing.preprocess` (e.g. STXM transmission to optical
        density) on the single-channel image.
    """
    from .preprocessing import preprocess, to_gray_float

    if modality is not None:
        check_choice("modality", modality, MODALITIES)
    arr = _as_array(image)
    if modality is not None:
        out = preprocess(arr, modality)
    else:
        out = to_gray_float(arr)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------
# Tiling and merging
# --------------------------------------------------------------------------------------


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, overlapping >= ``overlap`` px."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _cells(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """Core cell [lo, hi) of each tile: boundaries in the middle of each overlap."""
    ends = [min(s + tile, length) for s in starts]
    bounds = [0.0] + [(starts[i + 1] + ends[i]) / 2.0 for i in range(len(starts) - 1)] + [float(length)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def _pair_overlap(masks: np.ndarray, boxes: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """(IoU, intersection / smaller area) of masks i and j, computed inside their box overlap."""
    x0 = int(max(np.floor(boxes[i, 0]), np.floor(boxes[j, 0])))
    y0 = int(max(np.floor(boxes[i, 1]), np.floor(boxes[j, 1])))
    x1 = int(min(np.ceil(boxes[i, 2]), np.ceil(boxes[j, 2])))
    y1 = int(min(np.ceil(boxes[i, 3]), np.ceil(boxes[j, 3])))
    if x1 <= x0 or y1 <= y0:
        return 0.0, 0.0
    inter = int(np.count_nonzero(masks[i, y0:y1, x0:x1] & masks[j, y0:y1, x0:x1]))
    if inter == 0:
        return 0.0, 0.0
    a, b = int(masks[i].sum()), int(masks[j].sum())
    return inter / (a + b - inter), inter / max(1, min(a, b))


def merge_duplicates(
    instances: Instances, groups=None, merge_iou: float = 0.5, merge_contain: float = 0.8
) -> Instances:
    """Drop duplicate instances, keeping the higher-scoring one of each duplicate pair.

    Two instances are duplicates when their masks have IoU >= ``merge_iou`` or when the
    smaller mask lies at least ``merge_contain`` inside the other. With ``groups`` (one label
    per instance, e.g. the tile it came from) only instances of different groups can be
    duplicates: within one tile the model's own NMS has already decided. Greedy in order of
    decreasing score, like NMS.
    """
    check_range("merge_iou", merge_iou, 0, 1, low_inclusive=False)
    check_range("merge_contain", merge_contain, 0, 1, low_inclusive=False)
    n = len(instances)
    if n < 2:
        return instances
    groups = None if groups is None else np.asarray(groups)
    order = np.argsort(-instances.scores, kind="stable")
    kept: list[int] = []
    for i in order:
        dup = False
        for k in kept:
            if groups is not None and groups[k] == groups[i]:
                continue
            iou, contain = _pair_overlap(instances.masks, instances.boxes, i, k)
            if iou >= merge_iou or contain >= merge_contain:
                dup = True
                break
        if not dup:
            kept.append(int(i))
    return instances.subset(np.array(sorted(kept, key=lambda t: -instances.scores[t]), dtype=int))


def predict_tiled(
    predict_fn, gray: np.ndarray, tile: int, overlap: int = DEFAULT_OVERLAP,
    merge_iou: float = 0.5, merge_contain: float = 0.8,
) -> Instances:
    """Run ``predict_fn(gray_tile) -> Instances`` over overlapping tiles and merge the results.

    ``gray`` is the (H, W) model-ready image; ``tile`` and ``overlap`` are in pixels. See the
    module docstring for the merge rules. Returns Instances with full-image (H, W) masks.
    """
    check_range("tile", tile, 32, None, unit="px")
    check_range("overlap", overlap, 0, tile / 2, high_inclusive=False, unit="px")
    h, w = gray.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    ycells, xcells = _cells(ys, tile, h), _cells(xs, tile, w)
    masks, boxes, scores, groups = [], [], [], []
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            sub = gray[y0 : y0 + tile, x0 : x0 + tile]
            inst = predict_fn(np.ascontiguousarray(sub))
            if not len(inst):
                continue
            cx = (inst.boxes[:, 0] + inst.boxes[:, 2]) / 2 + x0
            cy = (inst.boxes[:, 1] + inst.boxes[:, 3]) / 2 + y0
            (ylo, yhi), (xlo, xhi) = ycells[iy], xcells[ix]
            keep = (cx >= xlo) & (cx < xhi) & (cy >= ylo) & (cy < yhi)
            for k in np.nonzero(keep)[0]:
                full = np.zeros((h, w), bool)
                full[y0 : y0 + sub.shape[0], x0 : x0 + sub.shape[1]] = inst.masks[k]
                masks.append(full)
                boxes.append(inst.boxes[k] + np.array([x0, y0, x0, y0], np.float32))
                scores.append(inst.scores[k])
                groups.append(iy * len(xs) + ix)
    if not masks:
        return Instances.empty((h, w))
    merged = Instances(np.stack(masks), np.stack(boxes), np.array(scores, np.float32))
    return merge_duplicates(merged, groups, merge_iou=merge_iou, merge_contain=merge_contain)


# --------------------------------------------------------------------------------------
# Predictors
# --------------------------------------------------------------------------------------


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; other names pass through."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but no CUDA GPU is available; use device='cpu'")
    return str(device)


class Predictor:
    """A trained model ready to segment images; build it with :func:`load_predictor`.

    Subclasses (one per engine) implement :meth:`predict_gray` on one model-ready image.

    Attributes
    ----------
    model: the torch module, in eval mode on ``device``.
    cfg: the training config (a ``TrainConfig`` or a plain dict of it).
    engine: ``"torchvision"`` or ``"detectron2"``.
    score_thresh: instances scoring below are dropped.
    mask_thresh: soft-mask probability above which a pixel belongs to the instance.
    train_size: side of the training images in pixels (default tile size).
    """

    engine = "?"

    def __init__(self, model, cfg, device="cpu", score_thresh=0.5, mask_thresh=0.5, train_size=512,
                 source=None):
        check_range("score_thresh", score_thresh, 0, 1)
        check_range("mask_thresh", mask_thresh, 0, 1, low_inclusive=False, high_inclusive=False)
        self.model = model
        self.cfg = cfg
        self.device = device
        self.score_thresh = float(score_thresh)
        self.mask_thresh = float(mask_thresh)
        self.train_size = int(train_size)
        self.source = source

    def __repr__(self):
        return (f"{type(self).__name__}(engine={self.engine!r}, device={self.device!r}, "
                f"score_thresh={self.score_thresh}, train_size={self.train_size}, source={str(self.source)!r})")

    def predict_gray(self, gray: np.ndarray) -> Instances:  # pragma: no cover - abstract
        """Instances in one float32 (H, W) image in [0, 1], run as one piece."""
        raise NotImplementedError

    def predict(self, image, modality: str | None = None, tile: int | None = None,
                overlap: int = DEFAULT_OVERLAP) -> Instances:
        """Instances (masks at the image's full size) in ``image``.

        Parameters
        ----------
        image:
            Array (uint8 / uint16 / float / bool; gray, RGB, RGBA) or image file path;
            see :func:`to_gray01`.
        modality:
            ``None`` or one of ``"ptychography"``, ``"stxm"``, ``"sem"`` (preprocessing).
        tile:
            ``None``: tile automatically when a side exceeds 1.5 x the training size, with
            tiles of the training size. ``0``: never tile. ``N`` (>= 32): tiles of N px
            when the image is larger than N.
        overlap:
            Overlap of neighbouring tiles in pixels (< tile / 2).
        """
        gray = to_gray01(image, modality=modality)
        h, w = gray.shape
        if tile is None:
            tile = self.train_size if max(h, w) > AUTO_TILE_FACTOR * self.train_size else 0
        else:
            tile = int(tile)
            if tile != 0:
                check_range("tile", tile, 32, None, unit="px")
        if tile and max(h, w) > tile:
            return predict_tiled(self.predict_gray, gray, tile, overlap=min(overlap, tile // 2 - 1))
        return self.predict_gray(gray)

    __call__ = predict


class TorchvisionPredictor(Predictor):
    """Predictor for the torchvision Mask R-CNN of :mod:`nanowire_utils.model`."""

    engine = "torchvision"

    def predict_gray(self, gray: np.ndarray) -> Instances:
        import torch

        from .model import outputs_to_instances

        h, w = gray.shape
        x = torch.from_numpy(np.ascontiguousarray(gray, np.float32)).to(self.device)
        x = x.unsqueeze(0).expand(3, h, w)
        transform = self.model.transform
        # Feed the image at its own pixel size: the transform would otherwise resize it to
        # INPUT.MIN/MAX_SIZE_TEST and change the wire widths (in pixels) the model sees.
        own = ((min(h, w),), max(h, w))
        sizes = getattr(transform, "sizes", None)
        saved = (sizes[False] if sizes is not None else None, transform.min_size, transform.max_size)
        if sizes is not None:
            sizes[False] = own
        transform.min_size, transform.max_size = own
        try:
            with torch.inference_mode():
                out = self.model([x])[0]
        finally:
            if sizes is not None:
                sizes[False] = saved[0]
            transform.min_size, transform.max_size = saved[1], saved[2]
        out = {k: v.detach().cpu() for k, v in out.items()}
        return outputs_to_instances(out, self.score_thresh, self.mask_thresh)


def _cfg_get(cfg, key, default=None):
    """``cfg[key]`` of a TrainConfig or flat dict, ``default`` when absent."""
    try:
        value = cfg.get(key, None)
    except AttributeError:
        value = None
    return default if value is None else value


def train_image_size(cfg) -> int:
    """Side in pixels of the images a run was trained on (the default tile size)."""
    size = _cfg_get(cfg, "DATASET.IMAGE_SIZE") or _cfg_get(cfg, "INPUT.MAX_SIZE_TEST", 512)
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size)


def load_predictor(run_dir_or_checkpoint, device: str = "auto", score_thresh: float | None = None,
                   engine: str | None = None, mask_thresh: float = 0.5) -> Predictor:
    """A :class:`Predictor` for a trained run.

    Parameters
    ----------
    run_dir_or_checkpoint:
        A run folder written by ``nanowire-utils train`` (config.json, model_final.pth,
        checkpoints/) or one ``.pth`` checkpoint file.
    device:
        ``"auto"`` (GPU if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    score_thresh:
        Keep instances scoring at least this (0-1); None: the run's test threshold
        (``MODEL.ROI_HEADS.SCORE_THRESH_TEST``), else 0.5.
    engine:
        None: the engine the checkpoint was trained with (its ``"engine"`` field).
        ``"torchvision"`` or ``"detectron2"`` to insist; a mismatch is an error.
    mask_thresh:
        Soft-mask probability above which a pixel is in the instance.
    """
    from .model import read_checkpoint, resolve_checkpoint_path

    ckpt_path = resolve_checkpoint_path(run_dir_or_checkpoint)
    ckpt = read_checkpoint(ckpt_path)
    found = str(ckpt.get("engine", "torchvision"))
    check_choice(f"engine of checkpoint {ckpt_path}", found, ENGINES)
    if engine is not None:
        check_choice("engine", engine, ENGINES)
        if engine != found:
            raise ValueError(f"{ckpt_path} was trained with engine {found!r}, not {engine!r}")
    device = resolve_device(device)
    if found == "detectron2":
        from .detectron2_engine import load_detectron2_predictor

        return load_detectron2_predictor(ckpt_path, device=device, score_thresh=score_thresh,
                                         mask_thresh=mask_thresh)
    from .config import TrainConfig
    from .model import build_model, load_state_checked

    if ckpt.get("config") is None:
        raise ValueError(f"checkpoint {ckpt_path} holds no 'config'; it was not written by nanowire-utils train")
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    load_state_checked(model, ckpt["model"], cfg, ckpt["config"], source=f"checkpoint {ckpt_path}")
    model.eval().to(device)
    if score_thresh is None:
        score_thresh = _cfg_get(cfg, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.5)
    return TorchvisionPredictor(model, cfg, device=device, score_thresh=score_thresh,
                                mask_thresh=mask_thresh, train_size=train_image_size(cfg), source=ckpt_path)


# --------------------------------------------------------------------------------------
# COCO results
# --------------------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool (H, W) mask, ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    rle["size"] = [int(s) for s in rle["size"]]
    return rle


def instances_to_coco_results(instances: Instances, image_id: int, category_id: int = 1) -> list[dict]:
    """COCO detection results of one image: ``image_id``, ``category_id``, ``segmentation``
    (RLE, counts as str), ``bbox`` (x, y, w, h pixels), ``score`` and ``area`` (mask pixels)."""
    boxes = instances.boxes_xywh()
    out = []
    for i in range(len(instances)):
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_id),
                "segmentation": encode_mask(instances.masks[i]),
                "bbox": [round(float(v), 3) for v in boxes[i]],
                "score": float(instances.scores[i]),
                "area": int(instances.masks[i].sum()),
            }
        )
    return out


def coco_results_to_instances(results: list[dict], image_id: int, shape=None) -> Instances:
    """Instances of ``image_id`` back from COCO results (inverse of :func:`instances_to_coco_results`)."""
    from pycocotools import mask as mask_util

    rs = [r for r in results if int(r["image_id"]) == int(image_id)]
    if not rs:
        if shape is None:
            raise ValueError(f"no results for image_id {image_id} and no shape given")
        return Instances.empty(tuple(shape))
    masks = []
    for r in rs:
        rle = dict(r["segmentation"])
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
        masks.append(mask_util.decode(rle).astype(bool))
    boxes = np.array([r["bbox"] for r in rs], np.float32)
    boxes[:, 2:] += boxes[:, :2]
    return Instances(np.stack(masks), boxes, np.array([r["score"] for r in rs], np.float32))


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as JSON to ``path`` via a temporary file and rename, so readers never see
    a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_coco_results(path, results: list[dict]) -> Path:
    """Write a COCO results list (as from :func:`instances_to_coco_results`) to ``path`` atomically."""
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of COCO result dicts, got {type(results).__name__}")
    return write_json_atomic(path, results)


# --------------------------------------------------------------------------------------
# Overlays
# --------------------------------------------------------------------------------------


def instance_colors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct RGB colours in [0, 1] (tab20, then random hues), stable for a given seed."""
    from matplotlib import colormaps

    base = np.asarray(colormaps["tab20"].colors)[:, :3]
    if n <= len(base):
        return base[:n]
    import matplotlib.colors as mcolors

    rng = np.random.default_rng(seed)
    extra = mcolors.hsv_to_rgb(np.stack([rng.random(n - len(base)), np.full(n - len(base), 0.8),
                                         np.full(n - len(base), 0.95)], axis=1))
    return np.concatenate([base, extra])


def overlay_array(image, instances: Instances, alpha: float = 0.45) -> np.ndarray:
    """uint8 RGB (H, W, 3) picture of ``image`` in gray with each instance tinted in its own
    colour (opacity ``alpha``) and outlined."""
    from skimage.segmentation import find_boundaries

    check_range("alpha", alpha, 0, 1)
    gray = to_gray01(image)
    if len(instances) and instances.image_shape != gray.shape:
        raise ValueError(f"instances are for an image of shape {instances.image_shape}, image is {gray.shape}")
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    for color, m in zip(instance_colors(len(instances)), instances.masks):
        rgb[m] = (1 - alpha) * rgb[m] + alpha * color
        rgb[find_boundaries(m, mode="inner")] = color
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def overlay(image, instances: Instances, ax=None, alpha: float = 0.45, path=None, title=None):
    """Matplotlib figure of ``image`` with each instance drawn in its own colour.

    Parameters
    ----------
    image: the image the instances were predicted on (array or path).
    instances: predictions or references for it.
    ax: draw into this Axes; None makes a new figure (no pyplot state, safe in loops).
    alpha: opacity of the instance colours (0-1).
    path: also save the figure as a PNG here.
    title: axes title; default ``"<n> instances"``.

    Returns the matplotlib Figure.
    """
    arr = overlay_array(image, instances, alpha=alpha)
    if ax is None:
        from matplotlib.figure import Figure

        h, w = arr.shape[:2]
        fig = Figure(figsize=(6, 6 * h / w), dpi=max(100, int(np.ceil(w / 6))))
        ax = fig.add_axes([0, 0, 1, 1])
    else:
        fig = ax.figure
    ax.imshow(arr, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title if title is not None else f"{len(instances)} instances", y=1.0, pad=-14,
                 color="white", fontsize=9, backgroundcolor=(0, 0, 0, 0.4))
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return fig


# --------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------


def list_images(folder_or_paths) -> list[Path]:
    """Image files of a folder (sorted, by suffix in :data:`IMAGE_SUFFIXES`) or of a path list."""
    if isinstance(folder_or_paths, (str, os.PathLike)):
        p = Path(folder_or_paths)
        if p.is_dir():
            paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not paths:
                raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {p}")
            return paths
        paths = [p]
    else:
        paths = [Path(q) for q in folder_or_paths]
    for q in paths:
        if not q.is_file():
            raise FileNotFoundError(f"image file not found: {q}")
    if not paths:
        raise ValueError("no images given")
    return paths


def predict_folder(predictor: Predictor, folder_or_paths, out_dir=None, progress: bool = True,
                   modality: str | None = None, tile: int | None = None, overlays: bool = True) -> dict:
    """Predict every image of a folder (or list of paths).

    With ``out_dir``, writes ``out_dir/results.json`` (COCO results, image ids 1..n in the
    order of the files), ``out_dir/images.json`` (COCO ``images`` list naming each file) and,
    if ``overlays``, ``out_dir/<stem>_overlay.png`` per image.

    Returns ``{path: Instances}`` in file order.
    """
    from tqdm.auto import tqdm

    paths = list_images(folder_or_paths)
    out = {}
    results, images = [], []
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    for image_id, path in enumerate(tqdm(paths, desc="predict", unit="image", disable=not progress), 1):
        inst = predictor.predict(path, modality=modality, tile=tile)
        out[path] = inst
        if out_dir is not None:
            h, w = inst.image_shape
            images.append({"id": image_id, "file_name": str(path), "height": int(h), "width": int(w)})
            results.extend(instances_to_coco_results(inst, image_id))
            if overlays:
                overlay(path, inst, path=out_dir / f"{path.stem}_overlay.png", title=f"{path.name}: {len(inst)} instances")
    if out_dir is not None:
        write_coco_results(out_dir / "results.json", results)
        write_json_atomic(out_dir / "images.json", images)
    return out
