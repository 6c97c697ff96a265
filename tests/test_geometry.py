"""Tests of the random network generator: determinism, deposition, distributions, features, errors."""

import math
import re

import numpy as np
import pytest

from nanowire_utils.synth.geometry import (
    Network,
    NetworkParams,
    Wire,
    generate_network,
    wire_columns,
)
from nanowire_utils.synth.projection import project_network

SMALL = dict(
    domain=(160, 160, 80),
    n_wires=(8, 14),
    length_mean=70.0,
    length_std=30.0,
    length_range=(20.0, 150.0),
    width_mean=8.0,
    width_std=3.0,
    width_range=(4.0, 16.0),
    thickness_range=(2.0, 14.0),
)


def small(**changes):
    return NetworkParams(**{**SMALL, **changes})


def test_defaults_validate_and_features_off():
    p = NetworkParams()
    p.validate()
    assert p.domain == (512, 512, 200)
    assert p.taper_prob == p.bend_prob == p.roughness_prob == p.bundle_prob == p.clump_prob == 0
    net = generate_network(p, np.random.default_rng(3))
    lo, hi = p.n_wires_range
    assert lo <= net.n_wires <= hi
    assert all(w.taper == 0 and w.curvature == 0 and w.roughness_amplitude == 0 and w.group == 0 for w in net.wires)
    assert 0 < net.max_stack_height <= 200


def test_same_seed_same_network_and_labels_in_order():
    p = small(taper_prob=0.5, bend_prob=0.5, roughness_prob=0.5, bundle_prob=0.2, clump_prob=0.2)
    a = generate_network(p, np.random.default_rng(np.random.SeedSequence([7, 1])))
    b = generate_network(p, np.random.default_rng(np.random.SeedSequence([7, 1])))
    c = generate_network(p, np.random.default_rng(np.random.SeedSequence([7, 2])))
    assert a.wires == b.wires
    assert a.wires != c.wires
    assert [w.label for w in a.wires] == list(range(1, a.n_wires + 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deposition_stacks_and_settles(seed):
    """A later wire lies above every earlier one it overlaps, and rests on something."""
    p = small(n_wires=(14, 14), max_tilt=5.0, taper_prob=0.3, bend_prob=0.3, roughness_prob=0.3)
    net = generate_network(p, np.random.default_rng(seed))
    shape = net.image_shape
    height = np.zeros(shape)
    crossings = 0
    for w in net.wires:
        rr, cc, zl, zh = wire_columns(w, shape)
        below = height[rr, cc]
        assert np.all(zl >= below - 1e-9), f"wire {w.label} cuts into an earlier wire"
        crossings += int(np.any(below > 0))
        # Settled: touches an earlier wire or the substrate (no floating wires).
        tilt = math.radians(w.tilt)
        on_substrate = math.isclose(
            w.center[2], w.thickness / (2 * math.cos(tilt)) + w.length / 2 * abs(math.sin(tilt)), abs_tol=1e-6
        )
        touches = len(rr) > 0 and np.min(zl - below) < 1e-3
        assert on_substrate or touches, f"wire {w.label} floats"
        height[rr, cc] = np.maximum(height[rr, cc], zh)
    assert crossings > 0  # the test is only meaningful if some wires cross


def test_distributions_follow_parameters():
    p = NetworkParams(n_wires=(20, 20), max_tilt=3.0)
    wires = [w for i in range(10) for w in generate_network(p, np.random.default_rng(i)).wires]
    lengths = np.array([w.length for w in wires])
    widths = np.array([w.width for w in wires])
    thick = np.array([w.thickness for w in wires])
    assert lengths.min() >= p.length_range[0] and lengths.max() <= p.length_range[1]
    assert widths.min() >= p.width_range[0] and widths.max() <= p.width_range[1]
    # Truncation moves the mean a little; 15 % bounds the sampling noise of 200 draws too.
    assert abs(lengths.mean() / p.length_mean - 1) < 0.15
    assert abs(widths.mean() / p.width_mean - 1) < 0.15
    assert 0.5 < lengths.std() / p.length_std < 1.3
    ratio = thick / widths
    unclipped = (thick > p.thickness_range[0]) & (thick < p.thickness_range[1])
    assert np.all((ratio[unclipped] >= 0.5 - 1e-9) & (ratio[unclipped] <= 1.0 + 1e-9))
    angles = np.array([w.angle for w in wires])
    assert angles.min() >= 0 and angles.max() < 180
    hist, _ = np.histogram(angles, bins=6, range=(0, 180))
    assert hist.min() > 0.4 * len(angles) / 6  # roughly uniform
    tilts = np.array([w.tilt for w in wires])
    assert np.abs(tilts).max() <= 3.0 and tilts.std() > 0.5
    sections = {w.cross_section for w in wires}
    assert sections == {"rectangular", "hexagonal", "round"}


def test_preferred_orientation_concentrates_angles():
    p = small(orientation="preferred", preferred_angle=170.0, angle_spread=5.0, n_wires=(12, 12))
    angles = np.array([w.angle for i in range(8) for w in generate_network(p, np.random.default_rng(i)).wires])
    # Distance to 170 deg on the 180-degree circle (170 wraps to -10).
    d = np.abs((angles - 170.0 + 90.0) % 180.0 - 90.0)
    assert np.mean(d < 15) > 0.95
    assert np.median(d) < 6
    only_round = small(cross_sections={"round": 1.0})
    assert {w.cross_section for w in generate_network(only_round, np.random.default_rng(0)).wires} == {"round"}


def _single(**kw) -> Network:
    base = dict(label=1, center=(100.0, 50.0, 10.0), angle=0.0, tilt=0.0, length=160.0, width=16.0, thickness=12.0)
    base.update(kw)
    w = Wire(**base)
    return Network(domain=(200, 100, 60), wires=[w])


def test_taper_makes_ends_narrower():
    net = _single(taper=0.5)
    t = project_network(net).total_thickness()
    width_at = lambda x: int(np.count_nonzero(t[:, x]))  # noqa: E731 - wire runs along x
    assert width_at(100) == pytest.approx(16, abs=1)
    assert width_at(25) < 0.65 * width_at(100)
    assert width_at(175) < 0.65 * width_at(100)
    assert t[50, 25] < 0.65 * t[50, 100]  # thinner too, bottom still flat
    plain = project_network(_single()).total_thickness()
    assert np.count_nonzero(plain[:, 25]) == np.count_nonzero(plain[:, 100])


def test_bend_curves_the_centreline():
    net = _single(curvature=math.radians(60) / 160.0)  # 60 degrees of turning
    t = project_network(net).total_thickness()
    cols = [x for x in range(30, 171, 10) if t[:, x].any()]
    centres = np.array([np.average(np.arange(100), weights=t[:, x] > 0) for x in cols])
    # A circular arc of 60 deg over 160 voxels has a sagitta of about 20 voxels.
    sag = centres[len(centres) // 2] - (centres[0] + centres[-1]) / 2
    assert abs(sag) > 12
    straight = project_network(_single()).total_thickness()
    sc = np.array([np.average(np.arange(100), weights=straight[:, x] > 0) for x in cols])
    assert np.ptp(sc) < 1e-9


def test_roughness_varies_thickness_along_the_wire():
    rough = project_network(_single(roughness_amplitude=0.25, roughness_corr_length=15.0, roughness_seed=4))
    t = rough.total_thickness()[50, 25:176]
    assert t.std() / t.mean() > 0.1
    assert np.count_nonzero(rough.total_thickness()[:, 100]) == 16  # width unchanged
    smooth = project_network(_single()).total_thickness()[50, 25:176]
    assert smooth.std() < 1e-6


def test_bundles_are_near_parallel_side_by_side_and_clumps_short():
    p = small(bundle_prob=1.0, bundle_size=(3, 3), n_wires=(9, 9), bundle_angle_spread=2.0)
    net = generate_network(p, np.random.default_rng(5))
    groups = {}
    for w in net.wires:
        groups.setdefault(w.group, []).append(w)
    assert len(groups) == 3 and all(len(g) == 3 and k > 0 for k, g in groups.items())
    for g in groups.values():
        a0 = g[0].angle
        assert all(abs((w.angle - a0 + 90) % 180 - 90) < 10 for w in g)
        d = math.hypot(g[1].center[0] - g[0].center[0], g[1].center[1] - g[0].center[1])
        assert d < (g[0].width + g[1].width) / 2 + 3 + 0.2 * g[0].length + 1e-6
    q = small(clump_prob=1.0, clump_size=(4, 4), n_wires=(8, 8), clump_radius=15.0)
    cl = generate_network(q, np.random.default_rng(5))
    assert len({w.group for w in cl.wires}) == 2
    assert np.mean([w.length for w in cl.wires]) < 0.6 * q.length_mean


@pytest.mark.parametrize(
    "changes, name",
    [
        (dict(length_mean=-3.0), "length_mean"),
        (dict(width_range=(0.0, 10.0)), "width_range[0]"),
        (dict(length_range=(20.0, 5000.0)), "length_range[1]"),
        (dict(n_wires=(5, 100000)), "n_wires"),
        (dict(cross_sections={"square": 1.0}), "cross_sections"),
        (dict(orientation="radial"), "orientation"),
        (dict(thickness_range=(2.0, 500.0)), "thickness_range[1]"),
        (dict(domain=(160, 160, 0)), "domain H"),
        (dict(taper_prob=1.5), "taper_prob"),
        (dict(bend_angle_max=270.0), "bend_angle_max"),
        (dict(max_tilt=-1.0), "max_tilt"),
    ],
)
def test_bad_input_names_parameter(changes, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        generate_network(small(**changes), np.random.default_rng(0))


def test_domain_too_thin_for_the_stack():
    p = small(
        domain=(96, 96, 24),
        n_wires=(25, 25),
        length_range=(40.0, 60.0),
        length_mean=50.0,
        width_range=(8.0, 10.0),
        width_mean=9.0,
        thickness_ratio=(1.0, 1.0),
        thickness_range=(2.0, 10.0),
        max_attempts=5,
    )
    with pytest.raises(ValueError, match="domain too thin"):
        generate_network(p, np.random.default_rng(0))


def test_replace_with_all_features_and_json_style_lists():
    p = NetworkParams().replace(
        n_wires=[3, 5], length_range=[30, 200], length_mean=100, cross_sections={"hexagonal": 2}
    )
    net = generate_network(p, np.random.default_rng(1))
    assert 3 <= net.n_wires <= 5 and {w.cross_section for w in net.wires} == {"hexagonal"}
    with pytest.raises(ValueError, match="length_std"):
        NetworkParams().replace(length_std=-1)
    rich = NetworkParams.with_all_features()
    assert min(rich.taper_prob, rich.bend_prob, rich.roughness_prob, rich.bundle_prob, rich.clump_prob) > 0
    wires = [w for i in range(4) for w in generate_network(rich, np.random.default_rng(i)).wires]
    assert any(w.taper > 0 for w in wires) and any(w.curvature != 0 for w in wires)
    assert any(w.roughness_amplitude > 0 for w in wires) and any(w.group > 0 for w in wires)
