"""Run one cache operation in a fresh process (used with ``DISKSTORE_CRASH_AT``).

Usage: ``python _crash_op.py <directory> <operation>``. The parent sets the crash point in
the environment, so the process exits with code 70 at the chosen step of the operation.
"""

from __future__ import annotations

import hashlib
import sys

import diskstore

BIG = 1 << 20


def payload(key: str, version: str, size: int) -> bytes:
    return hashlib.shake_256(f"{key}\x00{version}".encode()).digest(size)


def main(directory: str, operation: str) -> None:
    from diskstore._fs import _faults

    _faults.arm()  # crash points are inert until a test arms them
    with diskstore.Cache(directory) as cache:
        if operation == "set_new_file":
            cache.set("new", payload("new", "new", BIG))
        elif operation == "set_over_file":
            cache.set("f", payload("f", "new", BIG))
        elif operation == "set_inline":
            cache.set("i", payload("i", "new", 100))
        elif operation == "push_file":
            cache.push(payload("q", "new", BIG), prefix="q")
        elif operation == "delete_file":
            cache.delete("f")
        elif operation == "pull_file":
            cache.pull(prefix="q")
        elif operation == "incr":
            cache.incr("n")
        elif operation == "cull":
            cache.cull()
        elif operation == "evict":
            cache.evict("eph")
        elif operation == "clear":
            cache.clear()
        else:
            raise SystemExit(f"unknown operation {operation!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
