"""Command-line interface: ``nanowire-utils <command> ...``.

Each command lives in its own module (:data:`COMMAND_MODULES`: ``generate``, ``train``,
``predict``, ``app``, ``sweep``), which exposes ``register(subparsers)`` adding one or more sub-parsers
whose ``func`` default handles the parsed arguments. Those modules import the
deep-learning stack only inside their handlers, so ``generate`` stays light.

Errors a user can fix (bad values, missing files) print one line and exit with status 2.
Output piped into a command that stops reading early (``nanowire-utils generate --show-config |
head``) ends quietly, without a ``BrokenPipeError`` traceback (the recipe of Python's
``signal`` documentation, "Note on SIGPIPE").
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = (
    "nanowire_utils.cli.generate",
    "nanowire_utils.cli.train",
    "nanowire_utils.cli.predict",
    "nanowire_utils.cli.app",
    "nanowire_utils.cli.sweep",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanowire-utils",
        description="Synthetic nanowire data, Mask R-CNN training and inference for microscopy images.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
    except BrokenPipeError:
        # The reader (e.g. `head`) closed the pipe. Point stdout at devnull so that Python's own
        # flush at exit does not raise again, and exit like a process killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as err:
        print(f"nanowire-utils {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nanowire-utils {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
