"""A row is never durable before its value file (see diskstore/_fs/_durability.py).

Where each commit is synced (a rollback journal, or ``sqlite_synchronous >= 2``), a value
file, its directory and any directory created for it are synced before the commit. In WAL
mode at NORMAL, SQLite's own checkpoints are off and diskstore's each follow a filesystem
sync. tests/reliability/test_power_cut.py checks the result against real power cuts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import diskstore
from diskstore._fs import _durability, _files
from diskstore._storage import _checkpointer
from diskstore._storage._store import DB_NAME


def _synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every descriptor diskstore fsyncs."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize(
    "settings",
    [{"sqlite_synchronous": 2}, {"sqlite_journal_mode": "delete"}],
    ids=["full", "rollback-journal"],
)
def test_file_and_its_directories_synced_before_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, object]
) -> None:
    directory = str(tmp_path / "c")
    synced = _synced_paths(monkeypatch)
    published: list[str] = []
    real_publish = _files.FileStore.publish

    def publish(self: _files.FileStore, pending: _files.PendingFile) -> None:
        real_publish(self, pending)
        published.append(os.path.join(self.root, pending.name))
        published.append(str(len(synced)))  # how many syncs had happened when it returned

    monkeypatch.setattr(_files.FileStore, "publish", publish)
    with diskstore.Cache(directory, **settings) as cache:
        cache.set("big", b"x" * 100_000)
        cache.set("bigger", b"y" * 200_000)
    first, count = published[0], int(published[1])
    before_commit = synced[:count]
    data = os.path.join(directory, "data")
    # The first file created data/ and data/xx/: their parents are synced too.
    for path in (first[:-4] + ".tmp", os.path.dirname(first), data, directory):
        assert path in before_commit, (path, before_commit)


def test_no_per_file_sync_in_wal_normal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced_paths(monkeypatch)
    with diskstore.Cache(str(tmp_path / "c")) as cache:
        for number in range(20):
            cache.set(number, os.urandom(50_000))
        assert not any(path.endswith((".val", ".tmp")) for path in synced)
    # Before its connections close (the last one checkpoints), they are all synced.
    assert sum(path.endswith(".val") for path in synced) == 20


def test_checkpoints_follow_a_filesystem_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "c")
    wal = os.path.join(directory, DB_NAME + "-wal")
    events: list[tuple[str, int]] = []
    real = _durability.sync_filesystem

    def sync_filesystem(path: str) -> None:
        events.append(("sync", os.path.getsize(wal) if os.path.exists(wal) else 0))
        real(path)

    monkeypatch.setattr(_durability, "sync_filesystem", sync_filesystem)
    largest = 0
    with diskstore.Cache(directory) as cache:
        con = cache._store.connect_thread().con
        assert con is not None
        assert con.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for number in range(3000):
            cache.set(number, os.urandom(2000))  # inline values: the log grows by ~2 KB each
            largest = max(largest, os.path.getsize(wal))
    syncs = [size for kind, size in events if kind == "sync"]
    assert any(size >= _durability.CHECKPOINT_BYTES for size in syncs)
    # Checkpoints ran (the log restarts instead of growing past a few times the threshold).
    assert largest < 4 * _durability.CHECKPOINT_BYTES


def test_checkpoints_come_once_per_log_of_checkpoint_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a checkpoint the log restarts from its beginning; a log that kept its size would
    # look due again sixteen commits later and sync the filesystem nearly every time.
    directory = str(tmp_path / "c")
    wal = os.path.join(directory, DB_NAME + "-wal")
    syncs: list[int] = []
    real = _durability.sync_filesystem

    def sync_filesystem(path: str) -> None:
        syncs.append(os.path.getsize(wal))
        real(path)

    monkeypatch.setattr(_durability, "sync_filesystem", sync_filesystem)
    with diskstore.Cache(directory) as cache:
        for number in range(4000):
            cache.set(number % 100, os.urandom(32))  # a few pages of log per commit
        during = len(syncs)
    assert during >= 2
    assert during <= 4000 // 100  # before: one every 16 commits once the log had filled


def test_the_log_restarts_at_the_checkpoint_size(tmp_path: Path) -> None:
    # After a checkpoint the log restarts from its beginning and is cut back to the
    # checkpoint size, not to nothing (writes that extend a file cost more than writes
    # into it); it grows past that size again only once that much has been written.
    directory = tmp_path / "c"
    wal = str(directory / (DB_NAME + "-wal"))
    with diskstore.Cache(str(directory)) as cache:
        for number in range(1400):
            cache.set(number, os.urandom(3000))
        con = cache._store.connect_thread().con
        assert con is not None
        assert (
            con.execute("PRAGMA journal_size_limit").fetchone()[0] == _durability.CHECKPOINT_BYTES
        )
        busy, frames, copied = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied
        cache.set("restart", os.urandom(3000))  # the next commit restarts the log
        assert os.path.getsize(wal) == _durability.CHECKPOINT_BYTES
        assert not cache._store.checkpoints.log_bytes() > _durability.CHECKPOINT_BYTES


def test_sqlite_files_are_never_opened_besides_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing any descriptor of a file drops every POSIX lock the process holds on it, so a
    # descriptor diskstore opened and closed on the database, its log or its shared-memory
    # file would silently release SQLite's own locks there.
    directory = str(tmp_path / "c")
    opened: list[str] = []
    real = os.open

    def recording_open(path: str, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    with diskstore.Cache(directory) as cache:
        cache.set("warm", 1)
        monkeypatch.setattr(os, "open", recording_open)
        for number in range(3000):
            cache.set(number % 300, os.urandom(2000))
            if number % 50 == 0:
                cache.set(f"file{number}", os.urandom(100_000))
                cache.delete(f"file{number}")
        cache.check()
    sqlite_files = {DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal"}
    assert not [path for path in opened if os.path.basename(path) in sqlite_files]


# -- files a commit dropped --------------------------------------------------------------------
# In WAL mode at NORMAL a commit is on disk only once a checkpoint has synced the log: a file
# the commit replaced or deleted stays until then, so a power cut that rolls the commit back
# finds the old row's file.
def _value_files(directory: str) -> set[str]:
    found = set()
    for parent, _dirs, names in os.walk(os.path.join(directory, "data")):
        found.update(os.path.relpath(os.path.join(parent, name), directory) for name in names)
    return found


def _replaced_file(cache: diskstore.Cache, key: str = "big") -> str:
    """Store a file value under *key*, overwrite it, return the replaced file's name."""
    before = _value_files(cache.directory)
    cache.set(key, os.urandom(100_000))
    (old,) = _value_files(cache.directory) - before
    cache.set(key, os.urandom(100_000))
    return old


def test_a_dropped_file_waits_for_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        old = _replaced_file(cache)
        cache.set("other", os.urandom(100_000))
        deleted = _replaced_file(cache, "gone")
        cache.delete("gone")
        assert {old, deleted} <= _value_files(directory)  # nothing checkpointed yet
        monkeypatch.setattr(_durability, "CHECK_EVERY", 1)
        monkeypatch.setattr(_durability, "CHECKPOINT_BYTES", 0)
        cache.set("small", 1)  # the log is due: this commit checkpoints
        assert not {old, deleted} & _value_files(directory)
        assert len(_value_files(directory)) == 2  # "big" and "other"
        assert cache["other"] is not None


_CHECKPOINTER = """
import os, sys
import diskstore
with diskstore.Cache(sys.argv[1]) as cache:
    cache.set("theirs", os.urandom(100_000))
    cache.set("theirs", os.urandom(100_000))  # closing checkpoints, to remove the first file
"""


def test_a_checkpoint_by_another_process_releases_dropped_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        old = _replaced_file(cache)
        cache.set("small", 1)
        assert old in _value_files(directory)
        subprocess.run([sys.executable, "-c", _CHECKPOINTER, directory], check=True)
        assert old in _value_files(directory)  # this process learns it at its next commit
        assert cache._store.changes is not None
        assert cache._store.changes.durable() >= cache._store.checkpoints.dropped[0].need
        cache.set("small", 2)
        assert old not in _value_files(directory)
        assert not cache._store.checkpoints.dropped


def _wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_dropped_bytes_past_the_limit_force_a_checkpoint(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        cache._store.defer_limit = 500_000
        for _ in range(40):
            cache.set("big", os.urandom(100_000))
            # The background thread runs the checkpoint; a writer that gets that far
            # ahead of it runs one itself.
            bound = _checkpointer.BACKLOG * 500_000 + 4 * 100_000
            assert cache._store.checkpoints.dropped_bytes <= bound
            assert len(_value_files(directory)) <= 1 + bound // 100_000
        assert _wait_until(lambda: cache._store.checkpoints.dropped_bytes <= 500_000)
        assert len(_value_files(directory)) <= 1 + 5 + 4


def test_the_forced_checkpoint_runs_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that crosses the limit does not wait for the sync and the unlinks."""
    threads: list[str] = []
    real = _durability.Checkpoints.before_checkpoint

    def before_checkpoint(self: _durability.Checkpoints) -> None:
        threads.append(threading.current_thread().name)
        real(self)

    monkeypatch.setattr(_durability.Checkpoints, "before_checkpoint", before_checkpoint)
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        store = cache._store
        store.defer_limit = 500_000
        for _ in range(8):
            cache.set("big", os.urandom(100_000))
        assert _checkpointer.wait_idle(20)
        assert store.checkpoints.dropped_bytes <= 500_000
        assert threads and set(threads) == {"diskstore-checkpoint"}, threads
        assert len(_value_files(directory)) < 8
        # The thread closed its connection: only the caller's own is left.
        assert _wait_until(lambda: sum(c.con is not None for c in list(store._conns)) == 1)


class _SlowStore:
    """Stands in for a store: its first background checkpoint waits to be let go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.go = threading.Event()
        self.runs = 0

    def checkpoint_behind(self) -> None:
        self.runs += 1
        self.started.set()
        assert self.go.wait(20)


def test_a_request_while_the_stores_checkpoint_runs_gets_a_checkpoint_of_its_own() -> None:
    """Files dropped after a running checkpoint looked are not left for the next write:
    asking again while it runs queues the store once more."""
    store = _SlowStore()
    assert _checkpointer.request(store)  # type: ignore[arg-type]
    assert store.started.wait(20)
    assert _checkpointer.request(store)  # type: ignore[arg-type]
    assert _checkpointer.request(store)  # type: ignore[arg-type]  # still one more run
    store.go.set()
    assert _checkpointer.wait_idle(20)
    assert store.runs == 2


def _in_background_sync(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> None:
    """Call *run* when the background thread starts the sync before its checkpoint."""
    real = _durability.Checkpoints.before_checkpoint

    def before_checkpoint(self: _durability.Checkpoints) -> None:
        if threading.current_thread().name == "diskstore-checkpoint":
            run()
        real(self)

    monkeypatch.setattr(_durability.Checkpoints, "before_checkpoint", before_checkpoint)


def test_a_writer_far_ahead_of_the_background_checkpoints_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the disk cannot keep up, the space the waiting files hold stays bounded."""
    stalled = threading.Event()
    release = threading.Event()
    _in_background_sync(monkeypatch, lambda: (stalled.set(), release.wait(30)))
    directory = str(tmp_path / "c")
    try:
        with diskstore.Cache(directory) as cache:
            store = cache._store
            store.defer_limit = 500_000
            peak = 0
            for _ in range(40):
                cache.set("big", os.urandom(100_000))
                peak = max(peak, store.checkpoints.dropped_bytes)
            assert stalled.is_set()  # the thread was asked, and is stuck in its sync
            # Twice the limit at most (and the commits between two looks at it).
            assert peak <= 2 * 500_000 + 4 * 100_000, peak
            assert store.checkpoints.dropped_bytes <= 2 * 500_000
            release.set()
    finally:
        release.set()
    assert _value_files(directory) and len(_value_files(directory)) == 1  # close removed them


def test_close_waits_for_a_background_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = threading.Event()
    _in_background_sync(monkeypatch, lambda: (started.set(), time.sleep(0.3)))
    directory = str(tmp_path / "c")
    cache = diskstore.Cache(directory)
    store = cache._store
    store.defer_limit = 500_000
    for _ in range(8):
        cache.set("big", os.urandom(100_000))
    assert started.wait(20)
    cache.close()
    assert len(_value_files(directory)) == 1
    assert all(conn.con is None for conn in list(store._conns))
    assert not os.path.exists(os.path.join(directory, DB_NAME + "-wal"))


def test_the_limit_follows_size_limit(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path / "c"), size_limit=2**30) as cache:
        assert cache._store.defer_limit == _durability.DEFER_BYTES
        cache.reset("size_limit", 64 << 20)
        assert cache._store.defer_limit == 16 << 20
        cache.reset("size_limit", 1 << 20)
        assert cache._store.defer_limit == _durability.DEFER_MIN_BYTES


def test_close_removes_dropped_files(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    cache = diskstore.Cache(directory)
    old = _replaced_file(cache)
    cache.delete("big")
    assert old in _value_files(directory)
    cache.close()
    assert _value_files(directory) == set()


_READER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN")
con.execute("SELECT count(*) FROM Cache").fetchall()  # a snapshot: the log cannot be copied
print("reading", flush=True)
sys.stdin.readline()
con.close()
"""


def test_close_removes_dropped_files_while_a_reader_blocks_the_checkpoint(
    tmp_path: Path,
) -> None:
    directory = str(tmp_path / "c")
    cache = diskstore.Cache(directory)
    cache.set("big", os.urandom(100_000))
    (old,) = _value_files(directory)
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, os.path.join(directory, DB_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        cache.delete("big")  # after the reader's snapshot: its commit cannot be copied
        store = cache._store
        con = store.enter()
        try:
            assert con.con is not None
            assert not store._checkpoint(con.con, "PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            con.depth -= 1
        assert old in _value_files(directory)  # the checkpoint could not show it on disk
        cache.close()  # the log is synced by a commit instead
        assert _value_files(directory) == set()
        assert store.changes is not None and store.changes.durable() > 0
    finally:
        reader.communicate("\n", timeout=30)


_EXITER = """
import os, sys
import diskstore
cache = diskstore.Cache(sys.argv[1])
cache.set("big", os.urandom(100_000))
cache.set("big", os.urandom(100_000))
cache.delete("big")
"""


def test_exit_without_close_removes_dropped_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    directory = str(tmp_path / "c")
    subprocess.run([sys.executable, "-c", _EXITER, directory], check=True)
    assert _value_files(directory) == set()


@pytest.mark.parametrize(
    "settings",
    [{"sqlite_synchronous": 2}, {"sqlite_journal_mode": "delete"}, {"sqlite_synchronous": 0}],
    ids=["full", "rollback-journal", "off"],
)
def test_other_modes_remove_dropped_files_at_once(
    tmp_path: Path, settings: dict[str, object]
) -> None:
    # Where every commit is synced, it is on disk once it returns; at OFF nothing is promised.
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory, **settings) as cache:
        old = _replaced_file(cache)
        assert old not in _value_files(directory)
        cache.delete("big")
        assert _value_files(directory) == set()
        assert not cache._store.checkpoints.dropped


def test_a_rolled_back_file_is_removed_at_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        with pytest.raises(ZeroDivisionError), cache.transact():
            cache.set("big", os.urandom(100_000))
            1 / 0  # noqa: B018
        assert _value_files(directory) == set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_leaves_its_parents_dropped_files_to_the_parent(tmp_path: Path) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        old = _replaced_file(cache)
        pid = os.fork()
        if pid == 0:  # the child: its copy of the list is not its own
            code = 1
            try:
                code = 0 if not cache._store.checkpoints.dropped else 2
                cache.set("child", os.urandom(100_000))
                cache.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert old in _value_files(directory)  # the child did not remove it
        assert cache._store.checkpoints.dropped  # nor did the parent lose it
    assert old not in _value_files(directory)


_KILLED = """
import os, sys
import diskstore
cache = diskstore.Cache(sys.argv[1])
for number in range(5):
    cache.set("big", os.urandom(100_000))
print("ready", flush=True)
sys.stdin.read()
"""


def test_files_left_by_a_killed_process_are_removed_by_check_fix(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    directory = str(tmp_path / "c")
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED, directory],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    assert writer.stdout.readline() == "ready\n"
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    assert len(_value_files(directory)) == 5  # four replaced files it had no time to remove
    with diskstore.Cache(directory) as cache:
        value = cache["big"]
        problems = [str(problem.message) for problem in cache.check()]
        assert len(problems) == 4
        assert all(message.startswith("unreferenced file") for message in problems)
        cache.check(fix=True)
        assert cache.check() == []
        assert len(_value_files(directory)) == 1
        assert cache["big"] == value


def test_a_full_disk_frees_the_dropped_files_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    directory = str(tmp_path / "c")
    real = _files._write_all
    failures = [1]

    def write_all(fd: int, data: object) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)  # type: ignore[arg-type]

    with diskstore.Cache(directory) as cache:
        old = _replaced_file(cache)
        monkeypatch.setattr(_files, "_write_all", write_all)
        # The write meets a full disk: the files waiting for a checkpoint go, then it retries.
        cache.set("new", os.urandom(100_000))
        assert old not in _value_files(directory)
        assert failures == [0]
        # While value files cannot be written, a removal frees its file at once.
        failures[0] = 2
        with pytest.raises(diskstore.StorageFullError):
            cache.set("newer", os.urandom(100_000))
        dropped = _value_files(directory)
        cache.delete("new")
        assert len(_value_files(directory)) == len(dropped) - 1
