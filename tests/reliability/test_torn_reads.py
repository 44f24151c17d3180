"""Issue 16's stress: one writer overwrites two keys, two readers check every read is whole.

Every version *n* of a key carries *n* in its value, its tag and its expiry, and odd
versions live in value files while even ones are inline, so a read that took the value of
one version and the tag, expiry or file of another shows up as a mismatch. Reads ask for the
tag, the expiry or both. The writer runs for ``TORN_SECONDS`` (8 s, or the environment
variable ``DISKSTORE_TORN_SECONDS``); the readers read until it stops.
"""

from __future__ import annotations

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


def _torn_reader(directory: str, barrier: Any, results: Any, label: str) -> None:
    try:
        cache = diskstore.Cache(directory, **SETTINGS)
        barrier.wait(60)
        reads = mixed = 0
        examples: list[str] = []
        shapes = ({"tag": True}, {"expire_time": True}, {"tag": True, "expire_time": True})
        turn = 0
        while not cache.get("done", False):
            for key in KEYS:
                shape = shapes[turn % 3]
                turn += 1
                now = time.time()
                got = cache.get(key, default=None, retry=True, **shape)
                if got[0] is None:
                    continue
                reads += 1
                numbers = {_number_of(got[0])}
                if "tag" in shape:
                    tag = got[-1]
                    numbers.add(int(tag.rsplit("-", 1)[1]))
                if "expire_time" in shape:
                    # The version's expiry is its store time plus BASE_EXPIRE + STEP * n; a
                    # read follows the store by far less than STEP / 2 seconds.
                    numbers.add(round((got[1] - now - BASE_EXPIRE) / STEP))
                if len(numbers) > 1:
                    mixed += 1
                    if len(examples) < 5:
                        examples.append(f"{key} {shape}: versions {sorted(numbers)}")
        cache.close()
        results.put((label, "ok", (reads, mixed, examples)))
    except BaseException:
        results.put((label, "error", traceback.format_exc()))


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_writer_two_readers_see_no_mixed_versions(cache_dir, figures):
    diskstore.Cache(cache_dir, **SETTINGS).close()
    barrier = SPAWN.Barrier(3)
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=_torn_writer, args=(cache_dir, barrier, results, TORN_SECONDS))]
    workers += [
        SPAWN.Process(target=_torn_reader, args=(cache_dir, barrier, results, f"reader{n}"))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        found = collect(results, 3, timeout=TORN_SECONDS + 150)
    finally:
        reap(workers)
    reads = sum(found[f"reader{n}"][0] for n in range(2))
    mixed = sum(found[f"reader{n}"][1] for n in range(2))
    examples = [line for n in range(2) for line in found[f"reader{n}"][2]]
    figures.record("torn reads: reads checked (1 writer, 2 readers)", reads)
    figures.record("torn reads: reads mixing two versions", mixed)
    assert found["writer"] >= 2, "the writer wrote too few versions to test anything"
    assert reads >= 100, f"only {reads} reads were checked"
    assert mixed == 0, examples
