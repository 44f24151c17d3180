"""Cache maintenance: expire, cull, evict, clear, check, tag index, stats, volume, reset."""

from __future__ import annotations

import os
import sqlite3

import pytest
from _cache_support import Clock, install_clock, pragma, value_files, value_files_once_durable

import diskstore

FILE_SIZE = 40_000  # above disk_min_file_size: stored in a value file


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


def index_names(cache: diskstore.Cache) -> set[str]:
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}


class TestExpire:
    def test_removes_only_expired_items(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.reset("cull_limit", 0)
        for number in range(10):
            cache.set(number, number, expire=1e-9)
        cache.set("later", 1, expire=100)
        cache["never"] = 1
        assert len(cache) == 12
        assert list(cache)[:10] == list(range(10))
        clock.advance(1)
        assert cache.expire() == 10
        assert list(cache) == ["later", "never"]
        assert cache.expire() == 0

    def test_now_argument(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("a", 1, expire=10)
        cache.set("b", 1, expire=20)
        assert cache.expire(now=clock.now) == 0
        assert cache.expire(now=clock.now + 15) == 1
        assert list(cache) == ["b"]
        assert cache.expire(clock.now + 1000) == 1
        assert len(cache) == 0

    def test_removes_value_files(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("file", os.urandom(FILE_SIZE), expire=1)
        cache.set("kept", os.urandom(FILE_SIZE))
        clock.advance(2)
        assert cache.expire() == 1
        assert len(value_files_once_durable(cache)) == 1
        assert cache["kept"]

    def test_many_expired_items(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.reset("cull_limit", 0)
        with cache.transact():
            for number in range(1_234):
                cache.set(number, number, expire=1)
        clock.advance(2)
        assert cache.expire() == 1_234
        assert len(cache) == 0

    def test_bad_now(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError, match="now"):
            cache.expire(now="soon")  # type: ignore[arg-type]


class TestCull:
    def test_cull_enforces_size_limit(self, cache: diskstore.Cache) -> None:
        cache.reset("cull_limit", 0)
        assert cache.reset("size_limit", 1_000_000) == 1_000_000
        for count in range(1000):
            cache[count] = os.urandom(1000)
        assert cache.volume() > 1_000_000
        assert cache.cull() > 0
        assert cache.volume() <= 1_000_000
        assert len(cache) > 0

    def test_cull_with_value_files(self, cache: diskstore.Cache) -> None:
        cache.reset("cull_limit", 0)
        for number in range(40):
            cache[number] = os.urandom(FILE_SIZE)
        limit = cache.volume() - 20 * FILE_SIZE
        cache.reset("size_limit", limit)
        removed = cache.cull()
        assert cache.volume() <= limit
        # Only what is needed goes (give or take one batch of ten, as in diskcache).
        assert 20 <= removed <= 30
        assert len(cache) == 40 - removed
        assert len(value_files_once_durable(cache)) == 40 - removed

    def test_cull_removes_expired_first(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.reset("cull_limit", 0)
        cache.set("expired", 1, expire=1)
        cache.set("live", 1)
        clock.advance(2)
        assert cache.cull() == 1
        assert list(cache) == ["live"]

    def test_cull_under_limit_removes_nothing(self, cache: diskstore.Cache) -> None:
        for number in range(10):
            cache[number] = number
        assert cache.cull() == 0
        assert len(cache) == 10

    def test_per_set_culling_keeps_volume_bounded(self, cache_dir: str) -> None:
        limit = 1_000_000
        with diskstore.Cache(cache_dir, size_limit=limit) as cache:
            highest = 0
            for number in range(150):
                cache[number] = os.urandom(FILE_SIZE)
                highest = max(highest, cache.volume())
            assert highest <= limit * 1.25
            # It evicts the oldest to make room, not everything.
            assert len(cache) >= (limit // FILE_SIZE) // 2
            assert 149 in cache

    def test_per_set_culling_with_small_values(self, cache_dir: str) -> None:
        limit = 400_000
        with diskstore.Cache(cache_dir, size_limit=limit) as cache:
            for number in range(3_000):
                cache[number] = os.urandom(100)
            assert cache.volume() <= limit * 1.25
            assert len(cache) >= 500
            assert 2_999 in cache

    def test_cull_limit_zero_disables_per_set_culling(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir, size_limit=100_000, cull_limit=0) as cache:
            for number in range(10):
                cache[number] = os.urandom(FILE_SIZE)
            assert len(cache) == 10
            assert cache.volume() > 100_000


class TestEvictClear:
    @pytest.mark.parametrize("tag_index", [False, True])
    def test_evict_by_tag(self, cache_dir: str, tag_index: bool) -> None:
        with diskstore.Cache(cache_dir, tag_index=tag_index) as cache:
            for number in range(100):
                cache.set(number, number, tag="odd" if number % 2 else "even")
            cache.set("file", os.urandom(FILE_SIZE), tag="even")
            assert cache.evict("even") == 51
            assert list(cache) == list(range(1, 100, 2))
            assert value_files_once_durable(cache) == []
            assert cache.evict("even") == 0
            assert cache.evict("missing") == 0

    @pytest.mark.parametrize("tag", [0, 1.5, b"raw", "text"])
    def test_evict_tag_types(self, cache: diskstore.Cache, tag: object) -> None:
        cache.set("tagged", 1, tag=tag)
        cache.set("other", 1, tag="other")
        cache["untagged"] = 1
        assert cache.evict(tag) == 1
        assert list(cache) == ["other", "untagged"]

    def test_evict_none_matches_nothing(self, cache: diskstore.Cache) -> None:
        cache["untagged"] = 1
        assert cache.evict(None) == 0
        assert len(cache) == 1

    def test_clear(self, cache: diskstore.Cache) -> None:
        for number in range(250):
            cache[number] = number
        cache["file"] = os.urandom(FILE_SIZE)
        assert cache.clear() == 251
        assert len(cache) == 0
        assert list(cache) == []
        assert value_files(cache.directory) == []
        assert cache.clear() == 0


class TestTagIndex:
    def test_create_and_drop(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            assert cache.tag_index is False
            assert "Cache_tag_rowid" not in index_names(cache)
            cache.create_tag_index()
            assert cache.tag_index is True
            assert "Cache_tag_rowid" in index_names(cache)
        with diskstore.Cache(cache_dir) as cache:
            assert cache.tag_index is True
            cache.set("key", 1, tag="t")
            cache.drop_tag_index()
            assert cache.tag_index is False
            assert "Cache_tag_rowid" not in index_names(cache)
            assert cache.evict("t") == 1
        with diskstore.Cache(cache_dir) as cache:
            assert cache.tag_index is False

    def test_tag_index_setting(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir, tag_index=True) as cache:
            assert "Cache_tag_rowid" in index_names(cache)
            assert cache.reset("tag_index") is True


class TestStats:
    def test_hits_and_misses_are_exact(self, cache: diskstore.Cache) -> None:
        assert cache.stats(enable=True) == (0, 0)
        for number in range(100):
            cache.set(number, number)
        for number in range(150):
            cache.get(number)
        hits, misses = cache.stats(enable=False, reset=True)
        assert (hits, misses) == (100, 50)
        assert cache.stats(enable=False) == (0, 0)

    def test_only_lookups_count(self, cache: diskstore.Cache) -> None:
        cache.stats(enable=True)
        cache["key"] = b"value"
        cache["key"]
        cache.read("key")
        cache.get("missing")
        with pytest.raises(KeyError):
            cache["missing"]
        "key" in cache  # noqa: B015 - membership is not a lookup for statistics
        cache.incr("n")
        cache.pop("key")
        cache.touch("n")
        assert cache.stats() == (2, 2)

    def test_disabled_by_default_and_when_turned_off(self, cache: diskstore.Cache) -> None:
        assert cache.statistics is False
        cache["key"] = 1
        cache.get("key")
        cache.get("missing")
        assert cache.stats(enable=False) == (0, 0)
        cache.stats(enable=True)
        assert cache.statistics is True
        cache.get("key")
        assert cache.stats(enable=False) == (1, 0)
        assert cache.statistics is False
        cache.get("key")
        assert cache.stats(enable=False) == (1, 0)

    def test_reset_returns_counts_before_zeroing(self, cache: diskstore.Cache) -> None:
        cache.stats(enable=True)
        cache.get("missing")
        assert cache.stats(reset=True) == (0, 1)
        assert cache.stats() == (0, 0)

    def test_counts_from_other_instances_and_reopen(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir, statistics=True) as first:
            first["key"] = 1
            with diskstore.Cache(cache_dir) as second:
                assert second.statistics is True
                second.get("key")
                second.get("missing")
            first.get("key")
            assert first.stats() == (2, 1)
        with diskstore.Cache(cache_dir) as again:
            assert again.stats() == (2, 1)

    def test_bad_enable(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError, match="enable"):
            cache.stats(enable="yes")  # type: ignore[arg-type]
        assert cache.statistics is False


class TestVolumeCheck:
    def test_volume_counts_database_and_files(self, cache: diskstore.Cache) -> None:
        empty = cache.volume()
        page_bytes = pragma(cache, "page_count") * pragma(cache, "page_size")
        assert empty == page_bytes
        cache["file"] = os.urandom(100_000)
        assert cache.volume() >= empty + 100_000
        del cache["file"]
        assert cache.volume() < empty + 100_000

    def test_new_database_uses_full_auto_vacuum(self, cache: diskstore.Cache) -> None:
        # Full auto-vacuum returns freed pages to the file system, so volume() shrinks.
        assert cache.sqlite_auto_vacuum == 1
        assert pragma(cache, "auto_vacuum") == 1

    def test_volume_shrinks_after_clear(self, cache: diskstore.Cache) -> None:
        empty = cache.volume()
        with cache.transact():
            for number in range(3_000):
                cache[number] = os.urandom(100)
        full = cache.volume()
        assert full > empty + 300_000
        cache.clear()
        assert cache.volume() < empty + (full - empty) // 4

    def test_check_healthy_cache(self, cache: diskstore.Cache) -> None:
        cache["inline"] = 1
        cache["file"] = os.urandom(FILE_SIZE)
        cache[("pickled", 1)] = {"a": 1}
        assert cache.check() == []
        assert cache.check(fix=True) == []

    def test_check_finds_and_fixes_a_missing_file(self, cache: diskstore.Cache) -> None:
        cache["file"] = os.urandom(FILE_SIZE)
        cache["other"] = 1
        (name,) = value_files(cache.directory)
        os.remove(os.path.join(cache.directory, name))
        found = cache.check()
        assert [issubclass(w.category, diskstore.CorruptionWarning) for w in found].count(True)
        assert len(cache) == 2  # check() without fix changes nothing
        fixed = cache.check(fix=True)
        assert fixed
        assert cache.check() == []
        assert list(cache) == ["other"]
        assert len(cache) == 1

    def test_check_reports_unknown_files(self, cache: diskstore.Cache) -> None:
        cache["file"] = os.urandom(FILE_SIZE)
        stray = os.path.join(cache.directory, "data", "stray.txt")
        with open(stray, "w") as handle:
            handle.write("not ours")
        found = cache.check()
        assert any(issubclass(w.category, diskstore.UnknownFileWarning) for w in found)
        assert os.path.exists(stray)
        cache.check(fix=True)
        assert cache.check() == []
        assert cache["file"]


def test_len_reads_a_counter_that_check_repairs(cache: diskstore.Cache) -> None:
    for number in range(5):
        cache[number] = number
    cache.namespace("ns")["key"] = 1
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    try:
        con.execute("UPDATE Settings SET value = 12345 WHERE key = 'count'")
        con.commit()
    finally:
        con.close()
    assert len(cache) == 12345  # len() reads the counter; it does not count rows
    found = cache.check()
    assert found
    assert len(cache) == 12345  # without fix, check() only reports
    cache.check(fix=True)
    assert len(cache) == 5
    assert len(cache.namespace("ns")) == 1
    assert cache.check() == []


class TestReset:
    def test_read_and_write(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            assert cache.reset("cull_limit") == 10
            assert cache.reset("cull_limit", 0) == 0
            assert cache.cull_limit == 0
            assert cache.reset("cull_limit") == 0
        with diskstore.Cache(cache_dir) as cache:
            assert cache.cull_limit == 0

    def test_update_false_changes_only_this_instance(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            assert cache.reset("size_limit", 5_000, update=False) == 5_000
            assert cache.size_limit == 5_000
            with diskstore.Cache(cache_dir) as other:
                assert other.size_limit == 2**30
            assert cache.reset("size_limit") == 2**30
            assert cache.size_limit == 2**30

    def test_reset_reads_changes_made_by_another_instance(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as first, diskstore.Cache(cache_dir) as second:
            first.reset("size_limit", 123_456)
            assert second.reset("size_limit") == 123_456
            assert second.size_limit == 123_456

    def test_disk_settings_reach_the_disk(self, cache: diskstore.Cache) -> None:
        assert cache.reset("disk_min_file_size", 100) == 100
        assert cache.disk.min_file_size == 100
        cache["key"] = os.urandom(200)
        assert len(value_files(cache.directory)) == 1
        assert cache.reset("disk_pickle_protocol", 2) == 2
        assert cache.disk.pickle_protocol == 2

    def test_sqlite_settings_reach_the_connection(self, cache: diskstore.Cache) -> None:
        assert cache.reset("sqlite_cache_size", 1234) == 1234
        cache["key"] = 1  # connections reopen with the new pragma
        assert cache.sqlite_cache_size == 1234
        assert cache.reset("sqlite_synchronous", 2) == 2
        assert cache.reset("sqlite_mmap_size", 0) == 0
        assert cache["key"] == 1


def test_len_is_exact_across_every_kind_of_change(cache: diskstore.Cache, clock: Clock) -> None:
    def check(expected: int) -> None:
        assert len(cache) == expected
        assert sum(1 for _ in cache) == expected

    cache.reset("cull_limit", 0)
    for number in range(10):
        cache.set(f"k{number}", number, tag="even" if number % 2 == 0 else "odd")
    check(10)
    cache["k0"] = "overwrite"
    cache.set("k1", os.urandom(100_000))  # overwrite with a file
    check(10)
    assert cache.add("k2", "refused") is False
    check(10)
    del cache["k0"]
    assert cache.delete("k1") is True
    assert cache.delete("k1") is False
    check(8)
    assert cache.pop("k2") == 2
    assert cache.pop("k2") is None
    check(7)
    cache.push("queued")
    cache.push("queued", prefix="q")
    check(9)
    cache.pull()
    cache.pull(prefix="q")
    cache.pull()  # empty
    check(7)
    assert cache.evict("odd") == 4  # k3, k5, k7, k9
    check(3)
    cache.set("short", 1, expire=1)
    cache.set("short2", os.urandom(100_000), expire=1)
    check(5)
    clock.advance(2)
    assert cache.incr("short", default=0) == 1  # expired: replaced in place
    check(5)
    assert cache.expire(clock.now) == 1
    check(4)
    cache.reset("size_limit", 0)
    assert cache.cull() == 4
    check(0)
    cache.reset("size_limit", 2**30)
    for number in range(5):
        cache[number] = number
    assert cache.clear() == 5
    check(0)


def test_check_reports_native_text_that_is_not_utf8(cache: diskstore.Cache) -> None:
    cache["good"] = "text"
    cache["number"] = 5
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    with con:
        con.execute("UPDATE Cache SET value = CAST(X'FF41' AS TEXT) WHERE key = 'good'")
    con.close()
    problems = [str(w.message) for w in cache.check()]
    assert len(problems) == 1 and "value text is not UTF-8" in problems[0]
    cache.check(fix=True)
    assert "good" not in cache and cache["number"] == 5
    assert cache.check() == []
