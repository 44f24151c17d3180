"""Memoized results as ordinary items: what ``memoize`` asks of a ``Cache``.

A memoized result is an item of the cache like any other, under the key that
``f.__cache_key__(...)`` returns, so ``cache[key]``, ``len``, iteration, ``clear()``,
``evict(tag)``, ``expire()`` and ``cull()`` all see it, as in diskcache. Its row also records
which function stored it (the ``functions`` table names them), so ``f.cache_clear()`` and
``f.cache_info().currsize`` go through an index over that column instead of the whole cache.

The same table keeps each function's calls over every process that used the database: how
many found a stored result (hits) and how many ran the function (misses), as
``cache_info()`` counts them. They are counted in memory and written back with the cache's
other bookkeeping (see :mod:`diskstore._storage._bookkeeping`), so a hit costs no write; another
process sees them within about a second, and all of them once the counting process has
closed its cache. ``f.cache_clear()`` sets them back to zero, as it does ``cache_info()``'s.
They are kept per function name for the whole database, all namespaces together.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from .._common import _clock
from .._common._constants import ENOVAL
from .._common._exceptions import Timeout
from .._common._record import Record
from .._storage import _sql
from ._base import CacheBase

if TYPE_CHECKING:
    from .._common._hooks import CallCounts, OnHit, OnMiss
    from .._memo._memoize import MemoizeDecorator

_CHUNK = 100
#: The first schema version whose ``functions`` table counts hits and misses.
_CALLS_SCHEMA = 3


class FunctionStats(Record):
    """One memoized function as a cache records it: stored results and calls.

    ``items`` and ``file_bytes`` are the function's stored results in this view and the
    bytes their value files take. ``hits`` and ``misses`` count the calls of every process
    since the function's last ``cache_clear()`` (written back about every second and on
    close): a hit found a result, a miss ran the function.

    >>> stats = FunctionStats(items=2, file_bytes=0, hits=3, misses=1)
    >>> stats.calls, stats.hit_rate
    (4, 0.75)
    >>> FunctionStats(items=0, file_bytes=0, hits=0, misses=0).hit_rate is None
    True
    """

    items: int
    file_bytes: int
    hits: int
    misses: int

    @property
    def calls(self) -> int:
        """Hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """The share of calls that were hits, from 0.0 to 1.0; None before any call."""
        calls = self.calls
        return self.hits / calls if calls else None


def combine_function_stats(parts: Iterable[dict[str, FunctionStats]]) -> dict[str, FunctionStats]:
    """Add up per-function statistics of several caches (a fanout cache's shards), by name."""
    found: dict[str, FunctionStats] = {}
    for part in parts:
        for name, stats in part.items():
            total = found.get(name)
            if total is not None:
                stats = FunctionStats(
                    total.items + stats.items,
                    total.file_bytes + stats.file_bytes,
                    total.hits + stats.hits,
                    total.misses + stats.misses,
                )
            found[name] = stats
    return dict(sorted(found.items()))


class FunctionsMixin(CacheBase):
    """The internal protocol between :mod:`diskstore._memo._memoize` and a cache."""

    def memoize(
        self,
        name: str | None = None,
        typed: bool = False,
        expire: float | None = None,
        tag: str | bytes | int | float | None = None,
        ignore: Collection[str | int] = (),
        *,
        version: str | int | None = None,
        hash_source: bool = False,
        key: Callable[..., Any] | None = None,
        store_if: Callable[[Any], object] | None = None,
        single_flight: bool = True,
        lock_timeout: float | None = 60.0,
        refresh_after: float | None = None,
        round_trip: bool = False,
        mmap_mode: str | None = None,
        on_hit: OnHit | None = None,
        on_miss: OnMiss | None = None,
        **unknown: Any,
    ) -> MemoizeDecorator:
        """Memoize a function in this cache: ``@cache.memoize()`` above a ``def``.

        The first five arguments are diskcache's: ``name`` (default: the function's
        ``module.qualname``) identifies the function's results; ``typed=True`` keys
        ``f(3)`` and ``f(3.0)`` apart; ``expire`` is in seconds (``0``: look results up but
        never store them); ``tag`` is stored with each result; ``ignore`` lists parameter
        names or positions left out of the key.

        Keyword-only: ``version`` is part of the key (bump it when the function's meaning
        changes); ``hash_source=True`` adds a hash of the function's source; ``key``
        replaces the argument-derived part of the key; ``store_if(result)`` saying no
        returns the result unstored; ``single_flight`` makes concurrent misses of one key
        run the function once while the others wait up to ``lock_timeout`` seconds;
        ``refresh_after`` returns a result older than that at once and recomputes it in
        the background; ``round_trip=True`` returns what the cache gives back even on a
        miss; ``mmap_mode='r'`` returns numpy arrays memory-mapped from their files;
        ``on_hit(key)`` and ``on_miss(key, seconds)`` are called after each hit and each
        computation. Any other keyword is refused with a ``TypeError``.

        ``cache.memoize(...)`` is ``diskstore.memoize(cache, ...)``: see
        :func:`diskstore.memoize` and [Memoizing functions](memoize.md) for the details.

        >>> import tempfile, diskstore
        >>> cache = diskstore.Cache(tempfile.mkdtemp())
        >>> @cache.memoize(expire=60, tag="squares")
        ... def square(x):
        ...     return x * x
        >>> square(4), square(4), square.cache_info().hits
        (16, 16, 1)
        >>> cache.close()
        """
        # Imported on first use: memoize pulls in inspect, hashing and cloudpickle, which a
        # cache that never memoizes does not need.
        from .._memo._memoize import memoize

        return memoize(
            self,  # type: ignore[arg-type]  # a Cache: the other parts give it what memoize asks
            name,
            typed,
            expire,
            tag,
            ignore,
            version=version,
            hash_source=hash_source,
            key=key,
            store_if=store_if,
            single_flight=single_flight,
            lock_timeout=lock_timeout,
            refresh_after=refresh_after,
            round_trip=round_trip,
            mmap_mode=mmap_mode,
            on_hit=on_hit,
            on_miss=on_miss,
            **unknown,
        )

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

    def _memo_legacy(self) -> bool:
        """Whether results diskcache's ``memoize`` stored were adopted here (see _adopt)."""
        return self._shared.legacy_memoize

    def _memo_lookup(self, key: Any, mmap_mode: str | None = None) -> Any:
        """Read *key* without counting a hit or miss (the second look of a single flight)."""
        db_key, raw = self._disk.put(key)
        return self._get_plain(  # type: ignore[attr-defined]
            key, db_key, raw, ENOVAL, False, False, False, True, count=False, mmap_mode=mmap_mode
        )

    def _memo_version(self) -> int | None:
        """The change number memoize may keep results in memory for (see _recent), or None.

        None while a write is under way, when the directory has no change counter, when
        reads must reach the database to be recorded (statistics, or a policy that tracks
        reads), and when a Disk subclass with its own store/fetch hooks decides what reads
        return.
        """
        changes = self._store.changes
        if changes is None or self._shared.bookkeeper.active or self._disk.hooked:
            return None
        try:
            begun, done = changes.read()
        except ValueError:  # the counter's mapping was closed with the cache
            return None
        return begun if begun == done else None

    def _memo_calls(self, function: str) -> CallCounts | None:
        """Where *function* counts the calls this cache writes back (None: it writes none)."""
        return self._shared.bookkeeper.calls_of(function)

    def _memo_count(self, function: str) -> int:
        """How many results of *function* this view holds (expired ones included)."""
        fn = self._function_id(function)
        if fn is None:
            return 0
        rows = self._store.run(_sql.COUNT_FUNCTION_ITEMS, (fn, self._ns), retry=True)
        return int(rows[0][0])

    def _memo_clear(self, function: str, retry: bool = True) -> int:
        """Remove every result of *function* in this view and zero its calls; return how many.

        This process's unwritten counts must be dropped first (``Reporter.reset``); counts
        other processes hold in memory at this moment still arrive afterwards.
        """
        fn = self._function_id(function)
        if fn is None:
            return 0
        with self._store.write(retry=retry) as conn:
            conn.con.execute(_sql.RESET_FUNCTION_CALLS, (function,))  # type: ignore[union-attr]
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
        """Each memoized function with results here: ``{name: (items, file bytes)}``.

        :meth:`function_stats` adds each function's hits and misses.
        """
        found: dict[str, tuple[int, int]] = {}
        for fn, name in self._store.run(_sql.SELECT_FUNCTIONS, retry=True):
            rows = self._store.run(_sql.COUNT_FUNCTION_ITEMS, (fn, self._ns), retry=True)
            if rows[0][0]:
                found[name] = (int(rows[0][0]), int(rows[0][1]))
        return found

    def function_stats(self) -> dict[str, FunctionStats]:
        """Each memoized function with results here or calls recorded, by name, sorted.

        Calls this process has counted but not yet written back are written first, so the
        answer includes them. A read-only cache of an older database, which it cannot
        migrate, reports no calls.
        """
        self._shared.bookkeeper.flush()
        version = int(self._store.run(_sql.GET_USER_VERSION, retry=True)[0][0])
        if version >= _CALLS_SCHEMA:
            rows = self._store.run(_sql.SELECT_FUNCTION_CALLS, retry=True)
        elif version == _CALLS_SCHEMA - 1:  # only a read-only cache sees an older schema
            old = self._store.run(_sql.SELECT_FUNCTIONS, retry=True)
            rows = [(fn, name, 0, 0) for fn, name in old]
        else:
            rows = []  # before memoized results recorded their function
        found: dict[str, FunctionStats] = {}
        for fn, name, hits, misses in rows:
            items, size = self._store.run(_sql.COUNT_FUNCTION_ITEMS, (fn, self._ns), retry=True)[0]
            if items or hits or misses:
                found[name] = FunctionStats(int(items), int(size), int(hits), int(misses))
        return found
