"""``diskstore demo``: a short tour that shows what a cache shared by processes does.

The tour runs in a temporary directory that it removes afterwards:

1. a slow function memoized in the cache is computed in this process, then called from a
   second process (started with the ``spawn`` method, so it shares nothing but the
   directory), where the result comes from the cache without running the function;
2. jobs pushed onto a queue here are pulled, in order, by the second process;
3. a large, repetitive document is stored to show compression at work;
4. hit/miss statistics and disk usage are read back.

:func:`run` prints the report and returns the figures as a :class:`DemoReport`.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import shutil
import sys
import tempfile
import time
from typing import Any, TextIO

from ._caching._cache import Cache

#: Seconds the memoized function sleeps, standing in for real work.
SLOW_SECONDS = 0.5
#: Seconds to wait for the second process before giving up.
CHILD_TIMEOUT = 120.0
_FUNCTION_NAME = "demo.slow_square"
_QUEUE = "jobs"
_JOBS = ("resize photo-1.png", "resize photo-2.png", "resize photo-3.png")


def slow_square(n: int) -> int:
    """Square *n*, slowly: the expensive computation worth caching."""
    time.sleep(SLOW_SECONDS)
    return n * n


@dataclasses.dataclass(frozen=True)
class CallReport:
    """One call of the memoized function, as seen by the process that made it."""

    pid: int
    result: int
    seconds: float
    #: Whether the function body ran in this process (False: the result came from the cache).
    computed: bool


@dataclasses.dataclass(frozen=True)
class DemoReport:
    """What the tour observed; :func:`run` prints it."""

    directory: str
    first: CallReport
    second: CallReport
    pushed: tuple[Any, ...]
    pulled: tuple[Any, ...]
    document_records: int
    document_pickled_bytes: int
    document_disk_bytes: int
    items: int
    hits: int
    misses: int
    volume: int
    removed: bool


def _timed_call(cache: Cache, n: int) -> CallReport:
    square = cache.memoize(name=_FUNCTION_NAME)(slow_square)
    start = time.perf_counter()
    result = square(n)
    seconds = time.perf_counter() - start
    computed = square.cache_info().misses > 0
    return CallReport(os.getpid(), result, seconds, computed)


def second_process(directory: str, n: int) -> tuple[CallReport, list[Any]]:
    """Run in the second process: call the memoized function, then drain the queue."""
    with Cache(directory) as cache:
        call = _timed_call(cache, n)
        pulled = []
        while True:
            key, job = cache.pull(prefix=_QUEUE)
            if key is None:
                break
            pulled.append(job)
    return call, pulled


def _document(records: int) -> dict[str, Any]:
    return {
        "users": [
            {
                "id": i,
                "name": f"user-{i}",
                "email": f"user-{i}@example.com",
                "active": i % 3 != 0,
                "roles": ["reader"] if i % 10 else ["reader", "admin"],
            }
            for i in range(records)
        ]
    }


def _in_second_process(directory: str, n: int) -> tuple[CallReport, list[Any]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # leaving the block terminates the worker
        pending = pool.apply_async(second_process, (directory, n))
        return pending.get(timeout=CHILD_TIMEOUT)


def tour(directory: str, *, n: int = 12, records: int = 10_000) -> DemoReport:
    """Run the tour in *directory* (which it fills) and return what it observed."""
    with Cache(directory, statistics=True) as cache:
        first = _timed_call(cache, n)
        pushed = tuple(cache.push(job, prefix=_QUEUE) for job in _JOBS)
        second, pulled = _in_second_process(directory, n)

        document = _document(records)
        before = cache.volume()
        cache.set("report", document)
        disk_bytes = cache.volume() - before
        if cache.get("report") != document:
            raise RuntimeError("the stored document did not read back equal")

        hits, misses = cache.stats()
        items = cache._total_count()
        volume = cache.volume()
    return DemoReport(
        directory=directory,
        first=first,
        second=second,
        pushed=pushed,
        pulled=tuple(pulled),
        document_records=records,
        document_pickled_bytes=len(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)),
        document_disk_bytes=disk_bytes,
        items=items,
        hits=hits,
        misses=misses,
        volume=volume,
        removed=False,
    )


def format_report(report: DemoReport) -> str:
    """Render *report* as the short text the ``demo`` command prints."""
    from ._common._format import human_bytes

    def call_line(call: CallReport) -> str:
        how = "cache miss: computed here" if call.computed else "cache hit: function not run"
        return (
            f"   process {call.pid}: slow_square(12) = {call.result}"
            f"  in {call.seconds * 1000:7.1f} ms  ({how})"
        )

    jobs = ", ".join(repr(job) for job in report.pulled)
    in_order = "first in, first out" if report.pulled == _JOBS else "out of order!"
    lines = [
        f"diskstore demo, in a temporary cache: {report.directory}",
        "",
        "1. A slow function memoized in the cache, called from two processes",
        call_line(report.first),
        call_line(report.second),
        "",
        "2. A queue shared by processes",
        f"   process {report.first.pid} pushed {len(report.pushed)} jobs"
        f" (keys {report.pushed[0]!r} ...)",
        f"   process {report.second.pid} pulled: {jobs} ({in_order})",
        "",
        "3. Compression",
        f"   a document of {report.document_records:,} records"
        f" ({human_bytes(report.document_pickled_bytes)} pickled)"
        f" added {human_bytes(report.document_disk_bytes)} to the cache",
        "",
        "4. Statistics",
        f"   items: {report.items}, hits: {report.hits}, misses: {report.misses},"
        f" on disk: {human_bytes(report.volume)}",
        "",
        f"Removed {report.directory}." if report.removed else f"Kept {report.directory}.",
    ]
    return "\n".join(lines)


def run(out: TextIO | None = None) -> DemoReport:
    """Run the tour in a fresh temporary directory, print the report, remove the directory."""
    directory = tempfile.mkdtemp(prefix="diskstore-demo-")
    try:
        report = tour(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    report = dataclasses.replace(report, removed=not os.path.exists(directory))
    print(format_report(report), file=out if out is not None else sys.stdout)
    return report
