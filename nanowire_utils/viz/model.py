"""Looking inside Mask R-CNN: a schematic, feature maps, anchors, RPN proposals and ROIAlign.

The training chapter explains the model of the paper's section 2.3 with these helpers. They
work on the torchvision model of :func:`nanowire_utils.maskrcnn.model.build_model` (trained or not):

>>> model, cfg = load_checkpoint("runs/cpu/mask_rcnn")
>>> inner = model_internals(model, image)          # one forward pass, intermediate results kept
>>> fig = plot_feature_maps(inner)
>>> fig = plot_anchors_and_proposals(inner, reference_boxes)

Everything is computed at the image's own pixel size (no resizing), as
:class:`nanowire_utils.maskrcnn.torchvision_engine.TorchvisionPredictor` does, and returned in the pixel
coordinates of the image (boxes ``x0, y0, x1, y1``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from nanowire_utils._checks import check_range

#: torchvision's loss names -> the paper's Eq. 1 (L = L_bbox + L_cls + L_mask) and where they arise.
LOSS_TERMS = {
    "loss_classifier": (
        "L_cls",
        "box head",
        "cross entropy of the class scores (nanowire / background) of each sampled ROI",
    ),
    "loss_box_reg": ("L_bbox", "box head", "smooth L1 of the box corrections of the foreground ROIs"),
    "loss_mask": ("L_mask", "mask head", "binary cross entropy of the m x m mask of each foreground ROI"),
    "loss_objectness": ("(RPN) L_cls", "RPN", "binary cross entropy of object / no object for the sampled anchors"),
    "loss_rpn_box_reg": ("(RPN) L_bbox", "RPN", "smooth L1 of the anchor -> proposal box corrections"),
}


def loss_terms_table() -> list[dict]:
    """The five training losses of Mask R-CNN next to the paper's terms, as table rows.

    The paper's Eq. 1 names the three losses of the heads; the RPN adds the same two kinds
    (classification and box regression) for its anchors, and detectron2 and torchvision sum
    all five into the training loss.

    Returns
    -------
    list of dict
        Rows ``{"torchvision loss", "paper term", "stage", "what it measures"}``, one per
        loss.
    """
    return [
        {"torchvision loss": k, "paper term": t, "stage": s, "what it measures": d}
        for k, (t, s, d) in LOSS_TERMS.items()
    ]


# --------------------------------------------------------------------------- schematic
def draw_architecture(cfg=None, ax=None):
    """A block diagram of Mask R-CNN (backbone + FPN, RPN, ROIAlign, box and mask heads, losses).

    Parameters
    ----------
    cfg : TrainConfig or dict or None
        Optional :class:`~nanowire_utils.maskrcnn.config.TrainConfig` (or flat dict): the labels then
        show its ResNet depth, FPN channels, anchor counts and ROIAlign sizes.
    ax : matplotlib.axes.Axes or None
        Matplotlib Axes to draw into; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    def get(key, default):
        try:
            v = cfg[key] if cfg is not None else default
        except KeyError:
            v = default
        return default if v is None else v

    depth = get("MODEL.RESNETS.DEPTH", 50)
    ch = get("MODEL.FPN.OUT_CHANNELS", 256)
    sizes = get("MODEL.ANCHOR_GENERATOR.SIZES", [[32], [64], [128], [256], [512]])
    ratios = get("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0]])
    box_res = get("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 7)
    mask_res = get("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", 14)
    n_anchor = len(sizes[0]) * len(ratios[0])
    flat_sizes = [s for level in sizes for s in level]

    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 5.2))
    else:
        fig = ax.figure
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5.6)
    ax.set_axis_off()

    stage_colors = {"backbone": "#cfe2f3", "rpn": "#fce5cd", "roi": "#d9ead3", "head": "#ead1dc", "io": "#eeeeee"}
    centers = {}

    def block(name, x, y, w, h, text, kind):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=stage_colors[kind], ec="0.3", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5, wrap=True)
        centers[name] = (x, y, w, h)

    def arrow(a, b, side_a="right", side_b="left", text=None, dy=0.0):
        vertical = side_a in ("top", "bottom") and side_b in ("top", "bottom")
        xa, ya, wa, ha_ = centers[a]
        xb, yb, wb, hb = centers[b]
        pa = {"right": (xa + wa, ya + ha_ / 2 + dy), "top": (xa + wa / 2, ya + ha_), "bottom": (xa + wa / 2, ya)}[
            side_a
        ]
        pb = {"left": (xb, yb + hb / 2 + dy), "top": (xb + wb / 2, yb + hb), "bottom": (xb + wb / 2, yb)}[side_b]
        ax.add_patch(FancyArrowPatch(pa, pb, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="0.25"))
        if text and vertical:
            ax.text(pa[0] + 0.1, (pa[1] + pb[1]) / 2, text, ha="left", va="center", fontsize=7, color="0.25")
        elif text:
            ax.text(
                (pa[0] + pb[0]) / 2,
                (pa[1] + pb[1]) / 2 + 0.12,
                text,
                ha="center",
                va="bottom",
                fontsize=7,
                color="0.25",
            )

    block("image", 0.1, 2.3, 1.1, 1.0, "image\n(gray -> 3 ch.)", "io")
    block("resnet", 1.6, 2.0, 1.5, 1.6, f"ResNet-{depth}\nstages C2-C5\n(strides 4-32)", "backbone")
    block("fpn", 3.5, 2.0, 1.6, 1.6, f"FPN\nP2-P6, {ch} ch.\n(strides 4-64)", "backbone")
    block(
        "rpn",
        5.6,
        3.9,
        1.9,
        1.3,
        f"RPN\n{n_anchor} anchors / position\nsizes {min(flat_sizes):g}-{max(flat_sizes):g} px",
        "rpn",
    )
    block("roialign", 5.6, 1.1, 1.9, 1.6, f"ROIAlign\n{box_res}x{box_res} (box)\n{mask_res}x{mask_res} (mask)", "roi")
    block("boxhead", 8.1, 2.9, 1.7, 1.1, "box head\n(FC layers)", "head")
    block("maskhead", 8.1, 0.6, 1.7, 1.1, f"mask head\n(conv) -> {2 * mask_res}x{2 * mask_res}", "head")
    block("cls", 10.3, 3.6, 1.55, 0.7, "class score\n$L_{cls}$", "io")
    block("bbox", 10.3, 2.6, 1.55, 0.7, "box refinement\n$L_{bbox}$", "io")
    block("mask", 10.3, 0.8, 1.55, 0.7, "binary mask\n$L_{mask}$", "io")

    arrow("image", "resnet")
    arrow("resnet", "fpn")
    arrow("fpn", "rpn", side_a="top", side_b="left", text="all levels")
    arrow("fpn", "roialign", side_a="bottom", side_b="left", text="features")
    arrow("rpn", "roialign", side_a="bottom", side_b="top", text="proposals (ROIs)")
    arrow("roialign", "boxhead", dy=0.4)
    arrow("roialign", "maskhead", dy=-0.4)
    arrow("boxhead", "cls", dy=0.25)
    arrow("boxhead", "bbox", dy=-0.25)
    arrow("maskhead", "mask")
    ax.text(7.6, 4.95, "RPN losses: objectness + anchor box regression", fontsize=7.5, color="0.3")
    ax.text(0.1, 5.35, "(1) feature extraction", fontsize=9, weight="bold", color="#3d6fa3")
    ax.text(5.4, 5.35, "(2) region proposal and alignment", fontsize=9, weight="bold", color="#b26b00")
    ax.text(
        8.1,
        0.1,
        "(3) prediction heads       $L = L_{bbox} + L_{cls} + L_{mask}$",
        fontsize=9,
        weight="bold",
        color="#8a3a5c",
    )
    return fig


# --------------------------------------------------------------------------- internals
@dataclass
class Internals:
    """Intermediate results of one forward pass (see :func:`model_internals`).

    Attributes
    ----------
    image: the (H, W) float image in [0, 1].
    features: FPN level name (``"P2"`` ... ``"P6"``) -> array (C, h, w).
    strides: level name -> stride in pixels (image side / feature side).
    anchors: (N, 4) all anchors, xyxy image pixels, in torchvision's order (level, position, anchor).
    anchor_levels: (N,) level index (0 = P2) of each anchor.
    anchors_per_position: anchors at each feature position (sizes x aspect ratios).
    proposals: (M, 4) the RPN's proposals after NMS, best first, xyxy image pixels.
    proposal_scores: (M,) their objectness probability.
    roi_box: the box (xyxy) of the best detection, or of the best proposal when nothing is
        detected, whose ROIAlign crops are kept below.
    roi_features: (C, r, r) ROIAlign output of the mask branch for ``roi_box``.
    roi_mask: (2r, 2r) mask probability the mask head predicts for ``roi_box``.
    detections: (K, 4) final boxes scoring above the model's test threshold; ``detection_scores`` (K,).
    """

    image: np.ndarray
    features: dict = field(default_factory=dict)
    strides: dict = field(default_factory=dict)
    anchors: np.ndarray | None = None
    anchor_levels: np.ndarray | None = None
    anchors_per_position: int = 0
    proposals: np.ndarray | None = None
    proposal_scores: np.ndarray | None = None
    roi_box: np.ndarray | None = None
    roi_features: np.ndarray | None = None
    roi_mask: np.ndarray | None = None
    detections: np.ndarray | None = None
    detection_scores: np.ndarray | None = None


@contextlib.contextmanager
def _native_size(model, h: int, w: int):
    """Let the model's transform keep an (h, w) image at its own size (eval mode)."""
    t = model.transform
    own = ((min(h, w),), max(h, w))
    sizes = getattr(t, "sizes", None)
    saved = (dict(sizes) if sizes is not None else None, t.min_size, t.max_size)
    if sizes is not None:
        sizes[False] = own
    t.min_size, t.max_size = own
    try:
        yield
    finally:
        if sizes is not None:
            sizes.clear()
            sizes.update(saved[0])
        t.min_size, t.max_size = saved[1], saved[2]


def model_internals(model, image: np.ndarray) -> Internals:
    """Run ``model`` (torchvision Mask R-CNN) on one gray image and keep what each stage made.

    Parameters
    ----------
    model : torchvision.models.detection.MaskRCNN
        A model from :func:`~nanowire_utils.maskrcnn.model.build_model` or
        :func:`~nanowire_utils.maskrcnn.model.load_checkpoint` (any weights; left in eval mode).
    image : numpy.ndarray of float, shape (H, W)
        Gray image in [0, 1] (as :func:`nanowire_utils.maskrcnn.loading.read_image` gives).

    Returns
    -------
    Internals
        Feature maps per FPN level, all anchors, the RPN proposals with their objectness, the
        ROIAlign crop and mask probability of the best detection, and the final detections
        (boxes in input pixels).

    Raises
    ------
    ValueError
        When ``image`` is not 2D or not in [0, 1].
    """
    import torch
    from torchvision.models.detection.rpn import concat_box_prediction_layers

    from nanowire_utils.maskrcnn.loading import to_tensor_image

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be a gray (H, W) array, got shape {image.shape}")
    if image.size and (image.min() < 0 or image.max() > 1):
        raise ValueError("image must be float in [0, 1] (use nanowire_utils.maskrcnn.loading.read_image)")
    h, w = image.shape
    model.eval()
    device = next(model.parameters()).device
    x = to_tensor_image(image).to(device)
    with torch.inference_mode(), _native_size(model, h, w):
        images, _ = model.transform([x])
        feats = model.backbone(images.tensors)
        names = list(feats)
        levels = [f"P{i + 2}" for i in range(len(names))]
        fmaps = list(feats.values())
        th, tw = images.image_sizes[0]
        sy, sx = h / th, w / tw  # 1 here (native size); kept for safety if a transform pads/resizes
        scale = np.array([sx, sy, sx, sy], np.float32)

        rpn = model.rpn
        objectness, deltas = rpn.head(fmaps)
        anchors = rpn.anchor_generator(images, fmaps)
        per_level = [o[0].numel() for o in objectness]
        obj_flat, deltas_flat = concat_box_prediction_layers(objectness, deltas)
        boxes = rpn.box_coder.decode(deltas_flat, anchors).view(1, -1, 4)
        props, scores = rpn.filter_proposals(boxes, obj_flat, images.image_sizes, per_level)
        props, scores = props[0], scores[0]
        order = torch.argsort(scores, descending=True)
        props, scores = props[order], scores[order]

        detections = model.roi_heads(feats, [props], images.image_sizes)[0][0]
        det_boxes, det_scores = detections["boxes"], detections["scores"]
        roi = det_boxes[:1] if len(det_boxes) else props[:1]
        roi_feat = None
        mask_prob = None
        if len(roi):
            roi_feat = model.roi_heads.mask_roi_pool(feats, [roi], images.image_sizes)
            logits = model.roi_heads.mask_predictor(model.roi_heads.mask_head(roi_feat))
            mask_prob = logits.sigmoid()[0, 1 if logits.shape[1] > 1 else 0]

    n_pos = len(rpn.anchor_generator.sizes[0]) * len(rpn.anchor_generator.aspect_ratios[0])
    level_index = np.concatenate([np.full(n, i, np.int16) for i, n in enumerate(per_level)])
    return Internals(
        image=image,
        features={lv: f[0].float().cpu().numpy() for lv, f in zip(levels, fmaps)},
        strides={lv: int(round(th / f.shape[-2])) if f.shape[-2] else 0 for lv, f in zip(levels, fmaps)},
        anchors=anchors[0].cpu().numpy() * scale,
        anchor_levels=level_index,
        anchors_per_position=n_pos,
        proposals=props.cpu().numpy() * scale,
        proposal_scores=scores.float().cpu().numpy(),
        roi_box=roi[0].cpu().numpy() * scale if len(roi) else None,
        roi_features=roi_feat[0].float().cpu().numpy() if roi_feat is not None else None,
        roi_mask=mask_prob.float().cpu().numpy() if mask_prob is not None else None,
        detections=det_boxes.cpu().numpy() * scale,
        detection_scores=det_scores.float().cpu().numpy(),
    )


def anchors_at(inner: Internals, level: int, y: float, x: float) -> np.ndarray:
    """The anchors of one FPN level at the grid position nearest below a point.

    torchvision places the anchors of a level at multiples of its stride; these are the rows
    of ``inner.anchors`` for that position, in the order of the sizes x aspect ratios.

    Parameters
    ----------
    inner : Internals
        What :func:`model_internals` kept.
    level : int
        FPN level index (0 = P2).
    y, x : float
        The point (pixels).

    Returns
    -------
    numpy.ndarray of float32, shape (A, 4)
        The anchors as x0, y0, x1, y1 (pixels).

    Raises
    ------
    ValueError
        When ``level`` is out of range.
    """
    n_levels = len(inner.features)
    check_range("level", level, 0, n_levels - 1)
    name = list(inner.features)[level]
    c, fh, fw = inner.features[name].shape
    stride = inner.strides[name]
    i = int(np.clip(y // stride, 0, fh - 1))
    j = int(np.clip(x // stride, 0, fw - 1))
    a = inner.anchors_per_position
    start = int(np.flatnonzero(inner.anchor_levels == level)[0])
    first = start + (i * fw + j) * a
    return inner.anchors[first : first + a]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two sets of boxes (torchvision.ops.box_iou on numpy arrays).

    Parameters
    ----------
    a : numpy.ndarray of float, shape (N, 4)
        Boxes as x0, y0, x1, y1 (pixels).
    b : numpy.ndarray of float, shape (M, 4)
        Boxes as x0, y0, x1, y1 (pixels).

    Returns
    -------
    numpy.ndarray of float32, shape (N, M)
        IoU of every pair, in [0, 1].
    """
    import torch
    from torchvision.ops import box_iou as _iou

    a = torch.as_tensor(np.asarray(a, np.float32).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4))
    return _iou(a, b).numpy()


def positive_anchors(inner: Internals, boxes: np.ndarray, fg_iou: float = 0.7) -> np.ndarray:
    """Indices of the anchors the RPN would train as *object* for reference boxes.

    As in torchvision's and detectron2's matcher: an anchor is positive when its IoU with a
    reference box reaches ``fg_iou`` (``MODEL.RPN.IOU_THRESHOLDS[1]``), and, for each
    reference, the anchors of highest IoU are positive too (so that every object gets one).

    Parameters
    ----------
    inner : Internals
        What :func:`model_internals` kept.
    boxes : numpy.ndarray of float, shape (K, 4)
        Reference boxes as x0, y0, x1, y1 (pixels).
    fg_iou : float
        IoU threshold for a positive anchor, in [0, 1].

    Returns
    -------
    numpy.ndarray of int
        Indices into ``inner.anchors``.

    Raises
    ------
    ValueError
        When ``fg_iou`` is outside [0, 1].
    """
    check_range("fg_iou", fg_iou, 0, 1)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, int)
    iou = box_iou(inner.anchors, boxes)
    pos = iou.max(axis=1) >= fg_iou
    best = iou.max(axis=0)
    pos |= ((iou == best[None, :]) & (best[None, :] > 0)).any(axis=1)
    return np.flatnonzero(pos)


def feature_energy(feature: np.ndarray) -> np.ndarray:
    """Where a feature map responds: root-mean-square over its channels.

    Parameters
    ----------
    feature : numpy.ndarray, shape (C, h, w)
        A feature map.

    Returns
    -------
    numpy.ndarray of float32, shape (h, w)
        The channel RMS.

    Raises
    ------
    ValueError
        When ``feature`` is not 3D.
    """
    f = np.asarray(feature, np.float32)
    if f.ndim != 3:
        raise ValueError(f"feature must be (C, h, w), got shape {f.shape}")
    return np.sqrt((f**2).mean(axis=0))


# --------------------------------------------------------------------------- figures
def _draw_boxes(ax, boxes, color, lw=1.0, alpha=1.0, ls="-"):
    from matplotlib.patches import Rectangle

    for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=lw, alpha=alpha, ls=ls))


def plot_feature_maps(inner: Internals):
    """The image and, per FPN level, the channel RMS of its feature map (same extent as the image).

    Parameters
    ----------
    inner : Internals
        What :func:`model_internals` kept.

    Returns
    -------
    matplotlib.figure.Figure
        One panel for the image and one per FPN level.
    """
    import matplotlib.pyplot as plt

    n = len(inner.features) + 1
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.9), constrained_layout=True)
    h, w = inner.image.shape
    axes[0].imshow(inner.image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"input {h} x {w}", fontsize=9)
    for ax, (name, f) in zip(axes[1:], inner.features.items()):
        ax.imshow(feature_energy(f), cmap="magma", extent=(0, w, h, 0), interpolation="nearest")
        ax.set_title(
            f"{name}: {f.shape[0]} ch. x {f.shape[1]} x {f.shape[2]}\n(stride {inner.strides[name]})", fontsize=9
        )
    for ax in axes:
        ax.set_axis_off()
    return fig


def plot_anchors_and_proposals(
    inner: Internals, reference_boxes=None, point=None, fg_iou: float = 0.7, top_n: int = 30
):
    """Three panels: the anchors at one image position (every level), the positive anchors of the
    reference boxes, and the RPN's ``top_n`` proposals coloured by objectness.

    Parameters
    ----------
    inner : Internals
        What :func:`model_internals` kept.
    reference_boxes : numpy.ndarray of float, shape (K, 4), or None
        Reference boxes as x0, y0, x1, y1 (pixels).
    point : tuple of float or None
        ``(y, x)`` (pixels) of the anchors shown; default the centre of the largest
        reference box, else the image centre.
    fg_iou : float
        IoU threshold of a positive anchor (:func:`positive_anchors`).
    top_n : int
        Number of proposals drawn (>= 1).

    Returns
    -------
    matplotlib.figure.Figure
        The three panels.

    Raises
    ------
    ValueError
        When ``top_n`` < 1 or ``fg_iou`` is outside [0, 1].
    """
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    check_range("top_n", top_n, 1, None)
    h, w = inner.image.shape
    refs = (
        np.zeros((0, 4), np.float32)
        if reference_boxes is None
        else np.asarray(reference_boxes, np.float32).reshape(-1, 4)
    )
    if point is None:
        if len(refs):
            k = int(np.argmax((refs[:, 2] - refs[:, 0]) * (refs[:, 3] - refs[:, 1])))
            point = ((refs[k, 1] + refs[k, 3]) / 2, (refs[k, 0] + refs[k, 2]) / 2)
        else:
            point = (h / 2, w / 2)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), constrained_layout=True)
    for ax in axes:
        ax.imshow(inner.image, cmap="gray", vmin=0, vmax=1)
        ax.set_xlim(-0.25 * w, 1.25 * w)
        ax.set_ylim(1.25 * h, -0.25 * h)
        ax.set_axis_off()
    cmap = colormaps["viridis"]
    n_levels = len(inner.features)
    handles = []
    for lv, name in enumerate(inner.features):
        color = cmap(lv / max(1, n_levels - 1))
        boxes = anchors_at(inner, lv, *point)
        _draw_boxes(axes[0], boxes, color, lw=1.6 if lv < 2 else 1.0)
        side = float(np.sqrt(np.median((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))))
        handles.append(Line2D([], [], color=color, label=f"{name}: {side:.0f} px"))
    axes[0].plot(point[1], point[0], "r+", ms=10)
    axes[0].legend(handles=handles, fontsize=7, loc="lower left", framealpha=0.8)
    axes[0].set_title(
        f"{inner.anchors_per_position} anchors per position on each level\n({len(inner.anchors)} anchors in all)",
        fontsize=9,
    )

    pos = positive_anchors(inner, refs, fg_iou) if len(refs) else np.zeros(0, int)
    _draw_boxes(axes[1], inner.anchors[pos], "tab:orange", lw=0.8, alpha=0.7)
    _draw_boxes(axes[1], refs, "cyan", lw=1.4, ls="--")
    axes[1].set_title(
        f"{len(pos)} positive anchors (IoU >= {fg_iou:g} or best)\nfor {len(refs)} reference boxes (dashed)", fontsize=9
    )

    k = min(top_n, len(inner.proposals))
    sc = inner.proposal_scores[:k]
    norm = (
        Normalize(float(sc.min()), float(sc.max()) if k and sc.max() > sc.min() else float(sc.min()) + 1e-6)
        if k
        else None
    )
    for box, s in zip(inner.proposals[:k][::-1], sc[::-1]):
        _draw_boxes(axes[2], box, colormaps["plasma"](norm(float(s))), lw=1.0)
    lo = f"{sc.min():.2f}" if k else "-"
    hi = f"{sc.max():.2f}" if k else "-"
    axes[2].set_title(
        f"top {k} of {len(inner.proposals)} RPN proposals\n(objectness {lo} to {hi}; yellow = highest)", fontsize=9
    )
    return fig


def plot_roi(inner: Internals):
    """ROIAlign and the mask head for one ROI.

    Three panels: the box on the image, the ROIAlign output (channel RMS, r x r) and the
    predicted 2r x 2r mask probability.

    Parameters
    ----------
    inner : Internals
        What :func:`model_internals` kept.

    Returns
    -------
    matplotlib.figure.Figure
        The three panels (empty ones when there was no proposal).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), constrained_layout=True)
    axes[0].imshow(inner.image, cmap="gray", vmin=0, vmax=1)
    if inner.roi_box is None:
        for ax in axes:
            ax.set_axis_off()
        axes[0].set_title("no proposal: nothing to align", fontsize=9)
        return fig
    _draw_boxes(axes[0], inner.roi_box, "yellow", lw=1.5)
    axes[0].set_title("the best-scoring ROI", fontsize=9)
    r = inner.roi_features.shape[-1]
    axes[1].imshow(feature_energy(inner.roi_features), cmap="magma", interpolation="nearest")
    axes[1].set_title(f"ROIAlign: {inner.roi_features.shape[0]} ch. x {r} x {r}\n(any box -> fixed grid)", fontsize=9)
    m = inner.roi_mask.shape[-1]
    im = axes[2].imshow(inner.roi_mask, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"mask head: {m} x {m} probability\n(resized into the box, threshold 0.5)", fontsize=9)
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_axis_off()
    return fig
