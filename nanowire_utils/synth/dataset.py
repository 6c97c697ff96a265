"""Write and read synthetic nanowire datasets in COCO instance-segmentation format.

Folder layout (the contract every stage reads)::

    DIR/dataset.json                          provenance: config, seed, n, splits, version
    DIR/images/<split>/<image_id:06d>.png     8-bit gray (or .tif, 16-bit)
    DIR/annotations/instances_<split>.json    COCO instances, RLE masks (counts as str)
    DIR/annotations/parts/<split>/<id>.json   per-image annotations (used to resume)

Writing (:func:`write_dataset`) is

* deterministic: image ``i`` uses ``np.random.SeedSequence([seed, i])`` and the split JSONs are
  assembled in image-id order, so the same seed and parameters give byte-identical files for
  any number of worker processes;
* parallel over processes with a tqdm progress bar;
* resumable: every image writes its annotations to a part file after its image file; a
  re-run skips images that have both and then assembles the split JSONs;
* crash-safe: every file is written to a temporary name and moved into place with
  :func:`os.replace`, so no half-written PNG or JSON is ever visible under its final name;
* streaming: masks exist only inside the worker making that image, and the split JSONs are
  written annotation by annotation, so memory does not grow with the number of images.

Annotation policy: one full-footprint mask per wire that
:func:`~nanowire_utils.synth.projection.visible_footprints` keeps (masks overlap where wires cross;
wires with too small a visible area are rendered but not annotated). In SEM-like images
(``RenderParams.sem_fraction``) upper wires hide lower ones, so a wire also needs
``min_visible_area`` unoccluded pixels there.

Reading: :func:`load_coco` (validated dict) and :func:`read_split` (lazy sequence of
``(image_path, Instances)``).
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nanowire_utils import __version__
from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.coco import decode_rle, encode_mask, rle_area, rle_bbox
from nanowire_utils.instances import Instances

SPLITS = ("train", "val", "test")
IMAGE_FORMATS = {"png": ".png", "tiff16": ".tif"}
PATHS = ("analytic", "voxel")
FORMAT_VERSION = 1
CATEGORIES = [{"id": 1, "name": "nanowire", "supercategory": "nanowire"}]


# ----------------------------------------------------------------------------- helpers


def split_sizes(n: int, fractions) -> dict[str, int]:
    """Number of images per split (train, val, test) for ``n`` images.

    Largest-remainder rounding, so the sizes always add up to ``n``.

    Parameters
    ----------
    n : int
        Number of images.
    fractions : sequence of float or str
        Three fractions (train, val, test) in [0, 1] summing to 1, or a string
        ``"0.8,0.1,0.1"``.

    Returns
    -------
    dict of str to int
        ``{"train": ..., "val": ..., "test": ...}`` image counts.

    Raises
    ------
    ValueError
        When ``fractions`` are not three fractions summing to 1.
    """
    fractions = _check_splits(fractions)
    raw = [f * n for f in fractions]
    sizes = [int(np.floor(r)) for r in raw]
    order = sorted(range(3), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    return dict(zip(SPLITS, sizes))


def _check_splits(fractions) -> tuple[float, float, float]:
    if isinstance(fractions, str):
        fractions = fractions.split(",")
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"splits must be three numbers (train, val, test), got {fractions!r}") from None
    if len(fr) != 3 or any(not (0 <= f <= 1) for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise ValueError(f"splits must be three fractions in [0, 1] (train, val, test) summing to 1, got {fractions!r}")
    return fr


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and os.replace (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


def _image_bytes(image: np.ndarray, image_format: str) -> bytes:
    from nanowire_utils.synth.rendering import to_uint8, to_uint16

    buf = io.BytesIO()
    if image_format == "png":
        from PIL import Image

        Image.fromarray(to_uint8(image), mode="L").save(buf, format="PNG", compress_level=1)
    else:
        import tifffile

        tifffile.imwrite(buf, to_uint16(image), photometric="minisblack", metadata=None)
    return buf.getvalue()


def _resolve_config(config, image_format, path):
    from nanowire_utils.synth.generator_presets import GeneratorConfig, get_preset

    if isinstance(config, str):
        config = get_preset(config)
    elif isinstance(config, dict):
        config = GeneratorConfig.from_dict(config)
    elif not isinstance(config, GeneratorConfig):
        raise ValueError(f"config must be a preset name, a GeneratorConfig or its dict, got {type(config).__name__}")
    changes = {}
    if image_format is not None:
        changes["image_format"] = image_format
    if path is not None:
        changes["path"] = path
    if changes:
        config = config.replace(**changes)
    return config.validate()


# ----------------------------------------------------------------------------- one image


def make_sample(config, seed: int, image_id: int):
    """Generate one synthetic image with its annotations.

    Deterministic in ``(config, seed, image_id)``.

    Parameters
    ----------
    config : GeneratorConfig
        The (validated) generator configuration.
    seed : int
        Base seed of the dataset.
    image_id : int
        The image's id; the random stream is ``SeedSequence([seed, image_id])``.

    Returns
    -------
    image : numpy.ndarray of float32, shape (H, W)
        The rendered image, values in [0, 1].
    annotations : list of dict
        COCO annotation dicts (RLE segmentation, area in pixels, bbox ``[x, y, w, h]``
        in pixels) without ``id`` (assigned when the split JSON is assembled).
    network : Network
        The wire network the image was rendered from.
    """
    from nanowire_utils.synth.geometry import generate_network
    from nanowire_utils.synth.projection import project_network, visible_footprints
    from nanowire_utils.synth.rendering import render, top_label_map

    rng = np.random.default_rng(np.random.SeedSequence([seed, image_id]))
    network = generate_network(config.network, rng)
    if config.path == "analytic":
        projection = project_network(network)
    else:
        from nanowire_utils.synth.voxels import project_volume, voxelize

        projection = project_volume(voxelize(network))
    image, info = render(projection, config.render, rng, return_info=True)
    shape = projection.shape
    wires = {w.label: w for w in network.wires}
    keep = visible_footprints(projection, min_area=config.min_visible_area)
    if info["sem"]:
        # In an SEM-like image upper wires hide lower ones: a wire needs min_visible_area
        # unoccluded pixels to be annotated (its mask is still the full footprint).
        top = top_label_map(projection)
        keep = [fp for fp in keep if np.count_nonzero(top[fp.bbox_slices] == fp.label) >= config.min_visible_area]
    anns = []
    for fp in keep:
        m = np.zeros(shape, np.uint8, order="F")
        m[fp.bbox_slices] = fp.thickness > 0
        seg = encode_mask(m)
        ann = {
            "image_id": image_id,
            "category_id": 1,
            "segmentation": seg,
            "area": rle_area(seg),
            "bbox": rle_bbox(seg),
            "iscrowd": 0,
        }
        if config.extra_fields:
            ann.update(_wire_fields(wires.get(fp.label), fp.label))
        anns.append(ann)
    return image, anns, network


def _wire_fields(wire, label) -> dict:
    """Per-annotation extra fields (ignored by COCO tools): the wire's true geometry."""
    out = {"wire_label": int(label)}
    if wire is None:
        return out
    for name in ("length", "width", "thickness", "angle", "tilt"):
        v = getattr(wire, name, None)
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[f"wire_{name}"] = round(float(v), 4)
    cs = getattr(wire, "cross_section", None)
    if isinstance(cs, str):
        out["wire_cross_section"] = cs
    return out


# ----------------------------------------------------------------------------- writer


class _Job:
    """Everything a worker needs; built once per process (pool initializer)."""

    def __init__(self, out_dir: Path, config, seed: int, split_of: dict[int, str]):
        self.out_dir, self.config, self.seed, self.split_of = out_dir, config, seed, split_of
        self.ext = IMAGE_FORMATS[config.image_format]

    def image_path(self, image_id: int) -> Path:
        return self.out_dir / "images" / self.split_of[image_id] / f"{image_id:06d}{self.ext}"

    def part_path(self, image_id: int) -> Path:
        return self.out_dir / "annotations" / "parts" / self.split_of[image_id] / f"{image_id:06d}.json"

    def done(self, image_id: int) -> bool:
        return self.part_path(image_id).is_file() and self.image_path(image_id).is_file()

    def run(self, image_id: int) -> int:
        try:
            image, anns, _ = make_sample(self.config, self.seed, image_id)
        except ValueError as err:  # e.g. "domain too thin": say which image and keep the type
            raise ValueError(f"image {image_id}: {err}") from None
        h, w = image.shape
        img_path = self.image_path(image_id)
        _atomic_write(img_path, _image_bytes(image, self.config.image_format))
        record = {"id": image_id, "file_name": img_path.name, "width": int(w), "height": int(h)}
        # The part file is written last: its presence means the image is complete.
        _atomic_write(self.part_path(image_id), _dumps({"image": record, "annotations": anns}).encode())
        return image_id


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job


def _run_one(image_id: int) -> int:
    return _JOB.run(image_id)


def _parameters(config, seed, n, fractions) -> dict:
    return {
        "config": config.to_dict(),
        "seed": int(seed),
        "n": int(n),
        "split_fractions": list(fractions),
        "split_sizes": split_sizes(n, fractions),
    }


def flatten_params(d: dict, prefix: str = "") -> dict:
    """A nested parameter dict as one level with dotted keys (``"network.width_mean": 18.0``).

    Parameters
    ----------
    d : dict
        Nested dict (e.g. :meth:`GeneratorConfig.to_dict`).
    prefix : str
        Prepended to every key (used by the recursion).

    Returns
    -------
    dict
        One level, keys joined with dots.
    """
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _prepare_folder(out_dir: Path, params: dict) -> None:
    meta_path = out_dir / "dataset.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())["parameters"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{meta_path} is corrupt; delete the folder {out_dir} and generate again") from None
        new = json.loads(_dumps(params))
        if old != new:
            a, b = flatten_params(old), flatten_params(new)
            diff = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            raise FileExistsError(
                f"{out_dir} already holds a dataset made with different parameters ({'; '.join(diff[:5])}"
                f"{' ...' if len(diff) > 5 else ''}); choose a new folder or delete the old one"
            )
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and holds no dataset.json; choose a new or empty folder")
    for split in SPLITS:
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "annotations" / "parts" / split).mkdir(parents=True, exist_ok=True)
    # Temporary files of an interrupted run are never complete: remove them.
    for tmp in out_dir.glob("*/**/.*.tmp-*"):
        tmp.unlink(missing_ok=True)
    if not meta_path.is_file():
        meta = {
            "format_version": FORMAT_VERSION,
            "package": "nanowire_utils",
            "version": __version__,
            "parameters": params,
        }
        _atomic_write(meta_path, (json.dumps(meta, indent=1) + "\n").encode())


def _assemble_split(job: _Job, split: str, ids: list[int], params: dict) -> int:
    """Write annotations/instances_<split>.json from the part files, streaming; returns #annotations."""
    out = job.out_dir / "annotations" / f"instances_{split}.json"
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    info = {
        "description": f"synthetic nanowire dataset, split {split}",
        "version": __version__,
        "seed": params["seed"],
        "preset": params["config"].get("name"),
    }
    n_ann = 0
    with open(tmp, "w") as f:
        f.write('{"info":' + _dumps(info) + ',"licenses":[],"images":[')
        for k, image_id in enumerate(ids):
            part = json.loads(job.part_path(image_id).read_text())
            f.write(("," if k else "") + _dumps(part["image"]))
        f.write('],"annotations":[')
        for image_id in ids:
            part = json.loads(job.part_path(image_id).read_text())
            for ann in part["annotations"]:
                n_ann += 1
                f.write(("," if n_ann > 1 else "") + _dumps({"id": n_ann, **ann}))
        f.write('],"categories":' + _dumps(CATEGORIES) + "}\n")
    os.replace(tmp, out)
    return n_ann


def _pool_context():
    """Process start method: forkserver (safe when the caller has threads, e.g. torch), with the
    heavy imports preloaded once in the server so each worker starts in milliseconds."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "nanowire_utils.synth.dataset",
            "nanowire_utils.synth.geometry",
            "nanowire_utils.synth.projection",
            "nanowire_utils.synth.rendering",
            "nanowire_utils.synth.voxels",
            "PIL.PngImagePlugin",
        ]
    )
    return ctx


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def write_dataset(
    out_dir,
    n: int,
    seed: int = 0,
    config="paper",
    splits=(0.8, 0.1, 0.1),
    workers: int | None = None,
    image_format: str | None = None,
    path: str | None = None,
    progress: bool = True,
) -> dict:
    """Generate ``n`` synthetic images with COCO instance annotations into ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Dataset folder (created; see the module docstring for the layout). An existing folder
        made with the same parameters is resumed (finished images are skipped); one made with
        different parameters raises FileExistsError.
    n : int
        Number of images (>= 1); image ids are 1..n, the first ones train, then val, then test.
    seed : int
        Base seed; image ``i`` uses ``SeedSequence([seed, i])``.
    config : str or GeneratorConfig or dict
        Preset name ("paper", "rich", "smoke"), a :class:`~nanowire_utils.synth.generator_presets.GeneratorConfig`
        or its dict.
    splits : sequence of float or str
        Fractions (train, val, test) summing to 1 (or a string "0.8,0.1,0.1").
    workers : int or None
        Worker processes; None = all available cores, 1 = in this process.
    image_format : str or None
        "png" (8-bit) or "tiff16" (16-bit TIFF); None = the config's (default "png").
    path : str or None
        "analytic" (fast projection) or "voxel" (build the 3D label volume and sum it);
        None = the config's (default "analytic").
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``out_dir``, ``n``, ``split_sizes``, ``annotations`` per split, ``generated`` and
        ``skipped`` image counts, ``seconds`` and ``images_per_s`` (of the generated ones).

    Raises
    ------
    ValueError
        On an invalid argument or configuration.
    FileExistsError
        When ``out_dir`` holds a dataset made with different parameters.
    """
    from tqdm.auto import tqdm

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be a whole number of images, got {n!r}")
    check_range("n", n, 1, None, unit="images")
    check_range("seed", seed, 0, 2**63 - 1)
    if workers is not None:
        check_range("workers", workers, 1, 1024)
    if image_format is not None:
        check_choice("image_format", image_format, tuple(IMAGE_FORMATS))
    if path is not None:
        check_choice("path", path, PATHS)
    fractions = _check_splits(splits)
    config = _resolve_config(config, image_format, path)
    out_dir = Path(out_dir)
    params = _parameters(config, seed, n, fractions)
    _prepare_folder(out_dir, params)

    sizes = params["split_sizes"]
    split_of, ids_of, start = {}, {}, 1
    for split in SPLITS:
        ids_of[split] = list(range(start, start + sizes[split]))
        split_of.update({i: split for i in ids_of[split]})
        start += sizes[split]
    job = _Job(out_dir, config, int(seed), split_of)
    todo = [i for i in range(1, n + 1) if not job.done(i)]
    workers = min(workers or _default_workers(), max(len(todo), 1))

    t0 = time.perf_counter()
    with tqdm(total=len(todo), desc="generate", unit="img", disable=not progress) as bar:
        if workers == 1:
            for image_id in todo:
                job.run(image_id)
                bar.update()
        elif todo:
            ctx = _pool_context()
            chunk = max(1, min(8, len(todo) // (workers * 4)))
            with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
                for _ in pool.imap_unordered(_run_one, todo, chunksize=chunk):
                    bar.update()
    seconds = time.perf_counter() - t0
    n_ann = {split: _assemble_split(job, split, ids_of[split], params) for split in SPLITS}
    return {
        "out_dir": str(out_dir),
        "n": int(n),
        "split_sizes": sizes,
        "annotations": n_ann,
        "generated": len(todo),
        "skipped": n - len(todo),
        "workers": workers,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
    }


# ----------------------------------------------------------------------------- reader


def _fail(path, msg):
    raise ValueError(f"{path}: {msg}")


def load_coco(path) -> dict:
    """Load a COCO instances JSON and check it.

    Checks: valid JSON with ``images``, ``annotations`` and ``categories`` lists; unique image
    and annotation ids; every annotation's ``image_id`` and ``category_id`` exist; RLE
    segmentations (``{"size": [h, w], "counts": str}``) match their image's size and decode
    (pycocotools), and their area matches ``area`` (pixels); ``bbox`` has 4 numbers.

    Parameters
    ----------
    path : str or os.PathLike
        The COCO instances JSON file.

    Returns
    -------
    dict
        The parsed COCO dict.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        Naming the file and the first problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO file {path} not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        _fail(path, f"not valid JSON ({err}); the file is truncated or corrupt, regenerate it")
    if not isinstance(data, dict):
        _fail(path, "top level must be a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            _fail(
                path, f"missing or non-list key {key!r} (a COCO instances file needs images, annotations, categories)"
            )
    sizes = {}
    for im in data["images"]:
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name", "width", "height")):
            _fail(path, f"image entry {str(im)[:80]} lacks one of id, file_name, width, height")
        if im["id"] in sizes:
            _fail(path, f"duplicate image id {im['id']}")
        sizes[im["id"]] = (im["height"], im["width"])
    cat_ids = set()
    for c in data["categories"]:
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            _fail(path, f"category entry {str(c)[:80]} lacks id or name")
        cat_ids.add(c["id"])
    ann_ids, rles, areas = set(), [], []
    for a in data["annotations"]:
        if not isinstance(a, dict) or not all(
            k in a for k in ("id", "image_id", "category_id", "segmentation", "bbox", "area")
        ):
            _fail(path, f"annotation {str(a)[:80]} lacks one of id, image_id, category_id, segmentation, bbox, area")
        if a["id"] in ann_ids:
            _fail(path, f"duplicate annotation id {a['id']}")
        ann_ids.add(a["id"])
        if a["image_id"] not in sizes:
            _fail(path, f"annotation {a['id']} refers to image id {a['image_id']}, which is not in images")
        if a["category_id"] not in cat_ids:
            _fail(path, f"annotation {a['id']} has unknown category_id {a['category_id']}")
        seg = a["segmentation"]
        if isinstance(seg, dict):
            if not isinstance(seg.get("counts"), (str, list)) or list(seg.get("size", [])) != list(
                sizes[a["image_id"]]
            ):
                _fail(
                    path,
                    f"annotation {a['id']}: RLE needs counts and size equal to its image's [height, width] {list(sizes[a['image_id']])}",
                )
            if isinstance(seg["counts"], str):
                rles.append((a["id"], seg))
                areas.append(a["area"])
        if not (isinstance(a["bbox"], list) and len(a["bbox"]) == 4):
            _fail(path, f"annotation {a['id']}: bbox must be [x, y, w, h]")
    for (ann_id, seg), area in zip(rles, areas):
        try:
            decoded_area = rle_area(seg)
        except (ValueError, TypeError) as err:
            _fail(path, f"annotation {ann_id}: invalid RLE ({err})")
        if abs(decoded_area - float(area)) > 0.5:
            _fail(path, f"annotation {ann_id}: RLE area {decoded_area} does not match area {area} (corrupt counts?)")
    return data


class SplitReader(Sequence):
    """Lazy sequence of ``(image_path, Instances)`` for one split; masks are decoded on access.

    Parameters
    ----------
    dataset_dir : str or os.PathLike
        The dataset folder written by :func:`write_dataset`.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.

    Raises
    ------
    FileNotFoundError
        When the split's COCO file or a listed image is missing.
    ValueError
        When the split's COCO file is invalid (see :func:`load_coco`).
    """

    def __init__(self, dataset_dir, split: str):
        self.dataset_dir = Path(dataset_dir)
        self.split = split
        self.json_path = self.dataset_dir / "annotations" / f"instances_{split}.json"
        self.coco = load_coco(self.json_path)
        self.images = sorted(self.coco["images"], key=lambda im: im["id"])
        self._anns: dict[int, list] = {im["id"]: [] for im in self.images}
        for a in self.coco["annotations"]:
            self._anns[a["image_id"]].append(a)
        self.image_dir = self.dataset_dir / "images" / split
        for im in self.images:
            if not (self.image_dir / im["file_name"]).is_file():
                raise FileNotFoundError(
                    f"image {self.image_dir / im['file_name']} listed in {self.json_path} is missing"
                )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        im = self.images[index]
        anns = self._anns[im["id"]]
        h, w = im["height"], im["width"]
        if not anns:
            return self.image_dir / im["file_name"], Instances.empty((h, w))
        masks = np.zeros((len(anns), h, w), bool)
        for k, a in enumerate(anns):
            try:
                masks[k] = decode_rle(a["segmentation"])
            except ValueError as err:
                raise ValueError(f"{self.json_path}: annotation {a['id']}: {err}") from None
        boxes = np.array([a["bbox"] for a in anns], np.float32)
        boxes[:, 2:] += boxes[:, :2]
        return self.image_dir / im["file_name"], Instances(masks, boxes, np.ones(len(anns), np.float32))


def read_split(dataset_dir, split: str = "train") -> SplitReader:
    """The images and reference instances of one split of a synthetic dataset.

    Validates the split's COCO file (:func:`load_coco`) and that every listed image exists;
    masks are decoded only when an item is accessed, so memory stays small.

    Parameters
    ----------
    dataset_dir : str or os.PathLike
        The dataset folder written by :func:`write_dataset`.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    SplitReader
        A lazy sequence of ``(image_path, Instances)``; boxes are ``(x0, y0, x1, y1)``
        pixels, scores 1.

    Raises
    ------
    ValueError
        On an unknown split or an invalid COCO file.
    FileNotFoundError
        When the COCO file or a listed image is missing.
    """
    check_choice("split", split, SPLITS)
    return SplitReader(dataset_dir, split)


def load_image(path) -> np.ndarray:
    """Read a dataset image as a gray float image.

    Parameters
    ----------
    path : str or os.PathLike
        A PNG/TIFF (or any Pillow-readable) image; colour images are averaged over their
        colour channels.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
        Values in [0, 1]: 8-bit / 255, 16-bit / 65535, float as is.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        arr = tifffile.imread(path)
    else:
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im)
    if arr.ndim == 3:  # RGB(A) or channels-first: average the colour channels
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] in (3, 4) else arr[0]
    scale = np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 1.0
    return arr.astype(np.float32) / np.float32(scale)
