"""The async API's behaviour, one suite for ``AsyncCache`` and ``AsyncRedisCache``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


def test_single_key_operations(async_backend: Callable[[], Any]) -> None:
    async def main() -> list[Any]:
        async with async_backend() as cache:
            return [
                await cache.set("k", {"v": 1}, tag="t"),
                await cache.get("k"),
                await cache.get("k", tag=True),
                await cache.get("absent", "d", expire_time=True),
                await cache.add("k", 2),
                await cache.add("n", 2**62),
                await cache.incr("n", 3),
                await cache.decr("n", 3),
                await cache.incr("absent-counter"),
                await cache.touch("k", 1000),
                await cache.pop("k", expire_time=True) is not None,
                await cache.pop("k", "gone"),
                await cache.delete("n"),
                await cache.delete("n"),
            ]

    assert asyncio.run(main()) == [
        True, {"v": 1}, ({"v": 1}, "t"), ("d", None), False, True, 2**62 + 3, 2**62,
        1, True, True, "gone", True, False,
    ]  # fmt: skip


def test_iteration_clear_evict_and_queues(async_backend: Callable[[], Any]) -> None:
    async def main() -> list[Any]:
        async with async_backend() as cache:
            for number in range(5):
                await cache.set(number, number, tag="even" if number % 2 == 0 else None)
            keys = sorted([key async for key in cache])
            evicted = await cache.evict("even")
            pushed = await cache.push("job", prefix="q")
            pulled = await cache.pull(prefix="q")
            cleared = await cache.clear()
            return [keys, evicted, pushed, pulled, cleared, [key async for key in cache]]

    assert asyncio.run(main()) == [
        [0, 1, 2, 3, 4], 3, "q-500000000000000", ("q-500000000000000", "job"), 2, [],
    ]  # fmt: skip


def test_get_or_set_computes_once_for_concurrent_tasks(async_backend: Callable[[], Any]) -> None:
    calls: list[int] = []

    async def main() -> list[Any]:
        async with async_backend() as cache:

            async def factory() -> int:
                calls.append(1)
                await asyncio.sleep(0.2)
                return 7

            return list(await asyncio.gather(*(cache.get_or_set("k", factory) for _ in range(5))))

    assert asyncio.run(main()) == [7] * 5
    assert calls == [1]


def test_get_or_set_runs_a_plain_factory_off_the_event_loop(
    async_backend: Callable[[], Any],
) -> None:
    threads: list[int] = []

    def factory() -> str:
        threads.append(threading.get_ident())
        return "made"

    async def main() -> tuple[Any, Any, int]:
        async with async_backend() as cache:
            first = await cache.get_or_set("plain", factory)
            again = await cache.get_or_set("plain", factory)
            return first, again, threading.get_ident()

    first, again, loop_thread = asyncio.run(main())
    assert (first, again) == ("made", "made")
    assert len(threads) == 1 and threads[0] != loop_thread


def test_memoize_async_functions(async_backend: Callable[[], Any]) -> None:
    calls: list[int] = []

    async def main() -> list[Any]:
        async with async_backend() as cache:

            @cache.memoize(name="twice")
            async def twice(x: int) -> int:
                calls.append(x)
                await asyncio.sleep(0.1)
                return 2 * x

            first = await asyncio.gather(twice(2), twice(2), twice(3))
            return [*first, await twice(2)]

    assert asyncio.run(main()) == [4, 4, 6, 4]
    assert sorted(calls) == [2, 3]


def test_get_or_set_single_flight_across_event_loops(async_backend: Callable[[], Any]) -> None:
    """Two threads, each with its own loop and cache object: one computation."""
    calls: list[int] = []
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        async def main() -> Any:
            async with async_backend() as cache:

                def factory() -> int:
                    calls.append(1)
                    time.sleep(0.5)
                    return 42

                barrier.wait()
                return await cache.get_or_set(("shared", 1), factory)

        results.append(asyncio.run(main()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42, 42]
    assert calls == [1]
