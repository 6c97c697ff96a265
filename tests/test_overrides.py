"""One --set syntax everywhere: the same text gives the same value to generate and train."""

import pytest

from nanowire_utils.cli import main
from nanowire_utils.maskrcnn.config import TrainConfig
from nanowire_utils.overrides import parse_assignment, parse_assignments, parse_value
from nanowire_utils.synth.generator_presets import get_preset


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("1.5", 1.5),
        ("1e-3", 1e-3),
        ("true", True),
        ("True", True),
        ("false", False),
        ("null", None),
        ("~", None),
        ("None", None),
        ("[0.3, 0.6]", [0.3, 0.6]),
        ("[5,15]", [5, 15]),
        ("{a: 1}", {"a": 1}),
        ("paper", "paper"),
        ("  spaced  ", "spaced"),
        ("[unclosed", "[unclosed"),
    ],
)
def test_parse_value_is_yaml(text, value):
    assert parse_value(text) == value


def test_assignments_and_errors():
    assert parse_assignment("SOLVER.BASE_LR=0.01") == ("SOLVER.BASE_LR", 0.01)
    assert parse_assignments(["a=1", "b=x=y", "a=2"]) == {"a": 2, "b": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("novalue")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("=3")


def test_same_text_same_value_in_train_and_generate(capsys):
    cfg = TrainConfig.from_preset("smoke")
    for text, expected in (("false", False), ("False", False), ("true", True)):
        cfg.set(f"SOLVER.AMP.ENABLED={text}")
        assert cfg["SOLVER.AMP.ENABLED"] is expected
    cfg.set("SOLVER.EPOCHS=null")
    assert cfg["SOLVER.EPOCHS"] is None
    cfg.set("MODEL.RPN.IOU_THRESHOLDS=[0.3, 0.8]")
    assert cfg["MODEL.RPN.IOU_THRESHOLDS"] == [0.3, 0.8]
    # the generator reads the same syntax through the CLI
    assert (
        main(
            [
                "generate",
                "--n",
                "1",
                "--out",
                "unused",
                "--preset",
                "smoke",
                "--set",
                "render.blur_sigma=1.5",
                "--set",
                "network.n_wires=[3,4]",
                "--show-config",
            ]
        )
        == 0
    )
    shown = capsys.readouterr().out
    assert get_preset("smoke", **{"render.blur_sigma": 1.5, "network.n_wires": [3, 4]}).to_json() == shown.strip()
