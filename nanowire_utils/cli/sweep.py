"""``nanowire-utils sweep``: run, resume or inspect a parameter sweep (the paper's Table 1).

torch is imported only inside the handler, so ``nanowire-utils --help`` stays fast.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run or resume a parameter sweep (the paper's Table 1 by default), one folder per run",
        description=(
            "Train and evaluate every run of a sweep file (default: table1, the paper's Table 1) at a scale, "
            "one folder per run under OUT/runs, and write OUT/results.csv with its provenance. Rerunning "
            "the same command resumes: finished runs are skipped, interrupted ones resume from their "
            "checkpoint, and finished runs that lack real-image scores (the images could not be had) are "
            "scored from their saved models. Examples: --scale smoke (CI, a minute); --scale cpu (about 2.5 h on 2 cores); "
            "--scale paper --devices cuda:0,cuda:1 (one run per GPU); --scale paper --executor submitit "
            "--slurm slurm_partition=gpu --slurm timeout_min=600 (one Slurm job per run); --status."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="sweep folder (created, or resumed)")
    p.add_argument("--sweep", default="table1", help="sweep file: 'table1' (shipped) or a YAML file")
    p.add_argument("--scale", default="cpu", help="scale defined in the sweep file: smoke, cpu, paper")
    p.add_argument("--runs", default=None, help="only these runs or subsets, comma-separated (e.g. grid, run13,run14)")
    p.add_argument("--data-root", default=None, help="folder for the synthetic datasets (default: OUT/data)")
    p.add_argument(
        "--devices",
        default=None,
        help="local executor: 'cuda:0,cuda:1' runs one run per GPU in parallel; 'cpu,cpu' two CPU workers; "
        "default: one run after the other (all visible GPUs when there are several)",
    )
    p.add_argument("--executor", choices=("local", "submitit"), default="local", help="where runs execute")
    p.add_argument(
        "--cluster",
        choices=("slurm", "local", "auto"),
        default="slurm",
        help="submitit cluster: slurm, local (submitit's LocalExecutor, for testing) or auto",
    )
    p.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="submitit/Slurm parameter, repeatable: slurm_partition=gpu, timeout_min=600, gpus_per_node=1, "
        "cpus_per_task=8, mem_gb=32, slurm_account=..., slurm_array_parallelism=8",
    )
    p.add_argument("--no-wait", action="store_true", help="submitit: return after submitting the jobs")
    p.add_argument("--retry-failed", action="store_true", help="train runs marked failed again")
    p.add_argument(
        "--as-recorded",
        action="store_true",
        help="resume exactly the runs and configurations OUT/sweep.json records (even if presets changed)",
    )
    p.add_argument("--status", action="store_true", help="show which runs are done, running and failed, and exit")
    p.add_argument("--list", action="store_true", help="print the planned runs and their keys, and exit")
    p.add_argument(
        "--export",
        default=None,
        metavar="CSV",
        help="write OUT's results table (finished and failed runs so far) with its provenance to CSV, and exit",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run_sweep_command)


def _slurm_params(items) -> dict:
    from nanowire_utils.overrides import parse_assignment

    return dict(parse_assignment(item) for item in items)


def run_sweep_command(args) -> int:
    import json
    import logging
    import shlex
    import sys

    from nanowire_utils.sweep.runner import format_status, run_sweep, sweep_status

    if args.status:
        print(format_status(sweep_status(args.out)))
        return 0
    if args.export:
        from nanowire_utils.sweep.results import write_results

        path = write_results(args.out, csv_path=args.export)
        print(f"wrote {path} and {path.with_name(path.stem + '.provenance.json').name}")
        print(format_status(sweep_status(args.out)))
        return 0
    if args.list:
        import pandas as pd

        from nanowire_utils.sweep.spec import load_sweep

        sw = load_sweep(args.sweep)
        plan = sw.plan(args.scale, args.runs)
        rows = [{"run": r.id, "paper": r.paper, "SEED": r.seed, **r.keys} for r in plan]
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(pd.DataFrame(rows).set_index("run").to_string())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "nanowire-utils " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    out = run_sweep(
        args.out,
        sweep=args.sweep,
        scale=args.scale,
        runs=args.runs,
        data_root=args.data_root,
        devices=args.devices,
        executor=args.executor,
        cluster=None if args.cluster == "auto" else args.cluster,
        slurm=_slurm_params(args.slurm),
        retry_failed=args.retry_failed,
        as_recorded=args.as_recorded,
        wait=not args.no_wait,
        progress=not args.no_progress,
        command=command,
    )
    if isinstance(out, dict):  # submitted without waiting
        print(json.dumps(out))
        return 0
    df = sweep_status(args.out)
    print(format_status(df))
    counts = df.attrs.get("counts", {})
    print(f"results: {args.out}/results.csv")
    return 1 if counts.get("failed") else 0
