"""Helpers shared by the reliability tests: inspecting a cache directory from outside."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from typing import Any
from urllib.parse import quote

DB_NAME = "cache.db"
DATA_DIR = "data"
BIG = 1 << 20  # a value stored in a file (incompressible, so the file holds it as is)


def payload(key: str, version: str, size: int) -> bytes:
    """Deterministic, incompressible bytes for *key* at *version* (rebuilt to verify)."""
    return hashlib.shake_256(f"{key}\x00{version}".encode()).digest(size)


def raw_connection(directory: str, *, read_only: bool = True) -> sqlite3.Connection:
    path = os.path.join(directory, DB_NAME)
    mode = "ro" if read_only else "rw"
    return sqlite3.connect(f"file:{quote(path)}?mode={mode}", uri=True, timeout=30)


def integrity(directory: str) -> list[str]:
    """``PRAGMA integrity_check`` of the cache's database, through a separate connection."""
    con = raw_connection(directory)
    try:
        return [row[0] for row in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()


def referenced_files(directory: str) -> dict[str, int]:
    """Value files the database references, with the size each row records."""
    con = raw_connection(directory)
    try:
        rows = con.execute("SELECT filename, size FROM Cache WHERE filename IS NOT NULL")
        return {name: size for name, size in rows}
    finally:
        con.close()


def data_files(directory: str) -> dict[str, int]:
    """Every file below ``data/`` as ``sub/name`` with its size."""
    root = os.path.join(directory, DATA_DIR)
    found: dict[str, int] = {}
    if not os.path.isdir(root):
        return found
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, directory)] = os.path.getsize(path)
    return found


def orphan_files(directory: str) -> list[str]:
    """Files below ``data/`` that no row references (temporary ones included)."""
    referenced = referenced_files(directory)
    return sorted(name for name in data_files(directory) if name not in referenced)


def item_count(directory: str) -> int:
    con = raw_connection(directory)
    try:
        return int(con.execute("SELECT count(*) FROM Cache").fetchone()[0])
    finally:
        con.close()


def table_rows(directory: str, table: str) -> list[tuple[object, ...]]:
    """Every row of *table* (one of the schema's tables), in a stable order."""
    tables = ("Cache", "Settings", "diskstore_settings", "diskstore_namespaces")
    if table not in tables:
        raise ValueError(f"table must be one of {tables}, not {table!r}")
    con = raw_connection(directory)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def collect(results: Any, expected: int, timeout: float) -> dict[str, Any]:
    """Gather *expected* ``(label, status, payload)`` reports; fail on errors or silence."""
    import queue
    import time

    deadline = time.monotonic() + timeout
    found: dict[str, Any] = {}
    errors: list[str] = []
    while len(found) + len(errors) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            label, status, body = results.get(timeout=remaining)
        except queue.Empty:
            break
        if status == "ok":
            found[label] = body
        else:
            errors.append(f"{label}:\n{body}")
    if errors:
        raise AssertionError("worker failed:\n" + "\n".join(errors))
    if len(found) < expected:
        raise AssertionError(f"only {len(found)} of {expected} workers reported in {timeout}s")
    return found


def reap(processes: list[Any], timeout: float = 30) -> list[int | None]:
    """Join *processes*, killing any still alive after *timeout*; return exit codes."""
    import time

    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    return [process.exitcode for process in processes]


def start_forked(process: Any) -> None:
    """Start a ``fork``-context process, without the warning newer Pythons give for threads.

    The tests fork on purpose (that is what they test); the parent's helper threads, if
    any, hold no lock the child needs.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*fork.*", DeprecationWarning)
        process.start()
