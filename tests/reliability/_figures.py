"""The session-wide record of measured figures (see ``conftest.py``)."""

from __future__ import annotations

from typing import Any

RECORD: dict[str, dict[str, Any]] = {}


class Figures:
    """Records one measured number per figure name, optionally beside diskcache's."""

    def record(
        self, name: str, value: float, *, diskcache: float | None = None, note: str = ""
    ) -> None:
        entry: dict[str, Any] = {"diskstore": value}
        if diskcache is not None:
            entry["diskcache"] = diskcache
        if note:
            entry["note"] = note
        previous = RECORD.get(name, {})
        if "diskcache" in previous and diskcache is None:
            entry["diskcache"] = previous["diskcache"]
        RECORD[name] = entry

    def add(self, name: str, value: float) -> None:
        """Add *value* to the running total *name* (for figures summed over parametrized tests)."""
        entry = RECORD.setdefault(name, {"diskstore": 0})
        entry["diskstore"] = (entry.get("diskstore") or 0) + value

    def record_diskcache(self, name: str, value: float) -> None:
        """Add diskcache's figure to *name* (measured by a separate test)."""
        RECORD.setdefault(name, {"diskstore": None})["diskcache"] = value
