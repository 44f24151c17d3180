"""What a memoized function reports: counts, callbacks, log records and time saved.

Every hit, miss (with the seconds the function ran) and background refresh goes through
one :class:`Reporter`, which keeps the per-process counts behind ``cache_info()``, calls the
``on_hit``/``on_miss`` callbacks given to ``memoize``, and writes DEBUG records to the
``diskstore`` logger (silent under logging's default WARNING level). A refresh that fails
is logged at WARNING, since the caller that triggered it has already returned.

A reporter counts its hits and misses twice: for ``cache_info()`` (this process, this
function object), and in a :class:`CallCounts` that a diskstore cache keeps for the
function's name and writes back with its other bookkeeping (see
:mod:`diskstore._storage._bookkeeping`), so every process's calls add up in the database. Both are
increments under the one lock a call takes anyway (the reporter locks with its
``CallCounts``' lock): a hit costs no extra lock and no write.

The compute time a hit saved is what the same result took to compute in this process when
it was computed here, else the mean compute time of this process's misses: a process that
only ever reads a result does not know what it cost, so this is an estimate.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger("diskstore")

#: Called with the call's key on a hit.
OnHit = Callable[[tuple[Any, ...]], object]
#: Called with the call's key and the seconds the function ran, on a miss.
OnMiss = Callable[[tuple[Any, ...], float], object]

_REMEMBERED = 4096  # compute times kept for keys computed in this process


class CallCounts:
    """Hits and misses of one memoized function name not yet written back to its cache.

    A cache keeps one per name and hands it to every function memoized under that name, so
    counts survive a memoized function that is thrown away before the next write-back.
    """

    __slots__ = ("hits", "lock", "misses", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def take(self) -> tuple[int, int]:
        """Return the hits and misses counted since the last take, and start again at zero."""
        with self.lock:
            taken = self.hits, self.misses
            self.hits = self.misses = 0
        return taken

    def restore(self, hits: int, misses: int) -> None:
        """Give back counts that could not be written, for the next attempt."""
        with self.lock:
            self.hits += hits
            self.misses += misses

    def forget(self) -> None:
        """In a forked child: the counts are the parent's to write back, not the child's.

        The lock is made anew too, since a thread of the parent may have held it at the fork.
        """
        self.lock = threading.Lock()
        self.hits = self.misses = 0


class Reporter:
    """Counts, callbacks and log records of one memoized function (thread-safe)."""

    __slots__ = (
        "_durations",
        "computed_seconds",
        "counts",
        "hits",
        "misses",
        "name",
        "on_hit",
        "on_miss",
        "refreshes",
        "saved_seconds",
    )

    def __init__(
        self,
        name: str,
        on_hit: OnHit | None,
        on_miss: OnMiss | None,
        counts: CallCounts | None = None,
    ) -> None:
        self.name = name
        self.on_hit = on_hit
        self.on_miss = on_miss
        #: What the cache writes back (a private one when the cache records no calls).
        self.counts = counts if counts is not None else CallCounts(name)
        self._durations: OrderedDict[Hashable, float] = OrderedDict()
        self.hits = self.misses = self.refreshes = 0
        self.computed_seconds = self.saved_seconds = 0.0

    @property
    def lock(self) -> threading.Lock:
        """The lock every count takes: the ``CallCounts``' own, so a call takes one lock."""
        return self.counts.lock

    def hit(self, key: tuple[Any, ...]) -> None:
        counts = self.counts
        with counts.lock:
            self.hits += 1
            counts.hits += 1
            saved = self._duration(key)
            self.saved_seconds += saved
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("memoize hit: %s key %r (saved ~%.6fs)", self.name, key, saved)
        if self.on_hit is not None:
            self.on_hit(key)

    def miss(self, key: tuple[Any, ...], seconds: float) -> None:
        counts = self.counts
        with counts.lock:
            self.misses += 1
            counts.misses += 1
            self.computed_seconds += seconds
            self._remember(key, seconds)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("memoize miss: %s key %r computed in %.6fs", self.name, key, seconds)
        if self.on_miss is not None:
            self.on_miss(key, seconds)

    def refreshed(self, key: tuple[Any, ...], seconds: float) -> None:
        with self.lock:
            self.refreshes += 1
            self._remember(key, seconds)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("memoize refresh: %s key %r computed in %.6fs", self.name, key, seconds)

    def refresh_failed(self, key: tuple[Any, ...]) -> None:
        logger.warning(
            "memoize refresh of %s key %r failed; the stored result is kept",
            self.name,
            key,
            exc_info=True,
        )

    def reset(self) -> None:
        """Start counting afresh (``cache_clear()``), dropping what awaits writing back."""
        counts = self.counts
        with counts.lock:
            self.hits = self.misses = self.refreshes = 0
            counts.hits = counts.misses = 0
            self.computed_seconds = self.saved_seconds = 0.0
            self._durations.clear()

    def _remember(self, key: tuple[Any, ...], seconds: float) -> None:
        try:
            self._durations[key] = seconds
        except TypeError:  # an unhashable key part: only the mean knows it
            return
        self._durations.move_to_end(key)
        if len(self._durations) > _REMEMBERED:
            self._durations.popitem(last=False)

    def _duration(self, key: tuple[Any, ...]) -> float:
        try:
            known = self._durations.get(key)
        except TypeError:
            known = None
        if known is not None:
            return known
        return self.computed_seconds / self.misses if self.misses else 0.0
