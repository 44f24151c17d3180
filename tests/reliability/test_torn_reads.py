"""Issue 16's stress: one writer overwrites two keys, two readers check every read is whole.

Every version *n* of a key carries *n* in its value, its tag and its expiry, and odd
versions live in value files while even ones are inline, so a read that took the value of
one version and the tag, expiry or file of another shows up as a mismatch. Reads ask for the
tag, the expiry or both; a third reader sends them through ``AsyncCache`` in bursts, which
its workers run as batches. The writer runs for ``TORN_SECONDS`` (8 s, or the environment
variable ``DISKSTORE_TORN_SECONDS``); the readers read until it stops.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import traceback
from typing import Any

import pytest

import diskstore

from ._support import collect, reap

SPAWN = multiprocessing.get_context("spawn")
TORN_SECONDS = float(os.environ.get("DISKSTORE_TORN_SECONDS", "8"))
KEYS = ("alpha", "beta")
FILE_SIZE = 4096  # above the test's min_file_size: odd versions live in files
BASE_EXPIRE = 1_000_000.0  # expiry of version n: BASE_EXPIRE + STEP * n seconds from now
STEP = 1000.0
SETTINGS: dict[str, Any] = {"disk_min_file_size": 1024}


def _value(key: str, number: int) -> bytes:
    head = f"{key}:{number}:".encode()
    if number % 2:
        return head + os.urandom(FILE_SIZE)  # incompressible: stays a file of its own
    return head


def _number_of(value: Any) -> int:
    return int(bytes(value).split(b":", 2)[1])


def _torn_writer(directory: str, barrier: Any, results: Any, seconds: float) -> None:
    try:
        cache = diskstore.Cache(directory, **SETTINGS)
        barrier.wait(60)
        number = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            number += 1
            for key in KEYS:
                cache.set(
                    key, _value(key, number), expire=BASE_EXPIRE + STEP * number,
                    tag=f"{key}-{number}", retry=True,
                )  # fmt: skip
        cache.set("done", True, retry=True)
        cache.close()
        results.put(("writer", "ok", number))
    except BaseException:
        results.put(("writer", "error", traceback.format_exc()))


_SHAPES = ({"tag": True}, {"expire_time": True}, {"tag": True, "expire_time": True})


class _Tally:
    """Counts reads and the ones that mix versions, keeping a few examples."""

    def __init__(self) -> None:
        self.reads = self.mixed = 0
        self.examples: list[str] = []

    def judge(self, key: str, shape: dict[str, bool], got: Any, now: float) -> None:
        if got[0] is None:
            return
        self.reads += 1
        numbers = {_number_of(got[0])}
        if "tag" in shape:
            numbers.add(int(got[-1].rsplit("-", 1)[1]))
        if "expire_time" in shape:
            # The version's expiry is its store time plus BASE_EXPIRE + STEP * n; a read
            # follows the store by far less than STEP / 2 seconds.
            numbers.add(round((got[1] - now - BASE_EXPIRE) / STEP))
        if len(numbers) > 1:
            self.mixed += 1
            if len(self.examples) < 5:
                self.examples.append(f"{key} {shape}: versions {sorted(numbers)}")

    def report(self) -> tuple[int, int, list[str]]:
        return self.reads, self.mixed, self.examples


def _torn_reader(directory: str, barrier: Any, results: Any, label: str) -> None:
    try:
        cache = diskstore.Cache(directory, **SETTINGS)
        barrier.wait(60)
        tally = _Tally()
        turn = 0
        while not cache.get("done", False):
            for key in KEYS:
                shape = _SHAPES[turn % 3]
                turn += 1
                now = time.time()
                tally.judge(key, shape, cache.get(key, default=None, retry=True, **shape), now)
        cache.close()
        results.put((label, "ok", tally.report()))
    except BaseException:
        results.put((label, "error", traceback.format_exc()))


def _async_reader(directory: str, barrier: Any, results: Any, label: str) -> None:
    """Reads through AsyncCache, many at once, so that they run as batches in its workers."""

    async def main() -> _Tally:
        tally = _Tally()
        async with diskstore.AsyncCache(directory, **SETTINGS) as cache:
            barrier.wait(60)
            while not await cache.get("done", False):
                now = time.time()
                asks = [(key, _SHAPES[n % 3]) for n in range(6) for key in KEYS]
                answers = await asyncio.gather(
                    *(cache.get(key, default=None, retry=True, **shape) for key, shape in asks)
                )
                for (key, shape), got in zip(asks, answers, strict=True):
                    tally.judge(key, shape, got, now)
        return tally

    try:
        results.put((label, "ok", asyncio.run(main()).report()))
    except BaseException:
        results.put((label, "error", traceback.format_exc()))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_writer_two_readers_see_no_mixed_versions(cache_dir, figures):
    diskstore.Cache(cache_dir, **SETTINGS).close()
    barrier = SPAWN.Barrier(4)
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=_torn_writer, args=(cache_dir, barrier, results, TORN_SECONDS))]
    workers += [
        SPAWN.Process(target=_torn_reader, args=(cache_dir, barrier, results, f"reader{n}"))
        for n in range(2)
    ]
    workers.append(SPAWN.Process(target=_async_reader, args=(cache_dir, barrier, results, "async")))
    for worker in workers:
        worker.start()
    try:
        found = collect(results, 4, timeout=TORN_SECONDS + 150)
    finally:
        reap(workers)
    readers = ("reader0", "reader1", "async")
    reads = sum(found[name][0] for name in readers)
    mixed = sum(found[name][1] for name in readers)
    examples = [line for name in readers for line in found[name][2]]
    figures.record("torn reads: reads checked (1 writer, 2 readers + 1 async)", reads)
    figures.record("torn reads: reads mixing two versions", mixed)
    assert found["writer"] >= 2, "the writer wrote too few versions to test anything"
    assert found["async"][0] >= 10, "the AsyncCache reader checked too few reads"
    assert reads >= 100, f"only {reads} reads were checked"
    assert mixed == 0, examples
