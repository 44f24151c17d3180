"""Checksums of unsigned value files: damage is a miss with one warning, and ``check`` finds it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest

from diskstore import Cache, CorruptionWarning, JSONDisk
from diskstore._fs._checksums import verified

BIG = 100_000


def _column(cache: Cache, key: object, column: str) -> Any:
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    try:
        sql = f"SELECT {column} FROM Cache WHERE key = ?"
        ((value,),) = con.execute(sql, (key,)).fetchall()
    finally:
        con.close()
    return value


def _file_of(cache: Cache, key: object) -> Path:
    return Path(cache.directory) / _column(cache, key, "filename")


def _damage(path: Path, offset: int = 1000) -> None:
    """Overwrite four bytes in place, as a disk error or a stray write would."""
    # A write in the clock tick that published the file could leave its times unchanged on
    # kernels with coarse timestamps; a real disk error comes later than that.
    time.sleep(0.02)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(4)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in old))


def _single_warning(cache: Cache, key: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get(key) is None
    return caught


@pytest.mark.parametrize(
    ("value", "options"),
    [
        pytest.param(os.urandom(BIG), {}, id="bytes"),
        pytest.param("é" * BIG, {"disk_compress_level": 0}, id="text"),
    ],
)
def test_a_damaged_file_reads_as_a_miss_with_one_warning(
    tmp_path: Path, value: object, options: dict[str, int]
) -> None:
    with Cache(str(tmp_path), **options) as cache:
        cache["k"] = value
        assert cache["k"] == value  # read back once: the process now knows the file
        path = _file_of(cache, "k")
        _damage(path)
        caught = _single_warning(cache, "k")
        assert [w.category for w in caught] == [CorruptionWarning]
        assert "checksum" in str(caught[0].message) and "'k'" in str(caught[0].message)
        # As for a damaged signed file: the entry, and its file as no longer referenced.
        problems = [w for w in cache.check() if w.category is CorruptionWarning]
        assert len(problems) == 1 and "checksum" in str(problems[0].message)
        assert path.exists()  # a read never deletes; check(fix=True) does
        cache.check(fix=True)
        assert not path.exists()
        assert "k" not in cache
        assert cache.check() == []


def test_damage_is_found_by_another_process_and_by_check(tmp_path: Path) -> None:
    """The memory of verified files is per process: a fresh reader hashes the file."""
    with Cache(str(tmp_path)) as cache:
        cache["k"] = os.urandom(BIG)
        path = _file_of(cache, "k")
    _damage(path, offset=BIG - 4)
    verified.clear()  # as in a process that never read it
    with Cache(str(tmp_path)) as cache:
        assert [w.category for w in _single_warning(cache, "k")] == [CorruptionWarning]
        assert [w.category for w in cache.check()].count(CorruptionWarning) == 1


def test_pop_and_peek_of_a_damaged_file(tmp_path: Path) -> None:
    with Cache(str(tmp_path)) as cache:
        cache.push(os.urandom(BIG))
        cache["p"] = os.urandom(BIG)
        _damage(_file_of(cache, "p"))
        with pytest.warns(CorruptionWarning, match="checksum"):
            assert cache.pop("p") is None
        ((key,),) = [(k,) for k in cache]
        _damage(_file_of(cache, key))
        with pytest.warns(CorruptionWarning, match="checksum"):
            assert cache.peek() == (None, None)


def test_truncated_file_is_damage(tmp_path: Path) -> None:
    with Cache(str(tmp_path)) as cache:
        cache["k"] = os.urandom(BIG)
        path = _file_of(cache, "k")
        with open(path, "r+b") as handle:
            handle.truncate(BIG - 1)
        assert [w.category for w in _single_warning(cache, "k")] == [CorruptionWarning]


def test_unsigned_serializers_files_have_checksums(tmp_path: Path) -> None:
    # Uncompressed, the JSON is stored as it is, in a file.
    value = [os.urandom(32).hex() for _ in range(2000)]
    with Cache(str(tmp_path), disk=JSONDisk, disk_compress_level=0) as cache:
        cache["k"] = value
        assert cache["k"] == value
        _damage(_file_of(cache, "k"), offset=5000)
        assert [w.category for w in _single_warning(cache, "k")] == [CorruptionWarning]


def test_a_large_file_is_checked_past_its_first_chunk(tmp_path: Path) -> None:
    value = os.urandom(5 << 20)
    with Cache(str(tmp_path)) as cache:
        cache["k"] = value
        verified.clear()
        assert cache["k"] == value
        _damage(_file_of(cache, "k"), offset=4 << 20)
        assert [w.category for w in _single_warning(cache, "k")] == [CorruptionWarning]


def test_read_returns_the_file_unverified(tmp_path: Path) -> None:
    """``read=True`` hands back the file itself: verifying it would read it twice."""
    with Cache(str(tmp_path)) as cache:
        cache["k"] = os.urandom(BIG)
        _damage(_file_of(cache, "k"))
        with cache.read("k") as handle:
            assert len(handle.read()) == BIG


_DISKCACHE = textwrap.dedent(
    """
    import sys
    import diskcache

    cache = diskcache.Cache(sys.argv[1])
    cache.set("theirs", b"d" * 100_000)
    cache.set("overwritten", b"o" * 100_000)  # a row diskstore wrote, with its checksum
    cache.set("text", "t" * 100_000)
    cache.close()
    """
)


def test_files_diskcache_wrote_read_unverified(tmp_path: Path) -> None:
    pytest.importorskip("diskcache")
    directory = str(tmp_path / "shared")
    with Cache(directory) as cache:
        cache["overwritten"] = os.urandom(BIG)
    done = subprocess.run(
        [sys.executable, "-c", _DISKCACHE, directory], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Cache(directory) as cache:
            assert cache["theirs"] == b"d" * 100_000
            assert cache["overwritten"] == b"o" * 100_000  # diskcache left the old checksum
            assert cache["text"] == "t" * 100_000
            assert cache.check() == []


def _set_sig(cache: Cache, key: object, sig: bytes) -> None:
    con = sqlite3.connect(os.path.join(cache.directory, "cache.db"))
    try:
        with con:
            con.execute("UPDATE Cache SET sig = ? WHERE key = ?", (sig, key))
    finally:
        con.close()


def _sig_of(cache: Cache, key: object) -> bytes:
    return bytes(_column(cache, key, "sig"))


def test_the_checksum_is_the_xxh3_hash_of_the_file(tmp_path: Path) -> None:
    import xxhash

    with Cache(str(tmp_path)) as cache:
        cache["k"] = os.urandom(BIG)
        assert _sig_of(cache, "k") == xxhash.xxh3_64_digest(_file_of(cache, "k").read_bytes())


def test_crc32_checksums_of_earlier_versions_are_still_verified(tmp_path: Path) -> None:
    """Rows an earlier diskstore wrote carry a four-byte CRC-32: a sound file reads, a
    damaged one is a miss with one warning, and ``check`` tells them apart."""
    with Cache(str(tmp_path)) as cache:
        cache["sound"] = sound = os.urandom(BIG)
        cache["damaged"] = os.urandom(BIG)
        for key in ("sound", "damaged"):
            crc = zlib.crc32(_file_of(cache, key).read_bytes())
            _set_sig(cache, key, crc.to_bytes(4, "big"))
        damaged, sound_name = _file_of(cache, "damaged"), _file_of(cache, "sound").name
        _damage(damaged)
        verified.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert cache["sound"] == sound
        assert [w.category for w in _single_warning(cache, "damaged")] == [CorruptionWarning]
        problems = [str(w.message) for w in cache.check()]
        assert any("failed its checksum" in p for p in problems), problems
        assert all(damaged.name in p and sound_name not in p for p in problems), problems


def test_a_checksum_of_another_length_is_malformed(tmp_path: Path) -> None:
    with Cache(str(tmp_path)) as cache:
        cache["k"] = os.urandom(BIG)
        _set_sig(cache, "k", b"\x00" * 6)
        verified.clear()
        caught = _single_warning(cache, "k")
        assert [w.category for w in caught] == [CorruptionWarning]
        assert "malformed checksum" in str(caught[0].message)
