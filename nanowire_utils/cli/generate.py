"""``nanowire-utils generate`` (synthetic COCO dataset) and ``nanowire-utils samples`` (real images).

Neither command imports torch.
"""

from __future__ import annotations

import argparse
import textwrap


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate a synthetic nanowire dataset (images + COCO masks)",
        description=textwrap.fill(
            "Generate N synthetic nanowire images with one COCO RLE mask per visible wire, split "
            "into train/val/test, under OUT/images/<split>/ and OUT/annotations/instances_<split>.json. "
            "Deterministic for a given seed and settings (any worker count); re-running into the same "
            "folder resumes and skips finished images."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  nanowire-utils generate --n 1000 --out data/synthetic --seed 0 --preset paper\n"
            "  nanowire-utils generate --n 20 --out /tmp/smoke --preset smoke --workers 1\n"
            "  nanowire-utils generate --n 500 --out data/rich --preset rich --set render.sem_fraction=0.3 \\\n"
            "      --set network.n_wires=[5,15]\n"
            "  nanowire-utils generate --n 1 --out x --preset rich --show-config   # list every key"
        ),
    )
    p.add_argument("--n", type=_positive_int, required=True, help="number of images to generate")
    p.add_argument(
        "--out", required=True, help="output dataset folder (new, empty, or an unfinished run of the same settings)"
    )
    p.add_argument(
        "--seed", type=_nonneg_int, default=0, help="base random seed (default 0); image i uses SeedSequence([seed, i])"
    )
    p.add_argument(
        "--preset",
        default="paper",
        help="generator preset: paper (faithful), rich (noise, background, SEM-like, non-prismatic wires), smoke (tiny, for CI); default paper",
    )
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--format",
        dest="image_format",
        choices=("png", "tiff16"),
        default=None,
        help="image files: 8-bit PNG or 16-bit TIFF (default: the preset's, png)",
    )
    p.add_argument(
        "--splits", default="0.8,0.1,0.1", help="train,val,test fractions summing to 1 (default 0.8,0.1,0.1)"
    )
    p.add_argument(
        "--path",
        choices=("analytic", "voxel"),
        default=None,
        help="projection: analytic (fast) or voxel (build the 3D volume, as the paper; default: the preset's, analytic)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="override a preset field, repeatable: render.blur_sigma=1, network.<field>=..., min_visible_area=50 "
        "(values as JSON: numbers, true/false, [a, b]); bare field names work when unambiguous",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--show-config", action="store_true", help="print the resolved configuration as JSON and exit")
    p.set_defaults(func=run_generate)

    s = subparsers.add_parser(
        "samples",
        help="show (and download once) the three real V2O5 sample images",
        description=(
            "Print the local paths of the real sample images (ptychography, STXM, SEM), downloading "
            "them once into the cache (pinned URL, sha256-checked) unless NANOWIRE_UTILS_SAMPLES "
            "points at a folder holding them."
        ),
    )
    s.add_argument("names", nargs="*", default=None, help="ptychography, stxm, sem (default: all)")
    s.set_defaults(func=run_samples)


def run_generate(args) -> int:
    from nanowire_utils.overrides import parse_assignments
    from nanowire_utils.synth.dataset import write_dataset
    from nanowire_utils.synth.generator_presets import get_preset

    config = get_preset(args.preset, **parse_assignments(args.overrides))
    if args.show_config:
        print(config.to_json())
        return 0
    summary = write_dataset(
        args.out,
        args.n,
        seed=args.seed,
        config=config,
        splits=args.splits,
        workers=args.workers,
        image_format=args.image_format,
        path=args.path,
        progress=not args.no_progress,
    )
    sizes = ", ".join(f"{k} {v}" for k, v in summary["split_sizes"].items())
    anns = sum(summary["annotations"].values())
    rate = f", {summary['images_per_s']} images/s" if summary["images_per_s"] else ""
    print(
        f"{summary['out_dir']}: {summary['n']} images ({sizes}), {anns} wire masks; "
        f"generated {summary['generated']}, skipped {summary['skipped']} already done{rate}"
    )
    return 0


def run_samples(args) -> int:
    from nanowire_utils.real.samples import SAMPLES, sample_path

    for name in args.names or list(SAMPLES):
        info = SAMPLES.get(name, {})
        print(f"{name}\t{sample_path(name)}\t{info.get('modality', '')}")
    return 0
