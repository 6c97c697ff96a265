"""The voxel reference path: no overlaps, stacking order, projection, save/load, plot."""

import numpy as np
import pytest

from nanowire_utils.synth.geometry import Network, NetworkParams, Wire, generate_network
from nanowire_utils.synth.voxels import load_volume, project_volume, save_volume, voxelize
from nanowire_utils.viz.volume import plot_volume_3d

PARAMS = NetworkParams(
    domain=(128, 128, 70),
    n_wires=(12, 12),
    length_mean=70.0,
    length_std=25.0,
    length_range=(20.0, 140.0),
    width_mean=9.0,
    width_std=3.0,
    width_range=(4.0, 18.0),
    thickness_range=(3.0, 16.0),
    max_tilt=5.0,
    taper_prob=0.3,
    bend_prob=0.3,
    roughness_prob=0.3,
    bundle_prob=0.2,
)


@pytest.fixture(scope="module")
def network():
    return generate_network(PARAMS, np.random.default_rng(2))


@pytest.fixture(scope="module")
def volume(network):
    return voxelize(network)


def test_volume_shape_dtype_labels(network, volume):
    W, B, H = network.domain
    assert volume.shape == (H, B, W) and volume.dtype == np.uint16
    present = set(np.unique(volume)) - {0}
    assert present <= {w.label for w in network.wires}
    assert len(present) >= network.n_wires - 2  # a wire may lie entirely outside


def test_voxels_never_overlap(network, volume):
    """Each wire voxelised alone claims exactly the voxels it holds in the full volume."""
    for w in network.wires:
        alone = voxelize(Network(domain=network.domain, wires=[w])) > 0
        assert np.array_equal(alone, volume == w.label), f"wire {w.label} lost or shares voxels"


def test_later_wires_lie_above_earlier_ones(volume):
    H = volume.shape[0]
    z = np.arange(H)[:, None, None]
    labels = [lab for lab in np.unique(volume) if lab]
    crossings = 0
    for i, a in enumerate(labels):
        in_a = volume == a
        top_a = np.where(in_a, z, -1).max(axis=0)
        for b in labels[i + 1 :]:
            in_b = volume == b
            both = in_a.any(axis=0) & in_b.any(axis=0)
            if both.any():
                crossings += 1
                bottom_b = np.where(in_b, z, H).min(axis=0)
                assert np.all(bottom_b[both] > top_a[both]), f"wire {b} is not above wire {a}"
    assert crossings > 0


def test_project_volume_counts_voxels(volume):
    proj = project_volume(volume)
    assert proj.shape == volume.shape[1:] and proj.height == volume.shape[0]
    assert np.array_equal(proj.total_thickness(), (volume > 0).sum(axis=0))
    areas = sorted(np.count_nonzero(f.thickness) for f in proj.footprints)
    cut = int(np.median(areas)) + 1
    big = project_volume(volume, min_area=cut)
    assert all(np.count_nonzero(f.thickness) >= cut for f in big.footprints)
    assert len(big.footprints) == sum(a >= cut for a in areas) < len(proj.footprints)
    with pytest.raises(ValueError, match="3D"):
        project_volume(volume[0])


def test_single_rectangular_wire_is_a_box():
    w = Wire(label=1, center=(30.0, 20.0, 5.0), angle=0.0, tilt=0.0, length=40.0, width=10.0, thickness=10.0)
    vol = voxelize(Network((60, 40, 20), [w]))
    assert np.count_nonzero(vol) == 40 * 10 * 10
    zs, ys, xs = np.nonzero(vol)
    assert (zs.min(), zs.max(), ys.min(), ys.max(), xs.min(), xs.max()) == (0, 9, 15, 24, 10, 49)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".tiff"])
def test_save_load_round_trip(volume, tmp_path, suffix):
    path = save_volume(volume, tmp_path / f"vol{suffix}")
    back = load_volume(path)
    assert back.dtype == volume.dtype and np.array_equal(back, volume)


def test_save_load_errors(volume, tmp_path):
    with pytest.raises(ValueError, match="npy"):
        save_volume(volume, tmp_path / "vol.png")
    with pytest.raises(FileNotFoundError):
        load_volume(tmp_path / "missing.npy")


def test_default_domain_voxelizes(tmp_path):
    net = generate_network(NetworkParams(), np.random.default_rng(0))
    vol = voxelize(net)
    assert vol.shape == (200, 512, 512)
    assert set(np.unique(vol)) - {0} == {f.label for f in project_volume(vol).footprints}


def test_plot_volume_3d(network, volume):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot_volume_3d(volume, max_size=64)
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) > 100
    plt.close("all")
    ax = plot_volume_3d(network, max_size=32, max_points=500)
    assert len(ax.collections[0].get_offsets()) <= 500
    plt.close("all")
