"""Initial weights for training: pretrained COCO weights when they can be had, else from scratch.

``MODEL.WEIGHTS`` decides:

``""``
    From scratch (the configuration must already be scratch-safe: GN or trainable BN,
    ``FREEZE_AT 0``; :meth:`TrainConfig.validate` enforces it).
a path
    A ``.pth`` file: a project checkpoint (its ``"model"``) or a bare state dict.
``"coco"``
    torchvision's COCO ``maskrcnn_resnet50_fpn`` weights (box AP 37.9, mask AP 34.6), looked
    for in this order:

    1. the file named by the environment variable ``NANOWIRE_UTILS_WEIGHTS``;
    2. the local cache :func:`cache_dir` (``$NANOWIRE_UTILS_CACHE``, else torch hub's
       ``checkpoints`` folder, ``~/.cache/torch/hub/checkpoints``, where torchvision itself
       caches it);
    3. a download, only when the network answers a quick probe (2 s) and neither
       ``NANOWIRE_UTILS_OFFLINE=1`` nor ``CI`` is set, so CI never waits on a timeout;
    4. otherwise training from scratch, with the configuration made scratch-safe
       (``MODEL.RESNETS.NORM`` FrozenBN -> GN, ``MODEL.BACKBONE.FREEZE_AT`` 0).

What happened is logged (``logging``) and returned as a dict that training records in
``config.json`` (``_weights``) and ``metrics.jsonl``.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from nanowire_utils.maskrcnn.config import TrainConfig

log = logging.getLogger(__name__)

COCO_URL = "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
COCO_FILENAME = Path(urlparse(COCO_URL).path).name
ENV_WEIGHTS = "NANOWIRE_UTILS_WEIGHTS"
ENV_OFFLINE = "NANOWIRE_UTILS_OFFLINE"
ENV_CACHE = "NANOWIRE_UTILS_CACHE"


def cache_dir() -> Path:
    """Where pretrained weights are cached.

    Returns
    -------
    pathlib.Path
        ``$NANOWIRE_UTILS_CACHE``, else torch hub's ``checkpoints`` folder (it may not
        exist yet).
    """
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    try:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints"
    except ImportError:
        return Path.home() / ".cache" / "torch" / "hub" / "checkpoints"


def network_allowed() -> tuple[bool, str]:
    """Whether a download may even be tried.

    Returns
    -------
    allowed : bool
        False when ``NANOWIRE_UTILS_OFFLINE`` or ``CI`` is set.
    why : str
        Why not (empty when allowed).
    """
    if os.environ.get(ENV_OFFLINE, "").strip() not in ("", "0"):
        return False, f"{ENV_OFFLINE} is set"
    if os.environ.get("CI", "").strip() not in ("", "0", "false"):
        return False, "CI is set"
    return True, ""


def probe_network(url: str = COCO_URL, timeout: float = 2.0) -> bool:
    """Whether the host of a URL answers, without downloading anything.

    Parameters
    ----------
    url : str
        The URL whose host (and port, default 443) is tried.
    timeout : float
        How long to wait for the TCP connection (seconds).

    Returns
    -------
    bool
        True when a TCP connection opens within ``timeout``.
    """
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname, u.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def coco_weights_location(allow_download: bool = True) -> tuple[str | None, str]:
    """Where the COCO weights would come from, without loading or downloading them.

    Parameters
    ----------
    allow_download : bool
        Count a download as a source (when the network answers and downloads are allowed).

    Returns
    -------
    where : str or None
        ``"env"`` (the file named by ``NANOWIRE_UTILS_WEIGHTS``), ``"cache"`` or
        ``"download"`` when :func:`resolve_weights` would find them, else None.
    why : str
        The file path or URL, or why they cannot be had.
    """
    env = os.environ.get(ENV_WEIGHTS, "").strip()
    if env:
        if Path(env).expanduser().exists():
            return "env", str(Path(env).expanduser())
        return None, f"{ENV_WEIGHTS}={env} does not exist"
    cached = cache_dir() / COCO_FILENAME
    if cached.exists():
        return "cache", str(cached)
    ok, why = network_allowed()
    if not ok or not allow_download:
        return None, (why or "downloads disabled") + f"; no {cached}"
    if probe_network():
        return "download", COCO_URL
    return None, f"network unreachable (2 s probe); no {cached}"


def scratch_safe(cfg: TrainConfig) -> TrainConfig:
    """A copy of a configuration that trains from scratch.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration.

    Returns
    -------
    TrainConfig
        A validated copy with no weights, GN instead of FrozenBN and nothing frozen.
    """
    new = cfg.copy()
    new["MODEL.WEIGHTS"] = ""
    if new["MODEL.RESNETS.NORM"] == "FrozenBN":
        new["MODEL.RESNETS.NORM"] = "GN"
    new["MODEL.BACKBONE.FREEZE_AT"] = 0
    return new.validate()


def decide_weights(cfg: TrainConfig, find_coco, what: str = "COCO weights") -> tuple[TrainConfig, dict]:
    """The decision both engines share: ``""`` -> scratch, a path -> that file, ``"coco"`` ->
    wherever ``find_coco`` finds them, else from scratch with a scratch-safe configuration.

    Parameters
    ----------
    cfg : TrainConfig
        The configuration; ``MODEL.WEIGHTS`` is ``""`` (scratch), ``"coco"`` or a path.
    find_coco : callable
        ``find_coco() -> (info, why)``: the engine's lookup of its COCO weights, ``info``
        being ``{"source", "path", "message"}`` or None when they cannot be had (``why``
        says why).
    what : str
        How the log names the COCO weights.

    Returns
    -------
    cfg : TrainConfig
        ``cfg``, made scratch-safe (:func:`scratch_safe`) when the COCO weights cannot be
        had.
    info : dict
        ``{"source": "scratch"|"path"|"env"|"cache"|"download"|"scratch (fallback)",
        "path": str|None, "message": str}``.

    Raises
    ------
    FileNotFoundError
        For an explicit path that does not exist.
    """
    spec = cfg["MODEL.WEIGHTS"].strip()
    if not spec:
        info = {"source": "scratch", "path": None, "message": "training from scratch (MODEL.WEIGHTS='')"}
    elif spec.lower() != "coco":
        p = Path(spec).expanduser()
        if not p.exists():
            raise FileNotFoundError(
                f"MODEL.WEIGHTS file {p} does not exist; pass an existing .pth, 'coco' or '' (from scratch)"
            )
        info = {"source": "path", "path": str(p), "message": f"initial weights from {p}"}
    else:
        info, why = find_coco()
        if info is None:
            cfg = scratch_safe(cfg)
            info = {
                "source": "scratch (fallback)",
                "path": None,
                "message": f"no {what} ({why}): training from scratch "
                f"with MODEL.RESNETS.NORM={cfg['MODEL.RESNETS.NORM']}, MODEL.BACKBONE.FREEZE_AT=0",
            }
    log.info(info["message"])
    return cfg, info


def _find_torchvision_coco(allow_download: bool) -> tuple[dict | None, str]:
    """torchvision's COCO weights from :func:`coco_weights_location`, downloaded when that
    is where they are."""
    where, what = coco_weights_location(allow_download)
    if where is None:
        if os.environ.get(ENV_WEIGHTS, "").strip():
            raise FileNotFoundError(f"{what}; unset {ENV_WEIGHTS} or point it at the COCO weights file")
        return None, what
    if where == "env":
        return {"source": "env", "path": what, "message": f"COCO weights from {ENV_WEIGHTS}={what}"}, ""
    if where == "cache":
        return {"source": "cache", "path": what, "message": f"COCO weights from the cache {what}"}, ""
    cached = cache_dir() / COCO_FILENAME
    try:
        import torch

        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(COCO_URL, str(cached), hash_prefix=COCO_FILENAME.split("-")[-1].split(".")[0])
    except Exception as err:  # any download failure falls back to scratch, logged
        return None, f"download failed ({type(err).__name__}: {err}); no {cached}"
    return {"source": "download", "path": str(cached), "message": f"downloaded COCO weights to {cached}"}, ""


def resolve_weights(cfg: TrainConfig, allow_download: bool = True) -> tuple[TrainConfig, dict]:
    """Decide where the torchvision engine's initial weights come from (see the module
    docstring and :func:`decide_weights`).

    Parameters
    ----------
    cfg : TrainConfig
        The configuration; ``MODEL.WEIGHTS`` is ``""`` (scratch), ``"coco"`` or a path.
    allow_download : bool
        Allow downloading the COCO weights when they are not found locally.

    Returns
    -------
    cfg : TrainConfig
        ``cfg``, made scratch-safe when the COCO weights cannot be had.
    info : dict
        ``{"source", "path", "message"}``, as :func:`decide_weights` returns it.

    Raises
    ------
    FileNotFoundError
        For an explicit path (or ``NANOWIRE_UTILS_WEIGHTS``) that does not exist.
    ValueError
        For ``"coco"`` with a ResNet depth other than 50.
    """
    if cfg["MODEL.WEIGHTS"].strip().lower() == "coco" and cfg["MODEL.RESNETS.DEPTH"] != 50:
        raise ValueError(
            "MODEL.WEIGHTS='coco' are ResNet-50-FPN weights; set MODEL.RESNETS.DEPTH=50 or MODEL.WEIGHTS='' (from scratch)"
        )
    return decide_weights(cfg, lambda: _find_torchvision_coco(allow_download))


def load_initial_weights(model, info: dict) -> dict:
    """Load the weights ``info`` (from :func:`resolve_weights`) names into ``model``, non-strictly.

    Parameters whose name or shape do not fit (the class-specific predictors of COCO's 91
    classes, RPN heads with other anchor counts) keep their random initialisation; their
    number is added to ``info`` (``loaded``, ``skipped``) and logged.

    Parameters
    ----------
    model : torch.nn.Module
        The model to load into.
    info : dict
        From :func:`resolve_weights`; nothing is loaded when its ``path`` is None.

    Returns
    -------
    dict
        A copy of ``info`` with ``loaded`` and ``skipped`` tensor counts (``info`` itself
        when nothing was loaded).

    Raises
    ------
    ValueError
        When no tensor of the file fits the model.
    """
    if not info.get("path"):
        return info
    import torch

    obj = torch.load(info["path"], map_location="cpu", weights_only=True)
    state = obj["model"] if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) else obj
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    # BatchNorm's step counter has no counterpart in FrozenBN models and carries no weight
    skipped = sorted(k for k in state if k not in fit and not k.endswith("num_batches_tracked"))
    if not fit:
        raise ValueError(f"no parameter of {info['path']} fits this model; is it a Mask R-CNN ResNet-FPN state dict?")
    model.load_state_dict(fit, strict=False)
    info = dict(info, loaded=len(fit), skipped=len(skipped))
    log.info(
        "loaded %d tensors from %s; %d kept their random init (e.g. %s)",
        len(fit),
        info["path"],
        len(skipped),
        skipped[:3],
    )
    return info
