"""Moving diskstore's earlier database (``diskstore.db``, schemas 1-3) into ``cache.db``.

Earlier releases kept their own database beside the value files. Opening such a directory
copies its items, namespaces, memoized functions, settings and statistics into diskcache's
layout in the transaction that creates ``cache.db``'s schema, then removes the old files:
the value files stay where they are (their names gain the ``data/`` folder), signatures stay
valid (they cover the mode as the code sees it, which did not change), and a crash before the
commit leaves the old database untouched for the next open to try again. Rows already in
``cache.db`` win over old ones with the same key.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any
from urllib.parse import quote

from .._common._exceptions import IntegrityError
from .._values._modes import MODE_LIMIT, MODE_NONE, to_row
from . import _sql
from ._store import Store

#: The database file of diskstore releases before schema 4.
OLD_DB_NAME = "diskstore.db"
_CHUNK = 1000


def old_path(store: Store) -> str:
    return os.path.join(os.path.dirname(store.path), OLD_DB_NAME)


def _stored_mode(mode: Any) -> Any:
    # The code's layout did not change between the schemas; only how it is stored did.
    if type(mode) is int and 0 <= mode < MODE_LIMIT:
        return to_row(mode)
    return MODE_NONE  # an invalid mode stays invalid: the entry reads as damaged


def refuse_read_only(store: Store) -> None:
    """A read-only cache cannot move the earlier layout: say how to, instead of failing."""
    if not os.path.exists(store.path) and os.path.isfile(old_path(store)):
        raise IntegrityError(
            f"{os.path.dirname(store.path)!r} holds diskstore's earlier database "
            f"({OLD_DB_NAME}); open it once without read_only=True to bring it to "
            "this version's layout in place"
        )


def import_old(store: Store, con: sqlite3.Connection) -> None:
    """Copy an earlier database's contents into *con*'s open transaction, if there is one."""
    path = old_path(store)
    if not os.path.isfile(path):
        return
    old = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None)
    try:
        version = old.execute(_sql.GET_USER_VERSION).fetchone()[0]
        if not 1 <= version <= 3:
            return
        con.executemany(_sql.IMPORT_NAMESPACE, old.execute(_sql.OLD_NAMESPACES).fetchall())
        if version >= 2:
            calls = ", hits, misses" if version >= 3 else ", 0, 0"
            functions = old.execute(_sql.OLD_FUNCTIONS.format(calls=calls)).fetchall()
            con.executemany(_sql.IMPORT_FUNCTION, functions)
        for name, value in old.execute(_sql.OLD_SETTINGS).fetchall():
            con.execute(_sql.upsert_setting(name), (name, value))
        for hits, misses in old.execute(_sql.OLD_STATS).fetchall():
            con.execute(_sql.ADD_STATS, (hits, misses))
        select = _sql.OLD_ITEMS.format(fn="fn" if version >= 2 else "NULL")
        last = 0
        while True:
            rows = old.execute(select, (last, _CHUNK)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            con.executemany(
                _sql.IMPORT_ITEM,
                [
                    (*row[1:10], _stored_mode(row[10]),
                     None if row[11] is None else f"data/{row[11]}", *row[12:])
                    for row in rows
                ],
            )  # fmt: skip
        for statement in (*_sql.RECOUNT, _sql.RECOUNT_NAMESPACES):
            con.execute(statement)
    finally:
        old.close()


#: Files of the earlier layout beside its database: the change counter and space reserve.
_OLD_SIDE_FILES = ("changes", "reserve")
#: The earlier layout's folder of single-flight lock files (now ``cache.db-locks``).
_OLD_LOCKS = "locks"


def remove_old(store: Store) -> None:
    """Remove the earlier database once its contents are committed to ``cache.db``."""
    path = old_path(store)
    if not os.path.exists(path):
        return
    directory = os.path.dirname(path)
    for name in (*(OLD_DB_NAME + suffix for suffix in ("", "-wal", "-shm")), *_OLD_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))
    locks = os.path.join(directory, _OLD_LOCKS)
    with contextlib.suppress(OSError):
        for entry in os.scandir(locks):
            if entry.name.endswith(".lock") and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(locks)
