"""The core Cache's item API: mapping protocol, lifecycle, get/set/add/read, pop/delete/touch, incr.

Semantics are diskcache 5.6.3's unless a test says otherwise. Time is a fake clock
(``_cache_support.install_clock``); expiry itself is tested in ``test_cache_expiry.py``,
queues in ``test_cache_queue.py`` and maintenance in ``test_cache_maintenance.py``.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cache_support import (
    SPAWN,
    Clock,
    install_clock,
    read_pickled_worker,
    value_files,
    value_files_once_durable,
)

import diskstore


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


VALUES = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**63 - 1,
    2**64 + 7,
    1.5,
    -0.0,
    math.inf,
    "",
    "text",
    "é" * 10,
    b"",
    b"\x00\xff" * 10,
    b"z" * 100_000,
    "y" * 100_000,
    os.urandom(200_000),
    [1, "two", 3.0],
    (1, (2, 3)),
    {"a": [1, 2], "b": {"c": None}},
    {1, 2, 3},
    frozenset({"x"}),
    bytearray(b"ba"),
    complex(1, 2),
]


# -- mapping protocol -----------------------------------------------------------------------
class TestMapping:
    def test_setitem_getitem_contains_delitem(self, cache: diskstore.Cache) -> None:
        cache["key"] = "value"
        assert cache["key"] == "value"
        assert "key" in cache
        assert "other" not in cache
        del cache["key"]
        assert "key" not in cache
        with pytest.raises(KeyError) as info:
            cache["key"]
        assert info.value.args == ("key",)

    def test_delitem_missing_raises_keyerror(self, cache: diskstore.Cache) -> None:
        with pytest.raises(KeyError) as info:
            del cache["missing"]
        assert info.value.args == ("missing",)

    @pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
    def test_values_round_trip(self, cache: diskstore.Cache, value: Any) -> None:
        cache["key"] = value
        got = cache["key"]
        assert got == value
        assert type(got) is type(value)
        if isinstance(value, float):
            assert math.copysign(1, got) == math.copysign(1, value)

    def test_overwrite_replaces_value_and_keeps_count(self, cache: diskstore.Cache) -> None:
        cache["key"] = 1
        cache["key"] = "two"
        cache["key"] = b"x" * 100_000
        assert cache["key"] == b"x" * 100_000
        assert len(cache) == 1

    def test_len_starts_at_zero(self, cache: diskstore.Cache) -> None:
        assert len(cache) == 0
        assert list(cache) == []

    def test_iter_is_insertion_order(self, cache: diskstore.Cache) -> None:
        keys = ["c", 3, b"b", ("t", 1), 1.5, "a"]
        for key in keys:
            cache[key] = key
        assert list(cache) == keys
        assert list(reversed(cache)) == keys[::-1]

    def test_overwrite_keeps_position_delete_moves_to_end(self, cache: diskstore.Cache) -> None:
        for key in "abc":
            cache[key] = 0
        cache["a"] = 1  # an overwrite updates the row in place
        assert list(cache) == ["a", "b", "c"]
        del cache["a"]
        cache["a"] = 2
        assert list(cache) == ["b", "c", "a"]

    def test_iteration_spans_many_chunks(self, cache: diskstore.Cache) -> None:
        with cache.transact():
            for number in range(1_050):
                cache[number] = None
        assert list(cache) == list(range(1_050))
        assert list(reversed(cache)) == list(range(1_049, -1, -1))

    def test_iteration_includes_expired_items(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("short", 1, expire=1)
        cache["long"] = 2
        clock.advance(5)
        assert list(cache) == ["short", "long"]
        assert len(cache) == 2
        assert "short" not in cache

    def test_iterkeys_database_sort_order(self, cache: diskstore.Cache) -> None:
        keys = [b"b", "a", 2, 1.5, (1, 2), "b", b"a", -3, "B"]
        for key in keys:
            cache[key] = None
        expected = [-3, 1.5, 2, "B", "a", "b", b"a", b"b", (1, 2)]
        assert list(cache.iterkeys()) == expected
        assert list(cache.iterkeys(reverse=True)) == expected[::-1]

    def test_iterkeys_spans_many_chunks(self, cache: diskstore.Cache) -> None:
        numbers = list(range(1_000, 0, -3))
        with cache.transact():
            for number in numbers:
                cache[number] = None
                cache[f"k{number:05d}"] = None
        expected = sorted(numbers) + sorted(f"k{number:05d}" for number in numbers)
        assert list(cache.iterkeys()) == expected
        assert list(cache.iterkeys(reverse=True)) == expected[::-1]

    def test_int_and_equal_float_are_one_key(self, cache: diskstore.Cache) -> None:
        cache[1] = "int"
        assert cache[1.0] == "int"
        cache[1.0] = "float"
        assert len(cache) == 1
        assert cache[1] == "float"

    def test_distinct_types_are_distinct_keys(self, cache: diskstore.Cache) -> None:
        # As in diskcache, only int/float equality crosses types: True is not the key 1.
        keys = ["1", b"1", 1, (1,), [1], True, None, 2**70, frozenset({1}), (1.5, "x")]
        for index, key in enumerate(keys):
            cache[key] = index
        assert len(cache) == len(keys)
        for index, key in enumerate(keys):
            assert cache[key] == index, key

    def test_nan_key_is_rejected(self, cache: diskstore.Cache) -> None:
        for operation in (
            lambda: cache.set(math.nan, 1),
            lambda: cache.get(math.nan),
            lambda: cache.__contains__(math.nan),
            lambda: cache.delete(math.nan),
            lambda: cache.incr(math.nan),
        ):
            with pytest.raises(ValueError, match="key"):
                operation()
        assert len(cache) == 0


# -- context manager, close, pickling -------------------------------------------------------
class TestLifecycle:
    def test_context_manager_closes(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            cache["key"] = "value"
        assert cache._store.closed
        with diskstore.Cache(cache_dir) as again:
            assert again["key"] == "value"

    def test_use_after_close_reopens(self, cache_dir: str) -> None:
        cache = diskstore.Cache(cache_dir)
        cache["key"] = 1
        cache.close()
        cache.close()  # closing twice is harmless
        assert cache._store.closed
        results: list[object] = []
        operations: list[Callable[[], object]] = [
            lambda: cache.get("key"),
            lambda: cache.set("key", 2),
            lambda: cache["key"],
            lambda: len(cache),
            lambda: list(cache),
            lambda: "key" in cache,
            lambda: cache.incr("n"),
            lambda: cache.push(1),
            lambda: cache.pull()[1],
            lambda: cache.delete("key"),
            lambda: cache.clear(),
        ]
        for operation in operations:
            results.append(operation())
            cache.close()  # every operation reopens what the previous close closed
        assert results == [1, True, 2, 1, ["key"], True, 1, 500000000000000, 1, True, 1]
        with diskstore.Cache(cache_dir) as again:
            assert "key" not in again and again.get("n") is None

    def test_closing_a_view_closes_the_cache_until_next_use(self, cache_dir: str) -> None:
        cache = diskstore.Cache(cache_dir)
        view = cache.namespace("ns")
        view["key"] = 1
        cache.close()
        assert view._store.closed
        assert view["key"] == 1
        assert not cache._store.closed

    def test_attributes(self, cache: diskstore.Cache, cache_dir: str) -> None:
        assert cache.directory == os.path.abspath(cache_dir)
        assert cache.timeout == 60
        assert isinstance(cache.disk, diskstore.Disk)
        assert os.path.isfile(os.path.join(cache_dir, "cache.db"))

    def test_directory_defaults_to_a_new_temporary_directory(self) -> None:
        with diskstore.Cache() as first, diskstore.Cache() as second:
            assert os.path.isdir(first.directory)
            assert first.directory != second.directory

    def test_directory_accepts_pathlike_and_tilde(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        with diskstore.Cache("~/tilde") as cache:
            assert cache.directory == str(tmp_path / "tilde")
        with diskstore.Cache(tmp_path / "pathlike") as cache:
            assert cache.directory == str(tmp_path / "pathlike")

    def test_directory_expands_environment_variables_like_fanout_and_diskcache(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import diskcache

        monkeypatch.setenv("DISKSTORE_TEST_ROOT", str(tmp_path))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        for spelling in ("$DISKSTORE_TEST_ROOT/vars", "${DISKSTORE_TEST_ROOT}/vars"):
            with diskstore.Cache(spelling) as cache:
                assert cache.directory == str(tmp_path / "vars")
        with diskstore.Cache("~/$DISKSTORE_TEST_SUB") as cache:  # unset: left as written
            assert cache.directory == str(tmp_path / "home" / "$DISKSTORE_TEST_SUB")
        # One string names one place for Cache, FanoutCache and diskcache alike.
        spelling = "$DISKSTORE_TEST_ROOT/same"
        with diskstore.FanoutCache(spelling, shards=1) as fan:
            expected = fan.directory
        with diskcache.Cache(spelling) as theirs:
            assert theirs.directory == expected
        with diskstore.Cache(spelling) as ours:  # diskcache's cache.db, opened in place
            assert ours.directory == expected
        assert not os.path.exists("$DISKSTORE_TEST_ROOT")

    @pytest.mark.parametrize("below", ["", "sub"])
    def test_a_file_given_as_the_directory_is_named_in_one_clear_error(
        self, tmp_path: Path, below: str
    ) -> None:
        script = tmp_path / "file.py"
        script.write_text("x = 1\n")
        with pytest.raises(diskstore.StorageError) as raised:
            diskstore.Cache(script / below if below else script)
        message = str(raised.value)
        assert f"{str(script)!r} is a file" in message and "a cache is a directory" in message
        assert message.count("[Errno") == 1
        assert script.read_text() == "x = 1\n"

    def test_a_directory_that_cannot_be_created_says_why_once(self, tmp_path: Path) -> None:
        # Below /proc nothing can be created, even by root.
        with pytest.raises(diskstore.StorageError) as raised:
            diskstore.Cache(f"/proc/{os.getpid()}/diskstore-cache")
        message = str(raised.value)
        assert "cannot create cache directory" in message
        assert message.count("[Errno") == 1, message

    def test_directory_is_private(self, cache: diskstore.Cache) -> None:
        assert os.stat(cache.directory).st_mode & 0o077 == 0

    def test_pickle_reopens_same_directory(self, cache: diskstore.Cache) -> None:
        cache["key"] = "value"
        clone = pickle.loads(pickle.dumps(cache))
        try:
            assert clone is not cache
            assert clone.directory == cache.directory
            assert clone.timeout == cache.timeout
            assert clone["key"] == "value"
            clone["other"] = 1
            assert cache["other"] == 1
        finally:
            clone.close()

    @pytest.mark.timeout(120)
    def test_pickle_reopens_in_another_process(self, cache: diskstore.Cache) -> None:
        cache["key"] = "value"
        results = SPAWN.Queue()
        process = SPAWN.Process(
            target=read_pickled_worker, args=(pickle.dumps(cache), "key", results)
        )
        process.start()
        try:
            directory, name, value = results.get(timeout=90)
        finally:
            process.join(90)
            if process.is_alive():
                process.kill()
                process.join(5)
        assert process.exitcode == 0
        assert (directory, name, value) == (cache.directory, "", "value")
        assert isinstance(cache[("child", "key")], int)

    def test_repr_names_directory(self, cache: diskstore.Cache) -> None:
        assert repr(cache.directory) in repr(cache)


# -- get / set / add / read -------------------------------------------------------------------
class TestGetSet:
    def test_set_returns_true(self, cache: diskstore.Cache) -> None:
        assert cache.set("key", "value") is True
        assert cache.get("key") == "value"

    def test_get_default(self, cache: diskstore.Cache) -> None:
        assert cache.get("missing") is None
        marker = object()
        assert cache.get("missing", marker) is marker
        assert cache.get("missing", default=3) == 3

    @pytest.mark.parametrize("read", [False, True])
    @pytest.mark.parametrize(
        ("expire_time", "tag", "shape"),
        [
            (False, False, "value"),
            (True, False, "value, expire"),
            (False, True, "value, tag"),
            (True, True, "value, expire, tag"),
        ],
    )
    def test_get_tuple_shapes(
        self,
        cache: diskstore.Cache,
        clock: Clock,
        read: bool,
        expire_time: bool,
        tag: bool,
        shape: str,
    ) -> None:
        cache.set("key", "value", expire=10, tag="label")
        hit = cache.get("key", read=read, expire_time=expire_time, tag=tag)
        miss = cache.get("missing", "default", read=read, expire_time=expire_time, tag=tag)
        expected_hit = {
            "value": "value",
            "value, expire": ("value", clock.now + 10),
            "value, tag": ("value", "label"),
            "value, expire, tag": ("value", clock.now + 10, "label"),
        }[shape]
        expected_miss = {
            "value": "default",
            "value, expire": ("default", None),
            "value, tag": ("default", None),
            "value, expire, tag": ("default", None, None),
        }[shape]
        assert hit == expected_hit
        assert miss == expected_miss

    def test_get_without_expiry_or_tag_reports_none(self, cache: diskstore.Cache) -> None:
        cache["key"] = 1
        assert cache.get("key", expire_time=True, tag=True) == (1, None, None)

    @pytest.mark.parametrize("tag", ["text", b"bytes", 7, 2.5, None, -(2**63)])
    def test_tag_types_round_trip(self, cache: diskstore.Cache, tag: object) -> None:
        cache.set("key", 1, tag=tag)
        got = cache.get("key", tag=True)[1]
        assert got == tag
        assert type(got) is type(tag)

    def test_read_true_with_file_value_returns_open_file(self, cache: diskstore.Cache) -> None:
        data = os.urandom(100_000)
        assert cache.set("key", io.BytesIO(data), read=True) is True
        assert cache["key"] == data
        with cache.get("key", read=True) as reader:
            assert reader.read() == data
        with cache.read("key") as reader:
            assert reader.read() == data
        value, expire, tag = cache.get("key", read=True, expire_time=True, tag=True)
        with value:
            assert value.read() == data
        assert (expire, tag) == (None, None)

    def test_read_true_stores_small_stream(self, cache: diskstore.Cache) -> None:
        cache.set("key", io.BytesIO(b"value"), expire=5, read=True, tag="data")
        reader, timestamp, tag = cache.get("key", read=True, expire_time=True, tag=True)
        with reader:
            assert reader.read() == b"value"
        assert isinstance(timestamp, float)
        assert tag == "data"

    def test_read_compressible_stream(self, cache: diskstore.Cache) -> None:
        data = b"abc" * 100_000
        cache.set("key", io.BytesIO(data), read=True)
        with cache.read("key") as reader:
            assert reader.read() == data
        assert cache["key"] == data

    def test_read_inline_value_returns_the_value(self, cache: diskstore.Cache) -> None:
        cache["small"] = b"abc"
        assert cache.get("small", read=True) == b"abc"
        assert cache.read("small") == b"abc"

    def test_read_missing_raises_keyerror(self, cache: diskstore.Cache) -> None:
        with pytest.raises(KeyError) as info:
            cache.read("missing")
        assert info.value.args == ("missing",)

    def test_set_read_requires_a_readable(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError, match="value"):
            cache.set("key", b"not a file", read=True)
        assert "key" not in cache

    def test_large_values_live_in_files_that_are_removed(self, cache: diskstore.Cache) -> None:
        cache["big"] = os.urandom(100_000)
        (first,) = value_files(cache.directory)
        cache["big"] = os.urandom(100_000)
        # The replaced file waits for a checkpoint (see diskstore/_fs/_durability.py).
        assert first in value_files(cache.directory)
        (second,) = value_files_once_durable(cache)
        assert first != second
        cache["big"] = 1
        assert value_files_once_durable(cache) == []
        cache["big"] = os.urandom(100_000)
        del cache["big"]
        assert value_files_once_durable(cache) == []

    def test_add_only_when_missing(self, cache: diskstore.Cache) -> None:
        assert cache.add(b"test", 123) is True
        assert cache[b"test"] == 123
        assert cache.add(b"test", 456, tag="new") is False
        assert cache.get(b"test", tag=True) == (123, None)
        assert len(cache) == 1

    def test_add_replaces_expired_item(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", "old", expire=1)
        clock.advance(2)
        assert cache.add("key", "new", expire=10, tag="t") is True
        assert cache.get("key", expire_time=True, tag=True) == ("new", clock.now + 10, "t")
        assert len(cache) == 1

    def test_add_large_value_leaves_no_file_when_refused(self, cache: diskstore.Cache) -> None:
        cache["key"] = 1
        assert cache.add("key", os.urandom(100_000)) is False
        assert value_files(cache.directory) == []


# -- pop / delete / touch -------------------------------------------------------------------
class TestRemove:
    def test_delete(self, cache: diskstore.Cache) -> None:
        cache["key"] = 1
        assert cache.delete("key") is True
        assert cache.delete("key") is False
        assert "key" not in cache
        assert len(cache) == 0

    def test_delete_expired_returns_false(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=1)
        clock.advance(2)
        assert cache.delete("key") is False
        with pytest.raises(KeyError):
            del cache["key"]

    def test_pop(self, cache: diskstore.Cache) -> None:
        cache["alice"] = 1
        assert cache.pop("alice") == 1
        assert "alice" not in cache
        assert cache.pop("alice") is None
        assert cache.pop("dave", default="does not exist") == "does not exist"

    def test_pop_file_value_removes_file(self, cache: diskstore.Cache) -> None:
        data = os.urandom(100_000)
        cache["key"] = data
        assert cache.pop("key") == data
        assert value_files_once_durable(cache) == []

    @pytest.mark.parametrize(("expire_time", "tag"), [(False, True), (True, False), (True, True)])
    def test_pop_tuple_shapes(
        self, cache: diskstore.Cache, clock: Clock, expire_time: bool, tag: bool
    ) -> None:
        cache.set("key", 0, expire=10, tag="admin")
        got = cache.pop("key", expire_time=expire_time, tag=tag)
        missing = cache.pop("key", "gone", expire_time=expire_time, tag=tag)
        if expire_time and tag:
            assert got == (0, clock.now + 10, "admin")
            assert missing == ("gone", None, None)
        elif expire_time:
            assert got == (0, clock.now + 10)
            assert missing == ("gone", None)
        else:
            assert got == (0, "admin")
            assert missing == ("gone", None)

    def test_pop_expired_returns_default(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=1)
        clock.advance(2)
        assert cache.pop("key", "default") == "default"
        assert cache.pop("key", expire_time=True, tag=True) == (None, None, None)
        assert "key" not in cache

    def test_touch(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=1)
        assert cache.touch("key", expire=100) is True
        assert cache.get("key", expire_time=True) == (1, clock.now + 100)
        clock.advance(50)
        assert cache["key"] == 1
        assert cache.touch("key") is True  # no expiry any more
        assert cache.get("key", expire_time=True) == (1, None)
        clock.advance(10**6)
        assert cache["key"] == 1

    def test_touch_missing_or_expired(self, cache: diskstore.Cache, clock: Clock) -> None:
        assert cache.touch("does-not-exist", expire=1) is False
        cache.set("key", 1, expire=1)
        clock.advance(2)
        assert cache.touch("key", expire=100) is False
        assert "key" not in cache


# -- incr / decr ----------------------------------------------------------------------------
class TestIncr:
    def test_incr_decr(self, cache: diskstore.Cache) -> None:
        assert cache.add(b"test", 123)
        assert cache.incr(b"test") == 124
        assert cache.decr(b"test", 24) == 100
        assert cache[b"test"] == 100

    def test_missing_key_starts_from_default(self, cache: diskstore.Cache) -> None:
        assert cache.incr("alice") == 1
        assert cache.decr("bob", default=-9) == -10
        assert cache.incr("carol", 5, default=10) == 15
        assert (cache["alice"], cache["bob"], cache["carol"]) == (1, -10, 15)

    def test_default_none_on_missing_key_raises_keyerror(self, cache: diskstore.Cache) -> None:
        with pytest.raises(KeyError) as info:
            cache.incr("carol", default=None)
        assert info.value.args == ("carol",)
        with pytest.raises(KeyError):
            cache.decr("carol", default=None)
        assert "carol" not in cache

    def test_float_delta(self, cache: diskstore.Cache) -> None:
        assert cache.incr("total", 123.45) == 123.45
        assert cache.incr("total", 0.05) == pytest.approx(123.5)

    def test_incr_past_int64_keeps_exact_value(self, cache: diskstore.Cache) -> None:
        cache["n"] = 2**63 - 1
        assert cache.incr("n") == 2**63
        assert cache["n"] == 2**63
        assert cache.decr("n") == 2**63 - 1
        assert cache["n"] == 2**63 - 1

    @pytest.mark.parametrize("value", ["text", b"bytes", [1], None])
    def test_incr_non_number_raises_typeerror_and_keeps_value(
        self, cache: diskstore.Cache, value: object
    ) -> None:
        cache.set("key", value, tag="t")
        with pytest.raises(TypeError):
            cache.incr("key")
        assert cache.get("key", tag=True) == (value, "t")

    def test_incr_keeps_expiry_and_tag(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=10, tag="t")
        assert cache.incr("key") == 2
        assert cache.get("key", expire_time=True, tag=True) == (2, clock.now + 10, "t")

    def test_incr_expired_starts_from_default(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 100, expire=1, tag="t")
        clock.advance(2)
        assert cache.incr("key", default=5) == 6
        assert cache.get("key", expire_time=True) == (6, None)
        assert len(cache) == 1
        cache.set("gone", 1, expire=1)
        clock.advance(2)
        with pytest.raises(KeyError):
            cache.incr("gone", default=None)


# -- diskcache behaviours programs rely on --------------------------------------------------
class TestDiskcacheBehaviours:
    def test_patching_time_time_moves_the_clock(self, cache: diskstore.Cache) -> None:
        from unittest import mock

        now = time.time()
        with mock.patch("time.time", return_value=now):
            cache.set("k", 1, expire=10)
        with mock.patch("time.time", return_value=now + 11):
            assert cache.get("k") is None
            assert cache.expire() == 1

    def test_an_iterator_ignores_keys_inserted_after_it_started(
        self, cache: diskstore.Cache
    ) -> None:
        for key in "abc":
            cache[key] = key
        forward, backward = iter(cache), reversed(cache)
        assert next(forward) == "a" and next(backward) == "c"
        cache["d"] = "d"
        assert list(forward) == ["b", "c"]
        assert list(backward) == ["b", "a"]
        assert list(cache) == ["a", "b", "c", "d"]

    def test_counters_read_like_diskcache_settings(self, cache: diskstore.Cache) -> None:
        cache.stats(enable=True)
        assert (cache.count, cache.size, cache.hits, cache.misses) == (0, 0, 0, 0)
        cache["k"] = os.urandom(100_000)
        cache.get("k")
        cache.get("missing")
        assert cache.count == 0  # as in diskcache: updated by reset(), not by writes
        assert cache.reset("count") == 1 and cache.count == 1
        assert cache.reset("size") == cache.size > 100_000 - 1
        assert (cache.reset("hits"), cache.reset("misses")) == (1, 1)
        assert cache.reset("hits", 0) == 0 and cache.stats() == (0, 1)
        with pytest.raises(diskstore.SettingsError, match="count"):
            cache.reset("count", 5)
        with pytest.raises(diskstore.SettingsError, match="hits"):
            cache.reset("hits", -1)
        assert len(cache) == 1


@pytest.mark.parametrize(
    ("column", "bad"),
    [("size", "'many'"), ("vsize", "1.5"), ("sig", "'text'"), ("value", "X'00'")],
)
def test_a_file_row_with_columns_of_wrong_types_is_read_whole(
    tmp_path: Path, column: str, bad: str
) -> None:
    """The point read gives a file's columns only when they have their types; otherwise the
    row is read again whole, and checked as before."""
    with diskstore.Cache(str(tmp_path)) as cache:
        value = os.urandom(100_000)
        cache["k"] = value
        con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
        with con:
            con.execute(f"UPDATE Cache SET {column} = {bad} WHERE key = 'k'")
        con.close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = cache.get("k")
        if column == "value":  # a file's row with a value as well: the file is what counts
            assert got == value and not caught
        else:
            assert got is None
            assert [w.category for w in caught] == [diskstore.CorruptionWarning]
