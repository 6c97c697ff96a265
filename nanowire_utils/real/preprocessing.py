"""Turning a real microscopy image into the kind of input the synthetic training data taught
the network to expect: one gray float image in [0, 1], bright wires on a dark background,
wire widths in pixels close to the training widths.

The paper (section 3) applies one step to its X-ray images, the conversion of transmission
to absorbance (optical density, OD = -ln(I / I0)), and rescales the 100 x 100 STXM image to
the size of the ptychography image (531 x 449) for annotation. The helpers here do those steps
and the bookkeeping around them (reading files of any common bit depth and colour layout).
Typical use::

    from nanowire_utils.real.preprocessing import read_image, preprocess
    x = preprocess(read_image("STXM.png"), "stxm")              # already an OD map
    x = preprocess(read_image("raw_transmission.tif"), "stxm", is_transmission=True)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.paper import MODALITIES

#: Modalities :func:`preprocess` knows.

_TIFF_SUFFIXES = {".tif", ".tiff"}


def read_image(path_or_array) -> np.ndarray:
    """Read an image file (PNG, JPEG, TIFF, and anything else Pillow opens) as a numpy array.

    Parameters
    ----------
    path_or_array:
        A file path, or an array (returned as is, after checking it is a 2-D gray or a
        3-D (H, W, C) image with 1-4 channels).

    Returns
    -------
    numpy.ndarray
        (H, W) or (H, W, C) in the file's own dtype (uint8, uint16, float32, ...); use
        :func:`to_gray_float` to get one gray float image. Palette and 1-bit images come back
        as RGB / uint8. A multi-page TIFF gives its first page (with a warning).

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The file is empty, corrupt or not an image, or the array has no image shape; the
        message names the file.
    """
    if isinstance(path_or_array, np.ndarray):
        return _check_image_array(path_or_array, "array")
    path = Path(path_or_array)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ValueError(f"image file {path} is empty (0 bytes)")
    if path.suffix.lower() in _TIFF_SUFFIXES:
        import tifffile

        try:
            arr = tifffile.imread(path)
        except Exception as exc:  # tifffile raises several types for broken files
            raise ValueError(f"cannot read TIFF image {path}: {exc}") from None
        if arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4):
            warnings.warn(f"{path} has {arr.shape[0]} pages; using the first one", stacklevel=2)
            arr = arr[0]
        elif arr.ndim > 3:
            warnings.warn(f"{path} has shape {arr.shape}; using the first page", stacklevel=2)
            arr = arr.reshape(-1, *arr.shape[-3:])[0]
        return _check_image_array(arr, str(path))

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            n_frames = getattr(im, "n_frames", 1)
            if n_frames > 1:
                warnings.warn(f"{path} has {n_frames} frames; using the first one", stacklevel=2)
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            elif im.mode == "1":
                im = im.convert("L")
            elif im.mode == "CMYK":
                im = im.convert("RGB")
            im.load()
            arr = np.asarray(im)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image file Pillow can read (corrupt or unknown format)") from None
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    return _check_image_array(arr, str(path))


def _check_image_array(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (2, 3, 4))
    if not ok:
        raise ValueError(
            f"{what}: expected a (H, W) gray or (H, W, C) colour image with C in 1-4, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{what}: image is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{what}: image dtype {arr.dtype} is not numeric")
    return arr


def to_gray_float(image) -> np.ndarray:
    """One gray float32 image in [0, 1] from any common image array.

    Integer images are divided by their dtype's maximum (255 for 8-bit, 65535 for 16-bit),
    so relative brightness is kept (a 12-bit image in a 16-bit file stays dim; use
    :func:`normalize_intensity` to stretch). Float images already in [0, 1] are kept; other
    float images (e.g. an OD map in absorbance units) are min-max scaled to [0, 1]. RGBA and
    gray+alpha drop the alpha channel; RGB becomes luminance with the ITU-R BT.709 weights
    (``skimage.color.rgb2gray``).

    Parameters
    ----------
    image:
        Array (H, W), (H, W, 2), (H, W, 3) or (H, W, 4), or a path (read with :func:`read_image`).
    """
    arr = read_image(image)
    if arr.dtype == bool:
        f = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0:  # signed integers: shift, then scale by the full range
            f = (arr.astype(np.float64) - info.min) / (info.max - info.min)
        else:
            f = arr.astype(np.float64) / info.max
    else:
        f = arr.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise ValueError("image contains NaN or infinite values; replace them before preprocessing")
    if f.ndim == 3:
        if f.shape[-1] in (2, 4):  # drop alpha
            f = f[..., :-1]
        if f.shape[-1] == 3:
            from skimage.color import rgb2gray

            f = rgb2gray(f)
        else:
            f = f[..., 0]
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(f.min()), float(f.max())
        if lo < 0 or hi > 1:
            f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    return np.clip(f, 0.0, 1.0).astype(np.float32)


def _gray_raw(image) -> np.ndarray:
    """Gray float64 in the image's own units (no scaling): for ratios such as I / I0."""
    arr = read_image(image).astype(np.float64)
    if arr.ndim == 3:
        if arr.shape[-1] in (2, 4):
            arr = arr[..., :-1]
        arr = arr @ np.array([0.2125, 0.7154, 0.0721]) if arr.shape[-1] == 3 else arr[..., 0]
    return arr


def transmission_to_od(image, i0: float | None = None, *, background_percentile: float = 99.0) -> np.ndarray:
    """Optical density (absorbance) OD = -ln(I / I0) of a transmission image.

    Parameters
    ----------
    image:
        Transmission image I (any dtype and scale: counts, 8/16-bit, float; colour becomes
        luminance). Wires absorb, so they are darker than the background here.
    i0:
        Incident intensity I0 in the same units as ``image``. If None it is estimated from
        the background: the ``background_percentile``-th percentile of I (default the 99th),
        i.e. the brightest, wire-free part of the field of view. This assumes at least a few
        per cent of the image is bare substrate; give ``i0`` when it is not.
    background_percentile:
        Percentile of I used as I0 when ``i0`` is None, in (50, 100].

    Returns
    -------
    numpy.ndarray
        float32 OD >= 0 (dimensionless); pixels brighter than I0 (noise) are clipped to 0,
        and I is floored at 1e-6 * I0 so that dark pixels give a finite OD (at most ~13.8).
    """
    check_range("background_percentile", background_percentile, 50, 100, low_inclusive=False)
    intensity = _gray_raw(image)
    if i0 is None:
        i0 = float(np.percentile(intensity, background_percentile))
        if i0 <= 0:
            raise ValueError(
                "cannot estimate I0: the image's background percentile is <= 0; is this already an "
                "optical-density map (bright wires)? Pass is_transmission=False or give i0"
            )
    else:
        check_range("i0", i0, 0, None, low_inclusive=False, unit="(image units)")
    ratio = np.clip(intensity / i0, 1e-6, 1.0)
    return (-np.log(ratio)).astype(np.float32)


def rescale_to(image, shape, order: int = 1) -> np.ndarray:
    """Resample ``image`` to ``shape`` (rows, cols), as the paper did for the 100 x 100 STXM
    image, which it enlarged to the ptychography image's 531 x 449 pixels.

    Enlarging does not add resolution; it makes wires as many pixels wide as the network saw
    in training. Spline ``order`` 1 (bilinear, the default: no overshoot, keeps the value
    range) or 3 (bicubic: smoother, may overshoot slightly near sharp edges; the result is
    clipped to the input's range). Shrinking applies Gaussian anti-aliasing first
    (``skimage.transform.resize``).

    Returns float32 of shape ``shape`` (plus the colour axis if the input had one).
    """
    from skimage.transform import resize

    check_choice("order", order, (0, 1, 3))
    arr = read_image(image)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (rows, cols) with positive sizes, got {shape}")
    f = arr.astype(np.float64)
    out_shape = shape + f.shape[2:]
    shrinking = shape[0] < f.shape[0] or shape[1] < f.shape[1]
    out = resize(f, out_shape, order=order, mode="reflect", anti_aliasing=shrinking, preserve_range=True)
    return np.clip(out, f.min(), f.max()).astype(np.float32)


def rescale_by(image, scale: float, order: int = 1) -> np.ndarray:
    """Resample ``image`` by a factor ``scale`` (> 1 enlarges), e.g. to bring wire widths in
    pixels to the training data's (see :func:`preprocess`). Same conventions as :func:`rescale_to`."""
    check_range("scale", scale, 0, 32, low_inclusive=False)
    arr = read_image(image)
    shape = (max(1, round(arr.shape[0] * scale)), max(1, round(arr.shape[1] * scale)))
    return rescale_to(arr, shape, order=order)


def normalize_intensity(image, low_percentile: float = 1.0, high_percentile: float = 99.5) -> np.ndarray:
    """Robust contrast stretch to [0, 1] for the network input.

    The ``low_percentile``-th percentile of the gray image becomes 0 and the
    ``high_percentile``-th becomes 1, with values outside clipped. The synthetic training
    images are OD maps scaled to 0-255: black (0) background, wires brighter the thicker they
    are, overlaps brightest. A stretch from the background level to the brightest wires gives a
    real image the same look. Use a low percentile inside the background (default 1: fine for
    OD maps, whose background is near 0); for an image with a gray background (SEM),
    ``low_percentile=50`` (the median, which is background when wires cover less than half the
    field) maps the substrate to black, as :func:`preprocess` does for ``"sem"``.

    Returns float32 (H, W) in [0, 1]; a constant image gives all zeros.
    """
    check_range("low_percentile", low_percentile, 0, 100)
    check_range("high_percentile", high_percentile, 0, 100)
    if high_percentile <= low_percentile:
        raise ValueError(f"high_percentile must be above low_percentile, got {high_percentile} <= {low_percentile}")
    f = to_gray_float(image).astype(np.float64)
    lo, hi = np.percentile(f, [low_percentile, high_percentile])
    if hi <= lo:
        hi = f.max()
    if hi <= lo:
        return np.zeros(f.shape, np.float32)
    return np.clip((f - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def preprocess(
    image,
    modality: str,
    *,
    is_transmission: bool | None = None,
    i0: float | None = None,
    scale: float = 1.0,
    shape: tuple[int, int] | None = None,
    order: int = 1,
    low_percentile: float | None = None,
    high_percentile: float = 99.5,
) -> np.ndarray:
    """A real image made ready for the network: gray float32 (H', W') in [0, 1], bright wires
    on a dark background.

    Steps, in order:

    1. ``"stxm"`` (or any modality with ``is_transmission=True``): transmission -> optical
       density with :func:`transmission_to_od` (``i0`` given or estimated from the
       background). ``is_transmission`` defaults to False for every modality, because the
       shipped sample ``STXM.png`` is already an average OD map (bright wires; SOURCE.md), and
       ptychography ratio maps and SEM images are used as acquired (paper, section 3).
       Inverting an OD map a second time would make the background bright: pass
       ``is_transmission=True`` only for raw transmission data (dark wires on a bright field).
    2. Resampling: to ``shape`` (rows, cols) if given (e.g. a raw 100 x 100 STXM map to the
       ptychography size 531 x 449, as in the paper), then by the factor ``scale``.
       The model sees wires at the width in pixels it was trained on, and scale matters most
       (a probe's model lost more than half its accuracy on the ptychography image enlarged
       2x), so choose ``scale`` such that wire widths match the training set's;
       :func:`nanowire_utils.real.scale.estimate_input_scale` estimates it from the image.
    3. :func:`normalize_intensity`: percentile stretch. ``low_percentile`` defaults to 1 for
       the X-ray modalities (OD background near 0) and to 50 for ``"sem"``, whose gray
       substrate then becomes black.

    Parameters
    ----------
    image:
        Path or array (any of the layouts :func:`to_gray_float` takes).
    modality:
        One of ``"ptychography"``, ``"stxm"``, ``"sem"``.
    order:
        Spline order for resampling, 1 (bilinear) or 3 (bicubic).
    """
    check_choice("modality", modality, MODALITIES)
    check_range("scale", scale, 0, 32, low_inclusive=False)
    arr = read_image(image)
    if is_transmission is None:
        is_transmission = False
    if is_transmission:
        gray = transmission_to_od(arr, i0)
    else:
        if i0 is not None:
            raise ValueError("i0 is only used with is_transmission=True")
        gray = to_gray_float(arr)
    if shape is not None:
        gray = rescale_to(gray, shape, order=order)
    if scale != 1.0:
        gray = rescale_by(gray, scale, order=order)
    if low_percentile is None:
        low_percentile = 50.0 if modality == "sem" else 1.0
    return normalize_intensity(gray.astype(np.float32), low_percentile, high_percentile)
