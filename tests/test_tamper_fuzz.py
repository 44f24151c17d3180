"""Tamper fuzzing: every byte of every header, tag, signature and length, changed.

Each case stores one entry, changes one thing in its row or value file the way someone who
can write to the directory could, then reads it every way the API offers. The only
outcomes allowed are the stored value, a miss with a ``CorruptionWarning``, or one of the
documented errors (a ``DiskStoreError``; ``KeyError`` from ``[]`` on a miss). Anything else
(``struct.error``, ``UnicodeDecodeError``, ``zstandard`` or ``pickle`` errors, ...) fails.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore

BIG = 70_000
#: One entry of each shape the store writes: (key, value, set() keyword arguments).
SHAPES: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "signed-inline": ("k", {"a": list(range(20))}, {}),
    "compressed-inline": ("k", ["compress me"] * 300, {"tag": "t"}),
    "compressed-text": ("k", "text " * 400, {"expire": 1000}),
    "native-str": ("k", "short", {"tag": b"bytes-tag"}),
    "signed-file": ("k", [os.urandom(BIG)], {}),
    "bytes-file": ("k", os.urandom(BIG), {"tag": 7}),
    "pickled-key": (("k", object.__name__, frozenset({1})), {"v": 1}, {}),
}


def _db(directory: str) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(directory, "cache.db"), isolation_level=None)


def _bytes_mutations(data: bytes, limit: int | None = None) -> Iterator[bytes]:
    """Every byte (up to *limit*) flipped two ways, then truncations and an extension."""
    end = len(data) if limit is None else min(len(data), limit)
    for index in range(end):
        for mask in (0x01, 0xFF):
            out = bytearray(data)
            out[index] ^= mask
            yield bytes(out)
    for cut in (0, 1, 8, 40, len(data) - 1):
        if 0 <= cut < len(data):
            yield data[:cut]
    yield data + b"\0"


def _int_mutations(value: int) -> Iterator[Any]:
    """Every byte of a 64-bit length changed, the extremes, and values of the wrong type."""
    packed = struct.pack(">q", value)
    for index in range(8):
        for mask in (0x01, 0xFF):
            out = bytearray(packed)
            out[index] ^= mask
            yield struct.unpack(">q", bytes(out))[0]
    yield from (-1, 0, 2**63 - 1, -(2**63), 1.5, "12", b"\x00" * 8, None)


def _mutations(entry: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    value = entry["value"]
    if isinstance(value, bytes):
        for changed in _bytes_mutations(value, limit=48):  # length + tag header, and beyond
            yield "value", changed
    if entry["sig"] is not None:
        for changed in _bytes_mutations(entry["sig"]):
            yield "sig", changed
    for column in ("vsize", "size"):
        for changed in _int_mutations(entry[column]):
            yield column, changed
    for bit in range(11):  # every bit a stored mode uses (see diskstore._values._modes)
        yield "mode", entry["mode"] ^ (1 << bit)
    yield from (("mode", -1), ("mode", 2**40), ("mode", "pickle"), ("mode", None))
    tag = entry["tag"]
    tag_bytes = tag.encode() if isinstance(tag, str) else tag if isinstance(tag, bytes) else b"t"
    for changed in _bytes_mutations(tag_bytes):
        yield "tag", changed
    yield from (("tag", b"\xff\xfe"), ("tag", 2**63 - 1), ("tag", 1.5), ("tag", None))
    yield from (("expire_time", "soon"), ("expire_time", b"\x00"), ("expire_time", -1.0))
    key = entry["key"]
    if isinstance(key, bytes) and not entry["raw"]:
        for changed in _bytes_mutations(key, limit=48):
            yield "key", changed
    yield from (("raw", 1 - entry["raw"]), ("raw", 7))


def _read_every_way(cache: diskstore.Cache, key: Any) -> None:
    cache.get(key, "miss", expire_time=True, tag=True)
    with contextlib.suppress(KeyError):
        cache[key]
    assert key in cache or key not in cache
    for found in list(cache):
        cache.get(found)
    cache.check()
    cache.touch(key, 60)
    with contextlib.suppress(KeyError):  # empty, if the damaged row was not counted
        cache.peekitem(last=False)
    cache.pop(key, "miss", expire_time=True, tag=True)


def _file_mutations(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    yield from _bytes_mutations(data[:64])  # the zstandard frame header lives here
    yield data[: len(data) // 2]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_tampered_row_raises_an_undocumented_exception(tmp_path: Path, shape: str) -> None:
    key, value, options = SHAPES[shape]
    cases = 0
    unexpected: list[str] = []
    with (
        diskstore.Cache(str(tmp_path / "cache")) as cache,
        contextlib.closing(_db(cache.directory)) as con,
    ):
        con.row_factory = sqlite3.Row
        cache.set(key, value, **options)
        entry = dict(con.execute("SELECT * FROM Cache").fetchone())
        file_path = Path(cache.directory, entry["filename"]) if entry["filename"] else None
        changes: list[tuple[str, Any]] = list(_mutations(entry))
        if file_path is not None:
            changes += [("file", data) for data in _file_mutations(file_path)]
        for column, changed in changes:
            cache.clear()
            cache.set(key, value, **options)
            if column == "file":
                current = con.execute("SELECT filename FROM Cache").fetchone()[0]
                Path(cache.directory, current).write_bytes(changed)
            else:
                try:
                    con.execute(f"UPDATE Cache SET {column} = ?", (changed,))
                except sqlite3.IntegrityError:
                    continue  # the schema itself refuses this change (NOT NULL)
            cases += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", diskstore.CorruptionWarning)
                # A mode changed to diskcache's pickle: an untrusted entry, also a miss.
                warnings.simplefilter("ignore", diskstore.DiskcacheDirectoryWarning)
                try:
                    _read_every_way(cache, key)
                except diskstore.DiskStoreError:
                    pass  # documented: the database itself is damaged
                except Exception as exc:
                    name = type(exc).__name__
                    unexpected.append(
                        f"{column}={changed!r:.40}: {name}: {exc!s:.80} {_where(exc)}"
                    )
        cache.check(fix=True)
    assert not unexpected, "\n".join(unexpected)
    assert cases > 50


def _where(exc: BaseException) -> str:
    """The innermost diskstore line an exception passed through, for the failure report."""
    tb = exc.__traceback__
    where = "?"
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "/diskstore/" in name:
            where = f"{os.path.basename(name)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where
