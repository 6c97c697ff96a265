"""Tests of ``nanowire-utils predict`` and ``nanowire-utils evaluate`` (in process, tiny model)."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nanowire_utils.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A smoke-preset run folder (random weights) in the training contract layout."""
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.model import build_model

    cfg = TrainConfig.from_preset("smoke")
    torch.manual_seed(0)
    model = build_model(cfg)
    run = tmp_path_factory.mktemp("cli") / "run"
    run.mkdir()
    torch.save(
        {
            "model": model.state_dict(),
            "iteration": 0,
            "config": cfg.to_dict(),
            "engine": "torchvision",
            "arch": model.nanowire_arch,
        },
        run / "model_final.pth",
    )
    cfg.to_json(run / "config.json")
    return run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny synthetic data set written by the project's own writer."""
    from nanowire_utils.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("cli") / "data"
    write_dataset(out, n=6, seed=0, config="smoke", splits=(0.34, 0.33, 0.33), workers=1, progress=False)
    return out


def _images(folder: Path, n=2):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n):
        img = (rng.random((128, 128)) * 30).astype(np.uint8)
        img[20 + 10 * i : 26 + 10 * i, 10:120] = 220
        paths.append(folder / f"img{i}.png")
        Image.fromarray(img).save(paths[-1])
    return paths


def test_predict_writes_json_and_overlays(run_dir, tmp_path, capsys):
    paths = _images(tmp_path / "in")
    out = tmp_path / "out"
    rc = main(["predict", str(run_dir), *map(str, paths), "--out", str(out), "--score-thresh", "0", "--tile", "0"])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert results, "threshold 0 keeps every detection of the random model"
    for r in results:
        assert set(r) >= {"image_id", "category_id", "segmentation", "bbox", "score"}
        assert isinstance(r["segmentation"]["counts"], str) and r["segmentation"]["size"] == [128, 128]
        assert len(r["bbox"]) == 4 and 0 <= r["score"] <= 1
    images = json.loads((out / "images.json").read_text())
    assert [im["id"] for im in images] == [1, 2]
    for p in paths:
        assert (out / f"{p.stem}_overlay.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "2 image(s)" in printed and "results.json" in printed


def test_predict_folder_argument_and_no_overlay(run_dir, tmp_path):
    _images(tmp_path / "in", n=1)
    out = tmp_path / "out"
    assert main(["predict", str(run_dir), str(tmp_path / "in"), "--out", str(out), "--no-overlay"]) == 0
    assert (out / "results.json").is_file() and not list(out.glob("*.png"))


def test_evaluate_prints_and_saves_metrics(run_dir, dataset, capsys):
    rc = main(["evaluate", str(run_dir), "--data", str(dataset), "--split", "test", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    for word in ("bbox", "segm", "AP50", "AP75", "APs", "APm", "APl"):
        assert word in printed
    saved = json.loads((run_dir / "eval_test.json").read_text())
    assert saved["split"] == "test"
    for kind in ("bbox", "segm"):
        assert set(saved[kind]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
        ap = saved[kind]["AP"]
        assert ap is None or np.isnan(ap) or 0 <= ap <= 100


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "RUN_DIR" in capsys.readouterr().out


def _one_line_error(capsys, argv, *words):
    rc = main(argv)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]  # a progress bar may precede it
    assert last.startswith("nanowire-utils ") and ": error: " in last, err
    for w in words:
        assert w in last
    return last


def test_user_errors_are_one_line(run_dir, tmp_path, capsys):
    paths = _images(tmp_path / "in", n=1)
    _one_line_error(capsys, ["predict", str(tmp_path / "nope"), str(paths[0]), "--out", str(tmp_path / "o")], "train")
    _one_line_error(
        capsys, ["predict", str(run_dir), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")], "missing.png"
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    _one_line_error(capsys, ["predict", str(run_dir), str(bad), "--out", str(tmp_path / "o")], "bad.png")
    _one_line_error(capsys, ["evaluate", str(run_dir), "--data", str(tmp_path / "nodata")], "generate")


@pytest.mark.parametrize("flag,value", [("--tile", "8"), ("--score-thresh", "2"), ("--modality", "xray")])
def test_bad_option_values_exit_2(run_dir, tmp_path, capsys, flag, value):
    paths = _images(tmp_path / "in", n=1)
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(run_dir), str(paths[0]), "--out", str(tmp_path / "o"), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "error" in err
