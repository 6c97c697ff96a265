"""Training Mask R-CNN on a synthetic split (torchvision engine), evaluation, curves, Table 1 rows.

:func:`train` is the paper's recipe (section 2.3): SGD with momentum and weight decay, a
linear warmup and a step schedule, random brightness/contrast 0.7-1.2 and flips p = 0.5,
plus the optional random crop of the CPU preset. It writes the run directory described in
:mod:`nanowire_utils.maskrcnn.model` (config.json, checkpoints, last_checkpoint, metrics.jsonl),
resumes from it, runs on CPU or CUDA (mixed precision on CUDA), and on several GPUs or
processes under ``torchrun`` (DistributedDataParallel; NCCL on CUDA, gloo on CPU; only
rank 0 writes).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nanowire_utils.coco import instances_to_coco_results
from nanowire_utils.maskrcnn.config import TrainConfig, apply_epochs, iterations_to_epochs
from nanowire_utils.maskrcnn.loading import (
    PositionSampler,
    SampleStream,
    load_split,
    make_loader,
    read_image,
    to_tensor_image,
)
from nanowire_utils.maskrcnn.model import (
    ARCH_KEYS,
    arch_string,
    build_model,
    load_state_checked,
    outputs_to_instances,
    read_checkpoint,
)

log = logging.getLogger(__name__)

LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


# --------------------------------------------------------------------------- schedule
class WarmupStepSchedule:
    """detectron2's WarmupMultiStepLR, with an optional wall-clock budget.

    The LR is ``BASE_LR x warmup(it) x GAMMA ** n``, ``n`` the number of steps passed. A
    step ``s`` counts as passed at iteration ``s``, or, with a budget of ``budget_s``
    seconds, once the elapsed time reaches ``s / MAX_ITER`` of the budget, whichever comes
    first: a run cut short by its budget still gets its low-LR phase.
    """

    def __init__(self, optimizer, cfg: TrainConfig, budget_s: float = 0.0):
        self.optimizer = optimizer
        self.base_lr = cfg["SOLVER.BASE_LR"]
        self.steps = list(cfg["SOLVER.STEPS"])
        self.gamma = cfg["SOLVER.GAMMA"]
        self.warmup_iters = cfg["SOLVER.WARMUP_ITERS"]
        self.warmup_factor = cfg["SOLVER.WARMUP_FACTOR"]
        self.warmup_method = cfg["SOLVER.WARMUP_METHOD"]
        self.max_iter = cfg["SOLVER.MAX_ITER"]
        self.budget_s = float(budget_s)
        self.passed = 0
        self.last_factor = 1.0
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", self.base_lr * g.get("lr_factor", 1.0))

    def factor(self, iteration: int, elapsed_s: float = 0.0) -> float:
        w = 1.0
        if iteration < self.warmup_iters:
            if self.warmup_method == "linear":
                a = iteration / self.warmup_iters
                w = self.warmup_factor * (1 - a) + a
            else:
                w = self.warmup_factor
        passed = sum(iteration >= s for s in self.steps)
        if self.budget_s > 0:
            frac = elapsed_s / self.budget_s
            passed = max(passed, sum(frac >= s / self.max_iter for s in self.steps))
        self.passed = max(self.passed, passed)  # never go back up
        return w * self.gamma**self.passed

    def step(self, iteration: int, elapsed_s: float = 0.0) -> float:
        """Set the optimizer's LR for ``iteration``; returns the LR."""
        f = self.factor(iteration, elapsed_s)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f
        self.last_factor = f
        return self.base_lr * f

    def state_dict(self) -> dict:
        return {"passed": self.passed, "last_factor": self.last_factor, "steps": self.steps, "budget_s": self.budget_s}

    def load_state_dict(self, state: dict):
        # steps may have changed (e.g. a longer continuation); only what was passed carries over
        self.passed = int(state.get("passed", 0)) if list(state.get("steps", self.steps)) == self.steps else 0


# --------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_type: str) -> _Dist:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
        here = True
    return _Dist(rank, world, local, here)


def _resolve_device(cfg: TrainConfig, d: _Dist):
    import torch

    want = cfg["DEVICE"]
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("DEVICE='cuda' but CUDA is not available; use DEVICE=cpu or auto")
        return torch.device("cuda", d.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


# --------------------------------------------------------------------------- RNG / IO helpers
def _rng_state() -> dict:
    import torch

    st = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2]}
    npst = np.random.get_state()
    st["numpy"] = {"keys": torch.from_numpy(npst[1].astype(np.int64)), "pos": int(npst[2])}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict):
    import torch

    if not st:
        return
    torch.set_rng_state(st["torch"])
    random.setstate((3, tuple(st["python"]), st["python_pos"]))
    np.random.set_state(("MT19937", st["numpy"]["keys"].numpy().astype(np.uint32), st["numpy"]["pos"], 0, 0.0))
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


def _seed_all(seed: int):
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _atomic_save(obj, path: Path):
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _append_jsonl(path: Path, rec: dict):
    with open(path, "a") as f:
        f.write(json.dumps(rec, default=float) + "\n")


def read_metrics(run_dir) -> list[dict]:
    """The records of ``RUN_DIR/metrics.jsonl`` (``kind``: ``train``, ``eval`` or ``info``)."""
    p = Path(run_dir) / "metrics.jsonl"
    if not p.exists():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}; train first (nanowire-utils train --out {run_dir})")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- prediction / evaluation
def _predict_batches(model, images: list[np.ndarray], device, batch_size: int = 2):
    import torch

    outs = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            batch = [to_tensor_image(im).to(device) for im in images[i : i + batch_size]]
            outs.extend({k: v.cpu() for k, v in o.items()} for o in model(batch))
    return outs


def _subset_gt(coco: dict, image_ids) -> dict:
    ids = set(image_ids)
    return {
        "images": [im for im in coco["images"] if im["id"] in ids],
        "annotations": [a for a in coco["annotations"] if a["image_id"] in ids],
        "categories": coco.get("categories") or [{"id": 1, "name": "nanowire"}],
    }


def evaluate_split(
    predictor, data_dir, split: str = "test", max_images: int = 0, progress: bool = True, device=None
) -> dict:
    """COCO AP (bbox and segm, percent) of a model on one split of a synthetic dataset.

    Parameters
    ----------
    predictor:
        A torchvision detection model (``nn.Module``), a run directory or checkpoint path
        (loaded with :func:`~nanowire_utils.maskrcnn.model.load_checkpoint`), or a function
        ``image (H, W) float in [0, 1] -> Instances`` (e.g. an inference Predictor).
    data_dir, split:
        The dataset folder and split (``train``, ``val``, ``test``).
    max_images:
        Evaluate the first N images only (0: all).

    Returns
    -------
    dict
        ``{"bbox": {"AP", "AP50", ...}, "segm": {...}, "n_images": n, "split": split,
        "seconds_per_image": s}``.
    """
    from tqdm.auto import tqdm

    from nanowire_utils.real.evaluation import coco_metrics

    coco, records = load_split(data_dir, split)
    if max_images:
        records = records[:max_images]
    if isinstance(predictor, (str, os.PathLike)):
        from nanowire_utils.maskrcnn.model import load_checkpoint

        predictor, _ = load_checkpoint(predictor)
    results = []
    t0 = time.perf_counter()
    if callable(predictor) and not hasattr(predictor, "state_dict"):
        for rec in tqdm(records, desc=f"evaluate {split}", disable=not progress, leave=False):
            inst = predictor(read_image(rec.path))
            results += instances_to_coco_results(inst, rec.image_id)
    else:
        import torch

        model = predictor.module if hasattr(predictor, "module") else predictor
        dev = device or next(model.parameters()).device
        was_training = model.training
        score = float(model.roi_heads.score_thresh)
        for i in tqdm(range(0, len(records), 2), desc=f"evaluate {split}", disable=not progress, leave=False):
            chunk = records[i : i + 2]
            outs = _predict_batches(model, [read_image(r.path) for r in chunk], torch.device(dev))
            for rec, out in zip(chunk, outs):
                results += instances_to_coco_results(outputs_to_instances(out, score_thresh=score), rec.image_id)
        model.train(was_training)
    dt = (time.perf_counter() - t0) / max(1, len(records))
    metrics = coco_metrics(_subset_gt(coco, [r.image_id for r in records]), results, ("bbox", "segm"))
    metrics.update(n_images=len(records), split=split, seconds_per_image=dt)
    return metrics


def table1_row(metrics: dict, cfg, n_images: int | None = None) -> dict:
    """One row laid out like the paper's Table 1.

    ``cfg`` is a :class:`TrainConfig` or a run directory (its config.json). ``n_images`` is
    the data set size (default: the training images recorded in config.json, else
    ``DATASET.N_IMAGES``). Epochs are computed from the iterations actually run when the
    run directory records them.
    """
    extra = {}
    if isinstance(cfg, (str, os.PathLike)):
        cfg = TrainConfig.from_json(Path(cfg) / "config.json")
    extra = getattr(cfg, "extra", {}) or {}
    data = extra.get("_data", {})
    n_train = data.get("n_train") or cfg["DATASET.N_IMAGES"]
    n = n_images or data.get("n_images") or cfg["DATASET.N_IMAGES"]
    iters = extra.get("_iterations_done") or cfg["SOLVER.MAX_ITER"]
    epochs = iterations_to_epochs(iters, n_train, cfg["SOLVER.IMS_PER_BATCH"])
    return {
        "Epochs": round(epochs, 1),
        "Dataset size": n,
        "Learning rate": cfg["SOLVER.BASE_LR"],
        "ROI head": cfg["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE"],
        "IoU thr": cfg["MODEL.RPN.IOU_THRESHOLDS"][1],
        "NMS": cfg["MODEL.RPN.NMS_THRESH"],
        "AP bbox": round(metrics["bbox"]["AP"], 3),
        "AP segm": round(metrics["segm"]["AP"], 3),
    }


# --------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What :func:`train` did."""

    run_dir: str
    iterations: int
    final_checkpoint: str
    stopped_by: str  # "max_iter", "time budget" or "stop_at_minutes"
    elapsed_s: float
    weights: dict = field(default_factory=dict)
    val_metrics: dict | None = None
    resumed_from: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _resolve_engine(cfg: TrainConfig) -> str:
    engine = cfg["ENGINE"]
    if engine == "torchvision":
        return engine
    d2 = None
    try:
        import importlib

        d2 = importlib.import_module("nanowire_utils.maskrcnn.detectron2_engine")
    except Exception:  # the optional engine module itself may be absent or fail to import
        d2 = None
    d2_ok = False
    if d2 is not None and hasattr(d2, "train"):
        try:
            import detectron2  # noqa: F401
            import torch

            d2_ok = torch.cuda.is_available() or engine == "detectron2"
        except ImportError:
            d2_ok = False
    if engine == "detectron2" and not d2_ok:
        raise ValueError(
            "ENGINE='detectron2' needs detectron2 installed (see the GPU set-up page) and "
            "nanowire_utils.maskrcnn.detectron2_engine.train; use ENGINE=torchvision"
        )
    return "detectron2" if d2_ok else "torchvision"


def _count_images(data_dir: Path) -> int:
    """Images over all splits (the paper's 'dataset size')."""
    n = 0
    for split in ("train", "val", "test"):
        p = data_dir / "annotations" / f"instances_{split}.json"
        if p.exists():
            n += len(json.loads(p.read_text()).get("images", []))
    return n


def _find_resume(out_dir: Path):
    from nanowire_utils.maskrcnn.model import resolve_checkpoint_path

    try:
        return resolve_checkpoint_path(out_dir)
    except FileNotFoundError:
        return None


def train(
    cfg: TrainConfig,
    data_dir,
    out_dir,
    resume: bool = True,
    progress: bool = True,
    stop_at_minutes: float | None = None,
) -> TrainResult:
    """Train Mask R-CNN on ``data_dir``'s train split; write the run to ``out_dir``.

    Parameters
    ----------
    cfg:
        The configuration (e.g. ``TrainConfig.from_preset("cpu")``). ``SOLVER.EPOCHS``, when
        set, becomes MAX_ITER for this dataset (logged); ``SOLVER.MAX_MINUTES`` > 0 ends
        training cleanly, with a final checkpoint, after that many minutes.
    data_dir:
        A synthetic dataset folder (train split required; val split used for periodic AP
        when present).
    out_dir:
        The run directory. When it already holds a checkpoint, training resumes from it
        (model, optimizer, schedule, iteration, RNG states) with ``resume=True`` and is an
        error with ``resume=False``. Raising ``SOLVER.MAX_ITER`` and resuming continues a
        finished run.
    progress:
        Show a tqdm bar with loss, LR and ETA.
    stop_at_minutes:
        Pause (final checkpoint, resumable) once the run's training time reaches this many
        minutes, without changing the schedule, which follows ``SOLVER.MAX_MINUTES``: for
        snapshots along one budgeted run (AP vs minutes).

    Returns
    -------
    TrainResult
    """
    import torch

    cfg = (cfg.copy() if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).validate()
    engine = _resolve_engine(cfg)
    if engine == "detectron2":
        from nanowire_utils.maskrcnn import detectron2_engine

        return detectron2_engine.train(cfg, data_dir, out_dir, resume=resume, progress=progress)

    device_type = (
        "cuda" if (cfg["DEVICE"] == "cuda" or (cfg["DEVICE"] == "auto" and torch.cuda.is_available())) else "cpu"
    )
    dist_info = _setup_distributed(device_type)
    try:
        return _train(cfg, Path(data_dir), Path(out_dir), resume, progress, dist_info, stop_at_minutes)
    finally:
        if dist_info.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(
    cfg, data_dir: Path, out_dir: Path, resume: bool, progress: bool, D: _Dist, stop_at_minutes=None
) -> TrainResult:
    import torch
    from tqdm.auto import tqdm

    from nanowire_utils.maskrcnn.weights import load_initial_weights, resolve_weights

    device = _resolve_device(cfg, D)
    if device.type == "cuda":
        torch.cuda.set_device(device)

    # ---- data
    coco_train, records = load_split(data_dir, "train", require_annotations=cfg["DATALOADER.FILTER_EMPTY_ANNOTATIONS"])
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
    ckpt_path = _find_resume(out_dir)
    ckpt = None
    if ckpt_path is not None:
        if not resume:
            raise FileExistsError(
                f"{out_dir} already holds a run ({ckpt_path.name}); resume it, or choose another output folder"
            )
        ckpt = read_checkpoint(ckpt_path)
        old = TrainConfig.from_dict(ckpt["config"])
        arch_diff = {k: (old[k], cfg[k]) for k in ARCH_KEYS if old[k] != cfg[k]}
        if arch_diff:
            raise ValueError(
                f"cannot resume {ckpt_path}: the configuration changes the architecture "
                + ", ".join(f"{k} ({a!r} -> {b!r})" for k, (a, b) in arch_diff.items())
                + "; use another output folder"
            )
        # the checkpoint knows how the weights were resolved; keep its scratch-safe norm etc.
        for k in ("MODEL.WEIGHTS", "MODEL.BACKBONE.FREEZE_AT"):
            cfg._values[k] = old[k]
        changed = {k: v for k, v in cfg.diff(old).items()}
        if changed and D.main:
            log.info("resuming with changed settings: %s", changed)
        weights_info = dict(ckpt.get("weights", {}), resumed=str(ckpt_path))
    else:
        # rank 0 resolves (and may download) first; the others then find the cached file
        if D.main:
            cfg, weights_info = resolve_weights(cfg)
        if D.world > 1:
            torch.distributed.barrier()
        if not D.main:
            cfg, weights_info = resolve_weights(cfg, allow_download=False)

    _seed_all(cfg["SEED"] + D.rank)
    model = build_model(cfg).to(device)
    if ckpt is not None:
        load_state_checked(model, ckpt["model"], cfg, ckpt["config"], source=f"checkpoint {ckpt_path}")
    else:
        weights_info = load_initial_weights(model, weights_info)
    if D.world > 1 and cfg["MODEL.RESNETS.NORM"] == "SyncBN":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.train()

    # ---- optimizer: normalisation parameters get their own weight decay (detectron2's WEIGHT_DECAY_NORM)
    norm_types = (torch.nn.GroupNorm, torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm, torch.nn.LayerNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) not in norm_params], "weight_decay": cfg["SOLVER.WEIGHT_DECAY"]},
        {"params": [p for p in params if id(p) in norm_params], "weight_decay": cfg["SOLVER.WEIGHT_DECAY_NORM"]},
    ]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.SGD(
        groups, lr=cfg["SOLVER.BASE_LR"], momentum=cfg["SOLVER.MOMENTUM"], nesterov=cfg["SOLVER.NESTEROV"]
    )
    budget_s = cfg["SOLVER.MAX_MINUTES"] * 60.0
    sched = WarmupStepSchedule(optimizer, cfg, budget_s)
    use_amp = device.type == "cuda" and cfg["SOLVER.AMP.ENABLED"]
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
    metrics_path = out_dir / "metrics.jsonl"
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    ignored = cfg.ignored_by_torchvision()
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
            "n_images": _count_images(data_dir),
        },
        "_iterations_done": start_iter,
    }
    if ignored and D.main:
        log.warning("the torchvision engine ignores these settings: %s", ignored)
    if D.main:
        cfg.to_json(out_dir / "config.json", extra=provenance)
        _append_jsonl(
            metrics_path,
            {
                "kind": "info",
                "iteration": start_iter,
                "event": "resume" if ckpt else "start",
                "weights": weights_info,
                "epochs": epochs_text,
                "ignored_by_torchvision": ignored,
                "world_size": D.world,
                "device": str(device),
                "time": time.time(),
            },
        )
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
        rng_all = {str(D.rank): _rng_state()}
        obj = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": sched.state_dict(),
            "iteration": iteration,
            "config": cfg.to_dict(),
            "engine": "torchvision",
            "arch": arch_string(cfg),
            "rng": rng_all,
            "elapsed_s": elapsed,
            "weights": weights_info,
        }
        if use_amp:
            obj["scaler"] = scaler.state_dict()
        rel = "model_final.pth" if final else f"checkpoints/model_{iteration:07d}.pth"
        _atomic_save(obj, out_dir / rel)
        (out_dir / "last_checkpoint").write_text(rel + "\n")
        provenance["_iterations_done"] = iteration
        cfg.to_json(out_dir / "config.json", extra=provenance)
        return out_dir / rel

    def validate(iteration: int):
        if not D.main or not val_records:
            return None
        t = time.perf_counter()
        m = evaluate_split(
            model, data_dir, "val", max_images=cfg["TEST.MAX_EVAL_IMAGES"], progress=False, device=device
        )
        rec = {
            "kind": "eval",
            "iteration": iteration,
            "split": "val",
            "n_images": m["n_images"],
            "eval_s": time.perf_counter() - t,
        }
        for t_ in ("bbox", "segm"):
            for k, v in m[t_].items():
                rec[f"{t_}/{k}"] = v
        _append_jsonl(metrics_path, rec)
        log.info("iteration %d: val AP bbox %.1f, segm %.1f", iteration, m["bbox"]["AP"], m["segm"]["AP"])
        model.train()
        return m

    # ---- loop
    stream = SampleStream(records, cfg, cfg["SEED"])
    loader = make_loader(
        stream, PositionSampler(start_iter, max_iter, per_rank, D.rank, D.world), cfg["DATALOADER.NUM_WORKERS"]
    )
    log_period = max(1, min(20, max_iter // 50 or 1))
    ckpt_period = cfg["SOLVER.CHECKPOINT_PERIOD"]
    eval_period = cfg["TEST.EVAL_PERIOD"]
    batches = iter(loader)  # creating the iterator draws from torch's RNG: do it before restoring it
    if ckpt is not None:
        _set_rng_state(ckpt.get("rng", {}).get(str(D.rank), {}))
    t_start = time.perf_counter()
    it = start_iter
    stopped_by = "max_iter"
    window: list[dict] = []
    last_val = None
    bar = tqdm(total=max_iter, initial=start_iter, desc="train", disable=not (progress and D.main), dynamic_ncols=True)
    t_window = time.perf_counter()

    def elapsed_now() -> float:
        e = elapsed_before + time.perf_counter() - t_start
        if D.world > 1 and budget_s > 0:
            t = torch.tensor([e], dtype=torch.float64, device=device)
            torch.distributed.broadcast(t, 0)  # every rank follows rank 0's clock
            e = float(t.item())
        return e

    def flush(it, lr):
        nonlocal window, t_window
        if not window:
            return
        mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        if D.world > 1:
            t = torch.tensor([mean[k] for k in sorted(mean)], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(t)
            mean = {k: float(v) / D.world for k, v in zip(sorted(mean), t.tolist())}
        now = time.perf_counter()
        rec = {
            "kind": "train",
            "iteration": it,
            "lr": lr,
            **mean,
            "elapsed_s": elapsed_before + now - t_start,
            "iters_per_s": len(window) / max(1e-9, now - t_window),
        }
        t_window = now
        window = []
        if D.main:
            _append_jsonl(metrics_path, rec)
            bar.set_postfix(loss=f"{mean['loss']:.3f}", lr=f"{lr:.2g}")

    lr = cfg["SOLVER.BASE_LR"]
    for images, targets in batches:
        elapsed = elapsed_now()
        if budget_s > 0 and elapsed >= budget_s:
            stopped_by = "time budget"
            break
        if stop_at_minutes is not None and elapsed >= stop_at_minutes * 60.0:
            stopped_by = "stop_at_minutes"
            break
        lr = sched.step(it, elapsed)
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            losses = ddp_model(images, targets)
            loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at iteration {it} (lr {lr:.3g}); lower SOLVER.BASE_LR or enable SOLVER.CLIP_GRADIENTS.ENABLED"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["SOLVER.CLIP_GRADIENTS.ENABLED"]:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, cfg["SOLVER.CLIP_GRADIENTS.CLIP_VALUE"])
        scaler.step(optimizer)
        scaler.update()
        it += 1
        window.append({k: float(v.detach()) for k, v in losses.items()} | {"loss": float(loss.detach())})
        bar.update(1)
        if it % log_period == 0 or it == max_iter:
            flush(it, lr)
        if it % ckpt_period == 0 and it < max_iter:
            save(it, elapsed_now())
        if eval_period and it % eval_period == 0 and it < max_iter:
            last_val = validate(it)
        if D.world > 1:
            torch.distributed.barrier()
    flush(it, lr)
    bar.close()
    if it < start_iter + 1 and ckpt is not None and it >= max_iter:
        log.info("nothing to do: %s is already at iteration %d of %d", out_dir, it, max_iter)
    elapsed = elapsed_now()
    final = save(it, elapsed, final=True)
    if stopped_by == "time budget" and D.main:
        log.info("time budget of %.1f min reached at iteration %d of %d", budget_s / 60, it, max_iter)
    last_val = validate(it) if val_records else last_val
    if D.main:
        _append_jsonl(
            metrics_path,
            {"kind": "info", "iteration": it, "event": "end", "stopped_by": stopped_by, "elapsed_s": elapsed},
        )
    if D.world > 1:
        torch.distributed.barrier()
    return TrainResult(
        run_dir=str(out_dir),
        iterations=it,
        final_checkpoint=str(final or out_dir / "model_final.pth"),
        stopped_by=stopped_by,
        elapsed_s=elapsed,
        weights=weights_info,
        val_metrics=last_val,
        resumed_from=start_iter if ckpt is not None else 0,
    )


# --------------------------------------------------------------------------- curves
