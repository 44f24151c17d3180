"""Helpers shared by the core Cache tests: a controllable clock, process runners, workers.

Worker functions live here (not in the test modules) so that processes started with the
"spawn" context can import them by name.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

import diskstore
from diskstore._values._modes import from_row

SPAWN = multiprocessing.get_context("spawn")
FORK = multiprocessing.get_context("fork") if hasattr(os, "fork") else None


class Clock:
    """A wall clock that moves only on demand, installed as ``diskstore._common._clock.now``.

    Expiry, store and access times are then decided by ``clock.now`` instead of real
    sleeping; see :func:`install_clock`.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def install_clock(monkeypatch: Any) -> Clock:
    """Replace diskstore's wall clock with a :class:`Clock` for the rest of the test."""
    import diskstore._common._clock

    clock = Clock()
    monkeypatch.setattr(diskstore._common._clock, "now", clock.time)
    return clock


def run_processes(
    target: Callable[..., Any],
    args_list: Iterable[tuple[Any, ...]],
    timeout: float = 120,
    context: Any = SPAWN,
) -> None:
    """Run one process per argument tuple, bounded by *timeout*; require clean exits."""
    processes = [context.Process(target=target, args=args) for args in args_list]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
        process.join(5)
    assert not hung, f"{len(hung)} worker process(es) did not finish within {timeout} s"
    assert [process.exitcode for process in processes] == [0] * len(processes)


def pragma(cache: diskstore.Cache, name: str) -> Any:
    """Read a PRAGMA of the cache's database through a separate connection."""
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    try:
        return con.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        con.close()


def value_files(directory: str) -> list[str]:
    """Every regular file below ``<directory>/data``, relative to the directory (as rows
    name them)."""
    root = os.path.join(directory, "data")
    found = []
    for parent, _dirs, names in os.walk(root):
        for name in names:
            found.append(os.path.relpath(os.path.join(parent, name), directory))
    return sorted(found)


def value_files_once_durable(cache: Any) -> list[str]:
    """The value files left once the cache's commits are on disk.

    In WAL mode at NORMAL a file that a commit replaced or deleted is removed only after a
    checkpoint shows that commit on disk (see diskstore/_fs/_durability.py); closing the cache
    checkpoints and removes them. The next operation reopens the cache.
    """
    cache.close()
    return value_files(cache.directory)


def code_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``Cache`` row with its ``mode`` as the code sees it (see ``diskstore._values._modes``)."""
    mode = row.get("mode")
    if type(mode) is int:
        row = {**row, "mode": from_row(mode)}
    return row


# -- process workers ------------------------------------------------------------------------
def incr_worker(directory: str, key: str, count: int) -> None:
    with diskstore.Cache(directory) as cache:
        for _ in range(count):
            cache.incr(key, retry=True)


def write_read_worker(directory: str, worker: int, count: int) -> None:
    with diskstore.Cache(directory) as cache:
        for number in range(count):
            key = (worker, number)
            value = os.urandom(1 + (number * 997) % 50_000) if number % 10 == 0 else number
            cache.set(key, value, retry=True)
            assert cache.get(key, retry=True) == value
        cache.set(("done", worker), count, retry=True)


def hold_transaction_worker(directory: str, started: Any, release: Any) -> None:
    with diskstore.Cache(directory) as cache:
        with cache.transact():
            cache["held"] = os.getpid()
            started.set()
            release.wait(30)


def read_pickled_worker(payload: bytes, key: Any, result: Any) -> None:
    import pickle

    cache = pickle.loads(payload)
    try:
        result.put((cache.directory, cache.namespace_name, cache[key]))
        cache[("child", key)] = os.getpid()
    finally:
        cache.close()


def open_and_write_worker(directory: str, worker: int, start: Any) -> None:
    start.wait(60)
    with diskstore.Cache(directory, size_limit=2**31, tag_index=True) as cache:
        cache[("opened", worker)] = worker
        cache.namespace("shared").incr("opens", retry=True)


def namespace_incr_worker(directory: str, worker: int, count: int) -> None:
    with diskstore.Cache(directory) as cache:
        mine = cache.namespace(f"worker-{worker}")
        shared = cache.namespace("shared")
        for _ in range(count):
            mine.incr("count", retry=True)
            shared.incr("count", retry=True)


def producer_worker(directory: str, worker: int, count: int) -> None:
    with diskstore.Cache(directory) as cache:
        for number in range(count):
            cache.push((worker, number), prefix="jobs", retry=True)


def consumer_worker(directory: str, worker: int) -> None:
    got = []
    with diskstore.Cache(directory) as cache:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            key, value = cache.pull(prefix="jobs", retry=True)
            if key is None:
                time.sleep(0.001)
                continue
            if value == "stop":
                break
            got.append(value)
        cache.set(("got", worker), got, retry=True)


def mapped_from(array: Any, path: str) -> bool:
    """Whether *array*'s memory lies in a mapping of the file *path* (from /proc/self/maps)."""
    address = array.__array_interface__["data"][0]
    real = os.path.realpath(path)
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return len(fields) >= 6 and fields[5] == real
    return False


def join_refreshes() -> None:
    """Wait for the background refresh threads memoize and TaskCache started."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "diskstore-refresh":
            thread.join(60)


def square(x: int) -> int:
    return x * x


def memoized_calls_worker(directory: str, name: str, arguments: list[int]) -> None:
    """Call a memoized ``square`` named *name* with each argument, then close the cache."""
    with diskstore.Cache(directory) as cache:
        memoized = cache.memoize(name=name)(square)
        for x in arguments:
            memoized(x)


async def async_square(x: int) -> int:
    return x * x


def memoized_async_calls_worker(directory: str, name: str, arguments: list[int]) -> None:
    """:func:`memoized_calls_worker` for the ``async def`` :func:`async_square`."""
    import asyncio

    async def calls(cache: diskstore.Cache) -> None:
        memoized = cache.memoize(name=name)(async_square)
        for x in arguments:
            await memoized(x)

    with diskstore.Cache(directory) as cache:
        asyncio.run(calls(cache))


def in_pseudo_terminal(
    argv: list[str], *, size: tuple[int, int] | None = (24, 100)
) -> tuple[int, bytes]:
    """Run *argv* with stdout and stderr on a pseudo-terminal of *size* (lines, columns;
    ``None`` leaves it as a new one is, 0x0); return its status and output."""
    import fcntl
    import pty
    import select
    import struct
    import subprocess
    import termios

    leader, follower = pty.openpty()
    if size is not None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    try:
        process = subprocess.Popen(argv, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        return process.wait(timeout=120), b"".join(chunks)
    finally:
        os.close(leader)
