"""The configuration vocabulary: detectron2 keys, checks, presets, epochs, JSON."""

import json

import pytest

from nanowire_utils.maskrcnn.config import (
    DEFAULTS,
    KEYS,
    PRESET_NAMES,
    TrainConfig,
    apply_epochs,
    dataset_spec,
    epochs_to_iterations,
    torchvision_mapping,
)
from nanowire_utils.paper import table1


def test_unknown_key_suggests_closest():
    cfg = TrainConfig.from_preset("smoke")
    with pytest.raises(ValueError, match=r"did you mean SOLVER\.BASE_LR"):
        cfg.set("SOLVER.BASE_LRR", 0.1)
    with pytest.raises(ValueError, match=r"did you mean SOLVER\.BASE_LR"):
        cfg.set("BASE_LR=0.1")
    with pytest.raises(ValueError, match=r"MODEL\.ROI_HEADS\.BATCH_SIZE_PER_IMAGE"):
        TrainConfig.from_preset("smoke", **{"MODEL.ROI_HEAD.BATCH_SIZE_PER_IMAGE": 128})


@pytest.mark.parametrize("lr", [0, -0.01, "fast"])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="SOLVER.BASE_LR"):
        TrainConfig.from_preset("smoke", **{"SOLVER.BASE_LR": lr})


@pytest.mark.parametrize(
    "key,value",
    [
        ("SOLVER.IMS_PER_BATCH", 0),
        ("SOLVER.IMS_PER_BATCH", 2.5),
        ("MODEL.RESNETS.DEPTH", 42),
        ("MODEL.RPN.IOU_THRESHOLDS", [0.3]),
        ("MODEL.RPN.NMS_THRESH", 1.5),
        ("ENGINE", "keras"),
    ],
)
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        TrainConfig.from_preset("smoke").set(key, value)


def test_cross_key_checks():
    with pytest.raises(ValueError, match="FrozenBN"):
        TrainConfig.from_preset("smoke", **{"MODEL.RESNETS.NORM": "FrozenBN"})
    with pytest.raises(ValueError, match="FREEZE_AT"):
        TrainConfig.from_preset("smoke", **{"MODEL.BACKBONE.FREEZE_AT": 2})
    with pytest.raises(ValueError, match="background <= foreground"):
        TrainConfig.from_preset("smoke", **{"MODEL.RPN.IOU_THRESHOLDS": [0.8, 0.6]})
    with pytest.raises(ValueError, match="divisible"):
        TrainConfig.from_preset("smoke", **{"SOLVER.IMS_PER_BATCH": 3}).per_process_batch(2)


def test_set_parses_cli_strings_and_chains():
    cfg = TrainConfig.from_preset("smoke")
    cfg.set("SOLVER.MAX_ITER=50").set("MODEL.RPN.IOU_THRESHOLDS=[0.3, 0.6]").set("MODEL.WEIGHTS=/tmp/x.pth")
    assert cfg["SOLVER.MAX_ITER"] == 50
    assert cfg["MODEL.RPN.IOU_THRESHOLDS"] == [0.3, 0.6]
    assert cfg["MODEL.WEIGHTS"] == "/tmp/x.pth"
    cfg2 = TrainConfig.from_preset("smoke", SOLVER__BASE_LR=0.005)
    assert cfg2["SOLVER.BASE_LR"] == 0.005


def test_epochs_conversion_shows_arithmetic():
    iters, text = epochs_to_iterations(500, 800, 8)
    assert iters == 50000
    assert "500 epochs x 800 training images / 8 images per batch = 50000 iterations" == text
    assert epochs_to_iterations(1, 5, 2)[0] == 3  # rounds up: every image seen
    cfg = TrainConfig.from_preset("smoke", **{"SOLVER.EPOCHS": 10, "SOLVER.MAX_ITER": 100, "SOLVER.STEPS": [80]})
    new, text = apply_epochs(cfg, n_train=40)
    assert new["SOLVER.MAX_ITER"] == 200 and new["SOLVER.STEPS"] == [160]
    assert "10 epochs x 40" in text
    assert cfg["SOLVER.MAX_ITER"] == 100  # the original is untouched
    assert apply_epochs(TrainConfig.from_preset("smoke"), 40)[1] is None


def test_json_round_trip(tmp_path):
    cfg = TrainConfig.from_preset("cpu", **{"SOLVER.BASE_LR": 0.01})
    path = tmp_path / "config.json"
    cfg.to_json(path, extra={"_weights": {"source": "scratch"}})
    back = TrainConfig.from_json(path)
    assert back == cfg and back.preset == "cpu"
    assert back.extra["_weights"]["source"] == "scratch"
    nested = {
        "SOLVER": {"BASE_LR": 0.03},
        "MODEL": {"RESNETS": {"DEPTH": 18, "NORM": "GN"}, "WEIGHTS": "", "BACKBONE": {"FREEZE_AT": 0}},
    }
    assert TrainConfig.from_dict(nested)["SOLVER.BASE_LR"] == 0.03
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_json(path)


def test_presets_are_valid_and_name_their_dataset():
    import torch

    for name in PRESET_NAMES:
        cfg = TrainConfig.from_preset(name)
        spec = dataset_spec(name)
        assert spec["n_images"] >= 1 and spec["generator_preset"]
        assert cfg.preset in PRESET_NAMES and cfg.preset != "auto"
    # tests run offline (conftest): no COCO weights, so auto trains the scratch preset
    assert TrainConfig.from_preset("auto").preset == ("paper" if torch.cuda.is_available() else "cpu")
    paper = TrainConfig.from_preset("paper")
    row8 = table1()[7]
    assert paper["SOLVER.BASE_LR"] == row8["LR"]
    assert paper["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"] == row8["ROI head"]
    assert paper["MODEL.RPN.IOU_THRESHOLDS"][1] == row8["IoU thr"]
    assert paper["MODEL.RPN.NMS_THRESH"] == row8["NMS"]
    assert paper["SOLVER.EPOCHS"] == row8["Epochs"] and paper["DATASET.N_IMAGES"] == row8["Dataset size"]
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_preset("huge")


def test_mapping_table_covers_every_key_and_reports_ignored():
    rows = torchvision_mapping()
    assert [r["key"] for r in rows] == [k.name for k in KEYS]
    assert all(r["torchvision"] for r in rows)
    ignored = {r["key"] for r in rows if r["ignored_by_torchvision"]}
    assert "MODEL.MASK_ON" in ignored and "SOLVER.BASE_LR" not in ignored
    cfg = TrainConfig.from_preset("smoke")
    assert cfg.ignored_by_torchvision() == {}
    cfg.set("MODEL.MASK_ON", False)
    assert cfg.ignored_by_torchvision() == {"MODEL.MASK_ON": False}
    json.dumps(rows)  # the table is plain data
    assert set(DEFAULTS) == {r["key"] for r in rows}


def test_config_diff_names_what_changed_and_tolerates_csv_text():
    from nanowire_utils.maskrcnn.config import config_diff

    cpu, long = TrainConfig.from_preset("cpu").to_dict(), TrainConfig.from_preset("cpu-long").to_dict()
    # cpu-long is the cpu preset trained longer: only the schedule (and the preset's name) differs
    assert config_diff(cpu, long, skip=("_",)) == {
        "SOLVER.MAX_ITER": (1500, 6000),
        "SOLVER.STEPS": ([1200], [4800, 5600]),
        "SOLVER.CHECKPOINT_PERIOD": (250, 1000),
        "TEST.EVAL_PERIOD": (250, 1000),
    }
    assert list(config_diff(cpu, long, skip=("_", "TEST.", "SOLVER.CHECKPOINT"))) == ["SOLVER.MAX_ITER", "SOLVER.STEPS"]
    # values read back from a CSV: lists as JSON text, floats after a round trip
    recorded = {"MODEL.RPN.IOU_THRESHOLDS": "[0.3, 0.7]", "SOLVER.BASE_LR": 0.1 + 0.2, "OLD.KEY": 1}
    now = {"MODEL.RPN.IOU_THRESHOLDS": [0.3, 0.7], "SOLVER.BASE_LR": 0.3, "NEW.KEY": 2}
    assert config_diff(recorded, now) == {"NEW.KEY": (None, 2), "OLD.KEY": (1, None)}
    assert config_diff(recorded, now, common_only=True) == {}
    # a vocabulary key recorded before it existed counts at its default: drift only off it
    old = {k: v for k, v in cpu.items() if k != "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"}
    assert "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT" not in config_diff(old, cpu, common_only=True)
    assert config_diff(old, cpu, fill_defaults=True) == {"MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": (1.0, 3.0)}
    assert config_diff(old, {**cpu, "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": 1.0}, fill_defaults=True) == {}
