"""``nanowire-utils app``: the segmentation app as a standalone web page (Voila).

    nanowire-utils app [--runs DIR]... [--model RUN_DIR] [--port 8866] [--host 127.0.0.1] [--no-browser]

Writes a one-cell notebook that shows :class:`nanowire_utils.app.ui.SegmentationApp` into a
temporary folder, with a kernel that runs this Python, and serves it with Voila until Ctrl-C.
Prints the page's address once the server answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nanowire_utils.cli._argtypes import fraction, port

#: Kernel name of the app's notebook (a kernelspec in the temporary folder, running sys.executable).
KERNEL_NAME = "nanowire-utils-app"
#: Largest websocket message Voila accepts (an upload travels as one message): 80 MiB.
WEBSOCKET_MAX_BYTES = 80 * 2**20


def register(subparsers) -> None:
    """Add the ``app`` sub-command."""
    p = subparsers.add_parser(
        "app",
        help="start the segmentation app (upload an image, get masks, statistics, downloads) as a web page",
        description="Serve the segmentation app with Voila: upload an image or pick a sample, choose a trained "
        "model, segment, and download the statistics (CSV), COCO results (JSON), masks (.npz) and the overlay "
        "(PNG). Stops with Ctrl-C.",
    )
    p.add_argument(
        "--runs",
        action="append",
        metavar="DIR",
        help="folder searched for trained run folders (holding model_final.pth); repeatable (default: ./runs)",
    )
    p.add_argument("--model", metavar="RUN_DIR", help="run folder selected at the start")
    p.add_argument("--port", type=port, default=8866, help="port to serve on (default 8866)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument(
        "--score-thresh", type=fraction, default=0.5, metavar="S", help="initial score threshold (default 0.5)"
    )
    p.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    p.add_argument("--sample", choices=("ptychography", "stxm", "sem"), help="sample image loaded at the start")
    p.set_defaults(func=run_app)


def app_notebook(runs, model=None, score_thresh=0.5, device="auto", sample=None) -> dict:
    """The one-cell notebook (nbformat 4 dict) that shows the app with these settings."""
    kwargs = {
        "runs": [str(Path(r).expanduser().resolve()) for r in runs],
        "run": str(Path(model).expanduser().resolve()) if model else None,
        "score_thresh": float(score_thresh),
        "device": device,
        "sample": sample,
    }
    source = (
        "import json\n\n"
        "from nanowire_utils.app.ui import SegmentationApp\n\n"
        f"app = SegmentationApp(**json.loads({json.dumps(json.dumps(kwargs))}))\n"
        "app.widget"
    )
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": "app", "metadata": {}, "outputs": [], "source": source}
        ],
        "metadata": {
            "kernelspec": {"name": KERNEL_NAME, "display_name": "nanowire-utils app", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def prepare(folder, runs, model=None, score_thresh=0.5, device="auto", sample=None) -> tuple[Path, dict]:
    """Write the app notebook, a kernelspec running this Python and Voila's configuration into
    ``folder``; returns the notebook's path and the environment to run Voila with."""
    folder = Path(folder)
    nb_path = folder / "segmentation_app.ipynb"
    nb_path.write_text(json.dumps(app_notebook(runs, model, score_thresh, device, sample), indent=1))
    spec_dir = folder / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "nanowire-utils app",
                "language": "python",
            }
        )
    )
    config_dir = folder / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "voila.json").write_text(
        json.dumps(
            {
                "Voila": {"port_retries": 0, "tornado_settings": {"websocket_max_message_size": WEBSOCKET_MAX_BYTES}},
                "VoilaConfiguration": {"show_tracebacks": False},
            }
        )
    )
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        [str(folder / "jupyter")] + ([env["JUPYTER_PATH"]] if env.get("JUPYTER_PATH") else [])
    )
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(config_dir)] + ([env["JUPYTER_CONFIG_PATH"]] if env.get("JUPYTER_CONFIG_PATH") else [])
    )
    return nb_path, env


def voila_command(nb_path, port: int, host: str = "127.0.0.1", open_browser: bool = False) -> list[str]:
    """The command line that serves ``nb_path`` with Voila."""
    cmd = [sys.executable, "-m", "voila", str(nb_path), f"--port={int(port)}", f"--Voila.ip={host}"]
    if not open_browser:
        cmd.append("--no-browser")
    return cmd


def wait_for_port(host: str, port: int, timeout: float = 60.0, process=None) -> bool:
    """True once something accepts connections on ``host:port`` (False after ``timeout`` s or
    when ``process`` has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run_app(args) -> int:
    """Handler of ``nanowire-utils app``."""
    try:
        import ipywidgets  # noqa: F401
        import voila  # noqa: F401
    except ImportError as err:
        raise ValueError(
            f"the app needs voila and ipywidgets ({err.name} is missing): pip install 'nanowire-utils[book]'"
        ) from None
    runs = args.runs or ["runs"]
    if args.model and not Path(args.model).expanduser().exists():
        raise FileNotFoundError(f"--model {args.model} does not exist; train one with nanowire-utils train --out DIR")
    if not _port_free(args.host, args.port):
        raise ValueError(f"port {args.port} on {args.host} is in use; pick another with --port")
    with tempfile.TemporaryDirectory(prefix="nanowire_app_") as tmp:
        nb_path, env = prepare(tmp, runs, args.model, args.score_thresh, args.device, args.sample)
        cmd = voila_command(nb_path, args.port, args.host, open_browser=not args.no_browser)
        url = f"http://{args.host}:{args.port}/"
        proc = subprocess.Popen(cmd, env=env, cwd=os.getcwd())
        try:
            if wait_for_port(args.host, args.port, timeout=120, process=proc):
                print(f"nanowire-utils app: serving the segmentation app at {url} (Ctrl-C stops it)", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
