"""Bulk removal, culling, statistics and settings of a cache."""

from __future__ import annotations

import math
import os
import sqlite3
import warnings
from collections.abc import Callable
from typing import Any

from .._common import _clock
from .._common._constants import ENOVAL
from .._common._exceptions import IntegrityError, SettingsError, Timeout
from .._fs._durability import defer_limit
from .._fs._filesystems import damage_hint
from .._storage import _sql
from .._storage._policies import POLICIES
from .._storage._schema import ensure_indexes
from .._storage._settings import METADATA, Settings, check_names, normalize, persistable
from ._base import _CHUNK, CacheBase, _check_tag


class MaintenanceMixin(CacheBase):
    """Maintenance operations of :class:`~diskstore.Cache`."""

    def _remove_batches(
        self, select: str, params: tuple[Any, ...], retry: bool, *, resume: bool = False
    ) -> int:
        """Delete rows chosen by *select* (which takes a trailing LIMIT) in batches.

        With *resume*, *select* also takes the rowid to resume after (just before the
        LIMIT), so rows it passes over without picking are read once, not once per batch.
        A ``Timeout`` part-way carries the number already removed, as in diskcache.
        """
        removed = 0
        after: tuple[int, ...] = (0,) if resume else ()
        try:
            while True:
                count, last = self._delete_chunk(select, (*params, *after, _CHUNK), retry)
                if not count:
                    break
                if resume and last <= after[0]:
                    # The statement asks for rowids past the last one: only a damaged table
                    # hands back earlier ones, and the loop would never end.
                    path = self._store.path
                    raise IntegrityError(
                        f"database {path} is damaged: rows come back out of order"
                        f"{damage_hint(path)}"
                    )
                removed += count
                if resume:
                    after = (last,)
        except Timeout as exc:
            raise Timeout(removed) from exc
        return removed

    def clear(self, retry: bool = False) -> int:
        """Remove every item (of this namespace); return how many were removed."""
        params: tuple[Any, ...] = ()
        if self._ns == 0:
            select = _sql.SELECT_NS_ITEMS
        else:
            select, params = _sql.SELECT_NS_ITEMS_VIEW, (self._ns,)
        return self._freeing(lambda: self._remove_batches(select, params, retry, resume=True))

    def evict(self, tag: Any, retry: bool = False) -> int:
        """Remove every item (of this namespace) labelled *tag*; return how many.

        With the tag index (``tag_index=True``) this searches the index; without it, it
        reads the namespace's rows once, in rowid order.
        """
        tag = _check_tag(tag)
        params: tuple[Any, ...]
        if self._shared.settings.tag_index:
            select, params, resume = _sql.SELECT_TAGGED, (self._ns, tag), False
        elif self._ns == 0:
            select, params, resume = _sql.SELECT_TAGGED_SCAN, (tag,), True
        else:
            select, params, resume = _sql.SELECT_TAGGED_SCAN_VIEW, (self._ns, tag), True
        return self._freeing(lambda: self._remove_batches(select, params, retry, resume=resume))

    def expire(self, now: float | None = None, retry: bool = False) -> int:
        """Remove every expired item (in the whole directory); return how many."""
        if now is None:
            now = _clock.now()
        elif type(now) not in (int, float) or math.isnan(now):
            raise TypeError(f"now must be a timestamp or None, not {now!r}")
        moment = now
        return self._freeing(lambda: self._remove_batches(_sql.SELECT_EXPIRED, (moment,), retry))

    def cull(self, retry: bool = False) -> int:
        """Remove expired items, then evict by policy until the volume fits ``size_limit``."""
        return self._freeing(lambda: self._cull(_clock.now(), None, retry))

    def stats(self, enable: bool = True, reset: bool = False) -> tuple[int, int]:
        """Return ``(hits, misses)``; *enable* turns counting on or off, *reset* zeroes it."""
        if enable not in (True, False):
            raise TypeError(f"enable must be a bool, not {enable!r}")
        bookkeeper = self._shared.bookkeeper
        bookkeeper.flush()
        rows = self._store.run(_sql.SELECT_STATS, retry=True)
        hits, misses = int(rows[0][0]), int(rows[0][1])
        if reset:
            with self._store.write(retry=True) as conn:
                conn.con.execute(_sql.RESET_STATS)  # type: ignore[union-attr]
            bookkeeper.reset()
        if bool(enable) != self._shared.settings.statistics:
            self.reset("statistics", bool(enable))
        return hits, misses

    def _metadata_now(self) -> dict[str, int]:
        self._shared.bookkeeper.flush()
        count, size = self._store.run(_sql.SELECT_TOTALS, retry=True)[0]
        hits, misses = self._store.run(_sql.SELECT_STATS, retry=True)[0]
        return {"count": int(count), "size": int(size), "hits": int(hits), "misses": int(misses)}

    def _reset_metadata(self, key: str, value: Any) -> int:
        """diskcache's counters as settings: ``reset('count')`` reads the current value into
        the ``count`` attribute (which, as in diskcache, is not updated until then)."""
        snapshot = self._shared.metadata
        if value is ENOVAL:
            snapshot[key] = self._metadata_now()[key]
            return snapshot[key]
        if key in ("count", "size"):
            raise SettingsError(
                f"{key} is kept exact by the cache and cannot be set (got {value!r}); "
                "check(fix=True) repairs it if it is ever wrong"
            )
        if type(value) is not int or value < 0:
            raise SettingsError(f"{key} must be a non-negative int, not {value!r}")
        self._shared.bookkeeper.flush()
        with self._store.write(retry=True) as conn:
            conn.con.execute(_sql.SET_STAT, (value, key))  # type: ignore[union-attr]
        snapshot[key] = value
        return value

    def reset(self, key: str, value: Any = ENOVAL, update: bool = True) -> Any:
        """Read (no *value*) or change a setting, persisting it; return its value.

        With ``update=False`` the stored value is read into this cache without writing.
        """
        if key in METADATA:
            return self._reset_metadata(key, value)
        check_names({key: None})
        shared = self._shared
        if value is ENOVAL:
            rows = self._store.run(_sql.SELECT_SETTINGS, retry=True)
            stored = {name: stored_value for name, stored_value in rows}
            if key in stored:
                value = normalize(key, stored[key])
                settings = shared.settings.replace(**{key: value})
                self._apply_settings(settings, None)
            return getattr(shared.settings, key)
        value = normalize(key, value)
        settings = shared.settings.replace(**{key: value})  # validates
        if key == "sqlite_auto_vacuum" and value != shared.settings.sqlite_auto_vacuum:
            raise SettingsError("sqlite_auto_vacuum can only be chosen when a cache is created")
        if update and persistable(key, value):
            with self._store.write(retry=True) as conn:
                con = conn.con
                assert con is not None
                con.execute(_sql.upsert_setting(key), (key, value))
                self._apply_settings(settings, con)
            if key.startswith("sqlite_"):
                # Connections take pragmas when they open: reopen this cache's idle ones.
                self._store.close_idle_connections()
        else:
            self._apply_settings(settings, None)
        return value

    def _apply_settings(self, settings: Settings, con: sqlite3.Connection | None) -> None:
        shared = self._shared
        old = shared.settings
        shared.settings = settings
        policy = POLICIES[settings.eviction_policy]
        shared.bookkeeper.configure(statistics=settings.statistics, policy=policy)
        if con is not None and (
            old.eviction_policy != settings.eviction_policy or old.tag_index != settings.tag_index
        ):
            ensure_indexes(con, settings)
        disk = self._disk
        for name, attr in (
            ("disk_min_file_size", "min_file_size"),
            ("disk_pickle_protocol", "pickle_protocol"),
            ("disk_compress_threshold", "compress_threshold"),
            ("disk_compress_level", "compress_level"),
        ):
            setattr(disk, attr, getattr(settings, name))
        if old.disk_compress_level != settings.disk_compress_level:
            disk._local.__dict__.clear()
        self._store.defer_limit = defer_limit(settings.size_limit)
        pragmas = {n: v for n, v in settings.as_dict().items() if n.startswith("sqlite_")}
        if pragmas != self._store.pragmas:
            self._store.pragmas = pragmas
            if con is None:
                self._store.close_idle_connections()

    def create_tag_index(self) -> None:
        """Index tags, so :meth:`evict` does not scan the table."""
        self.reset("tag_index", True)

    def drop_tag_index(self) -> None:
        """Drop the tag index."""
        self.reset("tag_index", False)

    def check(self, fix: bool = False, retry: bool = False) -> list[warnings.WarningMessage]:
        """Verify the database and value files; with *fix*, repair what is found.

        Returns the problems found as ``warnings.WarningMessage`` objects, whatever the
        caller's warning filters.
        """
        from ._check import run_check

        return run_check(self, fix=fix, retry=retry)

    def adopt_diskcache(
        self, *, trust: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Trust what diskcache wrote in this directory: its pickles load from now on.

        diskstore opens a diskcache directory in place, but reads the values diskcache
        pickled as misses (with a warning): diskcache stores pickles unsigned, and loading
        one runs whatever code it names. With ``trust=True`` this signs them in place,
        without loading them, so diskcache still reads them too; keys diskcache pickled are
        re-keyed to diskstore's encoding. Without *trust* it raises
        :class:`UntrustedDataError` and changes nothing. Returns the number of entries
        changed; *progress* hears ``(rows walked, total)``.
        """
        from ._adopt import adopt

        return adopt(self, trust=trust, progress=progress)

    def import_diskcache(
        self,
        source: str | os.PathLike[str],
        *,
        trust: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Copy every item (key, value, expiry, tag) of a diskcache directory into this cache.

        *source* is a diskcache ``Cache``, ``Deque`` or ``Index`` directory, or a
        ``FanoutCache`` directory (its shards ``000``, ``001``, ...). diskcache stores
        pickles unsigned, so loading them can run code planted in *source*: a source holding
        any pickled key or value raises :class:`UntrustedDataError` (copying nothing) unless
        *trust* is true. Returns the number of items copied; expired items are left out.
        *progress*, if given, is called with ``(done, total)`` after each chunk.
        """
        from .._storage._migrate import import_diskcache

        return import_diskcache(
            self,  # type: ignore[arg-type]  # a Cache: its set() comes from the other parts
            source,
            trust=trust,
            progress=progress,
            batch=lambda: self._store.savepoint_txn(True),
        )
