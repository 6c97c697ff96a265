import shutil

import numpy as np
import pytest

from nanowire_utils.real import samples


def test_samples_from_env_folder_are_verified():
    for name, info in samples.SAMPLES.items():
        path = samples.sample_path(name)
        assert path.name == info["file"] and path.is_file()
        img = samples.load_sample(name)
        assert img.dtype == np.uint8 and img.ndim == 2
        assert (img.shape[1], img.shape[0]) == tuple(info["size"])
    assert samples.load_sample("sem", as_gray=False).ndim == 3


def test_ptychography_has_bright_wires_on_dark_background():
    img = samples.load_sample("ptychography")
    assert np.median(img) < 20 and np.percentile(img, 99) > 150


def test_corrupt_copy_is_rejected(tmp_path, monkeypatch):
    src = samples.sample_path("stxm")
    bad = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv(samples.ENV_VAR, str(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        samples.sample_path("stxm")
    with pytest.raises(FileNotFoundError, match="Ptychography.png"):
        samples.sample_path("ptychography")
    shutil.copy(src, bad)
    assert samples.sample_path("stxm") == bad


def test_unknown_name():
    with pytest.raises(ValueError, match="ptychography"):
        samples.sample_path("tem")


def test_download_failure_gives_clear_error(monkeypatch, tmp_path):
    import pooch

    monkeypatch.delenv(samples.ENV_VAR, raising=False)
    monkeypatch.setattr(samples, "BASE_URL", "http://127.0.0.1:9/none/")  # nothing listens there
    monkeypatch.setattr(pooch, "os_cache", lambda name: tmp_path)
    with pytest.raises(FileNotFoundError, match=samples.ENV_VAR):
        samples.sample_path("stxm")
