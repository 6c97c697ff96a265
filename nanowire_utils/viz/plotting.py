"""Small figure helpers shared by the book's notebooks.

They keep plotting code out of the notebook cells: each returns the matplotlib objects it drew
on, so a notebook can add titles or save the figure. Matplotlib is imported inside the
functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_range
from nanowire_utils.instances import Instances


def instance_colors(n: int, seed: int = 0) -> np.ndarray:
    """Distinct colours for instance masks.

    Colours cycle through matplotlib's ``tab20`` in a shuffled order, so that neighbouring
    labels (wires deposited one after another, often close together) get unlike colours.

    Parameters
    ----------
    n : int
        Number of colours.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray of float, shape (n, 3)
        RGB colours in [0, 1].
    """
    import matplotlib

    base = np.asarray(matplotlib.colormaps["tab20"].colors, dtype=float)
    order = np.random.default_rng(seed).permutation(len(base))
    return base[order[np.arange(n) % len(base)]]


def overlay_masks(
    image: np.ndarray, masks: np.ndarray, ax=None, alpha: float = 0.45, outline: bool = True, seed: int = 0
):
    """Draw a gray image with instance masks overlaid in distinct colours.

    Parameters
    ----------
    image : numpy.ndarray, shape (H, W) or (H, W, 3)
        2D gray image (any dtype; displayed with its own min-max range) or RGB.
    masks : numpy.ndarray of bool, shape (N, H, W)
        One mask per instance, matching the image's (H, W). Overlapping masks are blended
        in the order given.
    ax : matplotlib.axes.Axes or None
        Matplotlib axes to draw on; a new figure is made if None.
    alpha : float
        Opacity of the mask colours (0-1).
    outline : bool
        Also draw each mask's outline in its colour, so overlapping wires stay apart.
    seed : int
        Seed of the colour order (:func:`instance_colors`).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        When the masks do not match the image's size or ``alpha`` is outside [0, 1].
    """
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must have shape (N, {image.shape[0]}, {image.shape[1]}), got {masks.shape}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    gray = image.astype(float)
    if gray.ndim == 2:
        span = gray.max() - gray.min()
        gray = (gray - gray.min()) / (span if span > 0 else 1.0)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:
        rgb = gray / max(gray.max(), 1.0) if gray.max() > 1 else gray
    for mask, color in zip(masks, instance_colors(len(masks), seed)):
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * color
        if outline:
            rgb[find_boundaries(mask, mode="inner")] = color
    ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
    ax.set_axis_off()
    return ax


def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 3.0,
    cmap: str = "gray",
):
    """Show images side by side in a grid.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        The images (at least one).
    titles : sequence of str or None
        One title per image.
    ncols : int
        Panels per row.
    size : float
        Width (and height) of one panel (inches).
    cmap : str
        Matplotlib colormap for gray images.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : numpy.ndarray of matplotlib.axes.Axes
        The panels, flattened; unused panels are hidden.

    Raises
    ------
    ValueError
        When there is no image, or titles and images differ in number.
    """
    import matplotlib.pyplot as plt

    if len(images) == 0:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    axes = axes.ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], cmap=cmap, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=10)
    fig.tight_layout()
    return fig, axes


def intensity_histograms(images: Mapping[str, np.ndarray], ax=None, bins: int = 64, log: bool = True):
    """Overlaid gray-value histograms of several images, as densities on a 0-1 scale.

    Each image is divided by its dtype's full range (255 for uint8, 65535 for uint16, 1 for
    floats), so an 8-bit real image and a float rendering share one axis.

    Parameters
    ----------
    images : mapping of str to numpy.ndarray
        Legend label to image.
    ax : matplotlib.axes.Axes or None
        Axes to draw on; a new figure is made if None.
    bins : int
        Number of bins over [0, 1].
    log : bool
        Use a logarithmic count axis, which keeps the few bright overlap pixels visible
        next to the large background peak.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    edges = np.linspace(0, 1, bins + 1)
    for name, img in images.items():
        img = np.asarray(img)
        full = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
        values = img.astype(float).ravel() / full
        ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.6, label=name, log=log)
    ax.set_xlabel("gray value (fraction of full scale)")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    return ax


def lognormal_pdf(x: np.ndarray, mean: float, std: float, value_range: tuple[float, float]) -> np.ndarray:
    """Density of a log-normal with the given ``mean`` and ``std``, truncated to ``value_range``.

    This is the distribution :class:`~nanowire_utils.synth.geometry.NetworkParams` documents for wire
    lengths and widths (drawn log-normal, redrawn until inside the range), so a histogram of
    generated values can be compared with what was asked for.

    Parameters
    ----------
    x : numpy.ndarray of float
        Where to evaluate the density (any unit, e.g. voxels), any shape.
    mean, std : float
        Mean and standard deviation of the untruncated log-normal (units of ``x``, > 0).
    value_range : tuple of float
        ``(low, high)`` truncation range (units of ``x``).

    Returns
    -------
    numpy.ndarray of float
        The density (per unit of ``x``), same shape as ``x``, 0 outside the range.

    Raises
    ------
    ValueError
        When ``mean`` or ``std`` is not positive.
    """
    if mean <= 0 or std <= 0:
        raise ValueError(f"mean and std must be > 0, got mean={mean}, std={std}")
    lo, hi = value_range
    sigma2 = np.log1p((std / mean) ** 2)
    mu = np.log(mean) - sigma2 / 2
    grid = np.linspace(lo, hi, 2001)

    def raw(v):
        v = np.asarray(v, dtype=float)
        out = np.zeros_like(v)
        pos = v > 0
        out[pos] = np.exp(-((np.log(v[pos]) - mu) ** 2) / (2 * sigma2)) / (v[pos] * np.sqrt(2 * np.pi * sigma2))
        return out

    norm = np.trapezoid(raw(grid), grid) if hasattr(np, "trapezoid") else np.trapz(raw(grid), grid)
    x = np.asarray(x, dtype=float)
    return np.where((x >= lo) & (x <= hi), raw(x) / norm, 0.0)


def hist_vs_expected(
    values, expected_x, expected_pdf, ax=None, bins: int = 30, xlabel: str = "", label: str = "generated"
):
    """Histogram of generated ``values`` (as a density) with the requested density drawn over it.

    Parameters
    ----------
    values : array_like of float
        The generated values.
    expected_x, expected_pdf : array_like of float
        The curve of the distribution that was asked for (e.g. from
        :func:`lognormal_pdf`), same length.
    ax : matplotlib.axes.Axes or None
        Axes to draw on; a new figure is made if None.
    bins : int
        Number of histogram bins.
    xlabel : str
        Label of the x axis (with its unit).
    label : str
        Legend label of the histogram.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    values = np.asarray(values, dtype=float)
    ax.hist(values, bins=bins, density=True, alpha=0.6, color="tab:blue", label=f"{label} (n={len(values)})")
    ax.plot(expected_x, expected_pdf, color="black", lw=1.8, label="requested")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8)
    return ax


def overlay_array(image, instances: Instances, alpha: float = 0.45, seed: int = 0) -> np.ndarray:
    """Picture of an image in gray with each instance tinted in its own colour and outlined.

    Parameters
    ----------
    image : numpy.ndarray or str or pathlib.Path
        An array (gray or RGB, any dtype) or the path of an image file.
    instances : Instances
        Instances of that image.
    alpha : float
        Opacity of the instance colours, in [0, 1].
    seed : int
        Seed of the colours (:func:`instance_colors`).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        The RGB picture.

    Raises
    ------
    ValueError
        When ``alpha`` is outside [0, 1] or the instances are for another image size.
    """
    from skimage.segmentation import find_boundaries

    from nanowire_utils.real.preprocessing import read_image, to_gray_float

    check_range("alpha", alpha, 0, 1)
    gray = to_gray_float(read_image(image) if isinstance(image, (str, Path)) else image)
    if len(instances) and instances.image_shape != gray.shape:
        raise ValueError(f"instances are for an image of shape {instances.image_shape}, image is {gray.shape}")
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    for color, m in zip(instance_colors(len(instances), seed), instances.masks):
        rgb[m] = (1 - alpha) * rgb[m] + alpha * color
        rgb[find_boundaries(m, mode="inner")] = color
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def overlay(image, instances: Instances, ax=None, alpha: float = 0.45, path=None, title=None):
    """Matplotlib figure of ``image`` with each instance drawn in its own colour.

    Parameters
    ----------
    image : numpy.ndarray or str or pathlib.Path
        The image the instances were predicted on (array or path).
    instances : Instances
        Predictions or references for it.
    ax : matplotlib.axes.Axes or None
        Draw into this Axes; None makes a new figure (no pyplot state, safe in loops).
    alpha : float
        Opacity of the instance colours (0-1).
    path : str or pathlib.Path or None
        Also save the figure as a PNG here.
    title : str or None
        Axes title; default ``"<n> instances"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.
    """
    arr = overlay_array(image, instances, alpha=alpha)
    if ax is None:
        from matplotlib.figure import Figure

        h, w = arr.shape[:2]
        fig = Figure(figsize=(6, 6 * h / w), dpi=max(100, int(np.ceil(w / 6))))
        ax = fig.add_axes([0, 0, 1, 1])
    else:
        fig = ax.figure
    ax.imshow(arr, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(
        title if title is not None else f"{len(instances)} instances",
        y=1.0,
        pad=-14,
        color="white",
        fontsize=9,
        backgroundcolor=(0, 0, 0, 0.4),
    )
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return fig


def plot_comparison(pred, ref, image=None, *, axes=None, title: str | None = None, show_scores: bool = True):
    """Figure like the paper's Figs. 7, 9, 11: predictions against references.

    Parameters
    ----------
    pred : Instances
        Predicted instances.
    ref : Instances
        Reference instances of the same image.
    image : numpy.ndarray or None
        With it, three panels (image, predicted instances over the image, comparison
        map); without, the comparison map alone.
    axes : sequence of matplotlib.axes.Axes or None
        Three axes (one without ``image``) to draw on; a new figure is made if None.
    title : str or None
        Figure title.
    show_scores : bool
        Give the foreground accuracy (percent) in the map's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    ValueError
        When ``axes`` holds the wrong number of axes, or the image sizes differ.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from nanowire_utils.real.evaluation import FN_COLOR, FP_COLOR, TP_COLOR, comparison_map, foreground_accuracy

    n = 3 if image is not None else 1
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4.5), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        if len(axes) != n:
            raise ValueError(f"axes must hold {n} axes (image given: {image is not None}), got {len(axes)}")
        fig = axes[0].figure
    if image is not None:
        from nanowire_utils.real.preprocessing import to_gray_float

        axes[0].imshow(to_gray_float(image), cmap="gray")
        axes[0].set_title("image")
        axes[1].imshow(overlay_array(image, pred))
        axes[1].set_title(f"prediction ({len(pred)} instances)")
    acc = foreground_accuracy(pred, ref)
    axes[-1].imshow(comparison_map(pred, ref))
    axes[-1].set_title(f"TP/FN/FP, accuracy {acc * 100:.1f} %" if show_scores else "TP/FN/FP")
    axes[-1].legend(
        handles=[
            Patch(color=np.array(c) / 255, label=lab)
            for c, lab in ((TP_COLOR, "TP"), (FN_COLOR, "FN"), (FP_COLOR, "FP"))
        ],
        loc="lower right",
        fontsize=8,
        framealpha=0.8,
    )
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig
