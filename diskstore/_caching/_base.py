"""What every part of ``Cache`` builds on: its state, row writes and removals, culling.

``Cache`` is assembled from small mixins (``_queue``, ``_iteration``, ``_maintenance``) over
this base, so that each concern stays in a module of its own.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from .._common._constants import ENOVAL
from .._common._exceptions import (
    CorruptionWarning,
    DiskcacheDirectoryWarning,
    IntegrityError,
    StorageFullError,
    Timeout,
    UntrustedPickle,
    warn_caller,
)
from .._fs._durability import Space
from .._fs._reserve import Reserve
from .._storage import _sql
from .._storage._bookkeeping import Bookkeeper
from .._storage._policies import POLICIES
from .._storage._settings import Settings
from .._storage._store import Conn, Store, translate
from .._values._disk import Disk
from .._values._modes import FLAG_PINNED, ROW_PINNED, to_row
from .._values._rows import Stored, sqlite_text
from ._memory import MemoryTier

_CHUNK = 100
T = TypeVar("T")


#: No value file is this large; a ``size`` column beyond it was tampered with.
_SANE_SIZE = 2**53


def _sane_row(row: Any) -> bool:
    """Whether a ``(rowid, mode, value, expire_time)`` row has the column types it must have.

    SQLite does not enforce column types: a tampered ``mode`` or ``expire_time`` holding
    text must read as a damaged entry, not raise ``TypeError`` in the comparison.
    """
    exp = row[3]
    return type(row[1]) is int and (exp is None or type(exp) is float or type(exp) is int)


def _expired(exp: Any, now: float) -> bool:
    """Whether an ``expire_time`` column value means the entry is gone.

    Anything but a number there was written by someone else, and reads as expired (a miss)
    rather than raising ``TypeError`` in the comparison.
    """
    if exp is None:
        return False
    if type(exp) is float or type(exp) is int:
        return bool(exp <= now)
    return True


def _check_expire(expire: Any, now: float) -> float | None:
    if expire is None:
        return None
    if type(expire) not in (int, float):
        raise TypeError(f"expire must be a number of seconds or None, not {expire!r}")
    if math.isnan(expire) or expire < 0:
        raise ValueError(f"expire must be a non-negative number of seconds, not {expire!r}")
    return now + float(expire)


def _check_tag(tag: Any) -> Any:
    if tag is None or type(tag) in (str, bytes, int, float):
        if type(tag) is float and math.isnan(tag):
            raise ValueError("tag must not be NaN")
        if type(tag) is str and not sqlite_text(tag):
            raise ValueError("tag must be text SQLite can store: it holds a lone surrogate")
        return tag
    raise TypeError(f"tag must be None, str, bytes, int or float, not {type(tag).__name__}")


class _Shared:
    """State shared by a cache and its namespace views."""

    def __init__(
        self,
        settings: Settings,
        bookkeeper: Bookkeeper,
        tier: MemoryTier | None,
        reserve: Reserve | None,
    ) -> None:
        self.settings = settings
        self.bookkeeper = bookkeeper
        self.tier = tier
        self.reserve = reserve
        self.written = 0  # bytes written since the last size probe
        self.next_expiry = math.inf  # the earliest expiry known to be in the cache
        self.namespaces: dict[str, int] = {"": 0}
        self.functions: dict[str, int] = {}  # memoized function name -> id
        self.warned_untrusted = False  # diskcache pickles: one warning per cache
        #: Results of diskcache's ``memoize`` were adopted here (see _adopt.py).
        self.legacy_memoize = False
        #: diskcache's counter attributes as last read (at open or by ``reset(name)``).
        self.metadata: dict[str, int] = {}

    @property
    def probe_every(self) -> int:
        """Bytes written between two size probes: a 32nd of the limit, within 1 KiB-256 KiB."""
        return min(max(self.settings.size_limit // 32, 1024), 1 << 18)


def _is_decode_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "decode" in str(exc).lower()


class CacheBase:
    """State and row-level helpers shared by the parts of :class:`~diskstore.Cache`."""

    _store: Store
    _disk: Disk
    _shared: _Shared
    _ns: int
    _ns_name: str
    _directory: str
    _read_only: bool

    @staticmethod
    def _shaped(value: Any, exp: float | None, tg: Any, expire_time: bool, tag: bool) -> Any:
        """The result shape diskcache gives: the value, plus expiry and/or tag if asked."""
        if expire_time and tag:
            return value, exp, tg
        if expire_time:
            return value, exp
        if tag:
            return value, tg
        return value

    @classmethod
    def _miss(cls, default: Any, expire_time: bool, tag: bool) -> Any:
        return cls._shaped(default, None, None, expire_time, tag)

    def _fetch_taken(
        self, outcome: str, key: Any, mode: int, filename: str | None, value: Any,
        ns: int, db_key: Any, raw: bool, sig: bytes | None, vsize: int, size: int,
    ) -> Any:  # fmt: skip
        """The value of a row a write takes out (a pop, a pull, an ``incr`` that replaces it).

        A damaged entry is *outcome* (``"removed"``) by that write rather than returned:
        the caller gets :data:`ENOVAL`, and a warning names the entry and the damage.
        """
        try:
            return self._disk.fetch_row(
                mode, filename, value, False,
                ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
            )  # fmt: skip
        except IntegrityError as exc:
            warn_caller(
                f"{outcome} cache entry {key!r} in {self._directory}, which failed "
                f"verification: {exc}",
                CorruptionWarning,
            )
            return ENOVAL

    def _report_corrupt(self, key: Any, exc: Exception) -> None:
        """Warn that an entry failed verification; the read is a miss, the entry stays.

        A pickle diskcache wrote is not damaged, only not yet trusted: its warning says how
        to trust it, once per cache object, rather than how to remove it.

        Nothing is deleted here: a reader with a damaged or foreign entry cannot tell a
        tampered row from one it merely cannot verify, and deleting on read would let one
        misconfigured process wipe a shared cache. ``check(fix=True)`` removes such entries.
        """
        if isinstance(exc, UntrustedPickle):
            if not self._shared.warned_untrusted:
                self._shared.warned_untrusted = True
                warn_caller(
                    f"cache entry {key!r} in {self._directory} is a pickle written by "
                    "diskcache, which diskstore does not unpickle unverified: it reads as a "
                    "miss. If you trust this directory's contents, sign them in place with "
                    "cache.adopt_diskcache(trust=True) or `diskstore adopt DIR --trust`",
                    DiskcacheDirectoryWarning,
                )
            return
        warn_caller(
            f"cache entry {key!r} in {self._directory} failed verification and reads as "
            f"a miss (check(fix=True) removes it): {exc}",
            CorruptionWarning,
        )

    def _put_row(
        self,
        conn: Conn,
        now: float,
        db_key: Any,
        raw: bool,
        stored: Stored,
        expire_time: float | None,
        tag: Any,
        pin: bool,
        only_if_missing: bool,
        fn: int | None = None,
    ) -> bool:
        """Write one item's row; *fn* names the memoized function whose result it is."""
        con = conn.con
        assert con is not None
        ns = self._ns
        tier = self._shared.tier
        if tier is not None:
            tier.discard((ns, db_key, raw))
        # Counts follow from the triggers on ``Cache`` (see _sql.TRIGGERS).
        mode = to_row(stored.mode | FLAG_PINNED if pin else stored.mode)
        if not only_if_missing:
            stored = self._publish(conn, stored)
            done = con.execute(
                _sql.UPSERT_ITEM,
                (
                    ns, db_key, raw, now, expire_time, now, tag, mode, stored.size,
                    stored.vsize, stored.filename, stored.value, stored.sig, fn,
                ),
            ).fetchall()  # fmt: skip
            if done:
                rowid, gen = done[0]
                if gen:
                    self._shared.bookkeeper.overwrote(rowid, now)
                return True
        old = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
        if old:
            rowid, old_file, _, old_expire, old_tag = old[0][:5]
            if only_if_missing and (old_expire is None or old_expire > now):
                return False
        stored = self._publish(conn, stored)
        if old:
            new_expire = old_expire != expire_time
            new_tag = old_tag != tag or type(old_tag) is not type(tag)
            params: list[Any] = [
                mode, stored.size, stored.vsize, stored.filename, stored.value, stored.sig, fn,
            ]  # fmt: skip
            if new_expire:
                params.append(expire_time)
            if new_tag:
                params.append(tag)
            params.append(rowid)
            reset_count = self._shared.settings.eviction_policy == "least-frequently-used"
            con.execute(_sql.update_item(new_expire, new_tag, reset_count), params)
            self._shared.bookkeeper.overwrote(rowid, now)
            if old_file is not None:
                conn.dropped.append(old_file)
        else:
            con.execute(
                _sql.INSERT_ITEM,
                (
                    ns, db_key, raw, now, expire_time, now, tag, mode, stored.size,
                    stored.vsize, stored.filename, stored.value, stored.sig, fn,
                ),
            )  # fmt: skip
        return True

    def _freeing(self, operation: Callable[[], T]) -> T:
        """Run a removal; on a full disk, release the space reserve and run it once more.

        See :mod:`diskstore._fs._reserve`: this is how a full disk is emptied through the API.
        """
        reserve = self._shared.reserve
        try:
            result = operation()
        except StorageFullError:
            # The write-ahead log may hold the space: copy it into the database, truncate it.
            self._store.checkpoint()
            while True:
                try:
                    result = operation()
                    break
                except StorageFullError:
                    if reserve is None or not reserve.release():
                        raise
            self._store.checkpoint()  # hand the freed pages back to the file system
        if Space.short:
            self._store.flush()  # value files cannot be written: free their space now
        if reserve is not None and not reserve.whole:
            reserve.ensure()  # take back room for the next rescue, if this freed any
        return result

    def _publish(self, conn: Conn, stored: Stored) -> Stored:
        """Give a written value file its final name, inside the transaction that uses it."""
        pending = stored.pending
        if pending is None:
            if stored.filename is not None and stored.filename.startswith("@"):
                conn.created.append(stored.filename)  # a hook's file: gone if rolled back
            return stored
        self._disk.files.publish(pending)
        conn.created.append(pending.name)
        return stored._replace(pending=None)

    def _after_write(self, stored: Stored, expire_time: float | None, now: float) -> None:
        """Account written bytes; cull when a size probe is due or an item has expired.

        The earliest expiry this process knows of is kept in memory, so removing expired
        items as the sets that follow them happen (as diskcache does) costs one comparison.
        """
        shared = self._shared
        if shared.reserve is not None:
            shared.reserve.ensure_later()
        value = stored.value
        approx = stored.size + (len(value) if isinstance(value, (bytes, str)) else 8) + 64
        shared.written += approx
        if expire_time is not None and expire_time < shared.next_expiry:
            shared.next_expiry = expire_time
        expired = shared.next_expiry <= now
        if shared.written >= shared.probe_every or stored.size or expired:
            settings = shared.settings
            if not settings.cull_limit:
                shared.written = 0
                return
            writes = max(1, shared.written // max(approx, 1))
            shared.written = 0
            # Best effort: the write succeeded; a busy database defers culling to the next probe.
            with contextlib.suppress(Timeout):
                self._cull(now, settings.cull_limit * writes, retry=False)

    def _uncount(self, conn: Conn, rows: list[Any]) -> None:
        """Schedule the files of deleted rows ``(ns, filename, size)`` for removal.

        The triggers on ``Cache`` have already uncounted the rows.
        """
        tier = self._shared.tier
        if tier is not None and rows:
            tier.clear()
        for _, filename, _ in rows:
            if filename is not None:
                conn.dropped.append(filename)

    def _delete_chunk(self, select: str, params: tuple[Any, ...], retry: bool) -> tuple[int, int]:
        """Delete the rows one *select* picks, in one transaction; return how many and the
        last rowid picked (where a resuming statement goes on).

        *select* returns ``(rowid, ns, filename, size)`` rows.
        """
        statement = _sql.deleting(select)
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(statement, params).fetchall()
            if rows:
                self._uncount(conn, [row[1:] for row in rows])
        return len(rows), max(row[0] for row in rows) if rows else 0

    def _cull(self, now: float, limit: int | None, retry: bool) -> int:
        """Remove expired items, then evict until the volume fits; at most *limit* items.

        A ``Timeout`` part-way carries the number already removed.
        """
        shared = self._shared
        shared.bookkeeper.flush(best_effort=True)
        removed = 0
        budget = math.inf if limit is None else limit
        try:
            while removed < budget:
                batch = int(min(_CHUNK, budget - removed))
                count, _ = self._delete_chunk(_sql.SELECT_EXPIRED, (now, batch), retry)
                if not count:
                    break
                removed += count
            earliest = self._store.run(_sql.SELECT_NEXT_EXPIRY, retry=True)[0][0]
            shared.next_expiry = math.inf if earliest is None else float(earliest)
            settings = shared.settings
            policy = POLICIES[settings.eviction_policy]
            if policy.order_column is None:
                return removed
            params: tuple[Any, ...] = (ROW_PINNED,)
            if policy.cull_sql is not None:
                select = policy.cull_sql.replace("{fields}", _sql.VICTIM_FIELDS).replace(
                    "{now}", repr(float(now))
                )
                params = ()
            else:
                select = _sql.SELECT_EVICT.format(column=policy.order_column)
            while removed < budget:
                volume = self.volume()
                over = volume - settings.size_limit
                if over <= 0:
                    break
                # Evict about as many items as the excess holds, judged by the average
                # footprint, so a small limit is not emptied by one oversized batch.
                items = self._total_count()
                need = max(1, math.ceil(over / max(volume / max(items, 1), 1)))
                batch = int(min(_CHUNK, need, budget - removed))
                count, _ = self._delete_chunk(select, (*params, batch), retry)
                if not count:
                    break
                removed += count
        except Timeout as exc:
            raise Timeout(removed) from exc
        return removed

    def _total_count(self) -> int:
        return int(self._store.run(_sql.SELECT_TOTALS, retry=True)[0][0])

    def volume(self) -> int:
        """Bytes used on disk: database pages plus value files."""
        rows = self._store.run(_sql.SELECT_VOLUME, retry=True)
        return int(rows[0][0])

    def _retry_read(
        self, conn: Conn, exc: sqlite3.Error, sql: str, params: Any, retry: bool
    ) -> list[Any]:
        from .._storage._store import is_busy

        if _is_decode_error(exc):
            # A row whose text is not UTF-8 was planted or damaged: treat it as corrupt.
            self._drop_undecodable(params)
            return []
        if not is_busy(exc) or conn.txn:
            raise translate(exc, self._store.path) from exc
        return self._store.retry_query(conn, sql, params, retry)

    def _drop_undecodable(self, params: Any) -> None:
        ns, db_key, raw = params if len(params) == 3 else (0, *params)
        rows = self._store.run(_sql.SELECT_ROW_MODE, (ns, db_key, raw), retry=True)
        if rows:
            self._report_corrupt(db_key, IntegrityError("text is not UTF-8"))
