"""The Cache API's behaviour, one suite for every backend (SQLite and Redis).

Each test runs on ``diskstore.Cache`` and on ``diskstore.redis.RedisCache`` (a real
redis-server started by the suite): the same calls must give the same results. What the
backends deliberately do differently is listed in ``docs/redis.md`` and tested apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _contract import Backend

import diskstore

VALUES: list[Any] = [
    0,
    -(2**63),
    2**63 - 1,
    2**80,
    1.5,
    -0.0,
    "",
    "text ü",
    b"",
    b"\x00\xff",
    "x" * 5000,
    b"y" * 100_000,
    None,
    True,
    [1, (2, "three")],
    {"k": {1, 2}},
]
KEYS: list[Any] = [0, -1, 2**62, 1.25, "", "k", "ü", b"", b"\x00k", (1, "a"), None, ("n", (2,))]


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (expiry is the server's or the clock's business)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_values_round_trip_with_their_types(store: Any) -> None:
    for number, value in enumerate(VALUES):
        assert store.set(("v", number), value) is True
        got = store.get(("v", number))
        assert type(got) is type(value) and got == value


def test_keys_of_every_kind(store: Any) -> None:
    for number, key in enumerate(KEYS):
        store[key] = number
    assert [store[key] for key in KEYS] == list(range(len(KEYS)))
    assert sorted(map(repr, store)) == sorted(map(repr, KEYS))
    assert len(store) == len(KEYS)
    assert all(key in store for key in KEYS)
    assert ("missing",) not in store


def test_get_default_and_shapes(store: Any) -> None:
    assert store.get("nope") is None
    assert store.get("nope", "d", expire_time=True, tag=True) == ("d", None, None)
    store.set("k", "v", tag="t")
    assert store.get("k", tag=True) == ("v", "t")
    assert store.get("k", expire_time=True) == ("v", None)
    with pytest.raises(KeyError):
        store["nope"]


def test_add_only_when_missing(store: Any) -> None:
    assert store.add("k", 1) is True
    assert store.add("k", 2) is False
    assert store["k"] == 1


def test_incr_and_decr(store: Any) -> None:
    assert store.incr("n") == 1
    assert store.incr("n", 5) == 6
    assert store.decr("n", 2) == 4
    assert store.incr("m", 1, default=10) == 11
    with pytest.raises(KeyError):
        store.incr("absent", default=None)
    store.set("f", 1.5)
    assert store.incr("f", 1) == 2.5
    store.set("s", "text")
    with pytest.raises(TypeError):
        store.incr("s")


def test_incr_is_atomic_across_threads(backend: Backend) -> None:
    caches = [backend.open() for _ in range(4)]

    def bump(cache: Any) -> None:
        for _ in range(50):
            cache.incr("counter")

    threads = [threading.Thread(target=bump, args=(cache,)) for cache in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert caches[0]["counter"] == 200


def test_delete_and_pop(store: Any) -> None:
    store.set("k", "v", tag="t")
    assert store.pop("k", expire_time=True, tag=True) == ("v", None, "t")
    assert store.pop("k", "gone") == "gone"
    store["d"] = 1
    assert store.delete("d") is True
    assert store.delete("d") is False
    with pytest.raises(KeyError):
        del store["d"]


def test_expire_and_expire_time(store: Any) -> None:
    before = time.time()
    store.set("short", 1, expire=0.3)
    store.set("long", 2, expire=1000)
    value, expire_time = store.get("long", expire_time=True)
    assert value == 2 and before + 999 < expire_time < time.time() + 1001
    assert eventually(lambda: store.get("short") is None)
    assert "short" not in store
    assert store.get("long") == 2


def test_touch(store: Any) -> None:
    assert store.touch("absent", 10) is False
    store.set("k", 1, expire=0.2)
    assert store.touch("k", None) is True
    assert store.get("k", expire_time=True) == (1, None)
    assert store.touch("k", 0.2) is True
    assert eventually(lambda: store.get("k") is None)


def test_expire_zero_stores_nothing_visible(store: Any) -> None:
    assert store.set("k", 1, expire=0) is True
    assert eventually(lambda: store.get("k") is None)


def test_tags_and_evict(store: Any) -> None:
    for number in range(5):
        store.set(("a", number), number, tag="a")
    store.set(("b", 0), 0, tag="b")
    store.set(("a", 0), "retagged", tag="b")  # no longer tagged "a"
    assert store.evict("a") == 4
    assert store.evict("a") == 0
    assert len(store) == 2
    assert store[("a", 0)] == "retagged"


def test_clear_touches_only_this_namespace(backend: Backend) -> None:
    cache = backend.open()
    other = cache.namespace("other")
    cache.set("k", 1)
    other.set("k", 2)
    assert cache.clear() == 1
    assert "k" not in cache
    assert other["k"] == 2
    assert len(other) == 1
    assert other.clear() == 1


def test_queues_with_prefixes_and_sides(store: Any) -> None:
    assert store.push("a") == 500000000000000
    assert store.push("b") == 500000000000001
    assert store.push("z", side="front") == 499999999999999
    assert store.push(1, prefix="jobs") == "jobs-500000000000000"
    assert store.peek() == (499999999999999, "z")
    assert store.pull(side="back") == (500000000000001, "b")
    assert store.pull() == (499999999999999, "z")
    assert store.pull(prefix="jobs", tag=True) == (("jobs-500000000000000", 1), None)
    assert store.pull(prefix="jobs") == (None, None)
    assert store[500000000000000] == "a"
    assert store.pull() == (500000000000000, "a")
    assert store.pull(default="empty") == "empty"


def test_queue_skips_expired_items(store: Any) -> None:
    store.push("soon", expire=0.2)
    store.push("later")
    assert eventually(lambda: store.get(500000000000000) is None)
    assert store.pull() == (500000000000001, "later")


def test_transact_applies_writes_together(backend: Backend) -> None:
    cache, observer = backend.open(), backend.open()
    with cache.transact():
        cache.set("a", 1)
        cache.set("b", 2)
    assert (observer["a"], observer["b"]) == (1, 2)
    with pytest.raises(RuntimeError):
        with cache.transact():
            cache.set("c", 3)
            raise RuntimeError("abort")
    assert "c" not in observer


def test_stats_count_hits_and_misses(store: Any) -> None:
    store.stats(enable=True, reset=True)
    store.set("k", 1)
    store.get("k")
    store.get("absent")
    assert store.stats(reset=True) == (1, 1)
    assert store.stats() == (0, 0)
    store.stats(enable=False)


def test_volume_grows_with_data(store: Any) -> None:
    empty = store.volume()
    store.set("big", b"\x01" * 300_000)
    assert store.volume() > empty


def test_check_finds_nothing_wrong_in_a_healthy_cache(store: Any) -> None:
    store.set("k", {"pickled": True})
    store.set(("t", 1), "v")
    assert store.check() == []


def test_namespace_views_keep_keys_apart(store: Any) -> None:
    left, right = store.namespace("left"), store.namespace("right")
    left["k"], right["k"] = "L", "R"
    assert (left["k"], right["k"], store.get("k")) == ("L", "R", None)
    assert list(left) == ["k"]


def test_memoize_runs_once_and_clears(store: Any) -> None:
    calls: list[int] = []

    @store.memoize() if hasattr(store, "memoize") else diskstore.memoize(store)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]
    info = square.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 2)
    assert square.cache_clear() == 2
    assert square(3) == 9 and calls == [3, 4, 3]


def test_memoize_single_flight_across_cache_objects(backend: Backend) -> None:
    started = threading.Barrier(4)
    calls: list[int] = []
    lock = threading.Lock()

    def slow(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.3)
        return x + 1

    wrappers = [
        diskstore.memoize(backend.open(), name="slow", ignore={"lock"})(slow) for _ in range(4)
    ]
    results: list[int] = []

    def call(wrapper: Any) -> None:
        started.wait()
        results.append(wrapper(1))

    threads = [threading.Thread(target=call, args=(wrapper,)) for wrapper in wrappers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2, 2, 2, 2]
    assert calls == [1]


def test_task_cache(backend: Backend) -> None:
    tasks = diskstore.TaskCache(cache=backend.open())
    calls: list[int] = []

    @tasks.task(version=1)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert [double(2), double(2), double(3)] == [4, 4, 6]
    assert calls == [2, 3]
    entries = tasks.entries()
    assert sorted(entry.hits for entry in entries) == [0, 1]
    assert tasks.get(double.task_name, 1, {"x": 3}) == 6  # type: ignore[attr-defined]
    tasks.clear()
    assert tasks.entries() == []


def test_queue_items_keep_tags_and_expiry(store: Any) -> None:
    key = store.push("v", prefix="p", expire=1000, tag="t")
    (got, value), expire_time, tag = store.peek(prefix="p", expire_time=True, tag=True)
    assert (got, value, tag) == (key, "v", "t") and expire_time > time.time() + 900
    assert store.evict("t") == 1
    assert store.pull(prefix="p") == (None, None)


def test_memoize_clear_removes_only_that_functions_results(store: Any) -> None:
    @diskstore.memoize(store, name="f", tag="shared")
    def f(x: int) -> int:
        return x

    @diskstore.memoize(store, name="g", tag="shared")
    def g(x: int) -> int:
        return -x

    results = [f(1), f(2), g(1)]
    store["plain"] = "kept"
    store[f.__cache_key__(3)] = "set by hand"  # not stored by f: cache_clear leaves it
    assert results == [1, 2, -1]
    assert store[f.__cache_key__(1)] == 1  # results are ordinary items
    assert (f.cache_info().currsize, g.cache_info().currsize) == (2, 1)
    assert f.cache_clear() == 2
    assert (f.cache_info().currsize, g.cache_info().currsize) == (0, 1)
    assert store["plain"] == "kept" and g(1) == -1
    assert store.evict("shared") == 1
