"""Closing and reopening: items, metadata, files, counters and settings all survive."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _cache_support import Clock, install_clock, value_files

import diskstore

START = 500_000_000_000_000
BIG = bytes(range(256)) * 400  # 102,400 bytes: a value file


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


def populate(cache: diskstore.Cache) -> None:
    cache["int"] = 7
    cache["text"] = "é" * 50
    cache[b"bytes"] = b"\x00\x01"
    cache[("tuple", 1)] = {"nested": [1, 2.5, None]}
    cache["file"] = BIG
    cache.set("meta", "value", expire=3600, tag="label")
    cache.push("first")
    cache.push("second")
    cache.namespace("ns")["int"] = "namespaced"


def verify(cache: diskstore.Cache) -> None:
    assert cache["int"] == 7
    assert cache["text"] == "é" * 50
    assert cache[b"bytes"] == b"\x00\x01"
    assert cache[("tuple", 1)] == {"nested": [1, 2.5, None]}
    assert cache["file"] == BIG
    value, expire, tag = cache.get("meta", expire_time=True, tag=True)
    assert (value, tag) == ("value", "label")
    assert isinstance(expire, float)
    assert list(cache) == [
        "int", "text", b"bytes", ("tuple", 1), "file", "meta", START, START + 1,
    ]  # fmt: skip
    assert len(cache) == 8
    assert cache.namespace("ns")["int"] == "namespaced"
    assert len(cache.namespace("ns")) == 1


def test_items_survive_close_and_reopen(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        populate(cache)
        files = value_files(cache_dir)
    assert len(files) == 1
    with diskstore.Cache(cache_dir) as cache:
        verify(cache)
        assert value_files(cache_dir) == files
        assert cache.check() == []


def test_items_survive_in_a_new_interpreter(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        populate(cache)
    code = (
        "import sys, diskstore, test_reopen\n"
        "with diskstore.Cache(sys.argv[1]) as cache:\n"
        "    test_reopen.verify(cache)\n"
        "    cache['from child'] = 1\n"
    )
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code, cache_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with diskstore.Cache(cache_dir) as cache:
        assert cache["from child"] == 1


def test_committed_writes_survive_an_exit_without_close(cache_dir: str) -> None:
    code = (
        "import os, sys, diskstore\n"
        "cache = diskstore.Cache(sys.argv[1])\n"
        "cache['key'] = 'value'\n"
        "cache['file'] = bytes(100_000)\n"
        "with cache.transact():\n"
        "    cache['a'] = 1\n"
        "    cache['b'] = 2\n"
        "os._exit(0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, cache_dir], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    with diskstore.Cache(cache_dir) as cache:
        assert (cache["key"], cache["a"], cache["b"]) == ("value", 1, 2)
        assert cache["file"] == bytes(100_000)
        assert len(cache) == 4


def test_queue_numbering_continues_after_reopen(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        assert cache.push("a") == START
        assert cache.push("b", prefix="p") == "p-500000000000000"
    with diskstore.Cache(cache_dir) as cache:
        assert cache.push("c") == START + 1
        assert cache.push("d", side="front") == START - 1
        assert cache.push("e", prefix="p") == "p-500000000000001"
        assert cache.pull() == (START - 1, "d")


def test_expiry_survives_reopen(cache_dir: str, clock: Clock) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache.set("short", 1, expire=10)
        cache.set("long", 1, expire=1000)
    clock.advance(100)
    with diskstore.Cache(cache_dir) as cache:
        assert "short" not in cache
        assert "long" in cache
        assert cache.expire() == 1


def test_statistics_survive_reopen(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, statistics=True) as cache:
        cache["key"] = 1
        for _ in range(3):
            cache.get("key")
        cache.get("missing")
    with diskstore.Cache(cache_dir) as cache:
        assert cache.statistics is True
        assert cache.stats() == (3, 1)


def test_access_records_survive_reopen(cache_dir: str, clock: Clock) -> None:
    size = 40_000
    with diskstore.Cache(cache_dir, eviction_policy="least-recently-used", cull_limit=0) as cache:
        for key in range(20):
            cache[key] = os.urandom(size)
            clock.advance(1)
        for key in range(5):
            cache.get(key)
            clock.advance(1)
    with diskstore.Cache(cache_dir) as cache:
        cache.reset("size_limit", cache.volume() - 10 * size + size // 2)
        assert 10 <= cache.cull() <= 15
        assert set(range(5)) <= set(cache)


def test_settings_and_indexes_survive_reopen(cache_dir: str) -> None:
    with diskstore.Cache(
        cache_dir, size_limit=10**7, cull_limit=2, tag_index=True, eviction_policy="none"
    ):
        pass
    for _ in range(2):
        with diskstore.Cache(cache_dir) as cache:
            assert (cache.size_limit, cache.cull_limit) == (10**7, 2)
            assert (cache.tag_index, cache.eviction_policy) == (True, "none")


def test_reopen_with_an_equivalent_path(cache_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache["key"] = "value"
    parent, name = os.path.split(cache_dir)
    monkeypatch.chdir(parent)
    for path in (name, name + os.sep, os.path.join(".", name, "..", name)):
        with diskstore.Cache(path) as cache:
            assert cache.directory == cache_dir
            assert cache["key"] == "value"


def test_many_open_close_cycles(cache_dir: str) -> None:
    for number in range(30):
        with diskstore.Cache(cache_dir) as cache:
            assert cache.incr("opens") == number + 1
            cache[number] = os.urandom(100) if number % 2 else number
    with diskstore.Cache(cache_dir) as cache:
        assert cache["opens"] == 30
        assert len(cache) == 31


def test_deleted_directory_is_recreated(cache_dir: str) -> None:
    import shutil

    with diskstore.Cache(cache_dir) as cache:
        cache["key"] = 1
    shutil.rmtree(cache_dir)
    with diskstore.Cache(cache_dir) as cache:
        assert len(cache) == 0
        cache["key"] = 2
        assert cache["key"] == 2
