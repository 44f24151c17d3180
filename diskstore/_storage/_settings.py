"""Cache settings: one frozen, validated record, persisted in the database.

Settings passed to ``Cache(...)`` override the stored ones and are saved; the rest are read
back from the database. Values read back are validated exactly like values passed in, so a
tampered settings table is an error naming the setting, never a PRAGMA built from arbitrary
text. A misspelt name raises instead of being stored.
"""

from __future__ import annotations

import math
import pickle
import types
from collections.abc import Callable, Mapping
from typing import Any

from .._common._exceptions import SettingsError
from .._common._record import Record
from ._policies import POLICIES

JOURNAL_MODES = ("delete", "truncate", "persist", "memory", "wal", "off")


class Settings(Record):
    """Every persisted setting with its default (the names diskcache uses)."""

    statistics: bool = False
    tag_index: bool = False
    eviction_policy: str = "least-recently-stored"
    size_limit: int = 2**30
    cull_limit: int = 10
    sqlite_auto_vacuum: int = 1
    sqlite_cache_size: int = 2**13
    sqlite_journal_mode: str = "wal"
    sqlite_mmap_size: int = 2**26
    sqlite_synchronous: int = 1
    disk_min_file_size: int = 2**15
    disk_pickle_protocol: int = pickle.HIGHEST_PROTOCOL
    disk_compress_threshold: int = 1024
    disk_compress_level: int = 3

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            _VALIDATORS[name](name, value)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with *changes* applied and validated."""
        check_names(changes)
        return super().replace(**changes)

    def disk_options(self) -> dict[str, Any]:
        """The ``disk_*`` settings, without the prefix, as the ``Disk`` constructor takes them."""
        return {
            name[len("disk_") :]: value
            for name, value in self.as_dict().items()
            if name.startswith("disk_")
        }


def check_names(settings: Mapping[str, Any]) -> None:
    """Raise :class:`SettingsError` for a name that is not a setting, suggesting the closest."""
    for name in settings:
        if name not in DEFAULT_SETTINGS:
            import difflib  # only for the error message

            close = difflib.get_close_matches(str(name), NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"unknown setting {name!r}{hint}")


def _bool(name: str, value: Any) -> None:
    if value not in (True, False) or type(value) not in (bool, int):
        raise SettingsError(f"{name} must be a bool, not {value!r}")


def _int_range(low: int, high: float = math.inf) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if type(value) is not int:
            raise SettingsError(f"{name} must be an int, not {value!r}")
        if not low <= value <= high:
            upper = "" if high == math.inf else f" and <= {high}"
            raise SettingsError(f"{name} must be >= {low}{upper}, not {value!r}")

    return check


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value not in options or type(value) is not str:
            raise SettingsError(f"{name} must be one of {', '.join(options)}; not {value!r}")

    return check


def _registered_policy(name: str, value: Any) -> None:
    # Looked up at each check: custom policies are registered after import.
    _choice(tuple(POLICIES))(name, value)


def _any_int(name: str, value: Any) -> None:
    if type(value) is not int:
        raise SettingsError(f"{name} must be an int, not {value!r}")


_VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    "statistics": _bool,
    "tag_index": _bool,
    "eviction_policy": _registered_policy,
    "size_limit": _int_range(0),
    "cull_limit": _int_range(0),
    "sqlite_auto_vacuum": _int_range(0, 2),
    "sqlite_cache_size": _any_int,
    "sqlite_journal_mode": _choice(JOURNAL_MODES),
    "sqlite_mmap_size": _int_range(0),
    "sqlite_synchronous": _int_range(0, 3),
    "disk_min_file_size": _int_range(0),
    # Any int, as diskcache: a protocol this interpreter lacks fails at the first pickle,
    # with pickle's ValueError, where programs written for diskcache expect it.
    "disk_pickle_protocol": _any_int,
    "disk_compress_threshold": _int_range(0),
    "disk_compress_level": _int_range(0, 22),
}


NAMES = Settings._fields
#: diskcache's counters, read (and, for hits and misses, set) through ``reset`` like settings.
METADATA = ("count", "size", "hits", "misses")
DEFAULT_SETTINGS: Mapping[str, Any] = types.MappingProxyType(Settings().as_dict())
"""Every setting and its default, as a read-only view of :class:`Settings` defaults."""


def persistable(name: str, value: Any) -> bool:
    """Whether a valid setting may be stored: not a pickle protocol that cannot pickle.

    Such a protocol is accepted, so that pickling fails where it does in diskcache, but it
    is never written to the database, where it would break every later open.
    """
    return name != "disk_pickle_protocol" or 0 <= value <= pickle.HIGHEST_PROTOCOL


def normalize(name: str, value: Any) -> Any:
    """Bring a stored or given value to its canonical Python type (SQLite stores bools as 0/1)."""
    if name in ("statistics", "tag_index") and type(value) is int and value in (0, 1):
        return bool(value)
    if name == "sqlite_journal_mode" and isinstance(value, str):
        return value.lower()
    return value


def build(stored: Mapping[str, Any], given: Mapping[str, Any]) -> Settings:
    """Merge stored settings with given overrides into a validated :class:`Settings`."""
    check_names(given)
    merged = {name: normalize(name, value) for name, value in stored.items() if name in NAMES}
    merged.update({name: normalize(name, value) for name, value in given.items()})
    return Settings(**merged)
