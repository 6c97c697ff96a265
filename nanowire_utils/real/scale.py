"""The input scale of a real image, estimated from the image alone.

A network trained on synthetic images has learnt wires of certain widths in pixels; a real
image whose wires are twice as wide is, to it, a different kind of object (chapter 6). The
factor by which a real image should be enlarged or shrunk before inference is therefore

    input scale = (median wire width in the training images) / (median wire width in the image)

Both widths are measured by the *same* estimator on the *images* (never on annotations), so
the estimator's own bias (blur, threshold, crossings) cancels in the ratio, and no label of
the real image is looked at: the scale is as independent of the references it is scored
against as the model itself.

The estimator (:func:`estimate_wire_width`): a light Gaussian smoothing (``smooth_sigma``
px), an Otsu threshold (wires bright on a dark background, as in the OD maps and the
preprocessed real images), removal of specks smaller than ``min_area`` px, then the distance
transform of the wire mask read along its ridge (the mask's skeleton). A ridge pixel at
distance ``d`` from the background lies in the middle of a wire about ``2 d - 0.5`` pixels
wide (``2 d`` for an even width, ``2 d - 1`` for an odd one); the median over all ridge
pixels is the image's wire width. Long wires have more ridge pixels than short ones, so the
median is a length-weighted one; crossings and agglomerates give a few large values that the
median ignores.

Typical use::

    from nanowire_utils.real.scale import estimate_input_scale, training_image_width
    train_width = training_image_width("paper")               # px, from fresh synthetic images
    est = estimate_input_scale(preprocess(raw, "stxm"), train_width)
    est.scale, est.width_px                                    # e.g. 1.7, 10.3

Bad input: an image in which no wire can be found (blank, constant, saturated, or with the
threshold covering most of the field) gives ``found=False``, a warning in the log naming the
reason and the fallback, and the input scale 1.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_range

log = logging.getLogger(__name__)

#: Defaults of the estimator (px, fraction).
SMOOTH_SIGMA = 1.0
MIN_AREA = 20
MAX_FOREGROUND = 0.6
MIN_RIDGE_PIXELS = 10


@dataclass
class WidthEstimate:
    """What :func:`estimate_wire_width` found in one image.

    Attributes
    ----------
    width_px : float
        Median wire width in pixels; ``nan`` when ``found`` is False.
    found : bool
        Whether wires were found.
    reason : str
        Why not, when ``found`` is False (empty otherwise).
    foreground_fraction : float
        Fraction of the image the threshold marks as wire.
    threshold : float
        The Otsu threshold on the smoothed gray image (same units as the image), ``nan`` for a
        constant image.
    ridge_widths : numpy.ndarray
        float (K,): the width ``2 d - 0.5`` at every ridge pixel, in pixels (for histograms, or
        to pool several images as :func:`training_image_width` does).
    mask : numpy.ndarray or None
        bool (H, W) wire mask the widths were read from (None when ``keep_mask`` was False).
    """

    width_px: float
    found: bool
    reason: str = ""
    foreground_fraction: float = 0.0
    threshold: float = math.nan
    ridge_widths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    mask: np.ndarray | None = None


@dataclass
class ScaleEstimate:
    """The input scale of one image (:func:`estimate_input_scale`).

    Attributes
    ----------
    scale : float
        Factor to resample the image by before inference (> 1 enlarges); 1.0 on fallback.
    width_px : float
        The image's median wire width in pixels (``nan`` when no wires were found).
    train_width_px : float
        The training images' median wire width in pixels, by the same estimator.
    fallback : bool
        True when no wires were found and the scale fell back to 1.
    reason : str
        Why the fallback happened.
    """

    scale: float
    width_px: float
    train_width_px: float
    fallback: bool = False
    reason: str = ""


def _gray(image) -> np.ndarray:
    from nanowire_utils.real.preprocessing import to_gray_float

    gray = to_gray_float(image)
    if gray.ndim != 2:
        raise ValueError(f"expected one gray image, got shape {gray.shape}")
    return gray.astype(np.float64)


def estimate_wire_width(
    image,
    *,
    smooth_sigma: float = SMOOTH_SIGMA,
    min_area: int = MIN_AREA,
    max_foreground: float = MAX_FOREGROUND,
    min_ridge_pixels: int = MIN_RIDGE_PIXELS,
    keep_mask: bool = False,
) -> WidthEstimate:
    """Median width in pixels of the bright wires of ``image``, from the image alone.

    Parameters
    ----------
    image : array-like or path
        (H, W) gray or (H, W, C) colour image of any dtype, or a file
        (:func:`nanowire_utils.real.preprocessing.to_gray_float`): bright wires on a dark
        background. Give real images as the network sees them
        (:func:`nanowire_utils.real.preprocessing.preprocess` at scale 1), so that an SEM
        image's gray substrate has been mapped to black.
    smooth_sigma : float
        Gaussian smoothing before the threshold, in pixels (0: none).
    min_area : int
        Connected pieces of the mask smaller than this many pixels are dropped (noise specks).
    max_foreground : float
        If the threshold marks more than this fraction of the image as wire, the image is
        taken as saturated or of inverted contrast: no wires found.
    min_ridge_pixels : int
        Fewer ridge pixels than this: no wires found.
    keep_mask : bool
        Return the wire mask in :attr:`WidthEstimate.mask`.

    Returns
    -------
    WidthEstimate
        ``found=False`` with a ``reason`` for a blank, constant or saturated image (no
        exception: callers fall back, see :func:`estimate_input_scale`).
    """
    from scipy import ndimage as ndi
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import skeletonize

    check_range("smooth_sigma", smooth_sigma, 0, 20, unit="px")
    check_range("min_area", min_area, 0, None, unit="px")
    check_range("max_foreground", max_foreground, 0, 1, low_inclusive=False)
    check_range("min_ridge_pixels", min_ridge_pixels, 1, None)
    gray = _gray(image)
    f = gaussian(gray, smooth_sigma, preserve_range=True) if smooth_sigma > 0 else gray
    lo, hi = float(f.min()), float(f.max())
    if hi - lo < 1e-6:
        kind = "blank" if hi <= 0.0 else "saturated" if hi >= 1.0 else "constant"
        return WidthEstimate(math.nan, False, f"the image is {kind} (every pixel {hi:.3g})")
    threshold = float(threshold_otsu(f))
    mask = f > threshold
    if min_area > 0:
        labels, n = ndi.label(mask)
        if n:
            sizes = np.bincount(labels.ravel())
            small = sizes < min_area
            small[0] = False
            mask[small[labels]] = False
    frac = float(mask.mean())
    keep = mask if keep_mask else None
    if frac > max_foreground:
        reason = (
            f"the threshold marks {100 * frac:.0f} % of the image as wire (more than {100 * max_foreground:.0f} %): "
            "saturated, or dark wires on a bright background (convert transmission to optical density first)"
        )
        return WidthEstimate(math.nan, False, reason, frac, threshold, mask=keep)
    dist = ndi.distance_transform_edt(mask)
    ridge = dist[skeletonize(mask)]
    if len(ridge) < min_ridge_pixels:
        reason = f"only {len(ridge)} ridge pixels above the threshold (fewer than {min_ridge_pixels}): no wires"
        return WidthEstimate(math.nan, False, reason, frac, threshold, mask=keep)
    widths = (2.0 * ridge - 0.5).astype(np.float32)
    return WidthEstimate(float(np.median(widths)), True, "", frac, threshold, widths, keep)


def _training_images(source, n_images: int, seed: int):
    """Up to ``n_images`` gray training images of a generator preset / config or a dataset folder."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        from nanowire_utils.synth.dataset import load_image

        folder = Path(source) / "images" / "train"
        paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".tif", ".tiff"))
        if not paths:
            raise FileNotFoundError(f"no training images in {folder}; is {source} a dataset folder?")
        for p in paths[:n_images]:
            yield load_image(p)
        return
    from nanowire_utils.synth.dataset import make_sample
    from nanowire_utils.synth.generator_presets import GeneratorConfig, get_preset

    config = source if isinstance(source, GeneratorConfig) else get_preset(str(source))
    for i in range(1, n_images + 1):
        yield make_sample(config, seed, i)[0]


def training_image_width(source="paper", n_images: int = 8, seed: int = 0, **estimator_kw) -> float:
    """Median wire width in pixels of training images, by :func:`estimate_wire_width`.

    The ridge widths of all images are pooled (as if they were one large image, which is how
    a real image is measured), so a few crowded images do not dominate.

    Parameters
    ----------
    source : str, GeneratorConfig or path
        A generator preset name (``"paper"``, ``"rich"``, ``"smoke"``) or config: fresh images
        ``1..n_images`` of it with ``seed`` (deterministic, the same images a dataset with this
        seed starts with). Or a dataset folder (``images/train/`` of
        :func:`nanowire_utils.synth.dataset.write_dataset`): its first ``n_images`` images.
    n_images : int
        How many images to measure.
    seed : int
        Generator seed (preset sources only).
    estimator_kw
        Passed to :func:`estimate_wire_width` (use the same for real images).

    Returns
    -------
    float
        Width in pixels.

    Raises
    ------
    ValueError
        No wire found in any of the images.
    """
    check_range("n_images", n_images, 1, 10000)
    widths = [estimate_wire_width(img, **estimator_kw).ridge_widths for img in _training_images(source, n_images, seed)]
    pooled = np.concatenate(widths) if widths else np.zeros(0)
    if not len(pooled):
        raise ValueError(f"no wires found in {n_images} training images of {source!r}")
    return float(np.median(pooled))


def scale_for_width(
    train_width: float, width: float, low: float = 0.25, high: float = 4.0, step: float = 0.05
) -> float:
    """``train_width / width``, rounded to ``step`` and clipped to [``low``, ``high``]."""
    check_range("train_width", train_width, 0, None, low_inclusive=False, unit="px")
    check_range("width", width, 0, None, low_inclusive=False, unit="px")
    check_range("step", step, 0, 1, low_inclusive=False)
    return float(np.clip(round(train_width / width / step) * step, low, high))


def estimate_input_scale(
    image,
    train_width: float,
    *,
    low: float = 0.25,
    high: float = 4.0,
    step: float = 0.05,
    name: str = "image",
    **estimator_kw,
) -> ScaleEstimate:
    """The factor that brings the wires of ``image`` to the training width, from the image alone.

    Parameters
    ----------
    image : array-like or path
        As for :func:`estimate_wire_width` (the preprocessed image at scale 1).
    train_width : float
        Median wire width of the training images in pixels (:func:`training_image_width`).
    low, high, step : float
        The scale is rounded to ``step`` and clipped to [``low``, ``high``].
    name : str
        Names the image in the log.
    estimator_kw
        Passed to :func:`estimate_wire_width`.

    Returns
    -------
    ScaleEstimate
        When no wires are found the scale falls back to 1.0 (``fallback=True``) and a
        warning in the log (logger ``nanowire_utils.real.scale``) says why.
    """
    est = estimate_wire_width(image, **estimator_kw)
    if not est.found:
        log.warning("%s: no wires were found (%s); falling back to input scale 1", name, est.reason)
        return ScaleEstimate(1.0, math.nan, float(train_width), True, est.reason)
    scale = scale_for_width(train_width, est.width_px, low, high, step)
    log.info(
        "%s: median wire width %.1f px, training width %.1f px -> input scale %.2f",
        name,
        est.width_px,
        train_width,
        scale,
    )
    return ScaleEstimate(scale, est.width_px, float(train_width))
