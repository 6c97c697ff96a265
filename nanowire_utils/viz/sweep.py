"""Figures of chapter 5 (the sweep): AP against epochs per dataset size, single-parameter
changes against the seed-to-seed noise band, and synthetic against real-image scores.

Every function takes the results table of :func:`nanowire_utils.sweep.results.load_results`
and returns a matplotlib Figure; runs missing from the table are left out of the figures.
"""

from __future__ import annotations

import math

import numpy as np

from nanowire_utils.paper import MODALITIES, MODALITY_TITLES


def _first_seed(df):
    return df[(df["status"] == "done") & (df["replicate_of"].isna())] if "replicate_of" in df else df


def plot_epochs_grid(df, metric: str = "test_segm_AP", subset: str = "grid"):
    """AP against Table 1's epochs, one line per dataset size: the paper (left) and ours (right)."""
    import matplotlib.pyplot as plt

    from nanowire_utils import paper

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    grid_runs = df.attrs.get("provenance", {}).get("subsets", {}).get(subset)
    t1 = [r for r in paper.table1() if r["No."] <= 12]
    sizes = sorted({r["Dataset size"] for r in t1})
    colors = dict(zip(sizes, plt.cm.viridis(np.linspace(0, 0.85, len(sizes)))))
    for size in sizes:
        rows = [r for r in t1 if r["Dataset size"] == size]
        a.plot(
            [r["Epochs"] for r in rows], [r["AP segm"] for r in rows], "o-", color=colors[size], label=f"{size} images"
        )
    a.set(title="paper, Table 1 (synthetic test)", xlabel="epochs", ylabel="AP segm (%)")
    a.legend(fontsize=8)
    ours = _first_seed(df)
    if grid_runs is not None:
        ours = ours[ours["run"].isin(grid_runs)]
    for size in sizes:
        part = ours[ours["DATASET.N_IMAGES"] == size].sort_values("paper_epochs") if len(ours) else ours
        if len(part):
            b.plot(part["paper_epochs"], part[metric], "o-", color=colors[size], label=f"{size} images")
    if len(ours) and ours["DATASET.N_IMAGES"].isin(sizes).sum() == 0:  # another scale (smoke): its own sizes
        for size, part in ours.groupby("DATASET.N_IMAGES"):
            part = part.sort_values("paper_epochs")
            b.plot(part["paper_epochs"], part[metric], "o-", label=f"{size} images")
    scale = df.attrs.get("provenance", {}).get("scale", "?")
    b.set(title=f"this book, scale {scale!r} ({metric})", xlabel="Table 1 epochs (scaled in training)", ylabel=metric)
    if b.get_legend_handles_labels()[0]:
        b.legend(fontsize=8)
    else:
        b.text(0.5, 0.5, "no grid run finished yet", ha="center", va="center", transform=b.transAxes)
    return fig


def plot_single_parameter(df, metric: str = "test_segm_AP"):
    """Each single-parameter change of Table 1 (columns) with the baseline's seed band (shaded:
    the range the seeds spanned; line: their mean): ours (top) and the paper's, which has no
    noise estimate (bottom)."""
    import matplotlib.pyplot as plt

    from nanowire_utils import paper
    from nanowire_utils.sweep.results import SINGLE_PARAMETER, noise_band

    subsets = df.attrs.get("provenance", {}).get("subsets", {})
    band = noise_band(df, metric)
    t1 = {r["No."]: r for r in paper.table1()}
    col_of = {
        "SOLVER.BASE_LR": "LR",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": "ROI head",
        "MODEL.RPN.IOU_THRESHOLDS[1]": "IoU thr",
        "MODEL.RPN.NMS_THRESH": "NMS",
    }
    fig, axes = plt.subplots(2, len(SINGLE_PARAMETER), figsize=(13, 6), constrained_layout=True, squeeze=False)
    done = df[df["status"] == "done"]
    for j, (name, key) in enumerate(SINGLE_PARAMETER.items()):
        top, bottom = axes[0, j], axes[1, j]
        ids = [r for r in subsets.get(name, []) if r in done.index]
        if band["n"] > 1:
            top.axhspan(band["min"], band["max"], color="0.85", label=f"seed range (n={band['n']})")
        if band["n"]:
            top.axhline(band["mean"], color="0.4", lw=1, ls="--", label="seed mean")
        xs = [float(done.loc[r, key]) for r in ids]
        ys = [float(done.loc[r, metric]) for r in ids]
        top.plot(xs, ys, "o", color="C0", label="runs")
        for r, x, y in zip(ids, xs, ys):
            top.annotate(
                str(int(done.loc[r, "paper_run"])), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8
            )
        top.set_title(f'Table 1 column "{col_of[key]}"', fontsize=10)  # the key is the x label below
        top.set(ylabel=metric if j == 0 else None)
        pr = [t1[n] for n in (13, 14, 15, 16, 17, 18, 19, 20, 10) if n in t1]
        vals = sorted({r[col_of[key]] for r in pr if _varies(r, col_of[key], t1[10])} | {t1[10][col_of[key]]})
        pys = [
            next(
                r["AP segm"] for r in pr if r[col_of[key]] == v and (_varies(r, col_of[key], t1[10]) or r["No."] == 10)
            )
            for v in vals
        ]
        bottom.plot(vals, pys, "s-", color="C3")
        bottom.axhline(t1[10]["AP segm"], color="0.4", lw=1, ls="--")
        bottom.set(xlabel=key, ylabel="paper AP segm (%)" if j == 0 else None)
        if j == 0:
            top.legend(fontsize=7)
            bottom.set_title("paper (one seed each)", fontsize=9, loc="left")
    return fig


def _varies(row, col, base):
    """Table 1 row differs from run 10 only in ``col``."""
    keys = ("Epochs", "Dataset size", "LR", "ROI head", "IoU thr", "NMS")
    return all((row[k] == base[k]) == (k != col) for k in keys)


def plot_selection(df, synthetic: str = "test_segm_AP"):
    """Synthetic test AP (x) against each real image's segm AP (y), one point per run labelled
    with its Table 1 number; the run the synthetic AP would pick is circled red, the best
    run on the image green."""
    import matplotlib.pyplot as plt

    ours = _first_seed(df)
    mods = [m for m in MODALITIES if f"{m}_segm_AP" in ours]
    fig, axes = plt.subplots(
        1, max(1, len(mods)), figsize=(4.3 * max(1, len(mods)), 3.8), constrained_layout=True, squeeze=False
    )
    if ours.empty or not mods:
        axes[0, 0].text(0.5, 0.5, "no finished run", ha="center", transform=axes[0, 0].transAxes)
        return fig
    pick = ours[synthetic].astype(float).idxmax()
    for ax, mod in zip(axes[0], mods):
        y = ours[f"{mod}_segm_AP"].astype(float)
        x = ours[synthetic].astype(float)
        ax.plot(x, y, "o", color="C0")
        for r in ours.index:
            if not (math.isnan(x[r]) or math.isnan(y[r])):
                ax.annotate(
                    str(int(ours.loc[r, "paper_run"])),
                    (x[r], y[r]),
                    textcoords="offset points",
                    xytext=(4, 3),
                    fontsize=8,
                )
        ax.plot(
            [x[pick]],
            [y[pick]],
            "o",
            ms=13,
            mfc="none",
            mec="C3",
            label=f"best synthetic (run {int(ours.loc[pick, 'paper_run'])})",
        )
        if y.notna().any():
            best = y.idxmax()
            ax.plot(
                [x[best]],
                [y[best]],
                "o",
                ms=17,
                mfc="none",
                mec="C2",
                label=f"best here (run {int(ours.loc[best, 'paper_run'])})",
            )
        ax.set(title=MODALITY_TITLES[mod], xlabel=f"synthetic {synthetic}", ylabel="real image segm AP (%)")
        ax.legend(fontsize=7)
    return fig
