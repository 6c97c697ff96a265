"""The sweep (chapter 5): sweep files, the runner (resume, failures, parallel workers,
submitit), the results table and its checks, the CLI, and the analyses."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nanowire_utils import paper
from nanowire_utils.maskrcnn.config import TrainConfig, apply_epochs
from nanowire_utils.sweep import load_sweep
from nanowire_utils.sweep.results import (
    best_of_n_optimism,
    load_results,
    noise_band,
    preset_drift_summary,
    selection_table,
    side_by_side,
    single_parameter_effects,
)
from nanowire_utils.sweep.runner import (
    RunLock,
    prepare_sweep_dir,
    read_manifest,
    run_dir,
    run_state,
    run_sweep,
    sweep_status,
)
from nanowire_utils.sweep.spec import duplicate_results, read_key
from nanowire_utils.synth.dataset import split_sizes

METRICS = ["test_bbox_AP", "test_segm_AP", "test_segm_AP50", "iterations"]


def mini_sweep(tmp_path, runs: dict, name="mini", scale_set=None, real_images=None, **scale) -> Path:
    """A small sweep file at the smoke preset (no Table 1 values unless a run says paper: N)."""
    spec = {
        "name": name,
        "runs": runs,
        "scales": {
            "smoke": {
                "preset": "smoke",
                "n_test": 4,
                "min_images": 10,
                "real_tile": 0,
                "real_images": real_images if real_images is not None else [],
                "set": {"DATASET.N_IMAGES": 10, **(scale_set or {})},
                **scale,
            }
        },
    }
    path = tmp_path / f"{name}.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _cli(*args, env=None, **kw):
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "nanowire_utils.cli", "sweep", *args], env=e, **kw)


# --------------------------------------------------------------------------- sweep files
def test_table1_file_loads_and_matches_the_paper():
    sw = load_sweep("table1")
    assert len(sw.runs) == 20 and sw.baseline == "run10" and len(sw.seeds) >= 3
    assert set(sw.subsets["grid"]) | set(sw.subsets["single_parameter"]) == set(sw.runs)
    rows = {r["No."]: r for r in paper.table1()}
    for p in sw.plan("paper"):  # the paper scale keeps every Table 1 value
        cfg = p.train_config()
        row = rows[p.paper]
        for col, key in sw.columns.items():
            assert read_key(cfg, key) == row[col], (p.id, col)
    # the IoU column is the RPN's upper threshold, the ROI heads' stays at detectron2's 0.5
    assert sw.columns["IoU thr"] == "MODEL.RPN.IOU_THRESHOLDS[1]"
    assert all(p.train_config()["MODEL.ROI_HEADS.IOU_THRESHOLDS"] == [0.5] for p in sw.plan("paper"))
    assert duplicate_results() == [(3, 9)]
    ids = sw.run_ids()
    assert ids.index("run10-seed1") == ids.index("run10") + 1 and len(ids) == 20 + len(sw.seeds) - 1


def test_cpu_scale_iterations_follow_the_cpu_preset():
    """Iterations are proportional to the paper's (epochs x training images) and come from the
    cpu preset's batch and LR-drop fraction; dataset sizes and other values are Table 1's."""
    sw = load_sweep("table1")
    preset = TrainConfig.from_preset("cpu")
    iters = {}
    for p in sw.plan("cpu"):
        cfg = p.train_config()
        assert cfg["SOLVER.IMS_PER_BATCH"] == preset["SOLVER.IMS_PER_BATCH"]
        assert cfg["SOLVER.MAX_MINUTES"] == 0  # every run trains all its iterations
        row = next(r for r in paper.table1() if r["No."] == p.paper)
        assert cfg["DATASET.N_IMAGES"] == row["Dataset size"] and cfg["SOLVER.BASE_LR"] == row["LR"]
        n_train = split_sizes(p.n_images, (0.8, 0.1, 0.1))["train"]
        resolved, _ = apply_epochs(cfg, n_train)
        iters[p.id] = resolved["SOLVER.MAX_ITER"]
        frac = resolved["SOLVER.STEPS"][0] / resolved["SOLVER.MAX_ITER"]
        assert abs(frac - preset["SOLVER.STEPS"][0] / preset["SOLVER.MAX_ITER"]) < 0.05
    # run 12 (750 epochs, 1000 images) trains 3x run 9 (750 epochs, 250) and 3x run 4 (250, 1000)
    assert abs(iters["run12"] / iters["run09"] - 4.0) < 0.1  # 800 vs 200 training images
    assert abs(iters["run12"] / iters["run04"] - 3.0) < 0.1
    assert 3000 < sum(iters.values()) < 8000  # about 2 hours at ~1 s per iteration


def test_unknown_key_names_run_and_key(tmp_path):
    path = mini_sweep(tmp_path, {"ok": {}, "bad": {"set": {"SOLVER.BASE_LRR": 0.1}}})
    with pytest.raises(
        ValueError, match=r"run bad: unknown configuration key 'SOLVER.BASE_LRR'; did you mean SOLVER.BASE_LR"
    ):
        load_sweep(path)
    with pytest.raises(ValueError, match="run bad"):
        run_sweep(tmp_path / "sw", sweep=path, scale="smoke", progress=False)
    assert not (tmp_path / "sw").exists()  # nothing was created, nothing trained
    r = _cli("--out", str(tmp_path / "sw"), "--sweep", str(path), "--scale", "smoke", capture_output=True, text=True)
    assert r.returncode == 2 and "SOLVER.BASE_LRR" in r.stderr and "run bad" in r.stderr


def test_bad_value_names_run(tmp_path):
    path = mini_sweep(tmp_path, {"neg": {"set": {"SOLVER.BASE_LR": -1}}})
    with pytest.raises(ValueError, match=r"run neg, scale 'smoke': SOLVER.BASE_LR must be in"):
        load_sweep(path).plan("smoke")


# --------------------------------------------------------------------------- runner
def test_run_lock_excludes_and_takes_over_stale(tmp_path):
    a, b = RunLock(tmp_path), RunLock(tmp_path)
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "lock.json").write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout)}))
    assert RunLock(tmp_path).holder() is None and a.acquire()  # its process is gone: stale
    a.release()


@pytest.mark.slow
def test_failed_run_is_recorded_and_sweep_goes_on(tmp_path):
    path = mini_sweep(
        tmp_path,
        {
            "diverges": {
                "set": {"SOLVER.BASE_LR": 9.0, "SOLVER.CLIP_GRADIENTS.ENABLED": False, "SOLVER.WARMUP_ITERS": 0}
            },
            "fine": {},
        },
        scale_set={"SOLVER.MAX_ITER": 8, "SOLVER.STEPS": [6]},
    )
    sw = tmp_path / "sw"
    r = _cli(
        "--out", str(sw), "--sweep", str(path), "--scale", "smoke", "--no-progress", capture_output=True, text=True
    )
    assert r.returncode == 1, r.stderr[-2000:]  # a failed run: status 1, but the sweep finished
    st = json.loads((run_dir(sw, "diverges") / "status.json").read_text())
    assert st["state"] == "failed" and "loss became" in st["error"], st
    assert st["log_tail"] and any("loss became" in line for line in st["log_tail"])
    assert run_state(sw, "fine") == "done"
    df = load_results(sw / "results.csv", sweep=path, scale="smoke")
    assert df.loc["diverges", "status"] == "failed" and "loss became" in df.loc["diverges", "error"]
    assert df.loc["fine", "status"] == "done" and not math.isnan(df.loc["fine", "test_segm_AP"])
    assert "failed" in _cli("--out", str(sw), "--status", capture_output=True, text=True).stdout
    # rerunning skips the failed run (it would fail again) unless asked
    run_sweep(sw, sweep=path, scale="smoke", progress=False)
    assert json.loads((run_dir(sw, "diverges") / "status.json").read_text())["finished"] == st["finished"]


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_table(tmp_path):
    path = mini_sweep(
        tmp_path,
        {"short": {"set": {"SOLVER.MAX_ITER": 4, "SOLVER.STEPS": [3]}}, "long": {}},
        scale_set={"SOLVER.MAX_ITER": 40, "SOLVER.STEPS": [30], "SOLVER.CHECKPOINT_PERIOD": 4},
    )
    args = ["--sweep", str(path), "--scale", "smoke", "--no-progress", "--data-root", str(tmp_path / "data")]
    ref = _cli("--out", str(tmp_path / "a"), *args, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    b = tmp_path / "b"
    log = open(tmp_path / "b.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanowire_utils.cli", "sweep", "--out", str(b), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ckpts = run_dir(b, "long") / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpts.exists() and list(ckpts.glob("model_*.pth"))):
        assert proc.poll() is None, (tmp_path / "b.log").read_text()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep dies in the middle of run "long"
    proc.wait()
    assert run_state(b, "short") == "done" and run_state(b, "long") == "interrupted"
    assert sweep_status(b).loc["long", "state"] == "interrupted"
    res = _cli("--out", str(b), *args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    events = [json.loads(x) for x in (run_dir(b, "long") / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resume" and e["iteration"] > 0 for e in events)
    ta, tb = load_results(tmp_path / "a", sweep=path), load_results(b, sweep=path)
    pd.testing.assert_frame_equal(ta[METRICS], tb[METRICS])


@pytest.mark.slow
def test_runs_trained_without_real_images_are_scored_when_they_appear(tmp_path):
    """Without the sample images the sweep says so up front and trains anyway; the same command
    with the images scores the finished runs from their saved models, without training again."""
    path = mini_sweep(tmp_path, {"only": {}}, real_images=["ptychography"], scale_set={"SOLVER.MAX_ITER": 3})
    args = ["--out", str(tmp_path / "sw"), "--sweep", str(path), "--scale", "smoke", "--no-progress"]
    (tmp_path / "empty").mkdir()
    r = _cli(*args, env={"NANOWIRE_UTILS_SAMPLES": str(tmp_path / "empty")}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "the real images cannot be had" in r.stderr and "NANOWIRE_UTILS_SAMPLES" in r.stderr
    result = run_dir(tmp_path / "sw", "only") / "result.json"
    first = json.loads(result.read_text())
    assert "ptychography_segm_AP" not in first and "ptychography" in first["error"]
    model = run_dir(tmp_path / "sw", "only") / "model_final.pth"
    mtime = model.stat().st_mtime_ns
    r = _cli(
        *args, env={"NANOWIRE_UTILS_SAMPLES": os.environ["NANOWIRE_UTILS_SAMPLES"]}, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads(result.read_text())
    assert math.isfinite(again["ptychography_segm_AP"]) and again["error"] == ""
    assert model.stat().st_mtime_ns == mtime and again["iterations"] == first["iterations"] == 3
    assert again["test_segm_AP"] == first["test_segm_AP"] and again["minutes"] == first["minutes"]
    df = load_results(tmp_path / "sw" / "results.csv", sweep=path, scale="smoke")
    assert math.isfinite(df.loc["only", "ptychography_segm_AP"])


@pytest.mark.slow
def test_parallel_cpu_workers(tmp_path):
    """devices='cpu,cpu': one worker process per device, runs in parallel."""
    path = mini_sweep(
        tmp_path, {"r1": {}, "r2": {"set": {"SEED": 1}}}, scale_set={"SOLVER.MAX_ITER": 16, "SOLVER.STEPS": [12]}
    )
    sw = tmp_path / "sw"
    run_sweep(sw, sweep=path, scale="smoke", devices="cpu,cpu", progress=False)
    st = {r: json.loads((run_dir(sw, r) / "status.json").read_text()) for r in ("r1", "r2")}
    assert all(s["state"] == "done" and s["device"] == "cpu" for s in st.values()), st
    assert st["r1"]["pid"] != st["r2"]["pid"]
    assert st["r2"]["started"] <= st["r1"]["finished"]  # the second started before the first ended
    assert (run_dir(sw, "r2") / "worker.log").exists()


@pytest.mark.slow
def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    path = mini_sweep(tmp_path, {"r1": {}})
    df = run_sweep(tmp_path / "sw", sweep=path, scale="smoke", executor="submitit", cluster="local", progress=False)
    assert list(df["status"]) == ["done"]
    assert json.loads((tmp_path / "sw" / "submitit" / "jobs.json").read_text())["jobs"]["r1"]
    assert load_results(tmp_path / "sw", sweep=path).loc["r1", "iterations"] > 0


# --------------------------------------------------------------------------- the smoke Table 1 sweep
@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    """``nanowire-utils sweep --scale smoke`` (Table 1's smoke runs, real images included)."""
    out = tmp_path_factory.mktemp("sweep") / "smoke"
    r = _cli("--scale", "smoke", "--out", str(out), "--no-progress", capture_output=True, text=True)
    if r.returncode != 0:  # name the failed runs and their errors, not only the end of the log
        errors = sweep_status(out)["error"].dropna().to_dict() if (out / "sweep.json").exists() else {}
        pytest.fail(f"smoke sweep exited with {r.returncode}; failed runs: {errors}\n{r.stderr[-3000:]}")
    return out, r


@pytest.mark.slow
def test_cli_smoke_sweep(smoke_sweep):
    out, r = smoke_sweep
    plan = load_sweep("table1").plan("smoke")
    assert f"{len(plan)} done" in r.stdout
    df = load_results(out / "results.csv", sweep="table1", scale="smoke")
    assert list(df.index) == [p.id for p in plan]
    for col in (
        "SOLVER.BASE_LR",
        "MODEL.RPN.IOU_THRESHOLDS[1]",
        "iterations",
        "minutes",
        "test_segm_AP75",
        "sem_accuracy",
        "ptychography_segm_AP",
    ):
        assert col in df.columns and df[col].notna().all(), col
    # the real images' input scale comes from the image alone, once for the sweep
    assert df["ptychography_input_scale_method"].str.startswith("image only").all()
    assert df["stxm_input_scale"].nunique() == 1 and (out / "real_input_scales.json").exists()
    prov = df.attrs["provenance"]
    assert prov["commit"] and prov["machine"]["cpu_count"] and "sweep --scale smoke" in prov["command"]
    assert prov["runs_done"] == list(df.index)
    status = _cli("--out", str(out), "--status", capture_output=True, text=True).stdout
    assert f"{len(plan)} done, 0 running" in status
    again = _cli("--scale", "smoke", "--out", str(out), "--no-progress", capture_output=True, text=True)
    assert again.returncode == 0 and "0 to do" in again.stderr  # finished runs are skipped
    recorded = _cli("--out", str(out), "--as-recorded", "--no-progress", capture_output=True, text=True)
    assert recorded.returncode == 0 and f"scale smoke: {len(plan)} runs, 0 to do" in recorded.stderr


@pytest.mark.slow
def test_mismatched_table_and_folder_are_refused(smoke_sweep, tmp_path):
    out, _ = smoke_sweep
    csv = out / "results.csv"
    with pytest.raises(ValueError, match="scale 'smoke', not 'cpu'"):
        load_results(csv, sweep="table1", scale="cpu")
    other = mini_sweep(tmp_path, {"x": {}}, name="other")
    with pytest.raises(ValueError, match="comes from sweep 'table1'.*not from 'other'"):
        load_results(csv, sweep=other)
    # a table whose configuration was changed: the run and key are named
    df = pd.read_csv(csv)
    df.loc[df["run"] == "run13", "SOLVER.BASE_LR"] = 0.015
    tampered = tmp_path / "results.csv"
    df.to_csv(tampered, index=False)
    prov = json.loads((out / "results.provenance.json").read_text())
    (tmp_path / "results.provenance.json").write_text(json.dumps(prov))
    with pytest.raises(ValueError, match=r"run run13: SOLVER.BASE_LR is 0.015 in the table, 0.01"):
        load_results(tampered, sweep="table1")
    # a preset that changed since the table was made: refused, or shown with strict=False
    pd.read_csv(csv).to_csv(tampered, index=False)
    prov["preset_config"]["SOLVER.WEIGHT_DECAY"] = 0.5
    (tmp_path / "results.provenance.json").write_text(json.dumps(prov))
    with pytest.raises(ValueError, match=r"SOLVER.WEIGHT_DECAY = 0.5 when trained"):
        load_results(tampered, sweep="table1")
    loose = load_results(tampered, sweep="table1", strict=False)
    assert any("SOLVER.WEIGHT_DECAY" in d for d in loose.attrs["config_drift"])
    drift = preset_drift_summary(loose)  # the values themselves, one pair per key
    assert list(drift) == ["SOLVER.WEIGHT_DECAY"] and drift["SOLVER.WEIGHT_DECAY"][0] == 0.5
    assert drift["SOLVER.WEIGHT_DECAY"][1] == TrainConfig.from_preset("smoke")["SOLVER.WEIGHT_DECAY"] != 0.5
    assert preset_drift_summary(load_results(csv, sweep="table1")) == {}
    # a key the vocabulary gained after the table was made counts at its default (old behaviour)
    prov = json.loads((out / "results.provenance.json").read_text())
    del prov["preset_config"]["MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"]
    (tmp_path / "results.provenance.json").write_text(json.dumps(prov))
    assert preset_drift_summary(load_results(tampered, sweep="table1")) == {}
    # resuming the folder at another scale or with another sweep file is refused, naming it
    with pytest.raises(FileExistsError, match=r"scale: 'smoke' \(folder\) != 'cpu' \(now\)"):
        prepare_sweep_dir(out, "table1", "cpu")
    with pytest.raises(FileExistsError, match="sweep: 'table1'"):
        run_sweep(out, sweep=other, scale="smoke", progress=False)
    assert read_manifest(out)["scale"] == "smoke"


@pytest.mark.slow
def test_analyses_on_the_smoke_table(smoke_sweep):
    out, _ = smoke_sweep
    df = load_results(out, sweep="table1")
    band = noise_band(df)
    assert band["n"] == 3 and band["min"] <= band["mean"] <= band["max"]
    eff = single_parameter_effects(df)
    assert list(eff["run"]) == ["run13"] and eff.loc[0, "parameter"] == "learning_rate"
    assert eff.loc[0, "paper minus its run 10"] == pytest.approx(89.72 - 90.095)
    sbs = side_by_side(df)
    assert len(sbs) == 20 and sbs.loc[2, "status"] == "not run" and sbs.loc[13, "status"] == "done"
    sel = selection_table(df)
    assert "test_segm_AP" in sel.index and sel.loc["test_segm_AP", "its rank"] == 1


# --------------------------------------------------------------------------- analyses, no training
def _frame(values: dict, seeds: dict) -> pd.DataFrame:
    rows = [
        {"run": r, "status": "done", "replicate_of": None, "paper_run": int(r[3:5]), "test_segm_AP": v}
        for r, v in values.items()
    ]
    rows += [
        {"run": r, "status": "done", "replicate_of": "run10", "paper_run": 10, "test_segm_AP": v}
        for r, v in seeds.items()
    ]
    df = pd.DataFrame(rows).set_index("run", drop=False)
    df.attrs["provenance"] = {"baseline": "run10", "subsets": {"learning_rate": ["run13", "run10", "run14"]}}
    df["SOLVER.BASE_LR"] = [{"run13": 0.01, "run14": 0.03}.get(r, 0.02) for r in df.index]
    return df


def test_noise_band_and_effects():
    df = _frame({"run10": 10.0, "run13": 14.0, "run14": 11.0}, {"run10-seed1": 12.0, "run10-seed2": 8.0})
    band = noise_band(df)
    assert band["n"] == 3 and band["mean"] == pytest.approx(10.0) and band["std"] == pytest.approx(2.0)
    eff = single_parameter_effects(df).set_index("run")
    assert eff.loc["run13", "outside seed range"] and eff.loc["run13", "in seed SDs"] == pytest.approx(2.0)
    assert not eff.loc["run14", "outside seed range"]


def test_best_of_n_optimism():
    one = best_of_n_optimism(1, 2.0)
    assert abs(one["expected"]) < 0.05
    twenty = best_of_n_optimism(20, 1.0)
    assert 1.8 < twenty["in_sd"] < 1.95  # E[max of 20 standard normals] = 1.87
    assert best_of_n_optimism(20, 3.0)["expected"] == pytest.approx(3 * twenty["expected"], rel=1e-9)
    with pytest.raises(ValueError):
        best_of_n_optimism(0, 1.0)


def test_one_gpu_per_worker_environment(monkeypatch):
    """Multi-GPU: each worker process sees only its own GPU and a share of the CPU threads."""
    from nanowire_utils.sweep.runner import _parse_devices, _worker_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert _parse_devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"]
    env, dev = _worker_env("cuda:1", 2)
    assert dev == "cuda" and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert int(env["OMP_NUM_THREADS"]) == max(1, (os.cpu_count() or 1) // 2)
    env, dev = _worker_env("cpu", 2)
    assert dev == "cpu" and env["CUDA_VISIBLE_DEVICES"] == ""
    with pytest.raises(ValueError, match="gpu0"):
        _parse_devices("gpu0")


def test_git_commit_reports_uncommitted_changes_of_the_folder(tmp_path):
    """Provenance: the checkout's HEAD, and whether the folder (default: the whole package) is dirty."""
    from nanowire_utils.sweep import layout

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert layout.git_commit(pkg) == {"commit": head, "dirty_package": False}
    (pkg / "a.py").write_text("x = 2\n")
    assert layout.git_commit(pkg)["dirty_package"] is True
    assert layout.git_commit(pkg / "sub")["dirty_package"] is False  # the change is outside that folder
    # the default covers the whole package, not only the sweep subpackage that defines it
    here = Path(layout.__file__).resolve()
    assert layout.git_commit() == layout.git_commit(here.parents[1])
