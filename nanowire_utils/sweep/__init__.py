"""Parameter sweeps: the paper's Table 1 as a runnable, resumable experiment (chapter 5).

* :mod:`.spec`: sweep files (``table1.yaml``), checked and planned per scale.
* :mod:`.runner`: :func:`run_sweep` (sequential, one run per GPU, or Slurm through submitit),
  :func:`sweep_status`, one folder per run.
* :mod:`.results`: the tidy results table (CSV with provenance), its checks and the analyses
  of chapter 5 (noise band, model selection).
"""

from nanowire_utils.sweep.spec import PlannedRun, Sweep, column_mapping, duplicate_results, load_sweep

__all__ = ["PlannedRun", "Sweep", "column_mapping", "duplicate_results", "load_sweep"]
