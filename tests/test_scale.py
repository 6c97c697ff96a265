"""real.scale: wire width and input scale from the image alone."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from skimage.draw import polygon

from nanowire_utils.real import scale as sc


def _bars(width: float, shape=(256, 256), angles=(0, 30, 75, 120), length=150):
    """Bright bars of one ``width`` (px) at several angles on a black image."""
    img = np.zeros(shape, np.float32)
    rng = np.random.default_rng(0)
    for a in angles:
        t = math.radians(a)
        d, n = np.array([math.cos(t), math.sin(t)]), np.array([-math.sin(t), math.cos(t)])
        c = np.array(shape[::-1]) / 2 + rng.uniform(-30, 30, 2)
        corners = [c + s * d * length / 2 + u * n * width / 2 for s, u in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        xs, ys = zip(*corners)
        rr, cc = polygon(ys, xs, shape)
        img[rr, cc] = 0.8
    return img


@pytest.mark.parametrize("width", [4, 7, 12, 20, 33])
def test_width_of_drawn_bars(width):
    est = sc.estimate_wire_width(_bars(width, shape=(400, 400), length=250), smooth_sigma=0)
    assert est.found
    assert est.width_px == pytest.approx(width, abs=max(1.0, 0.1 * width))


def _synthetic(width: float, seed: int = 0, n: int = 3):
    """Images of the paper preset whose wires are all about ``width`` px wide, and the
    median width of their annotation masks (the known width)."""
    from nanowire_utils.chapters.crossmodality import median_wire_width
    from nanowire_utils.coco import decode_rle
    from nanowire_utils.synth.dataset import make_sample
    from nanowire_utils.synth.generator_presets import get_preset

    cfg = get_preset(
        "paper",
        **{
            "network.width_mean": width,
            "network.width_std": 0.05 * width,
            "network.width_range": (0.8 * width, 1.2 * width),
            "network.n_wires": (6, 12),
        },
    )
    images, masks = [], []
    for i in range(1, n + 1):
        img, anns, _ = make_sample(cfg, seed, i)
        images.append(img)
        masks.extend(decode_rle(a["segmentation"]) for a in anns)
    return cfg, images, median_wire_width(np.stack(masks))


@pytest.mark.parametrize("width", [8.0, 16.0, 32.0])
def test_width_of_rendered_synthetic_images(width):
    """Blurred OD renderings of the generator at several widths: the image estimate is within
    20 % of the annotation masks' median width (the estimator never sees the masks)."""
    cfg, images, known = _synthetic(width)
    assert known == pytest.approx(width, rel=0.25)  # the generator made what was asked
    est = np.median([sc.estimate_wire_width(img).width_px for img in images])
    assert est == pytest.approx(known, rel=0.2)
    pooled = sc.training_image_width(cfg, n_images=3)
    assert pooled == pytest.approx(known, rel=0.2)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_input_scale_undoes_a_rescaling(factor):
    """An image of the training distribution resampled by ``factor`` gets an input scale of
    about 1 / ``factor``: the estimator's bias cancels in the ratio."""
    from skimage.transform import rescale

    cfg, images, _ = _synthetic(16.0, seed=1, n=4)
    train_width = sc.training_image_width(cfg, n_images=4, seed=1)
    scaled = rescale(images[0], factor, order=1, anti_aliasing=factor < 1)
    est = sc.estimate_input_scale(scaled, train_width)
    assert not est.fallback
    assert est.scale == pytest.approx(1 / factor, rel=0.2)
    assert est.train_width_px == train_width


@pytest.mark.parametrize(
    "image, word",
    [
        (np.zeros((64, 64), np.uint8), "blank"),
        (np.full((64, 64), 255, np.uint8), "saturated"),
        (np.full((64, 64), 0.4, np.float32), "constant"),
    ],
)
def test_no_wires_falls_back_to_scale_1_and_says_so(image, word, caplog):
    est = sc.estimate_wire_width(image)
    assert not est.found and math.isnan(est.width_px) and word in est.reason
    with caplog.at_level(logging.WARNING, logger="nanowire_utils.real.scale"):
        s = sc.estimate_input_scale(image, 17.0, name="test image")
    assert s.scale == 1.0 and s.fallback and math.isnan(s.width_px)
    assert "no wires were found" in caplog.text and "falling back to input scale 1" in caplog.text
    assert "test image" in caplog.text


def test_mostly_saturated_image_is_not_measured(caplog):
    img = np.ones((128, 128), np.float32)
    img[:30] = 0.0  # 77 % white: saturated, or dark wires on a bright field
    est = sc.estimate_wire_width(img)
    assert not est.found and "saturated" in est.reason
    with caplog.at_level(logging.WARNING, logger="nanowire_utils.real.scale"):
        assert sc.estimate_input_scale(img, 10.0).scale == 1.0
    assert "falling back" in caplog.text


def test_training_width_from_dataset_folder_matches_the_preset(tmp_path):
    from nanowire_utils.synth.dataset import write_dataset

    write_dataset(tmp_path / "ds", 5, seed=3, config="smoke", splits=(0.6, 0.2, 0.2), workers=1, progress=False)
    from_folder = sc.training_image_width(tmp_path / "ds", n_images=3)
    from_preset = sc.training_image_width("smoke", n_images=3, seed=3)
    assert from_folder == pytest.approx(from_preset, rel=0.05)  # same images, 8-bit rounding apart
    with pytest.raises(FileNotFoundError, match="dataset folder"):
        sc.training_image_width(tmp_path, n_images=1)


def test_scale_rounding_clipping_and_argument_checks():
    assert sc.scale_for_width(17.0, 10.0) == pytest.approx(1.7)
    assert sc.scale_for_width(17.0, 1.0) == 4.0
    assert sc.scale_for_width(1.0, 17.0) == 0.25
    with pytest.raises(ValueError, match="train_width"):
        sc.scale_for_width(0, 10.0)
    with pytest.raises(ValueError, match="max_foreground"):
        sc.estimate_wire_width(np.zeros((8, 8)), max_foreground=0)
    est = sc.estimate_wire_width(_bars(10), keep_mask=True)
    assert est.mask.shape == (256, 256) and est.mask.any() and len(est.ridge_widths) > 0
