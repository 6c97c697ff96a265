import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from nanowire_utils.real.annotations import polygons_to_mask, wire_polygon
from nanowire_utils.real.statistics import compare_distributions, particle_table
from nanowire_utils.viz.statistics import plot_distributions


def _rect(angle_deg, length=80.0, width=10.0, shape=(160, 160)):
    """Mask of a rectangle centred in the image, long axis at ``angle_deg`` counter-clockwise
    from the x axis as seen on screen (so y decreases as x increases for 0 < angle < 90)."""
    cx, cy = shape[1] / 2, shape[0] / 2
    a = math.radians(angle_deg)
    dx, dy = math.cos(a) * length / 2, -math.sin(a) * length / 2
    return polygons_to_mask([wire_polygon(cx - dx, cy - dy, cx + dx, cy + dy, width)], *shape)


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 120, 170])
def test_rectangle_length_width_orientation(angle):
    df = particle_table(np.stack([_rect(angle)]), pixel_size_nm=5.0)
    row = df.iloc[0]
    assert row["length"] == pytest.approx(80, rel=0.05)
    assert row["width"] == pytest.approx(10, rel=0.15)
    assert row["aspect_ratio"] == pytest.approx(8, rel=0.15)
    d = abs(row["orientation"] - angle) % 180
    assert min(d, 180 - d) < 1.5
    assert row["area"] == pytest.approx(800, rel=0.05)
    assert row["area_nm2"] == pytest.approx(row["area"] * 25)
    assert row["length_nm"] == pytest.approx(row["length"] * 5)
    assert 0.9 < row["solidity"] <= 1 and row["eccentricity"] > 0.95


def test_table_skips_empty_masks_and_exports(tmp_path):
    m = np.zeros((3, 50, 50), bool)
    m[0, 10:20, 10:40] = True
    m[2, 30:35, 5:10] = True
    df = particle_table(m, image="x")
    assert list(df["instance"]) == [0, 2] and set(df["image"]) == {"x"}
    df.to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv")
    assert back.shape == df.shape


def test_ks_identical_and_separated():
    a = pd.DataFrame({"area": np.arange(1.0, 31.0)})
    b = pd.DataFrame({"area": np.arange(101.0, 131.0)})
    same = compare_distributions(a, a, "area", n_boot=50)
    assert same["ks"] == 0 and same["wasserstein"] == 0
    sep = compare_distributions(a, b, "area", n_boot=50)
    assert sep["ks"] == 1 and sep["wasserstein"] == pytest.approx(100)
    assert sep["ks_ci"] == (1.0, 1.0)
    lo, hi = sep["wasserstein_ci"]
    assert lo <= 100 <= hi
    again = compare_distributions(a, b, "area", n_boot=50)
    assert again["wasserstein_ci"] == sep["wasserstein_ci"]  # seeded
    empty = compare_distributions(a, a.iloc[:0], "area")
    assert math.isnan(empty["ks"])
    with pytest.raises(ValueError, match="column 'nope'"):
        compare_distributions(a, a, "nope")


def test_plot_distributions_three_panels():
    rng = np.random.default_rng(0)
    p = pd.DataFrame({"area": rng.random(20), "aspect_ratio": rng.random(20), "orientation": rng.random(20) * 180})
    r = pd.DataFrame({"area": rng.random(5), "aspect_ratio": rng.random(5), "orientation": [10.0] * 5})
    fig = plot_distributions(p, r)
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)
