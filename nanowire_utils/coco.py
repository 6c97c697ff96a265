"""The one COCO codec of the package: binary masks <-> RLE, instances <-> COCO results, and
atomic JSON writing.

Every module that encodes a mask, decodes a segmentation or writes a COCO file goes through
here, so that one convention holds everywhere: masks are boolean arrays of shape (H, W) or
(N, H, W) in pixels, RLE ``counts`` are ASCII strings in JSON (bytes only inside pycocotools),
and COCO boxes are ``[x, y, width, height]`` in pixels.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from nanowire_utils.instances import Instances


def encode_mask(mask: np.ndarray) -> dict:
    """Run-length encode one binary mask for a COCO JSON file.

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Binary mask (any dtype; nonzero is foreground), pixels.

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": str}`` (counts as ASCII, ready for ``json.dumps``).
    """
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def encode_masks(masks: np.ndarray) -> list[dict]:
    """pycocotools RLEs of a stack of masks, for :func:`pycocotools.mask.iou` and friends.

    Not for JSON (``counts`` are bytes; use :func:`encode_mask`).

    Parameters
    ----------
    masks : numpy.ndarray, shape (N, H, W)
        Binary masks (any dtype; nonzero is foreground).

    Returns
    -------
    list of dict
        One pycocotools RLE (``size``, ``counts`` as bytes) per mask.

    Raises
    ------
    ValueError
        When ``masks`` is not 3D.
    """
    m = np.asarray(masks, dtype=np.uint8)
    if m.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W), got {m.shape}")
    return mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0)))


def _as_pycoco_rle(segmentation: dict) -> dict:
    counts = segmentation["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        h, w = segmentation["size"]
        return mask_utils.frPyObjects(segmentation, h, w)
    return {"size": list(segmentation["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_rle(segmentation: dict) -> np.ndarray:
    """Decode a COCO RLE segmentation (compressed or uncompressed) into a boolean mask.

    Parameters
    ----------
    segmentation : dict
        ``{"size": [H, W], "counts": str or bytes or list of int}``.

    Returns
    -------
    numpy.ndarray of bool, shape (H, W)
        The mask.

    Raises
    ------
    ValueError
        When the segmentation is not a valid RLE, or its counts do not describe exactly
        H x W pixels (truncated or corrupt counts).
    """
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError(f"not a COCO RLE segmentation (needs 'size' and 'counts'): {str(segmentation)[:80]}")
    try:
        mask = mask_utils.decode(_as_pycoco_rle(segmentation))
    except (ValueError, TypeError) as err:
        raise ValueError(f"invalid RLE ({err})") from None
    # pycocotools does not reject counts that stop short of H x W pixels; a canonical RLE
    # re-encodes to itself, a short one does not.
    if isinstance(segmentation["counts"], str) and encode_mask(mask)["counts"] != segmentation["counts"]:
        raise ValueError("RLE counts do not describe the whole image (truncated or corrupt)")
    return mask.astype(bool)


def rle_area(segmentation: dict) -> int:
    """Foreground area of an RLE segmentation.

    Parameters
    ----------
    segmentation : dict
        A COCO RLE (compressed or uncompressed).

    Returns
    -------
    int
        Number of foreground pixels.
    """
    return int(mask_utils.area(_as_pycoco_rle(segmentation)))


def rle_bbox(segmentation: dict) -> list[float]:
    """Bounding box of an RLE segmentation.

    Parameters
    ----------
    segmentation : dict
        A COCO RLE (compressed or uncompressed).

    Returns
    -------
    list of float
        COCO box ``[x, y, width, height]`` (pixels).
    """
    return [float(v) for v in mask_utils.toBbox(_as_pycoco_rle(segmentation))]


def polygons_to_mask(polygons: list, height: int, width: int) -> np.ndarray:
    """Rasterise one object's COCO polygons, merged into one mask.

    No validation: see :func:`nanowire_utils.real.annotations.polygons_to_mask`.

    Parameters
    ----------
    polygons : list of list of float
        Flat ``[x0, y0, x1, y1, ...]`` lists (pixels).
    height, width : int
        Image size (pixels).

    Returns
    -------
    numpy.ndarray of bool, shape (height, width)
        The mask.
    """
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Decode any COCO segmentation into a boolean mask.

    Parameters
    ----------
    segmentation : list or dict
        Polygons (list of flat x, y lists), compressed RLE (str or bytes counts) or
        uncompressed RLE (list counts).
    height, width : int
        Image size (pixels), used for polygons.

    Returns
    -------
    numpy.ndarray of bool, shape (height, width)
        The mask.

    Raises
    ------
    ValueError
        For an invalid RLE (see :func:`decode_rle`).
    """
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), bytes):
        return mask_utils.decode(segmentation).astype(bool)
    return decode_rle(segmentation)


def instances_to_coco_results(instances: Instances, image_id: int, category_id: int = 1) -> list[dict]:
    """COCO detection results (what ``COCO.loadRes`` reads) of one image's instances.

    Parameters
    ----------
    instances : Instances
        Masks (N, H, W), boxes and scores of one image.
    image_id : int
        The image's id in the reference COCO file.
    category_id : int
        Category of every instance (1: nanowire).

    Returns
    -------
    list of dict
        ``image_id``, ``category_id``, ``segmentation`` (RLE, counts as str), ``bbox``
        (x, y, w, h in pixels), ``score`` and ``area`` (mask pixels), one per instance.
    """
    boxes = instances.boxes_xywh()
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "segmentation": encode_mask(instances.masks[i]),
            "bbox": [round(float(v), 3) for v in boxes[i]],
            "score": float(instances.scores[i]),
            "area": int(instances.masks[i].sum()),
        }
        for i in range(len(instances))
    ]


def coco_results_to_instances(results: list[dict], image_id: int, shape=None) -> Instances:
    """The instances of one image in a COCO results list (inverse of :func:`instances_to_coco_results`).

    Parameters
    ----------
    results : list of dict
        COCO results (RLE segmentations, ``bbox`` as x, y, w, h pixels, ``score``).
    image_id : int
        The image whose results are taken.
    shape : tuple of int or None
        ``(H, W)`` of the image (pixels); needed only when the image has no result.

    Returns
    -------
    Instances
        Masks, boxes (x0, y0, x1, y1 pixels) and scores (1 where missing).

    Raises
    ------
    ValueError
        When the image has no result and ``shape`` is None, or an RLE is invalid.
    """
    mine = [r for r in results if int(r["image_id"]) == int(image_id)]
    if not mine:
        if shape is None:
            raise ValueError(f"no results for image_id {image_id} and no shape given")
        return Instances.empty(tuple(shape))
    masks = np.stack([decode_rle(r["segmentation"]) for r in mine])
    boxes = np.array([r["bbox"] for r in mine], np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return Instances(masks, boxes, np.array([r.get("score", 1.0) for r in mine], np.float32))


def write_coco_results(path, results: list[dict]) -> Path:
    """Write a COCO results list to a JSON file atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder is created.
    results : list of dict
        COCO results, as from :func:`instances_to_coco_results`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        When ``results`` is not a list.
    """
    if not isinstance(results, list):
        raise ValueError(f"results must be a list of COCO result dicts, got {type(results).__name__}")
    return write_json_atomic(path, results)


def write_json_atomic(path, obj, indent: int | None = None) -> Path:
    """Write an object as JSON so that a reader never sees a half-written file.

    Writes through a temporary file in the same folder and :func:`os.replace`.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file; its folder is created.
    obj : object
        Anything :func:`json.dump` can write.
    indent : int or None
        JSON indentation (None: one line); a newline ends the file.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=indent)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
