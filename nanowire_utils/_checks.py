"""Argument checks shared by every stage: one clear ValueError naming the parameter."""

from __future__ import annotations

import math


def check_range(name: str, value, low=None, high=None, *, low_inclusive=True, high_inclusive=True, unit=""):
    """Raise ValueError unless ``low <= value <= high`` (bounds optional, inclusivity selectable).

    The message names the parameter, the value and the valid range, e.g.
    ``length_mean must be in (0, 724] voxels, got -3``.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    bad = math.isnan(v)
    if low is not None:
        bad |= v < low if low_inclusive else v <= low
    if high is not None:
        bad |= v > high if high_inclusive else v >= high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        lb = "[" if (low is not None and low_inclusive) else "("
        hb = "]" if (high is not None and high_inclusive) else ")"
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{hb}{u}, got {value!r}")
    return value


def check_choice(name: str, value, choices):
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value
