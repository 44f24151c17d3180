"""Tests for diskstore._functions: memoized results are ordinary items of the cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import diskcache
import pytest

import diskstore
from diskstore import _sql


def _square_on(cache: object) -> object:
    @cache.memoize(tag="squares")  # type: ignore[attr-defined]
    def square(x: int) -> int:
        return x * x

    return square


@pytest.mark.parametrize("library", [diskstore, diskcache], ids=["diskstore", "diskcache"])
def test_results_are_items_of_the_cache_as_in_diskcache(tmp_path: Path, library: object) -> None:
    with library.Cache(str(tmp_path)) as cache:  # type: ignore[attr-defined]
        square = _square_on(cache)
        cache["plain"] = "p"
        assert [square(x) for x in range(3)] == [0, 1, 4]
        key = square.__cache_key__(2)  # type: ignore[attr-defined]
        assert cache[key] == 4 and key in cache
        assert len(cache) == 4
        keys = ["plain", *(square.__cache_key__(x) for x in range(3))]  # type: ignore[attr-defined]
        assert sorted(map(repr, cache)) == sorted(map(repr, keys))
        assert cache.evict("squares") == 3
        assert len(cache) == 1 and cache["plain"] == "p"
        square(5)
        assert cache.clear() == 2
        assert len(cache) == 0


def test_cache_clear_is_indexed_and_leaves_everything_else(cache: diskstore.Cache) -> None:
    square = _square_on(cache)

    @cache.memoize()
    def cube(x: int) -> int:
        return x**3

    cache["plain"] = 1
    for x in range(5):
        square(x)
        cube(x)
    assert square.cache_info().currsize == 5  # type: ignore[attr-defined]
    assert cache.memoized_functions() == {
        square.cache_parameters()["name"]: (5, 0),  # type: ignore[attr-defined]
        cube.cache_parameters()["name"]: (5, 0),  # type: ignore[attr-defined]
    }
    assert square.cache_clear() == 5  # type: ignore[attr-defined]
    assert len(cache) == 6 and cube.cache_info().currsize == 5  # type: ignore[attr-defined]
    plan = " ".join(
        row[3]
        for row in cache._store.run("EXPLAIN QUERY PLAN " + _sql.SELECT_FUNCTION_CHUNK, (1, 0, 100))
    )
    assert "items_fn" in plan and "SCAN" not in plan


def test_an_item_overwritten_by_set_is_no_longer_the_functions(cache: diskstore.Cache) -> None:
    square = _square_on(cache)
    square(3)
    cache.set(square.__cache_key__(3), "mine")  # type: ignore[attr-defined]
    assert square.cache_info().currsize == 0  # type: ignore[attr-defined]
    assert square.cache_clear() == 0  # type: ignore[attr-defined]
    assert square(3) == "mine"


@pytest.mark.parametrize("library", [diskstore, diskcache], ids=["diskstore", "diskcache"])
def test_a_miss_counts_once_in_stats(tmp_path: Path, library: object) -> None:
    with library.Cache(str(tmp_path)) as cache:  # type: ignore[attr-defined]
        cache.stats(enable=True)
        square = _square_on(cache)
        square(2)
        square(2)
        square(3)
        assert cache.stats() == (1, 2)


def test_fanout_results_are_items_too(tmp_path: Path) -> None:
    with diskstore.FanoutCache(str(tmp_path), shards=3) as cache:
        square = _square_on(cache)
        for x in range(9):
            square(x)
        assert len(cache) == 9
        assert cache[square.__cache_key__(4)] == 16  # type: ignore[attr-defined]
        assert square.cache_info().currsize == 9  # type: ignore[attr-defined]
        assert square.cache_clear() == 9  # type: ignore[attr-defined]
        assert len(cache) == 0


def test_a_schema_1_cache_migrates_and_keeps_its_items(tmp_path: Path) -> None:
    path = tmp_path / "diskstore.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = wal")
    for statement in _sql.MIGRATIONS[0]:
        con.execute(statement)
    con.execute(
        "INSERT INTO items (ns, key, raw, store_time, access_time, mode, value)"
        " VALUES (0, 'old', 1, 0, 0, 0, 'kept')"
    )
    con.execute("UPDATE namespaces SET count = 1 WHERE id = 0")
    con.execute("PRAGMA user_version = 1")
    con.close()
    with diskstore.Cache(str(tmp_path)) as cache:
        assert cache["old"] == "kept" and len(cache) == 1
        square = _square_on(cache)
        assert square(4) == 16 and square.cache_clear() == 1  # type: ignore[attr-defined]
        version = cache._store.run(_sql.GET_USER_VERSION)[0][0]
    assert version == _sql.SCHEMA_VERSION == 2
