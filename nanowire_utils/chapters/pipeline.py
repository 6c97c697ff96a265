"""The glue the book's chapters share, so that they run in any order and reuse each other's work.

A chapter that needs a trained model calls :func:`ensure_model`: it returns the run folder the
training chapter writes for the same scale, training it first only when no finished model is
there. :func:`ensure_dataset` does the same for the synthetic dataset a training preset
expects (``nanowire_utils.maskrcnn.config.dataset_spec``).

Folder layout (both roots are arguments; the notebooks use ``../data`` and ``../runs``)::

    DATA_ROOT/synthetic/<preset>/        the dataset of a training preset (dataset.json, images/, annotations/)
    RUNS_ROOT/<preset>/mask_rcnn/        the training run (config.json, model_final.pth, metrics.jsonl)
    RUNS_ROOT/<preset>/mask_rcnn_detectron2/   the same, when the detectron2 engine trains it

Typical use::

    from nanowire_utils.chapters.pipeline import ensure_model
    run_dir = ensure_model("cpu", "../runs", "../data")   # trains only if missing
"""

from __future__ import annotations

import logging
from pathlib import Path

from nanowire_utils._checks import check_range
from nanowire_utils.maskrcnn.engine import FINAL_CHECKPOINT

log = logging.getLogger(__name__)

#: Name of the run folder inside ``RUNS_ROOT/<preset>/``.
RUN_NAME = "mask_rcnn"


def dataset_dir(scale: str, data_root) -> Path:
    """Folder of the synthetic dataset that training preset ``scale`` uses: ``DATA_ROOT/synthetic/<preset>``
    (``scale="auto"`` resolves to ``paper`` with CUDA, else ``cpu``)."""
    from nanowire_utils.maskrcnn.config import resolve_preset_name

    return Path(data_root) / "synthetic" / resolve_preset_name(scale)


def training_engine(scale: str, engine: str | None = None) -> str:
    """The engine that trains preset ``scale`` here: ``engine`` (``"auto"``, ``"torchvision"``,
    ``"detectron2"``) or, when None, the preset's ``ENGINE``, resolved by
    :func:`nanowire_utils.maskrcnn.engine.resolve_engine` (an engine that cannot run here is
    an error saying what to install)."""
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.engine import resolve_engine

    return resolve_engine(engine or TrainConfig.from_preset(scale)["ENGINE"])


def run_dir(scale: str, runs_root, engine: str | None = None) -> Path:
    """Folder of the training run of preset ``scale``: ``RUNS_ROOT/<preset>/mask_rcnn`` when
    the torchvision engine trains it, ``RUNS_ROOT/<preset>/mask_rcnn_detectron2`` when
    detectron2 does. ``engine`` (``"auto"``, ``"torchvision"``, ``"detectron2"``, or None for
    the preset's ``ENGINE``) is resolved by :func:`training_engine`, so a GPU machine with
    detectron2 names the same folder for ``engine="auto"`` and for None."""
    from nanowire_utils.maskrcnn.config import resolve_preset_name

    preset = resolve_preset_name(scale)
    chosen = training_engine(preset, engine)
    name = RUN_NAME if chosen == "torchvision" else f"{RUN_NAME}_{chosen}"
    return Path(runs_root) / preset / name


def find_model(scale: str, runs_root, engine: str | None = None) -> Path | None:
    """The run folder of a finished model of preset ``scale`` to reuse, or None.

    First :func:`run_dir` (the engine that would train here). Unless ``engine`` names one
    engine, any other finished run of the preset comes next (``RUNS_ROOT/<preset>/mask_rcnn*``):
    a model trained with the command line into ``mask_rcnn`` by detectron2, or on another
    machine, is reused rather than trained again; its ``config.json`` says which engine made it.

    Parameters
    ----------
    scale:
        Training preset: "smoke", "cpu", "paper" or "auto".
    runs_root:
        Parent folder of the runs.
    engine:
        None or ``"auto"``: any engine's model; ``"torchvision"`` or ``"detectron2"``: only that
        engine's folder.
    """
    from nanowire_utils.maskrcnn.config import resolve_preset_name

    own = default_checkpoint(scale, runs_root, engine)
    if own.is_file():
        return own.parent
    if engine in (None, "auto"):
        for other in sorted((Path(runs_root) / resolve_preset_name(scale)).glob(f"{RUN_NAME}*")):
            if (other / FINAL_CHECKPOINT).is_file():
                return other
    return None


def default_checkpoint(scale: str, runs_root, engine: str | None = None) -> Path:
    """The finished model of preset ``scale``: ``<run_dir(scale, runs_root, engine)>/model_final.pth``.

    The path is returned whether or not the file exists yet (:func:`ensure_model` makes it).
    """
    return run_dir(scale, runs_root, engine) / FINAL_CHECKPOINT


def ensure_dataset(scale: str, data_root, seed: int = 0, workers: int | None = None, progress: bool = True) -> Path:
    """The synthetic dataset training preset ``scale`` expects, generated if missing or incomplete.

    The preset names the image count and the generator preset (``config.dataset_spec``).
    Generation is resumable: images already written are kept, so an interrupted call picks up
    where it stopped, and a complete dataset is reused as it is. A folder made with other
    parameters (another seed, an edited preset) is refused with FileExistsError naming the
    difference: delete it or pass another ``data_root``.

    Parameters
    ----------
    scale:
        Training preset: "smoke", "cpu", "paper" or "auto".
    data_root:
        Parent folder; the dataset goes to :func:`dataset_dir`.
    seed:
        Base seed of the generator (image i uses ``SeedSequence([seed, i])``).
    workers:
        Generator processes; None = all available cores.
    progress:
        Show a progress bar while generating.

    Returns
    -------
    Path
        The dataset folder.
    """
    from nanowire_utils.maskrcnn.config import dataset_spec, resolve_preset_name
    from nanowire_utils.synth.dataset import write_dataset

    preset = resolve_preset_name(scale)
    spec = dataset_spec(preset)
    out = dataset_dir(preset, data_root)
    summary = write_dataset(
        out, spec["n_images"], seed=seed, config=spec["generator_preset"], workers=workers, progress=progress
    )
    if summary["generated"] == 0:
        log.info(
            "reusing the complete dataset %s (%d images, generator preset %r)",
            out,
            spec["n_images"],
            spec["generator_preset"],
        )
    else:
        log.info(
            "generated %d of %d images (generator preset %r) into %s in %.1f s",
            summary["generated"],
            spec["n_images"],
            spec["generator_preset"],
            out,
            summary["seconds"],
        )
    return out


def ensure_model(
    scale: str,
    runs_root,
    data_root,
    seed: int = 0,
    max_minutes: float | None = None,
    progress: bool = True,
    engine: str | None = None,
    **overrides,
) -> Path:
    """The trained model of preset ``scale``: reused when one is finished (:func:`find_model`), else trained.

    Training uses :func:`ensure_dataset` for the data and ``nanowire_utils.maskrcnn.engine.train``
    into :func:`run_dir`; an interrupted run there is resumed. Logs (``logging``, INFO)
    whether the model was reused or trained.

    Parameters
    ----------
    scale:
        Training preset: "smoke" (seconds), "cpu" (about 30 minutes on 2 cores), "paper"
        (GPU hours) or "auto".
    runs_root, data_root:
        Parent folders of the runs and of the synthetic datasets.
    seed:
        Seed of the dataset and of training (``SEED``).
    max_minutes:
        Wall-clock budget of training in minutes (``SOLVER.MAX_MINUTES``); None keeps the preset's.
    engine:
        ``"auto"``, ``"torchvision"`` or ``"detectron2"``; None: the preset's ``ENGINE``. A
        detectron2 model lives in its own folder (:func:`run_dir`). A named engine reuses only
        its own model; None and ``"auto"`` reuse any finished model of the preset
        (:func:`find_model`).
    overrides:
        Further configuration keys, ``__`` standing for a dot: ``SOLVER__MAX_ITER=50``.
        They apply only when training happens: an existing model is returned as it is.

    Returns
    -------
    Path
        The run folder (holding ``model_final.pth``), ready for
        ``nanowire_utils.maskrcnn.engine.load_predictor``.
    """
    from nanowire_utils.maskrcnn.config import TrainConfig, resolve_preset_name

    preset = resolve_preset_name(scale)
    found = find_model(preset, runs_root, engine)
    if found is not None:
        log.info("reusing the trained %r model %s", preset, found / FINAL_CHECKPOINT)
        drift = preset_drift(found, preset)
        if drift:
            log.warning(
                "the reused model was trained with an earlier %r preset (%s); delete %s to train the current one",
                preset,
                "; ".join(f"{k} = {was} then, {now} now" for k, (was, now) in drift.items()),
                found,
            )
        return found
    chosen = training_engine(preset, engine) if engine is not None else None
    out = run_dir(preset, runs_root, engine)
    final = out / FINAL_CHECKPOINT
    cfg = TrainConfig.from_preset(preset, **overrides)
    if chosen is not None:
        cfg.set("ENGINE", chosen)
    cfg.set("SEED", int(seed))
    if max_minutes is not None:
        check_range("max_minutes", max_minutes, 0, None, low_inclusive=False, unit="min")
        cfg.set("SOLVER.MAX_MINUTES", float(max_minutes))
    cfg.validate()
    data = ensure_dataset(preset, data_root, seed=seed, progress=progress)
    from nanowire_utils.maskrcnn.engine import train

    log.info("no %s: training the %r preset into %s", final, preset, out)
    result = train(cfg, data, out, resume=True, progress=progress)
    log.info(
        "trained %d iterations in %.1f min (%s); model %s",
        result.iterations,
        result.elapsed_s / 60,
        result.stopped_by,
        result.final_checkpoint,
    )
    return out


#: Keys that say how a run was watched or saved, not which model it trains.
_BOOKKEEPING = ("TEST.", "SOLVER.CHECKPOINT_PERIOD", "SOLVER.MAX_MINUTES", "SEED", "ENGINE", "DATALOADER.")


def preset_drift(run, preset: str) -> dict:
    """Keys of preset ``preset`` that a finished run was trained with other values of.

    A model trained before the preset changed (e.g. an earlier ``cpu`` preset) is still reused
    by :func:`ensure_model`; this says what differs. Bookkeeping keys (checkpoint and
    evaluation periods, wall-clock cap, seed, engine, data loading) are not compared.

    Parameters
    ----------
    run : str or Path
        The run folder (holding ``config.json``).
    preset : str
        The preset name to compare with.

    Returns
    -------
    dict
        ``{key: (value when trained, value now)}``; empty when the run matches the preset or
        records no ``config.json``.
    """
    import json

    from nanowire_utils.maskrcnn.config import TrainConfig, config_diff

    path = Path(run) / "config.json"
    if not path.is_file():
        return {}
    trained = json.loads(path.read_text())
    now = TrainConfig.from_preset(preset).to_dict()
    return config_diff(trained, now, skip=_BOOKKEEPING, common_only=True, fill_defaults=True)


def checkpoint_info(checkpoint) -> dict:
    """What produced a model: ``preset``, ``engine``, ``arch``, ``iterations``, ``minutes`` of
    training, ``weights`` (initial weights' source) and ``path``, read from the checkpoint
    (a ``.pth`` file or a run folder)."""
    from nanowire_utils.maskrcnn.engine import read_checkpoint, resolve_checkpoint_path

    path = resolve_checkpoint_path(checkpoint)
    ckpt = read_checkpoint(path)
    cfg = ckpt.get("config") or {}
    weights = ckpt.get("weights") or {}
    return {
        "path": str(path),
        "preset": cfg.get("_preset"),
        "engine": ckpt.get("engine", "torchvision"),
        "arch": ckpt.get("arch"),
        "iterations": ckpt.get("iteration"),
        "minutes": round(float(ckpt.get("elapsed_s", 0.0)) / 60.0, 2),
        "weights": weights.get("source", weights.get("message")),
    }


def inspection_model(run):
    """A torchvision model for the chapter's views of the model's internals, and a note.

    A torchvision run: its trained model (``load_checkpoint``), note ``""``. Another engine's
    run (detectron2): a torchvision model of the same configuration (the same layers,
    ``detectron2_engine.parameter_difference`` aside) with *random* weights, and a note saying
    so: its anchors are the run's, its feature maps and proposals are not trained.

    Returns
    -------
    (torch.nn.Module, str)
    """
    from nanowire_utils.maskrcnn.config import TrainConfig
    from nanowire_utils.maskrcnn.engine import checkpoint_engine, read_checkpoint
    from nanowire_utils.maskrcnn.model import build_model, load_checkpoint

    found = checkpoint_engine(read_checkpoint(run), run)
    if found == "torchvision":
        return load_checkpoint(run)[0], ""
    model = build_model(TrainConfig.from_json(run)).eval()
    note = (
        f"this run was trained by the {found} engine; the views below read torchvision's model, so they show "
        "a torchvision model of the same configuration with random weights: the anchors are the run's, "
        "the feature maps, proposals and masks are not trained"
    )
    return model, note
