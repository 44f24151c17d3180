"""Item 2 (deterministic part): a crash at each step of the write path leaves no damage.

``DISKSTORE_CRASH_AT=<point>`` makes a fresh process exit with code 70 after a value file
is written (before it is renamed into place), after a commit, or before an old file's
unlink. Whatever the step, the cache must open with an intact database, hold either the
old or the new state (old before the commit, new after it), keep a final-named file only
when it is complete, and be clean after one ``check(fix=True)`` pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import diskstore

from ._support import BIG, data_files, integrity, orphan_files, payload

CRASH_EXIT = 70
SCRIPT = str(Path(__file__).with_name("_crash_op.py"))

# (operation, crash point): every step each operation reaches.
CASES = [
    ("set_new_file", "file-written"),
    ("set_new_file", "committed"),
    ("set_over_file", "file-written"),
    ("set_over_file", "committed"),
    ("set_over_file", "before-unlink"),
    ("set_inline", "committed"),
    ("push_file", "file-written"),
    ("push_file", "committed"),
    ("delete_file", "committed"),
    ("delete_file", "before-unlink"),
    ("pull_file", "before-unlink"),
    ("incr", "committed"),
    ("cull", "committed"),
    ("cull", "before-unlink"),
    ("evict", "before-unlink"),
    ("clear", "before-unlink"),
]


def populate(directory: str) -> None:
    with diskstore.Cache(directory) as cache:
        cache.set("keep", payload("keep", "old", BIG))
        cache.set("f", payload("f", "old", BIG))
        cache.set("i", payload("i", "old", 100))
        cache.set("n", 5)
        cache.push(payload("q", "old", BIG), prefix="q")
        for number in range(3):
            cache.set(f"e{number}", payload(f"e{number}", "old", BIG), expire=0.05, tag="eph")
    time.sleep(0.06)


def expected_state(operation: str, applied: bool) -> dict[str, object]:
    """The values of every key once *operation* has (or has not) taken effect."""
    old = {
        "keep": payload("keep", "old", BIG),
        "f": payload("f", "old", BIG),
        "i": payload("i", "old", 100),
        "n": 5,
        "new": None,
    }
    if not applied:
        return old
    new = dict(old)
    if operation == "set_new_file":
        new["new"] = payload("new", "new", BIG)
    elif operation == "set_over_file":
        new["f"] = payload("f", "new", BIG)
    elif operation == "set_inline":
        new["i"] = payload("i", "new", 100)
    elif operation == "delete_file":
        new["f"] = None
    elif operation == "incr":
        new["n"] = 6
    elif operation == "clear":
        new = {key: None for key in new}
    return new


def queue_state(operation: str, applied: bool) -> list[bytes]:
    old = [payload("q", "old", BIG)]
    if not applied or operation not in ("push_file", "pull_file", "clear"):
        return old
    if operation == "push_file":
        return [*old, payload("q", "new", BIG)]
    return []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("operation", "point"), CASES)
def test_crash_point_leaves_old_or_new_state(cache_dir, figures, operation, point):
    populate(cache_dir)
    env = dict(os.environ, DISKSTORE_CRASH_AT=point)
    completed = subprocess.run(
        [sys.executable, SCRIPT, cache_dir, operation],
        env=env,
        capture_output=True,
        timeout=50,
    )
    assert completed.returncode == CRASH_EXIT, completed.stderr.decode()
    orphans = orphan_files(cache_dir)
    partial = [
        name
        for name, size in data_files(cache_dir).items()
        if name.endswith(".val") and size != BIG
    ]
    figures.add("crash points: cases run", 1)
    figures.add("crash points: orphan files before fix (total)", len(orphans))
    figures.add("crash points: partial files under a final name", len(partial))
    with diskstore.Cache(cache_dir) as cache:
        assert integrity(cache_dir) == ["ok"]
        applied = point != "file-written"
        for key, value in expected_state(operation, applied).items():
            assert cache.get(key) == value, key
        queue = []
        while True:
            _key, value = cache.pull(prefix="q")
            if value is None:
                break
            queue.append(value)
        assert queue == queue_state(operation, applied)
        found = cache.check()
        cache.check(fix=True)
        assert cache.check() == []
    assert orphan_files(cache_dir) == []
    assert partial == []
    assert len(found) >= len(orphans)  # every orphan was reported
