import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from nanowire_utils.coco import decode_rle
from nanowire_utils.instances import Instances
from nanowire_utils.synth.dataset import (
    load_coco,
    load_image,
    make_sample,
    read_split,
    split_sizes,
    write_dataset,
)
from nanowire_utils.synth.generator_presets import PRESETS, GeneratorConfig, get_preset
from nanowire_utils.synth.geometry import generate_network
from nanowire_utils.synth.projection import project_network, visible_footprints

N = 10


def _tree_digest(root: Path) -> dict:
    """sha256 of every file under root (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def smoke_ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "smoke"
    summary = write_dataset(out, N, seed=3, config="smoke", workers=1, progress=False)
    return out, summary


# ----------------------------------------------------------------------------- presets


def test_presets_validate_and_round_trip_through_json():
    for name in PRESETS:
        cfg = get_preset(name)
        assert cfg.name == name
        again = GeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    paper, rich = get_preset("paper"), get_preset("rich")
    assert paper.network.domain == (512, 512, 200) and paper.render.blur_sigma == 2.0
    assert not paper.render.beer_lambert and paper.render.sem_fraction == 0 and paper.network.bend_prob == 0
    assert rich.render.beer_lambert and rich.render.dose and rich.render.sem_fraction > 0 and rich.network.bend_prob > 0


def test_preset_overrides_and_errors():
    cfg = get_preset("smoke", blur_sigma=1.0, min_visible_area=5, **{"network.n_wires": [2, 3]})
    assert cfg.render.blur_sigma == 1.0 and cfg.min_visible_area == 5 and cfg.network.n_wires == (2, 3)
    with pytest.raises(ValueError, match="unknown preset 'papr'.*paper"):
        get_preset("papr")
    with pytest.raises(ValueError, match="did you mean render.blur_sigma"):
        get_preset("paper", blur=1)
    with pytest.raises(ValueError, match="blur_sigma"):
        get_preset("paper", blur_sigma=-1)
    with pytest.raises(ValueError, match="image_format"):
        get_preset("paper", image_format="jpg")


# ----------------------------------------------------------------------------- writer


def test_split_sizes_add_up():
    assert split_sizes(10, (0.8, 0.1, 0.1)) == {"train": 8, "val": 1, "test": 1}
    assert sum(split_sizes(7, "0.5,0.25,0.25").values()) == 7
    with pytest.raises(ValueError, match="summing to 1"):
        split_sizes(10, (0.8, 0.3, 0.1))


def test_layout_and_coco_files(smoke_ds):
    out, summary = smoke_ds
    assert summary["generated"] == N and summary["skipped"] == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["parameters"]["seed"] == 3 and meta["parameters"]["config"]["name"] == "smoke"
    ids = []
    for split, size in summary["split_sizes"].items():
        data = load_coco(out / "annotations" / f"instances_{split}.json")
        assert len(data["images"]) == size == len(list((out / "images" / split).glob("*.png")))
        assert len(data["annotations"]) == summary["annotations"][split]
        assert data["categories"] == [{"id": 1, "name": "nanowire", "supercategory": "nanowire"}]
        for im in data["images"]:
            assert im["file_name"] == f"{im['id']:06d}.png" and (im["width"], im["height"]) == (128, 128)
            ids.append(im["id"])
        for a in data["annotations"]:
            assert isinstance(a["segmentation"]["counts"], str) and a["iscrowd"] == 0 and a["area"] > 0
            assert a["area"] >= get_preset("smoke").min_visible_area
            assert "wire_length" in a and "wire_width" in a and "wire_angle" in a
        # pycocotools reads it as it is
        coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == size
    assert sorted(ids) == list(range(1, N + 1))


def test_masks_written_equal_masks_read_back(smoke_ds):
    out, _ = smoke_ds
    cfg = get_preset("smoke")
    reader = read_split(out, "train")
    assert len(reader) == 8
    for k in (0, 5):
        path, inst = reader[k]
        image_id = int(path.stem)
        image, anns, network = make_sample(cfg, 3, image_id)
        fps = visible_footprints(project_network(network), min_area=cfg.min_visible_area)
        expected = np.stack([fp.full_mask((128, 128)) for fp in fps]) if fps else np.zeros((0, 128, 128), bool)
        np.testing.assert_array_equal(inst.masks, expected)
        np.testing.assert_array_equal(inst.boxes, Instances.from_masks(expected).boxes)
        # the stored 8-bit image is the rendered one
        np.testing.assert_allclose(load_image(path), np.round(image * 255) / 255, atol=1e-6)
        assert (inst.scores == 1).all()


def test_same_seed_gives_byte_identical_files_for_any_worker_count(smoke_ds, tmp_path):
    out1, _ = smoke_ds
    out2 = tmp_path / "two_workers"
    summary = write_dataset(out2, N, seed=3, config="smoke", workers=2, progress=False)
    assert summary["workers"] == 2
    assert _tree_digest(out1) == _tree_digest(out2)
    out3 = tmp_path / "other_seed"
    write_dataset(out3, 3, seed=4, config="smoke", splits=(1, 0, 0), workers=1, progress=False)
    a = (out1 / "images/train/000001.png").read_bytes()
    assert a != (out3 / "images/train/000001.png").read_bytes()


def test_resume_skips_finished_images_and_restores_deleted_ones(smoke_ds, tmp_path):
    import shutil

    ref, _ = smoke_ds
    out = tmp_path / "resumed"
    shutil.copytree(ref, out)
    (out / "images/train/000002.png").unlink()
    (out / "annotations/parts/val/000009.json").unlink()
    (out / "annotations/instances_test.json").unlink()
    (out / "images/train/.000003.png.tmp-123").write_bytes(b"half")  # left by a crash
    summary = write_dataset(out, N, seed=3, config="smoke", workers=1, progress=False)
    assert summary["generated"] == 2 and summary["skipped"] == N - 2
    assert _tree_digest(out) == _tree_digest(ref)


def test_refuses_to_mix_different_parameters(smoke_ds, tmp_path):
    out, _ = smoke_ds
    with pytest.raises(FileExistsError, match="seed: 3 -> 4"):
        write_dataset(out, N, seed=4, config="smoke", workers=1, progress=False)
    with pytest.raises(FileExistsError, match="blur_sigma"):
        write_dataset(out, N, seed=3, config=get_preset("smoke", blur_sigma=1), workers=1, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_dataset(other, 2, config="smoke", workers=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0), "n must be"),
        (dict(n=2.5), "whole number"),
        (dict(n=2, splits=(0.5, 0.5)), "splits"),
        (dict(n=2, image_format="jpg"), "image_format"),
        (dict(n=2, path="raytrace"), "path"),
        (dict(n=2, config="huge"), "unknown preset"),
        (dict(n=2, workers=0), "workers"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_dataset(tmp_path / "x", progress=False, **kwargs)


def test_tiff16_and_voxel_path(tmp_path):
    out = tmp_path / "tif"
    write_dataset(
        out, 2, seed=1, config="smoke", splits=(1, 0, 0), image_format="tiff16", path="voxel", workers=1, progress=False
    )
    path, inst = read_split(out, "train")[0]
    assert path.suffix == ".tif"
    import tifffile

    assert tifffile.imread(path).dtype == np.uint16
    img = load_image(path)
    assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    # the voxel path annotates the same wires as the analytic one, up to discretisation
    cfg = get_preset("smoke")
    analytic = make_sample(cfg, 1, 1)[1]
    assert abs(len(analytic) - len(inst)) <= 1


# ----------------------------------------------------------------------------- reader errors


def _copy_json(smoke_ds, tmp_path):
    out, _ = smoke_ds
    src = out / "annotations" / "instances_train.json"
    return json.loads(src.read_text()), tmp_path / "instances_train.json"


def test_load_coco_rejects_truncated_json(smoke_ds, tmp_path):
    out, _ = smoke_ds
    text = (out / "annotations" / "instances_train.json").read_text()
    bad = tmp_path / "cut.json"
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON.*truncated"):
        load_coco(bad)
    with pytest.raises(FileNotFoundError):
        load_coco(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda d: d.pop("annotations"), "annotations"),
        (lambda d: d["annotations"][0].update(image_id=999), "image id 999"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id"),
        (lambda d: d["annotations"][0]["segmentation"].update(counts="!!!"), "RLE"),
        (lambda d: d["annotations"][0]["segmentation"].update(size=[5, 5]), "size"),
        (lambda d: d["annotations"][0].update(area=1), "area"),
    ],
)
def test_load_coco_rejects_corrupt_content(smoke_ds, tmp_path, corrupt, match):
    data, path = _copy_json(smoke_ds, tmp_path)
    corrupt(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match):
        load_coco(path)


def test_truncated_rle_is_caught_when_decoding(smoke_ds):
    data, _ = _copy_json(smoke_ds, Path("."))
    seg = dict(data["annotations"][0]["segmentation"])
    assert decode_rle(seg).sum() == data["annotations"][0]["area"]
    seg["counts"] = seg["counts"][:-2]
    with pytest.raises(ValueError, match="RLE"):
        decode_rle(seg)


def test_read_split_reports_missing_image(smoke_ds, tmp_path):
    import shutil

    out, _ = smoke_ds
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "images/val/000009.png").unlink()
    with pytest.raises(FileNotFoundError, match="000009.png"):
        read_split(copy, "val")
    with pytest.raises(ValueError, match="split"):
        read_split(copy, "training")


def test_make_sample_is_deterministic():
    cfg = get_preset("smoke")
    a_img, a_anns, _ = make_sample(cfg, 0, 5)
    b_img, b_anns, _ = make_sample(cfg, 0, 5)
    np.testing.assert_array_equal(a_img, b_img)
    assert a_anns == b_anns
    c_img = make_sample(cfg, 0, 6)[0]
    assert not np.array_equal(a_img, c_img)
    assert len(generate_network(cfg.network, np.random.default_rng(0)).wires) >= 3


def test_sem_images_annotate_only_wires_that_are_not_hidden():
    from nanowire_utils.synth.rendering import top_label_map

    od = get_preset("smoke", min_visible_area=80, **{"network.n_wires": 15})
    sem = od.replace(sem_fraction=1.0)
    fewer = 0
    for image_id in range(1, 6):
        _, od_anns, network = make_sample(od, 0, image_id)
        _, sem_anns, _ = make_sample(sem, 0, image_id)
        top = top_label_map(project_network(network))
        labels = {a["wire_label"] for a in sem_anns}
        assert labels <= {a["wire_label"] for a in od_anns}
        for a in sem_anns:
            assert np.count_nonzero(top == a["wire_label"]) >= sem.min_visible_area
        fewer += len(od_anns) - len(sem_anns)
    assert fewer > 0  # with 15 wires in 128 px some are mostly hidden


def test_generator_failure_names_the_image(tmp_path):
    cfg = get_preset(
        "smoke", **{"network.domain": [128, 128, 14], "network.n_wires": 39, "network.thickness_range": [6, 12]}
    )
    with pytest.raises(ValueError, match="image 1: domain too thin"):
        write_dataset(tmp_path / "thin", 2, config=cfg, workers=1, progress=False)


def test_ground_truth_scores_100_ap_against_itself(smoke_ds):
    from nanowire_utils.real.evaluation import coco_metrics

    out, _ = smoke_ds
    gt = load_coco(out / "annotations" / "instances_train.json")
    results = [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "score": 1.0,
            "bbox": a["bbox"],
            "segmentation": a["segmentation"],
        }
        for a in gt["annotations"]
    ]
    metrics = coco_metrics(gt, results)
    assert metrics["segm"]["AP"] == pytest.approx(100.0) and metrics["bbox"]["AP"] == pytest.approx(100.0)
