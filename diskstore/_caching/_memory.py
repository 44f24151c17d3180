"""A per-process, size-bounded LRU tier in front of the database.

Coherent by construction: before every read through the tier, the directory's change
counter (:mod:`diskstore._fs._changes`) is read from shared memory; a write committed by any
other thread or process since the tier last looked empties it. The cache's own writes remove
the keys they touch (bulk operations empty the tier) and then advance the tier past their own
change. A value read from the database is kept only if no write began while it was read
(and an *epoch*, bumped by every removal, catches this process's own racing writes).

Entries hold what is needed to rebuild the value: native values (``int``, ``float``,
``str``, ``bytes``; immutable) as themselves, serialized values as their verified,
decompressed payload, deserialized on every hit so callers always receive a fresh object.
Expiry is checked on every hit, exactly as without the tier.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import OrderedDict
from typing import Any, NamedTuple

TierKey = tuple[int, Any, bool]  # (namespace id, stored key, raw)


class TierEntry(NamedTuple):
    rowid: int
    value: Any  # the native value, or the payload bytes when ``serialized``
    serialized: bool
    expire_time: float | None
    size: int


_tiers: weakref.WeakSet[MemoryTier] = weakref.WeakSet()


def _after_fork_child() -> None:
    # A parent thread may have held a tier's lock at the fork; the child gets fresh locks.
    for tier in list(_tiers):
        tier._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


class MemoryTier:
    """LRU of recently read entries, bounded by item count and by bytes."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        _tiers.add(self)
        self._entries: OrderedDict[TierKey, TierEntry] = OrderedDict()
        self._bytes = 0
        self.epoch = 0
        #: The change number (see _changes.py) the entries are known to be current for.
        self.seen = -1

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: TierKey) -> TierEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: TierKey, entry: TierEntry, epoch: int) -> None:
        """Remember *entry* unless anything was removed since *epoch* (a racing write)."""
        if entry.size > self.max_bytes:
            return
        with self._lock:
            if epoch != self.epoch:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def discard(self, key: TierKey) -> None:
        with self._lock:
            self.epoch += 1
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size

    def clear(self) -> None:
        with self._lock:
            self.epoch += 1
            self._entries.clear()
            self._bytes = 0

    def reset(self, seen: int) -> None:
        """Drop everything: the database changed; entries are current as of *seen*."""
        with self._lock:
            self.epoch += 1
            self._entries.clear()
            self._bytes = 0
            self.seen = seen

    def advance(self, number: int) -> None:
        """After this process committed change *number* (its keys already discarded)."""
        with self._lock:
            if self.seen == number - 1:
                self.seen = number


def entry_size(value: Any) -> int:
    """Approximate bytes an entry holds (payload length, or the object's own size)."""
    if isinstance(value, (bytes, str)):
        return len(value) + 64
    return sys.getsizeof(value) + 64
