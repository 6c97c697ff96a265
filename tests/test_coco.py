"""The one mask/RLE codec: round trips, every segmentation form, corrupt input, atomic writes."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from nanowire_utils import coco
from nanowire_utils.instances import Instances


def _masks(seed=0, n=3, shape=(37, 53)):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)) > 0.7


def test_encode_decode_round_trip_and_json_ready():
    for m in _masks():
        seg = coco.encode_mask(m)
        assert isinstance(seg["counts"], str) and seg["size"] == [37, 53]
        json.dumps(seg)
        np.testing.assert_array_equal(coco.decode_rle(seg), m)
        assert coco.rle_area(seg) == m.sum()
        ys, xs = np.nonzero(m)
        assert coco.rle_bbox(seg) == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_decode_segmentation_every_form():
    m = np.zeros((20, 30), bool)
    m[5:10, 4:20] = True
    poly = [[4, 5, 20, 5, 20, 10, 4, 10]]
    np.testing.assert_array_equal(coco.decode_segmentation(poly, 20, 30), m)
    uncompressed = {"size": [20, 30], "counts": [int(x) for x in _runs(m)]}
    np.testing.assert_array_equal(coco.decode_segmentation(uncompressed, 20, 30), m)
    np.testing.assert_array_equal(
        coco.decode_segmentation(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))), 20, 30), m
    )


def _runs(m):
    """COCO's uncompressed counts: alternating run lengths of 0s and 1s, column-major."""
    flat = m.flatten(order="F").astype(np.int8)
    bounds = np.r_[0, np.flatnonzero(np.diff(np.r_[0, flat])), flat.size]
    return np.diff(bounds).tolist()


def test_corrupt_rle_is_a_clear_error():
    seg = coco.encode_mask(_masks()[0])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        coco.decode_rle({**seg, "counts": seg["counts"][: len(seg["counts"]) // 2]})
    with pytest.raises(ValueError, match="needs 'size' and 'counts'"):
        coco.decode_rle({"counts": "abc"})


def test_results_round_trip(tmp_path):
    inst = Instances.from_masks(_masks(1), scores=np.array([0.9, 0.5, 0.2]))
    results = coco.instances_to_coco_results(inst, image_id=4)
    assert [r["image_id"] for r in results] == [4, 4, 4]
    path = coco.write_coco_results(tmp_path / "sub" / "r.json", results)
    back = coco.coco_results_to_instances(json.loads(path.read_text()), 4)
    np.testing.assert_array_equal(back.masks, inst.masks)
    np.testing.assert_allclose(back.boxes, inst.boxes)
    np.testing.assert_allclose(back.scores, inst.scores)
    assert len(coco.coco_results_to_instances(results, 5, shape=(37, 53))) == 0
    with pytest.raises(ValueError, match="no shape"):
        coco.coco_results_to_instances(results, 5)


def test_write_json_atomic_leaves_no_temporary(tmp_path):
    coco.write_json_atomic(tmp_path / "a.json", {"x": 1})
    with pytest.raises(TypeError):
        coco.write_json_atomic(tmp_path / "a.json", {"x": object()})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
