"""Tests of nanowire_utils.maskrcnn.detectron2_engine.

The pure-Python part (config mapping, engine choice, errors without detectron2) runs
everywhere; the rest runs only where detectron2 is importable (a GPU hub) and is skipped here.
"""

import json

import numpy as np
import pytest

from nanowire_utils.maskrcnn import detectron2_engine as d2e
from nanowire_utils.maskrcnn import engine
from nanowire_utils.maskrcnn.config import TrainConfig

HAS_D2 = d2e.detectron2_available()
needs_d2 = pytest.mark.skipif(not HAS_D2, reason="detectron2 is not installed (GPU hubs only)")
_D2_SECTIONS = ("MODEL.", "INPUT.", "SOLVER.", "DATALOADER.", "TEST.", "SEED")


def test_mapping_is_plain_detectron2_keys():
    cfg = TrainConfig.from_preset("smoke")
    d = d2e.detectron2_overrides(cfg, device="cpu")
    assert all(k.startswith(_D2_SECTIONS) for k in d), [k for k in d if not k.startswith(_D2_SECTIONS)]
    for k in d2e.PROJECT_KEYS:
        assert k not in d
    assert not any(k.startswith(("DATASET.", "INPUT.AUG.")) for k in d)
    json.dumps(d)  # plain values only
    # vocabulary values pass through under the same names
    for key in (
        "SOLVER.BASE_LR",
        "MODEL.RPN.NMS_THRESH",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        "MODEL.ANCHOR_GENERATOR.SIZES",
        "MODEL.RESNETS.DEPTH",
        "SOLVER.MAX_ITER",
    ):
        assert d[key] == cfg[key], key
    assert d["INPUT.MIN_SIZE_TRAIN"] == tuple(cfg["INPUT.MIN_SIZE_TRAIN"])
    assert d["SOLVER.STEPS"] == tuple(cfg["SOLVER.STEPS"])
    assert d["MODEL.DEVICE"] == "cpu"
    assert d["INPUT.MASK_FORMAT"] == "bitmask"  # the data set's masks are RLE


def test_scratch_training_uses_groupnorm_and_freeze_at_0():
    cfg = TrainConfig.from_preset("cpu")  # from scratch, ResNet-18
    assert cfg["MODEL.WEIGHTS"] == ""
    d = d2e.detectron2_overrides(cfg, device="cpu")
    assert d["MODEL.RESNETS.NORM"] == cfg["MODEL.RESNETS.NORM"] == "BN"  # trainable BN stays trainable
    assert d["MODEL.BACKBONE.FREEZE_AT"] == 0
    gn = d2e.detectron2_overrides(TrainConfig.from_preset("cpu", {"MODEL.RESNETS.NORM": "GN"}), device="cpu")
    assert gn["MODEL.RESNETS.NORM"] == "GN" and gn["MODEL.BACKBONE.FREEZE_AT"] == 0
    assert d["MODEL.FPN.NORM"] == "GN" and d["MODEL.ROI_MASK_HEAD.NORM"] == "GN"
    assert d["MODEL.ROI_BOX_HEAD.NUM_CONV"] == cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"]  # head shapes are the vocabulary's
    conv_head = d2e.detectron2_overrides(
        TrainConfig.from_preset("cpu", {"MODEL.ROI_BOX_HEAD.NUM_CONV": 4}), device="cpu"
    )
    assert conv_head["MODEL.ROI_BOX_HEAD.NORM"] == "GN"
    assert d["MODEL.RESNETS.STRIDE_IN_1X1"] is False
    assert d["MODEL.RESNETS.RES2_OUT_CHANNELS"] == 64  # ResNet-18/34 need it in detectron2
    assert d["INPUT.FORMAT"] == "RGB" and d["MODEL.PIXEL_MEAN"] == cfg["MODEL.PIXEL_MEAN"]


def test_pretrained_keeps_zoo_pixel_statistics():
    cfg = TrainConfig.from_preset("paper")
    d = d2e.detectron2_overrides(cfg, device="cuda")
    assert d["MODEL.WEIGHTS"] == "coco"
    assert "MODEL.PIXEL_MEAN" not in d and "MODEL.PIXEL_STD" not in d and d["INPUT.FORMAT"] == "BGR"
    assert d["MODEL.RESNETS.NORM"] == "FrozenBN" and d["MODEL.BACKBONE.FREEZE_AT"] == 2
    assert "MODEL.RESNETS.RES2_OUT_CHANNELS" not in d  # R50 keeps detectron2's 256
    assert d["MODEL.RPN.IOU_THRESHOLDS"] == [0.3, 0.6] and d["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"] == 256


def test_mapping_accepts_a_flat_dict():
    cfg = TrainConfig.from_preset("smoke")
    assert d2e.detectron2_overrides(cfg.to_dict(), device="cpu") == d2e.detectron2_overrides(cfg, device="cpu")


def test_convert_metrics(tmp_path):
    src = tmp_path / "metrics.json"
    src.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"iteration": 19, "total_loss": 2.5, "loss_cls": 0.5, "loss_rpn_loc": 0.1, "lr": 0.01},
                {"iteration": 39, "bbox/AP": 12.0, "segm/AP": 10.0},
            ]
        )
        + "\n"
    )
    n = d2e.convert_metrics(src, tmp_path / "metrics.jsonl")
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert n == 2
    assert recs[0] == {
        "kind": "train",
        "iteration": 19,
        "lr": 0.01,
        "loss": 2.5,
        "loss_classifier": 0.5,
        "loss_rpn_box_reg": 0.1,
    }
    assert recs[1]["kind"] == "eval" and recs[1]["segm/AP"] == 10.0


@pytest.mark.skipif(HAS_D2, reason="checks the error shown when detectron2 is missing")
def test_missing_detectron2_names_the_install_command(tmp_path):
    with pytest.raises(engine.EngineUnavailable) as exc:
        engine.resolve_engine("detectron2")
    msg = str(exc.value)
    assert "pip install --no-build-isolation" in msg and "detectron2.git@" in msg and "setuptools<82" in msg
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, ImportError)  # one-line CLI error
    assert engine.resolve_engine("auto") == "torchvision"
    assert engine.resolve_engine("torchvision") == "torchvision"
    with pytest.raises(ValueError, match="ENGINE"):
        engine.resolve_engine("mmdet")
    with pytest.raises(d2e.Detectron2NotInstalled):
        d2e.build_detectron2_cfg(TrainConfig.from_preset("smoke"))


@pytest.mark.skipif(HAS_D2, reason="checks the error shown when detectron2 is missing")
def test_load_predictor_dispatches_on_checkpoint_engine(tmp_path):
    torch = pytest.importorskip("torch")
    from nanowire_utils.maskrcnn.engine import load_predictor

    cfg = TrainConfig.from_preset("smoke")
    torch.save(
        {"model": {}, "iteration": 0, "config": cfg.to_dict(), "engine": "detectron2"}, tmp_path / "model_final.pth"
    )
    with pytest.raises(engine.EngineUnavailable, match="trained with the detectron2 engine.*no-build-isolation"):
        load_predictor(tmp_path, device="cpu")


# ------------------------------------------------------------------ with detectron2 (GPU hubs)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from nanowire_utils.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("d2") / "data"
    write_dataset(out, n=6, seed=0, config="smoke", splits=(0.5, 0.17, 0.33), workers=1, progress=False)
    return out


def _tiny_cfg(**over):
    base = {
        "SOLVER.MAX_ITER": 4,
        "SOLVER.STEPS": [3],
        "SOLVER.WARMUP_ITERS": 1,
        "SOLVER.CHECKPOINT_PERIOD": 2,
        "SOLVER.IMS_PER_BATCH": 2,
        "TEST.EVAL_PERIOD": 0,
        "ENGINE": "detectron2",
        "SOLVER.AMP.ENABLED": False,
    }
    base.update(over)
    return TrainConfig.from_preset("smoke", base)


@pytest.mark.detectron2
@needs_d2
def test_build_cfg_and_mapper(tiny_data):
    d2cfg = d2e.build_detectron2_cfg(_tiny_cfg(), device="cpu")
    assert d2cfg.MODEL.RESNETS.NORM == "GN" and d2cfg.MODEL.BACKBONE.FREEZE_AT == 0
    assert d2cfg.MODEL.WEIGHTS == ""
    assert d2cfg.MODEL.RESNETS.DEPTH == 18 and d2cfg.MODEL.RESNETS.RES2_OUT_CHANNELS == 64
    from detectron2.data import DatasetCatalog

    name = d2e.register_split(tiny_data, "train")
    dicts = DatasetCatalog.get(name)
    assert dicts and dicts[0]["annotations"]
    out = d2e.NanowireMapper(_tiny_cfg(), is_train=True)(dicts[0])
    img = out["image"]
    assert img.shape[0] == 3 and float(img.max()) <= 255.0 and float(img.min()) >= 0.0
    assert len(out["instances"]) > 0 and out["instances"].gt_masks.tensor.shape[-2:] == img.shape[-2:]


@pytest.mark.detectron2
@needs_d2
@pytest.mark.slow
def test_train_predict_round_trip(tiny_data, tmp_path):
    import torch

    from nanowire_utils.maskrcnn.engine import load_predictor, read_metrics

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = _tiny_cfg(DEVICE=device)
    res = d2e.train(cfg, tiny_data, tmp_path / "run", eval_split=None)
    assert res.iterations == 4
    ckpt = torch.load(tmp_path / "run" / "model_final.pth", map_location="cpu", weights_only=True)
    assert ckpt["engine"] == "detectron2" and "config" in ckpt
    assert list((tmp_path / "run" / "checkpoints").glob("model_*.pth"))
    assert read_metrics(tmp_path / "run")
    pred = load_predictor(tmp_path / "run", device=device, score_thresh=0.0)
    assert pred.engine == "detectron2"
    img = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    inst = pred.predict(img)
    assert inst.masks.shape[1:] == img.shape
    big = pred.predict(np.tile(img, (2, 2)))
    assert big.masks.shape[1:] == (256, 256)
