"""Tests for diskstore._caching._functions: memoized results are ordinary items of the cache, and
every process's hits and misses of each function add up in the database."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import diskcache
import pytest
from _cache_support import FORK, memoized_calls_worker, run_processes, square

import diskstore
from diskstore import FunctionStats
from diskstore._storage import _bookkeeping, _sql


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
    assert "Cache_fn" in plan and "SCAN" not in plan


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


# -- hits and misses, written back ------------------------------------------------------------


@pytest.fixture
def no_timed_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Write buffered bookkeeping back only when asked (close, stats), never by the clock."""
    monkeypatch.setattr(_bookkeeping, "FLUSH_INTERVAL", 1e9)


def _recorded(directory: str, name: str) -> tuple[int, int] | None:
    """The hits and misses the database holds for *name*, read with plain sqlite3."""
    con = sqlite3.connect(Path(directory) / "cache.db")
    try:
        row = con.execute(
            "SELECT hits, misses FROM diskstore_functions WHERE name = ?", (name,)
        ).fetchone()
    finally:
        con.close()
    return None if row is None else (int(row[0]), int(row[1]))


def _data_version(con: sqlite3.Connection) -> int:
    return int(con.execute("PRAGMA data_version").fetchone()[0])


def test_hits_and_misses_are_counted_per_function(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        squared = cache.memoize(name="sq")(square)
        cubed = cache.memoize(name="cube")(lambda x: x**3)
        for x in (1, 1, 2, 1, 3):
            squared(x)
        cubed(2)
        cubed(2)
        stats = cache.function_stats()
    assert stats == {
        "cube": FunctionStats(items=1, file_bytes=0, hits=1, misses=1),
        "sq": FunctionStats(items=3, file_bytes=0, hits=2, misses=3),
    }
    assert list(stats) == ["cube", "sq"]
    assert stats["sq"].calls == 5 and stats["sq"].hit_rate == pytest.approx(0.4)


def test_recorded_counts_match_cache_info(cache: diskstore.Cache) -> None:
    squared = cache.memoize(name="sq")(square)
    for x in (1, 2, 1, 1):
        squared(x)
    squared.cache_set(100, 5)
    squared(5)
    squared.refresh(1)  # computes: a miss, as cache_info counts it
    squared.max_age(0)(2)  # too old by then (or just as old): computed again, a miss
    info = squared.cache_info()
    stats = cache.function_stats()["sq"]
    assert (stats.hits, stats.misses) == (info.hits, info.misses) == (3, 4)
    assert stats.items == 3


def test_a_hit_writes_nothing_until_the_flush(cache_dir: str, no_timed_flush: None) -> None:
    cache = diskstore.Cache(cache_dir)
    squared = cache.memoize(name="sq")(square)
    squared(4)
    squared(5)
    watcher = sqlite3.connect(Path(cache_dir) / "cache.db")
    try:
        before = _data_version(watcher)
        for _ in range(50):
            assert squared(4) == 16
        assert _data_version(watcher) == before  # no other connection committed anything
        assert _recorded(cache_dir, "sq") == (0, 0)
        cache.close()
        assert _data_version(watcher) != before
    finally:
        watcher.close()
    assert _recorded(cache_dir, "sq") == (50, 2)


def test_calls_are_written_back_with_the_other_bookkeeping(
    cache_dir: str, no_timed_flush: None
) -> None:
    with diskstore.Cache(cache_dir, statistics=True) as cache:
        squared = cache.memoize(name="sq")(square)
        squared(1)
        squared(1)
        assert _recorded(cache_dir, "sq") == (0, 0)
        assert cache.stats() == (1, 1)  # reading the statistics flushes everything
        assert _recorded(cache_dir, "sq") == (1, 1)
        squared(1)
        assert cache.stats(reset=True) == (2, 1)
        assert _recorded(cache_dir, "sq") == (2, 1)  # resetting stats leaves functions alone
        assert cache.stats() == (0, 0)


def test_cache_clear_zeroes_the_recorded_calls_as_it_does_cache_info(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        squared = cache.memoize(name="sq")(square)
        cubed = cache.memoize(name="cube")(lambda x: x**3)
        for x in (1, 1, 2):
            squared(x)
            cubed(x)
        assert cache.function_stats()["sq"] == FunctionStats(2, 0, 1, 2)
        squared(2)  # pending when the clear comes: dropped with the rest
        assert squared.cache_clear() == 2
        assert squared.cache_info()[:2] == (0, 0)
        assert "sq" not in cache.function_stats()  # no results, no calls
        squared(3)
        assert cache.function_stats()["sq"] == FunctionStats(1, 0, 0, 1)
        assert cache.function_stats()["cube"] == FunctionStats(2, 0, 1, 2)
    assert _recorded(cache_dir, "sq") == (0, 1)


def test_a_function_that_stores_nothing_is_listed_by_its_calls(cache: diskstore.Cache) -> None:
    never = cache.memoize(name="never", expire=0)(square)
    never(1)
    never(1)
    assert cache.function_stats() == {"never": FunctionStats(0, 0, 0, 2)}
    assert cache.memoized_functions() == {}  # results only, as before


def test_a_result_found_before_the_function_stored_one_still_counts(
    cache: diskstore.Cache,
) -> None:
    squared = cache.memoize(name="sq")(square)
    cache.set(squared.__cache_key__(3), 9)  # an ordinary item, not the function's
    assert squared(3) == 9
    assert cache.function_stats() == {"sq": FunctionStats(0, 0, 1, 0)}


def test_single_flight_waiters_count_as_hits(cache: diskstore.Cache) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(x: int) -> int:
        started.set()
        assert release.wait(60)
        return x * x

    squared = cache.memoize(name="slow", ignore={"started", "release"})(slow)
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(squared(7)))
    first.start()
    assert started.wait(60)
    waiters = [threading.Thread(target=lambda: results.append(squared(7))) for _ in range(3)]
    for thread in waiters:
        thread.start()
    release.set()
    for thread in [first, *waiters]:
        thread.join(60)
    assert results == [49] * 4
    assert squared.cache_info()[:2] == (3, 1)
    assert cache.function_stats()["slow"] == FunctionStats(1, 0, 3, 1)


def test_a_read_only_cache_records_no_calls(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache.memoize(name="sq")(square)(2)
    with diskstore.Cache(cache_dir, read_only=True) as reader:
        squared = reader.memoize(name="sq")(square)
        squared(2)
        squared(2)
        assert squared.cache_info()[:2] == (2, 0)
        assert reader.function_stats() == {"sq": FunctionStats(1, 0, 0, 1)}
    assert _recorded(cache_dir, "sq") == (0, 1)


def test_namespace_views_share_a_functions_counts(cache: diskstore.Cache) -> None:
    view = cache.namespace("tenant")
    view.memoize(name="sq")(square)(2)
    cache.memoize(name="sq")(square)(2)
    assert view.function_stats() == {"sq": FunctionStats(1, 0, 0, 2)}
    assert cache.function_stats() == {"sq": FunctionStats(1, 0, 0, 2)}


def test_counts_add_up_across_processes(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        squared = cache.memoize(name="shared")(square)
        for x in (1, 1, 2):  # hit 1, misses 2
            squared(x)
        # The child finds 1 and 2 (hits), computes 3 (miss), then finds 3 (hit).
        run_processes(memoized_calls_worker, [(cache_dir, "shared", [1, 2, 3, 3])])
        assert cache.function_stats() == {"shared": FunctionStats(3, 0, 4, 3)}
        assert squared.cache_info()[:2] == (1, 2)  # this process's own calls


def test_two_processes_at_once_lose_no_count(cache_dir: str) -> None:
    calls = [list(range(20)) * 3, list(range(10, 30)) * 2]
    run_processes(memoized_calls_worker, [(cache_dir, "shared", c) for c in calls])
    with diskstore.Cache(cache_dir, read_only=True) as reader:
        stats = reader.function_stats()["shared"]
    # 30 distinct arguments: each ran once, in one process or the other.
    assert (stats.items, stats.calls, stats.misses) == (30, 100, 30)


@pytest.mark.skipif(FORK is None, reason="needs fork")
def test_a_forked_child_does_not_write_its_parents_counts_again(
    cache_dir: str, no_timed_flush: None
) -> None:
    cache = diskstore.Cache(cache_dir)
    squared = cache.memoize(name="sq")(square)
    squared(1)
    squared(1)  # one hit and one miss wait in this process's memory

    def child() -> None:
        squared(1)
        squared(2)
        cache.close()

    run_processes(child, [()], context=FORK)
    assert _recorded(cache_dir, "sq") == (1, 1)  # the child's own calls only
    cache.close()
    assert _recorded(cache_dir, "sq") == (2, 2)


def test_fanout_counts_add_up_over_its_shards(tmp_path: Path) -> None:
    with diskstore.FanoutCache(str(tmp_path), shards=3) as cache:
        squared = cache.memoize(name="sq")(square)
        for x in list(range(9)) * 2:
            squared(x)
        assert cache.function_stats() == {"sq": FunctionStats(9, 0, 9, 9)}
        assert squared.cache_clear() == 9
        assert cache.function_stats() == {}


# -- Cache.memoize ----------------------------------------------------------------------------
def test_cache_memoize_names_every_keyword_of_memoize_with_its_default() -> None:
    """``Cache.memoize`` spells out what ``diskstore.memoize`` takes (the API reference and
    ``help()`` show it), so it must keep up with it: same names, order and defaults."""
    import inspect

    from diskstore._memo._memoize import memoize
    from diskstore._memo._memoize_extras import MemoizeExtras

    theirs = inspect.signature(memoize).parameters
    ours = inspect.signature(diskstore.Cache.memoize).parameters
    expected = [
        name
        for name, parameter in theirs.items()
        if name != "cache" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    expected += [name for name in MemoizeExtras.__annotations__ if name not in expected]
    named = [n for n, p in ours.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
    assert named == expected
    for name in expected:
        if name in theirs:
            assert ours[name].default == theirs[name].default, name
            assert ours[name].kind == theirs[name].kind, name
        else:
            assert ours[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_cache_memoize_passes_every_keyword_on(cache: diskstore.Cache) -> None:
    hits: list[object] = []

    @cache.memoize(name="app.f", expire=60, tag="t", version=2, on_hit=hits.append)
    def f(x: int) -> int:
        return x + 1

    assert (f(1), f(1)) == (2, 2)
    assert len(hits) == 1
    assert cache.get(f.__cache_key__(1), tag=True) == (2, "t")
    with pytest.raises(TypeError, match="expier"):
        cache.memoize(expier=5)
    with pytest.raises(TypeError):
        cache.memoize(f)  # without parentheses, as in diskcache
