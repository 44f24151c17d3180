"""Table layouts on bare sqlite3: ``python -m benchmarks.layouts [--quick] [--sizes N,...]``.

Measures the lever the speed targets name for get and delete: a ``WITHOUT ROWID`` table
clustered on ``(ns, key, raw)``, against the layout diskstore has (a rowid table plus a
unique ``(ns, key, raw)`` index). Both tables carry what the cache needs besides the key:
an insertion order (the rowid itself, or a ``seq`` column with a unique index, since
iteration, ``peekitem`` and the queues read items in insertion order), an eviction index on
``store_time``, and a per-namespace counter row updated by every insert and delete.

Each operation runs as the cache runs it: a lookup is one statement; an insert and a delete
are one ``BEGIN IMMEDIATE`` transaction each, counter update included. Layouts take turns
in passes over the same random keys; the figures are medians in microseconds per call.
No Python layer of diskstore is involved: this is the ceiling of what the layout alone
could change.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median

from benchmarks.timing import per_call

ROWID = "rowid table + key index"
CLUSTERED = "WITHOUT ROWID + seq index"
LAYOUTS: dict[str, tuple[str, ...]] = {
    ROWID: (
        "CREATE TABLE items (rowid INTEGER PRIMARY KEY, ns INTEGER NOT NULL, key BLOB NOT NULL,"
        " raw INTEGER NOT NULL, store_time REAL NOT NULL, expire_time REAL, mode INTEGER,"
        " value BLOB)",
        "CREATE UNIQUE INDEX items_key ON items (ns, key, raw)",
    ),
    CLUSTERED: (
        "CREATE TABLE items (ns INTEGER NOT NULL, key BLOB NOT NULL, raw INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, store_time REAL NOT NULL, expire_time REAL, mode INTEGER,"
        " value BLOB, PRIMARY KEY (ns, key, raw)) WITHOUT ROWID",
        "CREATE UNIQUE INDEX items_seq ON items (seq)",
    ),
}
COMMON = (
    "CREATE INDEX items_store ON items (store_time)",
    "CREATE TABLE counts (ns INTEGER PRIMARY KEY, count INTEGER NOT NULL)",
    "INSERT INTO counts VALUES (0, 0)",
)
INSERT = {
    ROWID: "INSERT INTO items (ns, key, raw, store_time, mode, value) VALUES (0, ?, 1, ?, 0, ?)",
    CLUSTERED: (
        "INSERT INTO items (ns, key, raw, seq, store_time, mode, value) VALUES (0, ?, 1,"
        " (SELECT coalesce(max(seq), 0) + 1 FROM items), ?, 0, ?)"
    ),
}
LOOKUP = {
    ROWID: "SELECT rowid, mode, value, expire_time FROM items WHERE ns = 0 AND key = ? AND raw = 1",
    CLUSTERED: "SELECT seq, mode, value, expire_time FROM items WHERE ns = 0 AND key = ? AND raw = 1",
}
DELETE = "DELETE FROM items WHERE ns = 0 AND key = ? AND raw = 1"
COUNT = "UPDATE counts SET count = count + ? WHERE ns = 0"
FILL_BATCH = 10_000


def _key(index: int) -> str:
    return f"key-{index:09d}"


def build(path: Path, layout: str, size: int, rng: random.Random) -> sqlite3.Connection:
    """Create a database of *size* items in *layout* with the cache's default pragmas."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = wal").fetchall()
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA cache_size = 8192")
    con.execute("PRAGMA mmap_size = 67108864").fetchall()
    for statement in (*LAYOUTS[layout], *COMMON):
        con.execute(statement)
    now = time.time()
    for start in range(0, size, FILL_BATCH):
        stop = min(size, start + FILL_BATCH)
        con.execute("BEGIN")
        for index in range(start, stop):
            con.execute(INSERT[layout], (_key(index), now + index, rng.randbytes(40)))
        con.execute(COUNT, (stop - start,))
        con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return con


def _lookup(con: sqlite3.Connection, layout: str) -> Callable[[str], None]:
    sql = LOOKUP[layout]
    cur = con.cursor()

    def lookup(key: str) -> None:
        if not cur.execute(sql, (key,)).fetchall():
            raise RuntimeError(f"{layout}: {key} is missing")

    return lookup


def _insert(con: sqlite3.Connection, layout: str) -> Callable[[str], None]:
    sql = INSERT[layout]
    value = b"v" * 40

    def insert(key: str) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute(sql, (key, time.time(), value))
        con.execute(COUNT, (1,))
        con.execute("COMMIT")

    return insert


def _delete(con: sqlite3.Connection, layout: str) -> Callable[[str], None]:
    def delete(key: str) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute(DELETE, (key,))
        con.execute(COUNT, (-1,))
        con.execute("COMMIT")

    return delete


def run_size(size: int, sample: int, root: Path, seed: int) -> dict[str, dict[str, float]]:
    """Median microseconds of lookup, insert and delete per layout at *size* items."""
    cons = {
        layout: build(root / f"{index}-{size}.db", layout, size, random.Random(seed))
        for index, layout in enumerate(LAYOUTS)
    }
    rng = random.Random(seed + size)
    present = [_key(rng.randrange(size)) for _ in range(sample)]
    fresh = [f"new-{index:09d}" for index in range(sample)]
    times: dict[str, dict[str, list[int]]] = {
        layout: {"lookup": [], "insert": [], "delete": []} for layout in LAYOUTS
    }
    try:
        for turn in range(3):
            order = list(LAYOUTS) if turn % 2 == 0 else list(LAYOUTS)[::-1]
            for layout in order:
                con = cons[layout]
                times[layout]["lookup"] += per_call(_lookup(con, layout), present)
            for layout in order:
                con = cons[layout]
                batch = [f"{key}-{turn}" for key in fresh]
                times[layout]["insert"] += per_call(_insert(con, layout), batch)
                times[layout]["delete"] += per_call(_delete(con, layout), batch)
    finally:
        for con in cons.values():
            con.close()
    return {
        layout: {op: median(found) / 1000 for op, found in ops.items()}
        for layout, ops in times.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print a table of lookup, insert and delete costs per layout and size."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layouts", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 items")
    parser.add_argument("--sizes", help="comma-separated item counts (overrides --quick)")
    parser.add_argument("--sample", type=int, default=2000, help="calls per pass")
    parser.add_argument("--seed", type=int, default=20_261_203)
    parser.add_argument("--tmpdir", type=Path, help="where the databases live")
    args = parser.parse_args(argv)
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    else:
        sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    if any(size < 1 for size in sizes) or args.sample < 1:
        parser.error("sizes and --sample must be positive")
    print("| items | op | " + " | ".join(LAYOUTS) + " | ratio |")
    print("| ---: | --- | " + " | ".join("---:" for _ in LAYOUTS) + " | ---: |")
    with tempfile.TemporaryDirectory(prefix="diskstore-layouts-", dir=args.tmpdir) as root:
        for size in sizes:
            found = run_size(size, min(args.sample, size), Path(root), args.seed)
            for op in ("lookup", "insert", "delete"):
                mine, other = found[ROWID][op], found[CLUSTERED][op]
                print(f"| {size:,} | {op} | {mine:.2f} | {other:.2f} | {other / mine:.2f} |")
            for name in os.listdir(root):
                os.remove(os.path.join(root, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
