"""Per-process bookkeeping that would otherwise cost a write: statistics, access and store
times, and the hit and miss counts of memoized functions.

diskcache turns every ``get`` into a write transaction when statistics are on or the policy
is least-recently/frequently-used, and every overwrite rewrites its timestamps (a page write
and an index update). Here reads and overwrites only record the event in memory; the records
are written back in one transaction at least every second (by the next operation, or by a
background thread when none comes), before culling, when ``stats()`` is read, on close, and
at interpreter exit. Counters and eviction order are therefore exact up to the last flush
(at most about a second), and nothing is lost on a clean close.

Memoized functions count their calls into a :class:`~diskstore._common._hooks.CallCounts` per
function name, which this object hands out and keeps. Each flush takes what they counted
since the last one and adds it to the ``functions`` table, one row per name, in the same
transaction as the rest: a memoize hit stays an increment in memory however many processes
call the function.

A forked child starts with empty buffers: what they held is the parent's to write back, and
writing it from both processes would count it twice.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from .._common._exceptions import DiskStoreError, Timeout
from . import _sql
from ._policies import EvictionPolicy

if TYPE_CHECKING:
    from .._common._hooks import CallCounts
    from ._store import Store

FLUSH_INTERVAL = 1.0

# One daemon thread per process writes back what idle caches still hold, so records reach
# the database within about a second even when no further operation comes.
_registry: weakref.WeakSet[Bookkeeper] = weakref.WeakSet()
_flusher: threading.Thread | None = None
_flusher_lock = threading.Lock()


def _flush_loop() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL / 2)
        for bookkeeper in list(_registry):
            if bookkeeper.pending() and bookkeeper.due():
                with contextlib.suppress(Exception):
                    bookkeeper.flush(best_effort=True)
                # This thread outlives the caches it serves: its connection to one is closed
                # by the cache, not left for the garbage collector (which, from Python 3.13,
                # warns of every connection it finds open).
                with contextlib.suppress(Exception):
                    bookkeeper.release_thread()


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is not None:
        return
    with _flusher_lock:
        if _flusher is None:
            _flusher = threading.Thread(target=_flush_loop, name="diskstore-flush", daemon=True)
            _flusher.start()


def _forget_flusher() -> None:
    global _flusher, _flusher_lock
    _flusher = None  # threads do not survive fork; the child starts its own on demand
    _flusher_lock = threading.Lock()
    # A thread of the parent may have held a bookkeeper's lock at the fork; in the child
    # nobody would ever release it. What the buffers hold is the parent's to write back: a
    # child that flushed it too would count every buffered hit, miss and access twice.
    for bookkeeper in list(_registry):
        bookkeeper._lock = threading.Lock()
        bookkeeper._forget_buffers()


@atexit.register
def _flush_all() -> None:
    for bookkeeper in list(_registry):
        with contextlib.suppress(Exception):
            bookkeeper.flush(best_effort=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_flusher)


class Bookkeeper:
    """Buffers hit/miss counts and read accesses for one store."""

    def __init__(
        self, store: Store, *, statistics: bool, policy: EvictionPolicy, read_only: bool = False
    ) -> None:
        self._store = store
        self._read_only = read_only
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._access: dict[int, float] = {}
        self._stored: dict[int, float] = {}
        #: Memoized functions' calls to write back, by name (see calls_of).
        self._calls: dict[str, CallCounts] = {}
        self._last_flush = time.monotonic()
        self.configure(statistics=statistics, policy=policy)
        _registry.add(self)

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= FLUSH_INTERVAL

    def configure(self, *, statistics: bool, policy: EvictionPolicy) -> None:
        # A read-only cache can write nothing back, so it records nothing.
        self.statistics = statistics and not self._read_only
        self.on_read = "none" if self._read_only else policy.on_read
        #: Whether reads need to report to this object at all (checked on the hot path).
        self.active = self.statistics or self.on_read != "none"

    def hit(self, rowid: int, now: float) -> None:
        with self._lock:
            if self.statistics:
                self.hits += 1
            if self.on_read == "access_time":
                self._access[rowid] = now
            elif self.on_read == "access_count":
                self._access[rowid] = self._access.get(rowid, 0) + 1
        _ensure_flusher()
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush(best_effort=True)

    def miss(self) -> None:
        if self.statistics:
            with self._lock:
                self.misses += 1
            _ensure_flusher()
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush(best_effort=True)

    def overwrote(self, rowid: int, now: float) -> None:
        """Record that a set replaced row *rowid* at *now* (its new store and access time).

        Under a policy that counts reads, the overwrite restarts the count (as in diskcache),
        so reads of the old value still buffered must not be added to the new one.
        """
        if self.on_read == "access_count":
            with self._lock:
                self._access.pop(rowid, None)
        self._stored[rowid] = now
        _ensure_flusher()
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush(best_effort=True)

    def calls_of(self, name: str) -> CallCounts | None:
        """Where memoized function *name* counts the calls that every flush writes back.

        None for a read-only cache: it writes nothing, so the counts stay in the process.
        """
        if self._read_only:
            return None
        from .._common._hooks import CallCounts  # loaded by memoize already; it imports logging

        with self._lock:
            counts = self._calls.get(name)
            if counts is None:
                counts = self._calls[name] = CallCounts(name)
        _ensure_flusher()
        return counts

    def stores_pending(self) -> bool:
        """Whether overwrites' store times wait in memory (see ``Cache.stored_at``)."""
        return bool(self._stored)

    def pending(self) -> bool:
        if self.hits or self.misses or self._access or self._stored:
            return True
        with self._lock:
            calls = list(self._calls.values())
        return any(counts.hits or counts.misses for counts in calls)

    @staticmethod
    def _take_calls(calls: list[CallCounts]) -> list[tuple[CallCounts, int, int]]:
        taken = []
        for counts in calls:
            hits, misses = counts.take()
            if hits or misses:
                taken.append((counts, hits, misses))
        return taken

    def release_thread(self) -> None:
        """Close the calling thread's connection to the store, if idle."""
        self._store.close_thread()

    def flush(self, *, best_effort: bool = False) -> None:
        """Write buffered counts and accesses; with *best_effort*, a busy database defers it."""
        with self._lock:
            self._last_flush = time.monotonic()
            hits, misses, access, stored = self.hits, self.misses, self._access, self._stored
            self.hits = self.misses = 0
            self._access = {}
            self._stored = {}
            on_read = self.on_read
            calls = self._take_calls(list(self._calls.values()))
        if not (hits or misses or access or stored or calls):
            return
        try:
            with self._store.write(
                retry=False, timeout=0.05 if best_effort else None, quiet=True
            ) as conn:
                con = conn.con
                assert con is not None
                if hits or misses:
                    con.execute(_sql.ADD_STATS, (hits, misses))
                if access:
                    sql = (
                        _sql.TOUCH_ACCESS_TIME
                        if on_read == "access_time"
                        else _sql.TOUCH_ACCESS_COUNT
                    )
                    con.executemany(sql, [(value, rowid) for rowid, value in access.items()])
                if stored:
                    con.executemany(
                        _sql.TOUCH_STORE_TIME, [(at, at, rowid) for rowid, at in stored.items()]
                    )
                if calls:
                    con.executemany(
                        _sql.ADD_FUNCTION_CALLS,
                        [(counts.name, h, m) for counts, h, m in calls],
                    )
        except (Timeout, DiskStoreError):
            for counts, function_hits, function_misses in calls:
                counts.restore(function_hits, function_misses)
            if not best_effort:
                raise
            with self._lock:  # keep what could not be written for the next attempt
                self.hits += hits
                self.misses += misses
                for rowid, value in access.items():
                    if on_read == "access_count":
                        self._access[rowid] = self._access.get(rowid, 0) + value
                    else:
                        self._access.setdefault(rowid, value)
                for rowid, at in stored.items():
                    self._stored.setdefault(rowid, at)

    def _forget_buffers(self) -> None:
        """Drop everything buffered (in a forked child: it belongs to the parent)."""
        self.hits = self.misses = 0
        self._access = {}
        self._stored = {}
        for counts in self._calls.values():
            counts.forget()
        self._last_flush = time.monotonic()

    def reset(self) -> None:
        with self._lock:
            self.hits = self.misses = 0
