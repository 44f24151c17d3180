"""diskstore: a persistent, SQLite-backed cache with signed, compressed values.

A drop-in successor to diskcache: ``import diskstore as diskcache`` keeps code working.
"""

from __future__ import annotations

from . import core as core  # the diskcache.core names, as diskstore.core
from ._async import AsyncCache
from ._cache import Cache
from ._constants import ENOVAL, UNKNOWN
from ._disk import Disk, JSONDisk
from ._exceptions import (
    CacheClosedError,
    CorruptionWarning,
    DiskcacheDirectoryWarning,
    DiskStoreError,
    EmptyDirWarning,
    ForkedTransactionError,
    IntegrityError,
    ReadOnlyError,
    SecretMismatchError,
    ServerUnavailableError,
    SettingsError,
    StorageError,
    StorageFullError,
    Timeout,
    UnknownFileWarning,
    UnsupportedError,
    UntrustedDataError,
)
from ._inspect import CacheInspection, EntryInfo, OpaqueKey, inspect_cache
from ._install import install_as_diskcache
from ._memoize import CacheInfo, memoize
from ._policies import EVICTION_POLICY, EvictionPolicy
from ._settings import DEFAULT_SETTINGS
from .fanout import FanoutCache
from .persistent import Deque, Index
from .recipes import Averager, BoundedSemaphore, Lock, RLock, barrier, memoize_stampede, throttle
from .tasks import TaskCache, TaskEntry

__version__ = "0.1.0"
"""The installed diskstore version."""

__all__ = [
    "DEFAULT_SETTINGS",
    "ENOVAL",
    "EVICTION_POLICY",
    "UNKNOWN",
    "AsyncCache",
    "Averager",
    "BoundedSemaphore",
    "Cache",
    "CacheClosedError",
    "CacheInfo",
    "CacheInspection",
    "CorruptionWarning",
    "Deque",
    "Disk",
    "DiskStoreError",
    "DiskcacheDirectoryWarning",
    "EmptyDirWarning",
    "EntryInfo",
    "EvictionPolicy",
    "FanoutCache",
    "ForkedTransactionError",
    "Index",
    "IntegrityError",
    "JSONDisk",
    "Lock",
    "OpaqueKey",
    "RLock",
    "ReadOnlyError",
    "SecretMismatchError",
    "ServerUnavailableError",
    "SettingsError",
    "StorageError",
    "StorageFullError",
    "TaskCache",
    "TaskEntry",
    "Timeout",
    "UnknownFileWarning",
    "UnsupportedError",
    "UntrustedDataError",
    "__version__",
    "barrier",
    "inspect_cache",
    "install_as_diskcache",
    "memoize",
    "memoize_stampede",
    "throttle",
]


def __getattr__(name: str) -> object:
    """Import ``DjangoCache`` on first use, so that ``import diskstore`` never imports Django."""
    if name == "DjangoCache":
        from .djangocache import DjangoCache

        return DjangoCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
