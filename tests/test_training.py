"""Real tiny training runs: checkpoints, metrics, loss going down, exact resume, time budget,
DDP on gloo, data errors, evaluation and Table 1 rows."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.config import TrainConfig
from nanowire_utils.maskrcnn.engine import read_checkpoint, read_metrics, train
from nanowire_utils.maskrcnn.evaluate import evaluate_split, mask_ceiling, matched_ious, table1_row
from nanowire_utils.maskrcnn.loading import augment, load_split, make_toy_dataset, read_image, record_instances
from nanowire_utils.maskrcnn.trainer import WarmupSchedule
from nanowire_utils.viz.training import plot_training_curves

SIZE = 96


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    with pytest.warns(UserWarning, match="skipping 1 of 7"):
        d = make_toy_dataset(tmp_path_factory.mktemp("toy"), n_train=6, n_val=2, n_test=2, size=SIZE, empty_images=1)
        load_split(d, "train", require_annotations=True)
    return d


def _cfg(**over):
    base = {
        "INPUT.MIN_SIZE_TRAIN": [SIZE],
        "INPUT.MAX_SIZE_TRAIN": SIZE,
        "INPUT.MIN_SIZE_TEST": SIZE,
        "INPUT.MAX_SIZE_TEST": SIZE,
        "SOLVER.CHECKPOINT_PERIOD": 1000,
        "SOLVER.STEPS": [1000],
    }
    base.update(over)
    return TrainConfig.from_preset("smoke", **base)


@pytest.mark.slow
def test_training_writes_run_and_loss_decreases(toy, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(**{"SOLVER.MAX_ITER": 40, "SOLVER.CHECKPOINT_PERIOD": 20, "TEST.EVAL_PERIOD": 20, "SOLVER.STEPS": [30]})
    with pytest.warns(UserWarning, match="without annotations"):
        result = train(cfg, toy, run, progress=False)
    assert result.iterations == 40 and result.stopped_by == "max_iter"
    assert (run / "model_final.pth").exists() and (run / "checkpoints" / "model_0000020.pth").exists()
    assert (run / "last_checkpoint").read_text().strip() == "model_final.pth"
    saved = json.loads((run / "config.json").read_text())
    assert (
        saved["SOLVER.MAX_ITER"] == 40 and saved["_weights"]["source"] == "scratch" and saved["_data"]["n_train"] == 6
    )
    ckpt = read_checkpoint(run)
    assert ckpt["iteration"] == 40 and ckpt["engine"] == "torchvision" and ckpt["arch"].startswith("maskrcnn_R18")
    recs = read_metrics(run)
    losses = [r["loss"] for r in recs if r["kind"] == "train"]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    evals = [r for r in recs if r["kind"] == "eval"]
    assert [r["iteration"] for r in evals] == [20, 40] and all(0 <= r["segm/AP"] <= 100 for r in evals)
    lrs = {r["iteration"]: r["lr"] for r in recs if r["kind"] == "train"}
    assert lrs[1] < lrs[10] and lrs[40] == pytest.approx(cfg["SOLVER.BASE_LR"] * 0.1)
    fig = plot_training_curves(run)
    assert len(fig.axes) == 2 and fig.axes[1].lines
    m = evaluate_split(run, toy, "test", progress=False)
    row = table1_row(m, run)
    assert row["Dataset size"] == 11 and row["Epochs"] == pytest.approx(40 * 2 / 6, abs=0.1)
    assert row["AP segm"] == round(m["segm"]["AP"], 3)


@pytest.mark.slow
def test_resume_continues_exactly(toy, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(**{"SOLVER.MAX_ITER": 12, "SOLVER.STEPS": [9]}), toy, straight, progress=False)
    first = train(_cfg(**{"SOLVER.MAX_ITER": 6, "SOLVER.STEPS": [9]}), toy, split, progress=False)
    assert first.iterations == 6
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(_cfg(**{"SOLVER.MAX_ITER": 12, "SOLVER.STEPS": [9]}), toy, split, resume=False, progress=False)
    second = train(_cfg(**{"SOLVER.MAX_ITER": 12, "SOLVER.STEPS": [9]}), toy, split, progress=False)
    assert second.resumed_from == 6 and second.iterations == 12
    a, b = read_checkpoint(straight), read_checkpoint(split)
    assert a["iteration"] == b["iteration"] == 12
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-6)
    mom_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    mom_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert len(mom_a) == len(mom_b) > 0
    for x, y in zip(mom_a, mom_b):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
    its = [r["iteration"] for r in read_metrics(split) if r["kind"] == "train"]
    assert its == list(range(1, 13))
    with pytest.raises(ValueError, match=r"MODEL\.FPN\.OUT_CHANNELS"):
        train(_cfg(**{"SOLVER.MAX_ITER": 14, "MODEL.FPN.OUT_CHANNELS": 64}), toy, split, progress=False)


@pytest.mark.slow
def test_same_seed_same_model_and_schedule_in_iterations(toy, tmp_path):
    """The presets' schedule is in iterations: one seed gives identical weights run after run
    (and on any machine speed); another seed does not."""
    assert TrainConfig.from_preset("smoke")["SOLVER.MAX_MINUTES"] == 0
    for name in ("cpu", "cpu-finetune", "paper"):
        assert TrainConfig.from_preset(name)["SOLVER.MAX_MINUTES"] == 0, name
    cfg = _cfg(**{"SOLVER.MAX_ITER": 8, "SOLVER.STEPS": [6]})
    runs = [train(cfg, toy, tmp_path / f"run{i}", progress=False) for i in range(2)]
    other = train(cfg.replace(SEED=1), toy, tmp_path / "seed1", progress=False)
    a, b, c = (read_checkpoint(r.run_dir)["model"] for r in (*runs, other))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_mask_loss_weight_scales_the_mask_loss_in_the_total(toy, tmp_path):
    """MODEL.ROI_MASK_HEAD.LOSS_WEIGHT: the first step (same seed, weights and batch) logs the
    weighted mask loss and adds it, not the unweighted one, to the total."""
    first = {}
    for w in (1.0, 3.0):
        run = train(
            _cfg(**{"SOLVER.MAX_ITER": 1, "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": w}),
            toy,
            tmp_path / f"w{w}",
            progress=False,
        )
        first[w] = next(r for r in read_metrics(run.run_dir) if r["kind"] == "train" and r["iteration"] == 1)
    assert first[3.0]["loss_mask"] == pytest.approx(3 * first[1.0]["loss_mask"], rel=1e-4)
    assert first[3.0]["loss"] - first[1.0]["loss"] == pytest.approx(2 * first[1.0]["loss_mask"], rel=1e-3)
    assert first[3.0]["loss_classifier"] == pytest.approx(first[1.0]["loss_classifier"], rel=1e-5)
    with pytest.raises(ValueError, match="LOSS_WEIGHT"):
        _cfg(**{"MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": 0})


def test_time_budget_stops_cleanly(toy, tmp_path):
    run = tmp_path / "run"
    result = train(
        _cfg(**{"SOLVER.MAX_ITER": 100000, "SOLVER.MAX_MINUTES": 0.04, "SOLVER.STEPS": [50000]}),
        toy,
        run,
        progress=False,
    )
    assert result.stopped_by == "time budget" and 0 < result.iterations < 100000
    ckpt = read_checkpoint(run / "model_final.pth")
    assert ckpt["iteration"] == result.iterations
    recs = read_metrics(run)
    assert [r["iteration"] for r in recs if r["kind"] == "train"][
        -1
    ] == result.iterations  # the partial window is logged
    assert recs[-1]["stopped_by"] == "time budget"


def test_schedule_warmup_steps_and_budget():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    cfg = TrainConfig.from_preset(
        "smoke",
        **{
            "SOLVER.BASE_LR": 0.02,
            "SOLVER.WARMUP_ITERS": 10,
            "SOLVER.WARMUP_FACTOR": 0.1,
            "SOLVER.MAX_ITER": 100,
            "SOLVER.STEPS": [80, 90],
        },
    )
    s = WarmupSchedule(opt, cfg)
    assert s.step(0) == pytest.approx(0.002) and s.step(5) == pytest.approx(0.011) and s.step(10) == pytest.approx(0.02)
    assert s.step(80) == pytest.approx(0.002) and s.step(95) == pytest.approx(0.0002)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0002)
    timed = WarmupSchedule(opt, cfg, budget_s=100.0)
    assert timed.step(20, elapsed_s=50) == pytest.approx(0.02)
    assert timed.step(21, elapsed_s=81) == pytest.approx(0.002)  # 81 % of the budget passes the 80 % step


def test_cosine_schedule_follows_detectron2s_formula_and_the_budget():
    """WarmupCosineLR: warmup, then BASE_LR x (1 + cos(pi it / MAX_ITER)) / 2, down to 0 at
    MAX_ITER; with a budget, the elapsed share of it drives the cosine when it is ahead."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    cfg = TrainConfig.from_preset(
        "smoke",
        **{
            "SOLVER.LR_SCHEDULER_NAME": "WarmupCosineLR",
            "SOLVER.BASE_LR": 0.02,
            "SOLVER.WARMUP_ITERS": 10,
            "SOLVER.WARMUP_FACTOR": 0.1,
            "SOLVER.MAX_ITER": 100,
            "SOLVER.STEPS": [80],
        },
    )
    s = WarmupSchedule(opt, cfg)
    cos = lambda it: 0.02 * 0.5 * (1 + math.cos(math.pi * it / 100))  # noqa: E731
    assert s.step(0) == pytest.approx(0.002)
    assert s.step(5) == pytest.approx(0.55 * cos(5))
    assert s.step(50) == pytest.approx(0.01)
    assert s.step(80) == pytest.approx(cos(80))  # no step at 80: STEPS and GAMMA are unused
    assert s.step(100) == pytest.approx(0.0, abs=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    timed = WarmupSchedule(opt, cfg, budget_s=100.0)
    assert timed.step(20, elapsed_s=50) == pytest.approx(0.01)  # half the budget: half the cosine
    assert timed.step(21, elapsed_s=10) == pytest.approx(0.01)  # never back up
    resumed = WarmupSchedule(opt, cfg, budget_s=100.0)
    resumed.load_state_dict(timed.state_dict())
    assert resumed.step(22, elapsed_s=0) == pytest.approx(0.01)
    step_cfg = cfg.replace(**{"SOLVER.LR_SCHEDULER_NAME": "WarmupMultiStepLR"})
    other = WarmupSchedule(opt, step_cfg)
    other.load_state_dict(timed.state_dict())  # another schedule's progress does not carry over
    assert other.step(22) == pytest.approx(0.02)


def test_adamw_optimizer_trains_and_resumes(toy, tmp_path):
    """SOLVER.OPTIMIZER=AdamW: the run's optimizer is AdamW with the configured LR and weight
    decay (norm parameters at WEIGHT_DECAY_NORM), and a resumed run continues it exactly."""
    cfg = _cfg(**{"SOLVER.OPTIMIZER": "AdamW", "SOLVER.BASE_LR": 2e-4, "SOLVER.WEIGHT_DECAY": 0.05})
    train(cfg.replace(**{"SOLVER.MAX_ITER": 4}), toy, tmp_path / "full", progress=False)
    ckpt = read_checkpoint(tmp_path / "full" / "model_final.pth")
    groups = ckpt["optimizer"]["param_groups"]
    assert {g["weight_decay"] for g in groups} == {0.05, 0.0} and all("amsgrad" in g for g in groups)
    state = next(iter(ckpt["optimizer"]["state"].values()))
    assert {"exp_avg", "exp_avg_sq"} <= set(state)  # Adam's moments, not SGD's momentum buffer
    train(cfg.replace(**{"SOLVER.MAX_ITER": 2}), toy, tmp_path / "half", progress=False)
    train(cfg.replace(**{"SOLVER.MAX_ITER": 4}), toy, tmp_path / "half", resume=True, progress=False)
    resumed = read_checkpoint(tmp_path / "half" / "model_final.pth")
    for k, v in ckpt["model"].items():
        torch.testing.assert_close(v, resumed["model"][k], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="OPTIMIZER"):
        _cfg(**{"SOLVER.OPTIMIZER": "Adam"})


def test_augment_keeps_masks_on_the_image():
    img = np.zeros((64, 64), np.float32)
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 5:9, 3:40] = True
    masks[1, 30:60, 50:54] = True
    img[masks.any(0)] = 0.8
    cfg = TrainConfig.from_preset("smoke", **{"INPUT.CROP.ENABLED": True, "INPUT.CROP.SIZE": [48, 48]})
    for seed in range(8):
        out, m = augment(img, masks, cfg, np.random.default_rng(seed))
        assert out.shape == (48, 48) and m.shape[1:] == (48, 48)
        if len(m):
            bright = out > out.min() + 1e-6
            assert np.array_equal(bright, m.any(0))
        assert 0 <= out.min() and out.max() <= 1


def test_data_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="nanowire-utils generate"):
        load_split(tmp_path / "nowhere", "train")
    empty = make_toy_dataset(tmp_path / "empty", n_train=0, n_val=0, n_test=0, empty_images=3)
    with pytest.raises(ValueError, match="no image of the 'train' split .* has annotations"):
        train(_cfg(), empty, tmp_path / "run", progress=False)
    with pytest.raises(FileNotFoundError, match="no 'val' split"):
        load_split(empty, "val")
    (empty / "annotations" / "instances_train.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="has no images"):
        load_split(empty, "train")


def test_evaluate_split_with_perfect_predictor(toy):
    _, records = load_split(toy, "test")
    truth = {str(r.path): record_instances(r) for r in records}
    by_pixels = {read_image(p).tobytes(): inst for p, inst in truth.items()}
    m = evaluate_split(lambda image: by_pixels[image.tobytes()], toy, "test", progress=False)
    assert m["segm"]["AP"] == pytest.approx(100.0) and m["bbox"]["AP"] == pytest.approx(100.0)
    assert m["n_images"] == 2


def test_matched_ious_and_the_mask_ceiling(toy):
    """Per-wire mask and box IoU of a model, and the segm AP a perfect mask head could reach."""
    _, records = load_split(toy, "test")
    by_pixels = {read_image(r.path).tobytes(): record_instances(r) for r in records}
    perfect = matched_ious(lambda image: by_pixels[image.tobytes()], toy, "test")
    n_wires = sum(len(r.annotations) for r in records)
    assert perfect["mask"]["n"] == perfect["box"]["n"] == n_wires > 0
    assert perfect["mask"]["mean"] == pytest.approx(1.0) and perfect["box"]["above_0.9"] == pytest.approx(1.0)

    def shifted(image):  # every mask moved 3 px right, boxes kept: the masks, not the boxes, are off
        inst = by_pixels[image.tobytes()]
        return Instances(np.roll(inst.masks, 3, axis=2), inst.boxes, inst.scores)

    off = matched_ious(shifted, toy, "test")
    assert off["mask"]["mean"] < 0.95 and off["box"]["mean"] == pytest.approx(1.0)
    assert matched_ious(lambda image: Instances.empty(image.shape), toy, "test")["mask"]["mean"] == 0.0

    fine = mask_ceiling(toy, "test", mask_size=8, input_scale=1.0)
    assert fine["iou"]["n"] == n_wires and fine["n_images"] == 2 and fine["iou"]["mean"] > 0.9
    assert 0 < fine["segm"]["AP"] <= 100
    # a coarser mask grid, or a model that halves its input, loses outline detail of any mask
    assert mask_ceiling(toy, "test", mask_size=2)["iou"]["mean"] < fine["iou"]["mean"] - 0.05
    assert mask_ceiling(toy, "test", mask_size=8, input_scale=0.5)["iou"]["mean"] < fine["iou"]["mean"] - 0.01
    with pytest.raises(ValueError, match="mask_size"):
        mask_ceiling(toy, "test", mask_size=0)
    # a model's configuration gives both: the cpu preset's 28 x 28 grid at half scale
    cpu = TrainConfig.from_preset("cpu")
    from_cfg = mask_ceiling(toy, "test", cfg=cpu)
    assert (from_cfg["mask_size"], from_cfg["input_scale"]) == (28, 0.5)
    assert from_cfg["iou"] == mask_ceiling(toy, "test", mask_size=28, input_scale=0.5)["iou"]
    assert mask_ceiling(toy, "test", cfg=cpu.to_dict())["mask_size"] == 28
    with pytest.raises(ValueError, match="not both"):
        mask_ceiling(toy, "test", mask_size=8, cfg=cpu)


@pytest.mark.slow
def test_ddp_two_processes_gloo(toy, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "nanowire_utils.cli",
        "train",
        "--data",
        str(toy),
        "--out",
        str(run),
        "--preset",
        "smoke",
        "--no-progress",
        "--device",
        "cpu",
        "--set",
        f"INPUT.MIN_SIZE_TRAIN=[{SIZE}]",
        "--set",
        f"INPUT.MAX_SIZE_TRAIN={SIZE}",
        "--set",
        f"INPUT.MIN_SIZE_TEST={SIZE}",
        "--set",
        f"INPUT.MAX_SIZE_TEST={SIZE}",
        "--set",
        "SOLVER.MAX_ITER=4",
        "--set",
        "SOLVER.STEPS=[3]",
        "--set",
        "SOLVER.CHECKPOINT_PERIOD=2",
        "--set",
        "SOLVER.IMS_PER_BATCH=2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run / "config.json").read_text())
    assert saved["_world_size"] == 2
    ckpt = read_checkpoint(run)
    assert ckpt["iteration"] == 4
    assert not any(k.startswith("module.") for k in ckpt["model"])  # rank 0 saved the unwrapped model
    train_recs = [r for r in read_metrics(run) if r["kind"] == "train"]
    assert [r["iteration"] for r in train_recs] == [1, 2, 3, 4]  # one writer
