"""Shared test setup.

The real sample images are read from the shared data folder beside the repository
(``../shared/data/v2o5_sample_images``; CI clones the repository next to it), never
downloaded in tests.
"""

import os
from pathlib import Path

_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "v2o5_sample_images"
os.environ.setdefault("NANOWIRE_UTILS_SAMPLES", str(_SAMPLES))


import sys  # noqa: E402

import pytest  # noqa: E402


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
