"""Sentinels shared by every module.

``ENOVAL`` marks "no value" where ``None`` is a legitimate cached value; it is the same
name diskcache exports, so code written against diskcache keeps working.
"""

from __future__ import annotations

import enum


class _Sentinel(enum.Enum):
    """Singleton markers; an Enum so they pickle by name and compare by identity."""

    ENOVAL = "ENOVAL"
    UNKNOWN = "UNKNOWN"

    def __repr__(self) -> str:
        return self.value


ENOVAL = _Sentinel.ENOVAL
"""Marks "no value" where ``None`` is a legitimate cached value (as in diskcache)."""

UNKNOWN = _Sentinel.UNKNOWN
"""Marks an argument that was not given (as in diskcache)."""

#: First key handed out by ``push`` on an empty queue (diskcache-compatible numbering).
QUEUE_START = 500_000_000_000_000
