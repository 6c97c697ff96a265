"""The built-in engine: torchvision's Mask R-CNN, trained and run on CPU or GPU.

:func:`train` is the paper's recipe (section 2.3): SGD with momentum and weight decay, a
linear warmup and a step schedule, random brightness/contrast 0.7-1.2 and flips p = 0.5, plus
the optional random crop of the CPU presets. It builds the model (:mod:`.model`), the data
stream (:mod:`.loading`) and the optimizer, and runs them in the hook-based loop of
:mod:`.trainer`. It writes the run folder of :mod:`.engine`, resumes from it bit-exactly,
runs on CPU or CUDA (mixed precision on CUDA with ``SOLVER.AMP.ENABLED``; bfloat16 autocast on
CPU with ``SOLVER.AMP.CPU_BF16``), and on several GPUs or processes under ``torchrun``
(DistributedDataParallel; NCCL on CUDA, gloo on CPU; only rank 0 writes).

Use it through :func:`nanowire_utils.maskrcnn.engine.train` and
:func:`nanowire_utils.maskrcnn.engine.load_predictor`, which dispatch here for
``ENGINE="torchvision"``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from nanowire_utils.instances import Instances
from nanowire_utils.maskrcnn.config import TrainConfig, apply_epochs
from nanowire_utils.maskrcnn.engine import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    FINAL_CHECKPOINT,
    LAST_CHECKPOINT,
    METRICS_FILE,
    Predictor,
    TrainResult,
    checkpoint_engine,
    count_images,
    find_resume,
    read_checkpoint,
    train_image_size,
)
from nanowire_utils.maskrcnn.loading import PositionSampler, SampleStream, load_split, make_loader
from nanowire_utils.maskrcnn.model import ARCH_KEYS, arch_string, build_model, load_state_checked
from nanowire_utils.maskrcnn.trainer import (
    Barrier,
    DistInfo,
    LRSchedule,
    MetricsWriter,
    PeriodicCheckpointer,
    PeriodicEvaluator,
    TimeCap,
    Trainer,
    WarmupSchedule,
    append_jsonl,
    atomic_torch_save,
    rng_state,
    seed_all,
    set_rng_state,
    setup_distributed,
)

log = logging.getLogger(__name__)

#: The losses torchvision's Mask R-CNN returns in training mode (plus their sum, "loss").
LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


def available() -> tuple[bool, str]:
    """The built-in engine runs wherever torch and torchvision import."""
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # a broken torch install raises more than ImportError
        return False, f"torchvision cannot be imported ({type(err).__name__}: {err}); pip install torch torchvision"
    return True, ""


def _device_for(cfg: TrainConfig, dist: DistInfo):
    import torch

    want = cfg["DEVICE"]
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("DEVICE='cuda' but CUDA is not available; use DEVICE=cpu or auto")
        return torch.device("cuda", dist.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def train(
    cfg: TrainConfig,
    data_dir,
    out_dir,
    resume: bool = True,
    progress: bool = True,
    stop_at_minutes: float | None = None,
) -> TrainResult:
    """Train torchvision's Mask R-CNN on ``data_dir``'s train split into ``out_dir``.

    Call it through :func:`nanowire_utils.maskrcnn.engine.train`.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration. ``SOLVER.EPOCHS``, when set, becomes MAX_ITER for this dataset
        (logged); ``SOLVER.MAX_MINUTES`` > 0 ends training cleanly, with a final checkpoint,
        after that many minutes of training.
    data_dir : path
        A synthetic dataset folder (train split required; val split used for periodic AP
        when present).
    out_dir : path
        The run folder. When it already holds a checkpoint, training resumes from it
        (model, optimizer, schedule, iteration, RNG states) with ``resume=True`` and is an
        error with ``resume=False``. Raising ``SOLVER.MAX_ITER`` and resuming continues a
        finished run.
    progress : bool
        Show a tqdm bar with loss, LR and ETA.
    stop_at_minutes : float or None
        Pause (final checkpoint, resumable) once the run's training time reaches this many
        minutes, without changing the schedule: for snapshots along one run.

    Returns
    -------
    TrainResult
    """
    import torch

    cfg = (cfg.copy() if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).validate()
    device_type = (
        "cuda" if (cfg["DEVICE"] == "cuda" or (cfg["DEVICE"] == "auto" and torch.cuda.is_available())) else "cpu"
    )
    dist = setup_distributed(device_type)
    try:
        return _train(cfg, Path(data_dir), Path(out_dir), resume, progress, dist, stop_at_minutes)
    finally:
        if dist.initialized_here:
            import torch.distributed

            torch.distributed.destroy_process_group()


def _resume_checkpoint(cfg: TrainConfig, out_dir: Path, resume: bool, dist: DistInfo):
    """``(checkpoint dict or None, its path, cfg with the checkpoint's weight settings)``."""
    ckpt_path = find_resume(out_dir)
    if ckpt_path is None:
        return None, None, cfg
    if not resume:
        raise FileExistsError(
            f"{out_dir} already holds a run ({ckpt_path.name}); resume it, or choose another output folder"
        )
    ckpt = read_checkpoint(ckpt_path)
    found = checkpoint_engine(ckpt, ckpt_path)
    if found != "torchvision":
        raise ValueError(
            f"{out_dir} holds a run of the {found} engine ({ckpt_path.name}), which the torchvision engine cannot "
            f"resume; continue it with ENGINE={found!r} (--engine {found}) or choose another output folder"
        )
    old = TrainConfig.from_dict(ckpt["config"])
    arch_diff = {k: (old[k], cfg[k]) for k in ARCH_KEYS if old[k] != cfg[k]}
    if arch_diff:
        raise ValueError(
            f"cannot resume {ckpt_path}: the configuration changes the architecture "
            + ", ".join(f"{k} ({a!r} -> {b!r})" for k, (a, b) in arch_diff.items())
            + "; use another output folder"
        )
    # the checkpoint knows how the weights were resolved; keep its scratch-safe settings
    cfg = cfg.replace(**{k: old[k] for k in ("MODEL.WEIGHTS", "MODEL.BACKBONE.FREEZE_AT")})
    changed = cfg.diff(old)
    if changed and dist.main:
        log.info("resuming with changed settings: %s", changed)
    return ckpt, ckpt_path, cfg


def _optimizer(model, cfg: TrainConfig):
    """SGD (or AdamW, ``SOLVER.OPTIMIZER``) with detectron2's parameter groups: normalisation
    parameters get WEIGHT_DECAY_NORM."""
    import torch

    norm_types = (torch.nn.GroupNorm, torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm, torch.nn.LayerNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) not in norm_params], "weight_decay": cfg["SOLVER.WEIGHT_DECAY"]},
        {"params": [p for p in params if id(p) in norm_params], "weight_decay": cfg["SOLVER.WEIGHT_DECAY_NORM"]},
    ]
    groups = [g for g in groups if g["params"]]
    if cfg["SOLVER.OPTIMIZER"] == "AdamW":
        optimizer = torch.optim.AdamW(groups, lr=cfg["SOLVER.BASE_LR"])
    else:
        optimizer = torch.optim.SGD(
            groups, lr=cfg["SOLVER.BASE_LR"], momentum=cfg["SOLVER.MOMENTUM"], nesterov=cfg["SOLVER.NESTEROV"]
        )
    return optimizer, params


def _train(cfg, data_dir: Path, out_dir: Path, resume: bool, progress: bool, D: DistInfo, stop_at_minutes=None):
    import torch

    from nanowire_utils.maskrcnn.evaluate import evaluate_split
    from nanowire_utils.maskrcnn.weights import load_initial_weights, resolve_weights

    device = _device_for(cfg, D)
    if device.type == "cuda":
        torch.cuda.set_device(device)

    # ---- data
    _, records = load_split(data_dir, "train", require_annotations=cfg["DATALOADER.FILTER_EMPTY_ANNOTATIONS"])
    try:
        _, val_records = load_split(data_dir, "val")
    except FileNotFoundError:
        val_records = []
        log.warning("no val split in %s: periodic validation AP is skipped", data_dir)
    cfg, epochs_text = apply_epochs(cfg, len(records))
    if epochs_text:
        log.info("SOLVER.EPOCHS: %s", epochs_text)
    per_rank = cfg.per_process_batch(D.world)

    # ---- resume or start
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt, ckpt_path, cfg = _resume_checkpoint(cfg, out_dir, resume, D)
    if ckpt is not None:
        weights_info = dict(ckpt.get("weights", {}), resumed=str(ckpt_path))
    else:
        # rank 0 resolves (and may download) first; the others then find the cached file
        if D.main:
            cfg, weights_info = resolve_weights(cfg)
        D.barrier()
        if not D.main:
            cfg, weights_info = resolve_weights(cfg, allow_download=False)

    seed_all(cfg["SEED"] + D.rank)
    model = build_model(cfg).to(device)
    if ckpt is not None:
        load_state_checked(model, ckpt["model"], cfg, ckpt["config"], source=f"checkpoint {ckpt_path}")
    else:
        weights_info = load_initial_weights(model, weights_info)
    if D.world > 1 and cfg["MODEL.RESNETS.NORM"] == "SyncBN":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.train()

    optimizer, params = _optimizer(model, cfg)
    budget_s = cfg["SOLVER.MAX_MINUTES"] * 60.0
    sched = WarmupSchedule(optimizer, cfg, budget_s)
    use_amp = device.type == "cuda" and cfg["SOLVER.AMP.ENABLED"]
    use_bf16 = device.type == "cpu" and cfg["SOLVER.AMP.CPU_BF16"]
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_iter, elapsed_before = 0, 0.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        for g in optimizer.param_groups:
            g["initial_lr"] = cfg["SOLVER.BASE_LR"]
        sched.load_state_dict(ckpt.get("scheduler", {}))
        if use_amp and "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        start_iter = int(ckpt["iteration"])
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))

    ddp_model = model
    if D.world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )

    max_iter = cfg["SOLVER.MAX_ITER"]
    metrics_path = out_dir / METRICS_FILE
    (out_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
    ignored = cfg.ignored_by_torchvision()
    counts = count_images(data_dir)
    provenance = {
        "_engine": "torchvision",
        "_arch": arch_string(cfg),
        "_weights": weights_info,
        "_epochs": epochs_text,
        "_world_size": D.world,
        "_device": str(device),
        "_ignored_by_torchvision": ignored,
        "_data": {
            "data_dir": str(data_dir),
            "n_train": len(records),
            "n_val": len(val_records),
            "n_images": counts["all"],
        },
        "_iterations_done": start_iter,
    }
    if ignored and D.main:
        log.warning("the torchvision engine ignores these settings: %s", ignored)
    if D.main:
        cfg.to_json(out_dir / CONFIG_FILE, extra=provenance)
        # the same configuration in detectron2's format, for its own tools (pure Python, no detectron2 needed)
        from nanowire_utils.maskrcnn.detectron2_config import YAML_FILE, write_detectron2_yaml

        write_detectron2_yaml(cfg, out_dir / YAML_FILE, device=device.type, engine="torchvision")
        log.info(
            "%s %s at iteration %d of %d on %s x%d (%s)",
            "resuming" if ckpt else "training",
            arch_string(cfg),
            start_iter,
            max_iter,
            device,
            D.world,
            weights_info.get("message", ""),
        )

    def save(iteration: int, elapsed: float, final: bool = False):
        if not D.main:
            return None
        obj = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": sched.state_dict(),
            "iteration": iteration,
            "config": cfg.to_dict(),
            "engine": "torchvision",
            "arch": arch_string(cfg),
            "rng": {str(D.rank): rng_state()},
            "elapsed_s": elapsed,
            "weights": weights_info,
        }
        if use_amp:
            obj["scaler"] = scaler.state_dict()
        rel = FINAL_CHECKPOINT if final else f"{CHECKPOINT_DIR}/model_{iteration:07d}.pth"
        atomic_torch_save(obj, out_dir / rel)
        (out_dir / LAST_CHECKPOINT).write_text(rel + "\n")
        provenance["_iterations_done"] = iteration
        cfg.to_json(out_dir / CONFIG_FILE, extra=provenance)
        return out_dir / rel

    def validate(iteration: int):
        if not D.main or not val_records:
            return None
        t = time.perf_counter()
        m = evaluate_split(
            model, data_dir, "val", max_images=cfg["TEST.MAX_EVAL_IMAGES"], progress=False, device=device
        )
        rec = {"kind": "eval", "iteration": iteration, "split": "val", "n_images": m["n_images"]}
        rec["eval_s"] = time.perf_counter() - t
        rec.update({f"{task}/{k}": v for task in ("bbox", "segm") for k, v in m[task].items()})
        append_jsonl(metrics_path, rec)
        log.info("iteration %d: val AP bbox %.1f, segm %.1f", iteration, m["bbox"]["AP"], m["segm"]["AP"])
        model.train()
        return m

    mask_weight = cfg["MODEL.ROI_MASK_HEAD.LOSS_WEIGHT"]

    def step(batch, it: int) -> dict:
        images, targets = batch
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        if use_amp:
            ctx = torch.autocast("cuda", dtype=torch.float16)
        else:
            ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16)
        with ctx:
            losses = ddp_model(images, targets)
            if mask_weight != 1.0:
                losses["loss_mask"] = losses["loss_mask"] * mask_weight
            loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at iteration {it} (lr {trainer.lr:.3g}); "
                "lower SOLVER.BASE_LR or enable SOLVER.CLIP_GRADIENTS.ENABLED"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["SOLVER.CLIP_GRADIENTS.ENABLED"]:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, cfg["SOLVER.CLIP_GRADIENTS.CLIP_VALUE"])
        scaler.step(optimizer)
        scaler.update()
        return {k: float(v.detach()) for k, v in losses.items()} | {"loss": float(loss.detach())}

    def reduce_mean(mean: dict) -> dict:
        if D.world == 1:
            return mean
        t = torch.tensor([mean[k] for k in sorted(mean)], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / D.world for k, v in zip(sorted(mean), t.tolist())}

    def clock(seconds: float) -> float:
        if D.world > 1 and budget_s > 0:  # every rank follows rank 0's clock
            t = torch.tensor([seconds], dtype=torch.float64, device=device)
            torch.distributed.broadcast(t, 0)
            return float(t.item())
        return seconds

    # ---- loop
    stream = SampleStream(records, cfg, cfg["SEED"])
    loader = make_loader(
        stream, PositionSampler(start_iter, max_iter, per_rank, D.rank, D.world), cfg["DATALOADER.NUM_WORKERS"]
    )
    batches = iter(loader)  # creating the iterator draws from torch's RNG: do it before restoring it
    if ckpt is not None:
        set_rng_state(ckpt.get("rng", {}).get(str(D.rank), {}))
    start_record = {
        "kind": "info",
        "iteration": start_iter,
        "event": "resume" if ckpt else "start",
        "weights": weights_info,
        "epochs": epochs_text,
        "ignored_by_torchvision": ignored,
        "world_size": D.world,
        "device": str(device),
        "time": time.time(),
    }
    writer = MetricsWriter(
        metrics_path,
        period=max(1, min(20, max_iter // 50 or 1)),
        reduce=reduce_mean,
        write=D.main,
        progress=progress,
        start_record=start_record,
    )
    checkpointer = PeriodicCheckpointer(save, cfg["SOLVER.CHECKPOINT_PERIOD"])
    evaluator = PeriodicEvaluator(validate, cfg["TEST.EVAL_PERIOD"], at_end=bool(val_records))
    pause_s = None if stop_at_minutes is None else stop_at_minutes * 60.0
    hooks = [TimeCap(budget_s, pause_s), LRSchedule(sched), writer, checkpointer, evaluator, Barrier(D)]
    trainer = Trainer(step, batches, start_iter, max_iter, hooks, elapsed_before_s=elapsed_before, clock=clock)
    stopped_by = trainer.train()
    elapsed = trainer.elapsed()
    if trainer.iter == start_iter and ckpt is not None and trainer.iter >= max_iter:
        log.info("nothing to do: %s is already at iteration %d of %d", out_dir, trainer.iter, max_iter)
    if stopped_by == "time budget" and D.main:
        log.info("time budget of %.1f min reached at iteration %d of %d", budget_s / 60, trainer.iter, max_iter)
    writer.end(elapsed)
    D.barrier()
    return TrainResult(
        run_dir=str(out_dir),
        iterations=trainer.iter,
        final_checkpoint=str(checkpointer.final_path or out_dir / FINAL_CHECKPOINT),
        stopped_by=stopped_by,
        elapsed_s=elapsed,
        weights=weights_info,
        val_metrics=evaluator.last,
        resumed_from=start_iter if ckpt is not None else 0,
    )


# --------------------------------------------------------------------------- inference


class TorchvisionPredictor(Predictor):
    """Predictor for the torchvision Mask R-CNN of :mod:`nanowire_utils.maskrcnn.model`."""

    engine = "torchvision"

    def predict_gray(self, gray: np.ndarray) -> Instances:
        import torch

        from nanowire_utils.maskrcnn.model import outputs_to_instances

        h, w = gray.shape
        x = torch.from_numpy(np.ascontiguousarray(gray, np.float32)).to(self.device)
        x = x.unsqueeze(0).expand(3, h, w)
        transform = self.model.transform
        # Resize by the model's fixed input scale (1: the image's own pixel size), not to
        # INPUT.MIN/MAX_SIZE_TEST: that would resize each image by its own size and change the
        # wire widths (in pixels) the model sees. Outputs come back at (h, w).
        f = self.input_scale
        own = ((max(1, round(min(h, w) * f)),), max(1, round(max(h, w) * f)))
        sizes = getattr(transform, "sizes", None)
        saved = (sizes[False] if sizes is not None else None, transform.min_size, transform.max_size)
        if sizes is not None:
            sizes[False] = own
        transform.min_size, transform.max_size = own
        try:
            with torch.inference_mode():
                out = self.model([x])[0]
        finally:
            if sizes is not None:
                sizes[False] = saved[0]
            transform.min_size, transform.max_size = saved[1], saved[2]
        out = {k: v.detach().cpu() for k, v in out.items()}
        return outputs_to_instances(out, self.score_thresh, self.mask_thresh)


def load_predictor(ckpt_path, ckpt: dict, device: str = "cpu", score_thresh=None, mask_thresh: float = 0.5):
    """A :class:`TorchvisionPredictor` for a checkpoint already read (use
    :func:`nanowire_utils.maskrcnn.engine.load_predictor`, which dispatches here)."""
    if ckpt.get("config") is None:
        raise ValueError(f"checkpoint {ckpt_path} holds no 'config'; it was not written by nanowire-utils train")
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    load_state_checked(model, ckpt["model"], cfg, ckpt["config"], source=f"checkpoint {ckpt_path}")
    model.eval().to(device)
    if score_thresh is None:
        score_thresh = cfg["MODEL.ROI_HEADS.SCORE_THRESH_TEST"]
    return TorchvisionPredictor(
        model,
        cfg,
        device=device,
        score_thresh=score_thresh,
        mask_thresh=mask_thresh,
        train_size=train_image_size(cfg),
        source=ckpt_path,
        iteration=ckpt.get("iteration"),
    )
