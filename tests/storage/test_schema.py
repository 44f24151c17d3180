"""Tests for diskstore._storage._schema and _upgrade: every earlier layout opens, in place.

Earlier releases kept their own database, ``diskstore.db`` (schemas 1 to 3, table ``items``).
Their directories are made here two ways: ``tests/data/diskstore-0.1.0-schema3.tar.gz`` holds
directories the previous release wrote (a cache with signed values, files, a namespace and a
memoized function, and a FanoutCache), and schemas 1 and 2 are built from that release's own
statements, kept below as data.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from _cache_support import memoized_calls_worker, run_processes, square

import diskstore
from diskstore import FunctionStats, _cli
from diskstore._storage import _sql

FIXTURES = Path(__file__).parent.parent / "data" / "diskstore-0.1.0-schema3.tar.gz"
#: The secret the previous release's directories were written with.
FIXTURE_SECRET = b"fixture secret for schema 3 tests"

#: The earlier layout's schema, as its release created it: entry *n* brought a database
#: from version *n* to *n + 1*.
OLD_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS namespaces ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE,"
        " count INTEGER NOT NULL DEFAULT 0,"
        " size INTEGER NOT NULL DEFAULT 0)",
        "INSERT OR IGNORE INTO namespaces (id, name) VALUES (0, '')",
        "CREATE TABLE IF NOT EXISTS meta ("
        " id INTEGER PRIMARY KEY CHECK (id = 0),"
        " hits INTEGER NOT NULL DEFAULT 0,"
        " misses INTEGER NOT NULL DEFAULT 0)",
        "INSERT OR IGNORE INTO meta (id) VALUES (0)",
        "CREATE TABLE IF NOT EXISTS items ("
        " rowid INTEGER PRIMARY KEY,"
        " ns INTEGER NOT NULL,"
        " key BLOB NOT NULL,"
        " raw INTEGER NOT NULL,"
        " store_time REAL NOT NULL,"
        " expire_time REAL,"
        " access_time REAL NOT NULL,"
        " access_count INTEGER NOT NULL DEFAULT 0,"
        " tag BLOB,"
        " mode INTEGER NOT NULL,"
        " size INTEGER NOT NULL DEFAULT 0,"
        " vsize INTEGER NOT NULL DEFAULT 0,"
        " filename TEXT,"
        " value BLOB,"
        " sig BLOB,"
        " gen INTEGER NOT NULL DEFAULT 0)",
        "CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (ns, key, raw)",
        "CREATE INDEX IF NOT EXISTS items_ns ON items (ns) WHERE ns != 0",
        "CREATE INDEX IF NOT EXISTS items_expire ON items (expire_time)"
        " WHERE expire_time IS NOT NULL",
    ),
    # 2: memoized results are ordinary items; ``fn`` names the function that stored one, so
    # ``cache_clear()`` removes a function's results through an index.
    (
        "CREATE TABLE IF NOT EXISTS functions ( id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "ALTER TABLE items ADD COLUMN fn INTEGER",
        "CREATE INDEX IF NOT EXISTS items_fn ON items (fn, ns) WHERE fn IS NOT NULL",
    ),
    # 3: each memoized function's calls, over every process: how many found a stored result
    # and how many ran the function. Counted in memory and written back in batches.
    (
        "ALTER TABLE functions ADD COLUMN hits INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE functions ADD COLUMN misses INTEGER NOT NULL DEFAULT 0",
    ),
)


def _database_at(directory: Path, version: int) -> sqlite3.Connection:
    """A ``diskstore.db`` as the earlier release made it at schema *version*, left open."""
    con = sqlite3.connect(directory / "diskstore.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = wal")
    for statements in OLD_MIGRATIONS[:version]:
        for statement in statements:
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {version:d}")
    return con


def _version(directory: Path) -> int:
    con = sqlite3.connect(directory / "cache.db")
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def _schema_2_with_a_function(directory: Path) -> None:
    """Two plain items and two results of function ``sq`` (id 1), all with native keys."""
    con = _database_at(directory, 2)
    con.execute("INSERT INTO functions (id, name) VALUES (1, 'sq')")
    rows = [("plain", "kept", None), ("other", "also", None), ("r1", "one", 1), ("r2", "two", 1)]
    con.executemany(
        "INSERT INTO items (ns, key, raw, store_time, access_time, mode, value, fn)"
        " VALUES (0, ?, 1, 0, 0, 0, ?, ?)",
        rows,
    )
    con.execute("UPDATE namespaces SET count = 4 WHERE id = 0")
    con.close()


def test_the_schema_version_is_4() -> None:
    assert _sql.SCHEMA_VERSION == 4


def test_a_schema_1_directory_moves_into_cache_db(tmp_path: Path) -> None:
    con = _database_at(tmp_path, 1)
    con.execute(
        "INSERT INTO items (ns, key, raw, store_time, access_time, mode, value)"
        " VALUES (0, 'old', 1, 0, 0, 0, 'kept')"
    )
    con.execute("UPDATE namespaces SET count = 1 WHERE id = 0")
    con.close()
    with diskstore.Cache(str(tmp_path)) as cache:
        assert cache["old"] == "kept" and len(cache) == 1
        squared = cache.memoize(name="sq")(square)
        assert squared(4) == 16 and squared(4) == 16
        assert cache.function_stats() == {"sq": FunctionStats(1, 0, 1, 1)}
        assert squared.cache_clear() == 1
    assert _version(tmp_path) == 4
    assert not (tmp_path / "diskstore.db").exists()


def test_a_schema_2_directory_moves_keeps_its_items_and_counts_calls(tmp_path: Path) -> None:
    _schema_2_with_a_function(tmp_path)
    with diskstore.Cache(str(tmp_path)) as cache:
        assert _version(tmp_path) == 4
        assert (cache["plain"], cache["other"], cache["r1"], cache["r2"]) == (
            "kept", "also", "one", "two",
        )  # fmt: skip
        assert len(cache) == 4
        assert cache.memoized_functions() == {"sq": (2, 0)}
        assert cache.function_stats() == {"sq": FunctionStats(2, 0, 0, 0)}
        squared = cache.memoize(name="sq")(square)
        for x in (3, 3, 3, 4):
            squared(x)
        assert cache.function_stats() == {"sq": FunctionStats(4, 0, 2, 2)}
        assert squared.cache_clear() == 4  # the old results too: they name the function
        assert list(cache) == ["plain", "other"]


def test_processes_opening_a_schema_2_directory_at_once_move_it_once(tmp_path: Path) -> None:
    _schema_2_with_a_function(tmp_path)
    run_processes(memoized_calls_worker, [(str(tmp_path), "sq", [1, 1]) for _ in range(3)])
    assert _version(tmp_path) == 4
    with diskstore.Cache(str(tmp_path), read_only=True) as cache:
        stats = cache.function_stats()["sq"]
        assert len(cache) == 5
    # One process ran the function; the others found its result, or waited for it.
    assert (stats.items, stats.hits, stats.misses) == (3, 5, 1)


def test_a_read_only_cache_of_the_earlier_layout_says_how_to_upgrade(tmp_path: Path) -> None:
    _schema_2_with_a_function(tmp_path)
    with pytest.raises(diskstore.IntegrityError, match="without read_only=True"):
        diskstore.Cache(str(tmp_path), read_only=True)
    assert (tmp_path / "diskstore.db").exists()  # reading never migrates
    # The command line brings such a directory up once when it may write, then reads it.
    out = io.StringIO()
    assert _cli.main(["functions", str(tmp_path), "--json"], out=out) == 0
    assert [entry["name"] for entry in json.loads(out.getvalue())] == ["sq"]
    assert not (tmp_path / "diskstore.db").exists()


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    diskstore.Cache(str(tmp_path)).close()
    con = sqlite3.connect(tmp_path / "cache.db")
    con.execute(f"PRAGMA user_version = {_sql.SCHEMA_VERSION + 1:d}")
    con.close()
    with pytest.raises(diskstore.DiskStoreError, match=r"schema version 5; .* up to 4"):
        diskstore.Cache(str(tmp_path))
    assert _version(tmp_path) == 5


@pytest.fixture()
def previous_release(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path


def test_a_directory_the_previous_release_wrote_upgrades_in_place(previous_release: Path) -> None:
    directory = previous_release / "cache"
    with diskstore.Cache(str(directory), secret=FIXTURE_SECRET) as cache:
        # Carried over: one get hit, one get miss, one memoize hit and two misses.
        assert cache.stats() == (2, 3)
        assert cache["text"] == "hello" and cache["n"] == 7
        assert cache["tuple"] == (1, 2)
        assert cache["big"] == b"x" * 100_000
        assert cache["bigtext"] == "y" * 50_000
        assert cache.get("tagged", tag=True) == (1, "t")
        assert cache[("tuple", "key")] == "tk"
        assert cache.get("far", expire_time=True)[1] is not None
        view = cache.namespace("view")
        assert (view["a"], view["text"], len(view)) == (1, "in view", 2)
        assert len(cache) == 10  # eight items and the two memoized results
        assert cache.function_stats() == {"sq": FunctionStats(2, 0, 1, 2)}
        squared = cache.memoize(name="sq")(square)
        assert squared(3) == 9  # a hit: the earlier release's result
        assert cache.function_stats()["sq"].hits == 2
        assert not cache.check()
    assert sorted(os.listdir(directory)) == ["cache.db", "cache.db-changes", "cache.db-reserve",
                                             "data"]  # fmt: skip
    assert _version(directory) == 4
    reader = (
        "import sys, diskcache; c = diskcache.Cache(sys.argv[1]);"
        " print(c['text'], c['n'], len(c['big']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", reader, str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["hello", "7", "100000"], done.stderr


def test_a_fanout_directory_the_previous_release_wrote_keeps_its_routing(
    previous_release: Path,
) -> None:
    directory = previous_release / "fanout"
    with diskstore.FanoutCache(str(directory), shards=4, secret=FIXTURE_SECRET) as fanout:
        assert [fanout[f"k{i}"] for i in range(20)] == list(range(20))
        assert fanout[(1, "tuple")] == "routed"
        assert len(fanout) == 21
        fanout["new"] = "placed the same way"
    with diskstore.FanoutCache(str(directory), shards=4, secret=FIXTURE_SECRET) as fanout:
        assert fanout["new"] == "placed the same way" and fanout["k7"] == 7
    assert not (directory / "000" / "diskstore.db").exists()
    con = sqlite3.connect(directory / "000" / "cache.db")
    try:
        assert con.execute(_sql.SELECT_SETTING, ("fanout_routing",)).fetchall() == [("crc32",)]
    finally:
        con.close()
