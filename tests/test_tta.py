"""maskrcnn.tta: test-time augmentation (flipped / rescaled views, merged by mask IoU and votes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.inference import to_gray01
from nanowire_utils.maskrcnn.tta import TTAPredictor, merge_views
from nanowire_utils.real.evaluation import mask_iou


class ThresholdPredictor:
    """A real function of the image (not a stand-in for the component under test, which is the
    merge): connected components of ``gray > 0.5``, scored by their mean brightness. It is
    exactly equivariant to flips. With ``left_only`` it reports only the components whose
    centre lies in the left half of the image it is given, so it is *not* equivariant."""

    def __init__(self, left_only=False):
        self.left_only = left_only
        self.calls = []

    def predict(self, image, tile=None, overlap=None):
        gray = to_gray01(image)
        self.calls.append((gray.shape, tile))
        labels, n = ndi.label(gray > 0.5)
        masks, scores = [], []
        for i in range(1, n + 1):
            m = labels == i
            if self.left_only and np.nonzero(m)[1].mean() >= gray.shape[1] / 2:
                continue
            masks.append(m)
            scores.append(float(gray[m].mean()))
        if not masks:
            return Instances.empty(gray.shape)
        return Instances.from_masks(np.stack(masks), np.asarray(scores, np.float32))


def _image(h=120, w=160):
    img = np.zeros((h, w), np.float32)
    img[10:18, 5:70] = 0.9  # left
    img[40:100, 20:28] = 0.7  # left
    img[30:38, 95:150] = 0.8  # right
    img[60:110, 120:130] = 0.6  # right
    return img


def _sorted(inst):
    order = np.lexsort((inst.boxes[:, 0], inst.boxes[:, 1]))
    return inst.subset(order)


def test_equivariant_model_gives_the_plain_prediction():
    img = _image()
    fake = ThresholdPredictor()
    plain = _sorted(fake.predict(img))
    merged = _sorted(TTAPredictor(fake).predict(img))
    assert len(plain) == 4
    np.testing.assert_array_equal(merged.masks, plain.masks)
    np.testing.assert_allclose(merged.scores, plain.scores, rtol=1e-6)
    shapes = [c[0] for c in fake.calls[1:]]
    assert len(shapes) == 4 and all(s == img.shape for s in shapes)  # one call per flip


def test_scaled_views_are_resampled_back():
    img = _image()
    fake = ThresholdPredictor()
    plain = _sorted(fake.predict(img))
    tta = TTAPredictor(fake, flips=("none", "h"), scales=(0.75, 1.0, 2.0))
    assert tta.views == [("none", 0.75), ("h", 0.75), ("none", 1.0), ("h", 1.0), ("none", 2.0), ("h", 2.0)]
    merged = _sorted(tta.predict(img))
    assert merged.image_shape == img.shape and len(merged) == len(plain)
    iou = mask_iou(merged.masks, plain.masks)
    assert np.all(np.diag(iou) > 0.8)
    assert {c[0] for c in fake.calls[1:]} == {(90, 120), (120, 160), (240, 320)}


def test_votes_and_scores_of_a_model_that_sees_half_the_image():
    img = _image()
    half = ThresholdPredictor(left_only=True)
    full = _sorted(ThresholdPredictor().predict(img))
    # 4 flips: left objects are found in views none and v, right ones in h and hv: 2 votes each
    merged = _sorted(TTAPredictor(half).predict(img))
    np.testing.assert_array_equal(merged.masks, full.masks)
    np.testing.assert_allclose(merged.scores, full.scores / 2, rtol=1e-6)  # missing views count as 0
    # asking for 3 votes keeps nothing; only the plain view sees only the left objects
    assert len(TTAPredictor(half, min_votes=3).predict(img)) == 0
    assert len(TTAPredictor(half, flips=("none",)).predict(img)) == 2


def test_merge_views_pixel_vote_and_same_view_instances():
    shape = (40, 60)
    base = np.zeros(shape, bool)
    base[10:20, 5:50] = True
    wide = base.copy()
    wide[9:21, 5:50] = True  # one view's mask one pixel wider on each side
    shifted = np.zeros(shape, bool)
    shifted[10:20, 8:53] = True
    views = [
        Instances.from_masks(m[None], np.array([s], np.float32)) for m, s in ((base, 0.9), (wide, 0.8), (shifted, 0.7))
    ]
    merged = merge_views(views)
    assert len(merged) == 1
    votes = base.astype(int) + wide + shifted
    np.testing.assert_array_equal(merged.masks[0], votes >= 1.5)  # pixel in at least half the members
    assert merged.scores[0] == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    union = merge_views(views, pixel_vote=1 / 3)
    np.testing.assert_array_equal(union.masks[0], votes >= 1)
    # two overlapping instances of the same view stay two objects
    same = Instances.from_masks(np.stack([base, wide]), np.array([0.9, 0.8], np.float32))
    assert len(merge_views([same], min_votes=1)) == 2
    # below the matching IoU, instances of different views are different objects
    far = np.zeros(shape, bool)
    far[25:35, 5:50] = True
    split = merge_views([views[0], Instances.from_masks(far[None])], min_votes=1)
    assert len(split) == 2
    with pytest.raises(ValueError, match="different image sizes"):
        merge_views([views[0], Instances.empty((10, 10))])
    assert len(merge_views([Instances.empty(shape)] * 3)) == 0


def test_arguments_are_checked():
    fake = ThresholdPredictor()
    with pytest.raises(ValueError, match="flip"):
        TTAPredictor(fake, flips=("diagonal",))
    with pytest.raises(ValueError, match="scale"):
        TTAPredictor(fake, scales=(0,))
    with pytest.raises(ValueError, match="min_votes"):
        TTAPredictor(fake, min_votes=5)
    with pytest.raises(TypeError, match="predict"):
        TTAPredictor(object())


# ----------------------------------------------------------------------------- a trained smoke model


@pytest.fixture(scope="module")
def smoke_predictor(tmp_path_factory):
    pytest.importorskip("torch")
    from nanowire_utils.chapters import pipeline
    from nanowire_utils.maskrcnn.engine import load_predictor

    root = tmp_path_factory.mktemp("tta")
    run = pipeline.ensure_model("smoke", root / "runs", root / "data", progress=False)
    # a smoke model's mask probabilities stay below 0.5: a lower mask threshold gives it masks
    return load_predictor(run, device="cpu", score_thresh=0.05, mask_thresh=0.3)


def _wires(h, w, seed=0):
    from nanowire_utils.synth.dataset import make_sample
    from nanowire_utils.synth.generator_presets import get_preset

    img, _, _ = make_sample(get_preset("smoke", **{"network.domain": (w, h, 60), "network.n_wires": (8, 12)}), seed, 1)
    return img


def test_tta_with_a_trained_smoke_model(smoke_predictor):
    img = _wires(128, 128)
    tta = TTAPredictor(smoke_predictor)
    views = tta.predict_views(img, tile=0)
    assert len(views) == 4 and all(v.image_shape == img.shape for v in views)
    merged = tta.predict(img, tile=0)
    assert merged.image_shape == img.shape and len(merged) > 0
    assert np.all(np.diff(merged.scores) <= 0)
    assert tta.score_thresh == smoke_predictor.score_thresh  # attributes of the wrapped predictor
    # every merged object was found in at least half of the views
    for m in merged.masks:
        found = sum(any(mask_iou(m[None], v.masks)[0] >= 0.5) if len(v) else False for v in views)
        assert found >= 2


def test_tta_on_a_large_image_tiles_each_view(smoke_predictor, monkeypatch):
    """An image too large for one pass is tiled by the wrapped predictor in every view, as a
    plain prediction is: the network never sees more than a tile."""
    seen = []
    real = smoke_predictor.predict_gray

    def spy(gray):
        seen.append(gray.shape)
        return real(gray)

    monkeypatch.setattr(smoke_predictor, "predict_gray", spy)
    img = _wires(300, 260, seed=2)
    merged = TTAPredictor(smoke_predictor, flips=("none", "hv")).predict(img)  # tile=None: automatic
    assert merged.image_shape == img.shape
    assert seen and max(max(s) for s in seen) <= smoke_predictor.train_size
    n_auto = len(seen)
    seen.clear()
    TTAPredictor(smoke_predictor, flips=("none", "hv")).predict(img, tile=96)
    assert max(max(s) for s in seen) <= 96 and len(seen) > n_auto
