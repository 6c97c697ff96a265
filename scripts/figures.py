"""The measured figures that the README and the book quote, read from the committed results files.

Every number the prose quotes comes from here, so prose cannot drift from the measurements:

* the book's pages use them as MyST substitutions (``{{ cpu_v1_segm_ap }}``), which this
  script writes into ``_config.yml`` (``parse.myst_substitutions``);
* the README quotes them in the phrases of :data:`README_PHRASES`, which ``--check`` looks for.

Usage::

    python scripts/figures.py            # print the figures
    python scripts/figures.py --write    # update _config.yml's substitutions from the results
    python scripts/figures.py --check    # fail when _config.yml or the README disagree with the results

``tests/test_figures.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "_config.yml"
BEGIN = "  # BEGIN figures (written by scripts/figures.py --write from benchmarks/results; do not edit)\n"
END = "  # END figures\n"

#: Phrases of the README, with ``{name}`` placeholders for figures; each must appear verbatim.
README_PHRASES = (
    "analytic path {gen_images_per_cpu_s} images per CPU-second ({gen_images_per_s}/s wall clock",
    "{gen_analytic_over_voxel}× the voxel path",
    "peak memory flat ({gen_peak_mib} MiB for 100 and for 1000 images)",
    "bbox AP {cpu_bbox_ap} / segm AP {cpu_segm_ap} after its {cpu_iterations} iterations ({cpu_minutes} minutes",
    "The preset before it (LR 0.02) reached "
    "bbox AP {cpu_v3_bbox_ap} / segm AP {cpu_v3_segm_ap} after {cpu_v3_minutes} minutes",
    "trained for {cpu_long_iterations} iterations (`cpu-long`, measured before the preset changed) reached "
    "bbox AP {cpu_long_bbox_ap} / segm AP {cpu_long_segm_ap} after {cpu_long_minutes} minutes",
    "reached bbox AP {cpu_v2_bbox_ap} / segm AP {cpu_v2_segm_ap} after {cpu_v2_minutes} minutes",
    "bbox AP {cpu_v1_bbox_ap} / segm AP {cpu_v1_segm_ap} after {cpu_v1_minutes} minutes",
    "the paper's GPU models: {paper_bbox_ap} / {paper_segm_ap}",
    "{inference_s} s CPU inference per 512 × 512 image",
    "{eng_iterations} iterations each: {eng_tv_s_per_iter} s / {eng_d2_s_per_iter} s per iteration (torchvision / detectron2), "
    "synthetic test segm AP {eng_tv_segm_ap} / {eng_d2_segm_ap} at matched iterations",
    "{dr_iterations} iterations of the `cpu` preset, {dr_seeds} seeds each: mean segm AP over the three real images at the "
    "image-estimated scale "
    "{dr_real_paper} ± {dr_real_sd_paper} (`paper`), {dr_real_rich} ± {dr_real_sd_rich} (`rich`), "
    "{dr_real_mixed} ± {dr_real_sd_mixed} (mixed), {dr_real_sem} ± {dr_real_sd_sem} (`paper` + SEM share)",
)


def _load(rel: str) -> dict:
    path = RESULTS / rel
    if not path.exists():
        raise FileNotFoundError(f"results file {path} is missing; run the benchmark that writes it")
    return json.loads(path.read_text())


#: The benchmark run of the current ``cpu`` preset (its figures are the ``cpu_*`` ones).
CPU_PRESET_RESULTS = "training_v3/lr004/bench_training.json"

#: Figure-name suffix -> the row label of the real-image scores (``bench_training.py --real``).
REAL_ROWS = {"est": "estimated scale", "asis": "as is"}


def figures() -> dict[str, str]:
    """``{name: formatted value}`` of every quoted figure, from ``benchmarks/results``.

    Returns
    -------
    dict of str to str
        Generation throughput (``gen_*``), the ``cpu`` preset's final synthetic test AP,
        iterations, training minutes and seconds per iteration of its training loop on the
        reference machine (``cpu_*``, from :data:`CPU_PRESET_RESULTS`), the same for the preset
        before it (``cpu_v3_*``, ``training_v3/gn_fpn_mask_w3``),
        the same for the ``cpu-long`` preset (``cpu_long_*``, from
        ``training_v3/cpu_long/bench_training.json``), the mean post-processed segm AP of each
        on the three real images at the estimated scale and as is (``cpu_real_est``,
        ``cpu_real_asis``, ``cpu_long_real_est``, ``cpu_long_real_asis``),
        the crop-based ``cpu`` preset before it (``cpu_v2_*``, from
        ``training_v2/bench_training.json``, with the per-preset speed check's seconds per
        iteration of the ``paper`` preset, ``speed_paper_s_per_iter``), the earlier
        time-budgeted ``cpu`` preset's (``cpu_v1_*``, from ``training/bench_training.json``),
        CPU inference seconds per 512 px image of the ``cpu`` model, the two engines' speed and AP at matched
        iterations (``eng_*``, from ``engines_v2/bench_engines.json``), the run time of each
        notebook in the last recorded ``cpu`` book build (``book_s_01`` ... ``book_s_07``,
        ``book_total_s``, ``book_date``, from ``book_build.json``), the domain-randomisation
        comparison's mean and SD over seeds of each training set's segm AP averaged over the
        three real images at the estimated scale and its synthetic test segm AP (``dr_*``, from
        ``domain_randomisation/summary.json``), and the paper's best Table 1 AP.
    """
    sys.path.insert(0, str(ROOT))
    from nanowire_utils.chapters.crossmodality import DR_CHOICE_KEY, mean_over_images
    from nanowire_utils.paper import table1

    gen = _load("generation.json")
    one = next(t for t in gen["throughput"] if t["path"] == "analytic" and t["workers"] == 1)
    train = _load("training/bench_training.json")
    last = train["curve"]["points"][-1]
    v2 = _load("training_v2/bench_training.json")
    v2_final = v2["curve"]["points"][-1]
    v3 = _load(CPU_PRESET_RESULTS)
    final = v3["curve"]["points"][-1]
    before = _load("training_v3/gn_fpn_mask_w3/bench_training.json")
    before_final = before["curve"]["points"][-1]
    long = _load("training_v3/cpu_long/bench_training.json")
    long_final = long["curve"]["points"][-1]
    eng = {r["engine"]: r for r in _load("engines_v2/bench_engines.json")["runs"]}
    book = _load("book_build.json")
    speed = {r["preset"]: r for r in v2["speed"]}
    rows = table1()
    dr = _load("domain_randomisation/summary.json")
    dr_sets = {"paper": "paper", "rich": "rich", "mixed": "mixed", "paper + SEM share": "sem"}
    return {
        "dr_iterations": str(dr["iterations"]),
        "dr_seeds": str(len(dr["seeds"])),
        **{f"dr_real_{k}": f"{dr['sets'][name][DR_CHOICE_KEY]['mean']:.1f}" for name, k in dr_sets.items()},
        **{f"dr_real_sd_{k}": f"{dr['sets'][name][DR_CHOICE_KEY]['sd']:.1f}" for name, k in dr_sets.items()},
        **{f"dr_synth_{k}": f"{dr['sets'][name]['synthetic segm AP']['mean']:.1f}" for name, k in dr_sets.items()},
        "speed_paper_s_per_iter": f"{speed['paper']['s_per_iter']:.0f}",
        **{f"book_s_{name[:2]}": f"{rec['seconds']:.0f}" for name, rec in book["notebooks"].items()},
        "book_total_s": f"{book['total_seconds']:.0f}",
        "book_date": min(rec["executed"] for rec in book["notebooks"].values())[:10],
        "eng_iterations": str(eng["torchvision"]["iterations"]),
        "eng_tv_s_per_iter": f"{eng['torchvision']['s_per_iter']:.2f}",
        "eng_d2_s_per_iter": f"{eng['detectron2']['s_per_iter']:.2f}",
        "eng_tv_segm_ap": f"{eng['torchvision']['segm']['AP']:.1f}",
        "eng_d2_segm_ap": f"{eng['detectron2']['segm']['AP']:.1f}",
        "eng_tv_bbox_ap": f"{eng['torchvision']['bbox']['AP']:.1f}",
        "eng_d2_bbox_ap": f"{eng['detectron2']['bbox']['AP']:.1f}",
        "gen_images_per_cpu_s": f"{one['images_per_cpu_s']:.0f}",
        "gen_images_per_s": f"{one['images_per_s']:.0f}",
        "gen_analytic_over_voxel": f"{gen['analytic_over_voxel_cpu']:.0f}",
        "gen_peak_mib": f"{max(m['peak_rss_mib'] for m in gen['memory']):.0f}",
        "cpu_v1_bbox_ap": f"{last['bbox_AP']:.1f}",
        "cpu_v1_segm_ap": f"{last['segm_AP']:.1f}",
        "cpu_v1_segm_ap50": f"{last['segm_AP50']:.1f}",
        "cpu_v1_minutes": f"{last['minutes']:.0f}",
        "cpu_v1_iterations": str(last["iteration"]),
        "cpu_v2_bbox_ap": f"{v2_final['bbox_AP']:.1f}",
        "cpu_v2_segm_ap": f"{v2_final['segm_AP']:.1f}",
        "cpu_v2_minutes": f"{v2_final['minutes']:.0f}",
        "cpu_v2_iterations": str(v2_final["iteration"]),
        "cpu_v2_inference_s": f"{v2['inference']['s_per_image']:.2f}",
        "cpu_bbox_ap": f"{final['bbox_AP']:.1f}",
        "cpu_segm_ap": f"{final['segm_AP']:.1f}",
        "cpu_segm_ap50": f"{final['segm_AP50']:.1f}",
        "cpu_minutes": f"{final['minutes']:.0f}",
        "cpu_iterations": str(final["iteration"]),
        "cpu_iters_per_s": f"{final['iteration'] / (final['minutes'] * 60):.2f}",
        "cpu_s_per_iter": f"{final['minutes'] * 60 / final['iteration']:.2f}",
        "inference_s": f"{v3['inference']['s_per_image']:.2f}",
        "cpu_v3_bbox_ap": f"{before_final['bbox_AP']:.1f}",
        "cpu_v3_segm_ap": f"{before_final['segm_AP']:.1f}",
        "cpu_v3_minutes": f"{before_final['minutes']:.0f}",
        "cpu_v3_iterations": str(before_final["iteration"]),
        "cpu_v3_inference_s": f"{before['inference']['s_per_image']:.2f}",
        **{f"cpu_v3_real_{k}": f"{mean_over_images(before['real']['real'], how):.1f}" for k, how in REAL_ROWS.items()},
        "cpu_long_bbox_ap": f"{long_final['bbox_AP']:.1f}",
        "cpu_long_segm_ap": f"{long_final['segm_AP']:.1f}",
        "cpu_long_minutes": f"{long_final['minutes']:.0f}",
        "cpu_long_iterations": str(long_final["iteration"]),
        "cpu_long_inference_s": f"{long['inference']['s_per_image']:.2f}",
        **{f"cpu_long_real_{k}": f"{mean_over_images(long['real']['real'], how):.1f}" for k, how in REAL_ROWS.items()},
        **{f"cpu_real_{k}": f"{mean_over_images(v3['real']['real'], how):.1f}" for k, how in REAL_ROWS.items()},
        "paper_bbox_ap": f"{max(r['AP bbox'] for r in rows):.1f}",
        "paper_segm_ap": f"{max(r['AP segm'] for r in rows):.1f}",
    }


def substitutions_block(figs: dict[str, str]) -> str:
    """The ``myst_substitutions`` block of ``_config.yml`` for ``figs``."""
    lines = [BEGIN, "  myst_substitutions:\n"]
    lines += [f'    {k}: "{v}"\n' for k, v in sorted(figs.items())]
    return "".join(lines) + END


def write_config(figs: dict[str, str]) -> bool:
    """Put the substitutions into ``_config.yml`` under ``parse:``; True when it changed."""
    text = CONFIG.read_text()
    block = substitutions_block(figs)
    if BEGIN in text:
        new = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        new = text.replace("parse:\n", "parse:\n" + block, 1)
    if new != text:
        CONFIG.write_text(new)
    return new != text


def problems(figs: dict[str, str]) -> list[str]:
    """What disagrees with the results: stale substitutions, README phrases not found."""
    out = []
    if substitutions_block(figs) not in CONFIG.read_text():
        out.append(
            "_config.yml's myst_substitutions differ from benchmarks/results: run python scripts/figures.py --write"
        )
    readme = (ROOT / "README.md").read_text()
    flat = " ".join(readme.split())
    for phrase in README_PHRASES:
        want = phrase.format(**figs)
        if want not in flat:
            out.append(f"README.md does not say {want!r} (the results file says so)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="update _config.yml from the results files")
    p.add_argument("--check", action="store_true", help="exit 1 when the prose disagrees with the results")
    args = p.parse_args(argv)
    figs = figures()
    if args.write:
        print("updated _config.yml" if write_config(figs) else "_config.yml already up to date")
    if args.check:
        found = problems(figs)
        for line in found:
            print("ERROR:", line, file=sys.stderr)
        return 1 if found else 0
    if not (args.write or args.check):
        print(json.dumps(figs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
