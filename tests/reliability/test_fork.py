"""Item 5: a process forked from a cache user can use the cache at once.

Each scenario forks 20 children from a parent that holds an open, used ``Cache``: with the
parent idle; with a sibling thread looping inside ``transact()`` at the moment of the fork;
and with a sibling thread holding a memoized function's cross-process lock (a ``filelock``)
at the moment of the fork. Every child must finish its operations within a few seconds
(the cache's timeout is 60 s, so a child stuck on inherited lock state would show as a
hang), and the parent must keep working.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time

import pytest

import diskstore

from ._support import start_forked

FORK = multiprocessing.get_context("fork")
CHILDREN = 20
CHILD_DEADLINE = 10.0  # seconds before a child counts as hung (the cache timeout is 60)


def _child_ops(cache: diskstore.Cache, number: int, results, extra) -> None:
    try:
        start = time.monotonic()
        cache.set(f"child{number}", number)
        assert cache.get(f"child{number}") == number
        cache.incr("children")
        with cache.transact():
            cache.set(f"child{number}-txn", os.getpid())
        assert cache.delete(f"child{number}-txn")
        if extra is not None:
            extra(cache)
        results.put(("ok", number, time.monotonic() - start))
    except BaseException as exc:
        results.put(("error", number, repr(exc)))


def fork_children(cache: diskstore.Cache, extra=None) -> tuple[int, float, list[str]]:
    """Fork CHILDREN children one after another; return (hung, slowest, errors)."""
    results = FORK.SimpleQueue()
    hung = 0
    slowest = 0.0
    errors: list[str] = []
    for number in range(CHILDREN):
        time.sleep(0.005 * (number % 4))  # fork at varying points of the sibling's loop
        child = FORK.Process(target=_child_ops, args=(cache, number, results, extra))
        start_forked(child)
        child.join(CHILD_DEADLINE)
        if child.is_alive():
            hung += 1
            child.kill()
            child.join(5)
            continue
        if results.empty():
            errors.append(f"child {number} exited with {child.exitcode} and no report")
            continue
        status, _number, body = results.get()
        if status == "ok":
            slowest = max(slowest, body)
        else:
            errors.append(f"child {number}: {body}")
    return hung, slowest, errors


def _assert_parent_sees_children(cache: diskstore.Cache, base: int) -> None:
    assert cache.get("children") == base + CHILDREN
    for number in range(CHILDREN):
        assert cache.get(f"child{number}") == number


def _record(figures, scenario: str, hung: int, slowest: float) -> None:
    figures.record(f"fork ({scenario}): children hung of {CHILDREN}", hung)
    figures.record(f"fork ({scenario}): slowest child, s", round(slowest, 3))


@pytest.mark.timeout(300)
def test_fork_from_an_idle_parent(cache, figures):
    cache.set("warm", 1)
    assert cache.get("warm") == 1
    hung, slowest, errors = fork_children(cache)
    _record(figures, "idle parent", hung, slowest)
    assert errors == []
    assert hung == 0
    _assert_parent_sees_children(cache, 0)


@pytest.mark.timeout(300)
def test_fork_while_a_sibling_thread_is_inside_transact(cache, figures):
    stop = threading.Event()
    loops = [0]
    failures: list[BaseException] = []

    def sibling() -> None:
        try:
            while not stop.is_set():
                with cache.transact():
                    cache.incr("a")
                    time.sleep(0.002)  # hold the transaction open across forks
                    cache.incr("b")
                loops[0] += 1
                time.sleep(0.002)  # and let other writers (the children) in between
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=sibling)
    thread.start()
    try:
        while loops[0] < 3:
            time.sleep(0.001)
        hung, slowest, errors = fork_children(cache)
    finally:
        stop.set()
        thread.join(30)
    _record(figures, "sibling thread in transact()", hung, slowest)
    assert not thread.is_alive()
    assert failures == []
    assert errors == []
    assert hung == 0
    _assert_parent_sees_children(cache, 0)
    assert cache.get("a") == cache.get("b") == loops[0]


def _slow_double(number: int) -> int:
    time.sleep(0.1)
    return number * 2


@pytest.mark.timeout(300)
def test_fork_while_a_sibling_thread_holds_a_memoize_lock(cache, figures):
    memoized = cache.memoize(name="held-at-fork", lock_timeout=60)(_slow_double)
    stop = threading.Event()
    current = {"key": None}
    failures: list[BaseException] = []

    def sibling() -> None:
        number = 1000
        try:
            while not stop.is_set():
                number += 1
                current["key"] = number
                assert memoized(number) == number * 2  # holds the key's lock for 0.1 s
        except BaseException as exc:
            failures.append(exc)

    def in_child(child_cache: diskstore.Cache) -> None:
        busy = current["key"]
        assert busy is not None
        assert memoized(busy) == busy * 2  # the key a thread of the parent was computing
        assert memoized(-os.getpid()) == -os.getpid() * 2  # a fresh key
        assert child_cache.get("warm") == 1

    cache.set("warm", 1)
    thread = threading.Thread(target=sibling)
    thread.start()
    try:
        while current["key"] is None:
            time.sleep(0.001)
        hung, slowest, errors = fork_children(cache, extra=in_child)
    finally:
        stop.set()
        thread.join(30)
    _record(figures, "sibling thread holding a filelock", hung, slowest)
    assert failures == []
    assert errors == []
    assert hung == 0
    _assert_parent_sees_children(cache, 0)


def _fork() -> int:
    """``os.fork()``, without the warning newer Pythons give when threads are running."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*fork.*", DeprecationWarning)
        return os.fork()


def _child_exit(check) -> None:
    """In a forked child: exit 0 if *check()* is true, 1 if false or if it raised."""
    code = 1
    try:
        code = 0 if check() else 1
    finally:
        os._exit(code)


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.timeout(120)
def test_a_child_does_not_write_back_the_parents_buffered_bookkeeping(cache_dir):
    import sqlite3

    settings = {"statistics": True, "eviction_policy": "least-frequently-used"}
    with diskstore.Cache(cache_dir, disk_min_file_size=1024, **settings) as cache:
        cache.set("hot", 1)
        cache.set("file", os.urandom(5000))
        cache.set("hot", 2)  # an overwrite: its store time waits in the buffer
        cache.stats()  # flush what the sets recorded; from here on only reads buffer
        bookkeeper = cache._shared.bookkeeper
        bookkeeper._last_flush = time.monotonic() + 3600  # no flush before the fork
        for _ in range(100):
            assert cache.get("hot") == 2
        for _ in range(7):
            assert cache.get("missing") is None
        cache.set("hot", 3)
        assert bookkeeper.hits == 100 and bookkeeper.misses == 7
        pid = _fork()
        if pid == 0:
            _child_exit(lambda: cache.close() is None)  # a close flushes the buffers
        assert _wait(pid) == 0
        assert cache.stats() == (100, 7)
        assert cache.get("hot") == 3
        assert len(cache) == 2
        assert cache.check() == []
    con = sqlite3.connect(f"{cache_dir}/cache.db")
    try:
        counts = dict(con.execute("SELECT key, access_count FROM Cache").fetchall())
        totals = con.execute(
            "SELECT (SELECT value FROM Settings WHERE key = 'count'),"
            " (SELECT value FROM Settings WHERE key = 'size')"
        ).fetchone()
        sizes = con.execute("SELECT count(*), sum(size) FROM Cache").fetchone()
    finally:
        con.close()
    assert counts == {"hot": 1, "file": 0}  # the set reset it; one read since
    assert totals == sizes
    assert sizes[0] == 2 and sizes[1] >= 5000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("nesting", [1, 2])
def test_a_fork_inside_transact_gives_the_child_a_clear_error(cache_dir, nesting):
    cache = diskstore.Cache(cache_dir, timeout=5)
    cache.set("before", 1)
    pid = -1
    refused: list[str] = []
    leaving: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            for _ in range(nesting):
                stack.enter_context(cache.transact())
            cache.set("parent", 1)
            pid = _fork()
            if pid == 0:
                for attempt in (
                    lambda: cache.set("child", 1),
                    lambda: cache.get("before"),
                    lambda: cache.incr("counter"),
                    lambda: len(cache),
                ):
                    try:
                        attempt()
                    except diskstore.ForkedTransactionError as exc:
                        refused.append(str(exc))
    except diskstore.ForkedTransactionError as exc:
        leaving.append(str(exc))
    if pid == 0:

        def child_check() -> bool:
            # Refused at first use and on leaving the block; then reads work and writes
            # are refused at once (SQLite in this process still holds the parent's lock).
            if len(refused) != 4 or len(leaving) != 1 or "transact()" not in refused[0]:
                return False
            deadline = time.monotonic() + 30
            while cache.get("parent") != 1:  # once the parent has committed
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
            if cache.get("before") != 1:
                return False
            start = time.monotonic()
            try:
                cache.set("child-after", 2)
            except diskstore.ForkedTransactionError:
                return time.monotonic() - start < 4  # not a Timeout after the 5 s timeout
            return False

        _child_exit(child_check)
    try:
        assert leaving == [] and refused == []  # the parent committed as usual
        assert _wait(pid) == 0
        assert cache.get("parent") == 1
        assert cache.get("child") is None
        assert cache.get("child-after") is None
        with cache.transact():
            cache.set("parent-again", 3)
        assert cache.get("parent-again") == 3
    finally:
        cache.close()
