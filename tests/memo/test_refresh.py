"""Fresh results on demand (``diskstore._memo._refresh``): max_age, refresh, stale-while-revalidate.

Time is moved with the test clock (``_cache_support.install_clock``) instead of sleeping,
except across processes, where each process has its own clock and real time is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _cache_support import SPAWN, Clock, install_clock, join_refreshes, mapped_from

import diskstore
from diskstore import memoize


class Counter:
    """A function body that returns how many times it ran."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, x: int) -> tuple[int, int]:
        with self.lock:
            self.calls += 1
            return x, self.calls


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


# -- stale-while-revalidate -------------------------------------------------------------------


def test_a_stale_hit_returns_the_old_value_at_once_and_one_refresh_replaces_it(
    cache: diskstore.Cache, clock: Clock
) -> None:
    release = threading.Event()
    calls: list[int] = []

    @memoize(cache, refresh_after=60, ignore={"release"})
    def f(x: int) -> int:
        calls.append(x)
        if len(calls) > 1:
            assert release.wait(60)  # the refresh blocks until the stale callers returned
        return len(calls)

    assert f(1) == 1
    assert f(1) == 1 and len(calls) == 1  # fresh: no refresh
    clock.advance(61)
    # Were any of these waiting for the refresh, they would deadlock on ``release``.
    assert [f(1) for _ in range(5)] == [1] * 5
    release.set()
    join_refreshes()
    assert len(calls) == 2
    assert f(1) == 2
    assert f.cache_info().hits == 7 and f.cache_info().misses == 1


def test_a_failing_refresh_keeps_the_old_value_and_is_logged(
    cache: diskstore.Cache, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fail = False

    # fail stands for the state of a backend: not part of the key
    @memoize(cache, refresh_after=10, ignore={"fail"})
    def f(x: int) -> int:
        if fail:
            raise RuntimeError("backend down")
        return x * 2

    assert f(4) == 8
    fail = True
    clock.advance(11)
    with caplog.at_level(logging.WARNING, logger="diskstore"):
        assert f(4) == 8
        join_refreshes()
    (record,) = [r for r in caplog.records if r.name == "diskstore"]
    assert f(4) == 8  # still stale, still the old value (another refresh fails)
    join_refreshes()
    assert record.levelno == logging.WARNING and "failed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_an_async_stale_hit_refreshes_in_a_task(cache: diskstore.Cache, clock: Clock) -> None:
    calls: list[int] = []

    @memoize(cache, refresh_after=5)
    async def f(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return len(calls)

    async def main() -> list[int]:
        first = await f(1)
        clock.advance(6)
        stale = await f(1)
        for _ in range(100):
            if len(calls) == 2 and await f(1) == 2:
                break
            await asyncio.sleep(0.01)
        return [first, stale, await f(1)]

    assert asyncio.run(main()) == [1, 1, 2]
    assert len(calls) == 2


def _stale_reader(directory: str, log: str, ready: Any, go: Any, results: Any) -> None:
    with diskstore.Cache(directory) as cache:

        @memoize(cache, name="swr", refresh_after=0.5, lock_timeout=120, ignore={"log"})
        def slow(x: int) -> int:
            with open(log, "a") as handle:
                handle.write(f"{os.getpid()}\n")
            time.sleep(2)
            return x + 100

        ready.release()
        go.wait(60)
        results.put(slow(1))
        join_refreshes()  # the cache must stay open until its refresh is done


@pytest.mark.slow
def test_processes_share_one_refresh_of_a_stale_result(tmp_path: Path) -> None:
    directory, log = str(tmp_path / "cache"), tmp_path / "runs.log"
    with diskstore.Cache(directory) as cache:
        memoize(cache, name="swr")(lambda x: x).cache_set(1, 1)
    time.sleep(0.6)  # every process sees the stored result as stale
    ready, go, results = SPAWN.Semaphore(0), SPAWN.Event(), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_stale_reader, args=(directory, str(log), ready, go, results))
        for _ in range(4)
    ]
    try:
        for process in processes:
            process.start()
        for _ in processes:
            assert ready.acquire(timeout=60)
        go.set()
        values = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    assert values == [1, 1, 1, 1]  # every caller got the stale value without waiting
    assert len(log.read_text().split()) == 1  # exactly one refresh ran
    with diskstore.Cache(directory) as cache:
        assert memoize(cache, name="swr")(lambda x: -1)(1) == 101


def test_stored_at_is_exact_after_an_overwrite_in_every_process(
    cache_dir: str, clock: Clock
) -> None:
    with diskstore.Cache(cache_dir) as writer, diskstore.Cache(cache_dir) as reader:
        assert writer.stored_at("k") is None
        writer.set("k", 1)
        first = clock.now
        clock.advance(100)
        writer.set("k", 2)  # an overwrite: its store time is written lazily
        assert writer.stored_at("k") == clock.now
        assert reader.stored_at("k") == clock.now != first
        writer.set("gone", 1, expire=1)
        clock.advance(2)
        assert reader.stored_at("gone") is None


# -- per-call control -------------------------------------------------------------------------


def test_refresh_and_max_age(cache: diskstore.Cache, clock: Clock) -> None:
    body = Counter()
    f = memoize(cache, name="counter")(body)
    assert f(1) == (1, 1)
    assert f.refresh(1) == (1, 2)
    assert f(1) == (1, 2)  # the refreshed result was stored
    clock.advance(30)
    assert f.max_age(60)(1) == (1, 2)
    assert f.max_age(10)(1) == (1, 3)
    assert f(1) == (1, 3)
    assert f.max_age(0)(2) == (2, 4)  # a miss is computed whatever the age asked
    assert f.uncached(1) == (1, 5) and f(1) == (1, 3)
    info = f.cache_info()
    assert (info.hits, info.misses) == (4, 4)  # refresh() ran the function: a miss


def test_refresh_and_max_age_of_async_functions(cache: diskstore.Cache, clock: Clock) -> None:
    calls: list[int] = []

    @memoize(cache)
    async def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    async def main() -> list[int]:
        out = [await f(1), await f.refresh(1), await f(1)]
        clock.advance(30)
        out += [await f.max_age(60)(1), await f.max_age(10)(1), await f(1)]
        return out

    assert asyncio.run(main()) == [1, 2, 2, 2, 3, 3]


def test_per_call_methods_leave_the_function_parameters_alone(cache: diskstore.Cache) -> None:
    @memoize(cache)
    def f(refresh: int, max_age: int = 0, seconds: int = 0, uncached: int = 0) -> int:
        return refresh + max_age + seconds + uncached

    assert f(1, max_age=2, seconds=3, uncached=4) == 10
    assert f.refresh(refresh=1, max_age=2, seconds=3, uncached=4) == 10
    assert f.max_age(5)(1, max_age=2, seconds=3) == 6


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "10", True])
def test_ages_are_checked(cache: diskstore.Cache, bad: Any) -> None:
    f = memoize(cache)(abs)
    with pytest.raises((TypeError, ValueError), match="seconds"):
        f.max_age(bad)
    with pytest.raises((TypeError, ValueError), match="refresh_after"):
        memoize(cache, refresh_after=bad)


def test_refresh_after_needs_store_times() -> None:
    class Plain(dict[Any, Any]):
        def set(self, key: Any, value: Any, **_: Any) -> None:
            self[key] = value

    with pytest.raises(TypeError, match="refresh_after needs a cache that records store times"):
        memoize(Plain(), refresh_after=1)(abs)


# -- round trips and mapped arrays -------------------------------------------------------------


def test_round_trip_returns_the_stored_value_on_a_miss_too(cache: diskstore.Cache) -> None:
    def make(n: int) -> np.ndarray:
        return np.arange(n, dtype=np.float64)

    plain = memoize(cache, name="plain", mmap_mode="r")(make)
    both = memoize(cache, name="both", mmap_mode="r", round_trip=True)(make)
    assert plain(100_000).flags.writeable  # the computed array itself
    assert not plain(100_000).flags.writeable  # a hit: mapped, read-only
    first = both(100_000)
    assert not first.flags.writeable
    np.testing.assert_array_equal(first, make(100_000))
    assert memoize(cache, name="small", round_trip=True)(lambda: [1, 2])() == [1, 2]


def test_a_mapped_hit_is_a_file_mapping_and_a_tampered_buffer_is_a_miss(
    cache: diskstore.Cache,
) -> None:
    body = Counter()

    @memoize(cache, mmap_mode="r", ignore={"body"})
    def arrays(n: int) -> dict[str, Any]:
        body(n)
        return {"a": np.arange(n, dtype=np.float64), "b": np.ones(n), "n": body.calls}

    arrays(200_000)
    hit = arrays(200_000)
    (name,) = [
        os.path.join(root, file)
        for root, _, files in os.walk(os.path.join(cache.directory, "data"))
        for file in files
    ]
    assert mapped_from(hit["a"], name) and mapped_from(hit["b"], name)
    assert hit["n"] == 1 and body.calls == 1
    with open(name, "r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(b"12345678")
    with pytest.warns(diskstore.CorruptionWarning):
        again = arrays(200_000)
    assert again["n"] == 2 and body.calls == 2
    np.testing.assert_array_equal(again["b"], np.ones(200_000))
