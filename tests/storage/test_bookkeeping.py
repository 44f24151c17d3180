"""The write-back of buffered statistics and access records (diskstore._storage._bookkeeping)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_WRITE_BACK = textwrap.dedent(
    """
    import os, sqlite3, sys, threading, time, traceback
    import diskstore

    directory = sys.argv[1]

    def hits_on_disk():
        con = sqlite3.connect(os.path.join(directory, "cache.db"))
        try:
            return int(con.execute("SELECT value FROM Settings WHERE key = 'hits'").fetchone()[0])
        finally:
            con.close()

    def stack_of(thread):
        frame = sys._current_frames().get(thread.ident or 0)
        return "".join(traceback.format_stack(frame)) if frame is not None else "(not running)"

    with diskstore.Cache(directory, statistics=True) as cache:
        cache.set("k", 1)
        records = []
        # On a loaded machine more than a second can pass between the write-back stats()
        # makes and the get, and then the get writes back itself: try again until the
        # thread is the one that did it.
        for attempt in range(1, 6):
            # A write-back now, so that the next one is a second away and only the thread
            # can make it (an operation of this thread would write back itself once due).
            cache.stats()
            assert cache.get("k") == 1  # a hit, buffered until the write-back
            deadline = time.monotonic() + 30
            while hits_on_disk() < attempt and time.monotonic() < deadline:
                time.sleep(0.05)  # stats() would write the buffer back itself: read the file
            flusher = next(t for t in threading.enumerate() if t.name == "diskstore-flush")
            assert hits_on_disk() == attempt, (
                "the hit was never written back; the write-back thread is at:\\n"
                + stack_of(flusher)
            )
            records = [c for c in list(cache._store._conns) if c.owner == flusher.ident]
            if records:
                break
        assert records, "the write-back thread never wrote back"
        for _ in range(100):  # the thread closes its connection right after writing back
            if all(record.con is None for record in records):
                break
            time.sleep(0.05)
        assert all(record.con is None for record in records), "a connection is left open"
    print("ok")
    """
)


def test_the_background_write_back_leaves_no_connection_open(cache_dir: str) -> None:
    # The write-back thread outlives the caches it serves: a connection it left open would
    # be closed by the garbage collector, which from Python 3.13 warns of each one. The
    # check runs in a fresh process, whose write-back thread serves this cache alone
    # rather than every cache the test session has left behind.
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_BACK, cache_dir],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
