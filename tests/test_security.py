"""What someone who can write to a cache directory can and cannot make diskstore do.

Each attack writes to the database or the value files directly, as such an attacker would,
and then drives every public read path. The promise under test (see ``docs/security.md``):
planted or tampered entries are misses with a :class:`diskstore.CorruptionWarning`, and no
planted pickle is ever loaded while signing is on. A positive control shows the planted
pickle does run code when signing is off, so the tests would notice a bypass.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import sqlite3
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore._storage._fingerprint import fingerprint
from diskstore._values._disk import Disk
from diskstore._values._keys import encode_canonical
from diskstore._values._modes import (
    FLAG_FILE,
    FLAG_ZSTD,
    KIND_BYTES,
    KIND_MASK,
    KIND_PICKLE,
    KIND_TEXT,
    MODE_LIMIT,
    ROW_SIGNED,
    from_row,
    to_row,
)
from diskstore._values._rows import Stored
from diskstore._values._signing import Signer

QUEUE_KEY = 500_000_000_000_000


class Exploit:
    """Pickles to a call of ``os.mkdir(path)``: loading it leaves a visible marker."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.mkdir, (self.path,))


def db(cache: diskstore.Cache) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)


def plant(
    cache: diskstore.Cache,
    key: Any,
    mode: int,
    *,
    value: Any = None,
    filename: str | None = None,
    size: int = 0,
    vsize: int = 0,
    sig: bytes | None = None,
    raw: int = 1,
    ns: int = 0,
) -> None:
    """Insert a row behind the cache's back (the table's triggers count it).

    *mode* is a mode as the code sees it, stored as the cache would store it; anything that
    is not a valid mode is stored as it is.
    """
    stored_mode = to_row(mode) if type(mode) is int and 0 <= mode < MODE_LIMIT else mode
    with contextlib.closing(db(cache)) as con:
        con.execute(
            "INSERT INTO Cache (key, raw, store_time, access_time, mode, size, vsize,"
            " filename, value, sig) VALUES (?, ?, 0, 0, ?, ?, ?, ?, ?, ?)",
            (key, raw + 2 * ns, stored_mode, size, vsize, filename, value, sig),
        )


def attacker_disk(
    cache: diskstore.Cache, secret: bytes | None, *, file: bool = False, compress: bool = False
) -> Disk:
    """The library itself in an attacker's hands: well-formed rows, without the secret."""
    return Disk(
        cache.directory,
        min_file_size=0 if file else 2**30,
        compress_threshold=0,
        compress_level=3 if compress else 0,
        signer=Signer(secret),
    )


def plant_stored(cache: diskstore.Cache, key: Any, stored: Stored, disk: Disk) -> None:
    if stored.pending is not None:
        disk.files.publish(stored.pending)
    plant(
        cache,
        key,
        stored.mode,
        value=stored.value,
        filename=stored.filename,
        size=stored.size,
        vsize=stored.vsize,
        sig=stored.sig,
    )


PLANTS = [
    "raw-pickle",
    "unsigned",
    "other-secret",
    "compressed",
    "file-unsigned",
    "file-other-secret",
]
OTHER_SECRET = b"a leaked, but different, secret"


def plant_exploit(cache: diskstore.Cache, key: Any, how: str, marker: Path) -> None:
    if how == "raw-pickle":  # what an attacker who ignores the format would write
        data = pickle.dumps(Exploit(str(marker)))
        plant(cache, key, KIND_PICKLE, value=data, vsize=len(data))
        return
    secret = OTHER_SECRET if how.endswith("other-secret") or how == "compressed" else None
    # A long, compressible path: "a/./././b" names "a/b".
    path = str(marker.parent) + "/." * 300 + "/" + marker.name
    disk = attacker_disk(cache, secret, file=how.startswith("file"), compress=how == "compressed")
    stored = disk.store_row(Exploit(path), False, ns=0, db_key=key, raw=True)
    assert stored.mode & KIND_MASK == KIND_PICKLE
    assert bool(stored.mode & FLAG_FILE) == how.startswith("file")
    assert bool(stored.mode & FLAG_ZSTD) == (how == "compressed")
    plant_stored(cache, key, stored, disk)


def drive(cache: diskstore.Cache, op: str, key: Any) -> None:
    """Run one public read path over *key* (warnings are the caller's business)."""
    if op == "get":
        assert cache.get(key, "miss") == "miss"
    elif op == "getitem":
        with pytest.raises(KeyError):
            cache[key]
    elif op == "read":
        with pytest.raises(KeyError):
            cache.read(key)
    elif op == "get_flags":
        assert cache.get(key, "miss", expire_time=True, tag=True) == ("miss", None, None)
    elif op == "pop":
        assert cache.pop(key, "miss") == "miss"
    elif op == "peekitem":
        with pytest.raises(KeyError):
            cache.peekitem()
    elif op == "peekitem_first":
        with pytest.raises(KeyError):
            cache.peekitem(last=False)
    elif op == "peek":
        assert cache.peek() == (None, None)
    elif op == "pull":
        assert cache.pull(side="back") == (None, None)
    elif op == "incr":
        with contextlib.suppress(diskstore.DiskStoreError):  # the value is garbage either way
            cache.incr(key)
    elif op == "iterate_and_get":
        for found in list(cache):
            cache.get(found)
    elif op == "check":
        problems = cache.check()
        assert any(w.category is diskstore.CorruptionWarning for w in problems)
    elif op == "check_fix":
        cache.check(fix=True)
        assert cache.check() == []
        assert len(cache) == 0
    else:  # pragma: no cover
        raise AssertionError(op)


OPS = [
    "get",
    "getitem",
    "read",
    "get_flags",
    "pop",
    "peekitem",
    "peekitem_first",
    "peek",
    "pull",
    "incr",
    "iterate_and_get",
    "check",
    "check_fix",
]


@pytest.mark.parametrize("how", PLANTS)
@pytest.mark.parametrize("op", OPS)
def test_a_planted_pickle_never_runs(tmp_path: Path, cache_dir: str, how: str, op: str) -> None:
    marker = tmp_path / "marker"
    with diskstore.Cache(cache_dir) as cache:
        plant_exploit(cache, QUEUE_KEY, how, marker)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            drive(cache, op, QUEUE_KEY)
        assert not marker.exists(), f"{op} loaded a planted pickle ({how})"
        if op not in ("check", "check_fix", "incr"):
            assert [w.category for w in caught] == [diskstore.CorruptionWarning]
            if op in ("pop", "peekitem", "peekitem_first", "peek", "pull"):
                assert QUEUE_KEY not in cache  # operations that take the entry drop it
            else:
                assert QUEUE_KEY in cache  # a read never deletes: only check(fix=True) does
    assert not marker.exists()


@pytest.mark.parametrize("how", ["unsigned", "file-unsigned"])
def test_positive_control_the_planted_pickle_runs_when_signing_is_off(
    tmp_path: Path, cache_dir: str, how: str
) -> None:
    """Proves the exploit is live, so the tests above would see a bypass; also shows what
    ``secret=False`` gives up."""
    marker = tmp_path / "marker"
    with diskstore.Cache(cache_dir, secret=False) as cache:
        plant_exploit(cache, "k", how, marker)
        cache.get("k")
    assert marker.is_dir()


def test_a_pickle_stored_by_a_cache_with_another_secret_never_runs(
    tmp_path: Path, cache_dir: str
) -> None:
    marker = tmp_path / "marker"
    with diskstore.Cache(cache_dir, secret=b"the attacker's secret") as attacker:
        attacker.set("k", Exploit(str(marker)))
        attacker.set(("tuple", "key"), Exploit(str(marker)))
    with pytest.raises(diskstore.SecretMismatchError):
        diskstore.Cache(cache_dir, secret=b"the owner's secret")
    assert not marker.exists()
    # The fingerprint is not a secret: an attacker can record the owner's. Entries signed
    # with another secret are then misses, one by one.
    with contextlib.closing(sqlite3.connect(os.path.join(cache_dir, "cache.db"))) as con:
        with con:
            con.execute(
                "UPDATE diskstore_settings SET value = ? WHERE name = 'secret_fingerprint'",
                (fingerprint(b"the owner's secret"),),
            )
    with diskstore.Cache(cache_dir, secret=b"the owner's secret") as cache:
        with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
            assert cache.get("k") is None
        with pytest.warns(diskstore.CorruptionWarning):
            assert cache.pop(("tuple", "key"), "miss") == "miss"
    assert not marker.exists()
    with contextlib.closing(sqlite3.connect(os.path.join(cache_dir, "cache.db"))) as con:
        with con:
            con.execute("DELETE FROM diskstore_settings WHERE name = 'secret_fingerprint'")
    with diskstore.Cache(cache_dir, secret=b"the attacker's secret") as attacker:
        attacker.set("k", Exploit(str(marker)))
        attacker.get("k")  # control: the right secret does load it
    assert marker.is_dir()


# -- keys ---------------------------------------------------------------------------------
KEY_PLANTS = ["unsigned", "other-secret"]


def plant_exploit_key(cache: diskstore.Cache, how: str, marker: Path) -> None:
    disk = attacker_disk(cache, None if how == "unsigned" else OTHER_SECRET)
    key, raw = disk.put(Exploit(str(marker)))
    assert not raw
    plant(cache, key, 0, value=1, raw=0)


def canonical_mark() -> bytes:
    """The bytes the cache puts before a canonical key encoding."""
    key, raw = Disk("unused").put(("x",))
    encoded = encode_canonical(("x",))
    assert not raw and key.endswith(encoded)
    return bytes(key[: len(key) - len(encoded)])


@pytest.mark.parametrize("how", KEY_PLANTS)
@pytest.mark.parametrize(
    "op", ["iter", "reversed", "iterkeys", "iterkeys_reverse", "peekitem", "check_fix"]
)
def test_a_planted_pickled_key_never_runs(
    tmp_path: Path, cache_dir: str, how: str, op: str
) -> None:
    marker = tmp_path / "marker"
    with diskstore.Cache(cache_dir) as cache:
        cache.set("plain", 1)
        plant_exploit_key(cache, how, marker)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if op == "iter":
                assert list(cache) == ["plain"]
            elif op == "reversed":
                assert list(reversed(cache)) == ["plain"]
            elif op == "iterkeys":
                assert list(cache.iterkeys()) == ["plain"]
            elif op == "iterkeys_reverse":
                assert list(cache.iterkeys(reverse=True)) == ["plain"]
            elif op == "peekitem":
                assert cache.peekitem() == ("plain", 1)
            else:
                assert cache.check(fix=True)
                assert cache.check() == []
                assert list(cache) == ["plain"]
        if op != "check_fix":
            assert diskstore.CorruptionWarning in [w.category for w in caught]
    assert not marker.exists()


def test_a_deeply_nested_planted_key_is_skipped_not_a_crash(cache_dir: str) -> None:
    """The canonical key decoder must survive hostile nesting (no RecursionError)."""
    with diskstore.Cache(cache_dir) as cache:
        cache.set("plain", 1)
        nested = canonical_mark() + b"(\x00\x00\x00\x01" * 100_000 + b"N"
        plant(cache, nested, 0, value=1, raw=0)
        with pytest.warns(diskstore.CorruptionWarning):
            assert list(cache) == ["plain"]
        problems = cache.check(fix=True)
        assert [w.category for w in problems] == [diskstore.CorruptionWarning]
        assert list(cache) == ["plain"]


@pytest.mark.parametrize(
    "encoded",
    [
        b"(\xff\xff\xff\xff",  # a count far beyond the data
        b"s\x00\x00\x00\x05ab",  # truncated
        b"Z",  # unknown tag
        b"NN",  # trailing bytes
        b"i\x00\x00\x00\x03abc",  # not a number
    ],
)
def test_a_malformed_canonical_key_is_skipped(cache_dir: str, encoded: bytes) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache.set("plain", 1)
        plant(cache, canonical_mark() + encoded, 0, value=1, raw=0)
        with pytest.warns(diskstore.CorruptionWarning):
            assert list(cache) == ["plain"]


# -- decompression --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bytes", "pickle"])
@pytest.mark.parametrize("secret", [None, OTHER_SECRET], ids=["unsigned", "other-secret"])
def test_a_planted_decompression_bomb_is_not_expanded(
    cache_dir: str, kind: str, secret: bytes | None
) -> None:
    """An attacker cannot make a reader inflate a tiny row into a huge allocation: a
    compressed payload is authenticated before it is decompressed."""
    size = 64 * 2**20
    with diskstore.Cache(cache_dir) as cache:
        disk = attacker_disk(cache, secret, compress=True)
        value = bytes(size) if kind == "bytes" else [bytes(size)]
        stored = disk.store_row(value, False, ns=0, db_key="bomb", raw=True)
        del value
        assert stored.mode & FLAG_ZSTD and not stored.mode & FLAG_FILE
        assert len(stored.value) < 64 * 1024
        plant_stored(cache, "bomb", stored, disk)
        tracemalloc.start()
        try:
            with pytest.warns(diskstore.CorruptionWarning, match="'bomb'"):
                assert cache.get("bomb", "miss") == "miss"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2**20


@pytest.mark.parametrize("kind", [KIND_BYTES, KIND_TEXT])
def test_no_flipped_byte_of_a_compressed_row_changes_the_value_read(
    cache_dir: str, kind: int
) -> None:
    """Every single-byte change is either harmless or a miss; never different data."""
    value: Any = b"compressible " * 400 if kind == KIND_BYTES else "compressible " * 400
    with diskstore.Cache(cache_dir) as cache, contextlib.closing(db(cache)) as con:
        cache.set("k", value)
        mode, blob = con.execute("SELECT mode, value FROM Cache WHERE key = 'k'").fetchone()
        assert from_row(mode) & FLAG_ZSTD and from_row(mode) & KIND_MASK == kind
        for index in range(len(blob)):
            cache.set("k", value)
            flipped = bytearray(blob)
            flipped[index] ^= 0x20
            con.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (bytes(flipped),))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = cache.get("k", "miss")
            if got == "miss":
                assert [w.category for w in caught] == [diskstore.CorruptionWarning]
            else:
                assert got == value, f"flipping byte {index} changed the value read"


# -- settings -----------------------------------------------------------------------------
def _settings_table(name: str) -> tuple[str, str]:
    """Where setting *name* is stored: diskcache's ``Settings``, or diskstore's own table."""
    if name in ("disk_compress_threshold", "disk_compress_level"):
        return "diskstore_settings", "name"
    return "Settings", "key"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sqlite_journal_mode", "wal; DROP TABLE Cache"),
        ("sqlite_cache_size", "1; ATTACH DATABASE '/tmp/x' AS x"),
        ("sqlite_mmap_size", -1),
        ("sqlite_synchronous", "OFF"),
        ("sqlite_auto_vacuum", 9),
        ("size_limit", "unlimited"),
        ("cull_limit", 1.5),
        ("eviction_policy", "least-recently-stored; --"),
        ("statistics", 7),
        ("tag_index", "yes"),
        ("disk_min_file_size", -5),
        ("disk_pickle_protocol", "5"),
        ("disk_compress_threshold", None),
        ("disk_compress_level", 23),
    ],
)
def test_tampered_settings_refuse_to_open_naming_the_setting(
    cache_dir: str, name: str, value: Any
) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache.set("k", "v")
    table, column = _settings_table(name)
    con = sqlite3.connect(os.path.join(cache_dir, "cache.db"), isolation_level=None)
    with contextlib.closing(con):
        con.execute(f"UPDATE {table} SET value = ? WHERE {column} = ?", (value, name))
    with pytest.raises(diskstore.SettingsError, match=name):
        diskstore.Cache(cache_dir)
    with pytest.raises(diskstore.SettingsError, match=name):
        diskstore.Cache(cache_dir, read_only=True)
    con = sqlite3.connect(os.path.join(cache_dir, "cache.db"), isolation_level=None)
    with contextlib.closing(con):
        assert con.execute("SELECT value FROM Cache WHERE key = 'k'").fetchone() == ("v",)
        stored = con.execute(f"SELECT value FROM {table} WHERE {column} = ?", (name,)).fetchone()
        assert stored == (value,)  # opening never rewrote the tampered row either


def test_unknown_rows_in_the_settings_table_are_ignored(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir):
        pass
    con = sqlite3.connect(os.path.join(cache_dir, "cache.db"), isolation_level=None)
    with contextlib.closing(con):
        con.execute("INSERT INTO settings VALUES ('evil; DROP TABLE Cache', 'x')")
    with diskstore.Cache(cache_dir) as cache:
        cache.set("k", 1)
        assert cache["k"] == 1


# -- keys that cannot be found -------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.set(math.nan, 1),
        lambda c: c.get(math.nan),
        lambda c: c.add(math.nan, 1),
        lambda c: c.delete(math.nan),
        lambda c: c.incr(math.nan),
        lambda c: c.pop(math.nan),
        lambda c: math.nan in c,
    ],
)
def test_nan_keys_are_refused(cache: diskstore.Cache, call: Callable[[Any], Any]) -> None:
    with pytest.raises(ValueError, match="NaN"):
        call(cache)
    assert len(cache) == 0


# -- moving signed entries around -----------------------------------------------------------
def test_a_signed_entry_moved_to_another_namespace_is_a_miss(cache: diskstore.Cache) -> None:
    view = cache.namespace("private")
    view.set("k", {"secret": 1})
    with contextlib.closing(db(cache)) as con:
        con.execute("UPDATE Cache SET raw = raw & 1 WHERE key = 'k'")  # to the plain cache
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert cache.get("k", "miss") == "miss"


def test_a_signed_entry_moved_to_another_key_is_a_miss(cache: diskstore.Cache) -> None:
    cache.set("admin", {"role": "admin"})
    cache.set("guest", {"role": "guest"})
    with contextlib.closing(db(cache)) as con:
        row = con.execute(
            "SELECT mode, value, sig, vsize FROM Cache WHERE key = 'admin'"
        ).fetchone()
        con.execute(
            "UPDATE Cache SET mode = ?, value = ?, sig = ?, vsize = ? WHERE key = 'guest'", row
        )
    with pytest.warns(diskstore.CorruptionWarning, match="'guest'"):
        assert cache.get("guest", "miss") == "miss"
    assert cache.get("admin") == {"role": "admin"}


def test_stripping_the_signed_flag_is_refused(cache: diskstore.Cache) -> None:
    cache.set("k", {"a": 1})
    with contextlib.closing(db(cache)) as con:
        con.execute("UPDATE Cache SET mode = mode & ?, sig = NULL WHERE key = 'k'", (~ROW_SIGNED,))
        assert from_row(con.execute("SELECT mode FROM Cache").fetchone()[0]) == KIND_PICKLE
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert cache.get("k", "miss") == "miss"


# -- values SQLite hands back as text ------------------------------------------------------
def test_a_planted_invalid_utf8_text_value_is_a_miss(cache: diskstore.Cache) -> None:
    cache.set("other", 1)
    with contextlib.closing(db(cache)) as con:
        con.execute(
            "INSERT INTO Cache (key, raw, store_time, access_time, mode, value)"
            " VALUES ('k', 1, 0, 0, 1, CAST(x'ff' AS TEXT))"
        )
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert cache.get("k", "miss") == "miss"
    assert cache["other"] == 1


def test_a_planted_invalid_utf8_text_key_does_not_break_iteration(
    cache: diskstore.Cache,
) -> None:
    cache.set("other", 1)
    with contextlib.closing(db(cache)) as con:
        con.execute(
            "INSERT INTO Cache (key, raw, store_time, access_time, mode, value)"
            " VALUES (CAST(x'ff' AS TEXT), 1, 0, 0, 1, 1)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diskstore.CorruptionWarning)
        assert "other" in list(cache)
        assert "other" in list(cache.iterkeys())
        cache.check(fix=True)
    assert list(cache) == ["other"]
