"""diskstore: a persistent, SQLite-backed cache with signed, compressed values.

A drop-in successor to diskcache: ``import diskstore as diskcache`` keeps code working.
"""

from __future__ import annotations

import importlib
import typing

from . import _moved
from . import core as core  # the diskcache.core names, as diskstore.core
from ._caching._cache import Cache
from ._caching._functions import FunctionStats
from ._common._constants import ENOVAL, UNKNOWN
from ._common._exceptions import (
    CacheClosedError,
    CorruptionWarning,
    DiskcacheDirectoryWarning,
    DiskStoreError,
    EmptyDirWarning,
    ForkedTransactionError,
    IntegrityError,
    NetworkFilesystemError,
    ReadOnlyError,
    SecretMismatchError,
    SecretUnavailableError,
    ServerUnavailableError,
    SettingsError,
    StorageError,
    StorageFullError,
    Timeout,
    UnknownFileWarning,
    UnsupportedError,
    UntrustedDataError,
)
from ._storage._policies import EVICTION_POLICY, EvictionPolicy
from ._storage._settings import DEFAULT_SETTINGS
from ._values._disk import Disk
from ._values._jsondisk import JSONDisk

if typing.TYPE_CHECKING:
    from ._aio._async import AsyncCache
    from ._install import install_as_diskcache
    from ._memo._memoize import CacheInfo, memoize
    from ._storage._inspect import CacheInspection, EntryInfo, OpaqueKey, inspect_cache
    from .fanout import FanoutCache
    from .persistent import Deque, Index
    from .recipes import (
        Averager,
        BoundedSemaphore,
        Lock,
        RLock,
        barrier,
        memoize_stampede,
        throttle,
    )
    from .tasks import TaskCache, TaskEntry

# Pickles made by 0.1.0 name the private modules' old places (``diskstore._cache``...).
_moved.install()

# Loaded on first use, so that ``import diskstore`` costs only what a plain cache needs
# (asyncio alone would double it). ``DjangoCache`` is not in ``__all__``: a star import
# must not import Django.
_LAZY = {
    "AsyncCache": "._aio._async",
    "Averager": ".recipes",
    "BoundedSemaphore": ".recipes",
    "CacheInfo": "._memo._memoize",
    "CacheInspection": "._storage._inspect",
    "Deque": ".persistent",
    "DjangoCache": ".djangocache",
    "EntryInfo": "._storage._inspect",
    "FanoutCache": ".fanout",
    "Index": ".persistent",
    "Lock": ".recipes",
    "OpaqueKey": "._storage._inspect",
    "RLock": ".recipes",
    "TaskCache": ".tasks",
    "TaskEntry": ".tasks",
    "barrier": ".recipes",
    "inspect_cache": "._storage._inspect",
    "install_as_diskcache": "._install",
    "memoize": "._memo._memoize",
    "memoize_stampede": ".recipes",
    "throttle": ".recipes",
}

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
    "FunctionStats",
    "Index",
    "IntegrityError",
    "JSONDisk",
    "Lock",
    "NetworkFilesystemError",
    "OpaqueKey",
    "RLock",
    "ReadOnlyError",
    "SecretMismatchError",
    "SecretUnavailableError",
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


def __getattr__(name: str) -> typing.Any:
    """Import a lazily loaded name on first access (``DjangoCache`` never imports Django
    until it is asked for)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
