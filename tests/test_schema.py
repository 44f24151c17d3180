"""Tests for diskstore._schema: databases of every earlier schema version open and migrate.

An earlier version's database is made the way that version made it: by running the
migrations up to it (they are only ever appended to), then writing rows by hand.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from _cache_support import memoized_calls_worker, run_processes, square

import diskstore
from diskstore import FunctionStats, _cli, _sql


def _database_at(directory: Path, version: int) -> sqlite3.Connection:
    """A database as diskstore made it at schema *version*, left open to add rows."""
    con = sqlite3.connect(directory / "diskstore.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = wal")
    for statements in _sql.MIGRATIONS[:version]:
        for statement in statements:
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {version:d}")
    return con


def _version(directory: Path) -> int:
    con = sqlite3.connect(directory / "diskstore.db")
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


def test_the_schema_version_is_the_number_of_migrations() -> None:
    assert _sql.SCHEMA_VERSION == len(_sql.MIGRATIONS) == 3


def test_a_schema_1_cache_migrates_and_keeps_its_items(tmp_path: Path) -> None:
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
    assert _version(tmp_path) == 3


def test_a_schema_2_cache_migrates_keeps_its_items_and_counts_calls(tmp_path: Path) -> None:
    _schema_2_with_a_function(tmp_path)
    with diskstore.Cache(str(tmp_path)) as cache:
        assert _version(tmp_path) == 3
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
    columns = sqlite3.connect(tmp_path / "diskstore.db").execute("PRAGMA table_info(functions)")
    assert [(row[1], row[2], row[3], row[4]) for row in columns] == [
        ("id", "INTEGER", 0, None),
        ("name", "TEXT", 1, None),
        ("hits", "INTEGER", 1, "0"),
        ("misses", "INTEGER", 1, "0"),
    ]


def test_processes_opening_a_schema_2_cache_at_once_migrate_it_once(tmp_path: Path) -> None:
    _schema_2_with_a_function(tmp_path)
    run_processes(memoized_calls_worker, [(str(tmp_path), "sq", [1, 1]) for _ in range(3)])
    assert _version(tmp_path) == 3
    with diskstore.Cache(str(tmp_path), read_only=True) as cache:
        stats = cache.function_stats()["sq"]
    # One process ran the function; the others found its result, or waited for it.
    assert (stats.items, stats.hits, stats.misses) == (3, 5, 1)


def test_a_read_only_cache_lists_a_schema_2_caches_functions_without_calls(
    tmp_path: Path,
) -> None:
    _schema_2_with_a_function(tmp_path)
    out = io.StringIO()
    assert _cli.main(["functions", str(tmp_path), "--json"], out=out) == 0
    assert json.loads(out.getvalue()) == [
        {"file_bytes": 0, "hit_rate": None, "hits": 0, "items": 2, "misses": 0, "name": "sq"}
    ]
    with diskstore.Cache(str(tmp_path), read_only=True) as cache:
        assert cache.function_stats() == {"sq": FunctionStats(2, 0, 0, 0)}
    assert _version(tmp_path) == 2  # reading never migrates


def test_a_read_only_cache_of_schema_1_has_no_functions(tmp_path: Path) -> None:
    _database_at(tmp_path, 1).close()
    with diskstore.Cache(str(tmp_path), read_only=True) as cache:
        assert cache.function_stats() == {}


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    diskstore.Cache(str(tmp_path)).close()
    con = sqlite3.connect(tmp_path / "diskstore.db")
    con.execute(f"PRAGMA user_version = {_sql.SCHEMA_VERSION + 1:d}")
    con.close()
    with pytest.raises(diskstore.DiskStoreError, match=r"schema version 4; .* up to 3"):
        diskstore.Cache(str(tmp_path))
    assert _version(tmp_path) == 4
