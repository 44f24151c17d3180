"""Out-of-band buffers (``diskstore._values._oob``): arrays in raw value files, read or mapped.

Covers round trips of arrays alone and inside structures (and pandas frames), the file
layout and its header checks, memory-mapped reads that really are file mappings, and the
signature: a changed byte anywhere in a buffer file is a miss, for ordinary and mapped
reads, including after this process verified the file once and remembered it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sqlite3
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _cache_support import mapped_from

import diskstore
from diskstore._common._exceptions import IntegrityError
from diskstore._values import _oob
from diskstore._values._modes import FLAG_FILE, FLAG_OOB, FLAG_SIGNED, KIND_PICKLE, from_row

# Enough to span several hash chunks and to take the threaded path, yet quick to write.
BIG = (_oob.PARALLEL_MIN + 3 * _oob.HASH_CHUNK + 12345) // 8


def row(cache: diskstore.Cache, key: str) -> tuple[int, str | None]:
    with contextlib.closing(
        sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)
    ) as con:
        found = con.execute("SELECT mode, filename FROM Cache WHERE key = ?", (key,)).fetchone()
    assert found is not None
    return from_row(int(found[0])), found[1]


def value_path(cache: diskstore.Cache, key: str) -> str:
    _, filename = row(cache, key)
    assert filename is not None
    return os.path.join(cache.directory, filename)


def flip(path: str, offset: int) -> None:
    # On a file system with coarse timestamps, a change in the clock tick of the write keeps
    # the status change time the writer's remembered digests are keyed by (record_written).
    time.sleep(0.02)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 1]))


@pytest.fixture(autouse=True)
def _forget_verified() -> None:
    _oob.verified_files.clear()


def test_an_array_is_stored_out_of_band_and_reads_back_writable(cache: diskstore.Cache) -> None:
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    mode, _ = row(cache, "a")
    assert mode & ~64 == KIND_PICKLE | FLAG_FILE | FLAG_OOB | FLAG_SIGNED
    assert os.path.getsize(value_path(cache, "a")) < array.nbytes + 4096  # raw, not pickled twice
    got = cache.get("a")
    assert isinstance(got, np.ndarray) and got.flags.writeable
    np.testing.assert_array_equal(got, array)
    got[0] = -1  # a private copy: the next read is unaffected
    assert cache.get("a")[0] == 0


@pytest.mark.parametrize("map_bytes", [1, 1 << 40], ids=["mapped", "heap"])
def test_large_buffers_read_into_private_maps_and_small_ones_from_the_heap(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch, map_bytes: int
) -> None:
    monkeypatch.setattr(_oob, "MAP_BYTES", map_bytes)
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    got = cache.get("a")
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable
    base = got
    while getattr(base, "base", None) is not None:
        base = base.base
    obj = base.obj if isinstance(base, memoryview) else base
    assert isinstance(obj, mmap.mmap) == (map_bytes == 1)
    got[0] = -1  # private: neither the file nor the next read changes
    assert cache.get("a")[0] == 0


def test_structures_of_arrays_and_frames_round_trip(cache: diskstore.Cache) -> None:
    value = {
        "x": np.arange(50_000, dtype=np.int64),
        "f": np.asfortranarray(np.ones((300, 200))),
        "small": np.arange(3),
        "text": "kept in the stream",
        "nested": [np.zeros(20_000, dtype=np.float32), (1, 2)],
    }
    frame = pd.DataFrame({"a": np.arange(40_000.0), "b": np.arange(40_000)})
    cache.set("d", value)
    cache.set("frame", frame)
    assert row(cache, "d")[0] & FLAG_OOB and row(cache, "frame")[0] & FLAG_OOB
    got = cache.get("d")
    assert got.keys() == value.keys() and got["text"] == value["text"]
    for name in ("x", "f", "small"):
        np.testing.assert_array_equal(got[name], value[name])
    assert got["f"].flags.f_contiguous
    np.testing.assert_array_equal(got["nested"][0], value["nested"][0])
    pd.testing.assert_frame_equal(cache.get("frame"), frame)
    pd.testing.assert_frame_equal(cache.get("frame", mmap_mode="r"), frame)


def test_small_arrays_stay_inline(cache: diskstore.Cache) -> None:
    cache.set("s", np.arange(10))
    assert not row(cache, "s")[0] & FLAG_OOB
    np.testing.assert_array_equal(cache.get("s", mmap_mode="r"), np.arange(10))


@pytest.mark.parametrize("mode", ["r", "c"])
def test_a_mapped_read_is_a_file_mapping(cache: diskstore.Cache, mode: str) -> None:
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    got = cache.get("a", mmap_mode=mode)
    np.testing.assert_array_equal(got, array)
    assert mapped_from(got, value_path(cache, "a"))
    assert got.flags.writeable is (mode == "c")
    assert not mapped_from(cache.get("a"), value_path(cache, "a"))


def test_mmap_mode_is_checked(cache: diskstore.Cache) -> None:
    with pytest.raises(ValueError, match="mmap_mode must be 'r', 'c' or None, got 'w\\+'"):
        cache.get("a", mmap_mode="w+")


@pytest.mark.parametrize("where", ["header", "stream", "first buffer byte", "last byte"])
@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_a_changed_byte_anywhere_is_a_miss(
    cache: diskstore.Cache, where: str, mmap_mode: str | None
) -> None:
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    path = value_path(cache, "a")
    size = os.path.getsize(path)
    offsets = {
        "header": 3,
        "stream": 100,
        "first buffer byte": size - array.nbytes,
        "last byte": size - 1,
    }
    flip(path, offsets[where])
    with pytest.warns(diskstore.CorruptionWarning):
        assert cache.get("a", default="miss", mmap_mode=mmap_mode) == "miss"
    assert "a" in cache  # a read deletes nothing; check(fix=True) does
    cache.check(fix=True)
    assert "a" not in cache


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_a_file_changed_after_it_was_verified_is_still_a_miss(
    cache: diskstore.Cache, mmap_mode: str | None
) -> None:
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    time.sleep(0.2)  # older than the settling time: the verified digests are remembered
    np.testing.assert_array_equal(cache.get("a", mmap_mode=mmap_mode), array)
    np.testing.assert_array_equal(cache.get("a", mmap_mode=mmap_mode), array)
    path = value_path(cache, "a")
    assert _oob.verified_files.get(os.stat(path)) is not None
    flip(path, os.path.getsize(path) - array.nbytes // 2)
    with pytest.warns(diskstore.CorruptionWarning):
        assert cache.get("a", default="miss", mmap_mode=mmap_mode) == "miss"


def test_the_writer_remembers_what_it_verified(cache: diskstore.Cache) -> None:
    array = np.arange(BIG, dtype=np.float64)
    cache.set("a", array)
    assert _oob.verified_files.get(os.stat(value_path(cache, "a"))) is not None
    np.testing.assert_array_equal(cache.get("a", mmap_mode="r"), array)


def test_a_file_moved_to_another_row_is_a_miss(cache: diskstore.Cache) -> None:
    cache.set("a", np.arange(BIG, dtype=np.float64))
    cache.set("b", np.arange(BIG, dtype=np.float64) + 1)
    os.replace(value_path(cache, "a"), value_path(cache, "b"))
    with pytest.warns(diskstore.CorruptionWarning):
        assert cache.get("b", default="miss") == "miss"


def test_unsigned_caches_store_buffers_too(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, secret=False) as cache:
        array = np.arange(BIG, dtype=np.float64)
        cache.set("a", array)
        assert row(cache, "a")[0] & (FLAG_OOB | FLAG_SIGNED) == FLAG_OOB
        np.testing.assert_array_equal(cache.get("a", mmap_mode="r"), array)
        np.testing.assert_array_equal(cache.get("a"), array)
    with diskstore.Cache(cache_dir) as signed, pytest.warns(diskstore.CorruptionWarning):
        assert signed.get("a", default="refused") == "refused"


def test_check_verifies_buffer_files(cache: diskstore.Cache) -> None:
    cache.set("a", np.arange(BIG, dtype=np.float64))
    assert not cache.check()
    flip(value_path(cache, "a"), os.path.getsize(value_path(cache, "a")) - 8)
    found = cache.check()
    assert any(issubclass(w.category, diskstore.CorruptionWarning) for w in found)


@pytest.mark.parametrize(
    "damage",
    [
        lambda head: b"XXXXXXXX" + head[8:],
        lambda head: head[:8] + (2**31).to_bytes(4, "big") + head[12:],
        lambda head: head[:16] + (2**60).to_bytes(8, "big") + head[24:],
        lambda head: head[:24] + (7).to_bytes(8, "big") + head[32:],
        lambda head: head[:10],
    ],
)
def test_a_damaged_header_is_an_integrity_error(damage: Any) -> None:
    stream, buffers = _oob.dumps(np.arange(20_000.0), 5)
    pieces, total = _oob.layout(stream, buffers)
    data = b"".join(bytes(p) for p in pieces)
    assert _oob.parse(data, total)[2] == [(total - 160_000, 160_000)]
    with pytest.raises(IntegrityError):
        bad = damage(data)
        _oob.parse(bad, len(bad) if len(bad) < 40 else total)


def test_values_without_arrays_do_not_import_numpy(cache_dir: str) -> None:
    script = (
        "import sys, diskstore\n"
        f"c = diskstore.Cache({cache_dir!r})\n"
        "c.set('k', {'a': bytearray(200_000), 'b': list(range(1000))})\n"
        "assert c.get('k')['a'] == bytearray(200_000)\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


REBUILT: list[int] = []


def _rebuild(array: np.ndarray) -> np.ndarray:
    REBUILT.append(1)
    return array


class _Tracked:
    """Unpickling it is visible in ``REBUILT``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.array,))


def test_check_verifies_without_unpickling(cache: diskstore.Cache) -> None:
    cache.set("t", _Tracked(np.arange(BIG, dtype=np.float64)))
    assert row(cache, "t")[0] & FLAG_OOB
    REBUILT.clear()
    assert not cache.check()
    assert REBUILT == []
    np.testing.assert_array_equal(cache.get("t"), np.arange(BIG, dtype=np.float64))
    assert REBUILT == [1]
