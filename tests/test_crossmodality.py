"""crossmodality: the real-image evaluation steps of chapter 6 (Tables 2-4, Figs. 7-12)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nanowire_utils import paper  # noqa: E402
from nanowire_utils.chapters import crossmodality as cm  # noqa: E402
from nanowire_utils.instances import Instances  # noqa: E402
from nanowire_utils.real.annotations import load_reference  # noqa: E402
from nanowire_utils.real.evaluation import mask_iou  # noqa: E402
from nanowire_utils.viz import crossmodality as cmviz  # noqa: E402


class OraclePredictor:
    """Stands in for a trained model (not under test here): returns the given instances,
    resampled to whatever image size it is handed, plus one spurious blob inside the first."""

    def __init__(self, instances, spurious=True):
        self.instances = instances
        self.spurious = spurious
        self.seen_shapes = []

    def predict(self, image, tile=None):
        shape = np.asarray(image).shape[:2]
        self.seen_shapes.append(shape)
        inst = cm.resize_instances(self.instances, shape)
        masks, scores = list(inst.masks), list(np.linspace(0.99, 0.6, len(inst)))
        if self.spurious:
            inner = np.zeros(shape, bool)
            ys, xs = np.nonzero(inst.masks[0])
            cy, cx = int(np.median(ys)), int(np.median(xs))
            inner[cy - 1 : cy + 2, cx - 1 : cx + 2] = inst.masks[0][cy - 1 : cy + 2, cx - 1 : cx + 2]
            masks.append(inner)
            scores.append(0.3)
        return Instances.from_masks(np.stack(masks), np.asarray(scores, np.float32))


def test_paper_real_image_rows_transcribe_tables_2_to_4():
    for modality in cm.MODALITIES:
        rows = paper.real_image_rows(modality)
        assert len(rows) == 3
        # the paper lists its best segm-AP model first
        assert rows[0]["segm_AP"] == max(r["segm_AP"] for r in rows)
        for r in rows:
            assert 0 < r["accuracy"] < 100
            assert r["segm_AP50"] >= r["segm_AP75"]
    assert paper.real_image_rows("ptychography")[0]["accuracy"] == 86.6
    assert math.isnan(paper.real_image_rows("stxm")[0]["segm_APl"])  # no large particles in STXM
    with pytest.raises(ValueError, match="modality"):
        paper.real_image_rows("tem")


def _bar(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_widths_and_auto_scale():
    inst = Instances.from_masks(np.stack([_bar((60, 80), 10, 16, 5, 75), _bar((60, 80), 30, 36, 10, 70)]))
    assert cm.median_wire_width(inst) == pytest.approx(6, abs=0.6)
    assert cm.auto_input_scale(12.0, inst) == pytest.approx(2.0, abs=0.25)
    assert cm.auto_input_scale(1000.0, inst) == 4.0  # clipped
    assert math.isnan(cm.median_wire_width(Instances.empty((10, 10))))
    with pytest.raises(ValueError, match="by hand"):
        cm.auto_input_scale(10.0, Instances.empty((10, 10)))
    width = cm.training_wire_width("smoke", n_images=2)
    assert 1 < width < 40


def test_resize_instances_round_trip_keeps_outlines():
    inst = Instances.from_masks(np.stack([_bar((50, 70), 5, 15, 3, 60)]), np.array([0.7], np.float32))
    up = cm.resize_instances(inst, (100, 140))
    back = cm.resize_instances(up, (50, 70))
    assert up.image_shape == (100, 140) and back.scores[0] == pytest.approx(0.7)
    assert mask_iou(back.masks, inst.masks)[0, 0] > 0.9
    assert cm.resize_instances(inst, (50, 70)) is inst


def test_run_modality_rescales_scores_and_postprocesses():
    ref = load_reference("ptychography")
    oracle = OraclePredictor(ref)
    r = cm.run_modality(oracle, "ptychography", input_scale=1.5, min_score=0.5)
    h, w = ref.image_shape
    assert oracle.seen_shapes == [(round(h * 1.5), round(w * 1.5))]  # the network saw the enlarged image
    assert r.pred.image_shape == ref.image_shape
    assert len(r.pred) == len(ref) + 1
    assert r.metrics["accuracy"] > 90 and r.metrics["n_matched"] == len(ref)
    assert r.metrics["n_spurious"] == 1 and r.metrics_post["n_spurious"] == 0  # the nested blob is removed
    assert r.metrics_post["precision"] == pytest.approx(100.0)
    assert r.metrics["segm_AP50"] > 90

    table = cm.paper_table(r)
    assert list(table.columns) == ["Accuracy", *cm.AP_KEYS]
    assert table.index[-2:].tolist() == ["ours, raw", "ours, post-processed"]
    assert table.loc["ours, raw", "Accuracy"] == f"{r.metrics['accuracy']:.1f}"
    counts = cm.counts_table(r)
    assert counts.loc["post-processed", "n_pred"] == len(ref)
    summary = cm.summary_table([r])
    assert summary.index.tolist() == ["X-ray ptychography"]

    dist = cm.distribution_table(r, n_boot=20)
    assert dist.loc["area", "KS"] < 0.2  # the oracle's shapes are the reference's
    assert dist.loc["orientation", "n ref"] == len(ref)
    for fig in (cmviz.plot_preprocessing(r), cmviz.plot_predictions(r), cmviz.plot_statistics(r)):
        assert fig.axes
        plt.close(fig)


def test_run_modality_checks_arguments():
    ref = load_reference("stxm")
    with pytest.raises(ValueError, match="input_scale"):
        cm.run_modality(OraclePredictor(ref), "stxm", input_scale=0)
    with pytest.raises(ValueError, match="sizes differ"):
        cm.run_modality(OraclePredictor(ref), "stxm", image=np.zeros((10, 10), np.uint8))


def test_generator_gaps_reads_the_presets():
    from nanowire_utils.synth.generator_presets import get_preset

    table = cm.generator_gaps()
    assert len(table) == sum(len(k) for k in cm.GAP_KEYS.values())
    rich = get_preset("rich").to_dict()
    assert table.loc[(next(iter(cm.GAP_KEYS)), "render.sem_fraction"), "rich"] == rich["render"]["sem_fraction"]
    # the richer preset changes something for every failure mode except the scale
    changed = table[table["paper"].astype(str) != table["rich"].astype(str)].index.get_level_values(0)
    assert set(changed) == set(cm.GAP_KEYS) - {"scale (wire widths in pixels)"}


def test_resize_instances_agrees_with_skimage_resize():
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    masks = np.zeros((3, 41, 57), bool)
    masks[0, 5:9, 3:50] = True
    masks[1, 10:35, 20:26] = True
    masks[2] = rng.random((41, 57)) > 0.97  # scattered pixels, touching the border
    inst = Instances.from_masks(masks)
    for shape in [(90, 120), (30, 40)]:
        ours = cm.resize_instances(inst, shape).masks
        ref = np.stack([resize(m.astype(np.float32), shape, order=1, anti_aliasing=False) >= 0.5 for m in masks])
        assert np.mean(ours != ref) < 0.002
