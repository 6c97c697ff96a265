"""Random 3D nanowire networks, deposited wire after wire in a voxel domain (paper section 2.2).

The paper builds each training sample with GeoDict: a 512 x 512 x 200 (W x B x H) voxel
domain in which nanowires are "internally enumerated and deposited one after another".
This module does the same with plain numpy, fast enough to make 50+ images per second on
one core:

* :class:`NetworkParams` holds every generator parameter (defaults emulate the paper's
  X-ray ptychography image at 512 px, see its docstring);
* :class:`Wire` is one solid wire, fully described by a few numbers;
* :class:`Network` is the domain and its wires in deposition order (label = order);
* :func:`generate_network` draws wires and lets each settle on the current height map
  (the substrate or earlier wires), so the stack is physical and never interpenetrates.

Coordinates and conventions
---------------------------
All lengths are in voxels; one voxel is one image pixel laterally. ``x`` runs along the
image columns, ``y`` along the image rows (pointing *down* in the image), ``z`` up from
the substrate (``z = 0``). Pixel ``(row, col)`` has its centre at ``(x, y) = (col + 0.5,
row + 0.5)`` and voxel ``k`` of a column its centre at ``z = k + 0.5``.

A wire's in-plane ``angle`` (degrees, in [0, 180)) is measured from the +x axis,
counter-clockwise *as seen in the image*; because y points down its in-plane direction
is ``d = (cos a, -sin a)`` in (x, y). Its lateral direction is ``v = (sin a, cos a)``
(to the right of ``d`` in the image). ``tilt`` (degrees) raises the ``+d`` end of the
axis: the axis direction is ``(cos(tilt) d, sin(tilt))``.

The solid
---------
A wire is a prism (or a bent, tapered or rough variant) of ``length`` along its axis,
with cross-section ``width`` (along ``v``) by ``thickness`` (perpendicular to the wire's
mid-plane). Let ``(xi, eta)`` be coordinates in the wire's (tilted) mid-plane, ``xi``
along the chord and ``eta`` along ``v``, with the axis midpoint ``center`` at the origin.
For a vertical line through the domain, take the point where it pierces the mid-plane:
its mid-plane coordinates give the arc position ``s`` (``-length/2 <= s <= length/2``,
along the centreline) and the lateral offset ``a`` from the centreline. The wire's
cross-section at ``s`` has width ``w(s)`` and thickness ``t(s)``; it rests on a flat
bottom face (the mid-plane shifted by ``-thickness/2``) so a tapered or rough wire still
lies flat. The end faces are vertical. Cross-sections (``c = 2 * b / t(s) - 1`` where
``b`` is the height above the bottom face, ``r = 2 * |a| / w(s)``):

* ``"rectangular"``: ``r < 1`` and ``|c| <= 1``;
* ``"round"`` (ellipse): ``r**2 + c**2 < 1``;
* ``"hexagonal"`` (flat top and bottom, corners at the sides): ``r < 1``, ``|c| <= 1``
  and ``|c| < 2 * (1 - r)``.

Optional features (off in the defaults) change ``w(s)``, ``t(s)`` and the centreline:
``taper`` (fractional loss of width and thickness at the ends, linear in ``|s|``),
``curvature`` (the centreline is a circular arc in the mid-plane, bending towards ``+v``
when positive) and roughness (``t(s)`` multiplied by ``1 + amplitude * g(s)``, ``g`` a
smooth random function with unit variance and Gaussian correlation of length
``roughness_corr_length``, reproducible from ``roughness_seed``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from nanowire_utils._checks import check_choice, check_range

CROSS_SECTIONS = ("rectangular", "hexagonal", "round")
ORIENTATIONS = ("uniform", "preferred")

# Number of random cosines in the roughness profile; max |g| <= sqrt(2 * K).
_ROUGH_K = 8
_ROUGH_MIN_FACTOR = 0.25
# Gap left between a wire and what it rests on (voxels); avoids ties at voxel centres.
_EPS_GAP = 1e-6


@dataclass
class NetworkParams:
    """Every parameter of the random network generator.

    Defaults emulate the paper's X-ray ptychography image (Fig. 1b, 449 x 531 px, about
    the paper's 512 px scale): it shows about 15 wires, most of them cut by the image
    border, 60-400 px long (a handful above 300 px), 6-30 px wide, mostly 15-25 px (one
    90 px wide slab), crossing each other at random angles. Hence 10-25 wires with centres
    anywhere in the domain, lengths mean 220 / std 100 px in [40, 520], widths mean 18 /
    std 9 px in [6, 60] (real V2O5 wires: 50-400 nm wide, several microns long, i.e.
    roughly 10-20 nm per pixel), thickness 0.5-1 times the width (belt-like wires lying flat), mostly
    prismatic cross-sections as in the paper, uniform orientation and a slight tilt of
    wires resting on others. The beyond-paper features are all off (probability 0).

    Distributions: ``length`` and ``width`` are log-normal with the given mean and
    standard deviation, redrawn until inside their range (voxels). ``thickness`` is
    ``width * U(thickness_ratio)``, clipped to ``thickness_range``. Counts given as a
    ``(min, max)`` pair are drawn uniformly (both inclusive) per network.

    Attributes
    ----------
    domain:
        (W, B, H) = (x, y, z) size of the voxel domain. The image is B rows by W columns.
    n_wires:
        Number of wires, an int or a ``(min, max)`` range drawn per network. Wires in
        bundles and clumps count towards it.
    length_mean, length_std, length_range:
        Wire length (voxels) along the centreline.
    width_mean, width_std, width_range:
        Wire width (voxels), in the image plane.
    thickness_ratio, thickness_range:
        Thickness (voxels, out of plane) = width times a uniform draw from
        ``thickness_ratio``, clipped to ``thickness_range``.
    cross_sections:
        Relative weights of ``"rectangular"``, ``"hexagonal"`` and ``"round"``.
    orientation:
        ``"uniform"`` (angles uniform in [0, 180) degrees) or ``"preferred"`` (normal
        around ``preferred_angle`` with standard deviation ``angle_spread``, degrees,
        wrapped into [0, 180)).
    max_tilt:
        Out-of-plane tilt is uniform in [-max_tilt, max_tilt] degrees.
    center_margin:
        Wire centres are uniform in ``[-margin, W + margin] x [-margin, B + margin]``
        (voxels); negative values keep centres away from the border.
    taper_prob, taper_range:
        Probability that a wire is tapered, and the range of its fractional width and
        thickness loss at both ends (0 = prism, 0.5 = half as wide at the ends).
    bend_prob, bend_angle_max:
        Probability that a wire is bent into a circular arc, and the maximum total
        turning angle of the arc (degrees, at most 180); the angle is uniform in
        [bend_angle_max / 4, bend_angle_max] with a random sign.
    roughness_prob, roughness_amplitude, roughness_corr_length:
        Probability that a wire's thickness varies along it, the relative standard
        deviation of that variation and its correlation length (voxels).
    bundle_prob, bundle_size, bundle_angle_spread, bundle_gap:
        Probability that a deposition event is a bundle of near-parallel wires side by
        side (agglomerate), its size range, the angle jitter between its wires (degrees)
        and the lateral gap range between neighbours (voxels).
    clump_prob, clump_size, clump_radius, clump_length_scale:
        Probability that an event is a small clump of short, randomly oriented wires,
        its size range, the radius (voxels) within which their centres lie around the
        first one's and the factor applied to their drawn lengths (never below half of
        ``length_range[0]``).
    max_attempts:
        How many positions are tried for a wire before the domain is declared too thin.
    """

    domain: tuple[int, int, int] = (512, 512, 200)
    n_wires: int | tuple[int, int] = (10, 25)
    length_mean: float = 220.0
    length_std: float = 100.0
    length_range: tuple[float, float] = (40.0, 520.0)
    width_mean: float = 18.0
    width_std: float = 9.0
    width_range: tuple[float, float] = (6.0, 60.0)
    thickness_ratio: tuple[float, float] = (0.5, 1.0)
    thickness_range: tuple[float, float] = (3.0, 60.0)
    cross_sections: dict = field(default_factory=lambda: {"rectangular": 0.5, "hexagonal": 0.3, "round": 0.2})
    orientation: str = "uniform"
    preferred_angle: float = 0.0
    angle_spread: float = 15.0
    max_tilt: float = 2.0
    center_margin: float = 0.0
    taper_prob: float = 0.0
    taper_range: tuple[float, float] = (0.2, 0.6)
    bend_prob: float = 0.0
    bend_angle_max: float = 60.0
    roughness_prob: float = 0.0
    roughness_amplitude: float = 0.2
    roughness_corr_length: float = 30.0
    bundle_prob: float = 0.0
    bundle_size: tuple[int, int] = (2, 4)
    bundle_angle_spread: float = 3.0
    bundle_gap: tuple[float, float] = (0.0, 3.0)
    clump_prob: float = 0.0
    clump_size: tuple[int, int] = (3, 6)
    clump_radius: float = 30.0
    clump_length_scale: float = 0.35
    max_attempts: int = 30

    def replace(self, **changes) -> NetworkParams:
        """A copy with some fields changed (and validated).

        Parameters
        ----------
        **changes
            Field names and their new values (lengths in voxels, angles in degrees).

        Returns
        -------
        NetworkParams
            The new, validated parameters; ``self`` is unchanged.

        Raises
        ------
        ValueError
            When a changed value is out of its valid range.
        """
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    @classmethod
    def with_all_features(cls, **changes) -> NetworkParams:
        """Defaults with every beyond-paper feature switched on at moderate settings.

        Parameters
        ----------
        **changes
            Field values that override the defaults and the feature settings.

        Returns
        -------
        NetworkParams
            Validated parameters with taper, bending, roughness, bundles and clumps on.
        """
        base = dict(taper_prob=0.3, bend_prob=0.3, roughness_prob=0.3, bundle_prob=0.15, clump_prob=0.1)
        base.update(changes)
        p = cls(**base)
        p.validate()
        return p

    @property
    def n_wires_range(self) -> tuple[int, int]:
        """``n_wires`` as a (min, max) pair."""
        if np.ndim(self.n_wires) == 0:
            return int(self.n_wires), int(self.n_wires)
        lo, hi = self.n_wires
        return int(lo), int(hi)

    def validate(self) -> NetworkParams:
        """Check every parameter against its valid range.

        Returns
        -------
        NetworkParams
            ``self``, so that calls can be chained.

        Raises
        ------
        ValueError
            Naming the first bad parameter and its valid range (including a wire count
            whose mean volume would fill more than half the domain).
        """
        if len(self.domain) != 3:
            raise ValueError(f"domain must be (W, B, H) voxels, got {self.domain!r}")
        W, B, H = self.domain
        for name, v in zip(("domain W", "domain B", "domain H"), self.domain):
            check_range(name, v, 1, 8192, unit="voxels")
            if int(v) != v:
                raise ValueError(f"{name} must be an integer number of voxels, got {v!r}")
        lo, hi = _pair("n_wires", self.n_wires if np.ndim(self.n_wires) else (self.n_wires,) * 2)
        diag = math.hypot(W, B)
        _check_dist("length", self.length_mean, self.length_std, self.length_range, diag)
        _check_dist("width", self.width_mean, self.width_std, self.width_range, min(W, B))
        t_lo, t_hi = _pair("thickness_range", self.thickness_range)
        check_range("thickness_range[0]", t_lo, 0, H, low_inclusive=False, unit="voxels (domain height H)")
        check_range("thickness_range[1]", t_hi, t_lo, H, unit="voxels (domain height H); domain too thin")
        r_lo, r_hi = _pair("thickness_ratio", self.thickness_ratio)
        check_range("thickness_ratio[0]", r_lo, 0, 10, low_inclusive=False)
        check_range("thickness_ratio[1]", r_hi, r_lo, 10)
        if not isinstance(self.cross_sections, dict) or not self.cross_sections:
            raise ValueError(
                f"cross_sections must be a dict of weights over {CROSS_SECTIONS}, got {self.cross_sections!r}"
            )
        for k, wgt in self.cross_sections.items():
            check_choice("cross_sections key", k, CROSS_SECTIONS)
            check_range(f"cross_sections[{k!r}]", wgt, 0, None)
        if sum(self.cross_sections.values()) <= 0:
            raise ValueError("cross_sections weights must not all be 0")
        check_choice("orientation", self.orientation, ORIENTATIONS)
        check_range("preferred_angle", self.preferred_angle, -360, 360, unit="degrees")
        check_range("angle_spread", self.angle_spread, 0, 180, unit="degrees")
        check_range("max_tilt", self.max_tilt, 0, 30, unit="degrees")
        check_range("center_margin", self.center_margin, -min(W, B) / 2, max(W, B), low_inclusive=False, unit="voxels")
        for name in ("taper_prob", "bend_prob", "roughness_prob", "bundle_prob", "clump_prob"):
            check_range(name, getattr(self, name), 0, 1)
        if self.bundle_prob + self.clump_prob > 1:
            raise ValueError(f"bundle_prob + clump_prob must be in [0, 1], got {self.bundle_prob + self.clump_prob:g}")
        a, b = _pair("taper_range", self.taper_range)
        check_range("taper_range[0]", a, 0, 0.9)
        check_range("taper_range[1]", b, a, 0.9)
        check_range("bend_angle_max", self.bend_angle_max, 0, 180, unit="degrees")
        check_range("roughness_amplitude", self.roughness_amplitude, 0, 0.5)
        check_range("roughness_corr_length", self.roughness_corr_length, 1, None, unit="voxels")
        a, b = _pair("bundle_size", self.bundle_size)
        check_range("bundle_size[0]", a, 2, 50)
        check_range("bundle_size[1]", b, a, 50)
        check_range("bundle_angle_spread", self.bundle_angle_spread, 0, 30, unit="degrees")
        a, b = _pair("bundle_gap", self.bundle_gap)
        check_range("bundle_gap[0]", a, 0, None, unit="voxels")
        check_range("bundle_gap[1]", b, a, None, unit="voxels")
        a, b = _pair("clump_size", self.clump_size)
        check_range("clump_size[0]", a, 2, 50)
        check_range("clump_size[1]", b, a, 50)
        check_range("clump_radius", self.clump_radius, 0, max(W, B), unit="voxels")
        check_range("clump_length_scale", self.clump_length_scale, 0, 1, low_inclusive=False)
        check_range("max_attempts", self.max_attempts, 1, 10000)
        # More wires than the domain can hold: their expected volume must fit in half of it.
        t_mean = min(max(self.width_mean * sum(self.thickness_ratio) / 2, t_lo), t_hi)
        wire_vol = self.length_mean * self.width_mean * t_mean
        max_wires = max(1, int(0.5 * W * B * H / wire_vol))
        check_range("n_wires", int(hi), 0, max_wires, unit="wires (their mean volume may fill at most half the domain)")
        check_range("n_wires[0]", int(lo), 0, int(hi))
        return self


def _pair(name, value):
    try:
        a, b = value
        return float(a), float(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from None


def _check_dist(name, mean, std, rng_, high):
    lo, hi = _pair(f"{name}_range", rng_)
    check_range(f"{name}_range[0]", lo, 0, high, low_inclusive=False, unit="voxels")
    check_range(f"{name}_range[1]", hi, lo, high, unit="voxels (limited by the domain)")
    check_range(f"{name}_mean", mean, lo, hi, unit=f"voxels ({name}_range)")
    check_range(f"{name}_std", std, 0, None, unit="voxels")


@dataclass(frozen=True)
class Wire:
    """One solid nanowire (see the module docstring for the exact solid).

    Attributes
    ----------
    label:
        1-based deposition order; the wire's label in volumes and projections.
    center:
        (x, y, z) of the axis midpoint (voxels). The axis lies ``thickness / 2`` above
        the wire's flat bottom face. For a bent wire it is the midpoint of the arc.
    angle:
        In-plane direction of the axis at its midpoint, degrees in [0, 180) from +x,
        counter-clockwise as seen in the image (y pointing down).
    tilt:
        Out-of-plane tilt of the wire's mid-plane along its axis (degrees); positive
        raises the end in the ``angle`` direction.
    length, width, thickness:
        Nominal size (voxels): length along the centreline, width in the mid-plane,
        thickness perpendicular to it.
    cross_section:
        ``"rectangular"``, ``"hexagonal"`` or ``"round"``.
    taper:
        Fractional loss of width and thickness at both ends (0 = prism).
    curvature:
        Signed curvature of the centreline in the mid-plane (1/voxels; 0 = straight).
    roughness_amplitude, roughness_corr_length, roughness_seed:
        Relative standard deviation and correlation length (voxels) of the thickness
        variation along the wire, and the seed of its random profile.
    group:
        0 for a single wire, else an id shared by the wires of one bundle or clump.
    """

    label: int
    center: tuple[float, float, float]
    angle: float
    tilt: float
    length: float
    width: float
    thickness: float
    cross_section: str = "rectangular"
    taper: float = 0.0
    curvature: float = 0.0
    roughness_amplitude: float = 0.0
    roughness_corr_length: float = 30.0
    roughness_seed: int = 0
    group: int = 0

    @property
    def bend_angle(self) -> float:
        """Total turning angle of the centreline (degrees, signed)."""
        return math.degrees(self.curvature * self.length)

    def section_profile(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Width and thickness of the cross-section at arc positions ``s``.

        Parameters
        ----------
        s : array_like of float
            Arc positions along the centreline (voxels, ``-length/2 .. length/2``), any
            shape.

        Returns
        -------
        w, t : numpy.ndarray of float64
            Width and thickness (voxels), same shape as ``s``.
        """
        s = np.asarray(s, dtype=np.float64)
        f = 1.0 - self.taper * np.minimum(np.abs(s) * (2.0 / self.length), 1.0)
        w = self.width * f
        t = self.thickness * f
        if self.roughness_amplitude > 0:
            t = t * self.roughness_factor(s)
        return w, t

    def roughness_factor(self, s: np.ndarray) -> np.ndarray:
        """Thickness multiplier ``max(0.25, 1 + amplitude * g(s))`` at arc positions ``s``.

        Parameters
        ----------
        s : array_like of float
            Arc positions along the centreline (voxels), any shape.

        Returns
        -------
        numpy.ndarray of float64
            The multiplier, same shape as ``s`` (all ones for a wire without roughness).
        """
        s = np.asarray(s, dtype=np.float64)
        if self.roughness_amplitude <= 0:
            return np.ones_like(s)
        r = np.random.default_rng(self.roughness_seed)
        k = r.normal(0.0, 1.0 / self.roughness_corr_length, _ROUGH_K)
        ph = r.uniform(0.0, 2 * np.pi, _ROUGH_K)
        # Tabulate on a 1-voxel grid and interpolate: cheap for many pixels.
        grid = np.arange(-self.length / 2 - 1.0, self.length / 2 + 2.0)
        g = np.sqrt(2.0 / _ROUGH_K) * np.cos(np.outer(grid, k) + ph).sum(axis=1)
        fac = np.maximum(_ROUGH_MIN_FACTOR, 1.0 + self.roughness_amplitude * g)
        return np.interp(s, grid, fac)

    @property
    def max_thickness(self) -> float:
        """Upper bound of ``t(s)`` over the wire (voxels)."""
        if self.roughness_amplitude > 0:
            return self.thickness * (1.0 + self.roughness_amplitude * math.sqrt(2 * _ROUGH_K))
        return self.thickness


@dataclass
class Network:
    """A voxel domain and its wires in deposition order.

    Attributes
    ----------
    domain:
        (W, B, H) = (x, y, z) size in voxels.
    wires:
        The wires; ``wires[i].label == i + 1``.
    """

    domain: tuple[int, int, int]
    wires: list[Wire] = field(default_factory=list)
    # Filled by generate_network: per-wire columns already computed while depositing,
    # reused by project_network when the wires are unchanged.
    _cache: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_wires(self) -> int:
        """Number of wires in the network."""
        return len(self.wires)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(rows, cols) = (B, W) of the projected image."""
        return int(self.domain[1]), int(self.domain[0])

    @property
    def max_stack_height(self) -> float:
        """Height (voxels) of the highest wire point inside the domain's footprint."""
        top = 0.0
        for _, _, _, zh in network_columns(self):
            if len(zh):
                top = max(top, float(zh.max()))
        return top


# ---------------------------------------------------------------------------------------
# Geometry shared by the analytic projection and the voxelizer.


def _frame(wire: Wire):
    a = math.radians(wire.angle)
    t = math.radians(wire.tilt)
    return math.cos(a), math.sin(a), math.cos(t), math.sin(t)


def plane_coords(wire: Wire, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal coordinates relative to the wire: ``h`` along ``d`` and ``eta`` along ``v``.

    Parameters
    ----------
    wire : Wire
        The wire; its axis midpoint is the origin.
    x, y : numpy.ndarray of float
        Points in the domain (voxels, y pointing down), same shape.

    Returns
    -------
    h, eta : numpy.ndarray of float
        Coordinates (voxels) along the in-plane direction ``d`` and the lateral
        direction ``v``, same shape as ``x``.
    """
    ca, sa, _, _ = _frame(wire)
    dx = x - wire.center[0]
    dy = y - wire.center[1]
    return dx * ca - dy * sa, dx * sa + dy * ca


def arc_coords(wire: Wire, xi: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arc position ``s`` and lateral offset ``a`` of mid-plane points ``(xi, eta)``.

    Parameters
    ----------
    wire : Wire
        The wire (its ``curvature`` bends the centreline; 0 = straight).
    xi, eta : numpy.ndarray of float
        Mid-plane coordinates along the chord and along ``v`` (voxels), same shape.

    Returns
    -------
    s, a : numpy.ndarray of float
        Arc position along the centreline and signed lateral offset from it (voxels);
        ``(xi, eta)`` unchanged for a straight wire.
    """
    k = wire.curvature
    if k == 0.0:
        return xi, eta
    ey = eta - 1.0 / k
    s = np.arctan2(k * xi, -k * ey) / k
    a = 1.0 / k - math.copysign(1.0, k) * np.hypot(xi, ey)
    return s, a


def wire_rect(wire: Wire) -> tuple[float, float, float, float]:
    """Bounds of the wire's footprint in its own horizontal frame (see :func:`plane_coords`).

    Parameters
    ----------
    wire : Wire
        The wire.

    Returns
    -------
    tuple of float
        ``(h_min, h_max, eta_min, eta_max)`` in voxels, padded by one voxel.
    """
    hw = wire.width / 2 + 1.0
    _, _, ct, _ = _frame(wire)
    k = abs(wire.curvature)
    half = wire.length / 2
    if k == 0.0:
        xi = half
        e_lo, e_hi = -hw, hw
    else:
        phi = k * half
        xi = (1.0 / k) if phi > math.pi / 2 else math.sin(phi) / k
        sag = (1.0 - math.cos(min(phi, math.pi))) / k
        if wire.curvature > 0:
            e_lo, e_hi = -hw, sag + hw
        else:
            e_lo, e_hi = -sag - hw, hw
    xi += hw
    return -xi * ct, xi * ct, e_lo, e_hi


def wire_bbox(wire: Wire) -> tuple[float, float, float, float]:
    """Axis-aligned bounding box of the wire's footprint, not clipped to the domain.

    Parameters
    ----------
    wire : Wire
        The wire.

    Returns
    -------
    tuple of float
        ``(x_min, x_max, y_min, y_max)`` in voxels.
    """
    ca, sa, _, _ = _frame(wire)
    h0, h1, e0, e1 = wire_rect(wire)
    xs = [h * ca + e * sa for h in (h0, h1) for e in (e0, e1)]
    ys = [e * ca - h * sa for h in (h0, h1) for e in (e0, e1)]
    cx, cy = wire.center[0], wire.center[1]
    return cx + min(xs), cx + max(xs), cy + min(ys), cy + max(ys)


def wire_columns(wire: Wire, shape: tuple[int, int], z_center: float | None = None):
    """Vertical extent of the wire in every image column it crosses (the analytic core).

    Parameters
    ----------
    wire : Wire
        The wire.
    shape : tuple of int
        ``(rows, cols)`` of the image (pixels); columns outside it are dropped.
    z_center : float or None
        z of the axis midpoint (voxels) to use instead of ``wire.center[2]`` (the
        generator evaluates a wire at ``z_center=0`` before it knows where it settles).

    Returns
    -------
    rows, cols : numpy.ndarray of int64, shape (K,)
        The pixels whose vertical line meets the wire (row-major order).
    z_lo, z_hi : numpy.ndarray of float64, shape (K,)
        The z interval (voxels) where that line is inside the wire.
    """
    n_rows, n_cols = shape
    ca, sa, ct, st = _frame(wire)
    cx, cy, cz = wire.center
    if z_center is not None:
        cz = z_center
    h0, h1, e0, e1 = wire_rect(wire)
    _, _, y_min, y_max = wire_bbox(wire)
    r0 = max(0, int(math.floor(y_min - 0.5)))
    r1 = min(n_rows - 1, int(math.ceil(y_max - 0.5)))
    empty = np.empty(0, dtype=np.int64)
    if r1 < r0:
        return empty, empty, np.empty(0), np.empty(0)
    rows = np.arange(r0, r1 + 1)
    dy = rows + (0.5 - cy)
    # Per row, the x interval where h0 <= h <= h1 and e0 <= eta <= e1 (two slabs in x;
    # the rectangle is padded by a voxel, exact membership is tested per pixel below).
    xl = np.zeros(rows.shape)
    xr = np.full(rows.shape, float(n_cols))
    for coef, off, lo, hi in ((ca, dy * -sa, h0, h1), (sa, dy * ca, e0, e1)):
        if abs(coef) > 1e-9:
            a_ = (lo - off) * (1.0 / coef)
            b_ = (hi - off) * (1.0 / coef)
            if coef < 0:
                a_, b_ = b_, a_
            np.maximum(xl, a_ + cx, out=xl)
            np.minimum(xr, b_ + cx, out=xr)
        else:
            xr[(off < lo) | (off > hi)] = -1.0
    c0 = np.maximum(np.floor(xl - 0.5), 0).astype(np.int64)
    n = np.minimum(np.ceil(xr - 0.5), n_cols - 1).astype(np.int64) - c0 + 1
    np.maximum(n, 0, out=n)
    total = int(n.sum())
    if total == 0:
        return empty, empty, np.empty(0), np.empty(0)
    rr = np.repeat(rows, n)
    # cc = c0 of its row + running offset within the row.
    cc = np.arange(total) - np.repeat(np.cumsum(n) - n - c0, n)
    # h and eta are linear in the column index with a per-row offset.
    h = cc * ca + np.repeat(dy * -sa + (0.5 - cx) * ca, n)
    eta = cc * sa + np.repeat(dy * ca + (0.5 - cx) * sa, n)
    xi = h * (1.0 / ct) if ct != 1.0 else h
    s, a = arc_coords(wire, xi, eta)
    half_len = wire.length / 2
    varying = wire.taper > 0 or wire.roughness_amplitude > 0
    if varying:
        w, t = wire.section_profile(s)
        r = np.abs(a) * 2.0 / w
        half_t = 0.5 * t
    else:
        r = np.abs(a) * (2.0 / wire.width)
        half_t = 0.5 * wire.thickness
    if wire.cross_section == "rectangular":
        keep = r < 1.0
        e = half_t
    elif wire.cross_section == "round":
        e2 = 1.0 - r * r
        keep = e2 > 0
        e = half_t * np.sqrt(np.maximum(e2, 0.0))
    else:  # hexagonal
        q = 2.0 * (1.0 - r)
        keep = q > 0
        e = half_t * np.minimum(q, 1.0)
    keep &= np.abs(s) <= half_len
    idx = np.flatnonzero(keep)
    rr, cc, h = rr[idx], cc[idx], h[idx]
    if np.ndim(e):
        e = e[idx]
    # Band centre (the section rests on the flat bottom face; axis at thickness / 2).
    if varying:
        mid = (half_t[idx] - wire.thickness / 2) * (1.0 / ct) + h * (st / ct)
    else:
        mid = h * (st / ct)
    de = e * (1.0 / ct)
    if not np.ndim(de):
        de = np.full(len(idx), de)
    return rr, cc, (mid - de) + cz, (mid + de) + cz


def network_columns(network: Network) -> list:
    """:func:`wire_columns` of every wire, reusing the generator's results when valid.

    Parameters
    ----------
    network : Network
        The network; its image shape is ``network.image_shape``.

    Returns
    -------
    list of tuple
        One ``(rows, cols, z_lo, z_hi)`` per wire, in deposition order.
    """
    cache = network._cache
    shape = network.image_shape
    if cache is not None and cache.get("shape") == shape and cache["wires"] == tuple(network.wires):
        return cache["columns"]
    return [wire_columns(w, shape) for w in network.wires]


# ---------------------------------------------------------------------------------------
# The generator.


def _lognormal(rng, mean, std, lo, hi, n):
    """n draws of a log-normal with this mean and std (voxels), redrawn into [lo, hi]."""
    if n == 0:
        return np.empty(0)
    if std <= 0:
        return np.full(n, float(np.clip(mean, lo, hi)))
    sigma2 = math.log1p((std / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2
    out = rng.lognormal(mu, math.sqrt(sigma2), n)
    for _ in range(20):
        bad = (out < lo) | (out > hi)
        if not bad.any():
            break
        out[bad] = rng.lognormal(mu, math.sqrt(sigma2), int(bad.sum()))
    return np.clip(out, lo, hi)


def _angles(rng, p: NetworkParams, n):
    if p.orientation == "uniform":
        return rng.uniform(0.0, 180.0, n)
    return np.mod(rng.normal(p.preferred_angle, p.angle_spread, n), 180.0)


def _propose(p: NetworkParams, rng: np.random.Generator, n: int) -> list[dict]:
    """Draw the properties of n wires (positions included), grouping bundles and clumps."""
    W, B, _ = p.domain
    lengths = _lognormal(rng, p.length_mean, p.length_std, *p.length_range, n)
    widths = _lognormal(rng, p.width_mean, p.width_std, *p.width_range, n)
    ratios = rng.uniform(*p.thickness_ratio, n)
    thick = np.clip(widths * ratios, *p.thickness_range)
    names = list(p.cross_sections)
    wts = np.array([p.cross_sections[k] for k in names], dtype=float)
    sections = rng.choice(len(names), size=n, p=wts / wts.sum())
    angles = _angles(rng, p, n)
    tilts = rng.uniform(-p.max_tilt, p.max_tilt, n)
    m = p.center_margin
    xs = rng.uniform(-m, W + m, n)
    ys = rng.uniform(-m, B + m, n)
    taper = np.where(rng.random(n) < p.taper_prob, rng.uniform(*p.taper_range, n), 0.0)
    bend = np.where(
        rng.random(n) < p.bend_prob,
        rng.uniform(p.bend_angle_max / 4, p.bend_angle_max, n) * rng.choice([-1.0, 1.0], n),
        0.0,
    )
    rough = np.where(rng.random(n) < p.roughness_prob, p.roughness_amplitude, 0.0)
    seeds = rng.integers(0, 2**31 - 1, n)
    event = rng.random(n)
    wires = []
    i = 0
    group = 0
    while i < n:
        size = 1
        kind = None
        if event[i] < p.bundle_prob:
            size = int(rng.integers(p.bundle_size[0], p.bundle_size[1] + 1))
            kind = "bundle"
        elif event[i] < p.bundle_prob + p.clump_prob:
            size = int(rng.integers(p.clump_size[0], p.clump_size[1] + 1))
            kind = "clump"
        size = min(size, n - i)
        if size > 1:
            group += 1
        offset = 0.0
        for j in range(i, i + size):
            w = dict(
                x=xs[j],
                y=ys[j],
                angle=angles[j],
                tilt=tilts[j],
                length=lengths[j],
                width=widths[j],
                thickness=thick[j],
                cross_section=names[sections[j]],
                taper=taper[j],
                curvature=math.radians(bend[j]) / lengths[j],
                roughness_amplitude=rough[j],
                roughness_corr_length=p.roughness_corr_length,
                roughness_seed=int(seeds[j]),
                group=group if size > 1 else 0,
            )
            if kind == "bundle" and j > i:
                # Side by side with the bundle's first wire, nearly parallel, slid along it.
                first = wires[-(j - i)]
                offset += (widths[j - 1] + widths[j]) / 2 + rng.uniform(*p.bundle_gap)
                a = math.radians(first["angle"])
                along = rng.uniform(-0.2, 0.2) * first["length"]
                w["x"] = first["x"] + offset * math.sin(a) + along * math.cos(a)
                w["y"] = first["y"] + offset * math.cos(a) - along * math.sin(a)
                w["angle"] = (first["angle"] + rng.normal(0, p.bundle_angle_spread)) % 180.0
                w["length"] = float(np.clip(lengths[j], 0.6 * first["length"], 1.4 * first["length"]))
                w["length"] = float(np.clip(w["length"], *p.length_range))
                w["curvature"] = first["curvature"] * first["length"] / w["length"]
            elif kind == "clump" and j > i:
                first = wires[-(j - i)]
                r = p.clump_radius * math.sqrt(rng.random())
                phi = rng.uniform(0, 2 * math.pi)
                w["x"] = first["x"] + r * math.cos(phi)
                w["y"] = first["y"] + r * math.sin(phi)
            if kind == "clump":
                w["length"] = max(p.length_range[0] * 0.5, w["length"] * p.clump_length_scale)
                w["curvature"] = math.radians(bend[j]) / w["length"]
            wires.append(w)
        i += size
    return wires


def generate_network(params: NetworkParams, rng: np.random.Generator) -> Network:
    """Draw a random network and deposit its wires one after another.

    Each wire is dropped vertically at its drawn position and settles on the current
    height map (the substrate or the tops of earlier wires): its axis height is the
    lowest at which it touches nothing, so later wires lie on top of earlier ones and
    no two wires share a voxel. Wires may stick out of the domain sideways (as in real
    images, where wires are cut by the border); outside the domain they rest on the
    substrate.

    Parameters
    ----------
    params : NetworkParams
        Generator parameters (validated here).
    rng : numpy.random.Generator
        Source of randomness; the same seed gives the same network.

    Returns
    -------
    Network
        Wires with labels 1..N in deposition order.

    Raises
    ------
    ValueError
        On invalid parameters, or when a wire cannot be placed below the domain top
        after ``params.max_attempts`` positions (domain too thin for the stack).
    """
    params.validate()
    W, B, H = (int(v) for v in params.domain)
    lo, hi = params.n_wires_range
    n = int(rng.integers(lo, hi + 1))
    proposals = _propose(params, rng, n)
    height = np.zeros(B * W, dtype=np.float64)  # flat (row-major) height map, voxels
    wires: list[Wire] = []
    columns = []
    for label, prop in enumerate(proposals, start=1):
        for attempt in range(params.max_attempts):
            if attempt > 0:  # the drawn spot is too high: try another one
                m = params.center_margin
                prop["x"] = rng.uniform(-m, W + m)
                prop["y"] = rng.uniform(-m, B + m)
            fields_ = dict(
                label=label,
                angle=float(prop["angle"]),
                tilt=float(prop["tilt"]),
                length=float(prop["length"]),
                width=float(prop["width"]),
                thickness=float(prop["thickness"]),
                cross_section=prop["cross_section"],
                taper=float(prop["taper"]),
                curvature=float(prop["curvature"]),
                roughness_amplitude=float(prop["roughness_amplitude"]),
                roughness_corr_length=float(prop["roughness_corr_length"]),
                roughness_seed=int(prop["roughness_seed"]),
                group=int(prop["group"]),
            )
            x, y = float(prop["x"]), float(prop["y"])
            wire = Wire(center=(x, y, 0.0), **fields_)
            rr, cc, zl, zh = wire_columns(wire, (B, W), z_center=0.0)
            flat = rr * W + cc
            # Lowest axis height on the substrate (wire bottom at z >= 0 everywhere, also
            # outside the domain), then raised to clear the height map.
            tilt = math.radians(wire.tilt)
            cz = wire.thickness / (2 * math.cos(tilt)) + wire.length / 2 * abs(math.sin(tilt))
            if len(rr):
                cz = max(cz, float((height[flat] - zl).max()) + _EPS_GAP)
            wire = Wire(center=(x, y, cz), **fields_)
            if not len(rr) or float(zh.max()) + cz <= H:
                break
        else:
            raise ValueError(
                f"domain too thin: wire {label} of {n} does not fit below the domain height "
                f"H={H} voxels after {params.max_attempts} tries; increase domain H "
                f"(must exceed the stack height), or lower n_wires / thickness_range"
            )
        zl = zl + cz
        zh = zh + cz
        # The wire clears everything below it, so its top is the new height there.
        height[flat] = zh
        wires.append(wire)
        columns.append((rr, cc, zl, zh))
    net = Network(domain=(W, B, H), wires=wires)
    net._cache = {"wires": tuple(wires), "shape": (B, W), "columns": columns}
    return net
