"""The write-back of buffered statistics and access records (diskstore._storage._bookkeeping)."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import traceback

import diskstore
from diskstore._storage._store import Conn


def _stack_of(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or 0)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(not running)"


def _hits_on_disk(directory: str) -> int:
    con = sqlite3.connect(os.path.join(directory, "cache.db"))
    try:
        return int(con.execute("SELECT value FROM Settings WHERE key = 'hits'").fetchone()[0])
    finally:
        con.close()


def test_the_background_write_back_leaves_no_connection_open(cache_dir: str) -> None:
    # The write-back thread outlives the caches it serves: a connection it left open would
    # be closed by the garbage collector, which from Python 3.13 warns of each one.
    with diskstore.Cache(cache_dir, statistics=True) as cache:
        cache.set("k", 1)
        records: list[Conn] = []
        # On a loaded machine more than a second can pass between the write-back stats()
        # makes and the get, and then the get writes back itself: try again until the
        # thread is the one that did it.
        for attempt in range(1, 6):
            # A write-back now, so that the next one is a second away and only the thread
            # can make it (an operation of this thread would write back itself once due).
            cache.stats()
            assert cache.get("k") == 1  # a hit, buffered until the write-back
            deadline = time.monotonic() + 30
            while _hits_on_disk(cache_dir) < attempt and time.monotonic() < deadline:
                time.sleep(0.05)  # stats() would write the buffer back itself: read the file
            flusher = next(t for t in threading.enumerate() if t.name == "diskstore-flush")
            assert _hits_on_disk(cache_dir) == attempt, (
                "the hit was never written back; the write-back thread is at:\n"
                + _stack_of(flusher)
            )
            records = [c for c in list(cache._store._conns) if c.owner == flusher.ident]
            if records:
                break
        assert records, "the write-back thread never wrote back"
        for _ in range(100):  # the thread closes its connection right after writing back
            if all(record.con is None for record in records):
                break
            time.sleep(0.05)
        assert all(record.con is None for record in records)
