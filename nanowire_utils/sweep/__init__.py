"""Parameter sweeps: the paper's Table 1 as a runnable, resumable experiment (chapter 5).

* :mod:`.spec`: sweep files (``table1.yaml``), checked and planned per scale.
* :mod:`.runner`: :func:`run_sweep` (sequential, one run per GPU, or Slurm through submitit),
  :func:`sweep_status`, one folder per run.
* :mod:`.results`: the tidy results table (CSV with provenance), its checks and the analyses
  of chapter 5 (noise band, model selection).
"""

from pathlib import Path

from nanowire_utils.sweep.spec import PlannedRun, Sweep, column_mapping, duplicate_results, load_sweep, plan_table

#: Committed results tables (CSV, provenance beside), made by the runner: ``results/<sweep>_<scale>.csv``.
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def committed_results(sweep: str = "table1", scale: str = "cpu") -> Path:
    """Path of the committed results table of ``sweep`` at ``scale`` (chapter 5 reads it)."""
    return RESULTS_DIR / f"{sweep}_{scale}.csv"


__all__ = [
    "PlannedRun",
    "RESULTS_DIR",
    "Sweep",
    "column_mapping",
    "committed_results",
    "duplicate_results",
    "load_sweep",
    "plan_table",
]
