"""benchmarks/bench_domain_randomisation.py: the training sets it compares are built as described
(the full benchmark trains four models and is run by hand; ``--smoke`` checks it end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanowire_utils.maskrcnn.loading import load_split

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_domain_randomisation.py"


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(SCRIPT)


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


@pytest.fixture(scope="module")
def two_seeds(bench, tmp_path_factory):
    """The script run end to end at its smoke size for two training seeds (real training and scoring)."""
    folders = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"dr_seed{seed}")
        bench.run(
            out, n_images=8, iterations=2, sets=["paper"], seed=seed, max_test_images=2, workers=1, score_thresh=0.5
        )
        folders.append(out)
    return folders


def test_seeds_share_the_common_test_set_and_summary_is_mean_and_sd(bench, two_seeds, tmp_path):
    import json

    import numpy as np

    reports = [json.loads((f / "domain_randomisation.json").read_text()) for f in two_seeds]
    # the common test set does not follow the training seed, and all of its images are test images
    tests = [
        json.loads((f / "data" / "common_test" / "annotations" / "instances_test.json").read_text()) for f in two_seeds
    ]
    assert [im["file_name"] for im in tests[0]["images"]] == [im["file_name"] for im in tests[1]["images"]]
    assert len(tests[0]["images"]) == 10 and tests[0]["annotations"] == tests[1]["annotations"]

    summary = bench.summarise(two_seeds, tmp_path)
    assert summary["seeds"] == [0, 1] and summary["iterations"] == 2
    stats = summary["sets"]["paper"]
    segm = [r["results"]["paper"]["synthetic_test"]["segm_AP"] for r in reports]
    assert stats["synthetic segm AP"]["values"] == segm
    assert stats["synthetic segm AP"]["mean"] == pytest.approx(np.mean(segm))
    assert stats["synthetic segm AP"]["sd"] == pytest.approx(np.std(segm, ddof=1))
    key = "STXM | estimated scale | accuracy post"
    acc = [r["results"]["paper"]["real"]["STXM | estimated scale"]["accuracy post"] for r in reports]
    assert stats[key]["values"] == acc
    three = [
        np.mean(
            [
                r["results"]["paper"]["real"][f"{im} | as is"]["segm AP post"]
                for im in ("X-ray ptychography", "STXM", "SEM")
            ]
        )
        for r in reports
    ]
    assert stats["mean of 3 images | as is | segm AP post"]["values"] == pytest.approx(three)
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("| training set | seeds |") and "| paper | 2 |" in md


def test_summary_refuses_runs_of_different_lengths(bench, two_seeds, tmp_path):
    import json

    other = tmp_path / "longer"
    other.mkdir()
    report = json.loads((two_seeds[0] / "domain_randomisation.json").read_text())
    report["iterations"] = 3
    (other / "domain_randomisation.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="different"):
        bench.summarise([two_seeds[0], other])


def test_chapter_table_and_figure_read_the_summary(bench, two_seeds, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from nanowire_utils.chapters import crossmodality as cm
    from nanowire_utils.viz import crossmodality as cmviz

    bench.summarise(two_seeds, tmp_path)
    summary = cm.load_domain_randomisation(tmp_path / "summary.json")
    table = cm.domain_randomisation_table(tmp_path / "summary.json")
    stat = summary["sets"]["paper"]["SEM | as is | segm AP post"]
    assert table.loc["paper", "seeds"] == 2
    assert table.loc["paper", "SEM, as is"] == f"{stat['mean']:.1f} ± {stat['sd']:.1f}"
    assert list(table.columns[-8:]) == [f"{im}, {s}" for im, s in cm.DR_ROWS]
    fig = cmviz.plot_domain_randomisation(summary)
    assert len(fig.axes) == 5
    with pytest.raises(FileNotFoundError, match="bench_domain_randomisation.py"):
        cm.load_domain_randomisation(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a domain-randomisation summary"):
        cm.load_domain_randomisation(tmp_path / "bad.json")


def test_the_default_changes_only_for_a_set_that_beats_paper_by_more_than_the_seed_spread():
    from nanowire_utils.chapters import crossmodality as cm

    def stats(mean, sd):
        return {cm.DR_CHOICE_KEY: {"mean": mean, "sd": sd, "values": []}}

    summary = {"sets": {"paper": stats(3.0, 0.5), "rich": stats(3.4, 0.1), "mixed": stats(3.2, 1.0)}}
    choice, text = cm.choose_training_set(summary)
    assert choice == "paper" and "rich: 3.4 vs paper 3.0 (+0.4; seed spread 0.5): does not beat it" in text
    summary["sets"]["rich"] = stats(3.6, 0.1)
    summary["sets"]["mixed"] = stats(4.5, 0.2)
    choice, text = cm.choose_training_set(summary)
    assert choice == "mixed" and text.endswith("default training set: mixed")
    with pytest.raises(ValueError, match="baseline"):
        cm.choose_training_set(summary, baseline="nope")
