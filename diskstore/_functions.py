"""Memoized results as ordinary items: what ``memoize`` asks of a ``Cache``.

A memoized result is an item of the cache like any other, under the key that
``f.__cache_key__(...)`` returns, so ``cache[key]``, ``len``, iteration, ``clear()``,
``evict(tag)``, ``expire()`` and ``cull()`` all see it, as in diskcache. Its row also records
which function stored it (the ``functions`` table names them), so ``f.cache_clear()`` and
``f.cache_info().currsize`` go through an index over that column instead of the whole cache.
"""

from __future__ import annotations

from typing import Any

from . import _clock, _sql
from ._base import CacheBase
from ._constants import ENOVAL
from ._exceptions import Timeout

_CHUNK = 100


class FunctionsMixin(CacheBase):
    """The internal protocol between :mod:`diskstore._memoize` and a cache."""

    def stored_at(self, key: Any, retry: bool = False) -> float | None:
        """When the current value of *key* was stored (``time.time()`` seconds), or None.

        None when the key is missing or expired. Memoize uses it to tell a result's age.
        Store times of this process's overwrites, normally written back within a second,
        are written first, so the answer is exact here and in every other process.
        """
        bookkeeper = self._shared.bookkeeper
        if bookkeeper.stores_pending():
            bookkeeper.flush()
        db_key, raw = self._disk.put(key)
        rows = self._store.run(
            _sql.SELECT_STORE_TIME, (self._ns, db_key, raw, _clock.now()), retry=retry
        )
        return float(rows[0][0]) if rows else None

    def _function_id(self, name: str) -> int | None:
        """The id of memoized function *name*, created on first use (None: read-only, new)."""
        known = self._shared.functions
        fn = known.get(name)
        if fn is not None:
            return fn
        rows = self._store.run(_sql.SELECT_FUNCTION, (name,), retry=True)
        if not rows:
            if self._read_only:
                return None
            with self._store.write(retry=True) as conn:
                con = conn.con
                assert con is not None
                con.execute(_sql.INSERT_FUNCTION, (name,))
                rows = con.execute(_sql.SELECT_FUNCTION, (name,)).fetchall()
        fn = known[name] = int(rows[0][0])
        return fn

    def _memo_store(
        self, function: str, key: Any, value: Any, expire: float | None, tag: Any
    ) -> None:
        """Store a memoized result of *function* under *key* (an ordinary ``set``)."""
        self._store_item(  # type: ignore[attr-defined]
            key, value, expire, False, tag, True, False,
            only_if_missing=False, fn=self._function_id(function),
        )  # fmt: skip

    def _memo_lookup(self, key: Any, mmap_mode: str | None = None) -> Any:
        """Read *key* without counting a hit or miss (the second look of a single flight)."""
        db_key, raw = self._disk.put(key)
        return self._get_plain(  # type: ignore[attr-defined]
            key, db_key, raw, ENOVAL, False, False, False, True, count=False, mmap_mode=mmap_mode
        )

    def _memo_count(self, function: str) -> int:
        """How many results of *function* this view holds (expired ones included)."""
        fn = self._function_id(function)
        if fn is None:
            return 0
        rows = self._store.run(_sql.COUNT_FUNCTION_ITEMS, (fn, self._ns), retry=True)
        return int(rows[0][0])

    def _memo_clear(self, function: str, retry: bool = True) -> int:
        """Remove every result of *function* in this view; return how many."""
        fn = self._function_id(function)
        if fn is None:
            return 0
        removed = 0
        try:
            while True:
                count, _ = self._freeing(
                    lambda: self._delete_chunk(
                        _sql.SELECT_FUNCTION_CHUNK, (fn, self._ns, _CHUNK), retry
                    )
                )
                removed += count
                if count < _CHUNK:
                    return removed
        except Timeout as exc:
            raise Timeout(removed) from exc

    def memoized_functions(self) -> dict[str, tuple[int, int]]:
        """Each memoized function with results here: ``{name: (items, file bytes)}``."""
        found: dict[str, tuple[int, int]] = {}
        for fn, name in self._store.run(_sql.SELECT_FUNCTIONS, retry=True):
            rows = self._store.run(_sql.COUNT_FUNCTION_ITEMS, (fn, self._ns), retry=True)
            if rows[0][0]:
                found[name] = (int(rows[0][0]), int(rows[0][1]))
        return found
