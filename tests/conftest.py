"""Shared test setup.

The real sample images are read from the shared data folder beside the repository
(``../shared/data/v2o5_sample_images``; CI clones the repository next to it), never
downloaded in tests.
"""

import os
from pathlib import Path

_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "v2o5_sample_images"
os.environ.setdefault("NANOWIRE_UTILS_SAMPLES", str(_SAMPLES))
# Tests never download (weights, samples): what they need is local or made in the test.
os.environ.setdefault("NANOWIRE_UTILS_OFFLINE", "1")


import sys  # noqa: E402

import pytest  # noqa: E402


def _load_script(path):
    """Import a script of the repository (``scripts/``, ``benchmarks/``) as a module named after
    its file, registered in ``sys.modules`` (dataclasses need it)."""
    import importlib.util

    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """``load_script(path) -> module``: a repository script imported by its path."""
    return _load_script


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests that use torch run it on one thread: the two pytest workers share 2 cores.
    Tests that never imported torch do not pay for importing it here."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# The flags for headless Chromium live with the book's browser check; the tests use the same.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from check_book_html import CHROMIUM_ARGS  # noqa: E402


def chromium_path():
    """Path of a Chromium binary, or None."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser():
    """A headless Chromium driven by Playwright (Debian's binary; Playwright's own browser
    download cannot work offline). Skips, saying why, when either is missing."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium on PATH: `apt-get install -y chromium` (scripts/run_tests.sh does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
