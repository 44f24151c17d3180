"""diskcache's private names that programs use: ``_con``, ``_sql``, ``_sql_retry``.

Programs that subclass ``diskcache.Cache`` run their own SQL on its ``Cache`` table through
these names (for example a file-hash store that reads ``SELECT key, value FROM Cache WHERE
key IN (...) AND raw = 1`` and upserts on ``(key, raw)`` inside ``transact()``). The table is
diskcache's (see docs/design.md), so such SQL works as it did; these names hand it the same
connection the cache uses:

- ``_con`` is this thread's connection; inside ``transact()``, the transaction's.
- ``_sql(statement, parameters)`` runs one statement and returns its cursor. Outside a
  transaction, a statement that writes runs as a transaction of its own, so other
  processes' memory tiers see the change, and a busy database is waited for up to the
  cache's timeout, as diskcache's connection timeout does; ``_sql_retry`` waits for as long
  as it takes. Inside a transaction a statement runs as it is.

Rows written this way are counted by the table's triggers and read back by ``get``: a row
with diskcache's ``MODE_RAW`` (1) is a plain value, which needs no signature.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from .._storage._store import Store, is_busy, wait_busy

_READS = ("SELECT", "WITH", "PRAGMA", "EXPLAIN", "VALUES")


class PrivateNamesMixin:
    """The private attributes diskcache programs reach for (see the module docstring)."""

    _store: Store

    @property
    def _con(self) -> sqlite3.Connection:
        con = self._store.connect_thread().con
        assert con is not None
        return con

    @property
    def _sql(self) -> Callable[..., sqlite3.Cursor]:
        return self._execute

    @property
    def _sql_retry(self) -> Callable[..., sqlite3.Cursor]:
        return self._execute_retry

    def _execute_retry(self, statement: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self._execute(statement, parameters, retry=True)

    def _execute(self, statement: str, parameters: Any = (), retry: bool = False) -> sqlite3.Cursor:
        if not isinstance(statement, str):
            raise TypeError(f"statement must be SQL text, not {type(statement).__name__}")
        store = self._store
        conn = store.connect_thread()
        con = conn.con
        assert con is not None
        if conn.txn or con.in_transaction:
            return con.execute(statement, parameters)
        if statement.lstrip().upper().startswith(_READS):
            return _read(store, con, statement, parameters, retry)
        with store.write(retry) as conn:
            assert conn.con is not None
            return conn.con.execute(statement, parameters)


def _read(
    store: Store, con: sqlite3.Connection, statement: str, parameters: Any, retry: bool
) -> sqlite3.Cursor:
    """Run a read, waiting while the database is busy (a WAL read rarely is)."""
    deadline = None
    attempt = 0
    while True:
        try:
            return con.execute(statement, parameters)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if deadline is None:
                deadline = time.monotonic() + store.timeout
            attempt += 1
            wait_busy(attempt, deadline, retry, store.path)  # Timeout past the deadline
