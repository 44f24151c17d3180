"""The small protocol that ``memoize`` and ``TaskCache`` need from a storage backend.

Two backends implement it: the SQLite :class:`~diskstore.Cache` (and ``FanoutCache``), and
:class:`diskstore.redis.RedisCache`. Higher layers depend on this module only, never on a
backend's internals, so a new backend needs nothing but these methods:

- ``get``/``set``/``delete`` with diskcache's signatures (``expire``, ``tag``, ``retry``);
- ``namespace(name)``, a view whose keys, ``len`` and ``clear`` are its own (optional: a
  cache without it, such as ``diskcache.Cache``, is scanned instead);
- ``flight_lock(token)``, a lock shared by every process that uses the same storage, so
  concurrent misses of one key compute it once (optional: a cache with a ``directory``
  gets byte-range locks of a file there, see :func:`flight_locks`);
- ``_memo_store``/``_memo_lookup``/``_memo_count``/``_memo_clear``, which store memoized
  results as ordinary items that also record their function, so ``cache_clear()`` need not
  scan (optional: see :mod:`diskstore._caching._functions` and :mod:`diskstore.redis._functions`;
  without them memoize uses ``set``/``get`` and scans the keys);
- ``_memo_calls(name)``, the counter of a memoized function's hits and misses that the
  backend writes back, so that every process's calls add up (optional: without it they
  stay in the process, in ``cache_info()``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "FlightLock", "LockFactory", "flight_locks"]


@runtime_checkable
class FlightLock(Protocol):
    """A lock on one key's computation, held by at most one process at a time."""

    #: Identifies the lock across objects (two locks with one ident are the same lock).
    ident: str

    def acquire(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (``None``: no limit); return whether it is held."""
        ...

    def release(self) -> None:
        """Release the lock if this object still holds it; never another holder's."""
        ...


#: Makes the lock of one single-flight token.
LockFactory = Callable[[str], FlightLock]


class Backend(Protocol):
    """What memoize and TaskCache call on a cache."""

    def get(self, key: Any, default: Any = ..., *, retry: bool = ...) -> Any: ...

    def set(
        self, key: Any, value: Any, *, expire: Any = ..., tag: Any = ..., retry: bool = ...
    ) -> Any: ...

    def delete(self, key: Any, *, retry: bool = ...) -> Any: ...


def flight_locks(cache: object) -> LockFactory | str | None:
    """Where ``cache``'s single-flight locks come from.

    The backend's own ``flight_lock`` factory when it has one; else, for a cache directory,
    one byte per key of the file ``cache.db-flight`` (see :mod:`diskstore._memo._rangelock`), or
    where the platform has no record locks, lock files in ``cache.db-locks``; else ``None``
    (threads of one process only).
    """
    factory = getattr(cache, "flight_lock", None)
    if callable(factory):
        return factory  # type: ignore[no-any-return]
    directory = getattr(cache, "directory", None)
    if directory:
        lock_dir = os.path.join(os.fspath(directory), "cache.db-locks")
        from ._rangelock import FLIGHT_FILE, RangeLocks, range_locks_supported

        if range_locks_supported():
            return RangeLocks(os.path.join(os.fspath(directory), FLIGHT_FILE), lock_dir)
        return lock_dir
    return None
