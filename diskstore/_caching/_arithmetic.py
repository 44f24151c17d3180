"""``incr`` and ``decr``: atomic arithmetic on stored numbers.

A native integer is updated by one ``UPDATE ... RETURNING`` statement; any other number is
read, added to and stored again inside the same write transaction.
"""

from __future__ import annotations

from typing import Any

from .._common import _clock
from .._common._constants import ENOVAL
from .._storage import _sql
from .._values._modes import KIND_NATIVE, to_row
from ._base import CacheBase, _expired


class ArithmeticMixin(CacheBase):
    """``incr`` and ``decr`` of :class:`~diskstore.Cache`."""

    def incr(self, key: Any, delta: int | float = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically add *delta* to the value of *key* and return the result.

        A missing key starts from *default*; with ``default=None`` it raises ``KeyError``.
        """
        now = _clock.now()
        db_key, raw = self._disk.put(key)
        disk = self._disk
        ns = self._ns
        native = type(delta) is int and -(2**62) < delta < 2**62
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            if native:
                done = con.execute(_sql.INCR_NATIVE, (ns, db_key, raw, delta, now)).fetchall()
                if done:
                    if self._shared.tier is not None:
                        self._shared.tier.discard((ns, db_key, raw))
                    return done[0][0]
            rows = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
            live = bool(rows) and not _expired(rows[0][3], now)
            if live:
                rowid, filename, size, _, _, mode, value, sig, vsize = rows[0]
                if self._shared.tier is not None:
                    self._shared.tier.discard((ns, db_key, raw))
                if mode != KIND_NATIVE:
                    # Like any read of a damaged entry: a miss (counting from default).
                    value = self._fetch_taken(
                        "replaced", key, mode, filename, value, ns, db_key, raw, sig, vsize, size
                    )
                    if value is ENOVAL:
                        self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                        live = False
            if not live:
                if default is None:
                    raise KeyError(key)
                result = default + delta
                stored = disk.store_row(result, False, ns=ns, db_key=db_key, raw=raw, key=key)
                self._put_row(conn, now, db_key, raw, stored, None, None, False, False)
                return result
            result = value + delta
            stored = disk.store_row(result, False, ns=ns, db_key=db_key, raw=raw, key=key)
            stored = self._publish(conn, stored)
            con.execute(
                _sql.UPDATE_STORED,
                (to_row(stored.mode), stored.value, stored.sig, stored.vsize, stored.filename,
                 stored.size, rowid),
            )  # fmt: skip
            if filename is not None:
                conn.dropped.append(filename)
            return result

    def decr(self, key: Any, delta: int | float = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically subtract *delta* from the value of *key*; see :meth:`incr`."""
        return self.incr(key, -delta, default, retry)
