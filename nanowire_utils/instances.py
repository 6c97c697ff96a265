"""The one plain type every engine's predictions and every reference annotation share."""

from __future__ import annotations

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
