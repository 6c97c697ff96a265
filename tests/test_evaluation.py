import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from nanowire_utils.instances import Instances
from nanowire_utils.real.evaluation import (
    comparison_map,
    evaluate_instances,
    foreground_accuracy,
    match_instances,
)
from nanowire_utils.viz.plotting import plot_comparison

S = (40, 40)


def _box(r0, r1, c0, c1, shape=S):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def _inst(*masks, scores=None):
    return Instances.from_masks(np.stack(masks), scores=scores)


def test_foreground_accuracy_hand_counts():
    ref = _box(0, 10, 0, 10)  # 100 px
    pred = _box(5, 15, 0, 10)  # TP 50, FP 50, FN 50
    assert foreground_accuracy(pred, ref) == pytest.approx(50 / 150)
    # union of overlapping instances counts each pixel once
    assert foreground_accuracy(_inst(ref, ref), _inst(ref)) == 1.0
    assert math.isnan(foreground_accuracy(np.zeros(S, bool), np.zeros(S, bool)))
    assert foreground_accuracy(Instances.empty(S), _inst(ref)) == 0.0
    with pytest.raises(ValueError, match="sizes differ"):
        foreground_accuracy(ref, np.zeros((3, 3), bool))


def test_perfect_match_gives_ap_100():
    ref = _inst(_box(0, 10, 0, 10), _box(20, 30, 5, 35))
    r = evaluate_instances(ref, ref)
    for t in ("bbox", "segm"):
        assert r[f"{t}_AP"] == pytest.approx(100) and r[f"{t}_AP50"] == pytest.approx(100)
    assert r["accuracy"] == 100 and r["precision"] == 100 and r["recall"] == 100
    assert r["segm_APs"] == pytest.approx(100)  # areas 100 and 300 px: both "small" (< 32^2)
    assert math.isnan(r["segm_APm"]) and math.isnan(r["segm_APl"])


def test_iou_064_gives_ap50_100_ap75_0():
    ref = _inst(_box(0, 10, 0, 10))
    pred = _inst(_box(0, 8, 0, 8))  # IoU 64/100 = 0.64: passes 0.50, 0.55, 0.60 of the 10 thresholds
    r = evaluate_instances(pred, ref)
    for t in ("bbox", "segm"):
        assert r[f"{t}_AP50"] == pytest.approx(100)
        assert r[f"{t}_AP75"] == pytest.approx(0)
        assert r[f"{t}_AP"] == pytest.approx(30)
    assert r["accuracy"] == pytest.approx(64)


def test_false_positive_ranked_first_halves_ap():
    ref = _inst(_box(0, 10, 0, 10))
    fp = _box(20, 30, 20, 30)
    high_fp = _inst(fp, _box(0, 10, 0, 10), scores=[0.9, 0.5])
    low_fp = _inst(fp, _box(0, 10, 0, 10), scores=[0.1, 0.5])
    assert evaluate_instances(high_fp, ref)["segm_AP"] == pytest.approx(50)
    assert evaluate_instances(low_fp, ref)["segm_AP"] == pytest.approx(100)


def test_match_instances_greedy_by_score():
    a, b = _box(0, 10, 0, 10), _box(20, 30, 20, 30)
    ref = _inst(a, b)
    pred = _inst(_box(0, 8, 0, 8), a, _box(0, 5, 30, 40), scores=[0.9, 0.5, 0.8])
    m = match_instances(pred, ref, iou=0.5)
    # the higher-scored IoU-0.64 prediction takes reference 0; the perfect one is then spurious
    assert m["matches"] == [(0, 0, pytest.approx(0.64))]
    assert (m["n_matched"], m["n_missed"], m["n_spurious"]) == (1, 1, 2)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 2)
    # at IoU 0.7 the first prediction fails, so the perfect one gets reference 0
    assert match_instances(pred, ref, iou=0.7)["matches"] == [(1, 0, 1.0)]


def test_empty_predictions_and_references_do_not_crash():
    ref = _inst(_box(0, 10, 0, 10))
    r = evaluate_instances(Instances.empty(S), ref)
    assert r["segm_AP"] == 0 and r["segm_APs"] == 0 and math.isnan(r["segm_APm"])
    assert math.isnan(r["precision"]) and r["recall"] == 0 and r["accuracy"] == 0
    r = evaluate_instances(ref, Instances.empty(S))
    assert math.isnan(r["segm_AP"]) and math.isnan(r["recall"]) and r["precision"] == 0
    r = evaluate_instances(Instances.empty(S), Instances.empty(S))
    assert math.isnan(r["bbox_AP"]) and math.isnan(r["accuracy"])


def test_comparison_map_colours_and_plot():
    ref = _box(0, 10, 0, 10)
    pred = _box(5, 15, 0, 10)
    cmap = comparison_map(pred, ref)
    assert cmap.dtype == np.uint8 and cmap.shape == (*S, 3)
    assert tuple(cmap[7, 3]) == (0, 0, 255)  # TP blue
    assert tuple(cmap[2, 3]) == (255, 0, 0)  # FN red
    assert tuple(cmap[12, 3]) == (0, 255, 0)  # FP green
    assert tuple(cmap[30, 30]) == (0, 0, 0)
    fig = plot_comparison(_inst(pred), _inst(ref), image=np.random.default_rng(0).random(S))
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)
