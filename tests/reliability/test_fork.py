"""Item 5: a process forked from a cache user can use the cache at once.

Each scenario forks 20 children from a parent that holds an open, used ``Cache``: with the
parent idle; with a sibling thread looping inside ``transact()`` at the moment of the fork;
and with a sibling thread holding a memoized function's cross-process lock (a ``filelock``)
at the moment of the fork. Every child must finish its operations within a few seconds
(the cache's timeout is 60 s, so a child stuck on inherited lock state would show as a
hang), and the parent must keep working.
"""

from __future__ import annotations

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
