#!/usr/bin/env python
"""Show or set the repository URL of the book: the one setting behind every link to the repository.

    python scripts/set_repository_url.py                                   # print it
    python scripts/set_repository_url.py https://github.com/me/nanowire-utils  # set it

The URL lives in ``_config.yml`` (``repository: url:``), which Jupyter Book uses for the
repository, issue, Binder, Colab and JupyterHub buttons. The notebooks' setup cell cannot read
``_config.yml`` on Colab (only the notebook is opened there), so it carries a copy in its
``REPOSITORY = "..."`` line; this script writes both, and ``tests/test_book_delivery.py`` checks
that they agree. The Pages workflow runs it with the repository the workflow runs in, so the
published book always points at its own repository.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CONFIG_URL = re.compile(r"^(repository:\s*\n(?:[ \t]+#.*\n)*[ \t]+url:[ \t]*)(\S+)[ \t]*$", re.M)
_SETUP_URL = re.compile(r'^(REPOSITORY = ")([^"]*)(")', re.M)
_VALID = re.compile(r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def config_url(root: Path = ROOT) -> str:
    """The repository URL in ``_config.yml``."""
    m = _CONFIG_URL.search((root / "_config.yml").read_text(encoding="utf-8"))
    if m is None:
        raise ValueError("_config.yml has no `repository:` block with a `url:` line")
    return m.group(2)


def notebook_urls(root: Path = ROOT) -> dict[str, str]:
    """``{notebook name: REPOSITORY value of its setup cell}`` (notebooks without one are left out)."""
    urls = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            m = _SETUP_URL.search("".join(cell["source"])) if cell["cell_type"] == "code" else None
            if m:
                urls[path.name] = m.group(2)
                break
    return urls


def set_url(url: str, root: Path = ROOT) -> list[Path]:
    """Write ``url`` into ``_config.yml`` and every notebook's setup cell; return the files changed."""
    url = url.rstrip("/").removesuffix(".git")
    if not _VALID.match(url):
        raise ValueError(f"not a repository URL: {url!r} (expected https://host/owner/name)")
    changed = []
    cfg = root / "_config.yml"
    text = cfg.read_text(encoding="utf-8")
    if _CONFIG_URL.search(text) is None:
        raise ValueError("_config.yml has no `repository:` block with a `url:` line")
    new = _CONFIG_URL.sub(lambda m: m.group(1) + url, text, count=1)
    if new != text:
        cfg.write_text(new, encoding="utf-8")
        changed.append(cfg)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        hit = False
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            if _SETUP_URL.search(source):
                cell["source"] = _SETUP_URL.sub(lambda m: m.group(1) + url + m.group(3), source).splitlines(
                    keepends=True
                )
                hit = True
        out = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if hit and out != raw:
            path.write_text(out, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", help="the new URL, e.g. https://github.com/OWNER/nanowire-utils")
    args = ap.parse_args(argv)
    try:
        if args.url is None:
            print(config_url())
            for name, url in notebook_urls().items():
                if url != config_url():
                    print(f"  {name}: setup cell has {url} (run this script with the URL to fix)")
            return 0
        for path in set_url(args.url):
            print(f"updated {path.relative_to(ROOT)}")
    except ValueError as err:
        print(f"set_repository_url: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
