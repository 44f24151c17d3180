"""Iteration and bulk removal over many chunks, with namespaces interleaved in the table.

The statements resume after the last row of the previous chunk (their plans are asserted
in ``test_query_plans.py``); these tests check that resuming loses and repeats nothing:
across chunk boundaries, around rows of other namespaces, around a key that is not UTF-8,
and while the cache changes underneath.
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings

import pytest

import diskstore
from diskstore._base import _CHUNK
from diskstore._store import DB_NAME

COUNT = 3 * _CHUNK + 7


def _interleaved(cache: diskstore.Cache) -> diskstore.Cache:
    """Fill the plain cache and a view with alternating rows; return the view."""
    view = cache.namespace("view")
    for number in range(COUNT):
        cache.set(number, f"plain{number}", tag=number % 3)
        view.set(number, f"view{number}", tag=number % 3)
    return view


def test_both_directions_yield_every_key_once(cache: diskstore.Cache) -> None:
    view = _interleaved(cache)
    for target in (cache, view):
        assert list(target) == list(range(COUNT))
        assert list(reversed(target)) == list(reversed(range(COUNT)))
        assert list(target.iterkeys()) == list(range(COUNT))
        assert list(target.iterkeys(reverse=True)) == list(reversed(range(COUNT)))


def test_keys_inserted_after_iteration_starts_are_not_yielded(cache: diskstore.Cache) -> None:
    for number in range(COUNT):
        cache.set(number, number)
    seen = []
    for key in cache:
        seen.append(key)
        cache.set(f"new{key}", key)  # would be yielded later without the bound
    assert seen == list(range(COUNT))
    assert len(cache) == 2 * COUNT


def test_keys_deleted_beyond_the_current_chunk_are_skipped(cache: diskstore.Cache) -> None:
    for number in range(COUNT):
        cache.set(number, number)
    seen = []
    for key in cache:
        seen.append(key)
        if key == 0:
            for later in range(2 * _CHUNK, COUNT):
                cache.delete(later)
    assert seen == list(range(2 * _CHUNK))


def test_clear_leaves_other_namespaces(cache: diskstore.Cache) -> None:
    view = _interleaved(cache)
    assert view.clear() == COUNT
    assert len(view) == 0 and list(view) == []
    assert list(cache) == list(range(COUNT))
    assert cache.clear() == COUNT
    assert len(cache) == 0 and list(cache) == []


@pytest.mark.parametrize("tag_index", [False, True])
def test_evict_removes_only_the_tag_in_its_namespace(cache_dir: str, tag_index: bool) -> None:
    with diskstore.Cache(cache_dir, tag_index=tag_index) as cache:
        view = _interleaved(cache)
        expected = [n for n in range(COUNT) if n % 3 != 1]
        assert view.evict(1) == COUNT - len(expected)
        assert list(view) == expected
        assert list(cache) == list(range(COUNT))
        assert cache.evict(1) == COUNT - len(expected)
        assert list(cache) == expected
        assert cache.evict("absent") == 0
        assert len(cache) == len(view) == len(expected)


def test_iterkeys_goes_on_past_a_key_that_is_not_utf8(cache: diskstore.Cache) -> None:
    for number in range(COUNT):
        cache.set(f"k{number:04d}", number)
    with contextlib.closing(sqlite3.connect(f"{cache.directory}/{DB_NAME}")) as con, con:
        con.execute(
            "INSERT INTO items (ns, key, raw, store_time, access_time, mode, value)"
            " VALUES (0, CAST(x'6b30313530ff' AS TEXT), 1, 0, 0, 0, 1)"
        )
        con.execute("UPDATE namespaces SET count = count + 1 WHERE id = 0")
    keys = [f"k{number:04d}" for number in range(COUNT)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diskstore.CorruptionWarning)
        assert list(cache.iterkeys()) == keys
        assert list(cache.iterkeys(reverse=True)) == keys[::-1]
        assert list(cache) == keys
        assert list(reversed(cache)) == keys[::-1]
    with pytest.warns(diskstore.CorruptionWarning, match="not UTF-8"):
        list(cache)


def test_peekitem_finds_plain_rows_behind_other_namespaces(cache: diskstore.Cache) -> None:
    view = cache.namespace("view")
    cache.set("first", 1)
    for number in range(COUNT):
        view.set(number, number)
    cache.set("last", 2)
    for number in range(COUNT):
        view.set(-number - 1, number)
    assert cache.peekitem(last=False) == ("first", 1)
    assert cache.peekitem() == ("last", 2)
    assert view.peekitem() == (-COUNT, COUNT - 1)
    assert view.peekitem(last=False) == (0, 0)


def test_deque_remove_and_reverse_over_many_chunks(cache_dir: str) -> None:
    deque = diskstore.Deque(range(COUNT), directory=cache_dir)
    deque.reverse()
    assert list(deque) == list(reversed(range(COUNT)))
    deque.remove(COUNT // 2)
    assert COUNT // 2 not in list(deque)
    assert len(deque) == COUNT - 1
