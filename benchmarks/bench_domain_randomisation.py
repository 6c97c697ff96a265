"""Domain randomisation: which synthetic training set carries over best to the real images?

For each training set (issue 9, part 4):

``paper``
    the paper-like generator preset (prismatic wires, no noise, flat background);
``rich``
    the ``rich`` preset (Beer-Lambert absorption, noise, background, illumination gradient,
    non-prismatic wires, bundles, 15 % SEM-like images);
``mixed``
    half ``paper``, half ``rich`` images (two generated sets merged into one);
``paper + SEM share``
    the ``paper`` preset with an SEM-like share (``render.sem_fraction``, default 0.3), aimed
    at the SEM image;

the script generates the set, trains the ``cpu`` training preset on it for a fixed number of
iterations (same seed, same schedule; LR drop at 80 %), then measures

* the synthetic test AP on one common test set (``n_images // 10`` images of the ``paper``
  preset, all of them test images, the same for every training seed), and
* on the three real images: foreground accuracy and segm AP at the input scale estimated
  from each image (:func:`nanowire_utils.chapters.crossmodality.image_scales`, with the
  training width measured on *that* training set) and fed as is (the paper's way),

and writes ``OUT/domain_randomisation.json`` and ``OUT/domain_randomisation.md`` (the table).
No setting is chosen by looking at the reference annotations: the real-image scores are the
outcome, nothing is tuned to them.

Cost: the full comparison (4 sets x 1000 images, ``--iterations`` 1500 of the ``cpu`` preset)
is about 2 hours on 2 CPU cores. Check the script itself in a minute with ``--smoke``.

Usage::

    python benchmarks/bench_domain_randomisation.py --out benchmarks/results/domain_randomisation \\
        --n-images 1000 --iterations 1500
    python benchmarks/bench_domain_randomisation.py --out /tmp/dr --smoke     # the script runs
    python benchmarks/bench_domain_randomisation.py --out SUMMARY --summarise DR_SEED0 DR_SEED1 DR_SEED2

Or from Python: ``run(out, n_images=..., iterations=...)``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

#: Training sets: name -> list of (generator preset, share of the images, generator overrides).
TRAINING_SETS: dict[str, list[tuple[str, float, dict]]] = {
    "paper": [("paper", 1.0, {})],
    "rich": [("rich", 1.0, {})],
    "mixed": [("paper", 0.5, {}), ("rich", 0.5, {})],
    "paper + SEM share": [("paper", 1.0, {"render.sem_fraction": 0.3})],
}
SPLITS = ("train", "val", "test")
#: Seed of the common synthetic test set (``n_images // 10`` images of the ``paper`` preset).
TEST_SEED = 10_000


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def merge_datasets(parts: list[Path], out: Path) -> Path:
    """One dataset folder holding every image of ``parts`` (same layout; ids renumbered, files
    copied as ``p<k>_<name>``), so the training loader sees a mix."""
    from nanowire_utils.coco import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        merged = {"images": [], "annotations": [], "categories": None}
        next_img, next_ann = 1, 1
        for k, part in enumerate(parts):
            coco = json.loads((part / "annotations" / f"instances_{split}.json").read_text())
            merged["categories"] = merged["categories"] or coco["categories"]
            new_id = {}
            for im in coco["images"]:
                name = f"p{k}_{im['file_name']}"
                shutil.copyfile(part / "images" / split / im["file_name"], out / "images" / split / name)
                new_id[im["id"]] = next_img
                merged["images"].append({**im, "id": next_img, "file_name": name})
                next_img += 1
            for a in coco["annotations"]:
                merged["annotations"].append({**a, "id": next_ann, "image_id": new_id[a["image_id"]]})
                next_ann += 1
        write_json_atomic(out / "annotations" / f"instances_{split}.json", merged)
    write_json_atomic(out / "dataset.json", {"merged_from": [str(p) for p in parts]})
    return out


def make_training_set(name: str, out: Path, n_images: int, seed: int = 0, workers: int | None = None) -> Path:
    """Generate training set ``name`` of :data:`TRAINING_SETS` (``n_images`` in all) under
    ``out``; returns its dataset folder."""
    from nanowire_utils.synth.dataset import write_dataset
    from nanowire_utils.synth.generator_presets import get_preset

    parts = []
    for k, (preset, share, overrides) in enumerate(TRAINING_SETS[name]):
        n = max(3, round(n_images * share))
        folder = out / f"part{k}_{preset}"
        write_dataset(folder, n, seed=seed + k, config=get_preset(preset, **overrides), workers=workers, progress=False)
        parts.append(folder)
    return parts[0] if len(parts) == 1 else merge_datasets(parts, out / "merged")


def train_cpu_preset(data_dir: Path, run_dir: Path, iterations: int, seed: int = 0, preset: str = "cpu") -> dict:
    """Train ``preset`` for ``iterations`` (LR x 0.1 at 80 %, no wall-clock budget)."""
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.engine import train

    cfg = TrainConfig.from_preset(preset)
    cfg.set("SEED", int(seed))
    cfg.set("SOLVER.MAX_ITER", int(iterations))
    cfg.set("SOLVER.STEPS", [max(1, int(0.8 * iterations))])
    cfg.set("SOLVER.WARMUP_ITERS", min(cfg["SOLVER.WARMUP_ITERS"], max(1, iterations // 5)))
    cfg.set("SOLVER.MAX_MINUTES", 0.0)
    cfg.set("SOLVER.CHECKPOINT_PERIOD", int(iterations))
    cfg.set("TEST.EVAL_PERIOD", 0)
    cfg.validate()
    result = train(cfg, data_dir, run_dir, resume=True, progress=False)
    return {"iterations": result.iterations, "minutes": round(result.elapsed_s / 60, 2)}


def score(
    run_dir: Path, train_data: Path, test_data: Path, max_test_images: int = 0, tile=None, score_thresh: float = 0.05
) -> dict:
    """Synthetic test AP on ``test_data`` and real-image scores at the image-estimated scale and as is
    (predictions above ``score_thresh``; COCO AP wants a low one)."""
    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.maskrcnn.engine import load_predictor
    from nanowire_utils.maskrcnn.evaluate import evaluate_split

    predictor = load_predictor(run_dir, device="auto", score_thresh=score_thresh)
    synth = evaluate_split(predictor, test_data, "test", max_images=max_test_images, progress=False)
    return {
        "synthetic_test": {
            "bbox_AP": synth["bbox"]["AP"],
            "segm_AP": synth["segm"]["AP"],
            "n_images": synth["n_images"],
        },
        # training width measured on this training set
        **cm.score_real_images(predictor, train_data, tile=tile),
    }


def markdown_table(results: dict) -> str:
    """One row per training set: synthetic test segm AP, then per real image accuracy / segm AP
    (post-processed) at the estimated scale, and the input scales used."""
    images = ("X-ray ptychography", "STXM", "SEM")
    head = ["training set", "iterations", "minutes", "synthetic segm AP"]
    head += [f"{im} acc / segm AP" for im in images] + ["input scales"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        row = [name, str(r["training"]["iterations"]), str(r["training"]["minutes"])]
        row.append(f"{r['synthetic_test']['segm_AP']:.1f}")
        for im in images:
            m = r["real"][f"{im} | estimated scale"]
            row.append(f"{m['accuracy post']:.1f} / {m['segm AP post']:.1f}")
        row.append(", ".join(f"{k} {v:g}" for k, v in r["input_scales"].items()))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def run(
    out,
    n_images: int = 1000,
    iterations: int = 1500,
    sets=tuple(TRAINING_SETS),
    seed: int = 0,
    preset: str = "cpu",
    max_test_images: int = 0,
    workers: int | None = None,
    tile=None,
    score_thresh: float = 0.05,
) -> dict:
    """Generate, train and score every training set in ``sets``; write the JSON and Markdown
    table into ``out`` after each set (an interrupted run keeps what it finished; datasets and
    finished trainings are reused on a re-run)."""
    from nanowire_utils.synth.dataset import write_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(sets) - set(TRAINING_SETS)
    if unknown:
        raise ValueError(f"unknown training set(s) {sorted(unknown)}; choose from {list(TRAINING_SETS)}")
    # Every image of the common test set is a test image, and its seed does not follow the
    # training seed, so runs with different seeds are scored on the same images.
    test_data = out / "data" / "common_test"
    write_dataset(
        test_data,
        max(10, n_images // 10),
        seed=TEST_SEED,
        config="paper",
        splits=(0.0, 0.0, 1.0),
        workers=workers,
        progress=False,
    )
    results = {}
    for name in sets:
        t0 = time.perf_counter()
        data = make_training_set(name, out / "data" / _slug(name), n_images, seed, workers)
        run_dir = out / "runs" / _slug(name)
        training = train_cpu_preset(data, run_dir, iterations, seed, preset)
        results[name] = {
            "training_set": [list(p) for p in TRAINING_SETS[name]],
            "training": training,
            **score(run_dir, data, test_data, max_test_images, tile, score_thresh),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        report = {
            "preset": preset,
            "n_images": n_images,
            "iterations": iterations,
            "seed": seed,
            "score_thresh": score_thresh,
            "scoring": "real images: post-processed, at the input scale estimated from each image; "
            "references: the project's own by-eye annotations",
            "results": results,
        }
        (out / "domain_randomisation.json").write_text(json.dumps(report, indent=1))
        (out / "domain_randomisation.md").write_text(markdown_table(results))
        print(f"{name}: done in {results[name]['seconds']} s", flush=True)
    return results


#: Real-image measures carried into the summary (post-processed, as the chapter reports them).
SUMMARY_MEASURES = ("segm AP post", "accuracy post")


def _stats(values: list[float]) -> dict:
    import numpy as np

    v = np.asarray(values, dtype=float)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "values": [float(x) for x in v],
    }


def summarise(folders, out=None) -> dict:
    """Mean and standard deviation over seeds of every training set's scores.

    Parameters
    ----------
    folders : sequence of path
        Output folders of :func:`run`, one per training seed (same ``n_images``, ``iterations``
        and preset; a set missing from a folder is left out of that seed).
    out : path or None
        Where to write ``summary.json`` and ``summary.md``; None writes nothing.

    Returns
    -------
    dict
        ``{"seeds", "iterations", "n_images", "preset", "test_images", "sets": {name: {measure:
        {"mean", "sd", "values"}}}}``; measures are ``synthetic bbox AP``, ``synthetic segm AP``
        and ``<image> | <setting> | <measure>`` for the real images (:data:`SUMMARY_MEASURES`),
        with ``<image>`` = ``DR_MEAN_OF_THREE`` for each seed's mean over the three images: the number
        the default training set is chosen by (see the results README).
    """
    from nanowire_utils.chapters.crossmodality import DR_MEAN_OF_THREE, mean_over_images

    reports = [json.loads((Path(f) / "domain_randomisation.json").read_text()) for f in folders]
    keys = ("n_images", "iterations", "preset")
    for r in reports[1:]:
        if any(r[k] != reports[0][k] for k in keys):
            raise ValueError(f"the folders were run with different {keys}; summarise like with like")
    per_set: dict[str, dict[str, list]] = {}
    test_images = set()
    for r in reports:
        for name, res in r["results"].items():
            m = per_set.setdefault(name, {})
            m.setdefault("synthetic bbox AP", []).append(res["synthetic_test"]["bbox_AP"])
            m.setdefault("synthetic segm AP", []).append(res["synthetic_test"]["segm_AP"])
            m.setdefault("training minutes", []).append(res["training"]["minutes"])
            test_images.add(res["synthetic_test"]["n_images"])
            for row, metrics in res["real"].items():
                for measure in SUMMARY_MEASURES:
                    m.setdefault(f"{row} | {measure}", []).append(metrics[measure])
            for setting in ("as is", "estimated scale"):
                for measure in SUMMARY_MEASURES:
                    mean = mean_over_images(res["real"], setting, measure)
                    m.setdefault(f"{DR_MEAN_OF_THREE} | {setting} | {measure}", []).append(mean)
    summary = {
        "seeds": [r["seed"] for r in reports],
        **{k: reports[0][k] for k in keys},
        "test_images": sorted(test_images),
        "scoring": reports[0]["scoring"],
        "sets": {name: {k: _stats(v) for k, v in m.items()} for name, m in per_set.items()},
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    """The summary as a Markdown table: mean ± SD over seeds of the synthetic test AP and of the
    real images' post-processed segm AP, as is and at the estimated scale."""
    from nanowire_utils.chapters.crossmodality import DR_ROWS, mean_sd_text

    head = ["training set", "seeds", "synthetic bbox AP", "synthetic segm AP"]
    head += [f"{im} segm AP, {s}" for im, s in DR_ROWS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in summary["sets"].items():
        row = [name, str(len(m["synthetic segm AP"]["values"]))]
        row += [mean_sd_text(m["synthetic bbox AP"]), mean_sd_text(m["synthetic segm AP"])]
        row += [mean_sd_text(m[f"{im} | {s} | segm AP post"]) for im, s in DR_ROWS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (data, runs, JSON and Markdown table)")
    p.add_argument("--n-images", type=int, default=1000, help="images per training set")
    p.add_argument("--iterations", type=int, default=1500, help="training iterations of the cpu preset")
    p.add_argument("--sets", nargs="+", default=list(TRAINING_SETS), help="training sets to compare")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--smoke",
        action="store_true",
        help="check the script: 8 images, 2 iterations, 2 test images, score threshold 0.5 "
        "(an untrained model's hundreds of low-score detections per tile are slow to merge)",
    )
    p.add_argument(
        "--summarise",
        nargs="+",
        metavar="FOLDER",
        help="instead of running: summarise these output folders (one per seed) into --out/summary.json and summary.md",
    )
    a = p.parse_args(argv)
    if a.summarise:
        summarise(a.summarise, a.out)
        print((Path(a.out) / "summary.md").read_text())
        return 0
    if a.smoke:
        run(a.out, n_images=8, iterations=2, sets=a.sets, seed=a.seed, max_test_images=2, workers=1, score_thresh=0.5)
    else:
        run(a.out, a.n_images, a.iterations, a.sets, a.seed)
    print((Path(a.out) / "domain_randomisation.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
