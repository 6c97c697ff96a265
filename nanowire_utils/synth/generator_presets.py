"""Generator configuration (geometry + rendering + dataset options) and named presets.

Presets
-------
``paper``
    Faithful to the paper (section 2.2): 512 x 512 x 200 voxel domain, prismatic wires,
    summed-thickness optical density, Gaussian blur sigma 2 px, no noise; every beyond-paper
    feature off.
``rich``
    Domain randomisation beyond the paper: Beer-Lambert transmission with per-wire
    attenuation spread, shot and read noise, smooth background and illumination gradients,
    random contrast, 15 % SEM-like images, and tapered, bent, rough wires and agglomerates.
``smoke``
    Tiny and fast, for tests and CI: 128 x 128 x 60 voxels, a few short wires.

>>> cfg = get_preset("paper", blur_sigma=1.0, **{"network.n_wires": (10, 20)})
>>> GeneratorConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field, fields

from nanowire_utils._checks import check_choice, check_range
from nanowire_utils.synth.geometry import NetworkParams
from nanowire_utils.synth.rendering import RenderParams

IMAGE_FORMATS = ("png", "tiff16")
PATHS = ("analytic", "voxel")


@dataclass
class GeneratorConfig:
    """Everything that decides what a synthetic dataset contains.

    Attributes
    ----------
    network:
        Geometry of the wire networks (:class:`~nanowire_utils.synth.geometry.NetworkParams`).
    render:
        How a projection becomes an image (:class:`~nanowire_utils.synth.rendering.RenderParams`).
    min_visible_area:
        Wires with fewer visible pixels are rendered but not annotated (pixels).
    image_format:
        "png" (8-bit gray) or "tiff16" (16-bit gray TIFF).
    path:
        "analytic" (fast projection of the geometry) or "voxel" (build the 3D label volume
        and sum it; the paper's way, slower, same images up to voxel discretisation).
    extra_fields:
        Store each wire's true length, width, thickness and angle in its COCO annotation
        (extra keys ``wire_*``, ignored by COCO tools).
    name:
        The preset it came from (for provenance only).
    """

    network: NetworkParams = field(default_factory=NetworkParams)
    render: RenderParams = field(default_factory=RenderParams)
    min_visible_area: int = 30
    image_format: str = "png"
    path: str = "analytic"
    extra_fields: bool = True
    name: str = "custom"

    def validate(self) -> GeneratorConfig:
        """Check every field (network, render and dataset options).

        Returns
        -------
        GeneratorConfig
            ``self``, so that calls can be chained.

        Raises
        ------
        ValueError
            Naming the first bad field and its valid range or choices.
        """
        self.network.validate()
        self.render.validate()
        check_range("min_visible_area", self.min_visible_area, 0, None, unit="pixels")
        check_choice("image_format", self.image_format, IMAGE_FORMATS)
        check_choice("path", self.path, PATHS)
        return self

    def to_dict(self) -> dict:
        """The configuration as plain data, for JSON files and provenance.

        Returns
        -------
        dict
            Nested, JSON-ready dict (tuples become lists).
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        """Rebuild a configuration from :meth:`to_dict`'s output (inverse of it).

        Parameters
        ----------
        d : dict
            Fields of this class; ``network`` and ``render`` are dicts of their own
            fields. Missing fields take their defaults; lists become tuples where the
            default is a tuple.

        Returns
        -------
        GeneratorConfig
            The configuration (not validated).

        Raises
        ------
        ValueError
            On an unknown key, at any level.
        """
        d = dict(d)
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown GeneratorConfig field(s) {sorted(unknown)}")
        if "network" in d:
            d["network"] = _dataclass_from_dict(NetworkParams, d["network"])
        if "render" in d:
            d["render"] = RenderParams.from_dict(d["render"])
        return cls(**d)

    def replace(self, **overrides) -> GeneratorConfig:
        """A copy with some fields changed (not validated; call :meth:`validate`).

        Parameters
        ----------
        **overrides
            Keys: a field of this class, ``network.<field>``, ``render.<field>`` (or
            ``network__<field>``), or a bare field name of either that is unambiguous.
            Lists become tuples where the current value is a tuple.

        Returns
        -------
        GeneratorConfig
            The changed copy; ``self`` is unchanged.

        Raises
        ------
        ValueError
            On an unknown key, with the closest valid keys as a hint.
        """
        cfg = dataclasses.replace(self)
        net, ren, top = {}, {}, {}
        net_names = {f.name for f in fields(NetworkParams)}
        ren_names = {f.name for f in fields(RenderParams)}
        top_names = {f.name for f in fields(GeneratorConfig)} - {"network", "render"}
        for key, value in overrides.items():
            group, _, name = key.rpartition(".")
            group = group.replace("__", ".")
            if not group and "__" in name:
                group, name = name.split("__", 1)
            if group == "network" or (not group and name in net_names and name not in top_names | ren_names):
                target, names = net, net_names
            elif group == "render" or (not group and name in ren_names and name not in top_names):
                target, names = ren, ren_names
            elif not group and name in top_names:
                target, names = top, top_names
            else:
                target, names = None, set()
            if target is None or name not in names:
                valid = (
                    sorted(top_names)
                    + [f"network.{n}" for n in sorted(net_names)]
                    + [f"render.{n}" for n in sorted(ren_names)]
                )
                close = difflib.get_close_matches(name, [v.rpartition(".")[2] for v in valid], n=3, cutoff=0.5)
                hint = [v for v in valid if v.rpartition(".")[2] in close]
                raise ValueError(
                    f"unknown generator setting {key!r}"
                    + (f"; did you mean {' or '.join(hint)}?" if hint else "")
                    + " (all keys: GeneratorConfig.to_dict(), or `nanowire-utils generate --show-config`)"
                )
            target[name] = _coerce(
                getattr(self.network if target is net else self.render if target is ren else self, name), value
            )
        if net:
            cfg.network = dataclasses.replace(self.network, **net)
        if ren:
            cfg.render = dataclasses.replace(self.render, **ren)
        if top:
            cfg = dataclasses.replace(cfg, **top)
        return cfg

    def to_json(self) -> str:
        """The configuration as indented JSON text.

        Returns
        -------
        str
            ``json.dumps`` of :meth:`to_dict` (indent 1).
        """
        return json.dumps(self.to_dict(), indent=1)


def _coerce(old, value):
    """Lists from JSON become tuples where the default is a tuple."""
    if isinstance(old, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _dataclass_from_dict(cls, d: dict):
    names = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {sorted(unknown)}")
    default = cls()
    return cls(**{k: _coerce(getattr(default, k), v) for k, v in d.items()})


def _paper() -> GeneratorConfig:
    return GeneratorConfig(name="paper")


def _rich() -> GeneratorConfig:
    cfg = GeneratorConfig(name="rich")
    cfg.network = dataclasses.replace(cfg.network, **RICH_NETWORK)
    cfg.render = RenderParams(
        normalization="max",
        blur_sigma=2.0,
        contrast_range=(0.8, 1.5),
        beer_lambert=True,
        mu=0.02,
        mu_spread=0.25,
        dose=400.0,
        read_noise=0.02,
        background=4.0,
        background_scale=96.0,
        illumination_gradient=0.1,
        sem_fraction=0.15,
    )
    return cfg


def _smoke() -> GeneratorConfig:
    cfg = GeneratorConfig(name="smoke", min_visible_area=10)
    cfg.network = dataclasses.replace(cfg.network, **SMOKE_NETWORK)
    return cfg


# Geometry changes of the presets (field names of NetworkParams).
RICH_NETWORK: dict = {
    "cross_sections": {"rectangular": 0.5, "hexagonal": 0.3, "round": 0.2},
    "taper_prob": 0.3,
    "bend_prob": 0.2,
    "roughness_prob": 0.3,
    "bundle_prob": 0.1,
    "clump_prob": 0.05,
}
SMOKE_NETWORK: dict = {
    "domain": (128, 128, 60),
    "n_wires": (3, 6),
    "length_mean": 60.0,
    "length_std": 25.0,
    "length_range": (20.0, 130.0),
    "width_mean": 8.0,
    "width_std": 3.0,
    "width_range": (4.0, 16.0),
    "thickness_range": (2.0, 12.0),
}

PRESETS = {"paper": _paper, "rich": _rich, "smoke": _smoke}


def get_preset(name: str, **overrides) -> GeneratorConfig:
    """The named generator preset with optional overrides, validated.

    Parameters
    ----------
    name : str
        ``"paper"``, ``"rich"`` or ``"smoke"``.
    **overrides
        Changes, with the keys of :meth:`GeneratorConfig.replace` (``blur_sigma=1``,
        ``**{"network.n_wires": (5, 10)}`` or ``network__n_wires=(5, 10)``).

    Returns
    -------
    GeneratorConfig
        The validated configuration.

    Raises
    ------
    ValueError
        On an unknown preset name, an unknown override key or an invalid value.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]()
    if overrides:
        cfg = cfg.replace(**overrides)
    return cfg.validate()
