"""The command line piped into a reader that stops early (`... --show-config | head`).

Before the fix, `generate --show-config | head` printed a ``BrokenPipeError`` traceback
(chapter 3's second solution showed it in the book).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

SHOW_CONFIG = [sys.executable, "-m", "nanowire_utils.cli", "generate", "--n", "1", "--out", "unused"]
SHOW_CONFIG += ["--preset", "paper", "--show-config"]


def _clean(stderr: str) -> None:
    for word in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert word not in stderr, f"stderr shows {word!r}:\n{stderr}"


@pytest.mark.skipif(shutil.which("head") is None, reason="no `head` on PATH")
def test_show_config_piped_into_head_is_quiet(tmp_path):
    cmd = " ".join(shlex.quote(a) for a in SHOW_CONFIG) + " | head -n 3"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert len(proc.stdout.splitlines()) == 3 and proc.stdout.startswith("{")
    _clean(proc.stderr)
    assert not (tmp_path / "unused").exists(), "--show-config must not generate anything"


def test_output_into_a_closed_pipe_exits_quietly(tmp_path):
    """Deterministic form: the reading end is closed before the command writes a byte."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        proc = subprocess.run(
            SHOW_CONFIG, cwd=tmp_path, stdout=write_fd, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(write_fd)
    _clean(proc.stderr)
    assert proc.returncode == 128 + 13, (
        f"exit status {proc.returncode} (expected 141, like SIGPIPE); stderr:\n{proc.stderr}"
    )
