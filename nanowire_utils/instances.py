"""The one plain type every engine's predictions and every reference annotation share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Instances:
    """Instance masks of one image, from a model or from reference annotations.

    Attributes
    ----------
    masks : numpy.ndarray of bool, shape (N, H, W)
        One full-image mask per instance; masks may overlap.
    boxes : numpy.ndarray of float32, shape (N, 4)
        x0, y0, x1, y1 in pixels (COCO results use x, y, w, h; convert with
        :meth:`boxes_xywh`).
    scores : numpy.ndarray of float32, shape (N,)
        Confidence in [0, 1]; 1.0 for reference annotations.

    Raises
    ------
    ValueError
        When ``masks`` is not 3D or the three arrays disagree in length.
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {self.masks.shape}")
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        n = len(self.masks)
        if len(self.boxes) != n or len(self.scores) != n:
            raise ValueError(f"masks, boxes and scores disagree in length: {n}, {len(self.boxes)}, {len(self.scores)}")

    def __len__(self) -> int:
        return len(self.masks)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the image the masks belong to (pixels)."""
        return tuple(self.masks.shape[1:])

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Instances:
        """No instances, in an image of a given size.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)`` of the image (pixels).

        Returns
        -------
        Instances
            Zero instances; masks of shape ``(0, rows, cols)``.
        """
        return cls(np.zeros((0, *shape), bool), np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    @classmethod
    def from_masks(cls, masks: np.ndarray, scores: np.ndarray | None = None) -> Instances:
        """Instances from masks alone: boxes are the masks' tight boxes.

        Parameters
        ----------
        masks : numpy.ndarray of bool, shape (N, H, W)
            The masks.
        scores : numpy.ndarray of float, shape (N,), or None
            Confidences in [0, 1]; default 1 for every instance.

        Returns
        -------
        Instances
            Boxes ``(x0, y0, x1, y1)`` in pixels, end-exclusive; empty masks get a zero box.
        """
        masks = np.asarray(masks, dtype=bool)
        boxes = np.zeros((len(masks), 4), np.float32)
        for i, m in enumerate(masks):
            rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
            if len(rows):
                boxes[i] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
        if scores is None:
            scores = np.ones(len(masks), np.float32)
        return cls(masks, boxes, scores)

    def boxes_xywh(self) -> np.ndarray:
        """Boxes in COCO's convention.

        Returns
        -------
        numpy.ndarray of float32, shape (N, 4)
            x, y, width, height (pixels); a copy.
        """
        b = self.boxes.copy()
        b[:, 2:] -= b[:, :2]
        return b

    def subset(self, keep) -> Instances:
        """A selection of the instances.

        Parameters
        ----------
        keep : numpy.ndarray of bool, shape (N,), or sequence of int
            Boolean selector or indices.

        Returns
        -------
        Instances
            The selected instances (new arrays).
        """
        return Instances(self.masks[keep], self.boxes[keep], self.scores[keep])


def resize_instances(instances: Instances, shape) -> Instances:
    """The same instances with masks resampled to another image size.

    Bilinear, then thresholded at 0.5, so an instance keeps its outline when predicted on an
    enlarged image and scored at the original size. Each mask is resampled only around its
    bounding box (pixel-centre aligned, as ``skimage.transform.resize``), so hundreds of masks
    on a megapixel image take seconds.

    Parameters
    ----------
    instances : Instances
        Masks (N, H, W) to resample.
    shape : tuple of int
        The new image size (rows, cols), pixels.

    Returns
    -------
    Instances
        Masks (N, rows, cols), the same scores, boxes recomputed; ``instances`` itself when
        the size is unchanged.

    Raises
    ------
    ValueError
        When ``shape`` is not two positive sizes.
    """
    from scipy.ndimage import map_coordinates

    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (rows, cols) with positive sizes, got {shape}")
    if instances.image_shape == shape:
        return instances
    h, w = instances.image_shape
    sy, sx = shape[0] / h, shape[1] / w
    out = np.zeros((len(instances), *shape), bool)
    for i, m in enumerate(instances.masks):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if not len(rows):
            continue
        y0, y1 = max(rows[0] - 2, 0), min(rows[-1] + 3, h)
        x0, x1 = max(cols[0] - 2, 0), min(cols[-1] + 3, w)
        oy0, oy1 = int(math.floor(y0 * sy)), min(int(math.ceil(y1 * sy)), shape[0])
        ox0, ox1 = int(math.floor(x0 * sx)), min(int(math.ceil(x1 * sx)), shape[1])
        yy = (np.arange(oy0, oy1) + 0.5) / sy - 0.5 - y0
        xx = (np.arange(ox0, ox1) + 0.5) / sx - 0.5 - x0
        grid = np.meshgrid(yy, xx, indexing="ij")
        crop = np.pad(m[y0:y1, x0:x1].astype(np.float32), 1)  # zero ring: nothing leaks from the edge
        values = map_coordinates(crop, [grid[0] + 1, grid[1] + 1], order=1, mode="nearest")
        out[i, oy0:oy1, ox0:ox1] = values >= 0.5
    return Instances.from_masks(out, instances.scores)
