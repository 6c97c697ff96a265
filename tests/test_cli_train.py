"""``nanowire-utils train``: help, configuration from arguments, one-line errors."""

import json

import pytest

from nanowire_utils.cli import main


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--data", "--out", "--preset", "--set", "--engine", "--max-minutes", "--epochs"):
        assert opt in out


def test_show_config_applies_preset_flags_and_sets(capsys, tmp_path):
    rc = main(
        [
            "train",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "smoke",
            "--max-minutes",
            "2.5",
            "--engine",
            "torchvision",
            "--set",
            "SOLVER.BASE_LR=0.005",
            "--set",
            "MODEL.RPN.IOU_THRESHOLDS=[0.3, 0.6]",
            "--show-config",
        ]
    )
    assert rc == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["_preset"] == "smoke" and cfg["SOLVER.MAX_MINUTES"] == 2.5 and cfg["ENGINE"] == "torchvision"
    assert cfg["SOLVER.BASE_LR"] == 0.005 and cfg["MODEL.RPN.IOU_THRESHOLDS"] == [0.3, 0.6]
    # a config.json can seed another run
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert (
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r2"), "--config", str(path), "--show-config"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["SOLVER.BASE_LR"] == 0.005


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "SOLVER.BASE_LRR=0.1"], "did you mean SOLVER.BASE_LR"),
        (["--set", "SOLVER.BASE_LR=-1"], "SOLVER.BASE_LR must be in"),
        (["--set", "SOLVER.BASE_LR"], "KEY=VALUE"),
        (["--preset", "huge"], "preset must be one of"),
    ],
)
def test_bad_arguments_give_one_line_errors(capsys, tmp_path, args, message):
    rc = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--show-config", *args])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("nanowire-utils train: error:")


def test_missing_dataset_is_a_one_line_error(capsys, tmp_path):
    rc = main(
        [
            "train",
            "--data",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "smoke",
            "--no-progress",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "nanowire-utils generate" in err and len(err.strip().splitlines()) == 1


def test_bad_max_minutes_rejected_by_argparse(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path), "--max-minutes", "0"])
    assert exc.value.code == 2
    assert "must be > 0 minutes" in capsys.readouterr().err
