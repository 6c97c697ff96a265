from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from nanowire_utils.real.preprocessing import (
    normalize_intensity,
    preprocess,
    read_image,
    rescale_to,
    to_gray_float,
    transmission_to_od,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared/data/v2o5_sample_images"


def _wires(h=40, w=50):
    """A dark image with two bright bars: a tiny stand-in for an OD map."""
    img = np.zeros((h, w))
    img[10:14, 5:45] = 0.6
    img[5:35, 20:24] += 0.4
    return img


def test_read_png_tiff_jpeg_roundtrip(tmp_path):
    a8 = (np.arange(600).reshape(20, 30) % 256).astype(np.uint8)
    a16 = (np.arange(600).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(a8).save(tmp_path / "a.png")
    Image.fromarray(a16).save(tmp_path / "b.png")
    tifffile.imwrite(tmp_path / "c.tif", a16)
    tifffile.imwrite(tmp_path / "d.tiff", a8.astype(np.float32) / 3)
    Image.fromarray(np.stack([a8] * 3, -1)).save(tmp_path / "e.jpg", quality=95)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), a8)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), a16)
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), a16)
    assert read_image(tmp_path / "d.tiff").dtype == np.float32
    jpg = read_image(tmp_path / "e.jpg")
    assert jpg.shape == (20, 30, 3)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png.*empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "junk.png").write_bytes(b"this is not a png at all")
    with pytest.raises(ValueError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match="junk.tif"):
        read_image(tmp_path / "junk.tif")
    with pytest.raises(ValueError, match="shape"):
        read_image(np.zeros((3, 4, 5, 6)))


def test_to_gray_float_dtypes_and_channels():
    g8 = np.array([[0, 255], [51, 102]], np.uint8)
    exp = g8 / 255.0
    np.testing.assert_allclose(to_gray_float(g8), exp, atol=1e-6)
    np.testing.assert_allclose(to_gray_float(g8.astype(np.uint16) * 257), exp, atol=1e-6)
    rgb = np.stack([g8] * 3, -1)
    np.testing.assert_allclose(to_gray_float(rgb), exp, atol=1e-6)
    rgba = np.concatenate([rgb, np.zeros((2, 2, 1), np.uint8)], -1)  # alpha 0 must not matter
    np.testing.assert_allclose(to_gray_float(rgba), exp, atol=1e-6)
    pure_green = np.zeros((1, 1, 3), np.uint8)
    pure_green[..., 1] = 255
    assert 0.6 < to_gray_float(pure_green)[0, 0] < 0.8  # luminance, not channel mean
    f = to_gray_float(np.array([[-1.0, 3.0]]))
    np.testing.assert_allclose(f, [[0, 1]])
    out = to_gray_float(np.array([[0.25, 0.5]], np.float64))
    assert out.dtype == np.float32 and np.allclose(out, [[0.25, 0.5]])


def test_transmission_to_od_inverts_beer_lambert():
    od = _wires()
    i0 = 5000.0
    trans = i0 * np.exp(-od)
    np.testing.assert_allclose(transmission_to_od(trans, i0=i0), od, atol=1e-5)
    # estimated I0 from the (wire-free) background gives the same map
    np.testing.assert_allclose(transmission_to_od(trans), od, atol=1e-5)
    # 16-bit storage does not change OD (scale invariant)
    t16 = np.round(trans * 10).astype(np.uint16)
    np.testing.assert_allclose(transmission_to_od(t16), od, atol=1e-3)
    with pytest.raises(ValueError, match="i0"):
        transmission_to_od(trans, i0=-1)


def test_rescale_to_shapes_and_range():
    small = _wires(10, 10)
    for order in (1, 3):
        big = rescale_to(small, (53, 45), order=order)
        assert big.shape == (53, 45) and big.dtype == np.float32
        assert big.min() >= small.min() - 1e-6 and big.max() <= small.max() + 1e-6
    with pytest.raises(ValueError, match="order"):
        rescale_to(small, (20, 20), order=2)


def test_normalize_intensity_stretches_background_to_zero():
    img = 0.3 + 0.2 * (_wires() > 0)  # gray background, brighter wires
    n = normalize_intensity(img, low_percentile=50)
    assert n.min() == 0 and n.max() == 1
    assert np.all(n[_wires() == 0] == 0)
    assert np.all(normalize_intensity(np.full((5, 5), 0.7)) == 0)
    with pytest.raises(ValueError, match="high_percentile"):
        normalize_intensity(img, 60, 40)


def test_preprocess_modalities():
    od = _wires()
    trans = (255 * np.exp(-od)).astype(np.uint8)
    x = preprocess(trans, "stxm", is_transmission=True)
    assert x.shape == od.shape and x.dtype == np.float32
    assert x[12, 10] > 0.5 and x[0, 0] == 0  # wires bright, background dark after inversion
    y = preprocess(od, "stxm")  # default: already OD, not inverted again
    assert y[12, 10] > 0.5 and y[0, 0] == 0
    z = preprocess(od, "ptychography", scale=2.0)
    assert z.shape == (80, 100)
    s = preprocess(np.stack([(80 + 100 * (od > 0)).astype(np.uint8)] * 3, -1), "sem")
    assert s[0, 0] == 0 and s[12, 10] == 1
    with pytest.raises(ValueError, match="modality"):
        preprocess(od, "tem")
    with pytest.raises(ValueError, match="scale"):
        preprocess(od, "sem", scale=0)


@pytest.mark.skipif(not SAMPLES.exists(), reason="sample images not available")
@pytest.mark.parametrize(
    "name,modality", [("Ptychography.png", "ptychography"), ("STXM.png", "stxm"), ("SEM_.png", "sem")]
)
def test_preprocess_real_samples_dark_background(name, modality):
    x = preprocess(SAMPLES / name, modality)
    assert x.ndim == 2 and 0 <= x.min() and x.max() <= 1
    assert np.median(x) < 0.1  # background dark, like the synthetic OD images
    assert np.percentile(x, 99.9) > 0.9
