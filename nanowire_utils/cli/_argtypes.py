"""argparse ``type=`` converters shared by the commands: a bad value is one line naming it."""

from __future__ import annotations

import argparse


def fraction(text):
    """A number in [0, 1] (a threshold or a fraction)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def port(text):
    """A TCP port number, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 1-65535, got {value}")
    return value
