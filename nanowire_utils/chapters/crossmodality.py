"""Evaluation of a trained model on the three real images of the paper's section 3
(X-ray ptychography, STXM, SEM): the steps of the paper's Tables 2-4 and Figs. 7-12 as
short functions, so the chapter's cells stay short.

Typical use::

    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.viz import crossmodality as cmviz
    scales = cm.image_scales("paper")   # input scale of each image, from the image alone
    result = cm.run_modality(predictor, "ptychography", input_scale=scales.loc["ptychography", "input scale"])
    as_is = cm.run_modality(predictor, "ptychography", as_is=True, label="as is")  # the paper's way
    cm.paper_table(result, as_is)   # our rows beside the paper's best rows (Table 2 layout)
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
from nanowire_utils.instances import Instances, resize_instances
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


def training_wire_width(generator_preset="paper", n_images: int = 8, seed: int = 0) -> float:
    """Median width in pixels of the annotation masks of ``n_images`` fresh images of a
    generator preset (name or ``GeneratorConfig``): the widths the network learnt."""
    from nanowire_utils.coco import decode_rle
    from nanowire_utils.synth.dataset import make_sample
    from nanowire_utils.synth.generator_presets import GeneratorConfig, get_preset

    check_range("n_images", n_images, 1, 1000)
    config = generator_preset if isinstance(generator_preset, GeneratorConfig) else get_preset(generator_preset)
    masks = []
    for i in range(1, n_images + 1):
        _, anns, _ = make_sample(config, seed, i)
        masks.extend(decode_rle(a["segmentation"]) for a in anns)
    if not masks:
        return math.nan
    return median_wire_width(np.stack(masks))


def auto_input_scale(train_width: float, instances, low: float = 0.25, high: float = 4.0) -> float:
    """Factor that brings the median wire width of ``instances`` (e.g. a few wires measured by
    hand) to ``train_width`` pixels: ``train_width / median width``, rounded to 0.05 and
    clipped to [``low``, ``high``].

    Diagnostic only when ``instances`` is the reference an image is scored against: a scale
    read from the labels it is judged by is not independent of them. The chapter's scale comes
    from the image alone (:func:`image_scales`, :mod:`nanowire_utils.real.scale`)."""
    check_range("train_width", train_width, 0, None, low_inclusive=False, unit="px")
    width = median_wire_width(instances)
    if not width > 0:
        raise ValueError("no instance with a measurable width; give the input scale by hand")
    return float(np.clip(round(train_width / width / 0.05) * 0.05, low, high))


def image_scales(
    generator_preset="paper",
    modalities=MODALITIES,
    *,
    seed: int = 0,
    n_images: int = 8,
    diagnostic: bool = False,
    images: dict | None = None,
):
    """The input scale of each real image, estimated from the image alone.

    Each sample is preprocessed at scale 1 (``preprocessing.preprocess``, what the network is
    given) and its median wire width measured with
    :func:`nanowire_utils.real.scale.estimate_wire_width`; the training width is the same
    estimator on ``n_images`` fresh images of the generator preset the model was trained on
    (:func:`nanowire_utils.real.scale.training_image_width`). No annotation is read. An
    image without measurable wires falls back to scale 1 (logged as a warning).

    Parameters
    ----------
    generator_preset : str, GeneratorConfig or path
        What the model was trained on: a generator preset name or config, or the dataset folder.
    modalities : sequence of str
        Which samples.
    seed, n_images : int
        Which and how many training images are measured.
    diagnostic : bool
        Add two columns read from the reference annotations (the median width of the
        reference masks, and the scale that would match it to the training *masks'* median
        width, :func:`training_wire_width`), to see how the image estimate compares. They are
        labelled "diagnostic" and nothing uses them.
    images : dict or None
        ``{modality: image}`` instead of the shipped samples.

    Returns
    -------
    pandas.DataFrame
        Index: modality. Columns ``image width (px)``, ``training width (px)``,
        ``input scale``, ``wires found``, ``fallback reason`` (and the diagnostic columns).
    """
    import pandas as pd

    from nanowire_utils.real.preprocessing import preprocess
    from nanowire_utils.real.samples import load_sample
    from nanowire_utils.real.scale import estimate_input_scale, training_image_width

    for mod in modalities:
        check_choice("modality", mod, MODALITIES)
    train_width = training_image_width(generator_preset, n_images=n_images, seed=seed)
    rows = {}
    for mod in modalities:
        raw = load_sample(mod) if images is None or mod not in images else np.asarray(images[mod])
        est = estimate_input_scale(preprocess(raw, mod), train_width, name=mod)
        rows[mod] = {
            "image width (px)": est.width_px,
            "training width (px)": est.train_width_px,
            "input scale": est.scale,
            "wires found": not est.fallback,
            "fallback reason": est.reason,
        }
    df = pd.DataFrame(rows).T
    if diagnostic:
        from nanowire_utils.real.annotations import load_reference

        mask_width = _training_mask_width(generator_preset, n_images, seed)
        ref_w = {mod: median_wire_width(load_reference(mod)) for mod in modalities}
        df["reference width (px), diagnostic"] = pd.Series(ref_w)
        df["scale from reference, diagnostic"] = pd.Series(
            {mod: auto_input_scale(mask_width, load_reference(mod)) for mod in modalities}
        )
    return df.infer_objects()


def _training_mask_width(source, n_images: int, seed: int) -> float:
    """Median width of the training *annotation masks*: of a dataset folder's first train
    images, or of fresh images of a generator preset (:func:`training_wire_width`)."""
    from pathlib import Path

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        from nanowire_utils.synth.dataset import read_split

        split = read_split(source, "train")
        masks = [m for k in range(min(n_images, len(split))) for m in split[k][1].masks]
        return median_wire_width(np.stack(masks)) if masks else math.nan
    return training_wire_width(source, n_images=n_images, seed=seed)


def resolve_input_scales(input_scale, scales_table=None, modalities=MODALITIES) -> dict:
    """``{modality: factor}`` from a notebook parameter.

    ``input_scale`` is ``"auto"`` (each image's estimate, the ``input scale`` column of
    ``scales_table`` from :func:`image_scales`), a number (every image), or a dict
    ``{modality: "auto" or number}``.
    """
    out = {}
    for mod in modalities:
        v = input_scale.get(mod, "auto") if isinstance(input_scale, dict) else input_scale
        if v == "auto":
            if scales_table is None:
                raise ValueError(f"input scale of {mod} is 'auto': pass the table of image_scales()")
            out[mod] = float(scales_table.loc[mod, "input scale"])
        else:
            out[mod] = float(check_range(f"input_scale[{mod!r}]", v, 0.1, 8))
    return out


# --------------------------------------------------------------------------- running


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
    label: str = ""  # names the setting in tables (e.g. "as is", "estimated scale")
    as_is: bool = False  # fed as read (no OD conversion, no contrast stretch)


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
    as_is: bool = False,
    label: str = "",
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
    as_is:
        Feed the image as the paper did: gray values in [0, 1] as read (8-bit / 255), no
        optical-density conversion and no contrast stretch (``inference.to_gray01``);
        ``input_scale`` still applies (1 for the paper's way).
    label:
        Names this setting in :func:`paper_table` and :func:`summary_table`.
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
    if as_is:
        from nanowire_utils.maskrcnn.inference import to_gray01
        from nanowire_utils.real.preprocessing import rescale_by

        model_input = to_gray01(raw)
        if input_scale != 1.0:
            model_input = np.clip(rescale_by(model_input, input_scale), 0.0, 1.0)
    else:
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
        label=str(label),
        as_is=bool(as_is),
    )


def run_settings(predictor, settings: dict, modalities=MODALITIES, progress: bool = True, **common) -> dict:
    """:func:`run_modality` for every image under every setting.

    Parameters
    ----------
    predictor:
        As for :func:`run_modality`; a setting may bring its own (key ``"predictor"``, e.g. a
        :class:`nanowire_utils.maskrcnn.tta.TTAPredictor`).
    settings:
        ``{label: keyword arguments of run_modality}``; ``input_scale`` may be a dict
        ``{modality: factor}``. E.g. ``{"as is": {"as_is": True}, "estimated scale":
        {"input_scale": scales}}``.
    modalities:
        Which images.
    common:
        Keyword arguments of :func:`run_modality` shared by all settings (``tile``,
        post-processing).

    Returns
    -------
    dict
        ``{(modality, label): ModalityResult}``, in the order images x settings.
    """
    from tqdm.auto import tqdm

    jobs = [(mod, label) for mod in modalities for label in settings]
    out = {}
    for mod, label in tqdm(jobs, desc="images x settings", disable=not progress):
        kw = {**common, **settings[label]}
        pred = kw.pop("predictor", predictor)
        if isinstance(kw.get("input_scale"), dict):
            kw["input_scale"] = kw["input_scale"][mod]
        out[(mod, label)] = run_modality(pred, mod, label=label, **kw)
    return out


def score_real_images(predictor, training_data, tile=None, progress: bool = False) -> dict:
    """The three real images scored as the benchmarks report them: fed as is (the paper's way)
    and at the input scale estimated from each image (:func:`image_scales`, with the training
    width measured on ``training_data``), after post-processing and before.

    Parameters
    ----------
    predictor : Predictor
        The model (e.g. from :func:`nanowire_utils.maskrcnn.engine.load_predictor`); COCO AP
        wants a low score threshold (0.05).
    training_data : str, Path or GeneratorConfig
        The dataset folder (or generator preset) the model was trained on.
    tile : int or None
        As in :func:`run_modality`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``{"input_scales": {modality: factor}, "training_width_px": float, "real": {"<image> |
        <setting>": {column of settings_table: number or None}}}``.
    """
    scales_table = image_scales(training_data)
    scales = resolve_input_scales("auto", scales_table)
    settings = {"as is": {"as_is": True}, "estimated scale": {"input_scale": scales}}
    table = settings_table(run_settings(predictor, settings, tile=tile, progress=progress))
    return {
        "input_scales": {m: float(v) for m, v in scales.items()},
        "training_width_px": float(scales_table["training width (px)"].iloc[0]),
        "real": {
            f"{image} | {setting}": {k: (None if v != v else float(v)) for k, v in row.items()}
            for (image, setting), row in table.iterrows()
        },
    }


def mean_over_images(real: dict, setting: str, measure: str = "segm AP post", n_images: int = 3) -> float:
    """One measure averaged over the real images scored in one setting: the figure the
    benchmarks quote for a model on the real images.

    Parameters
    ----------
    real : dict
        The ``"real"`` entry of :func:`score_real_images` (``{"<image> | <setting>": {measure:
        number}}``).
    setting : str
        ``"as is"`` or ``"estimated scale"``.
    measure : str
        A column of :func:`settings_table`, e.g. ``"segm AP post"`` (percent).
    n_images : int
        How many images must have been scored in that setting; a report with fewer (or more)
        is refused rather than averaged over a different set.

    Returns
    -------
    float
        The mean, in the measure's units.
    """
    values = [v[measure] for k, v in real.items() if k.endswith(f" | {setting}")]
    if len(values) != n_images:
        raise ValueError(
            f"expected {n_images} real images scored {setting!r}, found {len(values)} "
            f"(rows: {sorted(real)}); score them again with score_real_images"
        )
    if any(v is None for v in values):
        raise ValueError(f"{measure!r} is missing for some images scored {setting!r}")
    return sum(values) / n_images


# --------------------------------------------------------------------------- tables


def _fmt(v, digits=1):
    return "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _name(r: ModalityResult) -> str:
    return f"ours, {r.label}" if r.label else "ours"


def paper_table(result: ModalityResult, *more: ModalityResult, digits: int = 1):
    """Our rows (before and after post-processing) beside the paper's rows, in the layout of
    its Tables 2-4: Accuracy, then AP, AP50, AP75, APs, APm, APl as "bbox/segm" (percent).

    Give several results of the same image (e.g. fed as is, as the paper did, and at the
    image-estimated scale) to get two rows for each, named by their ``label``.

    AP size ranges are COCO's (small < 32^2 px, medium 32^2-96^2, large > 96^2 of reference
    mask area); the paper's text names 69^2 as the medium/large bound, but its numbers come
    from the COCO evaluator.
    """
    import pandas as pd

    results = [result, *more]
    if len({r.modality for r in results}) > 1:
        raise ValueError(f"paper_table compares one image; got {sorted({r.modality for r in results})}")

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
    for r in results:
        rows += [row(r.metrics), row(r.metrics_post)]
        index += [f"{_name(r)}, raw", f"{_name(r)}, post-processed"]
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
    """One row per image (and per setting, when the results have labels): input scale,
    foreground accuracy, segm AP and AP50 (ours raw, ours post-processed, the paper's best
    row), number of instances."""
    import pandas as pd

    results = list(results.values()) if isinstance(results, dict) else list(results)
    labelled = any(r.label for r in results)
    rows = []
    for r in results:
        best = real_image_rows(r.modality)[0]
        row = {"image": TITLES[r.modality]}
        if labelled:
            row["setting"] = r.label
        row.update(
            {
                "input scale": f"{r.input_scale:g}",
                "accuracy ours raw / post": f"{_fmt(r.metrics['accuracy'])} / {_fmt(r.metrics_post['accuracy'])}",
                "accuracy paper": _fmt(best["accuracy"]),
                "segm AP ours raw / post": f"{_fmt(r.metrics['segm_AP'])} / {_fmt(r.metrics_post['segm_AP'])}",
                "segm AP paper": _fmt(best["segm_AP"]),
                "segm AP50 ours raw / post": f"{_fmt(r.metrics['segm_AP50'])} / {_fmt(r.metrics_post['segm_AP50'])}",
                "segm AP50 paper": _fmt(best["segm_AP50"]),
                "instances pred raw / post / ref": f"{len(r.pred)} / {len(r.post)} / {len(r.ref)}",
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index(["image", "setting"] if labelled else "image")


#: Columns of :func:`settings_table`: (name, which metrics, key).
SETTING_COLUMNS = (
    ("accuracy raw", "metrics", "accuracy"),
    ("accuracy post", "metrics_post", "accuracy"),
    ("segm AP raw", "metrics", "segm_AP"),
    ("segm AP post", "metrics_post", "segm_AP"),
    ("segm AP50 post", "metrics_post", "segm_AP50"),
    ("bbox AP raw", "metrics", "bbox_AP"),
    ("precision post", "metrics_post", "precision"),
    ("recall post", "metrics_post", "recall"),
)


def settings_table(results, digits: int = 1):
    """Numbers (not strings) of several settings side by side, one row per image and setting:
    the input scale, foreground accuracy, segm AP, AP50, bbox AP, precision and recall (percent,
    raw and/or post-processed), instances and seconds. ``results``: the dict of
    :func:`run_settings` or a list of labelled results."""
    import pandas as pd

    results = list(results.values()) if isinstance(results, dict) else list(results)
    rows = []
    for r in results:
        row = {"image": TITLES[r.modality], "setting": r.label or "-", "input scale": r.input_scale}
        for name, which, key in SETTING_COLUMNS:
            row[name] = getattr(r, which)[key]
        row["instances post"] = len(r.post)
        row["seconds"] = r.seconds
        rows.append(row)
    df = pd.DataFrame(rows).set_index(["image", "setting"])
    return df.round({c: (2 if c == "input scale" else digits) for c in df.columns})


def effect_text(table, baseline: str, other: str, metrics=("segm AP post", "accuracy post")) -> str:
    """One line per image saying how ``metrics`` change from setting ``baseline`` to ``other``
    in a :func:`settings_table` (e.g. "X-ray ptychography: segm AP post 3.1 -> 5.2 (+2.1); ...").
    For narrating measured numbers without typing them."""
    settings = set(table.index.get_level_values("setting"))
    for s in (baseline, other):
        if s not in settings:
            raise ValueError(f"setting {s!r} is not in the table; it has {sorted(settings)}")
    lines = []
    for image in dict.fromkeys(table.index.get_level_values("image")):
        a, b = table.loc[(image, baseline)], table.loc[(image, other)]
        parts = []
        for m in metrics:
            d = b[m] - a[m]
            parts.append(f"{m} {_fmt(a[m])} -> {_fmt(b[m])} ({'NaN' if math.isnan(d) else f'{d:+.1f}'})")
        lines.append(f"{image}, {baseline!r} -> {other!r}: " + "; ".join(parts))
    return "\n".join(lines)


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


# --------------------------------------------------------------------------- domain randomisation

#: The "image" name of each seed's mean over the three real images in the summary.
DR_MEAN_OF_THREE = "mean of 3 images"
#: The real-image rows of the domain-randomisation summary: (image title, setting); the last
#: two are each seed's mean over the three images.
DR_ROWS = tuple(
    (im, s) for im in [TITLES[m] for m in MODALITIES] + [DR_MEAN_OF_THREE] for s in ("as is", "estimated scale")
)


def mean_sd_text(stat: dict, digits: int = 1) -> str:
    """``"mean ± SD"`` of one entry of a domain-randomisation summary, for its tables.

    Parameters
    ----------
    stat : dict
        ``{"mean", "sd", ...}``; ``sd`` is None for a single seed (then only the mean is shown).
    digits : int
        Decimals shown.

    Returns
    -------
    str
        E.g. ``"3.0 ± 0.3"``.
    """
    text = f"{stat['mean']:.{digits}f}"
    return text if stat.get("sd") is None else f"{text} ± {stat['sd']:.{digits}f}"


def load_domain_randomisation(path) -> dict:
    """Read the summary of ``benchmarks/bench_domain_randomisation.py --summarise`` (``summary.json``:
    mean, SD and values over training seeds of each training set's scores), with a clear error when
    the file is missing or is not such a summary.

    Parameters
    ----------
    path : str or os.PathLike
        The ``summary.json`` file.

    Returns
    -------
    dict
        ``{"seeds", "iterations", "n_images", "preset", "test_images", "scoring", "sets"}``;
        ``sets[name][measure]`` is ``{"mean", "sd", "values"}`` (percent).
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: it is written by `python benchmarks/bench_domain_randomisation.py "
            "--out FOLDER --summarise SEED_FOLDERS...` (in a clone of the repository)"
        )
    summary = json.loads(path.read_text())
    if not isinstance(summary, dict) or not isinstance(summary.get("sets"), dict) or not summary["sets"]:
        raise ValueError(f"{path} is not a domain-randomisation summary (no 'sets' of results)")
    return summary


def domain_randomisation_table(summary, measure: str = "segm AP post", digits: int = 1):
    """One row per training set: the number of seeds, synthetic test bbox and segm AP, and
    ``measure`` on each real image fed as is and at the estimated scale, each as "mean ± SD"
    over the training seeds (percent).

    Parameters
    ----------
    summary : dict or path
        A summary (:func:`load_domain_randomisation`) or the path of its ``summary.json``.
    measure : str
        Real-image measure: ``"segm AP post"`` or ``"accuracy post"``.
    digits : int
        Decimals shown.

    Returns
    -------
    pandas.DataFrame
        Indexed by training set; the "mean ± SD" cells are strings.
    """
    import pandas as pd

    if not isinstance(summary, dict):
        summary = load_domain_randomisation(summary)

    rows = {}
    for name, m in summary["sets"].items():
        row = {"seeds": len(m["synthetic segm AP"]["values"])}
        row["synthetic bbox AP"] = mean_sd_text(m["synthetic bbox AP"], digits)
        row["synthetic segm AP"] = mean_sd_text(m["synthetic segm AP"], digits)
        for image, setting in DR_ROWS:
            key = f"{image} | {setting} | {measure}"
            if key not in m:
                raise KeyError(f"the summary has no {key!r}; its measures: {sorted(m)}")
            row[f"{image}, {setting}"] = mean_sd_text(m[key], digits)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("training set")


#: The number the default training set is chosen by: each seed's mean over the three real images
#: of the post-processed segm AP at the image-estimated scale (chapter 6's setting).
DR_CHOICE_KEY = f"{DR_MEAN_OF_THREE} | estimated scale | segm AP post"


def choose_training_set(summary, baseline: str = "paper", key: str = DR_CHOICE_KEY) -> tuple[str, str]:
    """Apply the project's rule for the default training data to a domain-randomisation summary.

    Another set replaces ``baseline`` only if its mean over seeds of ``key`` exceeds the
    baseline's by more than the larger of the two sets' seed standard deviations; of several
    such sets the highest wins. One number and one rule, so nothing is tuned per image.

    Parameters
    ----------
    summary : dict or path
        A summary (:func:`load_domain_randomisation`) or the path of its ``summary.json``.
    baseline : str
        The training set kept unless another clearly beats it.
    key : str
        The measure compared (default :data:`DR_CHOICE_KEY`).

    Returns
    -------
    tuple of (str, str)
        The chosen set, and one line per other set saying its margin over the baseline and the
        seed spread it had to exceed.
    """
    if not isinstance(summary, dict):
        summary = load_domain_randomisation(summary)
    sets = summary["sets"]
    if baseline not in sets:
        raise ValueError(f"baseline {baseline!r} is not in the summary; it has {sorted(sets)}")
    base = sets[baseline][key]
    choice, best, lines = baseline, base["mean"], []
    for name, m in sets.items():
        if name == baseline:
            continue
        stat = m[key]
        spread = max(s or 0.0 for s in (base["sd"], stat["sd"]))
        margin = stat["mean"] - base["mean"]
        beats = margin > spread
        lines.append(
            f"{name}: {stat['mean']:.1f} vs {baseline} {base['mean']:.1f} ({margin:+.1f}; seed spread {spread:.1f})"
            + (": beats it" if beats else ": does not beat it")
        )
        if beats and stat["mean"] > best:
            choice, best = name, stat["mean"]
    lines.append(f"default training set: {choice}")
    return choice, "\n".join(lines)
