"""Queues on top of the cache: ``push``, ``pull``, ``peek`` and ``peekitem``.

A queue is the set of keys in one numeric range (or ``"prefix-%015d"`` strings) ordered by
key; keys count from 500000000000000 so both ends have room, as in diskcache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._common import _clock
from .._common._constants import ENOVAL, QUEUE_START
from .._common._exceptions import CorruptionWarning, IntegrityError, warn_caller
from .._storage import _sql
from ._base import CacheBase, _check_expire, _check_tag, _expired

_QUEUE_SIDES = ("back", "front")
_INT_QUEUE = (0, 999_999_999_999_999)


def check_side(side: Any) -> str:
    """*side* if it names an end of a queue (shared with the Redis backend's queues)."""
    if side not in _QUEUE_SIDES:
        raise ValueError(f"side must be 'back' or 'front', not {side!r}")
    return str(side)


def check_prefix(prefix: Any) -> str | None:
    """*prefix* if it can name a queue: ``None`` or a str."""
    if prefix is not None and not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str or None, not {type(prefix).__name__}")
    return prefix


def _queue_bounds(prefix: Any) -> tuple[Any, Any]:
    if check_prefix(prefix) is None:
        return _INT_QUEUE
    return f"{prefix}-000000000000000", f"{prefix}-999999999999999"


def _queue_number(key: Any, prefix: str | None) -> int:
    if prefix is None:
        return int(key)
    return int(key[len(prefix) + 1 :])


class QueueMethods:
    """The queue methods of :class:`~diskstore.Cache` and :class:`~diskstore.redis.RedisCache`.

    Each backend stores and takes the items its own way, in the two methods below.
    """

    #: ``(value, prefix, side, expire, read, tag, retry)``: append; return the new key.
    _queue_push: Callable[..., Any]
    #: ``(prefix, default, side, expire_time, tag, retry, remove)``: the item at *side*.
    _queue_take: Callable[..., Any]

    def push(
        self,
        value: Any,
        prefix: str | None = None,
        side: str = "back",
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> Any:
        """Append *value* to the queue named by *prefix*; return its generated key.

        Keys count from 500000000000000 (``"prefix-500000000000000"`` with a prefix).
        """
        return self._queue_push(value, prefix, side, expire, read, tag, retry)

    def pull(
        self,
        prefix: str | None = None,
        default: Any = (None, None),
        side: str = "front",
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove and return ``(key, value)`` from the queue's *side*, or *default*."""
        return self._queue_take(prefix, default, side, expire_time, tag, retry, True)

    def peek(
        self,
        prefix: str | None = None,
        default: Any = (None, None),
        side: str = "front",
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return ``(key, value)`` from the queue's *side* without removing it."""
        return self._queue_take(prefix, default, side, expire_time, tag, retry, False)


class QueueMixin(QueueMethods, CacheBase):
    """Queue operations of :class:`~diskstore.Cache`."""

    def _queue_push(
        self, value: Any, prefix: str | None, side: str, expire: float | None, read: bool,
        tag: Any, retry: bool,
    ) -> Any:  # fmt: skip
        side = check_side(side)
        low, high = _queue_bounds(prefix)
        now = _clock.now()
        expire_time = _check_expire(expire, now)
        tag = _check_tag(tag)
        ns = self._ns
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            sql = _sql.QUEUE_LAST if side == "back" else _sql.QUEUE_FIRST
            rows = con.execute(sql, (ns, low, high)).fetchall()
            if rows:
                number = _queue_number(rows[0][0], prefix) + (1 if side == "back" else -1)
            else:
                number = QUEUE_START
            db_key = number if prefix is None else f"{prefix}-{number:015d}"
            stored = self._disk.store_row(value, read, ns=ns, db_key=db_key, raw=True, key=db_key)
            try:
                added = self._put_row(
                    conn, now, db_key, True, stored, expire_time, tag, False, True
                )
                if not added:  # a plain item sits where the queue would grow: never replace it
                    raise ValueError(
                        f"push would replace the item stored under {db_key!r}, "
                        "which is next to the queue's keys"
                    )
            finally:
                if stored.pending is not None:
                    self._disk.files.discard(stored.pending)
        self._after_write(stored, expire_time, now)
        return db_key

    def _queue_take(
        self, prefix: str | None, default: Any, side: str, expire_time: bool, tag: bool,
        retry: bool, remove: bool,
    ) -> Any:  # fmt: skip
        side = check_side(side)
        low, high = _queue_bounds(prefix)
        sql = _sql.QUEUE_ROW_FIRST if side == "front" else _sql.QUEUE_ROW_LAST
        ns = self._ns
        while True:
            now = _clock.now()
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(sql, (ns, low, high)).fetchall()
                if not rows:
                    return self._miss(default, expire_time, tag)
                rowid, key, mode, value, filename, exp, tg, sig, vsize, size = rows[0]
                expired = _expired(exp, now)
                if remove or expired:
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                if expired:
                    continue
                value = self._fetch_taken(
                    "dropped", key, mode, filename, value, ns, key, True, sig, vsize, size
                )
                if value is ENOVAL:
                    if not remove:
                        self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    continue
            return self._shaped((key, value), exp, tg, expire_time, tag)

    def peekitem(
        self, last: bool = True, expire_time: bool = False, tag: bool = False, retry: bool = False
    ) -> Any:
        """Return the last (or first) ``(key, value)`` in insertion order; ``KeyError`` if empty."""
        ns = self._ns
        if ns == 0:
            sql = _sql.PEEKITEM_LAST if last else _sql.PEEKITEM_FIRST
            params: tuple[Any, ...] = ()
        else:
            sql = _sql.PEEKITEM_LAST_NS if last else _sql.PEEKITEM_FIRST_NS
            params = (ns,)
        while True:
            now = _clock.now()
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(sql, params).fetchall()
                if not rows:
                    raise KeyError("dictionary is empty")
                rowid, db_key, raw, mode, value, filename, exp, tg, sig, vsize, size = rows[0]
                if _expired(exp, now):
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    continue
                try:
                    key = self._disk.get(db_key, raw)
                    value = self._disk.fetch_row(
                        mode, filename, value, False,
                        ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                    )  # fmt: skip
                except IntegrityError as exc:
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    warn_caller(
                        f"dropped a cache entry in {self._directory}: {exc}",
                        CorruptionWarning,
                    )
                    continue
            return self._shaped((key, value), exp, tg, expire_time, tag)
