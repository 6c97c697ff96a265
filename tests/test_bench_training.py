"""benchmarks/bench_training.py at smoke size: a real (tiny) training with an AP curve, the
per-iteration checkpoints it scores, and the comparison figure of several curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(SCRIPT)


@pytest.fixture(scope="module")
def curve_run(bench, tmp_path_factory):
    from nanowire_utils.synth.dataset import write_dataset

    root = tmp_path_factory.mktemp("bench_training")
    data = root / "data"
    write_dataset(data, n=6, seed=0, config="smoke", splits=(0.5, 0.17, 0.33), workers=1, progress=False)
    out = root / "out"
    args = ["--data", str(data), "--out", str(out), "--preset", "smoke", "--every", "2", "--max-iter", "4"]
    assert bench.main([*args, "--quick", "--skip-speed", "--set", "SOLVER.BASE_LR=0.01"]) == 0
    return out


def test_curve_scores_every_checkpoint(curve_run):
    report = json.loads((curve_run / "bench_training.json").read_text())
    points = report["curve"]["points"]
    assert [p["iteration"] for p in points] == [2, 4]  # the periodic checkpoint, then the final model
    assert all(0 <= p["segm_AP"] <= 100 and p["test_images"] == 2 for p in points)
    assert 0 < points[0]["minutes"] <= points[1]["minutes"]
    assert report["speed"] == []  # --skip-speed
    assert report["overrides"] == {"SOLVER.BASE_LR": 0.01}
    assert report["curve"]["config"]["SOLVER.BASE_LR"] == 0.01
    assert report["inference"]["s_per_image"] > 0
    assert (curve_run / "ap_vs_iterations.png").stat().st_size > 0


def test_compare_plots_the_curves(bench, curve_run, tmp_path):
    js = curve_run / "bench_training.json"
    assert bench.main(["--out", str(tmp_path), "--compare", f"a={js}", f"b={js}"]) == 0
    assert (tmp_path / "ap_compare.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path), "--compare", str(js)])  # no LABEL=
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path)])  # neither --data nor --compare


def test_real_without_a_curve_is_refused(bench, tmp_path, capsys):
    """--real scores the model the curve trains: with --skip-curve there is none, which the
    script says instead of silently scoring nothing."""
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path), "--skip-curve", "--real"])
    assert "--real-only" in capsys.readouterr().err
    assert not (tmp_path / "bench_training.json").exists()


def test_real_only_adds_the_real_image_scores(bench, curve_run):
    """--real-only scores the run's final model on the three real images (as is and at the
    estimated scale) and keeps the curve already in the report."""
    report = json.loads((curve_run / "bench_training.json").read_text())
    data = Path(report["data"])
    # whole images: the smoke model's automatic tiles would be 128 px, hundreds per real image
    args = ["--data", str(data), "--out", str(curve_run), "--preset", "smoke", "--real-only", "--tile", "0"]
    assert bench.main(args) == 0
    after = json.loads((curve_run / "bench_training.json").read_text())
    assert after["curve"] == report["curve"]
    real = after["real"]
    assert set(real["input_scales"]) == {"ptychography", "stxm", "sem"}
    assert all(0.25 <= s <= 4 for s in real["input_scales"].values())
    assert real["training_width_px"] > 0
    assert len(real["real"]) == 6 and sum(k.endswith("| as is") for k in real["real"]) == 3
    for row in real["real"].values():
        assert 0 <= row["accuracy post"] <= 100


def test_mask_quality_of_the_run(load_script, curve_run, tmp_path, capsys):
    """benchmarks/bench_mask_quality.py on the smoke run: its model's per-wire IoUs beside the
    ceiling of its mask grid and input scale."""
    mq = load_script(SCRIPT.parent / "bench_mask_quality.py")
    data, out = curve_run.parent / "data", tmp_path / "mq.json"
    assert mq.main(["--data", str(data), "--out", str(out), f"smoke={curve_run / 'run_smoke'}"]) == 0
    r = json.loads(out.read_text())["runs"]["smoke"]
    assert r["mask_size"] == 28 and r["input_scale"] == 1.0 and r["iteration"] == 4
    assert 0.5 < r["ceiling_iou"]["mean"] <= 1 and 0 < r["ceiling_segm_AP"] <= 100
    assert r["model_mask_iou"]["n"] == r["ceiling_iou"]["n"] > 0
    assert 0 <= r["model_mask_iou"]["mean"] <= 1 and 0 <= r["model_box_iou"]["mean"] <= 1
    assert "| smoke |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="LABEL=RUN_DIR"):
        mq.main(["--data", str(data), "--out", str(out), str(curve_run)])
