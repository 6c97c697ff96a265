"""Render a projected nanowire network as a microscopy-like gray image.

What the paper wrote (section 2.2, "optical density compression"): the voxels of each column
are summed along the beam (z), "divided by the total thickness of the microstructure",
normalised, turned into 8-bit gray values 0-255 and blurred with "a standard Gaussian filter
(filter size of 2)". :func:`render` with the default :class:`RenderParams` follows these steps
with two readings of our own where the text is ambiguous (both alternatives are available);
every feature beyond the paper is off by default and documented on its field.

* **Blur (an interpretation).** "filter size 2" is read as the Gaussian's standard deviation,
  ``sigma = 2`` px (:func:`scipy.ndimage.gaussian_filter`, kernel truncated at 4 sigma). The
  paper does not say which; the other reading, a kernel 2 px wide (sigma ~ 0.5 px), is
  ``RenderParams(blur_sigma=0.5)``. Sigma 2 gives the soft edges of the ptychography sample
  image; 0.5 barely changes a binary edge.
* **Normalisation (the default departs from the literal text).** "The total thickness of the
  microstructure" can mean the domain height (200 voxels) or the thickest stack in the image.
  The literal domain-height reading is ``normalization="height"``: it leaves a single 20-voxel
  wire at 10 % gray (25 of 255), so images are nearly black, unlike the real ptychography
  image, where single wires are mid-gray to bright on a black background and only overlaps
  saturate. The default ``normalization="max"`` therefore divides by the image's largest
  (blurred) summed thickness, so the thickest overlap is white and a single wire is a fraction
  of it. Measured on 10 "paper" images vs the ptychography sample, gray-value quartiles of the
  pixels above 40: "max" 62 / 94 / 130, real 71 / 109 / 156, "height" 30 / 32 / 34 (and only
  0.7 % of pixels above 40 instead of 14 %, real 27 %). ``"fixed"`` divides by a constant
  ``reference_thickness`` (voxels) and clips, which keeps gray values comparable between
  images.
* **Optical density** is proportional to the summed thickness in this linear recipe, so no
  logarithm is taken. Where one is (Beer-Lambert below), this package uses the natural
  logarithm, ``OD = -ln(I / I0)``; the decadic absorbance often reported by microscopy
  software is ``OD10 = -log10(I / I0) = OD / ln(10) ~ 0.434 OD``.

Beyond the paper (for domain randomisation):

* Beer-Lambert physics: per wire attenuation ``mu_i`` (1/voxel, relative spread
  ``mu_spread``), transmitted intensity ``I = I0 exp(-sum mu_i t_i)``, measured optical
  density ``OD = -ln(I / I0_ref)``.
* Shot noise at ``dose`` photons per pixel (Poisson counts of the transmitted intensity,
  Gaussian approximation from 50 photons per pixel) and
  Gaussian read noise (``read_noise``, in units of full scale).
* A smooth background (substrate / support film, added thickness) and an illumination
  gradient (a linear ramp of ``I0`` not corrected by the flat field).
* An SEM-like appearance with probability ``sem_fraction``: no additive thickness, the
  top-most wire (the highest label, deposited last) is what is seen, with a per-wire
  brightness, bright edges and surface texture on a gray background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from scipy import ndimage

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.synth.projection import Projection

NORMALIZATIONS = ("max", "height", "fixed")
POISSON_EXACT_BELOW = 50  # photons/pixel; above this shot noise uses the Gaussian approximation


@dataclass
class RenderParams:
    """How a :class:`~nanowire_utils.synth.projection.Projection` becomes a gray image.

    Attributes
    ----------
    normalization:
        ``"max"`` (default, not the paper's literal text; chosen because it matches the real
        image's gray levels, see the module docstring): divide by the image's largest blurred
        signal, so the thickest spot is 1.0; ``"height"``: divide the summed thickness by the
        domain height (the literal reading of the paper's "total thickness of the
        microstructure", dark images); ``"fixed"``: divide by ``reference_thickness``
        and clip to 1.
    reference_thickness:
        Thickness in voxels that maps to full scale for ``normalization="fixed"``.
    blur_sigma:
        Standard deviation of the Gaussian blur in pixels; 0 turns it off. The default 2 is our
        reading of the paper's "filter size of 2" (an interpretation; 0.5 is the other).
    contrast_range:
        (low, high): the normalised image is multiplied by a factor drawn uniformly from this
        range per image, then clipped (domain randomisation of the gray level of wires;
        (1, 1) = off). With ``"max"`` a factor > 1 saturates overlaps as in the real image.
    beer_lambert:
        Simulate transmission ``I = I0 exp(-OD)`` with per-wire attenuation; needed for
        ``dose`` and ``illumination_gradient``. Without noise or spread it changes nothing
        (OD is linear in thickness).
    mu:
        Mean attenuation coefficient in 1/voxel (OD of one voxel of wire material).
    mu_spread:
        Relative standard deviation of the per-wire attenuation (0 = all wires alike).
    dose:
        Incident photons per pixel for Poisson shot noise; ``None`` = no shot noise.
    read_noise:
        Standard deviation of additive Gaussian noise on the final [0, 1] image.
    background:
        Peak amplitude (in voxels of wire-equivalent thickness) of a smooth random
        background added to the summed thickness; 0 = flat black background.
    background_scale:
        Correlation length of the background in pixels.
    illumination_gradient:
        Relative amplitude of a linear ramp of the incident intensity across the image
        (0.1 = +-10 %), in a random direction; requires ``beer_lambert``.
    sem_fraction:
        Probability that an image is rendered SEM-like instead of as optical density.
    sem_background:
        SEM background gray level (0-1).
    sem_edge:
        Strength of the SEM edge brightening (added gray at wire edges).
    sem_texture:
        Relative amplitude of the SEM surface texture on wires.
    """

    normalization: str = "max"
    reference_thickness: float = 60.0
    blur_sigma: float = 2.0
    contrast_range: tuple[float, float] = (1.0, 1.0)
    beer_lambert: bool = False
    mu: float = 0.02
    mu_spread: float = 0.0
    dose: float | None = None
    read_noise: float = 0.0
    background: float = 0.0
    background_scale: float = 64.0
    illumination_gradient: float = 0.0
    sem_fraction: float = 0.0
    sem_background: float = 0.3
    sem_edge: float = 0.25
    sem_texture: float = 0.1

    def validate(self) -> RenderParams:
        """Raise ValueError naming the first field that is out of range; return self."""
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_range("reference_thickness", self.reference_thickness, 0, None, low_inclusive=False, unit="voxels")
        check_range("blur_sigma", self.blur_sigma, 0, 50, unit="px")
        lo, hi = _pair("contrast_range", self.contrast_range)
        check_range("contrast_range low", lo, 0, None, low_inclusive=False)
        check_range("contrast_range high", hi, lo, None)
        check_range("mu", self.mu, 0, None, low_inclusive=False, unit="1/voxel")
        check_range("mu_spread", self.mu_spread, 0, 1)
        if self.dose is not None:
            check_range("dose", self.dose, 0, None, low_inclusive=False, unit="photons/pixel")
        check_range("read_noise", self.read_noise, 0, 1)
        check_range("background", self.background, 0, None, unit="voxels")
        check_range("background_scale", self.background_scale, 1, None, unit="px")
        check_range("illumination_gradient", self.illumination_gradient, 0, 0.9)
        check_range("sem_fraction", self.sem_fraction, 0, 1)
        check_range("sem_background", self.sem_background, 0, 1)
        check_range("sem_edge", self.sem_edge, 0, 1)
        check_range("sem_texture", self.sem_texture, 0, 1)
        if not self.beer_lambert and (self.dose is not None or self.illumination_gradient > 0 or self.mu_spread > 0):
            raise ValueError(
                "dose, illumination_gradient and mu_spread simulate transmission: set beer_lambert=True to use them"
            )
        return self

    def replace(self, **changes) -> RenderParams:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dict of all fields."""
        d = asdict(self)
        d["contrast_range"] = list(d["contrast_range"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RenderParams:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown RenderParams field(s) {sorted(unknown)}; valid: {sorted(names)}")
        d = dict(d)
        if "contrast_range" in d:
            d["contrast_range"] = tuple(d["contrast_range"])
        return cls(**d)


def _pair(name, value):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    return lo, hi


def render(
    projection: Projection,
    params: RenderParams | None = None,
    rng: np.random.Generator | None = None,
    return_info: bool = False,
):
    """Gray image (float32, (rows, cols), values in [0, 1]) of a projected network.

    Parameters
    ----------
    projection:
        Per-wire thickness maps (voxels) from the analytic or the voxel path.
    params:
        Rendering recipe; default: the paper's steps with this package's readings (summed
        thickness, normalised by the image's maximum instead of the literal "total thickness",
        Gaussian blur sigma 2 px as our reading of "filter size 2", no noise; see the module
        docstring).
    rng:
        Random generator for the random parts (per-wire attenuation, noise, background,
        SEM choice). Draws happen in a fixed order, so a seeded generator gives the same
        image; the paper recipe's image does not depend on the draws at all.
    return_info:
        Also return a dict ``{"sem": bool}`` saying whether the image was rendered SEM-like
        (where wires hide the ones below, which matters for annotation).

    Convert to 8 or 16 bits with :func:`to_uint8` / :func:`to_uint16`.
    """
    params = (params or RenderParams()).validate()
    if rng is None:
        rng = np.random.default_rng(0)
    # Both choices are always drawn, so switching one feature on does not reshuffle the other.
    sem = rng.random() < params.sem_fraction
    contrast = float(rng.uniform(*params.contrast_range))
    if sem:
        img = _render_sem(projection, params, rng)
    else:
        img = _render_od(projection, params, rng)
    if contrast != 1.0:
        img *= contrast
    if params.read_noise > 0:
        img += np.float32(params.read_noise) * rng.standard_normal(img.shape, dtype=np.float32)
    np.clip(img, 0.0, 1.0, out=img)
    return (img, {"sem": bool(sem)}) if return_info else img


def top_label_map(projection: Projection) -> np.ndarray:
    """int32 (rows, cols): label of the top-most wire per pixel (0 = background).

    Later labels were deposited later and lie on top, as an SEM sees them.
    """
    top = np.zeros(projection.shape, np.int32)
    for fp in projection.footprints:
        top[fp.bbox_slices][fp.thickness > 0] = fp.label
    return top


def _smooth_field(shape, scale, rng, n_waves: int = 6) -> np.ndarray:
    """Smooth random field in [0, 1] with features about ``scale`` px across.

    A sum of a few plane waves with random direction, wavelength (2-4 x ``scale``) and
    phase; cheap because each wave is an outer product of two 1D vectors.
    """
    h, w = shape
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    field = np.zeros(shape, np.float32)
    for _ in range(n_waves):
        theta = rng.uniform(0, np.pi)
        k = 2 * np.pi / (scale * rng.uniform(2.0, 4.0))
        ky, kx, phase = k * np.sin(theta), k * np.cos(theta), rng.uniform(0, 2 * np.pi)
        # cos(a + b) = cos a cos b - sin a sin b keeps it to 1D trigonometry.
        a, b = ky * y + phase, kx * x
        field += np.cos(a) * np.cos(b) - np.sin(a) * np.sin(b)
    field -= field.min()
    peak = field.max()
    if peak > 0:
        field /= peak
    return field


def _render_od(projection: Projection, p: RenderParams, rng) -> np.ndarray:
    shape = projection.shape
    if p.beer_lambert:
        mus = p.mu * np.clip(1.0 + p.mu_spread * rng.standard_normal(len(projection.footprints)), 0.1, None)
        od = np.zeros(shape, np.float32)
        for fp, m in zip(projection.footprints, mus):
            od[fp.bbox_slices] += np.float32(m) * fp.thickness
        unit = p.mu  # OD of one voxel of average material: converts OD back to voxels
    else:
        od = projection.total_thickness()
        unit = 1.0
    if p.background > 0:
        od += (p.background * unit) * _smooth_field(shape, p.background_scale, rng)
    if p.blur_sigma > 0:
        od = ndimage.gaussian_filter(od, p.blur_sigma, mode="nearest")
    clean = od
    if p.beer_lambert and (p.dose is not None or p.illumination_gradient > 0):
        intensity = np.exp(-od)
        if p.illumination_gradient > 0:
            theta = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
            ramp = np.cos(theta) * (xx / max(shape[1] - 1, 1) - 0.5) + np.sin(theta) * (yy / max(shape[0] - 1, 1) - 0.5)
            intensity *= 1.0 + 2.0 * p.illumination_gradient * ramp
        if p.dose is not None:
            lam = intensity * np.float32(p.dose)
            if p.dose < POISSON_EXACT_BELOW:
                counts = rng.poisson(lam).astype(np.float32)
            else:  # Gaussian approximation of Poisson: 5x faster, exact enough at these counts
                counts = lam + np.sqrt(lam) * rng.standard_normal(shape, dtype=np.float32)
            intensity = np.maximum(counts, 0.5) / np.float32(p.dose)
        od = -np.log(intensity).astype(np.float32)
    # Scale from the noise-free signal, so noise cannot change the gray level of the wires.
    if p.normalization == "max":
        scale = float(clean.max())
    elif p.normalization == "height":
        scale = projection.height * unit
    else:
        scale = p.reference_thickness * unit
    img = od.astype(np.float32, copy=False)
    if scale > 0:  # 0 only for an empty image without background
        img = img / np.float32(scale)
    return img.astype(np.float32, copy=True)


def _render_sem(projection: Projection, p: RenderParams, rng) -> np.ndarray:
    shape = projection.shape
    top = np.zeros(shape, np.int32)
    ttop = np.zeros(shape, np.float32)
    brightness = rng.uniform(0.55, 0.9, len(projection.footprints)).astype(np.float32)
    bright_map = np.zeros(shape, np.float32)
    # Later labels lie on top: painting in deposition order leaves the top-most wire visible.
    for i, fp in enumerate(projection.footprints):
        sl = fp.bbox_slices
        inside = fp.thickness > 0
        top[sl][inside] = i + 1
        ttop[sl][inside] = fp.thickness[inside]
        bright_map[sl][inside] = brightness[i]
    on_wire = top > 0
    # Shading: thicker parts of the top wire (its ridge) look slightly brighter.
    tmax = float(ttop.max()) or 1.0
    img = np.where(on_wire, bright_map * (0.75 + 0.25 * ttop / tmax), np.float32(p.sem_background)).astype(np.float32)
    if p.sem_texture > 0:
        texture = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 1.5)
        texture /= max(float(np.abs(texture).max()), 1e-6)
        img[on_wire] *= 1.0 + p.sem_texture * texture[on_wire]
    if p.sem_edge > 0:
        # Edges of every visible region, also where one wire occludes another.
        edges = np.zeros(shape, bool)
        dy, dx = top[1:] != top[:-1], top[:, 1:] != top[:, :-1]
        edges[1:] |= dy
        edges[:-1] |= dy
        edges[:, 1:] |= dx
        edges[:, :-1] |= dx
        img += p.sem_edge * ndimage.gaussian_filter(edges.astype(np.float32), 1.0) * 2.0
    if p.background > 0:
        img += 0.1 * _smooth_field(shape, p.background_scale, rng)
    if p.blur_sigma > 0:  # SEM images are sharp: at most 1 px blur
        img = ndimage.gaussian_filter(img, min(p.blur_sigma, 1.0), mode="nearest")
    return img.astype(np.float32, copy=False)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image as uint8 0-255 (rounded, clipped)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image as uint16 0-65535 (rounded, clipped)."""
    return np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
