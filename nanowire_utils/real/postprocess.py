"""Cleaning up predicted instances: the paper notes the model finds "smaller particles within
larger instances" and that these "can be easily removed in a post-processing step" (section 3);
these filters do that, plus score and area limits. Each returns new Instances.

Typical use::

    from nanowire_utils.real.postprocess import postprocess
    clean = postprocess(pred, min_score=0.5, nested_fraction=0.8, min_area=20)
"""

from __future__ import annotations

import numpy as np

from nanowire_utils._checks import check_range
from nanowire_utils.instances import Instances


def filter_score(instances: Instances, min_score: float = 0.5) -> Instances:
    """Keep instances with a confident enough score.

    Parameters
    ----------
    instances : Instances
        Predicted instances.
    min_score : float
        Lowest score kept, in [0, 1].

    Returns
    -------
    Instances
        The instances with score >= ``min_score``.

    Raises
    ------
    ValueError
        When ``min_score`` is outside [0, 1].
    """
    check_range("min_score", min_score, 0, 1)
    return instances.subset(instances.scores >= min_score)


def filter_area(instances: Instances, min_area: float = 0, max_area: float | None = None) -> Instances:
    """Keep instances whose mask area lies in [``min_area``, ``max_area``].

    Parameters
    ----------
    instances : Instances
        Predicted instances.
    min_area : float
        Smallest mask area kept (pixels, >= 0).
    max_area : float or None
        Largest mask area kept (pixels, >= ``min_area``); None: no upper limit.

    Returns
    -------
    Instances
        The instances within the area limits.

    Raises
    ------
    ValueError
        When a limit is negative or ``max_area < min_area``.
    """
    check_range("min_area", min_area, 0, None, unit="px")
    if max_area is not None:
        check_range("max_area", max_area, min_area, None, unit="px")
    area = instances.masks.sum(axis=(1, 2))
    keep = area >= min_area
    if max_area is not None:
        keep &= area <= max_area
    return instances.subset(keep)


def _tight_boxes(masks: np.ndarray) -> np.ndarray:
    """Row/column box (y0, x0, y1, x1), end-exclusive, of each mask; empty masks get (0, 0, 0, 0)."""
    boxes = np.zeros((len(masks), 4), int)
    for k, m in enumerate(masks):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if len(rows):
            boxes[k] = rows[0], cols[0], rows[-1] + 1, cols[-1] + 1
    return boxes


def remove_nested(instances: Instances, fraction: float = 0.8) -> Instances:
    """Remove instances lying mostly inside a larger one.

    An instance is removed when at least ``fraction`` of its own area (pixels) is covered by
    one *larger* instance (more pixels; equal areas: the one with the lower score, then the
    later one, is the "smaller"). This removes the over-segmentation inside thick wires
    without touching wires that merely cross: a crossing covers only a small part of either
    mask. Containment is tested against the original set, so removal does not depend on order.

    Parameters
    ----------
    instances : Instances
        Predicted instances.
    fraction : float
        Share of the smaller instance's area that must lie inside the larger one, in (0, 1].

    Returns
    -------
    Instances
        The instances that are not nested in a larger one.

    Raises
    ------
    ValueError
        When ``fraction`` is outside (0, 1].
    """
    check_range("fraction", fraction, 0, 1, low_inclusive=False)
    n = len(instances)
    if n < 2:
        return instances.subset(np.ones(n, bool))
    masks = instances.masks
    area = masks.sum(axis=(1, 2))
    boxes = _tight_boxes(masks)
    # rank: larger area first, then higher score, then earlier index
    order = np.lexsort((np.arange(n), -instances.scores, -area))
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    keep = np.ones(n, bool)
    # Only pairs whose mask boxes overlap can share pixels; intersect them inside the overlap
    # box alone, so that hundreds of predictions on a large image cost seconds, not N x H x W.
    y0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    x0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    y1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    x1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    overlapping = (y1 > y0) & (x1 > x0) & (rank[None, :] < rank[:, None])
    for i, j in zip(*np.nonzero(overlapping)):
        if not keep[i] or area[i] == 0:
            continue
        win = (slice(y0[i, j], y1[i, j]), slice(x0[i, j], x1[i, j]))
        if np.count_nonzero(masks[i][win] & masks[j][win]) >= fraction * area[i]:
            keep[i] = False
    return instances.subset(keep)


def postprocess(
    instances: Instances,
    *,
    min_score: float | None = None,
    nested_fraction: float | None = 0.8,
    min_area: float = 0,
    max_area: float | None = None,
) -> Instances:
    """Clean up predictions: score filter, then area filter, then removal of nested instances.

    Each step is skipped when its parameter is None (or 0 and None for the area limits).

    Parameters
    ----------
    instances : Instances
        Predicted instances.
    min_score : float or None
        Lowest score kept, in [0, 1] (:func:`filter_score`).
    nested_fraction : float or None
        ``fraction`` of :func:`remove_nested`, in (0, 1].
    min_area, max_area : float or None
        Mask area limits (pixels) of :func:`filter_area`.

    Returns
    -------
    Instances
        The cleaned instances.

    Raises
    ------
    ValueError
        When a parameter is out of its range.
    """
    out = instances
    if min_score is not None:
        out = filter_score(out, min_score)
    if min_area or max_area is not None:
        out = filter_area(out, min_area, max_area)
    if nested_fraction is not None:
        out = remove_nested(out, nested_fraction)
    return out
