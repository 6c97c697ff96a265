"""Projection of a nanowire network onto the image plane (the fast, analytic path).

A beam travelling along -z through the domain crosses each wire over a path of a certain
length. This module computes that path length per pixel and per wire (its *thickness map*)
directly from the wire geometry, without building the 3D voxel volume
(:mod:`nanowire_utils.synth.voxels` is the slow reference path it is tested against).

Plain types
-----------
:class:`WireFootprint`
    One wire's thickness map, stored in the wire's bounding box to save memory.
:class:`Projection`
    All footprints of a network plus the image shape and domain height; what the
    renderer (:mod:`nanowire_utils.synth.rendering`) and the mask builder consume.
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
        """Boolean mask of the pixels the wire covers, in a full image of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            ``(H, W)`` of the image (pixels).

        Returns
        -------
        numpy.ndarray of bool, shape (H, W)
            True where the wire's thickness is positive.
        """
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
        """Summed path length through all wires per pixel.

        Returns
        -------
        numpy.ndarray of float32, shape ``self.shape``
            Total thickness (voxels) of all wires above each pixel.
        """
        total = np.zeros(self.shape, dtype=np.float32)
        for fp in self.footprints:
            total[fp.bbox_slices] += fp.thickness
        return total


def _footprint(label: int, rr, cc, values) -> WireFootprint | None:
    """Scatter per-pixel values into a WireFootprint cropped to their bounding box."""
    if len(rr) == 0:
        return None
    y0, y1 = int(rr[0]), int(rr[-1])  # rows come sorted from both paths
    x0, x1 = int(cc.min()), int(cc.max())
    thick = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.float32)
    thick[rr - y0, cc - x0] = values
    return WireFootprint(label=label, y0=y0, x0=x0, thickness=thick)


def project_network(network) -> Projection:
    """Per-wire thickness maps of a network, computed analytically (the fast path).

    For every pixel, the vertical line through its centre crosses each wire over a z
    interval; its length (voxels) is the wire's thickness there. A pixel belongs to a
    wire's footprint when that interval holds at least one voxel centre (``z = k + 0.5``),
    the same rule a voxelised wire obeys, so masks agree with :func:`nanowire_utils.synth.voxels.project_volume`
    of :func:`nanowire_utils.synth.voxels.voxelize` up to ties; thickness values are the exact
    (continuous) path lengths, which differ from voxel counts by less than one voxel.
    Only the parts inside the image are kept.

    Parameters
    ----------
    network : nanowire_utils.synth.geometry.Network
        The network to project.

    Returns
    -------
    Projection
        Image shape (B, W) = (rows, cols), domain height H, and one footprint per wire
        that covers at least one pixel, in deposition order.
    """
    from nanowire_utils.synth.geometry import network_columns

    footprints = []
    for wire, (rr, cc, zl, zh) in zip(network.wires, network_columns(network)):
        if len(rr):
            # Voxel centres k + 0.5 with zl <= k + 0.5 < zh.
            hit = np.ceil(zh - 0.5) > np.ceil(zl - 0.5)
            fp = _footprint(wire.label, rr[hit], cc[hit], (zh - zl)[hit])
            if fp is not None:
                footprints.append(fp)
    return Projection(shape=network.image_shape, height=int(network.domain[2]), footprints=footprints)


def visible_footprints(projection: Projection, min_area: int = 30, min_thickness: float = 0.0) -> list[WireFootprint]:
    """The footprints that get an annotation (the annotation policy).

    Every wire is rendered, but only wires that are reasonably visible are annotated:
    a wire whose footprint inside the image covers fewer than ``min_area`` pixels (a wire
    mostly outside the image, cut by the border, or a tiny one) gets no mask, because
    neither a person nor a model can tell it apart reliably. Wires under or over others
    are always visible in a transmission image (thicknesses add up), so overlap never
    hides a wire. Masks are the full footprints and may overlap where wires cross.

    Parameters
    ----------
    projection : Projection
        The projection of a network (either path).
    min_area : int
        Minimum number of footprint pixels inside the image (pixels, >= 0).
    min_thickness : float
        Pixels where the wire is thinner than this (voxels) do not count towards the
        area (e.g. the thin rims of round wires); 0 counts every footprint pixel.

    Returns
    -------
    list of WireFootprint
        The annotated footprints, in deposition order.

    Raises
    ------
    ValueError
        When ``min_area`` or ``min_thickness`` is negative.
    """
    from nanowire_utils._checks import check_range

    check_range("min_area", min_area, 0, None, unit="pixels")
    check_range("min_thickness", min_thickness, 0, None, unit="voxels")
    out = []
    for fp in projection.footprints:
        if min_thickness > 0:
            area = int(np.count_nonzero(fp.thickness >= min_thickness))
        else:
            area = int(np.count_nonzero(fp.thickness > 0))
        if area >= min_area:
            out.append(fp)
    return out
