"""Value files: names, permissions, safe opening and removal (``diskstore._fs._files``).

The rule under test: a value file name comes from the database, which anyone with write
access to the cache directory can edit, so nothing read back from it may make diskstore
read, follow, block on or delete anything outside ``<directory>/data``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

import diskstore
from diskstore._common._exceptions import IntegrityError
from diskstore._fs import _files
from diskstore._fs._files import CHUNK, NAME_PATTERN, TEMP_PATTERN, FileStore

BIG = 40_000  # above the default disk_min_file_size (32 KiB): stored in a value file
VALID = "data/ab/" + "0123456789abcdef0123456789abcd" + ".val"
#: A value file as diskcache names it, which diskstore reads where it is.
DISKCACHE_VALID = "ab/cd/" + "0123456789abcdef0123456789ab" + ".val"


def db(cache: diskstore.Cache) -> sqlite3.Connection:
    """A second, independent connection to the cache's database (autocommit)."""
    return sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)


def filename_of(cache: diskstore.Cache, key: str) -> str:
    with contextlib.closing(db(cache)) as con:
        row = con.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchone()
    assert row is not None and row[0] is not None, f"{key!r} is not stored in a file"
    return str(row[0])


def set_filename(cache: diskstore.Cache, key: str, name: str) -> None:
    with contextlib.closing(db(cache)) as con:
        changed = con.execute("UPDATE Cache SET filename = ? WHERE key = ?", (name, key)).rowcount
    assert changed == 1


def mode_bits(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def new_store(directory: Path) -> FileStore:
    """A file store in *directory*, which the cache creates before any store is used."""
    directory.mkdir(exist_ok=True)
    return FileStore(str(directory))


def publish(store: FileStore, data: bytes) -> str:
    pending = store.write([data])
    store.publish(pending)
    return pending.name


# -- names --------------------------------------------------------------------------------
def test_written_names_match_the_pattern_and_are_random(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path))
    names = {publish(store, b"x") for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert NAME_PATTERN.fullmatch(name)
        assert store.validate(name) == name
        assert (tmp_path / name).read_bytes() == b"x"


@pytest.mark.parametrize(
    "name",
    [
        "../../victim",
        "/etc/passwd",
        "ab/../../../victim.val",
        "ab/../" + "0" * 27 + ".val",
        "AB/" + "0" * 30 + ".val",
        "ab/" + "0" * 29 + ".val",
        "ab/" + "0" * 31 + ".val",
        "ab/" + "0" * 30 + ".tmp",
        "ab/" + "0" * 30 + ".val\n",
        "data/ab/" + "0" * 30 + ".val\n",
        "data/../ab/" + "0" * 29 + ".val",
        "ab/cd/" + "0" * 30 + ".val",
        "zz/cd/" + "0" * 28 + ".val",
        "data/ab/" + "0" * 28 + ".tmp",
        "ab/" + "0" * 30 + ".val/x",
        "ab\\" + "0" * 30 + ".val",
        "ab/" + "0" * 30 + ".VAL",
        "./" + "0" * 31 + ".val",
        "",
        None,
        42,
        b"ab/" + b"0" * 30 + b".val",
    ],
)
def test_validate_rejects_every_other_name(tmp_path: Path, name: object) -> None:
    store = FileStore(str(tmp_path))
    with pytest.raises(IntegrityError, match="refusing value file name"):
        store.validate(name)
    with pytest.raises(IntegrityError):
        store.open(name)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        store.unlink(name)  # type: ignore[arg-type]


def test_validate_accepts_exact_pattern(tmp_path: Path) -> None:
    assert FileStore(str(tmp_path)).validate(VALID) == VALID
    assert FileStore(str(tmp_path)).validate(DISKCACHE_VALID) == DISKCACHE_VALID


@pytest.mark.parametrize(
    "relative",
    ["../victim", "ab/../victim", "zz/cd/ef", "", "/ab", "ab/", "data/../victim", "cache.db"],
)
def test_unlink_any_refuses_paths_outside_one_subdirectory(tmp_path: Path, relative: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    store = new_store(tmp_path / "cache")
    with pytest.raises(IntegrityError):
        store.unlink_any(relative)
    assert victim.read_text() == "keep"


# -- writing ------------------------------------------------------------------------------
def test_write_holds_a_locked_temporary_until_published(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path))
    pending = store.write([b"abc", memoryview(b"def")])
    temp = pending.name[:-4] + ".tmp"
    assert TEMP_PATTERN.fullmatch(temp)
    assert (tmp_path / temp).read_bytes() == b"abcdef"
    assert not (tmp_path / pending.name).exists()
    assert (pending.stored_bytes, pending.input_bytes) == (6, 6)
    assert store.in_progress(temp)
    store.publish(pending)
    assert not (tmp_path / temp).exists()
    assert (tmp_path / pending.name).read_bytes() == b"abcdef"
    assert not store.in_progress(temp)


def test_discard_removes_only_unpublished_files(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path))
    pending = store.write([b"abc"])
    store.discard(pending)
    assert list(store.scan()) == []
    kept = store.write([b"abc"])
    store.publish(kept)
    store.discard(kept)
    assert list(store.scan()) == [kept.name]


def test_a_crashed_writer_leaves_an_unlocked_temporary(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path))
    pending = store.write([b"abc"])
    temp = pending.name[:-4] + ".tmp"
    pending.close()  # what the end of the writing process does to its lock
    assert not store.in_progress(temp)


def test_transform_and_digest_see_the_stored_bytes(tmp_path: Path) -> None:
    import hashlib

    store = FileStore(str(tmp_path))
    data = b"compressible " * 200_000
    digest = hashlib.sha256()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    pending = store.write(chunks, transform=zstandard.ZstdCompressor().compressobj(), digest=digest)
    store.publish(pending)
    stored = (tmp_path / pending.name).read_bytes()
    assert pending.input_bytes == len(data)
    assert pending.stored_bytes == len(stored) < len(data) // 10
    assert digest.digest() == hashlib.sha256(stored).digest()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == data


def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path) -> None:
    with umask(0):
        store = new_store(tmp_path / "cache")
        name = publish(store, b"x")
    assert mode_bits(tmp_path / "cache" / "data") == 0o700
    assert mode_bits(tmp_path / "cache" / "data" / name.split("/")[1]) == 0o700
    assert mode_bits(tmp_path / "cache" / name) == 0o600


def test_write_refuses_a_planted_symlink_at_the_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    store = new_store(tmp_path / "cache")
    (tmp_path / "cache" / "data" / "ab").mkdir(parents=True)
    os.symlink(victim, tmp_path / "cache" / "data" / "ab" / ("1" * 30 + ".tmp"))
    monkeypatch.setattr(_files, "random_token", lambda: "ab" + "1" * 30)
    with pytest.raises(OSError):
        store.write([b"attack"])
    assert victim.read_text() == "keep"


# -- reading ------------------------------------------------------------------------------
def test_read_requires_the_exact_size(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path))
    name = publish(store, b"0123456789")
    assert store.read(name, 10) == b"0123456789"
    with pytest.raises(IntegrityError, match="holds 10 bytes, expected 9"):
        store.read(name, 9)
    with pytest.raises(IntegrityError, match="holds 10 bytes, expected 11"):
        store.read(name, 11)


def test_open_missing_file_is_an_integrity_error(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="missing"):
        FileStore(str(tmp_path)).open(VALID)


def test_open_refuses_a_symlinked_value_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret")
    store = new_store(tmp_path / "cache")
    name = publish(store, b"x")
    path = tmp_path / "cache" / name
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(IntegrityError):
        store.open(name)
    store.unlink(name)  # removes the link, never its target
    assert not os.path.lexists(path)
    assert victim.read_bytes() == b"secret"


def test_open_refuses_a_symlinked_subdirectory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    leaf = VALID.rsplit("/", 1)[1]
    (outside / leaf).write_bytes(b"secret")
    store = new_store(tmp_path / "cache")
    publish(store, b"x")  # creates data/
    os.symlink(outside, tmp_path / "cache" / VALID.rsplit("/", 1)[0])
    with pytest.raises(IntegrityError):
        store.open(VALID)
    with pytest.raises(OSError):
        store.unlink(VALID)
    assert (outside / leaf).read_bytes() == b"secret"


def test_a_cache_never_follows_a_symlinked_value_subdirectory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with diskstore.Cache(str(tmp_path / "cache")) as cache:
        cache.set("f", os.urandom(BIG))
        name = filename_of(cache, "f")
        folder, leaf = name.rsplit("/", 1)
        sub = Path(cache.directory) / folder
        os.rename(sub / leaf, outside / leaf)
        sub.rmdir()
        sub.symlink_to(outside)
        with pytest.warns(diskstore.CorruptionWarning, match="'f'"):
            assert cache.get("f", "miss") == "miss"
        cache.set("g", os.urandom(BIG))
        set_filename(cache, "g", name)
        cache.delete("g")
    assert (outside / leaf).stat().st_size == BIG


@pytest.mark.parametrize("planted", ["link", "file"])
def test_check_fix_removes_a_planted_entry_in_data_without_following_it(
    tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ("0" * 30 + ".val")).write_bytes(b"keep")
    with diskstore.Cache(str(tmp_path / "cache")) as cache:
        cache.set("f", os.urandom(BIG))
        entry = Path(cache.directory) / "data" / "zz"
        if planted == "link":
            entry.symlink_to(outside)
        else:
            entry.write_bytes(b"junk")
        problems = cache.check(fix=True)
        assert [w.category for w in problems] == [diskstore.UnknownFileWarning]
        assert "zz" in str(problems[0].message)
        assert not os.path.lexists(entry)
        assert cache.check() == []
        assert len(cache["f"]) == BIG
    assert (outside / ("0" * 30 + ".val")).read_bytes() == b"keep"


def test_open_refuses_a_symlinked_data_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    inside = VALID.removeprefix("data/")
    (outside / inside.split("/")[0]).mkdir(parents=True)
    (outside / inside).write_bytes(b"secret")
    store = new_store(tmp_path / "cache")
    os.symlink(outside, tmp_path / "cache" / "data")
    with pytest.raises((IntegrityError, OSError)):
        store.open(VALID)
    with pytest.raises((IntegrityError, OSError)):
        store.unlink(VALID)
    assert (outside / inside).read_bytes() == b"secret"


@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_a_value_file_never_blocks_a_reader(tmp_path: Path) -> None:
    """A named pipe planted at a value file's name must not hang ``get`` (it would wait
    forever for a writer); it is a miss like any other bad file."""
    script = textwrap.dedent(
        """
        import os, sys, warnings
        import diskstore
        warnings.simplefilter("ignore")
        cache = diskstore.Cache(sys.argv[1])
        cache.set("f", os.urandom(40000))
        name = cache._store.run("SELECT filename FROM Cache")[0][0]
        path = os.path.join(sys.argv[1], name)
        os.unlink(path)
        os.mkfifo(path)
        print(repr(cache.get("f", "miss")))
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("get() blocked on a FIFO planted in place of a value file")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'miss'"


# -- scanning -----------------------------------------------------------------------------
def test_scan_lists_entries_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inner").write_text("x")
    store = new_store(tmp_path / "cache")
    name = publish(store, b"x")
    os.symlink(outside, tmp_path / "cache" / "data" / "zz")
    (tmp_path / "cache" / "data" / "stray").write_text("x")
    assert sorted(store.scan()) == sorted([name, "data/zz", "data/stray"])


# -- through the cache --------------------------------------------------------------------
def test_cache_creates_every_missing_directory_0700(tmp_path: Path) -> None:
    with umask(0o022):
        with diskstore.Cache(str(tmp_path / "a" / "b" / "c")) as cache:
            cache.set("f", os.urandom(BIG))
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert mode_bits(path) == 0o700, path
    data = tmp_path / "a" / "b" / "c" / "data"
    assert mode_bits(data) == 0o700
    assert all(mode_bits(sub) == 0o700 for sub in data.iterdir())


def test_cache_leaves_an_existing_directory_mode_alone(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o750)
    os.chmod(tmp_path / "shared", 0o750)
    with diskstore.Cache(str(tmp_path / "shared")):
        pass
    assert mode_bits(tmp_path / "shared") == 0o750


def test_every_cache_file_is_private(tmp_path: Path) -> None:
    """Database, WAL, shared-memory and value files are all 0600 under the usual umask."""
    with umask(0o022):
        cache = diskstore.Cache(str(tmp_path / "cache"))
        try:
            cache.set("small", 1)
            cache.set("big", os.urandom(BIG))
            cache.set("pickled", {"a": [1, 2]})
            found = {}
            for root, _dirs, files in os.walk(cache.directory):
                for name in files:
                    path = os.path.join(root, name)
                    found[os.path.relpath(path, cache.directory)] = mode_bits(path)
        finally:
            cache.close()
    assert "cache.db" in found
    assert any(name.startswith("data/") for name in found)
    loose = {name: oct(bits) for name, bits in found.items() if bits & 0o077}
    assert loose == {}


def test_value_files_of_a_cache_are_opened_without_following_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"not yours")
    with diskstore.Cache(str(tmp_path / "cache")) as cache:
        cache.set("f", os.urandom(BIG))
        path = Path(cache.directory) / filename_of(cache, "f")
        path.unlink()
        path.symlink_to(victim)
        with pytest.warns(diskstore.CorruptionWarning, match="'f'"):
            assert cache.get("f", "miss") == "miss"
        assert "f" in cache  # a read does not delete; check(fix=True) does
        cache.check(fix=True)
        assert "f" not in cache
        assert not os.path.lexists(path)
    assert victim.read_bytes() == b"not yours"


TAMPERED_NAMES = [
    "../../victim",
    "../victim",
    "ab/../../../victim",
    "/ABSOLUTE",  # replaced by the victim's absolute path
    "ab/../../victim.val",
]


def _tampered_cache(tmp_path: Path, name: str) -> tuple[diskstore.Cache, Path]:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    cache = diskstore.Cache(str(tmp_path / "cache"))
    cache.set("f", os.urandom(BIG))
    set_filename(cache, "f", str(victim) if name == "/ABSOLUTE" else name)
    return cache, victim


@pytest.mark.parametrize("name", TAMPERED_NAMES)
def test_tampered_filename_get_is_a_miss_and_the_victim_survives(tmp_path: Path, name: str) -> None:
    cache, victim = _tampered_cache(tmp_path, name)
    with cache:
        with pytest.warns(diskstore.CorruptionWarning, match="'f'"):
            assert cache.get("f", "miss") == "miss"
        assert len(cache) == 1  # a read does not delete; check(fix=True) does
        cache.check(fix=True)
        assert "f" not in cache
        assert len(cache) == 0
    assert victim.read_bytes() == b"keep me"


@pytest.mark.parametrize("name", TAMPERED_NAMES)
@pytest.mark.parametrize(
    "action", ["delete", "pop", "clear", "check_fix", "overwrite", "read", "expire", "evict"]
)
def test_tampered_filename_never_reaches_the_victim(tmp_path: Path, name: str, action: str) -> None:
    cache, victim = _tampered_cache(tmp_path, name)
    with cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if action == "delete":
            cache.delete("f")
        elif action == "pop":
            assert cache.pop("f", "miss") == "miss"
        elif action == "clear":
            cache.clear()
        elif action == "check_fix":
            problems = cache.check(fix=True)
            assert any("refusing value file name" in str(w.message) for w in problems)
            assert cache.check() == []
        elif action == "overwrite":
            cache.set("f", os.urandom(BIG))
            assert len(cache.get("f")) == BIG
        elif action == "read":
            with pytest.raises(KeyError):
                cache.read("f")
        elif action == "expire":
            cache.touch("f", expire=0)
            cache.expire(now=float("inf"))
        elif action == "evict":
            cache.set("f", 0, tag="t")  # replaces the row; its old name is dropped
            set_filename(cache, "f", name if name != "/ABSOLUTE" else str(victim))
            cache.evict("t")
        assert victim.read_bytes() == b"keep me"
    assert victim.read_bytes() == b"keep me"
    assert victim.parent.joinpath("victim").exists()


@pytest.mark.parametrize("name", TAMPERED_NAMES)
def test_tampered_filename_of_a_queued_value(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    with diskstore.Cache(str(tmp_path / "cache")) as cache:
        key = cache.push(os.urandom(BIG), prefix="q")
        cache.push(os.urandom(BIG), prefix="q")
        with contextlib.closing(db(cache)) as con:
            con.execute(
                "UPDATE Cache SET filename = ?",
                (str(victim) if name == "/ABSOLUTE" else name,),
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cache.peek(prefix="q") == (None, None)  # both entries fail
        assert [w.category for w in caught] == [diskstore.CorruptionWarning] * 2
        assert key in str(caught[0].message)
        assert len(cache) == 0
        cache.push(os.urandom(BIG), prefix="q")
        with contextlib.closing(db(cache)) as con:
            con.execute("UPDATE Cache SET filename = ?", (name,))
        with pytest.warns(diskstore.CorruptionWarning):
            with pytest.raises(KeyError):
                cache.peekitem()
    assert victim.read_bytes() == b"keep me"


def test_check_reports_and_removes_debris_but_keeps_live_writes(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path / "cache")) as cache:
        cache.set("f", os.urandom(BIG))
        store = cache.disk.files
        stray = publish(store, b"stray")  # a final name no row references
        live = store.write([b"in progress"])  # a writer still holds its lock
        dead = store.write([b"crashed"])
        dead_temp = dead.name[:-4] + ".tmp"
        dead.close()  # its writer is gone
        live_temp = live.name[:-4] + ".tmp"
        problems = [str(w.message) for w in cache.check()]
        assert any(stray in message for message in problems)
        assert any(dead_temp in message for message in problems)
        assert not any(live_temp in message for message in problems)
        cache.check(fix=True)
        remaining = set(store.scan())
        assert stray not in remaining and dead_temp not in remaining
        assert live_temp in remaining
        assert len(cache.get("f")) == BIG
        store.discard(live)
        cache.check(fix=True)  # the discarded file may leave an empty directory
        assert cache.check() == []


def test_a_locked_temporary_is_recognised_through_flock(tmp_path: Path) -> None:
    """``in_progress`` asks the kernel (flock), so it sees locks held by other processes."""
    store = FileStore(str(tmp_path))
    pending = store.write([b"x"])
    temp = pending.name[:-4] + ".tmp"
    fd = os.open(os.path.join(store.root, temp), os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    store.discard(pending)


# -- the database file ------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["other-database", "missing"])
def test_a_symlink_planted_as_the_database_is_not_followed(tmp_path: Path, target: str) -> None:
    """A link at ``cache.db`` must not make the cache write to (or create) a file
    elsewhere, such as another SQLite database of the same user."""
    outside = tmp_path / "outside"
    outside.mkdir()
    other = outside / "precious.db"
    if target == "other-database":
        with contextlib.closing(sqlite3.connect(other)) as con:
            con.execute("CREATE TABLE precious (x)")
            con.execute("INSERT INTO precious VALUES (1)")
            con.commit()
    before = {path.name: path.read_bytes() for path in outside.iterdir()}
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    (directory / "cache.db").symlink_to(other)
    try:
        with diskstore.Cache(str(directory)) as cache:
            cache["k"] = "v"
    except (diskstore.DiskStoreError, OSError):
        pass  # refusing to open is the expected outcome
    after = {path.name: path.read_bytes() for path in outside.iterdir()}
    assert after == before


def test_a_data_folder_moved_away_is_not_read_or_written(tmp_path: Path) -> None:
    """Reads keep a descriptor of ``data/``; once that folder is replaced, they go by path."""
    with diskstore.Cache(str(tmp_path)) as cache:
        cache["a"] = b"a" * 100_000
        assert cache["a"] == b"a" * 100_000  # the first read keeps ``data/`` open
        os.rename(tmp_path / "data", tmp_path / "moved")
        cache["b"] = b"b" * 100_000
        assert (tmp_path / "data").is_dir()
        assert cache["b"] == b"b" * 100_000
        with pytest.warns(diskstore.CorruptionWarning, match="missing"):
            assert cache.get("a") is None
