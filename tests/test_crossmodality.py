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
from nanowire_utils.instances import (
    Instances,  # noqa: E402
    resize_instances,  # noqa: E402
)
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
        inst = resize_instances(self.instances, shape)
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
    up = resize_instances(inst, (100, 140))
    back = resize_instances(up, (50, 70))
    assert up.image_shape == (100, 140) and back.scores[0] == pytest.approx(0.7)
    assert mask_iou(back.masks, inst.masks)[0, 0] > 0.9
    assert resize_instances(inst, (50, 70)) is inst


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
        ours = resize_instances(inst, shape).masks
        ref = np.stack([resize(m.astype(np.float32), shape, order=1, anti_aliasing=False) >= 0.5 for m in masks])
        assert np.mean(ours != ref) < 0.002


# --------------------------------------------------------------------------- scale from the image, scoring rows


def test_image_scales_come_from_the_images_alone(caplog):
    import logging

    from nanowire_utils.real.samples import load_sample
    from nanowire_utils.real.scale import training_image_width

    table = cm.image_scales("smoke", n_images=4)
    assert list(table.index) == list(cm.MODALITIES)
    assert table["wires found"].all()
    assert np.allclose(table["training width (px)"], training_image_width("smoke", n_images=4))
    assert ((table["input scale"] >= 0.25) & (table["input scale"] <= 4)).all()
    assert "diagnostic" not in " ".join(table.columns)
    # the estimate follows the image: the ptychography image enlarged 2x needs half the scale,
    # and a blank one falls back to 1 with a warning
    raw = load_sample("ptychography")
    big = np.kron(raw, np.ones((2, 2), raw.dtype))
    blank = np.zeros_like(raw)
    with caplog.at_level(logging.WARNING, logger="nanowire_utils.real.scale"):
        t2 = cm.image_scales("smoke", ["ptychography", "stxm"], n_images=4, images={"ptychography": big, "stxm": blank})
    assert t2.loc["ptychography", "image width (px)"] == pytest.approx(
        2 * table.loc["ptychography", "image width (px)"], rel=0.15
    )
    assert t2.loc["stxm", "input scale"] == 1.0 and not t2.loc["stxm", "wires found"]
    assert "stxm: no wires were found" in caplog.text and "falling back to input scale 1" in caplog.text
    diag = cm.image_scales("smoke", ["stxm"], n_images=4, diagnostic=True)
    assert diag.loc["stxm", "reference width (px), diagnostic"] == pytest.approx(
        cm.median_wire_width(load_reference("stxm"))
    )


def test_resolve_input_scales():
    import pandas as pd

    table = pd.DataFrame({"input scale": {"ptychography": 0.9, "stxm": 1.7, "sem": 1.4}})
    assert cm.resolve_input_scales("auto", table) == {"ptychography": 0.9, "stxm": 1.7, "sem": 1.4}
    assert cm.resolve_input_scales(2, table)["sem"] == 2.0
    assert cm.resolve_input_scales({"stxm": 1.5}, table) == {"ptychography": 0.9, "stxm": 1.5, "sem": 1.4}
    with pytest.raises(ValueError, match="image_scales"):
        cm.resolve_input_scales("auto")
    with pytest.raises(ValueError, match="input_scale"):
        cm.resolve_input_scales({"stxm": 0}, table)


def test_as_is_row_feeds_the_image_unstretched_and_tables_show_both_rows():
    from nanowire_utils.real.samples import load_sample

    ref = load_reference("ptychography")
    oracle = OraclePredictor(ref)
    as_is = cm.run_modality(oracle, "ptychography", as_is=True, label="as is")
    est = cm.run_modality(oracle, "ptychography", input_scale=0.8, label="estimated scale")
    raw = load_sample("ptychography")
    np.testing.assert_allclose(as_is.model_input, raw.astype(np.float32) / 255, atol=1e-6)  # no stretch
    assert est.model_input.max() == pytest.approx(1.0)  # stretched
    assert as_is.as_is and not est.as_is and as_is.input_scale == 1.0

    table = cm.paper_table(as_is, est)
    assert table.index[-4:].tolist() == [
        "ours, as is, raw",
        "ours, as is, post-processed",
        "ours, estimated scale, raw",
        "ours, estimated scale, post-processed",
    ]
    with pytest.raises(ValueError, match="one image"):
        cm.paper_table(as_is, cm.run_modality(OraclePredictor(load_reference("stxm")), "stxm"))
    summary = cm.summary_table([as_is, est])
    assert summary.index.tolist() == [("X-ray ptychography", "as is"), ("X-ray ptychography", "estimated scale")]
    assert summary.loc[("X-ray ptychography", "estimated scale"), "input scale"] == "0.8"


def test_run_settings_with_tta_and_effect_text():
    from nanowire_utils.maskrcnn.tta import TTAPredictor

    oracle = OraclePredictor(load_reference("ptychography"), spurious=False)
    scales = {"ptychography": 1.5, "stxm": 0.5}
    settings = {
        "as is": {"as_is": True},
        "scaled": {"input_scale": scales},
        # one view: the same answer as without TTA
        "scaled + TTA 1 view": {"input_scale": scales, "predictor": TTAPredictor(oracle, flips=("none",))},
        # the oracle ignores the image, so flipped views put the wires elsewhere: voted out
        "scaled + TTA": {"input_scale": scales, "predictor": TTAPredictor(oracle)},
    }
    res = cm.run_settings(oracle, settings, ["ptychography"], progress=False, min_score=None)
    assert list(res) == [("ptychography", k) for k in settings]
    assert res[("ptychography", "scaled")].input_scale == 1.5
    table = cm.settings_table(res)
    assert table.loc[("X-ray ptychography", "scaled"), "input scale"] == 1.5
    a = table.loc[("X-ray ptychography", "scaled")]
    b = table.loc[("X-ray ptychography", "scaled + TTA 1 view")]
    c = table.loc[("X-ray ptychography", "scaled + TTA")]
    assert a["accuracy post"] == pytest.approx(b["accuracy post"]) and a["instances post"] == b["instances post"]
    assert c["instances post"] < a["instances post"]
    text = cm.effect_text(table, "as is", "scaled")
    assert text.startswith("X-ray ptychography, 'as is' -> 'scaled': segm AP post")
    with pytest.raises(ValueError, match="not in the table"):
        cm.effect_text(table, "as is", "nope")


@pytest.fixture(scope="module")
def smoke_predictor(tmp_path_factory):
    pytest.importorskip("torch")
    from nanowire_utils.chapters import pipeline
    from nanowire_utils.maskrcnn.engine import load_predictor

    root = tmp_path_factory.mktemp("cm")
    run = pipeline.ensure_model("smoke", root / "runs", root / "data", progress=False)
    return load_predictor(run, device="cpu", score_thresh=0.05)


def test_three_images_with_a_smoke_model_as_is_estimated_scale_and_tta(smoke_predictor):
    """Chapter 6's comparison at smoke scale: every image fed as is (the paper's way), at its
    image-estimated scale, and at that scale with TTA. A smoke model's scores mean nothing;
    this checks that each setting feeds the network what it says."""
    from nanowire_utils.maskrcnn.tta import TTAPredictor
    from nanowire_utils.real.samples import load_sample

    scales_table = cm.image_scales("smoke", n_images=4)
    scales = cm.resolve_input_scales("auto", scales_table)
    settings = {
        "as is": {"as_is": True},
        "estimated scale": {"input_scale": scales},
        "estimated scale + TTA": {
            "input_scale": scales,
            "predictor": TTAPredictor(smoke_predictor, flips=("none", "hv")),
        },
    }
    res = cm.run_settings(smoke_predictor, settings, tile=0, progress=False)
    assert len(res) == 9
    for mod in cm.MODALITIES:
        raw = load_sample(mod)
        as_is, est = res[(mod, "as is")], res[(mod, "estimated scale")]
        assert as_is.model_input.shape == raw.shape[:2] and as_is.input_scale == 1.0
        assert as_is.model_input.max() <= raw.max() / 255 + 1e-6  # no contrast stretch
        h, w = raw.shape[:2]
        assert est.model_input.shape == (round(h * scales[mod]), round(w * scales[mod]))
        for r in (as_is, est, res[(mod, "estimated scale + TTA")]):
            assert r.pred.image_shape == (h, w)
            assert 0 <= r.metrics["accuracy"] <= 100 and 0 <= r.metrics_post["segm_AP"] <= 100
    table = cm.settings_table(res)
    assert table.shape[0] == 9 and set(table.index.get_level_values("setting")) == set(settings)
    summary = cm.summary_table(res)
    assert summary.index.nlevels == 2
    # the benchmarks' one-number summary: the mean over the three images of one setting
    real = {f"{im} | {s}": row.to_dict() for (im, s), row in table.iterrows()}
    for setting in ("as is", "estimated scale"):
        expected = table.xs(setting, level="setting")["segm AP post"].mean()
        assert cm.mean_over_images(real, setting) == pytest.approx(expected)
    first_image = next(iter(real)).split(" | ")[0]
    one_missing = {k: v for k, v in real.items() if not k.startswith(first_image)}
    with pytest.raises(ValueError, match="expected 3 real images scored 'as is', found 2"):
        cm.mean_over_images(one_missing, "as is")


def test_image_scales_of_a_dataset_folder_with_diagnostics(tmp_path):
    from nanowire_utils.synth.dataset import write_dataset

    write_dataset(tmp_path / "ds", 10, seed=0, config="smoke", workers=1, progress=False)
    from_folder = cm.image_scales(tmp_path / "ds", ["stxm"], n_images=4, diagnostic=True)
    from_preset = cm.image_scales("smoke", ["stxm"], n_images=4, diagnostic=True)
    a, b = from_folder.loc["stxm"], from_preset.loc["stxm"]
    assert a["training width (px)"] == pytest.approx(b["training width (px)"], rel=0.05)
    assert a["reference width (px), diagnostic"] == b["reference width (px), diagnostic"]
    assert a["scale from reference, diagnostic"] > 0
