#!/usr/bin/env python
"""Print the CI cache keys of the synthetic data and of the trained model of a training preset.

    python scripts/cache_key.py            # preset "cpu"; prints data=<key> and model=<key>
    python scripts/cache_key.py >> "$GITHUB_OUTPUT"

The book build generates ``data/synthetic/<preset>`` and trains ``runs/<preset>/mask_rcnn``
(30 minutes for ``cpu``). The workflow caches both, keyed on what produced them, so that a prose
edit does not retrain while a changed configuration does:

- ``data``: the package version, the dataset the preset expects (``dataset_spec``: image count,
  size, generator preset), the generator preset's full configuration, and the source of
  ``nanowire_utils/synth/`` (generation takes seconds, so any change to the generator counts);
- ``model``: the ``data`` key, the package version and the preset's full training configuration
  (``TrainConfig.from_preset(preset).to_dict()``). A change to the training *code* that should
  retrain needs a new package version (or ``CACHE_EPOCH``, an environment variable mixed into
  both keys).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_keys(preset: str = "cpu") -> dict:
    """``{"data": key, "model": key}`` for training preset ``preset``."""
    import nanowire_utils
    from nanowire_utils.maskrcnn.config import TrainConfig, dataset_spec
    from nanowire_utils.synth.generator_presets import get_preset

    spec = dataset_spec(preset)
    sources = {
        p.relative_to(ROOT).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((ROOT / "nanowire_utils" / "synth").glob("*.py"))
    }
    epoch = os.environ.get("CACHE_EPOCH", "")
    data = {
        "version": nanowire_utils.__version__,
        "spec": spec,
        "generator": get_preset(spec["generator_preset"]).to_dict(),
        "sources": sources,
        "epoch": epoch,
    }
    data_key = f"data-{preset}-{nanowire_utils.__version__}-{_digest(data)}"
    model = {"data": data_key, "train": TrainConfig.from_preset(preset).to_dict(), "epoch": epoch}
    model_key = f"model-{preset}-{nanowire_utils.__version__}-{_digest(model)}"
    return {"data": data_key, "model": model_key}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu", help="training preset (default: cpu)")
    args = ap.parse_args(argv)
    try:
        keys = cache_keys(args.preset)
    except (KeyError, ValueError) as err:
        print(f"cache_key: error: {err}", file=sys.stderr)
        return 2
    for name, key in keys.items():
        print(f"{name}={key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
