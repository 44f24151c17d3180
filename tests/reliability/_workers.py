"""Process entry points for the multi-process reliability tests.

They live in a module of their own so that ``spawn`` children can import them. Each
reports through a queue and never raises out of the process: an exception is reported as
text so the parent can show it.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import diskstore


def _report_failure(results: Any, label: str) -> None:
    results.put((label, "error", traceback.format_exc()))


def incr_worker(directory: str, barrier: Any, results: Any, count: int, label: str) -> None:
    """Increment one counter *count* times after the barrier; report successes and timeouts."""
    try:
        done = timeouts = 0
        with diskstore.Cache(directory) as cache:
            barrier.wait(60)
            for _ in range(count):
                try:
                    cache.incr("counter")
                except diskstore.Timeout:
                    timeouts += 1
                else:
                    done += 1
        results.put((label, "ok", (done, timeouts)))
    except BaseException:
        _report_failure(results, label)


def pair_writer(directory: str, barrier: Any, results: Any, count: int, label: str) -> None:
    """Increment ``a`` and ``b`` together in one transaction, *count* times."""
    try:
        timeouts = 0
        with diskstore.Cache(directory) as cache:
            barrier.wait(60)
            done = 0
            while done < count:
                try:
                    with cache.transact():
                        cache.incr("a")
                        cache.incr("b")
                except diskstore.Timeout:
                    timeouts += 1
                else:
                    done += 1
        results.put((label, "ok", (done, timeouts)))
    except BaseException:
        _report_failure(results, label)


def pair_reader(directory: str, barrier: Any, results: Any, stop: Any, label: str) -> None:
    """Read ``a`` and ``b`` together until *stop* is set; report reads and mismatches."""
    try:
        reads = mismatches = timeouts = 0
        with diskstore.Cache(directory) as cache:
            barrier.wait(60)
            while not stop.is_set() or reads == 0:
                try:
                    with cache.transact():
                        a = cache.get("a", 0)
                        b = cache.get("b", 0)
                except diskstore.Timeout:
                    timeouts += 1
                    continue
                reads += 1
                if a != b:
                    mismatches += 1
        results.put((label, "ok", (reads, mismatches, timeouts)))
    except BaseException:
        _report_failure(results, label)


def open_worker(barrier: Any, rounds: Any, results: Any, label: str) -> None:
    """For each directory sent on *rounds*: meet the others, open it, write, read, close."""
    while True:
        directory = rounds.get(timeout=120)
        if directory is None:
            return
        try:
            barrier.wait(60)
            with diskstore.Cache(directory) as cache:
                cache.set(label, label)
                value = cache.get(label)
                if value != label:
                    raise AssertionError(f"read back {value!r}, wrote {label!r}")
                cache.incr("opened")
            results.put((label, "ok", directory))
        except BaseException:
            _report_failure(results, label)


def stampede_worker(
    directory: str, log: str, results: Any, go: Any, label: str, lock_timeout: float
) -> None:
    """Call one slow memoized function; report its value and how long the call took."""
    try:
        with diskstore.Cache(directory) as cache:
            memoized = cache.memoize(name="slow", lock_timeout=lock_timeout)(slow_square)
            if go is not None:
                go.wait(60)
            start = time.monotonic()
            value = memoized(12, log)
            results.put((label, "ok", (value, time.monotonic() - start)))
    except BaseException:
        _report_failure(results, label)


def slow_square(number: int, log: str) -> int:
    """Append a line to *log* when it starts, then take a second to compute ``number**2``.

    While ``<log>.hold`` exists the computation does not finish (for at most a minute), so
    a test can kill the process computing it at a moment of its choosing.
    """
    import os

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"start {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    deadline = time.monotonic() + 60
    while os.path.exists(log + ".hold") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)
    return number * number
