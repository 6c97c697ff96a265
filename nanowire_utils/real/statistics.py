"""Particle statistics of instance masks and their comparison, as in the paper's Figs. 8, 10, 12
(area, aspect ratio and orientation histograms with kernel density estimates, predicted vs
reference).

Typical use::

    from nanowire_utils.real.statistics import particle_table, compare_distributions
    from nanowire_utils.viz.statistics import plot_distributions
    pred_df = particle_table(pred, pixel_size_nm=6.0)
    ref_df = particle_table(load_reference("ptychography"), pixel_size_nm=6.0)
    plot_distributions(pred_df, ref_df)
    compare_distributions(pred_df, ref_df, "area")
"""

from __future__ import annotations

import math

import numpy as np

from nanowire_utils._checks import check_range

#: Columns of :func:`particle_table` (pixel units; ``*_nm`` columns are added with a pixel size).
COLUMNS = (
    "instance",
    "score",
    "area",
    "length",
    "width",
    "aspect_ratio",
    "orientation",
    "perimeter",
    "solidity",
    "eccentricity",
    "major_axis_length",
    "minor_axis_length",
    "centroid_x",
    "centroid_y",
)

_RECT = math.sqrt(3.0) / 2.0  # ellipse axis -> side of the rectangle with the same second moments


def particle_table(instances, pixel_size_nm: float | None = None, image: str | None = None):
    """One row per instance with the shape descriptors of ``skimage.measure.regionprops``.

    Parameters
    ----------
    instances : Instances or numpy.ndarray of bool, shape (N, H, W)
        :class:`~nanowire_utils.instances.Instances` (or an (N, H, W) bool mask stack).
        Each mask is measured on its own, so overlapping wires keep their full footprint.
    pixel_size_nm : float or None
        Pixel size (nm per pixel, > 0). When given, ``area_nm2``, ``length_nm``,
        ``width_nm`` and ``perimeter_nm`` are added.
    image : str or None
        Optional label stored in an ``image`` column (to concatenate tables of several images).

    Returns
    -------
    pandas.DataFrame
        Columns (pixel units unless stated):

        - ``area``: mask pixels (px^2), as the paper's "summation of pixels".
        - ``length``, ``width``: sides of the rectangle with the mask's second moments
          (``sqrt(3)/2`` times regionprops' ellipse ``major_axis_length`` /
          ``minor_axis_length``, also given), so a straight prismatic wire of length L and
          width W gives about L and W.
        - ``aspect_ratio``: length / width (``inf`` for a one-pixel-wide line).
        - ``orientation``: angle of the long axis to the image's horizontal, in degrees in
          [0, 180). Convention: x to the right, angle counter-clockwise *as seen on the
          screen* (image y points down), so a wire rising to the right is at 45 deg, a
          vertical one at 90 deg, one falling to the right at 135 deg.
        - ``perimeter`` (px), ``solidity`` (area / convex hull area), ``eccentricity``
          (of the moment ellipse, 0 = disc, -> 1 = line), ``centroid_x``, ``centroid_y`` (px),
          ``instance`` (index in ``instances``) and ``score``.

        Empty masks give no row.

    Raises
    ------
    ValueError
        When ``instances`` is not a mask stack, or ``pixel_size_nm`` is not positive.
    """
    import pandas as pd
    from skimage.measure import regionprops

    masks = getattr(instances, "masks", instances)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"expected Instances or an (N, H, W) mask stack, got shape {masks.shape}")
    scores = getattr(instances, "scores", np.ones(len(masks), np.float32))
    if pixel_size_nm is not None:
        check_range("pixel_size_nm", pixel_size_nm, 0, None, low_inclusive=False, unit="nm")
    rows = []
    for i, m in enumerate(masks):
        if not m.any():
            continue
        (p,) = regionprops(m.astype(np.uint8))
        major, minor = float(p.axis_major_length), float(p.axis_minor_length)
        length, width = major * _RECT, minor * _RECT
        # regionprops: angle between the row axis and the major axis, counter-clockwise in
        # (row, col) index space; convert to screen angle from the x axis, folded to [0, 180)
        orientation = (math.degrees(p.orientation) + 90.0) % 180.0
        cy, cx = p.centroid
        rows.append(
            {
                "instance": i,
                "score": float(scores[i]),
                "area": float(p.area),
                "length": length,
                "width": width,
                "aspect_ratio": length / width if width > 0 else math.inf,
                "orientation": orientation,
                "perimeter": float(p.perimeter),
                "solidity": float(p.solidity),
                "eccentricity": float(p.eccentricity),
                "major_axis_length": major,
                "minor_axis_length": minor,
                "centroid_x": float(cx),
                "centroid_y": float(cy),
            }
        )
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if pixel_size_nm is not None:
        s = float(pixel_size_nm)
        df["area_nm2"] = df["area"] * s * s
        df["length_nm"] = df["length"] * s
        df["width_nm"] = df["width"] * s
        df["perimeter_nm"] = df["perimeter"] * s
    if image is not None:
        df.insert(0, "image", image)
    return df


def save_table(df, path) -> None:
    """Write a particle table as CSV (no index column).

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`particle_table`.
    path : str or os.PathLike
        Destination CSV file.
    """
    df.to_csv(path, index=False)


def column_values(df, column):
    """The finite values of one column of a particle table, for statistics.

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`particle_table`.
    column : str
        Column name (e.g. ``"area"``, ``"orientation"``).

    Returns
    -------
    numpy.ndarray of float, shape (K,)
        The column's values without NaN and infinities.

    Raises
    ------
    ValueError
        When the column is not in the table (the message lists the available ones).
    """
    if column not in df.columns:
        raise ValueError(f"column {column!r} not in the table; available: {', '.join(map(str, df.columns))}")
    v = np.asarray(df[column], dtype=float)
    return v[np.isfinite(v)]


def compare_distributions(pred_df, ref_df, column: str, n_boot: int = 1000, seed: int = 0, ci: float = 95.0) -> dict:
    """How far apart the predicted and reference distributions of ``column`` are.

    Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs, 0 =
    identical samples, 1 = no overlap) and Wasserstein-1 distance (earth mover's distance,
    in the column's units) with ``scipy.stats``, and bootstrap percentile intervals: both
    samples are resampled with replacement ``n_boot`` times (numpy Generator seeded with
    ``seed``) and the ``(100 - ci) / 2`` and ``100 - (100 - ci) / 2`` percentiles taken.
    Orientation is treated as a linear variable on [0, 180) (angles near 0 and 180 count as
    far apart).

    Parameters
    ----------
    pred_df, ref_df : pandas.DataFrame
        Predicted and reference tables from :func:`particle_table`.
    column : str
        The column to compare (non-finite values are dropped).
    n_boot : int
        Number of bootstrap resamples (>= 0; 0 gives ``nan`` intervals).
    seed : int
        Seed of the bootstrap's random generator.
    ci : float
        Confidence level of the intervals (percent, in (0, 100)).

    Returns
    -------
    dict
        ``ks``, ``ks_pvalue``, ``ks_ci`` (low, high), ``wasserstein``, ``wasserstein_ci``,
        ``n_pred``, ``n_ref``; all ``nan`` if either sample is empty.

    Raises
    ------
    ValueError
        For an unknown column, a negative ``n_boot`` or ``ci`` outside (0, 100).
    """
    from scipy.stats import ks_2samp, wasserstein_distance

    check_range("n_boot", n_boot, 0, None)
    check_range("ci", ci, 0, 100, low_inclusive=False, high_inclusive=False)
    p, r = column_values(pred_df, column), column_values(ref_df, column)
    out = {"n_pred": len(p), "n_ref": len(r)}
    if len(p) == 0 or len(r) == 0:
        nan2 = (math.nan, math.nan)
        return {
            **out,
            "ks": math.nan,
            "ks_pvalue": math.nan,
            "ks_ci": nan2,
            "wasserstein": math.nan,
            "wasserstein_ci": nan2,
        }
    ks = ks_2samp(p, r)
    out.update(ks=float(ks.statistic), ks_pvalue=float(ks.pvalue), wasserstein=float(wasserstein_distance(p, r)))
    rng = np.random.default_rng(seed)
    boot_ks, boot_w = np.empty(int(n_boot)), np.empty(int(n_boot))
    for b in range(int(n_boot)):
        pb, rb = rng.choice(p, len(p)), rng.choice(r, len(r))
        boot_ks[b] = ks_2samp(pb, rb).statistic
        boot_w[b] = wasserstein_distance(pb, rb)
    q = ((100 - ci) / 2, 100 - (100 - ci) / 2)
    if n_boot > 0:
        out["ks_ci"] = tuple(float(v) for v in np.percentile(boot_ks, q))
        out["wasserstein_ci"] = tuple(float(v) for v in np.percentile(boot_w, q))
    else:
        out["ks_ci"] = out["wasserstein_ci"] = (math.nan, math.nan)
    return out
