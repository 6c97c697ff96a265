"""Shared test setup.

The real sample images are read from the shared data folder beside the repository
(``../shared/data/v2o5_sample_images``; CI clones the repository next to it), never
downloaded in tests.
"""

import os
from pathlib import Path

_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "v2o5_sample_images"
os.environ.setdefault("NANOWIRE_UTILS_SAMPLES", str(_SAMPLES))
