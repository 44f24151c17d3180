"""The floor: a bare sqlite3 key-value table, one statement per operation.

It shows what SQLite itself costs on this machine with the settings a cache would use
(WAL journal, ``synchronous=NORMAL``, autocommit so every statement is its own
transaction). Values that are not bytes, str, int or float are pickled. It has no
eviction, expiry, statistics or size accounting: it is a lower bound, not a cache.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

DATABASE_NAME = "floor.db"

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS kv ( key TEXT PRIMARY KEY, value BLOB, pickled INTEGER NOT NULL)"
)
SELECT_VALUE = "SELECT value, pickled FROM kv WHERE key = ?"
UPSERT_VALUE = "INSERT OR REPLACE INTO kv (key, value, pickled) VALUES (?, ?, ?)"
DELETE_KEY = "DELETE FROM kv WHERE key = ?"
INCR_UPSERT = (
    "INSERT INTO kv (key, value, pickled) VALUES (?, ?, 0)"
    " ON CONFLICT (key) DO UPDATE SET value = value + ?"
)
INCR_RETURNING = INCR_UPSERT + " RETURNING value"
# RETURNING arrived in SQLite 3.35; older libraries need a read inside the same transaction.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
PLAIN_TYPES = (bytes, str, int, float)


class FloorStore:
    """A minimal store over one SQLite table, sharing the cache engines' method names."""

    def __init__(self, directory: str | Path, *, timeout: float = 60.0) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.directory / DATABASE_NAME, timeout=timeout, isolation_level=None
        )
        # Processes opening one fresh file at once race for the journal switch, which
        # SQLite reports as "locked" without waiting: retry the setup, bounded by timeout.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.execute(CREATE_TABLE)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value stored under ``key``, or ``default``."""
        row = self._db.execute(SELECT_VALUE, (key,)).fetchone()
        if row is None:
            return default
        value, pickled = row
        return pickle.loads(value) if pickled else value

    def set(self, key: str, value: Any) -> bool:
        """Store ``value`` under ``key``, replacing any previous value."""
        if isinstance(value, PLAIN_TYPES) and not isinstance(value, bool):
            self._db.execute(UPSERT_VALUE, (key, value, 0))
        else:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            self._db.execute(UPSERT_VALUE, (key, blob, 1))
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was present."""
        return self._db.execute(DELETE_KEY, (key,)).rowcount > 0

    def incr(self, key: str, delta: int = 1, default: int = 0) -> int:
        """Add ``delta`` to the integer under ``key`` (``default`` when absent), atomically."""
        if HAS_RETURNING:
            row = self._db.execute(INCR_RETURNING, (key, default + delta, delta)).fetchone()
            return int(row[0])
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(INCR_UPSERT, (key, default + delta, delta))
            row = self._db.execute(SELECT_VALUE, (key,)).fetchone()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return int(row[0])

    def close(self) -> None:
        """Close the connection; the last close checkpoints and removes the WAL file."""
        self._db.close()
