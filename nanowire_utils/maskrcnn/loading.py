"""Training data: reading a synthetic COCO split, the paper's augmentations, batching.

The folder layout is the one :mod:`nanowire_utils.synth.dataset` writes::

    DIR/images/<split>/<file_name>          8-bit gray PNG (or 16-bit TIFF)
    DIR/annotations/instances_<split>.json  COCO instances, masks as RLE

Sampling is a pure function of the run's seed and the *global sample position*
(iteration x images per iteration + slot): epoch ``e`` visits the images in the order of a
permutation drawn from ``SeedSequence([seed, e])``, and each sample's augmentation draws
from ``SeedSequence([seed, position])``. A resumed run, or one split over several
processes, therefore sees exactly the samples an uninterrupted single-process run sees,
without saving any data-loader state.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.config import TrainConfig

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_GENERATE_HINT = "run `nanowire-utils generate --out DIR` (or nanowire_utils.synth.dataset.write_dataset) first"

#: Instances keeping fewer pixels than this after a crop are dropped (slivers at the crop border).
MIN_CROPPED_AREA = 8


@dataclass
class Record:
    """One image of a split: where it is and its annotations (RLE, still encoded)."""

    image_id: int
    path: Path
    height: int
    width: int
    annotations: list


def annotation_path(data_dir, split: str) -> Path:
    """Where a split's COCO file lies in a dataset folder.

    Parameters
    ----------
    data_dir : str or os.PathLike
        The dataset folder.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    pathlib.Path
        ``data_dir/annotations/instances_<split>.json`` (it may not exist).
    """
    return Path(data_dir) / "annotations" / f"instances_{split}.json"


def load_split(data_dir, split: str = "train", *, require_annotations: bool = False) -> tuple[dict, list[Record]]:
    """The COCO dict and the :class:`Record` list of one split.

    Parameters
    ----------
    data_dir : str or os.PathLike
        The dataset folder (synthetic layout).
    split : str
        ``"train"``, ``"val"`` or ``"test"``.
    require_annotations : bool
        For training: images without instances are skipped with a warning, and a split
        where every image is empty is an error.

    Returns
    -------
    coco : dict
        The split's COCO dict.
    records : list of Record
        One per image (crowd annotations left out).

    Raises
    ------
    FileNotFoundError
        When the folder, the split or one of its images is missing, saying what to do.
    ValueError
        When the split's file is invalid, has no images or (with
        ``require_annotations``) no annotations.
    """
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"dataset folder {data_dir} does not exist; {_GENERATE_HINT}")
    ann = annotation_path(data_dir, split)
    if not ann.exists():
        have = sorted(p.stem.replace("instances_", "") for p in (data_dir / "annotations").glob("instances_*.json"))
        raise FileNotFoundError(
            f"{data_dir} has no '{split}' split ({ann} missing; splits present: {', '.join(have) or 'none'}); {_GENERATE_HINT}"
        )
    try:
        coco = json.loads(ann.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{ann} is not valid JSON ({err}); regenerate the dataset") from None
    for field in ("images", "annotations"):
        if field not in coco:
            raise ValueError(f"{ann} is not a COCO instances file (no '{field}'); regenerate the dataset")
    if not coco["images"]:
        raise ValueError(f"the '{split}' split of {data_dir} has no images; {_GENERATE_HINT} with more images")
    by_image: dict[int, list] = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        if a.get("iscrowd", 0):
            continue
        if a["image_id"] not in by_image:
            raise ValueError(f"{ann}: annotation {a.get('id')} refers to unknown image {a['image_id']}")
        by_image[a["image_id"]].append(a)
    records = []
    for im in coco["images"]:
        p = data_dir / "images" / split / im["file_name"]
        records.append(Record(im["id"], p, im["height"], im["width"], by_image[im["id"]]))
    missing = [r.path for r in records if not r.path.exists()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images of the '{split}' split are missing, e.g. {missing[0]}; {_GENERATE_HINT}"
        )
    if require_annotations:
        empty = [r for r in records if not r.annotations]
        if len(empty) == len(records):
            raise ValueError(
                f"no image of the '{split}' split of {data_dir} has annotations; nothing to learn from. "
                "Check the generator settings (wires may be too small or too few) and regenerate"
            )
        if empty:
            warnings.warn(f"skipping {len(empty)} of {len(records)} '{split}' images without annotations", stacklevel=2)
            log.warning("skipping %d of %d '%s' images without annotations", len(empty), len(records), split)
            records = [r for r in records if r.annotations]
    return coco, records


def read_image(path) -> np.ndarray:
    """Read a dataset image as gray float (the dataset reader's :func:`nanowire_utils.synth.dataset.load_image`).

    Parameters
    ----------
    path : str or os.PathLike
        The image file.

    Returns
    -------
    numpy.ndarray of float32, shape (H, W)
        Values in [0, 1]: 8-bit / 255, 16-bit / 65535, float as is.
    """
    from nanowire_utils.synth.dataset import load_image

    return load_image(path)


def decode_masks(record: Record) -> np.ndarray:
    """Decode the instance masks of a record.

    Parameters
    ----------
    record : Record
        One image of a split.

    Returns
    -------
    numpy.ndarray of bool, shape (N, H, W)
        One mask per annotation.
    """
    from nanowire_utils.coco import decode_segmentation

    if not record.annotations:
        return np.zeros((0, record.height, record.width), bool)
    return np.stack([decode_segmentation(a["segmentation"], record.height, record.width) for a in record.annotations])


def record_instances(record: Record) -> Instances:
    """Reference :class:`Instances` of a record.

    Parameters
    ----------
    record : Record
        One image of a split.

    Returns
    -------
    Instances
        Masks decoded, tight boxes (pixels), scores 1.
    """
    return Instances.from_masks(decode_masks(record))


# --------------------------------------------------------------------------- augmentation
def augment(image: np.ndarray, masks: np.ndarray, cfg: TrainConfig, rng: np.random.Generator):
    """The paper's augmentations (plus the optional crop) on one image and its masks.

    In order: random crop of ``INPUT.CROP.SIZE`` pixels (when ``INPUT.CROP.ENABLED``; no
    resizing, so wire widths in pixels are kept), horizontal and vertical flips with
    ``INPUT.AUG.HFLIP_PROB`` / ``VFLIP_PROB``, brightness (x factor) and contrast (about the
    image mean) with factors drawn uniformly from ``INPUT.AUG.BRIGHTNESS`` / ``CONTRAST``;
    the result is clipped to [0, 1]. Instances left with fewer than :data:`MIN_CROPPED_AREA`
    pixels are dropped.

    Parameters
    ----------
    image : numpy.ndarray of float, shape (H, W)
        Gray image in [0, 1].
    masks : numpy.ndarray of bool, shape (N, H, W)
        Its instance masks.
    cfg : TrainConfig
        Reads the ``INPUT.CROP.*`` and ``INPUT.AUG.*`` keys.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    image : numpy.ndarray of float32, shape (h, w)
        The augmented image (``h, w`` the crop size, else ``H, W``).
    masks : numpy.ndarray of bool, shape (M, h, w)
        The masks transformed alike (M <= N after a crop).
    """
    if cfg["INPUT.CROP.ENABLED"]:
        ch, cw = cfg["INPUT.CROP.SIZE"]
        h, w = image.shape
        ch, cw = min(ch, h), min(cw, w)
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        image = image[y0 : y0 + ch, x0 : x0 + cw]
        masks = masks[:, y0 : y0 + ch, x0 : x0 + cw]
        masks = masks[masks.sum(axis=(1, 2)) >= MIN_CROPPED_AREA]
    if rng.random() < cfg["INPUT.AUG.HFLIP_PROB"]:
        image, masks = image[:, ::-1], masks[:, :, ::-1]
    if rng.random() < cfg["INPUT.AUG.VFLIP_PROB"]:
        image, masks = image[::-1], masks[:, ::-1]
    b = rng.uniform(*cfg["INPUT.AUG.BRIGHTNESS"])
    c = rng.uniform(*cfg["INPUT.AUG.CONTRAST"])
    image = image * b
    image = (image - image.mean()) * c + image.mean()
    image = np.clip(image, 0.0, 1.0)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(masks)


def to_tensor_image(image: np.ndarray):
    """A gray image as the input torchvision expects.

    Parameters
    ----------
    image : numpy.ndarray of float, shape (H, W)
        Gray image in [0, 1].

    Returns
    -------
    torch.Tensor of float32, shape (3, H, W)
        The gray channel repeated three times.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    return t.unsqueeze(0).expand(3, -1, -1).contiguous()


def to_target(masks: np.ndarray):
    """Instance masks as a torchvision training target.

    Parameters
    ----------
    masks : numpy.ndarray of bool, shape (N, H, W)
        The instance masks.

    Returns
    -------
    dict
        ``boxes`` (N, 4) float x0, y0, x1, y1 pixels, ``labels`` (N,) int64 ones,
        ``masks`` (N, H, W) uint8 (torch tensors).
    """
    import torch

    inst = Instances.from_masks(masks)
    return {
        "boxes": torch.from_numpy(inst.boxes).float().reshape(-1, 4),
        "labels": torch.ones(len(inst), dtype=torch.int64),
        "masks": torch.from_numpy(masks.astype(np.uint8)),
    }


class SampleStream:
    """Training samples by global position (see the module docstring); usable as a torch Dataset.

    ``stream[g]`` is ``(image tensor, target dict)`` for global sample position ``g``.

    Parameters
    ----------
    records : list of Record
        The training split.
    cfg : TrainConfig
        Augmentation settings (:func:`augment`).
    seed : int
        Seed of the epoch permutations and of each position's augmentation.
    """

    def __init__(self, records: list[Record], cfg: TrainConfig, seed: int):
        self.records = records
        self.cfg = cfg
        self.seed = int(seed)
        self._perm_cache: dict[int, np.ndarray] = {}

    def index_of(self, position: int) -> int:
        """Which record a global sample position reads.

        Parameters
        ----------
        position : int
            Global sample position (epoch ``position // len(records)``).

        Returns
        -------
        int
            Index into ``records``, from the epoch's seeded permutation.
        """
        n = len(self.records)
        epoch, k = divmod(int(position), n)
        perm = self._perm_cache.get(epoch)
        if perm is None:
            perm = np.random.default_rng(np.random.SeedSequence([self.seed, 1, epoch])).permutation(n)
            self._perm_cache = {epoch: perm}
        return int(perm[k])

    def __len__(self):
        return 2**62

    def __getitem__(self, position: int):
        rec = self.records[self.index_of(position)]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2, int(position)]))
        image, masks = augment(read_image(rec.path), decode_masks(rec), self.cfg, rng)
        return to_tensor_image(image), to_target(masks)


class PositionSampler:
    """Global positions for one process.

    Iteration ``i``, slot ``k`` of ``per_rank`` on rank ``r`` is position
    ``i * per_rank * world + r * per_rank + k``, from ``start_iter`` to ``max_iter``.

    Parameters
    ----------
    start_iter : int
        First iteration (resume point).
    max_iter : int
        Iteration to stop before.
    per_rank : int
        Images per process and iteration.
    rank : int
        This process's rank.
    world : int
        Number of processes.
    """

    def __init__(self, start_iter: int, max_iter: int, per_rank: int, rank: int = 0, world: int = 1):
        self.start_iter, self.max_iter = start_iter, max_iter
        self.per_rank, self.rank, self.world = per_rank, rank, world

    def __iter__(self):
        for i in range(self.start_iter, self.max_iter):
            base = i * self.per_rank * self.world + self.rank * self.per_rank
            yield from range(base, base + self.per_rank)

    def __len__(self):
        return (self.max_iter - self.start_iter) * self.per_rank


def collate(batch):
    """Batch samples as torchvision detection models take them.

    Parameters
    ----------
    batch : list of tuple
        ``(image tensor, target dict)`` samples.

    Returns
    -------
    images : list of torch.Tensor
        The images.
    targets : list of dict
        The targets.
    """
    return [b[0] for b in batch], [b[1] for b in batch]


def make_loader(stream: SampleStream, sampler: PositionSampler, num_workers: int = 0):
    """A DataLoader yielding ``(images, targets)`` per iteration.

    Parameters
    ----------
    stream : SampleStream
        The samples.
    sampler : PositionSampler
        The positions this process reads; its ``per_rank`` is the batch size.
    num_workers : int
        DataLoader worker processes (0: in this process).

    Returns
    -------
    torch.utils.data.DataLoader
        The loader.
    """
    import torch

    return torch.utils.data.DataLoader(
        stream,
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=False,
    )


def make_toy_dataset(
    out_dir, n_train: int = 8, n_val: int = 2, n_test: int = 2, size: int = 96, seed: int = 0, empty_images: int = 0
) -> Path:
    """Write a trivially easy dataset (bright bars on a dark background) in the synthetic layout.

    For tests and quick demonstrations of the training loop without the generator: each
    image holds 2-4 axis-aligned bars, 4-8 px wide, with RLE masks.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Dataset folder (created).
    n_train, n_val, n_test : int
        Images per split (a split with no image gets no COCO file).
    size : int
        Image side (pixels).
    seed : int
        Base seed; image ``i`` uses ``SeedSequence([seed, i])``.
    empty_images : int
        Extra training images without bars.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from PIL import Image
    from pycocotools import mask as mask_util

    out = Path(out_dir)
    image_id = ann_id = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "annotations").mkdir(parents=True, exist_ok=True)
        coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "nanowire"}]}
        n_total = n + (empty_images if split == "train" else 0)
        for k in range(n_total):
            image_id += 1
            rng = np.random.default_rng(np.random.SeedSequence([seed, image_id]))
            img = np.full((size, size), 20, np.uint8)
            masks = []
            if k < n:
                for j in range(int(rng.integers(2, 5))):
                    w = int(rng.integers(4, 9))
                    length = int(rng.integers(size // 3, size * 2 // 3))
                    m = np.zeros((size, size), bool)
                    a = int(rng.integers(2, size - length - 2))
                    b = int(rng.integers(2, size - w - 2))
                    if j % 2:
                        m[a : a + length, b : b + w] = True
                    else:
                        m[b : b + w, a : a + length] = True
                    m &= ~np.any(masks, axis=0) if masks else True
                    if m.sum() < 20:
                        continue
                    masks.append(m)
                    img[m] = 200
            name = f"{image_id:06d}.png"
            Image.fromarray(img).save(out / "images" / split / name)
            coco["images"].append({"id": image_id, "file_name": name, "width": size, "height": size})
            for m in masks:
                ann_id += 1
                rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                coco["annotations"].append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": 1,
                        "segmentation": rle,
                        "area": float(m.sum()),
                        "bbox": [float(x) for x in mask_util.toBbox(rle)],
                        "iscrowd": 0,
                    }
                )
        if n_total:
            (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    (out / "dataset.json").write_text(json.dumps({"generator": "toy bars", "seed": seed, "n": image_id}))
    return out
