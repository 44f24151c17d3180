"""Creating and migrating the database, and reconciling persisted settings.

The database is diskcache's (``cache.db``: tables ``Cache`` and ``Settings``, its index
and trigger names), extended with columns, tables and triggers diskcache ignores (see
docs/design.md). The schema version lives in ``PRAGMA user_version`` (diskcache leaves it
at 0); extending runs once, inside a ``BEGIN IMMEDIATE`` transaction, so any number of
processes may open a fresh directory, or one diskcache wrote, at the same moment. A
directory holding diskstore's earlier database (``diskstore.db``, schemas 1-3) has its items
moved into ``cache.db`` in the same transaction. Settings are validated before anything is
written: an invalid setting is never persisted.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from .._common._exceptions import DiskStoreError, IntegrityError, SettingsError
from . import _settings, _sql, _upgrade
from ._policies import POLICIES
from ._settings import Settings
from ._store import Store, is_busy, translate, wait_busy


def _retrying(store: Store, con: sqlite3.Connection, action: Any) -> Any:
    deadline = time.monotonic() + store.setup_patience
    attempt = 0
    while True:
        try:
            return action(con)
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute(_sql.ROLLBACK)
            if not is_busy(exc):
                raise translate(exc, store.path) from exc
            attempt += 1
            wait_busy(attempt, deadline, False, store.path)


def _stored_settings(con: sqlite3.Connection) -> dict[str, Any]:
    return {name: value for name, value in con.execute(_sql.SELECT_SETTINGS)}


def _extend(con: sqlite3.Connection) -> None:
    """Make diskcache's tables (or keep the ones it made) and add what diskstore needs."""
    con.execute(_sql.CREATE_SETTINGS)
    con.execute(_sql.CREATE_CACHE)
    columns = {row[0] for row in con.execute(_sql.SELECT_CACHE_COLUMNS)}
    for name, definition in _sql.ADDED_COLUMNS:
        if name not in columns:
            con.execute(_sql.ADD_COLUMN.format(name=name, definition=definition))
    for statement in _sql.EXTEND:
        con.execute(statement)
    existing = dict(con.execute(_sql.SELECT_TRIGGERS).fetchall())
    for name, body in _sql.TRIGGERS:
        wanted = _sql.CREATE_TRIGGER.format(name=name, body=body)
        if existing.get(name) != wanted:  # diskcache's own, which counts every row
            con.execute(_sql.DROP_TRIGGER.format(name=name))
            con.execute(wanted)
    for statement in _sql.RECOUNT:
        con.execute(statement)


def ensure_indexes(con: sqlite3.Connection, settings: Settings) -> None:
    """Create the indexes the settings need and drop the policy indexes they do not."""
    existing = {row[0] for row in con.execute(_sql.SELECT_INDEXES)}
    wanted = POLICIES[settings.eviction_policy].index_name
    for policy in POLICIES.values():
        name = policy.index_name
        if name is None:
            continue
        if name == wanted and name not in existing:
            con.execute(_sql.CREATE_POLICY_INDEX.format(name=name, column=policy.order_column))
        elif name != wanted and name in existing:
            con.execute(_sql.DROP_INDEX.format(name=name))
    init = POLICIES[settings.eviction_policy].init_sql
    if init is not None:
        con.execute(init)  # a custom policy's own statement (see _policies.py)
    if settings.tag_index:
        con.execute(_sql.CREATE_TAG_INDEX)
    elif _sql.TAG_INDEX in existing:
        con.execute(_sql.DROP_TAG_INDEX)


def open_database(store: Store, given: Mapping[str, Any]) -> Settings:
    """Create or migrate the schema, merge settings, persist the given ones; return them."""
    _settings.check_names(given)
    if store.read_only:
        _upgrade.refuse_read_only(store)
    conn = store.connect_thread()
    con = conn.con
    assert con is not None
    if store.read_only:
        return _open_read_only(store, con, given)

    def set_journal(con: sqlite3.Connection) -> None:
        tables = {row[0] for row in con.execute(_sql.SELECT_TABLES)}
        if not tables:
            # Only possible before the first table exists, and outside a transaction.
            auto_vacuum = given.get("sqlite_auto_vacuum", Settings.sqlite_auto_vacuum)
            Settings(sqlite_auto_vacuum=auto_vacuum)  # validates
            con.execute(_sql.PRAGMA_SET.format(name="auto_vacuum", value=int(auto_vacuum)))
        stored = {}
        if con.execute(_sql.GET_USER_VERSION).fetchone()[0] == _sql.SCHEMA_VERSION:
            stored = _stored_settings(con)
        wanted = _settings.normalize(
            "sqlite_journal_mode",
            given.get(
                "sqlite_journal_mode",
                stored.get("sqlite_journal_mode", Settings.sqlite_journal_mode),
            ),
        )
        if wanted != "wal" or con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # Validated against a fixed list before it reaches SQL.
            _settings.Settings(sqlite_journal_mode=wanted)
            con.execute(_sql.PRAGMA_SET.format(name="journal_mode", value=wanted)).fetchall()

    def migrate(con: sqlite3.Connection) -> Settings:
        con.execute(_sql.BEGIN)
        version = con.execute(_sql.GET_USER_VERSION).fetchone()[0]
        if version > _sql.SCHEMA_VERSION:
            con.execute(_sql.ROLLBACK)
            raise DiskStoreError(
                f"{store.path} has schema version {version}; this diskstore reads up to "
                f"{_sql.SCHEMA_VERSION} (upgrade diskstore)"
            )
        if version != _sql.SCHEMA_VERSION:
            _extend(con)
            _upgrade.import_old(store, con)
            con.execute(_sql.SET_USER_VERSION.format(version=_sql.SCHEMA_VERSION))
        stored = _stored_settings(con)
        try:
            settings = _settings.build(stored, given)
        except BaseException:
            con.execute(_sql.ROLLBACK)
            raise
        current = settings.as_dict()
        for name, value in current.items():
            changed = name not in stored or _settings.normalize(name, stored[name]) != value
            if changed and _settings.persistable(name, value):
                con.execute(_sql.upsert_setting(name), (name, value))
        ensure_indexes(con, settings)
        con.execute(_sql.COMMIT)
        return settings

    try:
        _retrying(store, con, set_journal)
        settings = _retrying(store, con, migrate)
        _upgrade.remove_old(store)
        return settings  # type: ignore[no-any-return]
    except sqlite3.Error as exc:
        raise translate(exc, store.path) from exc


def _open_read_only(store: Store, con: sqlite3.Connection, given: Mapping[str, Any]) -> Settings:
    def load(con: sqlite3.Connection) -> Settings:
        version = con.execute(_sql.GET_USER_VERSION).fetchone()[0]
        if version != _sql.SCHEMA_VERSION:
            what = "not a diskstore database" if version == 0 else "of another diskstore version"
            raise IntegrityError(
                f"{store.path} is {what} (schema {version}); open it once without "
                "read_only=True to bring it to this version's schema in place"
            )
        return _settings.build(_stored_settings(con), given)

    try:
        return _retrying(store, con, load)  # type: ignore[no-any-return]
    except (IntegrityError, SettingsError):
        raise  # not a diskstore database, or invalid settings: no other way in helps
    except (sqlite3.Error, DiskStoreError):
        # A WAL database in a directory we cannot write has no shared-memory file to
        # coordinate through; reading it as immutable is the only way in.
        store.close_all_for_reopen(immutable=True)
        conn = store.connect_thread()
        assert conn.con is not None
        try:
            return _retrying(store, conn.con, load)  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            raise translate(exc, store.path) from exc
