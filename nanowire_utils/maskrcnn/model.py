"""The torchvision Mask R-CNN built from a :class:`~nanowire_utils.maskrcnn.config.TrainConfig`,
its checkpoint format, and conversion of its outputs to :class:`~nanowire_utils.instances.Instances`.

Checkpoint format (a contract with :mod:`nanowire_utils.maskrcnn.inference`)
-------------------------------------------------------------------
A training run directory ``RUN_DIR`` holds::

    RUN_DIR/config.json                      resolved configuration (TrainConfig.to_dict + provenance "_*" keys)
    RUN_DIR/checkpoints/model_<iter:07d>.pth  periodic checkpoints
    RUN_DIR/model_final.pth                  the last one, written when training ends
    RUN_DIR/last_checkpoint                  text: path of the newest checkpoint, relative to RUN_DIR
    RUN_DIR/metrics.jsonl                    one JSON object per logged iteration or evaluation

Each ``.pth`` is ``torch.save`` of a dict::

    {"model": state_dict, "optimizer": state_dict, "scheduler": state_dict,
     "iteration": int, "config": dict (TrainConfig.to_dict()), "engine": "torchvision",
     "arch": str (see arch_string), "rng": {...}, "elapsed_s": float}

readable with ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import logging

import numpy as np

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.config import TrainConfig
from nanowire_utils.maskrcnn.engine import read_checkpoint, resolve_checkpoint_path

log = logging.getLogger(__name__)

#: Keys that change the model's parameters (and so the state dict).
ARCH_KEYS = (
    "MODEL.RESNETS.DEPTH",
    "MODEL.RESNETS.NORM",
    "MODEL.FPN.OUT_CHANNELS",
    "MODEL.FPN.NORM",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "MODEL.ROI_BOX_HEAD.NUM_CONV",
    "MODEL.ROI_BOX_HEAD.CONV_DIM",
    "MODEL.ROI_BOX_HEAD.NUM_FC",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "MODEL.ROI_BOX_HEAD.NORM",
    "MODEL.ROI_MASK_HEAD.NUM_CONV",
    "MODEL.ROI_MASK_HEAD.CONV_DIM",
    "MODEL.ROI_MASK_HEAD.NORM",
)


def arch_string(cfg: TrainConfig) -> str:
    """A short name of the architecture, for logs and file names.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration.

    Returns
    -------
    str
        E.g. ``maskrcnn_R18-GN_FPN128_mask28`` (ResNet depth and norm, FPN channels, mask
        size in pixels).
    """
    return (
        f"maskrcnn_R{cfg['MODEL.RESNETS.DEPTH']}-{cfg['MODEL.RESNETS.NORM']}"
        f"_FPN{cfg['MODEL.FPN.OUT_CHANNELS']}_mask{2 * cfg['MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION']}"
    )


def _norm_layer(kind: str):
    import torch.nn as nn
    from torchvision.ops.misc import FrozenBatchNorm2d

    if kind in ("", None):
        return None
    if kind == "FrozenBN":
        return FrozenBatchNorm2d
    if kind in ("BN", "SyncBN"):
        return nn.BatchNorm2d
    if kind == "GN":

        def gn(c):
            return nn.GroupNorm(min(32, c), c)

        return gn
    raise ValueError(f"unknown norm {kind!r}; use FrozenBN, BN, SyncBN or GN")


def _anchor_sizes(cfg, n_levels=5):
    sizes = cfg["MODEL.ANCHOR_GENERATOR.SIZES"]
    ratios = cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"]
    if len(sizes) == 1:
        # detectron2: one list for all levels means those sizes at every level
        sizes = sizes * n_levels
    if len(ratios) == 1:
        ratios = ratios * n_levels
    return tuple(tuple(float(s) for s in x) for x in sizes), tuple(tuple(float(r) for r in x) for x in ratios)


def _make_transform_class():
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class TrainTestTransform(GeneralizedRCNNTransform):
        """Resize/normalise with detectron2's separate train and test sizes.

        torchvision's transform has one ``min_size``/``max_size``; this one swaps in
        INPUT.MIN_SIZE_TRAIN / MAX_SIZE_TRAIN in training and *_TEST in eval mode.
        """

        def __init__(self, min_train, max_train, min_test, max_test, mean, std):
            super().__init__(min_test, max_test, mean, std)
            self.sizes = {True: (tuple(min_train), max_train), False: ((min_test,), max_test)}

        def forward(self, images, targets=None):
            self.min_size, self.max_size = self.sizes[self.training]
            return super().forward(images, targets)

    return TrainTestTransform


def build_model(cfg: TrainConfig):
    """A torchvision Mask R-CNN (ResNet-FPN backbone) configured by ``cfg``; random weights.

    Never downloads anything (``weights_backbone=None``); initial weights are loaded by
    :func:`nanowire_utils.maskrcnn.weights.load_initial_weights`. Class count is
    ``MODEL.ROI_HEADS.NUM_CLASSES + 1`` (torchvision counts the background). Backbone
    stages before ``MODEL.BACKBONE.FREEZE_AT`` get ``requires_grad=False``.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration (architecture, anchors, input sizes, heads).

    Returns
    -------
    torchvision.models.detection.MaskRCNN
        The model, with random weights, in training mode.
    """
    import torchvision
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig.from_dict(cfg)
    depth = cfg["MODEL.RESNETS.DEPTH"]
    norm = cfg["MODEL.RESNETS.NORM"]
    body = getattr(torchvision.models, f"resnet{depth}")(weights=None, norm_layer=_norm_layer(norm))
    # detectron2's FREEZE_AT: 1 = stem, 2 = stem + res2, ...; torchvision's trainable_layers = 5 - FREEZE_AT
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][: 5 - cfg["MODEL.BACKBONE.FREEZE_AT"]]
    if len(trainable) == 5:
        trainable.append("bn1")
    for name, p in body.named_parameters():
        if not any(name.startswith(t) for t in trainable):
            p.requires_grad_(False)
    c2 = 64 if depth < 50 else 256
    out_ch = cfg["MODEL.FPN.OUT_CHANNELS"]
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[c2, c2 * 2, c2 * 4, c2 * 8],
        out_channels=out_ch,
        extra_blocks=LastLevelMaxPool(),
        norm_layer=_norm_layer(cfg["MODEL.FPN.NORM"]),
    )
    sizes, ratios = _anchor_sizes(cfg)
    anchors = AnchorGenerator(sizes, ratios)
    rpn_head = RPNHead(out_ch, anchors.num_anchors_per_location()[0])
    if len(set(anchors.num_anchors_per_location())) != 1:
        raise ValueError(
            "every FPN level needs the same number of anchors (sizes x aspect ratios) for the shared RPN head"
        )

    box_res = cfg["MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION"]
    n_conv, n_fc = cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"], cfg["MODEL.ROI_BOX_HEAD.NUM_FC"]
    fc_dim = cfg["MODEL.ROI_BOX_HEAD.FC_DIM"]
    if n_conv == 0 and n_fc == 2 and not cfg["MODEL.ROI_BOX_HEAD.NORM"]:
        box_head = TwoMLPHead(out_ch * box_res**2, fc_dim)  # torchvision's (and detectron2's) default
    else:
        box_head = FastRCNNConvFCHead(
            (out_ch, box_res, box_res),
            [cfg["MODEL.ROI_BOX_HEAD.CONV_DIM"]] * n_conv,
            [fc_dim] * n_fc,
            norm_layer=_norm_layer(cfg["MODEL.ROI_BOX_HEAD.NORM"]),
        )
    num_classes = cfg["MODEL.ROI_HEADS.NUM_CLASSES"] + 1
    mask_dim = cfg["MODEL.ROI_MASK_HEAD.CONV_DIM"]
    mask_head = MaskRCNNHeads(
        out_ch,
        [mask_dim] * cfg["MODEL.ROI_MASK_HEAD.NUM_CONV"],
        1,
        norm_layer=_norm_layer(cfg["MODEL.ROI_MASK_HEAD.NORM"]),
    )
    levels = ["0", "1", "2", "3"]
    bg, fg = cfg["MODEL.RPN.IOU_THRESHOLDS"]
    roi_iou = cfg["MODEL.ROI_HEADS.IOU_THRESHOLDS"][0]
    model = MaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=rpn_head,
        rpn_pre_nms_top_n_train=cfg["MODEL.RPN.PRE_NMS_TOPK_TRAIN"],
        rpn_pre_nms_top_n_test=cfg["MODEL.RPN.PRE_NMS_TOPK_TEST"],
        rpn_post_nms_top_n_train=cfg["MODEL.RPN.POST_NMS_TOPK_TRAIN"],
        rpn_post_nms_top_n_test=cfg["MODEL.RPN.POST_NMS_TOPK_TEST"],
        rpn_nms_thresh=cfg["MODEL.RPN.NMS_THRESH"],
        rpn_fg_iou_thresh=fg,
        rpn_bg_iou_thresh=bg,
        rpn_batch_size_per_image=cfg["MODEL.RPN.BATCH_SIZE_PER_IMAGE"],
        rpn_positive_fraction=cfg["MODEL.RPN.POSITIVE_FRACTION"],
        box_roi_pool=MultiScaleRoIAlign(levels, box_res, 2),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(fc_dim, num_classes),
        box_score_thresh=cfg["MODEL.ROI_HEADS.SCORE_THRESH_TEST"],
        box_nms_thresh=cfg["MODEL.ROI_HEADS.NMS_THRESH_TEST"],
        box_detections_per_img=cfg["TEST.DETECTIONS_PER_IMAGE"],
        box_fg_iou_thresh=roi_iou,
        box_bg_iou_thresh=roi_iou,
        box_batch_size_per_image=cfg["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"],
        box_positive_fraction=cfg["MODEL.ROI_HEADS.POSITIVE_FRACTION"],
        mask_roi_pool=MultiScaleRoIAlign(levels, cfg["MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION"], 2),
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(mask_dim, mask_dim, num_classes),
    )
    _init_predictors_like_detectron2(model)
    mean = [m / 255.0 for m in cfg["MODEL.PIXEL_MEAN"]]
    std = [s / 255.0 for s in cfg["MODEL.PIXEL_STD"]]
    model.transform = _make_transform_class()(
        cfg["INPUT.MIN_SIZE_TRAIN"],
        cfg["INPUT.MAX_SIZE_TRAIN"],
        cfg["INPUT.MIN_SIZE_TEST"],
        cfg["INPUT.MAX_SIZE_TEST"],
        mean,
        std,
    )
    model.nanowire_arch = arch_string(cfg)
    return model


def _init_predictors_like_detectron2(model):
    """Small initial outputs of the class-specific layers, as detectron2 initialises them.

    torchvision's kaiming init of the mask logits gives mask losses of 5-20 at iteration 0
    of a from-scratch run; detectron2 draws the mask logits' and box deltas' weights with
    std 0.001 and the class scores' with std 0.01, which starts every loss near its
    uninformed value (ln 2 for the masks).
    """
    import torch.nn as nn

    pred = model.roi_heads.box_predictor
    nn.init.normal_(pred.cls_score.weight, std=0.01)
    nn.init.normal_(pred.bbox_pred.weight, std=0.001)
    nn.init.zeros_(pred.cls_score.bias)
    nn.init.zeros_(pred.bbox_pred.bias)
    logits = model.roi_heads.mask_predictor.mask_fcn_logits
    nn.init.normal_(logits.weight, std=0.001)
    nn.init.zeros_(logits.bias)


def count_parameters(model) -> dict:
    """Number of parameters of a model.

    Parameters
    ----------
    model : torch.nn.Module
        Any model.

    Returns
    -------
    dict
        ``{"total": n, "trainable": n}``.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


# --------------------------------------------------------------------------- checkpoints


def _describe_mismatch(model, state, cfg, ckpt_cfg) -> str:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    parts = []
    if ckpt_cfg is not None:
        diff = {k: (cfg[k], ckpt_cfg[k]) for k in ARCH_KEYS if cfg[k] != ckpt_cfg.get(k, cfg[k])}
        if diff:
            parts.append(
                "configs differ in " + ", ".join(f"{k} (model {a!r}, checkpoint {b!r})" for k, (a, b) in diff.items())
            )
    if missing:
        parts.append(f"{len(missing)} missing keys, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[0]}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} shape mismatches, e.g. {k} {tuple(own[k].shape)} vs {tuple(state[k].shape)}")
    return "; ".join(parts)


def load_state_checked(model, state: dict, cfg: TrainConfig, ckpt_cfg: dict | None = None, source="checkpoint"):
    """``model.load_state_dict(state)`` (strict), with an error that names what differs.

    Parameters
    ----------
    model : torch.nn.Module
        The model built from ``cfg``.
    state : dict
        A state dict.
    cfg : TrainConfig
        The configuration the model was built from.
    ckpt_cfg : dict or None
        The configuration saved with ``state``, to name the differing keys.
    source : str
        Names ``state`` in the error message.

    Raises
    ------
    ValueError
        When keys or shapes differ, naming the configuration keys that differ.
    """
    own = model.state_dict()
    ok = set(own) == set(state) and all(tuple(own[k].shape) == tuple(state[k].shape) for k in own)
    if not ok:
        raise ValueError(
            f"{source} does not fit this model ({arch_string(cfg)}): {_describe_mismatch(model, state, cfg, ckpt_cfg)}; "
            "build the model from the checkpoint's own config (load_checkpoint does) or train again"
        )
    model.load_state_dict(state)


def load_checkpoint(path_or_run_dir, map_location="cpu", cfg: TrainConfig | None = None):
    """Load a trained torchvision model.

    Parameters
    ----------
    path_or_run_dir : str or os.PathLike
        A ``.pth`` file or a run directory (newest checkpoint).
    map_location : str or torch.device
        Where the tensors are loaded (``torch.load``'s ``map_location``).
    cfg : TrainConfig or None
        The architecture you expect; default the checkpoint's own config. With it, a
        mismatch raises ValueError naming the differing keys.

    Returns
    -------
    model : torchvision.models.detection.MaskRCNN
        The model, in eval mode.
    cfg : TrainConfig
        Its configuration.

    Raises
    ------
    FileNotFoundError
        When there is no checkpoint.
    ValueError
        When it is truncated, corrupt, holds no config (and ``cfg`` is None), or is of
        another architecture.
    """
    ckpt = read_checkpoint(path_or_run_dir, map_location=map_location)
    ckpt_cfg = ckpt.get("config")
    if cfg is None:
        if ckpt_cfg is None:
            raise ValueError(f"checkpoint {path_or_run_dir} holds no 'config'; pass cfg= to load it")
        cfg = TrainConfig.from_dict(ckpt_cfg)
    model = build_model(cfg)
    load_state_checked(
        model, ckpt["model"], cfg, ckpt_cfg, source=f"checkpoint {resolve_checkpoint_path(path_or_run_dir)}"
    )
    model.eval()
    return model, cfg


# --------------------------------------------------------------------------- outputs
def outputs_to_instances(output: dict, score_thresh: float = 0.5, mask_thresh: float = 0.5) -> Instances:
    """One image's torchvision output as :class:`Instances`.

    Parameters
    ----------
    output : dict
        ``boxes`` (N, 4) x0, y0, x1, y1 pixels, ``scores`` (N,), ``masks`` (N, 1, H, W)
        soft masks in [0, 1] (torch tensors).
    score_thresh : float
        Keep detections scoring at least this.
    mask_thresh : float
        Threshold of the soft masks.

    Returns
    -------
    Instances
        The kept detections, on the CPU.
    """
    scores = output["scores"].detach().float().cpu().numpy()
    keep = scores >= score_thresh
    boxes = output["boxes"].detach().float().cpu().numpy()[keep]
    masks = output["masks"].detach()
    if masks.ndim == 4:
        masks = masks[:, 0]
    masks = (masks.float().cpu().numpy() >= mask_thresh)[keep] if len(masks) else np.zeros((0, *masks.shape[-2:]), bool)
    return Instances(masks, boxes, scores[keep])
