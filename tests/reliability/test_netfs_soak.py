"""On demand: two sshfs mounts of one directory, 4 processes incrementing counters.

Two mounts of one share stand in for two machines: a lock taken through one does not stop
the other. diskcache corrupts such a database; diskstore refuses the directory by default,
and with ``network_fs="single-host"`` lets the first mount in and refuses the second, so
the database stays intact and every counter exact. It takes a while and needs sshfs, so it
runs only when asked::

    DISKSTORE_NETFS_SOAK=20 .venv/bin/pytest tests/reliability/test_netfs_soak.py -s

(the value is the seconds each run lasts; docs/reliability.md quotes a 20-second run).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from diskstore._storage._store import DB_NAME

SECONDS = float(os.environ.get("DISKSTORE_NETFS_SOAK", "0") or 0)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SECONDS, reason="on demand: set DISKSTORE_NETFS_SOAK=<seconds>"),
    pytest.mark.timeout(600),
]
COUNTERS = 8

WORKER = textwrap.dedent("""
    import json, os, signal, sys, time
    library, directory, mode, seconds, seed = sys.argv[1:6]
    counts, errors, first = {}, {}, None
    def note(exc):
        global first
        name = f"{type(exc).__module__}.{type(exc).__name__}"
        errors[name] = errors.get(name, 0) + 1
        if first is None:
            first = f"{name}: {exc}"[:300]
    try:
        if library == "diskcache":
            import diskcache
            cache = diskcache.Cache(directory, timeout=10)
        else:
            import diskstore
            cache = diskstore.Cache(directory, network_fs=mode)
    except Exception as exc:
        note(exc)
        print(json.dumps({"opened": False, "counts": {}, "errors": errors, "first": first}))
        sys.exit(0)
    deadline = time.monotonic() + float(seconds)
    number = int(seed)
    while time.monotonic() < deadline:
        number += 1
        key = f"counter-{number % %(counters)d}"
        try:
            cache.incr(key)
        except Exception as exc:
            note(exc)
            continue
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps({"opened": True, "counts": counts, "errors": errors, "first": first}))
""").replace("%(counters)d", str(COUNTERS))


@pytest.fixture(scope="module")
def mounts() -> Iterator[tuple[str, str]]:
    from _sshfs import SshfsServer

    server = SshfsServer()
    try:
        yield server.mount("a"), server.mount("b")
    finally:
        server.close()


def _soak(library: str, a: str, b: str, name: str, mode: str) -> dict[str, Any]:
    directories = [os.path.join(a, name), os.path.join(a, name)]
    directories += [os.path.join(b, name), os.path.join(b, name)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, library, directory, mode, str(SECONDS), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, directory in enumerate(directories)
    ]
    results = []
    signals = 0
    for worker in workers:
        out, _ = worker.communicate(timeout=SECONDS + 300)
        if worker.returncode < 0:
            signals += 1
            results.append({"opened": True, "counts": {}, "errors": {}, "first": None})
        else:
            results.append(json.loads(out.strip().splitlines()[-1]))
    done: dict[str, int] = {}
    errors: dict[str, int] = {}
    for result in results:
        for key, count in result["counts"].items():
            done[key] = done.get(key, 0) + count
        for kind, count in result["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    database = "cache.db" if library == "diskcache" else DB_NAME
    path = os.path.join(a, name, database)
    integrity, wrong = "missing", -1
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
    except sqlite3.Error as exc:
        integrity = str(exc)
    if library == "diskstore" and integrity == "ok":
        import diskstore

        with diskstore.Cache(os.path.join(a, name), network_fs="single-host") as cache:
            wrong = sum(cache.get(key, 0) != count for key, count in done.items())
    summary = {
        "library": library, "mode": mode, "opened": sum(r["opened"] for r in results),
        "increments": sum(done.values()), "errors": errors, "signals": signals,
        "integrity": integrity, "counters wrong": wrong,
        "first errors": [r["first"] for r in results if r["first"]],
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    return summary


def test_diskcache_on_two_mounts(mounts: tuple[str, str], figures: Any) -> None:
    summary = _soak("diskcache", *mounts, "diskcache", "")
    figures.record_diskcache("netfs soak, 2 mounts: database intact", summary["integrity"] == "ok")


def test_diskstore_refuses_by_default(mounts: tuple[str, str]) -> None:
    summary = _soak("diskstore", *mounts, "refused", "refuse")
    assert summary["opened"] == 0
    assert summary["errors"] == {"diskstore._common._exceptions.NetworkFilesystemError": 4}


def test_diskstore_single_host_on_two_mounts(mounts: tuple[str, str], figures: Any) -> None:
    summary = _soak("diskstore", *mounts, "single", "single-host")
    assert summary["opened"] == 2  # the two processes of the first mount in; the others refused
    assert summary["errors"] == {"diskstore._common._exceptions.NetworkFilesystemError": 2}
    assert summary["signals"] == 0
    assert summary["integrity"] == "ok"
    assert summary["counters wrong"] == 0
    figures.record("netfs soak, 2 mounts: database intact", 1)
    figures.record("netfs soak, single-host: increments / counters wrong",
                   summary["increments"], note="0 wrong")  # fmt: skip
