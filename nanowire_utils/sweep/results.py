"""The sweep's tidy results table (one row per run), its provenance, its checks, and the
analyses of chapter 5: Table 1 side by side, the seed-to-seed noise band, single-parameter
effects and the model-selection lesson.

Columns of ``results.csv`` (one row per finished or failed run):

* ``run``, ``paper_run`` (Table 1's number), ``replicate_of`` (the baseline, for its extra
  seeds), ``status`` (done / failed), ``error``, ``sweep``, ``scale``, ``preset``;
* every hyperparameter the sweep sets, under its configuration key (``SOLVER.EPOCHS`` after
  the scale's factor, ``DATASET.N_IMAGES``, ``SOLVER.BASE_LR``,
  ``MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE``, ``MODEL.RPN.IOU_THRESHOLDS[1]``,
  ``MODEL.RPN.NMS_THRESH``), ``SEED``, ``paper_epochs`` (Table 1's), ``n_train``,
  ``SOLVER.IMS_PER_BATCH``, ``SOLVER.MAX_ITER``, ``SOLVER.STEPS``, ``SOLVER.WARMUP_ITERS``;
* ``iterations`` and ``minutes`` of training, ``engine``, ``host``, ``device``, ``commit``;
* ``test_bbox_AP`` ... ``test_segm_APl``: COCO AP (percent) on the common synthetic test set;
* per real image (``ptychography``, ``stxm``, ``sem``): ``<image>_input_scale`` (from the
  image alone, :func:`real_input_scales`) and ``<image>_input_scale_method``,
  ``<image>_accuracy`` (foreground accuracy, Eq. 3), ``<image>_segm_AP``,
  ``<image>_segm_AP50``, ``<image>_bbox_AP`` (all predictions scoring >= the test threshold
  0.05) and ``<image>_post_accuracy``, ``<image>_post_segm_AP`` (after post-processing).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from nanowire_utils.coco import write_json_atomic
from nanowire_utils.maskrcnn.config import config_diff, same_value
from nanowire_utils.paper import AP_KEYS, MODALITIES

log = logging.getLogger(__name__)

RESULTS = "results.csv"
#: Columns every results table has, even before any run finished.
BASE_COLUMNS = ("run", "paper_run", "replicate_of", "status", "error", "SEED", "iterations", "minutes")
PROVENANCE_SUFFIX = ".provenance.json"
#: The metric the analyses use by default: synthetic test mask AP.
DEFAULT_METRIC = "test_segm_AP"
#: The paper's model selection (its Tables 2-4 list these runs first; Table 1's best is run 12).
PAPER_BEST = {"synthetic (Table 1)": 12, "ptychography (Table 2)": 13, "stxm (Table 3)": 1, "sem (Table 4)": 1}


def provenance_path(csv_path) -> Path:
    p = Path(csv_path)
    return p.with_name(p.stem + PROVENANCE_SUFFIX)


# --------------------------------------------------------------------------- evaluation of one run
def real_input_scales(sweep_dir, generator_preset: str, modalities=MODALITIES) -> dict:
    """``{modality: {"scale", "method", "image width (px)", "training width (px)"}}``: the input
    scale of each real image, from the image alone
    (:func:`nanowire_utils.chapters.crossmodality.image_scales`: the median wire width of the
    preprocessed image against that of the training generator's images; no annotation is
    read). The same for every run of a generator, so it is computed once and kept in
    ``SWEEP/real_input_scales.json``."""
    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.sweep.layout import file_lock, read_json

    path = Path(sweep_dir) / "real_input_scales.json"
    with file_lock(Path(sweep_dir) / ".real_input_scales.lock"):
        cache = read_json(path, {}) or {}
        todo = [m for m in modalities if m not in cache.get(generator_preset, {})]
        if todo:
            table = cm.image_scales(generator_preset, todo)
            entry = cache.setdefault(generator_preset, {})
            for mod in todo:
                r = table.loc[mod]
                entry[mod] = {
                    "scale": float(r["input scale"]),
                    "method": "image only (crossmodality.image_scales)"
                    + ("" if bool(r["wires found"]) else f"; fallback 1.0: {r['fallback reason']}"),
                    "image width (px)": _num(r["image width (px)"]),
                    "training width (px)": _num(r["training width (px)"]),
                }
            write_json_atomic(path, cache, indent=1)
    return {m: cache[generator_preset][m] for m in modalities}


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def real_modalities(manifest: dict) -> list[str]:
    """The real images a sweep scores: the manifest's ``real_images`` (None: all of
    :data:`nanowire_utils.paper.MODALITIES`), in that order."""
    real = manifest.get("real_images")
    return [m for m in MODALITIES if real is None or m in real]


def evaluate_run(sweep_dir, run_id: str, manifest: dict | None = None, device: str | None = None) -> dict:
    """The results-table row of a trained run: synthetic test AP and the three real images."""
    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.chapters.pipeline import checkpoint_info
    from nanowire_utils.maskrcnn.engine import load_predictor
    from nanowire_utils.maskrcnn.evaluate import evaluate_split
    from nanowire_utils.real.samples import load_sample
    from nanowire_utils.sweep.layout import git_commit, read_manifest, run_dir, test_data_dir

    manifest = manifest or read_manifest(sweep_dir)
    folder = run_dir(sweep_dir, run_id)
    dev = "cuda" if device and str(device).startswith("cuda") else (device or "auto")
    predictor = load_predictor(folder, device=dev)
    test = evaluate_split(predictor, test_data_dir(manifest, run_id), "test", progress=False)
    log.info(
        "synthetic test (%d images): bbox AP %.2f, segm AP %.2f",
        test["n_images"],
        test["bbox"]["AP"],
        test["segm"]["AP"],
    )
    row = _hyper_row(manifest, run_id, folder)
    info = checkpoint_info(folder)
    row.update(
        status="done",
        error="",
        iterations=info["iterations"],
        minutes=info["minutes"],
        engine=info["engine"],
        device=str(predictor.device),
        host=os.uname().nodename,
        commit=(git_commit() or {}).get("commit"),
    )
    for task in ("bbox", "segm"):
        for k in AP_KEYS:
            row[f"test_{task}_{k}"] = float(test[task][k])
    mods = real_modalities(manifest)
    try:
        scales = real_input_scales(sweep_dir, manifest["runs"][run_id]["config"]["DATASET.GENERATOR_PRESET"], mods)
    except Exception as err:  # noqa: BLE001 - e.g. the samples cannot be had: recorded per image below
        log.warning("input scales of the real images not estimated: %s: %s", type(err).__name__, err)
        scales = {}
    for mod in mods:
        try:
            image = load_sample(mod)
            scale, method = scales[mod]["scale"], scales[mod]["method"]
            res = cm.run_modality(predictor, mod, input_scale=scale, tile=manifest.get("real_tile"), image=image)
            row[f"{mod}_input_scale"] = scale
            row[f"{mod}_accuracy"] = res.metrics["accuracy"]
            row[f"{mod}_segm_AP"] = res.metrics["segm_AP"]
            row[f"{mod}_segm_AP50"] = res.metrics["segm_AP50"]
            row[f"{mod}_bbox_AP"] = res.metrics["bbox_AP"]
            row[f"{mod}_post_accuracy"] = res.metrics_post["accuracy"]
            row[f"{mod}_post_segm_AP"] = res.metrics_post["segm_AP"]
            row[f"{mod}_input_scale_method"] = method
            log.info("%s: accuracy %.1f %%, segm AP %.2f", mod, res.metrics["accuracy"], res.metrics["segm_AP"])
        except Exception as err:  # noqa: BLE001 - a missing sample image must not lose the run
            log.warning("real image %s not evaluated: %s: %s", mod, type(err).__name__, err)
            row["error"] = (row["error"] + "; " if row["error"] else "") + f"{mod}: {type(err).__name__}: {err}"
    return _clean(row)


def _clean(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out


def _hyper_row(manifest: dict, run_id: str, folder: Path) -> dict:
    """Identity and hyperparameters of a run (from the manifest and the run's config.json)."""
    from nanowire_utils import paper

    plan = manifest["runs"][run_id]
    row = {
        "run": run_id,
        "paper_run": plan["paper"],
        "replicate_of": plan.get("replicate_of"),
        "sweep": manifest["sweep"],
        "scale": manifest["scale"],
        "preset": manifest["preset"],
        "SEED": plan["seed"],
    }
    table1 = {r["No."]: r for r in paper.table1()}
    row["paper_epochs"] = table1[plan["paper"]]["Epochs"] if plan["paper"] in table1 else None
    for k, v in plan["keys"].items():
        row[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    cfgj = {}
    try:
        cfgj = json.loads((folder / "config.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    cfg = plan["config"]
    row["n_train"] = (cfgj.get("_data") or {}).get("n_train")
    row["SOLVER.IMS_PER_BATCH"] = cfg["SOLVER.IMS_PER_BATCH"]
    row["SOLVER.MAX_ITER"] = cfgj.get(
        "SOLVER.MAX_ITER", cfg["SOLVER.MAX_ITER"] if not cfg.get("SOLVER.EPOCHS") else None
    )
    row["SOLVER.STEPS"] = json.dumps(cfgj.get("SOLVER.STEPS")) if cfgj else None
    row["SOLVER.WARMUP_ITERS"] = cfgj.get("SOLVER.WARMUP_ITERS")
    return row


def failed_row(sweep_dir, run_id: str, manifest: dict) -> dict:
    """The row of a failed run: its hyperparameters, ``status="failed"`` and the error."""
    from nanowire_utils.sweep.layout import STATUS, read_json, run_dir

    folder = run_dir(sweep_dir, run_id)
    st = read_json(folder / STATUS) or {}
    row = _hyper_row(manifest, run_id, folder)
    cfgj = read_json(folder / "config.json") or {}
    row.update(status="failed", error=st.get("error", ""), iterations=cfgj.get("_iterations_done"), host=st.get("host"))
    return _clean(row)


# --------------------------------------------------------------------------- the table
def results_table(sweep_dir):
    """The results of a sweep folder as a DataFrame, one row per finished or failed run, in
    the manifest's order (pending and running runs are left out)."""
    import pandas as pd

    from nanowire_utils.sweep.layout import RESULT, read_json, read_manifest, run_dir, run_state

    manifest = read_manifest(sweep_dir)
    rows = []
    for rid in manifest["runs"]:
        state = run_state(sweep_dir, rid)
        if state == "done":
            rows.append(read_json(run_dir(sweep_dir, rid) / RESULT))
        elif state == "failed":
            rows.append(failed_row(sweep_dir, rid, manifest))
    df = pd.DataFrame(rows, columns=None if rows else list(BASE_COLUMNS))
    if len(df):
        df = df.set_index("run", drop=False)
        df.index.name = None
    return df


def make_provenance(sweep_dir, command: str | None = None) -> dict:
    """Provenance of a sweep folder's table: sweep file, scale, commit, date, machine, command,
    which runs finished, and the configuration each run trained with."""
    import datetime as dt

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.sweep.layout import git_commit, machine_info, read_json, read_manifest, run_state

    manifest = read_manifest(sweep_dir)
    states = {rid: run_state(sweep_dir, rid) for rid in manifest["runs"]}
    preset_cfg = TrainConfig.from_preset(manifest["preset"]).to_dict()
    last = read_json(Path(sweep_dir) / "last_command.json") or {}
    return {
        "sweep": manifest["sweep"],
        "sweep_file": manifest["sweep_file"],
        "sweep_sha256": manifest["sweep_sha256"],
        "scale": manifest["scale"],
        "preset": manifest["preset"],
        "columns": manifest["columns"],
        "baseline": manifest.get("baseline"),
        "subsets": manifest.get("subsets", {}),
        "started": manifest["created"],
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **git_commit(),
        "machine": machine_info(),
        "command": command or last.get("command"),
        "runs_done": [r for r, s in states.items() if s == "done"],
        "runs_failed": [r for r, s in states.items() if s == "failed"],
        "runs_not_finished": [r for r, s in states.items() if s not in ("done", "failed")],
        "preset_config": preset_cfg,
        "run_configs": {
            rid: {k: v for k, v in plan["config"].items() if preset_cfg.get(k) != v}
            for rid, plan in manifest["runs"].items()
        },
    }


def write_results(sweep_dir, command: str | None = None, csv_path=None) -> Path:
    """Write ``results.csv`` and ``results.provenance.json`` of a sweep folder (atomically,
    under a file lock: parallel workers may call it at the same time). Returns the CSV path."""
    from nanowire_utils.sweep.layout import file_lock

    sweep_dir = Path(sweep_dir)
    csv_path = Path(csv_path) if csv_path else sweep_dir / RESULTS
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(sweep_dir / ".results.lock"):
        df = results_table(sweep_dir)
        fd, tmp = tempfile.mkstemp(dir=csv_path.parent, prefix=f".{csv_path.name}.", suffix=".tmp")
        os.close(fd)
        df.to_csv(tmp, index=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a results table is for everyone to read
        os.replace(tmp, csv_path)
        write_json_atomic(provenance_path(csv_path), make_provenance(sweep_dir, command), indent=1)
    return csv_path


def load_results(path, sweep=None, scale: str | None = None, strict: bool = True):
    """Read a results table (a CSV, or a sweep folder's ``results.csv``) and check it.

    Parameters
    ----------
    path : path
        ``results.csv`` (its ``results.provenance.json`` beside it) or a sweep folder.
    sweep : None, str, path or Sweep
        When given, the table must come from this sweep file: same sweep name, every row a
        run of the sweep with the same keys and seed. Otherwise ValueError names the difference.
    scale : str or None
        When given, the table must be of this scale.
    strict : bool
        Also refuse a table whose runs trained with another full configuration than the
        sweep file and today's presets give (e.g. the ``cpu`` preset changed since). With
        False, such differences are returned in ``df.attrs["config_drift"]`` (one sentence
        per run and key, also logged) and ``df.attrs["config_drift_by_key"]`` (``{key: (value
        when trained, value now)}``, see :func:`preset_drift_summary`).

    Returns
    -------
    pandas.DataFrame
        Indexed by run id; ``df.attrs["provenance"]`` holds the provenance.
    """
    import pandas as pd

    from nanowire_utils.sweep.spec import Sweep, load_sweep

    p = Path(path)
    if p.is_dir():
        p = p / RESULTS
    if not p.exists():
        raise FileNotFoundError(f"no results table {p}; run the sweep first (nanowire-utils sweep --out DIR)")
    prov_p = provenance_path(p)
    if not prov_p.exists():
        raise ValueError(f"{p} has no provenance file {prov_p.name} beside it; it cannot be checked, so it is refused")
    prov = json.loads(prov_p.read_text())
    df = pd.read_csv(p)
    if len(df):
        df = df.set_index("run", drop=False)
        df.index.name = None
    df.attrs["provenance"] = prov
    df.attrs["config_drift"] = []
    df.attrs["config_drift_by_key"] = {}
    if scale is not None and prov.get("scale") != scale:
        raise ValueError(f"{p} is a table of scale {prov.get('scale')!r}, not {scale!r}")
    if sweep is None:
        return df
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    if prov.get("sweep") != sw.name:
        raise ValueError(
            f"{p} comes from sweep {prov.get('sweep')!r} ({prov.get('sweep_file')}), not from {sw.name!r} ({sw.path})"
        )
    if prov.get("scale") not in sw.scales:
        raise ValueError(f"{p} is of scale {prov.get('scale')!r}, which sweep {sw.name!r} does not define")
    plan = {r.id: r for r in sw.plan(prov["scale"], runs=list(sw.run_ids()))}
    problems = []
    for rid, row in df.iterrows():
        if rid not in plan:
            problems.append(f"run {rid} is not a run of sweep {sw.name!r}")
            continue
        want = plan[rid]
        if int(row["SEED"]) != want.seed:
            problems.append(f"run {rid}: SEED {row['SEED']} in the table, {want.seed} in the sweep")
        for k, v in want.keys.items():
            if k not in row.index:
                problems.append(f"run {rid}: the table has no column {k}")
            elif not same_value(row[k], v):
                problems.append(f"run {rid}: {k} is {row[k]!r} in the table, {v!r} in sweep {sw.name!r}")
    if problems:
        raise ValueError(
            f"{p} does not match sweep {sw.name!r} at scale {prov['scale']!r}: " + "; ".join(problems[:10])
        )
    drift, by_key = [], {}
    base = prov.get("preset_config", {})
    for rid in df.index:
        recorded = {**base, **prov.get("run_configs", {}).get(rid, {})}
        for k, (was, now) in config_diff(recorded, plan[rid].config, skip=("_",), fill_defaults=True).items():
            drift.append(f"run {rid}: {k} = {was!r} when trained, {now!r} now")
            by_key.setdefault(k, (was, now))
    if drift and strict:
        raise ValueError(
            f"{p} was made with another configuration than sweep {sw.name!r} gives today: "
            + "; ".join(drift[:10])
            + ("; ..." if len(drift) > 10 else "")
            + ". Rerun the sweep, or read it with strict=False to see it as recorded."
        )
    if drift:
        log.warning("%s: %d configuration values differ from today's (first: %s)", p, len(drift), drift[0])
    df.attrs["config_drift"] = drift
    df.attrs["config_drift_by_key"] = by_key
    return df


# --------------------------------------------------------------------------- analyses
def preset_drift_summary(df) -> dict:
    """``{key: (value when trained, value now)}`` of the configuration drift of
    :func:`load_results` (``strict=False``), one entry per key (the first run's: a changed
    preset gives every run the same pair); empty when nothing drifted."""
    return dict(df.attrs.get("config_drift_by_key", {}))


def side_by_side(df, metric_bbox: str = "test_bbox_AP", metric_segm: str = "test_segm_AP"):
    """The paper's Table 1 beside ours, one row per Table 1 run (first seed), with the
    iterations and minutes each of our runs took."""
    import pandas as pd

    from nanowire_utils import paper

    ours = df[df["replicate_of"].isna()] if "replicate_of" in df else df
    ours = ours.set_index("paper_run") if "paper_run" in ours else ours
    rows = []
    for r in paper.table1():
        no = r["No."]
        row = {
            "No.": no,
            "Epochs": r["Epochs"],
            "Dataset size": r["Dataset size"],
            "LR": r["LR"],
            "ROI head": r["ROI head"],
            "IoU thr": r["IoU thr"],
            "NMS": r["NMS"],
            "paper AP bbox": r["AP bbox"],
            "paper AP segm": r["AP segm"],
        }
        if no in ours.index:
            o = ours.loc[no]
            row.update(
                {
                    "our iterations": o.get("iterations"),
                    "our minutes": o.get("minutes"),
                    "our AP bbox": o.get(metric_bbox),
                    "our AP segm": o.get(metric_segm),
                    "status": o.get("status"),
                }
            )
        else:
            row["status"] = "not run"
        rows.append(row)
    return pd.DataFrame(rows).set_index("No.")


def noise_band(df, metric: str = DEFAULT_METRIC, baseline: str | None = None) -> dict:
    """The baseline's seed-to-seed spread of ``metric``: ``values`` (by run id), ``mean``,
    ``std`` (sample, ddof=1), ``min``, ``max``, ``n``. ``baseline`` defaults to the
    provenance's."""
    import pandas as pd

    baseline = baseline or df.attrs.get("provenance", {}).get("baseline") or "run10"
    done = df[df["status"] == "done"]
    ids = [r for r in done.index if r == baseline or done.loc[r].get("replicate_of") == baseline]
    vals = done.loc[ids, metric].astype(float).dropna() if metric in done else pd.Series(dtype=float)
    n = len(vals)
    return {
        "baseline": baseline,
        "metric": metric,
        "values": vals.to_dict(),
        "n": n,
        "mean": float(vals.mean()) if n else math.nan,
        "std": float(vals.std(ddof=1)) if n > 1 else math.nan,
        "min": float(vals.min()) if n else math.nan,
        "max": float(vals.max()) if n else math.nan,
    }


#: The single-parameter subsets of Table 1 and the key each one varies.
SINGLE_PARAMETER = {
    "learning_rate": "SOLVER.BASE_LR",
    "roi_head": "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "iou_thr": "MODEL.RPN.IOU_THRESHOLDS[1]",
    "nms": "MODEL.RPN.NMS_THRESH",
}


def single_parameter_effects(df, metric: str = DEFAULT_METRIC, subsets: dict | None = None):
    """Each single-parameter change against the baseline's seed band.

    One row per (parameter, value): our ``metric``, its difference from the baseline's seed
    mean, that difference in seed standard deviations, and whether it lies outside the range
    the seeds spanned (``outside seed range``). Also the paper's AP segm and its difference
    from the paper's baseline run, which has no noise estimate. Rows of runs not done are
    left out. ``subsets``: ``{subset: key}`` (default :data:`SINGLE_PARAMETER`).
    """
    import pandas as pd

    from nanowire_utils import paper

    prov = df.attrs.get("provenance", {})
    groups = prov.get("subsets", {})
    band = noise_band(df, metric)
    t1 = {r["No."]: r for r in paper.table1()}
    base_paper = df.loc[band["baseline"], "paper_run"] if band["baseline"] in df.index else 10
    rows = []
    for subset, key in (subsets or SINGLE_PARAMETER).items():
        for rid in groups.get(subset, []):
            if rid == band["baseline"] or rid not in df.index or df.loc[rid, "status"] != "done":
                continue
            r = df.loc[rid]
            v = float(r[metric])
            diff = v - band["mean"]
            pno = int(r["paper_run"]) if r["paper_run"] == r["paper_run"] else None
            rows.append(
                {
                    "parameter": subset,
                    "key": key,
                    "value": r[key],
                    "run": rid,
                    metric: v,
                    "minus seed mean": diff,
                    "in seed SDs": diff / band["std"] if band["std"] and band["std"] > 0 else math.nan,
                    "outside seed range": bool(v < band["min"] or v > band["max"]) if band["n"] > 1 else None,
                    "paper AP segm": t1[pno]["AP segm"] if pno in t1 else math.nan,
                    "paper minus its run 10": (t1[pno]["AP segm"] - t1[int(base_paper)]["AP segm"])
                    if pno in t1
                    else math.nan,
                }
            )
    return pd.DataFrame(rows)


def real_metrics(df) -> list[str]:
    """The real-image score columns present (segm AP and accuracy of each image)."""
    return [c for mod in MODALITIES for c in (f"{mod}_segm_AP", f"{mod}_accuracy") if c in df.columns]


def selection_table(df, synthetic: str = DEFAULT_METRIC):
    """The model-selection lesson: for each score (synthetic test AP, each real image's segm AP
    and accuracy), the best run, the run the synthetic AP would pick, that run's rank on this
    score, and the Spearman rank correlation between the synthetic AP and this score."""
    import pandas as pd

    done = df[(df["status"] == "done")].copy()
    if "replicate_of" in done:
        done = done[done["replicate_of"].isna()]
    rows = []
    if done.empty or synthetic not in done:
        return pd.DataFrame(rows)
    pick = done[synthetic].astype(float).idxmax()
    for col in [synthetic, *real_metrics(done)]:
        s = done[col].astype(float)
        if s.notna().sum() == 0:
            continue
        rank = s.rank(ascending=False, method="min")
        x = done[synthetic].astype(float)
        ok = x.notna() & s.notna()
        rho = x[ok].rank().corr(s[ok].rank()) if ok.sum() > 2 else math.nan
        rows.append(
            {
                "score": col,
                "best run": s.idxmax(),
                "best value": s.max(),
                "run picked by synthetic AP": pick,
                "its value": s.get(pick),
                "its rank": int(rank.get(pick)) if rank.get(pick) == rank.get(pick) else None,
                "of runs": int(s.notna().sum()),
                "Spearman rho with synthetic AP": rho,
            }
        )
    return pd.DataFrame(rows).set_index("score")


def best_of_n_optimism(n: int, sd: float, n_sim: int = 20000, seed: int = 0) -> dict:
    """How much the best of ``n`` equally good runs overstates their true score.

    If every run had the same true score and each measured score carried independent noise
    of standard deviation ``sd`` (seed-to-seed, or the noise of scoring on one image), the
    best measured score exceeds the true one on average by ``E[max of n N(0, sd)]``.
    Monte Carlo with ``n_sim`` draws; returns ``expected``, ``p90`` (90th percentile) and
    ``in_sd`` (the expected excess in units of ``sd``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not sd >= 0:
        raise ValueError(f"sd must be >= 0, got {sd}")
    rng = np.random.default_rng(seed)
    best = rng.normal(0.0, 1.0, size=(n_sim, n)).max(axis=1)
    return {
        "n": n,
        "sd": sd,
        "expected": float(best.mean() * sd),
        "p90": float(np.quantile(best, 0.9) * sd),
        "in_sd": float(best.mean()),
    }
