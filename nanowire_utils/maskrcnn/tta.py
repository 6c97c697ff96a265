"""Test-time augmentation (TTA): segment flipped (and optionally rescaled) copies of an image
and merge the answers.

:class:`TTAPredictor` wraps any predictor with a ``predict(image, tile=..., overlap=...) ->
Instances`` method (a :class:`nanowire_utils.maskrcnn.engine.Predictor`, or another TTA
predictor) and is used in its place::

    from nanowire_utils.maskrcnn.tta import TTAPredictor
    tta = TTAPredictor(predictor)                       # 4 flips
    tta = TTAPredictor(predictor, scales=(0.8, 1.0, 1.25))   # 4 flips x 3 scales
    instances = tta.predict(image)

Views
-----
Each view is a flip (``"none"``, ``"h"`` left-right, ``"v"`` up-down, ``"hv"`` both, i.e. a
180 degree rotation) of the image resampled by a factor (``scales``, bilinear). The paper
trained with horizontal and vertical flips, so every flipped view is an image of the training
distribution. The wrapped predictor segments each view; its instances are flipped back and
resampled to the image's size (:func:`nanowire_utils.instances.resize_instances`).
A view too large for memory is tiled by the wrapped predictor exactly as a plain prediction
is (its ``tile`` and ``overlap`` arguments are passed on; ``tile=None`` tiles automatically).

Merging
-------
With ``K`` views, the instances of all views are pooled and matched greedily, highest score
first: an instance joins the group whose first (highest-scoring) member overlaps it most, if
that mask IoU is at least ``merge_iou`` and the group has no instance of the same view yet
(a view's own instances were already separated by the model's NMS); otherwise it starts a new
group. Each group is one object:

* it is kept if at least ``min_votes`` views found it (default: half of the views, rounded up);
* its mask is the pixel-wise vote of its members: a pixel belongs to it when at least
  ``pixel_vote`` (default 0.5) of the members' masks contain it;
* its score is the sum of its members' scores divided by ``K``: a view that missed the object
  counts as score 0, so an object every view found keeps its score and one found by half of
  the views has it halved (AP, which ranks by score, sees the agreement).

Boxes of the merged instances are their masks' tight boxes; an instance whose mask is empty
(a box without mask pixels above the predictor's ``mask_thresh``) takes no part in the vote.

For a model that is exactly equivariant to the flips every view gives the same instances, and
TTA returns the plain prediction (same masks, same scores).
"""

from __future__ import annotations

import math

import numpy as np

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.instances import Instances

#: Flip names: what each does to an (H, W) array (each is its own inverse).
FLIPS = {
    "none": lambda a: a,
    "h": lambda a: a[..., :, ::-1],
    "v": lambda a: a[..., ::-1, :],
    "hv": lambda a: a[..., ::-1, ::-1],
}
DEFAULT_FLIPS = ("none", "h", "v", "hv")


def _crops(inst: Instances):
    """Each non-empty mask as (y0, y1, x0, x1, crop, score)."""
    out = []
    for m, s in zip(inst.masks, inst.scores):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if not len(rows):
            continue
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        out.append((y0, y1, x0, x1, np.ascontiguousarray(m[y0:y1, x0:x1]), float(s)))
    return out


def _crop_iou(a, b) -> float:
    """Mask IoU of two crops (y0, y1, x0, x1, crop, ...)."""
    y0, y1, x0, x1 = max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])
    if y0 >= y1 or x0 >= x1:
        return 0.0
    ia = a[4][y0 - a[0] : y1 - a[0], x0 - a[2] : x1 - a[2]]
    ib = b[4][y0 - b[0] : y1 - b[0], x0 - b[2] : x1 - b[2]]
    inter = np.count_nonzero(ia & ib)
    if inter == 0:
        return 0.0
    return inter / (np.count_nonzero(a[4]) + np.count_nonzero(b[4]) - inter)


def merge_views(
    views: list[Instances],
    merge_iou: float = 0.5,
    min_votes: int | None = None,
    pixel_vote: float = 0.5,
) -> Instances:
    """Merge the instances of ``K`` views of one image into one set (see the module docstring).

    Parameters
    ----------
    views : list of Instances
        One per view, all with masks at the image's size (H, W), flipped back already.
    merge_iou : float
        Mask IoU at which instances of different views are the same object.
    min_votes : int or None
        Views that must find an object to keep it; None: ``ceil(K / 2)``.
    pixel_vote : float
        Fraction of a group's members whose masks must contain a pixel, in (0, 1].

    Returns
    -------
    Instances
        Merged instances at (H, W), sorted by score (highest first).
    """
    if not views:
        raise ValueError("merge_views needs at least one view")
    shape = views[0].image_shape
    for v in views:
        if v.image_shape != shape:
            raise ValueError(f"views have different image sizes: {v.image_shape} and {shape}")
    k = len(views)
    check_range("merge_iou", merge_iou, 0, 1, low_inclusive=False)
    check_range("pixel_vote", pixel_vote, 0, 1, low_inclusive=False)
    min_votes = math.ceil(k / 2) if min_votes is None else int(check_range("min_votes", min_votes, 1, k))

    pooled = [(*c, vi) for vi, v in enumerate(views) for c in _crops(v)]
    pooled.sort(key=lambda c: -c[5])
    groups: list[list] = []  # members; members[0] is the representative
    boxes = np.zeros((0, 4))  # representatives' boxes y0, y1, x0, x1
    for c in pooled:
        best, best_iou = None, merge_iou
        if len(groups):
            near = np.nonzero(
                (boxes[:, 0] < c[1]) & (boxes[:, 1] > c[0]) & (boxes[:, 2] < c[3]) & (boxes[:, 3] > c[2])
            )[0]
            for gi in near:
                g = groups[gi]
                if any(m[6] == c[6] for m in g):
                    continue
                iou = _crop_iou(g[0], c)
                if iou >= best_iou:
                    best, best_iou = gi, iou
        if best is None:
            groups.append([c])
            boxes = np.vstack([boxes, [c[0], c[1], c[2], c[3]]])
        else:
            groups[best].append(c)

    masks, scores = [], []
    for g in groups:
        if len(g) < min_votes:
            continue
        y0, y1 = min(m[0] for m in g), max(m[1] for m in g)
        x0, x1 = min(m[2] for m in g), max(m[3] for m in g)
        count = np.zeros((y1 - y0, x1 - x0), np.int32)
        for m in g:
            count[m[0] - y0 : m[1] - y0, m[2] - x0 : m[3] - x0] += m[4]
        keep = count >= pixel_vote * len(g) - 1e-9
        if not keep.any():
            continue
        full = np.zeros(shape, bool)
        full[y0:y1, x0:x1] = keep
        masks.append(full)
        scores.append(sum(m[5] for m in g) / k)
    if not masks:
        return Instances.empty(shape)
    order = np.argsort(-np.asarray(scores), kind="stable")
    return Instances.from_masks(np.stack(masks)[order], np.asarray(scores, np.float32)[order])


class TTAPredictor:
    """A predictor that segments several flipped / rescaled views of an image and merges them.

    Parameters
    ----------
    predictor
        Any object with ``predict(image, tile=None, overlap=None) -> Instances`` (masks at the
        size of the image it is given), e.g. from
        :func:`nanowire_utils.maskrcnn.engine.load_predictor`.
    flips : sequence of str
        Views' flips, from :data:`FLIPS` (``"none"``, ``"h"``, ``"v"``, ``"hv"``).
    scales : sequence of float
        Views' resampling factors (1.0: the image as given). Every flip is combined with
        every scale.
    merge_iou, min_votes, pixel_vote
        How views are merged (:func:`merge_views`).

    Other attributes (``score_thresh``, ``device``, ``train_size``, ...) are the wrapped
    predictor's.
    """

    def __init__(
        self,
        predictor,
        flips=DEFAULT_FLIPS,
        scales=(1.0,),
        merge_iou: float = 0.5,
        min_votes: int | None = None,
        pixel_vote: float = 0.5,
    ):
        if not callable(getattr(predictor, "predict", None)):
            raise TypeError(f"predictor must have a predict(image, ...) method, got {type(predictor).__name__}")
        flips, scales = tuple(flips), tuple(float(s) for s in scales)
        if not flips or not scales:
            raise ValueError("TTA needs at least one flip and one scale")
        for f in flips:
            check_choice("flip", f, tuple(FLIPS))
        for s in scales:
            check_range("scale", s, 0.1, 8)
        self.predictor = predictor
        self.flips, self.scales = flips, scales
        self.merge_iou, self.pixel_vote = float(merge_iou), float(pixel_vote)
        self.min_votes = min_votes
        n = len(self.views)
        if min_votes is not None:
            check_range("min_votes", min_votes, 1, n)
        check_range("merge_iou", merge_iou, 0, 1, low_inclusive=False)
        check_range("pixel_vote", pixel_vote, 0, 1, low_inclusive=False)

    @property
    def views(self) -> list[tuple[str, float]]:
        """(flip, scale) of each view."""
        return [(f, s) for s in self.scales for f in self.flips]

    def __getattr__(self, name):
        if name == "predictor":  # not set yet (during unpickling)
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def __repr__(self):
        return f"TTAPredictor({self.predictor!r}, flips={self.flips}, scales={self.scales})"

    def predict_views(self, image, modality: str | None = None, tile=None, overlap=None) -> list[Instances]:
        """The wrapped predictor's instances in each view, flipped back and resampled to the
        image's size (before merging)."""
        from nanowire_utils.instances import resize_instances
        from nanowire_utils.maskrcnn.inference import to_gray01
        from nanowire_utils.real.preprocessing import rescale_by

        gray = to_gray01(image, modality=modality)
        shape = gray.shape
        out = []
        for flip, s in self.views:
            x = gray if s == 1.0 else rescale_by(gray, s)
            x = np.ascontiguousarray(FLIPS[flip](x))
            kw = {"tile": tile} if overlap is None else {"tile": tile, "overlap": overlap}
            inst = self.predictor.predict(x, **kw)
            back = Instances.from_masks(np.ascontiguousarray(FLIPS[flip](inst.masks)), inst.scores)
            out.append(resize_instances(back, shape))
        return out

    def predict(self, image, modality: str | None = None, tile=None, overlap=None) -> Instances:
        """Merged instances (masks at the image's size) of ``image``.

        ``image`` and ``modality`` as for :meth:`nanowire_utils.maskrcnn.engine.Predictor.predict`;
        ``tile`` and ``overlap`` are passed to the wrapped predictor for every view, so a large
        view is tiled as a plain prediction would be.
        """
        views = self.predict_views(image, modality=modality, tile=tile, overlap=overlap)
        return merge_views(views, self.merge_iou, self.min_votes, self.pixel_vote)

    __call__ = predict
