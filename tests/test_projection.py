"""The analytic projection against the voxel reference path, and the annotation policy."""

import dataclasses
import math

import numpy as np
import pytest

from nanowire_utils.synth.geometry import Network, NetworkParams, Wire, generate_network
from nanowire_utils.synth.projection import project_network, visible_footprints
from nanowire_utils.synth.voxels import project_volume, voxelize

# A scaled-down paper-like network: short wires, but as thick (voxels) as the defaults'.
SMALL = dict(
    domain=(192, 160, 110),
    n_wires=(10, 16),
    length_mean=80.0,
    length_std=35.0,
    length_range=(20.0, 180.0),
    width_mean=12.0,
    width_std=5.0,
    width_range=(4.0, 26.0),
    thickness_ratio=(0.7, 1.2),
    thickness_range=(4.0, 26.0),
)

FEATURES = {
    "plain": dict(max_tilt=0.0),
    "tilted": dict(max_tilt=8.0),
    "rectangular": dict(cross_sections={"rectangular": 1.0}, max_tilt=5.0, taper_prob=0.5),
    "hexagonal": dict(cross_sections={"hexagonal": 1.0}, max_tilt=5.0, bend_prob=0.5, bend_angle_max=120.0),
    "round": dict(cross_sections={"round": 1.0}, max_tilt=5.0, roughness_prob=0.7, roughness_amplitude=0.3),
    "all": dict(max_tilt=5.0, taper_prob=0.4, bend_prob=0.4, roughness_prob=0.4, bundle_prob=0.2, clump_prob=0.2),
}

# Agreement tolerances of the two paths: over the pixels either path covers, the mean
# |difference| of the total-thickness images is < 2 % of the maximum total thickness and
# < 0.6 voxel (path lengths vs voxel counts: below one voxel per wire and pixel, about a
# third of a voxel on average); every wire's mask IoU >= 0.98.
MAD_TOL = 0.02
MAD_ABS_TOL = 0.6
IOU_TOL = 0.98


def _compare(net):
    pa = project_network(net)
    pv = project_volume(voxelize(net))
    ta, tv = pa.total_thickness(), pv.total_thickness()
    covered = (ta > 0) | (tv > 0)
    mad = np.abs(ta - tv)[covered].mean()
    assert mad < MAD_TOL * tv.max(), f"mean abs diff {mad:.3f} vs max {tv.max():.1f}"
    assert mad < MAD_ABS_TOL
    assert [f.label for f in pa.footprints] == [f.label for f in pv.footprints]
    for fa, fv in zip(pa.footprints, pv.footprints):
        ma, mv = fa.full_mask(pa.shape), fv.full_mask(pv.shape)
        iou = np.count_nonzero(ma & mv) / np.count_nonzero(ma | mv)
        assert iou >= IOU_TOL, f"wire {fa.label}: IoU {iou:.4f}"
    return pa, pv


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("feature", list(FEATURES))
def test_analytic_and_voxel_paths_agree(feature, seed):
    p = NetworkParams(**{**SMALL, **FEATURES[feature]})
    net = generate_network(p, np.random.default_rng(np.random.SeedSequence([seed, 11])))
    _compare(net)


@pytest.mark.parametrize("params", [NetworkParams(), NetworkParams.with_all_features(max_tilt=5.0)])
def test_paths_agree_on_the_default_domain(params):
    net = generate_network(params, np.random.default_rng(123))
    pa, pv = _compare(net)
    assert pa.shape == (512, 512) and pa.height == 200


def test_per_pixel_thickness_within_one_voxel():
    p = NetworkParams(**{**SMALL, **FEATURES["all"]})
    net = generate_network(p, np.random.default_rng(9))
    pa, pv = project_network(net), project_volume(voxelize(net))
    for fa, fv in zip(pa.footprints, pv.footprints):
        a = np.zeros(pa.shape, np.float32)
        v = np.zeros(pa.shape, np.float32)
        a[fa.bbox_slices] = fa.thickness
        v[fv.bbox_slices] = fv.thickness
        both = (a > 0) & (v > 0)
        assert np.abs(a - v)[both].max() < 1.0 + 1e-3


@pytest.mark.parametrize("section, area_factor", [("rectangular", 1.0), ("hexagonal", 0.75), ("round", math.pi / 4)])
def test_cross_section_volume(section, area_factor):
    """Summed thickness = length x cross-section area; a flat rectangular wire is uniform."""
    w = Wire(
        label=1,
        center=(100.0, 50.0, 12.0),
        angle=30.0,
        tilt=0.0,
        length=120.0,
        width=20.0,
        thickness=14.0,
        cross_section=section,
    )
    proj = project_network(Network(domain=(200, 100, 40), wires=[w]))
    t = proj.total_thickness()
    assert t.sum() == pytest.approx(120 * 20 * 14 * area_factor, rel=0.03)
    assert t.max() == pytest.approx(14.0, abs=0.2)
    if section == "rectangular":
        assert np.allclose(t[t > 0], 14.0, atol=1e-4)


def test_tilted_wire_is_thicker_per_pixel_and_shorter():
    flat = Wire(label=1, center=(100.0, 50.0, 20.0), angle=0.0, tilt=0.0, length=120.0, width=10.0, thickness=10.0)
    tilted = dataclasses.replace(flat, tilt=20.0, center=(100.0, 50.0, 35.0))
    tf = project_network(Network((200, 100, 80), [flat])).total_thickness()
    tt = project_network(Network((200, 100, 80), [tilted])).total_thickness()
    assert tt[50, 100] == pytest.approx(10.0 / math.cos(math.radians(20)), rel=1e-4)
    assert np.count_nonzero(tt[50]) == pytest.approx(120 * math.cos(math.radians(20)), abs=2)
    assert np.count_nonzero(tf[50]) == 120


def test_cache_matches_fresh_computation_and_follows_edits():
    p = NetworkParams(**{**SMALL, **FEATURES["all"]})
    net = generate_network(p, np.random.default_rng(4))
    cached = project_network(net)
    fresh = project_network(Network(domain=net.domain, wires=list(net.wires)))
    assert np.array_equal(cached.total_thickness(), fresh.total_thickness())
    net.wires[0] = dataclasses.replace(net.wires[0], width=net.wires[0].width + 6)
    edited = project_network(net)
    assert edited.footprints[0].thickness.size > cached.footprints[0].thickness.size


def test_visible_footprints_drops_small_and_cut_wires():
    inside = Wire(label=1, center=(50.0, 50.0, 5.0), angle=0.0, tilt=0.0, length=60.0, width=8.0, thickness=10.0)
    cut = Wire(label=2, center=(-28.0, 20.0, 5.0), angle=0.0, tilt=0.0, length=60.0, width=8.0, thickness=10.0)
    gone = Wire(label=3, center=(-80.0, 20.0, 5.0), angle=0.0, tilt=0.0, length=60.0, width=8.0, thickness=10.0)
    proj = project_network(Network((100, 100, 30), [inside, cut, gone]))
    assert [f.label for f in proj.footprints] == [1, 2]  # wire 3 lies outside the image
    assert np.count_nonzero(proj.footprints[1].thickness) == 2 * 8
    assert [f.label for f in visible_footprints(proj, min_area=30)] == [1]
    assert [f.label for f in visible_footprints(proj, min_area=0)] == [1, 2]
    with pytest.raises(ValueError, match="min_area"):
        visible_footprints(proj, min_area=-1)
