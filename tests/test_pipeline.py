"""pipeline: datasets and models shared between chapters are made once and reused."""

from __future__ import annotations

import json
import logging

import pytest

from nanowire_utils.chapters import pipeline
from nanowire_utils.maskrcnn.config import dataset_spec


def _n_images(data_dir):
    return sum(
        len(json.loads((data_dir / "annotations" / f"instances_{s}.json").read_text())["images"])
        for s in ("train", "val", "test")
    )


def test_paths_follow_the_layout(tmp_path):
    assert pipeline.dataset_dir("smoke", tmp_path) == tmp_path / "synthetic" / "smoke"
    assert pipeline.run_dir("cpu", tmp_path) == tmp_path / "cpu" / "mask_rcnn"
    assert pipeline.default_checkpoint("paper", tmp_path) == tmp_path / "paper" / "mask_rcnn" / "model_final.pth"
    with pytest.raises(ValueError, match="preset"):
        pipeline.run_dir("huge", tmp_path)


def test_a_finished_model_in_the_other_engines_folder_is_reused_unless_an_engine_is_named(tmp_path, caplog):
    """A GPU hub's model trained by detectron2 (into mask_rcnn_detectron2, or by the CLI into
    mask_rcnn) is found by the chapters that load a model, whatever engine would train here."""
    assert pipeline.find_model("smoke", tmp_path) is None
    d2 = tmp_path / "smoke" / "mask_rcnn_detectron2"
    d2.mkdir(parents=True)
    assert pipeline.find_model("smoke", tmp_path) is None  # an unfinished run is not a model
    (d2 / "model_final.pth").write_bytes(b"weights")
    assert pipeline.run_dir("smoke", tmp_path) == tmp_path / "smoke" / "mask_rcnn"  # torchvision would train
    assert pipeline.find_model("smoke", tmp_path) == d2
    assert pipeline.find_model("smoke", tmp_path, "auto") == d2
    assert pipeline.find_model("smoke", tmp_path, "torchvision") is None
    caplog.set_level(logging.INFO, logger="nanowire_utils.chapters.pipeline")
    assert pipeline.ensure_model("smoke", tmp_path, tmp_path / "data", progress=False) == d2
    assert "reusing" in caplog.text and not (tmp_path / "data").exists()
    own = tmp_path / "smoke" / "mask_rcnn"
    own.mkdir()
    (own / "model_final.pth").write_bytes(b"weights")
    assert pipeline.find_model("smoke", tmp_path) == own  # the engine that would train here comes first


def test_ensure_dataset_generates_then_reuses(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nanowire_utils.chapters.pipeline")
    out = pipeline.ensure_dataset("smoke", tmp_path, workers=1, progress=False)
    assert out == tmp_path / "synthetic" / "smoke"
    assert _n_images(out) == dataset_spec("smoke")["n_images"]
    first = sorted(p.stat().st_mtime_ns for p in (out / "images").rglob("*.png"))
    caplog.clear()
    assert pipeline.ensure_dataset("smoke", tmp_path, workers=1, progress=False) == out
    assert "reusing" in caplog.text
    assert sorted(p.stat().st_mtime_ns for p in (out / "images").rglob("*.png")) == first


def test_ensure_dataset_resumes_an_interrupted_run(tmp_path):
    out = pipeline.ensure_dataset("smoke", tmp_path, workers=1, progress=False)
    victim = sorted((out / "images" / "train").glob("*.png"))[0]
    victim.unlink()
    pipeline.ensure_dataset("smoke", tmp_path, workers=1, progress=False)
    assert victim.exists()
    assert _n_images(out) == dataset_spec("smoke")["n_images"]


def test_ensure_dataset_refuses_other_parameters(tmp_path):
    pipeline.ensure_dataset("smoke", tmp_path, seed=0, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="seed"):
        pipeline.ensure_dataset("smoke", tmp_path, seed=1, workers=1, progress=False)


def test_preset_drift_names_the_model_keys_that_changed(tmp_path):
    from nanowire_utils.maskrcnn.config import TrainConfig

    assert pipeline.preset_drift(tmp_path, "cpu") == {}  # no config.json: nothing to compare
    cfg = TrainConfig.from_preset("cpu").to_dict()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert pipeline.preset_drift(tmp_path, "cpu") == {}
    # bookkeeping (how the run was watched and saved) is not a different model
    cfg.update({"TEST.EVAL_PERIOD": 0, "SOLVER.CHECKPOINT_PERIOD": 7, "SEED": 3})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert pipeline.preset_drift(tmp_path, "cpu") == {}
    now = TrainConfig.from_preset("cpu")["INPUT.MIN_SIZE_TEST"]
    cfg["INPUT.MIN_SIZE_TEST"] = now + 1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert pipeline.preset_drift(tmp_path, "cpu") == {"INPUT.MIN_SIZE_TEST": (now + 1, now)}
    # a run older than a key counts at that key's default: drift only where the preset moved away
    del cfg["INPUT.MIN_SIZE_TEST"], cfg["MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"], cfg["SOLVER.WEIGHT_DECAY_NORM"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    weight = TrainConfig.from_preset("cpu")["MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"]
    assert weight != 1.0 and TrainConfig.from_preset("cpu")["SOLVER.WEIGHT_DECAY_NORM"] == 0.0
    assert pipeline.preset_drift(tmp_path, "cpu") == {
        "INPUT.MIN_SIZE_TEST": (512, now),
        "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": (1.0, weight),
    }


@pytest.mark.slow
def test_ensure_model_trains_once_then_reuses(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="nanowire_utils.chapters.pipeline")
    runs, data = tmp_path / "runs", tmp_path / "data"
    run = pipeline.ensure_model("smoke", runs, data, progress=False, SOLVER__MAX_ITER=6, SOLVER__STEPS=[4])
    final = pipeline.default_checkpoint("smoke", runs)
    assert run == final.parent and final.exists()
    assert "training the 'smoke' preset" in caplog.text
    info = pipeline.checkpoint_info(run)
    assert info["preset"] == "smoke" and info["iterations"] == 6 and info["minutes"] >= 0

    stamp = final.stat().st_mtime_ns
    caplog.clear()
    # overrides only matter when training happens: the finished model is returned untouched
    assert pipeline.ensure_model("smoke", runs, data, progress=False, SOLVER__MAX_ITER=9) == run
    assert "reusing" in caplog.text and "training" not in caplog.text
    assert final.stat().st_mtime_ns == stamp
    # ... and the log says that it differs from today's preset
    assert "earlier 'smoke' preset" in caplog.text and "SOLVER.MAX_ITER = 6 then" in caplog.text

    from nanowire_utils.maskrcnn.engine import load_predictor

    predictor = load_predictor(run, device="cpu")
    assert predictor.train_size == dataset_spec("smoke")["image_size"]


def test_ensure_model_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_minutes"):
        pipeline.ensure_model("smoke", tmp_path / "r", tmp_path / "d", max_minutes=-1)
    with pytest.raises(ValueError, match="SOLVER.BASE_LRR|did you mean"):
        pipeline.ensure_model("smoke", tmp_path / "r", tmp_path / "d", SOLVER__BASE_LRR=0.1)
    assert not (tmp_path / "d").exists()  # nothing generated for a bad request
