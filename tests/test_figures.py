"""The figures quoted in the README and the book are those of the committed results files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import figures  # noqa: E402


def test_readme_and_book_quote_the_results_files():
    found = figures.problems(figures.figures())
    assert not found, "\n".join(found)


def test_check_fails_when_a_result_changes(tmp_path, monkeypatch):
    """Change one measured value: the README phrase no longer matches and the check says so."""
    results = tmp_path / "results"
    for src in figures.RESULTS.rglob("*.json"):
        dst = results / src.relative_to(figures.RESULTS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    train = json.loads((results / "training_v2" / "bench_training.json").read_text())
    train["curve"]["points"][-1]["segm_AP"] += 1.0
    (results / "training_v2" / "bench_training.json").write_text(json.dumps(train))
    monkeypatch.setattr(figures, "RESULTS", results)
    found = figures.problems(figures.figures())
    assert any("myst_substitutions" in f for f in found)
    assert any("segm AP" in f and "README" in f for f in found)


def test_book_pages_use_substitutions_not_typed_numbers():
    subs = figures.figures()
    used = set()
    for page in (ROOT / "book").glob("*.md"):
        text = page.read_text()
        used |= {k for k in subs if "{{ " + k + " }}" in text}
        for key in ("cpu_segm_ap", "cpu_bbox_ap", "cpu_v1_segm_ap", "cpu_v1_bbox_ap"):
            assert f"AP {subs[key]} " not in text, f"{page.name} types {subs[key]} instead of {{{{ {key} }}}}"
    assert {"cpu_segm_ap", "cpu_bbox_ap", "cpu_minutes", "paper_segm_ap"} <= used


def test_cli_check_exit_status():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "figures.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "name",
    [
        "generation.json",
        "training/bench_training.json",
        "training_v2/bench_training.json",
        "engines_v2/bench_engines.json",
        "book_build.json",
    ],
)
def test_results_files_are_committed(name):
    assert (figures.RESULTS / name).exists()


def test_the_cpu_figures_are_of_todays_cpu_preset():
    """The results file quoted as "the cpu preset" was trained with the configuration the cpu
    preset gives today (bookkeeping keys aside): a preset change without a new measurement fails."""
    from nanowire_utils.chapters.pipeline import _BOOKKEEPING
    from nanowire_utils.maskrcnn.config import TrainConfig, config_diff

    trained = json.loads((figures.RESULTS / figures.CPU_PRESET_RESULTS).read_text())["curve"]["config"]
    assert trained["SOLVER.MAX_ITER"] == 1500
    now = TrainConfig.from_preset("cpu").to_dict()
    drift = config_diff(trained, now, skip=_BOOKKEEPING, common_only=True, fill_defaults=True)
    assert not drift, f"{figures.CPU_PRESET_RESULTS} was measured with another cpu preset: {drift}"
