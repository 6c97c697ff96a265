"""Run a sweep: one folder per run, resumable, sequential, one run per GPU, or on Slurm.

Sweep folder layout::

    SWEEP/sweep.json                 the manifest: sweep file (name, text, sha256), scale, data
                                     root, and every planned run's full configuration
    SWEEP/runs/<id>/config.json      the engine's run folder (config, metrics.jsonl,
    SWEEP/runs/<id>/metrics.jsonl    checkpoints/, model_final.pth; see maskrcnn.engine)
    SWEEP/runs/<id>/model_final.pth
    SWEEP/runs/<id>/train.log        the run's log (training, evaluation, errors)
    SWEEP/runs/<id>/status.json      state: running / done / failed (error and the log's last lines)
    SWEEP/runs/<id>/result.json      the run's row of the results table (written last: done)
    SWEEP/runs/<id>/lock.json        held while a process works on the run (heartbeat)
    SWEEP/results.csv                one row per finished or failed run (see .results)
    SWEEP/results.provenance.json    commit, date, machine, command, which runs finished
    DATA_ROOT/<generator>_<size>px_n<N>_seed<S>/     training data of each dataset size
    DATA_ROOT/<generator>_<size>px_test<N>_seed<S+1>/  the common synthetic test set

Resuming: a run with ``result.json`` is skipped; a run with a checkpoint resumes from it
(``engine.train(resume=True)``, bit-exact); a failed run is skipped unless ``retry_failed``.
A sweep folder made from another sweep file, another scale or a changed configuration is
refused with the difference named (``as_recorded=True`` resumes exactly what the manifest
records instead, whatever the presets say today).

Executors: ``"local"`` runs in this process one run after the other, or, with ``devices``
naming several devices, one worker process per device (one run per GPU); ``"submitit"``
submits one job per run through submitit (``cluster="slurm"`` on a Slurm cluster,
``"local"`` for submitit's LocalExecutor, ``None`` to let submitit choose).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from nanowire_utils.coco import write_json_atomic
from nanowire_utils.sweep.layout import (
    FORMAT,
    LOG,
    MANIFEST,
    RESULT,
    STATUS,
    WORKER_LOG,
    RunLock,
    data_tag,
    file_lock,
    read_json,
    read_manifest,
    run_dir,
    run_state,
    test_data_dir,
    utc_now,
)
from nanowire_utils.sweep.spec import PlannedRun, Sweep, load_sweep

log = logging.getLogger(__name__)

SLURM_DEFAULTS = {"timeout_min": 720, "gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": 8, "mem_gb": 32}


# --------------------------------------------------------------------------- small helpers


def log_tail(path, n: int = 15) -> list[str]:
    """The last ``n`` non-empty lines of a text file (``[]`` if missing)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return [ln for ln in lines if ln.strip()][-n:]


# --------------------------------------------------------------------------- manifest
def _planned_dict(p: PlannedRun) -> dict:
    return {
        "paper": p.paper,
        "seed": p.seed,
        "keys": p.keys,
        "config": p.config,
        "n_images": p.n_images,
        "replicate_of": p.replicate_of,
    }


def make_manifest(sweep: Sweep, scale: str, data_root, data_seed: int = 0) -> dict:
    """The manifest of a sweep folder: the sweep file and every planned run at ``scale``."""
    sc = sweep.scales[scale]
    plan = sweep.plan(scale)
    return {
        "format": FORMAT,
        "sweep": sweep.name,
        "sweep_file": sweep.path,
        "sweep_sha256": sweep.sha256,
        "sweep_text": sweep.text,
        "scale": scale,
        "preset": sc.preset,
        "columns": sweep.columns,
        "baseline": sweep.baseline,
        "seeds": sweep.seeds,
        "subsets": sweep.subsets,
        "n_test": sc.n_test,
        "real_tile": sc.real_tile,
        "real_images": sc.real_images,
        "data_root": str(Path(data_root).resolve()),
        "data_seed": int(data_seed),
        "runs": {p.id: _planned_dict(p) for p in plan},
        "created": utc_now(),
    }


def manifest_differences(old: dict, new: dict, limit: int = 12) -> list[str]:
    """What differs between two manifests, one line each (sweep, scale, runs, keys)."""
    out = []
    for key in ("sweep", "scale", "data_seed", "n_test"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} (folder) != {new.get(key)!r} (now)")
    a, b = old.get("runs", {}), new.get("runs", {})
    only_old, only_new = [r for r in a if r not in b], [r for r in b if r not in a]
    if only_old:
        out.append(f"runs only in the folder: {', '.join(only_old)}")
    if only_new:
        out.append(f"runs only in the sweep now: {', '.join(only_new)}")
    for rid in a:
        if rid not in b:
            continue
        ca, cb = a[rid]["config"], b[rid]["config"]
        for k in sorted(set(ca) | set(cb)):
            if ca.get(k) != cb.get(k):
                out.append(f"run {rid}: {k} = {ca.get(k)!r} (folder) != {cb.get(k)!r} (now)")
                if len(out) >= limit:
                    return out + ["..."]
    return out


def prepare_sweep_dir(sweep_dir, sweep="table1", scale="cpu", data_root=None, data_seed: int = 0) -> dict:
    """Create the sweep folder's manifest, or check that an existing one matches.

    Raises
    ------
    FileExistsError
        The folder was made from another sweep file, scale or configuration; the message
        names the differences.
    """
    sweep_dir = Path(sweep_dir)
    sweep = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    old = read_json(sweep_dir / MANIFEST)
    if data_root is None:
        data_root = old["data_root"] if old else sweep_dir / "data"
    new = make_manifest(sweep, scale, data_root, data_seed)
    if old is not None:
        diff = manifest_differences(old, new)
        if diff:
            raise FileExistsError(
                f"sweep folder {sweep_dir} holds sweep {old.get('sweep')!r} at scale {old.get('scale')!r}, "
                "which differs from what was asked: "
                + "; ".join(diff)
                + ". Use another folder, delete this one to start over, or resume it as recorded "
                "(nanowire-utils sweep --out DIR --as-recorded)."
            )
        if str(Path(data_root).resolve()) != old["data_root"]:
            old["data_root"] = str(Path(data_root).resolve())
            write_json_atomic(sweep_dir / MANIFEST, old, indent=1)
        return old
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(sweep_dir / MANIFEST, new, indent=1)
    return new


# --------------------------------------------------------------------------- data


def train_data_dir(manifest: dict, run_id: str) -> Path:
    """Training dataset of a run: ``DATA_ROOT/<generator>_<size>px_n<N>_seed<S>``."""
    cfg = manifest["runs"][run_id]["config"]
    return Path(manifest["data_root"]) / f"{data_tag(cfg)}_n{cfg['DATASET.N_IMAGES']}_seed{manifest['data_seed']}"


def ensure_data(manifest: dict, run_ids, workers: int | None = None, progress: bool = True) -> None:
    """Generate (or reuse, resumably) the training sets and the test sets these runs need."""
    from nanowire_utils.synth.dataset import write_dataset

    jobs = {}
    for rid in run_ids:
        cfg = manifest["runs"][rid]["config"]
        jobs[train_data_dir(manifest, rid)] = (
            cfg["DATASET.N_IMAGES"],
            manifest["data_seed"],
            cfg["DATASET.GENERATOR_PRESET"],
            (0.8, 0.1, 0.1),
        )
        jobs[test_data_dir(manifest, rid)] = (
            manifest["n_test"],
            manifest["data_seed"] + 1,
            cfg["DATASET.GENERATOR_PRESET"],
            (0.0, 0.0, 1.0),
        )
    for out, (n, seed, gen, splits) in jobs.items():
        if _data_ready(out, n):
            continue
        with file_lock(out.parent / f".{out.name}.lock"):
            summary = write_dataset(out, n, seed=seed, config=gen, splits=splits, workers=workers, progress=progress)
        if summary["generated"]:
            log.info("generated %d images into %s", summary["generated"], out)


def _data_ready(folder: Path, n: int) -> bool:
    """A complete dataset of ``n`` images: its provenance and all three split files exist."""
    meta = read_json(folder / "dataset.json") or {}
    if (meta.get("parameters") or {}).get("n") != n:
        return False
    return all((folder / "annotations" / f"instances_{s}.json").exists() for s in ("train", "val", "test"))


# --------------------------------------------------------------------------- run lock


# --------------------------------------------------------------------------- one run
@contextlib.contextmanager
def _run_logging(path):
    """Send the package's log records (and warnings) to ``path`` for the ``with`` block."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger("nanowire_utils"), logging.getLogger("py.warnings")]
    old_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for lg, lvl in zip(loggers, old_levels):
            lg.removeHandler(handler)
            lg.setLevel(lvl)
        handler.close()


def run_one(
    sweep_dir,
    run_id: str,
    device: str | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    keep_checkpoints: bool = False,
) -> str:
    """Train and evaluate one run of a prepared sweep folder; returns its state afterwards.

    Skips a finished run, resumes an interrupted one from its checkpoint, and returns
    ``"running"`` without touching a run another live process holds. An exception during
    training or evaluation (e.g. a NaN loss) marks the run ``failed`` with the error and the
    last lines of its log; it is not raised.

    Parameters
    ----------
    sweep_dir : path
        A folder prepared by :func:`prepare_sweep_dir` (or :func:`run_sweep`).
    run_id : str
        One of the manifest's runs.
    device : str or None
        ``"cpu"``, ``"cuda"``, ...; None: the configuration's ``DEVICE``.
    retry_failed : bool
        Train a run marked failed again (from its last checkpoint, if any).
    keep_checkpoints : bool
        Keep the periodic checkpoints of a finished run (default: only ``model_final.pth``).
    """
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.sweep.results import evaluate_run

    manifest = read_manifest(sweep_dir)
    if run_id not in manifest["runs"]:
        raise ValueError(f"sweep folder {sweep_dir} has no run {run_id!r}; runs: {', '.join(manifest['runs'])}")
    folder = run_dir(sweep_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / RESULT).exists():
        return "done"
    if not retry_failed and (read_json(folder / STATUS) or {}).get("state") == "failed":
        return "failed"
    lock = RunLock(folder)
    if not lock.acquire():
        return "running"
    t0 = time.time()
    status = {
        "state": "running",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": device,
        "started": utc_now(),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
    try:
        write_json_atomic(folder / STATUS, status, indent=1)
        with _run_logging(folder / LOG):
            log.info(
                "sweep %s, run %s: start on %s (%s)",
                manifest["sweep"],
                run_id,
                device or "config device",
                status["host"],
            )
            try:
                cfg = TrainConfig.from_dict(manifest["runs"][run_id]["config"])
                if device:
                    cfg.set("DEVICE", "cuda" if str(device).startswith("cuda") else str(device))
                ensure_data(manifest, [run_id], workers=1, progress=False)
                from nanowire_utils.maskrcnn.engine import train

                result = train(cfg, train_data_dir(manifest, run_id), folder, resume=True, progress=progress)
                log.info(
                    "trained %d iterations (%s), %.1f min", result.iterations, result.stopped_by, result.elapsed_s / 60
                )
                row = evaluate_run(sweep_dir, run_id, manifest=manifest, device=device)
                if not keep_checkpoints:
                    for p in (folder / "checkpoints").glob("model_*.pth"):
                        p.unlink()
                write_json_atomic(folder / RESULT, row, indent=1)
                status.update(state="done", finished=utc_now(), seconds=round(time.time() - t0, 1))
                log.info("run %s done: synthetic test segm AP %.2f", run_id, row.get("test_segm_AP", float("nan")))
            except Exception as err:  # noqa: BLE001 - a failed run must not stop the sweep
                log.exception("run %s failed: %s: %s", run_id, type(err).__name__, err)
                status.update(
                    state="failed",
                    finished=utc_now(),
                    seconds=round(time.time() - t0, 1),
                    error=f"{type(err).__name__}: {err}",
                )
        if status["state"] == "failed":
            status["log_tail"] = log_tail(folder / LOG, 15)
        write_json_atomic(folder / STATUS, status, indent=1)
    finally:
        lock.release()
    with contextlib.suppress(Exception):
        from nanowire_utils.sweep.results import write_results

        write_results(sweep_dir)
    return status["state"]


# --------------------------------------------------------------------------- status view
def sweep_status(sweep_dir):
    """Progress of a sweep folder, one row per planned run: ``state`` (pending, running,
    interrupted, done, failed), iterations done / planned, minutes, where it ran, error.

    Returns
    -------
    pandas.DataFrame
        Indexed by run id; ``df.attrs["counts"]`` holds the number of runs per state.
    """
    import pandas as pd

    manifest = read_manifest(sweep_dir)
    rows = []
    for rid, plan in manifest["runs"].items():
        folder = run_dir(sweep_dir, rid)
        st = read_json(folder / STATUS) or {}
        cfgj = read_json(folder / "config.json") or {}
        state = run_state(sweep_dir, rid)
        res = read_json(folder / RESULT) or {}
        rows.append(
            {
                "run": rid,
                "paper run": plan["paper"],
                "seed": plan["seed"],
                "state": state,
                "iterations": res.get("iterations", cfgj.get("_iterations_done", 0)),
                "of": cfgj.get("SOLVER.MAX_ITER", None),
                "minutes": res.get("minutes"),
                "where": f"{st.get('host', '')} {st.get('device') or ''}".strip() or None,
                "error": st.get("error"),
            }
        )
    df = pd.DataFrame(rows).set_index("run")
    df.attrs["counts"] = df["state"].value_counts().to_dict()
    return df


def format_status(df) -> str:
    """One line per run and a summary line, for the terminal."""
    counts = df.attrs.get("counts") or df["state"].value_counts().to_dict()
    lines = []
    for rid, r in df.iterrows():
        of = f"/{int(r['of'])}" if r["of"] == r["of"] and r["of"] is not None else ""
        mins = f" {r['minutes']:.1f} min" if r["minutes"] == r["minutes"] and r["minutes"] is not None else ""
        err = f"  {r['error']}" if isinstance(r["error"], str) else ""
        lines.append(f"{rid:<14} {r['state']:<11} it {int(r['iterations'] or 0)}{of}{mins}{err}")
    order = ("done", "running", "interrupted", "failed", "pending")
    lines.append(", ".join(f"{counts.get(s, 0)} {s}" for s in order) + f" (of {len(df)})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- executors
def _parse_devices(devices) -> list[str] | None:
    """``None``/``"auto"`` -> every visible GPU when there are several, else None (in-process);
    ``"cpu"``, ``"cuda:0,cuda:1"``, ``["cpu", "cpu"]`` -> that list."""
    if devices is None or devices == "auto":
        try:
            import torch

            n = torch.cuda.device_count()
        except Exception:  # noqa: BLE001
            n = 0
        return [f"cuda:{i}" for i in range(n)] if n > 1 else None
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    for d in devices:
        if d != "cpu" and not (d == "cuda" or d.startswith("cuda:")):
            raise ValueError(f"device {d!r} must be 'cpu', 'cuda' or 'cuda:N'")
    return list(devices)


def _worker_env(device: str, n_workers: int) -> tuple[dict, str]:
    env = dict(os.environ)
    # the CPU cores are shared by the workers (CPU training, or data loading next to a GPU)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, n_workers))))
    if device.startswith("cuda:"):
        env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]  # the worker sees only its GPU
        return env, "cuda"
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env, "cpu"
    return env, device


def _run_parallel(sweep_dir, ids, devices, retry_failed, progress, poll_s: float = 1.0) -> dict:
    """One worker process per device; each takes the next pending run when it is free."""
    from tqdm.auto import tqdm

    todo = list(ids)
    busy: dict[int, tuple[subprocess.Popen, str, object]] = {}
    states = {}
    bar = tqdm(total=len(ids), desc="sweep", unit="run", disable=not progress)
    try:
        while todo or busy:
            for slot, device in enumerate(devices):
                if slot in busy or not todo:
                    continue
                rid = todo.pop(0)
                folder = run_dir(sweep_dir, rid)
                folder.mkdir(parents=True, exist_ok=True)
                env, dev = _worker_env(device, len(devices))
                cmd = [sys.executable, "-m", "nanowire_utils.sweep.runner", str(sweep_dir), rid, "--device", dev]
                if retry_failed:
                    cmd.append("--retry-failed")
                out = open(folder / WORKER_LOG, "a")  # noqa: SIM115 - closed when the process ends
                busy[slot] = (subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT), rid, out)
                log.info("run %s started on %s", rid, device)
            time.sleep(poll_s)
            for slot in list(busy):
                proc, rid, out = busy[slot]
                if proc.poll() is None:
                    continue
                out.close()
                del busy[slot]
                states[rid] = run_state(sweep_dir, rid)
                if proc.returncode != 0 and states[rid] not in ("done", "failed"):
                    _mark_failed(sweep_dir, rid, f"worker process exited with status {proc.returncode}")
                    states[rid] = "failed"
                bar.update()
                bar.set_postfix_str(f"{rid}: {states[rid]}")
    finally:
        for proc, _, out in busy.values():  # interrupted: stop the workers, they resume later
            proc.terminate()
            with contextlib.suppress(Exception):
                proc.wait(timeout=30)
            out.close()
        bar.close()
    return states


def _mark_failed(sweep_dir, run_id: str, error: str) -> None:
    folder = run_dir(sweep_dir, run_id)
    st = read_json(folder / STATUS) or {}
    st.update(state="failed", finished=utc_now(), error=error)
    st["log_tail"] = log_tail(folder / LOG, 10) + log_tail(folder / WORKER_LOG, 10)
    write_json_atomic(folder / STATUS, st, indent=1)


class SubmititRun:
    """The callable each submitit job runs: :func:`run_one` on one run (CPU threads capped).

    It is a ``submitit.helpers.Checkpointable`` when submitit is installed: a job that hits
    its time limit or is preempted is requeued with the same arguments and resumes from the
    run's last checkpoint.
    """

    def __call__(self, sweep_dir: str, run_id: str, retry_failed: bool = False) -> str:
        return run_one(sweep_dir, run_id, retry_failed=retry_failed)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(SubmititRun(), *args, **kwargs)


def make_executor(sweep_dir, cluster: str | None = "slurm", parameters: dict | None = None):
    """A submitit executor writing its job files under ``SWEEP/submitit``.

    Parameters
    ----------
    cluster : {"slurm", "local", None}
        ``"slurm"``: submitit's AutoExecutor on Slurm (sbatch must be available);
        ``"local"``: submitit's LocalExecutor (jobs as local processes, for tests);
        None: let submitit choose (Slurm when available, else local).
    parameters : dict
        submitit parameters on top of :data:`SLURM_DEFAULTS`: ``timeout_min``,
        ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition``,
        ``slurm_account``, ``slurm_qos``, ``slurm_array_parallelism``,
        ``slurm_additional_parameters`` ... (see ``submitit.AutoExecutor``).
    """
    try:
        import submitit
    except ImportError:
        raise ValueError(
            "executor 'submitit' needs submitit: pip install 'nanowire-utils[sweep]' (or pip install submitit)"
        ) from None
    folder = Path(sweep_dir) / "submitit" / "%j"
    params = {**SLURM_DEFAULTS, **(parameters or {})}
    if cluster == "local":
        ex = submitit.LocalExecutor(folder=folder)
        local = {k: v for k, v in params.items() if k in ("timeout_min", "gpus_per_node", "tasks_per_node", "nodes")}
        if not _has_gpu():
            local["gpus_per_node"] = 0
        ex.update_parameters(**local)
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
    if ex.cluster != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        if not _has_gpu():
            params["gpus_per_node"] = 0
    ex.update_parameters(name="nanowire-sweep", **params)
    return ex


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def _run_submitit(sweep_dir, ids, cluster, parameters, retry_failed, wait, progress):
    ex = make_executor(sweep_dir, cluster, parameters)
    fn = SubmititRun()
    with ex.batch():
        jobs = [ex.submit(fn, str(Path(sweep_dir).resolve()), rid, retry_failed) for rid in ids]
    write_json_atomic(
        Path(sweep_dir) / "submitit" / "jobs.json",
        {"submitted": utc_now(), "jobs": {rid: str(j.job_id) for rid, j in zip(ids, jobs)}},
        indent=1,
    )
    log.info(
        "submitted %d jobs through submitit (%s): %s",
        len(jobs),
        getattr(ex, "cluster", type(ex).__name__),
        [j.job_id for j in jobs],
    )
    if not wait:
        return {rid: "submitted" for rid in ids}, jobs
    from tqdm.auto import tqdm

    states = {}
    for rid, job in tqdm(list(zip(ids, jobs)), desc="sweep (submitit)", unit="run", disable=not progress):
        try:
            states[rid] = job.result()
        except Exception as err:  # noqa: BLE001 - a job that died (OOM, node failure) is a failed run
            _mark_failed(sweep_dir, rid, f"submitit job {job.job_id} failed: {str(err).splitlines()[-1][:300]}")
            states[rid] = "failed"
    return states, jobs


# --------------------------------------------------------------------------- the sweep
def unavailable_real_images(manifest: dict) -> dict[str, str]:
    """The real images a sweep scores that cannot be had here, ``{modality: why}``
    (empty when all resolve: from ``NANOWIRE_UTILS_SAMPLES`` or the download cache)."""
    from nanowire_utils.real.samples import sample_path
    from nanowire_utils.sweep.results import real_modalities

    missing = {}
    for mod in real_modalities(manifest):
        try:
            sample_path(mod)
        except (FileNotFoundError, ValueError) as err:
            missing[mod] = str(err)
    return missing


def real_scores_missing(sweep_dir, run_id: str, manifest: dict) -> bool:
    """Whether a finished run's result lacks the score of a real image the sweep names."""
    from nanowire_utils.sweep.results import real_modalities

    row = read_json(run_dir(sweep_dir, run_id) / RESULT) or {}
    return any(row.get(f"{mod}_segm_AP") is None for mod in real_modalities(manifest))


def rescore_real_images(sweep_dir, run_id: str, manifest: dict) -> dict:
    """Evaluate a finished run again from its saved model (no training) and rewrite its
    result, e.g. after the real images became available. Returns the new row."""
    from nanowire_utils.sweep.results import evaluate_run

    folder = run_dir(sweep_dir, run_id)
    old = read_json(folder / RESULT) or {}
    log.info("run %s: scoring it again from %s (real-image scores were missing)", run_id, folder)
    row = evaluate_run(sweep_dir, run_id, manifest=manifest)
    # the training facts stay those of the run that trained
    for key in ("minutes", "host", "commit", "device"):
        if key in old:
            row[key] = old[key]
    write_json_atomic(folder / RESULT, row, indent=1)
    return row


def run_sweep(
    sweep_dir,
    sweep="table1",
    scale: str = "cpu",
    runs=None,
    data_root=None,
    devices=None,
    executor: str = "local",
    cluster: str | None = "slurm",
    slurm: dict | None = None,
    retry_failed: bool = False,
    as_recorded: bool = False,
    wait: bool = True,
    progress: bool = True,
    command: str | None = None,
):
    """Run (or resume) a sweep into ``sweep_dir`` and write its results table.

    Finished runs are skipped, interrupted ones resume from their checkpoint. The real images
    are looked up first: when they cannot be had, a warning says so and runs train without
    real-image scores; when they can, finished runs lacking those scores are scored from their
    saved models (:func:`rescore_real_images`).

    Parameters
    ----------
    sweep_dir : path
        The sweep folder (layout in the module docstring). Created, or resumed when it holds
        the same sweep at the same scale with the same configurations.
    sweep : str, path or Sweep
        ``"table1"`` (the paper's Table 1) or a sweep file.
    scale : str
        A scale of the sweep file: ``"smoke"`` (CI), ``"cpu"`` (about 2.5 h on 2 cores),
        ``"paper"`` (GPUs).
    runs : None, str or list
        Run ids and/or subset names (``"grid"``, ``"single_parameter"``, ``"run13"``...);
        None: the scale's runs (all, unless the scale names a subset).
    data_root : path or None
        Where the synthetic datasets go (default: ``SWEEP/data``).
    devices : None, str or list
        ``executor="local"`` only. None/``"auto"``: one run after the other in this process
        (several visible GPUs: one worker process per GPU); ``"cuda:0,cuda:1"``: one run per
        listed GPU in parallel; ``"cpu,cpu"``: two CPU worker processes.
    executor : {"local", "submitit"}
        ``"submitit"``: one job per run through submitit (Slurm, see :func:`make_executor`).
    cluster, slurm :
        submitit's cluster (``"slurm"``, ``"local"``, None) and parameters (e.g.
        ``{"slurm_partition": "gpu", "timeout_min": 600}``).
    retry_failed : bool
        Train runs marked failed again.
    as_recorded : bool
        Resume exactly the runs the folder's manifest records (``sweep``/``scale`` ignored).
    wait : bool
        With submitit: wait for the jobs (False: return after submitting).
    command : str or None
        The command to record in the provenance (default: this process's command line).

    Returns
    -------
    pandas.DataFrame
        The results table (:func:`nanowire_utils.sweep.results.results_table`), also written
        to ``SWEEP/results.csv`` with its provenance.
    """
    from nanowire_utils.sweep.results import results_table, write_results

    sweep_dir = Path(sweep_dir)
    if as_recorded:
        manifest = read_manifest(sweep_dir)
        if data_root is not None:
            manifest["data_root"] = str(Path(data_root).resolve())
            write_json_atomic(sweep_dir / MANIFEST, manifest, indent=1)
        ids = list(manifest["runs"])
        if runs is not None:
            ids = _select_recorded(manifest, runs)
    else:
        sweep = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
        planned = sweep.plan(scale, runs)  # checks every key before anything trains
        manifest = prepare_sweep_dir(sweep_dir, sweep, scale, data_root)
        ids = [p.id for p in planned]
    if command is None:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    write_json_atomic(sweep_dir / "last_command.json", {"command": command, "time": utc_now()}, indent=1)
    todo = [rid for rid in ids if run_state(sweep_dir, rid) not in ("done",)]
    if not retry_failed:
        todo = [rid for rid in todo if run_state(sweep_dir, rid) != "failed"]
    log.info(
        "sweep %s at scale %s: %d runs, %d to do, in %s",
        manifest["sweep"],
        manifest["scale"],
        len(ids),
        len(todo),
        sweep_dir,
    )
    missing = unavailable_real_images(manifest)
    if missing:
        log.warning(
            "the real images cannot be had (%s): runs trained now get no real-image scores. Set "
            "NANOWIRE_UTILS_SAMPLES to a folder holding them (or allow the download) and run the same "
            "command again: finished runs are then scored without training again",
            "; ".join(f"{k}: {v}" for k, v in missing.items()),
        )
    else:
        for rid in ids:
            if run_state(sweep_dir, rid) == "done" and real_scores_missing(sweep_dir, rid, manifest):
                rescore_real_images(sweep_dir, rid, manifest)
    if todo:
        ensure_data(manifest, todo, progress=progress)
    if executor == "submitit":
        states, _ = _run_submitit(sweep_dir, todo, cluster, slurm, retry_failed, wait, progress)
        if not wait:
            return states
    elif executor == "local":
        devs = _parse_devices(devices)
        if devs and len(devs) > 1:
            _run_parallel(sweep_dir, todo, devs, retry_failed, progress)
        else:
            from tqdm.auto import tqdm

            dev = devs[0] if devs else None
            bar = tqdm(todo, desc="sweep", unit="run", disable=not progress)
            for rid in bar:
                bar.set_postfix_str(rid)
                state = run_one(sweep_dir, rid, device=dev, retry_failed=retry_failed)
                log.info("run %s: %s", rid, state)
    else:
        raise ValueError(f"executor must be 'local' or 'submitit', got {executor!r}")
    write_results(sweep_dir, command=command)
    return results_table(sweep_dir)


def _select_recorded(manifest: dict, runs) -> list[str]:
    items = [runs] if isinstance(runs, str) else list(runs)
    out = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            ids = manifest["subsets"].get(part, [part])
            for rid in ids:
                if rid not in manifest["runs"]:
                    raise ValueError(f"the sweep folder has no run or subset {part!r}")
                extra = [r for r in manifest["runs"] if manifest["runs"][r].get("replicate_of") == rid]
                out += [r for r in [rid, *extra] if r not in out]
    return out


def _main(argv=None) -> int:
    """``python -m nanowire_utils.sweep.runner SWEEP_DIR RUN_ID [--device D]``: one run (the
    worker process of the parallel executor)."""
    import argparse

    p = argparse.ArgumentParser(description=_main.__doc__)
    p.add_argument("sweep_dir")
    p.add_argument("run_id")
    p.add_argument("--device", default=None)
    p.add_argument("--retry-failed", action="store_true")
    a = p.parse_args(argv)
    state = run_one(a.sweep_dir, a.run_id, device=a.device, retry_failed=a.retry_failed)
    print(f"{a.run_id}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
