"""One configuration vocabulary for training and inference, under detectron2's key names.

The paper (Lin, Emami et al. 2022, section 2.3 and Table 1) trained detectron2's Mask R-CNN
and reported its hyperparameters in detectron2's terms (learning rate, ROI head batch size,
RPN IoU threshold, NMS). This module keeps exactly those names (``SOLVER.BASE_LR``,
``MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE``, ``MODEL.RPN.IOU_THRESHOLDS``, ...) so that a value
in a notebook, on the command line (``--set SOLVER.BASE_LR=0.01``) or in a ``config.json``
means the same thing to both engines: the torchvision engine (CPU or GPU, always available)
and the detectron2 engine (GPU, optional). :func:`torchvision_mapping` lists, key by key,
what each detectron2 key becomes in torchvision, and which keys torchvision ignores.

A few keys are this project's own (marked *project key* in :func:`torchvision_mapping`):
``ENGINE``, ``DEVICE``, the ``INPUT.AUG.*`` augmentations of the paper, ``SOLVER.EPOCHS``
(the paper counts epochs; detectron2 counts iterations, see :func:`epochs_to_iterations`),
``SOLVER.MAX_MINUTES`` (a wall-clock budget) and ``DATASET.*`` (the synthetic data set a
preset expects, so notebooks can generate it).

Scale presets (:data:`PRESETS`, :meth:`TrainConfig.from_preset`):

``smoke``
    Seconds on a CPU, for tests and CI: 128 px images, ResNet-18, a few iterations.
``cpu``
    Teaching scale for a 2-core laptop, about 30 minutes: ResNet-18 + FPN 128 with GroupNorm
    (backbone, FPN and mask head), light heads, the mask loss weighted 3x, thin-wire anchors
    (aspect ratios 0.25-4), whole 512 px images resized to 256 px inside the model (for training, testing and every image it segments:
    :func:`nanowire_utils.maskrcnn.engine.model_input_scale` is 0.5), batch 4, LR 0.04,
    bfloat16 autocast on CPU,
    1500 iterations with the LR drop at 1200 (a schedule in iterations: the same seed gives
    the same model on any machine); 1000 images expected. How it was chosen:
    :func:`cpu_preset_notes`.
``cpu-long``
    The ``cpu`` preset for 6000 iterations, four times longer, with LR drops at 4800 and 5600
    (about 2 hours on the 2-core reference machine: an evening on a laptop).
``cpu-finetune``
    torchvision's COCO ResNet-50-FPN weights fine-tuned on a CPU (needs the weights).
``paper``
    The paper's setting on a GPU: 1000 images of 512 px, ResNet-50-FPN, LR 0.02, ROI batch
    256, RPN IoU 0.6, NMS 0.7, 500 epochs, 8 images per GPU, COCO-pretrained weights when
    they can be had (else from scratch with GroupNorm).
``auto``
    ``paper`` when CUDA is available; on a CPU, ``cpu-finetune`` for training when the COCO
    weights can be had, else ``cpu``.

Example
-------
>>> cfg = TrainConfig.from_preset("smoke", **{"SOLVER.BASE_LR": 0.01})
>>> cfg.set("SOLVER.MAX_ITER=50")
>>> cfg["SOLVER.MAX_ITER"]
50
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.overrides import parse_assignment, parse_value

log = logging.getLogger(__name__)

ENGINES = ("auto", "torchvision", "detectron2")
NORMS = ("FrozenBN", "BN", "SyncBN", "GN")


# --------------------------------------------------------------------------- validators
def _num(low=None, high=None, *, low_inclusive=True, integer=False, unit=""):
    def check(name, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name} must be a number, got {v!r}")
        if integer and int(v) != v:
            raise ValueError(f"{name} must be an integer, got {v!r}")
        check_range(name, v, low, high, low_inclusive=low_inclusive, unit=unit)
        return int(v) if integer else float(v)

    return check


def _opt(inner):
    def check(name, v):
        return None if v is None else inner(name, v)

    return check


def _bool(name, v):
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be True or False, got {v!r}")
    return v


def _str(name, v):
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a string, got {v!r}")
    return v


def _choice(*choices):
    def check(name, v):
        return check_choice(name, v, choices)

    return check


def _seq(inner, min_len=1, max_len=None):
    def check(name, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {v!r}")
        if len(v) < min_len or (max_len is not None and len(v) > max_len):
            n = f"{min_len}" if max_len == min_len else f"{min_len}..{max_len or 'any'}"
            raise ValueError(f"{name} must have {n} elements, got {list(v)!r}")
        return [inner(f"{name}[{i}]", x) for i, x in enumerate(v)]

    return check


def _anchor_lists(inner):
    """detectron2 allows [a, b, c] (same for every level) or [[a], [b], ...] (per level)."""

    def check(name, v):
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"{name} must be a non-empty list (of lists), got {v!r}")
        if all(isinstance(x, (list, tuple)) for x in v):
            return [_seq(inner)(f"{name}[{i}]", x) for i, x in enumerate(v)]
        return [_seq(inner)(name, v)]

    return check


@dataclass(frozen=True)
class Key:
    """One configuration key: its default, its check, and what torchvision makes of it."""

    name: str
    default: Any
    check: Callable
    torchvision: str  # the torchvision equivalent, or "" when it has none
    doc: str
    project: bool = False  # not a detectron2 key


_P = _num(0, low_inclusive=False)
_INT_POS = _num(1, integer=True)
_INT_NONNEG = _num(0, integer=True)
_FRAC = _num(0, 1)

# fmt: off
KEYS: tuple[Key, ...] = (
    # ---- engine / run
    Key("ENGINE", "auto", _choice(*ENGINES), "-", "Which implementation trains: 'torchvision' (always available), 'detectron2' (GPU, optional) or 'auto' (detectron2 when importable with CUDA, else torchvision).", True),
    Key("DEVICE", "auto", _choice("auto", "cpu", "cuda"), "torch.device", "'auto' = CUDA when available, else CPU (detectron2: MODEL.DEVICE).", True),
    Key("SEED", 0, _num(0, integer=True), "torch/numpy/random seeds", "Seed of weights init, augmentation and data order; the same seed gives the same run on the same machine."),
    # ---- model
    Key("MODEL.WEIGHTS", "", _str, "state dict loaded with strict=False, class-specific predictors skipped", "Initial weights: '' = from scratch, 'coco' = torchvision's COCO maskrcnn_resnet50_fpn weights when they can be found or downloaded (see nanowire_utils.maskrcnn.weights), or a path to a .pth file."),
    Key("MODEL.MASK_ON", True, _bool, "ignored: torchvision MaskRCNN always predicts masks", "Predict masks."),
    Key("MODEL.PIXEL_MEAN", [123.675, 116.28, 103.53], _seq(_num(), 3, 3), "MaskRCNN(image_mean=PIXEL_MEAN/255)", "Per-channel mean subtracted from RGB images, in 0-255 units (torchvision's ImageNet values, which its COCO weights expect)."),
    Key("MODEL.PIXEL_STD", [58.395, 57.12, 57.375], _seq(_P, 3, 3), "MaskRCNN(image_std=PIXEL_STD/255)", "Per-channel standard deviation, in 0-255 units."),
    Key("MODEL.RESNETS.DEPTH", 50, _choice(18, 34, 50, 101), "resnet_fpn_backbone(backbone_name=f'resnet{DEPTH}')", "ResNet depth of the backbone."),
    Key("MODEL.RESNETS.NORM", "FrozenBN", _choice(*NORMS), "norm_layer: FrozenBatchNorm2d / BatchNorm2d / GroupNorm(32)", "Backbone normalisation. FrozenBN only with pretrained weights; from scratch use GN or BN (trainable)."),
    Key("MODEL.BACKBONE.FREEZE_AT", 2, _choice(0, 1, 2, 3, 4, 5), "trainable_layers = 5 - FREEZE_AT", "Freeze the stem (1) and the first FREEZE_AT-1 ResNet stages; 0 trains everything (required from scratch)."),
    Key("MODEL.FPN.OUT_CHANNELS", 256, _INT_POS, "BackboneWithFPN(out_channels=...)", "Channels of every FPN level."),
    Key("MODEL.FPN.NORM", "", _choice("", "GN", "BN"), "FeaturePyramidNetwork(norm_layer=...)", "Normalisation in the FPN convolutions ('' = none)."),
    Key("MODEL.ANCHOR_GENERATOR.SIZES", [[32], [64], [128], [256], [512]], _anchor_lists(_P), "AnchorGenerator(sizes=...)", "Anchor sizes in pixels, one list per FPN level (P2-P6)."),
    Key("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0]], _anchor_lists(_P), "AnchorGenerator(aspect_ratios=..., repeated per level)", "Anchor height/width ratios; long thin wires benefit from 0.25 and 4."),
    Key("MODEL.RPN.IOU_THRESHOLDS", [0.3, 0.7], _seq(_FRAC, 2, 2), "rpn_bg_iou_thresh, rpn_fg_iou_thresh", "IoU of an anchor with a reference below which it is background / above which it is foreground (paper Table 1 'IOU THR' is the upper one)."),
    Key("MODEL.RPN.NMS_THRESH", 0.7, _FRAC, "rpn_nms_thresh", "NMS IoU among RPN proposals (paper Table 1 'NMS')."),
    Key("MODEL.RPN.BATCH_SIZE_PER_IMAGE", 256, _INT_POS, "rpn_batch_size_per_image", "Anchors sampled per image for the RPN loss."),
    Key("MODEL.RPN.POSITIVE_FRACTION", 0.5, _FRAC, "rpn_positive_fraction", "Fraction of positive anchors in that sample."),
    Key("MODEL.RPN.PRE_NMS_TOPK_TRAIN", 2000, _INT_POS, "rpn_pre_nms_top_n_train (per level in both)", "Proposals kept per FPN level before NMS, training."),
    Key("MODEL.RPN.PRE_NMS_TOPK_TEST", 1000, _INT_POS, "rpn_pre_nms_top_n_test", "Same at test time."),
    Key("MODEL.RPN.POST_NMS_TOPK_TRAIN", 1000, _INT_POS, "rpn_post_nms_top_n_train (torchvision: per image; detectron2: per image since v0.2)", "Proposals kept after NMS, training."),
    Key("MODEL.RPN.POST_NMS_TOPK_TEST", 1000, _INT_POS, "rpn_post_nms_top_n_test", "Same at test time."),
    Key("MODEL.ROI_HEADS.NUM_CLASSES", 1, _INT_POS, "num_classes = NUM_CLASSES + 1 (torchvision counts the background)", "Object classes (1: nanowire)."),
    Key("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 512, _INT_POS, "box_batch_size_per_image", "ROIs sampled per image for the box and mask losses (paper Table 1 'ROI Head')."),
    Key("MODEL.ROI_HEADS.POSITIVE_FRACTION", 0.25, _FRAC, "box_positive_fraction", "Fraction of positive ROIs in that sample."),
    Key("MODEL.ROI_HEADS.IOU_THRESHOLDS", [0.5], _seq(_FRAC, 1, 1), "box_fg_iou_thresh = box_bg_iou_thresh", "IoU of a proposal with a reference above which it is foreground."),
    Key("MODEL.ROI_HEADS.NMS_THRESH_TEST", 0.5, _FRAC, "box_nms_thresh", "NMS IoU among final detections."),
    Key("MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.05, _FRAC, "box_score_thresh", "Detections scoring below are dropped (COCO AP wants low values)."),
    Key("MODEL.ROI_BOX_HEAD.NUM_CONV", 0, _INT_NONNEG, "FastRCNNConvFCHead conv_layers (0: TwoMLPHead-like)", "3x3 convolutions of the box head."),
    Key("MODEL.ROI_BOX_HEAD.CONV_DIM", 256, _INT_POS, "FastRCNNConvFCHead conv_layers width", "Their channels."),
    Key("MODEL.ROI_BOX_HEAD.NUM_FC", 2, _INT_POS, "FastRCNNConvFCHead fc_layers", "Fully connected layers of the box head."),
    Key("MODEL.ROI_BOX_HEAD.FC_DIM", 1024, _INT_POS, "FastRCNNConvFCHead fc_layers width", "Their width."),
    Key("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 7, _INT_POS, "MultiScaleRoIAlign(output_size) of box_roi_pool", "ROIAlign output of the box head."),
    Key("MODEL.ROI_BOX_HEAD.NORM", "", _choice("", "GN", "BN"), "FastRCNNConvFCHead(norm_layer)", "Normalisation in the box head convolutions."),
    Key("MODEL.ROI_MASK_HEAD.NUM_CONV", 4, _INT_POS, "MaskRCNNHeads layers", "3x3 convolutions of the mask head."),
    Key("MODEL.ROI_MASK_HEAD.CONV_DIM", 256, _INT_POS, "MaskRCNNHeads layers width", "Their channels."),
    Key("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", 14, _INT_POS, "MultiScaleRoIAlign(output_size) of mask_roi_pool", "ROIAlign output of the mask head; the predicted mask is twice this (14 -> 28 x 28)."),
    Key("MODEL.ROI_MASK_HEAD.NORM", "", _choice("", "GN", "BN"), "MaskRCNNHeads(norm_layer)", "Normalisation in the mask head convolutions."),
    Key("MODEL.ROI_MASK_HEAD.LOSS_WEIGHT", 1.0, _P, "project: loss_mask x LOSS_WEIGHT in the total loss (detectron2: mask_head.loss_weight)", "Weight of the mask loss in the total loss (1: Mask R-CNN's; the logged loss_mask is the weighted one).", True),
    # ---- input
    Key("INPUT.MIN_SIZE_TRAIN", [512], _seq(_INT_POS), "min_size (tuple: one picked at random per batch)", "Short side an image is resized to for training, pixels."),
    Key("INPUT.MAX_SIZE_TRAIN", 512, _INT_POS, "max_size (torchvision: one value for train and test; training images are resized by min size only, crops are never larger than this)", "Upper bound of the long side, pixels (torchvision uses one max_size for train and test: the larger of the two)."),
    Key("INPUT.MIN_SIZE_TEST", 512, _INT_POS, "min_size at eval", "Short side at test time, pixels."),
    Key("INPUT.MAX_SIZE_TEST", 512, _INT_POS, "max_size at eval", "Long side bound at test time, pixels."),
    Key("INPUT.CROP.ENABLED", False, _bool, "project RandomCrop in the data loader", "Train on random crops (keeps wire widths in pixels while costing less per iteration)."),
    Key("INPUT.CROP.TYPE", "absolute", _choice("absolute", "relative", "relative_range", "absolute_range"), "ignored: the project crop is always 'absolute'", "How INPUT.CROP.SIZE is read; the torchvision engine supports only 'absolute' (pixels)."),
    Key("INPUT.CROP.SIZE", [256, 256], _seq(_INT_POS, 2, 2), "crop height, width in pixels", "Crop size (rows, cols) in pixels."),
    Key("INPUT.AUG.BRIGHTNESS", [0.7, 1.2], _seq(_P, 2, 2), "project ColorJitter-like brightness factor", "Random brightness factor range (paper 0.7-1.2; [1, 1] disables).", True),
    Key("INPUT.AUG.CONTRAST", [0.7, 1.2], _seq(_P, 2, 2), "project contrast factor about the image mean", "Random contrast factor range (paper 0.7-1.2).", True),
    Key("INPUT.AUG.HFLIP_PROB", 0.5, _FRAC, "project horizontal flip", "Probability of a horizontal flip (paper 0.5).", True),
    Key("INPUT.AUG.VFLIP_PROB", 0.5, _FRAC, "project vertical flip", "Probability of a vertical flip (paper 0.5).", True),
    # ---- solver
    Key("SOLVER.BASE_LR", 0.02, _num(0, 10, low_inclusive=False), "SGD(lr) / AdamW(lr)", "Learning rate after warmup (paper 0.01-0.03)."),
    Key("SOLVER.IMS_PER_BATCH", 16, _INT_POS, "images per iteration over all processes", "Images per iteration, all GPUs/processes together (detectron2 semantics); each of W processes loads IMS_PER_BATCH / W."),
    Key("SOLVER.MAX_ITER", 40000, _INT_POS, "iterations of the training loop", "Training length in iterations (overridden by SOLVER.EPOCHS when set)."),
    Key("SOLVER.EPOCHS", None, _opt(_P), "MAX_ITER = ceil(EPOCHS x n_train / IMS_PER_BATCH)", "Training length in epochs, the paper's unit; None uses MAX_ITER. STEPS keep their fraction of the schedule.", True),
    Key("SOLVER.MAX_MINUTES", 0.0, _num(0), "wall-clock budget", "Stop cleanly (final checkpoint) after this many minutes of training, 0 = no budget. With a budget, the LR steps fall at whichever comes first: their iteration or the same fraction of the budget.", True),
    Key("SOLVER.WARMUP_ITERS", 1000, _INT_NONNEG, "linear warmup in the project scheduler", "Iterations of linear warmup."),
    Key("SOLVER.WARMUP_FACTOR", 0.001, _num(0, 1, low_inclusive=False), "warmup start factor", "LR factor at iteration 0 of the warmup."),
    Key("SOLVER.WARMUP_METHOD", "linear", _choice("linear", "constant"), "warmup shape", "Warmup shape."),
    Key("SOLVER.LR_SCHEDULER_NAME", "WarmupMultiStepLR", _choice("WarmupMultiStepLR", "WarmupCosineLR"), "the project WarmupSchedule (step or cosine to 0, as detectron2's)", "LR schedule after the warmup: steps at SOLVER.STEPS (detectron2's default) or a cosine from BASE_LR to 0 at MAX_ITER."),
    Key("SOLVER.STEPS", [30000], _seq(_INT_POS, 0), "iterations where LR x= GAMMA", "Iterations at which the LR is multiplied by GAMMA."),
    Key("SOLVER.GAMMA", 0.1, _num(0, 1, low_inclusive=False), "LR factor per step", "LR factor at each step."),
    Key("SOLVER.OPTIMIZER", "SGD", _choice("SGD", "AdamW"), "torch.optim.SGD / torch.optim.AdamW (detectron2 engine: the same, built by its trainer)", "Optimizer: SGD with momentum (detectron2's, the paper's) or AdamW (decoupled WEIGHT_DECAY, betas 0.9/0.999, MOMENTUM unused).", True),
    Key("SOLVER.MOMENTUM", 0.9, _num(0, 0.999), "SGD(momentum)", "SGD momentum."),
    Key("SOLVER.NESTEROV", False, _bool, "SGD(nesterov)", "Nesterov momentum."),
    Key("SOLVER.WEIGHT_DECAY", 1e-4, _num(0, 1), "SGD(weight_decay) / AdamW(weight_decay)", "Weight decay (L2 with SGD, decoupled with AdamW)."),
    Key("SOLVER.CHECKPOINT_PERIOD", 5000, _INT_POS, "checkpoint every N iterations", "Iterations between checkpoints (a final one is always written)."),
    Key("SOLVER.CLIP_GRADIENTS.ENABLED", False, _bool, "torch.nn.utils.clip_grad_norm_", "Clip gradients (helps from-scratch training at a high LR)."),
    Key("SOLVER.CLIP_GRADIENTS.CLIP_VALUE", 10.0, _P, "max_norm", "Gradient norm bound."),
    Key("SOLVER.AMP.ENABLED", True, _bool, "torch.autocast(float16) on CUDA only", "Mixed precision (float16) on CUDA; ignored on CPU by both engines."),
    Key("SOLVER.AMP.CPU_BF16", False, _bool, "torch.autocast('cpu', bfloat16)", "bfloat16 autocast of the forward pass on CPU (fast on CPUs with avx512_bf16 or AMX).", True),
    Key("SOLVER.WEIGHT_DECAY_NORM", 0.0, _num(0, 1), "weight decay of normalisation parameters (separate SGD param group)", "L2 weight decay of BN/GN scales and shifts (detectron2 default 0)."),
    Key("SOLVER.BIAS_LR_FACTOR", 1.0, _P, "ignored: one LR for all parameters", "LR factor for biases."),
    Key("SOLVER.REFERENCE_WORLD_SIZE", 0, _INT_NONNEG, "ignored: no automatic LR/batch rescaling", "detectron2's automatic rescaling of LR and batch to the world size."),
    Key("MODEL.RPN.BBOX_REG_LOSS_TYPE", "smooth_l1", _choice("smooth_l1", "giou", "diou", "ciou"), "ignored: torchvision uses smooth L1 (beta 1/9)", "RPN box regression loss."),
    Key("MODEL.ROI_HEADS.PROPOSAL_APPEND_GT", True, _bool, "ignored: torchvision always appends the references to the proposals", "Add reference boxes to the proposals during training."),
    Key("MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", False, _bool, "ignored: torchvision predicts one mask per class", "One mask for all classes."),
    Key("DATALOADER.ASPECT_RATIO_GROUPING", True, _bool, "ignored: synthetic images are square", "Batch images of similar aspect ratio."),
    Key("TEST.AUG.ENABLED", False, _bool, "ignored: no test-time augmentation in the torchvision engine", "Test-time augmentation."),
    # ---- data / test
    Key("DATALOADER.NUM_WORKERS", 0, _INT_NONNEG, "DataLoader(num_workers)", "Data loader worker processes (0 loads in the training process)."),
    Key("DATALOADER.FILTER_EMPTY_ANNOTATIONS", True, _bool, "skip images without annotations (warning)", "Skip training images without any instance."),
    Key("TEST.EVAL_PERIOD", 0, _INT_NONNEG, "validation AP every N iterations", "Iterations between evaluations on the val split (0 = only at the end)."),
    Key("TEST.DETECTIONS_PER_IMAGE", 100, _INT_POS, "box_detections_per_img", "Most detections per image."),
    Key("TEST.MAX_EVAL_IMAGES", 0, _INT_NONNEG, "project: evaluate on the first N val images", "Limit of images for periodic validation, 0 = all.", True),
    # ---- the synthetic data set the preset expects
    Key("DATASET.N_IMAGES", 1000, _INT_POS, "-", "Synthetic images the preset expects (all splits).", True),
    Key("DATASET.GENERATOR_PRESET", "paper", _str, "-", "nanowire_utils.synth.dataset generator preset to make them with.", True),
    Key("DATASET.IMAGE_SIZE", 512, _INT_POS, "-", "Their size in pixels (square).", True),
)
# fmt: on

KEY_INDEX = {k.name: k for k in KEYS}
DEFAULTS = {k.name: copy.deepcopy(k.default) for k in KEYS}

#: detectron2 keys accepted for compatibility that the torchvision engine cannot honour.
#: A run whose value differs from the default logs a warning and records it in config.json.
TORCHVISION_IGNORED = tuple(k.name for k in KEYS if k.torchvision.startswith("ignored"))


def torchvision_mapping() -> list[dict]:
    """The detectron2-key -> torchvision table, one row per key.

    Render with ``pandas.DataFrame(torchvision_mapping())``.

    Returns
    -------
    list of dict
        Rows with ``key``, ``default``, ``torchvision`` (what the torchvision engine does
        with it; ``"-"`` for keys that only matter outside the model),
        ``ignored_by_torchvision`` (accepted but without effect there; such keys are
        reported when set), ``project_key`` and ``doc``.
    """
    rows = []
    for k in KEYS:
        rows.append(
            {
                "key": k.name,
                "default": k.default,
                "torchvision": k.torchvision,
                "ignored_by_torchvision": k.name in TORCHVISION_IGNORED,
                "project_key": k.project,
                "doc": k.doc,
            }
        )
    return rows


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name.upper(), list(KEY_INDEX), n=1, cutoff=0.5)
    if not close:  # match on the last component, e.g. 'BASE_LR'
        tail = {k.rsplit(".", 1)[-1]: k for k in KEY_INDEX}
        close = [tail[m] for m in difflib.get_close_matches(name.upper().rsplit(".", 1)[-1], list(tail), n=1)]
    return (
        f"; did you mean {close[0]}?"
        if close
        else "; see nanowire_utils.maskrcnn.config.torchvision_mapping() for valid keys"
    )


def _flatten(d: dict, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and name not in KEY_INDEX:
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def same_value(a, b) -> bool:
    """Whether two configuration values are equal, one of them possibly read back from a CSV.

    Parameters
    ----------
    a, b : object
        Configuration values; lists may be JSON text (``"[0.3, 0.6]"``).

    Returns
    -------
    bool
        True when equal; numbers compare with a relative tolerance of 1e-9.
    """
    if isinstance(a, str) and a.startswith("["):
        a = json.loads(a)
    if isinstance(b, str) and b.startswith("["):
        b = json.loads(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def config_diff(
    recorded: dict, now: dict, skip: tuple[str, ...] = (), common_only: bool = False, fill_defaults: bool = False
) -> dict:
    """Keys whose value differs between a recorded configuration and today's.

    Used to tell a reader that a model or a results table was made with an earlier preset.

    Parameters
    ----------
    recorded, now : dict
        Flat configurations (``{"SOLVER.BASE_LR": 0.02, ...}``): as a run or a sweep recorded
        it, and as the presets give it today. Lists may be JSON text (as read from a CSV);
        numbers compare with a relative tolerance of 1e-9.
    skip : tuple of str
        Key prefixes not compared (bookkeeping such as ``"TEST."``).
    common_only : bool
        Compare only keys present in both (a key added to the presets since is then no drift).
    fill_defaults : bool
        A vocabulary key the recorded configuration lacks (one added after it was recorded)
        counts at its default (:data:`DEFAULTS`), the behaviour the run had: it drifts only
        where ``now`` moved it away from that default.

    Returns
    -------
    dict
        ``{key: (recorded value, value now)}``, sorted by key; a key missing on one side has
        ``None`` there.
    """
    if fill_defaults:
        recorded = {**DEFAULTS, **recorded}
    keys = set(recorded) & set(now) if common_only else set(recorded) | set(now)
    return {
        k: (recorded.get(k), now.get(k))
        for k in sorted(keys)
        if not k.startswith(skip) and not same_value(recorded.get(k), now.get(k))
    }


class TrainConfig:
    """A validated mapping ``"DETECTRON2.KEY" -> value`` (see :func:`torchvision_mapping`).

    Create with :meth:`from_preset` (the usual way), :meth:`from_dict` or :meth:`from_json`;
    change with :meth:`set` (which also takes ``"KEY=VALUE"`` strings) or ``cfg[key] = v``.
    Every assignment is checked: unknown keys raise ValueError with the closest valid key,
    bad values raise ValueError naming the key and the valid range. :meth:`validate` checks
    keys against each other (e.g. STEPS within MAX_ITER, no frozen BN from scratch).

    Parameters
    ----------
    values : dict or None
        Keys to set over detectron2's defaults, flat (``{"SOLVER.BASE_LR": 0.01}``) or
        nested (``{"SOLVER": {"BASE_LR": 0.01}}``); each is checked.
    preset : str or None
        The preset the values came from (provenance only).

    Raises
    ------
    ValueError
        On an unknown key or a bad value.
    """

    def __init__(self, values: dict | None = None, preset: str | None = None):
        self._values = copy.deepcopy(DEFAULTS)
        self.preset = preset
        self.extra = {}
        for k, v in _flatten(values or {}).items():
            self.set(k, v)

    # ---- construction
    @classmethod
    def from_preset(cls, name: str = "auto", overrides: dict | None = None, **kw) -> TrainConfig:
        """A training preset with overrides applied, validated.

        Overrides use the dotted keys: ``from_preset("cpu", **{"SOLVER.BASE_LR": 0.01})``,
        ``from_preset("cpu", {"SOLVER.BASE_LR": 0.01})``; in keyword form ``__`` stands for
        a dot: ``from_preset("cpu", SOLVER__BASE_LR=0.01)``.

        Parameters
        ----------
        name : str
            One of :data:`PRESET_NAMES` (``smoke``, ``cpu``, ``cpu-finetune``, ``paper``,
            ``auto``; see :func:`resolve_preset_name`).
        overrides : dict or None
            ``{"DETECTRON2.KEY": value}`` applied over the preset.
        **kw
            More overrides, ``__`` standing for a dot (applied after ``overrides``).

        Returns
        -------
        TrainConfig
            The validated configuration.

        Raises
        ------
        ValueError
            On an unknown preset or key, a bad value or inconsistent keys.
        """
        name = resolve_preset_name(name, for_training=True)
        cfg = cls(PRESETS[name], preset=name)
        merged = dict(overrides or {})
        merged.update({k.replace("__", "."): v for k, v in kw.items()})
        for k, v in merged.items():
            cfg.set(k, v)
        cfg.validate()
        return cfg

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A configuration from a dict, e.g. a ``config.json`` already loaded.

        Parameters
        ----------
        d : dict
            Flat (``{"SOLVER.BASE_LR": ...}``) or nested (``{"SOLVER": {"BASE_LR": ...}}``).
            Keys starting with ``_`` (provenance written by training, e.g. ``_preset``) are
            kept aside in :attr:`extra`.

        Returns
        -------
        TrainConfig
            The configuration (keys checked one by one, not :meth:`validate`-d).

        Raises
        ------
        ValueError
            On an unknown key or a bad value.
        """
        d = dict(d)
        extra = {k: d.pop(k) for k in list(d) if k.startswith("_")}
        cfg = cls(d, preset=extra.get("_preset"))
        cfg.extra = extra
        return cfg

    @classmethod
    def from_json(cls, path) -> TrainConfig:
        """Read a ``config.json`` written by :meth:`to_json` (or by training).

        Parameters
        ----------
        path : str or os.PathLike
            The JSON file, or a run folder holding ``config.json``.

        Returns
        -------
        TrainConfig
            The configuration (see :meth:`from_dict`).

        Raises
        ------
        FileNotFoundError
            When the file does not exist.
        ValueError
            When it is not valid JSON, or holds an unknown key or a bad value.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"no config file {path}")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); rewrite it or train again") from None
        return cls.from_dict(d)

    # ---- access
    def set(self, key: str, value=..., *, parse_strings: bool = False) -> TrainConfig:
        """Set one key, checking its value.

        Parameters
        ----------
        key : str
            A detectron2 key, or ``"KEY=VALUE"`` when ``value`` is not given: VALUE is then
            parsed with the package's one override syntax (YAML scalars,
            :mod:`nanowire_utils.overrides`), as every ``--set`` does.
        value : object
            The new value.
        parse_strings : bool
            Parse a string ``value`` with the override syntax too.

        Returns
        -------
        TrainConfig
            ``self``, so calls chain.

        Raises
        ------
        ValueError
            On an unknown key (with the closest valid one) or a bad value.
        """
        if value is ...:
            key, value = parse_assignment(key)
        elif parse_strings and isinstance(value, str):
            value = parse_value(value)
        name = key.strip()
        if name not in KEY_INDEX:
            raise ValueError(f"unknown configuration key {name!r}{_suggest(name)}")
        self._values[name] = KEY_INDEX[name].check(name, copy.deepcopy(value))
        return self

    def __getitem__(self, key):
        if key not in KEY_INDEX:
            raise KeyError(f"unknown configuration key {key!r}{_suggest(key)}")
        return self._values[key]

    def __setitem__(self, key, value):
        self.set(key, value)

    def __contains__(self, key):
        return key in self._values

    def get(self, key, default=None):
        """The value of a key, like :meth:`dict.get`.

        Parameters
        ----------
        key : str
            A detectron2 key.
        default : object
            Returned when the key is unknown.

        Returns
        -------
        object
            The value, or ``default``.
        """
        return self._values.get(key, default)

    def keys(self):
        """The detectron2 keys, in table order.

        Returns
        -------
        dict_keys
            All keys.
        """
        return self._values.keys()

    def items(self):
        """The ``(key, value)`` pairs, in table order.

        Returns
        -------
        dict_items
            All pairs.
        """
        return self._values.items()

    def replace(self, **values) -> TrainConfig:
        """A checked copy with some keys changed.

        Parameters
        ----------
        **values
            Dotted keys and values: ``cfg.replace(**{"SOLVER.MAX_ITER": 10})``.

        Returns
        -------
        TrainConfig
            The copy; ``self`` is unchanged.

        Raises
        ------
        ValueError
            On an unknown key or a bad value.
        """
        new = self.copy()
        for k, v in values.items():
            new.set(k, v)
        return new

    def copy(self) -> TrainConfig:
        """An independent copy (values, preset and provenance).

        Returns
        -------
        TrainConfig
            The copy.
        """
        new = TrainConfig(preset=self.preset)
        new._values = copy.deepcopy(self._values)
        new.extra = dict(self.extra)
        return new

    def to_dict(self) -> dict:
        """The configuration as plain data; what config.json holds.

        Returns
        -------
        dict
            Flat ``{key: value}`` plus ``_preset``.
        """
        d = copy.deepcopy(self._values)
        d["_preset"] = self.preset
        return d

    def to_json(self, path=None, extra: dict | None = None) -> str:
        """The configuration as JSON text, written to a file when a path is given.

        Parameters
        ----------
        path : str or os.PathLike or None
            File to write (with a trailing newline).
        extra : dict or None
            Provenance keys added to :meth:`to_dict`.

        Returns
        -------
        str
            The JSON text (indent 2).
        """
        d = self.to_dict()
        d.update(extra or {})
        text = json.dumps(d, indent=2, sort_keys=False, default=str)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def diff(self, other: TrainConfig | dict) -> dict:
        """The keys whose values differ from another configuration's.

        Parameters
        ----------
        other : TrainConfig or dict
            The other configuration (a dict is read with :meth:`from_dict`).

        Returns
        -------
        dict
            ``{key: (mine, other's)}``.
        """
        o = other if isinstance(other, TrainConfig) else TrainConfig.from_dict(other)
        return {k: (v, o._values[k]) for k, v in self._values.items() if v != o._values[k]}

    def __eq__(self, other):
        return isinstance(other, TrainConfig) and self._values == other._values

    def __repr__(self):
        changed = {k: v for k, v in self._values.items() if v != DEFAULTS[k]}
        return f"TrainConfig(preset={self.preset!r}, changed from detectron2 defaults={changed})"

    # ---- cross-key checks
    def validate(self) -> TrainConfig:
        """Check keys against each other.

        Returns
        -------
        TrainConfig
            ``self``, so calls chain.

        Raises
        ------
        ValueError
            Saying what to change (e.g. IOU_THRESHOLDS out of order, decreasing STEPS,
            frozen layers when training from scratch, anchors not per FPN level).
        """
        v = self._values
        lo, hi = v["MODEL.RPN.IOU_THRESHOLDS"]
        if lo > hi:
            raise ValueError(
                f"MODEL.RPN.IOU_THRESHOLDS must be [background, foreground] with background <= foreground, got {[lo, hi]}"
            )
        steps = v["SOLVER.STEPS"]
        if list(steps) != sorted(steps):
            raise ValueError(f"SOLVER.STEPS must be increasing, got {steps}")
        if v["SOLVER.EPOCHS"] is None and steps and steps[-1] >= v["SOLVER.MAX_ITER"] and v["SOLVER.MAX_MINUTES"] == 0:
            # allowed (a run stopped early and continued later keeps its schedule), but worth a word
            log.warning(
                "SOLVER.STEPS %s reach beyond SOLVER.MAX_ITER=%s: those LR steps never happen in this run",
                steps,
                v["SOLVER.MAX_ITER"],
            )
        if v["MODEL.RESNETS.NORM"] == "FrozenBN" and not v["MODEL.WEIGHTS"]:
            raise ValueError(
                "MODEL.RESNETS.NORM='FrozenBN' with MODEL.WEIGHTS='' would freeze random weights; "
                "train from scratch with MODEL.RESNETS.NORM='GN' (or 'BN') and MODEL.BACKBONE.FREEZE_AT=0, or set MODEL.WEIGHTS"
            )
        if not v["MODEL.WEIGHTS"] and v["MODEL.BACKBONE.FREEZE_AT"] != 0:
            raise ValueError(
                "MODEL.BACKBONE.FREEZE_AT must be 0 when training from scratch (MODEL.WEIGHTS=''): frozen layers would keep random weights"
            )
        n_levels = 5
        sizes = v["MODEL.ANCHOR_GENERATOR.SIZES"]
        if len(sizes) not in (1, n_levels):
            raise ValueError(
                f"MODEL.ANCHOR_GENERATOR.SIZES needs one list per FPN level (5: P2-P6) or one list, got {len(sizes)}"
            )
        ratios = v["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"]
        if len(ratios) not in (1, n_levels):
            raise ValueError(
                f"MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS needs one list or one per FPN level (5), got {len(ratios)}"
            )
        if v["INPUT.CROP.ENABLED"]:
            h, w = v["INPUT.CROP.SIZE"]
            if min(h, w) < 32:
                raise ValueError(f"INPUT.CROP.SIZE {[h, w]} is too small for the FPN (at least 32 px)")
        if (
            v["INPUT.AUG.BRIGHTNESS"][0] > v["INPUT.AUG.BRIGHTNESS"][1]
            or v["INPUT.AUG.CONTRAST"][0] > v["INPUT.AUG.CONTRAST"][1]
        ):
            raise ValueError("INPUT.AUG.BRIGHTNESS and INPUT.AUG.CONTRAST must be [low, high] with low <= high")
        if v["MODEL.ROI_HEADS.NUM_CLASSES"] != 1:
            log.warning(
                "MODEL.ROI_HEADS.NUM_CLASSES=%s: the synthetic data has one class (nanowire)",
                v["MODEL.ROI_HEADS.NUM_CLASSES"],
            )
        return self

    def ignored_by_torchvision(self) -> dict:
        """Keys set away from their defaults that the torchvision engine cannot honour.

        Returns
        -------
        dict
            ``{key: value}``.
        """
        return {k: self._values[k] for k in TORCHVISION_IGNORED if self._values[k] != DEFAULTS[k]}

    def per_process_batch(self, world_size: int = 1) -> int:
        """Images each process loads per iteration (``SOLVER.IMS_PER_BATCH / world_size``).

        Parameters
        ----------
        world_size : int
            Number of training processes (GPUs).

        Returns
        -------
        int
            Images per process and iteration.

        Raises
        ------
        ValueError
            When ``SOLVER.IMS_PER_BATCH`` is not divisible by ``world_size``.
        """
        b = self._values["SOLVER.IMS_PER_BATCH"]
        if b % world_size:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH={b} is not divisible by the {world_size} processes; set a multiple of {world_size}"
            )
        return b // world_size


# --------------------------------------------------------------------------- epochs
def epochs_to_iterations(epochs: float, n_images: int, ims_per_batch: int) -> tuple[int, str]:
    """The paper's epochs as detectron2 iterations: ``ceil(epochs x n_images / ims_per_batch)``.

    Parameters
    ----------
    epochs : float
        Passes over the training split (> 0).
    n_images : int
        Training images (>= 1).
    ims_per_batch : int
        Images per iteration (>= 1).

    Returns
    -------
    iterations : int
        At least 1.
    explanation : str
        The arithmetic, e.g.
        ``"500 epochs x 800 training images / 8 images per batch = 50000 iterations"``.

    Raises
    ------
    ValueError
        When an argument is out of range.
    """
    check_range("epochs", epochs, 0, low_inclusive=False)
    check_range("n_images", n_images, 1)
    check_range("ims_per_batch", ims_per_batch, 1)
    iters = max(1, math.ceil(epochs * n_images / ims_per_batch))
    text = f"{epochs:g} epochs x {n_images} training images / {ims_per_batch} images per batch = {iters} iterations"
    return iters, text


def iterations_to_epochs(iterations: int, n_images: int, ims_per_batch: int) -> float:
    """Epochs seen after a number of iterations (inverse of :func:`epochs_to_iterations`).

    Parameters
    ----------
    iterations : int
        Training iterations.
    n_images : int
        Training images.
    ims_per_batch : int
        Images per iteration.

    Returns
    -------
    float
        ``iterations * ims_per_batch / n_images``.
    """
    return iterations * ims_per_batch / max(1, n_images)


def apply_epochs(cfg: TrainConfig, n_train: int) -> tuple[TrainConfig, str | None]:
    """Resolve ``SOLVER.EPOCHS`` (when set) into MAX_ITER for a training split of ``n_train`` images.

    STEPS keep their fraction of the schedule.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration.
    n_train : int
        Images in the training split.

    Returns
    -------
    cfg : TrainConfig
        A new configuration (``cfg`` itself when EPOCHS is unset).
    explanation : str or None
        The arithmetic, for the caller to log; None when EPOCHS is unset.
    """
    if cfg["SOLVER.EPOCHS"] is None:
        return cfg, None
    new = cfg.copy()
    old_max = cfg["SOLVER.MAX_ITER"]
    iters, text = epochs_to_iterations(cfg["SOLVER.EPOCHS"], n_train, cfg["SOLVER.IMS_PER_BATCH"])
    steps = [max(1, min(iters - 1, round(s * iters / old_max))) for s in cfg["SOLVER.STEPS"]] if iters > 1 else []
    new.set("SOLVER.MAX_ITER", iters)
    new.set("SOLVER.STEPS", sorted(set(steps)))
    new.set("SOLVER.WARMUP_ITERS", min(cfg["SOLVER.WARMUP_ITERS"], max(0, iters // 2)))
    if steps:
        text += (
            f"; LR steps at {new['SOLVER.STEPS']} (same fraction of the schedule as {cfg['SOLVER.STEPS']} of {old_max})"
        )
    return new, text


# --------------------------------------------------------------------------- presets
_SCRATCH = {
    "MODEL.WEIGHTS": "",
    "MODEL.RESNETS.NORM": "GN",
    "MODEL.BACKBONE.FREEZE_AT": 0,
}

#: Light heads for CPU scale: at 256 px the heads cost as much as the backbone.
_LIGHT = {
    "MODEL.RESNETS.DEPTH": 18,
    "MODEL.FPN.OUT_CHANNELS": 128,
    "MODEL.ROI_BOX_HEAD.FC_DIM": 256,
    "MODEL.ROI_MASK_HEAD.NUM_CONV": 2,
    "MODEL.ROI_MASK_HEAD.CONV_DIM": 128,
    "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]],
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 1000,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": 500,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 500,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 300,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 128,
}

PRESETS: dict[str, dict] = {
    # Seconds on a CPU: for tests and CI only (the AP it reaches is meaningless).
    "smoke": {
        **_SCRATCH,
        **_LIGHT,
        "ENGINE": "torchvision",
        "MODEL.FPN.OUT_CHANNELS": 32,
        "MODEL.ROI_BOX_HEAD.FC_DIM": 64,
        "MODEL.ROI_MASK_HEAD.CONV_DIM": 32,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 64,
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 200,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": 100,
        "MODEL.RPN.PRE_NMS_TOPK_TEST": 200,
        "MODEL.RPN.POST_NMS_TOPK_TEST": 100,
        "INPUT.MIN_SIZE_TRAIN": [128],
        "INPUT.MAX_SIZE_TRAIN": 128,
        "INPUT.MIN_SIZE_TEST": 128,
        "INPUT.MAX_SIZE_TEST": 128,
        "SOLVER.BASE_LR": 0.01,
        "SOLVER.IMS_PER_BATCH": 2,
        "SOLVER.MAX_ITER": 20,
        "SOLVER.WARMUP_ITERS": 5,
        "SOLVER.WARMUP_FACTOR": 0.1,
        "SOLVER.STEPS": [15],
        "SOLVER.CHECKPOINT_PERIOD": 10,
        "SOLVER.CLIP_GRADIENTS.ENABLED": True,
        "TEST.EVAL_PERIOD": 0,
        "TEST.DETECTIONS_PER_IMAGE": 50,
        "DATASET.N_IMAGES": 12,
        "DATASET.GENERATOR_PRESET": "smoke",
        "DATASET.IMAGE_SIZE": 128,
    },
    # Teaching scale, 2 CPU cores, ~30 minutes; see cpu_preset_notes().
    "cpu": {
        **_SCRATCH,
        **_LIGHT,
        "ENGINE": "torchvision",
        # whole 512 px images at half scale (the model resizes every input by 0.5), not 256 px
        # crops at full scale: same pixels per iteration, every wire whole; see cpu_preset_notes
        "INPUT.MIN_SIZE_TRAIN": [256],
        "INPUT.MAX_SIZE_TRAIN": 256,
        "INPUT.MIN_SIZE_TEST": 256,
        "INPUT.MAX_SIZE_TEST": 256,
        "INPUT.CROP.ENABLED": False,
        # GroupNorm in the FPN and the mask head too (from scratch, as in detectron2's scratch
        # recipes), and the mask loss weighted 3x: masks, not boxes, held segm AP back
        "MODEL.FPN.NORM": "GN",
        "MODEL.ROI_MASK_HEAD.NORM": "GN",
        "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": 3.0,
        # twice detectron2's 0.02: +2.4-3.8 bbox and segm AP at 1500 iterations, two seeds
        "SOLVER.BASE_LR": 0.04,
        "SOLVER.IMS_PER_BATCH": 4,
        # in iterations, so a seed gives the same model on any machine (no wall-clock budget):
        # about 30 minutes on the 2-core reference machine (29.6 measured; see cpu_preset_notes), LR drop at 80 %
        "SOLVER.MAX_ITER": 1500,
        "SOLVER.WARMUP_ITERS": 100,
        "SOLVER.STEPS": [1200],
        "SOLVER.AMP.CPU_BF16": True,
        "SOLVER.CHECKPOINT_PERIOD": 250,
        "SOLVER.CLIP_GRADIENTS.ENABLED": True,
        "TEST.EVAL_PERIOD": 250,
        "TEST.MAX_EVAL_IMAGES": 10,
        "DATASET.N_IMAGES": 1000,
        "DATASET.GENERATOR_PRESET": "paper",
        "DATASET.IMAGE_SIZE": 512,
    },
    # The cpu preset trained four times longer (about 2 hours on the reference machine at
    # 1.2 s per iteration), with two LR drops; filled in below. Its AP curve was measured once,
    # on that machine (benchmarks/results/training_v3/cpu_long). Longer still: --set
    # SOLVER.MAX_ITER=12000 --set SOLVER.STEPS=[9600,11200].
    "cpu-long": {},
    # Fine-tuning torchvision's COCO R50-FPN on 2 CPU cores, for readers whose machine can
    # download the weights; 'auto' picks it on a CPU when they resolve. Architecture as COCO's
    # (so every backbone, FPN, RPN and head weight loads; only the class-specific predictors
    # start fresh), FrozenBN with the stem and res2 frozen as detectron2 fine-tunes, random
    # 256 px crops at full scale (the cpu preset before it moved to half-scale whole images).
    # Not measured here: no machine of the project can download weights.
    "cpu-finetune": {
        "ENGINE": "torchvision",
        "MODEL.WEIGHTS": "coco",
        "MODEL.RESNETS.DEPTH": 50,
        "MODEL.RESNETS.NORM": "FrozenBN",
        "MODEL.BACKBONE.FREEZE_AT": 2,
        "MODEL.FPN.OUT_CHANNELS": 256,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 128,
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 1000,
        "MODEL.RPN.POST_NMS_TOPK_TRAIN": 500,
        "MODEL.RPN.PRE_NMS_TOPK_TEST": 500,
        "MODEL.RPN.POST_NMS_TOPK_TEST": 300,
        "INPUT.MIN_SIZE_TRAIN": [256],
        "INPUT.MAX_SIZE_TRAIN": 512,
        "INPUT.MIN_SIZE_TEST": 512,
        "INPUT.MAX_SIZE_TEST": 512,
        "INPUT.CROP.ENABLED": True,
        "INPUT.CROP.SIZE": [256, 256],
        "SOLVER.BASE_LR": 0.01,
        "SOLVER.IMS_PER_BATCH": 2,
        "SOLVER.MAX_ITER": 1500,
        "SOLVER.WARMUP_ITERS": 100,
        "SOLVER.STEPS": [1200],
        "SOLVER.CHECKPOINT_PERIOD": 250,
        "SOLVER.CLIP_GRADIENTS.ENABLED": True,
        "TEST.EVAL_PERIOD": 250,
        "TEST.MAX_EVAL_IMAGES": 10,
        "DATASET.N_IMAGES": 1000,
        "DATASET.GENERATOR_PRESET": "paper",
        "DATASET.IMAGE_SIZE": 512,
    },
    # The paper (section 2.3, Table 1 row 8): GPU scale.
    "paper": {
        "ENGINE": "auto",
        "MODEL.WEIGHTS": "coco",
        "MODEL.RESNETS.DEPTH": 50,
        "MODEL.RESNETS.NORM": "FrozenBN",
        "MODEL.BACKBONE.FREEZE_AT": 2,
        "MODEL.FPN.OUT_CHANNELS": 256,
        "MODEL.RPN.IOU_THRESHOLDS": [0.3, 0.6],
        "MODEL.RPN.NMS_THRESH": 0.7,
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 256,
        "INPUT.MIN_SIZE_TRAIN": [512],
        "INPUT.MAX_SIZE_TRAIN": 512,
        "INPUT.MIN_SIZE_TEST": 512,
        "INPUT.MAX_SIZE_TEST": 512,
        "SOLVER.BASE_LR": 0.02,
        "SOLVER.IMS_PER_BATCH": 8,
        "SOLVER.EPOCHS": 500,
        "SOLVER.MAX_ITER": 50000,
        "SOLVER.STEPS": [40000],
        "SOLVER.WARMUP_ITERS": 1000,
        "SOLVER.CHECKPOINT_PERIOD": 5000,
        "TEST.EVAL_PERIOD": 5000,
        "TEST.MAX_EVAL_IMAGES": 0,
        "DATASET.N_IMAGES": 1000,
        "DATASET.GENERATOR_PRESET": "paper",
        "DATASET.IMAGE_SIZE": 512,
    },
}
PRESETS["cpu-long"] = {
    **PRESETS["cpu"],
    "SOLVER.MAX_ITER": 6000,
    "SOLVER.STEPS": [4800, 5600],
    "SOLVER.CHECKPOINT_PERIOD": 1000,
    "TEST.EVAL_PERIOD": 1000,
}
PRESET_NAMES = ("smoke", "cpu", "cpu-long", "cpu-finetune", "paper", "auto")
#: The book's scales (notebook ``scale`` parameters): data sizes and the training preset.
SCALES = ("smoke", "cpu", "paper", "auto")


def cpu_preset_notes() -> str:
    """How the ``cpu`` preset was chosen (the runs and figures; details in
    ``benchmarks/results/cpu_preset_search.md``).

    Starting point: the probe in the project notes (ResNet-18 + GroupNorm, FPN 128, light
    heads, anchors 16-256 px with aspect ratios 0.25-4, 256 px images, batch 4, LR 0.02,
    warmup 100, LR x 0.1 at 80 %): segm AP 50.8 after 35 minutes on 2 cores.

    Changes, and why:

    * Whole 512 px images resized to 256 px inside the model, for training, for testing and
      for every image a predictor segments (a fixed input scale of 0.5,
      :func:`nanowire_utils.maskrcnn.engine.model_input_scale`). The earlier preset trained on
      random 256 px crops at full scale: the same pixels per iteration, but a crop holds a
      quarter of the field and cuts most wires. At 1500 matched iterations the half-scale
      model scored synthetic segm / bbox AP 38.4 / 58.4 (GroupNorm) and 39.7 / 62.0 (BN)
      against 36.7 / 55.9 for the crops, trained in 30.5 and 29.5 minutes against 33.7.
      It also scored higher on the real images at the estimated scale: mean segm AP over the
      three images 5.7 (GN) and 5.9 (BN) against 3.5 (one seed each;
      ``benchmarks/results/training_v3``). Real images are rescaled to the training data's
      wire width as before; the model then halves them as it halved its training images.
    * Class-specific layers initialised as detectron2 does (model.py): the mask loss starts
      at ln 2 instead of 5-20 with torchvision's init.
    * GroupNorm in the backbone, not trainable BatchNorm. With BN the eval-mode AP swung
      while the loss fell: the half-scale BN model scored segm AP 22.3 at iteration 500, 0.6
      at 750 and 33.5 at 1000, because its running statistics lag the weights. With GN it
      rose at every checkpoint (9.8, 20.7, 28.1, 32.7, 37.1, 38.4). So a run stopped early
      (``--max-minutes``, a slower laptop) still yields a usable model, and chapter 4's curve
      means what it shows. GN ended 1.3 segm AP and 3.6 bbox AP below BN at 1500 iterations
      (one seed each), took 1.1 minutes (4 %) longer, and segmented the SEM image better (foreground
      accuracy 38.5 % against 27.0 %).
    * GroupNorm in the FPN and the mask head as well (``MODEL.FPN.NORM``,
      ``MODEL.ROI_MASK_HEAD.NORM``), and the mask loss weighted 3x
      (``MODEL.ROI_MASK_HEAD.LOSS_WEIGHT``). Segm AP trailed bbox AP by 20 points, and the
      masks were the cause: the 28 x 28 mask of the half-scale input could reach segm AP 86.9
      on the test images (the references passed through it), but the model's masks overlapped
      their wires with a mean IoU of 0.63 where its boxes reached 0.75
      (``benchmarks/bench_mask_quality.py``). At 1500 matched iterations, same data and
      seed: GN in the FPN and mask head gave segm / bbox AP 41.6 / 59.0 (from 38.4 / 58.4),
      and the 3x mask loss on top 46.7 / 59.5, ahead at every checkpoint from 500 on, for
      about the same time per step (``benchmarks/results/training_v3``, one seed each).
    * Learning rate 0.04, twice the 0.02 of detectron2's recipes (``SOLVER.BASE_LR``). At
      1500 iterations, same data: bbox / segm AP 61.9 / 49.5 (seed 0) and 62.5 / 50.5 (seed
      1) against 59.5 / 46.7 at 0.02 (seed 0); the three real images scored the same within
      their noise (mean segm AP at the estimated scale 6.8 and 6.7 against 6.6). AdamW (LR
      2e-4, weight decay 0.05, ``SOLVER.OPTIMIZER``) learned faster early and ended at
      62.2 / 47.5; a cosine schedule with LR 0.04 ended at 59.3 / 45.6
      (``benchmarks/results/training_v3``).
    * Kept a 28 x 28 mask head: a 56 x 56 one (``ROI_MASK_HEAD.POOLER_RESOLUTION`` 28)
      scored +0.4 segm AP at 200 matched iterations (2.3 vs 1.8, noise level this early)
      but costs 1.8x per iteration (1.19 vs 0.65 s), i.e. 45 % fewer iterations in 30 min.
      On the half-scale GN preset, a 56 x 56 head of 64 channels was behind at every matched
      checkpoint up to 750 iterations (segm AP 23.4 vs 28.1 at 750) at 1.8x the step time
      (``benchmarks/results/training_v3``).
    * Kept 128 sampled ROIs per image: 64 saved ~4 % time but halves the positive ROIs that
      train the mask head.
    * bfloat16 autocast of the forward pass on CPU (``SOLVER.AMP.CPU_BF16``; these CPUs
      have avx512_bf16): one training step of this model took 0.83 s instead of 1.31 s
      (1.58x, same batch, measured in one quiet round, ``benchmarks/results/cpu_preset_v2``).
    * The schedule is in iterations, not minutes (no ``SOLVER.MAX_MINUTES``): one seed gives
      the same model on a loaded, a quiet or a faster machine. 1500 iterations with the LR
      drop at 1200: the crop-based preset's training loop ran at 0.85 iterations/s on the
      reference machine while it was the only job (2 threads, data loading included;
      ``benchmarks/results/cpu_preset_v2/speed_cpu_preset_loop.json``), so 1500 iterations
      were planned as about 29 minutes; the current preset's full run took 29.6 minutes.
      ``--max-minutes`` still caps a run.

    Measured on this 2-core machine shared with other jobs, so AP-per-minute comparisons of
    short runs were dominated by the load; the comparisons above are at matched iterations
    and the timings from interleaved runs in a quiet window.

    Measured results (``benchmarks/bench_training.py``): this preset reached synthetic test
    bbox AP 61.9, segm AP 49.5 after its 1500 iterations, 29.6 minutes on the reference
    machine (``benchmarks/results/training_v3/README.md``); with LR 0.02 it reached 59.5 /
    46.7 in 30.5 minutes; the same preset without GN in the
    FPN and mask head and with an unweighted mask loss reached 58.4 / 38.4 in 30.5 minutes,
    the crop-based preset before it 55.9 / 36.7 in 33.7 minutes
    (``benchmarks/results/training_v2/README.md``), the time-budgeted fp32 preset before that
    52.9 / 34.7 in 30 minutes (``benchmarks/results/training/README.md``). The goal of segm AP
    60 in 30 minutes is not reached.

    Returns
    -------
    str
        These notes (this docstring).
    """
    return cpu_preset_notes.__doc__


def resolve_preset_name(name: str, for_training: bool = False) -> str:
    """The preset a name means on this machine; other names are checked.

    ``auto`` is ``paper`` with CUDA, else ``cpu``. With ``for_training=True`` (what
    :meth:`TrainConfig.from_preset` and ``nanowire-utils train --preset auto`` use), ``auto``
    on a CPU machine is ``cpu-finetune`` when torchvision's COCO weights can be had (a local
    file, the cache or a download; :func:`nanowire_utils.maskrcnn.weights.coco_weights_location`),
    else ``cpu`` from scratch; the log says which and why.

    Parameters
    ----------
    name : str
        One of :data:`PRESET_NAMES`.
    for_training : bool
        Resolve ``auto`` for training (may pick ``cpu-finetune``).

    Returns
    -------
    str
        A concrete preset name (never ``auto``).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    check_choice("preset", name, PRESET_NAMES)
    if name != "auto":
        return name
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda:
        return "paper"
    if not for_training:
        return "cpu"
    from nanowire_utils.maskrcnn.weights import coco_weights_location

    where, why = coco_weights_location()
    if where is not None:
        log.info("preset auto -> cpu-finetune: no GPU, COCO weights available (%s: %s)", where, why)
        return "cpu-finetune"
    log.info("preset auto -> cpu (from scratch): no GPU and no COCO weights (%s)", why)
    return "cpu"


def dataset_spec(preset: str) -> dict:
    """The synthetic data set a training preset expects.

    Parameters
    ----------
    preset : str
        One of :data:`PRESET_NAMES`.

    Returns
    -------
    dict
        ``{"n_images", "generator_preset", "image_size"}`` (image size in pixels).
    """
    p = TrainConfig.from_preset(preset)
    return {
        "n_images": p["DATASET.N_IMAGES"],
        "generator_preset": p["DATASET.GENERATOR_PRESET"],
        "image_size": p["DATASET.IMAGE_SIZE"],
    }
