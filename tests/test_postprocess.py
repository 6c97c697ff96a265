import numpy as np
import pytest

from nanowire_utils.instances import Instances
from nanowire_utils.real.postprocess import filter_area, filter_score, postprocess, remove_nested

S = (40, 40)


def _box(r0, r1, c0, c1):
    m = np.zeros(S, bool)
    m[r0:r1, c0:c1] = True
    return m


def _inst(*masks, scores=None):
    return Instances.from_masks(np.stack(masks), scores=scores)


def test_nested_instance_removed_crossing_kept():
    big = _box(0, 10, 0, 40)  # 400 px thick wire
    inner = _box(2, 8, 5, 15)  # fully inside: removed
    half_in = _box(5, 15, 20, 30)  # 50 of 100 px inside: kept at 0.8, removed at 0.5
    crossing = _box(0, 40, 35, 38)  # vertical wire crossing the end: 30 of 120 px shared
    inst = _inst(big, inner, half_in, crossing, scores=[0.9, 0.99, 0.8, 0.7])
    out = remove_nested(inst, 0.8)
    assert len(out) == 3
    np.testing.assert_array_equal(out.masks, np.stack([big, half_in, crossing]))
    assert len(remove_nested(inst, 0.5)) == 2
    np.testing.assert_allclose(out.scores, [0.9, 0.8, 0.7])


def test_identical_masks_keep_the_higher_score():
    m = _box(0, 10, 0, 10)
    out = remove_nested(_inst(m, m, scores=[0.3, 0.6]))
    assert len(out) == 1 and out.scores[0] == pytest.approx(0.6)


def test_score_and_area_filters():
    inst = _inst(_box(0, 2, 0, 2), _box(0, 10, 0, 10), _box(20, 40, 0, 40), scores=[0.9, 0.4, 0.6])
    assert list(filter_score(inst, 0.5).scores) == pytest.approx([0.9, 0.6])
    assert len(filter_area(inst, min_area=5)) == 2
    assert len(filter_area(inst, min_area=5, max_area=500)) == 1
    with pytest.raises(ValueError, match="min_score"):
        filter_score(inst, 1.5)
    with pytest.raises(ValueError, match="max_area"):
        filter_area(inst, min_area=10, max_area=5)


def test_postprocess_chain_and_empty():
    big = _box(0, 10, 0, 40)
    inst = _inst(big, _box(2, 8, 5, 15), _box(30, 31, 0, 2), scores=[0.9, 0.8, 0.2])
    out = postprocess(inst, min_score=0.5, min_area=3)
    assert len(out) == 1
    np.testing.assert_array_equal(out.masks[0], big)
    assert len(inst) == 3  # input untouched
    assert len(postprocess(Instances.empty(S), min_score=0.5, min_area=3)) == 0
