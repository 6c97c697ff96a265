"""The 3D label volume of a network (the slow reference path) and its projection.

:func:`voxelize` fills a (H, B, W) = (z, y, x) uint16 volume with each wire's label, voxel
by voxel, testing whether each voxel centre lies inside the wire's solid (see
:mod:`nanowire_utils.synth.geometry` for the solid). :func:`project_volume` counts each label's
voxels along z, which is how the paper compresses its GeoDict structures into optical
density. The analytic path :func:`nanowire_utils.synth.projection.project_network` gives the
same projection without the volume; the tests check the two against each other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nanowire_utils.synth.geometry import Network, Wire, arc_coords, plane_coords, wire_bbox
from nanowire_utils.synth.projection import Projection, _footprint


def _wire_voxels(wire: Wire, shape: tuple[int, int, int]):
    """(k, row, col) indices of the voxels whose centres lie inside ``wire``."""
    H, B, W = shape
    x_min, x_max, y_min, y_max = wire_bbox(wire)
    c0, c1 = max(0, int(math.floor(x_min))), min(W - 1, int(math.ceil(x_max)))
    r0, r1 = max(0, int(math.floor(y_min))), min(B - 1, int(math.ceil(y_max)))
    none = (np.empty(0, dtype=np.int64),) * 3
    if c1 < c0 or r1 < r0:
        return none
    rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
    rows, cols = rows.ravel(), cols.ravel()
    h, eta = plane_coords(wire, cols + 0.5, rows + 0.5)
    phi = math.radians(wire.tilt)
    cphi, sphi = math.cos(phi), math.sin(phi)
    # A vertical line pierces the tilted mid-plane at in-plane position h / cos(tilt).
    s, a = arc_coords(wire, h / cphi, eta)
    w, t = wire.section_profile(s)
    col_in = (np.abs(s) <= wire.length / 2) & (np.abs(a) < w / 2)
    if not col_in.any():
        return none
    rows, cols, h, a, w, t = rows[col_in], cols[col_in], h[col_in], a[col_in], w[col_in], t[col_in]
    cz = wire.center[2]
    # z' of the bottom face and of the top of the thickest section, per column.
    z_bot = -wire.thickness / 2 / cphi + h * (sphi / cphi)
    z_top = z_bot + t / cphi
    k0 = max(0, int(math.floor(cz + z_bot.min() - 1)))
    k1 = min(H - 1, int(math.ceil(cz + z_top.max() + 1)))
    if k1 < k0:
        return none
    zc = np.arange(k0, k1 + 1) + 0.5 - cz  # voxel centres relative to the axis midpoint
    # Coordinates perpendicular to the mid-plane, per (column, voxel).
    zeta = -h[:, None] * sphi + zc[None, :] * cphi
    b = zeta + wire.thickness / 2  # height above the bottom face
    cc = 2.0 * b / t[:, None] - 1.0  # -1 at the bottom, +1 at the top of the section
    rr = (2.0 * np.abs(a) / w)[:, None]
    if wire.cross_section == "rectangular":
        inside = (cc >= -1.0) & (cc < 1.0)
    elif wire.cross_section == "round":
        inside = rr * rr + cc * cc < 1.0
    else:  # hexagonal
        inside = (cc >= -1.0) & (cc < 1.0) & (np.abs(cc) < 2.0 * (1.0 - rr))
    ci, ki = np.nonzero(inside)
    return ki + k0, rows[ci], cols[ci]


def voxelize(network: Network, progress: bool = False) -> np.ndarray:
    """Build the 3D label volume of a network.

    Parameters
    ----------
    network : Network
        The network; its domain (W, B, H) (voxels) sets the volume size.
    progress : bool
        Show a tqdm progress bar over the wires.

    Returns
    -------
    numpy.ndarray of uint16, shape (H, B, W)
        The label volume in (z, y, x) order: 0 is empty, ``i`` is wire label ``i``. A
        voxel already taken is never overwritten by a later wire (the generator never
        makes wires overlap, so this only matters for hand-made networks).

    Raises
    ------
    ValueError
        When a wire label exceeds 65535 (the uint16 range).
    """
    W, B, H = (int(v) for v in network.domain)
    if network.wires and max(w.label for w in network.wires) > np.iinfo(np.uint16).max:
        raise ValueError("voxelize supports at most 65535 wires")
    vol = np.zeros((H, B, W), dtype=np.uint16)
    wires = network.wires
    if progress:
        from tqdm.auto import tqdm

        wires = tqdm(wires, desc="voxelize", unit="wire")
    for wire in wires:
        k, r, c = _wire_voxels(wire, (H, B, W))
        free = vol[k, r, c] == 0
        vol[k[free], r[free], c[free]] = wire.label
    return vol


def project_volume(volume: np.ndarray, min_area: int = 1) -> Projection:
    """Per-label voxel counts along z: the projection of a label volume.

    Parameters
    ----------
    volume : numpy.ndarray of int, shape (H, B, W)
        Label volume in (z, y, x) order, 0 empty.
    min_area : int
        Labels covering fewer pixels than this (pixels) are left out.

    Returns
    -------
    Projection
        Shape (B, W), height H, one footprint per label (ascending), whose thickness is
        the number of the label's voxels in each column (voxels).

    Raises
    ------
    ValueError
        When ``volume`` is not 3D or ``min_area`` is negative.
    """
    from nanowire_utils._checks import check_range

    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (H, B, W) = (z, y, x), got shape {volume.shape}")
    check_range("min_area", min_area, 0, None, unit="pixels")
    H, B, W = volume.shape
    idx = np.flatnonzero(volume)
    labels = volume.ravel()[idx].astype(np.int64)
    key = labels * (B * W) + idx % (B * W)
    keys, counts = np.unique(key, return_counts=True)
    lab = keys // (B * W)
    pix = keys % (B * W)
    splits = np.flatnonzero(np.diff(lab)) + 1
    footprints = []
    for part_pix, part_cnt, part_lab in zip(np.split(pix, splits), np.split(counts, splits), np.split(lab, splits)):
        if len(part_pix) == 0 or len(part_pix) < min_area:
            continue
        fp = _footprint(int(part_lab[0]), part_pix // W, part_pix % W, part_cnt)
        footprints.append(fp)
    return Projection(shape=(B, W), height=H, footprints=footprints)


def save_volume(volume: np.ndarray, path) -> Path:
    """Save a label volume as .npy or .tif/.tiff (chosen by the suffix).

    Parameters
    ----------
    volume : numpy.ndarray, shape (H, B, W)
        The label volume (see :func:`voxelize`).
    path : str or os.PathLike
        Destination; ``.npy`` is written with numpy, ``.tif``/``.tiff`` with tifffile
        (zlib compression).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        When the suffix is none of ``.npy``, ``.tif``, ``.tiff``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    volume = np.asarray(volume)
    if suffix == ".npy":
        np.save(path, volume)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, volume, compression="zlib")
    else:
        raise ValueError(f"volume path must end in .npy, .tif or .tiff, got {path.name!r}")
    return path


def load_volume(path) -> np.ndarray:
    """Load a label volume saved by :func:`save_volume` (.npy, .tif or .tiff).

    Parameters
    ----------
    path : str or os.PathLike
        The volume file.

    Returns
    -------
    numpy.ndarray, shape (H, B, W)
        The label volume as saved.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the suffix is none of ``.npy``, ``.tif``, ``.tiff``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no volume file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    raise ValueError(f"volume path must end in .npy, .tif or .tiff, got {path.name!r}")
