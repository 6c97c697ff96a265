"""Measure chapter 6's settings (as is / scale 1 stretched / estimated scale / + TTA) with one model."""

import json
import logging
import sys
import time

import pandas as pd

from nanowire_utils.chapters import crossmodality as cm
from nanowire_utils.chapters.pipeline import checkpoint_info
from nanowire_utils.maskrcnn.engine import load_predictor
from nanowire_utils.maskrcnn.tta import TTAPredictor

pd.set_option("display.width", 250, "display.max_columns", 30)
if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    ckpt, out = sys.argv[1], sys.argv[2]
    info = checkpoint_info(ckpt)
    print(info)
    p = load_predictor(ckpt, device="cpu", score_thresh=0.05)
    sc = cm.image_scales("paper", diagnostic=True)
    print(sc.round(2))
    scales = cm.resolve_input_scales("auto", sc)
    settings = {
        "as is": {"as_is": True},
        "scale 1, stretched": {"input_scale": 1.0},
        "estimated scale": {"input_scale": scales},
        "estimated scale + TTA": {"input_scale": scales, "predictor": TTAPredictor(p)},
    }
    post = {"min_score": 0.5, "nested_fraction": 0.8, "min_area": 20}
    t = time.time()
    res = cm.run_settings(p, settings, progress=False, **post)
    tab = cm.settings_table(res)
    print(tab)
    print(time.time() - t)
    print(cm.effect_text(tab, "as is", "estimated scale"))
    print(cm.effect_text(tab, "estimated scale", "estimated scale + TTA"))
    print(cm.summary_table(res))
    json.dump(
        {
            "model": info,
            "scales": sc.round(3).to_dict(orient="index"),
            "table": {f"{i} | {s}": r.to_dict() for (i, s), r in tab.iterrows()},
        },
        open(out, "w"),
        indent=1,
        default=str,
    )
