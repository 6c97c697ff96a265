"""benchmarks/bench_domain_randomisation.py: the training sets it compares are built as described
(the full benchmark trains four models and is run by hand; ``--smoke`` checks it end to end)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nanowire_utils.maskrcnn.loading import load_split

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_domain_randomisation.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_domain_randomisation", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mixed_set_holds_both_presets(bench, tmp_path, monkeypatch):
    # small images: the smoke generator preset stands in for both halves' geometry
    monkeypatch.setitem(
        bench.TRAINING_SETS, "tiny mix", [("smoke", 0.5, {}), ("smoke", 0.5, {"render.sem_fraction": 1.0})]
    )
    data = bench.make_training_set("tiny mix", tmp_path, n_images=20, seed=0, workers=1)
    assert data == tmp_path / "merged"
    parts = [tmp_path / "part0_smoke", tmp_path / "part1_smoke"]
    for split in ("train", "val", "test"):
        coco, records = load_split(data, split)
        sizes = [len(load_split(p, split)[1]) for p in parts]
        assert len(records) == sum(sizes)
        assert len({r.image_id for r in records}) == len(records)  # ids renumbered, unique
        names = [r.path.name for r in records]
        assert sum(n.startswith("p0_") for n in names) == sizes[0]
        assert sum(n.startswith("p1_") for n in names) == sizes[1]
        n_ann = sum(len(load_split(p, split)[0]["annotations"]) for p in parts)
        assert len(coco["annotations"]) == n_ann
        assert all(r.path.is_file() for r in records)


def test_single_preset_set_is_its_own_folder_and_unknown_sets_are_refused(bench, tmp_path):
    assert set(bench.TRAINING_SETS) == {"paper", "rich", "mixed", "paper + SEM share"}
    assert bench.TRAINING_SETS["paper + SEM share"][0][2]["render.sem_fraction"] > 0
    with pytest.raises(ValueError, match="unknown training set"):
        bench.run(tmp_path, n_images=3, iterations=1, sets=["nope"])
