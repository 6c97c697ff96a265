"""modelviz: internals of one forward pass, anchors, positive anchors, figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nanowire_utils.maskrcnn.config import TrainConfig
from nanowire_utils.maskrcnn.model import build_model
from nanowire_utils.viz import model as mv

SIZE = 64


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cfg():
    return TrainConfig.from_preset("smoke", **{"INPUT.MIN_SIZE_TEST": SIZE, "INPUT.MAX_SIZE_TEST": SIZE})


@pytest.fixture(scope="module")
def inner(cfg):
    torch.manual_seed(0)
    model = build_model(cfg)
    img = np.zeros((SIZE, SIZE), np.float32)
    img[20:26, 8:50] = 0.8
    return mv.model_internals(model, img)


def test_internals_shapes_follow_the_fpn(cfg, inner):
    assert list(inner.features) == ["P2", "P3", "P4", "P5", "P6"]
    assert inner.strides == {"P2": 4, "P3": 8, "P4": 16, "P5": 32, "P6": 64}
    for name, f in inner.features.items():
        assert f.shape == (cfg["MODEL.FPN.OUT_CHANNELS"], SIZE // inner.strides[name], SIZE // inner.strides[name])
    a = len(cfg["MODEL.ANCHOR_GENERATOR.SIZES"][0]) * len(cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"][0])
    assert inner.anchors_per_position == a
    positions = sum(f.shape[1] * f.shape[2] for f in inner.features.values())
    assert inner.anchors.shape == (positions * a, 4) and len(inner.anchor_levels) == len(inner.anchors)
    assert len(inner.proposals) <= cfg["MODEL.RPN.POST_NMS_TOPK_TEST"]
    assert np.all(np.diff(inner.proposal_scores) <= 1e-6)  # best first
    assert np.all((inner.proposal_scores >= 0) & (inner.proposal_scores <= 1))
    assert inner.proposals.min() >= 0 and inner.proposals.max() <= SIZE  # clipped to the image
    r = cfg["MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION"]
    assert inner.roi_features.shape == (cfg["MODEL.FPN.OUT_CHANNELS"], r, r)
    assert inner.roi_mask.shape == (2 * r, 2 * r)
    assert np.all((inner.roi_mask >= 0) & (inner.roi_mask <= 1))


def test_model_transform_sizes_are_restored(cfg):
    model = build_model(cfg)
    before = (dict(model.transform.sizes), model.transform.min_size, model.transform.max_size)
    mv.model_internals(model, np.zeros((48, 80), np.float32))
    assert (dict(model.transform.sizes), model.transform.min_size, model.transform.max_size) == before


def test_anchors_at_match_sizes_ratios_and_grid(cfg, inner):
    sizes = cfg["MODEL.ANCHOR_GENERATOR.SIZES"]
    ratios = cfg["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"][0]
    for level in range(5):
        stride = 4 * 2**level
        boxes = mv.anchors_at(inner, level, 37, 29)
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        np.testing.assert_allclose(np.sqrt(w * h), sizes[level][0], rtol=0.1)
        np.testing.assert_allclose(h / w, ratios, rtol=0.15)
        centre = ((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2)
        np.testing.assert_allclose(centre[0], (29 // stride) * stride, atol=0.5)
        np.testing.assert_allclose(centre[1], (37 // stride) * stride, atol=0.5)
    with pytest.raises(ValueError, match="level"):
        mv.anchors_at(inner, 7, 0, 0)


def test_positive_anchors_follow_the_iou_rule(inner):
    ref = np.array([[8, 20, 50, 26]], np.float32)
    pos = mv.positive_anchors(inner, ref, fg_iou=0.5)
    iou = mv.box_iou(inner.anchors, ref)[:, 0]
    assert len(pos) >= 1
    assert set(np.flatnonzero(iou >= 0.5)) <= set(pos)
    assert iou.argmax() in pos  # the best anchor is positive even below the threshold
    assert len(mv.positive_anchors(inner, ref, fg_iou=1.0)) <= len(pos)
    assert len(mv.positive_anchors(inner, np.zeros((0, 4)))) == 0
    with pytest.raises(ValueError, match="fg_iou"):
        mv.positive_anchors(inner, ref, fg_iou=1.5)


def test_box_iou_and_feature_energy():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(mv.box_iou(a, b)[0], [1.0, 50 / 150, 0.0], atol=1e-6)
    f = np.zeros((4, 2, 3), np.float32)
    f[:, 1, 2] = [3, 4, 0, 0]
    e = mv.feature_energy(f)
    assert e.shape == (2, 3) and e[1, 2] == pytest.approx(np.sqrt(25 / 4)) and e[0, 0] == 0
    with pytest.raises(ValueError, match="C, h, w"):
        mv.feature_energy(np.zeros((3, 3)))


def test_internals_reject_bad_images(cfg):
    model = build_model(cfg)
    with pytest.raises(ValueError, match="gray"):
        mv.model_internals(model, np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mv.model_internals(model, np.full((32, 32), 255.0, np.float32))


def test_loss_terms_cover_the_models_losses(cfg):
    model = build_model(cfg).train()
    masks = torch.zeros(1, SIZE, SIZE, dtype=torch.uint8)
    masks[0, 20:26, 8:50] = 1
    target = {"boxes": torch.tensor([[8.0, 20, 50, 26]]), "labels": torch.tensor([1]), "masks": masks}
    losses = model([torch.rand(3, SIZE, SIZE)], [target])
    rows = mv.loss_terms_table()
    assert {r["torchvision loss"] for r in rows} == set(losses)
    assert {r["paper term"] for r in rows} >= {"L_cls", "L_bbox", "L_mask"}


def test_figures(cfg, inner):
    fig = mv.draw_architecture(cfg)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "ResNet-18" in texts and f"{cfg['MODEL.FPN.OUT_CHANNELS']} ch." in texts and "ROIAlign" in texts
    assert "ResNet-50" in " ".join(t.get_text() for t in mv.draw_architecture().axes[0].texts)
    assert len(mv.plot_feature_maps(inner).axes) == 6
    fig = mv.plot_anchors_and_proposals(inner, np.array([[8, 20, 50, 26]]), top_n=5)
    assert len(fig.axes) == 3 and "top 5" in fig.axes[2].get_title()
    assert len(fig.axes[0].patches) == 5 * inner.anchors_per_position
    assert len(mv.plot_roi(inner).axes) >= 3
