"""The one ``KEY=VALUE`` override syntax of every ``--set`` (generate, train, sweep, predict).

Values are YAML 1.1 scalars and flow collections, read with :func:`yaml.safe_load`, so the
same text means the same value everywhere:

=====================  =====================
text                   value
=====================  =====================
``0.01``, ``1e-3``     float (also without a dot, unlike plain YAML 1.1)
``500``                int
``true`` / ``True``    True (also ``false``)
``null`` / ``~``       None (``None`` too, for Python habits)
``[0.3, 0.6]``         list
``{a: 1}``             dict
``paper``              the string ``"paper"``
=====================  =====================

JSON values are valid YAML, so ``--set network.n_wires=[5,15]`` and
``--set SOLVER.AMP.ENABLED=false`` both work as written.
"""

from __future__ import annotations

import yaml


def parse_value(text: str):
    """The value a ``--set`` text means (see the module docstring).

    Parameters
    ----------
    text : str
        The text after ``=``; surrounding whitespace is ignored.

    Returns
    -------
    object
        The parsed value (None, bool, int, float, list, dict or str); unparsable text
        stays a string.
    """
    text = text.strip()
    if text == "None":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text not in ("null", "~", "Null", "NULL", ""):
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 (no dot) as a string; everyone means the number
            return float(value) if value.lower() not in ("nan", "inf", "-inf", "infinity") else value
        except ValueError:
            return value
    return value


def parse_assignment(item: str) -> tuple[str, object]:
    """Split one ``--set`` item into its key and parsed value.

    Parameters
    ----------
    item : str
        ``"KEY=VALUE"``.

    Returns
    -------
    tuple of (str, object)
        ``(KEY, parsed VALUE)`` (:func:`parse_value`), the key stripped.

    Raises
    ------
    ValueError
        Naming the item, when there is no ``=`` or no key.
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set needs KEY=VALUE, got {item!r} (e.g. SOLVER.BASE_LR=0.01)")
    return key.strip(), parse_value(text)


def parse_assignments(items) -> dict:
    """Parse every ``--set`` item of a command line.

    Parameters
    ----------
    items : list of str or None
        ``"KEY=VALUE"`` strings; None means none.

    Returns
    -------
    dict
        ``{KEY: value}`` (later items win).

    Raises
    ------
    ValueError
        As :func:`parse_assignment`.
    """
    return dict(parse_assignment(item) for item in items or [])
