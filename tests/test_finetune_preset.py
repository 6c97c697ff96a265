"""The cpu-finetune preset: chosen by 'auto' on a CPU when COCO weights resolve, loading them.

No machine of the project can download torchvision's COCO weights, so a state dict in
torchvision's own format (its maskrcnn_resnet50_fpn with 91 classes, random values) stands in
for the file a reader's machine would cache; what is tested is the path, not the AP.
"""

import json
import logging

import pytest
import torch

from nanowire_utils.maskrcnn.config import TrainConfig, resolve_preset_name
from nanowire_utils.maskrcnn.engine import read_checkpoint, train
from nanowire_utils.maskrcnn.loading import make_toy_dataset
from nanowire_utils.maskrcnn.weights import ENV_WEIGHTS, coco_weights_location


@pytest.fixture(scope="module")
def coco_like_weights(tmp_path_factory):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path_factory.mktemp("weights") / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    torch.save(model.state_dict(), path)
    return path


def test_auto_picks_scratch_without_weights(monkeypatch, caplog):
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("NANOWIRE_UTILS_OFFLINE", "1")
    monkeypatch.setenv("NANOWIRE_UTILS_CACHE", "/nonexistent/cache")
    if torch.cuda.is_available():
        pytest.skip("auto means the paper preset on a GPU")
    assert coco_weights_location()[0] is None
    with caplog.at_level(logging.INFO):
        assert resolve_preset_name("auto", for_training=True) == "cpu"
    assert "no COCO weights" in caplog.text
    assert resolve_preset_name("auto") == "cpu"  # the book's scale never depends on weights


@pytest.mark.slow
def test_auto_picks_finetune_and_loads_the_weights(coco_like_weights, tmp_path, monkeypatch, caplog):
    if torch.cuda.is_available():
        pytest.skip("auto means the paper preset on a GPU")
    monkeypatch.setenv(ENV_WEIGHTS, str(coco_like_weights))
    with caplog.at_level(logging.INFO):
        cfg = TrainConfig.from_preset("auto")
    assert cfg.preset == "cpu-finetune" and "cpu-finetune" in caplog.text
    data = make_toy_dataset(tmp_path / "data", n_train=4, n_val=0, n_test=0, size=96, seed=0)
    cfg = cfg.replace(
        **{
            "SOLVER.MAX_ITER": 2,
            "SOLVER.STEPS": [],
            "SOLVER.WARMUP_ITERS": 0,
            "SOLVER.IMS_PER_BATCH": 1,
            "INPUT.CROP.ENABLED": False,
            "INPUT.MIN_SIZE_TRAIN": [96],
            "INPUT.MAX_SIZE_TRAIN": 96,
            "TEST.EVAL_PERIOD": 0,
        }
    )
    result = train(cfg, data, tmp_path / "run", progress=False)
    assert result.iterations == 2
    info = result.weights
    assert info["source"] == "env" and info["path"] == str(coco_like_weights)
    # every backbone/FPN/RPN/head weight loads; only COCO's 91-class predictors are skipped
    ckpt = read_checkpoint(tmp_path / "run")
    assert info["loaded"] > 300 and 0 < info["skipped"] <= 6, info
    assert ckpt["config"]["MODEL.RESNETS.NORM"] == "FrozenBN"
    frozen = ckpt["model"]["backbone.body.conv1.weight"]
    start = torch.load(coco_like_weights, weights_only=True)["backbone.body.conv1.weight"]
    assert torch.equal(frozen, start)  # FREEZE_AT 2: the stem did not train
    assert json.loads((tmp_path / "run" / "config.json").read_text())["_weights"]["source"] == "env"
