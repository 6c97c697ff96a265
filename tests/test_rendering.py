import numpy as np
import pytest
from scipy import ndimage

from nanowire_utils.synth.projection import Projection, WireFootprint
from nanowire_utils.synth.rendering import RenderParams, render, to_uint8, to_uint16


def _bar(label, y0, x0, h, w, t):
    return WireFootprint(label, y0, x0, np.full((h, w), t, np.float32))


@pytest.fixture
def crossing():
    """Two wires crossing: a horizontal bar 10 voxels thick, a vertical one 20 thick."""
    return Projection((64, 80), 100, [_bar(1, 30, 5, 6, 70, 10.0), _bar(2, 5, 40, 55, 6, 20.0)])


def test_paper_recipe_is_blurred_max_normalised_sum(crossing):
    img = render(crossing, RenderParams(), np.random.default_rng(0))
    assert img.dtype == np.float32 and img.shape == (64, 80)
    expected = ndimage.gaussian_filter(crossing.total_thickness(), 2.0, mode="nearest")
    np.testing.assert_allclose(img, expected / expected.max(), atol=1e-6)
    # the overlap (30 voxels) is the brightest spot, a single wire is darker, background black
    assert img[32, 42] == pytest.approx(1.0, abs=0.02)
    assert 0.2 < img[32, 15] < img[20, 42] < img[32, 42]
    assert img[2, 2] == 0.0


def test_height_normalisation_and_no_blur(crossing):
    img = render(crossing, RenderParams(normalization="height", blur_sigma=0), np.random.default_rng(0))
    assert img[32, 15] == pytest.approx(10 / 100)
    assert img[32, 42] == pytest.approx(30 / 100)
    fixed = render(crossing, RenderParams(normalization="fixed", reference_thickness=20, blur_sigma=0))
    assert fixed[32, 15] == pytest.approx(0.5) and fixed[32, 42] == 1.0  # clipped


def test_paper_image_does_not_depend_on_rng(crossing):
    a = render(crossing, RenderParams(), np.random.default_rng(1))
    b = render(crossing, RenderParams(), np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)


def test_beer_lambert_without_noise_equals_thickness_rendering(crossing):
    a = render(crossing, RenderParams())
    b = render(crossing, RenderParams(beer_lambert=True, mu=0.05))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_shot_noise_scales_with_dose(crossing):
    def noise(dose):
        p = RenderParams(beer_lambert=True, mu=0.05, dose=dose, normalization="fixed", reference_thickness=40)
        img = render(crossing, p, np.random.default_rng(3))
        clean = render(crossing, p.replace(dose=None))
        return float(np.std(img[:20, :30] - clean[:20, :30]))

    low, high = noise(20), noise(2000)  # 20: exact Poisson; 2000: Gaussian approximation
    assert high > 0 and low > 5 * high  # noise ~ 1/sqrt(dose): ratio 10 expected


def test_rich_features_are_seeded_and_in_range(crossing):
    p = RenderParams(
        beer_lambert=True,
        mu_spread=0.3,
        dose=300,
        read_noise=0.02,
        background=5,
        illumination_gradient=0.2,
        contrast_range=(0.7, 1.3),
    )
    a = render(crossing, p, np.random.default_rng(5))
    b = render(crossing, p, np.random.default_rng(5))
    c = render(crossing, p, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert a[:20, :30].std() > 0  # background is no longer flat black


def test_sem_shows_top_wire_not_the_sum(crossing):
    p = RenderParams(sem_fraction=1.0, sem_texture=0, sem_edge=0, blur_sigma=0)
    img = render(crossing, p, np.random.default_rng(0))
    # the crossing has the same gray as the top wire (label 2) elsewhere: no additive thickness
    assert img[32, 42] == pytest.approx(img[15, 42], abs=1e-6)
    assert img[2, 2] == pytest.approx(p.sem_background)
    edged = render(crossing, p.replace(sem_edge=0.3), np.random.default_rng(0))
    assert edged[30, 20] > edged[33, 20]  # wire border brighter than its middle


def test_empty_projection_renders_black():
    img = render(Projection((16, 16), 50, []), RenderParams())
    assert img.shape == (16, 16) and not img.any()


@pytest.mark.parametrize(
    "bad",
    [
        dict(normalization="peak"),
        dict(blur_sigma=-1),
        dict(dose=100),
        dict(contrast_range=(1.2, 0.8)),
        dict(sem_fraction=2),
    ],
)
def test_bad_params_raise_naming_the_field(bad):
    with pytest.raises(ValueError) as err:
        RenderParams(**bad).validate()
    assert list(bad)[0].split("_")[0] in str(err.value)


def test_dict_round_trip_and_integer_conversion():
    p = RenderParams(contrast_range=(0.8, 1.1), dose=50.0, beer_lambert=True)
    assert RenderParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown"):
        RenderParams.from_dict({"blur": 2})
    x = np.array([0.0, 0.5, 1.0, 1.5, -1], np.float32)
    assert to_uint8(x).tolist() == [0, 128, 255, 255, 0]
    assert to_uint16(x).tolist() == [0, 32768, 65535, 65535, 0]


def test_render_is_fast_for_512_images():
    import time

    rng = np.random.default_rng(0)
    fps = [_bar(i + 1, int(rng.integers(0, 400)), int(rng.integers(0, 400)), 20, 100, 15.0) for i in range(30)]
    proj = Projection((512, 512), 200, fps)
    render(proj)
    t = time.perf_counter()
    for _ in range(5):
        render(proj)
    assert (time.perf_counter() - t) / 5 < 0.05  # a few ms normally; generous for a loaded CI machine


def test_top_label_map_and_render_info(crossing):
    from nanowire_utils.synth.rendering import top_label_map

    top = top_label_map(crossing)
    assert top[32, 42] == 2 and top[32, 15] == 1 and top[2, 2] == 0
    _, info = render(crossing, RenderParams(sem_fraction=1.0), np.random.default_rng(0), return_info=True)
    assert info == {"sem": True}
    _, info = render(crossing, RenderParams(), np.random.default_rng(0), return_info=True)
    assert info == {"sem": False}
