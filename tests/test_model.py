"""build_model, the checkpoint format and its errors, outputs -> Instances, initial weights."""

import numpy as np
import pytest
import torch

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.config import TrainConfig
from nanowire_utils.maskrcnn.model import arch_string, build_model, load_checkpoint, outputs_to_instances


def _tiny(**over):
    base = {
        "INPUT.MIN_SIZE_TRAIN": [64],
        "INPUT.MAX_SIZE_TRAIN": 64,
        "INPUT.MIN_SIZE_TEST": 64,
        "INPUT.MAX_SIZE_TEST": 64,
    }
    base.update(over)
    return TrainConfig.from_preset("smoke", **base)


def _target():
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 20:26, 8:50] = 1
    return {"boxes": torch.tensor([[8.0, 20, 50, 26]]), "labels": torch.tensor([1]), "masks": masks}


@pytest.mark.parametrize("depth,norm", [(18, "GN"), (34, "BN"), (50, "GN")])
def test_build_model_per_depth_and_norm(depth, norm):
    cfg = _tiny(**{"MODEL.RESNETS.DEPTH": depth, "MODEL.RESNETS.NORM": norm})
    model = build_model(cfg)
    norms = {type(m).__name__ for m in model.backbone.body.modules()}
    assert ("GroupNorm" in norms) == (norm == "GN")
    assert "FrozenBatchNorm2d" not in norms
    assert all(p.requires_grad for p in model.parameters())  # from scratch: nothing frozen
    assert model.backbone.out_channels == cfg["MODEL.FPN.OUT_CHANNELS"]
    model.train()
    losses = model([torch.rand(3, 64, 64)], [_target()])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 64, 64)])[0]
    assert out["masks"].shape[1:] == (1, 64, 64)
    assert len(out["boxes"]) <= cfg["TEST.DETECTIONS_PER_IMAGE"]


def test_pretrained_style_config_freezes_stem_and_res2():
    cfg = _tiny(
        **{
            "MODEL.WEIGHTS": "coco",
            "MODEL.RESNETS.DEPTH": 50,
            "MODEL.RESNETS.NORM": "FrozenBN",
            "MODEL.BACKBONE.FREEZE_AT": 2,
        }
    )
    model = build_model(cfg)
    frozen = {n.split(".")[2] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "layer1"}
    assert model.roi_heads.box_predictor.cls_score.out_features == 2  # nanowire + background


def test_settings_reach_the_model():
    cfg = _tiny(
        **{
            "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION": 28,
            "MODEL.RPN.NMS_THRESH": 0.6,
            "MODEL.RPN.IOU_THRESHOLDS": [0.2, 0.6],
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 32,
            "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 1.0, 4.0]],
            "INPUT.MIN_SIZE_TRAIN": [48],
            "INPUT.MIN_SIZE_TEST": 64,
        }
    )
    model = build_model(cfg)
    assert model.rpn.nms_thresh == 0.6
    assert model.rpn.proposal_matcher.high_threshold == 0.6 and model.rpn.proposal_matcher.low_threshold == 0.2
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 32
    assert model.rpn.anchor_generator.num_anchors_per_location()[0] == 3
    # mask head resolution: ROIAlign 28 -> 56 x 56 mask logits
    feats = model.backbone(torch.rand(1, 3, 64, 64))
    boxes = [torch.tensor([[0.0, 0, 30, 30]])]
    x = model.roi_heads.mask_head(model.roi_heads.mask_roi_pool(feats, boxes, [(64, 64)]))
    assert model.roi_heads.mask_predictor(x).shape[-1] == 56
    # separate train / test sizes
    model.train()
    images, _ = model.transform([torch.rand(3, 64, 64)], [_target()])
    assert images.image_sizes[0] == (48, 48)
    model.eval()
    images, _ = model.transform([torch.rand(3, 64, 64)])
    assert images.image_sizes[0] == (64, 64)


def _save_ckpt(path, cfg, model):
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": {},
            "scheduler": {},
            "iteration": 3,
            "config": cfg.to_dict(),
            "engine": "torchvision",
            "arch": arch_string(cfg),
            "rng": {},
        },
        path,
    )


def test_checkpoint_round_trip_and_errors(tmp_path):
    cfg = _tiny()
    model = build_model(cfg)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    _save_ckpt(run / "checkpoints" / "model_0000003.pth", cfg, model)
    (run / "last_checkpoint").write_text("checkpoints/model_0000003.pth\n")
    loaded, cfg2 = load_checkpoint(run)
    assert cfg2 == cfg and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])

    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path / "nothing_here")
    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="--weights"):
        load_checkpoint(tmp_path / "empty")

    data = (run / "checkpoints" / "model_0000003.pth").read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(bad)

    other = _tiny(**{"MODEL.FPN.OUT_CHANNELS": 64})
    with pytest.raises(ValueError, match=r"MODEL\.FPN\.OUT_CHANNELS"):
        load_checkpoint(run, cfg=other)
    # a checkpoint whose weights do not match its own recorded config
    lying = tmp_path / "lying.pth"
    _save_ckpt(lying, _tiny(**{"MODEL.RESNETS.DEPTH": 34}), model)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(lying)


def test_outputs_to_instances():
    masks = torch.zeros(3, 1, 8, 8)
    masks[0, 0, 1:3, 1:5] = 0.9
    masks[1, 0, 4:6, 2:7] = 0.4
    masks[2, 0, 0:8, 0:8] = 0.8
    out = {
        "boxes": torch.tensor([[1.0, 1, 5, 3], [2, 4, 7, 6], [0, 0, 8, 8]]),
        "scores": torch.tensor([0.9, 0.7, 0.2]),
        "labels": torch.ones(3, dtype=torch.int64),
        "masks": masks,
    }
    inst = outputs_to_instances(out, score_thresh=0.5)
    assert isinstance(inst, Instances) and len(inst) == 2
    assert inst.masks[0].sum() == 8 and inst.masks[1].sum() == 0  # 0.4 < mask_thresh
    assert outputs_to_instances(out, score_thresh=0.5, mask_thresh=0.3).masks[1].sum() == 10
    np.testing.assert_allclose(inst.scores, [0.9, 0.7])


def test_weights_offline_falls_back_to_scratch_safe_config(tmp_path, monkeypatch, caplog):
    from nanowire_utils.maskrcnn.weights import (
        COCO_FILENAME,
        coco_weights_location,
        load_initial_weights,
        resolve_weights,
    )

    monkeypatch.setenv("NANOWIRE_UTILS_OFFLINE", "1")
    monkeypatch.setenv("NANOWIRE_UTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NANOWIRE_UTILS_WEIGHTS", raising=False)
    paper = TrainConfig.from_preset("paper")
    with caplog.at_level("INFO", logger="nanowire_utils.maskrcnn.weights"):
        cfg, info = resolve_weights(paper)
    assert info["source"] == "scratch (fallback)" and "NANOWIRE_UTILS_OFFLINE" in info["message"]
    assert cfg["MODEL.RESNETS.NORM"] == "GN" and cfg["MODEL.BACKBONE.FREEZE_AT"] == 0 and cfg["MODEL.WEIGHTS"] == ""
    assert "from scratch" in caplog.text

    # an explicit file through the environment variable: loaded, class-specific layers skipped
    donor_cfg = _tiny(**{"MODEL.ROI_HEADS.NUM_CLASSES": 3})
    path = tmp_path / "donor.pth"
    torch.save(build_model(donor_cfg).state_dict(), path)
    monkeypatch.setenv("NANOWIRE_UTILS_WEIGHTS", str(path))
    small = _tiny(**{"MODEL.WEIGHTS": "coco", "MODEL.RESNETS.DEPTH": 18})
    with pytest.raises(ValueError, match="DEPTH=50"):
        resolve_weights(small)
    cfg = _tiny(**{"MODEL.WEIGHTS": str(path)})
    cfg, info = resolve_weights(cfg)
    assert info["source"] == "path"
    model = build_model(cfg)
    info = load_initial_weights(model, info)
    assert info["skipped"] == 6  # weight and bias of cls_score, bbox_pred, mask_fcn_logits (other class count)
    monkeypatch.setenv("NANOWIRE_UTILS_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match="NANOWIRE_UTILS_WEIGHTS"):
        resolve_weights(TrainConfig.from_preset("paper"))

    # the same lookup order coco_weights_location reports: the variable, then the cache
    monkeypatch.setenv("NANOWIRE_UTILS_WEIGHTS", str(path))
    assert resolve_weights(paper)[1]["source"] == "env" and coco_weights_location() == ("env", str(path))
    monkeypatch.delenv("NANOWIRE_UTILS_WEIGHTS")
    cached = tmp_path / "cache" / COCO_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    cfg, info = resolve_weights(paper)
    assert info == {"source": "cache", "path": str(cached), "message": f"COCO weights from the cache {cached}"}
    assert cfg["MODEL.RESNETS.NORM"] == "FrozenBN" and coco_weights_location() == ("cache", str(cached))
