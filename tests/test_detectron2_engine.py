"""Tests of nanowire_utils.maskrcnn.detectron2_engine, and of the two engines side by side.

The pure-Python part (config mapping, the detectron2 YAML, the wheel check, errors without
detectron2) runs everywhere. The rest needs detectron2: CI installs it from the local wheel
(scripts/_venv.sh); without it those tests skip and say why.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from nanowire_utils.maskrcnn import detectron2_config as d2c
from nanowire_utils.maskrcnn import detectron2_engine as d2e
from nanowire_utils.maskrcnn import engine
from nanowire_utils.maskrcnn.config import TrainConfig

HAS_D2, WHY_NOT = d2e.available()
needs_d2 = pytest.mark.skipif(
    not HAS_D2,
    reason=f"detectron2 is not importable ({WHY_NOT[:160]}); scripts/_venv.sh installs it from ../shared/wheels",
)
_D2_SECTIONS = ("MODEL.", "INPUT.", "SOLVER.", "DATALOADER.", "TEST.", "SEED")
PRESETS = ("smoke", "cpu", "paper")
ENGINES = ("torchvision", "detectron2")


def test_mapping_is_plain_detectron2_keys():
    cfg = TrainConfig.from_preset("smoke")
    d = d2c.detectron2_overrides(cfg, device="cpu")
    assert all(k.startswith(_D2_SECTIONS) for k in d), [k for k in d if not k.startswith(_D2_SECTIONS)]
    for k in d2c.PROJECT_KEYS + ("SOLVER.AMP.CPU_BF16",):
        assert k not in d
    assert not any(k.startswith(("DATASET.", "INPUT.AUG.")) for k in d)
    json.dumps(d)  # plain values only
    # vocabulary values pass through under the same names
    for key in (
        "SOLVER.BASE_LR",
        "MODEL.RPN.NMS_THRESH",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        "MODEL.ANCHOR_GENERATOR.SIZES",
        "MODEL.RESNETS.DEPTH",
        "SOLVER.MAX_ITER",
    ):
        assert d[key] == cfg[key], key
    assert d["INPUT.MIN_SIZE_TRAIN"] == tuple(cfg["INPUT.MIN_SIZE_TRAIN"])
    assert d["SOLVER.STEPS"] == tuple(cfg["SOLVER.STEPS"])
    assert d["MODEL.DEVICE"] == "cpu"
    assert d["INPUT.MASK_FORMAT"] == "bitmask"  # the data set's masks are RLE


@pytest.mark.parametrize("preset", PRESETS)
def test_amp_only_on_cuda(preset):
    """detectron2's AMPTrainer asserts CUDA: every preset maps to AMP off on a CPU."""
    cfg = TrainConfig.from_preset(preset)
    assert cfg["SOLVER.AMP.ENABLED"] is True  # the vocabulary's default: on, where it can be
    assert d2c.detectron2_overrides(cfg, device="cpu")["SOLVER.AMP.ENABLED"] is False
    assert d2c.detectron2_overrides(cfg, device="cuda")["SOLVER.AMP.ENABLED"] is True
    off = cfg.copy().set("SOLVER.AMP.ENABLED", False)
    assert d2c.detectron2_overrides(off, device="cuda")["SOLVER.AMP.ENABLED"] is False


def test_scratch_uses_the_vocabulary_norms_and_freeze_at_0():
    """Architecture parity: from scratch both engines use the norms the vocabulary names."""
    cfg = TrainConfig.from_preset("cpu")  # from scratch: GroupNorm in backbone, FPN and mask head
    assert cfg["MODEL.WEIGHTS"] == ""
    d = d2c.detectron2_overrides(cfg, device="cpu")
    assert d["MODEL.RESNETS.NORM"] == cfg["MODEL.RESNETS.NORM"] == "GN"
    bn = TrainConfig.from_preset("cpu", {"MODEL.RESNETS.NORM": "BN"})  # trainable BN maps as itself
    assert d2c.detectron2_overrides(bn, device="cpu")["MODEL.RESNETS.NORM"] == "BN"
    assert d["MODEL.FPN.NORM"] == cfg["MODEL.FPN.NORM"] == "GN"
    assert d["MODEL.ROI_MASK_HEAD.NORM"] == cfg["MODEL.ROI_MASK_HEAD.NORM"] == "GN"
    assert d["MODEL.ROI_BOX_HEAD.NORM"] == cfg["MODEL.ROI_BOX_HEAD.NORM"] == ""
    assert d["MODEL.BACKBONE.FREEZE_AT"] == 0
    # no norm in the FPN and heads is a choice of keys too, the same in both engines
    plain = TrainConfig.from_preset("cpu", {"MODEL.FPN.NORM": "", "MODEL.ROI_MASK_HEAD.NORM": ""})
    dp = d2c.detectron2_overrides(plain, device="cpu")
    assert (dp["MODEL.RESNETS.NORM"], dp["MODEL.FPN.NORM"], dp["MODEL.ROI_MASK_HEAD.NORM"]) == ("GN", "", "")
    assert d["MODEL.ROI_BOX_HEAD.NUM_CONV"] == cfg["MODEL.ROI_BOX_HEAD.NUM_CONV"]  # head shapes are the vocabulary's
    assert d["MODEL.RESNETS.STRIDE_IN_1X1"] is False
    assert d["MODEL.RESNETS.RES2_OUT_CHANNELS"] == 64  # ResNet-18/34 need it in detectron2
    assert d["INPUT.FORMAT"] == "RGB" and d["MODEL.PIXEL_MEAN"] == cfg["MODEL.PIXEL_MEAN"]


def test_pretrained_keeps_zoo_pixel_statistics():
    cfg = TrainConfig.from_preset("paper")
    d = d2c.detectron2_overrides(cfg, device="cuda")
    assert d["MODEL.WEIGHTS"] == "coco"
    assert "MODEL.PIXEL_MEAN" not in d and "MODEL.PIXEL_STD" not in d and d["INPUT.FORMAT"] == "BGR"
    assert d["MODEL.RESNETS.NORM"] == "FrozenBN" and d["MODEL.BACKBONE.FREEZE_AT"] == 2
    assert "MODEL.RESNETS.RES2_OUT_CHANNELS" not in d  # R50 keeps detectron2's 256
    assert d["MODEL.RPN.IOU_THRESHOLDS"] == [0.3, 0.6] and d["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"] == 256
    assert d2c.detectron2_config_dict(cfg, device="cuda")["MODEL.WEIGHTS"] == d2c.COCO_WEIGHTS_URL


def test_mapping_accepts_a_flat_dict():
    cfg = TrainConfig.from_preset("smoke")
    assert d2c.detectron2_overrides(cfg.to_dict(), device="cpu") == d2c.detectron2_overrides(cfg, device="cpu")


def test_yaml_is_written_without_detectron2(tmp_path):
    cfg = TrainConfig.from_preset("cpu")
    path = d2c.write_detectron2_yaml(cfg, tmp_path / "detectron2_config.yaml", device="cpu")
    text = path.read_text()
    assert text.startswith("# detectron2 config") and "register_dataset" in text
    d = yaml.safe_load(text)
    assert d["DATASETS"] == {"TRAIN": ["nanowire_train"], "TEST": ["nanowire_val"]}
    assert d["MODEL"]["RESNETS"]["DEPTH"] == 18 and d["MODEL"]["FPN"]["OUT_CHANNELS"] == 128
    assert d["MODEL"]["BACKBONE"]["NAME"] == "build_resnet_fpn_backbone"  # the zoo's FPN base
    assert d["MODEL"]["DEVICE"] == "cpu" and d["SOLVER"]["AMP"]["ENABLED"] is False
    assert d["SOLVER"]["STEPS"] == cfg["SOLVER.STEPS"] and d["INPUT"]["CROP"]["SIZE"] == [256, 256]
    assert d["OUTPUT_DIR"] == str(tmp_path.resolve() / "detectron2_tools")
    assert "ENGINE" not in d and "DATASET" not in d


def test_convert_metrics(tmp_path):
    src = tmp_path / "metrics.json"
    src.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"iteration": 19, "total_loss": 2.5, "loss_cls": 0.5, "loss_rpn_loc": 0.1, "lr": 0.01},
                {"iteration": 39, "bbox/AP": 12.0, "segm/AP": 10.0},
            ]
        )
        + "\n"
    )
    n = d2e.convert_metrics(src, tmp_path / "metrics.jsonl")
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert n == 2
    assert recs[0] == {
        "kind": "train",
        "iteration": 19,
        "lr": 0.01,
        "loss": 2.5,
        "loss_classifier": 0.5,
        "loss_rpn_box_reg": 0.1,
    }
    assert recs[1]["kind"] == "eval" and recs[1]["segm/AP"] == 10.0


# ------------------------------------------------------------------ the local wheel check


def _fake_wheel(tmp_path, name, torch_version="2.14.1", sha=None):
    wheel = tmp_path / name
    wheel.write_bytes(b"not really a wheel")
    import hashlib

    digest = sha or hashlib.sha256(wheel.read_bytes()).hexdigest()
    (tmp_path / "README.md").write_text(
        f"# Local wheels\n\n## {name}\n\n- sha256 `{digest}`\n- Built against torch {torch_version} / torchvision 0.29.1\n"
        "\n## other.whl\n\n- sha256 `" + "0" * 64 + "`\n"
    )
    return wheel


def test_check_wheel(tmp_path):
    import platform

    import torch

    py = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    plat = f"linux_{platform.machine()}"
    tv = torch.__version__.split("+")[0]
    ok, msg = d2e.check_wheel(_fake_wheel(tmp_path, f"detectron2-0.6-{py}-{py}-{plat}.whl", tv))
    assert ok, msg
    assert "sha256 verified" in msg
    # another Python: one line naming what it needs and what is here
    ok, msg = d2e.check_wheel(_fake_wheel(tmp_path, f"detectron2-0.6-cp39-cp39-{plat}.whl", tv))
    assert not ok and "needs Python 3.9" in msg and f"Python {sys.version_info[0]}.{sys.version_info[1]}" in msg
    assert "\n" not in msg
    # another torch
    ok, msg = d2e.check_wheel(_fake_wheel(tmp_path, f"detectron2-0.6-{py}-{py}-{plat}.whl", "1.13.1"))
    assert not ok and "torch 1.13.x" in msg and f"torch {tv}" in msg
    # a file that is not the one the README describes
    ok, msg = d2e.check_wheel(_fake_wheel(tmp_path, f"detectron2-0.6-{py}-{py}-{plat}.whl", tv, sha="a" * 64))
    assert not ok and "sha256" in msg
    # no README entry
    wheel = tmp_path / f"detectron2-0.7-{py}-{py}-{plat}.whl"
    wheel.write_bytes(b"x")
    ok, msg = d2e.check_wheel(wheel)
    assert not ok and "no section" in msg


# ------------------------------------------------------------------ without detectron2


_BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == {name!r} or name.startswith({name!r} + "."):
            raise ImportError("No module named " + repr(name), name=name)
sys.meta_path.insert(0, _Block())
"""


def _run_blocked(module: str, code: str, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_BLOCK.format(name=module) + textwrap.dedent(code))
    env = dict(os.environ, NANOWIRE_UTILS_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)


def test_missing_detectron2_names_the_install_command(tmp_path):
    """Where detectron2 cannot be imported (blocked in a subprocess, so this runs with or
    without it installed): a one-line error naming the install command; auto -> torchvision."""
    proc = _run_blocked(
        "detectron2",
        """
        import json
        from nanowire_utils.maskrcnn import detectron2_engine as d2e, engine
        from nanowire_utils.maskrcnn.config import TrainConfig
        out = {"auto": engine.resolve_engine("auto"), "tv": engine.resolve_engine("torchvision")}
        try:
            engine.resolve_engine("detectron2")
        except engine.EngineUnavailable as err:
            out.update(msg=str(err), value_error=isinstance(err, ValueError), import_error=isinstance(err, ImportError))
        try:
            engine.resolve_engine("mmdet")
        except ValueError as err:
            out["unknown"] = str(err)
        try:
            d2e.build_detectron2_cfg(TrainConfig.from_preset("smoke"))
        except d2e.Detectron2NotInstalled as err:
            out["build"] = str(err)
        print(json.dumps(out))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    msg = out["msg"]
    assert "pip install --no-build-isolation" in msg and "detectron2.git@" in msg and "setuptools<82" in msg
    assert "\n" not in msg and out["value_error"] and out["import_error"]  # one line in the CLI
    assert out["auto"] == "torchvision" and out["tv"] == "torchvision"
    assert "ENGINE" in out["unknown"] and "no-build-isolation" in out["build"]


def test_load_predictor_dispatches_on_checkpoint_engine(tmp_path):
    """A detectron2 run folder loaded where detectron2 cannot be imported: the error names the
    engine that trained it and how to install it."""
    import torch

    cfg = TrainConfig.from_preset("smoke")
    torch.save(
        {"model": {}, "iteration": 0, "config": cfg.to_dict(), "engine": "detectron2"}, tmp_path / "model_final.pth"
    )
    proc = _run_blocked(
        "detectron2",
        f"""
        from nanowire_utils.maskrcnn import engine
        try:
            engine.load_predictor({str(tmp_path)!r}, device="cpu")
        except engine.EngineUnavailable as err:
            print("ERROR", err)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^ERROR .*trained with the detectron2 engine.*no-build-isolation", proc.stdout, re.M), proc.stdout


# ------------------------------------------------------------------ a broken detectron2 install


@needs_d2
@pytest.mark.detectron2
def test_broken_detectron2_is_one_line_and_torchvision_still_works(tmp_path, tiny_data):
    """A detectron2 whose dependency fails to import: available() says why in one line, 'auto'
    picks torchvision, the CLI prints one line, and the built-in engine trains."""
    proc = _run_blocked(
        "fvcore",
        f"""
        import json
        from nanowire_utils.maskrcnn import detectron2_engine as d2e, engine
        from nanowire_utils.cli import main
        ok, why = d2e.available()
        rc = main(["train", "--data", {str(tiny_data)!r}, "--out", {str(tmp_path / "d2")!r}, "--preset", "smoke",
                   "--engine", "detectron2", "--no-progress"])
        from nanowire_utils.maskrcnn.config import TrainConfig
        res = engine.train(TrainConfig.from_preset("smoke", {{"SOLVER.MAX_ITER": 1, "SOLVER.STEPS": []}}),
                           {str(tiny_data)!r}, {str(tmp_path / "tv")!r}, progress=False)
        print(json.dumps({{"ok": ok, "why": why, "auto": engine.resolve_engine("auto"), "rc": rc,
                          "iterations": res.iterations}}))
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"] is False and "fvcore" in out["why"] and "\n" not in out["why"]
    assert out["auto"] == "torchvision" and out["rc"] == 2 and out["iterations"] == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("nanowire-utils train: error:")]
    assert len(errors) == 1 and "detectron2" in errors[0] and "Traceback" not in proc.stderr


@needs_d2
@pytest.mark.detectron2
def test_engine_does_not_need_pkg_resources(tmp_path):
    """setuptools >= 82 removed pkg_resources, which detectron2's model zoo imports: the engine
    does not use the model zoo, so it builds its config without it."""
    proc = _run_blocked(
        "pkg_resources",
        """
        from nanowire_utils.maskrcnn import detectron2_engine as d2e
        from nanowire_utils.maskrcnn.config import TrainConfig
        print(d2e.available())
        c = d2e.build_detectron2_cfg(TrainConfig.from_preset("cpu"), device="cpu")
        print(c.MODEL.RESNETS.DEPTH, c.MODEL.BACKBONE.NAME)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:2] == ["(True, '')", "18 build_resnet_fpn_backbone"]


# ------------------------------------------------------------------ with detectron2


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from nanowire_utils.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("d2") / "data"
    write_dataset(out, n=6, seed=0, config="smoke", splits=(0.5, 0.17, 0.33), workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    """Four 512 px images of the paper's generator (the cpu and paper presets' data)."""
    from nanowire_utils.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("d2paper") / "data"
    write_dataset(out, n=4, seed=0, config="paper", splits=(0.5, 0.25, 0.25), workers=1, progress=False)
    return out


def _tiny_cfg(**over):
    base = {
        "SOLVER.MAX_ITER": 4,
        "SOLVER.STEPS": [3],
        "SOLVER.WARMUP_ITERS": 1,
        "SOLVER.CHECKPOINT_PERIOD": 2,
        "SOLVER.IMS_PER_BATCH": 2,
        "TEST.EVAL_PERIOD": 0,
        "ENGINE": "detectron2",
    }
    base.update(over)
    return TrainConfig.from_preset("smoke", base)


@needs_d2
@pytest.mark.detectron2
def test_zoo_base_is_the_model_zoo_config():
    """ZOO_BASE (used instead of the model zoo module) is what the zoo's YAML loads."""
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    zoo = get_cfg()
    zoo.merge_from_file(model_zoo.get_config_file(d2c.BASE_CONFIG))
    ours = get_cfg()
    for key, value in d2c.ZOO_BASE.items():
        *parents, last = key.split(".")
        node = ours
        for p in parents:
            node = node[p]
        node[last] = type(node[last])(value) if isinstance(node[last], tuple) else value
    assert yaml.safe_load(ours.dump()) == yaml.safe_load(zoo.dump())
    assert model_zoo.get_checkpoint_url(d2c.BASE_CONFIG) == d2c.COCO_WEIGHTS_URL


@needs_d2
@pytest.mark.detectron2
def test_mask_loss_weight_reaches_detectron2s_mask_head():
    """MODEL.ROI_MASK_HEAD.LOSS_WEIGHT has no detectron2 config key: the trainer sets it on the
    mask head it builds, whose loss it multiplies."""
    trainer_cls = d2e.make_trainer_class()
    for w in (1.0, 2.5):
        vocab = _tiny_cfg().replace(**{"MODEL.ROI_MASK_HEAD.LOSS_WEIGHT": w})
        trainer_cls.vocab = vocab
        model = trainer_cls.build_model(d2e.build_detectron2_cfg(vocab, device="cpu"))
        assert model.roi_heads.mask_head.loss_weight == w
    assert "MODEL.ROI_MASK_HEAD.LOSS_WEIGHT" not in d2c.detectron2_config_dict(vocab)


@needs_d2
@pytest.mark.detectron2
def test_adamw_reaches_detectron2s_optimizer():
    """SOLVER.OPTIMIZER has no detectron2 config key: the trainer builds AdamW itself, with
    detectron2's parameter groups (norm parameters at WEIGHT_DECAY_NORM) and gradient clipping;
    SGD stays detectron2's own optimizer."""
    import torch

    trainer_cls = d2e.make_trainer_class()
    for name, kind in (("SGD", torch.optim.SGD), ("AdamW", torch.optim.AdamW)):
        vocab = _tiny_cfg().replace(
            **{"SOLVER.OPTIMIZER": name, "SOLVER.WEIGHT_DECAY": 0.05, "SOLVER.CLIP_GRADIENTS.ENABLED": True}
        )
        trainer_cls.vocab = vocab
        d2cfg = d2e.build_detectron2_cfg(vocab, device="cpu")
        model = trainer_cls.build_model(d2cfg)
        opt = trainer_cls.build_optimizer(d2cfg, model)
        assert isinstance(opt, kind) and type(opt) is not kind  # detectron2's clipping subclass
        assert {g["weight_decay"] for g in opt.param_groups} == {0.05, 0.0}
        assert all(g["lr"] == vocab["SOLVER.BASE_LR"] for g in opt.param_groups)
    assert "SOLVER.OPTIMIZER" not in d2c.detectron2_config_dict(vocab)


@needs_d2
@pytest.mark.detectron2
def test_build_cfg_and_mapper(tiny_data):
    d2cfg = d2e.build_detectron2_cfg(_tiny_cfg(), device="cpu")
    assert d2cfg.MODEL.RESNETS.NORM == "GN" and d2cfg.MODEL.BACKBONE.FREEZE_AT == 0  # the smoke preset's norm
    assert d2cfg.MODEL.FPN.NORM == "" and d2cfg.SOLVER.AMP.ENABLED is False
    assert d2cfg.MODEL.WEIGHTS == ""
    assert d2cfg.MODEL.RESNETS.DEPTH == 18 and d2cfg.MODEL.RESNETS.RES2_OUT_CHANNELS == 64
    from detectron2.data import DatasetCatalog

    names = d2e.register_dataset(tiny_data)
    assert names == {"train": "nanowire_train", "val": "nanowire_val", "test": "nanowire_test"}
    dicts = DatasetCatalog.get(names["train"])
    assert dicts and dicts[0]["annotations"]
    out = d2e.NanowireMapper(_tiny_cfg(), is_train=True)(dicts[0])
    img = out["image"]
    assert img.shape[0] == 3 and float(img.max()) <= 255.0 and float(img.min()) >= 0.0
    assert len(out["instances"]) > 0 and out["instances"].gt_masks.tensor.shape[-2:] == img.shape[-2:]


@needs_d2
@pytest.mark.detectron2
@pytest.mark.parametrize("preset", ("smoke", "cpu"))
def test_same_layers_in_both_engines(preset):
    """Architecture parity: the same configuration builds the same layers in both engines; the
    torchvision model has only the predictors' background rows more (parameter_difference)."""
    from detectron2.modeling import build_model as d2_build

    from nanowire_utils.maskrcnn.model import build_model, count_parameters

    cfg = TrainConfig.from_preset(preset)
    n_d2 = sum(p.numel() for p in d2_build(d2e.build_detectron2_cfg(cfg, device="cpu")).parameters())
    n_tv = count_parameters(build_model(cfg))["total"]
    assert n_tv - n_d2 == d2e.parameter_difference(cfg)


def _train_cfg(preset: str, engine_name: str, **over):
    """``preset`` for a few iterations on tiny data (AMP left as the preset has it: on)."""
    base = {
        "ENGINE": engine_name,
        "DEVICE": "cpu",
        "SOLVER.MAX_ITER": 2,
        "SOLVER.STEPS": [1],
        "SOLVER.WARMUP_ITERS": 1,
        "SOLVER.CHECKPOINT_PERIOD": 1,
        "SOLVER.IMS_PER_BATCH": 2,
        "SOLVER.MAX_MINUTES": 0.0,
        "SOLVER.EPOCHS": None,
        "TEST.EVAL_PERIOD": 0,
        "TEST.MAX_EVAL_IMAGES": 1,
    }
    base.update(over)
    return TrainConfig.from_preset(preset, base)


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_with_either_engine_on_cpu(preset, engine_name, tiny_data, paper_data, tmp_path):
    """Each preset x engine trains 2 iterations on a CPU: AMP off without CUDA, the paper preset
    (R50-FPN, 512 px, batch reduced to 2) from scratch since COCO weights cannot be had here."""
    data = tiny_data if preset == "smoke" else paper_data
    cfg = _train_cfg(preset, engine_name)
    res = engine.train(cfg, data, tmp_path / "run", progress=False)
    assert res.iterations == 2 and res.stopped_by == "max_iter"
    want = "scratch (fallback)" if preset == "paper" else "scratch"
    assert res.weights["source"] == want, res.weights
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["_engine"] == engine_name and saved["_iterations_done"] == 2
    if preset == "paper":
        assert saved["MODEL.RESNETS.DEPTH"] == 50 and saved["MODEL.RESNETS.NORM"] == "GN"
        assert saved["INPUT.MIN_SIZE_TRAIN"] == [512]
    assert (tmp_path / "run" / "detectron2_config.yaml").is_file()
    pred = engine.load_predictor(tmp_path / "run", device="cpu", score_thresh=0.0)
    assert pred.engine == engine_name


@pytest.fixture(scope="module")
def two_runs(tiny_data, tmp_path_factory):
    """The same tiny configuration trained by both engines: ``{engine: run folder}``."""
    root = tmp_path_factory.mktemp("parity")
    runs = {}
    for name in ENGINES:
        cfg = _train_cfg("smoke", name, **{"SOLVER.MAX_ITER": 4, "SOLVER.STEPS": [3], "SOLVER.CHECKPOINT_PERIOD": 2})
        res = engine.train(cfg, tiny_data, root / name, progress=False)
        assert res.iterations == 4
        runs[name] = root / name
    return runs


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
def test_parity_train_checkpoint_predict_evaluate(two_runs, tiny_data, tmp_path, capsys):
    import torch

    from nanowire_utils.cli import main
    from nanowire_utils.maskrcnn.evaluate import evaluate_split

    data_records = {}
    for name, run in two_runs.items():
        ckpt = torch.load(run / "model_final.pth", map_location="cpu", weights_only=True)
        assert ckpt["engine"] == name and "config" in ckpt
        assert list((run / "checkpoints").glob("model_*.pth"))
        assert engine.read_metrics(run)
        saved = json.loads((run / "config.json").read_text())
        data_records[name] = {k: saved["_data"][k] for k in ("n_train", "n_val", "n_images")}
        assert saved["_weights"]["source"] == "scratch"
        # predictions at any size, tiled when large
        pred = engine.load_predictor(run, device="cpu", score_thresh=0.0)
        img = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
        assert pred.predict(img).masks.shape[1:] == img.shape
        assert pred.predict(np.tile(img, (2, 2))).masks.shape[1:] == (256, 256)
        # the predictions evaluate: from the run folder (dispatch on the checkpoint's engine) ...
        m = evaluate_split(run, tiny_data, "test", progress=False)
        assert m["n_images"] == 2 and 0.0 <= m["segm"]["AP"] <= 100.0
        # ... and through the CLI
        assert main(["evaluate", str(run), "--data", str(tiny_data), "--split", "test", "--device", "cpu"]) == 0
        out = tmp_path / f"pred_{name}"
        image = sorted((tiny_data / "images" / "test").glob("*.png"))[0]
        assert main(["predict", str(run), str(image), "--out", str(out), "--device", "cpu"]) == 0
        assert (out / "results.json").is_file()
    # both engines count the data set alike (engine.count_images: all splits; train; val)
    assert data_records["torchvision"] == data_records["detectron2"] == {"n_train": 3, "n_val": 1, "n_images": 6}


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
def test_run_folder_of_the_other_engine_is_refused_by_name(two_runs, tiny_data, capsys):
    from nanowire_utils.cli import main

    for name, other in (("torchvision", "detectron2"), ("detectron2", "torchvision")):
        with pytest.raises(ValueError, match=f"trained with engine '{name}', not '{other}'"):
            engine.load_predictor(two_runs[name], device="cpu", engine=other)
        cfg = _train_cfg("smoke", other, **{"SOLVER.MAX_ITER": 6})
        with pytest.raises(ValueError, match=f"holds a run of the {name} engine"):
            engine.train(cfg, tiny_data, two_runs[name], progress=False)
        rc = main(
            ["train", "--data", str(tiny_data), "--out", str(two_runs[name]), "--preset", "smoke", "--engine", other]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("nanowire-utils train: error:") and f"{name} engine" in err[-1]


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
def test_yaml_of_a_run_loads_builds_and_trains_in_detectron2(two_runs, tiny_data, tmp_path):
    """Each run's detectron2_config.yaml loads with get_cfg().merge_from_file, builds the
    model, and detectron2's own DefaultTrainer (what tools/train_net.py runs) trains from it
    after one register_dataset call."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultTrainer
    from detectron2.modeling import build_model

    for name, run in two_runs.items():
        cfg = get_cfg()
        cfg.merge_from_file(str(run / "detectron2_config.yaml"))
        assert cfg.MODEL.RESNETS.DEPTH == 18 and cfg.DATASETS.TRAIN == ("nanowire_train",)
        model = build_model(cfg)
        n = sum(p.numel() for p in model.parameters())
        from nanowire_utils.maskrcnn.model import build_model as tv_build
        from nanowire_utils.maskrcnn.model import count_parameters

        vocab = TrainConfig.from_json(run / "config.json")
        assert count_parameters(tv_build(vocab))["total"] - n == d2e.parameter_difference(vocab)
        if name == "detectron2":  # the engine's own weights load into the model the YAML builds
            state = torch.load(run / "model_final.pth", map_location="cpu", weights_only=True)["model"]
            model.load_state_dict(state)
    d2e.register_dataset(tiny_data)
    cfg = get_cfg()
    cfg.merge_from_file(str(two_runs["torchvision"] / "detectron2_config.yaml"))
    cfg.merge_from_list(["SOLVER.MAX_ITER", 2, "OUTPUT_DIR", str(tmp_path / "tools"), "DATASETS.TEST", ()])
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 2 and (tmp_path / "tools" / "model_final.pth").is_file()


@needs_d2
@pytest.mark.detectron2
def test_pipeline_keeps_each_engines_model_apart(tmp_path):
    from nanowire_utils.chapters import pipeline

    assert pipeline.run_dir("cpu", tmp_path) == tmp_path / "cpu" / "mask_rcnn"
    assert pipeline.run_dir("cpu", tmp_path, "torchvision") == tmp_path / "cpu" / "mask_rcnn"
    assert pipeline.run_dir("cpu", tmp_path, "detectron2") == tmp_path / "cpu" / "mask_rcnn_detectron2"
    assert pipeline.training_engine("smoke") == "torchvision"  # the preset's ENGINE
    assert pipeline.training_engine("smoke", "detectron2") == "detectron2"


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
def test_inspection_model_of_each_engine(two_runs):
    from nanowire_utils.chapters import pipeline

    model, note = pipeline.inspection_model(two_runs["torchvision"])
    assert note == "" and not model.training
    model, note = pipeline.inspection_model(two_runs["detectron2"])
    assert "detectron2 engine" in note and "random weights" in note


@needs_d2
@pytest.mark.detectron2
@pytest.mark.slow
def test_training_failure_is_one_line_in_the_cli(tiny_data, tmp_path, capsys):
    """detectron2 stopping with an error (here an unreadable training image) is one CLI line
    naming the iteration and the log file that keeps the traceback."""
    import shutil

    from nanowire_utils.cli import main

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    for png in (data / "images" / "train").glob("*.png"):
        png.write_bytes(b"not a png")
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--preset", "smoke", "--engine", "detectron2"]
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 2
    last = cap.err.strip().splitlines()[-1]
    assert last.startswith("nanowire-utils train: error: detectron2 training stopped at iteration 0:"), last
    assert str(run / "checkpoints" / "log.txt") in last
    assert "Traceback" not in cap.err and "Traceback" not in cap.out  # the console shows no traceback...
    assert "Traceback" in (run / "checkpoints" / "log.txt").read_text()  # ... the log file keeps it


@needs_d2
@pytest.mark.detectron2
def test_predictor_resizes_by_the_models_input_scale(tmp_path):
    """A detectron2 model tested on its synthetic images at half size (INPUT.MIN/MAX_SIZE_TEST
    64 for 128 px data): the predictor feeds it what detectron2's own test loader would
    (ResizeShortestEdge to 64 px) and returns results at the image's size."""
    import detectron2.data.transforms as T
    import torch
    from detectron2.modeling import build_model

    cfg = _tiny_cfg(**{"INPUT.MIN_SIZE_TEST": 64, "INPUT.MAX_SIZE_TEST": 64})
    torch.manual_seed(0)
    model = build_model(d2e.build_detectron2_cfg(cfg, device="cpu"))
    ckpt = {"model": model.state_dict(), "iteration": 0, "config": cfg.to_dict(), "engine": "detectron2"}
    torch.save(ckpt, tmp_path / "model_final.pth")
    pred = engine.load_predictor(tmp_path, device="cpu", score_thresh=0.0)
    assert pred.input_scale == 0.5

    rng = np.random.default_rng(1)
    gray = (rng.random((128, 128)) * 0.1).astype(np.float32)
    gray[30:36, 10:110] = 0.8
    gray[60:120, 70:76] = 0.6
    out = pred.predict(gray, tile=0)
    img = d2e.gray_to_model_image(gray)
    small = T.ResizeShortestEdge(64, 64).get_transform(img).apply_image(img)
    model.eval()
    with torch.inference_mode():
        ref = model([{"image": torch.as_tensor(small.transpose(2, 0, 1).copy()), "height": 128, "width": 128}])[0]
    ref = ref["instances"]
    assert small.shape[:2] == (64, 64)
    assert out.masks.shape[1:] == (128, 128)
    assert len(out) == len(ref) > 0
    np.testing.assert_allclose(out.scores, ref.scores.numpy(), rtol=1e-5)
    np.testing.assert_allclose(out.boxes, ref.pred_boxes.tensor.numpy(), atol=1e-3)
