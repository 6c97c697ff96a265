"""Tests of nanowire_utils.maskrcnn.inference with a real (tiny, random-weight) torchvision Mask R-CNN."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nanowire_utils import coco  # noqa: E402
from nanowire_utils.instances import Instances  # noqa: E402
from nanowire_utils.maskrcnn import engine  # noqa: E402
from nanowire_utils.maskrcnn import inference as inf  # noqa: E402
from nanowire_utils.viz import plotting  # noqa: E402


def make_run(run_dir: Path, preset="smoke", seed=0) -> Path:
    """A run folder in the training contract layout holding a random-weight model."""
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.model import build_model

    cfg = TrainConfig.from_preset(preset)
    torch.manual_seed(seed)
    model = build_model(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    ckpt = {
        "model": model.state_dict(),
        "iteration": 0,
        "config": cfg.to_dict(),
        "engine": "torchvision",
        "arch": model.nanowire_arch,
    }
    torch.save(ckpt, run_dir / "checkpoints" / "model_0000000.pth")
    torch.save(ckpt, run_dir / "model_final.pth")
    (run_dir / "last_checkpoint").write_text("model_final.pth")
    cfg.to_json(run_dir / "config.json")
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("run") / "smoke")


@pytest.fixture(scope="module")
def predictor(run_dir):
    # Random weights score low: threshold 0 so that predictions are not empty.
    return engine.load_predictor(run_dir, device="cpu", score_thresh=0.0)


def _image(h=128, w=128, seed=1):
    """A gray uint8 image with a few bright bars on a dark background, like an OD map."""
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w)) * 20).astype(np.uint8)
    img[30:36, 10:110] = 200
    img[60:120, 70:76] = 150
    return img


def test_predictor_reads_engine_and_sizes(predictor, run_dir):
    assert predictor.engine == "torchvision"
    assert predictor.train_size == 128  # the smoke preset's image size
    assert predictor.score_thresh == 0.0
    assert not predictor.model.training


def test_predictor_knows_its_checkpoint_and_iteration(predictor, run_dir, tmp_path):
    assert predictor.source == run_dir / "model_final.pth" and predictor.iteration == 0
    ckpt = torch.load(run_dir / "model_final.pth", weights_only=False)
    torch.save({**ckpt, "iteration": 750}, tmp_path / "model_0000749.pth")
    later = engine.load_predictor(tmp_path / "model_0000749.pth", device="cpu")
    assert later.iteration == 750 and later.source == tmp_path / "model_0000749.pth"


def test_predict_array_kinds_agree(predictor):
    img8 = _image()
    ref = predictor.predict(img8)
    assert isinstance(ref, Instances)
    assert ref.masks.shape[1:] == img8.shape and ref.masks.dtype == bool
    assert len(ref) > 0
    assert np.all(np.diff(ref.scores) <= 0) or len(ref) == 1
    same = {
        "uint16": img8.astype(np.uint16) * 257,  # 257 * 255 = 65535: the same gray values
        "float": img8.astype(np.float32) / 255.0,
        "rgb": np.repeat(img8[..., None], 3, axis=2),
        "rgba": np.dstack([img8, img8, img8, np.full_like(img8, 255)]),
        "channels_first": np.repeat(img8[None], 3, axis=0),
    }
    for name, arr in same.items():
        out = predictor.predict(arr)
        assert out.masks.shape == ref.masks.shape, name
        np.testing.assert_array_equal(out.masks, ref.masks, err_msg=name)
        np.testing.assert_allclose(out.scores, ref.scores, rtol=1e-5, err_msg=name)


def test_to_gray01_matches_training_loader(tmp_path):
    from PIL import Image

    from nanowire_utils.synth.dataset import load_image

    img8 = _image()
    Image.fromarray(img8).save(tmp_path / "a.png")
    np.testing.assert_array_equal(inf.to_gray01(tmp_path / "a.png"), load_image(tmp_path / "a.png"))
    img16 = (np.arange(128 * 128, dtype=np.uint32) * 3 % 65536).astype(np.uint16).reshape(128, 128)
    import tifffile

    tifffile.imwrite(tmp_path / "b.tif", img16)
    np.testing.assert_array_equal(inf.to_gray01(tmp_path / "b.tif"), load_image(tmp_path / "b.tif"))
    g = inf.to_gray01(np.array([[0.0, 2.0], [4.0, 1.0]]))  # out of [0, 1]: min-max
    assert g.dtype == np.float32 and g.min() == 0 and g.max() == 1


def test_predict_files(predictor, tmp_path):
    import tifffile
    from PIL import Image

    img8 = _image()
    ref = predictor.predict(img8)
    Image.fromarray(img8).save(tmp_path / "x.png")
    tifffile.imwrite(tmp_path / "x16.tif", img8.astype(np.uint16) * 257)
    Image.fromarray(np.repeat(img8[..., None], 3, axis=2)).save(tmp_path / "x.jpg", quality=95)
    for name in ("x.png", "x16.tif"):
        out = predictor.predict(tmp_path / name)
        np.testing.assert_array_equal(out.masks, ref.masks, err_msg=name)
    jpg = predictor.predict(str(tmp_path / "x.jpg"))  # lossy: only the shape is certain
    assert jpg.masks.shape[1:] == img8.shape


def test_predict_with_modality(predictor):
    img = _image()
    out = predictor.predict(img, modality="sem")
    assert out.masks.shape[1:] == img.shape
    with pytest.raises(ValueError, match="modality"):
        predictor.predict(img, modality="xray")


def test_tiling_large_image_full_size_masks(predictor):
    big = np.tile(_image(), (3, 2))  # 384 x 256 > 1.5 x 128: tiled automatically
    out = predictor.predict(big)
    assert out.masks.shape[1:] == big.shape
    assert len(out) > 0
    # every kept box lies inside the image and matches its mask
    assert (
        np.all(out.boxes[:, :2] >= 0)
        and np.all(out.boxes[:, 2] <= big.shape[1])
        and np.all(out.boxes[:, 3] <= big.shape[0])
    )
    untiled = predictor.predict(big, tile=0)
    assert untiled.masks.shape[1:] == big.shape


def test_tile_starts_cover_the_image():
    for length, tile, overlap in [(100, 128, 64), (384, 128, 64), (1000, 512, 64), (513, 512, 100)]:
        starts = inf.tile_starts(length, tile, overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s : s + tile] = True
        assert covered.all()
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # overlap at least `overlap`


def _box_instances(boxes, scores, shape):
    masks = np.zeros((len(boxes), *shape), bool)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        m[y0:y1, x0:x1] = True
    return Instances.from_masks(masks, np.array(scores, np.float32))


def test_merge_tile_instances_rule():
    shape = (100, 200)
    A, B = (0, 100, 0, 120), (0, 100, 80, 200)  # two tiles overlapping in columns 80-120
    inst = _box_instances(
        [
            (10, 40, 120, 45),  # a long wire, cut by tile A's right edge ...
            (80, 40, 190, 45),  # ... and by tile B's left edge: one object
            (85, 10, 115, 15),  # a short wire inside the overlap, seen by A ...
            (85, 10, 115, 15),  # ... and by B: one object
            (85, 70, 115, 75),  # a wire only B reports: stays
            (85, 70, 115, 76),  # a near copy from the same tile: the model kept both, so do we
        ],
        [0.6, 0.9, 0.8, 0.7, 0.5, 0.4],
        shape,
    )
    out = inf.merge_tile_instances(inst, groups=[0, 1, 0, 1, 1, 1], windows=[A, B, A, B, B, B])
    assert len(out) == 4
    long = out.masks[np.argmax(out.masks.sum(axis=(1, 2)))]
    assert long[40:45, 10:190].all() and long.sum() == 5 * 180  # the union of both pieces
    np.testing.assert_allclose(sorted(out.scores), [0.4, 0.5, 0.8, 0.9])  # objects keep their best score
    np.testing.assert_array_equal(out.boxes[np.argmax(out.scores)], [10, 40, 190, 45])
    # nothing merges when every piece is from the same tile
    assert len(inf.merge_tile_instances(inst, groups=[0] * 6, windows=[A] * 6)) == 6
    with pytest.raises(ValueError, match="merge_iou"):
        inf.merge_tile_instances(inst, [0] * 6, [A] * 6, merge_iou=0)


def test_predict_tiled_keeps_one_copy_of_each_wire():
    """A fake model that 'sees' the wires inside its tile; tiles cut them; the merge rebuilds them."""
    shape = (256, 256)
    wires = _box_instances([(20, 100, 230, 108), (150, 10, 156, 60), (40, 200, 70, 204)], [0.9, 0.8, 0.7], shape)
    full = np.random.default_rng(0).random(shape).astype(np.float32)
    starts = inf.tile_starts(256, 160, 64)
    origins = {tuple(full[y : y + 2, x : x + 2].ravel()): (y, x) for y in starts for x in starts}
    seen = []

    def fake_predict(tile_img):
        h, w = tile_img.shape
        y0, x0 = origins[tuple(tile_img[:2, :2].ravel())]  # where this tile lies (tiles are unique)
        masks = wires.masks[:, y0 : y0 + h, x0 : x0 + w]
        keep = masks.any(axis=(1, 2))
        seen.append(int(keep.sum()))
        return Instances.from_masks(masks[keep], wires.scores[keep] - 0.01 * len(seen))

    out = inf.predict_tiled(fake_predict, full, tile=160, overlap=64)
    assert sum(seen) > 3  # wires were seen by several tiles
    assert len(out) == 3
    assert out.masks.shape == (3, *shape)
    order = np.argsort(-out.scores)
    np.testing.assert_array_equal(out.masks[order], wires.masks)  # each wire whole again


def test_predict_tiled_keeps_the_best_objects_that_fit_in_memory(caplog):
    """Full-image masks of many junk pieces could fill the memory: past the byte limit the
    merge keeps the highest-scoring objects and says how many it dropped."""
    shape = (200, 200)
    rng = np.random.default_rng(1)
    full = rng.random(shape).astype(np.float32)

    def junk(tile_img):  # one distinct speck per tile, so nothing merges
        h, w = tile_img.shape
        m = np.zeros((1, h, w), bool)
        m[0, h // 2, w // 2] = True
        return Instances.from_masks(m, np.array([tile_img[0, 0]], np.float32))

    everything = inf.predict_tiled(junk, full, tile=64, overlap=16)
    n = len(everything)
    assert n == len(inf.tile_starts(200, 64, 16)) ** 2
    with caplog.at_level("WARNING", logger=inf.__name__):
        kept = inf.predict_tiled(junk, full, tile=64, overlap=16, max_mask_bytes=3 * 200 * 200)
    assert len(kept) == 3
    np.testing.assert_allclose(np.sort(kept.scores), np.sort(everything.scores)[-3:])
    assert f"found {n} objects" in caplog.text and "3 highest-scoring" in caplog.text


def test_coco_results_round_trip(predictor, tmp_path):
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    inst = predictor.predict(_image())
    results = coco.instances_to_coco_results(inst, image_id=7)
    assert len(results) == len(inst)
    for r, m, b in zip(results, inst.masks, inst.boxes_xywh()):
        assert isinstance(r["segmentation"]["counts"], str)
        assert r["image_id"] == 7 and r["category_id"] == 1
        rle = dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())
        np.testing.assert_array_equal(mask_util.decode(rle).astype(bool), m)
        np.testing.assert_allclose(r["bbox"], b, atol=1e-3)
    path = coco.write_coco_results(tmp_path / "out" / "results.json", results)
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(results))
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind
    back = coco.coco_results_to_instances(loaded, 7)
    np.testing.assert_array_equal(back.masks, inst.masks)
    # pycocotools accepts them as detections for a ground truth of that image
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 7, "height": 128, "width": 128}],
        "annotations": [],
        "categories": [{"id": 1, "name": "nanowire"}],
    }
    gt.createIndex()
    dt = gt.loadRes(loaded)
    assert len(dt.getAnnIds()) == len(results)
    with pytest.raises(ValueError, match="list"):
        coco.write_coco_results(tmp_path / "r.json", {"not": "a list"})


def test_overlay_figure_and_png(predictor, tmp_path):
    img = _image()
    inst = _box_instances([(10, 28, 110, 38), (68, 60, 78, 120)], [0.9, 0.8], img.shape)
    arr = plotting.overlay_array(img, inst)
    assert arr.shape == (*img.shape, 3) and arr.dtype == np.uint8
    c0, c1 = arr[33, 50], arr[90, 73]
    assert not np.array_equal(c0, c1)  # each instance its own colour
    assert c0[0] != c0[1] or c0[1] != c0[2]  # tinted, no longer gray
    fig = plotting.overlay(img, inst, path=tmp_path / "o.png")
    assert fig.axes and (tmp_path / "o.png").stat().st_size > 0
    from PIL import Image

    assert Image.open(tmp_path / "o.png").format == "PNG"
    with pytest.raises(ValueError, match="shape"):
        plotting.overlay_array(np.zeros((50, 50)), inst)


def test_predict_folder_writes_outputs(predictor, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(_image(seed=i)).save(folder / f"im{i}.png")
    (folder / "notes.txt").write_text("not an image")
    out = inf.predict_folder(predictor, folder, out_dir=tmp_path / "pred", progress=False)
    assert [p.name for p in out] == ["im0.png", "im1.png"]
    results = json.loads((tmp_path / "pred" / "results.json").read_text())
    assert {r["image_id"] for r in results} <= {1, 2}
    assert len(results) == sum(len(v) for v in out.values())
    images = json.loads((tmp_path / "pred" / "images.json").read_text())
    assert [Path(im["file_name"]).name for im in images] == ["im0.png", "im1.png"]
    assert (tmp_path / "pred" / "im0_overlay.png").is_file()


def test_errors(predictor, run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        engine.load_predictor(tmp_path / "no_such_run")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(FileNotFoundError, match="train"):
        engine.load_predictor(tmp_path / "empty_run")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(ValueError, match="broken.png"):
        predictor.predict(bad)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        predictor.predict(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="empty"):
        predictor.predict(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="tile"):
        predictor.predict(_image(), tile=8)
    with pytest.raises(ValueError, match="engine"):
        engine.load_predictor(run_dir, engine="detectron2")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        engine.load_predictor(corrupt)


def test_model_input_scale_of_the_presets():
    from nanowire_utils.maskrcnn.config import PRESET_NAMES, TrainConfig

    for name in PRESET_NAMES:
        if name == "auto":
            continue
        cfg = TrainConfig.from_preset(name)
        want = min(cfg["INPUT.MIN_SIZE_TEST"], cfg["INPUT.MAX_SIZE_TEST"]) / cfg["DATASET.IMAGE_SIZE"]
        assert engine.model_input_scale(cfg) == pytest.approx(want), name
    half = TrainConfig.from_preset("smoke", **{"INPUT.MIN_SIZE_TEST": 64, "INPUT.MAX_SIZE_TEST": 64})
    assert engine.model_input_scale(half) == 0.5
    assert engine.model_input_scale(half.to_dict()) == 0.5  # a checkpoint's plain dict
    assert engine.model_input_scale({}) == 1.0  # configs without DATASET.IMAGE_SIZE


def test_predictor_resizes_by_the_models_input_scale(tmp_path):
    """A model that saw its synthetic test images at half size (INPUT.MIN/MAX_SIZE_TEST 64 for
    128 px data) sees every image at half size through the predictor, whatever the image's
    size; results come back at the image's own size."""
    import torch.nn.functional as F

    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.model import build_model

    cfg = TrainConfig.from_preset("smoke", **{"INPUT.MIN_SIZE_TEST": 64, "INPUT.MAX_SIZE_TEST": 64})
    torch.manual_seed(3)
    model = build_model(cfg)
    ckpt = {"model": model.state_dict(), "iteration": 0, "config": cfg.to_dict(), "engine": "torchvision"}
    torch.save(ckpt, tmp_path / "model_final.pth")
    pred = engine.load_predictor(tmp_path, device="cpu", score_thresh=0.0)
    assert pred.input_scale == 0.5
    model.eval()

    # a 128 px image: exactly the evaluation path (the model's own transform at 64 px)
    gray = _image(128, 128).astype(np.float32) / 255.0
    out = pred.predict(gray, tile=0)
    with torch.inference_mode():
        ref = model([torch.from_numpy(gray)[None].expand(3, 128, 128)])[0]
    assert len(out) == len(ref["scores"]) > 0
    assert out.masks.shape[1:] == (128, 128)
    np.testing.assert_allclose(out.scores, ref["scores"].numpy(), rtol=1e-5)

    # a 96 x 160 image: the model sees it at half size too (48 x 80), not resized to 64 px
    gray = _image(96, 160).astype(np.float32) / 255.0
    out = pred.predict(gray, tile=0)
    half = F.interpolate(torch.from_numpy(gray)[None, None], size=(48, 80), mode="bilinear", align_corners=False)
    model.transform.sizes[False] = ((48,), 80)
    try:
        with torch.inference_mode():
            ref = model([half[0].expand(3, 48, 80)])[0]
    finally:
        model.transform.sizes[False] = ((64,), 64)
    assert out.masks.shape[1:] == (96, 160)
    assert len(out) == len(ref["scores"]) > 0
    np.testing.assert_allclose(out.scores, ref["scores"].numpy(), rtol=1e-4)
    np.testing.assert_allclose(out.boxes, 2 * ref["boxes"].numpy(), atol=1e-2)
