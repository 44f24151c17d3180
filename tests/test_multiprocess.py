"""Several processes on one cache directory: no lost updates, no lost items, no errors."""

from __future__ import annotations

import pytest
from _cache_support import (
    FORK,
    SPAWN,
    consumer_worker,
    incr_worker,
    namespace_incr_worker,
    open_and_write_worker,
    producer_worker,
    run_processes,
    write_read_worker,
)

import diskstore


@pytest.mark.timeout(180)
def test_incr_from_four_processes_loses_nothing(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache["counter"] = 0
    run_processes(incr_worker, [(cache_dir, "counter", 500)] * 4, timeout=150)
    with diskstore.Cache(cache_dir) as cache:
        assert cache["counter"] == 2000
        assert len(cache) == 1


@pytest.mark.skipif(FORK is None, reason="needs os.fork")
@pytest.mark.timeout(180)
def test_incr_from_forked_processes(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache["counter"] = 0
        run_processes(incr_worker, [(cache_dir, "counter", 200)] * 4, timeout=150, context=FORK)
        assert cache["counter"] == 800


@pytest.mark.timeout(180)
def test_writers_and_readers_on_distinct_keys_lose_nothing(cache_dir: str) -> None:
    count = 300
    with diskstore.Cache(cache_dir):
        pass
    run_processes(write_read_worker, [(cache_dir, worker, count) for worker in range(4)])
    with diskstore.Cache(cache_dir) as cache:
        assert len(cache) == 4 * count + 4
        for worker in range(4):
            assert cache[("done", worker)] == count
            for number in range(count):
                value = cache[(worker, number)]
                if number % 10:
                    assert value == number
                else:
                    assert isinstance(value, bytes)
                    assert len(value) == 1 + (number * 997) % 50_000
        assert cache.check() == []


@pytest.mark.timeout(180)
def test_processes_open_a_new_directory_at_once(cache_dir: str) -> None:
    start = SPAWN.Event()
    processes = [
        SPAWN.Process(target=open_and_write_worker, args=(cache_dir, worker, start))
        for worker in range(4)
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(150)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    assert [process.exitcode for process in processes] == [0] * 4
    with diskstore.Cache(cache_dir) as cache:
        assert cache.size_limit == 2**31
        assert cache.tag_index is True
        assert sorted(cache) == [("opened", worker) for worker in range(4)]
        assert cache.namespace("shared")["opens"] == 4


@pytest.mark.timeout(180)
def test_namespaces_across_processes(cache_dir: str) -> None:
    run_processes(namespace_incr_worker, [(cache_dir, worker, 150) for worker in range(3)])
    with diskstore.Cache(cache_dir) as cache:
        assert cache.namespace("shared")["count"] == 450
        for worker in range(3):
            view = cache.namespace(f"worker-{worker}")
            assert view["count"] == 150
            assert len(view) == 1
        assert len(cache) == 0


@pytest.mark.timeout(180)
def test_queue_between_processes_delivers_each_item_once(cache_dir: str) -> None:
    producers, consumers, count = 2, 2, 250
    with diskstore.Cache(cache_dir):
        pass
    consuming = [
        SPAWN.Process(target=consumer_worker, args=(cache_dir, worker))
        for worker in range(consumers)
    ]
    for process in consuming:
        process.start()
    try:
        run_processes(producer_worker, [(cache_dir, worker, count) for worker in range(producers)])
        with diskstore.Cache(cache_dir) as cache:
            for _ in range(consumers):
                cache.push("stop", prefix="jobs")
        for process in consuming:
            process.join(120)
    finally:
        for process in consuming:
            if process.is_alive():
                process.kill()
                process.join(5)
    assert [process.exitcode for process in consuming] == [0] * consumers
    with diskstore.Cache(cache_dir) as cache:
        received = [item for worker in range(consumers) for item in cache[("got", worker)]]
    expected = [(worker, number) for worker in range(producers) for number in range(count)]
    assert sorted(received) == expected
    # Each producer's items leave the queue in the order they were pushed.
    with diskstore.Cache(cache_dir) as cache:
        for consumer in range(consumers):
            got = cache[("got", consumer)]
            for producer in range(producers):
                numbers = [number for origin, number in got if origin == producer]
                assert numbers == sorted(numbers)
