"""The detectron2 side of the configuration vocabulary, in pure Python (detectron2 not needed).

:func:`detectron2_overrides` maps a :class:`~nanowire_utils.maskrcnn.config.TrainConfig` to
detectron2's config keys (the rules are in :mod:`nanowire_utils.maskrcnn.detectron2_engine`'s
docstring), and :func:`write_detectron2_yaml` writes a run's ``detectron2_config.yaml``, which
``detectron2.config.get_cfg().merge_from_file`` loads, so that detectron2's own tools
(``tools/train_net.py``, ``plain_train_net.py``) accept any run. Both engines import this
module; neither engine imports the other.
"""

from __future__ import annotations

import copy
from pathlib import Path

#: The model zoo config the paper's model starts from.
BASE_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
#: The model zoo's COCO weights of :data:`BASE_CONFIG` (``model_zoo.get_checkpoint_url``).
COCO_WEIGHTS_URL = (
    "https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/"
    "model_final_f10217.pkl"
)
#: :data:`BASE_CONFIG` (with its ``_BASE_``, ``Base-RCNN-FPN.yaml``) over ``get_cfg()``'s
#: defaults, as dotted keys: what ``model_zoo.get_config_file`` would load, without needing the
#: model zoo module (which imports ``pkg_resources``).
ZOO_BASE = {
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN",
    "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone",
    "MODEL.RESNETS.OUT_FEATURES": ["res2", "res3", "res4", "res5"],
    "MODEL.RESNETS.DEPTH": 50,
    "MODEL.FPN.IN_FEATURES": ["res2", "res3", "res4", "res5"],
    "MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64], [128], [256], [512]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.5, 1.0, 2.0]],
    "MODEL.RPN.IN_FEATURES": ["p2", "p3", "p4", "p5", "p6"],
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 2000,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 1000,
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": 1000,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 1000,
    "MODEL.ROI_HEADS.NAME": "StandardROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES": ["p2", "p3", "p4", "p5"],
    "MODEL.ROI_BOX_HEAD.NAME": "FastRCNNConvFCHead",
    "MODEL.ROI_BOX_HEAD.NUM_FC": 2,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": 7,
    "MODEL.ROI_MASK_HEAD.NAME": "MaskRCNNConvUpsampleHead",
    "MODEL.ROI_MASK_HEAD.NUM_CONV": 4,
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION": 14,
    "MODEL.MASK_ON": True,
    "MODEL.WEIGHTS": "detectron2://ImageNetPretrained/MSRA/R-50.pkl",
    "DATASETS.TRAIN": ["coco_2017_train"],
    "DATASETS.TEST": ["coco_2017_val"],
    "SOLVER.IMS_PER_BATCH": 16,
    "SOLVER.BASE_LR": 0.02,
    "SOLVER.STEPS": [210000, 250000],
    "SOLVER.MAX_ITER": 270000,
    "INPUT.MIN_SIZE_TRAIN": [640, 672, 704, 736, 768, 800],
    "VERSION": 2,
}
#: Prefix of the data set names :func:`register_dataset` registers (``nanowire_train``, ...).
DATASET_PREFIX = "nanowire"
#: The run folder's detectron2 config (both engines write it).
YAML_FILE = "detectron2_config.yaml"

#: Vocabulary keys that are not detectron2 keys (also every key the vocabulary marks as a
#: project key, e.g. ``SOLVER.AMP.CPU_BF16``).
PROJECT_KEYS = ("ENGINE", "DEVICE", "SOLVER.EPOCHS", "SOLVER.MAX_MINUTES", "TEST.MAX_EVAL_IMAGES")
PROJECT_PREFIXES = ("DATASET.", "INPUT.AUG.")
#: detectron2 keys whose value is a tuple in its CfgNode.
_TUPLE_KEYS = ("INPUT.MIN_SIZE_TRAIN", "SOLVER.STEPS", "INPUT.CROP.SIZE", "DATASETS.TRAIN", "DATASETS.TEST")


def _values(cfg) -> dict:
    if hasattr(cfg, "to_dict"):
        d = cfg.to_dict()
    else:
        from nanowire_utils.maskrcnn.config import TrainConfig

        d = TrainConfig.from_dict(dict(cfg)).to_dict()
    return {k: v for k, v in d.items() if not k.startswith("_")}


def _is_project_key(key: str) -> bool:
    from nanowire_utils.maskrcnn.config import KEY_INDEX

    k = KEY_INDEX.get(key)
    return key in PROJECT_KEYS or key.startswith(PROJECT_PREFIXES) or (k is not None and k.project)


def _resolve_device(device) -> str:
    if device in (None, "auto"):
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return str(device)


def detectron2_overrides(cfg, device: str | None = None) -> dict:
    """The detectron2 config keys (dotted names) and values a :class:`TrainConfig` sets.

    Parameters
    ----------
    cfg : TrainConfig or dict
        A configuration (or a flat dict of its keys) whose ``SOLVER.EPOCHS`` has already been
        resolved (:func:`nanowire_utils.maskrcnn.config.apply_epochs`).
    device : str, optional
        ``"cuda"``/``"cpu"``; None resolves the vocabulary's ``DEVICE`` (``"auto"``: CUDA when
        available, detected only if torch imports).

    Returns
    -------
    dict
        ``{"MODEL.RESNETS.DEPTH": 50, ...}``, applied on top of :data:`ZOO_BASE` by
        :func:`detectron2_config_dict`. ``MODEL.WEIGHTS`` may be the marker ``"coco"``
        (resolved to :data:`COCO_WEIGHTS_URL` there). See the module docstring for the rules.
    """
    v = _values(cfg)
    out: dict = {}
    for key, value in v.items():
        if _is_project_key(key):
            continue
        if key in _TUPLE_KEYS:
            value = tuple(value)
        out[key] = value
    device = _resolve_device(v.get("DEVICE", "auto") if device is None else device)
    out["MODEL.DEVICE"] = device
    out["SEED"] = int(v.get("SEED", 0))
    out["MODEL.MASK_ON"] = True
    out["INPUT.MASK_FORMAT"] = "bitmask"
    # detectron2's AMPTrainer asserts CUDA; the torchvision engine ignores AMP on CPU as well
    out["SOLVER.AMP.ENABLED"] = bool(v["SOLVER.AMP.ENABLED"]) and device.startswith("cuda")
    out["SOLVER.CLIP_GRADIENTS.CLIP_TYPE"] = "norm"
    out["SOLVER.CLIP_GRADIENTS.NORM_TYPE"] = 2.0
    if int(v["MODEL.RESNETS.DEPTH"]) in (18, 34):
        out["MODEL.RESNETS.RES2_OUT_CHANNELS"] = 64
    weights = v.get("MODEL.WEIGHTS", "")
    if weights == "":
        # From scratch: nothing frozen, torchvision's stride placement; the norms are the
        # vocabulary's (validate() already refuses FrozenBN from scratch).
        out["MODEL.BACKBONE.FREEZE_AT"] = 0
        out["MODEL.RESNETS.STRIDE_IN_1X1"] = False
        out["INPUT.FORMAT"] = "RGB"
    else:
        # Pretrained weights carry their own pixel statistics (the zoo's, BGR, std 1).
        for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
            out.pop(key, None)
        out["INPUT.FORMAT"] = "BGR"
    return out


def dataset_names(prefix: str = DATASET_PREFIX) -> dict:
    """``{"train": "nanowire_train", "val": ..., "test": ...}``: the names :func:`register_dataset`
    registers and :func:`detectron2_config_dict` writes."""
    return {split: f"{prefix}_{split}" for split in ("train", "val", "test")}


def detectron2_config_dict(
    cfg, device: str | None = None, train_name=None, test_name=None, output_dir=None, nested: bool = False
) -> dict:
    """The whole detectron2 configuration of ``cfg`` over ``get_cfg()``'s defaults, without detectron2.

    :data:`ZOO_BASE`, then :func:`detectron2_overrides`, ``MODEL.WEIGHTS "coco"`` as
    :data:`COCO_WEIGHTS_URL`, ``DATASETS`` and ``OUTPUT_DIR``.

    Parameters
    ----------
    cfg : TrainConfig or dict
        The configuration (EPOCHS resolved).
    device : str, optional
        See :func:`detectron2_overrides`.
    train_name, test_name : str, optional
        Registered data set names (``DATASETS.TRAIN``/``TEST``; None: empty).
    output_dir : path, optional
        ``OUTPUT_DIR`` (default: detectron2's ``./output``).
    nested : bool
        Return ``{"MODEL": {"RESNETS": {...}}}`` with lists instead of tuples (YAML-ready)
        instead of dotted keys.
    """
    flat = copy.deepcopy(ZOO_BASE)
    flat.update(detectron2_overrides(cfg, device=device))
    if flat.get("MODEL.WEIGHTS") == "coco":
        flat["MODEL.WEIGHTS"] = COCO_WEIGHTS_URL
    flat["DATASETS.TRAIN"] = (train_name,) if train_name else ()
    flat["DATASETS.TEST"] = (test_name,) if test_name else ()
    if output_dir is not None:
        flat["OUTPUT_DIR"] = str(output_dir)
    if not nested:
        return flat
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _plain(value)
    return out


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    return value


def write_detectron2_yaml(cfg, path, device: str | None = None, output_dir=None, engine: str = "detectron2") -> Path:
    """Write ``cfg`` as a detectron2 YAML config that ``get_cfg().merge_from_file(path)`` loads.

    Works without detectron2 (it writes :func:`detectron2_config_dict`); both engines call it
    for every run (``RUN/detectron2_config.yaml``). The data sets are :func:`dataset_names`'
    ``nanowire_train`` (train) and ``nanowire_val`` (test); register them with
    :func:`register_dataset` before detectron2 builds a data loader.

    Parameters
    ----------
    cfg : TrainConfig
        The run's configuration (EPOCHS and initial weights already resolved).
    path : path
        The YAML file to write.
    device : str, optional
        ``MODEL.DEVICE`` (default: the configuration's, resolved here).
    output_dir : path, optional
        ``OUTPUT_DIR`` for detectron2's tools (default: ``<folder of path>/detectron2_tools``).
    engine : str
        The engine that trained the run (named in the header comment).

    Returns
    -------
    Path
    """
    import yaml

    path = Path(path)
    names = dataset_names()
    if output_dir is None:
        output_dir = path.parent.resolve() / "detectron2_tools"
    d = detectron2_config_dict(
        cfg, device=device, train_name=names["train"], test_name=names["val"], output_dir=output_dir, nested=True
    )
    header = (
        f"# detectron2 config of a nanowire-utils run (engine: {engine}); written by\n"
        "# nanowire_utils.maskrcnn.detectron2_config.write_detectron2_yaml. Load it with\n"
        "#   cfg = detectron2.config.get_cfg(); cfg.merge_from_file(THIS_FILE)\n"
        "# and register the data first:\n"
        "#   from nanowire_utils.maskrcnn.detectron2_engine import register_dataset; register_dataset(DATA_DIR)\n"
        "# On a GPU add: MODEL.DEVICE cuda SOLVER.AMP.ENABLED True. The paper's brightness/contrast and\n"
        "# vertical flips are in nanowire-utils' data mapper, not in detectron2's default one.\n"
    )
    path.write_text(header + yaml.safe_dump(d, sort_keys=True, default_flow_style=None))
    return path
