import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nanowire_utils.instances import Instances
from nanowire_utils.real.annotations import (
    REFERENCE_NAMES,
    detect_format,
    instances_to_coco,
    load_reference,
    load_reference_annotation,
    parse_sketch,
    polygons_to_mask,
    read_annotations,
    read_coco,
    reference_path,
    sketch_to_instances,
    write_coco,
)
from nanowire_utils.real.evaluation import mask_iou

H, W = 30, 40
SQUARE = [10, 5, 20, 5, 20, 15, 10, 15]  # x, y: 10 x 10 px square


def _coco(anns, width=W, height=H, file_name="img.png"):
    return {
        "images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "nanowire"}],
    }


def _ann(i, seg, image_id=1):
    return {
        "id": i,
        "image_id": image_id,
        "category_id": 1,
        "segmentation": seg,
        "area": 1.0,
        "bbox": [0, 0, 1, 1],
        "iscrowd": 0,
    }


def _masks():
    m = np.zeros((2, H, W), bool)
    m[0, 5:15, 10:20] = True
    m[1, 2:28, 30:34] = True
    m[1, 10:12, 15:35] = True  # overlaps the first: an L shape
    return m


def test_polygon_rasterises_to_expected_pixels():
    m = polygons_to_mask([SQUARE], H, W)
    assert m.sum() == 100 and m[5:15, 10:20].all()


def test_coco_polygon_and_rle_roundtrip(tmp_path):
    inst = Instances.from_masks(_masks())
    for enc in ("rle", "polygon"):
        path = write_coco(tmp_path / f"{enc}.json", {"img.png": inst}, encoding=enc)
        (ann,) = read_coco(path)
        assert (ann.file_name, ann.height, ann.width) == ("img.png", H, W)
        ious = np.diag(mask_iou(ann.instances.masks, inst.masks))
        if enc == "rle":
            assert np.all(ious == 1)
        else:
            assert np.all(ious > 0.9)
        data = json.loads(path.read_text())
        assert [a["id"] for a in data["annotations"]] == [1, 2]
        assert data["annotations"][0]["bbox"] == [10.0, 5.0, 10.0, 10.0]


def test_uncompressed_rle_and_results_list():
    m = _masks()[0]
    flat = m.flatten(order="F").astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    (ann,) = read_coco(_coco([_ann(1, {"size": [H, W], "counts": runs})]))
    np.testing.assert_array_equal(ann.instances.masks[0], m)
    res = instances_to_coco({"x": Instances.from_masks(_masks(), scores=[0.3, 0.9])}, results=True)
    assert [r["score"] for r in res] == pytest.approx([0.3, 0.9])


def test_validation_errors_and_warnings(tmp_path):
    with pytest.raises(ValueError, match="duplicate annotation id 1"):
        read_coco(_coco([_ann(1, [SQUARE]), _ann(1, [SQUARE])]))
    with pytest.raises(ValueError, match="entirely outside"):
        read_coco(_coco([_ann(1, [[100, 100, 120, 100, 120, 120]])]))
    with pytest.warns(UserWarning, match="outside.*clipped"):
        (ann,) = read_coco(_coco([_ann(1, [[30, 20, 50, 20, 50, 40, 30, 40]])]))
    assert ann.instances.masks[0].sum() == 10 * 10
    with pytest.warns(UserWarning, match="degenerate"):
        (ann,) = read_coco(_coco([_ann(1, [[1, 1, 5, 5]]), _ann(2, [[1, 1, 5, 5, 9, 9]]), _ann(3, [SQUARE])]))
    assert len(ann.instances) == 1
    with pytest.raises(ValueError, match="RLE size"):
        read_coco(_coco([_ann(1, {"size": [5, 5], "counts": "abc"})]))
    # image given does not match the annotation
    p = tmp_path / "a.json"
    p.write_text(json.dumps(_coco([_ann(1, [SQUARE])], file_name="img.png")))
    with pytest.raises(ValueError, match="40 x 30.*image given is 41 x 30"):
        read_annotations(p, image=np.zeros((30, 41)))
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "other.png")
    with pytest.raises(ValueError, match="'img.png', not 'other.png'"):
        read_annotations(p, image=tmp_path / "other.png")
    assert len(read_annotations(p, image=tmp_path / "other.png", check_file_name=False).instances) == 1
    q = tmp_path / "unknown.json"
    q.write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="unknown.json.*unknown annotation format"):
        read_annotations(q)


def test_vgg_labelme_and_mask_folder(tmp_path):
    vgg = {
        "img.png123": {
            "filename": "img.png",
            "size": 123,
            "regions": [
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": [10, 20, 20, 10],
                        "all_points_y": [5, 5, 15, 15],
                    },
                    "region_attributes": {},
                },
                {"shape_attributes": {"name": "point", "cx": 3, "cy": 3}, "region_attributes": {}},
            ],
            "file_attributes": {},
        }
    }
    p = tmp_path / "vgg.json"
    p.write_text(json.dumps(vgg))
    assert detect_format(p) == "vgg"
    with pytest.raises(ValueError, match="image size"):
        read_annotations(p)
    with pytest.warns(UserWarning, match="point"):
        ann = read_annotations(p, image_size=(H, W))
    assert len(ann.instances) == 1 and ann.instances.masks[0].sum() == 100

    labelme = {
        "version": "5.0.1",
        "imagePath": "../imgs/img.png",
        "imageHeight": H,
        "imageWidth": W,
        "shapes": [
            {
                "label": "wire",
                "points": [[10, 5], [20, 5], [20, 15], [10, 15]],
                "shape_type": "polygon",
                "group_id": None,
            },
            {"label": "wire", "points": [[30, 2], [34, 28]], "shape_type": "rectangle", "group_id": 7},
            {
                "label": "wire",
                "points": [[15, 10], [35, 10], [35, 12], [15, 12]],
                "shape_type": "polygon",
                "group_id": 7,
            },
        ],
    }
    p = tmp_path / "labelme.json"
    p.write_text(json.dumps(labelme))
    assert detect_format(p) == "labelme"
    ann = read_annotations(p)
    assert ann.file_name == "img.png" and len(ann.instances) == 2
    ious = np.diag(mask_iou(ann.instances.masks, _masks()))
    assert np.all(ious == 1)

    folder = tmp_path / "masks"
    folder.mkdir()
    for i, m in enumerate(_masks()):
        Image.fromarray((m * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    ann = read_annotations(folder)
    np.testing.assert_array_equal(ann.instances.masks, _masks())


def test_sketch_parser():
    polys = parse_sketch("# a wire\nW 10 10 30 10 4  # horizontal\n\nP 0 0 5 0 5 5\n")
    assert len(polys) == 2
    m = polygons_to_mask([polys[0]], 20, 40)
    assert m.sum() == 20 * 4
    with pytest.raises(ValueError, match="line 1"):
        parse_sketch("X 1 2 3")


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_annotations_load(name):
    ann = load_reference_annotation(name)
    sizes = {"ptychography": (531, 449), "stxm": (531, 449), "sem": (953, 1279)}
    assert (ann.height, ann.width) == sizes[name]
    inst = load_reference(name)
    assert len(inst) >= 5
    assert inst.masks.any(axis=(1, 2)).all()


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_matches_its_sketch(name):
    """The shipped JSON is what its hand-written sketch rasterises to (rebuild after edits)."""
    ann = load_reference_annotation(name)
    sketch = reference_path(name).parent / "sketches" / f"{name}.txt"
    inst = sketch_to_instances(sketch.read_text(), ann.height, ann.width)
    np.testing.assert_array_equal(inst.masks, ann.instances.masks)


SAMPLES = Path(__file__).resolve().parents[2] / "shared/data/v2o5_sample_images"


@pytest.mark.skipif(not SAMPLES.exists(), reason="sample images not available")
@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_fits_the_sample_image(name):
    ann = load_reference_annotation(name)
    again = read_annotations(reference_path(name), image=SAMPLES / ann.file_name)
    assert len(again.instances) == len(ann.instances)
