"""Particle-statistics figures: predicted against reference distributions."""

from __future__ import annotations

import numpy as np

from nanowire_utils.real.statistics import column_values


def plot_distributions(
    pred_df,
    ref_df,
    columns=("area", "aspect_ratio", "orientation"),
    *,
    bins: int = 20,
    labels=("prediction", "reference"),
    axes=None,
):
    """Predicted vs reference distributions of particle descriptors, like the paper's Figs. 8, 10 and 12.

    Histograms (density) with Gaussian kernel density estimates, one panel per column.
    Columns with fewer than two finite values in a table get a histogram but no KDE for
    that table.

    Parameters
    ----------
    pred_df, ref_df : pandas.DataFrame
        Predicted and reference tables from
        :func:`~nanowire_utils.real.statistics.particle_table`.
    columns : sequence of str
        Columns to plot (area in pixels^2, orientation in degrees, ...).
    bins : int
        Number of histogram bins.
    labels : tuple of str
        Legend labels of the predicted and reference tables.
    axes : sequence of matplotlib.axes.Axes or None
        One axes per column; a new figure is made when None.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels.

    Raises
    ------
    ValueError
        When a column is not in a table.
    """
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    columns = list(columns)
    if axes is None:
        fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    for ax, col in zip(axes, columns):
        p, r = column_values(pred_df, col), column_values(ref_df, col)
        both = np.concatenate([p, r])
        if col == "orientation":
            edges = np.linspace(0, 180, bins + 1)
        elif len(both):
            edges = np.linspace(both.min(), both.max() if both.max() > both.min() else both.min() + 1, bins + 1)
        else:
            edges = bins
        for v, lab, c in ((p, labels[0], "tab:orange"), (r, labels[1], "tab:blue")):
            if len(v) == 0:
                continue
            ax.hist(v, bins=edges, density=True, alpha=0.35, color=c, label=f"{lab} (n={len(v)})")
            if len(v) >= 2 and np.ptp(v) > 0:
                xs = (
                    np.linspace(edges[0], edges[-1], 200)
                    if not np.isscalar(edges)
                    else np.linspace(v.min(), v.max(), 200)
                )
                ax.plot(xs, gaussian_kde(v)(xs), color=c)
        ax.set_xlabel(
            {"area": "area (px)", "orientation": "orientation (deg)", "aspect_ratio": "aspect ratio"}.get(col, col)
        )
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
