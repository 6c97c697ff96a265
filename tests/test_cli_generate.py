import json
import subprocess
import sys

import pytest

from nanowire_utils.cli import main


def test_generate_writes_dataset(tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["generate", "--n", "3", "--out", str(out), "--preset", "smoke", "--workers", "1", "--splits", "1,0,0"]
    argv += ["--set", "render.blur_sigma=1", "--set", "min_visible_area=5", "--no-progress"]
    assert main(argv) == 0
    assert "3 images" in capsys.readouterr().out
    meta = json.loads((out / "dataset.json").read_text())["parameters"]
    assert meta["config"]["render"]["blur_sigma"] == 1 and meta["config"]["min_visible_area"] == 5
    assert len(list((out / "images" / "train").glob("*.png"))) == 3
    # the same command again resumes: nothing left to do
    assert main(argv) == 0
    assert "skipped 3" in capsys.readouterr().out


def test_show_config(capsys):
    assert main(["generate", "--n", "1", "--out", "unused", "--preset", "rich", "--show-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["name"] == "rich" and cfg["render"]["beer_lambert"] is True


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "fancy"], "unknown preset 'fancy'"),
        (["--set", "nonsense=3"], "unknown generator setting 'nonsense'"),
        (["--set", "render.blur_sigma=-2"], "blur_sigma"),
        (["--set", "novalue"], "KEY=VALUE"),
        (["--splits", "0.9,0.2,0.1"], "splits"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    rc = main(["generate", "--n", "2", "--out", str(tmp_path / "x"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("n", ["-5", "0", "many"])
def test_bad_n_is_rejected_by_the_parser(tmp_path, capsys, n):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--n", n, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--n" in err and "Traceback" not in err


def test_mixing_into_other_dataset_is_refused(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["generate", "--n", "2", "--out", out, "--preset", "smoke", "--workers", "1", "--no-progress"]) == 0
    assert (
        main(
            [
                "generate",
                "--n",
                "2",
                "--out",
                out,
                "--preset",
                "smoke",
                "--seed",
                "1",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "different parameters" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = capsys.readouterr().out
    for opt in (
        "--n",
        "--out",
        "--seed",
        "--preset",
        "--workers",
        "--format",
        "--splits",
        "--path",
        "--set",
        "--no-progress",
    ):
        assert opt in text


def test_samples_command_lists_paths(capsys):
    assert main(["samples", "stxm"]) == 0
    assert "STXM.png" in capsys.readouterr().out
    assert main(["samples", "xray"]) == 2


def test_generate_does_not_import_torch(tmp_path):
    code = (
        "import sys; from nanowire_utils.cli import main; "
        f"rc = main(['generate', '--n', '2', '--out', {str(tmp_path / 'd')!r}, '--preset', 'smoke', '--workers', '1', '--no-progress']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "NO_TORCH 0" in res.stdout
