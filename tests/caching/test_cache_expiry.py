"""Expiry of every kind, and argument checking: bad input is refused before anything is written.

Expiry is driven by a fake clock (``_cache_support.install_clock``), so no test sleeps to
make an item expire, except one that checks the real clock.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from _cache_support import Clock, install_clock, value_files, value_files_once_durable

import diskstore


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


# -- expiry ---------------------------------------------------------------------------------
class TestExpiry:
    def test_items_expire(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", "value", expire=10)
        assert cache.get("key", expire_time=True) == ("value", clock.now + 10)
        clock.advance(9.9)
        assert cache["key"] == "value"
        assert "key" in cache
        clock.advance(0.2)
        assert cache.get("key") is None
        assert "key" not in cache
        with pytest.raises(KeyError):
            cache["key"]
        with pytest.raises(KeyError):
            cache.read("key")

    def test_expire_zero_expires_at_once(self, cache: diskstore.Cache) -> None:
        cache.set("key", 1, expire=0)
        assert cache.get("key") is None

    def test_expire_inf_never_expires(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=math.inf)
        clock.advance(10**12)
        assert cache["key"] == 1

    def test_int_and_float_expiry(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("int", 1, expire=3)
        cache.set("float", 1, expire=0.5)
        clock.advance(1)
        assert "int" in cache
        assert "float" not in cache

    def test_overwrite_clears_expiry(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", 1, expire=1, tag="t")
        cache.set("key", 2)
        clock.advance(5)
        assert cache.get("key", expire_time=True, tag=True) == (2, None, None)

    def test_real_expiry_with_sleep(self, cache: diskstore.Cache) -> None:
        import time

        cache.set("key", 1, expire=0.05)
        cache.set("stay", 1, expire=60)
        time.sleep(0.15)
        assert "key" not in cache
        assert cache.get("stay") == 1

    def test_expired_file_value_is_a_miss(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", os.urandom(100_000), expire=1)
        clock.advance(2)
        assert cache.get("key", read=True) is None
        assert cache.expire(clock.now) == 1
        assert value_files_once_durable(cache) == []


# -- bad input: every argument is checked before anything is written ------------------------
class TestBadArguments:
    @pytest.mark.parametrize(
        ("expire", "error"),
        [(-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("5", TypeError),
         (b"5", TypeError), ([], TypeError), (True, TypeError)],
    )  # fmt: skip
    def test_bad_expire(self, cache: diskstore.Cache, expire: Any, error: type) -> None:
        cache.set("key", "original", expire=100, tag="t")
        before = cache.get("key", expire_time=True, tag=True)
        operations: dict[str, Callable[[], object]] = {
            "set": lambda: cache.set("key", "new", expire=expire),
            "add": lambda: cache.add("other", "new", expire=expire),
            "touch": lambda: cache.touch("key", expire=expire),
            "push": lambda: cache.push("new", expire=expire),
        }
        for name, operation in operations.items():
            with pytest.raises(error, match="expire") as info:
                operation()
            assert repr(expire) in str(info.value), name
        assert cache.get("key", expire_time=True, tag=True) == before
        assert len(cache) == 1

    @pytest.mark.parametrize(
        ("tag", "error"),
        [([1], TypeError), ((1,), TypeError), (object(), TypeError), ({"a": 1}, TypeError),
         (math.nan, ValueError)],
    )  # fmt: skip
    def test_bad_tag(self, cache: diskstore.Cache, tag: object, error: type) -> None:
        cache.set("key", "original", tag="t")
        for operation in (
            lambda: cache.set("key", "new", tag=tag),
            lambda: cache.add("other", "new", tag=tag),
            lambda: cache.push("new", tag=tag),
            lambda: cache.evict(tag),
        ):
            with pytest.raises(error, match="tag"):
                operation()
        assert cache.get("key", tag=True) == ("original", "t")
        assert len(cache) == 1

    def test_bad_value_leaves_no_row_and_no_file(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError):
            cache.set("key", [os.urandom(100_000), threading.Lock()])
        assert "key" not in cache
        assert len(cache) == 0
        assert value_files(cache.directory) == []

    def test_unhashable_keys_are_supported(self, cache: diskstore.Cache) -> None:
        cache[["list", 1]] = "list"
        cache[{"a": 1}] = "dict"
        assert cache[["list", 1]] == "list"
        assert cache[{"a": 1}] == "dict"
