"""Copying the items of a diskcache directory into a diskstore cache.

diskcache keeps its items in ``cache.db`` (table ``Cache``: ``key``, ``raw``,
``expire_time``, ``tag``, ``mode``, ``filename``, ``value``, ...) and values too large for a
row in files named by the ``filename`` column. Its modes are 1 (the value as SQLite stores
it), 2 (bytes), 3 (text, in a file) and 4 (a pickle); a key with ``raw = 0`` is a pickle.
This module reads those rows directly with :mod:`sqlite3`, so diskcache need not be
installed, and writes each item through the destination's ordinary ``set``.

diskcache's pickles carry no signature: loading one runs whatever code the pickle names,
and anyone who could write to the directory could have planted it (CVE-2025-69872). So a
directory holding any pickled key or value is refused unless the caller passes
``trust=True``, before anything is copied. The file names in its rows are input too: a
name must stay below the directory and be a regular file, or the item is skipped.
"""

from __future__ import annotations

import itertools
import os
import pickle
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any, Protocol

from .._common import _clock
from .._common._exceptions import DiskStoreError, UntrustedDataError, warn_caller
from . import _sql

DB_NAME = "cache.db"
_CHUNK = 1000
_MODE_RAW, _MODE_BINARY, _MODE_TEXT, _MODE_PICKLE = 1, 2, 3, 4

Progress = Callable[[int, int], None]


class _Sink(Protocol):
    def set(
        self, key: Any, value: Any, expire: float | None = None, read: bool = False,
        tag: Any = None, retry: bool = False,
    ) -> bool: ...  # fmt: skip


class _Skipped(Exception):
    """An item of the source that cannot be copied (its value file is missing or unsafe)."""


def source_databases(source: str) -> list[str]:
    """The ``cache.db`` files of a diskcache Cache, Deque or Index directory, or of a
    FanoutCache's shards (``000``, ``001``, ...); ``DiskStoreError`` if there are none."""
    root = os.path.abspath(os.path.expanduser(source))
    if os.path.isfile(os.path.join(root, DB_NAME)):
        return [os.path.join(root, DB_NAME)]
    if os.path.isdir(root):
        shards = sorted(
            os.path.join(root, name, DB_NAME)
            for name in os.listdir(root)
            if len(name) == 3
            and name.isdigit()
            and os.path.isfile(os.path.join(root, name, DB_NAME))
        )
        if shards:
            return shards
    raise DiskStoreError(
        f"not a diskcache directory: {source!r} holds no {DB_NAME} (nor FanoutCache shards "
        f"000/{DB_NAME}, 001/{DB_NAME}, ...)"
    )


def _connect(path: str) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        con.execute(_sql.DISKCACHE_COUNT).fetchone()
    except sqlite3.Error:
        # A WAL database in a directory we cannot write: read it as it is on disk.
        con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    return con


def _read_file(directory: str, name: Any) -> bytes:
    if type(name) is not str or os.path.isabs(name) or ".." in name.split("/"):
        raise _Skipped(f"unsafe value file name {name!r}")
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _Skipped(f"value file {name!r} cannot be opened: {exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise _Skipped(f"value file {name!r} is not a regular file")
        return handle.read()


def _decode(directory: str, row: Any) -> tuple[Any, Any, float | None, Any]:
    _, key, raw, expire_time, tag, mode, filename, value = row
    if not raw:
        key = pickle.loads(key)  # the caller passed trust=True
    elif isinstance(key, bytes):
        key = bytes(key)
    if mode == _MODE_RAW:
        pass
    elif mode in (_MODE_BINARY, _MODE_TEXT, _MODE_PICKLE):
        data = _read_file(directory, filename) if filename else bytes(value or b"")
        if mode == _MODE_BINARY:
            value = data
        elif mode == _MODE_TEXT:
            value = data.decode("utf-8")
        else:
            value = pickle.loads(data)  # the caller passed trust=True
    else:
        raise _Skipped(f"unknown mode {mode!r}")
    return key, value, expire_time, tag


def _rows(con: sqlite3.Connection) -> Iterator[Any]:
    last = 0
    while True:
        rows = con.execute(_sql.DISKCACHE_CHUNK, (last, _CHUNK)).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield from rows


def import_diskcache(
    cache: _Sink,
    source: str | os.PathLike[str],
    *,
    trust: bool = False,
    progress: Progress | None = None,
    batch: Callable[[], Any] | None = None,
) -> int:
    """Copy every live item (key, value, expiry, tag) of diskcache's *source* into *cache*.

    Returns the number of items copied. Expired items are left out; access statistics
    and store times are not carried over. *progress* is called with ``(done, total)``;
    *batch*, when given, returns a context manager that groups a chunk of writes into one
    transaction.
    """
    source = os.fspath(source)
    if not isinstance(trust, bool):
        raise TypeError(f"trust must be True or False, not {trust!r}")
    databases = source_databases(source)
    connections = [_connect(path) for path in databases]
    try:
        total = sum(con.execute(_sql.DISKCACHE_COUNT).fetchone()[0] for con in connections)
        if not trust:
            for path, con in zip(databases, connections, strict=True):
                if con.execute(_sql.DISKCACHE_HAS_PICKLES).fetchone():
                    raise UntrustedDataError(
                        f"{path} holds pickled keys or values, and diskcache stores pickles "
                        "unsigned: loading one runs whatever code it names, so anyone who "
                        f"could write to {source!r} could run code in this process "
                        "(CVE-2025-69872). Nothing was copied. Pass trust=True (the command: "
                        "--trust) only if you trust everyone who could write to it."
                    )
        done = copied = skipped = 0
        for path, con in zip(databases, connections, strict=True):
            directory = os.path.dirname(path)
            rows = _rows(con)
            while True:
                chunk = list(itertools.islice(rows, _CHUNK))
                if not chunk:
                    break
                added, unreadable = _copy_chunk(cache, directory, chunk, batch)
                copied += added
                skipped += unreadable
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    finally:
        for con in connections:
            con.close()
    if skipped:
        warn_caller(
            f"{skipped} of {done} item(s) of {source!r} were not copied: their value files "
            "are missing or unsafe, or their text is not UTF-8",
            UserWarning,
        )
    return copied


def _copy_chunk(
    cache: _Sink, directory: str, chunk: list[Any], batch: Callable[[], Any] | None
) -> tuple[int, int]:
    """Copy one chunk of rows; return how many were copied and how many were unreadable."""
    copied = unreadable = 0
    now = _clock.now()
    with batch() if batch is not None else nullcontext():
        for row in chunk:
            try:
                key, value, expire_time, tag = _decode(directory, row)
            except (_Skipped, UnicodeDecodeError):
                unreadable += 1
                continue
            expire = None
            if expire_time is not None:
                expire = float(expire_time) - now
                if expire <= 0:
                    continue
            cache.set(key, value, expire=expire, tag=tag, retry=True)
            copied += 1
    return copied, unreadable
