"""Item 1: no lost updates when processes increment one counter at the same moment."""

from __future__ import annotations

import multiprocessing

import pytest

import diskstore

from ._support import collect, reap
from ._workers import incr_worker, pair_reader, pair_writer

SPAWN = multiprocessing.get_context("spawn")
INCREMENTS = 1000


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("processes", [4, 8])
def test_concurrent_incr_loses_nothing(cache_dir, figures, processes):
    diskstore.Cache(cache_dir).close()
    barrier = SPAWN.Barrier(processes)
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(
            target=incr_worker, args=(cache_dir, barrier, results, INCREMENTS, f"w{number}")
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        found = collect(results, processes, timeout=200)
    finally:
        reap(workers)
    done = sum(body[0] for body in found.values())
    timeouts = sum(body[1] for body in found.values())
    with diskstore.Cache(cache_dir) as cache:
        final = cache.get("counter")
    figures.record(f"lost updates: {processes} procs x {INCREMENTS} incr", done - final)
    figures.record(f"timeouts: {processes} procs x {INCREMENTS} incr", timeouts)
    assert timeouts == 0
    assert done == processes * INCREMENTS
    assert final == processes * INCREMENTS


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_transaction_is_seen_whole_or_not_at_all(cache_dir, figures):
    writers, readers, count = 3, 2, 300
    diskstore.Cache(cache_dir).close()
    barrier = SPAWN.Barrier(writers + readers)
    results = SPAWN.Queue()
    stop = SPAWN.Event()
    writer_procs = [
        SPAWN.Process(target=pair_writer, args=(cache_dir, barrier, results, count, f"w{n}"))
        for n in range(writers)
    ]
    reader_procs = [
        SPAWN.Process(target=pair_reader, args=(cache_dir, barrier, results, stop, f"r{n}"))
        for n in range(readers)
    ]
    for process in writer_procs + reader_procs:
        process.start()
    try:
        written = collect(results, writers, timeout=200)
        stop.set()
        read = collect(results, readers, timeout=60)
    finally:
        stop.set()
        reap(writer_procs + reader_procs)
    with diskstore.Cache(cache_dir) as cache:
        a, b = cache.get("a"), cache.get("b")
    mismatches = sum(body[1] for body in read.values())
    reads = sum(body[0] for body in read.values())
    figures.record("torn transactions seen by readers", mismatches)
    assert reads > 0
    assert mismatches == 0
    assert sum(body[1] for body in written.values()) == 0  # no writer timed out
    assert a == b == writers * count
