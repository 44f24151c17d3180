"""Connections, transactions and fork safety for one database file.

Each thread gets its own SQLite connection. Every operation *enters* the store (a counter on
the thread's connection record) so that ``os.fork()`` can wait for operations in flight and
close idle connections first: a child that inherits an open SQLite connection, or SQLite's
in-process lock bookkeeping, can hang or lose writes, which is why forked children of a
diskcache user may hang for the whole timeout. Connections are reopened lazily afterwards in
both parent and child. A thread that forks from inside a transaction cannot close its
connection first; its child gets :class:`~diskstore.ForkedTransactionError` instead of a
transaction that is not its own (see :meth:`Store._after_fork_child`).

SQLite's own busy handler sleeps at least a millisecond whenever two writers collide, which
sets the tail latency of every contended write. Connections are therefore opened with a zero
busy timeout and :func:`wait_busy` retries with a short, growing backoff until the cache's
``timeout`` passes, then raises :class:`~diskstore.Timeout` (unless ``retry`` is set).

Writes run in ``BEGIN IMMEDIATE`` transactions written once here (:class:`WriteTxn`):
nested calls join the outer transaction, value files created inside are removed if it rolls
back, and files it dropped are unlinked only after it commits (in WAL mode at NORMAL, only
once a checkpoint shows the commit on disk: see _durability.py).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

from .._common._exceptions import (
    DiskStoreError,
    ForkedTransactionError,
    IntegrityError,
    ReadOnlyError,
    StorageError,
    StorageFullError,
    Timeout,
)
from .._fs import _durability
from .._fs._changes import ChangeCounter
from .._fs._durability import checkpoints, set_checkpoint_on_close
from .._fs._faults import crash_point
from .._fs._filesystems import damage_hint
from . import _checkpointer, _placeholders, _sql

DB_NAME = "cache.db"

T = TypeVar("T")

_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_FIRST_SLEEP = 0.0001
_MAX_SLEEP = 0.001


class Conn:
    """One thread's connection to one store, with its transaction state."""

    __slots__ = (
        "__weakref__", "before_close", "change_no", "con", "created", "cur", "depth",
        "dropped", "forked", "owner", "txn",
    )  # fmt: skip

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con: sqlite3.Connection | None = con
        self.cur: sqlite3.Cursor = con.cursor()  # reused by the read hot path
        self.depth = 0  # operations in flight in this thread
        self.txn = 0  # transaction nesting level
        self.created: list[str] = []  # value files to remove if the transaction rolls back
        self.dropped: list[str] = []  # value files to remove once it commits
        self.owner = threading.get_ident()
        self.change_no = 0  # this transaction's number in the change counter (0: none)
        self.forked = False  # a child's copy of a transaction its parent had open at the fork
        #: Called before the connection closes (see _durability.py: it may checkpoint).
        self.before_close: Callable[[sqlite3.Connection], None] | None = None

    def __del__(self) -> None:
        # When a thread ends, its record goes with it. The connection would linger (it sits in
        # a reference cycle with its statement cache) holding descriptors and the WAL open,
        # so close it now.
        con = self.con
        if con is not None:
            self.con = None
            with contextlib.suppress(Exception):
                close_connection(con, self.before_close)


def close_connection(
    con: sqlite3.Connection, before_close: Callable[[sqlite3.Connection], None] | None
) -> None:
    """Close *con* after *before_close*, which may sync value files (_durability.py): that
    runs outside ``_sqlite_lock``, for which every open and close in the process waits."""
    if before_close is not None:
        with contextlib.suppress(sqlite3.Error, OSError):
            before_close(con)
    with _sqlite_lock, contextlib.suppress(sqlite3.Error, OSError):
        con.close()


# -- errors -------------------------------------------------------------------------------
def _code(exc: sqlite3.Error) -> int:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return 5
    if "full" in text:
        return 13
    if "readonly" in text or "read-only" in text:
        return 8
    if "disk i/o" in text:
        return 10
    if "malformed" in text:
        return 11  # SQLITE_CORRUPT
    if "not a database" in text:
        return 26  # SQLITE_NOTADB
    return 1


def is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and _code(exc) in _BUSY_CODES


def translate(exc: sqlite3.Error, path: str) -> Exception:
    """Map an SQLite error to diskstore's exception tree (the caller chains the cause)."""
    code = _code(exc)
    if code == 13:
        return StorageFullError(errno.ENOSPC, f"no space left for {path}: {exc}")
    if code == 10:
        return StorageError(errno.EIO, f"I/O error on {path}: {exc}")
    if code == 8:
        return ReadOnlyError(f"cache {path} is read-only: {exc}")
    if code in (11, 26):
        return IntegrityError(f"database {path} is damaged: {exc}{damage_hint(path)}")
    if code in _BUSY_CODES:
        return Timeout(f"database {path} stayed locked: {exc}")
    return DiskStoreError(f"database error on {path}: {exc}")


def wait_busy(attempt: int, deadline: float, retry: bool, path: str) -> None:
    """Sleep before retry number *attempt*, or raise ``Timeout`` past *deadline*."""
    if not retry and time.monotonic() >= deadline:
        raise Timeout(f"database {path} stayed locked past the timeout")
    # Always really sleep (``sleep(0)`` keeps the CPU, starving the writer we wait for when
    # processes outnumber cores), briefly and with jitter: a write holds the lock for tens
    # of microseconds, so a long sleep only lengthens the tail.
    import random  # on the first wait, not with the package: only a busy database waits

    delay = min(_MAX_SLEEP, _FIRST_SLEEP * (1 << min(attempt - 1, 4)))
    time.sleep(delay * (0.5 + random.random()))


def retry_busy(
    run: Callable[[], T], busy: Callable[[sqlite3.Error], bool], timeout: float, retry: bool,
    path: str,
) -> T:  # fmt: skip
    """Call *run* again, after the failure that *busy* says a locked database caused.

    It waits (:func:`wait_busy`) before every attempt and raises ``Timeout`` once *timeout*
    seconds have passed, unless *retry*; an error that *busy* refuses is raised as it is.
    """
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        wait_busy(attempt, deadline, retry, path)
        try:
            return run()
        except sqlite3.Error as exc:
            if not busy(exc):
                raise


# -- fork safety --------------------------------------------------------------------------
_STORES: weakref.WeakSet[Store] = weakref.WeakSet()
_fork_pending = False
_resume = threading.Event()
_resume.set()
_ABANDONED: list[sqlite3.Connection] = []  # inherited connections a child must never touch
# Databases whose write lock this process inherited by forking inside a transaction. SQLite
# keeps lock state per process, shared by every connection to the file, and it still records
# the abandoned connection's write lock: no connection of this process could ever write, so
# a write fails at once instead of waiting out the timeout.
_FORKED_WRITERS: set[str] = set()
# Opening and closing a connection take SQLite's process-wide mutex with the GIL released;
# a child forked meanwhile would inherit that mutex locked and hang on its first connect. So
# every open and close holds this lock, and so does the fork (see _before_fork).
_sqlite_lock = threading.RLock()
FORK_WAIT = 10.0
#: Page cache of a scan connection (see ``Store.scan``), in KiB.
SCAN_CACHE_KIB = 1024
#: A scan connection's settings over the cache's: a small page cache, no memory map.
_SCAN_PRAGMAS = {"sqlite_cache_size": -SCAN_CACHE_KIB, "sqlite_mmap_size": 0}
SETUP_PATIENCE = 60.0
#: A ``durable`` number no checkpoint reaches (see Store._defer).
_NEVER = 1 << 64


def _before_fork() -> None:
    global _fork_pending
    _resume.clear()
    _fork_pending = True
    me = threading.get_ident()
    deadline = time.monotonic() + FORK_WAIT
    for store in list(_STORES):
        for conn in list(store._conns):
            while conn.depth > 0 and conn.owner != me and time.monotonic() < deadline:
                time.sleep(0.0005)
    _sqlite_lock.acquire()
    for store in list(_STORES):
        store._close_idle()


def _after_fork_parent() -> None:
    global _fork_pending
    _fork_pending = False
    _sqlite_lock.release()
    _resume.set()


def _after_fork_child() -> None:
    global _fork_pending, _resume, _sqlite_lock
    _fork_pending = False
    _exit_flush[0] = False
    _sqlite_lock = threading.RLock()
    _resume = threading.Event()
    _resume.set()
    for store in list(_STORES):
        store._after_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
    )


# -- files dropped at exit ----------------------------------------------------------------
_exit_flush = [False]  # whether this process arranged to remove them when it exits


def _flush_all() -> None:
    """Remove the files that this process's commits dropped, checkpointing first."""
    for entry in list(_durability._OPEN.values()):
        if entry.dropped:
            with contextlib.suppress(Exception):
                entry.dropped[-1].owner.flush()


def _flush_on_exit() -> None:
    """At exit, files still waiting for a checkpoint are removed after one; otherwise
    they would stay behind as files no row names, until ``check(fix=True)``.

    A child of ``multiprocessing`` ends with ``os._exit``, which skips ``atexit``, but
    runs that module's finalizers.
    """
    _exit_flush[0] = True
    import sys

    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _flush_all, exitpriority=0)


atexit.register(_flush_all)  # after _durability's: runs first, before its last sync


class Store:
    """The database of one cache directory, shared by a cache and its namespace views."""

    def __init__(
        self,
        directory: str,
        *,
        timeout: float,
        pragmas: dict[str, Any],
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.path = os.path.join(directory, DB_NAME)
        self.timeout = timeout
        self.read_only = read_only
        self.pragmas = dict(pragmas)
        self._immutable = False
        self._local: Any = threading.local()
        self._conns: weakref.WeakSet[Conn] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        #: Shared change counter (see _changes.py); set by the cache when it can be opened.
        self.changes: ChangeCounter | None = None
        #: Removes a value file that a diskcache-style ``Disk`` hook named (see
        #: _diskcache_disk.py); such names start with ``@``.
        self.remove_hooked: Callable[[str], None] | None = None
        #: Called with the change number after each counted commit.
        self.after_commit: Callable[[int], None] | None = None
        #: The single-host lease of a directory on a network filesystem (see _lease.py).
        self.lease: Any = None
        #: Checkpoints driven by diskstore, each after a filesystem sync (_durability.py).
        self.checkpoints = checkpoints(directory, self.path)
        #: Dropped value files may hold this many bytes before a checkpoint is forced.
        self.defer_limit = _durability.DEFER_BYTES
        #: Held by a checkpoint of the background thread (_checkpointer.py), and by what must
        #: not run beside one: flush (so close and check), and close.
        self._behind = threading.RLock()
        _STORES.add(self)

    # -- connections ------------------------------------------------------------------------
    def _check_database_file(self) -> None:
        """Refuse a database path that is not a plain file (a planted symbolic link)."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(info.st_mode):
            raise IntegrityError(f"{self.path} is not a regular file; refusing to open it")

    def _connect(self, *, scan: bool = False) -> sqlite3.Connection:
        with _sqlite_lock:  # see _sqlite_lock: never half-open across a fork
            return self._open(scan)

    def _open(self, scan: bool = False) -> sqlite3.Connection:
        self._check_database_file()
        if self.read_only:
            mode = "immutable=1" if self._immutable else "mode=ro"
            uri = f"file:{quote(self.path)}?{mode}"
            con = sqlite3.connect(
                uri,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                uri=True,
                factory=_placeholders.factory(),
            )
        else:
            # Create the file private to the user: SQLite gives its -wal and -shm files the
            # database file's permissions.
            with contextlib.suppress(FileExistsError):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                os.close(os.open(self.path, flags, 0o600))
            con = sqlite3.connect(
                self.path,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                factory=_placeholders.factory(),
            )
        try:
            pragmas = {**self.pragmas, **_SCAN_PRAGMAS} if scan else self.pragmas
            for name in ("sqlite_synchronous", "sqlite_cache_size", "sqlite_mmap_size"):
                if name in pragmas:
                    self._pragma(con, name[len("sqlite_") :], pragmas[name])
            journal = self.pragmas.get("sqlite_journal_mode", "wal")
            if journal != "wal" and not self.read_only:
                # WAL is remembered by the database file; the other modes are per connection.
                self._pragma(con, "journal_mode", journal)
            if not self.read_only:  # checkpoints only after a sync: see _durability.py
                self._pragma(con, "wal_autocheckpoint", 0)
                self._pragma(con, "journal_size_limit", _durability.CHECKPOINT_BYTES)
                set_checkpoint_on_close(con, False)
        except BaseException:
            con.close()
            raise
        return con

    def _pragma(self, con: sqlite3.Connection, name: str, value: int | str) -> None:
        # Values come from validated settings (ints or a fixed set of words).
        sql = _sql.PRAGMA_SET.format(name=name, value=value)
        deadline = time.monotonic() + self.setup_patience
        attempt = 0
        while True:
            try:
                con.execute(sql).fetchall()
                return
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise translate(exc, self.path) from exc
                attempt += 1
                wait_busy(attempt, deadline, False, self.path)

    def connect_thread(self) -> Conn:
        """Return this thread's connection record, opening the connection if needed."""
        self._closed = False
        if self.lease is not None:
            self.lease.check()
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and conn.forked:
            raise ForkedTransactionError(
                f"cache {self.directory} cannot be used here: this process was forked inside"
                " a transact() block of its parent, and that transaction is the parent's;"
                " leave the block first (nothing it did in this process is committed)"
            )
        if conn is None:
            try:
                conn = Conn(self._connect())
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
            conn.before_close = self.checkpoints.before_close
            self._local.conn = conn
            with self._lock:
                self._conns.add(conn)
        elif conn.con is None:
            try:
                conn.con = self._connect()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
            conn.cur = conn.con.cursor()
        return conn

    def enter(self) -> Conn:
        """Mark an operation in flight on this thread and return its connection record.

        Every ``enter`` is paired with ``conn.depth -= 1`` in a ``finally``.
        """
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.con is None:
            conn = self.connect_thread()
        conn.depth += 1
        if _fork_pending and conn.depth == 1:
            conn.depth -= 1
            _resume.wait(FORK_WAIT)
            return self.enter()
        return conn

    def close_thread(self) -> None:
        """Close the calling thread's connection if no operation is using it (a background
        thread's, after its work); the thread's next operation opens a new one."""
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and conn.depth == 0 and conn.con is not None:
            con, conn.con = conn.con, None
            close_connection(con, conn.before_close)

    def _close_idle(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            if conn.depth == 0 and conn.con is not None:
                con, conn.con = conn.con, None
                close_connection(con, self.checkpoints.before_close)

    def _after_fork_child(self) -> None:
        # Only the forking thread lives on in the child, with the same call stack: its record
        # keeps its depth (the operations it is inside will still unwind), and a transaction
        # it had open stays marked so that the child cannot mistake it for its own.
        me = threading.get_ident()
        mine = getattr(self._local, "conn", None)
        for conn in list(self._conns):
            if conn.con is not None:
                _ABANDONED.append(conn.con)
                conn.con = None
            if conn is mine and conn.owner == me:
                conn.forked = conn.txn > 0
                if conn.forked:
                    _FORKED_WRITERS.add(self.path)
                continue
            conn.depth = 0
            conn.txn = 0
            conn.change_no = 0
            conn.created.clear()
            conn.dropped.clear()
        self._lock = threading.Lock()
        self._behind = threading.RLock()
        self._conns = weakref.WeakSet()
        self._local = threading.local()
        if mine is not None and mine.owner == me:
            self._local.conn = mine
            self._conns.add(mine)

    def close_idle_connections(self) -> None:
        """Close idle connections so the next use reopens them (after a pragma change)."""
        self._close_idle()

    def close_all_for_reopen(self, *, immutable: bool) -> None:
        """Reopen every connection, read-only databases as immutable when *immutable*."""
        self._immutable = immutable
        self._close_idle()

    def close(self) -> None:
        """Close every idle connection; the next use opens a new one (as in diskcache).

        Files that commits dropped are removed first, after a checkpoint (see :meth:`flush`).
        """
        with self._behind:  # a background checkpoint's connection closes with it, first
            self.flush()
            with self._lock:
                conns = list(self._conns)  # before the thread-local (their owner) goes away
                self._conns = weakref.WeakSet()
            self._local = threading.local()
            self._closed = True
        for conn in conns:
            if conn.con is not None and (conn.depth == 0 or conn.owner == threading.get_ident()):
                con, conn.con = conn.con, None
                close_connection(con, self.checkpoints.before_close)

    def checkpoint(self, sql: str = _sql.CHECKPOINT_TRUNCATE) -> None:
        """Copy the write-ahead log into the database and truncate it (best effort); then
        remove the value files that commits before it dropped. *sql* may ask for another
        kind of checkpoint (``_sql.CHECKPOINT_PASSIVE``: no truncation, no waiting)."""
        with contextlib.suppress(DiskStoreError, sqlite3.Error, OSError):
            conn = self.enter()
            try:
                if conn.txn == 0 and conn.con is not None:
                    self._checkpoint(conn.con, sql)
            finally:
                conn.depth -= 1

    def flush(self) -> None:
        """Remove the value files this process's commits dropped, checkpointing first: a
        file may go only once no row that a power cut could bring back names it."""
        with self._behind:  # after a background checkpoint, whose files are then gone
            if not self.checkpoints.dropped:
                return
            if self.pragmas.get("sqlite_journal_mode", "wal") == "wal":
                self.checkpoint()
                if self.checkpoints.dropped:  # readers kept the checkpoint from copying the log
                    self._sync_log()

    def checkpoint_behind(self) -> None:
        """The checkpoint forced by waiting files, in the background thread that
        :meth:`_checkpoint_due` asked for it; the thread's connection is closed after."""
        with self._behind:
            if self._closed or self.checkpoints.dropped_bytes <= self.defer_limit:
                return  # closed, or a checkpoint since removed them
            self.checkpoint(_sql.CHECKPOINT_PASSIVE)
            self.close_thread()

    def _sync_log(self) -> None:
        """Make every commit so far durable without a checkpoint, then remove what they
        dropped: a commit made at ``synchronous = FULL`` syncs the whole log, and with it
        every commit before it (the files the log names are synced first)."""
        checkpoints = self.checkpoints
        with contextlib.suppress(DiskStoreError, sqlite3.Error, OSError):
            conn = self.enter()
            try:
                con = conn.con
                if conn.txn or con is None:
                    return
                mark = checkpoints.mark()
                changes = self.changes
                finished = changes.read()[1] if changes is not None else 0
                checkpoints.before_checkpoint()
                con.execute(_sql.PRAGMA_SET.format(name="synchronous", value=2))
                try:
                    with self.write(quiet=True) as inner:
                        assert inner.con is not None
                        inner.con.execute(_sql.REWRITE_COUNT)
                finally:
                    normal = self.pragmas.get("sqlite_synchronous", 1)
                    con.execute(_sql.PRAGMA_SET.format(name="synchronous", value=normal))
                if changes is not None and finished:
                    changes.set_durable(finished)
                self._remove_released(checkpoints.release(upto=mark))
            finally:
                conn.depth -= 1

    @property
    def defers_unlinks(self) -> bool:
        """Whether dropped value files wait for a checkpoint (see _durability.py)."""
        pragmas = self.pragmas
        return _durability.defers_unlinks(
            pragmas.get("sqlite_journal_mode", "wal"), pragmas.get("sqlite_synchronous", 1)
        )

    def _defer(self, dropped: list[str], number: int) -> None:
        """Keep *dropped* until the commit that dropped them (numbered *number*) is on disk."""
        if not _exit_flush[0]:
            _flush_on_exit()
        changes = self.changes
        if number:
            need = number
        elif changes is not None:
            # Unnumbered: the next numbered transaction begins after this commit.
            need = changes.begun() + 1
        else:
            need = _NEVER  # only this process's checkpoints can tell
        self.checkpoints.defer(dropped, need, self)

    def _checkpoint(self, con: sqlite3.Connection, sql: str) -> bool:
        """Checkpoint after a sync; True if it copied the whole log into the database.

        A whole checkpoint at NORMAL syncs the log first, so every commit that finished
        before it started is on disk: the files those commits dropped can go now, and
        other processes learn it through the shared ``durable`` number (_changes.py).
        """
        checkpoints = self.checkpoints
        synced = bool(self.pragmas.get("sqlite_synchronous", 1))
        mark = checkpoints.mark()
        changes = self.changes
        finished = changes.read()[1] if changes is not None else 0
        if synced:
            checkpoints.before_checkpoint()
        row = con.execute(sql).fetchone()
        whole = row is not None and row[0] == 0 and row[1] == row[2]
        if whole and synced:
            if changes is not None and finished:
                changes.set_durable(finished)
            self._remove_released(checkpoints.release(upto=mark))
        return whole

    def _remove_released(self, batches: list[_durability.Dropped]) -> None:
        for batch in batches:
            batch.owner._remove(batch.names)

    def _checkpoint_due(self, con: sqlite3.Connection) -> None:
        """After a commit: checkpoint once the log has grown enough, after a sync; or once
        the files waiting for one hold too much; or remove those another process's
        checkpoint showed on disk."""
        checkpoints = self.checkpoints
        due = checkpoints.due()
        if checkpoints.dropped:
            if self.changes is not None:
                self._remove_released(checkpoints.release(durable=self.changes.durable()))
            waiting = checkpoints.dropped_bytes
            if waiting > self.defer_limit and checkpoints.commits % 4 == 0:
                # Not at every commit: a busy reader may keep the log from copying. The sync
                # and unlinks take a while: the background thread runs them, unless it has
                # fallen that far behind.
                behind = waiting > _checkpointer.BACKLOG * self.defer_limit
                if behind or not _checkpointer.request(self):
                    due = True
        if due and self.pragmas.get("sqlite_journal_mode", "wal") == "wal":
            with contextlib.suppress(sqlite3.Error, OSError):
                self._checkpoint(con, _sql.CHECKPOINT_PASSIVE)

    @property
    def setup_patience(self) -> float:
        """How long opening the database may wait for other processes.

        Opening and connecting are not the caller's operation and must not fail because a
        short operation ``timeout`` (10 ms in a FanoutCache shard) met a busy moment.
        """
        return max(self.timeout, SETUP_PATIENCE)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called and no operation has reopened the store since."""
        return self._closed

    # -- statements -------------------------------------------------------------------------
    def query(
        self, conn: Conn, sql: str, params: Sequence[Any] = (), *, retry: bool = False
    ) -> list[Any]:
        """Run a statement and fetch all rows, retrying while the database is busy."""
        assert conn.con is not None
        try:
            return conn.con.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or conn.txn:
                raise translate(exc, self.path) from exc
            return self.retry_query(conn, sql, params, retry)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def retry_query(self, conn: Conn, sql: str, params: Sequence[Any], retry: bool) -> list[Any]:
        def run() -> list[Any]:
            assert conn.con is not None
            return conn.con.execute(sql, params).fetchall()

        try:
            return retry_busy(run, is_busy, self.timeout, retry, self.path)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def run(self, sql: str, params: Sequence[Any] = (), *, retry: bool = False) -> list[Any]:
        """Enter, run one statement, leave: for reads outside the hot paths."""
        conn = self.enter()
        try:
            return self.query(conn, sql, params, retry=retry)
        finally:
            conn.depth -= 1

    def scan(self, sql: str, params: Sequence[Any] = (), *, retry: bool = False) -> list[Any]:
        """Run one chunk of a long read-only scan (iteration) on this thread's scan connection.

        A pass over every item touches every page of the database. Read through the
        connection that serves point operations, it would fill that connection's page cache
        and memory map (tens of MiB that stay resident) and push out the pages gets keep
        reusing. The scan connection has a small page cache and no memory map, so a pass
        costs the process about ``SCAN_CACHE_KIB`` whatever the size of the cache. Inside
        a transaction the scan reads through the transaction's connection, to see its writes.
        """
        main = self.enter()
        try:
            if main.txn:
                return self.query(main, sql, params, retry=retry)
            conn = self._scan_conn()
            conn.depth += 1
            try:
                return self.query(conn, sql, params, retry=retry)
            finally:
                conn.depth -= 1
        finally:
            main.depth -= 1

    def _scan_conn(self) -> Conn:
        conn: Conn | None = getattr(self._local, "scan", None)
        if conn is not None and conn.con is not None:
            return conn
        try:
            con = self._connect(scan=True)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        if conn is None:
            conn = self._local.scan = Conn(con)
            conn.before_close = self.checkpoints.before_close
            with self._lock:
                self._conns.add(conn)
        else:
            conn.con, conn.cur = con, con.cursor()
        return conn

    # -- transactions -----------------------------------------------------------------------
    def begin(
        self, conn: Conn, retry: bool, timeout: float | None = None, quiet: bool = False
    ) -> bool:
        """Start a write transaction, or join the open one; True if this call started it."""
        if conn.txn:
            conn.txn += 1
            return False
        if self.read_only:
            raise ReadOnlyError(f"cache {self.directory} was opened read-only")
        if self.lease is not None:
            self.lease.check()
        if _FORKED_WRITERS and self.path in _FORKED_WRITERS:
            raise ForkedTransactionError(
                f"cache {self.directory} cannot be written by this process: it was forked"
                " inside a transact() block of its parent, and SQLite in this process still"
                " holds the parent's write lock (reads work; write from another process)"
            )
        con = conn.con
        assert con is not None
        try:
            con.execute(_sql.BEGIN)
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise translate(exc, self.path) from exc
            wait = self.timeout if timeout is None else timeout
            try:
                retry_busy(lambda: con.execute(_sql.BEGIN), is_busy, wait, retry, self.path)
            except sqlite3.Error as again:
                raise translate(again, self.path) from again
        conn.txn = 1
        if self.changes is not None and not quiet:
            conn.change_no = self.changes.begin()
        return True

    def end(self, conn: Conn, outer: bool, commit: bool) -> None:
        """Finish what :meth:`begin` started: commit or roll back the outer transaction."""
        if conn.forked:
            self._end_forked(conn, outer, commit)
            return
        if not outer:
            conn.txn -= 1
            return
        con = conn.con
        assert con is not None
        conn.txn = 0
        created, dropped = conn.created, conn.dropped
        if created or dropped:
            conn.created, conn.dropped = [], []
        number, conn.change_no = conn.change_no, 0
        changes = self.changes if number else None
        if commit:
            try:
                self._commit(con)
            except (sqlite3.Error, Timeout) as exc:
                self._rollback(con)
                if changes is not None:
                    changes.finish(number)
                self._remove(created)
                if isinstance(exc, Timeout):
                    raise
                raise translate(exc, self.path) from exc
            if changes is not None:
                changes.finish(number)
            if created:
                self.checkpoints.committed(created)
            crash_point("committed")
            if dropped:
                crash_point("before-unlink")
                if self.defers_unlinks:
                    # A hook's file (``@`` names: a diskcache-style Disk subclass's) may be
                    # named again by the next write of its key, so it cannot wait.
                    hooked = [name for name in dropped if name.startswith("@")]
                    if hooked:
                        self._remove(hooked)
                        dropped = [name for name in dropped if not name.startswith("@")]
                    if dropped:
                        self._defer(dropped, number)
                else:
                    self._remove(dropped)
            self._checkpoint_due(con)
            if number and self.after_commit is not None:
                self.after_commit(number)
        else:
            self._rollback(con)
            if changes is not None:
                changes.finish(number)
            self._remove(created)

    def _commit(self, con: sqlite3.Connection) -> None:
        """COMMIT, waiting out readers: with a rollback journal (``sqlite_journal_mode`` other
        than WAL, as in single-host mode on a network filesystem) a commit needs every
        reader gone and fails busy meanwhile, with the transaction still open to retry."""
        try:
            con.execute(_sql.COMMIT)
            return
        except sqlite3.Error as exc:
            if not is_busy(exc) or not con.in_transaction:
                raise
        retry_busy(
            lambda: con.execute(_sql.COMMIT),
            lambda exc: is_busy(exc) and con.in_transaction,
            self.timeout,
            False,
            self.path,
        )

    def _end_forked(self, conn: Conn, outer: bool, commit: bool) -> None:
        """Leave one level of a transaction inherited from the parent by fork.

        Nothing is committed or rolled back: the transaction, its change number and its
        files are the parent's. Leaving the outermost level frees the thread to use the
        cache again; a normal exit of any level raises, since its work did not commit.
        """
        conn.txn -= 1
        if outer or conn.txn <= 0:
            conn.txn = 0
            conn.forked = False
            conn.change_no = 0
            conn.created, conn.dropped = [], []
        if commit:
            raise ForkedTransactionError(
                f"a transact() block on cache {self.directory} was left in a process forked"
                " inside it; its work in this process was not committed (the transaction"
                " belongs to the parent process)"
            )

    @staticmethod
    def _rollback(con: sqlite3.Connection) -> None:
        if con.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                con.execute(_sql.ROLLBACK)

    def remove_files(self, names: list[str]) -> None:
        """Remove value files no row refers to (best effort)."""
        self._remove(names)

    def _remove(self, names: list[str]) -> None:
        from .._fs._files import FileStore

        files = FileStore(self.directory)
        for name in names:
            with contextlib.suppress(OSError, DiskStoreError):
                if not name.startswith("@"):
                    files.unlink(name)
                elif self.remove_hooked is not None:
                    self.remove_hooked(name)

    def write(
        self, retry: bool = False, timeout: float | None = None, *, quiet: bool = False
    ) -> WriteTxn:
        """``with store.write(retry) as conn:`` runs the block in a write transaction.

        A *quiet* transaction changes no values (bookkeeping only), so it does not count as a
        change for memory tiers.
        """
        return WriteTxn(self, retry, timeout, quiet)

    @contextlib.contextmanager
    def savepoint_txn(self, retry: bool) -> Iterator[None]:
        """A user-level transaction: the outer one commits, nested ones are savepoints."""
        conn = self.enter()
        try:
            outer = self.begin(conn, retry)
            con = conn.con
            assert con is not None
            depth = conn.txn
            if not outer:
                try:
                    con.execute(_sql.SAVEPOINT.format(depth=depth))
                except sqlite3.Error as exc:
                    conn.txn -= 1
                    raise translate(exc, self.path) from exc
            mark = (len(conn.created), len(conn.dropped))
            try:
                yield
            except BaseException:
                if outer or conn.forked:
                    self.end(conn, outer, False)
                else:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute(_sql.ROLLBACK_TO.format(depth=depth))
                        con.execute(_sql.RELEASE.format(depth=depth))
                    self._remove(conn.created[mark[0] :])
                    del conn.created[mark[0] :]
                    del conn.dropped[mark[1] :]
                    conn.txn -= 1
                raise
            if outer or conn.forked:
                self.end(conn, outer, True)
            else:
                try:
                    con.execute(_sql.RELEASE.format(depth=depth))
                except sqlite3.Error as exc:
                    raise translate(exc, self.path) from exc
                conn.txn -= 1
        finally:
            conn.depth -= 1


class WriteTxn:
    """Context manager for one write operation; see :meth:`Store.write`."""

    __slots__ = ("conn", "outer", "quiet", "retry", "store", "timeout")

    def __init__(self, store: Store, retry: bool, timeout: float | None, quiet: bool) -> None:
        self.store = store
        self.retry = retry
        self.timeout = timeout
        self.quiet = quiet

    def __enter__(self) -> Conn:
        conn = self.conn = self.store.enter()
        try:
            self.outer = self.store.begin(conn, self.retry, self.timeout, self.quiet)
        except BaseException:
            conn.depth -= 1
            raise
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        try:
            self.store.end(conn, self.outer, exc_type is None)
        finally:
            conn.depth -= 1
        if isinstance(exc, sqlite3.Error):
            raise translate(exc, self.store.path) from exc
