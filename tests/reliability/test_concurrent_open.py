"""Item 6: many processes opening one fresh directory at the same moment all succeed.

Eight worker processes meet at a barrier, then open the same brand-new directory, write,
read back and close; fifty rounds, each in a new directory. Creating the directory, the
database, its schema and its settings must tolerate every interleaving.
"""

from __future__ import annotations

import multiprocessing

import pytest

import diskstore

from ._support import collect, integrity, reap
from ._workers import open_worker

SPAWN = multiprocessing.get_context("spawn")
PROCESSES = 8
ROUNDS = 50


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_concurrent_open_of_a_fresh_directory(tmp_path, figures):
    barrier = SPAWN.Barrier(PROCESSES)
    results = SPAWN.Queue()
    rounds = [SPAWN.Queue() for _ in range(PROCESSES)]
    workers = [
        SPAWN.Process(target=open_worker, args=(barrier, rounds[n], results, f"p{n}"))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    errors: list[str] = []
    try:
        for number in range(ROUNDS):
            directory = str(tmp_path / f"round{number}" / "nested" / "cache")
            for queue in rounds:
                queue.put(directory)
            try:
                collect(results, PROCESSES, timeout=60)
            except AssertionError as exc:
                errors.append(f"round {number}: {exc}")
                break
            with diskstore.Cache(directory) as cache:
                assert cache.get("opened") == PROCESSES
                assert sorted(k for k in cache if k != "opened") == sorted(
                    f"p{n}" for n in range(PROCESSES)
                )
            assert integrity(directory) == ["ok"]
    finally:
        for queue in rounds:
            queue.put(None)
        reap(workers)
    figures.record(f"concurrent open: errors in {ROUNDS} rounds x {PROCESSES} procs", len(errors))
    assert errors == []
