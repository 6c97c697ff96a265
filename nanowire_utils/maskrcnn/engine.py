"""The one engine interface: what every Mask R-CNN engine provides and how one is chosen.

Two engines train and run the same model from the same configuration vocabulary
(:mod:`nanowire_utils.maskrcnn.config`):

``torchvision``
    Built in, CPU or GPU: :mod:`nanowire_utils.maskrcnn.torchvision_engine`.
``detectron2``
    The paper's implementation, optional (built from source on a GPU hub):
    :mod:`nanowire_utils.maskrcnn.detectron2_engine`.

This module defines what they share and import from here (never from each other):
:class:`TrainResult`, the :class:`Predictor` base class, the engine and device choice, and the
run folder and checkpoint layout. :func:`train` and :func:`load_predictor` dispatch through
:data:`REGISTRY`, which names each engine's entry points as ``"module:function"`` strings that
are imported only when used, so this module depends on no engine and the import graph has no
cycle.

Run folder layout (both engines)::

    RUN/config.json           the configuration, plus provenance keys starting with "_"
    RUN/metrics.jsonl         one JSON record per line: kind "train", "eval" or "info"
    RUN/checkpoints/          periodic checkpoints (model, optimizer, schedule, RNG states)
    RUN/model_final.pth       the final weights
    RUN/last_checkpoint       the name of the newest checkpoint, relative to RUN
    RUN/detectron2_config.yaml  the run's config in detectron2's own format (both engines)

Every checkpoint is a dict with ``"model"`` (a state dict), ``"config"`` (the vocabulary's
flat dict) and ``"engine"`` (``"torchvision"`` or ``"detectron2"``), so :func:`load_predictor`
knows which engine to hand it to.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.inference import AUTO_TILE_FACTOR, DEFAULT_OVERLAP, predict_tiled, to_gray01

log = logging.getLogger(__name__)

#: The engines, in order of preference when nothing else decides.
ENGINES = ("torchvision", "detectron2")
#: What ``ENGINE`` may be set to.
ENGINE_CHOICES = ("auto", *ENGINES)

#: Each engine's entry points, imported on first use: ``train(cfg, data_dir, out_dir, resume,
#: progress, **options) -> TrainResult``, ``load_predictor(checkpoint_path, checkpoint, device,
#: score_thresh, mask_thresh) -> Predictor`` and ``available() -> (bool, reason)``.
REGISTRY = {
    "torchvision": {
        "train": "nanowire_utils.maskrcnn.torchvision_engine:train",
        "load_predictor": "nanowire_utils.maskrcnn.torchvision_engine:load_predictor",
        "available": "nanowire_utils.maskrcnn.torchvision_engine:available",
    },
    "detectron2": {
        "train": "nanowire_utils.maskrcnn.detectron2_engine:train",
        "load_predictor": "nanowire_utils.maskrcnn.detectron2_engine:load_predictor",
        "available": "nanowire_utils.maskrcnn.detectron2_engine:available",
    },
}

# Run folder layout (see the module docstring).
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
FINAL_CHECKPOINT = "model_final.pth"
LAST_CHECKPOINT = "last_checkpoint"
SPLITS = ("train", "val", "test")


class EngineUnavailable(ImportError, ValueError):
    """An engine was asked for but cannot run here (a ValueError too, so the CLI prints one line)."""


def entry_point(engine: str, name: str):
    """The function ``name`` (``"train"``, ``"load_predictor"``, ``"available"``) of ``engine``."""
    check_choice("engine", engine, ENGINES)
    module, func = REGISTRY[engine][name].split(":")
    return getattr(importlib.import_module(module), func)


def engine_available(engine: str) -> tuple[bool, str]:
    """``(True, "")`` when ``engine`` can run here, else ``(False, why and what to do)``."""
    return entry_point(engine, "available")()


def resolve_engine(name: str = "auto") -> str:
    """The engine a configuration's ``ENGINE`` means on this machine.

    ``"auto"`` is ``"detectron2"`` when it is installed and a CUDA GPU is present, else
    ``"torchvision"``. A named engine is checked: :class:`EngineUnavailable` says why it
    cannot run and what to install.
    """
    check_choice("ENGINE", name, ENGINE_CHOICES)
    if name == "auto":
        import torch

        # CUDA first: importing detectron2 takes seconds, and without a GPU it is not chosen
        if torch.cuda.is_available() and engine_available("detectron2")[0]:
            return "detectron2"
        return "torchvision"
    ok, why = engine_available(name)
    if not ok:
        raise EngineUnavailable(why)
    return name


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is usable, else ``"cpu"``; other names pass through."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but no CUDA GPU is available; use device='cpu'")
    return str(device)


@dataclass
class TrainResult:
    """What :func:`train` did, whichever engine trained."""

    run_dir: str
    iterations: int
    final_checkpoint: str
    stopped_by: str  # "max_iter", "time budget" or "stop_at_minutes"
    elapsed_s: float
    weights: dict = field(default_factory=dict)
    val_metrics: dict | None = None
    resumed_from: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def train(cfg, data_dir, out_dir, resume: bool = True, progress: bool = True, **options) -> TrainResult:
    """Train Mask R-CNN on ``data_dir``'s train split into the run folder ``out_dir``, with the
    engine that the configuration's ``ENGINE`` names (:func:`resolve_engine`).

    Parameters
    ----------
    cfg : TrainConfig or dict
        The configuration (e.g. ``TrainConfig.from_preset("cpu")``).
    data_dir : path
        A synthetic dataset folder (:mod:`nanowire_utils.synth.dataset` layout).
    out_dir : path
        The run folder. When it holds a checkpoint, training resumes from it with
        ``resume=True`` and is an error with ``resume=False``.
    progress : bool
        Show a progress bar (the torchvision engine) or detectron2's periodic log lines.
    **options
        Engine-specific options, e.g. ``stop_at_minutes`` (torchvision).

    Returns
    -------
    TrainResult
    """
    from nanowire_utils.maskrcnn.config import TrainConfig

    cfg = (cfg.copy() if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).validate()
    engine = resolve_engine(cfg["ENGINE"])
    return entry_point(engine, "train")(cfg, data_dir, out_dir, resume=resume, progress=progress, **options)


class Predictor:
    """A trained model ready to segment images; build it with :func:`load_predictor`.

    Subclasses (one per engine) implement :meth:`predict_gray` on one model-ready image.

    Attributes
    ----------
    model: the torch module, in eval mode on ``device``.
    cfg: the training config (a ``TrainConfig`` or a plain dict of it).
    engine: ``"torchvision"`` or ``"detectron2"``.
    score_thresh: instances scoring below are dropped.
    mask_thresh: soft-mask probability above which a pixel belongs to the instance.
    train_size: side of the training images in pixels (default tile size).
    input_scale: factor by which every image is resized before the model sees it
    (:func:`model_input_scale`); results come back at the image's own size.
    source: the checkpoint file the weights came from (None when built in memory).
    iteration: the training iteration of those weights (None when unknown).
    """

    engine = "?"

    def __init__(
        self,
        model,
        cfg,
        device="cpu",
        score_thresh=0.5,
        mask_thresh=0.5,
        train_size=512,
        source=None,
        iteration=None,
    ):
        check_range("score_thresh", score_thresh, 0, 1)
        check_range("mask_thresh", mask_thresh, 0, 1, low_inclusive=False, high_inclusive=False)
        self.model = model
        self.cfg = cfg
        self.device = device
        self.score_thresh = float(score_thresh)
        self.mask_thresh = float(mask_thresh)
        self.train_size = int(train_size)
        self.input_scale = model_input_scale(cfg) if cfg is not None else 1.0
        self.source = source
        self.iteration = None if iteration is None else int(iteration)

    def __repr__(self):
        return (
            f"{type(self).__name__}(engine={self.engine!r}, device={self.device!r}, "
            f"score_thresh={self.score_thresh}, train_size={self.train_size}, source={str(self.source)!r})"
        )

    def predict_gray(self, gray: np.ndarray) -> Instances:  # pragma: no cover - abstract
        """Instances in one float32 (H, W) image in [0, 1], run as one piece."""
        raise NotImplementedError

    def predict(
        self, image, modality: str | None = None, tile: int | None = None, overlap: int | None = None
    ) -> Instances:
        """Instances (masks at the image's full size) in ``image``.

        Parameters
        ----------
        image:
            Array (uint8 / uint16 / float / bool; gray, RGB, RGBA) or image file path;
            see :func:`to_gray01`.
        modality:
            ``None`` or one of ``"ptychography"``, ``"stxm"``, ``"sem"`` (preprocessing).
        tile:
            ``None``: tile automatically when a side exceeds 1.5 x the training size, with
            tiles of the training size. ``0``: never tile. ``N`` (>= 32): tiles of N px
            when the image is larger than N.
        overlap:
            Overlap of neighbouring tiles in pixels (< tile / 2); None: 64, or a quarter of
            the tile for tiles under 256 px.
        """
        gray = to_gray01(image, modality=modality)
        h, w = gray.shape
        if tile is None:
            tile = self.train_size if max(h, w) > AUTO_TILE_FACTOR * self.train_size else 0
        else:
            tile = int(tile)
            if tile != 0:
                check_range("tile", tile, 32, None, unit="px")
        if tile and max(h, w) > tile:
            if overlap is None:
                overlap = min(DEFAULT_OVERLAP, tile // 4)
            return predict_tiled(self.predict_gray, gray, tile, overlap=overlap)
        return self.predict_gray(gray)

    __call__ = predict


def load_predictor(
    run_dir_or_checkpoint,
    device: str = "auto",
    score_thresh: float | None = None,
    engine: str | None = None,
    mask_thresh: float = 0.5,
) -> Predictor:
    """A :class:`Predictor` for a trained run.

    Parameters
    ----------
    run_dir_or_checkpoint:
        A run folder written by ``nanowire-utils train`` (config.json, model_final.pth,
        checkpoints/) or one ``.pth`` checkpoint file.
    device:
        ``"auto"`` (GPU if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    score_thresh:
        Keep instances scoring at least this (0-1); None: the run's test threshold
        (``MODEL.ROI_HEADS.SCORE_THRESH_TEST``), else 0.5.
    engine:
        None: the engine the checkpoint was trained with (its ``"engine"`` field).
        ``"torchvision"`` or ``"detectron2"`` to insist; a mismatch is an error.
    mask_thresh:
        Soft-mask probability above which a pixel is in the instance.
    """
    ckpt_path = resolve_checkpoint_path(run_dir_or_checkpoint)
    ckpt = read_checkpoint(ckpt_path)
    found = checkpoint_engine(ckpt, ckpt_path)
    if engine is not None:
        check_choice("engine", engine, ENGINES)
        if engine != found:
            raise ValueError(f"{ckpt_path} was trained with engine {found!r}, not {engine!r}")
    ok, why = engine_available(found)
    if not ok:
        raise EngineUnavailable(f"{ckpt_path} was trained with the {found} engine, which cannot run here: {why}")
    device = resolve_device(device)
    return entry_point(found, "load_predictor")(
        ckpt_path, ckpt, device=device, score_thresh=score_thresh, mask_thresh=mask_thresh
    )


def checkpoint_engine(ckpt: dict, path="checkpoint") -> str:
    """The engine that wrote a checkpoint (its ``"engine"`` field; ``"torchvision"`` if absent)."""
    found = str(ckpt.get("engine", "torchvision"))
    check_choice(f"engine of {path}", found, ENGINES)
    return found


def resolve_checkpoint_path(path_or_run_dir) -> Path:
    """The checkpoint file a path names: a ``.pth`` file, or a run directory's newest checkpoint.

    For a directory: the file named in ``last_checkpoint``, else ``model_final.pth``, else the
    newest ``checkpoints/model_*.pth``. Raises FileNotFoundError saying what to do.
    """
    p = Path(path_or_run_dir).expanduser()
    if p.is_dir():
        marker = p / "last_checkpoint"
        if marker.exists():
            name = marker.read_text().strip()
            if name and (p / name).exists():
                return p / name
        if (p / FINAL_CHECKPOINT).exists():
            return p / FINAL_CHECKPOINT
        found = sorted((p / "checkpoints").glob("model_*.pth"))
        if found:
            return found[-1]
        raise FileNotFoundError(
            f"no checkpoint in {p} (no last_checkpoint, model_final.pth or checkpoints/model_*.pth); "
            "train first (nanowire-utils train --out DIR) or pass --weights FILE"
        )
    if not p.exists():
        raise FileNotFoundError(
            f"checkpoint {p} does not exist; train first (nanowire-utils train) or pass --weights FILE"
        )
    return p


def read_checkpoint(path, map_location="cpu") -> dict:
    """``torch.load`` of a project checkpoint with clear errors for truncated/corrupt/foreign files."""
    import pickle
    import zipfile

    import torch

    p = resolve_checkpoint_path(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as err:
        raise ValueError(
            f"checkpoint {p} is truncated or corrupt ({type(err).__name__}: {str(err).splitlines()[0][:120]}); "
            "delete it and resume from an earlier checkpoint, or train again"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(
            f"{p} is not a nanowire_utils checkpoint (expected a dict with 'model' and 'config'); "
            "for bare torchvision weights use nanowire_utils.maskrcnn.weights"
        )
    return ckpt


def read_metrics(run_dir) -> list[dict]:
    """The records of ``RUN_DIR/metrics.jsonl`` (``kind``: ``train``, ``eval`` or ``info``)."""
    p = Path(run_dir) / "metrics.jsonl"
    if not p.exists():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}; train first (nanowire-utils train --out {run_dir})")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def count_images(data_dir, splits=SPLITS) -> dict:
    """Images per split of a synthetic dataset folder, and their sum under ``"all"``.

    Both engines record ``n_images = counts["all"]`` (every split: the paper's "dataset size"
    read as all images; see the book's Table 1 notes) and ``n_train = counts["train"]``.
    """
    data_dir = Path(data_dir)
    counts = {}
    for split in splits:
        p = data_dir / "annotations" / f"instances_{split}.json"
        counts[split] = len(json.loads(p.read_text()).get("images", [])) if p.exists() else 0
    counts["all"] = sum(counts[s] for s in splits)
    return counts


def find_resume(out_dir):
    """The checkpoint a run folder would resume from, or None for a new run."""
    try:
        return resolve_checkpoint_path(out_dir)
    except FileNotFoundError:
        return None


def _cfg_get(cfg, key, default=None):
    """``cfg[key]`` of a TrainConfig or flat dict, ``default`` when absent."""
    try:
        value = cfg.get(key, None)
    except AttributeError:
        value = None
    return default if value is None else value


def train_image_size(cfg) -> int:
    """Side in pixels of the images a run was trained on (the default tile size)."""
    size = _cfg_get(cfg, "DATASET.IMAGE_SIZE") or _cfg_get(cfg, "INPUT.MAX_SIZE_TEST", 512)
    if isinstance(size, (list, tuple)):
        size = max(size)
    return int(size)


def model_input_scale(cfg) -> float:
    """Factor by which a model resizes every image it segments, as it resized its synthetic
    test images: ``min(INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST) / DATASET.IMAGE_SIZE``.

    1 when the model works at the pixel size of its training images (wire widths in pixels as
    generated); 0.5 for a model trained and tested on whole 512 px images resized to 256 px.
    Predictors apply this factor to images of any size, so a real image rescaled to the
    training data's wire width is seen as the synthetic images were. 1 for configs that do not
    record ``DATASET.IMAGE_SIZE``.

    Parameters
    ----------
    cfg : TrainConfig or dict
        The run's training configuration.

    Returns
    -------
    float
        The resize factor (output pixels per input pixel).
    """
    size = _cfg_get(cfg, "DATASET.IMAGE_SIZE")
    if not size:
        return 1.0
    test = min(int(_cfg_get(cfg, "INPUT.MIN_SIZE_TEST", size)), int(_cfg_get(cfg, "INPUT.MAX_SIZE_TEST", size)))
    return test / float(size)
