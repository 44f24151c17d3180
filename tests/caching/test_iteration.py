"""Iteration and bulk removal over many chunks, with namespaces interleaved in the table.

The statements resume after the last row of the previous chunk (their plans are asserted
in ``test_query_plans.py``); these tests check that resuming loses and repeats nothing:
across chunk boundaries, around rows of other namespaces, around a key that is not UTF-8,
and while the cache changes underneath.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import warnings

import pytest

import diskstore
from diskstore._caching._base import _CHUNK
from diskstore._storage import _store
from diskstore._storage._store import DB_NAME

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
            "INSERT INTO Cache (key, raw, store_time, access_time, mode, value)"
            " VALUES (CAST(x'6b30313530ff' AS TEXT), 1, 0, 0, 1, 1)"
        )
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


class TestScanConnection:
    """Iteration reads through a connection of its own (see ``Store.scan``)."""

    def test_scans_read_with_a_small_cache_and_no_memory_map(self, cache: diskstore.Cache) -> None:
        cache.set("a", 1)
        assert list(cache) == ["a"]
        scan = cache._store._local.scan.con
        assert scan is not cache._store._local.conn.con
        assert scan.execute("PRAGMA mmap_size").fetchone()[0] == 0
        assert scan.execute("PRAGMA cache_size").fetchone()[0] == -_store.SCAN_CACHE_KIB
        main = cache._store._local.conn.con
        assert main.execute("PRAGMA mmap_size").fetchone()[0] == cache.sqlite_mmap_size

    def test_iteration_inside_a_transaction_sees_its_writes(self, cache: diskstore.Cache) -> None:
        cache.set("old", 0)
        with cache.transact():
            cache.set("new", 1)
            del cache["old"]
            assert list(cache) == ["new"]
            assert list(cache.iterkeys()) == ["new"]
        assert list(reversed(cache)) == ["new"]

    def test_close_closes_the_scan_connection(self, cache: diskstore.Cache) -> None:
        cache.set("a", 1)
        list(cache)
        record = cache._store._local.scan
        cache.close()
        assert record.con is None
        assert list(cache) == ["a"]  # reopened on use

    def test_a_forked_child_opens_its_own(self, cache: diskstore.Cache) -> None:
        cache.set("a", 1)
        list(cache)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            try:
                os._exit(0 if list(cache) == ["a"] and list(cache.iterkeys()) == ["a"] else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert list(cache) == ["a"]

    @pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc")
    def test_a_pass_over_every_item_leaves_the_process_small(self, cache_dir: str) -> None:
        # The database is about 9 MB, under the default 64 MiB memory map and 32 MiB page
        # cache: read through the point-operation connection, a pass would map or cache all
        # of it. Through the scan connection it costs about SCAN_CACHE_KIB.
        with diskstore.Cache(cache_dir) as cache:
            for start in range(0, 30_000, 1000):
                with cache.transact():
                    for number in range(start, start + 1000):
                        cache.set(f"key-{number:06d}", bytes(200))
        database = os.path.getsize(os.path.join(cache_dir, DB_NAME))
        assert database > 6 * 2**20
        program = (
            "import os, sys, diskstore\n"
            "page = os.sysconf('SC_PAGE_SIZE')\n"
            "def rss():\n"
            "    with open('/proc/self/statm') as f:\n"
            "        return int(f.read().split()[1]) * page\n"
            "cache = diskstore.Cache(sys.argv[1])\n"
            "cache.get('key-000000')\n"
            "before = rss()\n"
            "assert sum(1 for _ in cache) == 30_000\n"
            "assert sum(1 for _ in cache.iterkeys()) == 30_000\n"
            "print(rss() - before)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program, cache_dir], capture_output=True, text=True, check=True
        )
        grown = int(done.stdout.strip())
        assert grown < database / 3, (grown, database)
