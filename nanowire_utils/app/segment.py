"""The segmentation app's logic, without widgets: what the paper's web app does (upload an
image, get the masks, the particle statistics and downloads), as plain functions and classes
that the widget layout (:mod:`nanowire_utils.app.ui`) and the tests call.

Typical use::

    from nanowire_utils.app import segment as sg
    image = sg.load_sample_image("ptychography")          # or sg.read_upload(name, content)
    model = sg.ModelCache().get("runs/cpu/mask_rcnn")      # AppError saying what to do if unusable
    result = sg.segment(image, model, modality="ptychography", input_scale=1.0, score_thresh=0.5)
    result.table                 # one row per wire: area, length, width, aspect ratio, orientation
    result.overlay_png()         # instance colours over the image
    result.statistics_csv(), result.coco_json(), result.masks_npz()

Every error a user can cause (an unreadable upload, an image over :data:`MAX_PIXELS`, no
trained model, a model of an engine that is not installed) is an :class:`AppError` whose
message says what is wrong and what to do; the app shows it and stays usable.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_range
from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.engine import FINAL_CHECKPOINT
from nanowire_utils.paper import MODALITIES

#: Largest image the app segments, in pixels (width x height): 4096 x 4096.
MAX_PIXELS = 4096 * 4096
#: Largest upload the app reads, in bytes (64 MiB; a 4096 x 4096 16-bit RGB TIFF is 96 MiB
#: uncompressed, so such files must be compressed or gray).
MAX_UPLOAD_BYTES = 64 * 2**20
#: File types the upload accepts.
UPLOAD_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
#: Score threshold the model runs with; the user's threshold filters afterwards, so moving
#: it needs no new inference.
MODEL_SCORE_THRESH = 0.05
#: Columns of the statistics table shown and downloaded, in pixel units and in nm.
TABLE_COLUMNS_PX = ("instance", "score", "area", "length", "width", "aspect_ratio", "orientation")
TABLE_COLUMNS_NM = ("instance", "score", "area_nm2", "length_nm", "width_nm", "aspect_ratio", "orientation")
#: What the app says when there is no trained model.
HOW_TO_TRAIN = (
    "train one first, e.g. `nanowire-utils generate --n 1000 --out data/synthetic --preset paper` then "
    "`nanowire-utils train --data data/synthetic --out runs/cpu --preset cpu` (about 30 minutes on a CPU), "
    "or run chapter 4 of the book, and pick its run folder"
)


class AppError(ValueError):
    """A problem the user can fix; its message says what happened and what to do."""


# ----------------------------------------------------------------------------- images


def check_image_size(image: np.ndarray, max_pixels: int = MAX_PIXELS, name: str = "the image") -> None:
    """AppError when ``image`` has more than ``max_pixels`` pixels (rows x cols)."""
    h, w = np.asarray(image).shape[:2]
    if h * w > max_pixels:
        side = int(math.isqrt(max_pixels))
        raise AppError(
            f"{name} is {w} x {h} px ({h * w / 1e6:.1f} megapixels); the app segments images up to "
            f"{max_pixels / 1e6:.1f} megapixels (e.g. {side} x {side}). Crop or downscale it, or use "
            "`nanowire-utils predict`, which tiles images of any size"
        )


def read_upload(name: str, content: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The pixel array of an uploaded file (PNG, TIFF, JPEG, BMP; 8/16-bit; gray, RGB, RGBA).

    Parameters
    ----------
    name : str
        The file's name (its suffix chooses the reader).
    content : bytes
        The file's content.
    max_pixels : int
        Largest accepted image (rows x cols).

    Returns
    -------
    numpy.ndarray
        (H, W) or (H, W, C) in the file's own dtype (uint8, uint16, ...).

    Raises
    ------
    AppError
        Empty, too large, of an unknown type, unreadable, or too many pixels.
    """
    from nanowire_utils.real.preprocessing import read_image

    name = os.path.basename(str(name)) or "upload"
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise AppError(f"{name}: not an image type the app reads; upload one of {', '.join(UPLOAD_SUFFIXES)}")
    data = bytes(content)
    if not data:
        raise AppError(f"{name} is empty (0 bytes); upload the image file again")
    if len(data) > MAX_UPLOAD_BYTES:
        raise AppError(
            f"{name} is {len(data) / 2**20:.0f} MiB; the app reads uploads up to {MAX_UPLOAD_BYTES // 2**20} MiB"
        )
    with tempfile.TemporaryDirectory(prefix="nanowire_upload_") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            image = np.array(read_image(path))
        except (ValueError, OSError) as err:
            msg = str(err).replace(str(path), name)
            raise AppError(
                f"cannot read {name}: {msg}. Upload a PNG or TIFF image (8 or 16 bit, gray or RGB)"
            ) from None
    check_image_size(image, max_pixels, name)
    return image


def sample_names() -> tuple[str, ...]:
    """Names of the paper's real sample images (:mod:`nanowire_utils.real.samples`)."""
    from nanowire_utils.real.samples import SAMPLES

    return tuple(SAMPLES)


def load_sample_image(name: str) -> np.ndarray:
    """The real sample ``name`` as stored (uint8; the SEM file is RGB), AppError if unavailable."""
    from nanowire_utils.real.samples import load_sample

    try:
        return load_sample(name, as_gray=False)
    except (OSError, ValueError) as err:
        raise AppError(f"sample image {name!r} is not available: {err}") from None


def describe_image(image: np.ndarray) -> str:
    """One line: size, channels and bit depth, e.g. ``"531 x 449 px, gray, 8-bit"``."""
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    kind = "gray" if arr.ndim == 2 else {2: "gray + alpha", 3: "RGB", 4: "RGBA"}.get(arr.shape[-1], "multi-channel")
    depth = f"{arr.dtype.itemsize * 8}-bit" if np.issubdtype(arr.dtype, np.integer) else str(arr.dtype)
    return f"{w} x {h} px, {kind}, {depth}"


def model_input(image: np.ndarray, modality: str | None, input_scale: float = 1.0) -> np.ndarray:
    """The float32 gray image in [0, 1] the network gets: ``preprocess(image, modality,
    scale=input_scale)`` for a modality (:func:`nanowire_utils.real.preprocessing.preprocess`),
    else the image as gray in [0, 1] (integers divided by their type's maximum) rescaled by
    ``input_scale``."""
    from nanowire_utils.real.preprocessing import preprocess, rescale_by, to_gray_float

    check_range("input scale", input_scale, 0.1, 8)
    if modality:
        if modality not in MODALITIES:
            raise AppError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)} or none")
        return np.ascontiguousarray(preprocess(image, modality, scale=float(input_scale)), dtype=np.float32)
    gray = to_gray_float(image)
    if input_scale != 1.0:
        gray = rescale_by(gray, float(input_scale))
    return np.ascontiguousarray(gray, dtype=np.float32)


def run_generator_preset(run_dir) -> str | None:
    """The generator preset a run's training data came from (``DATASET.GENERATOR_PRESET`` of its
    ``config.json``), or None when the run folder does not say."""
    if run_dir in (None, ""):
        return None
    path = Path(run_dir).expanduser()
    path = path / "config.json" if path.is_dir() else path.parent / "config.json"
    try:
        value = json.loads(path.read_text()).get("DATASET.GENERATOR_PRESET")
    except (OSError, ValueError):
        return None
    return str(value) if value else None


@functools.lru_cache(maxsize=8)
def training_width(generator_preset: str = "paper", n_images: int = 8, seed: int = 0) -> float:
    """Median wire width in px of the training images of a generator preset (measured once,
    then cached): :func:`nanowire_utils.real.scale.training_image_width`."""
    from nanowire_utils.real.scale import training_image_width

    return training_image_width(generator_preset, n_images=n_images, seed=seed)


def estimate_input_scale(image: np.ndarray, modality: str | None = None, run_dir=None) -> tuple[float, str]:
    """``(scale, note)``: the factor that brings the image's wire widths to those of the
    training images of the run's model, from the image alone, and a sentence saying how.

    Both widths come from :mod:`nanowire_utils.real.scale` (the same estimator on the
    preprocessed image at scale 1 and on fresh images of the run's generator preset, ``paper``
    when the run does not name one). An image without measurable wires, or any failure of the
    estimate, gives 1.0 with the reason in the note; the app never stops for it.
    """
    from nanowire_utils.real.scale import estimate_input_scale as _estimate

    preset = run_generator_preset(run_dir) or "paper"
    try:
        gray = model_input(image, modality, 1.0)
        train = training_width(preset)
        est = _estimate(gray, train, name="upload")
    except Exception as err:  # an estimate failing must not stop the app
        return 1.0, f"the scale could not be estimated ({type(err).__name__}: {err}); using 1, type another"
    if est.fallback:
        return 1.0, f"no wires measurable in the image ({est.reason}); using 1, type another"
    return round(float(est.scale), 2), (
        f"estimated: wires {est.width_px:.1f} px wide here, {est.train_width_px:.1f} px in the "
        f"'{preset}' training images"
    )


# ----------------------------------------------------------------------------- models


def find_runs(*roots, max_depth: int = 4) -> list[Path]:
    """Trained run folders (holding ``model_final.pth``) under ``roots``, sorted, without
    duplicates; a root that is itself a run folder is included. Missing roots are skipped."""
    found = set()
    for root in roots:
        if root is None:
            continue
        root = Path(root).expanduser()
        if not root.is_dir():
            continue
        if (root / FINAL_CHECKPOINT).is_file():
            found.add(root.resolve())
        for dirpath, dirnames, filenames in os.walk(root):
            depth = len(Path(dirpath).relative_to(root).parts)
            if depth >= max_depth:
                dirnames[:] = []
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "checkpoints"]
            if FINAL_CHECKPOINT in filenames:
                found.add(Path(dirpath).resolve())
    return sorted(found)


def _engine_api():
    """The engine-level API (``nanowire_utils.maskrcnn.engine`` when present)."""
    try:
        from nanowire_utils.maskrcnn import engine

        if hasattr(engine, "load_predictor"):
            return engine
    except ImportError:
        pass
    from nanowire_utils.maskrcnn import inference

    return inference


def checkpoint_engine_name(run_dir) -> str | None:
    """The engine a run's final checkpoint was trained with (``"torchvision"``/``"detectron2"``),
    or None if it cannot be read."""
    try:
        import torch

        path = Path(run_dir)
        path = path / FINAL_CHECKPOINT if path.is_dir() else path
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return str(ckpt.get("engine", "torchvision")) if isinstance(ckpt, dict) else None
    except Exception:
        return None


def _engine_missing_message(run, engine: str | None, err: Exception) -> str:
    other = engine or "another"
    how = (
        "build detectron2 from source on a GPU machine (see 'Running on a GPU JupyterHub' in the book)"
        if other == "detectron2"
        else "install the package's train extras (pip install 'nanowire-utils[train]')"
    )
    return (
        f"the model in {run} was trained with the {other} engine, which is not installed here ({err}). "
        f"Either {how}, or pick a model trained here with the torchvision engine "
        "(`nanowire-utils train ... --preset cpu`)"
    )


def load_model(run_dir, device: str = "auto", score_thresh: float = MODEL_SCORE_THRESH):
    """A predictor for a trained run folder (or ``.pth`` file), with app-friendly errors.

    Raises
    ------
    AppError
        No run folder given, no trained model in it (saying how to train one), or a model
        of an engine that is not installed (saying what to install or pick instead).
    """
    if run_dir in (None, ""):
        raise AppError(f"no trained model chosen: pick a run folder; if the list is empty, {HOW_TO_TRAIN}")
    run = Path(run_dir).expanduser()
    if not run.exists():
        raise AppError(f"no trained model at {run}: {HOW_TO_TRAIN}")
    if run.is_dir() and not (run / FINAL_CHECKPOINT).is_file():
        raise AppError(f"{run} holds no finished model ({FINAL_CHECKPOINT}): {HOW_TO_TRAIN}")
    api = _engine_api()
    try:
        return api.load_predictor(run, device=device, score_thresh=score_thresh)
    except ImportError as err:  # engine.EngineUnavailable is an ImportError too
        raise AppError(_engine_missing_message(run, checkpoint_engine_name(run), err)) from None
    except FileNotFoundError as err:
        raise AppError(f"{err}; {HOW_TO_TRAIN}") from None
    except ValueError as err:
        if "engine" in str(err) and ("install" in str(err) or "cannot run" in str(err)):
            raise AppError(_engine_missing_message(run, checkpoint_engine_name(run), err)) from None
        raise AppError(f"cannot load the model in {run}: {err}") from None


class ModelCache:
    """Loads each run's predictor once (keyed by path, file time and device)."""

    def __init__(self, device: str = "auto"):
        self.device = device
        self._cache: dict = {}

    def get(self, run_dir):
        """The predictor of ``run_dir`` (see :func:`load_model`)."""
        if run_dir in (None, ""):
            return load_model(run_dir, self.device)
        run = Path(run_dir).expanduser()
        final = run / FINAL_CHECKPOINT if run.is_dir() else run
        key = (str(run.resolve()), final.stat().st_mtime if final.exists() else None, self.device)
        if key not in self._cache:
            self._cache.clear()  # one model in memory at a time
            self._cache[key] = load_model(run, self.device)
        return self._cache[key]


# ----------------------------------------------------------------------------- running

#: Steps of :func:`segment` in order, as reported to its ``progress`` callback.
STEPS = ("preprocessing", "segmenting", "post-processing", "measuring", "drawing")


@dataclass
class SegmentationResult:
    """What :func:`segment` made of one image.

    Attributes
    ----------
    image : numpy.ndarray
        The image as given (any layout :func:`read_upload` returns).
    model_input : numpy.ndarray
        float32 (H', W') in [0, 1]: what the network saw (preprocessed and rescaled).
    raw : Instances
        All predictions at the image's own size (scores >= :data:`MODEL_SCORE_THRESH`).
    instances : Instances
        After the score filter and the nested-instance filter.
    table : pandas.DataFrame
        :func:`nanowire_utils.real.statistics.particle_table` of ``instances`` (pixels, plus
        ``*_nm`` columns with a pixel size).
    settings : dict
        modality, input_scale, score_thresh, nested_fraction, min_area, pixel_size_nm, run.
    seconds : dict
        Seconds per step (:data:`STEPS`) and ``total``.
    name : str
        Image name for the downloads.
    """

    image: np.ndarray
    model_input: np.ndarray
    raw: Instances
    instances: Instances
    table: object
    settings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    name: str = "image"
    _overlay: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixel_size_nm(self) -> float | None:
        return self.settings.get("pixel_size_nm")

    def display_table(self):
        """The statistics table's main columns (nm when a pixel size was given), rounded."""
        cols = list(TABLE_COLUMNS_NM if self.pixel_size_nm else TABLE_COLUMNS_PX)
        digits = {c: 1 for c in cols if c not in ("instance", "score", "aspect_ratio")}
        return self.table[cols].round({**digits, "score": 2, "aspect_ratio": 2})

    def summary(self) -> str:
        """One line: instance count, medians, time."""
        n = len(self.instances)
        if not n:
            return (
                f"no wires found above score {self.settings.get('score_thresh')} ({self.seconds.get('total', 0):.1f} s)"
            )
        nm = self.pixel_size_nm
        unit = "nm" if nm else "px"
        length = self.table["length_nm" if nm else "length"].median()
        width = self.table["width_nm" if nm else "width"].median()
        return (
            f"{n} wires (of {len(self.raw)} predictions); median length {length:.0f} {unit}, "
            f"median width {width:.0f} {unit}; {self.seconds.get('total', 0):.1f} s"
        )

    def overlay(self) -> np.ndarray:
        """uint8 RGB (H, W, 3): the image in gray, every wire in its own colour, outlined."""
        if self._overlay is None:
            from nanowire_utils.viz.plotting import overlay_array

            self._overlay = overlay_array(self.image, self.instances)
        return self._overlay

    def overlay_png(self) -> bytes:
        """PNG file content of :meth:`overlay`."""
        from nanowire_utils.app._display import png_bytes

        return png_bytes(self.overlay())

    def statistics_csv(self) -> bytes:
        """The full statistics table as CSV (UTF-8), one row per wire."""
        return self.table.to_csv(index=False).encode("utf-8")

    def coco_results(self) -> list[dict]:
        """COCO results (RLE masks, xywh boxes, scores) of the kept wires, image id 1."""
        from nanowire_utils.coco import instances_to_coco_results

        return instances_to_coco_results(self.instances, image_id=1)

    def coco_json(self) -> bytes:
        """:meth:`coco_results` as a JSON file's content."""
        return json.dumps(self.coco_results()).encode("utf-8")

    def masks_npz(self) -> bytes:
        """``.npz`` file content: ``masks`` bool (N, H, W), ``scores`` (N,), ``boxes`` (N, 4) x0, y0, x1, y1."""
        buf = io.BytesIO()
        np.savez_compressed(buf, masks=self.instances.masks, scores=self.instances.scores, boxes=self.instances.boxes)
        return buf.getvalue()

    def downloads(self) -> dict[str, tuple[bytes, str]]:
        """``{file name: (content, MIME type)}`` of the four downloads."""
        stem = Path(self.name).stem or "image"
        return {
            f"{stem}_statistics.csv": (self.statistics_csv(), "text/csv"),
            f"{stem}_coco_results.json": (self.coco_json(), "application/json"),
            f"{stem}_masks.npz": (self.masks_npz(), "application/octet-stream"),
            f"{stem}_overlay.png": (self.overlay_png(), "image/png"),
        }

    def save(self, folder) -> list[Path]:
        """Write the four downloads into ``folder`` (created); returns their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for fname, (content, _) in self.downloads().items():
            (folder / fname).write_bytes(content)
            paths.append(folder / fname)
        return paths

    def statistics_figure(self):
        """Histograms of length, width, aspect ratio and orientation (matplotlib Figure)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 2.4), layout="constrained")
        self.plot_histograms(fig.subplots(1, 4))
        return fig

    def plot_histograms(self, axes) -> None:
        """Draw the histograms of length, width (nm when the pixel size is known, else
        pixels), aspect ratio and orientation (degrees) on four matplotlib axes."""
        nm = self.pixel_size_nm
        unit = "nm" if nm else "px"
        cols = [
            ("length_nm" if nm else "length", f"length ({unit})"),
            ("width_nm" if nm else "width", f"width ({unit})"),
            ("aspect_ratio", "aspect ratio"),
            ("orientation", "orientation (deg)"),
        ]
        for ax, (col, label) in zip(axes, cols):
            values = self.table[col].to_numpy(dtype=float) if len(self.table) else np.zeros(0)
            values = values[np.isfinite(values)]
            if col == "orientation":
                ax.hist(values, bins=18, range=(0, 180), color="tab:blue")
            else:
                ax.hist(values, bins=max(5, min(30, len(values) // 2 or 5)), color="tab:blue")
            ax.set_xlabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].set_ylabel("wires", fontsize=8)

    def refilter(
        self, score_thresh: float, nested_fraction: float | None, pixel_size_nm: float | None = None
    ) -> SegmentationResult:
        """The same predictions with other filters and pixel size (no new inference)."""
        check_range("score threshold", score_thresh, 0, 1)
        settings = {
            **self.settings,
            "score_thresh": float(score_thresh),
            "nested_fraction": nested_fraction,
            "pixel_size_nm": None if not pixel_size_nm else float(pixel_size_nm),
        }
        result = _finish(self.image, self.model_input, self.raw, settings, name=self.name)
        result.seconds = {**self.seconds, **{k: v for k, v in result.seconds.items() if k != "total"}}
        return result


def _finish(image, model_in, raw, settings, name="image", progress=None, seconds=None) -> SegmentationResult:
    from nanowire_utils.real.postprocess import postprocess
    from nanowire_utils.real.statistics import particle_table

    seconds = dict(seconds or {})
    report = progress or (lambda step, fraction: None)
    t = time.perf_counter()
    report("post-processing", 0.8)
    post = postprocess(
        raw,
        min_score=settings.get("score_thresh"),
        nested_fraction=settings.get("nested_fraction"),
        min_area=settings.get("min_area", 0) or 0,
    )
    seconds["post-processing"] = time.perf_counter() - t
    t = time.perf_counter()
    report("measuring", 0.85)
    table = particle_table(post, pixel_size_nm=settings.get("pixel_size_nm"))
    seconds["measuring"] = time.perf_counter() - t
    result = SegmentationResult(image, model_in, raw, post, table, settings, seconds, name)
    t = time.perf_counter()
    report("drawing", 0.9)
    result.overlay()
    seconds["drawing"] = time.perf_counter() - t
    return result


def segment(
    image: np.ndarray,
    predictor,
    *,
    modality: str | None = None,
    input_scale: float = 1.0,
    score_thresh: float = 0.5,
    nested_fraction: float | None = 0.8,
    min_area: float = 20.0,
    pixel_size_nm: float | None = None,
    tile: int | None = None,
    name: str = "image",
    progress: Callable[[str, float], None] | None = None,
) -> SegmentationResult:
    """Preprocess, segment, post-process and measure one image.

    Parameters
    ----------
    image : numpy.ndarray
        The image as read ((H, W) or (H, W, C), 8/16-bit or float).
    predictor : Predictor
        From :func:`load_model` / :class:`ModelCache` (any object with ``predict(gray, tile=)``).
    modality : str or None
        ``"ptychography"``, ``"stxm"``, ``"sem"`` (:func:`nanowire_utils.real.preprocessing.preprocess`)
        or None (gray in [0, 1] as it is).
    input_scale : float
        Factor (0.1-8) by which the image is resized before the network; masks come back at
        the image's own size.
    score_thresh : float
        Keep wires scoring at least this (0-1).
    nested_fraction : float or None
        Remove a wire when this fraction of it lies inside a larger one
        (:func:`nanowire_utils.real.postprocess.remove_nested`); None: keep all.
    min_area : float
        Drop instances smaller than this many pixels (of the image's own size).
    pixel_size_nm : float or None
        Pixel size in nm: the table gets ``*_nm`` columns and is shown in nm.
    tile : int or None
        Passed to ``predictor.predict`` (None: tile images over 1.5 x the training size).
    name : str
        The image's name, for the downloads.
    progress : callable, optional
        ``progress(step, fraction)`` before each step (:data:`STEPS`), and ``("done", 1.0)``.
    """
    check_range("score threshold", score_thresh, 0, 1)
    if nested_fraction is not None:
        check_range("nested fraction", nested_fraction, 0, 1, low_inclusive=False)
    if pixel_size_nm is not None:
        check_range("pixel size", pixel_size_nm, 0, None, low_inclusive=False, unit="nm")
    check_image_size(image)
    report = progress or (lambda step, fraction: None)
    seconds = {}
    t0 = time.perf_counter()
    report("preprocessing", 0.05)
    try:
        model_in = model_input(image, modality, input_scale)
    except ValueError as err:
        raise AppError(f"cannot preprocess the image: {err}") from None
    seconds["preprocessing"] = time.perf_counter() - t0
    t = time.perf_counter()
    report("segmenting", 0.15)
    pred = predictor.predict(model_in, tile=tile)
    if pred.image_shape != tuple(np.asarray(image).shape[:2]):
        from nanowire_utils.instances import resize_instances

        pred = resize_instances(pred, np.asarray(image).shape[:2])
    seconds["segmenting"] = time.perf_counter() - t
    settings = {
        "modality": modality,
        "input_scale": float(input_scale),
        "score_thresh": float(score_thresh),
        "nested_fraction": nested_fraction,
        "min_area": float(min_area),
        "pixel_size_nm": None if pixel_size_nm is None else float(pixel_size_nm),
        "run": str(getattr(predictor, "source", "") or ""),
    }
    result = _finish(image, model_in, pred, settings, name=name, progress=report, seconds=seconds)
    result.seconds["total"] = time.perf_counter() - t0
    report("done", 1.0)
    return result
