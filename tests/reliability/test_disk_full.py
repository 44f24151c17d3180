"""Item 3: a full disk gives a clear error, damages nothing, and space can be freed.

Three ways to run out of space, none needing root:

- SQLite's ``FULL``, forced with ``PRAGMA max_page_count`` on the cache's own connection;
- ``ENOSPC`` injected into the value-file writer at a chosen chunk;
- a real, small tmpfs mounted in a private user and mount namespace (skipped where the
  system does not allow unprivileged namespaces), which is the only way to see the WAL
  itself run out of room. diskcache is measured there too, for comparison.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import diskstore
import diskstore._fs._files

from ._support import data_files, integrity, orphan_files, payload

FULL_DISK_SCRIPT = str(Path(__file__).with_name("_full_disk.py"))


def assert_full_error(exc: BaseException) -> None:
    assert isinstance(exc, diskstore.StorageFullError)
    assert isinstance(exc, diskstore.DiskStoreError)
    assert isinstance(exc, OSError)
    assert exc.errno == errno.ENOSPC
    assert str(exc)


# -- SQLite FULL through max_page_count ---------------------------------------------------
def _limit_pages(cache: diskstore.Cache, pages: int | None = None) -> None:
    """Cap the database at its current size (``max_page_count`` is per connection)."""
    if pages is None:
        pages = cache._store.run("PRAGMA page_count")[0][0]
    cache._store.run(f"PRAGMA max_page_count = {int(pages)}")


def _fill(cache: diskstore.Cache, prefix: str) -> diskstore.StorageFullError:
    """Cap the database and write small values until one no longer fits."""
    _limit_pages(cache)
    for number in range(20_000):
        try:
            cache.set(f"{prefix}{number}", payload(prefix, str(number), 500))
        except diskstore.StorageFullError as exc:
            return exc
    raise AssertionError("the database never filled up")


@pytest.fixture
def populated(cache_dir):
    """A cache with inline, file-backed, tagged and expiring entries, and what they hold."""
    cache = diskstore.Cache(cache_dir, cull_limit=0, size_limit=200_000)
    expected: dict[str, bytes] = {}
    for number in range(30):
        expected[f"k{number}"] = payload("k", str(number), 3000)
    for number in range(4):
        expected[f"f{number}"] = payload("f", str(number), 100_000)
    for key, value in expected.items():
        cache.set(key, value)
    for number in range(10):
        cache.set(f"t{number}", payload("t", str(number), 3000), tag="group")
        cache.set(f"x{number}", payload("x", str(number), 3000), expire=0.05)
    time.sleep(0.06)
    try:
        yield cache, expected
    finally:
        cache.close()


def test_sqlite_full_is_a_clear_error_and_harms_nothing(populated, figures):
    cache, expected = populated
    first = _fill(cache, "fill")
    assert_full_error(first)

    with pytest.raises(diskstore.StorageFullError) as caught:
        cache.set("big-inline", payload("big", "0", 20_000))
    assert_full_error(caught.value)

    # A file-backed value whose row does not fit: the published file must go again.
    files_before = set(data_files(cache.directory))
    for number in range(500):
        try:
            cache.set(f"file{number}", payload("file", str(number), 50_000))
        except diskstore.StorageFullError as exc:
            assert_full_error(exc)
            break
    else:
        raise AssertionError("file-backed sets never hit the page limit")
    failed_key = f"file{number}"
    assert failed_key not in cache
    assert orphan_files(cache.directory) == []
    assert set(data_files(cache.directory)) >= files_before

    # The connection that hit FULL is still usable, and nothing earlier was harmed.
    assert integrity(cache.directory) == ["ok"]
    for key, value in expected.items():
        assert cache.get(key) == value

    # Space returns: the very next write works on the same connection.
    _limit_pages(cache, 1 << 30)
    cache.set("big-inline", payload("big", "0", 20_000))
    cache.set(failed_key, payload("file", "again", 50_000))
    assert cache.get("big-inline") == payload("big", "0", 20_000)
    assert cache.get(failed_key) == payload("file", "again", 50_000)
    cache.check(fix=True)
    assert cache.check() == []
    figures.record("disk full (max_page_count): orphan files after a failed write", 0)


def test_space_can_be_freed_while_sqlite_is_full(populated, figures):
    cache, expected = populated
    keys = list(expected)
    failures = 0
    tried = 0
    for key in keys[:20]:
        _fill(cache, f"fill-{key}-")
        tried += 1
        try:
            assert cache.delete(key) is True
        except diskstore.StorageFullError:
            failures += 1
    figures.record(f"disk full (max_page_count): deletes failed of {tried}", failures)
    assert failures == 0

    _fill(cache, "before-evict")
    assert cache.evict("group") == 10
    _fill(cache, "before-expire")
    assert cache.expire() == 10
    _fill(cache, "before-cull")
    assert cache.cull() > 0
    assert cache.volume() <= 200_000
    _fill(cache, "before-clear")
    assert cache.clear() > 0
    assert len(cache) == 0
    assert integrity(cache.directory) == ["ok"]
    cache.check(fix=True)
    assert cache.check() == []
    assert orphan_files(cache.directory) == []


# -- SQLite IOERR: a write the operating system refuses ------------------------------------
def _ioerror_probe(directory: str, results) -> None:
    """In a child: cap the file size (RLIMIT_FSIZE) so the WAL cannot grow, then write."""
    import resource
    import signal

    report: dict[str, object] = {}
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of dying
        with diskstore.Cache(directory) as cache:
            for number in range(20):
                cache.set(f"k{number}", payload("k", str(number), 2000))
            wal = os.path.getsize(os.path.join(directory, "cache.db-wal"))
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (wal, hard))
            for name, size in (("inline", 30_000), ("file", 200_000), ("too-big", 2 << 20)):
                try:
                    cache.set(name, payload(name, "0", size))
                except Exception as exc:
                    report[name] = (
                        type(exc).__name__,
                        isinstance(exc, diskstore.StorageError),
                        getattr(exc, "errno", None),
                    )
                else:
                    report[name] = None
            report["readable"] = all(
                cache.get(f"k{number}") == payload("k", str(number), 2000) for number in range(20)
            )
            report["orphans"] = orphan_files(directory)
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            for name, size in (("inline", 30_000), ("file", 200_000)):
                cache.set(name, payload(name, "0", size))
            report["after"] = all(
                cache.get(name) == payload(name, "0", size)
                for name, size in (("inline", 30_000), ("file", 200_000))
            )
        report["integrity"] = integrity(directory)
        results.put(("ok", report))
    except BaseException as exc:
        results.put(("error", repr(exc)))


@pytest.mark.timeout(60)
def test_sqlite_io_error_rolls_back_and_the_connection_stays_usable(cache_dir):
    import multiprocessing
    import queue

    from ._support import start_forked

    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    child = fork.Process(target=_ioerror_probe, args=(cache_dir, results))
    start_forked(child)
    try:
        status, report = results.get(timeout=40)
    except queue.Empty:
        raise AssertionError("the probe did not report") from None
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)
    assert status == "ok", report
    for name in ("inline", "file"):  # the WAL could not grow: SQLite's IOERR
        assert report[name] == ("StorageError", True, errno.EIO), name
    assert report["too-big"] == ("StorageError", True, errno.EFBIG)  # the value file
    assert report["readable"] is True
    assert report["orphans"] == []
    assert report["after"] is True
    assert report["integrity"] == ["ok"]


# -- ENOSPC from the value-file writer ----------------------------------------------------
class FailingWriter:
    """Stands in for ``_files._write_all``: raises ENOSPC at the *fail_at*-th chunk."""

    def __init__(self, real, fail_at: int | None) -> None:
        self.real = real
        self.fail_at = fail_at
        self.calls = 0

    def __call__(self, fd, data):
        self.calls += 1
        if self.fail_at is None or self.calls == self.fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd, data)


@functools.cache
def _big_random(size: int = 3 << 20) -> bytes:
    return payload("random", str(size), size)


WRITES = {
    # name: (operation on the cache, how to read the stored value back)
    "bytes": (lambda c: c.set("v", _big_random()), lambda c: c.get("v")),
    "text": (lambda c: c.set("v", _big_random().hex()), lambda c: c.get("v")),
    "compressible": (lambda c: c.set("v", b"abc" * (1 << 20)), lambda c: c.get("v")),
    "pickled": (lambda c: c.set("v", [_big_random()]), lambda c: c.get("v")),
    "stream": (lambda c: c.set("v", io.BytesIO(_big_random()), read=True), lambda c: c.get("v")),
    "overwrite": (lambda c: c.set("f0", _big_random()), lambda c: c.get("f0")),
    "push": (lambda c: c.push(_big_random(), prefix="q"), lambda c: c.peek(prefix="q")[1]),
}
EXPECTED = {
    "bytes": _big_random,
    "text": lambda: _big_random().hex(),
    "compressible": lambda: b"abc" * (1 << 20),
    "pickled": lambda: [_big_random()],
    "stream": _big_random,
    "overwrite": _big_random,
    "push": _big_random,
}


@pytest.mark.parametrize(
    ("kind", "fail_at"),
    [
        ("bytes", 1),
        ("bytes", 2),
        ("bytes", 3),
        ("text", 2),
        ("compressible", 1),
        ("pickled", 2),
        ("stream", 2),
        ("overwrite", 2),
        ("push", 3),
    ],
)
def test_enospc_in_value_file_writer(populated, monkeypatch, figures, kind, fail_at):
    cache, expected = populated
    write, read_back = WRITES[kind]
    files_before = data_files(cache.directory)
    rows_before = len(cache)
    injected = FailingWriter(diskstore._fs._files._write_all, fail_at)
    monkeypatch.setattr(diskstore._fs._files, "_write_all", injected)

    with pytest.raises(diskstore.StorageFullError) as caught:
        write(cache)
    assert_full_error(caught.value)
    assert injected.calls == fail_at
    leftover = set(data_files(cache.directory)) - set(files_before)
    figures.add("disk full (ENOSPC injected): files left by failed writes", len(leftover))
    assert leftover == set()
    assert len(cache) == rows_before
    assert integrity(cache.directory) == ["ok"]
    for key, value in expected.items():
        assert cache.get(key) == value
    problems = [w for w in cache.check() if w.category is not diskstore.EmptyDirWarning]
    assert problems == []

    monkeypatch.setattr(diskstore._fs._files, "_write_all", injected.real)
    write(cache)
    assert read_back(cache) == EXPECTED[kind]()


def test_space_can_be_freed_while_value_files_cannot_be_written(populated, monkeypatch):
    cache, _expected = populated
    monkeypatch.setattr(
        diskstore._fs._files, "_write_all", FailingWriter(diskstore._fs._files._write_all, None)
    )
    with pytest.raises(diskstore.StorageFullError):
        cache.set("v", _big_random())
    assert cache.delete("f0") is True
    assert cache.evict("group") == 10
    assert cache.expire() == 10
    assert cache.cull() > 0
    assert cache.clear() > 0
    assert data_files(cache.directory) == {}
    cache.set("small", b"still fine")
    assert cache.get("small") == b"still fine"


# -- a real full file system --------------------------------------------------------------
def _namespace_command() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return None
    return [unshare, "--user", "--map-root-user", "--mount"]


@pytest.fixture(scope="module")
def private_tmpfs(tmp_path_factory):
    """A command prefix that runs a process where it may mount a tmpfs, or skip."""
    command = _namespace_command()
    if command is None:
        pytest.skip("needs Linux with unshare(1)")
    probe = tmp_path_factory.mktemp("mount-probe")
    result = subprocess.run(
        [*command, "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
        capture_output=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.skip(f"unprivileged mount namespaces unavailable: {result.stderr.decode()[:200]}")
    return command


def _run_full_disk(command: list[str], library: str, mount: Path) -> dict:
    mount.mkdir()
    result = subprocess.run(
        [*command, sys.executable, FULL_DISK_SCRIPT, library, str(mount), "16m"],
        capture_output=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_full_file_system(private_tmpfs, tmp_path, figures):
    ours = _run_full_disk(private_tmpfs, "diskstore", tmp_path / "ours")
    theirs = _run_full_disk(private_tmpfs, "diskcache", tmp_path / "theirs")
    freed = ("evict", "cull", "clear")
    rows = {
        "real full disk: deletes failed of 56": ("deletes_failed", lambda v: v),
        "real full disk: evict/cull/clear failed of 3": (
            None,
            lambda r: sum(not r[name]["ok"] for name in freed),
        ),
        "real full disk: orphan files while full": ("orphans_while_full", lambda v: v),
        "real full disk: partial files under a final name": ("partial_while_full", lambda v: v),
        "real full disk: orphan files after one fix pass": ("orphans_after_fix", lambda v: v),
    }
    for name, (field, get) in rows.items():
        value_ours = get(ours) if field is None else get(ours[field])
        value_theirs = get(theirs) if field is None else get(theirs[field])
        figures.record(name, value_ours, diskcache=value_theirs)
    figures.record(
        "real full disk: errors are OSError(ENOSPC)",
        int(ours["errors_are_enospc"]),
        diskcache=int(theirs["errors_are_enospc"]),
    )

    assert ours["errors_are_enospc"], ours["first_errors"]
    assert all(e["type"].startswith("diskstore.") for e in ours["first_errors"])
    assert ours["orphans_while_full"] == 0
    assert ours["partial_while_full"] == 0
    assert ours["integrity_while_full"] == ["ok"]
    assert ours["unreadable_while_full"] == 0
    assert ours["deletes_tried"] == 56
    assert ours["deletes_failed"] == 0, ours["delete_error"]
    for name in freed:
        assert ours[name]["ok"], (name, ours[name])
    assert ours["set_after_space_returns"]
    assert ours["unreadable_after"] == 0
    assert ours["integrity_after"] == ["ok"]
    assert ours["fix_pass_ran"]
    assert ours["problems_after_fix"] == 0
    assert ours["orphans_after_fix"] == 0
