"""Item 7: one Cache shared by many threads: no errors, and file descriptors stay bounded.

Eight threads run a thousand mixed operations each on one ``Cache``; then a thousand
short-lived threads each use the cache once and exit. Each thread gets its own connection,
so a connection (and its descriptors) must not outlive its thread.
"""

from __future__ import annotations

import gc
import random
import threading

import pytest

from ._support import integrity, open_fds

THREADS = 8
OPERATIONS = 1000
SHORT_LIVED = 1000


@pytest.mark.timeout(120)
def test_threads_share_one_cache_without_errors(cache, figures):
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    increments = [0] * THREADS

    def worker(number: int) -> None:
        rng = random.Random(number)
        try:
            barrier.wait(30)
            for step in range(OPERATIONS):
                choice = rng.random()
                key = f"k{rng.randrange(50)}"
                if choice < 0.3:
                    cache.set(key, (number, step))
                elif choice < 0.55:
                    value = cache.get(key)
                    assert value is None or (isinstance(value, tuple) and len(value) == 2)
                elif choice < 0.7:
                    cache.incr("counter")
                    increments[number] += 1
                elif choice < 0.8:
                    cache.delete(key)
                elif choice < 0.9:
                    cache.push(step, prefix=f"q{number}")
                    cache.pull(prefix=f"q{number}")
                else:
                    with cache.transact():
                        cache.incr("pair-a")
                        cache.incr("pair-b")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(100)
    figures.record(f"threads: errors in {THREADS} threads x {OPERATIONS} ops", len(errors))
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert cache.get("counter") == sum(increments)
    assert cache.get("pair-a") == cache.get("pair-b")
    assert integrity(cache.directory) == ["ok"]


@pytest.mark.timeout(120)
def test_short_lived_threads_do_not_leak_file_descriptors(cache, figures):
    """Descriptors may be kept for reuse (SQLite defers closing a database descriptor
    while other connections hold locks on the file), but their number must not grow with
    the number of threads that have come and gone."""
    cache.set("shared", b"x" * 100_000)  # a file-backed value: reads open files too
    cache.get("shared")
    gc.collect()
    baseline = open_fds()
    peak = baseline
    errors: list[BaseException] = []

    def once(number: int) -> None:
        try:
            cache.set(f"t{number % 20}", number)
            assert cache.get("shared") == b"x" * 100_000
        except BaseException as exc:
            errors.append(exc)

    halfway = baseline
    for batch in range(SHORT_LIVED // 10):
        threads = [threading.Thread(target=once, args=(batch * 10 + n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        peak = max(peak, open_fds())
        if batch == SHORT_LIVED // 20 - 1:
            gc.collect()
            halfway = open_fds()
    gc.collect()
    after = open_fds()
    figures.record(
        f"threads: fds above baseline after {SHORT_LIVED} short-lived threads", after - baseline
    )
    figures.record(f"threads: fds added by the last {SHORT_LIVED // 2} threads", after - halfway)
    figures.record("threads: peak fds above baseline (10 threads at a time)", peak - baseline)
    assert errors == []
    assert after - halfway <= 16  # a leak of one descriptor per thread would add 500
    assert peak - baseline <= 200


@pytest.mark.timeout(60)
def test_close_releases_every_descriptor(cache_dir, figures):
    """``close()`` itself closes the connections, without waiting for the garbage collector."""
    import diskstore

    gc.collect()
    gc.disable()
    try:
        baseline = open_fds()
        cache = diskstore.Cache(cache_dir)
        cache.set("file", b"y" * 100_000)
        assert cache.get("file") == b"y" * 100_000
        cache.close()
        left = open_fds() - baseline
    finally:
        gc.enable()
    figures.record("threads: descriptors left open by close()", left)
    assert left <= 1  # the change counter's mapping may stay until the object goes
