"""Item 10: a slow memoized function called by four processes at once runs once, and when
the process computing it is killed the others recover well within the lock timeout.

Concurrent misses of one key meet at a per-key file lock; the kernel drops an ``flock``
when its holder dies, even by SIGKILL, so waiters need not wait for ``lock_timeout``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

import diskstore

from ._support import collect, reap
from ._workers import stampede_worker

SPAWN = multiprocessing.get_context("spawn")
LOCK_TIMEOUT = 30.0


def starts(log: str) -> int:
    try:
        with open(log) as handle:
            return sum(1 for line in handle if line.startswith("start"))
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_four_processes_compute_once(tmp_path, figures):
    directory = str(tmp_path / "cache")
    log = str(tmp_path / "calls.log")
    diskstore.Cache(directory).close()
    go = SPAWN.Event()
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(
            target=stampede_worker, args=(directory, log, results, go, f"p{n}", LOCK_TIMEOUT)
        )
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let every worker import and open the cache
    go.set()
    try:
        found = collect(results, 4, timeout=60)
    finally:
        reap(workers)
    figures.record("stampede: calls of the slow function by 4 processes", starts(log))
    assert {body[0] for body in found.values()} == {144}
    assert starts(log) == 1


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_others_recover_when_the_holder_is_killed(tmp_path, figures):
    directory = str(tmp_path / "cache")
    log = str(tmp_path / "calls.log")
    diskstore.Cache(directory).close()
    hold = log + ".hold"
    open(hold, "w").close()  # the holder computes until this goes
    results = SPAWN.Queue()
    holder = SPAWN.Process(
        target=stampede_worker, args=(directory, log, results, None, "holder", LOCK_TIMEOUT)
    )
    holder.start()
    others = []
    try:
        deadline = time.monotonic() + 60
        while starts(log) == 0:
            assert time.monotonic() < deadline, "the holder never started computing"
            assert holder.is_alive(), "the holder exited before computing"
            time.sleep(0.01)
        others = [
            SPAWN.Process(
                target=stampede_worker, args=(directory, log, results, None, f"w{n}", LOCK_TIMEOUT)
            )
            for n in range(3)
        ]
        for worker in others:
            worker.start()
        time.sleep(1.0)  # the others are now waiting for the holder's lock
        assert starts(log) == 1
        os.unlink(hold)
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.join(10)
        found = collect(results, 3, timeout=LOCK_TIMEOUT + 30)
        recovered_in = time.monotonic() - killed_at
    finally:
        reap([holder, *others])
    figures.record(
        "stampede: seconds for the others to recover after SIGKILL", round(recovered_in, 2)
    )
    figures.record("stampede: calls of the slow function (holder killed)", starts(log))
    assert holder.exitcode == -signal.SIGKILL
    assert {body[0] for body in found.values()} == {144}
    assert recovered_in < LOCK_TIMEOUT / 2
    assert starts(log) == 2  # the killed holder's call, and one more
