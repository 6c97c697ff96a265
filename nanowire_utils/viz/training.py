"""Training curves of a run folder: losses, learning rate and validation AP."""

from __future__ import annotations

from nanowire_utils.maskrcnn.engine import read_metrics
from nanowire_utils.maskrcnn.torchvision_engine import LOSS_KEYS


def plot_training_curves(run_dir):
    """Losses (left) and validation AP (right) vs iteration, from ``RUN_DIR/metrics.jsonl``.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A training run folder.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: training losses (log scale) and validation AP (percent).
    """
    import matplotlib.pyplot as plt

    recs = read_metrics(run_dir)
    tr = [r for r in recs if r.get("kind") == "train"]
    ev = [r for r in recs if r.get("kind") == "eval"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    if tr:
        its = [r["iteration"] for r in tr]
        for k in ("loss",) + LOSS_KEYS:
            if k in tr[0]:
                a1.plot(
                    its,
                    [r[k] for r in tr],
                    lw=2 if k == "loss" else 1,
                    label=k.replace("loss_", "") if k != "loss" else "total",
                )
        a1.set_yscale("log")
        a1.legend(fontsize=7, ncol=2)
    a1.set(xlabel="iteration", ylabel="training loss", title="Losses")
    if ev:
        its = [r["iteration"] for r in ev]
        for t, style in (("bbox", "o-"), ("segm", "s-")):
            a2.plot(its, [r[f"{t}/AP"] for r in ev], style, label=f"AP {t}")
            a2.plot(its, [r[f"{t}/AP50"] for r in ev], style, alpha=0.4, label=f"AP50 {t}")
        a2.legend(fontsize=7)
    else:
        a2.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=a2.transAxes)
    a2.set(xlabel="iteration", ylabel="validation AP (%)", title="Validation AP", ylim=(0, 100))
    return fig
