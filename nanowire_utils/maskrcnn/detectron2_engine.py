"""The detectron2 engine: the paper's own Mask R-CNN implementation, for GPU machines.

The paper trained detectron2's ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x`` Mask R-CNN.
This module trains and runs that model from the project's one configuration vocabulary
(:mod:`nanowire_utils.maskrcnn.config`, whose keys already are detectron2's), on the synthetic data
set layout of :mod:`nanowire_utils.synth.dataset`, and writes checkpoints in the same run folder
layout as the torchvision engine (``config.json``, ``model_final.pth``,
``checkpoints/model_<iter>.pth``, ``last_checkpoint``; each checkpoint's ``"engine"`` is
``"detectron2"``), so :func:`nanowire_utils.maskrcnn.engine.load_predictor` and ``nanowire-utils
predict`` dispatch to it on their own, and :func:`nanowire_utils.maskrcnn.engine.train` calls
:func:`train` here for ``ENGINE="detectron2"``. It imports only the engine interface
(:mod:`nanowire_utils.maskrcnn.engine`), never the torchvision engine.

It is chosen with ``ENGINE="detectron2"``, or by ``ENGINE="auto"`` when ``import detectron2``
works and a CUDA GPU is present (:func:`nanowire_utils.maskrcnn.engine.resolve_engine`). detectron2 is imported only inside
functions: without it this module still imports, :func:`detectron2_overrides` (the pure
config mapping) works, and anything needing detectron2 raises :class:`Detectron2NotInstalled`
with the install command.

Install on a GPU hub (Linux, CUDA; detectron2 has no PyPI release)
---------------------------------------------------------------------------------
Install torch first (the CUDA build of your hub), then build detectron2 from a pinned upstream
commit *against that torch* (hence ``--no-build-isolation``); upstream main still imports
``pkg_resources``, which setuptools 82 removed::

    pip install torch torchvision                 # the CUDA build of your hub
    pip install 'setuptools<82' wheel ninja
    pip install --no-build-isolation \\
        'git+https://github.com/facebookresearch/detectron2.git@a1ce2f9'
    python -c "import detectron2, nanowire_utils.maskrcnn.detectron2_engine as e; print(e.available())"

``a1ce2f9`` is a 2025 commit of upstream main (the one Meta's SAM 3D Body pins); its
compiled ``_C`` extension is optional and R50-FPN Mask R-CNN needs none of it (ROIAlign and
NMS come from torchvision). The build takes 5-10 minutes on a few cores.

What the mapping does (:func:`detectron2_overrides`)
----------------------------------------------------
* detectron2 keys pass through unchanged (lists become tuples where detectron2 wants them).
* ``ENGINE``, ``SOLVER.MAX_MINUTES``, ``TEST.MAX_EVAL_IMAGES``, ``DATASET.*``, ``INPUT.AUG.*``
  are the project's own: the augmentations go to the data mapper (:class:`NanowireMapper`),
  the time budget to a hook, the rest are not used by detectron2.
* ``SOLVER.EPOCHS`` becomes ``SOLVER.MAX_ITER`` (and STEPS) through
  :func:`nanowire_utils.maskrcnn.config.apply_epochs` with the training split size.
* ``DEVICE`` -> ``MODEL.DEVICE``. ``MODEL.WEIGHTS="coco"`` -> the model zoo's COCO weights of
  the base config; the zoo's BGR pixel statistics are then kept, since those weights expect
  them; from scratch the vocabulary's ``MODEL.PIXEL_MEAN/STD`` are used with ``INPUT.FORMAT
  "RGB"``. Gray images are replicated to three channels in both cases.
* From scratch (``MODEL.WEIGHTS=""``) the normalisation of detectron2's
  ``configs/Misc/scratch_mask_rcnn_R_50_FPN_3x_gn.yaml`` is enforced: GroupNorm in the
  backbone (unless BN was chosen), the FPN, the mask head and a convolutional box head,
  ``MODEL.BACKBONE.FREEZE_AT=0``, ``RESNETS.STRIDE_IN_1X1=False`` (FrozenBN with random
  weights would freeze random layers). The head shapes stay the vocabulary's (that recipe's
  4conv1fc box head is ``ROI_BOX_HEAD.NUM_CONV=4, NUM_FC=1``).
* ResNet-18/34 backbones need ``MODEL.RESNETS.RES2_OUT_CHANNELS=64``; set automatically.
* ``SOLVER.CLIP_GRADIENTS`` clips the gradient norm (``CLIP_TYPE="norm"``) like the
  torchvision engine.
* Masks are RLE in the data set: ``INPUT.MASK_FORMAT="bitmask"``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import weakref
from pathlib import Path

import numpy as np

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.engine import EngineUnavailable, Predictor, TrainResult, count_images, train_image_size

log = logging.getLogger(__name__)

#: The model zoo config the paper's model starts from.
BASE_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
#: Pinned upstream commit of the install recipe (see the module docstring).
DETECTRON2_COMMIT = "a1ce2f9"
INSTALL_COMMAND = (
    "pip install 'setuptools<82' wheel ninja && pip install --no-build-isolation "
    f"'git+https://github.com/facebookresearch/detectron2.git@{DETECTRON2_COMMIT}' "
    "(after installing torch; see the docstring of nanowire_utils.maskrcnn.detectron2_engine)"
)

#: Vocabulary keys that are not detectron2 keys (handled here or not used by detectron2).
PROJECT_KEYS = ("ENGINE", "DEVICE", "SOLVER.EPOCHS", "SOLVER.MAX_MINUTES", "TEST.MAX_EVAL_IMAGES")
PROJECT_PREFIXES = ("DATASET.", "INPUT.AUG.")
#: detectron2 keys whose value is a tuple in its CfgNode.
_TUPLE_KEYS = ("INPUT.MIN_SIZE_TRAIN", "SOLVER.STEPS", "INPUT.CROP.SIZE")


class Detectron2NotInstalled(EngineUnavailable):
    """detectron2 was asked for but cannot be imported (a ValueError too, so the CLI prints
    one line)."""


def detectron2_available() -> bool:
    """Whether ``import detectron2`` works here."""
    try:
        import detectron2  # noqa: F401
    except Exception:
        return False
    return True


def require_detectron2():
    """Import and return the ``detectron2`` package, or raise :class:`Detectron2NotInstalled`
    naming the install command."""
    try:
        import detectron2
    except Exception as err:
        raise Detectron2NotInstalled(
            f"the detectron2 engine needs detectron2, which cannot be imported here ({type(err).__name__}: {err}). "
            f"Install it on a GPU machine with: {INSTALL_COMMAND}; or use ENGINE='torchvision'"
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
# Configuration mapping (pure Python)
# --------------------------------------------------------------------------------------


def _values(cfg) -> dict:
    if hasattr(cfg, "to_dict"):
        d = cfg.to_dict()
    else:
        from nanowire_utils.maskrcnn.config import TrainConfig

        d = TrainConfig.from_dict(dict(cfg)).to_dict()
    return {k: v for k, v in d.items() if not k.startswith("_")}


def detectron2_overrides(cfg, device: str | None = None) -> dict:
    """The detectron2 config keys (dotted names) and values a :class:`TrainConfig` sets.

    Parameters
    ----------
    cfg:
        A :class:`nanowire_utils.maskrcnn.config.TrainConfig` (or a flat dict of its keys) whose
        ``SOLVER.EPOCHS`` has already been resolved (:func:`nanowire_utils.maskrcnn.config.apply_epochs`).
    device:
        ``"cuda"``/``"cpu"``; None resolves the vocabulary's ``DEVICE`` (``"auto"``: CUDA when
        available, detected only if torch imports).

    Returns a plain ``{"MODEL.RESNETS.DEPTH": 50, ...}`` dict, applied on top of the model zoo's
    ``mask_rcnn_R_50_FPN_3x`` config by :func:`build_detectron2_cfg`. ``MODEL.WEIGHTS`` may be
    the marker ``"coco"`` (resolved to the zoo URL there). See the module docstring for the rules.
    """
    v = _values(cfg)
    out: dict = {}
    for key, value in v.items():
        if key in PROJECT_KEYS or key.startswith(PROJECT_PREFIXES):
            continue
        if key in _TUPLE_KEYS:
            value = tuple(value)
        out[key] = value
    if device is None:
        device = v.get("DEVICE", "auto")
        if device == "auto":
            try:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            except ImportError:
                device = "cpu"
    out["MODEL.DEVICE"] = device
    out["SEED"] = int(v.get("SEED", 0))
    out["MODEL.MASK_ON"] = True
    out["INPUT.MASK_FORMAT"] = "bitmask"
    out["SOLVER.CLIP_GRADIENTS.CLIP_TYPE"] = "norm"
    out["SOLVER.CLIP_GRADIENTS.NORM_TYPE"] = 2.0
    if int(v["MODEL.RESNETS.DEPTH"]) in (18, 34):
        out["MODEL.RESNETS.RES2_OUT_CHANNELS"] = 64
    weights = v.get("MODEL.WEIGHTS", "")
    if weights == "":
        # detectron2's scratch recipe (configs/Misc/scratch_mask_rcnn_R_50_FPN_3x_gn.yaml).
        out["MODEL.RESNETS.NORM"] = "GN" if v["MODEL.RESNETS.NORM"] in ("FrozenBN", "GN") else v["MODEL.RESNETS.NORM"]
        out["MODEL.BACKBONE.FREEZE_AT"] = 0
        out["MODEL.RESNETS.STRIDE_IN_1X1"] = False
        out["MODEL.FPN.NORM"] = v["MODEL.FPN.NORM"] or "GN"
        out["MODEL.ROI_MASK_HEAD.NORM"] = v["MODEL.ROI_MASK_HEAD.NORM"] or "GN"
        if v["MODEL.ROI_BOX_HEAD.NUM_CONV"] > 0:  # GN acts on the box head's convolutions only
            out["MODEL.ROI_BOX_HEAD.NORM"] = v["MODEL.ROI_BOX_HEAD.NORM"] or "GN"
        out["INPUT.FORMAT"] = "RGB"
    else:
        # Pretrained weights carry their own pixel statistics (the zoo's, BGR, std 1).
        for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
            out.pop(key, None)
        out["INPUT.FORMAT"] = "BGR"
    return out


def build_detectron2_cfg(cfg, run_dir=None, train_name=None, test_name=None, device=None):
    """A detectron2 ``CfgNode``: the model zoo's ``mask_rcnn_R_50_FPN_3x`` with
    :func:`detectron2_overrides` applied, ``OUTPUT_DIR = run_dir/checkpoints`` and the
    registered data set names."""
    require_detectron2()
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    d2 = get_cfg()
    d2.merge_from_file(model_zoo.get_config_file(BASE_CONFIG))
    for key, value in detectron2_overrides(cfg, device=device).items():
        node = d2
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"{key} is not a key of this detectron2 version's config; update detectron2")
        node[parts[-1]] = value
    if d2.MODEL.WEIGHTS == "coco":
        d2.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(BASE_CONFIG)
    if not d2.MODEL.WEIGHTS and (d2.MODEL.RESNETS.NORM == "FrozenBN" or d2.MODEL.BACKBONE.FREEZE_AT != 0):
        raise ValueError("training from scratch needs GroupNorm (or BN) and MODEL.BACKBONE.FREEZE_AT=0")
    d2.DATASETS.TRAIN = (train_name,) if train_name else ()
    d2.DATASETS.TEST = (test_name,) if test_name else ()
    if run_dir is not None:
        d2.OUTPUT_DIR = str(Path(run_dir) / "checkpoints")
    return d2


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def register_split(data_dir, split: str) -> str:
    """Register ``DIR/annotations/instances_<split>.json`` with detectron2's catalogs (once)
    and return its data set name."""
    require_detectron2()
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    data_dir = Path(data_dir).resolve()
    ann = data_dir / "annotations" / f"instances_{split}.json"
    if not ann.is_file():
        raise FileNotFoundError(f"no annotations {ann}: generate the data set first (nanowire-utils generate ...)")
    name = f"nanowire_{abs(hash(str(data_dir))) % 10**8:08d}_{split}"
    if name not in DatasetCatalog.list():
        register_coco_instances(name, {}, str(ann), str(data_dir / "images" / split))
    return name


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
        import copy

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


def _checkpoint_extra(cfg, d2cfg) -> dict:
    v = _values(cfg)
    return {
        "engine": "detectron2",
        "arch": f"mask_rcnn_R_{v['MODEL.RESNETS.DEPTH']}_FPN ({v['MODEL.RESNETS.NORM']})",
        "config": cfg.to_dict(),
        "detectron2_config": d2cfg.dump(),
    }


def make_trainer_class():
    """The :class:`detectron2.engine.DefaultTrainer` subclass used here (built lazily so that
    this module imports without detectron2): our mapper for training and test loaders,
    COCOEvaluator, checkpoints carrying ``engine``/``config``/``arch`` and an optional
    wall-clock budget (``SOLVER.MAX_MINUTES``)."""
    require_detectron2()
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_test_loader, build_detection_train_loader
    from detectron2.engine import DefaultTrainer, HookBase
    from detectron2.evaluation import COCOEvaluator

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
            ck.extra = _checkpoint_extra(self.vocab, self.cfg)
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


def train(cfg, data_dir, out_dir, resume: bool = True, progress: bool = True, eval_split: str | None = "val"):
    """Train detectron2's Mask R-CNN on ``data_dir`` into the run folder ``out_dir``; the
    detectron2 counterpart of :func:`nanowire_utils.maskrcnn.torchvision_engine.train` (which calls it for
    ``ENGINE="detectron2"``, or ``"auto"`` on a GPU with detectron2).

    Parameters
    ----------
    cfg: a :class:`nanowire_utils.maskrcnn.config.TrainConfig` (EPOCHS are resolved here).
    data_dir: synthetic data set folder (``annotations/instances_<split>.json``, ``images/<split>/``).
    out_dir: the run folder; ``checkpoints/`` holds detectron2's periodic checkpoints (with
        optimizer state, for resuming), ``model_final.pth`` the final weights.
    resume: continue from ``out_dir/checkpoints/last_checkpoint`` when there is one; with
        False an existing run is an error.
    progress: detectron2 logs its own progress every 20 iterations (no tqdm bar).
    eval_split: split evaluated with COCOEvaluator every ``TEST.EVAL_PERIOD`` iterations and
        at the end (None: no evaluation; skipped when the split has no images).

    Returns a :class:`nanowire_utils.maskrcnn.engine.TrainResult`.
    """
    require_detectron2()
    import torch
    from detectron2.utils.logger import setup_logger

    from nanowire_utils.maskrcnn.config import TrainConfig, apply_epochs

    t0 = time.perf_counter()
    cfg = (cfg.copy() if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).validate()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if not resume and (ckpt_dir / "last_checkpoint").is_file():
        raise FileExistsError(f"{out_dir} already holds a run; resume it or choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_logger(str(ckpt_dir), name="detectron2")
    train_name = register_split(data_dir, "train")
    counts = count_images(data_dir)
    n_train = counts["train"]
    cfg, note = apply_epochs(cfg, n_train)
    if note:
        log.info(note)
    if eval_split and counts.get(eval_split, 0) == 0:
        eval_split = None
    test_name = register_split(data_dir, eval_split) if eval_split else None
    d2cfg = build_detectron2_cfg(cfg, out_dir, train_name, test_name)
    if not test_name:
        d2cfg.TEST.EVAL_PERIOD = 0
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "detectron2_config.yaml").write_text(d2cfg.dump())
    extra = _checkpoint_extra(cfg, d2cfg)
    provenance = {
        "_engine": "detectron2",
        "_arch": extra["arch"],
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
    trainer = Trainer(d2cfg)
    trainer.resume_or_load(resume=resume)
    start_iter = int(trainer.start_iter)
    stopped_by = "max_iter"
    try:
        trainer.train()
    except _BudgetReached as stop:
        log.info("SOLVER.MAX_MINUTES reached; stopping at iteration %d", stop.iteration)
        trainer.checkpointer.save("model_final", iteration=stop.iteration)
        stopped_by = "time budget"
    iteration = int(trainer.iter)
    final = out_dir / "model_final.pth"
    state = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    tmp = final.with_suffix(".pth.tmp")
    torch.save({"model": state, "iteration": iteration, **extra}, tmp)
    os.replace(tmp, final)
    (out_dir / "last_checkpoint").write_text("model_final.pth\n")
    provenance["_iterations_done"] = iteration
    cfg.to_json(out_dir / "config.json", extra=provenance)
    convert_metrics(ckpt_dir / "metrics.json", out_dir / "metrics.jsonl", eval_split or "val")
    val = getattr(trainer, "_last_eval_results", None)
    return TrainResult(
        run_dir=str(out_dir),
        iterations=iteration,
        final_checkpoint=str(final),
        stopped_by=stopped_by,
        elapsed_s=time.perf_counter() - t0,
        val_metrics=dict(val) if val else None,
        resumed_from=start_iter,
    )


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------


class Detectron2Predictor(Predictor):
    """Predictor adapter: detectron2's model on one gray image, returning our Instances.

    Images are fed at their own size (no ResizeShortestEdge), like the torchvision engine.
    detectron2 pastes masks at a fixed 0.5 threshold, so ``mask_thresh`` is not used.
    """

    engine = "detectron2"

    def predict_gray(self, gray: np.ndarray) -> Instances:
        import torch

        h, w = gray.shape
        image = torch.as_tensor(gray_to_model_image(gray).transpose(2, 0, 1).copy())
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
    )
