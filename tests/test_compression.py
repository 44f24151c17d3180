"""zstandard compression of payloads, in rows and in value files.

A payload of at least ``disk_compress_threshold`` bytes is compressed at
``disk_compress_level`` (0 disables) when that makes it smaller; large values and
``set(..., read=True)`` streams go to files through a streaming compressor. The row's
``mode`` says whether it is compressed, so a cache reads entries written at any level.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import zstandard
from _cache_support import code_row

import diskstore
from diskstore._values._modes import (
    FLAG_FILE,
    FLAG_SIGNED,
    FLAG_ZSTD,
    KIND_BYTES,
    KIND_MASK,
    KIND_NATIVE,
    KIND_TEXT,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def db(cache: diskstore.Cache) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)


def stored(cache: diskstore.Cache, key: str) -> dict[str, Any]:
    with contextlib.closing(db(cache)) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM Cache WHERE key = ?", (key,)).fetchone()
    assert row is not None, key
    return code_row(dict(row))


def file_bytes(cache: diskstore.Cache, key: str) -> bytes:
    return (Path(cache.directory) / str(stored(cache, key)["filename"])).read_bytes()


# -- when payloads are compressed ---------------------------------------------------------
def test_defaults(cache: diskstore.Cache) -> None:
    assert cache.disk_compress_threshold == 1024
    assert cache.disk_compress_level == 3


@pytest.mark.parametrize("kind", [bytes, str])
def test_the_threshold_is_inclusive(cache: diskstore.Cache, kind: type) -> None:
    below = kind(b"a" * 1023) if kind is bytes else "a" * 1023
    at = kind(b"a" * 1024) if kind is bytes else "a" * 1024
    cache["below"] = below
    cache["at"] = at
    assert stored(cache, "below")["mode"] == KIND_NATIVE
    expected = (KIND_BYTES if kind is bytes else KIND_TEXT) | FLAG_ZSTD
    assert stored(cache, "at")["mode"] & ~FLAG_SIGNED == expected
    assert cache["below"] == below and cache["at"] == at


def test_a_custom_threshold(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk_compress_threshold=100) as cache:
        cache["k"] = b"a" * 100
        assert stored(cache, "k")["mode"] & FLAG_ZSTD
        cache["small"] = b"a" * 99
        assert stored(cache, "small")["mode"] == KIND_NATIVE


@pytest.mark.parametrize(
    ("value", "placement"),
    [
        (os.urandom(4000), "row"),
        (os.urandom(100_000), "file"),
        ([os.urandom(4000)], "row"),
        ([os.urandom(100_000)], "file"),
    ],
    ids=["bytes-row", "bytes-file", "pickle-row", "pickle-file"],
)
def test_a_payload_that_does_not_shrink_is_stored_as_is(
    cache: diskstore.Cache, value: Any, placement: str
) -> None:
    cache["k"] = value
    row = stored(cache, "k")
    assert not row["mode"] & FLAG_ZSTD
    assert bool(row["mode"] & FLAG_FILE) == (placement == "file")
    if placement == "file" and isinstance(value, bytes):
        assert file_bytes(cache, "k") == value
    assert cache["k"] == value


@pytest.mark.parametrize(
    "value",
    [b"z" * 5000, "zé" * 3000, ["z"] * 3000, "zé" * 100_000, ["z"] * 100_000],
    ids=["bytes-row", "text-row", "pickle-row", "text-file", "pickle-file"],
)
def test_a_compressible_payload_is_compressed(cache: diskstore.Cache, value: Any) -> None:
    cache["k"] = value
    row = stored(cache, "k")
    assert row["mode"] & FLAG_ZSTD
    if row["mode"] & FLAG_FILE:
        data = file_bytes(cache, "k")
        assert data.startswith(ZSTD_MAGIC)
        assert row["size"] == len(data) < row["vsize"] // 10
    else:
        assert len(row["value"]) < 1000
    assert cache["k"] == value


def test_bytes_in_a_file_are_the_file_itself(cache: diskstore.Cache) -> None:
    value = b"z" * 200_000  # compressible, yet stored as given: the file is the value
    cache["k"] = value
    row = stored(cache, "k")
    assert row["mode"] & FLAG_FILE and not row["mode"] & FLAG_ZSTD
    assert file_bytes(cache, "k") == value
    with cache.get("k", read=True) as handle:
        assert Path(handle.name).read_bytes() == value


def test_compressed_files_decompress_with_plain_zstd(cache: diskstore.Cache) -> None:
    value = "plain zstd frame " * 10_000
    cache["k"] = value
    data = file_bytes(cache, "k")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(data) == value.encode()


@pytest.mark.parametrize("value", [b"z" * 5000, b"z" * 200_000, ["z"] * 3000, "z" * 5000])
def test_level_zero_disables_compression(cache_dir: str, value: Any) -> None:
    with diskstore.Cache(cache_dir, disk_compress_level=0) as cache:
        cache["k"] = value
        cache.set("stream", io.BytesIO(b"z" * 200_000), read=True)
        assert not stored(cache, "k")["mode"] & FLAG_ZSTD
        assert not stored(cache, "stream")["mode"] & FLAG_ZSTD
        assert cache["k"] == value


def test_higher_levels_compress_at_least_as_well(cache_dir: str, tmp_path: Path) -> None:
    value = " ".join(str(number * 7919 % 10007) for number in range(50_000)).encode()
    sizes = {}
    for level in (1, 19):
        with diskstore.Cache(str(tmp_path / str(level)), disk_compress_level=level) as cache:
            cache["k"] = value
            sizes[level] = stored(cache, "k")["size"]
            assert cache["k"] == value
    assert sizes[19] <= sizes[1]


# -- reading entries written at another level ----------------------------------------------
VALUES: dict[str, Any] = {
    "small": b"s",
    "row": b"row " * 1000,
    "text": "text " * 1000,
    "pickled": {"pickled": ["x"] * 2000},
    "file": b"file " * 50_000,
    "random-file": os.urandom(100_000),
    "pickled-file": [b"file " * 50_000],
}


@pytest.mark.parametrize(("first", "second"), [(0, 19), (19, 0), (3, 0), (0, 3)])
def test_entries_read_back_after_reopening_at_another_level(
    cache_dir: str, first: int, second: int
) -> None:
    with diskstore.Cache(cache_dir, disk_compress_level=first) as cache:
        for key, value in VALUES.items():
            cache[f"{key}-{first}"] = value
        cache.set(f"stream-{first}", io.BytesIO(b"stream " * 50_000), read=True)
    with diskstore.Cache(cache_dir, disk_compress_level=second) as cache:
        assert cache.disk_compress_level == second
        for key, value in VALUES.items():
            assert cache[f"{key}-{first}"] == value
            cache[f"{key}-{second}"] = value
        with cache.read(f"stream-{first}") as handle:
            assert handle.read() == b"stream " * 50_000
        compressed = {key for key in cache if stored(cache, key)["mode"] & FLAG_ZSTD}
        assert bool(compressed) == bool(first or second)
    with diskstore.Cache(cache_dir) as cache:  # the last level given is the stored one
        assert cache.disk_compress_level == second
        for key, value in VALUES.items():
            assert cache[f"{key}-{first}"] == value
            assert cache[f"{key}-{second}"] == value


def test_changing_the_level_at_runtime(cache: diskstore.Cache) -> None:
    cache["before"] = b"z" * 5000
    assert cache.reset("disk_compress_level", 0) == 0
    cache["after"] = b"z" * 5000
    assert stored(cache, "before")["mode"] & FLAG_ZSTD
    assert not stored(cache, "after")["mode"] & FLAG_ZSTD
    assert cache["before"] == cache["after"] == b"z" * 5000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("disk_compress_level", -1),
        ("disk_compress_level", 23),
        ("disk_compress_level", "3"),
        ("disk_compress_level", 3.0),
        ("disk_compress_level", True),
        ("disk_compress_threshold", -1),
        ("disk_compress_threshold", None),
    ],
)
def test_bad_compression_settings_are_refused(cache_dir: str, name: str, value: Any) -> None:
    with pytest.raises(diskstore.SettingsError, match=name):
        diskstore.Cache(cache_dir, **{name: value})
    with diskstore.Cache(cache_dir) as cache:
        with pytest.raises(diskstore.SettingsError, match=name):
            cache.reset(name, value)
        assert getattr(cache, name) == {"disk_compress_level": 3}.get(name, 1024)


# -- reading files back as files -------------------------------------------------------------
@pytest.mark.parametrize("compressible", [True, False])
def test_read_returns_a_binary_file_of_the_original_bytes(
    cache: diskstore.Cache, compressible: bool
) -> None:
    value = b"0123456789" * 100_000 if compressible else os.urandom(1_000_000)
    cache["k"] = value
    assert not stored(cache, "k")["mode"] & FLAG_ZSTD
    for handle in (cache.read("k"), cache.get("k", read=True)):
        with handle:
            assert Path(handle.name).read_bytes() == value  # the value's real path
            assert handle.readable()
            assert handle.read(10) == value[:10]
            chunks = [handle.read(65_536)]
            while chunks[-1]:
                chunks.append(handle.read(65_536))
            assert value[:10] + b"".join(chunks) == value
            assert handle.read() == b""
    value_and_tag = cache.get("k", read=True, tag=True)
    with value_and_tag[0] as handle:
        assert handle.read() == value
    assert value_and_tag[1] is None


def test_read_of_a_row_returns_the_value_itself(cache: diskstore.Cache) -> None:
    cache["short"] = b"short"
    cache["compressed-row"] = b"z" * 5000
    assert cache.read("short") == b"short"
    assert cache.read("compressed-row") == b"z" * 5000
    with pytest.raises(KeyError):
        cache.read("missing")


class Chunks(io.RawIOBase):
    """A readable stream producing *total* bytes without ever holding them all."""

    def __init__(self, total: int, pattern: bytes) -> None:
        self.left = total
        self.pattern = pattern
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if size < 0:
            size = self.left
        size = min(size, self.left, 1 << 20)
        self.left -= size
        whole, part = divmod(size, len(self.pattern))
        return self.pattern * whole + self.pattern[:part]


@pytest.mark.parametrize("pattern", [b"compressible! ", None], ids=["compressible", "random"])
def test_streams_are_written_and_read_in_bounded_memory(
    cache: diskstore.Cache, pattern: bytes | None
) -> None:
    total = 64 * 2**20
    source = Chunks(total, pattern if pattern is not None else os.urandom(1 << 16))
    tracemalloc.start()
    try:
        cache.set("k", source, read=True)
        _, peak_write = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        seen = 0
        with cache.read("k") as handle:
            while chunk := handle.read(1 << 20):
                seen += len(chunk)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == total
    assert source.reads > 32  # consumed in chunks
    assert peak_write < 16 * 2**20
    assert peak_read < 16 * 2**20
    row = stored(cache, "k")
    assert row["vsize"] == total
    assert not row["mode"] & FLAG_ZSTD  # a stream is stored as given
    assert row["mode"] & KIND_MASK == KIND_BYTES and row["mode"] & FLAG_FILE


def test_a_stream_must_yield_bytes(cache: diskstore.Cache) -> None:
    with pytest.raises(TypeError, match="value"):
        cache.set("k", io.StringIO("text"), read=True)
    with pytest.raises(TypeError, match="value"):
        cache.set("k", b"not a file", read=True)
    assert "k" not in cache
    assert list(cache.disk.files.scan()) == []


def test_an_empty_stream(cache: diskstore.Cache) -> None:
    cache.set("k", io.BytesIO(b""), read=True)
    with cache.read("k") as handle:
        assert handle.read() == b""
    assert cache["k"] == b""


def test_a_truncated_compressed_file_is_a_miss(cache: diskstore.Cache) -> None:
    cache["k"] = b"z" * 200_000
    path = Path(cache.directory) / stored(cache, "k")["filename"]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert cache.get("k", "miss") == "miss"
