"""The 3D view of a nanowire network or its voxel label volume."""

from __future__ import annotations

import math

import numpy as np

from nanowire_utils.synth.geometry import Network
from nanowire_utils.synth.voxels import voxelize


def plot_volume_3d(volume, ax=None, max_size: int = 128, max_points: int = 60000, cmap: str = "tab20", seed: int = 0):
    """A 3D scatter view of a label volume (or a network, voxelised first).

    Only surface voxels are drawn, on a grid downsampled so that the largest side has at
    most ``max_size`` voxels, coloured by label, with the true (W, B, H) aspect ratio.

    Parameters
    ----------
    volume : numpy.ndarray of int, shape (H, B, W), or Network
        Label volume in (z, y, x) order, or a
        :class:`~nanowire_utils.synth.geometry.Network`.
    ax : mpl_toolkits.mplot3d.axes3d.Axes3D or None
        A matplotlib 3D axes; a new figure is made when None.
    max_size : int
        Largest side of the downsampled grid (voxels).
    max_points : int
        At most this many points are drawn (a random subset beyond it).
    cmap : str
        Matplotlib colormap for the labels.
    seed : int
        Seed of the point subset.

    Returns
    -------
    mpl_toolkits.mplot3d.axes3d.Axes3D
        The axes drawn on (axes in voxels).

    Raises
    ------
    ValueError
        When ``volume`` is not 3D.
    """
    import matplotlib.pyplot as plt

    if isinstance(volume, Network):
        volume = voxelize(volume)
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (H, B, W), got shape {volume.shape}")
    step = max(1, int(math.ceil(max(volume.shape) / max_size)))
    v = volume[::step, ::step, ::step]
    occ = v > 0
    pad = np.pad(occ, 1)
    interior = (
        pad[:-2, 1:-1, 1:-1]
        & pad[2:, 1:-1, 1:-1]
        & pad[1:-1, :-2, 1:-1]
        & pad[1:-1, 2:, 1:-1]
        & pad[1:-1, 1:-1, :-2]
        & pad[1:-1, 1:-1, 2:]
    )
    z, y, x = np.nonzero(occ & ~interior)
    if len(z) > max_points:
        sel = np.random.default_rng(seed).choice(len(z), max_points, replace=False)
        z, y, x = z[sel], y[sel], x[sel]
    labels = v[z, y, x]
    if ax is None:
        fig = plt.figure(figsize=(7, 5))
        ax = fig.add_subplot(projection="3d")
    colors = plt.get_cmap(cmap)((labels.astype(int) - 1) % 20)
    ax.scatter(x * step, y * step, z * step, c=colors, s=2, depthshade=False, linewidths=0)
    H, B, W = volume.shape
    ax.set_xlim(0, W)
    ax.set_ylim(B, 0)  # image rows point down
    ax.set_zlim(0, H)
    ax.set_box_aspect((W, B, H))
    ax.set_xlabel("x (voxels)")
    ax.set_ylabel("y (voxels)")
    ax.set_zlabel("z (voxels)")
    return ax
