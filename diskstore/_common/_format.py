"""Formatting figures and values for people: byte counts and short value summaries.

Shared by the command line and the demo, so neither imports the other for it.
"""

from __future__ import annotations

import reprlib
from typing import Any

#: Characters of a value's summary that ``diskstore get`` prints without ``--full``.
SUMMARY_CHARS = 300

_short = reprlib.Repr()
_short.maxstring = 120
_short.maxother = 120
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 12
_short.maxlevel = 4


def human_bytes(count: int) -> str:
    """Format a byte count for people: ``1.5 MB`` (decimal units, as ``du --si`` prints)."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def summarize(value: Any, limit: int = SUMMARY_CHARS) -> tuple[str, bool]:
    """A repr of *value* at most *limit* characters long, and whether it was shortened.

    Containers are abbreviated element-wise (``[0, 1, 2, ...]``) rather than cut mid-token,
    so the summary still reads as Python.
    """
    text = _short.repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return text, True  # no need to build the whole repr to know
    return text, text != repr(value)
