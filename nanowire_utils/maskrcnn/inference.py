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
gray (luminance, alpha dropped), all by :func:`nanowire_utils.real.preprocessing.to_gray_float`. With ``modality`` given, the image goes through
:func:`nanowire_utils.real.preprocessing.preprocess` instead (e.g. STXM transmission to optical
density), which returns the gray [0, 1] image itself.

The predictors resize an image only by the model's own input scale
(:func:`nanowire_utils.maskrcnn.engine.model_input_scale`: 0.5 for the ``cpu`` preset, which
trains on images at half scale, 1 otherwise) and return results at the image's size. Wire
widths in pixels must match those of the training images (see :mod:`nanowire_utils.real.scale`),
so rescale an image yourself (e.g. ``skimage.transform.rescale``) if its pixel size differs.

Tiling
------
An image much larger than the training images (either side above 1.5 x the training size,
or whenever ``tile=N`` is given and the image exceeds it) is cut into overlapping square
tiles of ``N`` pixels (default: the training size) that overlap by ``overlap`` pixels
(default 64, or N / 4 for smaller tiles). The model runs on each tile; its instances are pooled and merged by one rule
(:func:`merge_tile_instances`): two instances from *different* tiles are the same object
when, inside the region both tiles saw, their masks have IoU >= 0.5; the object's mask is
the union of its pieces and its score the highest of theirs. Instances of the same tile are
never merged (the model's own NMS already separated them). Comparing only inside the shared
region matters for wires longer than the overlap: each tile sees a different cut-off piece,
which agree only where both tiles looked; keeping the higher-scoring piece alone would lose
the rest of the wire.

Masks are returned at the full image size. One full-size mask per object can outgrow the
memory when a weak model finds hundreds of pieces in a large image; the merge then keeps the
highest-scoring objects that fit in :data:`MAX_TILED_MASK_BYTES` and logs how many it dropped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.coco import instances_to_coco_results, write_coco_results, write_json_atomic
from nanowire_utils.instances import Instances
from nanowire_utils.paper import MODALITIES
from nanowire_utils.viz.plotting import overlay

log = logging.getLogger(__name__)

#: Memory the merged full-image masks of a tiled prediction may take (bytes, one per pixel).
MAX_TILED_MASK_BYTES = 4 * 2**30

#: File types :func:`read_image` opens.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")

DEFAULT_OVERLAP = 64
#: A side longer than this many training sizes triggers tiling when ``tile`` is None.
AUTO_TILE_FACTOR = 1.5


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def read_image(path) -> np.ndarray:
    """Pixel array of an image file (PNG, TIFF, JPEG, BMP, ...) in its stored type.

    The same reader as :func:`nanowire_utils.real.preprocessing.read_image`, so real images and
    inference read files alike.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.

    Returns
    -------
    numpy.ndarray
        The pixels, shape (H, W) or (H, W, C), in the file's own type.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        Naming the file, when it cannot be decoded.
    """
    from nanowire_utils.real.preprocessing import read_image as _read

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
            f"{name} must be a 2-D gray image (H, W) or (H, W, C) with C in 1-4 channels, got shape {arr.shape}"
        )
    return arr


def to_gray01(image, modality: str | None = None) -> np.ndarray:
    """The float32 gray image in [0, 1] that the model is given for ``image``.

    Parameters
    ----------
    image : numpy.ndarray or str or os.PathLike
        Array (H, W), (H, W, C) with C = 1-4 (gray, gray+alpha, RGB, RGBA; channels-first
        (C, H, W) is accepted too) of any integer, bool or float type, or the path of an
        image file.
    modality : str or None
        None: :func:`nanowire_utils.real.preprocessing.to_gray_float` (integers / their type's
        maximum, floats in [0, 1] as they are, other floats min-max rescaled; RGB to
        luminance, alpha dropped). ``"ptychography"``, ``"stxm"`` or ``"sem"``:
        :func:`nanowire_utils.real.preprocessing.preprocess` (e.g. STXM transmission to optical
        density) on the single-channel image.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
        The gray image in [0, 1], C-contiguous.

    Raises
    ------
    ValueError
        For an unknown modality, a non-numeric or empty array, or an unsupported shape.
    FileNotFoundError
        For a path that does not exist.
    """
    from nanowire_utils.real.preprocessing import preprocess, to_gray_float

    if modality is not None:
        check_choice("modality", modality, MODALITIES)
    arr = _as_array(image)
    if modality is not None:
        out = preprocess(arr, modality)
    elif arr.ndim == 2 and np.issubdtype(arr.dtype, np.unsignedinteger):
        # Bit for bit what the training data loader does (nanowire_utils.synth.dataset.load_image).
        out = arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    else:
        out = to_gray_float(arr)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------
# Tiling and merging
# --------------------------------------------------------------------------------------


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering one image side.

    Parameters
    ----------
    length : int
        Side length (pixels).
    tile : int
        Tile side (pixels).
    overlap : int
        Least overlap of neighbouring tiles (pixels).

    Returns
    -------
    list of int
        Start offsets (pixels); ``[0]`` when one tile covers the side; the last tile ends at
        ``length``.
    """
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def merge_tile_instances(instances: Instances, groups, windows, merge_iou: float = 0.5) -> Instances:
    """Merge instances found in overlapping tiles into one instance per object.

    Parameters
    ----------
    instances : Instances
        Instances with full-image masks, pooled from all tiles.
    groups : sequence of int
        The tile each instance came from (one label per instance).
    windows : array_like of int, shape (N, 4)
        Each instance's tile window ``(y0, y1, x0, x1)`` in image pixels.
    merge_iou : float
        Two instances of different tiles are the same object when, inside the region both
        their tiles saw, their masks have IoU >= ``merge_iou``, in (0, 1].

    Returns
    -------
    Instances
        One instance per object, full-image masks, boxes recomputed from the merged masks.

    Raises
    ------
    ValueError
        When ``merge_iou`` is outside (0, 1].

    Notes
    -----
    Greedy in order of decreasing score: each instance joins the best-matching object found
    so far (its mask is added to the object's, the object keeps the highest score), or starts
    a new object. Instances of the same tile never merge (the model's own NMS separated them).
    Comparing masks only where both tiles saw the image is what lets the two pieces of a wire
    longer than the overlap be recognised as one: elsewhere each tile's piece is cut off.
    Boxes are recomputed from the merged masks.
    """
    windows = np.asarray(windows, dtype=int).reshape(len(instances), 4)
    pieces = [
        (instances.masks[i, y0:y1, x0:x1], (y0, y1, x0, x1), float(instances.scores[i]), g)
        for i, ((y0, y1, x0, x1), g) in enumerate(zip(windows, groups))
    ]
    return _merge_pieces(pieces, instances.image_shape, merge_iou)


def _bbox(mask: np.ndarray):
    """(y0, y1, x0, x1) of a mask's pixels (half-open), or None when empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _merge_pieces(pieces, shape, merge_iou: float, max_mask_bytes: int | None = None) -> Instances:
    """Greedy merge of tile pieces ``(local mask, window, score, tile)``; see merge_tile_instances.

    Objects are kept as crops of their bounding box, and only objects whose box meets the
    piece's box inside a shared tile region are compared, so the merge stays fast with
    hundreds of pieces. Only the highest-scoring objects whose full-image masks fit in
    ``max_mask_bytes`` (default :data:`MAX_TILED_MASK_BYTES`) are returned.
    """
    check_range("merge_iou", merge_iou, 0, 1, low_inclusive=False)
    if max_mask_bytes is None:
        max_mask_bytes = MAX_TILED_MASK_BYTES
    objects: list[dict] = []
    boxes = np.zeros((0, 4), int)  # objects' boxes (y0, y1, x0, x1), for the quick pre-check
    for local, win, score, group in sorted(pieces, key=lambda p: -p[2]):
        wy0, wy1, wx0, wx1 = win
        lb = _bbox(local)
        if lb is None:
            continue
        pb = (lb[0] + wy0, lb[1] + wy0, lb[2] + wx0, lb[3] + wx0)
        best, best_iou = None, merge_iou
        if len(objects):
            near = np.flatnonzero(
                (boxes[:, 0] < pb[1]) & (boxes[:, 1] > pb[0]) & (boxes[:, 2] < pb[3]) & (boxes[:, 3] > pb[2])
            )
            for k in near:
                obj = objects[k]
                if group in obj["groups"]:
                    continue
                iou = _zone_iou(local, win, obj, pb)
                if iou >= best_iou:
                    best, best_iou = k, iou
        if best is None:
            objects.append(
                {
                    "box": pb,
                    "crop": local[lb[0] : lb[1], lb[2] : lb[3]].copy(),
                    "score": score,
                    "groups": {group},
                    "windows": [win],
                }
            )
            boxes = np.vstack([boxes, np.array(pb)[None]])
            continue
        obj = objects[best]
        ob = obj["box"]
        nb = (min(ob[0], pb[0]), max(ob[1], pb[1]), min(ob[2], pb[2]), max(ob[3], pb[3]))
        crop = np.zeros((nb[1] - nb[0], nb[3] - nb[2]), bool)
        crop[ob[0] - nb[0] : ob[1] - nb[0], ob[2] - nb[2] : ob[3] - nb[2]] = obj["crop"]
        crop[pb[0] - nb[0] : pb[1] - nb[0], pb[2] - nb[2] : pb[3] - nb[2]] |= local[lb[0] : lb[1], lb[2] : lb[3]]
        obj.update(box=nb, crop=crop)
        obj["groups"].add(group)
        obj["windows"].append(win)
        boxes[best] = nb
    if not objects:
        return Instances.empty(tuple(shape))
    fit = max(1, int(max_mask_bytes // (shape[0] * shape[1])))
    if len(objects) > fit:
        log.warning(
            "tiled prediction found %d objects in a %d x %d px image; their full-image masks would take "
            "%.1f GB, so only the %d highest-scoring are kept (a weak model or small tiles make many pieces: "
            "use larger tiles or a better-trained model)",
            len(objects),
            shape[0],
            shape[1],
            len(objects) * shape[0] * shape[1] / 1e9,
            fit,
        )
        objects = sorted(objects, key=lambda o: -o["score"])[:fit]
    masks = np.zeros((len(objects), *shape), bool)
    for m, o in zip(masks, objects):
        y0, y1, x0, x1 = o["box"]
        m[y0:y1, x0:x1] = o["crop"]
    return Instances.from_masks(masks, np.array([o["score"] for o in objects], np.float32))


def _zone_iou(local, window, obj, piece_box) -> float:
    """IoU of a tile piece (``local`` mask in ``window``) and an object, counted only where
    ``window`` overlaps one of the object's tile windows."""
    wy0, wy1, wx0, wx1 = window
    ob = obj["box"]
    # the region to look at: the piece's window, within the union of both boxes
    ry0, ry1 = max(wy0, min(ob[0], piece_box[0])), min(wy1, max(ob[1], piece_box[1]))
    rx0, rx1 = max(wx0, min(ob[2], piece_box[2])), min(wx1, max(ob[3], piece_box[3]))
    if ry0 >= ry1 or rx0 >= rx1:
        return 0.0
    zone = np.zeros((ry1 - ry0, rx1 - rx0), bool)
    for y0, y1, x0, x1 in obj["windows"]:
        zy0, zy1, zx0, zx1 = max(ry0, y0), min(ry1, y1), max(rx0, x0), min(rx1, x1)
        if zy0 < zy1 and zx0 < zx1:
            zone[zy0 - ry0 : zy1 - ry0, zx0 - rx0 : zx1 - rx0] = True
    if not zone.any():
        return 0.0
    a = local[ry0 - wy0 : ry1 - wy0, rx0 - wx0 : rx1 - wx0] & zone
    b = np.zeros_like(zone)
    oy0, oy1, ox0, ox1 = max(ry0, ob[0]), min(ry1, ob[1]), max(rx0, ob[2]), min(rx1, ob[3])
    if oy0 < oy1 and ox0 < ox1:
        b[oy0 - ry0 : oy1 - ry0, ox0 - rx0 : ox1 - rx0] = obj["crop"][
            oy0 - ob[0] : oy1 - ob[0], ox0 - ob[2] : ox1 - ob[2]
        ]
    b &= zone
    inter = np.count_nonzero(a & b)
    if inter == 0:
        return 0.0
    return inter / np.count_nonzero(a | b)


def predict_tiled(
    predict_fn,
    gray: np.ndarray,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    merge_iou: float = 0.5,
    max_mask_bytes: int | None = None,
) -> Instances:
    """Run ``predict_fn(gray_tile) -> Instances`` over overlapping tiles and merge the results.

    The pieces are merged as :func:`merge_tile_instances` describes.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(gray_tile) -> Instances`` on one model-ready tile.
    gray : numpy.ndarray of float32, shape (H, W)
        The model-ready image.
    tile : int
        Tile side (pixels, >= 32).
    overlap : int
        Overlap of neighbouring tiles (pixels, < tile / 2).
    merge_iou : float
        IoU at which pieces of different tiles are one object, in (0, 1].
    max_mask_bytes : int or None
        Memory the merged full-image masks may take (bytes; None: :data:`MAX_TILED_MASK_BYTES`).
        Beyond it only the highest-scoring objects that fit are kept, with a warning.

    Returns
    -------
    Instances
        Full-image (H, W) masks.

    Raises
    ------
    ValueError
        When ``tile``, ``overlap`` or ``merge_iou`` is out of range.
    """
    check_range("tile", tile, 32, None, unit="px")
    check_range("overlap", overlap, 0, tile / 2, high_inclusive=False, unit="px")
    h, w = gray.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    pieces = []
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            sub = np.ascontiguousarray(gray[y0 : y0 + tile, x0 : x0 + tile])
            inst = predict_fn(sub)
            win = (y0, y0 + sub.shape[0], x0, x0 + sub.shape[1])
            pieces.extend((inst.masks[k], win, float(inst.scores[k]), iy * len(xs) + ix) for k in range(len(inst)))
    return _merge_pieces(pieces, (h, w), merge_iou, max_mask_bytes)


# --------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------


def list_images(folder_or_paths) -> list[Path]:
    """The image files of a folder or a path list, checked to exist.

    Parameters
    ----------
    folder_or_paths : str or os.PathLike or iterable of str or os.PathLike
        A folder (its files with a suffix in :data:`IMAGE_SUFFIXES`, sorted), one file, or
        a list of files.

    Returns
    -------
    list of pathlib.Path
        The image files.

    Raises
    ------
    FileNotFoundError
        For a folder without images, or a file that does not exist.
    ValueError
        For an empty list.
    """
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


def predict_folder(
    predictor,
    folder_or_paths,
    out_dir=None,
    progress: bool = True,
    modality: str | None = None,
    tile: int | None = None,
    overlays: bool = True,
) -> dict:
    """Predict every image of a folder (or list of paths).

    With ``out_dir``, writes ``out_dir/results.json`` (COCO results, image ids 1..n in the
    order of the files), ``out_dir/images.json`` (COCO ``images`` list naming each file) and,
    if ``overlays``, ``out_dir/<stem>_overlay.png`` per image.

    Parameters
    ----------
    predictor : Predictor
        A loaded predictor (:func:`nanowire_utils.maskrcnn.engine.load_predictor`).
    folder_or_paths : str or os.PathLike or iterable of str or os.PathLike
        As in :func:`list_images`.
    out_dir : str or os.PathLike or None
        Folder for the results (created); None writes nothing.
    progress : bool
        Show a tqdm progress bar.
    modality : str or None
        Preprocessing, as in :func:`to_gray01`.
    tile : int or None
        As in :meth:`Predictor.predict` (None: automatic, 0: never, N: tiles of N pixels).
    overlays : bool
        Write an overlay PNG per image (with ``out_dir``).

    Returns
    -------
    dict of pathlib.Path to Instances
        ``{path: Instances}`` in file order.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`list_images`.
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
                overlay(
                    path, inst, path=out_dir / f"{path.stem}_overlay.png", title=f"{path.name}: {len(inst)} instances"
                )
    if out_dir is not None:
        write_coco_results(out_dir / "results.json", results)
        write_json_atomic(out_dir / "images.json", images)
    return out


def time_inference(predictor, shape=(512, 512), repeats: int = 3, tile: int | None = 0, seed: int = 0) -> dict:
    """Measure inference time per image on a random gray image.

    One warm-up call, then the median of ``repeats`` calls. With random weights the
    detection count (and so the mask head's cost) is typically at its maximum.

    Parameters
    ----------
    predictor : Predictor
        A loaded predictor.
    shape : tuple of int
        ``(rows, cols)`` of the random uint8 image (pixels).
    repeats : int
        Timed calls (>= 1).
    tile : int or None
        As in :meth:`Predictor.predict` (default 0: one pass over the whole image).
    seed : int
        Seed of the random image.

    Returns
    -------
    dict
        ``{"seconds_per_image", "instances", "shape", "tile", "device", "threads"}``
        (median wall-clock seconds).

    Raises
    ------
    ValueError
        When ``repeats`` < 1.
    """
    import time

    import torch

    check_range("repeats", repeats, 1, None)
    img = (np.random.default_rng(seed).random(tuple(shape)) * 255).astype(np.uint8)
    predictor.predict(img, tile=tile)
    times, n = [], 0
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        n = len(predictor.predict(img, tile=tile))
        times.append(time.perf_counter() - t0)
    return {
        "seconds_per_image": float(np.median(times)),
        "instances": n,
        "shape": tuple(shape),
        "tile": tile,
        "device": predictor.device,
        "threads": torch.get_num_threads(),
    }
