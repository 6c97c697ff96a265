"""The three real V2O5 nanowire images the paper segments (ptychography, STXM, SEM).

They come from the paper's public app (repository ``linbinbin92/V2O5_app``, MIT licence) at a
pinned commit and are checked against a sha256 hash. On first use :func:`sample_path`
downloads them with pooch into ``pooch.os_cache("nanowire_utils")``. Offline (tests, CI, a
cluster without internet) point the environment variable ``NANOWIRE_UTILS_SAMPLES`` at a
folder holding the three files; they are checked against the same hashes.

No human annotations of these images are published.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from nanowire_utils._checks import check_choice

ENV_VAR = "NANOWIRE_UTILS_SAMPLES"
COMMIT = "6e5ddcb9f719fb029e546a38cb9c8b116da18de1"
BASE_URL = f"https://raw.githubusercontent.com/linbinbin92/V2O5_app/{COMMIT}/sample_image/"

#: Metadata of each sample: file name, sha256, modality, size (width, height) in pixels, notes.
SAMPLES: dict[str, dict] = {
    "ptychography": {
        "file": "Ptychography.png",
        "sha256": "8c2fa568f638ec6cc8d53b5e994f416e8d9d60aa9a1ba940b4965531656a843d",
        "modality": "X-ray ptychography (O K-edge ratio map)",
        "size": (449, 531),
        "mode": "8-bit gray",
        "notes": "Optical-density-like contrast: wires bright on a dark background, overlaps "
        "brighter. The paper's main test image (Table 2).",
    },
    "stxm": {
        "file": "STXM.png",
        "sha256": "a809fc83e8e99e41b5939f6efd85732e9b071da6762580b2d3cb09b30f4ca2d1",
        "modality": "STXM, average optical density 508-560 eV",
        "size": (449, 531),
        "mode": "8-bit gray",
        "notes": "Rescaled from a 100 x 100 scan with 35 nm steps, so it is smooth and low-resolution (Table 3).",
    },
    "sem": {
        "file": "SEM_.png",
        "sha256": "7aab405df04d3474552e32ddcf714b68d0bcf56fc5dbd36e48e1fad39527cf1a",
        "modality": "SEM (Tescan LYRA-3), secondary electrons",
        "size": (1279, 953),
        "mode": "8-bit RGB (gray content)",
        "notes": "Surface contrast with bright edges, not optical density; the top-most wire "
        "hides the ones below (Table 4).",
    },
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sample_path(name: str) -> Path:
    """Local path of one of the paper's real sample images.

    Uses the folder in the environment variable ``NANOWIRE_UTILS_SAMPLES`` if set (no
    network), otherwise downloads the file once from the pinned URL into pooch's cache.

    Parameters
    ----------
    name : str
        ``"ptychography"``, ``"stxm"`` or ``"sem"``.

    Returns
    -------
    pathlib.Path
        The image file, its sha256 checked.

    Raises
    ------
    ValueError
        For an unknown name, or when the file's sha256 does not match.
    FileNotFoundError
        When the file is missing from ``NANOWIRE_UTILS_SAMPLES``, or the download fails.
    """
    check_choice("sample name", name, tuple(SAMPLES))
    info = SAMPLES[name]
    folder = os.environ.get(ENV_VAR)
    if folder:
        path = Path(folder).expanduser() / info["file"]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {ENV_VAR}={folder} must hold {info['file']} (unset {ENV_VAR} to download it)"
            )
        digest = _sha256(path)
        if digest != info["sha256"]:
            raise ValueError(
                f"{path} is corrupt or a different file: sha256 {digest}, expected {info['sha256']}; "
                f"replace it with the original from {BASE_URL}{info['file']}"
            )
        return path
    import pooch

    try:
        return Path(
            pooch.retrieve(
                BASE_URL + info["file"],
                known_hash="sha256:" + info["sha256"],
                fname=info["file"],
                path=pooch.os_cache("nanowire_utils"),
                progressbar=False,
            )
        )
    except OSError as err:  # requests' connection errors are OSErrors
        raise FileNotFoundError(
            f"could not download {info['file']} from {BASE_URL} ({type(err).__name__}; no network?). "
            f"Download it elsewhere and set {ENV_VAR} to the folder holding it"
        ) from None


def load_sample(name: str, as_gray: bool = True) -> np.ndarray:
    """One of the paper's real sample images as a numpy array.

    Parameters
    ----------
    name : str
        ``"ptychography"``, ``"stxm"`` or ``"sem"`` (see :func:`sample_path`).
    as_gray : bool
        Convert to one gray channel; the SEM file is stored as RGB with equal channels
        and is converted with Pillow's luminance formula.

    Returns
    -------
    numpy.ndarray of uint8
        Shape (rows, cols) with ``as_gray=True``, else as stored (e.g. (rows, cols, 3)).

    Raises
    ------
    ValueError, FileNotFoundError
        As :func:`sample_path`.
    """
    from PIL import Image

    with Image.open(sample_path(name)) as im:
        if as_gray and im.mode != "L":
            im = im.convert("L")
        return np.asarray(im).copy()
