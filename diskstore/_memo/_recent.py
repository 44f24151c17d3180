"""A memoized function's recent plain results, returned from memory while the cache is unchanged.

A memoized hit reads one row, and that read is most of a hit's cost. This process often
knows the answer already: it stored the result itself, or read it a moment ago. A
:class:`RecentResults` keeps such results, of one memoized function, as long as the cache
directory's change counter (see :mod:`diskstore._fs._changes`, which every write transaction of
every process advances) says nothing was written since:

- a result is kept only when it was read with no write beginning or ending meanwhile, or
  when this process's store of it was the only write since the results were last current
  (the counter moved by exactly one); the results then move on to the new change number;
- any other write, by any thread or process (``cache_clear()``, ``delete``, another
  function's result, a cull, an eviction), leaves the counter elsewhere, and every kept
  result is ignored until the next read starts them afresh;
- the expiry time goes with each result and is checked on every hit.

Only plain values are kept: ``int``, ``float``, ``bool``, ``None`` and short ``str`` and
``bytes``, which a cache returns as equal objects of the same type and which cannot be
mutated, so handing out the same object twice is safe; and only under keys made of such
values (see ``_exact``), which covers calls with plain positional and keyword arguments.
Anything else is read from the database each time, as before. A cache whose reads must
be recorded (statistics on, or an eviction policy that tracks reads) keeps nothing here, so
``stats()`` and eviction see every hit.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .._common import _clock
from .._common._constants import ENOVAL

__all__ = ["RecentResults", "Version"]

#: Returns the cache's current change number, or None when nothing may be trusted now (a
#: write is under way, or reads must be recorded).
Version = Callable[[], "int | None"]

_SCALARS = frozenset({int, float, bool, type(None)})
_SEQUENCES = frozenset({str, bytes})
#: Longest ``str``/``bytes`` kept; longer values are read from the cache.
MAX_LENGTH = 1024
#: Results kept per function; past this the oldest generation is dropped whole.
MAX_ENTRIES = 4096

_Entries = dict[str, tuple[Any, "float | None"]]
#: Key parts whose ``repr`` tells apart exactly the keys the cache tells apart.
_KEY_PARTS = frozenset({str, bytes, int, float, bool, type(None)})


def _exact(key: tuple[Any, ...]) -> str | None:
    """The key as the entries are indexed, or None when it cannot be kept.

    Not the tuple itself: ``(1,)``, ``(True,)`` and ``(1.0,)`` are equal dict keys, and
    ``0.0 == -0.0``, but a cache stores them apart. Their ``repr`` differs, and for keys of
    plain parts only it is one-to-one. Other keys (nested tuples, objects) are not kept.
    """
    for part in key:
        if type(part) not in _KEY_PARTS:
            return None
    return repr(key)


def keepable(value: object) -> bool:
    """Whether *value* is plain enough to be handed out more than once."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    return kind in _SEQUENCES and len(value) <= MAX_LENGTH  # type: ignore[arg-type]


class RecentResults:
    """Plain results of one memoized function, current as of one change number."""

    __slots__ = ("__weakref__", "_lock", "_state", "plain", "version")

    def __init__(self, version: Version) -> None:
        self.version = version
        #: Whether the function's latest result was plain: reads that could be kept cost a
        #: little more (they need the expiry time), so a function whose results are not
        #: plain does not pay for them.
        self.plain = True
        self._lock = threading.Lock()
        #: (the change number the entries are current for, the entries)
        self._state: tuple[int, _Entries] = (-1, {})
        _instances.add(self)

    def forget_after_fork(self) -> None:
        """A parent thread may have held the lock at the fork: the child gets its own."""
        self._lock = threading.Lock()

    def keeps(self, key: tuple[Any, ...]) -> bool:
        """Whether a read of *key* may be kept: worth asking the cache for its expiry time."""
        return self.plain and _KEY_PARTS.issuperset(map(type, key))

    def get(self, key: tuple[Any, ...]) -> Any:
        """The kept result of *key* if the cache has not changed since; else ``ENOVAL``."""
        seen, entries = self._state
        exact = _exact(key)
        entry = None if exact is None else entries.get(exact)
        if entry is None or self.version() != seen:
            return ENOVAL
        value, expire_at = entry
        if expire_at is not None and expire_at <= _clock.now():
            return ENOVAL
        return value

    def read(self, key: tuple[Any, ...], value: Any, expire_at: float | None, before: int) -> None:
        """Keep *value*, read from the cache between change numbers *before* and now."""
        if not keepable(value):
            self.plain = False
            return
        if self.version() != before:
            return
        with self._lock:
            seen, entries = self._state
            if seen != before:
                if seen > before:
                    return  # another thread already moved on
                entries = {}
            self._put(entries, key, value, expire_at)
            self._state = (before, entries)

    def stored(
        self, key: tuple[Any, ...], value: Any, expire_at: float | None, before: int | None
    ) -> None:
        """After this process stored *value* under *key*: if that store was the only write
        since *before*, move the results on to the new change number, *key* updated (the
        others dropped if they were older than *before*).

        Otherwise the kept results no longer match the counter and go unused.
        """
        self.plain = keepable(value)
        if before is None:
            return
        with self._lock:
            seen, entries = self._state
            if self.version() != before + 1:
                return
            if seen != before:
                # The kept results were already out of date, but this store was the only
                # write since *before*: the key's value is known as of the new number.
                entries = {}
            if self.plain:
                self._put(entries, key, value, expire_at)
            else:
                self._discard(entries, key)
            self._state = (before + 1, entries)

    @staticmethod
    def _put(entries: _Entries, key: tuple[Any, ...], value: Any, expire_at: float | None) -> None:
        exact = _exact(key)
        if exact is None:
            return
        if len(entries) >= MAX_ENTRIES and exact not in entries:
            entries.clear()
        entries[exact] = (value, expire_at)

    @staticmethod
    def _discard(entries: _Entries, key: tuple[Any, ...]) -> None:
        exact = _exact(key)
        if exact is not None:
            entries.pop(exact, None)


_instances: weakref.WeakSet[RecentResults] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for recent in list(_instances):
        recent.forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
