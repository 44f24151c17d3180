"""Signing: the secret, the tags, and what a cache does with entries that fail them.

Pickled payloads and pickled keys carry an HMAC-SHA256 tag bound to their row (namespace,
key, mode, length). A tag that does not verify makes the entry a miss: it is removed, the
default is returned and a :class:`diskstore.CorruptionWarning` names the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import multiprocessing
import os
import re
import sqlite3
import stat
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from _cache_support import code_row

import diskstore
from diskstore._values._disk import Disk
from diskstore._values._modes import (
    FLAG_FILE,
    FLAG_SIGNED,
    FLAG_ZSTD,
    KIND_MASK,
    KIND_PICKLE,
    to_row,
)
from diskstore._values._signing import ENV_VAR, TAG_SIZE, Signer, config_dir, resolve_secret

SPAWN = multiprocessing.get_context("spawn")
BIG = 100_000  # pickled payloads at least this long go to value files


def db(cache: diskstore.Cache) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)


def row(cache: diskstore.Cache, key: str) -> dict[str, Any]:
    with contextlib.closing(db(cache)) as con:
        con.row_factory = sqlite3.Row
        found = con.execute("SELECT * FROM Cache WHERE key = ?", (key,)).fetchone()
    assert found is not None, key
    return code_row(dict(found))


def update(cache: diskstore.Cache, key: str, **columns: Any) -> None:
    if type(columns.get("mode")) is int:
        columns["mode"] = to_row(columns["mode"])
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with contextlib.closing(db(cache)) as con:
        changed = con.execute(
            f"UPDATE Cache SET {assignments} WHERE key = ?", (*columns.values(), key)
        ).rowcount
    assert changed == 1


def flip(data: bytes, index: int | None = None) -> bytes:
    out = bytearray(data)
    out[len(out) // 2 if index is None else index] ^= 0x01
    return bytes(out)


class CountingDisk(Disk):
    """Counts calls of ``loads``: a refused entry must never reach it."""

    calls = 0

    def loads(self, data: bytes) -> Any:
        type(self).calls += 1
        return super().loads(data)


@pytest.fixture
def counting() -> type[CountingDisk]:
    CountingDisk.calls = 0
    return CountingDisk


# -- Signer -------------------------------------------------------------------------------
def test_signer_tags_are_hmac_sha256() -> None:
    signer = Signer(b"key")
    tag = signer.sign(b"message")
    assert len(tag) == TAG_SIZE
    assert tag == hmac.new(b"key", b"message", hashlib.sha256).digest()
    assert signer.verify(b"message", tag)
    incremental = signer.hasher(b"mess")
    incremental.update(b"age")
    assert incremental.digest() == tag


@pytest.mark.parametrize("tag", [None, b"", b"\0" * TAG_SIZE, b"short", "flip", "long"])
def test_signer_rejects_every_other_tag(tag: Any) -> None:
    signer = Signer(b"key")
    good = signer.sign(b"message")
    if tag == "flip":
        tag = flip(good, 0)
    elif tag == "long":
        tag = good + b"\0"
    assert not signer.verify(b"message", tag)
    assert not signer.verify(b"other message", good)
    assert not Signer(b"other key").verify(b"message", good)


def test_a_disabled_signer_signs_nothing_and_verifies_nothing() -> None:
    signer = Signer(None)
    assert not signer.enabled
    with pytest.raises(RuntimeError):
        signer.sign(b"x")
    with pytest.raises(RuntimeError):
        signer.hasher(b"x")
    assert not signer.verify(b"x", Signer(b"k").sign(b"x"))
    assert repr(signer) == "Signer(enabled=False)"
    assert repr(Signer(b"secret key")) == "Signer(enabled=True)"  # never shows the key


# -- where the secret comes from -----------------------------------------------------------
@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty user config directory, and no secret in the environment."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return home


def test_explicit_secrets(config: Path) -> None:
    assert resolve_secret(False) is None
    assert resolve_secret(b"bytes") == b"bytes"
    assert resolve_secret(bytearray(b"array")) == b"array"  # type: ignore[arg-type]
    assert resolve_secret("pässword") == "pässword".encode()
    assert not (config / "diskstore").exists()  # an explicit secret never creates the file


@pytest.mark.parametrize("secret", [b"", ""])
def test_an_empty_secret_is_refused(config: Path, secret: Any) -> None:
    with pytest.raises(ValueError, match="secret"):
        resolve_secret(secret)
    with pytest.raises(ValueError, match="secret"):
        diskstore.Cache(str(config / "cache"), secret=secret)


@pytest.mark.parametrize("secret", [0, 1, 1.5, [b"x"], object(), memoryview(b"x")])
def test_a_secret_of_another_type_is_refused(config: Path, secret: Any) -> None:
    with pytest.raises(TypeError, match="secret"):
        resolve_secret(secret)


def test_the_environment_variable_comes_before_the_user_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "from the environment")
    assert resolve_secret(None) == b"from the environment"
    assert resolve_secret(True) == b"from the environment"
    assert resolve_secret(b"explicit") == b"explicit"
    assert not (config / "diskstore").exists()


def test_the_user_secret_is_created_private_once_and_reused(config: Path) -> None:
    old = os.umask(0)
    try:
        first = resolve_secret(None)
    finally:
        os.umask(old)
    path = config / "diskstore" / "secret"
    assert config_dir() == config / "diskstore"
    assert first is not None and len(first) >= 32
    assert path.read_bytes().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((config / "diskstore").stat().st_mode) == 0o700
    assert resolve_secret(None) == first
    assert sorted(os.listdir(config / "diskstore")) == ["secret"]  # no temporary left behind


def test_without_xdg_the_secret_lives_in_home_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_dir() == tmp_path / ".config" / "diskstore"
    secret = resolve_secret(None)
    assert (tmp_path / ".config" / "diskstore" / "secret").read_bytes().strip() == secret


@pytest.mark.parametrize("content", [b"", b"\n", b"short"])
def test_an_empty_or_short_user_secret_file_is_never_used_as_the_key(
    config: Path, content: bytes
) -> None:
    """A secret anyone could guess would let them sign a pickle."""
    directory = config / "diskstore"
    directory.mkdir(parents=True, mode=0o700)
    (directory / "secret").write_bytes(content)
    os.chmod(directory / "secret", 0o600)
    try:
        key = resolve_secret(None)
    except (ValueError, OSError, diskstore.DiskStoreError):
        return  # refusing is fine
    assert key is not None and len(key) >= 32 and key != content.strip()


def _secret_in_child(queue: Any) -> None:
    queue.put(resolve_secret(None))


@pytest.mark.timeout(120)
def test_processes_creating_the_user_secret_at_once_agree(config: Path) -> None:
    queue = SPAWN.Queue()
    processes = [SPAWN.Process(target=_secret_in_child, args=(queue,)) for _ in range(6)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert len(set(results)) == 1
    assert results[0] == (config / "diskstore" / "secret").read_bytes().strip()


# -- what caches sign ----------------------------------------------------------------------
def test_pickled_values_are_signed_and_native_ones_are_not(cache: diskstore.Cache) -> None:
    cache.set("pickled", {"a": [1, 2, 3]})
    cache.set("native", 12)
    cache.set("file", list(range(BIG)))
    pickled, native, file = row(cache, "pickled"), row(cache, "native"), row(cache, "file")
    assert pickled["mode"] & KIND_MASK == KIND_PICKLE and pickled["mode"] & FLAG_SIGNED
    assert native["sig"] is None and not native["mode"] & FLAG_SIGNED
    assert file["mode"] & FLAG_FILE and file["mode"] & FLAG_SIGNED and len(file["sig"]) == 32
    with diskstore.Cache(cache.directory, secret=False) as unsigned:
        unsigned.set("unsigned", {"a": [1, 2, 3]})
    # The tag travels with the payload: the same value takes TAG_SIZE more bytes signed.
    assert len(row(cache, "pickled")["value"]) == len(row(cache, "unsigned")["value"]) + TAG_SIZE


def test_secret_false_writes_unsigned_pickles(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, secret=False) as cache:
        cache.set("k", {"a": 1})
        assert not cache.disk.signer.enabled
        entry = row(cache, "k")
        assert entry["sig"] is None and not entry["mode"] & FLAG_SIGNED
        assert cache["k"] == {"a": 1}


def test_a_str_secret_is_its_utf8_bytes(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, secret="pässword") as cache:
        cache.set("k", {"a": 1})
    with diskstore.Cache(cache_dir, secret="pässword".encode()) as cache:
        assert cache["k"] == {"a": 1}


def test_the_environment_secret_is_shared_by_caches(
    cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "team secret")
    with diskstore.Cache(cache_dir) as cache:
        cache.set("k", {"a": 1})
    with diskstore.Cache(cache_dir, secret=b"team secret") as cache:
        assert cache["k"] == {"a": 1}
    monkeypatch.setenv(ENV_VAR, "another team")
    with pytest.raises(diskstore.SecretMismatchError, match=f"from the {ENV_VAR} environment"):
        diskstore.Cache(cache_dir)


def _read_in_child(directory: str, key: str, queue: Any) -> None:
    warnings.simplefilter("ignore")
    try:
        with diskstore.Cache(directory) as cache:
            queue.put(cache.get(key, "miss"))
    except diskstore.SecretMismatchError:
        queue.put("refused")


@pytest.mark.timeout(120)
def test_the_user_secret_is_shared_by_a_users_processes(
    cache_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache.set("k", {"a": 1})
    queue = SPAWN.Queue()
    child = SPAWN.Process(target=_read_in_child, args=(cache_dir, "k", queue))
    child.start()
    assert queue.get(timeout=60) == {"a": 1}
    child.join(30)
    # Another user (another config directory) cannot read it.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-user"))
    child = SPAWN.Process(target=_read_in_child, args=(cache_dir, "k", queue))
    child.start()
    assert queue.get(timeout=60) == "refused"
    child.join(30)


# -- a wrong secret reads nothing -----------------------------------------------------------
class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    def __hash__(self) -> int:
        return hash(self.x)


WRONG_SECRET_VALUES: dict[Any, Any] = {
    "row": {"a": 1},
    "compressed": ["x" * 10] * 1000,
    "file": list(range(BIG)),
    ("tuple", 1): [None],
}


def _fill_with_right_secret(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, secret=b"right") as cache:
        for key, value in WRONG_SECRET_VALUES.items():
            cache.set(key, value)
        cache.set(Point(1), "pickled key")
        cache.set("native", 5)


def _assert_right_secret_reads_everything(cache_dir: str, counting: type[CountingDisk]) -> None:
    with diskstore.Cache(cache_dir, disk=counting, secret=b"right") as cache:
        assert cache.check() == []
        assert list(cache) == [*WRONG_SECRET_VALUES, Point(1), "native"]
        for key, value in WRONG_SECRET_VALUES.items():
            assert cache[key] == value
        assert cache[Point(1)] == "pickled key"
        assert cache["native"] == 5


def test_a_cache_opened_with_the_wrong_secret_is_refused_and_loses_nothing(
    cache_dir: str, counting: type[CountingDisk]
) -> None:
    _fill_with_right_secret(cache_dir)
    before = sorted(os.listdir(Path(cache_dir) / "data"))
    for read_only in (False, True):
        with pytest.raises(diskstore.SecretMismatchError) as raised:
            diskstore.Cache(cache_dir, disk=counting, secret=b"wrong", read_only=read_only)
        message = str(raised.value)
        for way in ("secret=", ENV_VAR, "secret file", "nothing was read or deleted"):
            assert way in message
    assert counting.calls == 0
    assert sorted(os.listdir(Path(cache_dir) / "data")) == before
    _assert_right_secret_reads_everything(cache_dir, counting)


def test_a_cache_without_a_fingerprint_read_with_the_wrong_secret_deletes_nothing(
    cache_dir: str, counting: type[CountingDisk]
) -> None:
    """A cache made before fingerprints were recorded: misses with warnings, no deletion."""
    _fill_with_right_secret(cache_dir)
    with contextlib.closing(sqlite3.connect(Path(cache_dir) / "cache.db")) as con, con:
        con.execute("DELETE FROM diskstore_settings WHERE name = 'secret_fingerprint'")
    with diskstore.Cache(cache_dir, disk=counting, secret=b"wrong") as cache:
        for key in WRONG_SECRET_VALUES:
            with pytest.warns(diskstore.CorruptionWarning, match=re.escape(repr(key))):
                assert cache.get(key, "miss") == "miss"
        assert cache.get(Point(1), "miss") == "miss"  # its stored key bytes differ
        with pytest.warns(diskstore.CorruptionWarning):
            assert list(cache) == [*WRONG_SECRET_VALUES, "native"]  # the pickled key is skipped
        assert cache["native"] == 5
    assert counting.calls == 0
    # The wrong secret's fingerprint was not recorded: its entries did not verify under it.
    with contextlib.closing(sqlite3.connect(Path(cache_dir) / "cache.db")) as con:
        assert (
            con.execute(
                "SELECT value FROM diskstore_settings WHERE name = 'secret_fingerprint'"
            ).fetchall()
            == []
        )
    _assert_right_secret_reads_everything(cache_dir, counting)
    with pytest.raises(diskstore.SecretMismatchError):  # the right one was recorded
        diskstore.Cache(cache_dir, secret=b"wrong")


def test_a_corruption_warning_points_at_the_callers_line(cache: diskstore.Cache) -> None:
    cache.set("k", {"a": 1})
    update(cache, "k", value=flip(row(cache, "k")["value"], -1))
    cache.set(Point(1), "under a pickled key")
    with contextlib.closing(db(cache)) as con:
        blob = con.execute("SELECT key FROM Cache WHERE raw = 0").fetchone()[0]
        con.execute("UPDATE Cache SET key = ? WHERE raw = 0", (flip(blob, -1),))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        cache.get("k")
        cache.get("k", expire_time=True, tag=True)
        with pytest.raises(KeyError):
            cache["k"]
        assert list(cache) == ["k"]  # the damaged pickled key is skipped
    assert [w.category for w in caught] == [diskstore.CorruptionWarning] * 4
    assert [(w.filename, w.lineno) for w in caught] == [
        (__file__, line),
        (__file__, line + 1),
        (__file__, line + 3),
        (__file__, line + 4),
    ]
    assert len(cache) == 2  # a read deleted nothing


def test_signed_entries_are_refused_when_signing_was_off(
    cache_dir: str, counting: type[CountingDisk]
) -> None:
    with diskstore.Cache(cache_dir, secret=False) as cache:
        cache.set("row", {"a": 1})
        cache.set("file", list(range(BIG)))
        cache.set(Point(2), "pickled key")
    with diskstore.Cache(cache_dir, disk=counting) as cache:
        for key in ("row", "file"):
            with pytest.warns(diskstore.CorruptionWarning, match="unsigned"):
                assert cache.get(key, "miss") == "miss"
        with pytest.warns(diskstore.CorruptionWarning, match="unsigned"):
            assert list(cache) == ["row", "file"]  # nothing deleted; the pickled key is skipped
    assert counting.calls == 0


def test_secret_false_reads_signed_entries_without_checking(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, secret=b"s") as cache:
        cache.set("k", {"a": 1})
    with diskstore.Cache(cache_dir, secret=False) as cache:
        assert cache["k"] == {"a": 1}


# -- tampering ------------------------------------------------------------------------------
def assert_dropped(cache: diskstore.Cache, key: str, count_before: int) -> None:
    """A damaged entry reads as a miss, stays until ``check(fix=True)``, and is then gone."""
    with pytest.warns(diskstore.CorruptionWarning, match=repr(key)):
        assert cache.get(key, "miss") == "miss"
    assert key in cache
    assert len(cache) == count_before
    assert diskstore.CorruptionWarning in {w.category for w in cache.check(fix=True)}
    assert key not in cache
    assert len(cache) == count_before - 1
    # Nothing left to report but, possibly, the value file's now empty directory.
    assert {w.category for w in cache.check()} <= {diskstore.EmptyDirWarning}


def get_quietly(cache: diskstore.Cache, key: str) -> tuple[Any, list[type[Warning]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = cache.get(key, "miss")
    return value, [w.category for w in caught]


def test_every_flipped_byte_of_a_signed_row_is_a_miss(cache: diskstore.Cache) -> None:
    value = {"a": list(range(10))}
    cache.set("k", value)
    blob = row(cache, "k")["value"]
    for index in range(len(blob)):
        cache.set("k", value)
        update(cache, "k", value=flip(blob, index))
        got, caught = get_quietly(cache, "k")
        assert (got, caught) == ("miss", [diskstore.CorruptionWarning]), index
        assert "k" in cache  # only check(fix=True) deletes


def test_check_reports_a_tampered_row_and_get_drops_it(cache: diskstore.Cache) -> None:
    cache.set("k", {"a": list(range(10))})
    cache.set("other", 1)
    update(cache, "k", value=flip(row(cache, "k")["value"], -1))
    problems = cache.check()
    assert [w.category for w in problems] == [diskstore.CorruptionWarning]
    assert "signature" in str(problems[0].message)
    assert len(cache) == 2  # check() without fix only reports
    assert_dropped(cache, "k", 2)


def test_a_flipped_byte_in_a_compressed_signed_row_is_a_miss(cache: diskstore.Cache) -> None:
    cache.set("k", ["compress me"] * 1000)
    assert row(cache, "k")["mode"] & FLAG_ZSTD
    blob = row(cache, "k")["value"]
    for index in (0, len(blob) // 2, -2, -1):
        cache.set("k", ["compress me"] * 1000)
        update(cache, "k", value=flip(blob, index))
        assert get_quietly(cache, "k") == ("miss", [diskstore.CorruptionWarning]), index


@pytest.mark.parametrize("where", [0, "middle", -1])
def test_a_flipped_byte_in_a_signed_value_file_is_a_miss(
    cache: diskstore.Cache, where: Any
) -> None:
    cache.set("k", [os.urandom(BIG)])
    entry = row(cache, "k")
    assert entry["mode"] & FLAG_FILE and entry["mode"] & FLAG_SIGNED
    path = Path(cache.directory) / entry["filename"]
    data = path.read_bytes()
    path.write_bytes(flip(data, None if where == "middle" else where))
    assert_dropped(cache, "k", 1)
    assert not path.exists()


@pytest.mark.parametrize("change", ["truncate", "extend", "remove"])
def test_a_damaged_value_file_is_a_miss(cache: diskstore.Cache, change: str) -> None:
    cache.set("k", [os.urandom(BIG)])
    path = Path(cache.directory) / row(cache, "k")["filename"]
    if change == "truncate":
        path.write_bytes(path.read_bytes()[:-1])
    elif change == "extend":
        path.write_bytes(path.read_bytes() + b"\0")
    else:
        path.unlink()
    assert_dropped(cache, "k", 1)


def _mutations(entry: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("mode", entry["mode"] ^ FLAG_ZSTD),
        ("mode", entry["mode"] & ~FLAG_SIGNED),
        ("mode", (entry["mode"] & ~KIND_MASK) | 5),  # another serializer's kind
        ("vsize", entry["vsize"] + 1),
        ("vsize", 0),
        ("size", entry["size"] + 1),
        ("sig", os.urandom(TAG_SIZE)),
        ("sig", None),
        ("value", None),
        ("value", b""),
        ("filename", None),
        ("filename", "ab/" + "0" * 30 + ".val"),
    ]
    return out


@pytest.mark.parametrize("placement", ["inline", "compressed", "file"])
def test_no_change_to_a_signed_rows_columns_yields_another_value(
    cache: diskstore.Cache, placement: str
) -> None:
    """Whatever column is changed, a read returns the stored value or is a miss."""
    value: Any = {
        "inline": {"a": 1},
        "compressed": ["compress me"] * 1000,
        "file": [os.urandom(BIG)],
    }[placement]
    cache.set("k", value)
    original = row(cache, "k")
    for column, changed in _mutations(original):
        cache.set("k", value)
        current = row(cache, "k")
        if column == "filename" and current["filename"] is None and changed is not None:
            continue  # naming a file for an inline row is covered by test_files
        update(cache, "k", **{column: changed})
        got, caught = get_quietly(cache, "k")
        if got == "miss":
            assert caught == [diskstore.CorruptionWarning], (column, changed)
            assert "k" in cache
        else:
            assert got == value, (column, changed)
            assert caught == []


@pytest.mark.parametrize("in_files", [False, True])
def test_swapping_two_entries_blobs_and_signatures_makes_both_misses(
    cache: diskstore.Cache, in_files: bool
) -> None:
    pad = [os.urandom(BIG)] if in_files else []
    cache.set("a", ["value a", *pad])
    cache.set("b", ["value b", *pad])
    a, b = row(cache, "a"), row(cache, "b")
    swapped = ("mode", "value", "sig", "vsize", "filename", "size")
    update(cache, "a", **{name: b[name] for name in swapped})
    update(cache, "b", **{name: a[name] for name in swapped})
    with pytest.warns(diskstore.CorruptionWarning, match="'a'"):
        assert cache.get("a", "miss") == "miss"
    with pytest.warns(diskstore.CorruptionWarning, match="'b'"):
        assert cache.get("b", "miss") == "miss"
    assert len(cache) == 2
    fixed = [w.category for w in cache.check(fix=True)]
    assert fixed.count(diskstore.CorruptionWarning) == 2
    assert len(cache) == 0


def test_check_fix_removes_every_tampered_entry(cache: diskstore.Cache) -> None:
    for index in range(10):
        cache.set(f"k{index}", {"index": index})
    for index in (2, 5, 7):
        update(cache, f"k{index}", value=flip(row(cache, f"k{index}")["value"], -1))
    problems = cache.check(fix=True)
    assert len(problems) == 3
    assert all(w.category is diskstore.CorruptionWarning for w in problems)
    assert cache.check() == []
    assert sorted(cache) == sorted(f"k{index}" for index in range(10) if index not in (2, 5, 7))
    assert len(cache) == 7


def test_incr_over_a_tampered_entry_starts_from_the_default(cache: diskstore.Cache) -> None:
    """A failed entry is a miss for every operation, incr included."""
    cache.set("n", 2**70)  # beyond 64 bits: stored pickled, hence signed
    update(cache, "n", value=flip(row(cache, "n")["value"], -1))
    with pytest.warns(diskstore.CorruptionWarning, match="'n'"):
        assert cache.incr("n", 5, default=10) == 15
    assert cache["n"] == 15


def test_pop_and_pull_of_a_tampered_entry_are_misses(cache: diskstore.Cache) -> None:
    cache.set("k", {"a": 1})
    key = cache.push({"queued": True}, prefix="q")
    update(cache, "k", value=flip(row(cache, "k")["value"], -1))
    update(cache, key, value=flip(row(cache, key)["value"], -1))
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert cache.pop("k", "miss") == "miss"
    with pytest.warns(diskstore.CorruptionWarning, match=key):
        assert cache.pull(prefix="q") == (None, None)
    assert len(cache) == 0


def test_a_tampered_entry_in_a_namespace_is_a_miss_there(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    view.set("k", {"a": 1})
    cache.set("k", {"b": 2})
    with contextlib.closing(db(cache)) as con:
        rowid, blob = con.execute("SELECT rowid, value FROM Cache WHERE ns != 0").fetchone()
        con.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (flip(blob, -1), rowid))
    with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
        assert view.get("k", "miss") == "miss"
    assert len(view) == 1
    cache.check(fix=True)
    assert len(view) == 0
    assert cache["k"] == {"b": 2}
    assert len(cache) == 1


def test_a_secret_file_others_can_read_is_refused(tmp_path, monkeypatch) -> None:
    from diskstore._values import _signing

    monkeypatch.delenv("DISKSTORE_SECRET", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    first = _signing.resolve_secret(None)  # creates the file, 0600
    secret_file = tmp_path / "diskstore" / "secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert _signing.resolve_secret(None) == first
    secret_file.chmod(0o644)
    with pytest.raises(diskstore.DiskStoreError, match="chmod 600"):
        _signing.resolve_secret(None)


class TestVerifiedPayloads:
    """A small payload whose tag this process has checked (or made) is not checked again,
    unless anything about its row differs."""

    @pytest.fixture
    def verifications(self, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
        calls: list[bytes] = []
        original = Signer.verify_parts

        def counting(self: Signer, parts: tuple[bytes, ...], tag: bytes | None) -> bool:
            calls.append(b"".join(parts))
            return original(self, parts, tag)

        monkeypatch.setattr(Signer, "verify_parts", counting)
        return calls

    def test_a_payload_is_verified_once_per_process(
        self, cache_dir: str, verifications: list[bytes]
    ) -> None:
        with diskstore.Cache(cache_dir) as writer:
            writer.set("k", {"a": 1})
            assert writer.get("k") == {"a": 1}
            assert verifications == []  # it made the tag itself
        with diskstore.Cache(cache_dir) as reader:  # another Disk: knows nothing yet
            for _ in range(3):
                assert reader.get("k") == {"a": 1}
            assert len(verifications) == 1

    def test_a_changed_row_is_verified_in_full_and_refused(
        self, cache: diskstore.Cache, verifications: list[bytes]
    ) -> None:
        cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1} and verifications == []
        update(cache, "k", value=flip(row(cache, "k")["value"], -1))
        got, caught = get_quietly(cache, "k")
        assert (got, caught) == ("miss", [diskstore.CorruptionWarning])
        # Checked in full by the short read, then again by the full read that reports it.
        assert len(verifications) == 2

    def test_a_known_payload_moved_to_another_key_is_refused(
        self, cache: diskstore.Cache, verifications: list[bytes]
    ) -> None:
        cache.set("a", {"v": 1})
        cache.set("b", {"v": 2})
        update(cache, "b", value=row(cache, "a")["value"])  # a's payload and tag, both known
        got, caught = get_quietly(cache, "b")
        assert (got, caught) == ("miss", [diskstore.CorruptionWarning])
        assert cache.get("a") == {"v": 1}

    def test_memory_is_bounded(self) -> None:
        from diskstore._values._rows import VerifiedPayloads

        class Small(VerifiedPayloads):
            ITEMS = 3
            BYTES = 4

        known = Small()
        known.add(b"big", ("row", b"12345"))
        assert not known.known(b"big", ("row", b"12345"))
        for number in range(3):
            known.add(bytes([number]), ("row", b"x"))
        assert all(known.known(bytes([number]), ("row", b"x")) for number in range(3))
        assert not known.known(b"\x00", ("row", b"y")) and not known.known(None, ("row", b"x"))
        known.add(b"\x03", ("row", b"x"))  # full: it starts over
        assert known.known(b"\x03", ("row", b"x"))
        assert not any(known.known(bytes([number]), ("row", b"x")) for number in range(3))
