"""Figure helpers: they draw what they are given and reject inputs that do not fit."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from nanowire_utils.viz.plotting import instance_colors, intensity_histograms, overlay_masks, show_images


def _masks():
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 3:25] = True
    masks[1, 5:18, 10:14] = True
    return masks


def test_instance_colors_distinct_and_cycling():
    colors = instance_colors(25)
    assert colors.shape == (25, 3)
    assert len({tuple(c) for c in colors[:20]}) == 20
    np.testing.assert_array_equal(colors[0], colors[20])


def test_overlay_colours_only_mask_pixels():
    image = np.full((20, 30), 100, np.uint8)
    image[0, 0] = 0  # give the image a range so it is not flat
    ax = overlay_masks(image, _masks(), alpha=0.5)
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (20, 30, 3)
    outside = ~_masks().any(0)
    # Outside every mask the pixels stay gray (R = G = B).
    assert np.allclose(shown[outside][:, 0], shown[outside][:, 1])
    inside = _masks()[0] & ~_masks()[1]
    assert not np.allclose(shown[inside][:, 0], shown[inside][:, 1]) or not np.allclose(
        shown[inside][:, 1], shown[inside][:, 2]
    )


def test_overlay_rejects_mismatched_masks():
    with pytest.raises(ValueError, match="masks must have shape"):
        overlay_masks(np.zeros((10, 10)), _masks())
    with pytest.raises(ValueError, match="alpha"):
        overlay_masks(np.zeros((20, 30)), _masks(), alpha=2)


def test_show_images_grid_and_titles():
    fig, axes = show_images([np.zeros((4, 4))] * 5, titles=list("abcde"), ncols=3)
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes[:5]] == list("abcde")
    assert not axes[5].images
    with pytest.raises(ValueError, match="titles"):
        show_images([np.zeros((4, 4))], titles=["a", "b"])


def test_intensity_histograms_share_scale():
    u8 = np.full((10, 10), 255, np.uint8)
    f = np.ones((10, 10), np.float32)
    ax = intensity_histograms({"u8": u8, "float": f}, bins=10, log=False)
    patches = ax.patches
    assert len(patches) == 2
    # Both images are at full scale: their histograms end in the same (last) bin.
    xs = [p.get_xy()[:, 0] for p in patches]
    assert np.isclose(max(xs[0]), 1.0) and np.isclose(max(xs[1]), 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["u8", "float"]


def test_lognormal_pdf_integrates_to_one_and_matches_moments():
    from nanowire_utils.viz.plotting import lognormal_pdf

    x = np.linspace(0, 2000, 200001)
    pdf = lognormal_pdf(x, 220.0, 100.0, (1e-6, 5000.0))
    integrate = getattr(np, "trapezoid", None) or np.trapz
    assert integrate(pdf, x) == pytest.approx(1.0, abs=1e-3)
    # Nearly untruncated: mean and std are the requested ones.
    mean = integrate(x * pdf, x)
    std = np.sqrt(integrate((x - mean) ** 2 * pdf, x))
    assert mean == pytest.approx(220.0, rel=0.01)
    assert std == pytest.approx(100.0, rel=0.02)
    # Truncated: zero outside the range, still a density.
    pdf = lognormal_pdf(x, 220.0, 100.0, (40.0, 520.0))
    assert pdf[x < 40].max() == 0 and pdf[x > 520].max() == 0
    assert integrate(pdf, x) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError):
        lognormal_pdf(x, -1, 1, (0, 1))


def test_hist_vs_expected_draws_both():
    from nanowire_utils.viz.plotting import hist_vs_expected

    ax = hist_vs_expected(np.random.default_rng(0).normal(5, 1, 100), [3, 5, 7], [0.1, 0.4, 0.1], xlabel="x")
    assert len(ax.lines) == 1 and len(ax.patches) > 0
    assert ax.get_xlabel() == "x"


def test_benchmark_curves_draw_the_committed_results(tmp_path):
    """The AP curves of the committed training benchmark: one line per training in each panel,
    with the minutes it took; a missing or curve-less report says what to run."""
    import json
    from pathlib import Path

    from nanowire_utils.viz.training import plot_benchmark_curves

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "training_v3"
    gn = results / "half_scale_gn" / "bench_training.json"
    bn = json.loads((results / "half_scale_bn" / "bench_training.json").read_text())
    fig = plot_benchmark_curves({"GN": gn, "BN": bn}, x="minutes")
    segm, bbox = fig.axes[:2]
    assert [line.get_label() for line in segm.lines] == ["GN (30.5 min)", "BN (29.5 min)"]
    xs, ys = segm.lines[1].get_data()
    assert list(ys) == [p["segm_AP"] for p in bn["curve"]["points"]]
    assert list(xs) == [p["minutes"] for p in bn["curve"]["points"]]
    assert list(bbox.lines[1].get_ydata()) == [p["bbox_AP"] for p in bn["curve"]["points"]]
    with pytest.raises(FileNotFoundError, match="bench_training.py"):
        plot_benchmark_curves({"none": tmp_path / "missing.json"})
    with pytest.raises(ValueError, match="no AP curve"):
        plot_benchmark_curves({"speed only": {"speed": []}})
    with pytest.raises(ValueError, match="x must be"):
        plot_benchmark_curves({"GN": gn}, x="epochs")
