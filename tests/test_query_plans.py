"""Query plans of every statement that reads or writes items, asserted with EXPLAIN QUERY PLAN.

The plans are what keeps costs proportional to the work: a chunked scan must resume by
rowid or by key without sorting (a temporary B-tree per chunk makes a whole scan
quadratic), a point operation must search an index (never scan the table), and bulk
removal must read its victims through an index or in one resumable pass. A plan
regression therefore fails here, without timing anything.

Every statement constant in ``diskstore._storage._sql`` that reads or writes the ``Cache`` table
must be classified below, so a new statement cannot go unchecked.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import diskstore
from diskstore._storage import _placeholders, _sql
from diskstore._storage._policies import POLICIES
from diskstore._storage._store import DB_NAME

#: A statement on the items table (``Cache``), but not the earlier layout's ``items``.
_TABLE = r"\b(FROM|UPDATE|INTO) Cache\b"

# Statements that touch one row through the key index or the rowid.
POINT = {
    "SELECT_ITEM": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_ITEM_MAIN": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_ITEM_FULL": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_ROW_MODE": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_FOR_WRITE": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_EXISTS": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_STORE_TIME": "Cache_key_raw (key=? AND raw=?)",
    "INCR_NATIVE": "Cache_key_raw (key=? AND raw=?)",
    "DELETE_KEY": "Cache_key_raw (key=? AND raw=?)",
    "SELECT_NATIVE_VALUE": "INTEGER PRIMARY KEY (rowid=?)",
    "UPDATE_VALUE": "INTEGER PRIMARY KEY (rowid=?)",
    "UPDATE_STORED": "INTEGER PRIMARY KEY (rowid=?)",
    "UPDATE_EXPIRE": "INTEGER PRIMARY KEY (rowid=?)",
    "UNPIN": "INTEGER PRIMARY KEY (rowid=?)",
    "DELETE_ROWID": "INTEGER PRIMARY KEY (rowid=?)",
    "DELETE_ROWID_IF": "INTEGER PRIMARY KEY (rowid=?)",
    "TOUCH_ACCESS_TIME": "INTEGER PRIMARY KEY (rowid=?)",
    "TOUCH_STORE_TIME": "INTEGER PRIMARY KEY (rowid=?)",
    "TOUCH_ACCESS_COUNT": "INTEGER PRIMARY KEY (rowid=?)",
    "REKEY": "INTEGER PRIMARY KEY (rowid=?)",
    "SET_SIGNATURE": "INTEGER PRIMARY KEY (rowid=?)",
    "SELECT_MAX_ROWID": "SEARCH Cache",
    # The earliest expiry: the first entry of the expiry index.
    "SELECT_NEXT_EXPIRY": "COVERING INDEX Cache_expire_time",
    # Queue ends: the first or last key of a range of the key index.
    "QUEUE_FIRST": "Cache_key_raw (key>? AND key<?)",
    "QUEUE_LAST": "Cache_key_raw (key>? AND key<?)",
    "QUEUE_ROW_FIRST": "Cache_key_raw (key>? AND key<?)",
    "QUEUE_ROW_LAST": "Cache_key_raw (key>? AND key<?)",
    "PEEKITEM_FIRST_NS": "Cache_ns (ns=?)",
    "PEEKITEM_LAST_NS": "Cache_ns (ns=?)",
}

# peekitem on the plain cache walks the table from one end in rowid order and stops at the
# first plain row. It is a scan only in name: without an index on plain rows (which every
# set would pay for), this is the cheapest way to the oldest or newest plain row; it reads
# past rows of other namespaces only where they sit at that end of the table.
ROWID_WALKS = {
    "PEEKITEM_FIRST": "SCAN Cache",
    "PEEKITEM_LAST": "SCAN Cache",
    # Run only when a cache has no secret fingerprint yet: the first signed row will do.
    "SELECT_SIGNED_SAMPLE": "SCAN Cache",
}

# Chunked scans: each chunk resumes after the last row of the previous one.
CHUNKED = {
    "ITER_FORWARD": "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    "ITER_BACKWARD": "INTEGER PRIMARY KEY (rowid<?)",
    "ITER_FORWARD_BYTES": "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    "ITER_BACKWARD_BYTES": "INTEGER PRIMARY KEY (rowid<?)",
    "ITER_FORWARD_NS": "Cache_ns (ns=? AND rowid>? AND rowid<?)",
    "ITER_BACKWARD_NS": "Cache_ns (ns=? AND rowid<?)",
    "ITER_FORWARD_NS_BYTES": "Cache_ns (ns=? AND rowid>? AND rowid<?)",
    "ITER_BACKWARD_NS_BYTES": "Cache_ns (ns=? AND rowid<?)",
    # The command line's keys, leaving expired items out as it walks.
    "ITER_FORWARD_LIVE": "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    "ITER_FORWARD_LIVE_BYTES": "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
    "ITER_FORWARD_NS_LIVE": "Cache_ns (ns=? AND rowid>? AND rowid<?)",
    "ITER_FORWARD_NS_LIVE_BYTES": "Cache_ns (ns=? AND rowid>? AND rowid<?)",
    "ITERKEYS_FIRST": "SCAN Cache USING COVERING INDEX Cache_key_raw",
    "ITERKEYS_LAST": "SCAN Cache USING COVERING INDEX Cache_key_raw",
    "ITERKEYS_NEXT": "COVERING INDEX Cache_key_raw ((key,raw)>(?,?))",
    "ITERKEYS_PREV": "COVERING INDEX Cache_key_raw ((key,raw)<(?,?))",
    "ITERKEYS_FIRST_BYTES": "SCAN Cache USING COVERING INDEX Cache_key_raw",
    "ITERKEYS_LAST_BYTES": "SCAN Cache USING COVERING INDEX Cache_key_raw",
    "ITERKEYS_NEXT_BYTES": "COVERING INDEX Cache_key_raw ((key,raw)>(?,?))",
    "ITERKEYS_PREV_BYTES": "COVERING INDEX Cache_key_raw ((key,raw)<(?,?))",
    "SELECT_SIGNED_CHUNK": "INTEGER PRIMARY KEY (rowid>?)",
    # adopt_diskcache: one resumable pass.
    "SELECT_UNADOPTED": "INTEGER PRIMARY KEY (rowid>?)",
    # Inspection without the secret (keys --inspect): a rowid walk, one namespace or all.
    "INSPECT_CHUNK": "INTEGER PRIMARY KEY (rowid>?)",
    "INSPECT_CHUNK_NS": "INTEGER PRIMARY KEY (rowid>?)",
    # Bulk removal. Expired items come off the front of the expiry index; clear and evict
    # without the tag index resume by rowid, so rows they skip are read once per call.
    "SELECT_EXPIRED": "Cache_expire_time (expire_time>? AND expire_time<?)",
    "SELECT_NS_ITEMS": "INTEGER PRIMARY KEY (rowid>?)",
    "SELECT_NS_ITEMS_VIEW": "Cache_ns (ns=? AND rowid>?)",
    "SELECT_TAGGED_SCAN": "INTEGER PRIMARY KEY (rowid>?)",
    "SELECT_TAGGED_SCAN_VIEW": "Cache_ns (ns=? AND rowid>?)",
    # A memoized function's results (cache_clear) come off the front of its index.
    "SELECT_FUNCTION_CHUNK": "Cache_fn (fn=? AND ns=?)",
}

# Aggregates: check counts each namespace over the key index; a memoized function's
# cache_info() counts its results over the function index.
AGGREGATES = {
    # check's one pass over the table, grouped by namespace (a handful of groups).
    "SELECT_ACTUAL_COUNTS": "SCAN Cache",
    "COUNT_FUNCTION_ITEMS": "Cache_fn (fn=? AND ns=?)",
    # Expired items not yet removed (the command line's stats): the front of the expiry index.
    "COUNT_EXPIRED": "Cache_expire_time (expire_time<?)",
    "COUNT_EXPIRED_ALL": "COVERING INDEX Cache_expire_time (expire_time<?)",
}

# Inserts have no plan to speak of (the unique index is probed by the insert itself).
INSERTS = ("INSERT_ITEM", "UPSERT_ITEM", "IMPORT_ITEM")

# Templates and statements checked by their own tests below; the upgrade's recount runs
# once per directory; the DISKCACHE_* statements read another directory being imported.
SPECIAL = (
    "SELECT_TAGGED", "SELECT_EVICT", "_VICTIM", "_INSPECT_COLUMNS", "RECOUNT_NAMESPACES",
    "DISKCACHE_COUNT", "DISKCACHE_HAS_PICKLES", "DISKCACHE_CHUNK",
)  # fmt: skip


def _parameters(sql: str) -> int:
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    return max(numbered) if numbered else sql.count("?")


def _plan(con: sqlite3.Connection, sql: str) -> list[str]:
    rows = con.execute("EXPLAIN QUERY PLAN " + sql, [1] * _parameters(sql)).fetchall()
    return [row[3] for row in rows]


def _open(directory: Path, **settings: object) -> Iterator[sqlite3.Connection]:
    cache = diskstore.Cache(str(directory), **settings)  # type: ignore[arg-type]
    view = cache.namespace("view")
    for number in range(50):
        cache.set(number, number, tag=number % 3, expire=None if number % 2 else 60)
        view.set(number, number, tag=number % 3)
    cache.close()
    con = sqlite3.connect(str(directory / DB_NAME), factory=_placeholders.factory())
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def con(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    yield from _open(tmp_path)


@pytest.fixture
def tagged_con(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    yield from _open(tmp_path, tag_index=True)


def test_every_items_statement_is_classified() -> None:
    classified = {*POINT, *ROWID_WALKS, *CHUNKED, *AGGREGATES, *INSERTS, *SPECIAL}
    statements = {
        name
        for name, value in vars(_sql).items()
        if name.isupper() or name == "_VICTIM"
        if isinstance(value, str) and re.search(_TABLE, value)
        if not value.startswith(("CREATE", "DROP", "ALTER"))
    }
    assert statements - classified == set(), "classify the new statements in this module"
    assert classified - statements == set(), "statements named here no longer exist"


@pytest.mark.parametrize("name", sorted(POINT))
def test_point_operations_search_an_index(con: sqlite3.Connection, name: str) -> None:
    plan = _plan(con, getattr(_sql, name))
    assert len(plan) == 1, plan
    assert plan[0].startswith("SEARCH Cache"), plan
    assert POINT[name] in plan[0], plan


def test_overwrites_update_by_rowid(con: sqlite3.Connection) -> None:
    for expire in (False, True):
        for tag in (False, True):
            for reset_count in (False, True):
                plan = _plan(con, _sql.update_item(expire, tag, reset_count))
                assert plan == ["SEARCH Cache USING INTEGER PRIMARY KEY (rowid=?)"]


@pytest.mark.parametrize("name", sorted(ROWID_WALKS))
def test_peekitem_walks_the_table_in_rowid_order(con: sqlite3.Connection, name: str) -> None:
    assert _plan(con, getattr(_sql, name)) == [ROWID_WALKS[name]]


@pytest.mark.parametrize("name", sorted(CHUNKED))
def test_chunked_scans_resume_without_sorting(con: sqlite3.Connection, name: str) -> None:
    plan = _plan(con, getattr(_sql, name))
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert len(plan) == 1, plan
    assert plan[0].startswith(("SEARCH Cache", "SCAN Cache")), plan
    assert CHUNKED[name] in plan[0], plan


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_aggregates_read_through_an_index(con: sqlite3.Connection, name: str) -> None:
    plan = _plan(con, getattr(_sql, name))
    assert any(AGGREGATES[name] in step for step in plan), plan


#: The statements that pick victims for bulk removal (run through ``_sql.deleting``).
VICTIMS = (
    "SELECT_EXPIRED", "SELECT_NS_ITEMS", "SELECT_NS_ITEMS_VIEW", "SELECT_TAGGED_SCAN",
    "SELECT_TAGGED_SCAN_VIEW", "SELECT_FUNCTION_CHUNK", "SELECT_TAGGED", "SELECT_EVICT",
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(set(VICTIMS) - {"SELECT_TAGGED"}))
def test_bulk_removal_deletes_by_rowid_what_its_select_picks(
    con: sqlite3.Connection, name: str
) -> None:
    select = getattr(_sql, name).format(column="store_time")
    picked = _plan(con, select)
    plan = _plan(con, _sql.deleting(select))
    assert plan[0] == "SEARCH Cache USING INTEGER PRIMARY KEY (rowid=?)", plan
    # The victims are read as the select alone reads them (only rowids: perhaps from the
    # index alone), with no sort added.
    inner = [step.replace("COVERING INDEX", "INDEX") for step in plan if "Cache" in step][1:]
    assert inner == [step.replace("COVERING INDEX", "INDEX") for step in picked], plan
    assert not any("TEMP B-TREE" in step for step in plan[1:]) or any(
        "TEMP B-TREE" in step for step in picked
    ), plan


def test_evict_by_tag_searches_the_tag_index(tagged_con: sqlite3.Connection) -> None:
    plan = _plan(tagged_con, _sql.SELECT_TAGGED)
    assert plan == ["SEARCH Cache USING INDEX Cache_tag_rowid (tag=?)"]


def test_evict_without_the_tag_index_is_one_resumable_pass(con: sqlite3.Connection) -> None:
    # Without the index (the default), Cache.evict uses the *_SCAN statements, which resume
    # by rowid (checked in CHUNKED); the indexed statement is never chosen then.
    indexes = {row[0] for row in con.execute(_sql.SELECT_INDEXES)}
    assert _sql.TAG_INDEX not in indexes


@pytest.mark.parametrize(
    "policy", sorted(name for name, p in POLICIES.items() if p.order_column is not None)
)
def test_culling_reads_victims_in_policy_index_order(tmp_path: Path, policy: str) -> None:
    order = POLICIES[policy]
    for connection in _open(tmp_path, eviction_policy=policy):
        plan = _plan(connection, _sql.SELECT_EVICT.format(column=order.order_column))
        assert plan == [f"SCAN Cache USING INDEX {order.index_name}"]


def test_tagged_evict_statement_matches_the_setting(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path / "plain")) as plain:
        plain.set("a", 1, tag="t")
        plain.set("b", 2, tag="u")
        assert plain.evict("t") == 1
        assert list(plain) == ["b"]
    with diskstore.Cache(str(tmp_path / "indexed"), tag_index=True) as indexed:
        indexed.set("a", 1, tag="t")
        indexed.set("b", 2, tag="u")
        assert indexed.evict("t") == 1
        assert list(indexed) == ["b"]


# -- what actually runs ---------------------------------------------------------------------
# The plans above are asserted per constant; this checks that the statements the package
# runs are those constants (or expansions of its templates), so no statement escapes them.


class _RecordingCursor(_placeholders.PlainCursor):
    seen: set[str] = set()

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        _RecordingCursor.seen.add(sql)
        return super().execute(sql, *args)  # type: ignore[arg-type]

    def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        _RecordingCursor.seen.add(sql)
        return super().executemany(sql, *args)  # type: ignore[arg-type]


class _RecordingConnection(_placeholders.PlainConnection):
    def cursor(self, factory: object = _RecordingCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)  # type: ignore[call-overload,no-any-return]

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, *args)

    def executemany(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, *args)


def _expansions() -> dict[str, str]:
    """Every statement text the package may run, mapped to the constant it comes from."""
    known: dict[str, str] = {
        value: name
        for name, value in vars(_sql).items()
        if name.isupper() and isinstance(value, str)
    }
    for policy in POLICIES.values():
        if policy.order_column is not None:
            column, index = policy.order_column, policy.index_name
            known[_sql.SELECT_EVICT.format(column=column)] = "SELECT_EVICT"
            known[_sql.CREATE_POLICY_INDEX.format(name=index, column=column)] = "DDL"
            known[_sql.DROP_INDEX.format(name=index)] = "DDL"
    for expire in (False, True):
        for tag in (False, True):
            for reset in (False, True):
                known[_sql.update_item(expire, tag, reset)] = "update_item"
    # Bulk removal runs each victim statement as the delete that picks by it.
    for select, name in list(known.items()):
        if name in VICTIMS:
            known[_sql.deleting(select)] = name
    known.update(dict.fromkeys(_sql.EXTEND, "DDL"))
    known.update(dict.fromkeys(_sql.RECOUNT, "DDL"))
    for name, body in _sql.TRIGGERS:
        known[_sql.CREATE_TRIGGER.format(name=name, body=body)] = "DDL"
        known[_sql.DROP_TRIGGER.format(name=name)] = "DDL"
    for name, definition in _sql.ADDED_COLUMNS:
        known[_sql.ADD_COLUMN.format(name=name, definition=definition)] = "DDL"
    for name in _sql.DISKCACHE_SETTINGS | {"x"}:
        known[_sql.upsert_setting(name)] = "upsert_setting"
    return known


_TEMPLATED = re.compile(r"(PRAGMA \w+( = \S+)?|(SAVEPOINT|RELEASE|ROLLBACK TO) sp\d+)")


def test_every_statement_run_is_a_classified_constant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = sqlite3.connect

    def recording_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        kwargs["factory"] = _RecordingConnection
        return connect(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    _RecordingCursor.seen = set()
    for settings in ({}, {"tag_index": True, "eviction_policy": "least-recently-used"}):
        directory = tmp_path / str(len(settings))
        with diskstore.Cache(str(directory), **settings) as cache:  # type: ignore[arg-type]
            view = cache.namespace("view")
            for target in (cache, view):
                for number in range(250):
                    target.set(number, {"n": number}, tag=number % 3, expire=3600)
                target.set("text", "value")
                target.add("added", 1)
                target.incr("counter")
                assert target.get(5) == {"n": 5}
                assert 5 in target
                target.touch(5, expire=7200)
                assert target.pop(6) == {"n": 6}
                del target[7]
                assert list(target)[:2] == [0, 1] and next(reversed(target)) == "counter"
                assert next(iter(target.iterkeys())) == 0
                assert next(iter(target.iterkeys(reverse=True))) == "text"
                target.peekitem()
                target.peekitem(last=False)
                target.push("queued")
                target.pull()
                assert target.evict(1) > 0
                target.expire(now=4e9)
                assert len(target) >= 0
                target.clear()
            cache.stats()
            cache.reset("size_limit", 100_000)
            for number in range(400):
                cache.set(f"fill{number}", b"x" * 500)
            cache.cull()
            cache.check()
            cache.reset("tag_index", not settings)
    known = _expansions()
    unknown = sorted(
        sql for sql in _RecordingCursor.seen if sql not in known and not _TEMPLATED.fullmatch(sql)
    )
    assert unknown == [], "statements run that are not named constants of diskstore._storage._sql"
    classified = {*POINT, *ROWID_WALKS, *CHUNKED, *AGGREGATES, *INSERTS, *SPECIAL}
    unplanned = sorted(
        known[sql]
        for sql in _RecordingCursor.seen
        if sql in known and re.search(_TABLE, sql)
        if not sql.startswith(("CREATE", "DROP", "ALTER"))
        if known[sql] not in classified and known[sql] not in ("update_item", "DDL")
    )
    assert unplanned == [], "statements run whose plans this module does not assert"
    assert len(_RecordingCursor.seen) > 40  # the workload did reach the statements
