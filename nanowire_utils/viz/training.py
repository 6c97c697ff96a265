"""Training curves: the losses and validation AP of a run folder, and the test-AP curves that
benchmarks/bench_training.py measured for several trainings."""

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


def plot_benchmark_curves(reports: dict, x: str = "iteration", title: str | None = None):
    """Synthetic test AP of several trainings, as ``benchmarks/bench_training.py`` measured them.

    Parameters
    ----------
    reports : dict
        ``{label: report}``, each report a ``bench_training.json`` (a path, or its content as a
        dict) holding ``curve.points`` (iteration, training minutes, bbox and segm AP in %).
    x : {"iteration", "minutes"}
        The horizontal axis: iterations, or minutes of training on the machine that ran it.
    title : str or None
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, segm AP and bbox AP; each curve's label ends with its training minutes.

    Raises
    ------
    FileNotFoundError
        When a report path does not exist.
    ValueError
        When a report holds no curve, or ``x`` is neither axis.
    """
    import json
    from pathlib import Path

    import matplotlib.pyplot as plt

    if x not in ("iteration", "minutes"):
        raise ValueError(f"x must be 'iteration' or 'minutes', not {x!r}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True, sharey=True)
    for label, report in reports.items():
        if not isinstance(report, dict):
            path = Path(report)
            if not path.is_file():
                raise FileNotFoundError(f"no benchmark report {path}; run benchmarks/bench_training.py to make it")
            report = json.loads(path.read_text())
        pts = report.get("curve", {}).get("points")
        if not pts:
            raise ValueError(f"the report of {label!r} holds no AP curve (run bench_training.py without --skip-curve)")
        xs = [p[x] for p in pts]
        label = f"{label} ({pts[-1]['minutes']:.1f} min)"
        line = axes[0].plot(xs, [p["segm_AP"] for p in pts], "s-", label=label)[0]
        axes[1].plot(xs, [p["bbox_AP"] for p in pts], "o-", color=line.get_color(), label=label)
    for ax, what in zip(axes, ("segm AP", "bbox AP")):
        ax.set(xlabel="iteration" if x == "iteration" else "training minutes", title=what, ylim=(0, 100))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("synthetic test AP (%)")
    axes[1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
