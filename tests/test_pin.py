"""Pinned entries survive eviction until they have been read once."""

from __future__ import annotations

import pytest

import diskstore
import diskstore._values._modes


@pytest.fixture
def small(cache_dir: str):
    with diskstore.Cache(cache_dir, size_limit=60_000, cull_limit=0) as cache:
        yield cache


def _fill(cache: diskstore.Cache, start: int, count: int) -> None:
    for index in range(start, start + count):
        cache.set(index, b"v" * 1_500)


def test_pinned_entry_survives_culls_that_evict_everything_else(small: diskstore.Cache) -> None:
    small.set("promised", b"result" * 300, pin=True)
    _fill(small, 0, 200)
    small.cull()
    assert "promised" in small
    assert small.volume() <= 60_000 or len(small) == 1
    survivors = [key for key in small if key != "promised"]
    assert len(survivors) < 200  # eviction did happen around the pinned entry


def test_pinned_entry_goes_after_being_read(small: diskstore.Cache) -> None:
    small.set("promised", b"result" * 300, pin=True)
    _fill(small, 0, 200)
    small.cull()
    assert small.get("promised") == b"result" * 300
    _fill(small, 1_000, 200)
    small.cull()
    assert "promised" not in small


def test_pinned_file_value_and_pickled_value_read_back(small: diskstore.Cache) -> None:
    small.set("file", b"f" * 100_000, pin=True)
    small.set("obj", {"a": [1, 2]}, pin=True)
    assert small.get("file") == b"f" * 100_000
    assert small.get("obj") == {"a": [1, 2]}
    mode = small._store.run("SELECT mode FROM Cache WHERE key = 'obj'")[0][0]
    assert not mode & diskstore._values._modes.ROW_PINNED


def test_overwriting_without_pin_unpins(small: diskstore.Cache) -> None:
    small.set("k", 1, pin=True)
    small.set("k", 2)
    _fill(small, 0, 200)
    small.cull()
    assert "k" not in small


def test_pin_survives_reopen(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, size_limit=60_000, cull_limit=0) as cache:
        cache.set("promised", 1, pin=True)
    with diskstore.Cache(cache_dir) as cache:
        _fill(cache, 0, 200)
        cache.cull()
        assert cache.get("promised") == 1


def test_add_with_pin(small: diskstore.Cache) -> None:
    assert small.add("promised", 7, pin=True)
    _fill(small, 0, 200)
    small.cull()
    assert small["promised"] == 7
