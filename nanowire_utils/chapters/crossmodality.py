"""Evaluation of a trained model on the three real images of the paper's section 3
(X-ray ptychography, STXM, SEM): the steps of the paper's Tables 2-4 and Figs. 7-12 as
short functions, so the chapter's cells stay short.

Typical use::

    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.viz import crossmodality as cmviz
    result = cm.run_modality(predictor, "ptychography", input_scale=1.0)
    cm.paper_table(result)          # our rows beside the paper's best rows (Table 2 layout)
    cm.counts_table(result)         # precision / recall, matched / missed / spurious
    cmviz.plot_predictions(result)      # overlays and TP/FN/FP maps, before and after post-processing
    cmviz.plot_statistics(result)       # area, aspect ratio, orientation vs the reference (Fig. 8)

References are the project's own by-eye annotations (``annotations.load_reference``; see
book/annotation_protocol.md), not the paper's unpublished ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.instances import Instances
from nanowire_utils.paper import AP_KEYS, MODALITIES, real_image_rows
from nanowire_utils.paper import MODALITY_TITLES as TITLES
from nanowire_utils.paper import TABLE_NUMBER as PAPER_TABLE_NUMBER

# --------------------------------------------------------------------------- scale of wires


def median_wire_width(instances) -> float:
    """Median width in pixels of the instances (``statistics.particle_table``'s ``width``:
    the short side of the rectangle with the mask's second moments); ``nan`` if none."""
    from nanowire_utils.real.statistics import particle_table

    df = particle_table(instances)
    return float(np.median(df["width"])) if len(df) else math.nan


def training_wire_width(generator_preset: str = "paper", n_images: int = 8, seed: int = 0) -> float:
    """Median wire width in pixels in ``n_images`` fresh images of a generator preset (the
    widths the network learnt): what a real image's wires should measure at inference."""
    from nanowire_utils.coco import decode_rle
    from nanowire_utils.synth.dataset import make_sample
    from nanowire_utils.synth.generator_presets import get_preset

    check_range("n_images", n_images, 1, 1000)
    config = get_preset(generator_preset)
    masks = []
    for i in range(1, n_images + 1):
        _, anns, _ = make_sample(config, seed, i)
        masks.extend(decode_rle(a["segmentation"]) for a in anns)
    if not masks:
        return math.nan
    return median_wire_width(np.stack(masks))


def auto_input_scale(train_width: float, instances, low: float = 0.25, high: float = 4.0) -> float:
    """Factor that brings the median wire width of ``instances`` (e.g. a few wires measured by
    hand, or a reference annotation) to ``train_width`` pixels: ``train_width / median width``,
    rounded to 0.05 and clipped to [``low``, ``high``]."""
    check_range("train_width", train_width, 0, None, low_inclusive=False, unit="px")
    width = median_wire_width(instances)
    if not width > 0:
        raise ValueError("no instance with a measurable width; give the input scale by hand")
    return float(np.clip(round(train_width / width / 0.05) * 0.05, low, high))


# --------------------------------------------------------------------------- running


def resize_instances(instances: Instances, shape) -> Instances:
    """The same instances with masks resampled to ``shape`` (rows, cols): bilinear, then
    thresholded at 0.5, so an instance keeps its outline when predicted on an enlarged
    image and scored at the reference's size. Scores are kept, boxes recomputed.

    Each mask is resampled only around its bounding box (pixel-centre aligned, as
    ``skimage.transform.resize``), so hundreds of masks on a megapixel image take seconds.
    """
    from scipy.ndimage import map_coordinates

    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (rows, cols) with positive sizes, got {shape}")
    if instances.image_shape == shape:
        return instances
    h, w = instances.image_shape
    sy, sx = shape[0] / h, shape[1] / w
    out = np.zeros((len(instances), *shape), bool)
    for i, m in enumerate(instances.masks):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if not len(rows):
            continue
        y0, y1 = max(rows[0] - 2, 0), min(rows[-1] + 3, h)
        x0, x1 = max(cols[0] - 2, 0), min(cols[-1] + 3, w)
        oy0, oy1 = int(math.floor(y0 * sy)), min(int(math.ceil(y1 * sy)), shape[0])
        ox0, ox1 = int(math.floor(x0 * sx)), min(int(math.ceil(x1 * sx)), shape[1])
        yy = (np.arange(oy0, oy1) + 0.5) / sy - 0.5 - y0
        xx = (np.arange(ox0, ox1) + 0.5) / sx - 0.5 - x0
        grid = np.meshgrid(yy, xx, indexing="ij")
        crop = np.pad(m[y0:y1, x0:x1].astype(np.float32), 1)  # zero ring: nothing leaks from the edge
        values = map_coordinates(crop, [grid[0] + 1, grid[1] + 1], order=1, mode="nearest")
        out[i, oy0:oy1, ox0:ox1] = values >= 0.5
    return Instances.from_masks(out, instances.scores)


@dataclass
class ModalityResult:
    """Everything :func:`run_modality` computed for one image."""

    modality: str
    image: np.ndarray  # the sample as read (gray uint8)
    model_input: np.ndarray  # what the network saw: float32 [0, 1], after preprocessing and rescaling
    input_scale: float
    pred: Instances  # predictions at the image's own size (all scores >= the predictor's threshold)
    post: Instances  # after post-processing
    ref: Instances
    metrics: dict  # evaluate_instances of pred
    metrics_post: dict  # evaluate_instances of post
    postprocessing: dict = field(default_factory=dict)
    seconds: float = 0.0


def run_modality(
    predictor,
    modality: str,
    *,
    input_scale: float = 1.0,
    tile=None,
    min_score: float | None = 0.5,
    nested_fraction: float | None = 0.8,
    min_area: float = 20.0,
    iou: float = 0.5,
    image=None,
    ref: Instances | None = None,
) -> ModalityResult:
    """Preprocess, segment, post-process and score one sample image against its reference.

    Parameters
    ----------
    predictor:
        From :func:`nanowire_utils.maskrcnn.engine.load_predictor`. Its ``score_thresh`` decides
        which predictions enter the "before post-processing" numbers (COCO AP wants a low
        one, e.g. 0.05).
    modality:
        "ptychography", "stxm" or "sem": which sample and reference, and which
        preprocessing (``preprocessing.preprocess``).
    input_scale:
        Factor by which the image is enlarged (> 1) or shrunk before inference, so that wire
        widths in pixels match the training data's (see :func:`training_wire_width`).
        Predictions are resampled back to the image's size before scoring.
    tile:
        Passed to ``Predictor.predict`` (None: tile images larger than 1.5 x the training size).
    min_score, nested_fraction, min_area:
        Post-processing (``postprocess.postprocess``): score filter (None: off), removal of
        instances lying for at least this fraction inside a larger one (None: off), smallest
        area in pixels of the image's own size.
    iou:
        Mask IoU for precision/recall matching.
    image, ref:
        Another image and reference instead of the shipped sample and its annotation.
    """
    from nanowire_utils.real.annotations import load_reference
    from nanowire_utils.real.evaluation import evaluate_instances
    from nanowire_utils.real.postprocess import postprocess
    from nanowire_utils.real.preprocessing import preprocess
    from nanowire_utils.real.samples import load_sample

    check_choice("modality", modality, MODALITIES)
    check_range("input_scale", input_scale, 0.1, 8)
    t0 = time.perf_counter()
    raw = load_sample(modality) if image is None else np.asarray(image)
    ref = load_reference(modality) if ref is None else ref
    if raw.shape[:2] != ref.image_shape:
        raise ValueError(f"image {raw.shape[:2]} and reference {ref.image_shape} sizes differ")
    model_input = preprocess(raw, modality, scale=input_scale)
    pred = resize_instances(predictor.predict(model_input, tile=tile), raw.shape[:2])
    post_kw = {"min_score": min_score, "nested_fraction": nested_fraction, "min_area": min_area}
    post = postprocess(pred, **post_kw)
    return ModalityResult(
        modality=modality,
        image=raw,
        model_input=model_input,
        input_scale=float(input_scale),
        pred=pred,
        post=post,
        ref=ref,
        metrics=evaluate_instances(pred, ref, iou),
        metrics_post=evaluate_instances(post, ref, iou),
        postprocessing=post_kw,
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- tables


def _fmt(v, digits=1):
    return "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def paper_table(result: ModalityResult, digits: int = 1):
    """Our rows (before and after post-processing) beside the paper's rows, in the layout of
    its Tables 2-4: Accuracy, then AP, AP50, AP75, APs, APm, APl as "bbox/segm" (percent).

    AP size ranges are COCO's (small < 32^2 px, medium 32^2-96^2, large > 96^2 of reference
    mask area); the paper's text names 69^2 as the medium/large bound, but its numbers come
    from the COCO evaluator.
    """
    import pandas as pd

    def row(m):
        r = {"Accuracy": _fmt(m["accuracy"], digits)}
        for k in AP_KEYS:
            r[k] = f"{_fmt(m[f'bbox_{k}'], digits)}/{_fmt(m[f'segm_{k}'], digits)}"
        return r

    n = PAPER_TABLE_NUMBER[result.modality]
    rows, index = [], []
    for p in real_image_rows(result.modality):
        rows.append(row(p))
        index.append(f"paper, Table {n}, model {p['model']}")
    rows += [row(result.metrics), row(result.metrics_post)]
    index += ["ours, raw", "ours, post-processed"]
    return pd.DataFrame(rows, index=index)


def counts_table(result: ModalityResult):
    """Instance-level agreement at the matching IoU, before and after post-processing:
    precision and recall (percent), predictions, references, matched, missed, spurious."""
    import pandas as pd

    keys = ("precision", "recall", "n_pred", "n_ref", "n_matched", "n_missed", "n_spurious")
    df = pd.DataFrame(
        [{k: result.metrics[k] for k in keys}, {k: result.metrics_post[k] for k in keys}],
        index=["raw", "post-processed"],
    )
    return df.round({"precision": 1, "recall": 1})


def summary_table(results):
    """One row per modality: foreground accuracy, segm AP and AP50 (ours raw, ours
    post-processed, the paper's best row), number of instances."""
    import pandas as pd

    rows = []
    for r in results:
        best = real_image_rows(r.modality)[0]
        rows.append(
            {
                "image": TITLES[r.modality],
                "accuracy ours raw / post": f"{_fmt(r.metrics['accuracy'])} / {_fmt(r.metrics_post['accuracy'])}",
                "accuracy paper": _fmt(best["accuracy"]),
                "segm AP ours raw / post": f"{_fmt(r.metrics['segm_AP'])} / {_fmt(r.metrics_post['segm_AP'])}",
                "segm AP paper": _fmt(best["segm_AP"]),
                "segm AP50 ours raw / post": f"{_fmt(r.metrics['segm_AP50'])} / {_fmt(r.metrics_post['segm_AP50'])}",
                "segm AP50 paper": _fmt(best["segm_AP50"]),
                "instances pred raw / post / ref": f"{len(r.pred)} / {len(r.post)} / {len(r.ref)}",
            }
        )
    return pd.DataFrame(rows).set_index("image")


# --------------------------------------------------------------------------- statistics


def particle_tables(result: ModalityResult, pixel_size_nm: float | None = None, which: str = "post"):
    """``(predicted, reference)`` particle tables (``statistics.particle_table``) of the
    post-processed (``which="post"``) or raw (``"raw"``) predictions."""
    from nanowire_utils.real.statistics import particle_table

    check_choice("which", which, ("post", "raw"))
    pred = result.post if which == "post" else result.pred
    return particle_table(pred, pixel_size_nm), particle_table(result.ref, pixel_size_nm)


def distribution_table(
    result: ModalityResult,
    columns=("area", "aspect_ratio", "orientation"),
    n_boot: int = 500,
    seed: int = 0,
    which: str = "post",
):
    """KS statistic and Wasserstein-1 distance between predicted and reference distributions
    of ``columns``, with 95 % bootstrap intervals (``statistics.compare_distributions``).
    Wasserstein is in the column's units (px^2 for area, degrees for orientation)."""
    import pandas as pd

    from nanowire_utils.real.statistics import compare_distributions

    pred_df, ref_df = particle_tables(result, which=which)
    rows = {}
    for col in columns:
        c = compare_distributions(pred_df, ref_df, col, n_boot=n_boot, seed=seed)
        rows[col] = {
            "KS": round(c["ks"], 3),
            "KS 95% CI": f"{_fmt(c['ks_ci'][0], 3)}-{_fmt(c['ks_ci'][1], 3)}",
            "KS p-value": c["ks_pvalue"],
            "Wasserstein": round(c["wasserstein"], 2),
            "W 95% CI": f"{_fmt(c['wasserstein_ci'][0], 2)}-{_fmt(c['wasserstein_ci'][1], 2)}",
            "n pred": c["n_pred"],
            "n ref": c["n_ref"],
        }
    return pd.DataFrame(rows).T


# --------------------------------------------------------------------------- figures


def reference_overlay(result):
    from nanowire_utils.viz.plotting import overlay_array

    return overlay_array(result.image, result.ref, seed=1)


# --------------------------------------------------------------------------- what could close the gaps

#: Failure modes on real images and the generator settings (``nanowire_utils.synth.generator_presets``) that
#: model them; :func:`generator_gaps` shows their values in two presets.
GAP_KEYS = {
    "SEM contrast (surface signal, bright edges, top wire hides lower ones)": ("render.sem_fraction",),
    "agglomerates and bundles (one blob, many wires)": ("network.bundle_prob", "network.clump_prob"),
    "faint wires, low OD gradients, noise": (
        "render.beer_lambert",
        "render.mu_spread",
        "render.dose",
        "render.read_noise",
        "render.contrast_range",
    ),
    "background haze, uneven illumination": (
        "render.background",
        "render.background_scale",
        "render.illumination_gradient",
    ),
    "non-prismatic wires (over-segmentation inside thick or bent wires)": (
        "network.taper_prob",
        "network.bend_prob",
        "network.roughness_prob",
    ),
    "scale (wire widths in pixels)": ("network.width_mean", "network.width_range"),
}


def generator_gaps(base: str = "paper", richer: str = "rich"):
    """Table of :data:`GAP_KEYS`: for each failure mode, the generator settings that address it
    and their values in the ``base`` and ``richer`` generator presets (read from the presets)."""
    import pandas as pd

    from nanowire_utils.synth.dataset import flatten_params
    from nanowire_utils.synth.generator_presets import get_preset

    a, b = flatten_params(get_preset(base).to_dict()), flatten_params(get_preset(richer).to_dict())
    rows = []
    for gap, keys in GAP_KEYS.items():
        for key in keys:
            if key not in a:
                raise KeyError(f"generator setting {key} no longer exists; update crossmodality.GAP_KEYS")
            rows.append({"failure mode": gap, "setting": key, base: a[key], richer: b[key]})
    return pd.DataFrame(rows).set_index(["failure mode", "setting"])
