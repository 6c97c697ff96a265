"""A training loop with hooks, in the way detectron2's ``TrainerBase`` and ``HookBase`` work.

The loop itself (:class:`Trainer`) only iterates: it draws a batch, calls the engine's step
function and counts iterations. Everything else is a hook with up to four moments,
``before_train``, ``before_step``, ``after_step`` and ``after_train``, called in the order the
hooks were given:

:class:`TimeCap`
    stops cleanly after a wall-clock budget (``SOLVER.MAX_MINUTES``) or a pause point.
:class:`LRSchedule`
    sets the learning rate of the step about to run (:class:`WarmupSchedule`).
:class:`MetricsWriter`
    averages the losses over a window, writes ``metrics.jsonl`` and drives the progress bar.
:class:`PeriodicCheckpointer`
    saves a resumable checkpoint every ``SOLVER.CHECKPOINT_PERIOD`` iterations and a final one.
:class:`PeriodicEvaluator`
    validation AP every ``TEST.EVAL_PERIOD`` iterations and at the end.

A hook stops training with :meth:`Trainer.request_stop`. The loop is engine-agnostic (it never
imports torchvision); :mod:`nanowire_utils.maskrcnn.torchvision_engine` assembles it. Resuming
is bit-exact: RNG states travel in the checkpoints and the loop draws from them in the same
order as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- schedule
class WarmupSchedule:
    """detectron2's WarmupMultiStepLR or WarmupCosineLR, with an optional wall-clock budget.

    ``SOLVER.LR_SCHEDULER_NAME`` picks the shape after the warmup:

    ``WarmupMultiStepLR``
        ``BASE_LR x warmup(it) x GAMMA ** n``, ``n`` the number of ``SOLVER.STEPS`` passed.
    ``WarmupCosineLR``
        ``BASE_LR x warmup(it) x (1 + cos(pi x it / MAX_ITER)) / 2``: from ``BASE_LR`` down to 0
        at ``MAX_ITER`` (detectron2's ``BASE_LR_END`` = 0); ``STEPS`` and ``GAMMA`` are unused.

    With a budget of ``budget_s`` seconds, progress is the larger of ``it / MAX_ITER`` and the
    elapsed share of the budget: a step ``s`` counts as passed at iteration ``s`` or at
    ``s / MAX_ITER`` of the budget, and the cosine follows the same progress, so a run cut
    short by its budget still gets its low-LR phase. Without a budget (the presets) the
    schedule depends on iterations only, so a run is the same on any machine.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its param groups get ``lr = initial_lr x factor``.
    cfg : TrainConfig
        ``SOLVER.BASE_LR``, ``LR_SCHEDULER_NAME``, ``STEPS``, ``GAMMA``, ``WARMUP_*`` and
        ``MAX_ITER``.
    budget_s : float
        Wall-clock budget in seconds (0: none).
    """

    def __init__(self, optimizer, cfg, budget_s: float = 0.0):
        self.optimizer = optimizer
        self.name = cfg["SOLVER.LR_SCHEDULER_NAME"]
        self.base_lr = cfg["SOLVER.BASE_LR"]
        self.steps = list(cfg["SOLVER.STEPS"])
        self.gamma = cfg["SOLVER.GAMMA"]
        self.warmup_iters = cfg["SOLVER.WARMUP_ITERS"]
        self.warmup_factor = cfg["SOLVER.WARMUP_FACTOR"]
        self.warmup_method = cfg["SOLVER.WARMUP_METHOD"]
        self.max_iter = cfg["SOLVER.MAX_ITER"]
        self.budget_s = float(budget_s)
        self.passed = 0
        self.progress = 0.0
        self.last_factor = 1.0
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", self.base_lr * g.get("lr_factor", 1.0))

    def factor(self, iteration: int, elapsed_s: float = 0.0) -> float:
        """LR factor (warmup x decay) at ``iteration`` after ``elapsed_s`` seconds."""
        w = 1.0
        if iteration < self.warmup_iters:
            if self.warmup_method == "linear":
                a = iteration / self.warmup_iters
                w = self.warmup_factor * (1 - a) + a
            else:
                w = self.warmup_factor
        progress = iteration / self.max_iter
        if self.budget_s > 0:
            progress = max(progress, elapsed_s / self.budget_s)
        self.progress = max(self.progress, min(progress, 1.0))  # never go back up
        if self.name == "WarmupCosineLR":
            return w * 0.5 * (1.0 + math.cos(math.pi * self.progress))
        passed = sum(self.progress >= s / self.max_iter for s in self.steps)
        self.passed = max(self.passed, passed)
        return w * self.gamma**self.passed

    def step(self, iteration: int, elapsed_s: float = 0.0) -> float:
        """Set the optimizer's LR for ``iteration``; returns the LR."""
        f = self.factor(iteration, elapsed_s)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * f
        self.last_factor = f
        return self.base_lr * f

    def state_dict(self) -> dict:
        return {
            "name": self.name,
            "passed": self.passed,
            "progress": self.progress,
            "last_factor": self.last_factor,
            "steps": self.steps,
            "max_iter": self.max_iter,
            "budget_s": self.budget_s,
        }

    def load_state_dict(self, state: dict):
        # the schedule may have changed (e.g. a longer continuation); only progress made under
        # the same schedule carries over, else it restarts from the iteration count
        same = (
            state.get("name", "WarmupMultiStepLR") == self.name
            and list(state.get("steps", self.steps)) == self.steps
            and int(state.get("max_iter", self.max_iter)) == self.max_iter
        )
        self.passed = int(state.get("passed", 0)) if same else 0
        self.progress = float(state.get("progress", 0.0)) if same else 0.0


# --------------------------------------------------------------------------- distributed
@dataclass
class DistInfo:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def setup_distributed(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (NCCL on CUDA, gloo on
    CPU); a single process when ``WORLD_SIZE`` is unset or 1."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
        here = True
    return DistInfo(rank, world, local, here)


# --------------------------------------------------------------------------- RNG / IO helpers
def rng_state() -> dict:
    """The torch, numpy and Python RNG states (and CUDA's), for a checkpoint."""
    import torch

    st = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2]}
    npst = np.random.get_state()
    st["numpy"] = {"keys": torch.from_numpy(npst[1].astype(np.int64)), "pos": int(npst[2])}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict):
    """Restore what :func:`rng_state` saved (nothing for an empty dict)."""
    import torch

    if not st:
        return
    torch.set_rng_state(st["torch"])
    random.setstate((3, tuple(st["python"]), st["python_pos"]))
    np.random.set_state(("MT19937", st["numpy"]["keys"].numpy().astype(np.uint32), st["numpy"]["pos"], 0, 0.0))
    if "cuda" in st and torch.cuda.is_available() and len(st["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(st["cuda"])


def seed_all(seed: int):
    """Seed Python's, numpy's and torch's global RNGs."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_torch_save(obj, path: Path):
    """``torch.save`` through a temporary file and rename: never a half-written checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def append_jsonl(path: Path, rec: dict):
    """Append one record to a JSON-lines file."""
    with open(path, "a") as f:
        f.write(json.dumps(rec, default=float) + "\n")


# --------------------------------------------------------------------------- the loop
class HookBase:
    """One concern of training, called at four moments by :class:`Trainer`.

    ``self.trainer`` is set when the trainer is built. Override any of the methods.
    """

    trainer: Trainer

    def before_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def after_train(self):
        pass


class Trainer:
    """Iterate ``step_fn`` over ``batches`` from ``start_iter`` to ``max_iter``, calling hooks.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(batch, iteration) -> dict`` of float losses (with ``"loss"``, the total);
        it runs forward, backward and the optimizer step.
    batches : iterable
        The batches, one per iteration (the data loader's sampler knows where to start).
    start_iter, max_iter : int
        The iteration to start from (0, or a checkpoint's) and the last one.
    hooks : list of HookBase
        Called in this order at each moment.
    elapsed_before_s : float
        Training seconds of the earlier part of a resumed run.
    clock : callable
        ``clock(seconds_this_process) -> seconds`` for the elapsed time, e.g. rank 0's clock
        broadcast to every process under DDP; default the identity.

    Attributes
    ----------
    iter : int
        Iterations done so far (the next step to run is ``iter``).
    losses : dict
        The last step's losses.
    lr : float
        The learning rate of the last step (set by :class:`LRSchedule`).
    elapsed_s : float
        Training seconds at the start of the current step, earlier parts included.
    stop_reason : str or None
        Why training stopped: ``"max_iter"``, or what a hook gave :meth:`request_stop`.
    """

    def __init__(
        self,
        step_fn: Callable,
        batches,
        start_iter: int,
        max_iter: int,
        hooks: list[HookBase],
        elapsed_before_s: float = 0.0,
        clock: Callable | None = None,
    ):
        self.step_fn = step_fn
        self.batches = batches
        self.start_iter = self.iter = int(start_iter)
        self.max_iter = int(max_iter)
        self.hooks = list(hooks)
        for h in self.hooks:
            h.trainer = self
        self.elapsed_before_s = float(elapsed_before_s)
        self.clock = clock or (lambda s: s)
        self.losses: dict = {}
        self.lr = float("nan")
        self.elapsed_s = self.elapsed_before_s
        self.stop_reason: str | None = None
        self._t_start = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds so far, earlier parts of a resumed run included."""
        return self.clock(self.elapsed_before_s + time.perf_counter() - self._t_start)

    def request_stop(self, reason: str):
        """End training before the next step (hooks' ``after_train`` still run)."""
        self.stop_reason = reason

    def train(self) -> str:
        """Run the loop; returns :attr:`stop_reason`."""
        self._t_start = time.perf_counter()
        for h in self.hooks:
            h.before_train()
        for batch in self.batches:
            self.elapsed_s = self.elapsed()
            for h in self.hooks:
                h.before_step()
            if self.stop_reason is not None:
                break
            self.losses = self.step_fn(batch, self.iter)
            self.iter += 1
            for h in self.hooks:
                h.after_step()
        if self.stop_reason is None:
            self.stop_reason = "max_iter"
        for h in self.hooks:
            h.after_train()
        return self.stop_reason


# --------------------------------------------------------------------------- hooks
class TimeCap(HookBase):
    """Stop cleanly once training time reaches ``budget_s`` (``"time budget"``) or
    ``pause_at_s`` (``"stop_at_minutes"``: a resumable pause that keeps the schedule)."""

    def __init__(self, budget_s: float = 0.0, pause_at_s: float | None = None):
        self.budget_s = float(budget_s)
        self.pause_at_s = pause_at_s

    def before_step(self):
        t = self.trainer
        if self.budget_s > 0 and t.elapsed_s >= self.budget_s:
            t.request_stop("time budget")
        elif self.pause_at_s is not None and t.elapsed_s >= self.pause_at_s:
            t.request_stop("stop_at_minutes")


class LRSchedule(HookBase):
    """Set the learning rate of each step from a :class:`WarmupSchedule`."""

    def __init__(self, schedule: WarmupSchedule):
        self.schedule = schedule

    def before_train(self):
        self.trainer.lr = self.schedule.base_lr

    def before_step(self):
        if self.trainer.stop_reason is None:
            self.trainer.lr = self.schedule.step(self.trainer.iter, self.trainer.elapsed_s)


class MetricsWriter(HookBase):
    """Average losses over ``period`` iterations into ``metrics.jsonl`` records of kind
    ``"train"`` (with ``lr``, ``elapsed_s``, ``iters_per_s``), update a tqdm bar, and write the
    ``"info"`` records at the start and end of training.

    Parameters
    ----------
    path : Path
        The run's metrics.jsonl.
    period : int
        Iterations per record.
    reduce : callable or None
        ``reduce(dict of floats) -> dict`` averaging over processes (DDP), or None.
    write : bool
        False on ranks other than 0.
    progress : bool
        Show the tqdm bar.
    start_record : dict
        The ``"info"`` record written before training.
    """

    def __init__(
        self, path: Path, period: int, reduce=None, write: bool = True, progress: bool = True, start_record=None
    ):
        self.path = Path(path)
        self.period = max(1, int(period))
        self.reduce = reduce
        self.write = write
        self.progress = progress
        self.start_record = start_record
        self.window: list[dict] = []
        self.bar = None

    def before_train(self):
        from tqdm.auto import tqdm

        t = self.trainer
        if self.write and self.start_record is not None:
            append_jsonl(self.path, self.start_record)
        self.bar = tqdm(
            total=t.max_iter,
            initial=t.start_iter,
            desc="train",
            disable=not (self.progress and self.write),
            dynamic_ncols=True,
        )
        self._t_window = time.perf_counter()

    def after_step(self):
        t = self.trainer
        self.window.append(dict(t.losses))
        self.bar.update(1)
        if t.iter % self.period == 0 or t.iter == t.max_iter:
            self.flush()

    def flush(self):
        if not self.window:
            return
        t = self.trainer
        mean = {k: float(np.mean([w[k] for w in self.window])) for k in self.window[0]}
        if self.reduce is not None:
            mean = self.reduce(mean)
        now = time.perf_counter()
        rec = {
            "kind": "train",
            "iteration": t.iter,
            "lr": t.lr,
            **mean,
            "elapsed_s": t.elapsed_before_s + now - t._t_start,
            "iters_per_s": len(self.window) / max(1e-9, now - self._t_window),
        }
        self._t_window = now
        self.window = []
        if self.write:
            append_jsonl(self.path, rec)
            self.bar.set_postfix(loss=f"{mean['loss']:.3f}", lr=f"{t.lr:.2g}")

    def after_train(self):
        self.flush()
        self.bar.close()

    def end(self, elapsed_s: float):
        """Write the ``"end"`` record (called by the engine once the final checkpoint exists)."""
        t = self.trainer
        if self.write:
            append_jsonl(
                self.path,
                {
                    "kind": "info",
                    "iteration": t.iter,
                    "event": "end",
                    "stopped_by": t.stop_reason,
                    "elapsed_s": elapsed_s,
                },
            )


class PeriodicCheckpointer(HookBase):
    """``save(iteration, elapsed_s, final)`` every ``period`` iterations (not at the last one)
    and once at the end with ``final=True``. ``save`` returns the checkpoint path."""

    def __init__(self, save: Callable, period: int):
        self.save = save
        self.period = int(period)
        self.final_path = None

    def after_step(self):
        t = self.trainer
        if t.iter % self.period == 0 and t.iter < t.max_iter:
            self.save(t.iter, t.elapsed(), final=False)

    def after_train(self):
        t = self.trainer
        self.final_path = self.save(t.iter, t.elapsed(), final=True)


class PeriodicEvaluator(HookBase):
    """``evaluate(iteration) -> metrics`` every ``period`` iterations (0: never) before the
    last, and once after training when ``at_end``. ``last`` holds the latest metrics."""

    def __init__(self, evaluate: Callable, period: int, at_end: bool = True):
        self.evaluate = evaluate
        self.period = int(period)
        self.at_end = at_end
        self.last = None

    def after_step(self):
        t = self.trainer
        if self.period and t.iter % self.period == 0 and t.iter < t.max_iter:
            self.last = self.evaluate(t.iter)

    def after_train(self):
        if self.at_end:
            self.last = self.evaluate(self.trainer.iter)


class Barrier(HookBase):
    """Keep DDP processes in step after every iteration (a no-op in one process)."""

    def __init__(self, dist: DistInfo):
        self.dist = dist

    def after_step(self):
        self.dist.barrier()

    def after_train(self):
        self.dist.barrier()
