"""The detectron2 engine: the paper's own Mask R-CNN implementation.

The paper trained detectron2's ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x`` Mask R-CNN.
This module trains and runs that model from the project's one configuration vocabulary
(:mod:`nanowire_utils.maskrcnn.config`, whose keys already are detectron2's), on the synthetic data
set layout of :mod:`nanowire_utils.synth.dataset`, and writes the run folder layout of
:mod:`nanowire_utils.maskrcnn.engine` (``config.json``, ``model_final.pth``,
``checkpoints/model_<iter>.pth``, ``last_checkpoint``, ``metrics.jsonl``,
``detectron2_config.yaml``; each checkpoint's ``"engine"`` is ``"detectron2"``), so
:func:`nanowire_utils.maskrcnn.engine.load_predictor`, ``nanowire-utils predict`` and ``evaluate``
dispatch to it on their own. It imports only the engine interface
(:mod:`nanowire_utils.maskrcnn.engine`), never the torchvision engine.

It is chosen with ``ENGINE="detectron2"``, or by ``ENGINE="auto"`` when detectron2 imports and
a CUDA GPU is present. It runs on CPU too (tested there on every CI run, from a wheel built from
the pinned commit, see ``scripts/_venv.sh``). detectron2 is imported only inside functions:
without it this module still imports, the configuration mapping (:func:`detectron2_overrides`,
:func:`detectron2_config_dict`) and :func:`write_detectron2_yaml` work, and anything needing
detectron2 raises :class:`Detectron2NotInstalled` with one line saying why and how to install.

Install on a GPU hub (Linux, CUDA; detectron2 has no PyPI release)
---------------------------------------------------------------------------------
Install torch first (the CUDA build of your hub), then build detectron2 from a pinned upstream
commit *against that torch* (hence ``--no-build-isolation``); upstream main still imports
``pkg_resources`` in its model zoo, which setuptools 82 removed::

    pip install torch torchvision                 # the CUDA build of your hub
    pip install 'setuptools<82' wheel ninja
    pip install --no-build-isolation \\
        'git+https://github.com/facebookresearch/detectron2.git@a1ce2f9'
    python -c "import nanowire_utils.maskrcnn.detectron2_engine as e; print(e.available())"

``a1ce2f9`` is a 2025 commit of upstream main; its compiled ``_C`` extension is optional and
R50-FPN Mask R-CNN needs none of it (ROIAlign and NMS come from torchvision). The build takes
5-10 minutes on a few cores. This engine does not use detectron2's model zoo module (the base
config is :data:`ZOO_BASE`, the COCO weights' address :data:`COCO_WEIGHTS_URL`), so it also runs
where ``pkg_resources`` is missing.

What the mapping does (:func:`detectron2_overrides`)
----------------------------------------------------
* The base is the model zoo's ``mask_rcnn_R_50_FPN_3x.yaml`` (with ``Base-RCNN-FPN.yaml``),
  kept here as the dict :data:`ZOO_BASE` (a test checks it against the installed zoo file).
* detectron2 keys pass through unchanged (lists become tuples where detectron2 wants them).
* Project keys (``ENGINE``, ``SOLVER.EPOCHS``, ``SOLVER.MAX_MINUTES``, ``SOLVER.AMP.CPU_BF16``,
  ``TEST.MAX_EVAL_IMAGES``, ``DATASET.*``, ``INPUT.AUG.*``) are not detectron2 keys: the
  augmentations go to the data mapper (:class:`NanowireMapper`), the time budget to a hook,
  the rest are not used by detectron2.
* ``SOLVER.EPOCHS`` becomes ``SOLVER.MAX_ITER`` (and STEPS) through
  :func:`nanowire_utils.maskrcnn.config.apply_epochs` with the training split size.
* ``DEVICE`` -> ``MODEL.DEVICE``. ``SOLVER.AMP.ENABLED`` only on CUDA (detectron2's AMPTrainer
  refuses to run without CUDA; the torchvision engine ignores it on CPU too).
* ``MODEL.WEIGHTS="coco"`` -> detectron2's COCO weights of the base config when they can be had
  (detectron2's download cache, or a download when allowed: :func:`resolve_detectron2_weights`),
  else from scratch made scratch-safe exactly as the torchvision engine does (FrozenBN -> GN,
  ``FREEZE_AT`` 0), logged and recorded as ``"scratch (fallback)"``. With COCO weights the
  zoo's BGR pixel statistics are kept; from scratch the vocabulary's ``MODEL.PIXEL_MEAN/STD``
  are used with ``INPUT.FORMAT "RGB"``. Gray images are replicated to three channels.
* From scratch: ``MODEL.BACKBONE.FREEZE_AT=0`` and ``RESNETS.STRIDE_IN_1X1=False`` (torchvision's
  ResNet strides in the 3x3 convolution too). The normalisation is the vocabulary's, in both
  engines: ``MODEL.RESNETS.NORM`` in the backbone, ``MODEL.FPN.NORM``, ``ROI_BOX_HEAD.NORM`` and
  ``ROI_MASK_HEAD.NORM`` (``""``: none) in the FPN and heads. detectron2's own scratch recipe
  (``configs/Misc/scratch_mask_rcnn_R_50_FPN_3x_gn.yaml``) puts GroupNorm in the FPN and heads
  too: set those keys to ``"GN"`` to get it, in either engine.
* ResNet-18/34 backbones need ``MODEL.RESNETS.RES2_OUT_CHANNELS=64``; set automatically.
* ``SOLVER.CLIP_GRADIENTS`` clips the gradient norm (``CLIP_TYPE="norm"``) like the
  torchvision engine.
* Masks are RLE in the data set: ``INPUT.MASK_FORMAT="bitmask"``.

What still differs between the two engines for the same configuration
---------------------------------------------------------------------
Same layers and widths (backbone, FPN, RPN head, box head, mask head); the differences are
detectron2's conventions, kept because the paper's model has them:

* Class outputs: torchvision counts the background as a class in the box regressor and the
  mask predictor (``4 x (K+1)`` box deltas, ``K+1`` mask channels), detectron2 does not
  (``4 x K``, ``K``): with K = 1 class, torchvision has ``4 x (FC_DIM + 1) + (CONV_DIM + 1)``
  more parameters (:func:`parameter_difference`).
* ROIAlign: detectron2 ``ROIAlignV2`` (half-pixel aligned) with adaptive sampling
  (``POOLER_SAMPLING_RATIO 0``); torchvision ``MultiScaleRoIAlign`` (not aligned, 2 samples).
* Box regression losses: detectron2 uses L1 (``SMOOTH_L1_BETA 0``) in the RPN and the box head,
  torchvision smooth L1 (beta 1/9 in the RPN, 1/9 in the box head).
* bfloat16 autocast on CPU (``SOLVER.AMP.CPU_BF16``, on in the ``cpu`` preset) exists only in the
  torchvision engine; detectron2 trains in float32 on a CPU.
* Augmentation and sampling come from each engine's own data pipeline (same operations and
  ranges, other random streams); the same ``SEED`` gives the same run only within an engine.

Running detectron2's own tools on a run
---------------------------------------
Every run folder (either engine) holds ``detectron2_config.yaml`` (:func:`write_detectron2_yaml`),
which ``detectron2.config.get_cfg().merge_from_file(...)`` loads. Its data sets are named
``nanowire_train``/``nanowire_val``/``nanowire_test``; :func:`register_dataset` registers a data
folder's splits under those names. A launcher for detectron2's ``tools/train_net.py``::

    # train_nanowires.py, next to a detectron2 checkout
    import runpy, sys
    from nanowire_utils.maskrcnn.detectron2_engine import register_dataset
    register_dataset("data/synthetic")
    sys.argv = ["train_net.py", "--config-file", "runs/cpu/detectron2_config.yaml",
                "MODEL.DEVICE", "cuda", "SOLVER.AMP.ENABLED", "True", "OUTPUT_DIR", "runs/d2_tools"]
    runpy.run_path("detectron2/tools/train_net.py", run_name="__main__")

``train_net.py`` uses detectron2's default data mapper (resize, ``INPUT.CROP``, horizontal flips):
the paper's brightness/contrast and vertical flips are in :class:`NanowireMapper`, which this
engine's :func:`train` uses.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import sys
import time
import weakref
from pathlib import Path

import numpy as np

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.detectron2_config import (
    COCO_WEIGHTS_URL,
    DATASET_PREFIX,
    YAML_FILE,
    _resolve_device,
    _values,
    detectron2_config_dict,
    write_detectron2_yaml,
)
from nanowire_utils.maskrcnn.engine import (
    FINAL_CHECKPOINT,
    EngineUnavailable,
    Predictor,
    TrainResult,
    checkpoint_engine,
    count_images,
    find_resume,
    read_checkpoint,
    train_image_size,
)

log = logging.getLogger(__name__)

#: Pinned upstream commit of the install recipe (see the module docstring).
DETECTRON2_COMMIT = "a1ce2f9"
INSTALL_COMMAND = (
    "pip install 'setuptools<82' wheel ninja && pip install --no-build-isolation "
    f"'git+https://github.com/facebookresearch/detectron2.git@{DETECTRON2_COMMIT}' "
    "(after installing torch; see the docstring of nanowire_utils.maskrcnn.detectron2_engine)"
)
#: The detectron2 modules this engine uses; importing them all shows a partial install at once.
_MODULES = (
    "detectron2.config",
    "detectron2.modeling",
    "detectron2.data",
    "detectron2.data.transforms",
    "detectron2.engine",
    "detectron2.checkpoint",
    "detectron2.evaluation",
    "detectron2.solver",
)


class Detectron2NotInstalled(EngineUnavailable):
    """detectron2 was asked for but cannot be imported (a ValueError too, so the CLI prints
    one line)."""


class Detectron2Failed(RuntimeError, ValueError):
    """detectron2 stopped with an error while training; the message names the iteration, the
    error and the log file with the traceback (a ValueError too, so the CLI prints one line)."""


def _first_line(err: BaseException, limit: int = 200) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:limit] if text else ''}".rstrip(": ")


def detectron2_available() -> bool:
    """Whether detectron2 (and the parts of it this engine uses) imports here."""
    return available()[0]


def require_detectron2():
    """Import and return the ``detectron2`` package (and the modules this engine uses), or
    raise :class:`Detectron2NotInstalled` saying in one line what failed and how to install."""
    import importlib

    try:
        import detectron2

        for name in _MODULES:
            importlib.import_module(name)
    except Exception as err:  # a broken install raises more than ImportError
        hint = ""
        if isinstance(err, ImportError) and getattr(err, "name", "") == "pkg_resources":
            hint = " (setuptools >= 82 removed pkg_resources: pip install 'setuptools<82')"
        raise Detectron2NotInstalled(
            f"the detectron2 engine needs detectron2, which cannot be imported here ({_first_line(err)}){hint}. "
            f"Install it with: {INSTALL_COMMAND}; or use ENGINE='torchvision'"
        ) from err
    return detectron2


def available() -> tuple[bool, str]:
    """``(True, "")`` when detectron2 imports here, else ``(False, why and how to install)``."""
    try:
        require_detectron2()
    except Detectron2NotInstalled as err:
        return False, str(err)
    return True, ""


# --------------------------------------------------------------------------------------
# The local wheel (CI machines)
# --------------------------------------------------------------------------------------


def check_wheel(wheel, readme=None) -> tuple[bool, str]:
    """Whether a local detectron2 wheel may be installed into this environment.

    Checks the file's sha256 against the one its folder's ``README.md`` gives for it, that the
    wheel's Python tag (``cp311``) and platform fit this interpreter, and that the installed
    torch is the minor release the README says it was built against (its compiled ``_C`` is
    tied to it).

    Parameters
    ----------
    wheel : path
        ``detectron2-<version>-<python>-<abi>-<platform>.whl``.
    readme : path, optional
        The README with a section per wheel (``## <file name>``, then ``sha256 `<hex>``` and
        ``against torch X.Y.Z``); default: ``README.md`` beside the wheel.

    Returns
    -------
    (bool, str)
        ``(True, what was checked)`` or ``(False, one line: what it needs and what is here)``.
    """
    import platform

    wheel = Path(wheel)
    readme = Path(readme) if readme is not None else wheel.parent / "README.md"
    m = re.match(r"^[^-]+-[^-]+-(cp|py)(\d)(\d+)-[^-]+-(.+)\.whl$", wheel.name)
    if not m:
        return False, f"{wheel.name} is not a wheel file name (name-version-python-abi-platform.whl)"
    need_py = (int(m.group(2)), int(m.group(3)))
    plat = m.group(4)
    if not readme.is_file():
        return False, f"no {readme} giving the sha256 of {wheel.name}: not installing an unverified wheel"
    text = readme.read_text()
    sec = text.split(f"## {wheel.name}", 1)
    if len(sec) < 2:
        return False, f"{readme} has no section '## {wheel.name}' with its sha256: not installing it"
    section = sec[1].split("\n## ", 1)[0]
    want_sha = re.search(r"sha256\W+([0-9a-f]{64})", section)
    want_torch = re.search(r"against\s+torch\s+(\d+)\.(\d+)\.\d+", section)
    if not want_sha:
        return False, f"{readme} gives no sha256 for {wheel.name}: not installing it"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != want_sha.group(1):
        return False, f"{wheel.name} has sha256 {digest[:12]}..., not the {want_sha.group(1)[:12]}... of {readme}"
    have_py = sys.version_info[:2]
    try:
        import torch

        have_torch = torch.__version__.split("+")[0]
    except Exception:
        have_torch = "none"
    torch_need = f"{want_torch.group(1)}.{want_torch.group(2)}.x" if want_torch else "?"
    torch_ok = bool(want_torch) and have_torch.split(".")[:2] == [want_torch.group(1), want_torch.group(2)]
    machine = f"{sys.platform}_{platform.machine()}"
    plat_ok = (
        plat == "any" or plat.replace("manylinux", "linux").endswith(platform.machine()) and sys.platform == "linux"
    )
    if have_py != need_py or not torch_ok or not plat_ok:
        return False, (
            f"{wheel.name} needs Python {need_py[0]}.{need_py[1]}, torch {torch_need} and {plat}; this environment has "
            f"Python {have_py[0]}.{have_py[1]}, torch {have_torch} on {machine}: not installing it "
            "(the detectron2 tests will skip; rebuild the wheel for these versions, see its README)"
        )
    return True, f"{wheel.name}: sha256 verified, Python {have_py[0]}.{have_py[1]}, torch {have_torch}"


# --------------------------------------------------------------------------------------
# Configuration mapping (pure Python)
# --------------------------------------------------------------------------------------


def parameter_difference(cfg) -> int:
    """Parameters the torchvision model of ``cfg`` has beyond detectron2's: its background rows
    in the box regressor (``4 x (FC_DIM + 1)``) and in the mask predictor (``CONV_DIM + 1``);
    the layers are otherwise the same (see the module docstring)."""
    v = _values(cfg)
    box_in = v["MODEL.ROI_BOX_HEAD.FC_DIM"]
    mask_dim = v["MODEL.ROI_MASK_HEAD.CONV_DIM"]
    return 4 * (box_in + 1) + (mask_dim + 1)


def build_detectron2_cfg(cfg, run_dir=None, train_name=None, test_name=None, device=None):
    """A detectron2 ``CfgNode``: :func:`detectron2_config_dict` on ``get_cfg()``, with
    ``OUTPUT_DIR = run_dir/checkpoints`` and the registered data set names."""
    require_detectron2()
    from detectron2.config import get_cfg

    d2 = get_cfg()
    out_dir = str(Path(run_dir) / "checkpoints") if run_dir is not None else None
    for key, value in detectron2_config_dict(cfg, device, train_name, test_name, out_dir).items():
        node = d2
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"{key} is not a key of this detectron2 version's config; update detectron2")
        node[parts[-1]] = value
    if not d2.MODEL.WEIGHTS and (d2.MODEL.RESNETS.NORM == "FrozenBN" or d2.MODEL.BACKBONE.FREEZE_AT != 0):
        raise ValueError("training from scratch needs GroupNorm (or BN) and MODEL.BACKBONE.FREEZE_AT=0")
    return d2


# --------------------------------------------------------------------------------------
# Initial weights
# --------------------------------------------------------------------------------------


def detectron2_cache_file(url: str = COCO_WEIGHTS_URL) -> Path:
    """Where detectron2 (iopath) caches a download: ``$FVCORE_CACHE`` (else ``~/.torch/iopath_cache``)
    plus the URL's path."""
    root = Path(os.environ.get("FVCORE_CACHE", "~/.torch/iopath_cache")).expanduser()
    return root / url.split("://", 1)[1].split("/", 1)[1]


def resolve_detectron2_weights(cfg, allow_download: bool = True):
    """Where this engine's initial weights come from, as the torchvision engine decides it.

    ``""`` -> from scratch; a path -> that file; ``"coco"`` -> detectron2's COCO weights
    (:data:`COCO_WEIGHTS_URL`) from its download cache, or downloaded by detectron2 when the
    network answers and downloads are allowed (``NANOWIRE_UTILS_OFFLINE``/``CI`` unset), else
    from scratch with the configuration made scratch-safe (logged).

    Returns
    -------
    (TrainConfig, dict)
        The configuration (possibly made scratch-safe) and ``{"source", "path", "message"}``,
        ``source`` being ``"scratch"``, ``"path"``, ``"cache"``, ``"download"`` or
        ``"scratch (fallback)"`` (the run summary's ``weights``).
    """
    from nanowire_utils.maskrcnn.weights import decide_weights, network_allowed, probe_network

    def find_coco():
        cached = detectron2_cache_file()
        if cached.exists():
            return {"source": "cache", "path": str(cached), "message": f"detectron2's COCO weights from {cached}"}, ""
        ok, why = network_allowed()
        if ok and allow_download and probe_network(COCO_WEIGHTS_URL):
            return {
                "source": "download",
                "path": COCO_WEIGHTS_URL,
                "message": "detectron2 downloads its COCO weights",
            }, ""
        why = why or ("downloads disabled" if not allow_download else "network unreachable (2 s probe)")
        return None, f"{why}; none in {cached}"

    return decide_weights(cfg, find_coco, what="detectron2 COCO weights")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def register_dataset(data_dir, splits=("train", "val", "test"), prefix: str = DATASET_PREFIX) -> dict:
    """Register a synthetic data folder's splits with detectron2, under the names the run
    folders' ``detectron2_config.yaml`` use.

    One call before detectron2's own tools (``tools/train_net.py``, ``plain_train_net.py``)
    build their data loaders: ``register_dataset("data/synthetic")`` registers
    ``nanowire_train``, ``nanowire_val`` and ``nanowire_test`` (COCO instances with RLE masks,
    one category, ``evaluator_type "coco"``). Calling it again with another folder re-registers
    the names for that folder.

    Parameters
    ----------
    data_dir : path
        A synthetic data set folder (``annotations/instances_<split>.json``, ``images/<split>/``).
    splits : sequence of str
        Splits to register; splits without an annotation file are skipped (all missing: error).
    prefix : str
        Name prefix (``<prefix>_<split>``).

    Returns
    -------
    dict
        ``{split: registered name}``.
    """
    require_detectron2()
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    data_dir = Path(data_dir).resolve()
    out = {}
    for split in splits:
        ann = data_dir / "annotations" / f"instances_{split}.json"
        if not ann.is_file():
            continue
        name = f"{prefix}_{split}"
        images = data_dir / "images" / split
        if name in DatasetCatalog.list():
            meta = MetadataCatalog.get(name)
            if getattr(meta, "json_file", None) == str(ann) and getattr(meta, "image_root", None) == str(images):
                out[split] = name
                continue
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_coco_instances(name, {}, str(ann), str(images))
        out[split] = name
    if not out:
        raise FileNotFoundError(
            f"no annotations/instances_<split>.json for {list(splits)} in {data_dir}: "
            "generate the data set first (nanowire-utils generate ...)"
        )
    return out


def register_split(data_dir, split: str) -> str:
    """Register one split (:func:`register_dataset`) and return its data set name."""
    return register_dataset(data_dir, (split,))[split]


def gray_to_model_image(gray: np.ndarray) -> np.ndarray:
    """(H, W) gray in [0, 1] -> (H, W, 3) float32 in 0-255, the value range detectron2's
    pixel statistics are in (gray replicated, so RGB and BGR are the same image)."""
    return np.repeat((np.asarray(gray, np.float32) * 255.0)[..., None], 3, axis=2)


def build_augmentations(cfg, is_train: bool) -> list:
    """detectron2 augmentations of the paper (section 2.3): brightness and contrast 0.7-1.2,
    horizontal and vertical flips with p = 0.5; plus the vocabulary's crop and resize."""
    require_detectron2()
    import detectron2.data.transforms as T

    v = _values(cfg)
    augs = []
    if is_train and v["INPUT.CROP.ENABLED"]:
        augs.append(T.RandomCrop("absolute", tuple(v["INPUT.CROP.SIZE"])))
    if is_train:
        augs.append(T.ResizeShortestEdge(tuple(v["INPUT.MIN_SIZE_TRAIN"]), v["INPUT.MAX_SIZE_TRAIN"], "choice"))
        lo, hi = v["INPUT.AUG.BRIGHTNESS"]
        if (lo, hi) != (1, 1):
            augs.append(T.RandomBrightness(lo, hi))
        lo, hi = v["INPUT.AUG.CONTRAST"]
        if (lo, hi) != (1, 1):
            augs.append(T.RandomContrast(lo, hi))
        if v["INPUT.AUG.HFLIP_PROB"] > 0:
            augs.append(T.RandomFlip(prob=v["INPUT.AUG.HFLIP_PROB"], horizontal=True, vertical=False))
        if v["INPUT.AUG.VFLIP_PROB"] > 0:
            augs.append(T.RandomFlip(prob=v["INPUT.AUG.VFLIP_PROB"], horizontal=False, vertical=True))
    return augs


class NanowireMapper:
    """detectron2 data mapper for the synthetic data set: reads the image with the torchvision
    engine's reader (:func:`nanowire_utils.maskrcnn.loading.read_image`: 8-bit / 255, 16-bit / 65535), applies
    :func:`build_augmentations`, and converts the RLE masks to ``gt_masks`` (bitmasks)."""

    def __init__(self, cfg, is_train: bool = True):
        require_detectron2()
        import detectron2.data.transforms as T

        self.is_train = is_train
        self.augmentations = T.AugmentationList(build_augmentations(cfg, is_train))

    def __call__(self, dataset_dict: dict) -> dict:

        import detectron2.data.transforms as T
        import torch
        from detectron2.data import detection_utils as utils

        from nanowire_utils.maskrcnn.loading import read_image

        d = copy.deepcopy(dataset_dict)
        image = gray_to_model_image(read_image(d["file_name"]))  # the torchvision engine's reader
        utils.check_image_size(d, image)
        aug_input = T.AugInput(image)
        transforms = self.augmentations(aug_input)
        image = np.clip(aug_input.image, 0.0, 255.0).astype(np.float32)
        shape = image.shape[:2]
        d["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if not self.is_train:
            d.pop("annotations", None)
            return d
        annos = [
            utils.transform_instance_annotations(obj, transforms, shape)
            for obj in d.pop("annotations", [])
            if obj.get("iscrowd", 0) == 0
        ]
        instances = utils.annotations_to_instances(annos, shape, mask_format="bitmask")
        if instances.has("gt_masks"):
            # Crops cut wires: tight boxes from the cut masks.
            instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        d["instances"] = utils.filter_empty_instances(instances)
        return d


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _checkpoint_extra(cfg, d2cfg, weights: dict | None = None) -> dict:
    v = _values(cfg)
    return {
        "engine": "detectron2",
        "arch": f"mask_rcnn_R_{v['MODEL.RESNETS.DEPTH']}_FPN ({v['MODEL.RESNETS.NORM']})",
        "config": cfg.to_dict(),
        "detectron2_config": d2cfg.dump(),
        "weights": dict(weights or {}),
    }


def make_trainer_class():
    """The :class:`detectron2.engine.DefaultTrainer` subclass used here (built lazily so that
    this module imports without detectron2): our mapper for training and test loaders,
    COCOEvaluator, checkpoints carrying ``engine``/``config``/``arch``/``weights``, the mask loss
    weight and AdamW of the vocabulary (``MODEL.ROI_MASK_HEAD.LOSS_WEIGHT``,
    ``SOLVER.OPTIMIZER``) and an optional wall-clock budget (``SOLVER.MAX_MINUTES``)."""
    require_detectron2()
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_test_loader, build_detection_train_loader
    from detectron2.engine import DefaultTrainer, HookBase
    from detectron2.evaluation import COCOEvaluator
    from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping

    class _Checkpointer(DetectionCheckpointer):
        extra: dict = {}

        def save(self, name, **kwargs):
            super().save(name, **{**self.extra, **kwargs})

    class _TimeBudget(HookBase):
        def __init__(self, minutes):
            self.seconds = 60.0 * minutes

        def before_train(self):
            self.start = time.monotonic()

        def after_step(self):
            if self.seconds and time.monotonic() - self.start > self.seconds:
                raise _BudgetReached(self.trainer.iter)

    class NanowireTrainer(DefaultTrainer):
        vocab = None  # the TrainConfig, set by train()
        weights_info: dict = {}

        @classmethod
        def build_model(cls, cfg):
            model = super().build_model(cfg)
            # no detectron2 config key for it: its mask head multiplies its loss by this attribute
            model.roi_heads.mask_head.loss_weight = float(_values(cls.vocab)["MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"])
            return model

        @classmethod
        def build_optimizer(cls, cfg, model):
            if _values(cls.vocab)["SOLVER.OPTIMIZER"] != "AdamW":
                return super().build_optimizer(cfg, model)
            # detectron2's parameter groups and gradient clipping around AdamW (no config key for it)
            params = get_default_optimizer_params(
                model,
                base_lr=cfg.SOLVER.BASE_LR,
                weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
                bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
                weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
            )
            optimizer = torch.optim.AdamW(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
            return maybe_add_gradient_clipping(cfg, optimizer)

        @classmethod
        def build_train_loader(cls, cfg):
            return build_detection_train_loader(cfg, mapper=NanowireMapper(cls.vocab, is_train=True))

        @classmethod
        def build_test_loader(cls, cfg, dataset_name):
            return build_detection_test_loader(cfg, dataset_name, mapper=NanowireMapper(cls.vocab, is_train=False))

        @classmethod
        def build_evaluator(cls, cfg, dataset_name):
            return COCOEvaluator(dataset_name, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval"))

        def build_hooks(self):
            ck = _Checkpointer(self._trainer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
            ck.extra = _checkpoint_extra(self.vocab, self.cfg, self.weights_info)
            self.checkpointer = ck
            hooks = super().build_hooks()
            minutes = float(_values(self.vocab).get("SOLVER.MAX_MINUTES") or 0)
            if minutes > 0:
                hooks.insert(0, _TimeBudget(minutes))
            return hooks

    return NanowireTrainer


class _BudgetReached(Exception):
    def __init__(self, iteration):
        super().__init__(f"time budget reached at iteration {iteration}")
        self.iteration = iteration


class _ConsoleFilter(logging.Filter):
    """On detectron2's log handlers: drop the "Exception during training" record of a reached
    time budget (not an error), and on the console show tracebacks as one line pointing to
    the log file (the file keeps them)."""

    def __init__(self, console: bool, log_file: str):
        super().__init__()
        self.console = console
        self.log_file = log_file

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, _BudgetReached):
            return False
        if exc is not None and self.console:
            # the console's copy of the record: message plus where the traceback is
            record.msg = f"{record.getMessage()} {_first_line(exc)} (traceback in {self.log_file})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def _setup_logging(ckpt_dir: Path, progress: bool):
    """detectron2's logger (console and ``ckpt_dir/log.txt``) with :class:`_ConsoleFilter`."""
    from detectron2.utils.logger import setup_logger

    logger = setup_logger(str(ckpt_dir), name="detectron2")
    log_file = str(ckpt_dir / "log.txt")

    def to_file(h) -> bool:  # detectron2 writes log.txt through a plain StreamHandler on an open file
        return isinstance(h, logging.FileHandler) or os.path.isfile(
            str(getattr(getattr(h, "stream", None), "name", ""))
        )

    for h in logger.handlers:
        console = isinstance(h, logging.StreamHandler) and not to_file(h)
        if console:
            h.setLevel(logging.DEBUG if progress else logging.WARNING)
        for f in list(h.filters):
            if isinstance(f, _ConsoleFilter):
                h.removeFilter(f)
        # the file handler must see the record first (it keeps the traceback): filters run per
        # handler in handler order, and a console filter edits the record in place
        h.addFilter(_ConsoleFilter(console, log_file))
    # file handlers before console handlers
    logger.handlers.sort(key=lambda h: not to_file(h))
    return logger


#: detectron2 loss names -> the torchvision engine's, so one plot reads both runs.
_LOSS_NAMES = {
    "total_loss": "loss",
    "loss_cls": "loss_classifier",
    "loss_box_reg": "loss_box_reg",
    "loss_mask": "loss_mask",
    "loss_rpn_cls": "loss_objectness",
    "loss_rpn_loc": "loss_rpn_box_reg",
}


def convert_metrics(d2_metrics_json, out_jsonl, eval_split="val") -> int:
    """Rewrite detectron2's ``metrics.json`` (JSON lines) as the project's ``metrics.jsonl``
    records (``kind`` train/eval, torchvision loss names), so
    :func:`nanowire_utils.maskrcnn.engine.read_metrics` and its plots read detectron2 runs too.
    Returns the number of records written."""
    src = Path(d2_metrics_json)
    if not src.is_file():
        return 0
    records = []
    for line in src.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        it = rec.get("iteration")
        if "total_loss" in rec:
            out = {"kind": "train", "iteration": it, "lr": rec.get("lr")}
            out.update({new: rec[old] for old, new in _LOSS_NAMES.items() if old in rec})
            records.append(out)
        ev = {k: v for k, v in rec.items() if k.startswith(("bbox/", "segm/"))}
        if ev:
            records.append({"kind": "eval", "iteration": it, "split": eval_split, **ev})
    with open(out_jsonl, "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return len(records)


def _check_run_folder(out_dir: Path, resume: bool):
    """Refuse a run folder that holds another engine's run, or any run with ``resume=False``."""
    prev = find_resume(out_dir)
    if prev is None:
        return
    found = checkpoint_engine(read_checkpoint(prev), prev)
    if found != "detectron2":
        raise ValueError(
            f"{out_dir} holds a run of the {found} engine ({prev.name}), which the detectron2 engine cannot "
            f"resume; continue it with ENGINE={found!r} (--engine {found}) or choose another output folder"
        )
    if not resume:
        raise FileExistsError(f"{out_dir} already holds a run ({prev.name}); resume it or choose another folder")


def train(cfg, data_dir, out_dir, resume: bool = True, progress: bool = True, eval_split: str | None = "val"):
    """Train detectron2's Mask R-CNN on ``data_dir`` into the run folder ``out_dir``; the
    detectron2 counterpart of :func:`nanowire_utils.maskrcnn.torchvision_engine.train` (use
    :func:`nanowire_utils.maskrcnn.engine.train`, which calls it for ``ENGINE="detectron2"``).

    Parameters
    ----------
    cfg : TrainConfig
        The configuration (EPOCHS are resolved here, ``MODEL.WEIGHTS`` by
        :func:`resolve_detectron2_weights`).
    data_dir : path
        Synthetic data set folder (``annotations/instances_<split>.json``, ``images/<split>/``).
    out_dir : path
        The run folder; ``checkpoints/`` holds detectron2's periodic checkpoints (with optimizer
        state, for resuming) and its ``log.txt``, ``model_final.pth`` the final weights. A folder
        holding a torchvision run is refused with a message naming that engine.
    resume : bool
        Continue from ``out_dir/checkpoints/last_checkpoint`` when there is one; with False an
        existing run is an error.
    progress : bool
        Show detectron2's periodic log lines (every 20 iterations); False shows warnings only.
    eval_split : str or None
        Split evaluated with COCOEvaluator every ``TEST.EVAL_PERIOD`` iterations and at the end
        (None: no evaluation; skipped when the split has no images).

    Returns
    -------
    TrainResult
        ``weights`` is :func:`resolve_detectron2_weights`' record (``{"source": "scratch", ...}``).

    Raises
    ------
    Detectron2Failed
        detectron2 stopped with an error (one line; the traceback is in ``checkpoints/log.txt``).
    """
    require_detectron2()
    import torch

    from nanowire_utils.maskrcnn.config import TrainConfig, apply_epochs

    cfg = (cfg.copy() if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).validate()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    _check_run_folder(out_dir, resume)
    device = _resolve_device(cfg["DEVICE"])
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("DEVICE='cuda' but CUDA is not available; use DEVICE=cpu or auto")
    counts = count_images(data_dir)
    n_train = counts["train"]
    if n_train == 0:
        raise FileNotFoundError(f"no training images in {data_dir} (annotations/instances_train.json)")
    cfg, note = apply_epochs(cfg, n_train)
    if note:
        log.info("SOLVER.EPOCHS: %s", note)
    old_config = out_dir / "config.json"
    resuming = resume and (ckpt_dir / "last_checkpoint").is_file()
    if resuming and old_config.is_file():
        old = TrainConfig.from_json(old_config)
        cfg = cfg.replace(**{k: old[k] for k in ("MODEL.WEIGHTS", "MODEL.RESNETS.NORM", "MODEL.BACKBONE.FREEZE_AT")})
        weights_info = dict(old.extra.get("_weights") or {}, resumed=str(ckpt_dir / "last_checkpoint"))
    else:
        cfg, weights_info = resolve_detectron2_weights(cfg)
    if eval_split and counts.get(eval_split, 0) == 0:
        eval_split = None
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(ckpt_dir, progress)
    names = register_dataset(data_dir, [s for s in ("train", eval_split) if s])
    d2cfg = build_detectron2_cfg(cfg, out_dir, names["train"], names.get(eval_split), device=device)
    if weights_info["source"] in ("cache", "path"):
        d2cfg.MODEL.WEIGHTS = weights_info["path"]
    if not eval_split:
        d2cfg.TEST.EVAL_PERIOD = 0
    write_detectron2_yaml(cfg, out_dir / YAML_FILE, device=device)
    extra = _checkpoint_extra(cfg, d2cfg, weights_info)
    provenance = {
        "_engine": "detectron2",
        "_arch": extra["arch"],
        "_weights": weights_info,
        "_epochs": note,
        "_device": d2cfg.MODEL.DEVICE,
        "_data": {
            "data_dir": str(data_dir),
            "n_train": n_train,
            "n_val": counts["val"],
            "n_images": counts["all"],
        },
        "_iterations_done": 0,
    }
    cfg.to_json(out_dir / "config.json", extra=provenance)

    Trainer = make_trainer_class()
    Trainer.vocab = cfg
    Trainer.weights_info = weights_info
    try:
        trainer = Trainer(d2cfg)
        trainer.resume_or_load(resume=resume)
    except Exception as err:
        raise Detectron2Failed(
            f"detectron2 could not build the model or data loader: {_first_line(err)} (log: {ckpt_dir / 'log.txt'})"
        ) from err
    start_iter = int(trainer.start_iter)
    stopped_by = "max_iter"
    t_loop = time.perf_counter()
    try:
        trainer.train()
    except _BudgetReached as stop:
        log.info("SOLVER.MAX_MINUTES reached; stopping at iteration %d", stop.iteration)
        trainer.checkpointer.save("model_final", iteration=stop.iteration)
        stopped_by = "time budget"
    except Exception as err:
        raise Detectron2Failed(
            f"detectron2 training stopped at iteration {trainer.iter}: {_first_line(err)} "
            f"(traceback in {ckpt_dir / 'log.txt'})"
        ) from err
    iteration = int(trainer.iter)
    # training seconds as the torchvision engine counts them: the loop with its hooks (periodic
    # checkpoints and evaluation), not the setup (imports, model and data loader construction)
    loop_s = time.perf_counter() - t_loop
    final = out_dir / FINAL_CHECKPOINT
    state = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    tmp = final.with_suffix(".pth.tmp")
    torch.save({"model": state, "iteration": iteration, "elapsed_s": loop_s, **extra}, tmp)
    os.replace(tmp, final)
    (out_dir / "last_checkpoint").write_text(FINAL_CHECKPOINT + "\n")
    provenance["_iterations_done"] = iteration
    cfg.to_json(out_dir / "config.json", extra=provenance)
    convert_metrics(ckpt_dir / "metrics.json", out_dir / "metrics.jsonl", eval_split or "val")
    val = getattr(trainer, "_last_eval_results", None)
    return TrainResult(
        run_dir=str(out_dir),
        iterations=iteration,
        final_checkpoint=str(final),
        stopped_by=stopped_by,
        elapsed_s=loop_s,
        weights=weights_info,
        val_metrics=dict(val) if val else None,
        resumed_from=start_iter,
    )


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------


class Detectron2Predictor(Predictor):
    """Predictor adapter: detectron2's model on one gray image, returning our Instances.

    Images are fed at their own size times the model's fixed input scale (no
    ResizeShortestEdge), like the torchvision engine; outputs come back at the image's size.
    detectron2 pastes masks at a fixed 0.5 threshold, so ``mask_thresh`` is not used.
    """

    engine = "detectron2"

    def predict_gray(self, gray: np.ndarray) -> Instances:
        import torch

        h, w = gray.shape
        pixels = gray_to_model_image(gray)
        if self.input_scale != 1.0:
            from detectron2.data.transforms import ResizeTransform

            nh, nw = max(1, round(h * self.input_scale)), max(1, round(w * self.input_scale))
            pixels = ResizeTransform(h, w, nh, nw).apply_image(pixels)
        image = torch.as_tensor(pixels.transpose(2, 0, 1).copy())
        with torch.inference_mode():
            out = self.model([{"image": image.to(self.device), "height": h, "width": w}])[0]
        inst = out["instances"].to("cpu")
        inst = inst[inst.scores >= self.score_thresh]
        if len(inst) == 0:
            return Instances.empty((h, w))
        return Instances(inst.pred_masks.numpy().astype(bool), inst.pred_boxes.tensor.numpy(), inst.scores.numpy())


def load_predictor(ckpt_path, ckpt: dict, device: str = "cpu", score_thresh=None, mask_thresh: float = 0.5):
    """A :class:`Detectron2Predictor` for a checkpoint already read (use
    :func:`nanowire_utils.maskrcnn.engine.load_predictor`, which dispatches here)."""
    require_detectron2()
    from detectron2.modeling import build_model

    from nanowire_utils.maskrcnn.config import TrainConfig

    vocab = TrainConfig.from_dict(ckpt["config"])
    if score_thresh is None:
        score_thresh = vocab["MODEL.ROI_HEADS.SCORE_THRESH_TEST"]
    d2cfg = build_detectron2_cfg(vocab, device=device)
    d2cfg.MODEL.WEIGHTS = ""
    d2cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(score_thresh)
    model = build_model(d2cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return Detectron2Predictor(
        model,
        vocab,
        device=device,
        score_thresh=score_thresh,
        mask_thresh=mask_thresh,
        train_size=train_image_size(vocab),
        source=Path(ckpt_path),
        iteration=ckpt.get("iteration"),
    )


def _main(argv=None) -> int:
    """``python -m nanowire_utils.maskrcnn.detectron2_engine check-wheel WHEEL``: exit 0 when
    :func:`check_wheel` accepts it (scripts/_venv.sh then installs it), else print one line
    saying why and exit 1. ``... available``: exit 0 when detectron2 imports, else one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "check-wheel":
        ok, msg = check_wheel(args[1])
    elif args == ["available"]:
        ok, msg = available()
        msg = msg or "detectron2 imports"
    else:
        print("usage: python -m nanowire_utils.maskrcnn.detectron2_engine check-wheel WHEEL | available")
        return 2
    print(msg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_main())
