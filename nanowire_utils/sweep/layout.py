"""The folder layout of a sweep (one folder per run, a manifest, status and result files) and
the small readers that the runner and the results table share, so neither imports the other's
internals: :mod:`.runner` trains runs, :mod:`.results` tabulates them, both read folders here.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import threading
import time
from pathlib import Path

MANIFEST = "sweep.json"
RUNS_DIR = "runs"
STATUS = "status.json"
RESULT = "result.json"
LOCK = "lock.json"
LOG = "train.log"
WORKER_LOG = "worker.log"
FORMAT = 1
#: A lock whose heartbeat is older than this is stale (its process died on another machine).
STALE_AFTER_S = 600.0
HEARTBEAT_S = 30.0


def read_json(path, default=None):
    """The JSON in ``path``, or ``default`` when the file is missing or half-written."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def run_dir(sweep_dir, run_id: str) -> Path:
    """Folder of run ``run_id`` in a sweep folder."""
    return Path(sweep_dir) / RUNS_DIR / run_id


def read_manifest(sweep_dir) -> dict:
    """The manifest of a sweep folder; FileNotFoundError saying what to do when absent."""
    m = read_json(Path(sweep_dir) / MANIFEST)
    if m is None:
        raise FileNotFoundError(
            f"{sweep_dir} is not a sweep folder (no {MANIFEST}); start one with "
            f"nanowire-utils sweep --out {sweep_dir} --scale SCALE"
        )
    return m


def test_data_dir(manifest: dict, run_id: str) -> Path:
    """The common synthetic test set of a run's generator and image size (seed + 1: no run trains on it)."""
    cfg = manifest["runs"][run_id]["config"]
    return Path(manifest["data_root"]) / f"{data_tag(cfg)}_test{manifest['n_test']}_seed{manifest['data_seed'] + 1}"


@contextlib.contextmanager
def file_lock(path):
    """An exclusive ``fcntl.flock`` on ``path`` (created), held for the ``with`` block."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_state(sweep_dir, run_id: str) -> str:
    """``"done"``, ``"failed"``, ``"running"``, ``"interrupted"`` (started, no live process:
    resumable) or ``"pending"``."""
    folder = run_dir(sweep_dir, run_id)
    if (folder / RESULT).exists():
        return "done"
    st = read_json(folder / STATUS) or {}
    if RunLock(folder).holder() is not None:
        return "running"
    if st.get("state") == "failed":
        return "failed"
    if st.get("state") == "running":
        return "interrupted"
    return "pending"


def machine_info() -> dict:
    """Where the code runs: host, OS, Python, CPU count, torch and GPU names."""
    info = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001
        pass
    return info


def git_commit(path=None) -> dict:
    """``{"commit", "dirty_package"}`` of the git checkout holding ``path``: its HEAD, and whether
    ``path`` has uncommitted changes (default: the whole ``nanowire_utils`` package)."""
    path = Path(path or Path(__file__).resolve().parents[1])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", str(path)], cwd=path, capture_output=True, text=True, timeout=20
        ).stdout.strip()
        return {"commit": commit, "dirty_package": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty_package": None}


def data_tag(cfg: dict) -> str:
    """The name part shared by the data folders of one generator preset and image size."""
    return f"{cfg['DATASET.GENERATOR_PRESET']}_{cfg['DATASET.IMAGE_SIZE']}px"


class RunLock:
    """Exclusive claim of a run folder by one process: ``lock.json`` created with O_EXCL,
    its modification time refreshed every :data:`HEARTBEAT_S` seconds by a thread.

    A lock is stale (and taken over) when its process is gone (same host) or its heartbeat
    is older than :data:`STALE_AFTER_S` (another host: e.g. a Slurm job killed on a node).
    """

    def __init__(self, folder, stale_after_s: float = STALE_AFTER_S):
        self.path = Path(folder) / LOCK
        self.stale_after_s = stale_after_s
        self._stop = threading.Event()
        self._thread = None

    def holder(self) -> dict | None:
        """The live holder's record, or None when free or stale."""
        info = read_json(self.path)
        if info is None:
            return None if not self.path.exists() else {"host": "?", "pid": -1}
        if info.get("host") == socket.gethostname():
            return info if pid_alive(info.get("pid", -1)) else None
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return info if age < self.stale_after_s else None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self.holder() is not None:
                    return False
                self.path.unlink(missing_ok=True)  # stale: take over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": utc_now()}, f)
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
            return True
        return False

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self):
        self._stop.set()
        info = read_json(self.path) or {}
        if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second (the timestamps of status files)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (it may belong to another user)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
