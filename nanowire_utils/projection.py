"""Projection of a nanowire network onto the image plane (the fast, analytic path).

A beam travelling along -z through the domain crosses each wire over a path of a certain
length. This module computes that path length per pixel and per wire (its *thickness map*)
directly from the wire geometry, without building the 3D voxel volume
(:mod:`nanowire_utils.voxels` is the slow reference path it is tested against).

Plain types
-----------
:class:`WireFootprint`
    One wire's thickness map, stored in the wire's bounding box to save memory.
:class:`Projection`
    All footprints of a network plus the image shape and domain height; what the
    renderer (:mod:`nanowire_utils.rendering`) and the mask builder consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WireFootprint:
    """Thickness map of one wire in the image plane.

    Attributes
    ----------
    label:
        The wire's label, 1-based, equal to its deposition order (0 is background).
    y0, x0:
        Row and column (pixels) of the top-left corner of ``thickness`` in the image.
    thickness:
        float32 array (h, w): length of the vertical beam path through the wire, in
        voxels (1 voxel = 1 pixel laterally), 0 where the beam misses the wire. Already
        clipped to the image.
    """

    label: int
    y0: int
    x0: int
    thickness: np.ndarray

    @property
    def bbox_slices(self) -> tuple[slice, slice]:
        """Row and column slices of the footprint's box in the full image."""
        h, w = self.thickness.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean mask (H, W) of the pixels the wire covers, in an image of ``shape``."""
        mask = np.zeros(shape, dtype=bool)
        mask[self.bbox_slices] = self.thickness > 0
        return mask


@dataclass
class Projection:
    """Projection of a whole network: per-wire thickness maps in an image of ``shape``.

    Attributes
    ----------
    shape:
        (rows, cols) of the image in pixels.
    height:
        Height of the voxel domain (voxels); the paper's OD normalisation divides by it.
    footprints:
        One :class:`WireFootprint` per wire that is visible in the image, in deposition
        order.
    """

    shape: tuple[int, int]
    height: int
    footprints: list[WireFootprint] = field(default_factory=list)

    def total_thickness(self) -> np.ndarray:
        """Summed path length through all wires per pixel (float32, voxels)."""
        total = np.zeros(self.shape, dtype=np.float32)
        for fp in self.footprints:
            total[fp.bbox_slices] += fp.thickness
        return total
