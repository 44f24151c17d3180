"""A row never reaches the disk before its value file, and never outlives it there.

After a power cut, a row that survived must find its value file whole: the file's data and
the directory entries naming it (the rename from ``.tmp``, a new ``data/xx/`` directory, a
new ``data/``) must be durable no later than the row. When the row becomes durable depends
on SQLite's mode:

- With a rollback journal, or ``sqlite_synchronous >= 2`` (FULL), every commit is synced:
  each value file is synced, with the directories that name it, before its transaction
  commits (:func:`per_commit`, done by :class:`~diskstore._fs._files.FileStore`).
- In WAL mode at ``sqlite_synchronous = 1`` (NORMAL, the default) a commit only appends to
  the log, which is synced when it is checkpointed into the database. Files are not synced
  one by one; instead every checkpoint syncs the whole filesystem first (``syncfs``), which
  makes durable every value file any process wrote before it, and their directory entries.
  SQLite's automatic checkpoints cannot be preceded by anything, so diskstore turns them off
  (``wal_autocheckpoint = 0``) and checkpoints itself after commits once the log has grown
  by :data:`CHECKPOINT_BYTES` (SQLite's own default) since the last checkpoint. Closing the
  last connection also checkpoints (and removes the log, as diskcache users expect), so a
  process that committed value files syncs them before it closes a connection. A
  connection closed any other way (garbage collected, abandoned by a fork, at interpreter
  exit) is told, where Python can (3.12+), not to checkpoint at all.
- A value file that a commit replaced or deleted may be unlinked only once the commit is
  durable, or a power cut could roll the commit back and bring back a row without its
  file. Where every commit is synced, it is durable when it returns: the file goes at once.
  In WAL mode at NORMAL it is durable once a checkpoint that copied the whole log has run
  (SQLite syncs the log before copying it), so :class:`Checkpoints` keeps the files each
  commit of this process dropped (:meth:`Checkpoints.defer`) and hands them back for
  removal after such a checkpoint. It may be this process's own (the batches deferred
  before it started) or another process's: a checkpointer reads ``done`` of the shared
  change counter (_changes.py) before starting and, once the whole log is copied, records
  it as ``durable``; every transaction numbered up to it had finished before the
  checkpoint started. A batch waits for ``durable`` to reach its commit's number. Waiting
  for durability before each unlink instead would sync the new value and the log on every
  overwrite of a file-backed value (10 MB overwrites about 3x slower); here a sync comes
  once per checkpoint. So that the disk space held stays bounded, a checkpoint is forced
  once the waiting files hold :func:`defer_limit` bytes (by a background thread, so that
  the write that crossed the limit does not wait: ``_storage/_checkpointer.py``);
  ``close()``, ``check()`` and the process's exit checkpoint and remove what is left
  (where a reader keeps that checkpoint from copying the whole log, a commit at
  ``synchronous = FULL`` syncs the log instead: ``Store._sync_log``). A process killed
  meanwhile leaves those files unreferenced, for ``check(fix=True)`` to remove.
- At ``sqlite_synchronous = 0`` SQLite syncs nothing, and no promise is made.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import stat
import threading
from typing import Any, NamedTuple

#: A checkpoint is due once the log has grown past this many bytes (SQLite's 1000 pages of
#: 4 KiB). The log is also kept at this size when it restarts after a checkpoint (SQLite's
#: ``journal_size_limit``): it then grows past it only once that much has been written
#: since, which is how its size tells that a checkpoint is due. Shrinking it further would
#: make each later write extend the file (9 us more per small delete); never shrinking it
#: would leave its size past the threshold for good.
CHECKPOINT_BYTES = 1000 * 4096
#: How many commits of one store pass between two looks at the log's size.
CHECK_EVERY = 16
#: Once the value files waiting for a checkpoint before their removal hold this many bytes,
#: a checkpoint is forced. It bounds the disk space a process holds beyond what its rows
#: count. Every dropped file is synced by the checkpoint it waits for, whatever the limit;
#: a larger one spreads that cost over more writes (each 100 MB overwrite paid a forced
#: checkpoint at 64 MiB, and took longer than diskcache's).
DEFER_BYTES = 256 << 20
#: A cache smaller than this many times the limit is held to a share of its ``size_limit``
#: (a quarter over it at most, on a default 1 GiB cache).
DEFER_SHARE = 4
#: The smallest amount worth a forced checkpoint, whatever the cache's ``size_limit``.
DEFER_MIN_BYTES = 4 << 20

_syncfs: Any = None


class Space:
    """Whether this process's last value-file write met a full disk.

    While it did, a removal does not leave its files for the next checkpoint: it forces one,
    so that removing items frees their space at once (see ``CacheBase._freeing``).
    """

    short = False


def per_commit(journal_mode: str, synchronous: int) -> bool:
    """Whether each commit is synced, so each value file must be synced before it."""
    return synchronous >= 2 or (journal_mode != "wal" and synchronous >= 1)


def sync_directory(path: str) -> None:
    """Make the entries of directory *path* durable (best effort where it cannot be opened)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        sync_fd(fd)
    finally:
        os.close(fd)


def sync_fd(fd: int) -> None:
    """``fsync`` a file or directory; a filesystem that cannot sync directories is ignored."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (22, 95):  # EINVAL, EOPNOTSUPP: nothing to sync there
            raise


def sync_filesystem(directory: str) -> None:
    """Make durable everything written so far on *directory*'s filesystem, by any process."""
    global _syncfs
    if _syncfs is None:
        _syncfs = False
        with contextlib.suppress(OSError, AttributeError, ImportError):
            import ctypes  # not ctypes.util: it loads shutil, tempfile and random

            _syncfs = ctypes.CDLL(None, use_errno=True).syncfs  # libc, already loaded
    if _syncfs:
        try:
            fd = os.open(directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if _syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
    os.sync()


def defers_unlinks(journal_mode: str, synchronous: int) -> bool:
    """Whether a file a commit dropped must wait for a checkpoint: WAL mode at NORMAL."""
    return journal_mode == "wal" and synchronous == 1


def defer_limit(size_limit: int) -> int:
    """How many bytes of dropped files wait before a checkpoint is forced."""
    return max(DEFER_MIN_BYTES, min(DEFER_BYTES, size_limit // DEFER_SHARE))


class Dropped(NamedTuple):
    """Value files one commit dropped, waiting for that commit to be on disk."""

    #: This process's count of dropped batches: a checkpoint it starts later covers it.
    seq: int
    #: The shared ``durable`` number (see _changes.py) that proves the commit on disk.
    need: int
    names: list[str]
    size: int
    #: Who removes them (the store that dropped them; it knows diskcache-style hooks).
    owner: Any


class Checkpoints:
    """Drives the WAL checkpoints of one database, each after a filesystem sync."""

    def __init__(self, directory: str, path: str) -> None:
        self.directory = directory
        self.wal = path + "-wal"
        self.commits = 0
        #: Value files (names below ``data/``) this process committed since the last sync.
        self.pending: list[str] = []
        #: Files dropped by commits not yet known to be on disk, oldest first.
        self.dropped: list[Dropped] = []
        self.dropped_bytes = 0
        self._seq = 0
        self._lock = threading.Lock()

    def log_bytes(self) -> int:
        try:
            return os.stat(self.wal).st_size
        except OSError:
            return 0

    def due(self) -> bool:
        """Count a commit; every :data:`CHECK_EVERY`, say whether the log is large enough."""
        self.commits += 1
        return self.commits % CHECK_EVERY == 0 and self.log_bytes() > CHECKPOINT_BYTES

    def committed(self, names: list[str]) -> None:
        """Remember value files a commit of this process made (``@`` names are a hook's)."""
        self.pending.extend(name for name in names if not name.startswith("@"))

    def before_checkpoint(self) -> None:
        """Make every value file the log may name durable, with its directory entries.

        This process's own files are synced one by one (that reaches any filesystem, FUSE
        ones included); then the whole filesystem is, for files other processes wrote.
        """
        pending, self.pending = self.pending, []
        data = os.path.join(self.directory, "data")
        directories = {data, self.directory}
        # O_NONBLOCK: a FIFO planted in place of a value file must not stop the sync.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        for name in pending:  # relative to the directory, as rows name them
            path = os.path.join(self.directory, name)
            try:
                fd = os.open(path, flags)
            except OSError:
                continue  # removed meanwhile: nothing names it any more
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    sync_fd(fd)
            finally:
                os.close(fd)
            directories.add(os.path.dirname(path))
        for directory in sorted(directories, key=len, reverse=True):
            sync_directory(directory)
        sync_filesystem(self.directory)

    def defer(self, names: list[str], need: int, owner: Any) -> None:
        """Keep files a commit dropped until a checkpoint shows the commit on disk."""
        size = 0
        for name in names:
            if not name.startswith("@"):
                with contextlib.suppress(OSError, ValueError):
                    size += os.stat(os.path.join(self.directory, name)).st_size
        with self._lock:
            self._seq += 1
            self.dropped.append(Dropped(self._seq, need, names, size, owner))
            self.dropped_bytes += size

    def mark(self) -> int:
        """Before a checkpoint: the batches it will cover (those deferred so far)."""
        return self._seq

    def release(self, *, upto: int = 0, durable: int = 0) -> list[Dropped]:
        """Take the batches now safe to remove: deferred before the checkpoint that
        returned *upto* from :meth:`mark`, or whose commit the shared *durable* covers."""
        with self._lock:
            if not self.dropped:
                return []
            first = self.dropped[0]
            if first.seq > upto and first.need > durable:
                return []  # the common case: nothing new is known on disk
            keep: list[Dropped] = []
            done: list[Dropped] = []
            for batch in self.dropped:
                (done if batch.seq <= upto or batch.need <= durable else keep).append(batch)
            if done:
                self.dropped = keep
                self.dropped_bytes -= sum(batch.size for batch in done)
            return done

    def forget(self) -> None:
        """In a forked child: the parent removes the files its commits dropped."""
        self._lock = threading.Lock()
        self.dropped = []
        self.dropped_bytes = 0

    def before_close(self, con: Any) -> None:
        """Closing the last connection checkpoints and removes the log, as diskcache's does:
        sync first if this process wrote value files that the log may name, then let SQLite
        checkpoint on this close (it was told not to while the connection was in use)."""
        if self.pending and self.log_bytes() > 0:
            with contextlib.suppress(OSError):
                self.before_checkpoint()
        set_checkpoint_on_close(con, True)


def set_checkpoint_on_close(con: Any, enabled: bool) -> bool:
    """Tell SQLite whether to checkpoint when *con* closes; False where Python cannot (3.11
    and older: SQLite then always checkpoints when the last connection closes)."""
    import sqlite3

    option = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
    if option is None or not hasattr(con, "setconfig"):
        return False
    try:
        con.setconfig(option, not enabled)
    except sqlite3.Error:
        return False
    return True


_OPEN: dict[str, Checkpoints] = {}


def checkpoints(directory: str, path: str) -> Checkpoints:
    found = _OPEN.get(path)
    if found is None:
        found = _OPEN[path] = Checkpoints(directory, path)
    return found


def _at_exit() -> None:
    # Connections still open at exit are closed by the interpreter (checkpointing the last):
    # sync each filesystem holding a log first, once.
    synced: set[int] = set()
    for entry in list(_OPEN.values()):
        try:
            device = os.stat(entry.directory).st_dev
        except OSError:
            continue
        if device not in synced and entry.log_bytes() > 0:
            synced.add(device)
            with contextlib.suppress(OSError):
                sync_filesystem(entry.directory)


def _forget_in_child() -> None:
    for entry in _OPEN.values():
        entry.forget()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
