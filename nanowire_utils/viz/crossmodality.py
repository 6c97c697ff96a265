"""Figures of chapter 6: preprocessing, predictions and statistics of one modality."""

from __future__ import annotations

from nanowire_utils.chapters.crossmodality import TITLES, ModalityResult, particle_tables, reference_overlay


def plot_preprocessing(result: ModalityResult):
    """The image as read, what the network saw (after preprocessing and rescaling), and their gray-value histograms.

    Parameters
    ----------
    result : ModalityResult
        One modality's result from :mod:`nanowire_utils.chapters.crossmodality`.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: the image, the network input and the histograms.
    """
    import matplotlib.pyplot as plt

    from nanowire_utils.viz.plotting import intensity_histograms

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    axes[0].imshow(result.image, cmap="gray")
    axes[0].set_title(f"{TITLES[result.modality]} as read {result.image.shape[1]}x{result.image.shape[0]}")
    axes[1].imshow(result.model_input, cmap="gray", vmin=0, vmax=1)
    h, w = result.model_input.shape
    axes[1].set_title(f"network input {w}x{h} (scale {result.input_scale:g})")
    for ax in axes[:2]:
        ax.set_axis_off()
    intensity_histograms({"as read": result.image, "network input": result.model_input}, ax=axes[2])
    fig.tight_layout()
    return fig


def plot_predictions(result: ModalityResult):
    """Predicted instances and the TP/FN/FP pixel map, as in the paper's Figs. 7, 9, 11.

    TP pixels blue, FN red, FP green; before (top row) and after (bottom row)
    post-processing.

    Parameters
    ----------
    result : ModalityResult
        One modality's result from :mod:`nanowire_utils.chapters.crossmodality`.

    Returns
    -------
    matplotlib.figure.Figure
        A 2 x 3 grid of panels.
    """
    import matplotlib.pyplot as plt

    from nanowire_utils.viz.plotting import plot_comparison

    h, w = result.image.shape[:2]
    fig, axes = plt.subplots(2, 3, figsize=(13, 2 * 13 / 3 * h / w + 1.2))
    for row, (inst, label) in enumerate(((result.pred, "raw"), (result.post, "post-processed"))):
        plot_comparison(inst, result.ref, result.image, axes=axes[row])
        axes[row, 1].set_title(f"{label}: {len(inst)} instances")
    axes[0, 0].set_title(f"{TITLES[result.modality]} ({len(result.ref)} reference instances)")
    axes[1, 0].imshow(reference_overlay(result), interpolation="nearest")
    axes[1, 0].set_title("reference (by eye)")
    fig.tight_layout()
    return fig


def plot_statistics(result: ModalityResult, which: str = "post", bins: int = 20):
    """Histograms with KDEs of area, aspect ratio and orientation, predicted vs reference (the paper's Figs. 8, 10, 12).

    Parameters
    ----------
    result : ModalityResult
        One modality's result from :mod:`nanowire_utils.chapters.crossmodality`.
    which : str
        ``"post"`` (post-processed predictions) or ``"raw"``.
    bins : int
        Number of histogram bins.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per descriptor.

    Raises
    ------
    ValueError
        When ``which`` is neither ``"post"`` nor ``"raw"``.
    """
    from nanowire_utils.viz.statistics import plot_distributions

    pred_df, ref_df = particle_tables(result, which=which)
    fig = plot_distributions(pred_df, ref_df, bins=bins, labels=(f"prediction ({which})", "reference"))
    fig.suptitle(f"{TITLES[result.modality]}: particle statistics", y=1.02)
    return fig


def plot_domain_randomisation(summary, measure: str = "segm AP post", setting: str = "estimated scale"):
    """Bars of each training set's synthetic test segm AP and its ``measure`` on each real image
    (and their mean) at ``setting``: mean over training seeds, ± 1 SD error bars, single seeds as dots.

    Parameters
    ----------
    summary : dict or path
        The dict of :func:`~nanowire_utils.chapters.crossmodality.load_domain_randomisation` or
        the path of its ``summary.json``.
    measure : str
        Real-image measure: ``"segm AP post"`` or ``"accuracy post"`` (percent).
    setting : str
        How the real images were fed: ``"estimated scale"`` or ``"as is"``.

    Returns
    -------
    matplotlib.figure.Figure
        One panel for the synthetic test set, one per real image and one for their mean.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from nanowire_utils.chapters.crossmodality import DR_MEAN_OF_THREE, MODALITIES, load_domain_randomisation

    if not isinstance(summary, dict):
        summary = load_domain_randomisation(summary)
    panels = [("synthetic test", "synthetic segm AP")]
    panels += [(TITLES[m], f"{TITLES[m]} | {setting} | {measure}") for m in MODALITIES]
    panels.append((DR_MEAN_OF_THREE, f"{DR_MEAN_OF_THREE} | {setting} | {measure}"))
    names = list(summary["sets"])
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.4))
    x = np.arange(len(names))
    for ax, (title, key) in zip(axes, panels):
        stats = [summary["sets"][n][key] for n in names]
        means = [s["mean"] for s in stats]
        sds = [s["sd"] or 0.0 for s in stats]
        ax.bar(x, means, yerr=sds, capsize=3, color=[f"C{i}" for i in range(len(names))], alpha=0.7)
        for i, s in enumerate(stats):
            ax.plot([i] * len(s["values"]), s["values"], "k.", ms=4)
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(title if key.startswith("synthetic") else f"{title}\n({setting})", fontsize=10)
    axes[0].set_ylabel("segm AP (%)" if measure.startswith("segm") else measure)
    seeds = len(summary["seeds"])
    fig.suptitle(
        f"Training sets, {summary['preset']!r} preset, {summary['iterations']} iterations, "
        f"{seeds} seed{'s' if seeds > 1 else ''} (bars: mean ± SD; dots: seeds)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
