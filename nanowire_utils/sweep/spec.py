"""Sweep files: the runs of a parameter study as data, checked and turned into configurations.

A sweep file (YAML; the shipped one is ``table1.yaml``, the paper's Table 1) names runs, each a
set of keys of the configuration vocabulary (:mod:`nanowire_utils.maskrcnn.config`), either
taken from a row of the paper's Table 1 (``paper: N``, through the file's ``columns`` mapping)
or given directly (``set: {KEY: value}``). It also names subsets of runs, a baseline repeated
with several seeds, and scales (a training preset plus factors on epochs and dataset sizes).

:func:`load_sweep` reads and checks a file; :meth:`Sweep.plan` gives, for one scale, every
run's full, validated :class:`~nanowire_utils.maskrcnn.config.TrainConfig`. Any unknown key
or bad value is an error naming the file, the run and the key, before anything trains.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nanowire_utils._checks import check_range

#: The shipped sweep files, by name.
BUILTIN = {"table1": Path(__file__).resolve().parent / "table1.yaml"}
_INDEXED = re.compile(r"^(?P<key>[A-Z0-9_.]+)\[(?P<i>\d+)\]$")
_TOP_KEYS = {"name", "description", "columns", "runs", "baseline", "seeds", "subsets", "scales"}
_RUN_KEYS = {"paper", "set", "note"}
_SCALE_KEYS = {
    "preset",
    "epoch_factor",
    "dataset_factor",
    "min_images",
    "n_test",
    "real_tile",
    "real_images",
    "runs",
    "set",
    "note",
}


def split_key(column_key: str) -> tuple[str, int | None]:
    """``"MODEL.RPN.IOU_THRESHOLDS[1]"`` -> ``("MODEL.RPN.IOU_THRESHOLDS", 1)``; plain keys -> ``(key, None)``."""
    m = _INDEXED.match(column_key.strip())
    if m:
        return m["key"], int(m["i"])
    return column_key.strip(), None


def _check_key(column_key: str, where: str) -> None:
    from nanowire_utils.maskrcnn.config import KEY_INDEX, _suggest

    key, _ = split_key(column_key)
    if key not in KEY_INDEX:
        raise ValueError(f"{where}: unknown configuration key {key!r}{_suggest(key)}")


def apply_key(cfg, column_key: str, value) -> None:
    """Set ``column_key`` (``KEY`` or ``KEY[i]``, an element of a list-valued key) in ``cfg``."""
    key, index = split_key(column_key)
    if index is None:
        cfg.set(key, value)
        return
    current = list(copy.deepcopy(cfg[key]))
    if index >= len(current):
        raise ValueError(f"{column_key}: {key} has {len(current)} elements, no element {index}")
    current[index] = value
    cfg.set(key, current)


def read_key(cfg, column_key: str):
    """The value of ``KEY`` or ``KEY[i]`` in a TrainConfig or flat dict."""
    key, index = split_key(column_key)
    value = cfg[key]
    return value if index is None else value[index]


@dataclass
class RunSpec:
    """One run of a sweep file: its id, the Table 1 row it reproduces (or None) and its keys."""

    id: str
    paper: int | None
    keys: dict  # column key -> value, Table 1's values already mapped
    seed: int | None = None  # None: the sweep's first seed
    note: str = ""


@dataclass
class PlannedRun:
    """One run ready to train at one scale."""

    id: str
    paper: int | None
    seed: int
    keys: dict  # the sweep's keys of this run at this scale (after the scale factors)
    config: dict  # the full validated configuration (TrainConfig.to_dict())
    n_images: int  # DATASET.N_IMAGES (all splits)
    replicate_of: str | None = None  # the baseline's id for its extra seeds

    def train_config(self):
        from nanowire_utils.maskrcnn.config import TrainConfig

        return TrainConfig.from_dict(self.config).validate()


@dataclass
class ScaleSpec:
    name: str
    preset: str
    epoch_factor: float = 1.0
    dataset_factor: float = 1.0
    min_images: int = 10
    n_test: int = 100
    real_tile: int | None = None
    real_images: list | None = None  # None: all of paper.MODALITIES
    runs: list | None = None
    set: dict = field(default_factory=dict)


@dataclass
class Sweep:
    """A checked sweep file. Build it with :func:`load_sweep`."""

    name: str
    path: str
    text: str
    description: str
    columns: dict  # Table 1 column -> configuration key
    runs: dict  # id -> RunSpec
    baseline: str | None
    seeds: list
    subsets: dict
    scales: dict  # name -> ScaleSpec

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def select(self, runs=None) -> list[str]:
        """Run ids of ``runs``: None (all, with the baseline's seed replicates), a subset name,
        a run id, or a list of those. Seed replicates (``run10-seed1``) follow their baseline."""
        all_ids = self.run_ids()
        if runs is None:
            return all_ids
        items = [runs] if isinstance(runs, str) else list(runs)
        chosen = []
        for item in items:
            for part in str(item).split(","):
                part = part.strip()
                if not part:
                    continue
                if part in self.subsets:
                    ids = list(self.subsets[part])
                elif part in all_ids:
                    ids = [part]
                else:
                    raise ValueError(
                        f"sweep {self.name!r}: no run or subset named {part!r}; runs: {', '.join(self.runs)}; "
                        f"subsets: {', '.join(self.subsets) or 'none'}"
                    )
                for i in ids:
                    extra = self.replicates(i) if i == self.baseline else []
                    for j in [i, *extra]:
                        if j not in chosen:
                            chosen.append(j)
        return chosen

    def replicates(self, run_id: str) -> list[str]:
        """Ids of the extra-seed copies of ``run_id`` (only the baseline has them)."""
        if run_id != self.baseline:
            return []
        return [f"{run_id}-seed{s}" for s in self.seeds[1:]]

    def run_ids(self) -> list[str]:
        """Every run id, the baseline's seed replicates right after it."""
        out = []
        for rid in self.runs:
            out += [rid, *self.replicates(rid)]
        return out

    def plan(self, scale: str, runs=None) -> list[PlannedRun]:
        """Every run (or those of ``runs``, see :meth:`select`) as a validated configuration at
        ``scale``. Errors name the run and the key."""
        from nanowire_utils.maskrcnn.config import TrainConfig

        if scale not in self.scales:
            raise ValueError(f"sweep {self.name!r} has no scale {scale!r}; scales: {', '.join(self.scales)}")
        sc = self.scales[scale]
        if runs is None and sc.runs is not None:
            runs = sc.runs
        ids = self.select(runs)
        planned = []
        for rid in ids:
            base_id, seed = rid, self.seeds[0]
            if "-seed" in rid and rid not in self.runs:
                base_id, s = rid.rsplit("-seed", 1)
                seed = int(s)
            spec = self.runs[base_id]
            if spec.seed is not None and base_id == rid:
                seed = spec.seed
            where = f"sweep {self.name!r} ({self.path}), run {rid}"
            keys = dict(spec.keys)
            if "SOLVER.EPOCHS" in keys and keys["SOLVER.EPOCHS"] is not None:
                keys["SOLVER.EPOCHS"] = float(keys["SOLVER.EPOCHS"]) * sc.epoch_factor
            if "DATASET.N_IMAGES" in keys:
                keys["DATASET.N_IMAGES"] = max(sc.min_images, int(round(keys["DATASET.N_IMAGES"] * sc.dataset_factor)))
            try:
                cfg = TrainConfig.from_preset(sc.preset)
                for k, v in sc.set.items():
                    apply_key(cfg, k, v)
                for k, v in keys.items():
                    apply_key(cfg, k, v)
                cfg.set("SEED", int(seed))
                cfg.validate()
            except ValueError as err:
                raise ValueError(f"{where}, scale {scale!r}: {err}") from None
            planned.append(
                PlannedRun(
                    id=rid,
                    paper=spec.paper,
                    seed=int(seed),
                    keys=keys,
                    config=cfg.to_dict(),
                    n_images=int(cfg["DATASET.N_IMAGES"]),
                    replicate_of=base_id if base_id != rid else None,
                )
            )
        return planned

    def table(self) -> list[dict]:
        """One row per run: its id, Table 1 row and keys (the values of the file, before any scale)."""
        rows = []
        for rid in self.run_ids():
            base = rid.rsplit("-seed", 1)[0] if rid not in self.runs else rid
            spec = self.runs[base]
            seed = (
                int(rid.rsplit("-seed", 1)[1])
                if base != rid
                else (spec.seed if spec.seed is not None else self.seeds[0])
            )
            rows.append({"run": rid, "paper run": spec.paper, "SEED": seed, **spec.keys})
        return rows


def _load_text(source) -> tuple[str, str]:
    if isinstance(source, str) and source in BUILTIN:
        path = BUILTIN[source]
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"no sweep file {path}; give a YAML file or one of the shipped sweeps: {', '.join(BUILTIN)}"
            )
    return str(path), Path(path).read_text()


def _as_mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def load_sweep(source="table1") -> Sweep:
    """Read and check a sweep file: ``"table1"`` (shipped) or a path to a YAML file.

    Checks, before anything trains: every configuration key exists (errors name the run and
    the key, with the closest valid key), every ``paper: N`` is a row of Table 1, subsets
    name existing runs, the baseline exists, each scale names a training preset. Values are
    checked per scale by :meth:`Sweep.plan`.
    """
    from nanowire_utils import paper
    from nanowire_utils.maskrcnn.config import PRESET_NAMES

    path, text = _load_text(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"sweep file {path} is not valid YAML: {err}") from None
    data = _as_mapping(data, f"sweep file {path}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"sweep file {path}: unknown entries {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    name = str(data.get("name") or Path(path).stem)
    columns = _as_mapping(data.get("columns"), f"sweep file {path}: columns")
    table1 = {r["No."]: r for r in paper.table1()}
    for col, key in columns.items():
        if col not in paper.TABLE1_COLUMNS:
            raise ValueError(f"sweep file {path}: columns: {col!r} is not a Table 1 column {paper.TABLE1_COLUMNS}")
        _check_key(str(key), f"sweep file {path}, columns[{col!r}]")
    runs = {}
    for rid, entry in _as_mapping(data.get("runs"), f"sweep file {path}: runs").items():
        rid = str(rid)
        where = f"sweep file {path}, run {rid}"
        entry = _as_mapping(entry, where)
        if "-seed" in rid:
            raise ValueError(f"{where}: '-seed' is reserved for the baseline's seed replicates; rename the run")
        bad = set(entry) - _RUN_KEYS
        if bad:
            raise ValueError(f"{where}: unknown entries {sorted(bad)}; a run has {sorted(_RUN_KEYS)}")
        keys = {}
        no = entry.get("paper")
        if no is not None:
            if no not in table1:
                raise ValueError(f"{where}: paper: {no!r} is not a run of Table 1 (1-{len(table1)})")
            if not columns:
                raise ValueError(f"{where}: 'paper: {no}' needs the file's 'columns' mapping")
            for col, key in columns.items():
                keys[str(key)] = table1[no][col]
        extra = _as_mapping(entry.get("set"), f"{where}: set")
        for key, value in extra.items():
            _check_key(str(key), where)
            base = split_key(str(key))[0]
            for k in [k for k in keys if split_key(k)[0] == base and k != str(key)]:
                del keys[k]  # the run's own value replaces Table 1's for the same key
            keys[str(key)] = value
        seed = keys.pop("SEED", None)
        runs[rid] = RunSpec(id=rid, paper=no, keys=keys, seed=seed, note=str(entry.get("note", "")))
    if not runs:
        raise ValueError(f"sweep file {path} has no runs")
    baseline = data.get("baseline")
    if baseline is not None and baseline not in runs:
        raise ValueError(f"sweep file {path}: baseline {baseline!r} is not one of its runs")
    seeds = data.get("seeds") or [0]
    if (
        not isinstance(seeds, list)
        or not all(isinstance(s, int) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ValueError(f"sweep file {path}: seeds must be a list of distinct whole numbers >= 0, got {seeds!r}")
    subsets = {}
    for sname, ids in _as_mapping(data.get("subsets"), f"sweep file {path}: subsets").items():
        if not isinstance(ids, list):
            raise ValueError(f"sweep file {path}, subset {sname}: must be a list of run ids")
        missing = [i for i in ids if i not in runs]
        if missing:
            raise ValueError(f"sweep file {path}, subset {sname}: no runs named {missing}")
        subsets[str(sname)] = [str(i) for i in ids]
    scales = {}
    for sname, entry in _as_mapping(data.get("scales"), f"sweep file {path}: scales").items():
        where = f"sweep file {path}, scale {sname}"
        entry = _as_mapping(entry, where)
        bad = set(entry) - _SCALE_KEYS
        if bad:
            raise ValueError(f"{where}: unknown entries {sorted(bad)}; a scale has {sorted(_SCALE_KEYS)}")
        preset = entry.get("preset", sname)
        if preset not in PRESET_NAMES:
            raise ValueError(f"{where}: preset {preset!r} is not one of {PRESET_NAMES}")
        for key in _as_mapping(entry.get("set"), f"{where}: set"):
            _check_key(str(key), where)
        sc = ScaleSpec(
            name=str(sname),
            preset=preset,
            epoch_factor=float(entry.get("epoch_factor", 1.0)),
            dataset_factor=float(entry.get("dataset_factor", 1.0)),
            min_images=int(entry.get("min_images", 10)),
            n_test=int(entry.get("n_test", 100)),
            real_tile=entry.get("real_tile"),
            real_images=entry.get("real_images"),
            runs=entry.get("runs"),
            set=dict(entry.get("set") or {}),
        )
        check_range(f"{where}: epoch_factor", sc.epoch_factor, 0, None, low_inclusive=False)
        check_range(f"{where}: dataset_factor", sc.dataset_factor, 0, None, low_inclusive=False)
        check_range(f"{where}: min_images", sc.min_images, 3, None)
        check_range(f"{where}: n_test", sc.n_test, 1, None)
        if sc.real_images is not None and not set(sc.real_images) <= set(paper.MODALITIES):
            raise ValueError(f"{where}: real_images must be a list of {paper.MODALITIES}, got {sc.real_images!r}")
        scales[sc.name] = sc
    if not scales:
        scales["auto"] = ScaleSpec(name="auto", preset="auto")
    sweep = Sweep(
        name=name,
        path=path,
        text=text,
        description=str(data.get("description", "")),
        columns={str(k): str(v) for k, v in columns.items()},
        runs=runs,
        baseline=baseline,
        seeds=list(seeds),
        subsets=subsets,
        scales=scales,
    )
    for sc in scales.values():  # subsets of a scale must exist
        if sc.runs is not None:
            try:
                sweep.select(sc.runs)
            except ValueError as err:
                raise ValueError(f"sweep file {path}, scale {sc.name}: {err}") from None
    return sweep


def column_mapping(sweep: Sweep | None = None) -> list[dict]:
    """The Table 1 column -> configuration key mapping of a sweep (default: the shipped one),
    one row per column, with the key's default and documentation."""
    from nanowire_utils.maskrcnn.config import KEY_INDEX

    sweep = sweep or load_sweep("table1")
    rows = []
    for col, ckey in sweep.columns.items():
        key, index = split_key(ckey)
        rows.append(
            {
                "Table 1 column": col,
                "configuration key": ckey,
                "detectron2 default": KEY_INDEX[key].default if index is None else KEY_INDEX[key].default[index],
                "meaning": KEY_INDEX[key].doc,
            }
        )
    return rows


def duplicate_results() -> list[tuple[int, int]]:
    """Pairs of Table 1 runs whose reported AP (bbox and segm) are identical, read from
    :func:`nanowire_utils.paper.table1` (the paper's runs 3 and 9)."""
    rows = __import__("nanowire_utils.paper", fromlist=["table1"]).table1()
    pairs = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if math.isclose(a["AP bbox"], b["AP bbox"]) and math.isclose(a["AP segm"], b["AP segm"]):
                pairs.append((a["No."], b["No."]))
    return pairs


def plan_table(sweep: Sweep, scale: str, runs=None):
    """The planned runs at ``scale`` as a DataFrame: Table 1's epochs, the scaled epochs,
    images (all splits and training), iterations and LR drop after
    :func:`~nanowire_utils.maskrcnn.config.apply_epochs`, and every other key of the run."""
    import pandas as pd

    from nanowire_utils import paper
    from nanowire_utils.maskrcnn.config import apply_epochs
    from nanowire_utils.synth.dataset import split_sizes

    t1 = {r["No."]: r for r in paper.table1()}
    rows = []
    for p in sweep.plan(scale, runs):
        cfg = p.train_config()
        n_train = split_sizes(p.n_images, (0.8, 0.1, 0.1))["train"]
        resolved, _ = apply_epochs(cfg, n_train)
        row = {"run": p.id, "paper run": p.paper, "SEED": p.seed}
        row["Table 1 epochs"] = t1[p.paper]["Epochs"] if p.paper in t1 else None
        row.update({k: v for k, v in p.keys.items()})
        row.update(
            {
                "training images": n_train,
                "SOLVER.IMS_PER_BATCH": cfg["SOLVER.IMS_PER_BATCH"],
                "iterations": resolved["SOLVER.MAX_ITER"],
                "LR drop at": resolved["SOLVER.STEPS"],
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")
